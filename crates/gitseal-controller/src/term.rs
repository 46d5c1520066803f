//! What the controller's watch-fed indexes share (the managed Secrets of
//! [`crate::secret_index`], the opted-in workloads of
//! [`crate::rollout::WorkloadIndex`]): they are filled by watches that run
//! only while this replica leads (a *term*: everything is forgotten between
//! terms), they know a watch scope only once its first list is done, and a
//! reader may wait a bounded time for that first list, then stops waiting
//! for that scope (and asks the API server instead) until it is listed.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

/// A watch scope: something watched in one namespace or in every one.
pub trait Scope: Clone + Eq + Hash {
    /// The scope's namespace (`None`: every namespace).
    fn namespace(&self) -> Option<&str>;
    /// The same scope over every namespace.
    fn everywhere(&self) -> Self;
}

/// Secrets: a namespace, or every namespace.
impl Scope for Option<String> {
    fn namespace(&self) -> Option<&str> {
        self.as_deref()
    }

    fn everywhere(&self) -> Self {
        None
    }
}

/// Workloads: a kind in a namespace, or in every namespace.
impl Scope for (&'static str, Option<String>) {
    fn namespace(&self) -> Option<&str> {
        self.1.as_deref()
    }

    fn everywhere(&self) -> Self {
        (self.0, None)
    }
}

/// One term's state: the index's own data and which scopes are listed.
pub struct Term<S, D> {
    /// What the index holds.
    pub data: D,
    /// Scopes whose first list is done.
    listed: HashSet<S>,
    /// Scopes (of one namespace) whose first list a reader waited for in
    /// vain: later readers there do not wait.
    gave_up: HashSet<S>,
    /// Between [`TermIndex::start`] and [`TermIndex::stop`].
    active: bool,
}

impl<S: Scope, D: Default> Term<S, D> {
    fn new(active: bool) -> Self {
        Term {
            data: D::default(),
            listed: HashSet::new(),
            gave_up: HashSet::new(),
            active,
        }
    }

    /// Whether the index runs (a term started and did not stop).
    pub fn active(&self) -> bool {
        self.active
    }

    /// Whether `scope` (or the same over every namespace) is listed.
    pub fn is_listed(&self, scope: &S) -> bool {
        self.listed.contains(scope) || self.listed.contains(&scope.everywhere())
    }

    /// Whether this very scope finished a list before (its first list
    /// reconciles everything anyway; a relist compares).
    pub fn was_listed(&self, scope: &S) -> bool {
        self.listed.contains(scope)
    }

    /// Forgets which scopes of `namespace` were listed or given up.
    pub fn forget_namespace(&mut self, namespace: &str) {
        self.listed.retain(|s| s.namespace() != Some(namespace));
        self.gave_up.retain(|s| s.namespace() != Some(namespace));
    }
}

/// A term-scoped index: its state behind a lock, and a signal that wakes
/// readers waiting for a first list.
pub struct TermIndex<S, D> {
    state: Mutex<Term<S, D>>,
    /// Bumped when a scope finishes a list, or a term starts or stops.
    listed: watch::Sender<u64>,
    /// How long a reader waits for a scope's first list.
    ready_wait: Duration,
}

impl<S: Scope, D: Default> TermIndex<S, D> {
    /// A stopped index whose readers wait up to `ready_wait`.
    pub fn new(ready_wait: Duration) -> Self {
        TermIndex {
            state: Mutex::new(Term::new(false)),
            listed: watch::channel(0).0,
            ready_wait,
        }
    }

    /// The state (a poisoned lock is taken over: the state is kept
    /// consistent under the lock by each update).
    pub fn lock(&self) -> MutexGuard<'_, Term<S, D>> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Starts a term: nothing is known until the first lists.
    pub fn start(&self) {
        *self.lock() = Term::new(true);
        self.listed.send_modify(|n| *n += 1);
    }

    /// Ends a term: everything is forgotten.
    pub fn stop(&self) {
        *self.lock() = Term::new(false);
        self.listed.send_modify(|n| *n += 1);
    }

    /// A list of `scope` is done (its data already in `st`): the scope is
    /// known, and readers waiting for it go on.
    pub fn finish_list(&self, mut st: MutexGuard<'_, Term<S, D>>, scope: S) {
        match scope.namespace() {
            Some(_) => {
                st.gave_up.remove(&scope);
            }
            None => st.gave_up.retain(|s| s.everywhere() != scope),
        }
        st.listed.insert(scope);
        drop(st);
        self.listed.send_modify(|n| *n += 1);
    }

    /// Reads the index for `scope` (of one namespace) once it is listed.
    /// Waits for its first list up to the index's wait; `None` when the
    /// index is stopped, or that wait ran out (now or for an earlier
    /// reader: then `None` at once until the scope is listed).
    pub async fn when_listed<R>(&self, scope: &S, read: impl Fn(&Term<S, D>) -> R) -> Option<R> {
        let mut rx = self.listed.subscribe();
        let deadline = tokio::time::Instant::now() + self.ready_wait;
        loop {
            {
                let st = self.lock();
                if st.is_listed(scope) {
                    return Some(read(&st));
                }
                if !st.active || st.gave_up.contains(scope) {
                    return None;
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                self.lock().gave_up.insert(scope.clone());
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Index = TermIndex<(&'static str, Option<String>), Vec<u32>>;

    fn at(ns: &str) -> (&'static str, Option<String>) {
        ("Deployment", Some(ns.to_string()))
    }

    #[tokio::test]
    async fn a_reader_waits_for_the_first_list_and_reads_it() {
        let index = std::sync::Arc::new(Index::new(Duration::from_secs(10)));
        assert_eq!(index.when_listed(&at("a"), |t| t.data.clone()).await, None);
        index.start();
        let reader = {
            let index = index.clone();
            tokio::spawn(async move { index.when_listed(&at("a"), |t| t.data.clone()).await })
        };
        tokio::task::yield_now().await;
        {
            let mut st = index.lock();
            st.data.push(7);
            index.finish_list(st, at("a"));
        }
        assert_eq!(reader.await.ok().flatten(), Some(vec![7]));
        // A list of every namespace covers each one.
        index.finish_list(index.lock(), ("Deployment", None));
        assert_eq!(index.when_listed(&at("b"), |t| t.data.len()).await, Some(1));
        assert!(!index.lock().is_listed(&("StatefulSet", Some("b".into()))));
    }

    #[tokio::test]
    async fn a_scope_given_up_answers_at_once_until_listed() {
        let index = Index::new(Duration::from_millis(50));
        index.start();
        let started = tokio::time::Instant::now();
        assert_eq!(index.when_listed(&at("a"), |_| ()).await, None);
        assert!(started.elapsed() >= Duration::from_millis(50));
        let again = tokio::time::Instant::now();
        assert_eq!(index.when_listed(&at("a"), |_| ()).await, None);
        assert!(again.elapsed() < Duration::from_millis(50), "waited again");
        index.finish_list(index.lock(), at("a"));
        assert_eq!(index.when_listed(&at("a"), |_| 1).await, Some(1));
        // A namespace that leaves is unknown again; a new term forgets all.
        index.lock().forget_namespace("a");
        assert!(!index.lock().is_listed(&at("a")));
        index.finish_list(index.lock(), at("a"));
        index.stop();
        assert!(!index.lock().is_listed(&at("a")) && !index.lock().active());
    }
}
