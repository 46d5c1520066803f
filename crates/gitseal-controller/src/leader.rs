//! Leader election on a `coordination.k8s.io/v1` Lease, so several replicas
//! can run and exactly one reconciles, generates keys and publishes them.
//!
//! Written on kube's `Api<Lease>` because `kube-leader-election` pins kube 4
//! and `kube-lease-manager` (kube 5) pulls `rand` 0.10 and a second RustCrypto
//! generation. The algorithm is client-go's:
//!
//! - the holder renews the lease every `renew_every`; a renewal that fails
//!   (an error, a lost write race, an API server that holds the request) is
//!   retried every `retry_every`, and the holder keeps leading only until
//!   `renew_deadline` has passed since the *start* of its last successful
//!   renewal. At that moment it stops reconciling, before any other replica
//!   can take over: a candidate takes the lease only when the record has not
//!   changed for `lease_duration` (longer than `renew_deadline`) as measured
//!   on the candidate's own clock, after it read that record, so clock skew
//!   between nodes does not matter and two replicas never write at once.
//! - Every attempt is bounded in time, whatever the client's own timeouts.
//! - Writes carry the resourceVersion, so two candidates cannot both win.
//! - On shutdown the holder releases the lease (empty holder), so a follower
//!   takes over at its next retry instead of after `lease_duration`.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::watch;
use tokio::time::Instant;

/// Election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Lease name.
    pub lease_name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease is valid without renewal: a follower takes over when
    /// the record has not changed for this long.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal
    /// (client-go's `renewDeadline`); shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// How often a follower retries, and a leader retries a failed renewal.
    pub retry_every: Duration,
}

/// An inconsistent [`LeaderConfig`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid leader election timing: {0}")]
pub struct TimingError(String);

impl LeaderConfig {
    /// Defaults (15 s lease, 10 s renew deadline, renew every 5 s, retry
    /// every 2 s) for `identity`.
    pub fn new(lease_name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderConfig {
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }

    /// Checks `0 < retry_every < renew_deadline`, `renew_every <
    /// renew_deadline < lease_duration`: otherwise a leader could still be
    /// writing when a follower takes over, or never renew in time.
    pub fn validate(&self) -> Result<(), TimingError> {
        let secs = |d: Duration| format!("{:.3}s", d.as_secs_f64());
        if self.retry_every.is_zero() || self.renew_every.is_zero() {
            return Err(TimingError(
                "the retry period and the renew interval must be above 0".into(),
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(TimingError(format!(
                "the renew deadline ({}) must be shorter than the lease duration ({})",
                secs(self.renew_deadline),
                secs(self.lease_duration)
            )));
        }
        if self.retry_every >= self.renew_deadline || self.renew_every >= self.renew_deadline {
            return Err(TimingError(format!(
                "the retry period ({}) and the renew interval ({}) must be shorter than the renew deadline ({})",
                secs(self.retry_every),
                secs(self.renew_every),
                secs(self.renew_deadline)
            )));
        }
        Ok(())
    }
}

/// What one attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Attempt {
    /// We hold the lease (acquired or renewed).
    Holding,
    /// Another replica holds a lease that has not expired.
    HeldByOther,
    /// Our write lost a race (409): someone wrote the lease between our
    /// read and our write. Says nothing about who holds it now.
    Conflict,
}

/// One candidate.
pub struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
    observed: Option<(String, Instant)>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn record_of(lease: &Lease) -> String {
    let spec = lease.spec.clone().unwrap_or_default();
    format!(
        "{}|{}|{}",
        spec.holder_identity.unwrap_or_default(),
        spec.renew_time.map(|t| t.0.to_string()).unwrap_or_default(),
        spec.lease_transitions.unwrap_or_default()
    )
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Elector {
    /// A candidate for the lease in `api`'s namespace.
    pub fn new(api: Api<Lease>, config: LeaderConfig) -> Self {
        Elector {
            api,
            config,
            observed: None,
        }
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            // Whole seconds, rounded up (never 0, which would mean "expired").
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_millis().div_ceil(1000).max(1))
                    .unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to acquire or renew. `Ok(true)` when we hold the lease.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        Ok(self.attempt().await? == Attempt::Holding)
    }

    async fn attempt(&mut self) -> Result<Attempt, kube::Error> {
        let name = self.config.lease_name.clone();
        let Some(mut lease) = self.api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(0, None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Holding),
                Err(e) if is_conflict(&e) => Ok(Attempt::Conflict),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = record_of(&lease);
        let now = Instant::now();
        let ours = holder == self.config.identity;
        if !ours {
            let changed = self.observed.as_ref().is_none_or(|(r, _)| *r != record);
            if changed {
                self.observed = Some((record, now));
            }
            let since = self.observed.as_ref().map(|(_, t)| *t).unwrap_or(now);
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .unwrap_or(self.config.lease_duration);
            if !holder.is_empty() && now.duration_since(since) < duration {
                return Ok(Attempt::HeldByOther);
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(if ours {
            self.spec(transitions, spec.acquire_time)
        } else {
            self.spec(transitions.saturating_add(1), None)
        });
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observed = Some((record_of(&written), Instant::now()));
                Ok(Attempt::Holding)
            }
            Err(e) if is_conflict(&e) => Ok(Attempt::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (on shutdown, once this replica has stopped
    /// working), so a follower takes over at its next retry. Does nothing
    /// when another replica holds it. `Ok(true)` when it was released.
    pub async fn release(&mut self) -> Result<bool, kube::Error> {
        // One retry: a conflict means the lease changed between our read and
        // our write (a follower's read-only attempts never write a held lease).
        for _ in 0..2 {
            let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
                return Ok(false);
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(false);
            }
            // As client-go: no holder, and a 1 s duration for readers that
            // do not treat an empty holder as free.
            let now = MicroTime(Timestamp::now());
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            lease.spec = Some(spec);
            match self
                .api
                .replace(&self.config.lease_name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => {
                    self.observed = None;
                    return Ok(true);
                }
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Campaigns forever, publishing whether we lead on `tx`.
    ///
    /// Leadership is dropped at once when another replica holds the lease,
    /// and at the renew deadline when renewals keep failing; a single failed
    /// or conflicting renewal is retried within the deadline without
    /// dropping leadership (dropping would stop and restart every reconcile).
    pub async fn run(mut self, tx: watch::Sender<bool>) {
        let mut cfg = self.config.clone();
        if let Err(e) = cfg.validate() {
            // The binary refuses such flags; a library caller gets a safe
            // deadline (two thirds of the lease) rather than two writers.
            cfg.renew_deadline = cfg.renew_deadline.min(cfg.lease_duration * 2 / 3);
            tracing::warn!(
                error = %e,
                renew_deadline_secs = cfg.renew_deadline.as_secs_f64(),
                "inconsistent leader election timing; renew deadline capped"
            );
        }
        // Start of the last successful attempt while leading: the record we
        // wrote then cannot be older than this, so no follower can take over
        // before `renewed_at + lease_duration`.
        let mut renewed_at: Option<Instant> = None;
        let mut leading = false;
        tx.send_replace(false);
        loop {
            let started = Instant::now();
            let deadline = renewed_at.map(|t| t + cfg.renew_deadline);
            if leading && deadline.is_some_and(|d| started >= d) {
                leading = self.set_leading(
                    &tx,
                    false,
                    "the lease was not renewed within the renew deadline; stopping reconciles",
                );
            }
            // A leader's attempt may run until the deadline; a follower's
            // for a renew deadline.
            let bound = match deadline {
                Some(d) if leading => d.saturating_duration_since(started),
                _ => cfg.renew_deadline,
            };
            let outcome = tokio::time::timeout(bound, self.attempt()).await;
            let succeeded = match outcome {
                Ok(Ok(Attempt::Holding)) => {
                    renewed_at = Some(started);
                    leading = self.set_leading(&tx, true, "acquired the lease");
                    true
                }
                Ok(Ok(Attempt::HeldByOther)) => {
                    renewed_at = None;
                    leading = self.set_leading(
                        &tx,
                        false,
                        "another replica holds the lease; stopping reconciles",
                    );
                    false
                }
                Ok(Ok(Attempt::Conflict)) => {
                    if leading {
                        tracing::info!(identity = %cfg.identity, "lease renewal conflicted with another write; retrying");
                    }
                    false
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, leading, "lease renewal failed");
                    false
                }
                Err(_) => {
                    tracing::warn!(
                        after_secs = bound.as_secs_f64(),
                        leading,
                        "lease request did not finish in time"
                    );
                    false
                }
            };
            let wait = if leading && succeeded {
                cfg.renew_every
            } else {
                cfg.retry_every
            };
            let mut wake = Instant::now() + wait;
            if leading {
                if let Some(d) = renewed_at.map(|t| t + cfg.renew_deadline) {
                    // Never sleep past the deadline: stop reconciling on time.
                    wake = wake.min(d);
                }
            }
            tokio::time::sleep_until(wake).await;
        }
    }

    fn set_leading(&self, tx: &watch::Sender<bool>, leading: bool, why: &str) -> bool {
        if *tx.borrow() != leading {
            if leading {
                tracing::info!(identity = %self.config.identity, leading, "leadership changed: {why}");
            } else {
                tracing::warn!(identity = %self.config.identity, leading, "leadership changed: {why}");
            }
            tx.send_replace(leading);
        }
        leading
    }
}
