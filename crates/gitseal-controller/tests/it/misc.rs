//! No plaintext anywhere; the generated CRD is current; startup (TLS
//! provider), flags, key Secrets, HTTP handlers and their error paths.

use std::time::Duration;

use serde::Deserialize as _;

use base64::Engine as _;
use gitseal_controller::http::{handle, HttpState};
use gitseal_controller::keys::{self, KeyStore};
use gitseal_controller::metrics::Metrics;
use gitseal_controller::{parse_duration, Error};
use gitseal_crypto::{Identity, Scope};

use http::Method;
use serde_json::json;

use crate::common::*;
use crate::fake_api::FakeApi;

const CANARIES: [&[u8]; 4] = [
    b"CANARY-pw-91f3c2e0",
    b"CANARY-token-5d7a0b44",
    b"CANARY-moved-0c8e7f12",
    b"CANARY-unowned-a1b2c3d4",
];

fn forms(value: &[u8]) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        String::from_utf8_lossy(value).into_owned(),
        b64.encode(value),
        // base64 without the tail, as it would appear inside a longer encoding
        b64.encode(value)
            .trim_end_matches('=')
            .chars()
            .take(16)
            .collect(),
        hex::encode(value),
    ]
}

#[test]
fn no_plaintext_in_logs_events_status_or_metrics() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let (fake, metrics) = rt.block_on(async {
        let fake = FakeApi::new();
        let id = Identity::generate();
        add_key(&fake, &id, 60);
        let running = start_with(&fake, config()).await;
        let r = [id.recipient().clone()];
        // Synced, then tampered (DecryptFailed).
        let good = sealed_secret("app", "db", &[("password", CANARIES[0]), ("token", CANARIES[1])], &r);
        fake.upsert("sealedsecrets", "app", good.clone());
        wait_for("synced", 10, || fake.get("sealedsecrets", "app", "db").and_then(|o| ready(&o)).filter(|r| r.1 == "Synced")).await;
        let mut bad = good;
        let t = bad["spec"]["encryptedData"]["token"].as_str().unwrap_or_default().to_string();
        let mut body = crate::e2e::base64_decode(t.trim_start_matches("gs1:"));
        let last = body.len() - 1;
        body[last] ^= 0x40;
        bad["spec"]["encryptedData"]["token"] = json!(format!("gs1:{}", crate::e2e::base64_encode(&body)));
        // And one item moved from another item key.
        bad["spec"]["encryptedData"]["zz-moved"] = json!(seal_value(CANARIES[0], &r, Scope::Strict, "app", "db", "password"));
        fake.upsert("sealedsecrets", "app", bad);
        // Moved to another namespace (ScopeMismatch).
        let mut moved = sealed_secret("app", "m", &[("k", CANARIES[2])], &r);
        moved["metadata"]["namespace"] = json!("elsewhere");
        fake.upsert("sealedsecrets", "elsewhere", moved);
        // Unowned Secret (SecretNotOwned).
        fake.upsert("secrets", "app", json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "u", "namespace": "app"}, "data": {}}));
        fake.upsert("sealedsecrets", "app", sealed_secret("app", "u", &[("k", CANARIES[3])], &r));
        for (ns, name, reason) in [("app", "db", "DecryptFailed"), ("elsewhere", "m", "ScopeMismatch"), ("app", "u", "SecretNotOwned")] {
            wait_for(reason, 10, || fake.get("sealedsecrets", ns, name).and_then(|o| ready(&o)).filter(|r| r.1 == reason)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let addr = running.handles.http_addr.unwrap_or_else(|| panic!("no http"));
        let (_, metrics) = crate::e2e::http_get(addr, "/metrics").await;
        let (_, keys) = crate::e2e::http_get(addr, "/v1/keys").await;
        running.shutdown().await;
        (fake, metrics + &keys)
    });
    let logs = logs.text();
    assert!(
        logs.contains("Secret written"),
        "the capture must hold the controller's logs"
    );
    let events = serde_json::to_string(&fake.list("events")).unwrap_or_default();
    assert!(
        events.contains("DecryptFailed")
            && events.contains("ScopeMismatch")
            && events.contains("SecretNotOwned")
    );
    let statuses: Vec<_> = fake
        .list("sealedsecrets")
        .into_iter()
        .map(|o| o["status"].clone())
        .collect();
    let statuses = serde_json::to_string(&statuses).unwrap_or_default();
    let configmaps = serde_json::to_string(&fake.list("configmaps")).unwrap_or_default();
    for canary in CANARIES {
        for form in forms(canary) {
            for (what, text) in [
                ("logs", &logs),
                ("events", &events),
                ("status", &statuses),
                ("metrics", &metrics),
                ("configmaps", &configmaps),
            ] {
                assert!(
                    !text.contains(&form),
                    "{what} contain a plaintext form {form:?}"
                );
            }
        }
    }
    // The Secret itself does hold the value (the point of the controller).
    let secret = fake.get("secrets", "app", "db").unwrap_or_default();
    assert_eq!(secret_data(&secret)["password"], CANARIES[0]);
    // And no private key material is logged either.
    assert!(!logs.contains("AGE-SECRET-KEY"), "a private key was logged");
}

#[test]
fn crd_yaml_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crd.yaml");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = gitseal_controller::crd::crd_yaml().unwrap_or_else(|e| panic!("{e}"));
    assert!(generated.contains("kind: CustomResourceDefinition"));
    assert!(generated.contains("sealedsecrets.gitseal.dev"));
    assert!(generated.contains("subresources"));
    assert!(
        on_disk == generated,
        "deploy/crd.yaml is stale: run `cargo run -p gitseal-controller -- crd > deploy/crd.yaml`"
    );
}

#[test]
fn durations_parse_and_bad_ones_are_refused() {
    assert_eq!(
        parse_duration("720h").ok(),
        Some(Duration::from_secs(720 * 3600))
    );
    assert_eq!(
        parse_duration("30d").ok(),
        Some(Duration::from_secs(30 * 86400))
    );
    assert_eq!(
        parse_duration("1h30m").ok(),
        Some(Duration::from_secs(5400))
    );
    assert_eq!(parse_duration("90s").ok(), Some(Duration::from_secs(90)));
    assert_eq!(parse_duration("0").ok(), Some(Duration::ZERO));
    for bad in ["", "h", "12", "5x", "10ms", "-1h", "99999999999999999999h"] {
        match parse_duration(bad) {
            Err(Error::InvalidDuration(_)) => {}
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    let msg = parse_duration("5x")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        msg,
        "invalid duration \"5x\": expected e.g. 720h, 30m, 90s, 30d or 0"
    );
}

#[test]
fn key_secrets_round_trip_and_bad_ones_are_refused() {
    let id = Identity::generate();
    let now = k8s_openapi::jiff::Timestamp::now();
    let secret = keys::key_secret(&id, now);
    let back = keys::keys_from_secret(&secret).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].identity.key_id(), id.key_id());
    assert_eq!(back[0].created, now);
    // Debug never shows the key.
    let dbg = format!("{:?}", back[0]);
    assert!(!dbg.contains("AGE-SECRET-KEY"), "{dbg}");

    let mut broken = secret.clone();
    broken.data = Some(
        [(
            "identity.txt".to_string(),
            k8s_openapi::ByteString(b"AGE-SECRET-KEY-1NOPE".to_vec()),
        )]
        .into(),
    );
    let err = keys::keys_from_secret(&broken)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("invalid identity on line 1"), "{err}");
    assert!(
        !err.contains("NOPE"),
        "the error repeats the key text: {err}"
    );
    let mut empty = secret;
    empty.data = None;
    let err = keys::keys_from_secret(&empty)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.ends_with("holds no identity"), "{err}");
    // A bad Secret is skipped, the good one kept.
    let good = keys::key_secret(&id, now);
    let set = keys::key_set_from_secrets([&broken, &good]);
    assert_eq!(set.len(), 1);
}

#[test]
fn import_identity_file_makes_one_secret_per_key() {
    let a = Identity::generate();
    let b = Identity::generate();
    let file = format!(
        "# created: x\n{}\n\n{}\n",
        a.to_secret_string().expose(),
        b.to_secret_string().expose()
    );
    let now = k8s_openapi::jiff::Timestamp::now();
    let secrets =
        keys::import_identity_file(&file, "keys.txt", now).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(secrets.len(), 2);
    assert_eq!(
        secrets[0].metadata.name.as_deref(),
        Some(format!("gitseal-key-{}", a.key_id()).as_str())
    );
    assert_eq!(
        secrets[1]
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("gitseal.dev/sealing-key"))
            .map(String::as_str),
        Some("true")
    );
    match keys::import_identity_file("hello\n", "keys.txt", now) {
        Err(e) => assert_eq!(e.to_string(), "sealing key keys.txt: invalid identity on line 1: expected an age X25519 identity (AGE-SECRET-KEY-1…)"),
        Ok(_) => panic!("garbage accepted"),
    }
    match keys::import_identity_file("# only a comment\n", "k", now) {
        Err(e) => assert!(e.to_string().contains("no identity found"), "{e}"),
        Ok(_) => panic!("empty file accepted"),
    }
}

trait Expose {
    fn expose(&self) -> String;
}
impl Expose for secrecy::SecretString {
    fn expose(&self) -> String {
        use secrecy::ExposeSecret;
        self.expose_secret().to_string()
    }
}

#[test]
fn http_handlers_answer_before_and_after_keys() {
    use gitseal_controller::health::{CrdState, Health};
    let store = std::sync::Arc::new(KeyStore::new());
    let health = std::sync::Arc::new(Health::new(store.clone()));
    let state = HttpState {
        keys: store.clone(),
        metrics: std::sync::Arc::new(Metrics::new()),
        health: health.clone(),
    };
    assert_eq!(handle(&state, &Method::GET, "/readyz").status(), 503);
    assert_eq!(handle(&state, &Method::GET, "/v1/key").status(), 503);
    assert_eq!(handle(&state, &Method::GET, "/healthz").status(), 200);
    assert_eq!(handle(&state, &Method::POST, "/v1/keys").status(), 405);
    let id = Identity::generate();
    store.replace(keys::KeySet::new(vec![keys::SealingKey {
        identity: id,
        created: k8s_openapi::jiff::Timestamp::now(),
        secret_name: "s".into(),
    }]));
    assert_eq!(handle(&state, &Method::GET, "/v1/key").status(), 200);
    // Keys alone are not enough: the CRD must be served too.
    let body = |r: http::Response<http_body_util::Full<bytes::Bytes>>| {
        let status = r.status().as_u16();
        let bytes = futures::executor::block_on(http_body_util::BodyExt::collect(r.into_body()))
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    };
    let (code, text) = body(handle(&state, &Method::GET, "/readyz"));
    assert_eq!(code, 503);
    assert_eq!(
        text,
        "not ready:\nchecking whether the sealedsecrets.gitseal.dev CRD is installed\n"
    );
    health.set_crd(CrdState::Missing);
    let (code, text) = body(handle(&state, &Method::GET, "/readyz"));
    assert_eq!(code, 503);
    assert!(
        text.contains("the sealedsecrets.gitseal.dev CRD is not installed: apply deploy/crd.yaml"),
        "{text}"
    );
    health.set_crd(CrdState::Installed);
    assert_eq!(
        body(handle(&state, &Method::GET, "/readyz")),
        (200, "ready\n".into())
    );
}

#[test]
fn hash_key_must_be_long_enough_and_hash_is_keyed() {
    match gitseal_controller::hash::DataHasher::new(b"short") {
        Err(e) => assert_eq!(
            e.to_string(),
            "sealing key gitseal-hash-key: the hash key is shorter than 16 bytes"
        ),
        Ok(_) => panic!("short key accepted"),
    }
    let data: std::collections::BTreeMap<String, secrecy::SecretSlice<u8>> =
        [("a".to_string(), secrecy::SecretSlice::from(b"1".to_vec()))].into();
    let hasher = |key: u8| {
        gitseal_controller::hash::DataHasher::new(&[key; 32]).unwrap_or_else(|e| panic!("{e}"))
    };
    let h1 = hasher(1).hash("app", "db", &data);
    let h2 = hasher(2).hash("app", "db", &data);
    assert_ne!(h1, h2, "the hash must depend on the key");
    assert!(
        h1.starts_with("hmac-sha256:v2:") && h1.len() == 15 + 64,
        "{h1}"
    );
    // Bound to the object: the same data elsewhere hashes differently, and
    // the namespace/name boundary is unambiguous.
    assert_ne!(h1, hasher(1).hash("other", "db", &data));
    assert_ne!(h1, hasher(1).hash("app", "db2", &data));
    assert_ne!(
        hasher(1).hash("ab", "c", &data),
        hasher(1).hash("a", "bc", &data)
    );
    assert!(hasher(1).is_current(&h1, "app", "db", &data));
    assert!(!hasher(1).is_current(&h1, "other", "db", &data));
    assert!(!hasher(2).is_current(&h1, "app", "db", &data));
    assert!(!hasher(1).is_current("sha256:whatever", "app", "db", &data));
    assert!(!hasher(1).is_current("hmac-sha256:00", "app", "db", &data));
}

#[tokio::test]
async fn hash_key_secret_missing_item_is_an_error() {
    let fake = FakeApi::new();
    fake.upsert("secrets", NS, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gitseal-hash-key"}, "data": {}}));
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(fake.client(), NS);
    match gitseal_controller::hash::DataHasher::load_or_create(&api).await {
        Err(e) => assert_eq!(
            e.to_string(),
            "sealing key gitseal-hash-key: the Secret has no data item \"key\""
        ),
        Ok(_) => panic!("accepted"),
    }
    // 403 on reading it is reported as an API error.
    let fake = FakeApi::new();
    fake.fail(None, "gitseal-hash-key", 403, 1);
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(fake.client(), NS);
    assert!(matches!(
        gitseal_controller::hash::DataHasher::load_or_create(&api).await,
        Err(Error::Kube(_))
    ));
}

#[tokio::test]
async fn leader_lease_is_created_renewed_and_contested() {
    use gitseal_controller::leader::{Elector, LeaderConfig};
    let fake = FakeApi::new();
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(fake.client(), NS);
    let mut cfg = LeaderConfig::new("l", "a");
    cfg.lease_duration = Duration::from_secs(1);
    let mut a = Elector::new(api.clone(), cfg.clone());
    let mut b = Elector::new(
        api.clone(),
        LeaderConfig {
            identity: "b".into(),
            ..cfg
        },
    );
    assert_eq!(a.try_acquire_or_renew().await.ok(), Some(true));
    assert_eq!(b.try_acquire_or_renew().await.ok(), Some(false));
    assert_eq!(a.try_acquire_or_renew().await.ok(), Some(true), "renewal");
    // a stops renewing: after the lease duration b takes over.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        b.try_acquire_or_renew().await.ok(),
        Some(false),
        "b must first observe an unchanged record for a full lease duration"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(b.try_acquire_or_renew().await.ok(), Some(true));
    assert_eq!(a.try_acquire_or_renew().await.ok(), Some(false));
    // Release lets the other side in at once.
    b.release().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.try_acquire_or_renew().await.ok(), Some(true));
    // A conflicting write (409) is a lost race, not an error.
    fake.fail(Some(Method::PUT), "/leases/l", 409, 1);
    assert_eq!(a.try_acquire_or_renew().await.ok(), Some(false));
    // Other API errors surface.
    fake.fail(Some(Method::GET), "/leases/l", 403, 1);
    assert!(a.try_acquire_or_renew().await.is_err());
}

#[test]
fn deploy_base_is_complete_and_least_privilege() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("deploy/{f}: {e}"))
    };
    let kustomization: serde_yaml::Value =
        serde_yaml::from_str(&read("kustomization.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let resources: Vec<String> = kustomization["resources"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for f in [
        "namespace.yaml",
        "crd.yaml",
        "serviceaccount.yaml",
        "rbac.yaml",
        "deployment.yaml",
        "service.yaml",
    ] {
        assert!(
            resources.iter().any(|r| r == f),
            "{f} is not in kustomization.yaml"
        );
        assert!(dir.join(f).exists());
    }
    let deployment: serde_yaml::Value =
        serde_yaml::from_str(&read("deployment.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"]["runAsNonRoot"],
        serde_yaml::Value::Bool(true)
    );
    let c = &pod["containers"][0];
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"],
        serde_yaml::Value::Bool(true)
    );
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"],
        serde_yaml::Value::Bool(false)
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert!(c["resources"]["limits"]["memory"].is_string());
    // RBAC: no wildcards, and nothing cluster-wide beyond what reconcile needs.
    let rbac = read("rbac.yaml");
    assert!(!rbac.contains("\"*\""), "wildcard in RBAC");
    for doc in serde_yaml::Deserializer::from_str(&rbac) {
        let v = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{e}"));
        if v["kind"].as_str() == Some("ClusterRole") {
            let strs = |v: &serde_yaml::Value| -> Vec<String> {
                v.as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            };
            let rules: Vec<(Vec<String>, Vec<String>, Vec<String>)> = v["rules"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        strs(&r["apiGroups"]),
                        strs(&r["resources"]),
                        strs(&r["verbs"]),
                    )
                })
                .collect();
            let s = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            assert_eq!(
                rules,
                [
                    (
                        s(&["gitseal.dev"]),
                        s(&["sealedsecrets"]),
                        s(&["get", "list", "watch"])
                    ),
                    (
                        s(&["gitseal.dev"]),
                        s(&["sealedsecrets/status"]),
                        s(&["get", "patch", "update"])
                    ),
                    (
                        s(&[""]),
                        s(&["secrets"]),
                        s(&["get", "list", "watch", "create", "patch", "update", "delete"])
                    ),
                    (
                        s(&["events.k8s.io"]),
                        s(&["events"]),
                        s(&["create", "patch"])
                    ),
                ]
            );
        }
    }
    // Rollout on change is opt-in: off in the Deployment, its RBAC apart,
    // and only list, watch and patch on workloads, never get/update/delete.
    let args = c["args"].as_sequence().cloned().unwrap_or_default();
    assert!(
        args.iter()
            .any(|a| a.as_str() == Some("--rollout-on-change=false")),
        "{args:?}"
    );
    let rollout = read("rbac-rollout.yaml");
    assert!(!resources.iter().any(|r| r == "rbac-rollout.yaml"));
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&rollout)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let role = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("ClusterRole"))
        .unwrap_or_else(|| panic!("no ClusterRole in rbac-rollout.yaml"));
    assert_eq!(
        serde_yaml::to_string(&role["rules"]).unwrap_or_default(),
        "- apiGroups:\n  - apps\n  resources:\n  - deployments\n  - statefulsets\n  - daemonsets\n  verbs:\n  - list\n  - watch\n  - patch\n"
    );
    assert!(docs
        .iter()
        .any(|d| d["kind"].as_str() == Some("ClusterRoleBinding")
            && d["roleRef"]["name"].as_str() == Some("gitseal-controller-rollout")));
}

#[test]
fn retired_gauge_forgets_deleted_and_unlisted_objects() {
    let m = Metrics::new();
    let gauge = |m: &Metrics| {
        m.render()
            .lines()
            .find_map(|l| l.strip_prefix("gitseal_values_sealed_to_retired_keys "))
            .map(|v| v.trim().to_string())
    };
    m.set_retired("a/x", 2);
    m.set_retired("a/y", 3);
    m.set_retired("b/z", 4);
    assert_eq!(gauge(&m).as_deref(), Some("9"));
    m.forget("a/x");
    assert_eq!(gauge(&m).as_deref(), Some("7"));
    // After a relist only the listed objects keep their counts.
    m.retain_retired(|id| id == "a/y");
    assert_eq!(gauge(&m).as_deref(), Some("3"));
    m.set_retired("a/y", 0);
    assert_eq!(gauge(&m).as_deref(), Some("0"));
    m.set_retired("c/w", 5);
    // Leadership lost: this replica reports nothing any more.
    m.clear_retired();
    assert_eq!(gauge(&m).as_deref(), Some("0"));
}

#[test]
fn cached_sealed_secrets_drop_managed_fields_and_last_applied() {
    let mut obj: gitseal_manifest::SealedSecret = serde_json::from_value(json!({
        "apiVersion": "gitseal.dev/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {
            "name": "db",
            "namespace": "app",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"big\":\"copy\"}",
                "team": "payments",
            },
            "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
        },
        "spec": {"encryptedData": {"a": "gs1:x"}},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    gitseal_controller::reconcile::strip_for_cache(&mut obj);
    assert!(obj.metadata.managed_fields.is_none());
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.len(), 2);
    assert_eq!(
        annotations.get("team").map(String::as_str),
        Some("payments")
    );
    // The sealed values are not cached either (the marker says so).
    assert!(obj.spec.encrypted_data.is_empty());
    assert!(annotations.contains_key(gitseal_controller::reconcile::SPEC_NOT_CACHED));

    let mut only_last_applied: gitseal_manifest::SealedSecret = serde_json::from_value(json!({
        "apiVersion": "gitseal.dev/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "app", "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    gitseal_controller::reconcile::strip_for_cache(&mut only_last_applied);
    assert!(only_last_applied.metadata.annotations.is_none());
}
