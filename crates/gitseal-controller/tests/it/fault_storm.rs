//! The fault storm in the suite (the harness is [`crate::storm`]), and the
//! bugs it found, each alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gitseal_crypto::Identity;

use crate::common::{add_key, sealed_secret};
use crate::storm::{run_storm, seed_from_env, StormConfig};

/// The storm in the suite: 40 objects, 12 s of faults at 20 %, about 20 s
/// in all. A failed run prints a diagnosis naming the object, its
/// operations, events and requests; `GITSEAL_STORM_SEED` replays its user
/// operations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_storm_converges_without_losing_or_blanking_a_secret() {
    let seed = seed_from_env(16);
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // GITSEAL_STORM_OBJECTS / GITSEAL_STORM_SECS: a longer storm from the
    // test binary (benches/fault_storm.rs is the same in release).
    let objects = env("GITSEAL_STORM_OBJECTS", 40) as usize;
    let secs = env("GITSEAL_STORM_SECS", 12);
    let mut cfg = StormConfig::new(objects, Duration::from_secs(secs), 0.2, seed);
    if secs > 60 {
        cfg.converge_limit = Duration::from_secs(300);
    }
    let report = run_storm(&cfg).await;
    let text = report.lines().join("\n");
    crate::interpose::report(&format!("fault storm (GITSEAL_STORM_SEED={seed}):\n{text}"));
    assert!(report.violations.is_empty(), "seed {seed}:\n{text}");
    // The storm really stormed.
    for kind in [
        "409 write",
        "410 watch",
        "429",
        "delayed",
        "watches dropped",
        "API unreachable (outages)",
    ] {
        assert!(
            report.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault injected: {text}"
        );
    }
    assert!(
        report
            .ops
            .get("delete secret silently")
            .copied()
            .unwrap_or(0)
            > 0,
        "{text}"
    );
    assert!(report.ops.get("delete").copied().unwrap_or(0) > 0, "{text}");
}

/// Found by the storm: every dropped watch of the key Secrets that had to
/// relist (410 Gone) reconciled every object, though the keys were the
/// same. A relist that loads the same keys reconciles nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_of_the_key_secrets_reconciles_nothing() {
    let (fake, id, running) = crate::common::keyed_controller().await;
    let to = [id.recipient().clone()];
    for i in 0..5 {
        let name = format!("s{i}");
        fake.upsert(
            "sealedsecrets",
            "app",
            sealed_secret("app", &name, &[("k", b"v")], &to),
        );
    }
    for i in 0..5 {
        crate::common::wait_ready(&fake, "app", &format!("s{i}"), Some("Synced")).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reconciles = || {
        crate::process::metric_sum(
            &running.handles.metrics.render(),
            "gitseal_reconciles_total",
        )
    };
    let before = reconciles();
    fake.record_requests();
    // The key watch (the only one of the controller's namespace) breaks
    // and its history is gone: it relists.
    fake.fail(
        Some(http::Method::GET),
        "/namespaces/gitseal-system/secrets?",
        410,
        1,
    );
    fake.drop_watches("secrets");
    crate::common::wait_for("the key Secrets relisted", 10, || {
        fake.requests()
            .iter()
            .filter(|l| {
                l.contains("/namespaces/gitseal-system/secrets?") && !l.contains("watch=true")
            })
            .count()
            .ge(&1)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        reconciles(),
        before,
        "objects were reconciled after a relist of unchanged keys: {:?}",
        fake.requests()
    );
    // A real change of the keys still reconciles every object.
    add_key(&fake, &Identity::generate(), 0);
    crate::common::wait_for("every object reconciled for the new key", 10, || {
        (reconciles() >= before + 5.0).then_some(())
    })
    .await;
    running.shutdown().await;
}

/// Found by the storm: a reconcile read the Secret (it existed), then the
/// SealedSecret was deleted and garbage collection deleted the Secret, then
/// the reconcile's server-side apply, which creates a missing object,
/// re-created the Secret for the deleted owner. The apply over a Secret
/// just read is now conditional on its resourceVersion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_racing_the_deletion_of_its_sealed_secret_recreates_nothing() {
    // Deletes the SealedSecret (and so, by garbage collection, its Secret)
    // right before the first write of Secret app/db reaches the API, once armed.
    let (fake, armed, running, _) = controller_with_hook(
        |method, path| method == http::Method::PATCH && path == "/api/v1/namespaces/app/secrets/db",
        delete_the_sealed_secret,
    )
    .await;
    armed.store(true, Ordering::SeqCst);
    // Edited by hand: the controller reads the Secret and writes it back.
    fake.merge_patch(
        "secrets",
        "app",
        "db",
        &serde_json::json!({"data": {"k": "ZWRpdGVk"}}),
    );
    assert!(
        !app_db_exists_after_the_race(&fake, &armed).await,
        "the Secret was re-created for a deleted SealedSecret"
    );
    running.shutdown().await;
}

/// Found by the long storm: a Secret deleted by hand (seen), put back by a
/// write the Secret watches missed (they were down), then deleted again
/// while they were away. Their relists found it absent, as they had last
/// seen it, and reconciled nothing. A relist now reconciles every Secret
/// that is not what its SealedSecret wants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_put_back_unseen_and_deleted_again_is_put_back() {
    // Once armed: the cluster-wide Secret watches go down right before the
    // next write of a Secret in namespace app reaches the API.
    let (fake, armed, running, _) = controller_with_hook(app_secret_write, |fake| {
        fake.fail(Some(http::Method::GET), "/api/v1/secrets?", 500, 1_000_000);
        fake.drop_watches("secrets");
        Duration::from_millis(100)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    armed.store(true, Ordering::SeqCst);
    // Deleted by hand (the watches see it); the put-back goes unseen.
    assert!(fake.remove("secrets", "app", "db"));
    crate::common::wait_for("put back while the watches are down", 10, || {
        fake.get("secrets", "app", "db")
    })
    .await;
    // Deleted again while they are away, and their history is gone.
    assert!(fake.remove_silently("secrets", "app", "db"));
    fake.clear_faults();
    let back = crate::common::wait_for("put back again after the relists", 20, || {
        fake.get("secrets", "app", "db")
    })
    .await;
    assert_eq!(crate::common::secret_data(&back)["k"], b"v");
    running.shutdown().await;
}

/// Found by the storm: a Secret deleted by hand is put back after checking
/// that its SealedSecret exists; when the SealedSecret is deleted between
/// that check and the create, garbage collection has nothing to delete and
/// the new Secret is an orphan. The owner is checked again after the
/// create, and the Secret just created is deleted when it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_put_back_as_its_sealed_secret_is_deleted_does_not_stay() {
    // Deletes the SealedSecret right before the next write of a Secret in
    // namespace app (the create or apply that puts it back) reaches the
    // API, once armed.
    let (fake, armed, running, _) =
        controller_with_hook(app_secret_write, delete_the_sealed_secret).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    armed.store(true, Ordering::SeqCst);
    assert!(fake.remove("secrets", "app", "db"));
    assert!(
        !app_db_exists_after_the_race(&fake, &armed).await,
        "a Secret stayed for a deleted SealedSecret"
    );
    running.shutdown().await;
}

/// Found by the storm: a SealedSecret deleted right before the first
/// create of its Secret leaves a Secret whose only owner is gone. No client
/// can prevent that race; garbage collection removes such a dependent (the
/// test API does too), and a new SealedSecret of
/// the same name then gets its own Secret instead of `SecretNotOwned`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_created_as_its_sealed_secret_is_deleted_is_collected_and_the_name_reused() {
    let (fake, armed, running, id) = controller_with_hook(
        |method, path| method == http::Method::POST && path == "/api/v1/namespaces/app/secrets",
        |fake| {
            assert!(fake.remove("sealedsecrets", "app", "db2"));
            Duration::ZERO
        },
    )
    .await;
    fake.journal("secrets");
    armed.store(true, Ordering::SeqCst);
    let to = [id.recipient().clone()];
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "db2", &[("k", b"old")], &to),
    );
    // Created for the deleted owner, then collected. (The hook disarms
    // before the create reaches the API: wait for the journal, not it.)
    let kinds = crate::common::wait_for("the racing create and its collection", 10, || {
        let kinds: Vec<&str> = fake
            .journal_events()
            .iter()
            .filter(|e| e.key.plural == "secrets" && e.key.name == "db2")
            .map(|e| e.kind)
            .collect();
        (kinds.len() >= 2).then_some(kinds)
    })
    .await;
    assert!(!armed.load(Ordering::SeqCst));
    assert_eq!(kinds, ["ADDED", "DELETED"]);
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "db2", &[("k", b"new")], &to),
    );
    crate::common::wait_ready(&fake, "app", "db2", Some("Synced")).await;
    let obj = fake
        .get("sealedsecrets", "app", "db2")
        .expect("the new SealedSecret");
    let secret = fake
        .get("secrets", "app", "db2")
        .expect("the Secret of the new SealedSecret");
    assert_eq!(crate::common::secret_data(&secret)["k"], b"new");
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"],
        obj["metadata"]["uid"]
    );
    running.shutdown().await;
}

/// Starts the controller over a client that, once the returned flag is
/// armed, calls `before` right before the next request `matches` selects
/// reaches the fake API (then waits what `before` returns), and syncs
/// SealedSecret app/db with item `k` = `v` (sealed to the returned key).
async fn controller_with_hook(
    matches: fn(&http::Method, &str) -> bool,
    before: fn(&crate::fake_api::FakeApi) -> Duration,
) -> (
    crate::fake_api::FakeApi,
    Arc<AtomicBool>,
    crate::common::Running,
    Identity,
) {
    let fake = crate::fake_api::FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let armed = Arc::new(AtomicBool::new(false));
    let client = {
        let (fake, armed) = (fake.clone(), armed.clone());
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let (fake, armed) = (fake.clone(), armed.clone());
            async move {
                if matches(req.method(), req.uri().path()) && armed.swap(false, Ordering::SeqCst) {
                    tokio::time::sleep(before(&fake)).await;
                }
                Ok::<_, std::convert::Infallible>(fake.handle(req).await)
            }
        });
        kube::Client::new(svc, "default")
    };
    let running =
        crate::common::start_with_client(&fake, client, crate::common::config(), None).await;
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "db", &[("k", b"v")], &[id.recipient().clone()]),
    );
    crate::common::wait_ready(&fake, "app", "db", Some("Synced")).await;
    (fake, armed, running, id)
}

/// Waits until the armed hook has fired (the racing write reached the
/// API), then long enough for the controller to act on the outcome;
/// whether Secret app/db exists then.
async fn app_db_exists_after_the_race(fake: &crate::fake_api::FakeApi, armed: &AtomicBool) -> bool {
    crate::common::wait_for("the racing write", 10, || {
        (!armed.load(Ordering::SeqCst)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fake.get("secrets", "app", "db").is_some()
}

/// A write (not a read) of a Secret in namespace app.
fn app_secret_write(method: &http::Method, path: &str) -> bool {
    method != http::Method::GET && path.starts_with("/api/v1/namespaces/app/secrets")
}

/// Deletes SealedSecret app/db (and so, by garbage collection, its Secret).
fn delete_the_sealed_secret(fake: &crate::fake_api::FakeApi) -> Duration {
    assert!(fake.remove("sealedsecrets", "app", "db"));
    Duration::ZERO
}
