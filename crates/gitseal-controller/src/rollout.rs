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
//! # Which workloads are looked at
//!
//! With rollout on, the controller watches the Deployments, StatefulSets
//! and DaemonSets it may see and keeps only those that opt in, reduced to
//! their opt-in annotation and template hashes ([`index`]). A write of a
//! Secret consults that index: no list request per write, and a patch
//! only for an opted-in workload that needs it. Until the index has its
//! first list (or when its watch is refused, e.g. without the `watch`
//! verb) rollout lists the workloads of the namespace instead.
//!
//! Merge patches (not server-side apply) are used on purpose: an apply of
//! one annotation by the same field manager would remove the annotations it
//! applied earlier for the workload's other Secrets.

use std::collections::BTreeMap;

use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::FIELD_MANAGER;

pub mod index;

pub use index::WorkloadIndex;
use index::{DaemonSets, Deployments, Kind, StatefulSets, Workload};

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
        .is_some_and(|v| opts_in_value(v, secret))
}

/// Whether the value of the restart annotation names `secret`.
pub fn opts_in_value(value: &str, secret: &str) -> bool {
    value.split(',').any(|s| s.trim() == secret)
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
/// (see the module docs for the rule). The opted-in workloads come from
/// `index` (watched, [`index`]); only while it does not know them (not
/// started, or not listed yet) are they listed here. Best effort: a failure
/// is recorded in the report and the other workloads are still handled; a
/// workload deleted meanwhile (404) is skipped silently. The controller
/// needs `list`, `watch` and `patch` on `apps` `deployments`,
/// `statefulsets`, `daemonsets`.
pub async fn restart_on_change(
    client: &Client,
    index: &WorkloadIndex,
    change: &Change<'_>,
) -> Report {
    let mut report = Report::default();
    // The three kinds' first lists are waited for at once.
    let (ns, secret) = (change.namespace, change.secret);
    let (deployments, statefulsets, daemonsets) = futures::join!(
        index.opted_in(Deployments::KIND, ns, secret),
        index.opted_in(StatefulSets::KIND, ns, secret),
        index.opted_in(DaemonSets::KIND, ns, secret),
    );
    handle_kind::<Deployments>(client, index, change, deployments, &mut report).await;
    handle_kind::<StatefulSets>(client, index, change, statefulsets, &mut report).await;
    handle_kind::<DaemonSets>(client, index, change, daemonsets, &mut report).await;
    report
}

const GRANT: &str =
    "grant the controller list, watch and patch on apps deployments, statefulsets and daemonsets";

fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 403 => format!("forbidden ({}); {GRANT}", s.message),
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

/// Handles the workloads of kind `K`: the opted-in ones `known` from the
/// index, or (`None`) those a list finds.
async fn handle_kind<K: Kind>(
    client: &Client,
    index: &WorkloadIndex,
    change: &Change<'_>,
    known: Option<Vec<(String, Option<String>)>>,
    report: &mut Report,
) {
    let api: Api<Workload<K>> = Api::namespaced(client.clone(), change.namespace);
    if let Some(opted_in) = known {
        for (name, hash) in opted_in {
            consider(&api, index, change, &name, hash.as_deref(), report).await;
        }
        return;
    }
    let key = hash_annotation_key(change.secret);
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = match api.list(&params).await {
            Ok(p) => p,
            // The kind is not served at all: nothing to restart.
            Err(kube::Error::Api(s)) if s.code == 404 => return,
            Err(e) => {
                report.errors.push(format!(
                    "listing {}s in namespace {}: {}",
                    K::KIND,
                    change.namespace,
                    api_error(&e)
                ));
                return;
            }
        };
        for w in &page.items {
            if !w.opt_in().is_some_and(|o| opts_in_value(o, change.secret)) {
                continue;
            }
            let hash = w.template_hashes().get(&key).map(String::as_str);
            consider(&api, index, change, &w.name_any(), hash, report).await;
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return,
        }
    }
}

/// Patches opted-in workload `name` (its template carrying `hash` for the
/// Secret) when the rule says so.
async fn consider<K: Kind>(
    api: &Api<Workload<K>>,
    index: &WorkloadIndex,
    change: &Change<'_>,
    name: &str,
    hash: Option<&str>,
    report: &mut Report,
) {
    let shown = format!("{}/{name}", K::KIND);
    match hash {
        Some(h) if h == change.data_hash => {
            report.up_to_date.push(shown);
            return;
        }
        None if !change.data_changed => {
            report.not_tracked.push(shown);
            return;
        }
        _ => {}
    }
    let key = hash_annotation_key(change.secret);
    let patch = json!({
        "spec": {"template": {"metadata": {"annotations": {key.as_str(): change.data_hash}}}}
    });
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    match api.patch(name, &pp, &Patch::Merge(&patch)).await {
        Ok(after) => {
            index.patched(&after);
            tracing::info!(
                workload = %shown,
                namespace = change.namespace,
                secret = change.secret,
                data_hash = crate::hash::short(change.data_hash),
                "restarting workload: its Secret changed"
            );
            report.restarted.push(shown);
        }
        // Deleted since it was seen: nothing to restart.
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => report.errors.push(format!(
            "restarting {shown} in namespace {}: {}",
            change.namespace,
            api_error(&e)
        )),
    }
}

#[cfg(test)]
mod tests;
