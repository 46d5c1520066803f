//! The controller's sealing keys: kept as Secrets in its own namespace
//! (labelled `gitseal.dev/sealing-key=true`, so an operator can back them up
//! with one `kubectl get`), generated on first start, rotated every period,
//! watched so keys added or removed by hand take effect without a restart,
//! and published (public halves only) in a ConfigMap and over HTTP.
//!
//! The newest key is the active one: what `gitseal fetch-key` hands out.
//! Every key is kept for opening, so values sealed before a rotation still open.
//!
//! Trust: a sealing key is a Secret the controller generated or an operator
//! imported, never one the controller wrote for a SealedSecret. The loader
//! refuses any Secret owned by a SealedSecret ([`keys_from_secret`]), and
//! the writer never produces one that carries the key label (templates may
//! not set `gitseal.dev/` metadata, see `reconcile`). A key's creation time
//! is never later than when its Secret was created, so a far-future
//! `gitseal.dev/created` cannot keep a key active and stop rotation.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gitseal_crypto::{Identity, KeyId};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::sync::watch;

use crate::{Error, FIELD_MANAGER, KEY_CREATED_ANNOTATION, KEY_LABEL, KEY_RECIPIENT_ANNOTATION};

/// Data item of a key Secret holding the identity file.
pub const IDENTITY_ITEM: &str = "identity.txt";

/// One sealing key.
#[derive(Clone)]
pub struct SealingKey {
    /// The private key.
    pub identity: Identity,
    /// When it was created.
    pub created: Timestamp,
    /// The Secret it lives in (empty when not stored).
    pub secret_name: String,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("key_id", &self.identity.key_id())
            .field("created", &self.created)
            .field("secret_name", &self.secret_name)
            .finish_non_exhaustive()
    }
}

/// The keys loaded at one moment, newest first.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<SealingKey>,
    identities: Vec<Identity>,
}

/// A public key as published (`GET /v1/keys`, the ConfigMap).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyInfo {
    /// `age1…`.
    pub recipient: String,
    /// Key id (16 hex digits).
    pub key_id: String,
    /// Whether new values should be sealed to it.
    pub active: bool,
    /// Creation time, RFC 3339.
    pub created: String,
}

impl KeySet {
    /// A key set from keys in any order; duplicates (same key id) are kept once,
    /// with the oldest creation time.
    pub fn new(mut keys: Vec<SealingKey>) -> Self {
        keys.sort_by(|a, b| {
            a.created
                .cmp(&b.created)
                .then_with(|| a.secret_name.cmp(&b.secret_name))
        });
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.identity.key_id()));
        keys.reverse();
        let identities = keys.iter().map(|k| k.identity.clone()).collect();
        KeySet { keys, identities }
    }

    /// The active key: the newest.
    pub fn active(&self) -> Option<&SealingKey> {
        self.keys.first()
    }

    /// Every key, newest first.
    pub fn keys(&self) -> &[SealingKey] {
        &self.keys
    }

    /// Every identity, newest first, for opening.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The key with this id.
    pub fn find(&self, id: KeyId) -> Option<&SealingKey> {
        self.keys.iter().find(|k| k.identity.key_id() == id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public halves, newest first.
    pub fn public_keys(&self) -> Vec<PublicKeyInfo> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| PublicKeyInfo {
                recipient: k.identity.recipient().to_string(),
                key_id: k.identity.key_id().to_string(),
                active: i == 0,
                created: k.created.to_string(),
            })
            .collect()
    }
}

/// The shared, hot-swappable key set. Readers take a cheap `Arc` snapshot.
#[derive(Debug)]
pub struct KeyStore {
    current: RwLock<Arc<KeySet>>,
    loaded: AtomicBool,
    changed: watch::Sender<u64>,
    /// The keys of the first load: the baseline new keys are announced
    /// against, whenever the announcing task first looks.
    first: std::sync::OnceLock<Arc<KeySet>>,
}

impl Default for KeyStore {
    fn default() -> Self {
        KeyStore {
            current: RwLock::new(Arc::new(KeySet::default())),
            loaded: AtomicBool::new(false),
            changed: watch::channel(0).0,
            first: std::sync::OnceLock::new(),
        }
    }
}

impl KeyStore {
    /// An empty, not-yet-loaded store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current keys.
    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the keys and marks the store loaded. Subscribers hear of
    /// the first load and of every change of the key ids or the active key;
    /// the same keys loaded again (a relist of the key Secrets after a
    /// dropped watch, a key Secret's labels edited) are no change: every
    /// subscriber of a change reconciles every object.
    pub fn replace(&self, keys: KeySet) {
        let new = Arc::new(keys);
        let old = {
            let mut g = match self.current.write() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *g, new.clone())
        };
        let _ = self.first.set(new.clone());
        let was_loaded = self.loaded.swap(true, Ordering::AcqRel);
        if !was_loaded || !new.changes_from(&old).is_empty() {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// The keys of the first load, once there was one.
    pub fn first_loaded(&self) -> Option<Arc<KeySet>> {
        self.first.get().cloned()
    }

    /// Whether keys were loaded at least once (and there is at least one).
    pub fn is_ready(&self) -> bool {
        self.loaded.load(Ordering::Acquire) && !self.current().is_empty()
    }

    /// Whether keys were loaded at least once (possibly none).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// A receiver that sees a new value whenever the keys change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// The Secret that stores `identity`, created at `created`, in the
/// controller's namespace (set by the Api it is created through).
pub fn key_secret(identity: &Identity, created: Timestamp) -> Secret {
    let created_text = created.to_string();
    let file = identity.to_identity_file(Some(&created_text));
    Secret {
        metadata: ObjectMeta {
            name: Some(format!("gitseal-key-{}", identity.key_id())),
            labels: Some(BTreeMap::from([
                (KEY_LABEL.to_string(), "true".to_string()),
                (
                    crate::MANAGED_BY_LABEL.to_string(),
                    crate::MANAGED_BY_VALUE.to_string(),
                ),
            ])),
            annotations: Some(BTreeMap::from([
                (KEY_CREATED_ANNOTATION.to_string(), created_text),
                (
                    KEY_RECIPIENT_ANNOTATION.to_string(),
                    identity.recipient().to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            IDENTITY_ITEM.to_string(),
            ByteString(file.expose_secret().as_bytes().to_vec()),
        )])),
        type_: Some("Opaque".to_string()),
        ..Secret::default()
    }
}

/// Reads the keys out of one labelled Secret. A Secret may hold several
/// identities (an identity file with several lines, or several data items).
/// Creation time: the annotation, else the Secret's creationTimestamp.
pub fn keys_from_secret(secret: &Secret) -> Result<Vec<SealingKey>, Error> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let bad = |message: String| Error::BadKey {
        origin: format!("Secret {name}"),
        message,
    };
    if let Some(owner) = sealed_secret_owner(secret) {
        return Err(bad(format!(
            "it was written for SealedSecret {owner:?} (owner reference), and a Secret made from a SealedSecret is never a sealing key"
        )));
    }
    let annotated = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(KEY_CREATED_ANNOTATION))
        .and_then(|t| t.parse::<Timestamp>().ok());
    let stored = secret.metadata.creation_timestamp.as_ref().map(|t| t.0);
    // The annotation may say earlier (a restored backup keeps its date),
    // never later than the API server's own creation time.
    let created = match (annotated, stored) {
        (Some(a), Some(s)) => a.min(s),
        (a, s) => a.or(s).unwrap_or(Timestamp::UNIX_EPOCH),
    };
    let mut out = Vec::new();
    for (item, value) in secret.data.iter().flatten() {
        let text = std::str::from_utf8(&value.0)
            .map_err(|_| bad(format!("data item {item:?} is not UTF-8 text")))?;
        let identities =
            Identity::parse_file(text).map_err(|e| bad(format!("data item {item:?}: {e}")))?;
        out.extend(identities.into_iter().map(|identity| SealingKey {
            identity,
            created,
            secret_name: name.clone(),
        }));
    }
    if out.is_empty() {
        return Err(bad("holds no identity".to_string()));
    }
    Ok(out)
}

/// The name of the SealedSecret that owns `secret` (an owner reference of
/// kind `SealedSecret` in the `gitseal.dev` group), if any.
pub fn sealed_secret_owner(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "SealedSecret" && o.api_version.starts_with("gitseal.dev/"))
        .map(|o| o.name.as_str())
}

/// Whether the key loader would take keys from `secret`: it carries the
/// key label and is not owned by a SealedSecret. The controller never
/// writes such a Secret for a SealedSecret (tested).
pub fn is_key_candidate(secret: &Secret) -> bool {
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(KEY_LABEL))
        .is_some_and(|v| v == "true");
    labelled && sealed_secret_owner(secret).is_none()
}

/// How one key set differs from the one before.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyChanges {
    /// Keys now loaded that were not before: (key id, Secret name).
    pub added: Vec<(String, String)>,
    /// Key ids no longer loaded.
    pub removed: Vec<String>,
    /// The active key id before and after, when it changed.
    pub activated: Option<(Option<String>, String)>,
}

impl KeyChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.activated.is_none()
    }
}

impl KeySet {
    /// What changed from `before` to `self`.
    pub fn changes_from(&self, before: &KeySet) -> KeyChanges {
        let id = |k: &SealingKey| k.identity.key_id().to_string();
        let old: std::collections::HashSet<String> = before.keys.iter().map(id).collect();
        let new: std::collections::HashSet<String> = self.keys.iter().map(id).collect();
        let active_before = before.active().map(id);
        let active_now = self.active().map(id);
        KeyChanges {
            added: self
                .keys
                .iter()
                .filter(|k| !old.contains(&id(k)))
                .map(|k| (id(k), k.secret_name.clone()))
                .collect(),
            removed: before
                .keys
                .iter()
                .map(id)
                .filter(|k| !new.contains(k))
                .collect(),
            activated: match active_now {
                Some(now) if active_before.as_ref() != Some(&now) => Some((active_before, now)),
                _ => None,
            },
        }
    }
}

/// Label selector of the key Secrets.
pub fn key_selector() -> String {
    format!("{KEY_LABEL}=true")
}

/// Builds a key set from labelled Secrets, skipping (and logging) bad ones.
pub fn key_set_from_secrets<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> KeySet {
    let mut keys = Vec::new();
    for s in secrets {
        match keys_from_secret(s) {
            Ok(k) => keys.extend(k),
            Err(e) => tracing::warn!(error = %e, "ignoring unusable sealing-key Secret"),
        }
    }
    KeySet::new(keys)
}

/// Lists the key Secrets once and loads them into `store`.
pub async fn load(api: &Api<Secret>, store: &KeyStore) -> Result<(), Error> {
    let list = api
        .list(&kube::api::ListParams::default().labels(&key_selector()))
        .await?;
    store.replace(key_set_from_secrets(list.items.iter()));
    Ok(())
}

/// Watches the labelled Secrets and keeps `store` current until the stream
/// ends (it does not, short of a shutdown). Errors back off and retry.
pub async fn watch_keys(api: Api<Secret>, store: Arc<KeyStore>) {
    let config = watcher::Config::default().labels(&key_selector());
    let mut secrets: HashMap<String, Secret> = HashMap::new();
    let mut init: HashMap<String, Secret> = HashMap::new();
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    loop {
        let event = match stream.try_next().await {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "watching sealing keys failed; retrying");
                continue;
            }
        };
        let changed = match event {
            watcher::Event::Init => {
                init.clear();
                false
            }
            watcher::Event::InitApply(s) => {
                init.insert(s.metadata.name.clone().unwrap_or_default(), s);
                false
            }
            watcher::Event::InitDone => {
                secrets = std::mem::take(&mut init);
                true
            }
            watcher::Event::Apply(s) => {
                secrets.insert(s.metadata.name.clone().unwrap_or_default(), s);
                true
            }
            watcher::Event::Delete(s) => {
                secrets.remove(&s.metadata.name.clone().unwrap_or_default());
                true
            }
        };
        if changed {
            let set = key_set_from_secrets(secrets.values());
            let ids: Vec<String> = set
                .keys()
                .iter()
                .map(|k| k.identity.key_id().to_string())
                .collect();
            tracing::info!(keys = set.len(), key_ids = ?ids, "sealing keys loaded");
            store.replace(set);
        }
    }
}

/// When the next key is due: `None` when rotation is off.
pub fn next_rotation(keys: &KeySet, period: Duration) -> Option<Timestamp> {
    if period.is_zero() {
        return None;
    }
    let newest = keys.active()?.created;
    let span = k8s_openapi::jiff::SignedDuration::try_from(period).ok()?;
    Some(newest.checked_add(span).unwrap_or(Timestamp::MAX))
}

/// Creates a new key when there is none or the newest is older than
/// `period`. Returns the new key's id when one was made. Only the leader
/// calls this, so replicas do not race to make keys.
pub async fn ensure_current_key(
    api: &Api<Secret>,
    keys: &KeySet,
    period: Duration,
    now: Timestamp,
) -> Result<Option<KeyId>, Error> {
    let due = match next_rotation(keys, period) {
        _ if keys.is_empty() => true,
        Some(at) => at <= now,
        None => false,
    };
    if !due {
        return Ok(None);
    }
    let identity = Identity::generate();
    let secret = key_secret(&identity, now);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(key_id = %identity.key_id(), "generated a new sealing key");
            Ok(Some(identity.key_id()))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Publishes the public keys in the `gitseal-public-keys` ConfigMap
/// (server-side apply): `keys.json` (as `GET /v1/keys`) and `active` (the
/// active recipient, as `GET /v1/key`).
pub async fn publish(api: &Api<ConfigMap>, keys: &KeySet) -> Result<(), Error> {
    let infos = keys.public_keys();
    let json = serde_json::to_string_pretty(&infos).map_err(|e| Error::Serialize(e.to_string()))?;
    let mut data = BTreeMap::from([("keys.json".to_string(), json)]);
    if let Some(active) = keys.active() {
        data.insert(
            "active".to_string(),
            active.identity.recipient().to_string(),
        );
    }
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": crate::PUBLIC_KEYS_CONFIGMAP,
            "labels": { crate::MANAGED_BY_LABEL: crate::MANAGED_BY_VALUE },
        },
        "data": data,
    });
    api.patch(
        crate::PUBLIC_KEYS_CONFIGMAP,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

/// The key Secrets for every identity of an age identity file (for
/// `gitseal-controller import-key`), created `now`.
pub fn import_identity_file(
    text: &str,
    origin: &str,
    now: Timestamp,
) -> Result<Vec<Secret>, Error> {
    let identities = Identity::parse_file(text).map_err(|e| Error::BadKey {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    Ok(identities.iter().map(|i| key_secret(i, now)).collect())
}

/// Stream helper: a `()` each time the key set changes (to reconcile all
/// objects, e.g. after a key for `UnknownKey` objects was imported).
pub fn changes(store: &KeyStore) -> impl futures::Stream<Item = ()> + Send + 'static {
    let rx = store.subscribe();
    futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    })
    .boxed()
}
