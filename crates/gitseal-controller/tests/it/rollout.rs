//! Rollout on change against the fake API (issue 10): the opted-in
//! workloads come from a watch, never from a list per Secret write; an
//! opted-in Deployment restarts once per change of its Secret's data, one
//! that does not opt in never; a restart over synced objects writes
//! nothing.

use std::collections::{BTreeMap, BTreeSet};

use gitseal_controller::run::Config;
use gitseal_controller::shard::Scope;
use gitseal_crypto::Identity;
use serde_json::{json, Value};

use crate::common::*;
use crate::fake_api::FakeApi;

const KINDS: [&str; 3] = ["deployments", "statefulsets", "daemonsets"];

fn deployment(ns: &str, name: &str, opt_in: Option<&str>) -> Value {
    let mut meta = json!({"name": name, "namespace": ns,
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}});
    if let Some(o) = opt_in {
        meta["annotations"]["gitseal.dev/restart-on-change"] = json!(o);
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
           "spec": {"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
}

fn template_hash(fake: &FakeApi, ns: &str, name: &str) -> Option<String> {
    fake.get("deployments", ns, name)?
        .pointer("/spec/template/metadata/annotations/gitseal.dev~1secret-hash.db")?
        .as_str()
        .map(str::to_string)
}

fn data_hash(fake: &FakeApi, ns: &str, name: &str) -> Option<String> {
    fake.get("sealedsecrets", ns, name)?["status"]["dataHash"]
        .as_str()
        .map(str::to_string)
}

/// `verb resource` → count, for the workload kinds only.
fn workload_requests(fake: &FakeApi) -> BTreeMap<String, u64> {
    fake.request_tally()
        .into_iter()
        .filter(|(k, _)| KINDS.iter().any(|kind| k.ends_with(kind)))
        .collect()
}

/// Requests that change something other than the Lease, the public-key
/// ConfigMap and Events.
fn writes(fake: &FakeApi) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|l| {
            ["PATCH", "PUT", "POST", "DELETE"]
                .iter()
                .any(|m| l.starts_with(m))
                && !l.contains("/leases")
                && !l.contains("/configmaps")
                && !l.contains("/events")
        })
        .collect()
}

fn put(fake: &FakeApi, id: &Identity, ns: &str, name: &str, value: &[u8]) {
    fake.upsert(
        "sealedsecrets",
        ns,
        sealed_secret(ns, name, &[("k", value)], &[id.recipient().clone()]),
    );
}

async fn synced(fake: &FakeApi, ns: &str, name: &str, value: &[u8]) -> String {
    wait_for(&format!("{ns}/{name} holds the value"), 30, || {
        let s = fake.get("secrets", ns, name)?;
        (secret_data(&s).get("k").map(Vec::as_slice) == Some(value)).then_some(())
    })
    .await;
    wait_ready(fake, ns, name, Some("Synced")).await;
    wait_for("the status hash", 10, || data_hash(fake, ns, name)).await
}

fn rollout_config() -> Config {
    let mut c = config();
    c.rollout = true;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_in_workloads_restart_once_per_change_without_a_list_per_write() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    fake.upsert(
        "deployments",
        "app",
        deployment("app", "web", Some("cache, db")),
    );
    fake.upsert("deployments", "app", deployment("app", "plain", None));
    fake.upsert(
        "deployments",
        "app",
        deployment("app", "other", Some("db-2")),
    );
    // A Deployment the typed API would not decode (no selector, a string
    // for replicas) does not stop the others: only metadata and template
    // annotations are read.
    fake.upsert(
        "deployments",
        "app",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "odd", "namespace": "app"},
               "spec": {"replicas": "three", "template": {"metadata": {"annotations": null}}}}),
    );
    fake.record_requests();
    let running = start_with(&fake, rollout_config()).await;

    // Cold start: 20 new Secrets (one of them `db`), each a write that
    // consults the workloads.
    for i in 0..19 {
        put(&fake, &id, "app", &format!("s{i}"), b"v");
    }
    put(&fake, &id, "app", "db", b"one");
    for i in 0..19 {
        synced(&fake, "app", &format!("s{i}"), b"v").await;
    }
    let first = synced(&fake, "app", "db", b"one").await;
    // The first sync of a new Secret restarts nothing (its pods started
    // with it, or wait for it).
    assert_eq!(template_hash(&fake, "app", "web"), None);

    // Two changes of the data: `web` restarts once for each, to the new hash.
    let mut hashes = vec![first];
    for value in [b"two".as_slice(), b"three"] {
        put(&fake, &id, "app", "db", value);
        let before = hashes.last().cloned();
        let now = wait_for("a new data hash", 15, || {
            data_hash(&fake, "app", "db").filter(|h| Some(h) != before.as_ref())
        })
        .await;
        synced(&fake, "app", "db", value).await;
        let shown = now.clone();
        wait_for("web carries the new hash", 10, || {
            (template_hash(&fake, "app", "web").as_deref() == Some(shown.as_str())).then_some(())
        })
        .await;
        hashes.push(now);
    }
    let tally = workload_requests(&fake);
    // One list and one watch per kind (the index); then no list at all,
    // whatever the number of Secret writes (21 here).
    for kind in KINDS {
        assert_eq!(tally.get(&format!("list {kind}")), Some(&1), "{tally:?}");
    }
    let patched: BTreeMap<String, usize> = fake
        .requests()
        .iter()
        .filter(|l| l.starts_with("PATCH /apis/apps/"))
        .fold(BTreeMap::new(), |mut m, l| {
            let name = l.split('?').next().unwrap_or_default().rsplit('/').next();
            *m.entry(name.unwrap_or_default().to_string()).or_default() += 1;
            m
        });
    assert_eq!(patched, BTreeMap::from([("web".to_string(), 2)]));
    assert_eq!(template_hash(&fake, "app", "plain"), None);
    assert_eq!(template_hash(&fake, "app", "other"), None);
    running.shutdown().await;

    // A restart over the synced objects writes nothing.
    fake.record_requests();
    let running = start_with(&fake, rollout_config()).await;
    wait_for("keys", 10, || running.handles.keys.is_ready().then_some(())).await;
    wait_for("every object reconciled", 15, || {
        (crate::process::metric_sum(
            &running.handles.metrics.render(),
            "gitseal_reconciles_total",
        ) >= 20.0)
            .then_some(())
    })
    .await;
    assert_eq!(writes(&fake), Vec::<String>::new());
    assert_eq!(template_hash(&fake, "app", "web").as_ref(), hashes.last());
    running.shutdown().await;
}

/// A shard watches the workloads of its own namespaces only, and restarts
/// an opted-in workload there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_watches_workloads_in_its_namespaces_only() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    for ns in ["team-a", "team-b"] {
        fake.upsert("deployments", ns, deployment(ns, "web", Some("db")));
    }
    fake.record_requests();
    let mut c = rollout_config();
    c.scope = Scope::Namespaces(BTreeSet::from(["team-a".to_string()]));
    let running = start_with(&fake, c).await;
    put(&fake, &id, "team-a", "db", b"one");
    let first = synced(&fake, "team-a", "db", b"one").await;
    put(&fake, &id, "team-a", "db", b"two");
    let now = wait_for("a new data hash", 15, || {
        data_hash(&fake, "team-a", "db").filter(|h| *h != first)
    })
    .await;
    wait_for("web in team-a restarted", 10, || {
        (template_hash(&fake, "team-a", "web").as_deref() == Some(now.as_str())).then_some(())
    })
    .await;
    let workload_lines: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|l| l.contains("/apis/apps/"))
        .collect();
    assert!(
        workload_lines
            .iter()
            .all(|l| l.contains("/namespaces/team-a/")),
        "{workload_lines:?}"
    );
    for kind in KINDS {
        let lists = workload_lines
            .iter()
            .filter(|l| {
                l.starts_with(&format!("GET /apis/apps/v1/namespaces/team-a/{kind}?"))
                    && !l.contains("watch=true")
            })
            .count();
        assert_eq!(lists, 1, "{kind}: {workload_lines:?}");
    }
    assert_eq!(template_hash(&fake, "team-b", "web"), None);
    running.shutdown().await;
}
