//! Reconcile: one SealedSecret in, one Secret out.
//!
//! Every item is resolved first (sealed values opened with the key set,
//! Vault references through the [`VaultResolver`]). Only when every item
//! resolved is the Secret written, by server-side apply with the
//! controller's field manager and a controller owner reference. On any
//! failure the existing Secret is not touched: the `Ready` condition says
//! which item failed and why, an Event is emitted once per change, and
//! [`error_policy`] retries with a per-object exponential backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitseal_manifest::types::{Condition, SealedSecretStatus};
use gitseal_manifest::SealedSecret;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::hash::DataHasher;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::sources::{self, ItemFailure, Resolved, VaultResolver};
use crate::{Error, Reason, ADOPT_ANNOTATION, FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

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
    /// Object id → when its current run of failures started.
    failures: Mutex<HashMap<String, Instant>>,
    /// uid → fingerprint of the last Event emitted for the object.
    emitted: Mutex<HashMap<String, u64>>,
    /// The controller's SealedSecret cache, once running: lets a reconcile
    /// that finishes after its object was deleted drop the per-object
    /// state it just wrote (see [`Context::forget_if_gone`]).
    live: std::sync::OnceLock<Store<SealedSecret>>,
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
            failures: Mutex::new(HashMap::new()),
            emitted: Mutex::new(HashMap::new()),
            live: std::sync::OnceLock::new(),
        }
    }

    /// Tells the context which cache holds the live SealedSecrets. Set once;
    /// later calls are ignored.
    pub fn watch_live(&self, store: Store<SealedSecret>) {
        let _ = self.live.set(store);
    }

    /// Forgets `obj`'s per-object state if the cache no longer holds it,
    /// and says so. A reconcile or retry that was in flight when the object
    /// was deleted would otherwise put back its retired-key count, retry
    /// count or Event fingerprint after the deletion cleared them: the
    /// deletion is applied to the cache before it is announced, so either
    /// this check sees it or the announcement comes after these writes.
    pub fn forget_if_gone(&self, obj: &SealedSecret) -> bool {
        let Some(live) = self.live.get() else {
            return false;
        };
        let gone = match live.get(&ObjectRef::from_obj(obj)) {
            Some(current) => current.metadata.uid != obj.metadata.uid,
            None => true,
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
        self.metrics.forget(&id);
    }

    /// Forgets every object's state (leadership lost: another replica
    /// reports them now, and may change them before this one leads again).
    pub fn forget_all(&self) {
        self.retain_live(&[]);
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
        self.metrics.retain_retired(|id| ids.contains(id));
    }
}

/// The kubectl client-side-apply annotation: a second copy of the whole
/// object as last applied.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what reconcile never reads before a SealedSecret enters the
/// controller's cache: `managedFields` and kubectl's last-applied copy of
/// the object (together often larger than the object itself).
pub fn strip_for_cache(obj: &mut SealedSecret) {
    obj.metadata.managed_fields = None;
    if let Some(annotations) = obj.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
        if annotations.is_empty() {
            obj.metadata.annotations = None;
        }
    }
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

async fn reconcile_inner(obj: &SealedSecret, ctx: &Context) -> Result<Action, Error> {
    let ns = obj
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = obj
        .metadata
        .name
        .as_deref()
        .ok_or(Error::MissingField("metadata.name"))?;
    let uid = obj
        .metadata
        .uid
        .as_deref()
        .ok_or(Error::MissingField("metadata.uid"))?;
    if !ctx.keys.is_ready() {
        return Err(Error::NoKeys);
    }
    let keys = ctx.keys.current();
    let requeue = match crate::vault::requeue_after(&obj.spec, ctx.timing.resync) {
        Ok(d) => d,
        Err(Error::Items { reason, message }) => {
            report(ctx, obj, reason, &message, None, false).await?;
            return Err(Error::Items { reason, message });
        }
        Err(e) => return Err(e),
    };

    // 1. Resolve every item; nothing is written unless all succeed.
    let mut resolved = Resolved::default();
    sources::open_sealed(
        &keys,
        obj.spec.scope,
        ns,
        name,
        &obj.spec.encrypted_data,
        &mut resolved,
    );
    if !obj.spec.vault_data.is_empty() {
        let results = ctx.vault.resolve(ns, &obj.spec.vault_data, requeue).await;
        sources::merge_vault(results, &mut resolved);
    }
    let id = object_id(obj);
    ctx.metrics.set_retired(&id, resolved.sealed_to_retired);
    if let Some(first) = resolved.failures.first().cloned() {
        let message = failure_message(&resolved.failures);
        report(ctx, obj, first.reason, &message, None, false).await?;
        return Err(Error::Items {
            reason: first.reason,
            message,
        });
    }

    // 2. Ownership of an existing Secret.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let existing = secrets.get_opt(name).await?;
    if let Some(existing) = &existing {
        if !owned_by(existing, uid) && !adoptable(existing) {
            let message = format!(
                "Secret {ns}/{name} exists and is not managed by this SealedSecret; it was left untouched. Delete it, or annotate it with {ADOPT_ANNOTATION}: \"true\" to let gitseal take it over"
            );
            report(ctx, obj, Reason::SecretNotOwned, &message, None, false).await?;
            return Err(Error::NotOwned(format!("{ns}/{name}")));
        }
    }

    // 3. Write the Secret when it differs from what it should be.
    let data_hash = ctx.hasher.hash(&resolved.data);
    let desired = desired_secret(obj, &resolved)?;
    let mut written = false;
    let up_to_date = existing
        .as_ref()
        .is_some_and(|e| matches_desired(e, &desired, uid));
    if !up_to_date {
        if let Some(existing) = &existing {
            if existing.immutable == Some(true) && existing.data != desired.data {
                // An immutable Secret's data cannot be changed: replace it.
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: existing.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                if let Err(e) = secrets.delete(name, &dp).await {
                    return apply_failed(ctx, obj, e).await;
                }
            }
        }
        let patch = Patch::Apply(&desired);
        if let Err(e) = secrets
            .patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &patch)
            .await
        {
            return apply_failed(ctx, obj, e).await;
        }
        written = true;
        tracing::info!(object = %id, items = resolved.data.len(), data_hash = crate::hash::short(&data_hash), "Secret written");
    }

    // 4. Rollout: restart opted-in workloads when the data changed.
    let old_hash = obj.status.as_ref().and_then(|s| s.data_hash.as_deref());
    let hash_changed = old_hash.is_some_and(|h| h != data_hash);
    if ctx.rollout && (written || old_hash != Some(data_hash.as_str())) {
        let existing_data_changed =
            written && existing.as_ref().is_some_and(|e| e.data != desired.data);
        let change = crate::rollout::Change {
            namespace: ns,
            secret: name,
            data_hash: &data_hash,
            data_changed: existing_data_changed || hash_changed,
        };
        let outcome = crate::rollout::restart_on_change(&ctx.client, &change).await;
        if !outcome.restarted.is_empty() {
            tracing::info!(object = %id, restarted = ?outcome.restarted, "rolled out workloads using the Secret");
        }
        for e in &outcome.errors {
            tracing::warn!(object = %id, error = %e, "rollout on change failed");
        }
    }

    // 5. Status.
    let mut status_extra = StatusExtra {
        key_ids: resolved.key_ids.iter().cloned().collect(),
        data_hash: Some(data_hash),
        written,
    };
    let message = format!("Secret {ns}/{name} holds {} item(s)", resolved.data.len());
    report(
        ctx,
        obj,
        Reason::Synced,
        &message,
        Some(&mut status_extra),
        true,
    )
    .await?;
    if obj.spec.vault_data.is_empty() {
        // Every input of a sealed-only Secret is watched (the SealedSecret,
        // the Secret itself, the keys), so no timer is needed; a timer per
        // object is a scheduler entry per object, i.e. memory.
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(requeue))
}

async fn apply_failed(ctx: &Context, obj: &SealedSecret, e: kube::Error) -> Result<Action, Error> {
    let detail = match &e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    };
    let message =
        format!("writing the Secret failed: {detail}; the existing Secret (if any) was kept");
    report(ctx, obj, Reason::ApplyFailed, &message, None, false).await?;
    Err(Error::Kube(e))
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
pub fn desired_secret(obj: &SealedSecret, resolved: &Resolved) -> Result<Secret, Error> {
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

/// Whether `existing` already is what server-side apply of `desired` would
/// make it (so no write is needed). Extra labels, annotations or owner
/// references added by others are fine; extra data items are not.
fn matches_desired(existing: &Secret, desired: &Secret, uid: &str) -> bool {
    let sub = |mine: &Option<BTreeMap<String, String>>,
               theirs: &Option<BTreeMap<String, String>>| {
        mine.iter()
            .flatten()
            .all(|(k, v)| theirs.as_ref().and_then(|t| t.get(k)) == Some(v))
    };
    owned_by(existing, uid)
        && existing.data.clone().unwrap_or_default() == desired.data.clone().unwrap_or_default()
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

struct StatusExtra {
    key_ids: Vec<String>,
    data_hash: Option<String>,
    written: bool,
}

/// Writes the status (only when it changes) and emits an Event (only when
/// the reason, message or data hash changes).
async fn report(
    ctx: &Context,
    obj: &SealedSecret,
    reason: Reason,
    message: &str,
    extra: Option<&mut StatusExtra>,
    ok: bool,
) -> Result<(), Error> {
    let old = obj.status.clone().unwrap_or_default();
    let old_ready = old.conditions.iter().find(|c| c.type_ == "Ready");
    let status_word = if ok { "True" } else { "False" };
    let now = Timestamp::now().to_string();
    let generation = obj.metadata.generation;
    let transition = match old_ready {
        Some(c) if c.status == status_word => c.last_transition_time.clone(),
        _ => Some(now.clone()),
    };
    let condition = Condition {
        type_: "Ready".to_string(),
        status: status_word.to_string(),
        reason: reason.as_str().to_string(),
        message: message.to_string(),
        last_transition_time: transition,
        observed_generation: generation,
    };
    // On failure the Secret is unchanged: keep what the status said about it.
    let (key_ids, data_hash, last_sync) = match extra {
        Some(x) => {
            let changed = x.written || old.data_hash != x.data_hash;
            let last_sync = if changed || old.last_sync_time.is_none() {
                Some(now.clone())
            } else {
                old.last_sync_time.clone()
            };
            (
                std::mem::take(&mut x.key_ids),
                x.data_hash.take(),
                last_sync,
            )
        }
        None => (
            old.key_ids.clone(),
            old.data_hash.clone(),
            old.last_sync_time.clone(),
        ),
    };
    let mut conditions: Vec<Condition> = old
        .conditions
        .iter()
        .filter(|c| c.type_ != "Ready")
        .cloned()
        .collect();
    conditions.push(condition);
    let new = SealedSecretStatus {
        conditions,
        observed_generation: generation,
        key_ids,
        last_sync_time: last_sync,
        data_hash: data_hash.clone(),
    };

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
    let key = EventKey {
        reason: reason.as_str().to_string(),
        message: message.to_string(),
        data_hash: data_hash.clone(),
    };
    let uid = obj.metadata.uid.clone().unwrap_or_default();
    let from_status = old_ready.map(|c| EventKey {
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
