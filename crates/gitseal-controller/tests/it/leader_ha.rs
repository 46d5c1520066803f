//! High availability: the Lease is handed over at shutdown, a stalled
//! renewal stops the leader before anyone else can write, and a single lost
//! renewal race does not drop leadership. Every replica talks through its
//! own tagged client ([`crate::interpose`]), which records each write with
//! the Lease holder at that moment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitseal_controller::leader::LeaderConfig;
use gitseal_crypto::Identity;
use http::Method;
use tokio::time::Instant;

use crate::common::*;
use crate::fake_api::FakeApi;
use crate::interpose::{keyed_fake, put_sealed, synced, Action, Interposer, Rule, Seen};

fn leader(identity: &str, lease: u64, deadline: u64, renew: u64, retry: u64) -> LeaderConfig {
    let mut l = LeaderConfig::new("gitseal-controller", identity);
    l.lease_duration = Duration::from_millis(lease);
    l.renew_deadline = Duration::from_millis(deadline);
    l.renew_every = Duration::from_millis(renew);
    l.retry_every = Duration::from_millis(retry);
    l
}

async fn replica(fake: &FakeApi, ip: &Interposer, tag: &'static str, l: LeaderConfig) -> Running {
    let mut c = config();
    c.leader = Some(l);
    start_with_client(fake, ip.client(tag), c, None).await
}

/// Every value `leading` takes, from now on.
fn leading_history(r: &Running) -> Arc<Mutex<Vec<bool>>> {
    let history = Arc::new(Mutex::new(vec![*r.handles.leading.borrow()]));
    let mut rx = r.handles.leading.clone();
    let h = history.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let v = *rx.borrow_and_update();
            if let Ok(mut g) = h.lock() {
                g.push(v);
            }
        }
    });
    history
}

/// Once the Lease exists, no replica wrote anything but the Lease while
/// the Lease did not name it. (Before that, the first replica creates the
/// hash key at start-up, outside any term.)
fn assert_single_writer(seen: &[Seen]) {
    let created = seen
        .iter()
        .position(|s| s.method == Method::POST && s.line.contains("/leases"))
        .unwrap_or_else(|| panic!("nobody created the Lease"));
    for s in seen[created..].iter().filter(|s| s.is_work_write()) {
        assert_eq!(
            s.holder.as_deref(),
            Some(s.tag.as_str()),
            "{} wrote {} {} while the Lease named {:?}",
            s.tag,
            s.method,
            s.line,
            s.holder
        );
    }
}

/// Creates a SealedSecret `app/obj-N` every 50 ms until stopped, so the
/// leader writes all the time.
fn keep_creating(fake: &FakeApi, id: &Identity) -> tokio::task::JoinHandle<()> {
    let fake = fake.clone();
    let id = id.clone();
    tokio::spawn(async move {
        for n in 0.. {
            put_sealed(&fake, &id, "app", &format!("obj-{n}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_released_on_shutdown_next_replica_leads_within_one_retry_period() {
    let (fake, id, ip) = keyed_fake();
    // A long lease: without the release, B would wait 10 s.
    let retry = 300;
    let a = replica(&fake, &ip, "a", leader("a", 10_000, 6_000, 1_000, retry)).await;
    wait_for("a leads", 10, || {
        (*a.handles.leading.borrow()).then_some(())
    })
    .await;
    let b = replica(&fake, &ip, "b", leader("b", 10_000, 6_000, 1_000, retry)).await;
    wait_for("b has keys", 10, || b.handles.keys.is_ready().then_some(())).await;
    put_sealed(&fake, &id, "app", "before");
    wait_for("a syncs", 10, || synced(&fake, "app", "before")).await;
    assert!(!*b.handles.leading.borrow(), "two leaders");

    let stopped = Instant::now();
    a.shutdown().await;
    let b_leads = wait_for("b leads", 15, || {
        (*b.handles.leading.borrow()).then(Instant::now)
    })
    .await;
    let handover = b_leads - stopped;
    crate::interpose::report(&format!(
        "hand-over after a clean shutdown: {handover:?} (retry period {retry} ms)"
    ));
    assert!(
        handover < Duration::from_millis(retry) + Duration::from_millis(700),
        "b led {handover:?} after a stopped; the retry period is {retry} ms"
    );

    let lease = fake
        .get("leases", NS, "gitseal-controller")
        .unwrap_or_default();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    // a stopped writing before it released the Lease.
    let seen = ip.seen();
    let release = seen
        .iter()
        .rposition(|s| s.tag == "a" && s.method == Method::PUT && s.line.contains("/leases/"))
        .unwrap_or_else(|| panic!("a never wrote the Lease"));
    assert!(
        !seen[release..]
            .iter()
            .any(|s| s.tag == "a" && s.is_work_write()),
        "a wrote after releasing the Lease"
    );
    assert!(seen.iter().any(|s| s.tag == "a" && s.is_work_write()));
    assert_single_writer(&seen);

    // b does the work now.
    put_sealed(&fake, &id, "app", "after");
    wait_for("b syncs", 10, || synced(&fake, "app", "after")).await;
    assert_single_writer(&ip.seen());
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_renewal_stops_the_leader_before_another_replica_writes() {
    let (fake, id, ip) = keyed_fake();
    let timing = |who| leader(who, 1_500, 1_000, 300, 150);
    let a = replica(&fake, &ip, "a", timing("a")).await;
    wait_for("a leads", 10, || {
        (*a.handles.leading.borrow()).then_some(())
    })
    .await;
    let b = replica(&fake, &ip, "b", timing("b")).await;
    let creator = keep_creating(&fake, &id);
    wait_for("a writes", 10, || {
        ip.seen()
            .iter()
            .any(|s| s.tag == "a" && s.is_work_write())
            .then_some(())
    })
    .await;

    // The API server stops answering a's Lease requests; everything else of
    // a's still goes through.
    ip.add(Rule {
        tag: Some("a"),
        method: None,
        contains: "/leases/",
        action: Action::Hold,
        times: None,
    });
    let stalled = Instant::now();
    let a_stopped = wait_for("a stops leading", 10, || {
        (!*a.handles.leading.borrow()).then(Instant::now)
    })
    .await;
    let b_leads = wait_for("b leads", 15, || {
        (*b.handles.leading.borrow()).then(Instant::now)
    })
    .await;
    crate::interpose::report(&format!(
        "a stopped {:?} after its renewals stalled; b led {:?} after that",
        a_stopped - stalled,
        b_leads - a_stopped
    ));
    assert!(a_stopped - stalled <= Duration::from_millis(1_000 + 500));
    assert!(b_leads > a_stopped);
    wait_for("b writes", 10, || {
        ip.seen()
            .iter()
            .any(|s| s.tag == "b" && s.is_work_write())
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    creator.abort();
    let seen = ip.seen();
    assert_single_writer(&seen);
    assert!(
        !*a.handles.leading.borrow(),
        "a leads again with its Lease requests held"
    );
    a.task.abort();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_conflict_on_the_leaders_renewal_neither_drops_leadership_nor_relists() {
    let (fake, id, ip) = keyed_fake();
    let a = replica(&fake, &ip, "a", leader("a", 3_000, 2_000, 200, 100)).await;
    wait_for("a leads", 10, || {
        (*a.handles.leading.borrow()).then_some(())
    })
    .await;
    put_sealed(&fake, &id, "app", "x");
    wait_for("synced", 10, || synced(&fake, "app", "x")).await;
    let history = leading_history(&a);
    let lists = |seen: &[Seen]| {
        seen.iter()
            .filter(|s| s.is_list_of("sealedsecrets"))
            .count()
    };
    let lists_before = lists(&ip.seen());
    assert!(lists_before >= 1);

    ip.add(Rule {
        tag: Some("a"),
        method: Some(Method::PUT),
        contains: "/leases/gitseal-controller",
        action: Action::Status(409),
        times: Some(1),
    });
    wait_for("the conflict was served", 10, || {
        ip.seen()
            .iter()
            .any(|s| matches!(s.action, Some(Action::Status(409))))
            .then_some(())
    })
    .await;
    let conflict_at = Instant::now();
    // A few renewals later.
    wait_for("renewed after the conflict", 10, || {
        ip.seen()
            .iter()
            .filter(|s| {
                s.method == Method::PUT && s.line.contains("/leases/") && s.at > conflict_at
            })
            .nth(2)
            .map(|_| ())
    })
    .await;
    let values = history.lock().map(|g| g.clone()).unwrap_or_default();
    assert!(
        values.iter().all(|v| *v),
        "leadership flapped on one conflict: {values:?}"
    );
    assert_eq!(
        lists(&ip.seen()),
        lists_before,
        "the SealedSecrets were listed again after one conflict"
    );
    let lease = fake
        .get("leases", NS, "gitseal-controller")
        .unwrap_or_default();
    assert_eq!(lease["spec"]["holderIdentity"], "a");
    assert_eq!(lease["spec"]["leaseTransitions"], 0);
    a.shutdown().await;
}
