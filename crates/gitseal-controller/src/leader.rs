//! Leader election on a `coordination.k8s.io/v1` Lease, so several replicas
//! can run and exactly one reconciles, generates keys and publishes them.
//!
//! Written on kube's `Api<Lease>` because `kube-leader-election` pins kube 4
//! and `kube-lease-manager` (kube 5) pulls `rand` 0.10 and a second RustCrypto
//! generation. The algorithm is client-go's: the holder renews the lease every
//! `renew_every`; a candidate takes it over when the record has not changed
//! for `lease_duration` as measured on the candidate's own clock (so clock
//! skew between nodes does not matter). Writes use the resourceVersion, so two
//! candidates cannot both win.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::watch;

/// Election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Lease name.
    pub lease_name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// How often a follower retries.
    pub retry_every: Duration,
}

impl LeaderConfig {
    /// Defaults (15 s lease, renew every 5 s, retry every 2 s) for `identity`.
    pub fn new(lease_name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderConfig {
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }
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
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
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
                return Ok(false);
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
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up (on shutdown), so a follower takes over at once.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Campaigns forever, publishing whether we lead on `tx`. Leadership is
    /// dropped when a renewal has not succeeded for a whole lease duration.
    pub async fn run(mut self, tx: watch::Sender<bool>) {
        let mut last_success: Option<Instant> = None;
        loop {
            let leading = match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_success = Some(Instant::now());
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed");
                    *tx.borrow()
                        && last_success.is_some_and(|t| t.elapsed() < self.config.lease_duration)
                }
            };
            if leading != *tx.borrow() {
                tracing::info!(identity = %self.config.identity, leading, "leadership changed");
            }
            tx.send_replace(leading);
            let wait = if leading {
                self.config.renew_every
            } else {
                self.config.retry_every
            };
            tokio::time::sleep(wait).await;
        }
    }
}
