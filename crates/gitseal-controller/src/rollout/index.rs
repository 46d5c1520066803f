//! The opted-in workloads, watched: what rollout on change consults when a
//! Secret is written, instead of listing Deployments, StatefulSets and
//! DaemonSets per write.
//!
//! One watch per kind (per namespace for a shard) reads each workload into
//! [`Workload`], which keeps only its name, namespace, resource version, the
//! `gitseal.dev/restart-on-change` annotation and the pod template's
//! `gitseal.dev/secret-hash.*` annotations; everything else (the pod spec,
//! `managedFields`, kubectl's last-applied annotation, the status) is
//! skipped while decoding, so it is never allocated, and a workload with
//! fields the controller does not read (or cannot read: an odd spec) does
//! not stop the others. The index then keeps only the workloads that opt
//! in. The opt-in is an annotation, which a watch cannot select on, so
//! every workload is streamed once per change; it is dropped at once
//! unless it opts in.
//!
//! Until a kind has been listed in a namespace (or when the index is not
//! running, or a watch has failed since start, e.g. without the `watch`
//! verb), [`WorkloadIndex::opted_in`] answers `None` and rollout lists as
//! before.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::{opts_in_value, HASH_ANNOTATION_PREFIX, RESTART_ANNOTATION};
use crate::term::{Term, TermIndex};

/// How long a rollout waits for the first list of a kind (in the Secret's
/// namespace) before it lists by itself.
const READY_WAIT: Duration = Duration::from_secs(20);

/// Workloads per page of a (re)list.
const LIST_PAGE: u32 = 100;

/// A workload kind rollout handles (`apps/v1`, namespaced).
pub trait Kind: Clone + fmt::Debug + Send + Sync + 'static {
    /// `Deployment`, ...
    const KIND: &'static str;
    /// `deployments`, ...
    const PLURAL: &'static str;
}

/// `apps/v1` Deployments.
#[derive(Clone, Debug)]
pub struct Deployments;
/// `apps/v1` StatefulSets.
#[derive(Clone, Debug)]
pub struct StatefulSets;
/// `apps/v1` DaemonSets.
#[derive(Clone, Debug)]
pub struct DaemonSets;

impl Kind for Deployments {
    const KIND: &'static str = "Deployment";
    const PLURAL: &'static str = "deployments";
}
impl Kind for StatefulSets {
    const KIND: &'static str = "StatefulSet";
    const PLURAL: &'static str = "statefulsets";
}
impl Kind for DaemonSets {
    const KIND: &'static str = "DaemonSet";
    const PLURAL: &'static str = "daemonsets";
}

/// A Deployment, StatefulSet or DaemonSet as far as rollout reads it: its
/// metadata (name, namespace, uid, resource version and only the
/// restart-on-change annotation) and the `gitseal.dev/secret-hash.*`
/// annotations of its pod template.
#[derive(Clone, Debug, Deserialize)]
#[serde(bound = "", from = "RawWorkload")]
pub struct Workload<K: Kind> {
    metadata: ObjectMeta,
    template_hashes: BTreeMap<String, String>,
    kind: PhantomData<K>,
}

impl<K: Kind> Workload<K> {
    /// The pod-template annotations `gitseal.dev/secret-hash.*`.
    pub fn template_hashes(&self) -> &BTreeMap<String, String> {
        &self.template_hashes
    }

    /// The `gitseal.dev/restart-on-change` annotation, if any.
    pub fn opt_in(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(RESTART_ANNOTATION)
            .map(String::as_str)
    }
}

impl<K: Kind> Resource for Workload<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::KIND)
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("apps")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(K::PLURAL)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Deserialize)]
struct RawWorkload {
    metadata: Option<RawMeta>,
    spec: Option<RawSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    #[serde(default, deserialize_with = "restart_annotation")]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawSpec {
    template: Option<RawTemplate>,
}

#[derive(Deserialize)]
struct RawTemplate {
    metadata: Option<RawTemplateMeta>,
}

#[derive(Deserialize)]
struct RawTemplateMeta {
    #[serde(default, deserialize_with = "hash_annotations")]
    annotations: BTreeMap<String, String>,
}

impl<K: Kind> From<RawWorkload> for Workload<K> {
    fn from(raw: RawWorkload) -> Self {
        let meta = raw.metadata;
        let template_hashes = raw
            .spec
            .and_then(|s| s.template)
            .and_then(|t| t.metadata)
            .map(|m| m.annotations)
            .unwrap_or_default();
        let metadata = match meta {
            Some(m) => ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                annotations: (!m.annotations.is_empty()).then_some(m.annotations),
                ..ObjectMeta::default()
            },
            None => ObjectMeta::default(),
        };
        Workload {
            metadata,
            template_hashes,
            kind: PhantomData,
        }
    }
}

/// Reads an annotation map keeping only the keys `keep` accepts; the other
/// values are skipped unread. `null` reads as empty.
struct Filtered(fn(&str) -> bool);

impl<'de> Visitor<'de> for Filtered {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of annotations")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if (self.0)(&key) {
                if let Some(v) = map.next_value::<Option<String>>()? {
                    out.insert(key, v);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

fn restart_annotation<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_option(Filtered(|k| k == RESTART_ANNOTATION))
}

fn hash_annotations<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    d.deserialize_option(Filtered(|k| k.starts_with(HASH_ANNOTATION_PREFIX)))
}

/// An opted-in workload.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tracked {
    /// The restart-on-change annotation (Secret names, comma-separated).
    opt_in: String,
    /// Its pod template's `gitseal.dev/secret-hash.*` annotations.
    hashes: BTreeMap<String, String>,
}

/// A watch scope: a kind, in one namespace or (`None`) every namespace.
type WatchScope = (&'static str, Option<String>);

/// What the index holds in a term.
#[derive(Default)]
struct Data {
    /// namespace → (kind, name) → the opted-in workload.
    workloads: HashMap<String, BTreeMap<(&'static str, String), Tracked>>,
    /// Lists in progress.
    relisting: HashMap<WatchScope, Vec<(String, String, Tracked)>>,
}

type State = Term<WatchScope, Data>;

/// The opted-in workloads (see the module docs).
pub struct WorkloadIndex {
    term: TermIndex<WatchScope, Data>,
}

impl fmt::Debug for WorkloadIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkloadIndex")
    }
}

impl Default for WorkloadIndex {
    fn default() -> Self {
        Self::new()
    }
}

/// What the index holds of a workload, if it opts in.
fn tracked<K: Kind>(w: &Workload<K>) -> Option<(String, String, Tracked)> {
    let opt_in = w.opt_in()?.to_string();
    Some((
        w.metadata.namespace.clone()?,
        w.metadata.name.clone()?,
        Tracked {
            opt_in,
            hashes: w.template_hashes.clone(),
        },
    ))
}

impl WorkloadIndex {
    /// An empty, stopped index: [`WorkloadIndex::opted_in`] answers `None`.
    pub fn new() -> Self {
        Self::waiting(READY_WAIT)
    }

    /// An empty, stopped index whose readers wait up to `ready_wait` for a
    /// first list.
    fn waiting(ready_wait: Duration) -> Self {
        WorkloadIndex {
            term: TermIndex::new(ready_wait),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.term.lock()
    }

    /// Starts a term: nothing is known until the first lists.
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
        st.data.workloads.remove(namespace);
        st.data
            .relisting
            .retain(|(_, ns), _| ns.as_deref() != Some(namespace));
    }

    /// Opted-in workloads held (all kinds and namespaces).
    pub fn len(&self) -> usize {
        self.lock().data.workloads.values().map(BTreeMap::len).sum()
    }

    /// Whether no opted-in workload is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The workloads of kind `kind` in `namespace` that opt in to restarts
    /// for `secret`: their names and the hash their pod template carries
    /// for it. `None` when the index does not know (stopped, or the kind
    /// not listed there yet: waits up to 20 s for the first list, then
    /// answers `None` at once for that kind and namespace).
    pub async fn opted_in(
        &self,
        kind: &'static str,
        namespace: &str,
        secret: &str,
    ) -> Option<Vec<(String, Option<String>)>> {
        let key = super::hash_annotation_key(secret);
        self.term
            .when_listed(&(kind, Some(namespace.to_string())), |st| {
                st.data
                    .workloads
                    .get(namespace)
                    .into_iter()
                    .flatten()
                    .filter(|((k, _), t)| *k == kind && opts_in_value(&t.opt_in, secret))
                    .map(|((_, name), t)| (name.clone(), t.hashes.get(&key).cloned()))
                    .collect()
            })
            .await
    }

    /// Records a workload as a write returned it (the watch brings the same
    /// a moment later), so a second change right after sees the new hash.
    pub fn patched<K: Kind>(&self, w: &Workload<K>) {
        let mut st = self.lock();
        if st.active() {
            Self::put(&mut st, K::KIND, w);
        }
    }

    fn put<K: Kind>(st: &mut State, kind: &'static str, w: &Workload<K>) {
        match tracked(w) {
            Some((ns, name, t)) => {
                st.data
                    .workloads
                    .entry(ns)
                    .or_default()
                    .insert((kind, name), t);
            }
            None => Self::remove(st, kind, w),
        }
    }

    fn remove<K: Kind>(st: &mut State, kind: &'static str, w: &Workload<K>) {
        let (Some(ns), Some(name)) = (w.metadata.namespace.as_ref(), w.metadata.name.as_ref())
        else {
            return;
        };
        if let Some(here) = st.data.workloads.get_mut(ns) {
            here.remove(&(kind, name.clone()));
            if here.is_empty() {
                st.data.workloads.remove(ns);
            }
        }
    }

    /// Applies one event of the watch of kind `K` in `namespace` (`None`:
    /// every namespace).
    pub fn on_event<K: Kind>(&self, namespace: Option<&str>, event: watcher::Event<Workload<K>>) {
        let scope: WatchScope = (K::KIND, namespace.map(str::to_string));
        let mut st = self.lock();
        if !st.active() {
            return;
        }
        match event {
            watcher::Event::Apply(w) => Self::put(&mut st, K::KIND, &w),
            watcher::Event::Delete(w) => Self::remove(&mut st, K::KIND, &w),
            watcher::Event::Init => {
                st.data.relisting.insert(scope, Vec::new());
            }
            watcher::Event::InitApply(w) => {
                if let Some(t) = tracked(&w) {
                    st.data.relisting.entry(scope).or_default().push(t);
                }
            }
            watcher::Event::InitDone => {
                let listed = st.data.relisting.remove(&scope).unwrap_or_default();
                // What the list shows replaces what was held for its scope.
                for (ns, here) in st.data.workloads.iter_mut() {
                    if namespace.is_none_or(|n| n == ns) {
                        here.retain(|(k, _), _| *k != K::KIND);
                    }
                }
                st.data.workloads.retain(|_, here| !here.is_empty());
                for (ns, name, t) in listed {
                    st.data
                        .workloads
                        .entry(ns)
                        .or_default()
                        .insert((K::KIND, name), t);
                }
                self.term.finish_list(st, scope);
            }
        }
    }

    /// Watches the Deployments, StatefulSets and DaemonSets of `namespace`
    /// (`None`: every namespace), keeping the index current. Yields once
    /// per event; watch errors back off and retry inside. Call
    /// [`WorkloadIndex::start`] first. Needs `list` and `watch` on the
    /// three kinds.
    pub fn watch(
        self: Arc<Self>,
        client: Client,
        namespace: Option<String>,
    ) -> impl Stream<Item = ()> + Send {
        futures::stream::select_all([
            self.clone()
                .watch_kind::<Deployments>(client.clone(), namespace.clone())
                .boxed(),
            self.clone()
                .watch_kind::<StatefulSets>(client.clone(), namespace.clone())
                .boxed(),
            self.watch_kind::<DaemonSets>(client, namespace).boxed(),
        ])
    }

    fn watch_kind<K: Kind>(
        self: Arc<Self>,
        client: Client,
        namespace: Option<String>,
    ) -> impl Stream<Item = ()> + Send {
        let api: Api<Workload<K>> = match namespace.as_deref() {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        watcher(api, watcher::Config::default().page_size(LIST_PAGE))
            .default_backoff()
            .map(move |event| match event {
                Ok(e) => self.on_event(namespace.as_deref(), e),
                Err(e) => {
                    let hint = match &e {
                        watcher::Error::InitialListFailed(kube::Error::Api(s))
                        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
                            if s.code == 403 =>
                        {
                            "; grant the controller list, watch and patch on apps deployments, statefulsets and daemonsets (until then rollout lists them per change)"
                        }
                        _ => "",
                    };
                    tracing::warn!(
                        kind = K::KIND,
                        namespace = namespace.as_deref().unwrap_or("(all)"),
                        error = %e,
                        "watching workloads for rollout on change failed; retrying{hint}"
                    );
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(name: &str, opt_in: Option<&str>, hash: Option<&str>) -> Workload<Deployments> {
        let mut meta = json!({"name": name, "namespace": "app", "resourceVersion": "7",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"}});
        if let Some(o) = opt_in {
            meta["annotations"][RESTART_ANNOTATION] = json!(o);
        }
        let mut tmeta = json!({"annotations": {"keep": "me"}});
        if let Some(h) = hash {
            tmeta["annotations"]["gitseal.dev/secret-hash.db"] = json!(h);
        }
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"template": {"metadata": tmeta, "spec": {"containers": []}}},
            "status": {"replicas": 3},
        }))
        .unwrap_or_else(|e| panic!("decode: {e}"))
    }

    #[test]
    fn only_the_fields_rollout_reads_are_kept() {
        let w = deployment("web", Some("db"), Some("h1"));
        assert_eq!(w.opt_in(), Some("db"));
        assert_eq!(
            w.metadata.annotations.as_ref().map(BTreeMap::len),
            Some(1),
            "the last-applied annotation is dropped"
        );
        assert_eq!(w.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(
            w.template_hashes(),
            &BTreeMap::from([("gitseal.dev/secret-hash.db".to_string(), "h1".to_string())])
        );
        // No selector, null annotations, a spec of another shape: still read.
        let odd: Workload<Deployments> = serde_json::from_value(json!({
            "metadata": {"name": "odd", "namespace": "app", "annotations": null},
            "spec": {"replicas": "three", "template": {"metadata": {"annotations": null}}},
        }))
        .unwrap_or_else(|e| panic!("decode: {e}"));
        assert_eq!(odd.opt_in(), None);
        assert!(odd.template_hashes().is_empty());
    }

    #[tokio::test]
    async fn unknown_until_listed_then_only_opted_in_workloads() {
        let index = WorkloadIndex::new();
        assert_eq!(index.opted_in("Deployment", "app", "db").await, None);
        index.start();
        index.on_event::<Deployments>(None, watcher::Event::Init);
        for w in [
            deployment("web", Some("cache, db"), Some("h1")),
            deployment("new", Some("db"), None),
            deployment("other", Some("db-2"), Some("h1")),
            deployment("plain", None, Some("h1")),
        ] {
            index.on_event(None, watcher::Event::InitApply(w));
        }
        index.on_event::<Deployments>(None, watcher::Event::InitDone);
        assert_eq!(
            index.len(),
            3,
            "the workload that does not opt in is not kept"
        );
        assert_eq!(
            index.opted_in("Deployment", "app", "db").await,
            Some(vec![
                ("new".to_string(), None),
                ("web".to_string(), Some("h1".to_string()))
            ])
        );
        assert_eq!(
            index.opted_in("Deployment", "elsewhere", "db").await,
            Some(vec![])
        );

        // Opting out removes it; a patch result updates the hash at once.
        index.on_event(None, watcher::Event::Apply(deployment("new", None, None)));
        index.patched(&deployment("web", Some("db"), Some("h2")));
        assert_eq!(
            index.opted_in("Deployment", "app", "db").await,
            Some(vec![("web".to_string(), Some("h2".to_string()))])
        );
        index.on_event(None, watcher::Event::Delete(deployment("web", None, None)));
        assert_eq!(
            index.opted_in("Deployment", "app", "db").await,
            Some(vec![])
        );

        // A relist replaces what was held.
        index.on_event::<Deployments>(None, watcher::Event::Init);
        index.on_event(
            None,
            watcher::Event::InitApply(deployment("b", Some("db"), None)),
        );
        index.on_event::<Deployments>(None, watcher::Event::InitDone);
        assert_eq!(
            index.opted_in("Deployment", "app", "db").await,
            Some(vec![("b".to_string(), None)])
        );
        index.stop();
        assert_eq!(index.opted_in("Deployment", "app", "db").await, None);
    }

    #[tokio::test]
    async fn a_kind_never_listed_is_given_up_after_the_wait() {
        let index = WorkloadIndex::waiting(Duration::from_millis(200));
        index.start();
        let t = std::time::Instant::now();
        assert_eq!(index.opted_in("StatefulSet", "app", "db").await, None);
        assert!(t.elapsed() >= Duration::from_millis(200));
        // Then at once, until that kind is listed.
        let t = std::time::Instant::now();
        assert_eq!(index.opted_in("StatefulSet", "app", "db").await, None);
        assert!(t.elapsed() < Duration::from_millis(100));
        index.on_event::<StatefulSets>(Some("app"), watcher::Event::Init);
        index.on_event::<StatefulSets>(Some("app"), watcher::Event::InitDone);
        assert_eq!(
            index.opted_in("StatefulSet", "app", "db").await,
            Some(vec![])
        );
        index.left("app");
        assert_eq!(
            index.opted_in("StatefulSet", "other", "db").await,
            None,
            "a namespace not listed"
        );
    }
}
