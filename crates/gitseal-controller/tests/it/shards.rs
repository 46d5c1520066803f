//! Shards (issue 10): instances that each own the SealedSecrets of some
//! namespaces, by label selector or by list, each electing its own leader.
//! Every instance talks through its own tagged client
//! ([`crate::interpose`]), so each request is attributed to the shard that
//! made it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gitseal_controller::leader::LeaderConfig;
use gitseal_controller::shard::{Scope, DEFAULT_LEASE};
use http::Method;
use serde_json::json;

use crate::common::*;
use crate::fake_api::FakeApi;
use crate::interpose::{keyed_fake, Interposer, Seen};

fn namespace(fake: &FakeApi, name: &str, team: &str) {
    fake.upsert(
        "namespaces",
        "",
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": {"team": team}}}),
    );
}

async fn shard(fake: &FakeApi, ip: &Interposer, tag: &'static str, scope: Scope) -> Running {
    let mut c = config();
    let mut l = LeaderConfig::new(scope.lease_name(DEFAULT_LEASE), format!("{tag}-0"));
    l.lease_duration = Duration::from_secs(4);
    l.renew_deadline = Duration::from_secs(3);
    l.renew_every = Duration::from_millis(500);
    l.retry_every = Duration::from_millis(200);
    c.leader = Some(l);
    c.scope = scope;
    start_with_client(fake, ip.client(tag), c, None).await
}

/// The namespace a request is about (`/namespaces/NS/...`), if any.
fn namespace_of(line: &str) -> Option<&str> {
    let rest = line.split_once("/namespaces/")?.1;
    let ns = rest.split(['/', '?']).next()?;
    // `/api/v1/namespaces?…` (the namespace list itself) names none.
    (!ns.is_empty() && rest.contains('/')).then_some(ns)
}

/// Writes of objects (not the Lease), by shard tag and namespace.
fn writes_by_shard(seen: &[Seen]) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for s in seen.iter().filter(|s| s.is_work_write()) {
        if let Some(ns) = namespace_of(&s.line) {
            *out.entry((s.tag.clone(), ns.to_string())).or_insert(0) += 1;
        }
    }
    out
}

/// Status writes per object (`ns/name`) per shard tag.
fn status_writers(seen: &[Seen]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.method == Method::PATCH) {
        let Some(ns) = namespace_of(&s.line) else {
            continue;
        };
        let Some(name) = s
            .line
            .split_once("/sealedsecrets/")
            .and_then(|(_, r)| r.strip_suffix_status())
        else {
            continue;
        };
        out.entry(format!("{ns}/{name}"))
            .or_default()
            .insert(s.tag.clone());
    }
    out
}

trait StatusPath {
    fn strip_suffix_status(&self) -> Option<&str>;
}

impl StatusPath for str {
    fn strip_suffix_status(&self) -> Option<&str> {
        let (name, rest) = self.split_once('/')?;
        rest.starts_with("status").then_some(name)
    }
}

fn put(fake: &FakeApi, id: &gitseal_crypto::Identity, ns: &str, name: &str, value: &[u8]) {
    fake.upsert(
        "sealedsecrets",
        ns,
        sealed_secret(ns, name, &[("k", value)], &[id.recipient().clone()]),
    );
}

async fn synced_with(fake: &FakeApi, ns: &str, name: &str, value: &[u8]) {
    wait_for(&format!("{ns}/{name} holds the value"), 15, || {
        let s = fake.get("secrets", ns, name)?;
        (secret_data(&s).get("k").map(Vec::as_slice) == Some(value)).then_some(())
    })
    .await;
    wait_ready(fake, ns, name, Some("Synced")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_is_written_by_exactly_one_shard_and_moves_with_its_namespace() {
    let (fake, id, ip) = keyed_fake();
    namespace(&fake, "red", "x");
    namespace(&fake, "blue", "y");
    namespace(&fake, "green", "z");
    let x = shard(&fake, &ip, "x", Scope::Selector("team=x".into())).await;
    let y = shard(&fake, &ip, "y", Scope::Selector("team=y".into())).await;
    let z = shard(
        &fake,
        &ip,
        "z",
        Scope::Namespaces(BTreeSet::from(["green".to_string()])),
    )
    .await;
    for ns in ["red", "blue", "green"] {
        for i in 0..3 {
            put(&fake, &id, ns, &format!("s{i}"), b"one");
        }
    }
    for ns in ["red", "blue", "green"] {
        for i in 0..3 {
            synced_with(&fake, ns, &format!("s{i}"), b"one").await;
        }
    }
    // Each shard leads under its own Lease.
    for (running, tag) in [(&x, "x"), (&y, "y"), (&z, "z")] {
        assert!(
            *running.handles.leading.borrow(),
            "shard {tag} does not lead"
        );
    }
    let leases = fake.list("leases");
    assert_eq!(leases.len(), 3, "one Lease per shard: {leases:?}");

    let seen = ip.seen();
    let owner = BTreeMap::from([("red", "x"), ("blue", "y"), ("green", "z")]);
    // Nothing read or written outside a shard's namespaces (beyond its
    // own namespace, where the keys and its Lease live).
    for s in &seen {
        let Some(ns) = namespace_of(&s.line) else {
            continue;
        };
        if let Some(o) = owner.get(ns) {
            assert_eq!(&s.tag, o, "shard {} touched {ns}: {}", s.tag, s.line);
        }
    }
    // Every object: its status written by exactly one shard, its own.
    let writers = status_writers(&seen);
    assert_eq!(writers.len(), 9, "{writers:?}");
    for (obj, tags) in &writers {
        let ns = obj.split('/').next().unwrap_or_default();
        assert_eq!(
            tags,
            &BTreeSet::from([owner[ns].to_string()]),
            "{obj} written by {tags:?}"
        );
    }
    // One create, one status patch, one Event per object.
    let writes = writes_by_shard(&seen);
    for (ns, tag) in &owner {
        assert_eq!(
            writes.get(&(tag.to_string(), ns.to_string())),
            Some(&9),
            "writes in {ns}: {writes:?}"
        );
    }

    // blue moves from shard y to shard x: y lets go, x takes over and
    // finds its Secrets in sync (writes nothing for them).
    let before = ip.seen().len();
    namespace(&fake, "blue", "x");
    // A change made after the move is applied by x alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    put(&fake, &id, "blue", "s0", b"two");
    synced_with(&fake, "blue", "s0", b"two").await;
    put(&fake, &id, "blue", "s9", b"new");
    synced_with(&fake, "blue", "s9", b"new").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: Vec<Seen> = ip.seen().split_off(before);
    let writes = writes_by_shard(&after);
    assert_eq!(
        writes.get(&("y".to_string(), "blue".to_string())),
        None,
        "y wrote in blue after it left: {writes:?}"
    );
    let secret_writes_by_x: Vec<&Seen> = after
        .iter()
        .filter(|s| {
            s.tag == "x" && s.is_work_write() && s.line.contains("/namespaces/blue/secrets")
        })
        .collect();
    // The changed s0 (one apply) and the new s9 (one create); s1 and s2
    // were found in sync.
    assert_eq!(
        secret_writes_by_x.len(),
        2,
        "{:?}",
        secret_writes_by_x
            .iter()
            .map(|s| &s.line)
            .collect::<Vec<_>>()
    );
    for i in 1..3 {
        synced_with(&fake, "blue", &format!("s{i}"), b"one").await;
    }
    // y no longer watches blue at all.
    let y_after: Vec<&Seen> = after
        .iter()
        .filter(|s| s.tag == "y" && namespace_of(&s.line) == Some("blue"))
        .filter(|s| !s.is_watch())
        .collect();
    assert!(
        y_after.is_empty(),
        "{:?}",
        y_after.iter().map(|s| &s.line).collect::<Vec<_>>()
    );

    for r in [x, y, z] {
        r.shutdown().await;
    }
}
