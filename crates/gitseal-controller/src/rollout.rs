//! Rollout on change: restart the workloads that use a Secret when the
//! Secret's data changes, and only then.
//!
//! Pods read Secrets at start (environment variables) or cache them, so a
//! new password in the Secret does nothing until the pods restart. A
//! Deployment, StatefulSet or DaemonSet opts in with an annotation on its
//! own metadata naming the Secrets it depends on:
//!
//! ```yaml
//! metadata:
//!   annotations:
//!     gitseal.dev/restart-on-change: "db, api-keys"
//! ```
//!
//! After the controller syncs Secret `db`, it merge-patches the pod template
//! of every opted-in workload in the Secret's namespace with the annotation
//! `gitseal.dev/secret-hash.db: <data hash>` (the keyed hash from
//! `status.dataHash`, never the data). A pod-template change is what
//! `kubectl rollout restart` does: the workload's own rollout strategy
//! (rolling update, `maxUnavailable`, `OnDelete`, ...) applies.
//!
//! # When a workload is patched
//!
//! | template annotation for this Secret | patched? |
//! |---|---|
//! | equals the current hash | never (already running this data) |
//! | present, another hash | yes: the data changed since its pods started |
//! | absent | only if the data of an existing Secret changed in this sync ([`Change::data_changed`]) |
//!
//! So the first sync of a brand-new Secret restarts nothing: pods that
//! waited for it start with its data anyway, and a workload that already
//! carries the hash is left alone. A workload that opts in later is not
//! restarted until the data next changes. Because the check is against the
//! template, running it again (after a controller restart, or a retry after
//! a failed patch) restarts nothing twice.
//!
//! Merge patches (not server-side apply) are used on purpose: an apply of
//! one annotation by the same field manager would remove the annotations it
//! applied earlier for the workload's other Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::FIELD_MANAGER;

/// Workload annotation naming the Secrets (comma-separated) whose changes
/// restart it.
pub const RESTART_ANNOTATION: &str = "gitseal.dev/restart-on-change";
/// Prefix of the pod-template annotation holding a Secret's data hash.
pub const HASH_ANNOTATION_PREFIX: &str = "gitseal.dev/secret-hash.";
/// Objects listed per page.
const PAGE: u32 = 500;
/// Longest name part of an annotation key (Kubernetes limit).
const MAX_ANNOTATION_NAME: usize = 63;

/// The pod-template annotation key for Secret `secret`:
/// `gitseal.dev/secret-hash.<secret>`. The part after `/` may hold at most
/// 63 characters; longer Secret names are cut and end in 8 hex digits of
/// the name's SHA-256, so distinct names keep distinct keys.
pub fn hash_annotation_key(secret: &str) -> String {
    let name_prefix = &HASH_ANNOTATION_PREFIX["gitseal.dev/".len()..];
    let room = MAX_ANNOTATION_NAME - name_prefix.len();
    if secret.len() <= room {
        return format!("{HASH_ANNOTATION_PREFIX}{secret}");
    }
    let digest = hex::encode(&Sha256::digest(secret.as_bytes())[..4]);
    let mut cut = room - digest.len() - 1;
    while !secret.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{HASH_ANNOTATION_PREFIX}{}-{digest}", &secret[..cut])
}

/// Whether a workload's annotations opt in to restarts for `secret`.
pub fn opts_in(annotations: &BTreeMap<String, String>, secret: &str) -> bool {
    annotations
        .get(RESTART_ANNOTATION)
        .is_some_and(|v| v.split(',').any(|s| s.trim() == secret))
}

/// A synced Secret, as far as rollout needs it.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    /// The Secret's namespace (only workloads there are considered).
    pub namespace: &'a str,
    /// The Secret's name.
    pub secret: &'a str,
    /// The keyed hash of its data (`status.dataHash`).
    pub data_hash: &'a str,
    /// True when the data of a Secret that already existed changed in this
    /// sync (or the previous `status.dataHash` differs from `data_hash`):
    /// then workloads not carrying any hash yet are restarted too. False for
    /// a brand-new Secret and for syncs that changed nothing.
    pub data_changed: bool,
}

/// What rollout did; names are `Kind/name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Workloads patched (their pods roll).
    pub restarted: Vec<String>,
    /// Opted-in workloads already carrying the current hash.
    pub up_to_date: Vec<String>,
    /// Opted-in workloads without a hash, left alone because the data did
    /// not change (see the module docs).
    pub not_tracked: Vec<String>,
    /// Failures (listing or patching); the others were still handled.
    pub errors: Vec<String>,
}

impl Report {
    /// True when nothing failed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Restarts the opted-in Deployments, StatefulSets and DaemonSets of
/// `change.namespace` whose pod template does not carry `change.data_hash`
/// (see the module docs for the rule). Best effort: a failure is recorded
/// in the report and the other workloads are still handled; a workload
/// deleted meanwhile (404) is skipped silently. The controller needs
/// `list` and `patch` on `apps` `deployments`, `statefulsets`,
/// `daemonsets`.
pub async fn restart_on_change(client: &Client, change: &Change<'_>) -> Report {
    let mut report = Report::default();
    handle_kind::<Deployment>(client, change, &mut report).await;
    handle_kind::<StatefulSet>(client, change, &mut report).await;
    handle_kind::<DaemonSet>(client, change, &mut report).await;
    report
}

/// A workload kind with a pod template.
trait Workload:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
    fn template_annotations(&self) -> Option<&BTreeMap<String, String>>;
}

impl Workload for Deployment {
    fn template_annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.template.metadata.as_ref()?.annotations.as_ref()
    }
}

impl Workload for StatefulSet {
    fn template_annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.template.metadata.as_ref()?.annotations.as_ref()
    }
}

impl Workload for DaemonSet {
    fn template_annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.spec.template.metadata.as_ref()?.annotations.as_ref()
    }
}

fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "forbidden ({}); grant the controller list and patch on apps deployments, statefulsets and daemonsets",
            s.message
        ),
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

async fn handle_kind<K: Workload>(client: &Client, change: &Change<'_>, report: &mut Report) {
    let api: Api<K> = Api::namespaced(client.clone(), change.namespace);
    let kind = K::kind(&());
    let key = hash_annotation_key(change.secret);
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = match api.list(&params).await {
            Ok(p) => p,
            // The kind is not served at all: nothing to restart.
            Err(kube::Error::Api(s)) if s.code == 404 => return,
            Err(e) => {
                report.errors.push(format!(
                    "listing {kind}s in namespace {}: {}",
                    change.namespace,
                    api_error(&e)
                ));
                return;
            }
        };
        for w in &page.items {
            if !opts_in(w.annotations(), change.secret) {
                continue;
            }
            let name = w.name_any();
            let shown = format!("{kind}/{name}");
            match w.template_annotations().and_then(|a| a.get(&key)) {
                Some(h) if h == change.data_hash => {
                    report.up_to_date.push(shown);
                    continue;
                }
                None if !change.data_changed => {
                    report.not_tracked.push(shown);
                    continue;
                }
                _ => {}
            }
            let patch = json!({
                "spec": {"template": {"metadata": {"annotations": {key.as_str(): change.data_hash}}}}
            });
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            };
            match api.patch(&name, &pp, &Patch::Merge(&patch)).await {
                Ok(_) => {
                    tracing::info!(
                        workload = %shown,
                        namespace = change.namespace,
                        secret = change.secret,
                        data_hash = crate::hash::short(change.data_hash),
                        "restarting workload: its Secret changed"
                    );
                    report.restarted.push(shown);
                }
                // Deleted since the list: nothing to restart.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => report.errors.push(format!(
                    "restarting {shown} in namespace {}: {}",
                    change.namespace,
                    api_error(&e)
                )),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests;
