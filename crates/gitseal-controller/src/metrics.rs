//! Prometheus metrics of the controller, served at `/metrics`.
//!
//! Labels are fixed words (results, reasons): never object data, never
//! values. Object names do not appear either, to keep cardinality bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// The controller's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    duration: Histogram,
    keys_loaded: Gauge,
    retired: Gauge,
    leader: Gauge,
    key_changes: Family<Labels, Counter>,
    retired_by_object: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gitseal");
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles of SealedSecrets, by result (success or error)",
            reconciles.clone(),
        );
        let failures = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles, by reason (DecryptFailed, UnknownKey, ScopeMismatch, SecretNotOwned, ...)",
            failures.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            duration.clone(),
        );
        let keys_loaded = Gauge::default();
        registry.register("keys_loaded", "Sealing keys loaded", keys_loaded.clone());
        let retired = Gauge::default();
        registry.register(
            "values_sealed_to_retired_keys",
            "Sealed values that opened only with a retired (not the active) key; reseal them before deleting old keys",
            retired.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 when this replica is the leader and reconciles, else 0",
            leader.clone(),
        );
        let key_changes = Family::<Labels, Counter>::default();
        registry.register(
            "sealing_key_changes",
            "Changes of the loaded sealing keys seen by this replica, by change (added, removed, activated); alert on an activation you did not plan",
            key_changes.clone(),
        );
        // Exported at zero from the start, so a dashboard or an alert on a
        // rate sees every series before its first increment.
        for result in ["success", "error"] {
            let _ = reconciles.get_or_create(&vec![("result", result)]);
        }
        for reason in crate::Error::metric_reasons() {
            let _ = failures.get_or_create(&vec![("reason", reason)]);
        }
        for change in ["added", "removed", "activated"] {
            let _ = key_changes.get_or_create(&vec![("change", change)]);
        }
        Metrics {
            registry,
            key_changes,
            reconciles,
            failures,
            duration,
            keys_loaded,
            retired,
            leader,
            retired_by_object: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a collector (e.g. the Vault client's counters) to `/metrics`.
    /// Call before the metrics are shared.
    pub fn register_collector(
        &mut self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) {
        self.registry.register_collector(collector);
    }

    /// Records one reconcile: its duration, and on failure its reason.
    pub fn reconciled(&self, took: Duration, failure_reason: Option<&'static str>) {
        self.duration.observe(took.as_secs_f64());
        let result = if failure_reason.is_some() {
            "error"
        } else {
            "success"
        };
        self.reconciles
            .get_or_create(&vec![("result", result)])
            .inc();
        if let Some(reason) = failure_reason {
            self.failures.get_or_create(&vec![("reason", reason)]).inc();
        }
    }

    /// Counts changes of the loaded keys.
    pub fn key_changes(&self, changes: &crate::keys::KeyChanges) {
        let inc = |change: &'static str, n: usize| {
            self.key_changes
                .get_or_create(&vec![("change", change)])
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        };
        inc("added", changes.added.len());
        inc("removed", changes.removed.len());
        inc("activated", usize::from(changes.activated.is_some()));
    }

    /// Sets the number of loaded keys.
    pub fn set_keys_loaded(&self, n: usize) {
        self.keys_loaded.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Records how many values of object `id` opened with a retired key.
    pub fn set_retired(&self, id: &str, count: u64) {
        let mut map = self.retired_map();
        if count == 0 {
            map.remove(id);
        } else {
            map.insert(id.to_string(), count);
        }
        self.publish_retired(&map);
    }

    /// Forgets an object (deleted).
    pub fn forget(&self, id: &str) {
        self.set_retired(id, 0);
    }

    /// Keeps the retired-key counts of the objects for which `live` is true
    /// and drops the others (deleted while the watch was down).
    pub fn retain_retired(&self, live: impl Fn(&str) -> bool) {
        let mut map = self.retired_map();
        map.retain(|id, _| live(id));
        self.publish_retired(&map);
    }

    /// Drops every retired-key count (this replica stopped reconciling, so
    /// it no longer reports on the objects; the new leader does).
    pub fn clear_retired(&self) {
        let mut map = self.retired_map();
        map.clear();
        self.publish_retired(&map);
    }

    fn retired_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        match self.retired_by_object.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn publish_retired(&self, map: &HashMap<String, u64>) {
        let total: u64 = map.values().sum();
        self.retired.set(i64::try_from(total).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
