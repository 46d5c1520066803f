//! An in-process fake Kubernetes API server, served as a tower `Service`
//! straight into `kube::Client::new`, so the real kube-runtime `Controller`
//! (LIST + streaming WATCH), `Api` calls and the event `Recorder` run end to
//! end without a cluster.
//!
//! It keeps objects (as JSON bytes, to stay small), hands out
//! resourceVersions, uids, generations and creation timestamps, and serves
//! GET, LIST (label/field selectors, limit/continue), POST, PUT (optimistic
//! concurrency on resourceVersion), PATCH (server-side apply with per-manager
//! field removal, JSON merge patch), DELETE (uid preconditions, cascading to
//! owned objects) and WATCH (replay from a bounded history, then live
//! events; 410 Gone when the history no longer reaches back). Status
//! subresources are kept apart from the main resource as a real API server
//! does for CRDs; `Accept: …;as=PartialObjectMetadata` gets metadata-only
//! answers (GET, LIST, WATCH) as kube's `metadata_watcher` expects. Faults
//! (403/404/409/410/500…) can be injected per request, or drawn at random
//! rates ([`Chaos`], off by default); lists paged with `limit` are served
//! from one snapshot; creates carrying a resourceVersion are refused; the
//! watch events of a resource can be journaled. It is shared by the
//! integration tests and the benchmarks; [`crate::process`] serves it over
//! real HTTP to a separate controller process.

#![allow(dead_code, clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

/// Kind of the internal event that ends live watches (never stored or sent).
const CLOSE: &str = "CLOSE";

/// Response body type of the fake.
pub type FakeBody = UnsyncBoxBody<Bytes, Infallible>;

/// Where an object lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Resource plural, e.g. `secrets`.
    pub plural: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Key {
    pub fn new(plural: &str, namespace: &str, name: &str) -> Self {
        Key {
            plural: plural.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

struct Obj {
    bytes: Bytes,
    labels: BTreeMap<String, String>,
    owners: Vec<String>,
    uid: String,
}

#[derive(Clone)]
struct WatchEvt {
    rv: u64,
    kind: &'static str,
    key: Arc<Key>,
    labels: Arc<BTreeMap<String, String>>,
    /// The labels before a MODIFIED event: a watch with a label selector
    /// sees an object entering it as ADDED and leaving it as DELETED, as
    /// from a real API server.
    old_labels: Option<Arc<BTreeMap<String, String>>>,
    bytes: Bytes,
}

/// An injected failure.
#[derive(Clone, Debug)]
pub struct Fault {
    /// HTTP method to match (None = any).
    pub method: Option<Method>,
    /// Substring of the path (and query) to match.
    pub path_contains: String,
    /// Status code to answer.
    pub code: u16,
    /// How many requests to fail (then the fault is gone).
    pub times: u32,
}

/// Random faults at configured rates, off by default ([`FakeApi::chaos`]):
/// each request draws once; a probability of 0 turns a kind off.
#[derive(Clone, Debug, Default)]
pub struct Chaos {
    /// Seed of the draws (a run is reproducible up to scheduling).
    pub seed: u64,
    /// A write (POST, PUT, PATCH, DELETE) is answered 409 Conflict.
    pub conflict: f64,
    /// A watch is answered with a 410 Gone ERROR event (the client relists).
    pub gone: f64,
    /// A request other than a watch is answered 429 with `Retry-After: 1`.
    pub throttle: f64,
    /// A request other than a watch is answered 500 or 503.
    pub server_error: f64,
    /// A request other than a watch is answered only after `delay_by`
    /// (past the client's timeout the client gives up, though a write took
    /// effect).
    pub delay: f64,
    /// How long a delayed request waits.
    pub delay_by: std::time::Duration,
}

struct ChaosState {
    cfg: Chaos,
    rng: u64,
    counts: BTreeMap<&'static str, u64>,
}

impl ChaosState {
    /// splitmix64, as a uniform draw in [0, 1).
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hit(&mut self, p: f64, kind: &'static str) -> bool {
        let hit = p > 0.0 && self.draw() < p;
        if hit {
            *self.counts.entry(kind).or_insert(0) += 1;
        }
        hit
    }
}

/// One watch event of a journaled resource ([`FakeApi::journal`]).
#[derive(Clone, Debug)]
pub struct Journaled {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object.
    pub key: Key,
    /// The object as sent to watchers.
    pub bytes: Bytes,
}

struct State {
    rv: u64,
    uids: u64,
    objects: BTreeMap<Key, Obj>,
    history: VecDeque<WatchEvt>,
    history_cap: usize,
    /// (object, manager, status subresource) → leaf paths last applied.
    applied: HashMap<(Key, String, bool), BTreeSet<Vec<String>>>,
    faults: Vec<Fault>,
    log: Option<Vec<String>>,
    requests: u64,
    /// `verb resource` → requests served (see [`FakeApi::request_tally`]).
    tally: BTreeMap<String, u64>,
    /// Counts of a chaos run that was turned off.
    chaos_counts_kept: Option<BTreeMap<&'static str, u64>>,
    /// Paged lists in progress: (id, resourceVersion, the matching objects).
    snapshots: VecDeque<(u64, u64, Arc<Vec<Bytes>>)>,
    next_snapshot: u64,
    /// Random faults ([`FakeApi::chaos`]); off when `None`.
    chaos: Option<ChaosState>,
    /// Plurals whose every watch event is journaled ([`FakeApi::journal`]).
    journaled: BTreeSet<String>,
    journal: Vec<Journaled>,
    /// Uids of the objects stored (owner lookups of garbage collection).
    live_uids: HashSet<String>,
}

/// The fake API server. Cheap to clone (shared state).
#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    tx: broadcast::Sender<WatchEvt>,
}

struct Route {
    group_version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

fn kind_of(plural: &str) -> String {
    match plural {
        "secrets" => "Secret".into(),
        "configmaps" => "ConfigMap".into(),
        "events" => "Event".into(),
        "leases" => "Lease".into(),
        "sealedsecrets" => "SealedSecret".into(),
        "namespaces" => "Namespace".into(),
        "services" => "Service".into(),
        other => {
            let s = other.trim_end_matches('s');
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
    }
}

/// Resources whose status is a subresource (main-resource writes keep status).
fn has_status_subresource(plural: &str) -> bool {
    matches!(plural, "sealedsecrets")
}

fn parse_route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match *segs.first()? {
        "api" => (segs.get(1)?.to_string(), &segs[2..]),
        "apis" => (format!("{}/{}", segs.get(1)?, segs.get(2)?), &segs[3..]),
        _ => return None,
    };
    let (namespace, rest) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    Some(Route {
        group_version: gv,
        namespace,
        plural: rest.first()?.to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    })
}

fn query_map(query: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(k.to_string(), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `verb resource[/subresource]` of a request, for [`FakeApi::request_tally`].
fn tally_key(method: &Method, path: &str, watch: bool) -> String {
    let Some(route) = parse_route(path).filter(|_| discovery(path).is_none()) else {
        return "get discovery".to_string();
    };
    let verb = match (method.as_str(), route.name.is_some()) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        (other, _) => other,
    };
    match route.sub {
        Some(sub) => format!("{verb} {}/{sub}", route.plural),
        None => format!("{verb} {}", route.plural),
    }
}

/// A parsed label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-joined.
fn selector_matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
    selector
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .all(|term| {
            let term = term.trim();
            if let Some((k, v)) = term.split_once("!=") {
                labels.get(k.trim()).map(String::as_str) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels.get(k.trim()).map(String::as_str) == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                !labels.contains_key(k)
            } else {
                labels.contains_key(term)
            }
        })
}

fn field_matches(selector: &str, key: &Key) -> bool {
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some(("metadata.name", v)) => key.name == v.trim_start_matches('='),
            Some(("metadata.namespace", v)) => key.namespace == v.trim_start_matches('='),
            _ => true,
        })
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn full(status: StatusCode, body: Bytes) -> Response<FakeBody> {
    let mut r = Response::new(Full::new(body).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(code: u16, reason: &str, message: &str) -> Response<FakeBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    full(
        status,
        Bytes::from(status_body(code, reason, message).to_string()),
    )
}

fn counts_or_empty(
    kept: Option<BTreeMap<&'static str, u64>>,
    more: BTreeMap<&'static str, u64>,
) -> Option<BTreeMap<&'static str, u64>> {
    let mut out = kept.unwrap_or_default();
    for (k, v) in more {
        *out.entry(k).or_insert(0) += v;
    }
    Some(out)
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        503 => "ServiceUnavailable",
        422 => "Invalid",
        429 => "TooManyRequests",
        _ => "InternalError",
    }
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn owners_of(v: &Value) -> Vec<String> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// An object reduced to a `meta.k8s.io/v1` `PartialObjectMetadata` (what a
/// real API server sends for `Accept: …;as=PartialObjectMetadata`).
fn metadata_only(bytes: &Bytes) -> Bytes {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let meta = v.get("metadata").cloned().unwrap_or_else(|| json!({}));
    Bytes::from(
        json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": meta,
        })
        .to_string(),
    )
}

/// The API groups and resources the fake serves, for clients that discover
/// them first (kubectl): legacy (non-aggregated) discovery documents.
const RESOURCES: &[(&str, &str, &str, &str, bool)] = &[
    // (group/version, plural, singular, kind, namespaced)
    ("v1", "secrets", "secret", "Secret", true),
    ("v1", "configmaps", "configmap", "ConfigMap", true),
    ("v1", "namespaces", "namespace", "Namespace", false),
    ("v1", "events", "event", "Event", true),
    (
        "gitseal.dev/v1alpha1",
        "sealedsecrets",
        "sealedsecret",
        "SealedSecret",
        true,
    ),
    ("apps/v1", "deployments", "deployment", "Deployment", true),
    (
        "apps/v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
    ),
    ("apps/v1", "daemonsets", "daemonset", "DaemonSet", true),
    ("coordination.k8s.io/v1", "leases", "lease", "Lease", true),
    ("events.k8s.io/v1", "events", "event", "Event", true),
];

fn discovery(path: &str) -> Option<Value> {
    let path = path.trim_end_matches('/');
    let verbs = json!(["create", "delete", "get", "list", "patch", "update", "watch"]);
    let resources = |gv: &str| {
        let list: Vec<Value> = RESOURCES
            .iter()
            .filter(|r| r.0 == gv)
            .flat_map(|(_, plural, singular, kind, namespaced)| {
                let mut out = vec![json!({
                    "name": plural, "singularName": singular, "namespaced": namespaced,
                    "kind": kind, "verbs": verbs,
                })];
                if *plural == "sealedsecrets" {
                    out.push(json!({
                        "name": "sealedsecrets/status", "singularName": "", "namespaced": true,
                        "kind": kind, "verbs": ["get", "patch", "update"],
                    }));
                }
                out
            })
            .collect();
        (!list.is_empty()).then(|| {
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
        })
    };
    match path {
        "/version" => {
            Some(json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-gitseal-fake"}))
        }
        "/api" => Some(
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        "/api/v1" => resources("v1"),
        "/apis" => {
            let mut groups: Vec<&str> = RESOURCES
                .iter()
                .map(|r| r.0)
                .filter(|gv| gv.contains('/'))
                .collect();
            groups.dedup();
            let groups: Vec<Value> = groups
                .iter()
                .filter_map(|gv| {
                    let (group, version) = gv.split_once('/')?;
                    let v = json!({"groupVersion": gv, "version": version});
                    Some(json!({"name": group, "versions": [v], "preferredVersion": v}))
                })
                .collect();
            Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        _ => {
            let gv = path.strip_prefix("/apis/")?;
            if gv.matches('/').count() != 1 {
                return None;
            }
            resources(gv)
        }
    }
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Server-side-apply-like merge: maps merge, lists replace, except
/// `ownerReferences` (merged by uid).
fn apply_merge(target: &mut Value, patch: &Value, path: &mut Vec<String>) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                path.push(k.clone());
                match t.get_mut(k) {
                    Some(existing) => apply_merge(existing, v, path),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
                path.pop();
            }
        }
        (t @ Value::Array(_), Value::Array(p)) => {
            // `status.conditions` of the SealedSecret CRD declares no list
            // type, so it is atomic, as every list of a CRD without one:
            // an apply replaces it whole (merging by type would keep a
            // condition the controller dropped).
            let key = match path.last().map(String::as_str) {
                Some("ownerReferences") => Some("uid"),
                _ => None,
            };
            match key {
                Some(key) => {
                    let mut merged: Vec<Value> = t.as_array().cloned().unwrap_or_default();
                    for item in p {
                        let id = item.get(key).cloned();
                        match merged.iter_mut().find(|m| m.get(key).cloned() == id) {
                            Some(m) => *m = item.clone(),
                            None => merged.push(item.clone()),
                        }
                    }
                    *t = Value::Array(merged);
                }
                None => *t = Value::Array(p.clone()),
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn leaf_paths(v: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                prefix.push(k.clone());
                leaf_paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

fn remove_path(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for p in parents {
        match cur.get_mut(p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Value::Object(m) = cur {
        m.remove(last);
    }
}

/// Everything except metadata and status: a change bumps the generation.
fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeApi {
    /// An empty API server.
    pub fn new() -> Self {
        Self::with_history(20_000)
    }

    /// An empty API server keeping `cap` watch events for replay (and at
    /// most `cap` undelivered live events per watcher before it gets 410).
    pub fn with_history(cap: usize) -> Self {
        let (tx, _) = broadcast::channel(cap.max(16));
        FakeApi {
            state: Arc::new(Mutex::new(State {
                rv: 1,
                uids: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_cap: cap,
                applied: HashMap::new(),
                faults: Vec::new(),
                log: None,
                requests: 0,
                tally: BTreeMap::new(),
                snapshots: VecDeque::new(),
                next_snapshot: 0,
                chaos: None,
                chaos_counts_kept: None,
                journaled: BTreeSet::new(),
                journal: Vec::new(),
                live_uids: HashSet::new(),
            })),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A kube client talking to this fake.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let fake = fake.clone();
            async move { Ok::<_, Infallible>(fake.handle(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    /// Fails the next `times` requests matching `method` and `path_contains` with `code`.
    pub fn fail(&self, method: Option<Method>, path_contains: &str, code: u16, times: u32) {
        self.lock().faults.push(Fault {
            method,
            path_contains: path_contains.to_string(),
            code,
            times,
        });
    }

    /// Starts recording request lines (`METHOD path?query`).
    pub fn record_requests(&self) {
        self.lock().log = Some(Vec::new());
    }

    /// Recorded request lines.
    pub fn requests(&self) -> Vec<String> {
        self.lock().log.clone().unwrap_or_default()
    }

    /// Number of requests served.
    pub fn request_count(&self) -> u64 {
        self.lock().requests
    }

    /// Requests served so far by verb and resource, as `kubectl` and the
    /// API server's audit log name them: `get secrets`, `list sealedsecrets`,
    /// `watch secrets`, `create events`, `patch sealedsecrets/status`,
    /// `update leases`, `delete secrets`; discovery is `get discovery`.
    pub fn request_tally(&self) -> BTreeMap<String, u64> {
        self.lock().tally.clone()
    }

    /// The current object, parsed.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let st = self.lock();
        st.objects
            .get(&Key::new(plural, namespace, name))
            .and_then(|o| serde_json::from_slice(&o.bytes).ok())
    }

    /// The current object's JSON bytes (for byte-identity checks).
    pub fn get_bytes(&self, plural: &str, namespace: &str, name: &str) -> Option<Bytes> {
        self.lock()
            .objects
            .get(&Key::new(plural, namespace, name))
            .map(|o| o.bytes.clone())
    }

    /// Every object of a resource, parsed.
    pub fn list(&self, plural: &str) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| k.plural == plural)
            .filter_map(|(_, o)| serde_json::from_slice(&o.bytes).ok())
            .collect()
    }

    /// Every object of a resource as stored JSON bytes.
    pub fn list_bytes(&self, plural: &str) -> Vec<Bytes> {
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| k.plural == plural)
            .map(|(_, o)| o.bytes.clone())
            .collect()
    }

    /// Number of objects of a resource.
    pub fn count(&self, plural: &str) -> usize {
        self.lock()
            .objects
            .keys()
            .filter(|k| k.plural == plural)
            .count()
    }

    /// Creates or replaces an object as a user would (`kubectl apply` of the
    /// whole object), emitting the watch event. Returns the stored object.
    pub fn upsert(&self, plural: &str, namespace: &str, obj: Value) -> Value {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let key = Key::new(plural, namespace, &name);
        let mut st = self.lock();
        let existing = st
            .objects
            .get(&key)
            .and_then(|o| serde_json::from_slice::<Value>(&o.bytes).ok());
        match existing {
            None => self.insert_new(&mut st, key, obj).unwrap_or(Value::Null),
            Some(mut old) => {
                let mut new = obj;
                // Keep server-owned metadata, and status for CRDs.
                for field in ["uid", "creationTimestamp", "generation"] {
                    if let Some(v) = old.pointer(&format!("/metadata/{field}")).cloned() {
                        new["metadata"][field] = v;
                    }
                }
                if has_status_subresource(plural) {
                    if let Some(s) = old.get("status").cloned() {
                        new["status"] = s;
                    }
                }
                std::mem::swap(&mut old, &mut new);
                self.store_update(&mut st, &key, &new, old)
            }
        }
    }

    /// Deletes an object as a user would, cascading to owned objects.
    pub fn remove(&self, plural: &str, namespace: &str, name: &str) -> bool {
        let mut st = self.lock();
        self.delete_key(&mut st, &Key::new(plural, namespace, name))
            .is_some()
    }

    /// Deletes an object without any watch event and without garbage
    /// collection: what a watcher sees when the deletion happened while it
    /// was disconnected and the server's watch history no longer reaches
    /// back (it relists, and a relist does not replay deletions).
    ///
    /// As on a real server, the deletion takes a resourceVersion and the
    /// history is compacted past it: a watch resuming from before it gets
    /// 410 Gone and relists (one connected now sees nothing; end it with
    /// [`FakeApi::drop_watches`] to make it resume). A watcher that resumed
    /// from an older version and saw the object's creation but never its
    /// deletion is a history no API server gives.
    pub fn remove_silently(&self, plural: &str, namespace: &str, name: &str) -> bool {
        let mut st = self.lock();
        let key = Key::new(plural, namespace, name);
        st.applied.retain(|(k, _, _), _| *k != key);
        let removed = match st.objects.remove(&key) {
            Some(o) => st.live_uids.remove(&o.uid),
            None => false,
        };
        if removed {
            Self::next_rv(&mut st);
            st.history.clear();
        }
        removed
    }

    /// Ends every live watch of `plural` (the clients re-watch).
    pub fn drop_watches(&self, plural: &str) {
        let _ = self.tx.send(WatchEvt {
            rv: 0,
            kind: CLOSE,
            key: Arc::new(Key::new(plural, "", "")),
            labels: Arc::new(BTreeMap::new()),
            old_labels: None,
            bytes: Bytes::new(),
        });
    }

    /// A JSON merge patch by another client (`kubectl patch --type merge`),
    /// with its own field manager; returns the stored object.
    pub fn merge_patch(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Option<Value> {
        let key = Key::new(plural, namespace, name);
        let mut st = self.lock();
        let old: Value = serde_json::from_slice(&st.objects.get(&key)?.bytes).ok()?;
        let mut new = old.clone();
        merge_patch(&mut new, patch);
        Some(self.store_update(&mut st, &key, &old, new))
    }

    /// Turns random faults on (`Some`) or off (`None`).
    pub fn chaos(&self, chaos: Option<Chaos>) {
        let mut st = self.lock();
        // Counts of the previous setting are kept for `chaos_counts`.
        let counts = st.chaos.take().map(|c| c.counts).unwrap_or_default();
        st.chaos_counts_kept = counts_or_empty(st.chaos_counts_kept.take(), counts);
        st.chaos = chaos.map(|cfg| ChaosState {
            rng: cfg.seed,
            cfg,
            counts: BTreeMap::new(),
        });
    }

    /// Faults served while chaos was on (random ones, and those of
    /// [`FakeApi::fail`]), by kind (`409 write`, `410 watch`,
    /// `429`, `500`, `503`, `delayed`).
    pub fn chaos_counts(&self) -> BTreeMap<&'static str, u64> {
        let st = self.lock();
        let mut out = st.chaos_counts_kept.clone().unwrap_or_default();
        if let Some(c) = st.chaos.as_ref() {
            for (k, v) in &c.counts {
                *out.entry(k).or_insert(0) += v;
            }
        }
        out
    }

    /// Records every watch event of `plural` from now on (what a watcher
    /// connected all along would have seen), for [`FakeApi::journal_events`].
    pub fn journal(&self, plural: &str) {
        self.lock().journaled.insert(plural.to_string());
    }

    /// The journaled events so far, oldest first.
    pub fn journal_events(&self) -> Vec<Journaled> {
        self.lock().journal.clone()
    }

    /// Ends every live watch of every resource.
    pub fn drop_all_watches(&self) {
        self.drop_watches("*");
    }

    /// Removes every pending injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    fn next_rv(st: &mut State) -> u64 {
        st.rv += 1;
        st.rv
    }

    fn emit(
        &self,
        st: &mut State,
        kind: &'static str,
        key: &Key,
        labels: BTreeMap<String, String>,
        bytes: Bytes,
        rv: u64,
    ) {
        self.emit_change(st, kind, key, labels, None, bytes, rv);
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_change(
        &self,
        st: &mut State,
        kind: &'static str,
        key: &Key,
        labels: BTreeMap<String, String>,
        old_labels: Option<BTreeMap<String, String>>,
        bytes: Bytes,
        rv: u64,
    ) {
        let evt = WatchEvt {
            rv,
            kind,
            key: Arc::new(key.clone()),
            labels: Arc::new(labels),
            old_labels: old_labels.map(Arc::new),
            bytes,
        };
        if st.journaled.contains(&key.plural) {
            st.journal.push(Journaled {
                kind,
                key: key.clone(),
                bytes: evt.bytes.clone(),
            });
        }
        st.history.push_back(evt.clone());
        while st.history.len() > st.history_cap {
            st.history.pop_front();
        }
        let _ = self.tx.send(evt);
    }

    fn insert_new(
        &self,
        st: &mut State,
        key: Key,
        mut obj: Value,
    ) -> Result<Value, Response<FakeBody>> {
        if st.objects.contains_key(&key) {
            return Err(error(
                409,
                "AlreadyExists",
                &format!("{} {:?} already exists", key.plural, key.name),
            ));
        }
        let rv = Self::next_rv(st);
        st.uids += 1;
        let uid = format!("{:08x}-0000-4000-8000-{:012x}", st.uids, st.uids);
        let meta = obj
            .as_object_mut()
            .map(|m| m.entry("metadata").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut);
        let Some(meta) = meta else {
            return Err(error(400, "BadRequest", "object is not a JSON object"));
        };
        meta.insert("name".into(), json!(key.name));
        if !key.namespace.is_empty() {
            meta.insert("namespace".into(), json!(key.namespace));
        }
        meta.insert("uid".into(), json!(uid));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.remove("managedFields");
        let bytes = Bytes::from(serde_json::to_vec(&obj).unwrap_or_default());
        let labels = labels_of(&obj);
        st.live_uids.insert(uid.clone());
        st.objects.insert(
            key.clone(),
            Obj {
                bytes: bytes.clone(),
                labels: labels.clone(),
                owners: owners_of(&obj),
                uid,
            },
        );
        self.emit(st, "ADDED", &key, labels, bytes, rv);
        // Garbage collection of a dependent created with dangling owner
        // references only (a write racing its owner's deletion): a real
        // cluster deletes it; so does this one, at once.
        if Self::dangling(st, &key) {
            self.delete_key(st, &key);
        }
        Ok(obj)
    }

    /// Whether the object at `key` has owners and none of them exists.
    fn dangling(st: &State, key: &Key) -> bool {
        let Some(o) = st.objects.get(key) else {
            return false;
        };
        !o.owners.is_empty() && !o.owners.iter().any(|u| st.live_uids.contains(u))
    }

    /// Stores `new` in place of `old` (both full objects); no-op writes keep
    /// the resourceVersion and emit nothing.
    fn store_update(&self, st: &mut State, key: &Key, old: &Value, mut new: Value) -> Value {
        let mut old_cmp = old.clone();
        let mut new_cmp = new.clone();
        for v in [&mut old_cmp, &mut new_cmp] {
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("generation");
            }
        }
        if old_cmp == new_cmp {
            return old.clone();
        }
        let mut generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        if spec_part(old) != spec_part(&new) {
            generation += 1;
        }
        let rv = Self::next_rv(st);
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            m.insert("generation".into(), json!(generation));
            m.remove("managedFields");
        }
        let bytes = Bytes::from(serde_json::to_vec(&new).unwrap_or_default());
        let labels = labels_of(&new);
        let mut old_labels = None;
        if let Some(o) = st.objects.get_mut(key) {
            o.bytes = bytes.clone();
            old_labels = Some(std::mem::replace(&mut o.labels, labels.clone()));
            o.owners = owners_of(&new);
        }
        self.emit_change(st, "MODIFIED", key, labels, old_labels, bytes, rv);
        new
    }

    fn delete_key(&self, st: &mut State, key: &Key) -> Option<Value> {
        let obj = st.objects.remove(key)?;
        st.live_uids.remove(&obj.uid);
        st.applied.retain(|(k, _, _), _| k != key);
        let rv = Self::next_rv(st);
        let mut v: Value = serde_json::from_slice(&obj.bytes).unwrap_or(Value::Null);
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        let bytes = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        self.emit(st, "DELETED", key, obj.labels.clone(), bytes, rv);
        // Garbage collection: delete what this object owned.
        let owned: Vec<Key> = st
            .objects
            .iter()
            .filter(|(_, o)| o.owners.contains(&obj.uid))
            .map(|(k, _)| k.clone())
            .collect();
        for k in owned {
            self.delete_key(st, &k);
        }
        Some(v)
    }

    /// Serves one request (from the in-process kube client, or from hyper
    /// when served over HTTP).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<FakeBody>
    where
        B: hyper::body::Body,
    {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error(400, "BadRequest", "unreadable body"),
        };
        let path = parts.uri.path().to_string();
        let query = query_map(parts.uri.query());
        let line = format!(
            "{} {}{}",
            parts.method,
            path,
            parts
                .uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        let mut delay = None;
        {
            let mut st = self.lock();
            st.requests += 1;
            *st.tally
                .entry(tally_key(&parts.method, &path, watch))
                .or_insert(0) += 1;
            if let Some(log) = st.log.as_mut() {
                log.push(line.clone());
            }
            let hit = st.faults.iter_mut().find(|f| {
                f.times > 0
                    && f.method.as_ref().is_none_or(|m| *m == parts.method)
                    && line.contains(&f.path_contains)
            });
            if let Some(f) = hit {
                f.times -= 1;
                let code = f.code;
                st.faults.retain(|f| f.times > 0);
                if let Some(c) = st.chaos.as_mut() {
                    // Counted with the random ones while a storm runs.
                    let kind = match (watch, code) {
                        (true, 410) => "410 watch",
                        (false, 409) => "409 write",
                        (false, 429) => "429",
                        (false, 500) => "500",
                        (false, 503) => "503",
                        _ => "other injected",
                    };
                    *c.counts.entry(kind).or_insert(0) += 1;
                }
                if watch && code == 410 {
                    // As a real server does for a too-old resourceVersion: an ERROR event.
                    let line = json!({"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")});
                    return full(StatusCode::OK, Bytes::from(line.to_string() + "\n"));
                }
                return error(code, reason_for(code), &format!("injected failure {code}"));
            }
            if let Some(c) = st.chaos.as_mut() {
                let (p_conflict, p_gone, p_throttle, p_error, p_delay) = (
                    c.cfg.conflict,
                    c.cfg.gone,
                    c.cfg.throttle,
                    c.cfg.server_error,
                    c.cfg.delay,
                );
                if watch {
                    if c.hit(p_gone, "410 watch") {
                        let line = json!({"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")});
                        return full(StatusCode::OK, Bytes::from(line.to_string() + "\n"));
                    }
                } else if parts.method != Method::GET && c.hit(p_conflict, "409 write") {
                    return error(409, "Conflict", "injected conflict: the object has been modified; please apply your changes to the latest version and try again");
                } else if c.hit(p_throttle, "429") {
                    let mut r = error(
                        429,
                        "TooManyRequests",
                        "injected: too many requests, please try again later",
                    );
                    r.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        http::HeaderValue::from_static("1"),
                    );
                    return r;
                } else if p_error > 0.0 && c.draw() < p_error {
                    let code = if c.draw() < 0.5 { 500 } else { 503 };
                    *c.counts
                        .entry(if code == 500 { "500" } else { "503" })
                        .or_insert(0) += 1;
                    return error(code, reason_for(code), &format!("injected failure {code}"));
                } else if c.hit(p_delay, "delayed") {
                    delay = Some(c.cfg.delay_by);
                }
            }
        }
        if let Some(doc) = discovery(&path) {
            return full(StatusCode::OK, Bytes::from(doc.to_string()));
        }
        let Some(route) = parse_route(&path) else {
            return error(404, "NotFound", "no such path");
        };
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        // `Accept: application/json;as=PartialObjectMetadata…`: metadata only,
        // as a real API server answers kube's `metadata_watcher` / `get_metadata`.
        let meta_only = parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
        let resp = match (parts.method.clone(), route.name.is_some()) {
            (Method::GET, false) if watch => self.watch(&route, &query, meta_only),
            (Method::GET, false) => self.list_resp(&route, &query, meta_only),
            (Method::GET, true) => self.get_resp(&route, meta_only),
            (Method::POST, false) => self.create(&route, &query, &body),
            (Method::PUT, true) => self.replace(&route, &body),
            (Method::PATCH, true) => self.patch(&route, &query, &content_type, &body),
            (Method::DELETE, true) => self.delete(&route, &body),
            _ => error(405, "MethodNotAllowed", "not supported by the fake"),
        };
        // A delayed answer: the request took effect, the client hears of
        // it late (after its timeout, not at all).
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        resp
    }

    fn key_of(route: &Route) -> Key {
        Key::new(
            &route.plural,
            route.namespace.as_deref().unwrap_or_default(),
            route.name.as_deref().unwrap_or_default(),
        )
    }

    fn get_resp(&self, route: &Route, meta_only: bool) -> Response<FakeBody> {
        let st = self.lock();
        match st.objects.get(&Self::key_of(route)) {
            Some(o) if meta_only => full(StatusCode::OK, metadata_only(&o.bytes)),
            Some(o) => full(StatusCode::OK, o.bytes.clone()),
            None => error(
                404,
                "NotFound",
                &format!(
                    "{} {:?} not found",
                    route.plural,
                    route.name.as_deref().unwrap_or_default()
                ),
            ),
        }
    }

    fn matching<'a>(
        st: &'a State,
        route: &'a Route,
        query: &'a HashMap<String, String>,
    ) -> impl Iterator<Item = (&'a Key, &'a Obj)> + 'a {
        let labels = query.get("labelSelector").cloned().unwrap_or_default();
        let fields = query.get("fieldSelector").cloned().unwrap_or_default();
        st.objects.iter().filter(move |(k, o)| {
            k.plural == route.plural
                && route.namespace.as_ref().is_none_or(|ns| *ns == k.namespace)
                && selector_matches(&labels, &o.labels)
                && field_matches(&fields, k)
        })
    }

    fn list_resp(
        &self,
        route: &Route,
        query: &HashMap<String, String>,
        meta_only: bool,
    ) -> Response<FakeBody> {
        let mut st = self.lock();
        // As a real API server with its watch cache: a `resourceVersion=0`
        // list is served whole from the cache; `limit` is ignored.
        let from_cache = query.get("resourceVersion").map(String::as_str) == Some("0");
        let limit: usize = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0 && !from_cache)
            .unwrap_or(usize::MAX);
        // Pages of one list come from one snapshot, as from etcd: every
        // page answers at the first page's resourceVersion, and objects
        // created or deleted between pages neither shift nor hide the
        // others. A continue token names the snapshot and the offset.
        let (snapshot, items, rv, skip) = match query.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => {
                let parsed = token.split_once('-').and_then(|(id, off)| {
                    Some((id.parse::<u64>().ok()?, off.parse::<usize>().ok()?))
                });
                let found = parsed.and_then(|(id, off)| {
                    st.snapshots
                        .iter()
                        .find(|s| s.0 == id)
                        .map(|s| (s.0, s.1, s.2.clone(), off))
                });
                let Some((id, rv, items, off)) = found else {
                    return error(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result.",
                    );
                };
                (Some(id), items, rv, off)
            }
            None => {
                let items: Arc<Vec<Bytes>> = Arc::new(
                    Self::matching(&st, route, query)
                        .map(|(_, o)| o.bytes.clone())
                        .collect(),
                );
                let rv = st.rv;
                if items.len() > limit {
                    st.next_snapshot += 1;
                    let id = st.next_snapshot;
                    st.snapshots.push_back((id, rv, items.clone()));
                    while st.snapshots.len() > 64 {
                        st.snapshots.pop_front();
                    }
                    (Some(id), items, rv, 0)
                } else {
                    (None, items, rv, 0)
                }
            }
        };
        drop(st);
        let items: &[Bytes] = &items[skip.min(items.len())..];
        let mut body = Vec::with_capacity(4096);
        body.extend_from_slice(b"{\"items\":[");
        let mut n = 0usize;
        let mut more = false;
        for o in items {
            if n == limit {
                more = true;
                break;
            }
            if n > 0 {
                body.push(b',');
            }
            if meta_only {
                body.extend_from_slice(&metadata_only(o));
            } else {
                body.extend_from_slice(o);
            }
            n += 1;
        }
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if more {
            if let Some(id) = snapshot {
                meta["continue"] = json!(format!("{id}-{}", skip + n));
            }
        }
        let tail = if meta_only {
            json!({
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadataList",
                "metadata": meta,
            })
        } else {
            json!({
                "apiVersion": route.group_version,
                "kind": format!("{}List", kind_of(&route.plural)),
                "metadata": meta,
            })
        };
        body.extend_from_slice(b"],");
        let tail = tail.to_string();
        body.extend_from_slice(&tail.as_bytes()[1..]);
        full(StatusCode::OK, Bytes::from(body))
    }

    fn watch(
        &self,
        route: &Route,
        query: &HashMap<String, String>,
        meta_only: bool,
    ) -> Response<FakeBody> {
        let from: u64 = query
            .get("resourceVersion")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let labels = query.get("labelSelector").cloned().unwrap_or_default();
        let fields = query.get("fieldSelector").cloned().unwrap_or_default();
        let plural = route.plural.clone();
        let closing_plural = route.plural.clone();
        let namespace = route.namespace.clone();
        // The event type this watch sees for `e`, if any.
        let matches = move |e: &WatchEvt| -> Option<&'static str> {
            if e.key.plural != plural
                || namespace.as_ref().is_some_and(|ns| *ns != e.key.namespace)
                || !field_matches(&fields, &e.key)
            {
                return None;
            }
            let now = selector_matches(&labels, &e.labels);
            let before = e
                .old_labels
                .as_ref()
                .map_or(now, |old| selector_matches(&labels, old));
            match (e.kind, before, now) {
                ("MODIFIED", false, true) => Some("ADDED"),
                ("MODIFIED", true, false) => Some("DELETED"),
                (kind, _, true) => Some(kind),
                _ => None,
            }
        };
        let (backlog, rx) = {
            let st = self.lock();
            let oldest = st.history.front().map(|e| e.rv).unwrap_or(st.rv + 1);
            if from != 0 && from + 1 < oldest && from < st.rv {
                let line = json!({"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")});
                return full(StatusCode::OK, Bytes::from(line.to_string() + "\n"));
            }
            let backlog: Vec<(&'static str, WatchEvt)> = st
                .history
                .iter()
                .filter(|e| e.rv > from)
                .filter_map(|e| Some((matches(e)?, e.clone())))
                .collect();
            (backlog, self.tx.subscribe())
        };
        let frame =
            move |kind: &str, e: &WatchEvt| -> Result<hyper::body::Frame<Bytes>, Infallible> {
                let object = if meta_only {
                    metadata_only(&e.bytes)
                } else {
                    e.bytes.clone()
                };
                let mut line = Vec::with_capacity(object.len() + 32);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(kind.as_bytes());
                line.extend_from_slice(b"\",\"object\":");
                line.extend_from_slice(&object);
                line.extend_from_slice(b"}\n");
                Ok(hyper::body::Frame::data(Bytes::from(line)))
            };
        let backlog_stream = futures::stream::iter(
            backlog
                .iter()
                .map(|(kind, e)| frame(kind, e))
                .collect::<Vec<_>>(),
        );
        let live = futures::stream::unfold((rx, false), move |(mut rx, done)| {
            let matches = matches.clone();
            let closing_plural = closing_plural.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    match rx.recv().await {
                        // `drop_watches`: the connection ends, as when an
                        // API server restarts or a proxy times out.
                        Ok(e)
                            if e.kind == CLOSE
                                && (e.key.plural == closing_plural || e.key.plural == "*") =>
                        {
                            return None;
                        }
                        Ok(e) if e.kind == CLOSE => continue,
                        Ok(e) if e.rv > from => {
                            if let Some(kind) = matches(&e) {
                                return Some((frame(kind, &e), (rx, false)));
                            }
                        }
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let line = json!({"type": "ERROR", "object": status_body(410, "Expired", "watcher fell behind")});
                            return Some((
                                Ok(hyper::body::Frame::data(Bytes::from(
                                    line.to_string() + "\n",
                                ))),
                                (rx, true),
                            ));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        use futures::StreamExt;
        let stream = backlog_stream.chain(live);
        let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        r
    }

    fn create(
        &self,
        route: &Route,
        query: &HashMap<String, String>,
        body: &Bytes,
    ) -> Response<FakeBody> {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return error(400, "BadRequest", "body is not JSON");
        };
        // As a real API server (its storage layer): a create carrying a
        // resourceVersion was probably read from somewhere else.
        if obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return error(
                500,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            );
        }
        let mut name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut st = self.lock();
        if name.is_empty() {
            let Some(prefix) = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
            else {
                return error(422, "Invalid", "metadata.name is required");
            };
            name = format!("{prefix}{:05x}", st.rv);
        }
        if obj.get("apiVersion").is_none() {
            obj["apiVersion"] = json!(route.group_version);
        }
        if obj.get("kind").is_none() {
            obj["kind"] = json!(kind_of(&route.plural));
        }
        let key = Key::new(
            &route.plural,
            route.namespace.as_deref().unwrap_or_default(),
            &name,
        );
        if query.get("dryRun").is_some_and(|d| d == "All") {
            // Validation and admission pass in the fake; only the existence
            // check runs, after them, as in a real API server.
            if st.objects.contains_key(&key) {
                return error(
                    409,
                    "AlreadyExists",
                    &format!("{} {:?} already exists", key.plural, key.name),
                );
            }
            return full(StatusCode::CREATED, Bytes::from(obj.to_string()));
        }
        match self.insert_new(&mut st, key, obj) {
            Ok(v) => full(StatusCode::CREATED, Bytes::from(v.to_string())),
            Err(r) => r,
        }
    }

    fn replace(&self, route: &Route, body: &Bytes) -> Response<FakeBody> {
        let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
            return error(400, "BadRequest", "body is not JSON");
        };
        let key = Self::key_of(route);
        let mut st = self.lock();
        let Some(existing) = st.objects.get(&key) else {
            return error(404, "NotFound", "not found");
        };
        let old: Value = serde_json::from_slice(&existing.bytes).unwrap_or(Value::Null);
        let old_rv = old.pointer("/metadata/resourceVersion").cloned();
        if let Some(rv) = obj.pointer("/metadata/resourceVersion") {
            if Some(rv) != old_rv.as_ref() {
                return error(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again");
            }
        }
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "name",
            "namespace",
        ] {
            if let Some(v) = old.pointer(&format!("/metadata/{field}")).cloned() {
                obj["metadata"][field] = v;
            }
        }
        if route.sub.as_deref() == Some("status") {
            let mut new = old.clone();
            new["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
            obj = new;
        } else if has_status_subresource(&route.plural) {
            match old.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        let v = self.store_update(&mut st, &key, &old, obj);
        full(StatusCode::OK, Bytes::from(v.to_string()))
    }

    fn patch(
        &self,
        route: &Route,
        query: &HashMap<String, String>,
        content_type: &str,
        body: &Bytes,
    ) -> Response<FakeBody> {
        let Ok(patch) = serde_json::from_slice::<Value>(body) else {
            return error(400, "BadRequest", "body is not JSON");
        };
        let key = Self::key_of(route);
        let status_sub = route.sub.as_deref() == Some("status");
        let mut st = self.lock();
        let existing: Option<Value> = st
            .objects
            .get(&key)
            .and_then(|o| serde_json::from_slice(&o.bytes).ok());
        let is_apply = content_type.starts_with("application/apply-patch");
        if !is_apply && !content_type.contains("merge-patch") {
            return error(
                415,
                "UnsupportedMediaType",
                "the fake supports apply and merge patches",
            );
        }
        if is_apply && query.get("fieldManager").is_none_or(|m| m.is_empty()) {
            return error(
                400,
                "BadRequest",
                "fieldManager is required for apply patch",
            );
        }
        // The part of the patch that applies to this endpoint.
        let mut patch = patch;
        if has_status_subresource(&route.plural) || status_sub {
            if let Some(m) = patch.as_object_mut() {
                if status_sub {
                    let status = m.remove("status");
                    m.retain(|k, _| k == "apiVersion" || k == "kind" || k == "metadata");
                    if let Some(s) = status {
                        m.insert("status".into(), s);
                    }
                } else {
                    m.remove("status");
                }
            }
        }
        // A resourceVersion in the patch is a precondition (optimistic
        // concurrency), for apply and merge patches alike.
        let want_rv = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty())
            .map(str::to_string);
        if let Some(want) = want_rv.as_deref() {
            match existing.as_ref() {
                None if is_apply && !status_sub => {
                    return error(
                        500,
                        "InternalError",
                        "resourceVersion should not be set on objects to be created",
                    )
                }
                Some(old)
                    if old
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        != Some(want) =>
                {
                    return error(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again");
                }
                _ => {}
            }
            if let Some(m) = patch
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut)
            {
                m.remove("resourceVersion");
            }
        }
        let Some(old) = existing else {
            if !is_apply || status_sub {
                return error(
                    404,
                    "NotFound",
                    &format!("{} {:?} not found", route.plural, key.name),
                );
            }
            if let Some(manager) = query.get("fieldManager") {
                let mut paths = BTreeSet::new();
                leaf_paths(&patch, &mut Vec::new(), &mut paths);
                st.applied
                    .insert((key.clone(), manager.clone(), status_sub), paths);
            }
            return match self.insert_new(&mut st, key, patch) {
                Ok(v) => full(StatusCode::CREATED, Bytes::from(v.to_string())),
                Err(r) => r,
            };
        };
        let mut new = old.clone();
        if is_apply {
            let manager = query.get("fieldManager").cloned().unwrap_or_default();
            let mut paths = BTreeSet::new();
            leaf_paths(&patch, &mut Vec::new(), &mut paths);
            let previous = st
                .applied
                .insert((key.clone(), manager, status_sub), paths.clone());
            apply_merge(&mut new, &patch, &mut Vec::new());
            for gone in previous.unwrap_or_default().difference(&paths) {
                if gone.first().map(String::as_str) == Some("apiVersion")
                    || gone.first().map(String::as_str) == Some("kind")
                {
                    continue;
                }
                remove_path(&mut new, gone);
            }
        } else {
            merge_patch(&mut new, &patch);
        }
        let v = self.store_update(&mut st, &key, &old, new);
        full(StatusCode::OK, Bytes::from(v.to_string()))
    }

    fn delete(&self, route: &Route, body: &Bytes) -> Response<FakeBody> {
        let key = Self::key_of(route);
        let mut st = self.lock();
        let Some(existing) = st.objects.get(&key) else {
            return error(404, "NotFound", "not found");
        };
        if let Ok(opts) = serde_json::from_slice::<Value>(body) {
            if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str) {
                if uid != existing.uid {
                    return error(
                        409,
                        "Conflict",
                        "Precondition failed: UID in precondition does not match",
                    );
                }
            }
        }
        match self.delete_key(&mut st, &key) {
            Some(v) => full(StatusCode::OK, Bytes::from(v.to_string())),
            None => error(404, "NotFound", "not found"),
        }
    }
}
