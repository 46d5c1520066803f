//! The status as GitOps tools read it (kstatus: `observedGeneration`,
//! `Ready`, `Reconciling`, `Stalled`), from the pure `next_status` up to a
//! real `kubectl wait` against the fake API served over HTTP; and the
//! small pure pieces behind the convergence fixes (the Secret tracker, the
//! key loader's trust rule, the cache stripping, metrics at zero).

use std::collections::BTreeMap;

use gitseal_controller::reconcile::{next_status, Outcome};
use gitseal_controller::triggers::SecretTracker;
use gitseal_controller::Reason;
use gitseal_manifest::types::{Condition, SealedSecretStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::runtime::watcher::Event;
use serde_json::json;

fn synced(hash: &str, written: bool) -> Outcome {
    Outcome::Synced {
        key_ids: vec!["k1".into()],
        data_hash: hash.into(),
        written,
        message: "Secret app/db holds 1 item(s)".into(),
    }
}

fn failed(reason: Reason) -> Outcome {
    Outcome::Failed {
        reason,
        message: format!("{reason} happened"),
    }
}

fn types(s: &SealedSecretStatus) -> Vec<(String, String, String)> {
    s.conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}

fn t(ty: &str, status: &str, reason: &str) -> (String, String, String) {
    (ty.into(), status.into(), reason.into())
}

#[test]
fn next_status_follows_kstatus() {
    let empty = SealedSecretStatus::default();
    // Synced: Ready=True, no abnormal-true condition, observedGeneration set.
    let s1 = next_status(&empty, Some(3), &synced("h1", true), "T1");
    assert_eq!(types(&s1), [t("Ready", "True", "Synced")]);
    assert_eq!(s1.observed_generation, Some(3));
    assert_eq!(s1.conditions[0].observed_generation, Some(3));
    assert_eq!(s1.conditions[0].last_transition_time.as_deref(), Some("T1"));
    assert_eq!(s1.data_hash.as_deref(), Some("h1"));
    assert_eq!(s1.last_sync_time.as_deref(), Some("T1"));

    // The same outcome later: the identical status (so nothing is written).
    assert_eq!(next_status(&s1, Some(3), &synced("h1", false), "T2"), s1);

    // A failure a person must fix: Ready=False and Stalled=True; the data
    // hash, key ids and sync time still describe the Secret as it is.
    let s2 = next_status(&s1, Some(4), &failed(Reason::DecryptFailed), "T3");
    assert_eq!(
        types(&s2),
        [
            t("Ready", "False", "DecryptFailed"),
            t("Stalled", "True", "DecryptFailed")
        ]
    );
    assert_eq!(s2.observed_generation, Some(4));
    assert_eq!(s2.data_hash.as_deref(), Some("h1"));
    assert_eq!(s2.key_ids, ["k1"]);
    assert_eq!(s2.last_sync_time.as_deref(), Some("T1"));
    assert_eq!(s2.conditions[0].last_transition_time.as_deref(), Some("T3"));

    // A failure that may pass by itself: Reconciling=True, Stalled gone.
    let s3 = next_status(&s2, Some(4), &failed(Reason::VaultUnavailable), "T4");
    assert_eq!(
        types(&s3),
        [
            t("Ready", "False", "VaultUnavailable"),
            t("Reconciling", "True", "VaultUnavailable")
        ]
    );
    // Ready stayed False: its transition time is kept.
    assert_eq!(s3.conditions[0].last_transition_time.as_deref(), Some("T3"));

    // Synced again: both abnormal-true conditions are gone.
    let s4 = next_status(&s3, Some(4), &synced("h2", true), "T5");
    assert_eq!(types(&s4), [t("Ready", "True", "Synced")]);
    assert_eq!(s4.last_sync_time.as_deref(), Some("T5"));

    // Every reason is either transient or needs a person, never both.
    for reason in Reason::ALL.into_iter().filter(|r| *r != Reason::Synced) {
        let s = next_status(&empty, Some(1), &failed(reason), "T");
        let kind = if reason.is_transient() {
            "Reconciling"
        } else {
            "Stalled"
        };
        assert_eq!(types(&s)[1], t(kind, "True", reason.as_str()), "{reason}");
        assert_eq!(s.conditions.len(), 2);
    }
}

#[test]
fn conditions_of_others_are_kept() {
    let mut old = SealedSecretStatus::default();
    old.conditions.push(Condition {
        type_: "ExternalCheck".into(),
        status: "True".into(),
        reason: "Fine".into(),
        ..Condition::default()
    });
    let s = next_status(&old, Some(1), &synced("h", true), "T");
    assert_eq!(
        types(&s),
        [
            t("ExternalCheck", "True", "Fine"),
            t("Ready", "True", "Synced")
        ]
    );
}

fn secret_meta(ns: &str, name: &str, rv: &str, owned: bool, adopt: bool) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        resource_version: Some(rv.into()),
        owner_references: owned.then(|| {
            vec![OwnerReference {
                api_version: "gitseal.dev/v1alpha1".into(),
                kind: "SealedSecret".into(),
                name: name.into(),
                uid: "u".into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]
        }),
        annotations: adopt.then(|| BTreeMap::from([("gitseal.dev/adopt".into(), "true".into())])),
        ..ObjectMeta::default()
    }
}

fn names(
    refs: Vec<kube::runtime::reflector::ObjectRef<gitseal_manifest::SealedSecret>>,
) -> Vec<String> {
    let mut v: Vec<String> = refs
        .into_iter()
        .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
        .collect();
    v.sort();
    v
}

#[test]
fn tracker_triggers_owners_of_secrets_that_vanished_or_changed_across_a_relist() {
    let mut tr = SecretTracker::default();
    // First list: nothing triggered (every object is reconciled at start).
    assert!(tr.on_event(Event::Init).is_empty());
    for (name, rv) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert!(tr
            .on_event(Event::InitApply(secret_meta("app", name, rv, true, false)))
            .is_empty());
    }
    assert!(tr
        .on_event(Event::InitApply(secret_meta(
            "app", "theirs", "4", false, false
        )))
        .is_empty());
    assert!(tr.on_event(Event::InitDone).is_empty());
    assert_eq!(tr.len(), 3);

    // Live events: owned ones trigger, unrelated ones do not, adoption does.
    assert_eq!(
        names(tr.on_event(Event::Apply(secret_meta("app", "a", "5", true, false)))),
        ["app/a"]
    );
    assert!(tr
        .on_event(Event::Apply(secret_meta(
            "app", "theirs", "6", false, false
        )))
        .is_empty());
    assert_eq!(
        names(tr.on_event(Event::Apply(secret_meta("app", "theirs", "7", false, true)))),
        ["app/theirs"]
    );
    // Owner reference removed by hand: still triggers (to put it back).
    assert_eq!(
        names(tr.on_event(Event::Apply(secret_meta("app", "c", "8", false, false)))),
        ["app/c"]
    );
    assert_eq!(tr.len(), 2);

    // The watch breaks; while away "a" is deleted, "b" edited, "d" created.
    let triggered = names(
        [
            Event::Init,
            Event::InitApply(secret_meta("app", "b", "9", true, false)),
            Event::InitApply(secret_meta("app", "d", "10", true, false)),
            Event::InitApply(secret_meta("app", "theirs", "7", false, true)),
            Event::InitDone,
        ]
        .into_iter()
        .flat_map(|e| tr.on_event(e))
        .collect(),
    );
    assert_eq!(triggered, ["app/a", "app/b", "app/d", "app/theirs"]);
    assert_eq!(tr.len(), 2);

    // A relist that finds everything as it was triggers nothing.
    tr.on_event(Event::Init);
    tr.on_event(Event::InitApply(secret_meta("app", "b", "9", true, false)));
    tr.on_event(Event::InitApply(secret_meta("app", "d", "10", true, false)));
    assert!(tr.on_event(Event::InitDone).is_empty());

    // A live deletion of an owned Secret triggers its owner.
    assert_eq!(
        names(tr.on_event(Event::Delete(secret_meta("app", "d", "11", true, false)))),
        ["app/d"]
    );
}

#[test]
fn the_key_loader_never_takes_what_the_controller_writes() {
    use gitseal_controller::keys::{is_key_candidate, keys_from_secret};
    use gitseal_controller::reconcile::desired_secret;
    use gitseal_controller::sources::Resolved;

    let id = gitseal_crypto::Identity::generate();
    let created: k8s_openapi::jiff::Timestamp = "2030-01-01T00:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut key = gitseal_controller::keys::key_secret(&id, created);
    assert!(is_key_candidate(&key));
    // Created by the API server before the date it claims: the earlier wins.
    let stored: k8s_openapi::jiff::Timestamp = "2026-05-01T00:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    key.metadata.creation_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(stored));
    let loaded = keys_from_secret(&key).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded[0].created, stored);
    // A restored backup keeps its older date.
    key.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2031-01-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    ));
    assert_eq!(
        keys_from_secret(&key).unwrap_or_else(|e| panic!("{e}"))[0].created,
        created
    );

    // The same Secret owned by a SealedSecret is refused, with the reason.
    key.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "gitseal.dev/v1alpha1".into(),
        kind: "SealedSecret".into(),
        name: "planted".into(),
        uid: "u".into(),
        controller: Some(true),
        ..OwnerReference::default()
    }]);
    assert!(!is_key_candidate(&key));
    let err = keys_from_secret(&key)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("written for SealedSecret \"planted\""),
        "{err}"
    );

    // Whatever the template says, the controller's Secret is never a key
    // candidate: reserved metadata is refused, everything else is owned.
    let file = id.to_identity_file(None);
    let mut resolved = Resolved::default();
    resolved.data.insert(
        "identity.txt".into(),
        secrecy::SecretSlice::from(
            secrecy::ExposeSecret::expose_secret(&file)
                .as_bytes()
                .to_vec(),
        ),
    );
    for template in [
        json!({"metadata": {"labels": {"gitseal.dev/sealing-key": "true"}}}),
        json!({"metadata": {"annotations": {"gitseal.dev/created": "2099-01-01T00:00:00Z"}}}),
        json!({"metadata": {"labels": {"x.gitseal.dev/anything": "1"}}}),
        json!({"metadata": {"labels": {"team": "a"}}, "type": "Opaque"}),
        json!({}),
    ] {
        let obj: gitseal_manifest::SealedSecret = serde_json::from_value(json!({
            "apiVersion": "gitseal.dev/v1alpha1", "kind": "SealedSecret",
            "metadata": {"name": "k", "namespace": "gitseal-system", "uid": "u1"},
            "spec": {"encryptedData": {}, "template": template},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        match desired_secret(&obj, &resolved) {
            Ok(secret) => {
                assert!(!is_key_candidate(&secret), "{template}");
                assert!(keys_from_secret(&secret).is_err(), "{template}");
            }
            Err(gitseal_controller::Error::Refused { reason, message }) => {
                assert_eq!(reason, Reason::ReservedMetadata, "{template}");
                assert!(message.contains("gitseal.dev/"), "{message}");
            }
            Err(other) => panic!("{template}: {other}"),
        }
    }
}

#[test]
fn large_specs_are_cached_without_their_spec() {
    use gitseal_controller::reconcile::{strip_for_cache, CACHE_SPEC_LIMIT, SPEC_NOT_CACHED};
    let big = "gs1:".to_string() + &"A".repeat(CACHE_SPEC_LIMIT);
    let mut obj: gitseal_manifest::SealedSecret = serde_json::from_value(json!({
        "apiVersion": "gitseal.dev/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "app", "annotations": {"team": "a"}},
        "spec": {"encryptedData": {"a": big}, "template": {"type": "Opaque"}},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    strip_for_cache(&mut obj);
    assert!(obj.spec.encrypted_data.is_empty());
    assert!(obj.spec.template.is_none());
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("team").map(String::as_str), Some("a"));
    assert!(annotations.contains_key(SPEC_NOT_CACHED));

    assert!(gitseal_controller::reconcile::is_large(&obj));

    // A small object keeps its template and Vault items, not its sealed
    // values; a marker set by a user is replaced by the real one.
    let mut small: gitseal_manifest::SealedSecret = serde_json::from_value(json!({
        "apiVersion": "gitseal.dev/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "app",
                     "annotations": {SPEC_NOT_CACHED: "99999999"}},
        "spec": {"encryptedData": {"a": "gs1:x"}, "template": {"type": "Opaque"},
                 "vaultData": {"v": {"mount": "secret", "path": "app/db", "field": "pw"}}},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    strip_for_cache(&mut small);
    assert!(small.spec.encrypted_data.is_empty());
    assert!(small.spec.template.is_some());
    assert_eq!(small.spec.vault_data.len(), 1);
    assert!(!gitseal_controller::reconcile::is_large(&small));
    // Without sealed values nothing is marked.
    let mut vault_only: gitseal_manifest::SealedSecret = serde_json::from_value(json!({
        "apiVersion": "gitseal.dev/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "app",
                     "annotations": {SPEC_NOT_CACHED: "1"}},
        "spec": {"vaultData": {"v": {"mount": "secret", "path": "app/db", "field": "pw"}}},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    strip_for_cache(&mut vault_only);
    assert!(vault_only.metadata.annotations.is_none());
    assert_eq!(vault_only.spec.vault_data.len(), 1);
}

#[test]
fn reconcile_counters_are_exported_at_zero() {
    let text = gitseal_controller::metrics::Metrics::new().render();
    for line in [
        "gitseal_reconciles_total{result=\"success\"} 0",
        "gitseal_reconciles_total{result=\"error\"} 0",
        "gitseal_reconcile_failures_total{reason=\"DecryptFailed\"} 0",
        "gitseal_reconcile_failures_total{reason=\"ReservedMetadata\"} 0",
        "gitseal_reconcile_failures_total{reason=\"KubernetesApi\"} 0",
        "gitseal_sealing_key_changes_total{change=\"activated\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
}

/// The kubectl to test with: `$KUBECTL_BIN`, else `kubectl` on the PATH.
/// Missing: a failure under CI (scripts/gitops-tools.sh installs it), a skip
/// with a loud note elsewhere.
fn kubectl_bin() -> Option<std::path::PathBuf> {
    let named = std::env::var_os("KUBECTL_BIN").map(std::path::PathBuf::from);
    let found = named.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("kubectl"))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubectl is required in CI (scripts/gitops-tools.sh installs it)"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!("status::kubectl: SKIPPED, no kubectl found (set KUBECTL_BIN)");
        }
    }
    found
}

struct Kubectl {
    bin: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(&self.bin)
            .args(args)
            .arg("--cache-dir")
            .arg(self.home.path().join("cache"))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// `kubectl wait --for=condition=Ready sealedsecret.gitseal.dev/NAME`
/// (issue 13) with a real kubectl against the controller and the fake API
/// served over HTTP; `Stalled` for a failure that needs a person, and the
/// JSONPath form tools without `wait` use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_reads_the_status() {
    use crate::common::*;
    let Some(bin) = kubectl_bin() else { return };
    let fake = crate::fake_api::FakeApi::new();
    let id = gitseal_crypto::Identity::generate();
    add_key(&fake, &id, 60);
    let addr = crate::process::serve_http(fake.clone()).await;
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = crate::process::write_kubeconfig(home.path(), addr);
    let k = Kubectl {
        bin,
        kubeconfig,
        home,
    };
    let running = start_with(&fake, config()).await;
    let r = [id.recipient().clone()];

    // Waiting starts before the controller has written any status.
    fake.upsert(
        "sealedsecrets",
        "app",
        sealed_secret("app", "db", &[("k", b"v")], &r),
    );
    let (ok, out, err) = k
        .run(&[
            "wait",
            "--for=condition=Ready",
            "sealedsecret.gitseal.dev/db",
            "-n",
            "app",
            "--timeout=30s",
        ])
        .await;
    assert!(ok, "kubectl wait failed:\n{out}\n{err}");
    assert!(out.contains("condition met"), "{out}");
    let (ok, out, err) = k
        .run(&[
            "get", "sealedsecret.gitseal.dev/db", "-n", "app", "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.observedGeneration} {.metadata.generation}",
        ])
        .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "True 1 1");

    // A value that does not open: Ready never comes, Stalled does.
    let mut bad = sealed_secret("app", "bad", &[("k", b"v")], &r);
    bad["spec"]["encryptedData"]["k"] = json!("not-sealed");
    fake.upsert("sealedsecrets", "app", bad);
    let (ok, out, err) = k
        .run(&[
            "wait",
            "--for=condition=Stalled",
            "sealedsecret.gitseal.dev/bad",
            "-n",
            "app",
            "--timeout=30s",
        ])
        .await;
    assert!(ok, "kubectl wait for Stalled failed:\n{out}\n{err}");
    let (ok, _, err) = k
        .run(&[
            "wait",
            "--for=condition=Ready",
            "sealedsecret.gitseal.dev/bad",
            "-n",
            "app",
            "--timeout=2s",
        ])
        .await;
    assert!(!ok, "Ready was met for an object that does not open");
    assert!(err.contains("timed out"), "{err}");
    let (ok, out, err) = k
        .run(&[
            "get",
            "sealedsecret.gitseal.dev/bad",
            "-n",
            "app",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
        ])
        .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "DecryptFailed");
    running.shutdown().await;
}
