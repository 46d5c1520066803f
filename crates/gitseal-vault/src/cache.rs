//! Results shared by every session of one client: concurrent requests for the
//! same key are made once, and a success is reused while it is fresh enough
//! for the caller.
//!
//! Two things go through it: KV reads (fresh for
//! [`VaultConfig::shared_cache_ttl`](crate::VaultConfig::shared_cache_ttl),
//! and never older than a session's [`max_age`](crate::Session::max_age)) and
//! mount lookups (fresh for a minute). Freshness is judged by each caller, so
//! a caller that needs a newer value replaces an entry that is still good
//! enough for others. Failures are never kept beyond the callers that were
//! waiting for them.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::Error;

/// Entries above this many are swept of stale ones before a new one is added.
const SWEEP_ABOVE: usize = 1024;

type Cell<T> = Arc<OnceCell<Result<T, Error>>>;

struct Entry<T> {
    cell: Cell<T>,
    created: Instant,
}

impl<T> Entry<T> {
    /// In flight (so joining it is always right), or a success younger than
    /// `max_age`.
    fn fresh(&self, now: Instant, max_age: Duration) -> bool {
        match self.cell.get() {
            None => true,
            Some(Ok(_)) => now.duration_since(self.created) < max_age,
            Some(Err(_)) => false,
        }
    }
}

pub(crate) struct SharedCache<K, T> {
    map: Mutex<HashMap<K, Entry<T>>>,
    /// The oldest success any caller may still take: entries older than
    /// this are swept.
    horizon: Duration,
}

impl<K: Hash + Eq + Clone, T: Clone> SharedCache<K, T> {
    /// A cache whose callers never take a success older than `horizon`.
    pub(crate) fn new(horizon: Duration) -> Self {
        SharedCache {
            map: Mutex::new(HashMap::new()),
            horizon,
        }
    }

    /// The result for `key`: joined from a request in flight, reused from a
    /// success younger than `max_age`, or fetched now. `keep`: whether a
    /// success stays for later callers at all. Also returns whether this call
    /// ran `fetch`.
    pub(crate) async fn get<F, Fut>(
        &self,
        key: &K,
        max_age: Duration,
        keep: bool,
        fetch: F,
    ) -> (Result<T, Error>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let cell = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match map.get(key) {
                Some(e) if e.fresh(now, max_age) => e.cell.clone(),
                _ => {
                    if map.len() >= SWEEP_ABOVE {
                        let horizon = self.horizon;
                        map.retain(|_, e| e.fresh(now, horizon));
                    }
                    let cell: Cell<T> = Arc::new(OnceCell::new());
                    map.insert(
                        key.clone(),
                        Entry {
                            cell: cell.clone(),
                            created: now,
                        },
                    );
                    cell
                }
            }
        };
        let mut performed = false;
        let result = cell
            .get_or_init(|| {
                performed = true;
                fetch()
            })
            .await
            .clone();
        if result.is_err() || !keep {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(key).is_some_and(|e| Arc::ptr_eq(&e.cell, &cell)) {
                map.remove(key);
            }
        }
        (result, performed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn unavailable() -> Error {
        Error::Unavailable {
            address: "a".into(),
            detail: "d".into(),
        }
    }

    #[tokio::test]
    async fn freshness_is_judged_by_each_caller() {
        let cache: SharedCache<&str, u32> = SharedCache::new(Duration::MAX);
        let calls = AtomicU32::new(0);
        let fetch = || async { Ok::<u32, Error>(calls.fetch_add(1, Ordering::SeqCst) + 1) };
        let hour = Duration::from_secs(3600);
        assert_eq!(cache.get(&"k", hour, true, fetch).await, (Ok(1), true));
        assert_eq!(cache.get(&"k", hour, true, fetch).await, (Ok(1), false));
        // A caller that accepts nothing older than 0 s reads again, and the
        // new value serves the others from then on.
        assert_eq!(
            cache.get(&"k", Duration::ZERO, true, fetch).await,
            (Ok(2), true)
        );
        assert_eq!(cache.get(&"k", hour, true, fetch).await, (Ok(2), false));
        // `keep = false`: nothing stays.
        assert_eq!(cache.get(&"j", hour, false, fetch).await, (Ok(3), true));
        assert_eq!(cache.get(&"j", hour, false, fetch).await, (Ok(4), true));
    }

    #[tokio::test]
    async fn a_sweep_keeps_what_other_callers_may_still_take() {
        let cache: SharedCache<u32, u32> = SharedCache::new(Duration::from_secs(3600));
        let ok = |v: u32| async move { Ok::<u32, Error>(v) };
        for k in 0..SWEEP_ABOVE as u32 {
            let (v, _) = cache
                .get(&k, Duration::from_secs(3600), true, || ok(k))
                .await;
            assert_eq!(v, Ok(k));
        }
        // A caller that wants nothing older than zero adds an entry; the
        // sweep that makes room must not drop the others' fresh entries.
        let k = SWEEP_ABOVE as u32;
        assert_eq!(
            cache.get(&k, Duration::ZERO, true, || ok(k)).await,
            (Ok(k), true)
        );
        assert_eq!(cache.map.lock().unwrap().len(), SWEEP_ABOVE + 1);
        assert_eq!(
            cache
                .get(&0, Duration::from_secs(3600), true, || ok(99))
                .await,
            (Ok(0), false)
        );
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_concurrent_callers_share_one_fetch() {
        let cache: SharedCache<&str, u32> = SharedCache::new(Duration::MAX);
        let calls = AtomicU32::new(0);
        let hour = Duration::from_secs(3600);
        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Err::<u32, Error>(unavailable())
        };
        let (a, b) = tokio::join!(
            cache.get(&"k", hour, true, failing),
            cache.get(&"k", hour, true, failing)
        );
        assert_eq!(
            (a.0.clone(), b.0.clone()),
            (Err(unavailable()), Err(unavailable()))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for both");
        assert!(a.1 ^ b.1, "exactly one of them fetched");
        let _ = cache.get(&"k", hour, true, failing).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the failure was not kept");
    }
}
