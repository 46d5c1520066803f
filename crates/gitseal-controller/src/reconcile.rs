//! Reconcile: one SealedSecret in, one Secret out.
//!
//! One pass is a pipeline of small steps:
//!
//! 1. **admit**: what the object may ask for at all (not the controller's
//!    own namespace, no `gitseal.dev/` metadata in the template, not more
//!    data than a Secret holds);
//! 2. **resolve** every item (sealed values opened with the key set, Vault
//!    references through the [`VaultResolver`]); nothing is written unless
//!    every item resolved;
//! 3. **render** templated items from the resolved ones
//!    ([`crate::templates`]); inputs only templates read stay out;
//! 4. the **desired Secret**;
//! 5. **write** it, by server-side apply with the controller's field
//!    manager and a controller owner reference, when the existing Secret
//!    differs: items someone else added are removed, an immutable Secret is
//!    replaced only after a server-side dry run of the new one, and the old
//!    one is put back if writing the new one fails;
//! 6. **rollout** of opted-in workloads when the data changed;
//! 7. the **status**: [`next_status`] computes it from the outcome, and
//!    [`report`] is the one place that writes it (and emits an Event once
//!    per change).
//!
//! On any failure the existing Secret is not touched, the `Ready`
//! condition says which item failed and why, and [`error_policy`] retries
//! with a per-object exponential backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gitseal_manifest::types::{Condition, SealedSecretStatus};
use gitseal_manifest::SealedSecret;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::hash::DataHasher;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::secret_index::{SecretIndex, Seen};
use crate::sources::{self, ItemFailure, Resolved, VaultResolver};
use crate::{
    Error, Reason, ADOPT_ANNOTATION, FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    MAX_SECRET_DATA_BYTES, RESERVED_PREFIX, SERVICE_ACCOUNT_TOKEN_TYPE,
};

/// Retry timing.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Requeue after a successful reconcile of an object with Vault items
    /// (bounds `refreshInterval`). Sealed-only objects are not requeued:
    /// every input they depend on is watched.
    pub resync: Duration,
    /// First retry delay after a failure. Later retries wait as long as the
    /// object has been failing, so they come at base, 2·base, 4·base, ...
    /// after the first failure ([`backoff`]).
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            resync: Duration::from_secs(3600),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// Objects whose sealed data and template take more than this many bytes
/// are cached without their spec, and fetched whole when reconciled: the
/// cache of a cluster with many objects near the 1 MiB limit would
/// otherwise hold all of them forever.
pub const CACHE_SPEC_LIMIT: usize = 16 * 1024;
/// Annotation put on the cached copy (never on the object in the cluster)
/// of an object whose spec was left out of the cache.
pub const SPEC_NOT_CACHED: &str = "internal.gitseal.dev/spec-not-cached";
/// Reconciles of such large objects running at once (each holds its
/// object, the opened values and the Secret body in memory).
const LARGE_AT_ONCE: usize = 2;

/// What reconcile needs, shared by every reconcile.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// The sealing keys.
    pub keys: Arc<KeyStore>,
    /// Keyed hash of the data.
    pub hasher: Arc<DataHasher>,
    /// Vault items.
    pub vault: Arc<dyn VaultResolver>,
    /// Who publishes Events. A fresh [`Recorder`] is made per Event: a
    /// shared one caches every Event it sent for six minutes (for series
    /// counting we never need, since each change is reported once), which
    /// is megabytes when thousands of objects sync at start.
    pub reporter: Reporter,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Retry timing.
    pub timing: Timing,
    /// Restart opted-in workloads when the Secret's data changes
    /// ([`crate::rollout`]); on by default.
    pub rollout: bool,
    /// The controller's own namespace, where SealedSecrets are refused
    /// (`NamespaceNotAllowed`); `None` when they are allowed.
    pub refused_namespace: Option<String>,
    /// Write Secrets of type `kubernetes.io/service-account-token` (refused
    /// by default: Kubernetes puts a token of the service account the
    /// Secret names into it).
    pub allow_service_account_tokens: bool,
    /// Whole objects from the watch, waiting for their reconcile.
    pub fresh: Arc<Fresh>,
    /// The managed Secrets as last seen (fingerprints, no data).
    pub secrets: Arc<SecretIndex>,
    /// The workloads that opt in to rollout on change (watched while
    /// rollout is on).
    pub workloads: Arc<crate::rollout::WorkloadIndex>,
    /// Object id → when its current run of failures started.
    failures: Mutex<HashMap<String, Instant>>,
    /// uid → fingerprint of the last Event emitted for the object.
    emitted: Mutex<HashMap<String, u64>>,
    /// The SealedSecret cache of the current leadership term: lets a
    /// reconcile that finishes after its object was deleted drop the
    /// per-object state it just wrote (see [`Context::forget_if_gone`]).
    /// Replaced at the start of every term.
    live: RwLock<Option<Store<SealedSecret>>>,
    large: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Context")
    }
}

/// What an Event is about: a new one is emitted only when this changes.
/// Only its fingerprint is remembered per object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EventKey {
    reason: String,
    message: String,
    data_hash: Option<String>,
}

impl EventKey {
    fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

impl Context {
    /// A context.
    pub fn new(
        client: Client,
        keys: Arc<KeyStore>,
        hasher: Arc<DataHasher>,
        vault: Arc<dyn VaultResolver>,
        reporter: Reporter,
        metrics: Arc<Metrics>,
        timing: Timing,
    ) -> Self {
        Context {
            client,
            keys,
            hasher,
            vault,
            reporter,
            metrics,
            timing,
            rollout: true,
            refused_namespace: None,
            allow_service_account_tokens: false,
            secrets: Arc::new(SecretIndex::new()),
            workloads: Arc::new(crate::rollout::WorkloadIndex::new()),
            fresh: Arc::new(Fresh::new(FRESH_OBJECTS)),
            failures: Mutex::new(HashMap::new()),
            emitted: Mutex::new(HashMap::new()),
            live: RwLock::new(None),
            large: tokio::sync::Semaphore::new(LARGE_AT_ONCE),
        }
    }

    /// Tells the context which cache holds the live SealedSecrets of this
    /// leadership term (replacing the previous term's).
    pub fn watch_live(&self, store: Store<SealedSecret>) {
        match self.live.write() {
            Ok(mut g) => *g = Some(store),
            Err(p) => *p.into_inner() = Some(store),
        }
    }

    /// Forgets the cache of the term that ended.
    pub fn stop_watching_live(&self) {
        match self.live.write() {
            Ok(mut g) => *g = None,
            Err(p) => *p.into_inner() = None,
        }
    }

    /// Forgets `obj`'s per-object state if the cache no longer holds it,
    /// and says so. A reconcile or retry that was in flight when the object
    /// was deleted would otherwise put back its retired-key count, retry
    /// count or Event fingerprint after the deletion cleared them: the
    /// deletion is applied to the cache before it is announced, so either
    /// this check sees it or the announcement comes after these writes.
    pub fn forget_if_gone(&self, obj: &SealedSecret) -> bool {
        let gone = {
            let live = match self.live.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let Some(live) = live.as_ref() else {
                return false;
            };
            match live.get(&ObjectRef::from_obj(obj)) {
                Some(current) => current.metadata.uid != obj.metadata.uid,
                None => true,
            }
        };
        if gone {
            self.forget(obj);
        }
        gone
    }

    /// Turns rollout on change on or off.
    pub fn with_rollout(mut self, on: bool) -> Self {
        self.rollout = on;
        self
    }

    /// Allows (or refuses) templates of type
    /// `kubernetes.io/service-account-token`.
    pub fn allowing_service_account_tokens(mut self, allow: bool) -> Self {
        self.allow_service_account_tokens = allow;
        self
    }

    /// Refuses SealedSecrets in `namespace` (the controller's own), or
    /// allows every namespace with `None`.
    pub fn refusing_namespace(mut self, namespace: Option<String>) -> Self {
        self.refused_namespace = namespace;
        self
    }

    /// How long `id` has been failing (zero at its first failure).
    fn failing_for(&self, id: &str) -> Duration {
        lock(&self.failures)
            .entry(id.to_string())
            .or_insert_with(Instant::now)
            .elapsed()
    }

    fn reset_failures(&self, id: &str) {
        lock(&self.failures).remove(id);
    }

    /// Forgets a deleted SealedSecret: its retry count, its last Event and
    /// its share of the retired-key gauge.
    pub fn forget(&self, obj: &SealedSecret) {
        let id = object_id(obj);
        lock(&self.failures).remove(&id);
        if let Some(uid) = obj.metadata.uid.as_deref() {
            lock(&self.emitted).remove(uid);
        }
        self.secrets.forget(
            obj.metadata.namespace.as_deref().unwrap_or_default(),
            obj.metadata.name.as_deref().unwrap_or_default(),
        );
        self.metrics.forget(&id);
    }

    /// Forgets every object's state (leadership lost: another replica
    /// reports them now, and may change them before this one leads again).
    pub fn forget_all(&self) {
        self.retain_live(&[]);
        self.stop_watching_live();
        self.fresh.clear();
    }

    /// Forgets every object not in `live` (after a relist, deletions that
    /// happened while the watch was down are never seen as such).
    pub fn retain_live(&self, live: &[Arc<SealedSecret>]) {
        let ids: std::collections::HashSet<String> = live.iter().map(|o| object_id(o)).collect();
        let uids: std::collections::HashSet<&str> = live
            .iter()
            .filter_map(|o| o.metadata.uid.as_deref())
            .collect();
        lock(&self.failures).retain(|id, _| ids.contains(id));
        lock(&self.emitted).retain(|uid, _| uids.contains(uid.as_str()));
        self.secrets
            .retain_wanted(|ns, name| ids.contains(&format!("{ns}/{name}")));
        self.metrics.retain_retired(|id| ids.contains(id));
    }
}

/// The kubectl client-side-apply annotation: a second copy of the whole
/// object as last applied.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what reconcile never reads before a SealedSecret enters the
/// controller's cache: `managedFields` and kubectl's last-applied copy of
/// the object (together often larger than the object itself); see
/// [`strip_for_cache`] for the sealed values.
pub fn strip_unread(obj: &mut SealedSecret) {
    obj.metadata.managed_fields = None;
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        // Only [`strip_for_cache`] sets the marker.
        annotations.remove(SPEC_NOT_CACHED);
    }
    if obj
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.is_empty())
    {
        obj.metadata.annotations = None;
    }
}

/// [`strip_unread`], and the sealed values are left out of the cache (the
/// copy is marked [`SPEC_NOT_CACHED`] with the size of the spec): they are
/// most of an object's memory, and reconcile gets them with the watch event
/// that triggers it ([`Fresh`]) or reads the object again. A spec larger
/// than [`CACHE_SPEC_LIMIT`] loses its template and Vault items too.
pub fn strip_for_cache(obj: &mut SealedSecret) {
    strip_unread(obj);
    let size = spec_size(obj);
    if size > CACHE_SPEC_LIMIT {
        obj.spec.vault_data = BTreeMap::new();
        obj.spec.template = None;
    }
    if size > CACHE_SPEC_LIMIT || !obj.spec.encrypted_data.is_empty() {
        obj.spec.encrypted_data = BTreeMap::new();
        obj.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(SPEC_NOT_CACHED.to_string(), size.to_string());
    }
}

/// Whether a cached copy lacks a spec larger than [`CACHE_SPEC_LIMIT`].
pub fn is_large(obj: &SealedSecret) -> bool {
    obj.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SPEC_NOT_CACHED))
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|size| size > CACHE_SPEC_LIMIT)
}

/// Objects just seen by the watch, whole (sealed values included), until
/// their reconcile takes them: the cache keeps objects without their sealed
/// values ([`strip_for_cache`]), so a reconcile triggered by a change of
/// the object finds the values here instead of reading the object again.
/// Holds at most a fixed number of objects: the watch waits for a place
/// before it takes the next object (so a list of 10,000 new objects is
/// read as fast as they are reconciled, not all at once).
pub struct Fresh {
    objects: Mutex<HashMap<(String, String), FreshObject>>,
    places: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fresh")
    }
}

/// A whole object and the place it holds in [`Fresh`].
type FreshObject = (Arc<SealedSecret>, tokio::sync::OwnedSemaphorePermit);

/// Objects [`Fresh`] holds at most.
pub const FRESH_OBJECTS: usize = 256;

fn place_key(obj: &SealedSecret) -> (String, String) {
    (
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

impl Fresh {
    /// Room for `capacity` objects.
    pub fn new(capacity: usize) -> Self {
        Fresh {
            objects: Mutex::new(HashMap::new()),
            places: Arc::new(tokio::sync::Semaphore::new(capacity.max(1))),
        }
    }

    /// Waits for a place.
    pub async fn reserve(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.places.clone().acquire_owned().await.ok()
    }

    /// Keeps `obj` (whole) in the place `permit` holds, replacing an older
    /// version of it.
    pub fn put(&self, obj: SealedSecret, permit: tokio::sync::OwnedSemaphorePermit) {
        lock(&self.objects).insert(place_key(&obj), (Arc::new(obj), permit));
    }

    /// Takes the whole object for the cached copy `cached` (same uid).
    pub fn take(&self, cached: &SealedSecret) -> Option<Arc<SealedSecret>> {
        let key = place_key(cached);
        let mut objects = lock(&self.objects);
        match objects.get(&key) {
            Some((obj, _)) if obj.metadata.uid == cached.metadata.uid => {
                objects.remove(&key).map(|(obj, _)| obj)
            }
            _ => None,
        }
    }

    /// Drops the object of `obj`'s place (deleted, or no longer this
    /// shard's).
    pub fn remove(&self, obj: &SealedSecret) {
        lock(&self.objects).remove(&place_key(obj));
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        lock(&self.objects).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops everything (the end of a leadership term).
    pub fn clear(&self) {
        lock(&self.objects).clear();
    }
}

/// Bytes of the spec's sealed values, item keys and template metadata.
fn spec_size(obj: &SealedSecret) -> usize {
    let sealed: usize = obj
        .spec
        .encrypted_data
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let template: usize = obj
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .map(|m| {
            m.labels
                .iter()
                .chain(m.annotations.iter())
                .map(|(k, v)| k.len() + v.len())
                .sum()
        })
        .unwrap_or(0);
    let templated: usize = obj
        .spec
        .template
        .as_ref()
        .map(|t| t.data.iter().map(|(k, v)| k.len() + v.len()).sum())
        .unwrap_or(0);
    sealed + template + templated + obj.spec.vault_data.len() * 128
}

fn spec_not_cached(obj: &SealedSecret) -> bool {
    obj.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(SPEC_NOT_CACHED))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn object_id(obj: &SealedSecret) -> String {
    format!(
        "{}/{}",
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The reconcile function given to the kube-runtime `Controller`.
pub async fn reconcile(obj: Arc<SealedSecret>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let id = object_id(&obj);
    let result = reconcile_inner(&obj, &ctx).await;
    let took = start.elapsed();
    if ctx.forget_if_gone(&obj) {
        ctx.metrics.reconciled(took, None);
        return Ok(Action::await_change());
    }
    match &result {
        Ok(_) => {
            ctx.reset_failures(&id);
            ctx.metrics.reconciled(took, None);
            tracing::debug!(object = %id, took_ms = took.as_millis() as u64, "reconciled");
        }
        Err(e) => {
            ctx.metrics.reconciled(took, Some(e.metric_reason()));
            tracing::warn!(object = %id, reason = e.metric_reason(), error = %e, "reconcile failed");
        }
    }
    result
}

/// The retry policy: exponential backoff per object, reset by a success.
pub fn error_policy(obj: Arc<SealedSecret>, err: &Error, ctx: Arc<Context>) -> Action {
    if ctx.forget_if_gone(&obj) {
        return Action::await_change();
    }
    let failing_for = ctx.failing_for(&object_id(&obj));
    let delay = match err {
        Error::NoKeys => Duration::from_secs(2).min(ctx.timing.backoff_max),
        _ => backoff(ctx.timing, failing_for),
    };
    Action::requeue(delay)
}

/// The delay before the next retry of an object that has been failing for
/// `failing_for`: as long again, at least `backoff_base`, at most
/// `backoff_max`. Retries come at base, 2·base, 4·base, ... after the first
/// failure (5 s, 10 s, 20 s, ... with the defaults), then every
/// `backoff_max`. Measured in time rather than counted in failures, so a
/// reconcile that fails for another trigger (its own status update, a
/// change of the object, Vault coming back) does not double the wait.
pub fn backoff(timing: Timing, failing_for: Duration) -> Duration {
    failing_for.max(timing.backoff_base).min(timing.backoff_max)
}

/// Where an object is: what every step needs.
struct Place<'a> {
    ns: &'a str,
    name: &'a str,
    uid: &'a str,
}

impl<'a> Place<'a> {
    fn of(obj: &'a SealedSecret) -> Result<Self, Error> {
        Ok(Place {
            ns: obj
                .metadata
                .namespace
                .as_deref()
                .ok_or(Error::MissingField("metadata.namespace"))?,
            name: obj
                .metadata
                .name
                .as_deref()
                .ok_or(Error::MissingField("metadata.name"))?,
            uid: obj
                .metadata
                .uid
                .as_deref()
                .ok_or(Error::MissingField("metadata.uid"))?,
        })
    }
}

/// A failure reported on the object (condition and Event), then returned
/// to the retry policy as `error`.
struct Failed {
    reason: Reason,
    message: String,
    error: Error,
}

impl Failed {
    fn refused(reason: Reason, message: String) -> Self {
        Failed {
            error: Error::Refused {
                reason,
                message: message.clone(),
            },
            reason,
            message,
        }
    }

    fn items(reason: Reason, message: String) -> Self {
        Failed {
            error: Error::Items {
                reason,
                message: message.clone(),
            },
            reason,
            message,
        }
    }

    fn write(e: kube::Error, what: &str, then: &str) -> Self {
        let message = format!("{what}: {}; {then}", api_detail(&e));
        Failed {
            reason: Reason::ApplyFailed,
            message,
            error: Error::Kube(e),
        }
    }
}

fn api_detail(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

/// What a successful sync tells the status.
struct Synced {
    key_ids: Vec<String>,
    data_hash: String,
    written: bool,
    items: usize,
}

enum Step {
    Synced(Synced),
    Failed(Failed),
    /// The object was deleted meanwhile: nothing to write, nothing to report.
    Gone,
}

/// What a reconcile came to; [`next_status`] turns it into the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The Secret holds exactly the object's data.
    Synced {
        /// Key ids the sealed values were opened with.
        key_ids: Vec<String>,
        /// The keyed data hash for `status.dataHash`.
        data_hash: String,
        /// Whether the Secret was written in this pass.
        written: bool,
        /// `Ready` message.
        message: String,
    },
    /// Nothing was written; the existing Secret (if any) is unchanged.
    Failed {
        /// Why.
        reason: Reason,
        /// What failed and what to do.
        message: String,
    },
}

async fn reconcile_inner(obj: &SealedSecret, ctx: &Context) -> Result<Action, Error> {
    Place::of(obj)?;
    if !ctx.keys.is_ready() {
        return Err(Error::NoKeys);
    }
    if !spec_not_cached(obj) {
        return reconcile_object(obj, ctx).await;
    }
    if let Some(full) = ctx.fresh.take(obj) {
        return reconcile_object(&full, ctx).await;
    }
    // Not triggered by a change of the object (its Secret changed, the
    // keys changed, a retry): read it. Large objects a few at a time.
    let _permit = if is_large(obj) {
        Some(ctx.large.acquire().await)
    } else {
        None
    };
    let api: Api<SealedSecret> = Api::namespaced(
        ctx.client.clone(),
        obj.metadata.namespace.as_deref().unwrap_or_default(),
    );
    match api.get_opt(&obj.name_any()).await? {
        Some(full) if full.metadata.uid == obj.metadata.uid => reconcile_object(&full, ctx).await,
        // Deleted (or replaced by a new object, reconciled on its own).
        _ => Ok(Action::await_change()),
    }
}

async fn reconcile_object(obj: &SealedSecret, ctx: &Context) -> Result<Action, Error> {
    let requeue = match crate::vault::requeue_after(&obj.spec, ctx.timing.resync) {
        Ok(d) => d,
        Err(Error::Items { reason, message }) => {
            let failed = Failed::items(reason, message);
            return report_failure(ctx, obj, failed).await;
        }
        Err(e) => return Err(e),
    };
    match sync(obj, ctx, requeue).await? {
        Step::Gone => Ok(Action::await_change()),
        Step::Failed(failed) => report_failure(ctx, obj, failed).await,
        Step::Synced(synced) => {
            let Place { ns, name, .. } = Place::of(obj)?;
            let outcome = Outcome::Synced {
                key_ids: synced.key_ids,
                data_hash: synced.data_hash,
                written: synced.written,
                message: format!("Secret {ns}/{name} holds {} item(s)", synced.items),
            };
            report(ctx, obj, &outcome).await?;
            if obj.spec.vault_data.is_empty() {
                // Every input of a sealed-only Secret is watched (the
                // SealedSecret, the Secret itself, the keys), so no timer is
                // needed; a timer per object is a scheduler entry per object,
                // i.e. memory.
                return Ok(Action::await_change());
            }
            Ok(Action::requeue(requeue))
        }
    }
}

async fn report_failure(
    ctx: &Context,
    obj: &SealedSecret,
    failed: Failed,
) -> Result<Action, Error> {
    let outcome = Outcome::Failed {
        reason: failed.reason,
        message: failed.message,
    };
    report(ctx, obj, &outcome).await?;
    Err(failed.error)
}

/// Steps 1 to 6 of the module docs.
async fn sync(obj: &SealedSecret, ctx: &Context, requeue: Duration) -> Result<Step, Error> {
    let place = Place::of(obj)?;
    if let Some(refused) = admit(obj, ctx, &place) {
        return Ok(Step::Failed(refused));
    }
    let mut resolved = match resolve(obj, ctx, &place, requeue).await {
        Ok(r) => r,
        Err(failed) => return Ok(Step::Failed(failed)),
    };
    if let Err(message) =
        crate::templates::render_into(obj, place.ns, place.name, &ctx.hasher, &mut resolved)
    {
        return Ok(Step::Failed(Failed::refused(
            Reason::TemplateError,
            message,
        )));
    }
    let desired = match desired_secret(obj, &resolved) {
        Ok(d) => d,
        Err(Error::Refused { reason, message }) => {
            return Ok(Step::Failed(Failed::refused(reason, message)))
        }
        Err(e) => return Err(e),
    };

    let Place { ns, name, .. } = place;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    // What the Secret index saw: in sync (nothing to do), no managed
    // Secret (create one), or else read it and compare.
    let wanted = ctx.secrets.fingerprint(&desired);
    ctx.secrets.want(ns, name, wanted);
    let seen = ctx.secrets.seen(ns, name).await;
    let (existing, after) = match seen {
        Seen::Present(fp) if fp == wanted => (None, None),
        // A Secret not managed by the controller was there at the last
        // pass: read it rather than try a create that would be refused.
        Seen::Absent if !last_reason_is(obj, Reason::SecretNotOwned) => {
            if was_written(obj) && !owner_exists(ctx, obj, &place).await? {
                ctx.forget(obj);
                return Ok(Step::Gone);
            }
            match create(&secrets, &desired).await {
                Ok(Some(created)) => {
                    if let Some(gone) = recheck_owner(ctx, obj, &place, &secrets, &created).await? {
                        return Ok(gone);
                    }
                    (None, Some(created))
                }
                // A Secret the index does not see (not managed, or too new).
                Ok(None) => match write_existing(ctx, obj, &place, &secrets, &desired).await? {
                    Ok(written) => written,
                    Err(step) => return Ok(step),
                },
                Err(failed) => return Ok(Step::Failed(failed)),
            }
        }
        Seen::Absent | Seen::Present(_) | Seen::Unknown => {
            match write_existing(ctx, obj, &place, &secrets, &desired).await? {
                Ok(written) => written,
                Err(step) => return Ok(step),
            }
        }
    };
    let written = after.is_some();
    let id = object_id(obj);
    let data_hash = status_hash(ctx, obj, &place, &resolved);
    if written {
        tracing::info!(object = %id, items = resolved.data.len(), data_hash = crate::hash::short(&data_hash), "Secret written");
    }
    rollout(
        ctx,
        obj,
        &place,
        &data_hash,
        written,
        existing.as_ref(),
        &desired,
    )
    .await;
    Ok(Step::Synced(Synced {
        key_ids: resolved.key_ids.iter().cloned().collect(),
        data_hash,
        written,
        items: resolved.data.len(),
    }))
}

/// The Secret as read now, and the Secret after writing it when a write
/// was needed.
type Written = (Option<Secret>, Option<Secret>);

/// Step 5 when the Secret may exist: reads it (one GET), refuses a Secret
/// the object does not own, puts a deleted one back unless the object is
/// gone too, and writes what differs.
async fn write_existing(
    ctx: &Context,
    obj: &SealedSecret,
    place: &Place<'_>,
    secrets: &Api<Secret>,
    desired: &Secret,
) -> Result<Result<Written, Step>, Error> {
    let Place { ns, name, uid } = *place;
    let existing = secrets.get_opt(name).await?;
    match &existing {
        Some(e) if !owned_by(e, uid) && !adoptable(e) => {
            let message = format!(
                "Secret {ns}/{name} exists and is not managed by this SealedSecret; it was left untouched. Delete it, or annotate it with {ADOPT_ANNOTATION}: \"true\" to let gitseal take it over"
            );
            return Ok(Err(Step::Failed(Failed {
                reason: Reason::SecretNotOwned,
                message,
                error: Error::NotOwned(format!("{ns}/{name}")),
            })));
        }
        // The Secret was written before and is gone: put it back, unless
        // the SealedSecret is gone too (garbage collection deleted the
        // Secret after its owner, while this cache still held the owner).
        None if was_written(obj) && !owner_exists(ctx, obj, place).await? => {
            ctx.forget(obj);
            return Ok(Err(Step::Gone));
        }
        _ => {}
    }
    match write_secret(secrets, existing.as_ref(), desired, uid).await {
        Ok(Some(after)) if existing.is_none() => {
            match recheck_owner(ctx, obj, place, secrets, &after).await? {
                Some(gone) => Ok(Err(gone)),
                None => Ok(Ok((existing, Some(after)))),
            }
        }
        Ok(after) => Ok(Ok((existing, after))),
        Err(failed) => Ok(Err(Step::Failed(failed))),
    }
}

/// After putting back a Secret that was written before: the SealedSecret
/// may have been deleted between the check that it exists and the create
/// (garbage collection had nothing left to delete then). Checks again, and
/// deletes the Secret just created (that one, by uid) when the owner is gone.
async fn recheck_owner(
    ctx: &Context,
    obj: &SealedSecret,
    place: &Place<'_>,
    secrets: &Api<Secret>,
    created: &Secret,
) -> Result<Option<Step>, Error> {
    if !was_written(obj) || owner_exists(ctx, obj, place).await? {
        return Ok(None);
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if let Err(e) = secrets.delete(place.name, &dp).await {
        tracing::warn!(object = %object_id(obj), error = %e, "deleting a Secret created for a SealedSecret deleted meanwhile failed; garbage collection removes it");
    }
    ctx.forget(obj);
    Ok(Some(Step::Gone))
}

/// Creates the Secret; `Ok(None)` when one of that name already exists. A
/// create (not an apply) so that a Secret nobody told the controller about
/// is never taken over.
async fn create(secrets: &Api<Secret>, desired: &Secret) -> Result<Option<Secret>, Failed> {
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    match secrets.create(&params, desired).await {
        Ok(s) => Ok(Some(s)),
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => Ok(None),
        Err(e) => Err(Failed::write(
            e,
            "creating the Secret failed",
            "nothing was written",
        )),
    }
}

/// Step 1: what this object may ask for at all.
fn admit(obj: &SealedSecret, ctx: &Context, place: &Place<'_>) -> Option<Failed> {
    if ctx.refused_namespace.as_deref() == Some(place.ns) {
        return Some(Failed::refused(
            Reason::NamespaceNotAllowed,
            format!(
                "SealedSecrets in {}, the controller's own namespace where its sealing keys live, are refused; put it in an application namespace, or start the controller with --allow-controller-namespace",
                place.ns
            ),
        ));
    }
    if let Some(refused) = reserved_metadata(obj) {
        return Some(refused);
    }
    let type_ = obj.spec.template.as_ref().and_then(|t| t.type_.as_deref());
    if type_ == Some(SERVICE_ACCOUNT_TOKEN_TYPE) && !ctx.allow_service_account_tokens {
        return Some(Failed::refused(
            Reason::SecretTypeNotAllowed,
            format!(
                "the template asks for a Secret of type {SERVICE_ACCOUNT_TOKEN_TYPE}, which Kubernetes fills with a token of the service account it names; the controller does not write them unless started with --allow-service-account-token-secrets. Nothing was written"
            ),
        ));
    }
    // Refused before anything is opened: sealed values whose plaintext is
    // already too large (text length bounds it from above, so most objects
    // are not parsed here).
    let text: usize = obj.spec.encrypted_data.values().map(String::len).sum();
    if text > MAX_SECRET_DATA_BYTES {
        let total: usize = obj
            .spec
            .encrypted_data
            .values()
            .filter_map(|v| gitseal_crypto::Envelope::parse(v).ok())
            .map(|e| e.plaintext_len())
            .sum();
        if total > MAX_SECRET_DATA_BYTES {
            return Some(too_large(total));
        }
    }
    None
}

fn too_large(total: usize) -> Failed {
    Failed::refused(
        Reason::TooLarge,
        format!(
            "the data would be {total} bytes, more than the {MAX_SECRET_DATA_BYTES} bytes a Secret can hold; split it into several SealedSecrets"
        ),
    )
}

fn is_reserved(key: &str) -> bool {
    let prefix = key.split_once('/').map(|(p, _)| p);
    let domain = RESERVED_PREFIX.trim_end_matches('/');
    prefix.is_some_and(|p| p == domain || p.ends_with(&format!(".{domain}")))
}

/// Template labels and annotations under `gitseal.dev/` are the
/// controller's: a Secret carrying them could pose as a sealing key.
fn reserved_metadata(obj: &SealedSecret) -> Option<Failed> {
    let meta = obj.spec.template.as_ref()?.metadata.as_ref()?;
    let mut found: Vec<String> = meta
        .labels
        .keys()
        .map(|k| format!("label {k}"))
        .chain(meta.annotations.keys().map(|k| format!("annotation {k}")))
        .filter(|k| is_reserved(k.split_once(' ').map(|(_, k)| k).unwrap_or(k)))
        .collect();
    if found.is_empty() {
        return None;
    }
    let more = found.len().saturating_sub(5);
    found.truncate(5);
    let mut list = found.join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    Some(Failed::refused(
        Reason::ReservedMetadata,
        format!(
            "the template sets {list}: labels and annotations under {RESERVED_PREFIX} are reserved for the controller; remove them from spec.template.metadata. Nothing was written"
        ),
    ))
}

/// Step 2: every item, or the first failure.
async fn resolve(
    obj: &SealedSecret,
    ctx: &Context,
    place: &Place<'_>,
    requeue: Duration,
) -> Result<Resolved, Failed> {
    let keys = ctx.keys.current();
    let mut resolved = Resolved::default();
    sources::open_sealed(
        &keys,
        obj.spec.scope,
        place.ns,
        place.name,
        &obj.spec.encrypted_data,
        &mut resolved,
    );
    if !obj.spec.vault_data.is_empty() {
        let results = ctx
            .vault
            .resolve(place.ns, &obj.spec.vault_data, requeue)
            .await;
        sources::merge_vault(results, &mut resolved);
    }
    ctx.metrics
        .set_retired(&object_id(obj), resolved.sealed_to_retired);
    if let Some(first) = resolved.failures.first() {
        return Err(Failed::items(
            first.reason,
            failure_message(&resolved.failures),
        ));
    }
    let total: usize = resolved
        .data
        .values()
        .map(|v| v.expose_secret().len())
        .sum();
    if total > MAX_SECRET_DATA_BYTES {
        return Err(too_large(total));
    }
    Ok(resolved)
}

fn last_reason_is(obj: &SealedSecret, reason: Reason) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.reason == reason.as_str())
    })
}

fn was_written(obj: &SealedSecret) -> bool {
    obj.status.as_ref().is_some_and(|s| s.data_hash.is_some())
}

/// Whether the SealedSecret still exists, asked of the API server (the
/// cache may be behind): only when its Secret vanished, so rarely.
async fn owner_exists(ctx: &Context, obj: &SealedSecret, place: &Place<'_>) -> Result<bool, Error> {
    if ctx.forget_if_gone(obj) {
        return Ok(false);
    }
    let api: Api<SealedSecret> = Api::namespaced(ctx.client.clone(), place.ns);
    Ok(api
        .get_metadata_opt(place.name)
        .await?
        .is_some_and(|m| m.metadata.uid.as_deref() == Some(place.uid)))
}

/// The hash for `status.dataHash` and the rollout annotations: the
/// object-bound hash, or the one the status already holds when that still
/// describes this data (an unbound hash from before the upgrade: kept, so
/// an upgrade rewrites no status and restarts no workload).
fn status_hash(
    ctx: &Context,
    obj: &SealedSecret,
    place: &Place<'_>,
    resolved: &Resolved,
) -> String {
    let old = obj.status.as_ref().and_then(|s| s.data_hash.as_deref());
    match old {
        Some(h)
            if ctx
                .hasher
                .is_current(h, place.ns, place.name, &resolved.data) =>
        {
            h.to_string()
        }
        _ => ctx.hasher.hash(place.ns, place.name, &resolved.data),
    }
}

/// Step 6: restart opted-in workloads when the data changed.
async fn rollout(
    ctx: &Context,
    obj: &SealedSecret,
    place: &Place<'_>,
    data_hash: &str,
    written: bool,
    existing: Option<&Secret>,
    desired: &Secret,
) {
    let old_hash = obj.status.as_ref().and_then(|s| s.data_hash.as_deref());
    let hash_changed = old_hash.is_some_and(|h| h != data_hash);
    if !ctx.rollout || !(written || old_hash != Some(data_hash)) {
        return;
    }
    let existing_data_changed = written && existing.is_some_and(|e| e.data != desired.data);
    let change = crate::rollout::Change {
        namespace: place.ns,
        secret: place.name,
        data_hash,
        data_changed: existing_data_changed || hash_changed,
    };
    let outcome = crate::rollout::restart_on_change(&ctx.client, &ctx.workloads, &change).await;
    let id = object_id(obj);
    if !outcome.restarted.is_empty() {
        tracing::info!(object = %id, restarted = ?outcome.restarted, "rolled out workloads using the Secret");
    }
    for e in &outcome.errors {
        tracing::warn!(object = %id, error = %e, "rollout on change failed");
    }
}

/// Step 5: makes the Secret exactly `desired`; returns the Secret as
/// written, or `None` when it already was.
async fn write_secret(
    secrets: &Api<Secret>,
    existing: Option<&Secret>,
    desired: &Secret,
    uid: &str,
) -> Result<Option<Secret>, Failed> {
    let after = match existing {
        Some(e) if matches_desired(e, desired, uid, Extra::Refused) => return Ok(None),
        Some(e) if needs_replacement(e, desired) => replace(secrets, e, desired).await?,
        // Only items someone else added differ: removing them is enough.
        Some(e) if matches_desired(e, desired, uid, Extra::Allowed) => e.clone(),
        // Over the Secret just read, conditional on its resourceVersion: an
        // apply creates a missing object, and this one may have been
        // deleted since (by garbage collection after its SealedSecret).
        Some(e) => apply(secrets, desired, e.metadata.resource_version.clone()).await?,
        None => apply(secrets, desired, None).await?,
    };
    let after = remove_foreign_items(secrets, after, desired).await?;
    if !matches_desired(&after, desired, uid, Extra::Refused) {
        return Err(Failed::refused(
            Reason::ApplyFailed,
            format!(
                "the Secret still differs from the SealedSecret after writing it ({}); it is retried",
                differences(&after, desired)
            ),
        ));
    }
    Ok(Some(after))
}

async fn apply(
    secrets: &Api<Secret>,
    desired: &Secret,
    over: Option<String>,
) -> Result<Secret, Failed> {
    let name = desired.metadata.name.as_deref().unwrap_or_default();
    let mut desired = desired.clone();
    desired.metadata.resource_version = over;
    secrets
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(|e| {
            Failed::write(
                e,
                "writing the Secret failed",
                "the existing Secret (if any) was kept",
            )
        })
}

/// Server-side apply keeps fields another field manager owns, such as an
/// item added with `kubectl patch` or present in an adopted Secret: the
/// controller would see a difference after every write and write again,
/// forever. Such items are removed with one merge patch, conditional on
/// the resourceVersion just read.
async fn remove_foreign_items(
    secrets: &Api<Secret>,
    after: Secret,
    desired: &Secret,
) -> Result<Secret, Failed> {
    let ours = desired.data.as_ref();
    let foreign: Vec<String> = after
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .filter(|k| !ours.is_some_and(|d| d.contains_key(k)))
        .collect();
    if foreign.is_empty() {
        return Ok(after);
    }
    let nulls: serde_json::Map<String, serde_json::Value> = foreign
        .iter()
        .map(|k| (k.clone(), serde_json::Value::Null))
        .collect();
    let patch = json!({
        "metadata": {"resourceVersion": after.metadata.resource_version},
        "data": nulls,
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let name = desired.metadata.name.as_deref().unwrap_or_default();
    let removed = secrets
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            Failed::write(
                e,
                &format!(
                    "removing the item(s) {} that the SealedSecret does not have failed",
                    foreign.join(", ")
                ),
                "add them to the SealedSecret to keep them, or let the next retry remove them",
            )
        })?;
    tracing::info!(
        secret = %format!("{}/{name}", desired.metadata.namespace.as_deref().unwrap_or_default()),
        items = ?foreign,
        "removed Secret items the SealedSecret does not have"
    );
    Ok(removed)
}

/// Whether the existing Secret cannot be changed into `desired` in place:
/// an immutable Secret's data, type and immutability are fixed, and so is
/// every Secret's type.
fn needs_replacement(existing: &Secret, desired: &Secret) -> bool {
    let type_of = |s: &Secret| s.type_.clone().unwrap_or_else(|| "Opaque".into());
    if type_of(existing) != type_of(desired) {
        return true;
    }
    existing.immutable == Some(true)
        && (existing.data.clone().unwrap_or_default() != desired.data.clone().unwrap_or_default()
            || desired.immutable != Some(true))
}

/// Replaces a Secret that cannot be changed in place, losing nothing: the
/// new Secret is validated by a server-side dry run (admission webhooks,
/// quotas, validation) before the old one is deleted, and if writing the
/// new one still fails, the old one is created again.
async fn replace(
    secrets: &Api<Secret>,
    existing: &Secret,
    desired: &Secret,
) -> Result<Secret, Failed> {
    let dry_run = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    match secrets.create(&dry_run, desired).await {
        // Validation and admission run before the name is checked, so
        // "already exists" (the old Secret) means the new one passed them.
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {}
        Err(e) => {
            return Err(Failed::write(
                e,
                "the API refused the new Secret (server-side dry run)",
                "the old Secret was kept",
            ))
        }
    }
    let name = desired.metadata.name.as_deref().unwrap_or_default();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: existing.metadata.uid.clone(),
            resource_version: existing.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    if let Err(e) = secrets.delete(name, &dp).await {
        return Err(Failed::write(
            e,
            "deleting the old Secret to replace it failed",
            "the old Secret was kept",
        ));
    }
    match apply(secrets, desired, None).await {
        Ok(s) => Ok(s),
        Err(failed) => {
            let detail = failed.message.clone();
            let Failed { error, .. } = failed;
            let error = match error {
                Error::Kube(e) => e,
                other => return Err(Failed::refused(Reason::ApplyFailed, other.to_string())),
            };
            match secrets
                .create(&PostParams::default(), &restorable(existing))
                .await
            {
                Ok(_) => Err(Failed::write(
                    error,
                    "writing the new Secret failed after the old one was deleted",
                    "the old Secret was put back",
                )),
                Err(again) => {
                    tracing::error!(
                        secret = %format!("{}/{name}", desired.metadata.namespace.as_deref().unwrap_or_default()),
                        first = %detail,
                        error = %api_detail(&again),
                        "the old Secret could not be put back after a failed replacement; it is retried"
                    );
                    Err(Failed::write(
                        again,
                        "writing the new Secret failed after the old one was deleted, and putting the old one back failed too",
                        "it is retried",
                    ))
                }
            }
        }
    }
}

/// `secret` as a new object (what the server set is left out).
fn restorable(secret: &Secret) -> Secret {
    let m = &secret.metadata;
    Secret {
        metadata: ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            labels: m.labels.clone(),
            annotations: m.annotations.clone(),
            owner_references: m.owner_references.clone(),
            ..ObjectMeta::default()
        },
        data: secret.data.clone(),
        type_: secret.type_.clone(),
        immutable: secret.immutable,
        ..Secret::default()
    }
}

fn failure_message(failures: &[ItemFailure]) -> String {
    let mut parts: Vec<String> = failures
        .iter()
        .take(5)
        .map(|f| format!("item {:?}: {}: {}", f.item, f.reason, f.message))
        .collect();
    if failures.len() > 5 {
        parts.push(format!("and {} more item(s)", failures.len() - 5));
    }
    format!(
        "{}; the existing Secret was left unchanged",
        parts.join("; ")
    )
}

fn owned_by(secret: &Secret, uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

fn adoptable(secret: &Secret) -> bool {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ADOPT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// The Secret that `obj` should produce (the server-side apply body).
/// Refuses template metadata under `gitseal.dev/`, so the controller can
/// never write a Secret its key loader would take for a sealing key.
pub fn desired_secret(obj: &SealedSecret, resolved: &Resolved) -> Result<Secret, Error> {
    if let Some(refused) = reserved_metadata(obj) {
        return Err(refused.error);
    }
    let owner = obj
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))?;
    let template = obj.spec.template.clone().unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels;
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string());
    let annotations = meta.annotations;
    let data: BTreeMap<String, ByteString> = resolved
        .data
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().to_vec())))
        .collect();
    Ok(Secret {
        metadata: ObjectMeta {
            name: obj.metadata.name.clone(),
            namespace: obj.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        type_: Some(template.type_.unwrap_or_else(|| "Opaque".to_string())),
        immutable: template.immutable,
        ..Secret::default()
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// Data items beyond the desired ones are a difference.
    Refused,
    /// They are ignored (everything else must match).
    Allowed,
}

/// Whether `existing` already is what server-side apply of `desired` would
/// make it (so no write is needed). Extra labels, annotations or owner
/// references added by others are fine; extra data items are not, unless
/// `extra` allows them.
fn matches_desired(existing: &Secret, desired: &Secret, uid: &str, extra: Extra) -> bool {
    let sub = |mine: &Option<BTreeMap<String, String>>,
               theirs: &Option<BTreeMap<String, String>>| {
        mine.iter()
            .flatten()
            .all(|(k, v)| theirs.as_ref().and_then(|t| t.get(k)) == Some(v))
    };
    let theirs = existing.data.clone().unwrap_or_default();
    let mine = desired.data.clone().unwrap_or_default();
    let data_ok = match extra {
        Extra::Refused => theirs == mine,
        Extra::Allowed => mine.iter().all(|(k, v)| theirs.get(k) == Some(v)),
    };
    owned_by(existing, uid)
        && data_ok
        && existing.string_data.is_none()
        && existing.type_.as_deref().unwrap_or("Opaque")
            == desired.type_.as_deref().unwrap_or("Opaque")
        && (desired.immutable.is_none() || existing.immutable == desired.immutable)
        && sub(&desired.metadata.labels, &existing.metadata.labels)
        && sub(
            &desired.metadata.annotations,
            &existing.metadata.annotations,
        )
}

/// What differs, for a condition message: names of items and fields,
/// never values.
fn differences(existing: &Secret, desired: &Secret) -> String {
    let theirs = existing.data.clone().unwrap_or_default();
    let mine = desired.data.clone().unwrap_or_default();
    let mut parts = Vec::new();
    let extra: Vec<&str> = theirs
        .keys()
        .filter(|k| !mine.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        parts.push(format!("items it should not have: {}", extra.join(", ")));
    }
    let wrong: Vec<&str> = mine
        .iter()
        .filter(|(k, v)| theirs.get(*k) != Some(v))
        .map(|(k, _)| k.as_str())
        .collect();
    if !wrong.is_empty() {
        parts.push(format!("items missing or different: {}", wrong.join(", ")));
    }
    if parts.is_empty() {
        parts.push("metadata, type or owner".to_string());
    }
    parts.join("; ")
}

/// Condition types this controller sets (others are kept as they are).
const READY: &str = "Ready";
const RECONCILING: &str = "Reconciling";
const STALLED: &str = "Stalled";

/// The status after `outcome`, following the kstatus conventions:
///
/// - `observedGeneration` (top level and on each condition) is the
///   generation the outcome is about;
/// - `Ready` is `True` with reason `Synced` when the Secret holds exactly
///   the object's data, else `False` with the failure's reason;
/// - `Reconciling` is `True` while a failure that may pass on its own
///   (Vault or the API answering again) is being retried, `Stalled` is
///   `True` when a person has to act ([`Reason::is_transient`]); both are
///   absent otherwise (the "abnormal-true" polarity);
/// - on failure the data hash, key ids and last sync time keep describing
///   the Secret as it still is.
///
/// A condition keeps its `lastTransitionTime` while its status does not
/// change, so an unchanged outcome gives an identical status (no write).
pub fn next_status(
    old: &SealedSecretStatus,
    generation: Option<i64>,
    outcome: &Outcome,
    now: &str,
) -> SealedSecretStatus {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        let previous = old.conditions.iter().find(|c| c.type_ == type_);
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: match previous {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => Some(now.to_string()),
            },
            observed_generation: generation,
        }
    };
    let mut conditions: Vec<Condition> = old
        .conditions
        .iter()
        .filter(|c| ![READY, RECONCILING, STALLED].contains(&c.type_.as_str()))
        .cloned()
        .collect();
    match outcome {
        Outcome::Synced {
            key_ids,
            data_hash,
            written,
            message,
        } => {
            conditions.push(condition(READY, "True", Reason::Synced.as_str(), message));
            let changed = *written || old.data_hash.as_deref() != Some(data_hash.as_str());
            SealedSecretStatus {
                conditions,
                observed_generation: generation,
                key_ids: key_ids.clone(),
                last_sync_time: if changed || old.last_sync_time.is_none() {
                    Some(now.to_string())
                } else {
                    old.last_sync_time.clone()
                },
                data_hash: Some(data_hash.clone()),
            }
        }
        Outcome::Failed { reason, message } => {
            conditions.push(condition(READY, "False", reason.as_str(), message));
            let kind = if reason.is_transient() {
                RECONCILING
            } else {
                STALLED
            };
            conditions.push(condition(kind, "True", reason.as_str(), message));
            SealedSecretStatus {
                conditions,
                observed_generation: generation,
                key_ids: old.key_ids.clone(),
                last_sync_time: old.last_sync_time.clone(),
                data_hash: old.data_hash.clone(),
            }
        }
    }
}

/// The one place that writes a SealedSecret's status (only when it
/// changes) and emits its Event (only when the reason, message or data
/// hash changes).
async fn report(ctx: &Context, obj: &SealedSecret, outcome: &Outcome) -> Result<(), Error> {
    let old = obj.status.clone().unwrap_or_default();
    let now = Timestamp::now().to_string();
    let new = next_status(&old, obj.metadata.generation, outcome, &now);
    if new != old {
        let api: Api<SealedSecret> = Api::namespaced(
            ctx.client.clone(),
            obj.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let patch = json!({
            "apiVersion": gitseal_manifest::types::API_VERSION,
            "kind": "SealedSecret",
            "status": new,
        });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }

    // Events: once per change of reason/message/hash, not on every resync.
    let (ok, reason, message) = match outcome {
        Outcome::Synced { message, .. } => (true, Reason::Synced, message.as_str()),
        Outcome::Failed { reason, message } => (false, *reason, message.as_str()),
    };
    let key = EventKey {
        reason: reason.as_str().to_string(),
        message: message.to_string(),
        data_hash: new.data_hash.clone(),
    };
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let from_status = old
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| EventKey {
            reason: c.reason.clone(),
            message: c.message.clone(),
            data_hash: old.data_hash.clone(),
        });
    let fingerprint = key.fingerprint();
    let remembered = lock(&ctx.emitted).get(&uid).copied();
    let already = match remembered {
        Some(f) => f == fingerprint,
        None => from_status.as_ref() == Some(&key),
    };
    if !already {
        let event = Event {
            type_: if ok {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: reason.as_str().to_string(),
            note: Some(truncate(message, 1000)),
            action: if ok { "Sync" } else { "Open" }.to_string(),
            secondary: None,
        };
        let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
        if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
            // Events are best effort: a failure must not block the Secret.
            tracing::warn!(error = %e, "publishing an event failed");
        }
        lock(&ctx.emitted).insert(uid, fingerprint);
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
