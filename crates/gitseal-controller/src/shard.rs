//! Shards: several controller instances, each owning a disjoint set of
//! SealedSecrets by namespace.
//!
//! An instance started with `--watch-namespaces a,b` or
//! `--watch-namespace-selector team=x` watches SealedSecrets and Secrets
//! only in those namespaces (one watch per namespace and resource, so a
//! Role in each namespace is enough for a list; a selector also needs
//! `list`/`watch` on namespaces). Objects elsewhere are never read nor
//! written. With a selector, a namespace that stops matching leaves this
//! shard at once: its objects are dropped from the cache and their
//! per-object state forgotten, so the shard whose selector it now matches
//! takes it over (the Secrets stay as they are; the new owner finds them
//! in sync and writes nothing).
//!
//! Each shard elects its own leader: the Lease name is derived from the
//! shard ([`Scope::lease_name`]), so replicas of one shard exclude each
//! other and shards do not.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::pin::Pin;

use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use gitseal_manifest::SealedSecret;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::Store;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};

use std::sync::Arc;

use crate::reconcile::{is_large, strip_for_cache, strip_unread, Fresh};
use crate::Error;

/// Which SealedSecrets an instance owns.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every namespace (one controller per cluster).
    #[default]
    All,
    /// These namespaces (`--watch-namespaces`).
    Namespaces(BTreeSet<String>),
    /// The namespaces whose labels match this selector
    /// (`--watch-namespace-selector`).
    Selector(String),
}

/// The Lease name of an instance that is not a shard.
pub const DEFAULT_LEASE: &str = "gitseal-controller";

impl Scope {
    /// The scope from the two flags (at most one may be given).
    pub fn from_flags(namespaces: Option<&str>, selector: Option<&str>) -> Result<Self, Error> {
        let bad = |message: String| Error::InvalidShard(message);
        match (namespaces, selector) {
            (Some(_), Some(_)) => Err(bad(
                "--watch-namespaces and --watch-namespace-selector exclude each other; give one"
                    .to_string(),
            )),
            (Some(list), None) => {
                let set: BTreeSet<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if set.is_empty() {
                    return Err(bad(
                        "--watch-namespaces names no namespace; give e.g. team-a,team-b"
                            .to_string(),
                    ));
                }
                if let Some(badname) = set.iter().find(|n| !is_dns_label(n)) {
                    return Err(bad(format!(
                        "--watch-namespaces: {badname:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
                    )));
                }
                Ok(Scope::Namespaces(set))
            }
            (None, Some(sel)) => {
                let sel = sel.trim();
                if sel.is_empty() {
                    return Err(bad(
                        "--watch-namespace-selector is empty; give e.g. team=x".to_string()
                    ));
                }
                Ok(Scope::Selector(sel.to_string()))
            }
            (None, None) => Ok(Scope::All),
        }
    }

    /// The Lease this instance's replicas elect their leader with: `base`
    /// for [`Scope::All`], else `base-shard-<8 hex digits>` of a hash of the
    /// namespace list or selector, so two shards never share a Lease and
    /// the replicas of one always do.
    pub fn lease_name(&self, base: &str) -> String {
        let id = match self {
            Scope::All => return base.to_string(),
            Scope::Namespaces(set) => {
                format!(
                    "namespaces={}",
                    set.iter().cloned().collect::<Vec<_>>().join(",")
                )
            }
            Scope::Selector(sel) => format!("selector={sel}"),
        };
        let digest = hex::encode(&Sha256::digest(id.as_bytes())[..4]);
        format!("{base}-shard-{digest}")
    }

    /// Whether every namespace is watched.
    pub fn is_all(&self) -> bool {
        matches!(self, Scope::All)
    }

    /// For logs.
    pub fn describe(&self) -> String {
        match self {
            Scope::All => "all namespaces".to_string(),
            Scope::Namespaces(set) => {
                format!(
                    "namespaces {}",
                    set.iter().cloned().collect::<Vec<_>>().join(",")
                )
            }
            Scope::Selector(sel) => format!("namespaces labelled {sel}"),
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The namespaces of a scoped instance, current: fixed for a list, kept by
/// a metadata-only watch of namespaces for a selector. `None` until known.
pub type NamespaceSet = watch::Receiver<Option<BTreeSet<String>>>;

/// Follows the namespaces of `scope` (not [`Scope::All`]) until dropped.
pub fn namespaces(client: Client, scope: &Scope) -> (NamespaceSet, BoxStream<'static, ()>) {
    match scope {
        Scope::All => (watch::channel(None).1, futures::stream::pending().boxed()),
        Scope::Namespaces(set) => {
            let (tx, rx) = watch::channel(Some(set.clone()));
            // Keeps the sender alive while the returned stream is polled.
            let keep = futures::stream::unfold(tx, |tx| async move {
                futures::future::pending::<()>().await;
                Some(((), tx))
            });
            (rx, keep.boxed())
        }
        Scope::Selector(sel) => {
            let (tx, rx) = watch::channel(None);
            let api: Api<PartialObjectMeta<Namespace>> = Api::all(client);
            let mut listing: Option<BTreeSet<String>> = None;
            let mut current: BTreeSet<String> = BTreeSet::new();
            let stream = watcher(api, watcher::Config::default().labels(sel))
                .default_backoff()
                .filter_map(move |event| {
                    let changed = match event {
                        Ok(watcher::Event::Init) => {
                            listing = Some(BTreeSet::new());
                            false
                        }
                        Ok(watcher::Event::InitApply(ns)) => {
                            listing.get_or_insert_with(BTreeSet::new).insert(ns.name_any());
                            false
                        }
                        Ok(watcher::Event::InitDone) => {
                            current = listing.take().unwrap_or_default();
                            true
                        }
                        Ok(watcher::Event::Apply(ns)) => current.insert(ns.name_any()),
                        Ok(watcher::Event::Delete(ns)) => current.remove(&ns.name_any()),
                        Err(e) => {
                            tracing::warn!(error = %e, "watching namespaces failed; retrying");
                            false
                        }
                    };
                    if changed {
                        let new = Some(current.clone());
                        tx.send_if_modified(|old| {
                            if *old != new {
                                tracing::info!(namespaces = ?new.as_ref().map(|s| s.len()), "namespaces of this shard changed");
                                *old = new;
                                true
                            } else {
                                false
                            }
                        });
                    }
                    futures::future::ready(Some(()))
                });
            (rx, stream.boxed())
        }
    }
}

/// An item of [`per_namespace`].
pub enum NsItem<T> {
    /// An item of the stream of a namespace.
    Item(String, T),
    /// The namespace left the set; its stream has ended.
    Left(String),
}

type Tagged<T> = BoxStream<'static, (String, T)>;

struct PerNamespace<T, F> {
    set: NamespaceSet,
    set_open: bool,
    running: HashMap<String, oneshot::Sender<()>>,
    streams: SelectAll<Tagged<T>>,
    left: Vec<String>,
    make: F,
}

/// Runs `make(namespace)` for every namespace of `set` (as it changes),
/// merged; a namespace that leaves the set ends its stream and yields
/// [`NsItem::Left`].
pub fn per_namespace<T, S, F>(set: NamespaceSet, make: F) -> impl Stream<Item = NsItem<T>> + Send
where
    T: Send + 'static,
    S: Stream<Item = T> + Send + 'static,
    F: Fn(&str) -> S + Send + 'static,
{
    let state = PerNamespace {
        set,
        set_open: true,
        running: HashMap::new(),
        streams: SelectAll::new(),
        left: Vec::new(),
        make,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ns) = st.left.pop() {
                return Some((NsItem::Left(ns), st));
            }
            // Start and stop streams for the current set.
            let wanted: BTreeSet<String> = st.set.borrow_and_update().clone().unwrap_or_default();
            let gone: Vec<String> = st
                .running
                .keys()
                .filter(|ns| !wanted.contains(*ns))
                .cloned()
                .collect();
            for ns in gone {
                // Dropping the sender ends the namespace's stream.
                st.running.remove(&ns);
                st.left.push(ns);
            }
            for ns in wanted {
                if st.running.contains_key(&ns) {
                    continue;
                }
                let (stop_tx, stop_rx) = oneshot::channel::<()>();
                let tag = ns.clone();
                let stream = (st.make)(&ns)
                    .take_until(stop_rx)
                    .map(move |item| (tag.clone(), item))
                    .boxed();
                st.streams.push(stream);
                st.running.insert(ns, stop_tx);
            }
            if !st.left.is_empty() {
                continue;
            }
            let set_open = st.set_open;
            let has_streams = !st.streams.is_empty();
            tokio::select! {
                changed = st.set.changed(), if set_open => {
                    if changed.is_err() {
                        st.set_open = false;
                    }
                }
                Some((ns, item)) = st.streams.next(), if has_streams => {
                    return Some((NsItem::Item(ns, item), st));
                }
                else => futures::future::pending::<()>().await,
            }
        }
    })
}

/// Where the sealed-values-free copies of the SealedSecrets go and whole
/// objects wait for their reconcile.
pub struct SealedCache {
    /// The cache the controller reads.
    pub writer: Writer<SealedSecret>,
    /// Whole objects until reconciled.
    pub fresh: Arc<Fresh>,
    /// Told of every object dropped (deleted, missing after a relist, or
    /// its namespace left the shard).
    pub gone: Box<dyn Fn(&SealedSecret) + Send + Sync>,
}

struct SealedState {
    inner: BoxStream<'static, NsItem<Result<watcher::Event<SealedSecret>, watcher::Error>>>,
    cache: SealedCache,
    reader: Store<SealedSecret>,
    relisting: HashMap<String, HashSet<String>>,
    /// uid digest → generation of the last version passed on.
    generations: HashMap<[u8; 16], i64>,
}

fn uid_key(obj: &SealedSecret) -> [u8; 16] {
    let digest = Sha256::digest(obj.metadata.uid.as_deref().unwrap_or_default().as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl SealedState {
    fn drop_where(&mut self, ns: &str, keep: &dyn Fn(&str) -> bool) {
        for obj in self.reader.state() {
            let here = ns.is_empty() || obj.namespace().as_deref() == Some(ns);
            if here && !keep(&obj.name_any()) {
                self.drop_object(&obj);
            }
        }
    }

    fn drop_object(&mut self, obj: &SealedSecret) {
        self.cache
            .writer
            .apply_watcher_event(&watcher::Event::Delete(obj.clone()));
        self.generations.remove(&uid_key(obj));
        self.cache.fresh.remove(obj);
        (self.cache.gone)(obj);
    }

    /// Caches a new version of `obj`; returns the copy to reconcile when
    /// its generation (or uid) is new: the status and metadata, which the
    /// controller writes itself, do not change the Secret.
    async fn arrived(&mut self, mut obj: SealedSecret) -> Option<SealedSecret> {
        strip_unread(&mut obj);
        let mut cached = obj.clone();
        strip_for_cache(&mut cached);
        self.cache
            .writer
            .apply_watcher_event(&watcher::Event::Apply(cached.clone()));
        let generation = obj.metadata.generation.unwrap_or(-1);
        let changed = self.generations.insert(uid_key(&obj), generation) != Some(generation)
            || obj.metadata.generation.is_none();
        if !changed {
            return None;
        }
        if !is_large(&cached) {
            let permit = self.cache.fresh.reserve().await?;
            self.cache.fresh.put(obj, permit);
        }
        Some(cached)
    }
}

/// The SealedSecrets of the namespaces of `set` (`""`: every namespace),
/// one watch per namespace, all kept in one cache without their sealed
/// values ([`strip_for_cache`]), the whole objects in [`Fresh`] until
/// reconciled. Yields the objects whose generation (or uid) is new, as
/// `applied_objects` does for one watch; waits when [`Fresh`] is full.
pub fn sealed_secrets(
    client: Client,
    set: NamespaceSet,
    mut cache: SealedCache,
    page: u32,
) -> impl Stream<Item = Result<SealedSecret, watcher::Error>> + Send {
    // Ready (empty) at once: objects arrive namespace by namespace.
    cache.writer.apply_watcher_event(&watcher::Event::Init);
    cache.writer.apply_watcher_event(&watcher::Event::InitDone);
    let reader = cache.writer.as_reader();
    let inner = per_namespace(set, move |ns| {
        let api: Api<SealedSecret> = if ns.is_empty() {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), ns)
        };
        // Default (most recent) list semantics on purpose: an API server
        // answers a `resourceVersion=0` ("any") list from its watch cache
        // in one piece, ignoring `limit`; a consistent list is paged.
        watcher(api, watcher::Config::default().page_size(page)).default_backoff()
    })
    .boxed();
    let state = SealedState {
        inner,
        cache,
        reader,
        relisting: HashMap::new(),
        generations: HashMap::new(),
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            let item = st.inner.next().await?;
            match item {
                NsItem::Left(ns) => {
                    tracing::info!(namespace = %ns, "namespace left this shard; its SealedSecrets are no longer reconciled here");
                    st.relisting.remove(&ns);
                    st.drop_where(&ns, &|_| false);
                }
                NsItem::Item(_, Err(e)) => return Some((Err(e), st)),
                NsItem::Item(ns, Ok(event)) => match event {
                    watcher::Event::Init => {
                        st.relisting.insert(ns, HashSet::new());
                    }
                    watcher::Event::InitApply(obj) => {
                        st.relisting.entry(ns).or_default().insert(obj.name_any());
                        if let Some(out) = st.arrived(obj).await {
                            return Some((Ok(out), st));
                        }
                    }
                    watcher::Event::Apply(obj) => {
                        if let Some(out) = st.arrived(obj).await {
                            return Some((Ok(out), st));
                        }
                    }
                    watcher::Event::InitDone => {
                        let listed = st.relisting.remove(&ns).unwrap_or_default();
                        st.drop_where(&ns, &|name| listed.contains(name));
                    }
                    watcher::Event::Delete(obj) => st.drop_object(&obj),
                },
            }
        }
    })
}

/// Merges per-namespace trigger streams, dropping the namespace tags.
pub fn merged<T: Send + 'static, S, F>(
    set: NamespaceSet,
    make: F,
) -> Pin<Box<dyn Stream<Item = T> + Send>>
where
    S: Stream<Item = T> + Send + 'static,
    F: Fn(&str) -> S + Send + 'static,
{
    per_namespace(set, make)
        .filter_map(|item| {
            futures::future::ready(match item {
                NsItem::Item(_, t) => Some(t),
                NsItem::Left(_) => None,
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_give_a_scope_or_a_clear_error() {
        assert_eq!(Scope::from_flags(None, None).ok(), Some(Scope::All));
        assert_eq!(
            Scope::from_flags(Some("b, a,,a"), None).ok(),
            Some(Scope::Namespaces(BTreeSet::from([
                "a".to_string(),
                "b".to_string()
            ])))
        );
        assert_eq!(
            Scope::from_flags(None, Some(" team=x ")).ok(),
            Some(Scope::Selector("team=x".into()))
        );
        let err = |r: Result<Scope, Error>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(Scope::from_flags(Some("a"), Some("t=x"))).contains("exclude each other"));
        assert!(err(Scope::from_flags(Some(" , "), None)).contains("names no namespace"));
        assert!(err(Scope::from_flags(Some("Team_A"), None))
            .contains("\"Team_A\" is not a namespace name"));
        assert!(err(Scope::from_flags(None, Some(" "))).contains("is empty"));
    }

    #[test]
    fn lease_names_differ_between_shards_and_not_between_replicas() {
        let a = Scope::from_flags(Some("a,b"), None)
            .ok()
            .unwrap_or_default();
        let a_again = Scope::from_flags(Some("b,a"), None)
            .ok()
            .unwrap_or_default();
        let b = Scope::from_flags(Some("c"), None).ok().unwrap_or_default();
        let sel = Scope::from_flags(None, Some("team=x"))
            .ok()
            .unwrap_or_default();
        assert_eq!(Scope::All.lease_name(DEFAULT_LEASE), "gitseal-controller");
        assert_eq!(
            a.lease_name(DEFAULT_LEASE),
            a_again.lease_name(DEFAULT_LEASE)
        );
        assert!(a
            .lease_name(DEFAULT_LEASE)
            .starts_with("gitseal-controller-shard-"));
        let names: BTreeSet<String> = [&a, &b, &sel, &Scope::All]
            .iter()
            .map(|s| s.lease_name(DEFAULT_LEASE))
            .collect();
        assert_eq!(names.len(), 4);
    }
}
