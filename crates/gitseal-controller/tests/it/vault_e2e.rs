//! End to end with Vault: the real kube-runtime Controller on the fake API,
//! resolving `spec.vaultData` against a real OpenBao dev server (started on a
//! free port, stopped by PID; `gitseal_vault::testing`). Without `bao` (`$BAO_BIN` or `PATH`;
//! `scripts/openbao.sh` installs it) the test returns early with a note,
//! except under `CI`, where it fails.

use std::sync::Arc;
use std::time::Duration;

use gitseal_controller::vault::{VaultSettings, VaultSource};
use gitseal_crypto::Identity;
use gitseal_vault::testing::{http, Bao};
use gitseal_vault::PathPolicy;
use serde_json::json;

use crate::common::*;
use crate::fake_api::FakeApi;

fn ready_of(fake: &FakeApi, name: &str) -> Option<(String, String, String)> {
    fake.get("sealedsecrets", "app", name)
        .and_then(|o| ready(&o))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_items_sync_refresh_and_survive_vault_outages() {
    let Some(mut bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "app/db", json!({"password": "vault-pw-one"}))
        .await;

    // Root token, no shared cache: every refresh reads Vault.
    let source = VaultSource::connect(VaultSettings {
        config: bao.root_config(),
        policy: PathPolicy::default(),
    })
    .await
    .unwrap_or_else(|e| panic!("vault client: {e}"));

    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let running = start_with_vault(&fake, config(), Some(Arc::new(source))).await;
    wait_for("keys loaded", 10, || {
        running.handles.keys.is_ready().then_some(())
    })
    .await;

    // 1. A sealed item and a Vault item: the Secret holds both.
    let mut obj = sealed_secret(
        "app",
        "db",
        &[("user", b"admin")],
        &[id.recipient().clone()],
    );
    obj["spec"]["vaultData"] =
        json!({"password": {"mount": "secret", "path": "app/db", "field": "password"}});
    obj["spec"]["refreshInterval"] = json!("10s");
    fake.upsert("sealedsecrets", "app", obj);
    let data = wait_for("Secret with the Vault value", 15, || {
        fake.get("secrets", "app", "db")
            .map(|s| secret_data(&s))
            .filter(|d| d.get("password").map(Vec::as_slice) == Some(&b"vault-pw-one"[..]))
    })
    .await;
    assert_eq!(data.get("user").map(Vec::as_slice), Some(&b"admin"[..]));
    wait_for("Synced", 10, || {
        ready_of(&fake, "db").filter(|r| r.0 == "True" && r.1 == "Synced")
    })
    .await;

    // The Vault counters are on /metrics.
    let port = running.handles.http_addr.map(|a| a.port()).unwrap_or(0);
    let (code, metrics) = http(port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
    assert_eq!(code, 200);
    assert!(
        metrics.contains("gitseal_vault_calls_total{kind=\"read\"} "),
        "{metrics}"
    );
    assert!(!metrics.contains("vault-pw-one"), "{metrics}");

    // 2. The value changes in Vault: the Secret follows at the next refresh.
    bao.put_kv2("secret", "app/db", json!({"password": "vault-pw-two"}))
        .await;
    wait_for("Secret refreshed from Vault", 30, || {
        fake.get("secrets", "app", "db")
            .map(|s| secret_data(&s))
            .filter(|d| d.get("password").map(Vec::as_slice) == Some(&b"vault-pw-two"[..]))
    })
    .await;

    // 3. Vault stops: the next refresh fails, the last good Secret stays
    // byte for byte, and the condition says why.
    let before = fake
        .get_bytes("secrets", "app", "db")
        .unwrap_or_else(|| panic!("no Secret"));
    bao.stop();
    let (_, _, message) = wait_for("VaultUnavailable", 30, || {
        ready_of(&fake, "db").filter(|r| r.0 == "False" && r.1 == "VaultUnavailable")
    })
    .await;
    assert!(message.contains("\"password\""), "{message}");
    assert!(
        message.contains("the existing Secret was left unchanged"),
        "{message}"
    );
    assert!(!message.contains("vault-pw"), "{message}");
    tokio::time::sleep(Duration::from_millis(500)).await; // a few backoff retries
    assert_eq!(fake.get_bytes("secrets", "app", "db"), Some(before));

    // 4. Vault is back (a dev server starts empty: seed it again): the
    // retries pick it up and the Secret gets the new value.
    bao.restart().await;
    bao.put_kv2("secret", "app/db", json!({"password": "vault-pw-three"}))
        .await;
    wait_for("Secret after Vault came back", 30, || {
        fake.get("secrets", "app", "db")
            .map(|s| secret_data(&s))
            .filter(|d| d.get("password").map(Vec::as_slice) == Some(&b"vault-pw-three"[..]))
    })
    .await;
    wait_for("Synced again", 10, || {
        ready_of(&fake, "db").filter(|r| r.0 == "True" && r.1 == "Synced")
    })
    .await;
    running.shutdown().await;
}

#[test]
fn bad_vault_or_rollout_flags_fail_before_connecting_anywhere() {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
            .arg("run")
            .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
            .args(args)
            .env("HOME", home.path())
            .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .output()
            .unwrap_or_else(|e| panic!("run the binary: {e}"))
    };
    let out = run(&[
        "--vault-addr",
        "http://127.0.0.1:1",
        "--vault-auth",
        "approle",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid Vault settings")
            && stderr.contains(
                "--vault-auth approle needs --vault-role-id-file and --vault-secret-id-file"
            ),
        "{stderr}"
    );
    assert!(!stderr.contains("Kubernetes"), "{stderr}");

    let out = run(&["--rollout-on-change", "maybe"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--rollout-on-change"), "{stderr}");
}
