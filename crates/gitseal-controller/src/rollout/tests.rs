//! Rollout scenarios over a scripted API server (tower-test): the exact
//! requests made, the exact PATCH bodies, and what is left alone.

use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

use super::*;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const HASH: &str = "hmac-sha256:1111aaaa";
const OLD: &str = "hmac-sha256:0000ffff";

/// One expected request and the reply to give.
struct Step {
    method: &'static str,
    uri: String,
    code: u16,
    reply: Value,
}

fn list_uri(kind: &str, cont: Option<&str>) -> String {
    let mut u = format!("/apis/apps/v1/namespaces/app/{kind}?&limit=500");
    if let Some(c) = cont {
        u.push_str(&format!("&continue={c}"));
    }
    u
}

fn patch_uri(kind: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/app/{kind}/{name}?&fieldManager=gitseal-controller")
}

fn list(kind: &str, items: Vec<Value>, cont: Option<&str>) -> Step {
    let k = match kind {
        "deployments" => "DeploymentList",
        "statefulsets" => "StatefulSetList",
        _ => "DaemonSetList",
    };
    let mut meta = json!({"resourceVersion": "1"});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    Step {
        method: "GET",
        uri: list_uri(kind, None),
        code: 200,
        reply: json!({"apiVersion": "apps/v1", "kind": k, "metadata": meta, "items": items}),
    }
}

fn patch(kind: &str, name: &str, code: u16) -> Step {
    Step {
        method: "PATCH",
        uri: patch_uri(kind, name),
        code,
        reply: if code == 200 {
            let k = match kind {
                "deployments" => "Deployment",
                "statefulsets" => "StatefulSet",
                _ => "DaemonSet",
            };
            workload(k, name, Some("db"), Some(HASH))
        } else {
            status(code)
        },
    }
}

fn status(code: u16) -> Value {
    let reason = match code {
        403 => "Forbidden",
        404 => "NotFound",
        _ => "InternalError",
    };
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "message": format!("{reason} by test"), "reason": reason, "code": code})
}

/// A workload of `kind` named `name`; `opt_in` is the restart annotation,
/// `hash` the template's hash annotation for Secret `db`.
fn workload(kind: &str, name: &str, opt_in: Option<&str>, hash: Option<&str>) -> Value {
    let mut meta = json!({"name": name, "namespace": "app"});
    if let Some(o) = opt_in {
        meta["annotations"] = json!({ RESTART_ANNOTATION: o, "other": "x" });
    }
    let mut tmeta = json!({"labels": {"app": name}, "annotations": {"keep": "me"}});
    if let Some(h) = hash {
        tmeta["annotations"][hash_annotation_key("db")] = json!(h);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": tmeta, "spec": {"containers": [{"name": "c", "image": "i"}]}}
        }
    })
}

fn expected_patch() -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {"gitseal.dev/secret-hash.db": HASH}}}}})
}

/// Runs `restart_on_change` against `script`; returns the report and the
/// bodies of the PATCH requests. Fails on any request not in the script,
/// in order, and on any request after it.
async fn run(script: Vec<Step>, data_changed: bool) -> (Report, Vec<Value>) {
    run_with(&WorkloadIndex::new(), script, data_changed).await
}

/// As [`run`], with the workloads known from `index`.
async fn run_with(
    index: &WorkloadIndex,
    script: Vec<Step>,
    data_changed: bool,
) -> (Report, Vec<Value>) {
    let (svc, mut handle): (_, Handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        use http_body_util::BodyExt;
        let mut patches = Vec::new();
        for step in script {
            let (req, send) = handle.next_request().await.expect("a request");
            let (parts, body) = req.into_parts();
            assert_eq!(parts.method.as_str(), step.method, "{}", parts.uri);
            assert_eq!(parts.uri.to_string(), step.uri);
            if step.method == "PATCH" {
                assert_eq!(
                    parts
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok()),
                    Some("application/merge-patch+json")
                );
                let bytes = body.collect().await.expect("body").to_bytes();
                patches.push(serde_json::from_slice::<Value>(&bytes).expect("json body"));
            }
            let resp = Response::builder()
                .status(step.code)
                .header("content-type", "application/json")
                .body(Body::from(step.reply.to_string().into_bytes()))
                .expect("response");
            send.send_response(resp);
        }
        if let Some((req, _)) = handle.next_request().await {
            panic!("unexpected request {} {}", req.method(), req.uri());
        }
        patches
    });
    let client = Client::new(svc, "default");
    let change = Change {
        namespace: "app",
        secret: "db",
        data_hash: HASH,
        data_changed,
    };
    let report = restart_on_change(&client, index, &change).await;
    drop(client);
    let patches = server.await.expect("script followed");
    (report, patches)
}

#[tokio::test]
async fn restarts_opted_in_workloads_with_a_stale_hash_only() {
    let script = vec![
        list(
            "deployments",
            vec![
                workload("Deployment", "web", Some("db"), Some(OLD)),
                workload("Deployment", "api", Some("other, db-2"), Some(OLD)),
                workload("Deployment", "worker", Some(" cache , db "), Some(HASH)),
                workload("Deployment", "plain", None, Some(OLD)),
            ],
            None,
        ),
        patch("deployments", "web", 200),
        list(
            "statefulsets",
            vec![workload("StatefulSet", "pg", Some("db"), None)],
            None,
        ),
        patch("statefulsets", "pg", 200),
        list(
            "daemonsets",
            vec![workload("DaemonSet", "agent", Some("db"), Some(OLD))],
            None,
        ),
        patch("daemonsets", "agent", 200),
    ];
    let (report, patches) = run(script, true).await;
    assert_eq!(
        patches,
        vec![expected_patch(), expected_patch(), expected_patch()]
    );
    assert_eq!(
        report,
        Report {
            restarted: vec![
                "Deployment/web".into(),
                "StatefulSet/pg".into(),
                "DaemonSet/agent".into()
            ],
            up_to_date: vec!["Deployment/worker".into()],
            not_tracked: vec![],
            errors: vec![],
        }
    );
    assert!(report.is_ok());
}

#[tokio::test]
async fn nothing_is_patched_when_the_hash_is_current_or_data_did_not_change() {
    // First sync of a brand-new Secret (data_changed = false): workloads
    // that carry the hash, and workloads that carry none, stay as they are.
    let script = vec![
        list(
            "deployments",
            vec![
                workload("Deployment", "web", Some("db"), Some(HASH)),
                workload("Deployment", "new", Some("db"), None),
            ],
            None,
        ),
        list("statefulsets", vec![], None),
        list(
            "daemonsets",
            vec![workload("DaemonSet", "agent", Some("db"), Some(HASH))],
            None,
        ),
    ];
    let (report, patches) = run(script, false).await;
    assert!(patches.is_empty());
    assert!(report.restarted.is_empty());
    assert_eq!(report.up_to_date, ["Deployment/web", "DaemonSet/agent"]);
    assert_eq!(report.not_tracked, ["Deployment/new"]);
    assert!(report.is_ok());

    // A stale hash is restarted even when this sync wrote nothing (e.g. the
    // controller stopped between writing the Secret and patching).
    let script = vec![
        list(
            "deployments",
            vec![workload("Deployment", "web", Some("db"), Some(OLD))],
            None,
        ),
        patch("deployments", "web", 200),
        list("statefulsets", vec![], None),
        list("daemonsets", vec![], None),
    ];
    let (report, patches) = run(script, false).await;
    assert_eq!(patches, vec![expected_patch()]);
    assert_eq!(report.restarted, ["Deployment/web"]);
}

#[tokio::test]
async fn forbidden_and_missing_are_reported_or_skipped() {
    let script = vec![
        Step {
            method: "GET",
            uri: list_uri("deployments", None),
            code: 403,
            reply: status(403),
        },
        list(
            "statefulsets",
            vec![
                workload("StatefulSet", "gone", Some("db"), Some(OLD)),
                workload("StatefulSet", "pg", Some("db"), Some(OLD)),
            ],
            None,
        ),
        patch("statefulsets", "gone", 404),
        patch("statefulsets", "pg", 200),
        list(
            "daemonsets",
            vec![workload("DaemonSet", "agent", Some("db"), Some(OLD))],
            None,
        ),
        patch("daemonsets", "agent", 403),
    ];
    let (report, patches) = run(script, true).await;
    assert_eq!(patches.len(), 3);
    assert_eq!(report.restarted, ["StatefulSet/pg"]);
    assert_eq!(
        report.errors,
        [
            "listing Deployments in namespace app: forbidden (Forbidden by test); grant the controller list, watch and patch on apps deployments, statefulsets and daemonsets",
            "restarting DaemonSet/agent in namespace app: forbidden (Forbidden by test); grant the controller list, watch and patch on apps deployments, statefulsets and daemonsets",
        ]
    );
    assert!(!report.is_ok());

    // A kind the server does not serve (404 on list) is not an error.
    let script = vec![
        Step {
            method: "GET",
            uri: list_uri("deployments", None),
            code: 404,
            reply: status(404),
        },
        list("statefulsets", vec![], None),
        Step {
            method: "GET",
            uri: list_uri("daemonsets", None),
            code: 500,
            reply: status(500),
        },
    ];
    let (report, _) = run(script, true).await;
    assert_eq!(
        report.errors,
        ["listing DaemonSets in namespace app: InternalError by test (500)"]
    );
}

#[tokio::test]
async fn every_page_is_read() {
    let mut second = list(
        "deployments",
        vec![workload("Deployment", "b", Some("db"), Some(OLD))],
        None,
    );
    second.uri = list_uri("deployments", Some("tok-1"));
    let script = vec![
        list(
            "deployments",
            vec![workload("Deployment", "a", Some("db"), Some(OLD))],
            Some("tok-1"),
        ),
        patch("deployments", "a", 200),
        second,
        patch("deployments", "b", 200),
        list("statefulsets", vec![], None),
        list("daemonsets", vec![], None),
    ];
    let (report, _) = run(script, true).await;
    assert_eq!(report.restarted, ["Deployment/a", "Deployment/b"]);
}

fn decode<K: index::Kind>(v: Value) -> index::Workload<K> {
    serde_json::from_value(v).expect("workload")
}

/// With the index listed, a change lists nothing: only the opted-in
/// workloads that need it are patched, and the patch result is remembered.
#[tokio::test]
async fn a_listed_index_replaces_the_lists() {
    use kube::runtime::watcher::Event;

    let known = WorkloadIndex::new();
    known.start();
    known.on_event::<index::Deployments>(None, Event::Init);
    for w in [
        workload("Deployment", "web", Some("db"), Some(OLD)),
        workload("Deployment", "worker", Some("db"), Some(HASH)),
        workload("Deployment", "plain", None, Some(OLD)),
    ] {
        known.on_event::<index::Deployments>(None, Event::InitApply(decode(w)));
    }
    known.on_event::<index::Deployments>(None, Event::InitDone);
    for init in [Event::Init, Event::InitDone] {
        known.on_event::<index::StatefulSets>(None, init);
    }
    known.on_event::<index::DaemonSets>(Some("app"), Event::Init);
    known.on_event::<index::DaemonSets>(
        Some("app"),
        Event::InitApply(decode(workload("DaemonSet", "agent", Some("db"), None))),
    );
    known.on_event::<index::DaemonSets>(Some("app"), Event::InitDone);

    let script = vec![
        patch("deployments", "web", 200),
        patch("daemonsets", "agent", 200),
    ];
    let (report, patches) = run_with(&known, script, true).await;
    assert_eq!(patches, vec![expected_patch(), expected_patch()]);
    assert_eq!(report.restarted, ["Deployment/web", "DaemonSet/agent"]);
    assert_eq!(report.up_to_date, ["Deployment/worker"]);

    // The same change again (a retry): the patched hashes are known, no request.
    let (report, patches) = run_with(&known, vec![], true).await;
    assert!(patches.is_empty());
    assert!(report.restarted.is_empty());
    assert_eq!(report.up_to_date.len(), 3, "{report:?}");
}

#[test]
fn annotation_keys_are_valid_for_any_secret_name() {
    assert_eq!(hash_annotation_key("db"), "gitseal.dev/secret-hash.db");
    let exact = "a".repeat(51);
    assert_eq!(
        hash_annotation_key(&exact),
        format!("gitseal.dev/secret-hash.{exact}")
    );
    let long_a = format!("{}-one", "x".repeat(200));
    let long_b = format!("{}-two", "x".repeat(200));
    let (ka, kb) = (hash_annotation_key(&long_a), hash_annotation_key(&long_b));
    assert_ne!(ka, kb, "distinct names keep distinct keys");
    for k in [&ka, &kb] {
        let name = k.strip_prefix("gitseal.dev/").expect("prefix");
        assert_eq!(name.len(), 63, "{k}");
        assert!(name.starts_with("secret-hash.xxxx"), "{k}");
        assert!(name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric()));
    }
    assert_eq!(hash_annotation_key(&long_a), ka, "stable");
}

#[test]
fn opt_in_lists_names_exactly() {
    let a = |v: &str| BTreeMap::from([(RESTART_ANNOTATION.to_string(), v.to_string())]);
    assert!(opts_in(&a("db"), "db"));
    assert!(opts_in(&a("cache, db ,x"), "db"));
    assert!(!opts_in(&a("db-2,dbx"), "db"));
    assert!(!opts_in(&a(""), "db"));
    assert!(!opts_in(&BTreeMap::new(), "db"));
}
