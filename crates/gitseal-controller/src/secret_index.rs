//! What the controller knows of the Secrets it manages without asking the
//! API server: one watch of the Secrets labelled
//! `app.kubernetes.io/managed-by=gitseal-controller`, each reduced on
//! arrival to a 16-byte fingerprint (a keyed MAC of its owner, type,
//! immutability, labels, annotations and data). No Secret data is kept.
//!
//! Reconcile compares the fingerprint of the Secret it wants with the one
//! seen: equal means the Secret already is what it should be (no GET, no
//! write); no Secret seen means it is created (a create, not an apply, so a
//! Secret someone else made under that name is refused by the API server,
//! never taken over); anything else is read with one GET and handled as
//! before. So a new object costs one write, and an object already in sync
//! costs no request at all.
//!
//! The index also triggers reconciles: a managed Secret that changed into
//! something other than what its SealedSecret last wanted, or vanished (also
//! across a relist), reconciles its SealedSecret. Its own writes, which
//! arrive as what the SealedSecret wanted, trigger nothing. Because an event
//! is applied to the index before it triggers, the reconcile it triggers
//! sees it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use gitseal_manifest::SealedSecret;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use rand_core::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::term::{Term, TermIndex};
use crate::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// A Secret reduced to what reconcile compares (never its data).
pub type Fingerprint = [u8; 16];

/// How long a reconcile waits for the index's first list (of its
/// namespace) before it asks the API server instead.
const READY_WAIT: Duration = Duration::from_secs(20);

/// Secrets listed per page: a page is decoded whole (Secrets of up to 1 MiB
/// each), as for the SealedSecrets.
const LIST_PAGE: u32 = 10;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// The Secret as last seen; `None` when none is (or not yet).
    seen: Option<Fingerprint>,
    /// What its SealedSecret last wanted it to be.
    wanted: Option<Fingerprint>,
    /// Another watch saw this Secret change in a way this one did not (see
    /// [`SecretIndex::distrust`]): not known until this watch sees it again.
    distrusted: bool,
}

/// What the index holds in a term; its watch scopes are namespaces
/// (`None`: every namespace).
#[derive(Default)]
struct Data {
    entries: HashMap<(String, String), Entry>,
    /// Entries of the relists in progress, by the namespace of the watch.
    relisting: HashMap<Option<String>, HashMap<(String, String), Fingerprint>>,
}

type State = Term<Option<String>, Data>;

/// What the index knows of one Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The index has listed the managed Secrets and this one is not among them
    /// (there may be a Secret of that name the controller does not manage).
    Absent,
    /// A managed Secret with this fingerprint.
    Present(Fingerprint),
    /// Not known (the index has not listed yet).
    Unknown,
}

/// The index of managed Secrets (see the module docs).
pub struct SecretIndex {
    key: Zeroizing<[u8; 32]>,
    term: TermIndex<Option<String>, Data>,
}

impl std::fmt::Debug for SecretIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretIndex")
    }
}

impl Default for SecretIndex {
    fn default() -> Self {
        Self::new()
    }
}

fn place_of(secret: &Secret) -> Option<(String, String)> {
    Some((
        secret.metadata.namespace.clone()?,
        secret.metadata.name.clone()?,
    ))
}

impl SecretIndex {
    /// An empty index under a fresh random MAC key.
    pub fn new() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand_core::OsRng.fill_bytes(key.as_mut());
        SecretIndex {
            key,
            term: TermIndex::new(READY_WAIT),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.term.lock()
    }

    /// The fingerprint of `secret`: its controller owner's uid, type
    /// (`Opaque` when unset), immutability, labels, annotations and data,
    /// under this process's random key.
    pub fn fingerprint(&self, secret: &Secret) -> Fingerprint {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()) {
            Ok(m) => m,
            // Any key length is valid for HMAC.
            Err(_) => return [0; 16],
        };
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_be_bytes());
            mac.update(bytes);
        };
        let owner = secret
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.as_str())
            .unwrap_or_default();
        field(owner.as_bytes());
        field(secret.type_.as_deref().unwrap_or("Opaque").as_bytes());
        field(match secret.immutable {
            None => b"-",
            Some(true) => b"t",
            Some(false) => b"f",
        });
        let empty = BTreeMap::new();
        for map in [&secret.metadata.labels, &secret.metadata.annotations] {
            let map = map.as_ref().unwrap_or(&empty);
            field(&(map.len() as u64).to_be_bytes());
            for (k, v) in map {
                field(k.as_bytes());
                field(v.as_bytes());
            }
        }
        let data = secret.data.clone().unwrap_or_default();
        field(&(data.len() as u64).to_be_bytes());
        for (k, v) in &data {
            field(k.as_bytes());
            field(&v.0);
        }
        let out = mac.finalize().into_bytes();
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&out[..16]);
        fp
    }

    /// What the index knows of Secret `namespace/name`. Waits (up to 20 s)
    /// for the first list of the namespace; after that, answers
    /// [`Seen::Unknown`] at once while the namespace is not listed.
    pub async fn seen(&self, namespace: &str, name: &str) -> Seen {
        let at = (namespace.to_string(), name.to_string());
        self.term
            .when_listed(&Some(namespace.to_string()), |st| {
                match st.data.entries.get(&at) {
                    Some(e) if e.distrusted => Seen::Unknown,
                    Some(Entry { seen: Some(fp), .. }) => Seen::Present(*fp),
                    _ => Seen::Absent,
                }
            })
            .await
            .unwrap_or(Seen::Unknown)
    }

    /// Records what the SealedSecret of `namespace/name` wants its Secret to
    /// be: an event bringing exactly that triggers no reconcile.
    pub fn want(&self, namespace: &str, name: &str, fp: Fingerprint) {
        self.lock()
            .data
            .entries
            .entry((namespace.to_string(), name.to_string()))
            .or_default()
            .wanted = Some(fp);
    }

    /// Another watch (the metadata-only one of every Secret) saw the Secret
    /// `namespace/name` change or vanish, e.g. across a relist this watch
    /// did not need: until this watch sees it again, reconcile reads it.
    pub fn distrust(&self, namespace: &str, name: &str) {
        if let Some(e) = self
            .lock()
            .data
            .entries
            .get_mut(&(namespace.to_string(), name.to_string()))
        {
            e.distrusted = true;
        }
    }

    /// Forgets what the SealedSecret of `namespace/name` wanted (it was
    /// deleted).
    pub fn forget(&self, namespace: &str, name: &str) {
        let mut st = self.lock();
        let key = (namespace.to_string(), name.to_string());
        if let Some(e) = st.data.entries.get_mut(&key) {
            e.wanted = None;
            if e.seen.is_none() {
                st.data.entries.remove(&key);
            }
        }
    }

    /// Forgets what every SealedSecret not kept by `keep(namespace, name)`
    /// wanted (they were found gone after a relist).
    pub fn retain_wanted(&self, keep: impl Fn(&str, &str) -> bool) {
        self.lock().data.entries.retain(|(ns, name), e| {
            if e.wanted.is_some() && !keep(ns, name) {
                e.wanted = None;
            }
            e.seen.is_some() || e.wanted.is_some()
        });
    }

    /// Managed Secrets seen.
    pub fn len(&self) -> usize {
        self.lock()
            .data
            .entries
            .values()
            .filter(|e| e.seen.is_some())
            .count()
    }

    /// Whether no managed Secret is seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a term: nothing is known until the first list.
    pub fn start(&self) {
        self.term.start();
    }

    /// Ends a term: everything is forgotten.
    pub fn stop(&self) {
        self.term.stop();
    }

    /// A namespace left this shard: what was seen there is forgotten.
    pub fn left(&self, namespace: &str) {
        let mut st = self.lock();
        st.forget_namespace(namespace);
        st.data.relisting.remove(&Some(namespace.to_string()));
        st.data.entries.retain(|(ns, _), _| ns != namespace);
    }

    /// Applies one event of the watch of every namespace; returns the
    /// SealedSecrets to reconcile.
    pub fn on_event(&self, event: watcher::Event<Secret>) -> Vec<ObjectRef<SealedSecret>> {
        self.on_event_in(None, event)
    }

    /// Applies one event of the watch of `namespace` (`None`: of every
    /// namespace); returns the SealedSecrets to reconcile.
    pub fn on_event_in(
        &self,
        namespace: Option<&str>,
        event: watcher::Event<Secret>,
    ) -> Vec<ObjectRef<SealedSecret>> {
        let scope = namespace.map(str::to_string);
        let mut out = Vec::new();
        let target = |(ns, name): &(String, String)| ObjectRef::new(name).within(ns);
        match event {
            watcher::Event::Apply(secret) => {
                let Some(at) = place_of(&secret) else {
                    return out;
                };
                let fp = self.fingerprint(&secret);
                let mut st = self.lock();
                let e = st.data.entries.entry(at.clone()).or_default();
                e.seen = Some(fp);
                e.distrusted = false;
                if e.wanted != Some(fp) {
                    out.push(target(&at));
                }
            }
            watcher::Event::Delete(secret) => {
                let Some(at) = place_of(&secret) else {
                    return out;
                };
                let mut st = self.lock();
                if let Some(e) = st.data.entries.get_mut(&at) {
                    e.seen = None;
                    e.distrusted = false;
                    if e.wanted.is_none() {
                        st.data.entries.remove(&at);
                    }
                }
                out.push(target(&at));
            }
            watcher::Event::Init => {
                self.lock().data.relisting.insert(scope, HashMap::new());
            }
            watcher::Event::InitApply(secret) => {
                let Some(at) = place_of(&secret) else {
                    return out;
                };
                let fp = self.fingerprint(&secret);
                self.lock()
                    .data
                    .relisting
                    .entry(scope)
                    .or_default()
                    .insert(at, fp);
            }
            watcher::Event::InitDone => {
                let mut st = self.lock();
                let first = !st.was_listed(&scope);
                let mut listed = st.data.relisting.remove(&scope).unwrap_or_default();
                // Changed or vanished while the watch was away: reconcile
                // (not on the first list: every object is reconciled then).
                st.data.entries.retain(|at, e| {
                    if scope.as_ref().is_some_and(|ns| *ns != at.0) {
                        return true;
                    }
                    let now = listed.remove(at);
                    // Not what its SealedSecret wants: reconcile, also when
                    // this watch last saw it the same (deleted, then put
                    // back by a write this watch missed, then deleted again
                    // while it was away).
                    if !first && now != e.wanted && (now != e.seen || e.wanted.is_some()) {
                        out.push(target(at));
                    }
                    e.seen = now;
                    e.distrusted = false;
                    e.seen.is_some() || e.wanted.is_some()
                });
                for (at, fp) in listed {
                    st.data.entries.insert(
                        at,
                        Entry {
                            seen: Some(fp),
                            wanted: None,
                            distrusted: false,
                        },
                    );
                }
                self.term.finish_list(st, scope);
            }
        }
        out
    }

    /// Watches the managed Secrets of `api` (every namespace, or only
    /// `namespace`), keeping the index current; yields the SealedSecrets to
    /// reconcile. Watch errors back off and retry inside. Call
    /// [`SecretIndex::start`] first.
    pub fn watch(
        self: Arc<Self>,
        api: Api<Secret>,
        namespace: Option<String>,
    ) -> impl Stream<Item = ObjectRef<SealedSecret>> + Send {
        let config = watcher::Config::default()
            .labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"))
            .page_size(LIST_PAGE);
        watcher(api, config)
            .default_backoff()
            .filter_map(|event| {
                futures::future::ready(match event {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "watching managed Secrets failed; retrying");
                        None
                    }
                })
            })
            .flat_map(move |event| {
                futures::stream::iter(self.on_event_in(namespace.as_deref(), event))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    fn secret(name: &str, value: &[u8]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team".into()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY_LABEL.to_string(),
                    MANAGED_BY_VALUE.to_string(),
                )])),
                owner_references: Some(vec![OwnerReference {
                    api_version: "gitseal.dev/v1alpha1".into(),
                    kind: "SealedSecret".into(),
                    name: name.into(),
                    uid: "uid-1".into(),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "k".to_string(),
                ByteString(value.to_vec()),
            )])),
            ..Secret::default()
        }
    }

    fn listed(index: &SecretIndex, secrets: Vec<Secret>) -> Vec<ObjectRef<SealedSecret>> {
        let mut out = index.on_event(watcher::Event::Init);
        for s in secrets {
            out.extend(index.on_event(watcher::Event::InitApply(s)));
        }
        out.extend(index.on_event(watcher::Event::InitDone));
        out
    }

    #[test]
    fn fingerprint_changes_with_every_compared_field() {
        let index = SecretIndex::new();
        let base = secret("a", b"one");
        let fp = index.fingerprint(&base);
        assert_eq!(fp, index.fingerprint(&base.clone()));
        let mut changed = Vec::new();
        let mut s = base.clone();
        s.data = Some(BTreeMap::from([(
            "k".to_string(),
            ByteString(b"two".to_vec()),
        )]));
        changed.push(s);
        let mut s = base.clone();
        s.type_ = Some("kubernetes.io/tls".into());
        changed.push(s);
        let mut s = base.clone();
        s.immutable = Some(true);
        changed.push(s);
        let mut s = base.clone();
        s.metadata.annotations = Some(BTreeMap::from([("a".into(), "b".into())]));
        changed.push(s);
        let mut s = base.clone();
        s.metadata.labels = None;
        changed.push(s);
        let mut s = base.clone();
        if let Some(o) = s.metadata.owner_references.as_mut() {
            o[0].uid = "uid-2".into();
        }
        changed.push(s);
        for s in &changed {
            assert_ne!(index.fingerprint(s), fp);
        }
        // Another process (another key) gives other fingerprints.
        assert_ne!(SecretIndex::new().fingerprint(&base), fp);
    }

    #[tokio::test]
    async fn unknown_until_listed_then_absent_or_present() {
        let index = SecretIndex::new();
        assert_eq!(index.seen("team", "a").await, Seen::Unknown);
        index.start();
        let a = secret("a", b"one");
        let fp = index.fingerprint(&a);
        assert!(
            listed(&index, vec![a]).is_empty(),
            "first list triggers nothing"
        );
        assert_eq!(index.seen("team", "a").await, Seen::Present(fp));
        assert_eq!(index.seen("team", "b").await, Seen::Absent);
        index.stop();
        assert_eq!(index.seen("team", "a").await, Seen::Unknown);
    }

    #[tokio::test]
    async fn own_writes_trigger_nothing_other_changes_do() {
        let index = SecretIndex::new();
        index.start();
        listed(&index, vec![]);
        let a = secret("a", b"one");
        index.want("team", "a", index.fingerprint(&a));
        assert!(index.on_event(watcher::Event::Apply(a.clone())).is_empty());
        // Edited by hand: reconcile, and the index already holds the edit.
        let edited = secret("a", b"edited");
        let triggered = index.on_event(watcher::Event::Apply(edited.clone()));
        assert_eq!(triggered, vec![ObjectRef::new("a").within("team")]);
        assert_eq!(
            index.seen("team", "a").await,
            Seen::Present(index.fingerprint(&edited))
        );
        // Deleted: reconcile, and it is absent.
        let triggered = index.on_event(watcher::Event::Delete(edited));
        assert_eq!(triggered, vec![ObjectRef::new("a").within("team")]);
        assert_eq!(index.seen("team", "a").await, Seen::Absent);
    }

    #[tokio::test]
    async fn a_distrusted_entry_is_unknown_until_seen_again() {
        let index = SecretIndex::new();
        index.start();
        let a = secret("a", b"1");
        listed(&index, vec![a.clone()]);
        index.distrust("team", "a");
        assert_eq!(index.seen("team", "a").await, Seen::Unknown);
        index.on_event(watcher::Event::Apply(a.clone()));
        assert_eq!(
            index.seen("team", "a").await,
            Seen::Present(index.fingerprint(&a))
        );
    }

    #[tokio::test]
    async fn a_relist_reconciles_what_changed_or_vanished_meanwhile() {
        let index = SecretIndex::new();
        index.start();
        let (a, b, c) = (secret("a", b"1"), secret("b", b"2"), secret("c", b"3"));
        for s in [&a, &b, &c] {
            index.want(
                "team",
                s.metadata.name.as_deref().unwrap_or_default(),
                index.fingerprint(s),
            );
        }
        listed(&index, vec![a.clone(), b.clone(), c.clone()]);
        // While the watch was away: b was edited, c deleted, a untouched.
        let mut triggered = listed(&index, vec![a, secret("b", b"edited")]);
        triggered.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(
            triggered,
            vec![
                ObjectRef::new("b").within("team"),
                ObjectRef::new("c").within("team")
            ]
        );
        assert_eq!(index.seen("team", "c").await, Seen::Absent);
        assert_eq!(index.len(), 2);
        // Once its SealedSecret is gone too, nothing is kept for c.
        index.forget("team", "c");
        assert_eq!(index.lock().data.entries.len(), 2);
    }
}
