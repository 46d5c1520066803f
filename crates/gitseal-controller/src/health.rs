//! Readiness, and the start-up gate on the SealedSecret CRD.
//!
//! `/readyz` says 200 only when this replica can do its job: its sealing keys
//! are loaded and the API server serves SealedSecrets. A missing CRD is the
//! usual first-install mistake; without this gate the controller's watcher
//! retried the 404 silently (at debug level) with a backoff growing to 30 s,
//! `/readyz` said ready, and the first object waited up to 41 s once the CRD
//! was applied. Here every replica probes the collection at start (one LIST
//! with `limit=1`), logs a warning that says what to apply, reports the
//! reason in `/readyz`, and re-probes every [`CRD_POLL`], so reconciling
//! starts within one poll of the CRD appearing. The leader's controller also
//! reports a 404 from its watch ([`is_crd_missing`]), which sends the gate
//! back to probing.

use std::sync::Arc;
use std::time::Duration;

use gitseal_manifest::SealedSecret;
use kube::api::ListParams;
use kube::Api;
use tokio::sync::watch;

use crate::keys::KeyStore;

/// How often a missing or unreachable SealedSecret collection is probed.
pub const CRD_POLL: Duration = Duration::from_secs(2);

/// The CRD's name, as `kubectl get crd` shows it.
pub const CRD_NAME: &str = "sealedsecrets.gitseal.dev";

/// What the gate knows about the SealedSecret collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrdState {
    /// Not probed yet.
    Unknown,
    /// Served: the controller can list and watch SealedSecrets.
    Installed,
    /// The API server answers 404: the CRD (or its version) is not installed.
    Missing,
    /// Probing failed for another reason (a short, public description:
    /// `/readyz` shows it).
    Unreachable(String),
}

/// Readiness of this replica.
#[derive(Debug)]
pub struct Health {
    keys: Arc<KeyStore>,
    crd: watch::Sender<CrdState>,
}

impl Health {
    /// Not ready until the keys load and the gate has seen the CRD.
    pub fn new(keys: Arc<KeyStore>) -> Self {
        Health {
            keys,
            crd: watch::Sender::new(CrdState::Unknown),
        }
    }

    /// What keeps this replica from being ready; empty when ready.
    pub fn not_ready(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.keys.is_ready() {
            reasons.push("sealing keys not loaded yet".to_string());
        }
        match &*self.crd.borrow() {
            CrdState::Installed => {}
            CrdState::Unknown => {
                reasons.push(format!("checking whether the {CRD_NAME} CRD is installed"))
            }
            CrdState::Missing => reasons.push(format!(
                "the {CRD_NAME} CRD is not installed: apply deploy/crd.yaml (or `gitseal-controller crd | kubectl apply -f -`)"
            )),
            CrdState::Unreachable(why) => {
                reasons.push(format!("cannot list SealedSecrets: {why}"))
            }
        }
        reasons
    }

    /// The gate's current view.
    pub fn crd_state(&self) -> CrdState {
        self.crd.borrow().clone()
    }

    /// Sets the gate's view (the gate does; tests may).
    pub fn set_crd(&self, state: CrdState) {
        self.crd.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }

    /// Records that the running controller saw the collection vanish; the
    /// gate probes again.
    pub fn crd_lost(&self) {
        self.set_crd(CrdState::Missing);
    }

    /// Resolves once the CRD is installed.
    pub async fn crd_installed(&self) {
        let mut rx = self.crd.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail here.
        let _ = rx.wait_for(|s| *s == CrdState::Installed).await;
    }

    /// Resolves once the CRD is no longer known to be installed.
    pub async fn crd_gone(&self) {
        let mut rx = self.crd.subscribe();
        let _ = rx.wait_for(|s| *s != CrdState::Installed).await;
    }

    /// The gate: probes the SealedSecret collection until it is served, then
    /// waits until someone reports it gone ([`Health::crd_lost`]), forever.
    pub async fn run_crd_gate(&self, api: Api<SealedSecret>) {
        let probe = ListParams::default().limit(1);
        loop {
            match api.list_metadata(&probe).await {
                Ok(_) => {
                    if self.crd_state() != CrdState::Unknown {
                        tracing::info!(
                            crd = CRD_NAME,
                            "the SealedSecret CRD is installed; starting"
                        );
                    }
                    self.set_crd(CrdState::Installed);
                    self.crd_gone().await;
                    continue;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    if self.crd_state() != CrdState::Missing {
                        tracing::warn!(
                            crd = CRD_NAME,
                            "the SealedSecret CRD is not installed (the API server answers 404 for sealedsecrets.gitseal.dev/v1alpha1): apply deploy/crd.yaml; not ready, checking again every {}s",
                            CRD_POLL.as_secs()
                        );
                    }
                    self.set_crd(CrdState::Missing);
                }
                Err(e) => {
                    if !matches!(self.crd_state(), CrdState::Unreachable(_)) {
                        tracing::warn!(error = %e, "listing SealedSecrets failed; not ready, retrying every {}s", CRD_POLL.as_secs());
                    }
                    // `/readyz` is unauthenticated: the status code only, the
                    // details (user, RBAC rule) are in the log.
                    let why = match &e {
                        kube::Error::Api(s) => format!("the API server answered {}", s.code),
                        _ => "the API server cannot be reached".to_string(),
                    };
                    self.set_crd(CrdState::Unreachable(why));
                }
            }
            tokio::time::sleep(CRD_POLL).await;
        }
    }
}

/// Whether a watch error means the SealedSecret collection is not served.
pub fn is_crd_missing(err: &kube::runtime::watcher::Error) -> bool {
    use kube::runtime::watcher::Error as W;
    match err {
        W::InitialListFailed(kube::Error::Api(s))
        | W::WatchStartFailed(kube::Error::Api(s))
        | W::WatchFailed(kube::Error::Api(s)) => s.code == 404,
        W::WatchError(s) => s.code == 404,
        _ => false,
    }
}
