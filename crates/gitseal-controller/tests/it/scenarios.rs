//! Scripted request/response scenarios (tower-test) for one reconcile: the
//! exact requests the controller makes, and how it handles API errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use gitseal_controller::hash::DataHasher;
use gitseal_controller::keys::{KeySet, KeyStore, SealingKey};
use gitseal_controller::metrics::Metrics;
use gitseal_controller::reconcile::{self, Context};
use gitseal_controller::sources::NoVault;
use gitseal_controller::Error;
use gitseal_crypto::Identity;
use gitseal_manifest::SealedSecret;
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::events::Reporter;
use serde_json::{json, Value};

use crate::common::*;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

struct Setup {
    ctx: Arc<Context>,
    handle: Handle,
    identity: Identity,
}

/// A reconcile context over a scripted API; rollout on change stays off
/// (its list requests would be unscripted) except where a scenario asks.
fn setup() -> Setup {
    setup_with(false)
}

fn setup_with(rollout: bool) -> Setup {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let identity = Identity::generate();
    let store = Arc::new(KeyStore::new());
    store.replace(KeySet::new(vec![SealingKey {
        identity: identity.clone(),
        created: k8s_openapi::jiff::Timestamp::now(),
        secret_name: "k".into(),
    }]));
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            store,
            Arc::new(DataHasher::new(&[7u8; 32]).unwrap_or_else(|e| panic!("{e}"))),
            Arc::new(NoVault),
            Reporter {
                controller: "gitseal-controller".into(),
                instance: None,
            },
            Arc::new(Metrics::new()),
            fast_timing(),
        )
        .with_rollout(rollout),
    );
    Setup {
        ctx,
        handle,
        identity,
    }
}

fn object(identity: &Identity) -> SealedSecret {
    let mut v = sealed_secret(
        "app",
        "db",
        &[("password", b"hunter2")],
        &[identity.recipient().clone()],
    );
    v["metadata"]["uid"] = json!("uid-1");
    v["metadata"]["generation"] = json!(3);
    v["spec"]["template"] = json!({"type": "Opaque", "metadata": {"labels": {"team": "a"}}});
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

fn respond(send: tower_test::mock::SendResponse<Response<Body>>, code: u16, body: Value) {
    let resp = Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string().into_bytes()))
        .unwrap_or_else(|e| panic!("{e}"));
    send.send_response(resp);
}

fn ss_reply(body: &Value) -> Value {
    let mut v = body.clone();
    v["metadata"] = json!({"name": "db", "namespace": "app", "uid": "uid-1"});
    v["spec"] = json!({});
    v
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{reason} by test"), "reason": reason, "code": code})
}

async fn next(
    handle: &mut Handle,
) -> (
    http::request::Parts,
    Value,
    tower_test::mock::SendResponse<Response<Body>>,
) {
    use http_body_util::BodyExt;
    let (req, send) = handle
        .next_request()
        .await
        .unwrap_or_else(|| panic!("no request"));
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (parts, v, send)
}

/// The next request, which must be the PATCH of `db`'s status.
async fn next_status_patch(
    handle: &mut Handle,
) -> (Value, tower_test::mock::SendResponse<Response<Body>>) {
    let (p, body, send) = next(handle).await;
    assert_eq!(p.method, "PATCH");
    assert!(
        p.uri.path().ends_with("/sealedsecrets/db/status"),
        "{}",
        p.uri
    );
    (body, send)
}

fn expected_secret_patch() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "namespace": "app",
            "labels": {"app.kubernetes.io/managed-by": "gitseal-controller", "team": "a"},
            "ownerReferences": [{
                "apiVersion": "gitseal.dev/v1alpha1",
                "kind": "SealedSecret",
                "name": "db",
                "uid": "uid-1",
                "controller": true,
            }],
        },
        "data": {"password": "aHVudGVyMg=="},
        "type": "Opaque",
    })
}

#[tokio::test]
async fn success_makes_exact_requests() {
    let Setup {
        ctx,
        mut handle,
        identity,
    } = setup_with(true);
    let obj = Arc::new(object(&identity));
    let key_id = identity.key_id().to_string();
    let server = tokio::spawn(async move {
        let (p, _, send) = next(&mut handle).await;
        assert_eq!(p.method, "GET");
        assert_eq!(p.uri.path(), "/api/v1/namespaces/app/secrets/db");
        respond(send, 404, status(404, "NotFound"));

        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "PATCH");
        assert_eq!(p.uri.path(), "/api/v1/namespaces/app/secrets/db");
        assert_eq!(
            p.uri.query(),
            Some("&force=true&fieldManager=gitseal-controller")
        );
        assert_eq!(p.headers["content-type"], "application/apply-patch+yaml");
        assert_eq!(body, expected_secret_patch());
        respond(send, 200, body);

        // Rollout on change: the Secret is new, so workloads are listed
        // (none here) before the status is written.
        for kind in ["deployments", "statefulsets", "daemonsets"] {
            let (p, _, send) = next(&mut handle).await;
            assert_eq!(p.method, "GET");
            assert_eq!(p.uri.path(), format!("/apis/apps/v1/namespaces/app/{kind}"));
            assert_eq!(p.uri.query(), Some("&limit=500"));
            respond(
                send,
                200,
                json!({"apiVersion": "apps/v1", "kind": "List", "metadata": {}, "items": []}),
            );
        }

        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "PATCH");
        assert_eq!(
            p.uri.path(),
            "/apis/gitseal.dev/v1alpha1/namespaces/app/sealedsecrets/db/status"
        );
        assert_eq!(p.headers["content-type"], "application/apply-patch+yaml");
        assert_eq!(body["apiVersion"], "gitseal.dev/v1alpha1");
        assert_eq!(body["kind"], "SealedSecret");
        let st = &body["status"];
        assert_eq!(st["observedGeneration"], 3);
        assert_eq!(st["keyIds"], json!([key_id]));
        assert!(st["dataHash"]
            .as_str()
            .is_some_and(|h| h.starts_with("hmac-sha256:")));
        assert_eq!(st["conditions"][0]["type"], "Ready");
        assert_eq!(st["conditions"][0]["status"], "True");
        assert_eq!(st["conditions"][0]["reason"], "Synced");
        assert_eq!(st["conditions"][0]["observedGeneration"], 3);
        assert!(!body.to_string().contains("hunter2") && !body.to_string().contains("aHVudGVyMg"));
        respond(send, 200, ss_reply(&body));

        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "POST");
        assert_eq!(p.uri.path(), "/apis/events.k8s.io/v1/namespaces/app/events");
        assert_eq!(body["reason"], "Synced");
        assert_eq!(body["type"], "Normal");
        assert_eq!(body["regarding"]["name"], "db");
        respond(send, 201, body);
    });
    let action = reconcile::reconcile(obj, ctx.clone()).await;
    assert!(action.is_ok(), "{action:?}");
    server.await.unwrap_or_else(|e| panic!("{e}"));
    assert!(ctx
        .metrics
        .render()
        .contains("gitseal_reconciles_total{result=\"success\"} 1"));
}

#[tokio::test]
async fn forbidden_apply_keeps_going_reports_and_fails() {
    let Setup {
        ctx,
        mut handle,
        identity,
    } = setup();
    let obj = Arc::new(object(&identity));
    let server = tokio::spawn(async move {
        let (_, _, send) = next(&mut handle).await; // GET
        respond(send, 404, status(404, "NotFound"));
        let (p, _, send) = next(&mut handle).await;
        assert_eq!(p.method, "PATCH");
        respond(send, 403, status(403, "Forbidden"));
        let (p, body, send) = next(&mut handle).await;
        assert!(p.uri.path().ends_with("/status"));
        assert_eq!(body["status"]["conditions"][0]["reason"], "ApplyFailed");
        assert_eq!(body["status"]["conditions"][0]["status"], "False");
        assert!(body["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("(403)"));
        respond(send, 200, ss_reply(&body));
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "POST");
        assert_eq!(body["type"], "Warning");
        respond(send, 201, body);
    });
    let err = reconcile::reconcile(obj.clone(), ctx.clone()).await.err();
    server.await.unwrap_or_else(|e| panic!("{e}"));
    match err {
        Some(Error::Kube(kube::Error::Api(s))) => assert_eq!(s.code, 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    assert!(ctx
        .metrics
        .render()
        .contains("gitseal_reconcile_failures_total{reason=\"KubernetesApi\"} 1"));
    // Backoff: as long again as the object has been failing, at least the
    // base, capped; a burst of failures does not double it.
    let a1 = reconcile::error_policy(obj.clone(), &Error::NoKeys, ctx.clone());
    assert_eq!(
        a1,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_millis(400))
    );
    let e = Error::NotOwned("x".into());
    for _ in 0..10 {
        assert_eq!(
            reconcile::error_policy(obj.clone(), &e, ctx.clone()),
            kube::runtime::controller::Action::requeue(std::time::Duration::from_millis(50))
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let capped = reconcile::error_policy(obj.clone(), &e, ctx.clone());
    assert_eq!(
        capped,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_millis(400))
    );
}

#[tokio::test]
async fn conflict_on_status_is_an_error_and_get_errors_propagate() {
    let Setup {
        ctx,
        mut handle,
        identity,
    } = setup();
    let obj = Arc::new(object(&identity));
    let server = tokio::spawn(async move {
        let (_, _, send) = next(&mut handle).await;
        respond(send, 404, status(404, "NotFound"));
        let (_, body, send) = next(&mut handle).await;
        respond(send, 200, body);
        let (p, _, send) = next(&mut handle).await;
        assert!(p.uri.path().ends_with("/status"));
        respond(send, 409, status(409, "Conflict"));
        // Second reconcile: the GET itself fails with 410.
        let (p, _, send) = next(&mut handle).await;
        assert_eq!(p.method, "GET");
        respond(send, 410, status(410, "Gone"));
    });
    match reconcile::reconcile(obj.clone(), ctx.clone()).await {
        Err(Error::Kube(kube::Error::Api(s))) => assert_eq!(s.code, 409),
        other => panic!("expected 409, got {other:?}"),
    }
    match reconcile::reconcile(obj, ctx).await {
        Err(Error::Kube(kube::Error::Api(s))) => assert_eq!(s.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    server.await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn failing_item_touches_no_secret() {
    let Setup {
        ctx,
        mut handle,
        identity,
    } = setup();
    let mut obj = object(&identity);
    let stranger = Identity::generate();
    obj.spec.encrypted_data.insert(
        "other".into(),
        seal_value(
            b"x",
            &[stranger.recipient().clone()],
            gitseal_crypto::Scope::Strict,
            "app",
            "db",
            "other",
        ),
    );
    let server = tokio::spawn(async move {
        // No GET/PATCH of the Secret: straight to the status.
        let (body, send) = next_status_patch(&mut handle).await;
        let c = &body["status"]["conditions"][0];
        assert_eq!(c["reason"], "UnknownKey");
        assert!(c["message"]
            .as_str()
            .unwrap_or_default()
            .contains("item \"other\""));
        assert!(body["status"].get("dataHash").is_none());
        respond(send, 200, ss_reply(&body));
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "POST");
        assert_eq!(body["reason"], "UnknownKey");
        respond(send, 201, body);
    });
    match reconcile::reconcile(Arc::new(obj), ctx).await {
        Err(Error::Items { reason, message }) => {
            assert_eq!(reason, gitseal_controller::Reason::UnknownKey);
            assert!(message.contains(&stranger.key_id().to_string()));
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    server.await.unwrap_or_else(|e| panic!("{e}"));
    let _ = BTreeMap::<String, String>::new();
}

fn empty_list() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "List", "metadata": {}, "items": []})
}

#[tokio::test]
async fn changed_data_restarts_opted_in_workloads_before_the_status() {
    let Setup {
        ctx,
        mut handle,
        identity,
    } = setup_with(true);
    let mut obj = object(&identity);
    obj.status = Some(gitseal_manifest::types::SealedSecretStatus {
        data_hash: Some("hmac-sha256:old".into()),
        ..Default::default()
    });
    let server = tokio::spawn(async move {
        // The Secret exists with old data.
        let (p, _, send) = next(&mut handle).await;
        assert_eq!(p.method, "GET");
        let mut existing = expected_secret_patch();
        existing["data"] = json!({"password": "b2xk"});
        respond(send, 200, existing);
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(
            (p.method.as_str(), p.uri.path()),
            ("PATCH", "/api/v1/namespaces/app/secrets/db")
        );
        respond(send, 200, body);

        // Deployments: one opted in (no hash yet: patched, the data changed),
        // one not opted in (left alone).
        let (p, _, send) = next(&mut handle).await;
        assert_eq!(p.uri.path(), "/apis/apps/v1/namespaces/app/deployments");
        let deployment = |name: &str, annotations: Value| {
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "app", "annotations": annotations},
                "spec": {"selector": {}, "template": {"metadata": {}}},
            })
        };
        respond(
            send,
            200,
            json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [
                deployment("web", json!({"gitseal.dev/restart-on-change": "cache, db"})),
                deployment("other", json!({})),
            ]}),
        );
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "PATCH");
        assert_eq!(p.uri.path(), "/apis/apps/v1/namespaces/app/deployments/web");
        assert_eq!(p.headers["content-type"], "application/merge-patch+json");
        let hash = body["spec"]["template"]["metadata"]["annotations"]
            ["gitseal.dev/secret-hash.db"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(hash.starts_with("hmac-sha256:"), "{body}");
        respond(send, 200, deployment("web", json!({})));
        for kind in ["statefulsets", "daemonsets"] {
            let (p, _, send) = next(&mut handle).await;
            assert_eq!(p.uri.path(), format!("/apis/apps/v1/namespaces/app/{kind}"));
            respond(send, 200, empty_list());
        }

        // Then the status, carrying the hash the workload got.
        let (body, send) = next_status_patch(&mut handle).await;
        assert_eq!(body["status"]["dataHash"], hash.as_str());
        respond(send, 200, ss_reply(&body));
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "POST");
        respond(send, 201, body);
    });
    let action = reconcile::reconcile(Arc::new(obj), ctx).await;
    assert!(action.is_ok(), "{action:?}");
    server.await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn invalid_refresh_interval_is_invalid_spec_and_touches_no_secret() {
    let Setup {
        ctx,
        mut handle,
        identity,
    } = setup_with(true);
    let mut obj = object(&identity);
    obj.spec.vault_data.insert(
        "token".into(),
        gitseal_manifest::types::VaultReference {
            mount: "secret".into(),
            path: "app/api".into(),
            field: "token".into(),
            version: None,
            kv: None,
        },
    );
    obj.spec.refresh_interval = Some("every hour".into());
    let server = tokio::spawn(async move {
        // No Vault read, no GET/PATCH of the Secret, no rollout: the status.
        let (body, send) = next_status_patch(&mut handle).await;
        let c = &body["status"]["conditions"][0];
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "InvalidSpec");
        assert!(
            c["message"]
                .as_str()
                .unwrap_or_default()
                .contains("spec.refreshInterval \"every hour\" is not a duration"),
            "{body}"
        );
        respond(send, 200, ss_reply(&body));
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "POST");
        assert_eq!(body["reason"], "InvalidSpec");
        respond(send, 201, body);
    });
    match reconcile::reconcile(Arc::new(obj), ctx).await {
        Err(Error::Items { reason, .. }) => {
            assert_eq!(reason, gitseal_controller::Reason::InvalidSpec)
        }
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
    server.await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn rollout_off_lists_no_workloads() {
    let Setup {
        ctx,
        mut handle,
        identity,
    } = setup_with(false);
    let obj = Arc::new(object(&identity));
    let server = tokio::spawn(async move {
        let (_, _, send) = next(&mut handle).await; // GET
        respond(send, 404, status(404, "NotFound"));
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.uri.path(), "/api/v1/namespaces/app/secrets/db");
        respond(send, 200, body);
        // Straight to the status: no apps/v1 list.
        let (body, send) = next_status_patch(&mut handle).await;
        respond(send, 200, ss_reply(&body));
        let (p, body, send) = next(&mut handle).await;
        assert_eq!(p.method, "POST");
        respond(send, 201, body);
    });
    let action = reconcile::reconcile(obj, ctx).await;
    assert!(action.is_ok(), "{action:?}");
    server.await.unwrap_or_else(|e| panic!("{e}"));
}

/// A reconcile (or retry) that finishes after its SealedSecret was deleted
/// does not put back the per-object state the deletion cleared.
#[tokio::test]
async fn state_written_after_a_deletion_is_dropped() {
    use kube::runtime::reflector;
    use kube::runtime::watcher;

    let s = setup();
    let obj = object(&s.identity);
    let (reader, mut writer) = reflector::store::<SealedSecret>();
    writer.apply_watcher_event(&watcher::Event::Apply(obj.clone()));
    s.ctx.watch_live(reader);
    let gauge = |ctx: &Context| {
        ctx.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("gitseal_values_sealed_to_retired_keys "))
            .map(|v| v.trim().to_string())
    };

    // Still live: a failure backs off as usual and the count stays.
    s.ctx.metrics.set_retired("app/db", 3);
    assert!(!s.ctx.forget_if_gone(&obj));
    let first = reconcile::error_policy(Arc::new(obj.clone()), &Error::NoKeys, s.ctx.clone());
    assert_ne!(first, kube::runtime::controller::Action::await_change());
    assert_eq!(gauge(&s.ctx).as_deref(), Some("3"));

    // Deleted while a reconcile was in flight; that reconcile then wrote its
    // retired-key count back. The retry sees the object gone and forgets it.
    writer.apply_watcher_event(&watcher::Event::Delete(obj.clone()));
    s.ctx.metrics.set_retired("app/db", 3);
    let after = reconcile::error_policy(Arc::new(obj.clone()), &Error::NoKeys, s.ctx.clone());
    assert_eq!(after, kube::runtime::controller::Action::await_change());
    assert_eq!(gauge(&s.ctx).as_deref(), Some("0"));

    // A new object of the same name (another uid) is not the deleted one.
    let mut again = obj.clone();
    again.metadata.uid = Some("uid-2".into());
    writer.apply_watcher_event(&watcher::Event::Apply(again.clone()));
    assert!(s.ctx.forget_if_gone(&obj));
    assert!(!s.ctx.forget_if_gone(&again));
}
