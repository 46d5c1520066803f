//! The fault storm (issue 16 §1): the real controller against the fake API
//! while the API injects faults at random ([`Chaos`]: 409 on writes, 410 on
//! watches, 429 with Retry-After, 500/503, answers delayed past the
//! client's timeout), watch connections are dropped, the API is unreachable
//! for seconds at a time, and meanwhile SealedSecrets are created, changed
//! and deleted and their Secrets are edited and deleted by hand (also while
//! the Secret watch is down and its history gone).
//!
//! A journal of every Secret and SealedSecret event (a watcher connected
//! all along) checks that no Secret is ever blanked or deleted by the
//! controller, and none is written after its SealedSecret was deleted. When
//! the faults stop, every Secret must become exactly what its SealedSecret
//! says, with no orphan, and the controller must go quiet (no writes).
//!
//! The same harness runs in the test suite (a short storm,
//! [`crate::fault_storm`]) and in `benches/fault_storm.rs` (a long one,
//! with figures for docs/reliability.md).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gitseal_crypto::{Identity, Recipient};
use http::Request;
use serde_json::{json, Value};

use crate::common::{add_key, ready, sealed_secret, secret_data, start_with_client, Running};
use crate::fake_api::{Chaos, FakeApi, Journaled};

/// What a storm does.
#[derive(Clone, Debug)]
pub struct StormConfig {
    /// SealedSecrets that exist at the start (names are reused after a delete).
    pub objects: usize,
    /// How long the faults last.
    pub storm: Duration,
    /// One user operation every `op_every`.
    pub op_every: Duration,
    /// Fault rates.
    pub chaos: Chaos,
    /// The client's request timeout (delayed answers exceed it).
    pub request_timeout: Duration,
    /// Every watch connection is dropped this often.
    pub drop_watches_every: Duration,
    /// The API is unreachable this long, once per `outage_every`.
    pub outage: Duration,
    /// See `outage`.
    pub outage_every: Duration,
    /// How long the faults-off phase may take to converge.
    pub converge_limit: Duration,
    /// After converging, the controller may still finish work it
    /// scheduled during the storm from a view its watches have not yet
    /// caught up with (a retry, the Event of a recovery whose status write
    /// timed out): it has settled once it wrote nothing for `settle_gap`,
    /// which must happen within `settle_limit` (longer than the watches'
    /// longest backoff, 30 s), and must change no Secret meanwhile.
    pub settle_gap: Duration,
    /// See `settle_gap`.
    pub settle_limit: Duration,
    /// How long the controller must then stay quiet (no writes).
    pub quiet: Duration,
    /// Seed of the user operations (the faults have their own).
    pub seed: u64,
}

impl StormConfig {
    /// `rate` of every fault kind (e.g. 0.2), `delay` an order of magnitude rarer.
    pub fn new(objects: usize, storm: Duration, rate: f64, seed: u64) -> Self {
        let request_timeout = Duration::from_millis(800);
        StormConfig {
            objects,
            storm,
            op_every: Duration::from_millis(40),
            chaos: Chaos {
                seed: seed ^ 0x5eed,
                conflict: rate,
                gone: rate,
                throttle: rate / 2.0,
                server_error: rate / 2.0,
                delay: rate / 10.0,
                delay_by: request_timeout + Duration::from_millis(400),
            },
            request_timeout,
            drop_watches_every: Duration::from_millis(1500),
            outage: Duration::from_secs(3),
            outage_every: Duration::from_secs(10),
            converge_limit: Duration::from_secs(60),
            settle_gap: Duration::from_secs(2),
            settle_limit: Duration::from_secs(40),
            quiet: Duration::from_secs(3),
            seed,
        }
    }
}

/// What a storm did and how the controller came out of it.
#[derive(Debug, Default)]
pub struct StormReport {
    /// Faults by kind (the API's random ones, dropped watches, outages).
    pub faults: BTreeMap<String, u64>,
    /// User operations by kind.
    pub ops: BTreeMap<&'static str, u64>,
    /// SealedSecrets at the end.
    pub live_objects: usize,
    /// Distinct SealedSecrets (uids) that existed during the run.
    pub objects_seen: usize,
    /// From faults off until every Secret matched (None: it did not).
    pub converged_after: Option<Duration>,
    /// Writes of Secrets (create, patch, update, delete) over the whole run.
    pub secret_writes: u64,
    /// Status writes of SealedSecrets over the whole run.
    pub status_writes: u64,
    /// Events created over the whole run.
    pub events: u64,
    /// Requests served over the whole run.
    pub requests: u64,
    /// Requests by verb and resource over the whole run.
    pub tally: BTreeMap<String, u64>,
    /// From converging until no write for `settle_gap` (None: did not settle).
    pub settled_after: Option<Duration>,
    /// Writes between converging and settling (none changed a Secret).
    pub settle_writes: Vec<String>,
    /// SealedSecret status changes between converging and settling: the
    /// object and the status fields that changed.
    pub settle_status_changes: Vec<String>,
    /// Requests and writes during the quiet window after settling.
    pub quiet_requests: u64,
    /// See `quiet_requests`.
    pub quiet_writes: Vec<String>,
    /// CPU time of this whole process (controller, fake API, driver)
    /// during the quiet window; only meaningful when nothing else runs in
    /// the process (the bench).
    pub quiet_cpu: Option<Duration>,
    /// What went wrong (empty on success).
    pub violations: Vec<String>,
}

impl StormReport {
    /// Secret writes per user operation that asks for one (create, change,
    /// hand edit or deletion of a Secret).
    pub fn writes_per_change(&self) -> f64 {
        let changes: u64 = [
            "create",
            "change",
            "edit secret",
            "delete secret",
            "delete secret silently",
        ]
        .iter()
        .map(|k| self.ops.get(k).copied().unwrap_or(0))
        .sum::<u64>()
            + self.objects_seen as u64;
        self.secret_writes as f64 / changes.max(1) as f64
    }

    /// Lines for a report.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![
            format!("faults injected: {:?}", self.faults),
            format!("user operations: {:?}", self.ops),
            format!(
                "objects: {} alive at the end, {} existed",
                self.live_objects, self.objects_seen
            ),
            format!(
                "converged after faults stopped: {}",
                self.converged_after
                    .map(|d| format!("{:.2} s", d.as_secs_f64()))
                    .unwrap_or_else(|| "NOT CONVERGED".into())
            ),
            format!(
                "writes: {} Secret writes ({:.2} per Secret-changing operation), {} status writes, {} Events, {} requests",
                self.secret_writes,
                self.writes_per_change(),
                self.status_writes,
                self.events,
                self.requests
            ),
            format!(
                "settled after converging: {} ({} writes: {:?}; status changes: {:?})",
                self.settled_after
                    .map(|d| format!("{:.2} s", d.as_secs_f64()))
                    .unwrap_or_else(|| "NOT SETTLED".into()),
                self.settle_writes.len(),
                self.settle_writes,
                self.settle_status_changes
            ),
            format!(
                "quiet window: {} requests, {} writes, {} CPU",
                self.quiet_requests,
                self.quiet_writes.len(),
                self.quiet_cpu
                    .map(|d| format!("{} ms", d.as_millis()))
                    .unwrap_or_else(|| "(unknown)".into())
            ),
        ];
        out.push(format!("requests by kind: {:?}", self.tally));
        out.extend(self.violations.iter().map(|v| format!("VIOLATION: {v}")));
        out
    }
}

/// Namespaces of the storm's objects.
const NAMESPACES: [&str; 2] = ["storm-a", "storm-b"];

/// splitmix64 for the user operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The model: what each SealedSecret holds in plaintext.
type Items = BTreeMap<String, Vec<u8>>;

struct Driver {
    fake: FakeApi,
    to: Vec<Recipient>,
    rng: Rng,
    counter: u64,
    /// (namespace, name) → plaintext items; absent = no SealedSecret.
    model: BTreeMap<(String, String), Items>,
    /// Uids of Secrets deleted by hand.
    hand_deleted: HashSet<String>,
    ops: BTreeMap<&'static str, u64>,
    /// Every operation, for the diagnosis of a failed run.
    log: Vec<String>,
}

impl Driver {
    fn items(&mut self) -> Items {
        let n = 1 + self.rng.below(3);
        let mut out = Items::new();
        for i in 0..n {
            self.counter += 1;
            let value = format!("value-{}-{:x}", self.counter, self.rng.next()); // gitseal:allow made-up test value
            out.insert(format!("k{i}"), value.into_bytes());
        }
        out
    }

    fn put(&mut self, ns: &str, name: &str, items: &Items) {
        let pairs: Vec<(&str, &[u8])> = items
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        self.fake.upsert(
            "sealedsecrets",
            ns,
            sealed_secret(ns, name, &pairs, &self.to),
        );
        self.model
            .insert((ns.to_string(), name.to_string()), items.clone());
    }

    fn name(&mut self, objects: usize) -> (String, String) {
        let ns = NAMESPACES[self.rng.below(NAMESPACES.len())];
        (ns.to_string(), format!("s{}", self.rng.below(objects)))
    }

    fn count(&mut self, op: &'static str) {
        *self.ops.entry(op).or_insert(0) += 1;
    }

    fn note(&mut self, op: &'static str, ns: &str, name: &str) {
        self.count(op);
        let n = self.fake.request_count();
        self.log
            .push(format!("{ns}/{name} {op} (after request {n})"));
    }

    /// One random user operation.
    fn step(&mut self, objects: usize) {
        let (ns, name) = self.name(objects);
        let key = (ns.clone(), name.clone());
        let exists = self.model.contains_key(&key);
        let roll = self.rng.below(100);
        if !exists {
            let items = self.items();
            self.put(&ns, &name, &items);
            self.note("create", &ns, &name);
            return;
        }
        match roll {
            0..=34 => {
                let items = self.items();
                self.put(&ns, &name, &items);
                self.note("change", &ns, &name);
            }
            35..=49 => {
                self.fake.remove("sealedsecrets", &ns, &name);
                self.model.remove(&key);
                self.note("delete", &ns, &name);
            }
            50..=74 => {
                // kubectl edit secret: a value changed and a key added.
                if self
                    .fake
                    .merge_patch(
                        "secrets",
                        &ns,
                        &name,
                        &json!({"data": {"k0": "dGFtcGVyZWQ=", "extra": "eA=="}}),
                    )
                    .is_some()
                {
                    self.note("edit secret", &ns, &name);
                }
            }
            75..=89 => {
                if let Some(uid) = self.uid_of(&ns, &name) {
                    if self.fake.remove("secrets", &ns, &name) {
                        self.hand_deleted.insert(uid);
                        self.note("delete secret", &ns, &name);
                    }
                }
            }
            _ => {
                // Deleted while the Secret watch is down and the watch
                // history no longer reaches back: the watch relists, and a
                // relist replays no deletion.
                if self.uid_of(&ns, &name).is_some()
                    && self.fake.remove_silently("secrets", &ns, &name)
                {
                    self.fake.drop_watches("secrets");
                    self.note("delete secret silently", &ns, &name);
                }
            }
        }
    }

    fn uid_of(&self, ns: &str, name: &str) -> Option<String> {
        self.fake
            .get("secrets", ns, name)
            .and_then(|s| s["metadata"]["uid"].as_str().map(str::to_string))
    }
}

/// A kube client on `fake` that fails every request at once while
/// `unreachable` is set (connection refused), hands each request to its
/// own task (a request the client gave up on is still answered, as over a
/// network), and bounds requests with the controller's timeout layer.
pub fn storm_client(
    fake: &FakeApi,
    unreachable: Arc<AtomicBool>,
    timeout: Duration,
) -> kube::Client {
    let fake = fake.clone();
    let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
        let fake = fake.clone();
        let down = unreachable.load(Ordering::SeqCst);
        async move {
            if down {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused (injected outage)",
                ));
            }
            let served = tokio::spawn(async move { fake.handle(req).await });
            served
                .await
                .map_err(|e| std::io::Error::other(format!("fake API task: {e}")))
        }
    });
    let svc = tower::ServiceBuilder::new()
        .layer(gitseal_controller::kube_client::TimeoutLayer::new(timeout))
        .service(svc);
    kube::Client::new(svc, "default")
}

/// What the journal says went wrong: a Secret blanked, deleted by anyone
/// but a user or garbage collection, or written after its SealedSecret was
/// deleted and left there (one written in the race between the check that
/// the owner exists and the write is deleted again at once by the
/// controller, as garbage collection would).
fn journal_violations(events: &[Journaled], hand_deleted: &HashSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut dead_owners: HashSet<String> = HashSet::new();
    // Secrets written for an owner already deleted (the race between the
    // owner check and the write): the controller must delete them again.
    let mut orphans: BTreeMap<String, String> = BTreeMap::new();
    for e in events {
        let v: Value = serde_json::from_slice(&e.bytes).unwrap_or(Value::Null);
        let uid = v["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let where_ = format!("{}/{}", e.key.namespace, e.key.name);
        if !NAMESPACES.contains(&e.key.namespace.as_str()) {
            continue;
        }
        if e.key.plural == "sealedsecrets" {
            if e.kind == "DELETED" {
                dead_owners.insert(uid);
            }
            continue;
        }
        let owners: Vec<String> = v["metadata"]["ownerReferences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["uid"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let collected = owners.iter().any(|o| dead_owners.contains(o));
        match e.kind {
            "DELETED" => {
                orphans.remove(&uid);
                if !hand_deleted.contains(&uid) && !collected {
                    out.push(format!("Secret {where_} deleted by neither a user nor GC"));
                }
            }
            kind => {
                if secret_data(&v).is_empty() {
                    out.push(format!("Secret {where_} blanked ({kind})"));
                }
                if collected {
                    orphans.insert(uid, format!("{where_} ({kind})"));
                }
            }
        }
    }
    for (_, what) in orphans {
        out.push(format!(
            "Secret {what} written after its SealedSecret was deleted, and not deleted again"
        ));
    }
    out
}

/// What still differs from the model (empty when converged).
fn differences(fake: &FakeApi, model: &BTreeMap<(String, String), Items>) -> Vec<String> {
    let mut out = Vec::new();
    let mut live_uids = HashSet::new();
    for ((ns, name), items) in model {
        let Some(obj) = fake.get("sealedsecrets", ns, name) else {
            out.push(format!("SealedSecret {ns}/{name} missing"));
            continue;
        };
        if let Some(uid) = obj["metadata"]["uid"].as_str() {
            live_uids.insert(uid.to_string());
        }
        let reason = ready(&obj).map(|r| r.1).unwrap_or_default();
        if reason != "Synced" {
            out.push(format!("{ns}/{name} is {reason:?}"));
        }
        if obj["status"]["observedGeneration"] != obj["metadata"]["generation"] {
            out.push(format!("{ns}/{name} status is behind its generation"));
        }
        match fake.get("secrets", ns, name) {
            None => out.push(format!("Secret {ns}/{name} missing")),
            Some(secret) => {
                if secret_data(&secret) != *items {
                    out.push(format!("Secret {ns}/{name} differs from its SealedSecret"));
                }
            }
        }
    }
    for secret in fake.list("secrets") {
        let ns = secret["metadata"]["namespace"].as_str().unwrap_or_default();
        if !NAMESPACES.contains(&ns) {
            continue;
        }
        let owned = secret["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|o| o["uid"].as_str().is_some_and(|u| live_uids.contains(u)))
            });
        if !owned {
            out.push(format!(
                "orphan Secret {ns}/{}",
                secret["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

/// User plus system CPU time of this process so far (`/proc/self/stat`,
/// in clock ticks of 10 ms, the Linux default).
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// What happened to `ns/name` (no values: request lines, operations and
/// event kinds only), for a failed run.
fn diagnose(
    at: &str,
    requests: &[String],
    base: u64,
    ops: &[String],
    events: &[Journaled],
) -> String {
    let (ns, name) = at.split_once('/').unwrap_or_default();
    let secret = format!("/namespaces/{ns}/secrets/{name}?");
    let sealed = format!("/namespaces/{ns}/sealedsecrets/{name}");
    let create = format!("/namespaces/{ns}/secrets?");
    let lines: Vec<String> = requests
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.contains(&secret)
                || l.contains(&sealed)
                || (l.starts_with("POST") && l.contains(&create))
        })
        .map(|(i, l)| format!("#{} {l}", i as u64 + base + 1))
        .collect();
    let ops: Vec<&String> = ops
        .iter()
        .filter(|l| l.starts_with(&format!("{at} ")))
        .collect();
    let events: Vec<String> = events
        .iter()
        .filter(|e| e.key.namespace == ns && e.key.name == name)
        .map(|e| {
            let v: Value = serde_json::from_slice(&e.bytes).unwrap_or(Value::Null);
            format!(
                "{} {} uid {} rv {}",
                e.key.plural,
                e.kind,
                v["metadata"]["uid"].as_str().unwrap_or_default(),
                v["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            )
        })
        .collect();
    format!("diagnosis of {at}: operations {ops:#?}\nevents {events:#?}\nrequests {lines:#?}")
}

/// The status fields (and condition fields, by condition type) that differ
/// between two versions of a SealedSecret, by name only.
fn status_fields_changed(before: Option<&[u8]>, after: &[u8]) -> String {
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap_or(Value::Null);
    let (old, new) = (before.map(parse).unwrap_or(Value::Null), parse(after));
    let mut out = Vec::new();
    if old["metadata"]["generation"] != new["metadata"]["generation"] {
        out.push("metadata.generation".to_string());
    }
    let fields = |v: &Value| -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        for (k, val) in v["status"].as_object().into_iter().flatten() {
            if k == "conditions" {
                for c in val.as_array().into_iter().flatten() {
                    let t = c["type"].as_str().unwrap_or("?");
                    for (ck, cv) in c.as_object().into_iter().flatten() {
                        m.insert(format!("conditions[{t}].{ck}"), cv.clone());
                    }
                }
            } else {
                m.insert(k.clone(), val.clone());
            }
        }
        m
    };
    let (a, b) = (fields(&old), fields(&new));
    for k in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if a.get(k) != b.get(k) {
            out.push(format!("status.{k}"));
        }
    }
    out.join(", ")
}

fn writes_of(tally: &BTreeMap<String, u64>, pred: impl Fn(&str) -> bool) -> u64 {
    tally.iter().filter(|(k, _)| pred(k)).map(|(_, v)| *v).sum()
}

/// Runs a storm; the controller runs in this process on a fresh fake API.
pub async fn run_storm(cfg: &StormConfig) -> StormReport {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    fake.journal("secrets");
    fake.journal("sealedsecrets");
    let unreachable = Arc::new(AtomicBool::new(false));
    let client = storm_client(&fake, unreachable.clone(), cfg.request_timeout);
    let mut config = crate::common::config();
    config.listen = None;
    let running: Running = start_with_client(&fake, client, config, None).await;
    crate::common::wait_for("keys loaded", 10, || {
        running.handles.keys.is_ready().then_some(())
    })
    .await;

    let mut driver = Driver {
        fake: fake.clone(),
        to: vec![id.recipient().clone()],
        rng: Rng(cfg.seed),
        counter: 0,
        model: BTreeMap::new(),
        hand_deleted: HashSet::new(),
        ops: BTreeMap::new(),
        log: Vec::new(),
    };
    for i in 0..cfg.objects {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let items = driver.items();
        driver.put(ns, &format!("s{}", i / NAMESPACES.len()), &items);
    }
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();

    // The storm.
    fake.record_requests();
    let base = fake.request_count();
    fake.chaos(Some(cfg.chaos.clone()));
    let started = Instant::now();
    let mut next_drop = started + cfg.drop_watches_every;
    let mut next_outage = started + cfg.outage_every / 2;
    let mut outage_ends: Option<Instant> = None;
    let per_ns = cfg.objects.div_ceil(NAMESPACES.len());
    while started.elapsed() < cfg.storm {
        let now = Instant::now();
        if now >= next_drop {
            fake.drop_all_watches();
            *faults.entry("watches dropped".into()).or_insert(0) += 1;
            next_drop = now + cfg.drop_watches_every;
        }
        if outage_ends.is_some_and(|end| now >= end) {
            unreachable.store(false, Ordering::SeqCst);
            outage_ends = None;
        }
        if outage_ends.is_none() && now >= next_outage && !cfg.outage.is_zero() {
            unreachable.store(true, Ordering::SeqCst);
            // Open connections break too.
            fake.drop_all_watches();
            *faults
                .entry("API unreachable (outages)".into())
                .or_insert(0) += 1;
            outage_ends = Some(now + cfg.outage);
            next_outage = now + cfg.outage_every;
        }
        driver.step(per_ns);
        tokio::time::sleep(cfg.op_every).await;
    }
    // Faults off.
    unreachable.store(false, Ordering::SeqCst);
    fake.chaos(None);
    fake.clear_faults();
    let calm = Instant::now();
    for (k, v) in fake.chaos_counts() {
        faults.insert(k.to_string(), v);
    }

    let mut converged_after = None;
    let mut last = Vec::new();
    while calm.elapsed() < cfg.converge_limit {
        last = differences(&fake, &driver.model);
        if last.is_empty() {
            converged_after = Some(calm.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut violations = Vec::new();
    if converged_after.is_none() {
        violations.push(format!(
            "not converged {:?} after the faults stopped: {last:?}",
            cfg.converge_limit
        ));
    }

    let storm_requests = fake.requests();
    let tally = fake.request_tally();
    // Settle: what the controller scheduled from a stale view may still
    // run, but must stop, and must change no Secret.
    let journaled_at_convergence = fake.journal_events().len();
    fake.record_requests();
    let writes = |fake: &FakeApi| -> Vec<String> {
        fake.requests()
            .into_iter()
            .filter(|l| !l.starts_with("GET "))
            .collect()
    };
    let settling = Instant::now();
    let (mut seen, mut last_write) = (0, settling);
    let settled_after = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = writes(&fake).len();
        if n != seen {
            (seen, last_write) = (n, Instant::now());
        }
        if last_write.elapsed() >= cfg.settle_gap {
            break Some(last_write - settling);
        }
        if settling.elapsed() > cfg.settle_limit {
            violations.push(format!(
                "still writing {:?} after converging: {:?}",
                cfg.settle_limit,
                writes(&fake)
            ));
            break None;
        }
    };
    let settle_writes = writes(&fake);
    let (mut settle_status_changes, mut changed_secrets) = (Vec::new(), Vec::new());
    let journal = fake.journal_events();
    for (i, e) in journal.iter().enumerate().skip(journaled_at_convergence) {
        if !NAMESPACES.contains(&e.key.namespace.as_str()) {
            continue;
        }
        let at = format!("{}/{}", e.key.namespace, e.key.name);
        if e.key.plural == "secrets" {
            changed_secrets.push(format!("{at} {}", e.kind));
        } else {
            let before = journal[..i].iter().rev().find(|p| p.key == e.key);
            settle_status_changes.push(format!(
                "{at}: {}",
                status_fields_changed(before.map(|p| &p.bytes[..]), &e.bytes)
            ));
        }
    }
    if !changed_secrets.is_empty() {
        violations.push(format!(
            "Secrets changed after converging: {changed_secrets:?}"
        ));
    }
    // Quiet: nothing more to do, so nothing is written.
    fake.record_requests();
    let before = fake.request_count();
    let cpu_before = process_cpu();
    tokio::time::sleep(cfg.quiet).await;
    let quiet_cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let quiet_requests = fake.request_count() - before;
    let quiet_writes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    if !quiet_writes.is_empty() {
        violations.push(format!("still writing after converging: {quiet_writes:?}"));
    }
    // Still converged after the quiet window.
    let after = differences(&fake, &driver.model);
    if converged_after.is_some() && !after.is_empty() {
        violations.push(format!("diverged again: {after:?}"));
    }
    let events = fake.journal_events();
    violations.extend(journal_violations(&events, &driver.hand_deleted));
    let named = violations.iter().find_map(|v| {
        v.split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '[' || c == ']')
            .find(|w| w.starts_with("storm-") && w.contains('/'))
            .map(str::to_string)
    });
    if let Some(at) = named {
        violations.push(diagnose(&at, &storm_requests, base, &driver.log, &events));
    }
    let objects_seen = events
        .iter()
        .filter(|e| e.key.plural == "sealedsecrets" && e.kind == "ADDED")
        .count();

    let report = StormReport {
        faults,
        ops: driver.ops.clone(),
        live_objects: driver.model.len(),
        objects_seen,
        converged_after,
        secret_writes: writes_of(&tally, |k| {
            k.ends_with(" secrets")
                && !k.starts_with("get ")
                && !k.starts_with("list ")
                && !k.starts_with("watch ")
        }),
        status_writes: writes_of(&tally, |k| k.ends_with("sealedsecrets/status")),
        events: writes_of(&tally, |k| k == "create events"),
        requests: fake.request_count(),
        tally: tally.clone(),
        settled_after,
        settle_writes,
        settle_status_changes,
        quiet_requests,
        quiet_writes,
        quiet_cpu,
        violations,
    };
    running.shutdown().await;
    report
}

/// `GITSEAL_STORM_SEED` when set (to replay the operations of a failed
/// run; the faults' timing still varies with scheduling), else `default`.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var("GITSEAL_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
