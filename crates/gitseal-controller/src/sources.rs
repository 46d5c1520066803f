//! Where an item's value comes from: a sealed value opened with the
//! controller's keys, or a Vault reference. Reconcile asks each source for its
//! items and gets back values or per-item failures; the seam for Vault is the
//! [`VaultResolver`] trait so `gitseal-vault` can plug in without touching the
//! reconcile logic.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;
use gitseal_crypto::{Binding, Envelope, Opener, Scope};
use gitseal_manifest::types::VaultReference;
use secrecy::SecretSlice;

use crate::keys::KeySet;
use crate::Reason;

/// One item that could not be resolved. The message names the item and the
/// cause, never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemFailure {
    /// The item key.
    pub item: String,
    /// Why, as a condition reason.
    pub reason: Reason,
    /// Detail for the condition message.
    pub message: String,
}

/// The outcome of resolving every item of one SealedSecret.
#[derive(Default)]
pub struct Resolved {
    /// Item key → value.
    pub data: BTreeMap<String, SecretSlice<u8>>,
    /// Items that failed, in item-key order.
    pub failures: Vec<ItemFailure>,
    /// Key ids the sealed values were opened with.
    pub key_ids: BTreeSet<String>,
    /// How many values opened only with a retired (not the active) key.
    pub sealed_to_retired: u64,
}

/// Opens every `encryptedData` item of an object at `namespace`/`name`.
/// The binding comes from where the object really is, never from the
/// envelope's clear header; the header is only used to tell a moved value
/// (`ScopeMismatch`) from an altered one (`DecryptFailed`).
pub fn open_sealed(
    keys: &KeySet,
    scope: Scope,
    namespace: &str,
    name: &str,
    items: &BTreeMap<String, String>,
    out: &mut Resolved,
) {
    let active = keys.active().map(|k| k.identity.key_id());
    // The values of one object share an encapsulation per key: one X25519.
    let mut opener = Opener::new(keys.identities());
    for (item, text) in items {
        let fail = |reason: Reason, message: String| ItemFailure {
            item: item.clone(),
            reason,
            message,
        };
        let envelope = match Envelope::parse(text) {
            Ok(e) => e,
            Err(e) => {
                out.failures.push(fail(
                    Reason::DecryptFailed,
                    format!("not a valid sealed value: {e}"),
                ));
                continue;
            }
        };
        let expected = Binding::new(scope, namespace, name, item);
        match opener.open(&envelope, &expected) {
            Ok(value) => {
                // The first of the value's key ids that we hold opened it.
                let used = envelope
                    .key_ids()
                    .into_iter()
                    .find(|id| keys.find(*id).is_some());
                if let Some(id) = used {
                    if Some(id) != active {
                        out.sealed_to_retired += 1;
                    }
                    out.key_ids.insert(id.to_string());
                }
                out.data.insert(item.clone(), value);
            }
            Err(gitseal_crypto::Error::UnknownKey { sealed_to }) => {
                let ids: Vec<String> = sealed_to.iter().map(ToString::to_string).collect();
                out.failures.push(fail(
                    Reason::UnknownKey,
                    format!(
                        "sealed to key id(s) {}, which this controller does not hold; reseal it with `gitseal fetch-key` + `gitseal seal`, or import the key with `gitseal-controller import-key`",
                        ids.join(", ")
                    ),
                ));
            }
            Err(_) if envelope.binding() != &expected => {
                out.failures.push(fail(
                    Reason::ScopeMismatch,
                    format!(
                        "sealed for {}, but it sits at {}; seal it again for this place",
                        envelope.binding(),
                        expected
                    ),
                ));
            }
            Err(_) => {
                out.failures.push(fail(
                    Reason::DecryptFailed,
                    "sealed value does not open: it was altered or corrupted".to_string(),
                ));
            }
        }
    }
}

/// One resolved Vault item, or why it failed.
pub type VaultItem = Result<SecretSlice<u8>, ItemFailure>;

/// Resolves `spec.vaultData` items. Implemented by the Vault integration;
/// [`NoVault`] is used when the controller has no Vault configured.
pub trait VaultResolver: Send + Sync {
    /// Resolves every item of one SealedSecret in `namespace`, which reads
    /// its Vault items again every `refresh` (so values shared from other
    /// reconciles must be younger than that). Returns one entry per item
    /// key of `items`.
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        items: &'a BTreeMap<String, VaultReference>,
        refresh: std::time::Duration,
    ) -> BoxFuture<'a, BTreeMap<String, VaultItem>>;

    /// A stream that yields each time the resolver's backend is reachable
    /// again after an outage: the controller then retries at once the
    /// objects waiting for it, instead of at their next backoff. `None`
    /// (the default) when there is no such signal.
    fn recoveries(&self) -> Option<futures::stream::BoxStream<'static, ()>> {
        None
    }

    /// A Prometheus collector exporting the resolver's own counters (Vault
    /// calls, failures, cache hits), registered on `/metrics` at start.
    /// `None` (the default) when it has none.
    fn metrics_collector(&self) -> Option<Box<dyn prometheus_client::collector::Collector>> {
        None
    }
}

/// The resolver used when Vault is not configured: every item fails with
/// `VaultUnavailable`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoVault;

impl VaultResolver for NoVault {
    fn resolve<'a>(
        &'a self,
        _namespace: &'a str,
        items: &'a BTreeMap<String, VaultReference>,
        _refresh: std::time::Duration,
    ) -> BoxFuture<'a, BTreeMap<String, VaultItem>> {
        let out = items
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    Err(ItemFailure {
                        item: k.clone(),
                        reason: Reason::VaultUnavailable,
                        message: "Vault is not configured".to_string(),
                    }),
                )
            })
            .collect();
        Box::pin(futures::future::ready(out))
    }
}

/// Adds the Vault results to `out`, refusing items that are also sealed.
pub fn merge_vault(results: BTreeMap<String, VaultItem>, out: &mut Resolved) {
    for (item, result) in results {
        if out.data.contains_key(&item) || out.failures.iter().any(|f| f.item == item) {
            out.failures.push(ItemFailure {
                item: item.clone(),
                reason: Reason::InvalidSpec,
                message: "the item is in both encryptedData and vaultData; keep it in one"
                    .to_string(),
            });
            out.data.remove(&item);
            continue;
        }
        match result {
            Ok(v) => {
                out.data.insert(item, v);
            }
            Err(f) => out.failures.push(f),
        }
    }
    out.failures.sort_by(|a, b| a.item.cmp(&b.item));
}
