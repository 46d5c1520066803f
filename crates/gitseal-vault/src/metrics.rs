//! Counters the controller exports to Prometheus.
//!
//! The goal of the client is "one login per process, one read per distinct
//! path per refresh"; these counters are how that is observed in production
//! and asserted in tests and the benchmark. Plain atomics, no metrics crate:
//! the controller decides how to export them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) logins: AtomicU64,
    pub(crate) login_failures: AtomicU64,
    pub(crate) renewals: AtomicU64,
    pub(crate) renewal_failures: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) read_failures: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) token_checks: AtomicU64,
    pub(crate) mount_lookups: AtomicU64,
    pub(crate) health_probes: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            logins: g(&self.logins),
            login_failures: g(&self.login_failures),
            renewals: g(&self.renewals),
            renewal_failures: g(&self.renewal_failures),
            reads: g(&self.reads),
            read_failures: g(&self.read_failures),
            cache_hits: g(&self.cache_hits),
            token_checks: g(&self.token_checks),
            mount_lookups: g(&self.mount_lookups),
            health_probes: g(&self.health_probes),
        }
    }
}

/// A point-in-time copy of the client's counters (all monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Successful logins (token auth: a token read and accepted by Vault).
    pub logins: u64,
    /// Failed login attempts.
    pub login_failures: u64,
    /// Successful token renewals.
    pub renewals: u64,
    /// Failed token renewals, including the refusal at the token's max TTL
    /// (each is followed by a fresh login).
    pub renewal_failures: u64,
    /// KV reads sent to Vault (HTTP requests, including failed ones).
    pub reads: u64,
    /// KV reads that failed (any error).
    pub read_failures: u64,
    /// References served without a Vault read (same session, or shared cache).
    pub cache_hits: u64,
    /// `lookup-self` calls made to tell an invalid token from a policy 403.
    pub token_checks: u64,
    /// `sys/internal/ui/mounts/MOUNT` calls made to learn a mount's real KV
    /// version (each mount at most once a minute).
    pub mount_lookups: u64,
    /// `sys/health` calls made by the probe that runs while Vault is
    /// unavailable.
    pub health_probes: u64,
}

impl MetricsSnapshot {
    /// Vault HTTP calls made: logins (and their attempts), renewals, reads,
    /// token checks, mount lookups and health probes.
    pub fn vault_calls(&self) -> u64 {
        self.logins
            + self.login_failures
            + self.renewals
            + self.renewal_failures
            + self.reads
            + self.token_checks
            + self.mount_lookups
            + self.health_probes
    }
}
