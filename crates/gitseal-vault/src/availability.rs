//! Noticing when Vault goes away, and promptly when it is back.
//!
//! An object whose Vault items failed because Vault could not be reached
//! waits in its owner's retry backoff, which grows to minutes. Without a
//! signal, a Vault that is back after an eight-minute outage would be noticed
//! only at the next retry, minutes later. So the client keeps track: the
//! first failure to reach Vault starts an *outage* (logged once, at WARN, not
//! once per object) and a cheap unauthenticated health probe
//! (`GET sys/health` after 1 s, 2 s, 4 s, then every 5 s) that ends it; any
//! answer from Vault ends it too. The end of an outage is logged once (INFO)
//! and counted on a watch channel,
//! [`VaultClient::recoveries`](crate::VaultClient::recoveries), which the
//! controller turns into an immediate retry of the objects that wait for
//! Vault.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// First wait of the health probe after an outage starts.
pub(crate) const PROBE_FIRST: Duration = Duration::from_secs(1);
/// The probe's longest wait: Vault is noticed back within this long.
pub(crate) const PROBE_MAX: Duration = Duration::from_secs(5);

pub(crate) struct Availability {
    /// When the current outage started; `None` while Vault answers.
    down_since: Mutex<Option<Instant>>,
    /// How many outages have ended.
    recoveries: watch::Sender<u64>,
}

impl Availability {
    pub(crate) fn new() -> Self {
        Availability {
            down_since: Mutex::new(None),
            recoveries: watch::Sender::new(0),
        }
    }

    /// Records a failure to reach Vault. True when it starts an outage (the
    /// caller starts the probe).
    pub(crate) fn unreachable(&self, address: &str, detail: &str) -> bool {
        let mut down = self.down_since.lock().unwrap_or_else(|e| e.into_inner());
        if down.is_some() {
            return false;
        }
        *down = Some(Instant::now());
        tracing::warn!(
            vault = address,
            error = detail,
            "Vault is unavailable; objects with Vault items keep their last good Secret until it is back"
        );
        true
    }

    /// Records an answer from Vault. True when it ends an outage.
    pub(crate) fn reachable(&self, address: &str) -> bool {
        let since = self
            .down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(since) = since else {
            return false;
        };
        tracing::info!(
            vault = address,
            down_secs = since.elapsed().as_secs(),
            "Vault is reachable again"
        );
        self.recoveries.send_modify(|n| *n = n.wrapping_add(1));
        true
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.recoveries.subscribe()
    }
}

/// The probe's wait after `wait`: doubling up to [`PROBE_MAX`].
pub(crate) fn next_probe(wait: Duration) -> Duration {
    wait.saturating_mul(2).min(PROBE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outage_one_recovery() {
        let a = Availability::new();
        let rx = a.subscribe();
        assert!(!a.is_down());
        assert!(!a.reachable("v"), "no outage to end");
        assert!(a.unreachable("v", "refused"));
        assert!(!a.unreachable("v", "refused again"), "the same outage");
        assert!(a.is_down());
        assert_eq!(*rx.borrow(), 0);
        assert!(a.reachable("v"));
        assert!(!a.reachable("v"));
        assert_eq!(*rx.borrow(), 1);
        assert!(a.unreachable("v", "refused"));
        assert!(a.reachable("v"));
        assert_eq!(*rx.borrow(), 2);
    }

    #[test]
    fn the_probe_backs_off_to_five_seconds() {
        let mut waits = vec![PROBE_FIRST];
        for _ in 0..5 {
            waits.push(next_probe(*waits.last().unwrap_or(&PROBE_FIRST)));
        }
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 5, 5, 5]);
    }
}
