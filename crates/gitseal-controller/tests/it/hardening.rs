//! Attacks on the controller through what a tenant or a repository writer
//! controls (issue 9): planting a sealing key, the data hash as a guessing
//! oracle, oversized objects, and replacing an immutable Secret. Each test
//! performs the attack against the real controller on the fake API and
//! checks that nothing changed: Secret bytes, loaded keys, published key.

use std::time::Duration;

use gitseal_crypto::Identity;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::common::*;
use crate::fake_api::FakeApi;

fn key_ids(running: &Running) -> Vec<String> {
    running
        .handles
        .keys
        .current()
        .keys()
        .iter()
        .map(|k| k.identity.key_id().to_string())
        .collect()
}

fn published_active(fake: &FakeApi) -> Option<String> {
    fake.get("configmaps", NS, "gitseal-public-keys")
        .and_then(|c| c["data"]["active"].as_str().map(str::to_string))
}

/// A SealedSecret whose Secret would be an identity file labelled and dated
/// like a sealing key newer than any other: the attack of issue 9 §1.
fn planting_object(ns: &str, name: &str, attacker: &Identity, to: &Identity) -> Value {
    let file = attacker.to_identity_file(None);
    let mut obj = sealed_secret(
        ns,
        name,
        &[("identity.txt", file.expose_secret().as_bytes())],
        &[to.recipient().clone()],
    );
    obj["spec"]["template"] = json!({"metadata": {
        "labels": {"gitseal.dev/sealing-key": "true"},
        "annotations": {"gitseal.dev/created": "2099-01-01T00:00:00Z"},
    }});
    obj
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planting_a_sealing_key_through_a_sealed_secret_is_refused() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 3600);
    let running = start_with(&fake, config()).await;
    wait_for("ConfigMap published", 10, || published_active(&fake)).await;
    let addr = running
        .handles
        .http_addr
        .unwrap_or_else(|| panic!("no http"));
    let before_key = crate::process::http_get(addr, "/v1/key").await.1;
    assert_eq!(before_key.trim(), id.recipient().to_string());
    let attacker = Identity::generate();

    // In the controller's own namespace: refused (no flag allows it).
    fake.upsert(
        "sealedsecrets",
        NS,
        planting_object(NS, "gitseal-key-evil", &attacker, &id),
    );
    let (status, reason, message) = wait_ready(&fake, NS, "gitseal-key-evil", None).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "NamespaceNotAllowed")
    );
    assert!(
        message.contains("--allow-controller-namespace"),
        "{message}"
    );

    // In an application namespace: the reserved metadata is refused.
    fake.upsert(
        "sealedsecrets",
        "app",
        planting_object("app", "evil", &attacker, &id),
    );
    let (status, reason, message) = wait_ready(&fake, "app", "evil", None).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ReservedMetadata")
    );
    assert!(message.contains("gitseal.dev/sealing-key"), "{message}");
    assert!(message.contains("gitseal.dev/created"), "{message}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.get("secrets", NS, "gitseal-key-evil").is_none());
    assert!(fake.get("secrets", "app", "evil").is_none());
    assert_eq!(key_ids(&running), vec![id.key_id().to_string()]);
    assert_eq!(
        crate::process::http_get(addr, "/v1/key").await.1,
        before_key,
        "the published key changed"
    );
    assert_eq!(published_active(&fake), Some(id.recipient().to_string()));
    let stalled = fake
        .get("sealedsecrets", "app", "evil")
        .and_then(|o| {
            o.pointer("/status/conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Stalled")
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(
        stalled["status"], "True",
        "a refusal needs a person: Stalled"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_controller_namespace_still_refuses_reserved_metadata() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 3600);
    let mut cfg = config();
    cfg.allow_controller_namespace = true;
    let running = start_with(&fake, cfg).await;
    wait_for("keys", 10, || running.handles.keys.is_ready().then_some(())).await;
    let attacker = Identity::generate();
    fake.upsert(
        "sealedsecrets",
        NS,
        planting_object(NS, "gitseal-key-evil", &attacker, &id),
    );
    let (_, reason, _) = wait_ready(&fake, NS, "gitseal-key-evil", None).await;
    assert_eq!(reason, "ReservedMetadata");
    // An ordinary object there is allowed with the flag.
    fake.upsert(
        "sealedsecrets",
        NS,
        sealed_secret(NS, "plain", &[("k", b"v")], &[id.recipient().clone()]),
    );
    let (_, reason, _) = wait_ready(&fake, NS, "plain", None).await;
    assert_eq!(reason, "Synced");
    assert!(fake.get("secrets", NS, "gitseal-key-evil").is_none());
    assert_eq!(key_ids(&running), vec![id.key_id().to_string()]);
    running.shutdown().await;
}

/// What an older controller (or anyone) left behind: a Secret owned by a
/// SealedSecret that carries the key label and a far-future date; and an
/// operator-made key with a far-future date. Neither stops rotation, and
/// the first is never loaded at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_owned_by_a_sealed_secret_is_never_a_key_and_dates_do_not_stop_rotation() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 1);
    let planted = Identity::generate();
    let file = planted.to_identity_file(None);
    let b64 = crate::e2e::base64_encode(file.expose_secret().as_bytes());
    fake.upsert(
        "secrets",
        NS,
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {
                "name": "written-for-a-sealed-secret",
                "labels": {"gitseal.dev/sealing-key": "true",
                           "app.kubernetes.io/managed-by": "gitseal-controller"},
                "annotations": {"gitseal.dev/created": "2099-01-01T00:00:00Z"},
                "ownerReferences": [{"apiVersion": "gitseal.dev/v1alpha1", "kind": "SealedSecret",
                    "name": "written-for-a-sealed-secret", "uid": "0000-1", "controller": true}],
            },
            "data": {"identity.txt": b64},
        }),
    );
    let future = Identity::generate();
    let mut hand_made = gitseal_controller::keys::key_secret(
        &future,
        "2099-01-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    hand_made.metadata.namespace = Some(NS.into());
    let mut v = serde_json::to_value(&hand_made).unwrap_or_default();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Secret");
    fake.upsert("secrets", NS, v);

    let mut cfg = config();
    cfg.key_rotation_period = Duration::from_secs(2);
    let running = start_with(&fake, cfg).await;
    // Rotation goes on: a key the controller generated becomes active.
    let active = wait_for("a generated key is active", 15, || {
        let keys = running.handles.keys.current();
        let active = keys.active()?.identity.key_id();
        (active != id.key_id() && active != future.key_id()).then_some(active)
    })
    .await;
    assert_ne!(active, planted.key_id());
    assert!(!key_ids(&running).contains(&planted.key_id().to_string()));
    // The ConfigMap follows: a generated key, never the planted one.
    let never = [
        planted.recipient().to_string(),
        future.recipient().to_string(),
    ];
    wait_for("a generated key published", 10, || {
        published_active(&fake).filter(|p| !never.contains(p))
    })
    .await;
    running.shutdown().await;
}

/// A new key is announced: an Event on its Secret, a metric and a log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_announced() {
    let (fake, _, running) = keyed_controller().await;
    // Events come from the leader: a key added before this replica leads
    // is logged and counted only.
    let leading = running.handles.leading.clone();
    wait_for("leadership", 20, || (*leading.borrow()).then_some(())).await;
    let added = Identity::generate();
    add_key(&fake, &added, 1);
    let name = format!("gitseal-key-{}", added.key_id());
    let event = wait_for("an Event on the new key's Secret", 10, || {
        fake.list("events")
            .into_iter()
            .find(|e| e["regarding"]["name"] == name.as_str())
    })
    .await;
    assert_eq!(event["reason"], "SealingKeyAdded");
    let note = event["note"].as_str().unwrap_or_default();
    assert!(note.contains(&added.key_id().to_string()), "{note}");
    assert!(note.contains("active"), "{note}");
    let metrics = running.handles.metrics.render();
    assert!(
        metrics.contains("gitseal_sealing_key_changes_total{change=\"added\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gitseal_sealing_key_changes_total{change=\"activated\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("AGE-SECRET-KEY"));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_items_in_two_objects_give_different_hashes() {
    let (fake, id, running) = keyed_controller().await;
    let r = [id.recipient().clone()];
    // The victim's object and a tenant's guess with the same item and value.
    fake.upsert(
        "sealedsecrets",
        "victim",
        sealed_secret("victim", "db", &[("pin", b"1234")], &r),
    );
    fake.upsert(
        "sealedsecrets",
        "tenant",
        sealed_secret("tenant", "db", &[("pin", b"1234")], &r),
    );
    fake.upsert(
        "sealedsecrets",
        "tenant",
        sealed_secret("tenant", "guess", &[("pin", b"1234")], &r),
    );
    let hash = |ns: &str, name: &str| {
        fake.get("sealedsecrets", ns, name)
            .and_then(|o| o["status"]["dataHash"].as_str().map(str::to_string))
    };
    let a = wait_for("victim hash", 10, || hash("victim", "db")).await;
    let b = wait_for("tenant hash", 10, || hash("tenant", "db")).await;
    let c = wait_for("tenant guess hash", 10, || hash("tenant", "guess")).await;
    assert_ne!(
        a, b,
        "the same data in another namespace gives the same hash"
    );
    assert_ne!(b, c, "the same data under another name gives the same hash");
    assert!(a.starts_with("hmac-sha256:v2:"), "{a}");
    running.shutdown().await;
}

/// The keyed hash of the data as controllers before object binding wrote
/// it, computed here independently of the controller's code.
fn legacy_hash(key: &[u8], data: &[(&str, &[u8])]) -> String {
    use hmac::Mac;
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
    let mut sorted = data.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        mac.update(&(k.len() as u64).to_be_bytes());
        mac.update(k.as_bytes());
        mac.update(&(v.len() as u64).to_be_bytes());
        mac.update(v);
    }
    format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
}

/// Upgrading over objects whose status (and workloads) carry the old,
/// unbound hash writes nothing and restarts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_over_old_hashes_writes_nothing_and_restarts_nothing() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let hash_key = [42u8; 32];
    fake.upsert(
        "secrets",
        NS,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "gitseal-hash-key"},
               "data": {"key": crate::e2e::base64_encode(&hash_key)}}),
    );
    let r = [id.recipient().clone()];
    let items: [(&str, &[u8]); 2] = [("password", b"hunter2"), ("user", b"admin")];
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "db", &items, &r),
    );
    // First run: the Secret and the status exist as an old controller left them.
    let running = start_with(&fake, config()).await;
    wait_for("synced", 10, || {
        fake.get("sealedsecrets", "app", "db")
            .and_then(|o| ready(&o))
            .filter(|r| r.1 == "Synced")
    })
    .await;
    running.shutdown().await;
    let old = legacy_hash(&hash_key, &items);
    let mut obj = fake.get("sealedsecrets", "app", "db").unwrap_or_default();
    obj["status"]["dataHash"] = json!(old);
    fake.merge_patch(
        "sealedsecrets",
        "app",
        "db",
        &json!({"status": obj["status"]}),
    );
    assert_eq!(
        fake.get("sealedsecrets", "app", "db").unwrap_or_default()["status"]["dataHash"],
        old.as_str()
    );
    fake.upsert(
        "deployments",
        "app",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "app",
                            "annotations": {"gitseal.dev/restart-on-change": "db"}},
               "spec": {"template": {"metadata": {"annotations": {"gitseal.dev/secret-hash.db": old}}}}}),
    );

    // The upgraded controller starts over it.
    fake.record_requests();
    let mut cfg = config();
    cfg.rollout = true;
    let running = start_with(&fake, cfg).await;
    wait_for("keys", 10, || running.handles.keys.is_ready().then_some(())).await;
    wait_for("a reconcile", 10, || {
        (crate::process::metric_sum(
            &running.handles.metrics.render(),
            "gitseal_reconciles_total",
        ) >= 1.0)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|l| {
            (l.starts_with("PATCH")
                || l.starts_with("PUT")
                || l.starts_with("POST")
                || l.starts_with("DELETE"))
                && !l.contains("/leases")
                && !l.contains("/configmaps")
                && !l.contains("/events")
        })
        .collect();
    assert!(writes.is_empty(), "writes on upgrade: {writes:?}");
    let web = fake.get("deployments", "app", "web").unwrap_or_default();
    assert_eq!(
        web["spec"]["template"]["metadata"]["annotations"]["gitseal.dev/secret-hash.db"],
        old.as_str()
    );

    // When the data really changes, the new, bound hash is written and the
    // workload restarts once.
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret(
            "app",
            "db",
            &[("password", b"changed"), ("user", b"admin")],
            &r,
        ),
    );
    let new = wait_for("new hash", 10, || {
        fake.get("sealedsecrets", "app", "db")
            .and_then(|o| o["status"]["dataHash"].as_str().map(str::to_string))
            .filter(|h| *h != old)
    })
    .await;
    assert!(new.starts_with("hmac-sha256:v2:"), "{new}");
    let web = fake.get("deployments", "app", "web").unwrap_or_default();
    assert_eq!(
        web["spec"]["template"]["metadata"]["annotations"]["gitseal.dev/secret-hash.db"],
        new.as_str()
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_for_a_secret_is_refused_and_nothing_written() {
    let (fake, id, running) = keyed_controller().await;
    let r = [id.recipient().clone()];
    // Two items of 600 KiB: each fits, together they exceed 1 MiB.
    let big = vec![b'x'; 600 * 1024];
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "big", &[("a", &big), ("b", &big)], &r),
    );
    let (status, reason, message) = wait_ready(&fake, "app", "big", None).await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "TooLarge"));
    assert!(message.contains("1048576"), "{message}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fake.get("secrets", "app", "big").is_none());

    // Shrunk below the limit, it syncs.
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "big", &[("a", &big)], &r),
    );
    let secret = wait_for("Secret", 10, || fake.get("secrets", "app", "big")).await;
    assert_eq!(secret_data(&secret)["a"].len(), big.len());
    running.shutdown().await;
}

/// Replacing an immutable Secret: a new Secret the API refuses (dry run)
/// never deletes the old one, and a write that fails after the delete puts
/// the old one back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_replacement_never_loses_the_old_secret() {
    let (fake, id, running) = keyed_controller().await;
    let r = [id.recipient().clone()];
    let object = |value: &[u8]| {
        let mut o = sealed_secret("app", "imm", &[("a", value)], &r);
        o["spec"]["template"] = json!({"immutable": true});
        o
    };
    fake.upsert("sealedsecrets", "app", object(b"one"));
    let first = wait_for("immutable Secret", 10, || fake.get("secrets", "app", "imm")).await;
    let first_bytes = fake.get_bytes("secrets", "app", "imm").unwrap_or_default();

    // The API refuses the new Secret (an admission webhook, a quota).
    let dry_runs = || {
        fake.request_tally()
            .get("create secrets")
            .copied()
            .unwrap_or(0)
    };
    let before = dry_runs();
    fake.fail(Some(http::Method::POST), "dryRun=All", 422, 1000);
    fake.upsert("sealedsecrets", "app", object(b"two"));
    let (_, reason, message) = wait_for("ApplyFailed", 10, || {
        fake.get("sealedsecrets", "app", "imm")
            .and_then(|o| ready(&o))
            .filter(|r| r.1 == "ApplyFailed")
    })
    .await;
    assert_eq!(reason, "ApplyFailed");
    assert!(message.contains("kept"), "{message}");
    // Refused again on a retry, and still nothing else happened.
    wait_for("a retried dry run", 10, || {
        (dry_runs() >= before + 2).then_some(())
    })
    .await;
    assert_eq!(
        fake.get_bytes("secrets", "app", "imm").unwrap_or_default(),
        first_bytes,
        "the old Secret was touched"
    );
    fake.clear_faults();

    // The new Secret passes the dry run, but writing it fails after the old
    // one was deleted: the old one is put back.
    fake.fail(
        Some(http::Method::PATCH),
        "/namespaces/app/secrets/imm?",
        500,
        1000,
    );
    fake.upsert("sealedsecrets", "app", object(b"three"));
    wait_for("ApplyFailed for three", 10, || {
        fake.get("sealedsecrets", "app", "imm")
            .and_then(|o| ready(&o))
            .filter(|r| r.1 == "ApplyFailed" && r.2.contains("put back"))
    })
    .await;
    // A retry may be between its delete and its put-back: wait until the
    // old Secret is back, then it must be the old one.
    let kept = wait_for("the old Secret back", 10, || {
        fake.get("secrets", "app", "imm")
    })
    .await;
    assert_eq!(secret_data(&kept)["a"], b"one");
    assert_eq!(kept["immutable"], true);
    assert_ne!(kept["metadata"]["uid"], first["metadata"]["uid"]);
    fake.clear_faults();
    let replaced = wait_for("replaced", 10, || {
        fake.get("secrets", "app", "imm")
            .filter(|s| secret_data(s)["a"] == b"three")
    })
    .await;
    assert_eq!(replaced["immutable"], true);
    running.shutdown().await;
}

/// A SealedSecret whose template asks for a service-account token Secret
/// for `account`: Kubernetes would fill it with a token of that account.
fn token_object(ns: &str, name: &str, id: &Identity, account: &str) -> Value {
    let mut obj = sealed_secret(ns, name, &[("note", b"x")], &[id.recipient().clone()]);
    obj["spec"]["template"] = json!({
        "type": "kubernetes.io/service-account-token",
        "metadata": {"annotations": {"kubernetes.io/service-account.name": account}},
    });
    obj
}

/// Issue 10 §3: a tenant who may only commit SealedSecrets could otherwise
/// mint a token for any service account of their namespace through the
/// controller's write rights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_token_secrets_are_refused_unless_allowed() {
    let (fake, id, running) = keyed_controller().await;
    // A new object asking for a token: refused, nothing written.
    fake.upsert(
        "sealedsecrets",
        "app",
        token_object("app", "mint", &id, "admin"),
    );
    let (status, _, message) = wait_ready(&fake, "app", "mint", Some("SecretTypeNotAllowed")).await;
    assert_eq!(status, "False");
    assert!(
        message.contains("kubernetes.io/service-account-token")
            && message.contains("--allow-service-account-token-secrets"),
        "{message}"
    );
    let stalled = fake
        .get("sealedsecrets", "app", "mint")
        .and_then(|o| {
            o.pointer("/status/conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Stalled")
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(
        stalled["status"], "True",
        "a refusal needs a person: Stalled"
    );

    // A synced object changed into one: refused, its Secret kept as it was.
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret(
            "app",
            "db",
            &[("password", b"pw")],
            &[id.recipient().clone()],
        ),
    );
    wait_ready(&fake, "app", "db", Some("Synced")).await;
    let before = fake
        .get_bytes("secrets", "app", "db")
        .unwrap_or_else(|| panic!("no Secret"));
    fake.upsert(
        "sealedsecrets",
        "app",
        token_object("app", "db", &id, "admin"),
    );
    wait_ready(&fake, "app", "db", Some("SecretTypeNotAllowed")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.get("secrets", "app", "mint").is_none());
    assert_eq!(fake.get_bytes("secrets", "app", "db"), Some(before));
    running.shutdown().await;

    // The operator allows them: written with the type.
    let mut cfg = config();
    cfg.allow_service_account_tokens = true;
    let running = start_with(&fake, cfg).await;
    wait_ready(&fake, "app", "mint", Some("Synced")).await;
    let secret = fake
        .get("secrets", "app", "mint")
        .unwrap_or_else(|| panic!("no Secret"));
    assert_eq!(secret["type"], "kubernetes.io/service-account-token");
    running.shutdown().await;
}
