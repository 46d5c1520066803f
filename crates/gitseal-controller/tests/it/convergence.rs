//! Convergence (issues 10 and 16): the Secret ends up exactly as the
//! SealedSecret says, in a bounded number of writes, whatever happened to
//! it while the controller was not looking; and never comes back after its
//! SealedSecret is gone.

use std::time::Duration;

use gitseal_controller::leader::LeaderConfig;
use gitseal_crypto::Identity;
use serde_json::{json, Value};

use crate::common::*;
use crate::fake_api::FakeApi;

async fn synced(fake: &FakeApi, ns: &str, name: &str) {
    wait_ready(fake, ns, name, Some("Synced")).await;
}

/// Writes (PATCH, PUT, POST, DELETE) of Secret `ns/name` in the recorded requests.
fn secret_writes(fake: &FakeApi, ns: &str, name: &str) -> usize {
    let path = format!("/api/v1/namespaces/{ns}/secrets/{name}?");
    let create = format!("/api/v1/namespaces/{ns}/secrets?");
    fake.requests()
        .iter()
        .filter(|l| {
            let write = ["PATCH ", "PUT ", "DELETE "]
                .iter()
                .any(|m| l.starts_with(m))
                && l.contains(&path);
            write || (l.starts_with("POST ") && l.contains(&create))
        })
        .count()
}

fn data_keys(secret: &Value) -> Vec<String> {
    secret_data(secret).into_keys().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_added_by_hand_is_removed_in_bounded_writes() {
    let (fake, id, running) = keyed_controller().await;
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret(
            "app",
            "db",
            &[("password", b"hunter2")],
            &[id.recipient().clone()],
        ),
    );
    synced(&fake, "app", "db").await;
    wait_for("Secret", 10, || fake.get("secrets", "app", "db")).await;
    fake.record_requests();
    // kubectl patch secret db -p '{"data":{"extra":"eA=="}}'
    fake.merge_patch("secrets", "app", "db", &json!({"data": {"extra": "eA=="}}));
    wait_for("extra removed", 10, || {
        fake.get("secrets", "app", "db")
            .filter(|s| data_keys(s) == ["password"])
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = secret_writes(&fake, "app", "db");
    assert!(
        (1..=2).contains(&writes),
        "{writes} Secret writes: {:?}",
        fake.requests()
    );
    let secret = fake.get("secrets", "app", "db").unwrap_or_default();
    assert_eq!(data_keys(&secret), ["password"]);
    assert_eq!(secret_data(&secret)["password"], b"hunter2");
    synced(&fake, "app", "db").await;
    // Quiet from now on: no more writes of any kind for this object.
    let settled = fake.requests().len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let later: Vec<String> = fake.requests()[settled..]
        .iter()
        .filter(|l| !l.starts_with("GET ") && !l.contains("/leases"))
        .cloned()
        .collect();
    assert!(later.is_empty(), "still writing: {later:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_secret_with_extra_keys_ends_up_exact_and_adoption_is_prompt() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let mut cfg = config();
    // Retries far apart: only a trigger can make adoption prompt.
    cfg.timing.backoff_base = Duration::from_secs(60);
    cfg.timing.backoff_max = Duration::from_secs(300);
    let running = start_with(&fake, cfg).await;
    fake.upsert(
        "secrets",
        "app",
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "db", "namespace": "app"},
               "data": {"password": "b2xk", "legacy": "eA=="}}),
    );
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
    wait_for("SecretNotOwned", 10, || {
        fake.get("sealedsecrets", "app", "db")
            .and_then(|o| ready(&o))
            .filter(|r| r.1 == "SecretNotOwned")
    })
    .await;
    fake.record_requests();
    fake.merge_patch(
        "secrets",
        "app",
        "db",
        &json!({"metadata": {"annotations": {"gitseal.dev/adopt": "true"}}}),
    );
    let secret = wait_for("adopted within seconds", 5, || {
        fake.get("secrets", "app", "db")
            .filter(|s| data_keys(s) == ["password"])
    })
    .await;
    assert_eq!(secret_data(&secret)["password"], b"new");
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["kind"],
        "SealedSecret"
    );
    synced(&fake, "app", "db").await;
    assert!(
        secret_writes(&fake, "app", "db") <= 2,
        "{:?}",
        fake.requests()
    );
    running.shutdown().await;
}

/// Issue 16: deleted by hand while the Secret watch was down, and the
/// watch history no longer reaching back (a relist, which replays no
/// deletion): the Secret is put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_deleted_while_the_watch_was_down_is_put_back() {
    let (fake, id, running) = keyed_controller().await;
    let r = [id.recipient().clone()];
    for name in ["a", "b"] {
        fake.upsert(
            "sealedsecrets",
            "app",
            sealed_secret("app", name, &[("k", b"v")], &r),
        );
        synced(&fake, "app", name).await;
    }
    assert!(fake.remove_silently("secrets", "app", "a"));
    fake.fail(
        Some(http::Method::GET),
        "/api/v1/secrets?&watch=true",
        410,
        1,
    );
    fake.drop_watches("secrets");
    let back = wait_for("Secret put back", 10, || fake.get("secrets", "app", "a")).await;
    assert_eq!(secret_data(&back)["k"], b"v");
    assert!(fake.get("secrets", "app", "b").is_some());
    running.shutdown().await;
}

/// Issue 16: the SealedSecret is deleted while the controller's
/// SealedSecret watch is down (its cache still holds the object); garbage
/// collection deletes the Secret, which triggers a reconcile of the stale
/// object. It must not write the Secret again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_never_recreated_after_its_sealed_secret_is_deleted() {
    let (fake, id, running) = keyed_controller().await;
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "db", &[("k", b"v")], &[id.recipient().clone()]),
    );
    synced(&fake, "app", "db").await;
    wait_for("Secret", 10, || fake.get("secrets", "app", "db")).await;
    fake.fail(
        Some(http::Method::GET),
        "sealedsecrets?&watch=true",
        500,
        1_000_000,
    );
    fake.drop_watches("sealedsecrets");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fake.remove("sealedsecrets", "app", "db"));
    assert!(fake.get("secrets", "app", "db").is_none(), "GC in the fake");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        fake.get("secrets", "app", "db").is_none(),
        "the Secret came back after its SealedSecret was deleted"
    );
    fake.clear_faults();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(fake.get("secrets", "app", "db").is_none());
    running.shutdown().await;
}

/// Issue 16: leadership lost and regained by the same replica. An object
/// created in the second term whose first write fails is retried (and the
/// failure logged), not taken for deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_term_retries_failures_of_new_objects() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let mut cfg = config();
    let mut lc = LeaderConfig::new("gitseal-controller", "pod-a");
    lc.lease_duration = Duration::from_millis(1500);
    lc.renew_every = Duration::from_millis(100);
    lc.retry_every = Duration::from_millis(100);
    cfg.leader = Some(lc);
    let running = start_with(&fake, cfg).await;
    let leading = running.handles.leading.clone();
    wait_for("leads", 10, || (*leading.borrow()).then_some(())).await;
    let r = [id.recipient().clone()];
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "first", &[("k", b"v")], &r),
    );
    synced(&fake, "app", "first").await;

    // Another replica takes the lease; then it is free again.
    let lease = |holder: &str| {
        let mut l = fake
            .get("leases", NS, "gitseal-controller")
            .unwrap_or_default();
        l["spec"]["holderIdentity"] = json!(holder);
        l["spec"]["renewTime"] = json!(k8s_openapi::jiff::Timestamp::now().to_string());
        l
    };
    fake.upsert("leases", NS, lease("pod-b"));
    wait_for("lost the lease", 10, || (!*leading.borrow()).then_some(())).await;
    fake.upsert("leases", NS, lease(""));
    wait_for("leads again", 10, || (*leading.borrow()).then_some(())).await;

    // A new object whose first write (the create of its Secret) fails.
    fake.fail(Some(http::Method::POST), "/namespaces/app/secrets?", 500, 1);
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "second", &[("k", b"v")], &r),
    );
    synced(&fake, "app", "second").await;
    assert!(fake.get("secrets", "app", "second").is_some());
    let failures = crate::process::metric_sum(
        &running.handles.metrics.render(),
        "gitseal_reconcile_failures_total",
    );
    assert!(failures >= 1.0, "the failure was not counted");
    running.shutdown().await;
}

/// A restart over synced objects writes nothing (kept from before, with
/// the Secret watch now also tracking vanished Secrets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_over_synced_objects_writes_nothing() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let r = [id.recipient().clone()];
    for i in 0..20 {
        let name = format!("s{i}");
        fake.upsert(
            "sealedsecrets",
            "app",
            sealed_secret("app", &name, &[("k", b"v")], &r),
        );
    }
    let running = start_with(&fake, config()).await;
    for i in 0..20 {
        synced(&fake, "app", &format!("s{i}")).await;
    }
    running.shutdown().await;
    fake.record_requests();
    let running = start_with(&fake, config()).await;
    wait_for("reconciled all", 10, || {
        (crate::process::metric_sum(
            &running.handles.metrics.render(),
            "gitseal_reconciles_total",
        ) >= 20.0)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|l| !l.starts_with("GET ") && !l.contains("/leases") && !l.contains("/configmaps"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    running.shutdown().await;
}
