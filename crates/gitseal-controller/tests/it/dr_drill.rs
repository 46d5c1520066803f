//! Disaster-recovery drill (issue 16 §2): the backup and restore blocks of
//! docs/operations.md ("Back up and restore the keys"), run as written with
//! a real `kubectl` and `age` against the fake API served over HTTP.
//!
//! Cluster A: a controller makes its keys, SealedSecrets (one value also
//! sealed to an offline disaster-recovery recipient) get their Secrets; the
//! documented backup runs; the controller's namespace is destroyed; the
//! documented restore runs; a fresh controller starts and finds every
//! Secret and status as they were (no write, no new key). Cluster B: the
//! same backup restored into an empty API serves the same SealedSecrets
//! with the same Secrets. And the disaster-recovery identity opens its
//! value offline, without any cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gitseal_crypto::{Binding, Envelope, Identity, Recipient, Scope};
use serde_json::Value;

use crate::common::*;
use crate::fake_api::FakeApi;

/// The `sh` blocks of the section "Back up and restore the keys" of
/// docs/operations.md, in order.
fn documented_blocks() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Back up and restore the keys"))
        .unwrap_or_else(|| panic!("no backup section in docs/operations.md"));
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .map(str::to_string)
        .collect()
}

/// A program the drill needs: `$VAR` when set, else on the PATH. Under CI
/// its absence fails the test (scripts/gitops-tools.sh installs both).
fn tool(var: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var).map(PathBuf::from).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required in CI (scripts/gitops-tools.sh installs it)"
        );
        crate::interpose::report(&format!("dr_drill: SKIPPED, no {name} found (set {var})"));
    }
    found
}

/// Runs `script` with bash in `dir`, with a PATH where `kubectl` and `age`
/// are the given programs and KUBECONFIG pointing at `kubeconfig`.
async fn run_block(
    script: &str,
    dir: &Path,
    kubeconfig: &Path,
    bins: &Path,
    env: &[(&str, &str)],
) -> (bool, String) {
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("running bash: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A directory whose `kubectl` and `age`/`age-keygen` are the found ones.
fn bin_dir(dir: &Path, kubectl: &Path, age: &Path) -> PathBuf {
    let bins = dir.join("bin");
    std::fs::create_dir_all(&bins).unwrap_or_else(|e| panic!("{e}"));
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, bins.join(name))
            .unwrap_or_else(|e| panic!("linking {name}: {e}"));
    };
    // The fake API serves no OpenAPI documents, which kubectl's client
    // side validation of `create` and `apply` downloads first (a real API server also
    // validates on its side): only that is turned off, every argument of
    // the documented command is passed as written.
    let wrapper = format!(
        "#!/bin/sh\ncase \"$1\" in create|apply) exec '{}' \"$@\" --validate=false;; esac\nexec '{}' \"$@\"\n",
        kubectl.display(),
        kubectl.display()
    );
    let path = bins.join("kubectl");
    std::fs::write(&path, wrapper).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    link(age, "age");
    if let Some(keygen) = age.parent().map(|d| d.join("age-keygen")) {
        if keygen.is_file() {
            link(&keygen, "age-keygen");
        }
    }
    bins
}

/// One object of the drill: namespace, name, items.
type Object = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static [u8])],
);

/// The objects of the drill.
const OBJECTS: [Object; 3] = [
    (
        "shop",
        "db",
        &[("password", b"s3cret-db"), ("user", b"shop")],
    ), // gitseal:allow made-up test values
    ("shop", "api", &[("token", b"tok-123")]), // gitseal:allow made-up test value
    ("billing", "db", &[("password", b"billing-pw")]), // gitseal:allow made-up test value
];

/// For each object: its Secret's uid and resourceVersion (unchanged: not
/// written since) and its status's data hash. No value is kept, so a
/// failed comparison prints none.
fn snapshot(fake: &FakeApi) -> BTreeMap<String, (Value, Value, Value)> {
    OBJECTS
        .iter()
        .map(|(ns, name, _)| {
            let secret = fake.get("secrets", ns, name).unwrap_or_default();
            let status = fake
                .get("sealedsecrets", ns, name)
                .map(|o| o["status"]["dataHash"].clone())
                .unwrap_or_default();
            (
                format!("{ns}/{name}"),
                (
                    secret["metadata"]["uid"].clone(),
                    secret["metadata"]["resourceVersion"].clone(),
                    status,
                ),
            )
        })
        .collect()
}

/// Names of the key Secrets in the controller's namespace.
fn key_secrets(fake: &FakeApi) -> Vec<String> {
    let mut names: Vec<String> = fake
        .list("secrets")
        .into_iter()
        .filter(|s| s["metadata"]["namespace"] == NS)
        .filter(|s| s["metadata"]["labels"]["gitseal.dev/sealing-key"] == "true")
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

async fn reconciled(running: &Running, n: f64) {
    wait_for("every object reconciled", 20, || {
        (crate::process::metric_sum(
            &running.handles.metrics.render(),
            "gitseal_reconciles_total",
        ) >= n)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disaster_recovery_drill_runs_the_documented_backup_and_restore() {
    let (Some(kubectl), Some(age)) = (tool("KUBECTL_BIN", "kubectl"), tool("AGE_BIN", "age"))
    else {
        return;
    };
    let blocks = documented_blocks();
    assert_eq!(blocks.len(), 2, "backup and restore blocks: {blocks:?}");
    let (backup, restore) = (&blocks[0], &blocks[1]);
    assert!(restore.contains("kubectl create -f -"), "{restore}");

    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = work.path();
    let bins = bin_dir(dir, &kubectl, &age);
    // The blocks run from a checkout of the repository.
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    std::os::unix::fs::symlink(&deploy, dir.join("deploy")).unwrap_or_else(|e| panic!("{e}"));
    // The offline admin who keeps the backup, and an offline
    // disaster-recovery identity values are also sealed to.
    let admin = Identity::generate();
    std::fs::write(
        dir.join("admin.key"),
        secrecy::ExposeSecret::expose_secret(&admin.to_identity_file(None)).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let admin_recipient = admin.recipient().to_string();
    let dr = Identity::generate();

    // Cluster A: a controller that makes its own keys.
    let fake = FakeApi::new();
    let addr = crate::process::serve_http(fake.clone()).await;
    let kubeconfig = crate::process::write_kubeconfig(dir, addr);
    let running = start_with(&fake, config()).await;
    let active: Recipient = wait_for("a key made", 10, || {
        let current = running.handles.keys.current();
        current.active().map(|k| k.identity.recipient().clone())
    })
    .await;
    let to = [active, dr.recipient().clone()];
    let mut sealed = Vec::new();
    for (ns, name, items) in OBJECTS {
        let obj = sealed_secret(ns, name, items, &to);
        fake.upsert("sealedsecrets", ns, obj.clone());
        sealed.push((ns, obj));
    }
    for (ns, name, _) in OBJECTS {
        wait_ready(&fake, ns, name, Some("Synced")).await;
    }
    // Settled: nothing more to write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = snapshot(&fake);
    let keys_before = key_secrets(&fake);
    assert_eq!(keys_before.len(), 1);

    // Back up as documented.
    let (ok, out) = run_block(
        backup,
        dir,
        &kubeconfig,
        &bins,
        &[("ADMIN_RECIPIENT", admin_recipient.as_str())],
    )
    .await;
    assert!(ok, "backup failed:\n{out}");
    let encrypted = std::fs::read(dir.join("gitseal-keys.yaml.age")).unwrap_or_default();
    assert!(
        encrypted.starts_with(b"age-encryption.org/v1\n"),
        "the backup is not an age file"
    );
    assert!(
        !dir.join("gitseal-keys.yaml").exists(),
        "plaintext backup left on disk"
    );

    // Disaster: the controller and its namespace are gone.
    running.shutdown().await;
    for plural in ["secrets", "configmaps", "leases", "events"] {
        for obj in fake.list(plural) {
            if obj["metadata"]["namespace"] == NS {
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                fake.remove(plural, NS, name);
            }
        }
    }
    assert!(key_secrets(&fake).is_empty());
    assert!(fake.get("secrets", NS, "gitseal-hash-key").is_none());

    // Restore as documented, then a fresh controller.
    let (ok, out) = run_block(restore, dir, &kubeconfig, &bins, &[]).await;
    assert!(ok, "restore failed:\n{out}");
    assert_eq!(key_secrets(&fake), keys_before);
    for name in keys_before
        .iter()
        .map(String::as_str)
        .chain(["gitseal-hash-key"])
    {
        let restored = fake.get("secrets", NS, name).unwrap_or_default();
        assert!(restored.is_object(), "{name} was not restored");
        assert!(
            restored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .is_null(),
            "the restore stored a copy of {name}, private key included, in an annotation"
        );
    }
    fake.record_requests();
    let running = start_with(&fake, config()).await;
    reconciled(&running, OBJECTS.len() as f64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        snapshot(&fake),
        before,
        "a Secret or status changed after the restore"
    );
    let writes: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|l| {
            !l.starts_with("GET ")
                && !l.contains("/configmaps")
                && !l.contains("/leases")
                && !l.contains("/events")
        })
        .collect();
    assert!(writes.is_empty(), "writes after the restore: {writes:?}");
    assert_eq!(key_secrets(&fake), keys_before, "a new key was made");
    running.shutdown().await;

    // Cluster B: an empty API, the same backup, the same SealedSecrets.
    let fake_b = FakeApi::new();
    let addr_b = crate::process::serve_http(fake_b.clone()).await;
    let dir_b = dir.join("cluster-b");
    std::fs::create_dir_all(&dir_b).unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig_b = crate::process::write_kubeconfig(&dir_b, addr_b);
    let (ok, out) = run_block(restore, dir, &kubeconfig_b, &bins, &[]).await;
    assert!(ok, "restore into cluster B failed:\n{out}");
    for (ns, obj) in &sealed {
        fake_b.upsert("sealedsecrets", ns, obj.clone());
    }
    let running_b = start_with(&fake_b, config()).await;
    for (ns, name, items) in OBJECTS {
        wait_ready(&fake_b, ns, name, Some("Synced")).await;
        let a = fake.get("secrets", ns, name).unwrap_or_default();
        let b = fake_b.get("secrets", ns, name).unwrap_or_default();
        let want: BTreeMap<String, Vec<u8>> = items
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.to_vec()))
            .collect();
        assert!(secret_data(&a) == want, "{ns}/{name} in cluster A differs");
        assert!(
            secret_data(&b) == want,
            "{ns}/{name} in cluster B differs from cluster A"
        );
        let hash = |f: &FakeApi| {
            f.get("sealedsecrets", ns, name)
                .map(|o| o["status"]["dataHash"].clone())
        };
        assert_eq!(hash(&fake_b), hash(&fake), "{ns}/{name} dataHash");
    }
    assert_eq!(key_secrets(&fake_b), keys_before);
    running_b.shutdown().await;

    // Offline: the disaster-recovery identity opens its values alone.
    for (ns, obj) in &sealed {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let (_, _, items) = OBJECTS
            .iter()
            .find(|(n, o, _)| n == ns && *o == name)
            .copied()
            .unwrap_or_else(|| unreachable!());
        for (item, want) in items {
            let text = obj["spec"]["encryptedData"][*item]
                .as_str()
                .unwrap_or_default();
            let envelope: Envelope = text
                .parse()
                .unwrap_or_else(|e| panic!("{ns}/{name}/{item}: {e}"));
            let opened = envelope
                .open(
                    std::slice::from_ref(&dr),
                    &Binding::new(Scope::Strict, ns, name, item),
                )
                .unwrap_or_else(|e| panic!("{ns}/{name}/{item} with the DR identity: {e}"));
            use secrecy::ExposeSecret;
            assert!(
                opened.expose_secret() == *want,
                "{ns}/{name}/{item} opened to another value"
            );
        }
    }
}
