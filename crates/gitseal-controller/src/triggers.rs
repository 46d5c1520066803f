//! What makes a SealedSecret reconcile besides a change of the object
//! itself: a change of the Secrets around it.
//!
//! One metadata-only watch of Secrets (no data, no cache of objects) maps
//! each event to the SealedSecret of the same namespace and name when
//!
//! - the Secret is owned by a SealedSecret (edited or deleted by hand: it is
//!   put back), or was until this event (its owner reference was removed);
//! - the Secret carries `gitseal.dev/adopt: "true"` (adoption starts at
//!   once, not at the next retry of a `SecretNotOwned` object, which may be
//!   five minutes away).
//!
//! A watch that breaks and cannot resume (410 Gone) relists, and a relist
//! replays no deletion: a Secret deleted or edited in that gap would go
//! unnoticed, since a synced object without Vault items is never requeued.
//! So the tracker remembers the resourceVersion of every owned Secret, and
//! after each relist triggers the owners of the Secrets that vanished or
//! changed across it. The first list after start is not compared: every
//! SealedSecret is reconciled at start anyway.

use std::collections::HashMap;

use futures::{Stream, StreamExt};
use gitseal_manifest::SealedSecret;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};

use crate::{ADOPT_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Namespace and name of a Secret (and of the SealedSecret it belongs to).
type Place = (String, String);

/// The state behind [`secret_triggers`]: owned Secrets and their
/// resourceVersions, as last seen.
#[derive(Debug, Default)]
pub struct SecretTracker {
    owned: HashMap<Place, String>,
    relisting: Option<HashMap<Place, String>>,
    listed_once: bool,
}

fn place(meta: &ObjectMeta) -> Option<Place> {
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

fn owned_by_sealed_secret(meta: &ObjectMeta) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "SealedSecret" && o.api_version.starts_with("gitseal.dev/"))
}

/// Carries the label the controller puts on the Secrets it writes.
fn managed(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY_VALUE)
}

fn asks_adoption(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(ADOPT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

fn target((namespace, name): &Place) -> ObjectRef<SealedSecret> {
    ObjectRef::new(name).within(namespace)
}

impl SecretTracker {
    /// The SealedSecrets to reconcile because of one watch event.
    pub fn on_event(&mut self, event: watcher::Event<ObjectMeta>) -> Vec<ObjectRef<SealedSecret>> {
        let mut out = Vec::new();
        match event {
            watcher::Event::Apply(meta) => {
                let Some(at) = place(&meta) else { return out };
                let rv = meta.resource_version.clone().unwrap_or_default();
                let was_owned = if owned_by_sealed_secret(&meta) {
                    self.owned.insert(at.clone(), rv);
                    true
                } else {
                    self.owned.remove(&at).is_some()
                };
                // A managed Secret's changes come from the Secret index,
                // which tells its own writes apart ([`crate::secret_index`]).
                if (was_owned && !managed(&meta)) || asks_adoption(&meta) {
                    out.push(target(&at));
                }
            }
            watcher::Event::Delete(meta) => {
                let Some(at) = place(&meta) else { return out };
                if self.owned.remove(&at).is_some() || owned_by_sealed_secret(&meta) {
                    out.push(target(&at));
                }
            }
            watcher::Event::Init => self.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(meta) => {
                let Some(at) = place(&meta) else { return out };
                if owned_by_sealed_secret(&meta) {
                    let rv = meta.resource_version.clone().unwrap_or_default();
                    self.relisting
                        .get_or_insert_with(HashMap::new)
                        .insert(at, rv);
                } else if self.listed_once && asks_adoption(&meta) {
                    out.push(target(&at));
                }
            }
            watcher::Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                if self.listed_once {
                    // Vanished or changed while the watch was away.
                    for (at, rv) in &self.owned {
                        if listed.get(at) != Some(rv) {
                            out.push(target(at));
                        }
                    }
                    for at in listed.keys() {
                        if !self.owned.contains_key(at) {
                            out.push(target(at));
                        }
                    }
                    if !out.is_empty() {
                        tracing::info!(
                            secrets = out.len(),
                            "Secrets changed or vanished while the Secret watch was away; reconciling their SealedSecrets"
                        );
                    }
                }
                self.owned = listed;
                self.listed_once = true;
            }
        }
        out
    }

    /// Owned Secrets tracked.
    pub fn len(&self) -> usize {
        self.owned.len()
    }

    /// Whether no owned Secret is tracked.
    pub fn is_empty(&self) -> bool {
        self.owned.is_empty()
    }
}

fn metadata_of(event: watcher::Event<PartialObjectMeta<Secret>>) -> watcher::Event<ObjectMeta> {
    match event {
        watcher::Event::Apply(m) => watcher::Event::Apply(m.metadata),
        watcher::Event::Delete(m) => watcher::Event::Delete(m.metadata),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(m) => watcher::Event::InitApply(m.metadata),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// The reconcile triggers from the Secrets of every namespace, watched
/// metadata-only. Watch errors back off and retry inside.
pub fn secret_triggers(client: Client) -> impl Stream<Item = ObjectRef<SealedSecret>> + Send {
    secret_triggers_in(Api::all(client))
}

/// [`secret_triggers`] for the Secrets of `api` (one namespace of a shard).
pub fn secret_triggers_in(
    api: Api<PartialObjectMeta<Secret>>,
) -> impl Stream<Item = ObjectRef<SealedSecret>> + Send {
    let mut tracker = SecretTracker::default();
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(|event| {
            futures::future::ready(match event {
                Ok(e) => Some(metadata_of(e)),
                Err(e) => {
                    tracing::warn!(error = %e, "watching Secrets failed; retrying");
                    None
                }
            })
        })
        .flat_map(move |event| futures::stream::iter(tracker.on_event(event)))
}
