//! End to end: the real kube-runtime Controller against the fake API.

use std::time::Duration;

use gitseal_controller::leader::LeaderConfig;
use gitseal_crypto::{Identity, Scope};
use serde_json::{json, Value};

use crate::common::*;
use crate::fake_api::FakeApi;

async fn with_key() -> (FakeApi, Identity, Running) {
    keyed_controller().await
}

fn secret_of(fake: &FakeApi, ns: &str, name: &str) -> Option<Value> {
    fake.get("secrets", ns, name)
}

async fn wait_reason(
    fake: &FakeApi,
    ns: &str,
    name: &str,
    reason: &str,
) -> (String, String, String) {
    wait_ready(fake, ns, name, Some(reason)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_edit_delete_put_back() {
    let (fake, id, running) = with_key().await;
    let mut obj = sealed_secret(
        "app",
        "db",
        &[("password", b"hunter2"), ("user", b"admin")],
        &[id.recipient().clone()],
    );
    obj["spec"]["template"] = json!({
        "type": "kubernetes.io/basic-auth",
        "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
    });
    let stored = fake.upsert("sealedsecrets", "app", obj);
    let uid = stored["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let secret = wait_for("Secret created", 10, || secret_of(&fake, "app", "db")).await;
    let data = secret_data(&secret);
    assert_eq!(
        data.get("password").map(Vec::as_slice),
        Some(&b"hunter2"[..])
    );
    assert_eq!(data.get("user").map(Vec::as_slice), Some(&b"admin"[..]));
    assert_eq!(secret["type"], "kubernetes.io/basic-auth");
    assert_eq!(secret["metadata"]["labels"]["team"], "a");
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "gitseal-controller"
    );
    assert_eq!(secret["metadata"]["annotations"]["note"], "x");
    let owner = &secret["metadata"]["ownerReferences"][0];
    assert_eq!(owner["uid"], uid.as_str());
    assert_eq!(owner["kind"], "SealedSecret");
    assert_eq!(owner["controller"], true);

    let (status, _, message) = wait_reason(&fake, "app", "db", "Synced").await;
    assert_eq!(status, "True");
    assert!(message.contains("2 item"), "{message}");
    let sealed = fake.get("sealedsecrets", "app", "db").unwrap_or_default();
    assert_eq!(sealed["status"]["keyIds"], json!([id.key_id().to_string()]));
    assert_eq!(sealed["status"]["observedGeneration"], 1);
    let hash = sealed["status"]["dataHash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        hash.starts_with("hmac-sha256:v2:") && hash.len() == 15 + 64,
        "{hash}"
    );
    assert!(sealed["status"]["lastSyncTime"].is_string());

    // Edit the Secret by hand: it is put back.
    let mut edited = secret.clone();
    edited["data"]["password"] = json!("d3Jvbmc="); // "wrong"
    fake.upsert("secrets", "app", edited);
    wait_for("edited Secret put back", 10, || {
        secret_of(&fake, "app", "db")
            .filter(|s| secret_data(s).get("password").map(Vec::as_slice) == Some(&b"hunter2"[..]))
    })
    .await;

    // Delete it: it is recreated.
    assert!(fake.remove("secrets", "app", "db"));
    wait_for("deleted Secret recreated", 10, || {
        secret_of(&fake, "app", "db")
    })
    .await;

    // Only one Synced event despite the put-backs (the data hash did not change).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let synced = fake
        .list("events")
        .into_iter()
        .filter(|e| e["reason"] == "Synced" && e["regarding"]["name"] == "db")
        .count();
    assert_eq!(synced, 1, "events: {:?}", fake.list("events"));

    // Deleting the SealedSecret garbage-collects the Secret (owner reference).
    fake.remove("sealedsecrets", "app", "db");
    assert!(secret_of(&fake, "app", "db").is_none());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_value_keeps_old_secret_byte_identical() {
    let (fake, id, running) = with_key().await;
    let obj = sealed_secret(
        "app",
        "db",
        &[("password", b"hunter2"), ("token", b"t0k")],
        &[id.recipient().clone()],
    );
    fake.upsert("sealedsecrets", "app", obj.clone());
    wait_reason(&fake, "app", "db", "Synced").await;
    let before = fake.get_bytes("secrets", "app", "db").unwrap_or_default();

    // Flip one byte in the ciphertext of "token" and add a new good item.
    let good = seal_value(
        b"new",
        &[id.recipient().clone()],
        Scope::Strict,
        "app",
        "db",
        "extra",
    );
    let mut tampered = obj;
    let t = tampered["spec"]["encryptedData"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut body = base64_decode(t.trim_start_matches("gs1:"));
    let last = body.len() - 1;
    body[last] ^= 1;
    tampered["spec"]["encryptedData"]["token"] = json!(format!("gs1:{}", base64_encode(&body)));
    tampered["spec"]["encryptedData"]["extra"] = json!(good);
    fake.upsert("sealedsecrets", "app", tampered);

    let (status, _, message) = wait_reason(&fake, "app", "db", "DecryptFailed").await;
    assert_eq!(status, "False");
    assert!(message.contains("item \"token\""), "{message}");
    assert!(message.contains("left unchanged"), "{message}");
    // Retries happen (backoff), and never touch the Secret.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        fake.get_bytes("secrets", "app", "db").unwrap_or_default(),
        before
    );
    let sealed = fake.get("sealedsecrets", "app", "db").unwrap_or_default();
    assert_eq!(sealed["status"]["observedGeneration"], 2);
    let warnings: Vec<Value> = fake
        .list("events")
        .into_iter()
        .filter(|e| e["reason"] == "DecryptFailed")
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one event per change, not per retry: {warnings:?}"
    );
    assert_eq!(warnings[0]["type"], "Warning");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_unknown_key_and_vault_items_are_reported() {
    let (fake, id, running) = with_key().await;
    // Sealed for namespace "app", applied in "other".
    let mut moved = sealed_secret(
        "app",
        "db",
        &[("password", b"pw")],
        &[id.recipient().clone()],
    );
    moved["metadata"]["namespace"] = json!("other");
    fake.upsert("sealedsecrets", "other", moved);
    let (_, _, m) = wait_reason(&fake, "other", "db", "ScopeMismatch").await;
    assert!(
        m.contains("namespace \"app\"") && m.contains("namespace \"other\""),
        "{m}"
    );
    assert!(secret_of(&fake, "other", "db").is_none());

    // Sealed to a key the controller does not hold.
    let stranger = Identity::generate();
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret(
            "app",
            "unk",
            &[("k", b"v")],
            &[stranger.recipient().clone()],
        ),
    );
    let (_, _, m) = wait_reason(&fake, "app", "unk", "UnknownKey").await;
    assert!(m.contains(&stranger.key_id().to_string()), "{m}");

    // A key added by hand is picked up without restart, and the object heals.
    add_key(&fake, &stranger, 30);
    wait_reason(&fake, "app", "unk", "Synced").await;
    assert_eq!(
        secret_data(&secret_of(&fake, "app", "unk").unwrap_or_default())["k"],
        b"v"
    );

    // Vault items without Vault configured.
    let mut v = sealed_secret("app", "vlt", &[("a", b"b")], &[id.recipient().clone()]);
    v["spec"]["vaultData"] =
        json!({"db": {"mount": "secret", "path": "app/db", "field": "password"}});
    fake.upsert("sealedsecrets", "app", v);
    let (_, _, m) = wait_reason(&fake, "app", "vlt", "VaultUnavailable").await;
    assert!(m.contains("Vault is not configured"), "{m}");
    assert!(secret_of(&fake, "app", "vlt").is_none());

    // Malformed value.
    let mut bad = sealed_secret("app", "bad", &[("a", b"b")], &[id.recipient().clone()]);
    bad["spec"]["encryptedData"]["a"] = json!("plaintext-oops");
    fake.upsert("sealedsecrets", "app", bad);
    let (_, _, m) = wait_reason(&fake, "app", "bad", "DecryptFailed").await;
    assert!(m.contains("not a valid sealed value"), "{m}");
    assert!(!m.contains("plaintext-oops"), "{m}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unowned_secret_left_alone_until_adoption() {
    let (fake, id, running) = with_key().await;
    let theirs = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "namespace": "app", "labels": {"owner": "someone"}},
        "data": {"password": "b2xk"},
    });
    fake.upsert("secrets", "app", theirs);
    let before = fake.get_bytes("secrets", "app", "db").unwrap_or_default();
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret(
            "app",
            "db",
            &[("password", b"new")],
            &[id.recipient().clone()],
        ),
    );
    let (_, _, m) = wait_reason(&fake, "app", "db", "SecretNotOwned").await;
    assert!(m.contains("gitseal.dev/adopt"), "{m}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.get_bytes("secrets", "app", "db").unwrap_or_default(),
        before
    );

    // Opt in to adoption: the controller takes it over.
    let mut s = fake.get("secrets", "app", "db").unwrap_or_default();
    s["metadata"]["annotations"] = json!({"gitseal.dev/adopt": "true"});
    fake.upsert("secrets", "app", s);
    wait_reason(&fake, "app", "db", "Synced").await;
    let s = secret_of(&fake, "app", "db").unwrap_or_default();
    assert_eq!(secret_data(&s)["password"], b"new");
    assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "SealedSecret");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_removal_template_immutable_and_watch_410() {
    let (fake, id, running) = with_key().await;
    let r = [id.recipient().clone()];
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "s", &[("a", b"1"), ("b", b"2")], &r),
    );
    wait_reason(&fake, "app", "s", "Synced").await;
    // Drop item b: server-side apply removes it from the Secret.
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "s", &[("a", b"1")], &r),
    );
    wait_for("item b removed", 10, || {
        secret_of(&fake, "app", "s").filter(|s| !secret_data(s).contains_key("b"))
    })
    .await;

    // Immutable Secrets are replaced when their data changes.
    let mut imm = sealed_secret("app", "imm", &[("a", b"1")], &r);
    imm["spec"]["template"] = json!({"immutable": true});
    fake.upsert("sealedsecrets", "app", imm.clone());
    let first = wait_for("immutable Secret", 10, || secret_of(&fake, "app", "imm")).await;
    assert_eq!(first["immutable"], true);
    let mut imm2 = sealed_secret("app", "imm", &[("a", b"2")], &r);
    imm2["spec"]["template"] = imm["spec"]["template"].clone();
    // Watches break with 410 Gone: the watcher relists and still converges.
    fake.fail(None, "watch=true", 410, 2);
    fake.upsert("sealedsecrets", "app", imm2);
    let second = wait_for("immutable Secret replaced", 10, || {
        secret_of(&fake, "app", "imm").filter(|s| secret_data(s)["a"] == b"2")
    })
    .await;
    assert_ne!(first["metadata"]["uid"], second["metadata"]["uid"]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_generates_a_key_and_serves_http() {
    let fake = FakeApi::new();
    let running = start_with(&fake, config()).await;
    wait_for("generated key", 10, || {
        running.handles.keys.is_ready().then_some(())
    })
    .await;
    let keys = fake
        .list("secrets")
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["gitseal.dev/sealing-key"] == "true")
        .collect::<Vec<_>>();
    assert_eq!(keys.len(), 1);
    let recipient = keys[0]["metadata"]["annotations"]["gitseal.dev/recipient"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(recipient.starts_with("age1"));

    let addr = running
        .handles
        .http_addr
        .unwrap_or_else(|| panic!("no http"));
    let (code, body) = http_get(addr, "/v1/key").await;
    assert_eq!(code, 200);
    assert_eq!(body.trim(), recipient);
    let (code, body) = http_get(addr, "/v1/keys").await;
    assert_eq!(code, 200);
    let list: Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(list[0]["recipient"], recipient.as_str());
    assert_eq!(list[0]["active"], true);
    assert_eq!(list[0]["keyId"].as_str().map(str::len), Some(16));
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    assert_eq!(http_get(addr, "/readyz").await.0, 200);
    assert_eq!(http_get(addr, "/nope").await.0, 404);
    let (code, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("gitseal_keys_loaded 1"), "{metrics}");
    // The key generated on first start is announced like any new key.
    let m = running.handles.metrics.clone();
    wait_for("key added counted", 10, || {
        m.render()
            .contains("gitseal_sealing_key_changes_total{change=\"added\"} 1")
            .then_some(())
    })
    .await;
    wait_for("SealingKeyAdded Event", 10, || {
        fake.list("events")
            .into_iter()
            .find(|e| e["reason"] == "SealingKeyAdded")
    })
    .await;

    // The ConfigMap carries the same public key.
    let cm = wait_for("ConfigMap", 10, || {
        fake.get("configmaps", NS, "gitseal-public-keys")
    })
    .await;
    assert_eq!(cm["data"]["active"], recipient.as_str());
    // The hash key exists and is not a sealing key.
    assert!(fake.get("secrets", NS, "gitseal-hash-key").is_some());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_new_key_active_old_values_still_open() {
    let fake = FakeApi::new();
    let old = Identity::generate();
    add_key(&fake, &old, 3600);
    let r_old = [old.recipient().clone()];
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "before", &[("a", b"1"), ("b", b"2")], &r_old),
    );
    let mut cfg = config();
    cfg.key_rotation_period = Duration::from_secs(600); // the old key is an hour old: due
    let running = start_with(&fake, cfg).await;
    let new_id = wait_for("rotated key", 10, || {
        let keys = running.handles.keys.current();
        (keys.len() == 2).then(|| keys.active().map(|k| k.identity.key_id()))?
    })
    .await;
    assert_ne!(new_id, old.key_id());
    let addr = running
        .handles
        .http_addr
        .unwrap_or_else(|| panic!("no http"));
    let (_, key_text) = http_get(addr, "/v1/key").await;
    let new_recipient: gitseal_crypto::Recipient =
        key_text.trim().parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(new_recipient.key_id(), new_id);

    // New values are sealed to the new key; old ones still open.
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "after", &[("c", b"3")], &[new_recipient]),
    );
    wait_reason(&fake, "app", "before", "Synced").await;
    wait_reason(&fake, "app", "after", "Synced").await;
    let after = fake
        .get("sealedsecrets", "app", "after")
        .unwrap_or_default();
    assert_eq!(after["status"]["keyIds"], json!([new_id.to_string()]));
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("gitseal_values_sealed_to_retired_keys 2"),
        "{metrics}"
    );
    assert!(metrics.contains("gitseal_keys_loaded 2"), "{metrics}");
    let cm = wait_for("ConfigMap with two keys", 10, || {
        fake.get("configmaps", NS, "gitseal-public-keys")
            .filter(|c| {
                c["data"]["keys.json"]
                    .as_str()
                    .is_some_and(|j| j.matches("keyId").count() == 2)
            })
    })
    .await;
    assert!(cm["data"]["keys.json"]
        .as_str()
        .unwrap_or_default()
        .contains(&old.key_id().to_string()));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_one_leads_follower_takes_over() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let lc = |name: &str| {
        let mut l = LeaderConfig::new("gitseal-controller", name);
        l.lease_duration = Duration::from_millis(1500);
        l.renew_every = Duration::from_millis(200);
        l.retry_every = Duration::from_millis(100);
        l
    };
    let mut c1 = config();
    c1.leader = Some(lc("pod-a"));
    let a = start_with(&fake, c1).await;
    wait_for("a leads", 10, || {
        (*a.handles.leading.borrow()).then_some(())
    })
    .await;
    let mut c2 = config();
    c2.leader = Some(lc("pod-b"));
    let b = start_with(&fake, c2).await;
    wait_for("b has keys", 10, || b.handles.keys.is_ready().then_some(())).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(*a.handles.leading.borrow());
    assert!(!*b.handles.leading.borrow(), "two leaders");
    // The follower serves HTTP.
    let (code, _) = http_get(b.handles.http_addr.unwrap_or_else(|| panic!()), "/v1/key").await;
    assert_eq!(code, 200);

    // The leader stops (without releasing): b takes over after the lease expires.
    a.task.abort();
    wait_for("b leads", 10, || {
        (*b.handles.leading.borrow()).then_some(())
    })
    .await;
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "x", &[("k", b"v")], &[id.recipient().clone()]),
    );
    wait_reason(&fake, "app", "x", "Synced").await;
    let lease = fake
        .get("leases", NS, "gitseal-controller")
        .unwrap_or_default();
    assert_eq!(lease["spec"]["holderIdentity"], "pod-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    b.shutdown().await;
}

pub fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

pub fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub use crate::process::http_get;

/// The `gitseal_values_sealed_to_retired_keys` gauge.
fn retired_gauge(metrics: &str) -> Option<i64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix("gitseal_values_sealed_to_retired_keys ")?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_key_gauge_goes_down_on_reseal_and_delete() {
    let fake = FakeApi::new();
    let old = Identity::generate();
    let new = Identity::generate();
    add_key(&fake, &old, 7200);
    add_key(&fake, &new, 60); // newest: the active key
    let r_old = [old.recipient().clone()];
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "one", &[("a", b"1"), ("b", b"2")], &r_old),
    );
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "two", &[("c", b"3")], &r_old),
    );
    let running = start_with(&fake, config()).await;
    let metrics = running.handles.metrics.clone();
    let gauge_is = |n: i64| {
        let metrics = metrics.clone();
        move || (retired_gauge(&metrics.render()) == Some(n)).then_some(())
    };
    wait_for("3 values on the retired key", 10, gauge_is(3)).await;

    // Resealed to the active key: that object no longer counts.
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "two", &[("c", b"3")], &[new.recipient().clone()]),
    );
    wait_for("2 values on the retired key", 10, gauge_is(2)).await;

    // Deleted: its values leave the gauge (the Secret goes with it).
    assert!(fake.remove("sealedsecrets", "app", "one"));
    wait_for("no value on the retired key", 10, gauge_is(0)).await;
    assert!(secret_of(&fake, "app", "one").is_none());
    wait_reason(&fake, "app", "two", "Synced").await;
    running.shutdown().await;
}
