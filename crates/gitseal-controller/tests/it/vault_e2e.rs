//! End to end with Vault: the real kube-runtime Controller on the fake API,
//! resolving `spec.vaultData` against a real OpenBao dev server (started on a
//! free port, stopped by PID). Without `bao` (`$BAO_BIN` or `PATH`;
//! `scripts/openbao.sh` installs it) the test returns early with a note,
//! except under `CI`, where it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gitseal_controller::vault::{VaultSettings, VaultSource};
use gitseal_crypto::Identity;
use gitseal_vault::{AuthMethod, PathPolicy, SecretString, TokenSource, VaultConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::fake_api::FakeApi;

const ROOT_TOKEN: &str = "gitseal-it-root-token-71c2";

struct Bao {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    home: tempfile::TempDir,
}

fn find_bao() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BAO_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    })
}

impl Bao {
    async fn start() -> Option<Bao> {
        let Some(bin) = find_bao() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "the OpenBao `bao` binary was not found (set BAO_BIN or run scripts/openbao.sh): \
                 Vault tests must run in CI"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "note: `bao` not found (run scripts/openbao.sh); skipping this Vault test"
                );
            }
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("free port: {e}"));
        let mut bao = Bao {
            bin,
            child: None,
            port,
            home: tempfile::tempdir().unwrap_or_else(|e| panic!("temp HOME: {e}")),
        };
        bao.launch().await;
        Some(bao)
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        let log = std::fs::File::create(self.home.path().join("bao.log"))
            .unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log fd: {e}"));
        let child = Command::new(&self.bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{}", self.port),
            ])
            .env("HOME", self.home.path())
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn bao server -dev: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = raw(self.port, "GET", "/v1/sys/health", None).await {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("bao server exited ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "bao server not healthy after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn put_kv2(&self, path: &str, data: Value) {
        // A fresh dev server's `secret/` mount may still be upgrading to KV
        // v2 and answer 400 for a moment: retry that only.
        let deadline = Instant::now() + Duration::from_secs(15);
        let body = json!({ "data": data });
        let uri = format!("/v1/secret/data/{path}");
        loop {
            let (status, v) = raw(self.port, "POST", &uri, Some(&body))
                .await
                .unwrap_or_else(|e| panic!("POST {uri}: {e}"));
            if (200..300).contains(&status) {
                return;
            }
            let upgrading = v.to_string().contains("Upgrading from non-versioned");
            assert!(
                upgrading && Instant::now() < deadline,
                "POST {uri} -> {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP/1.0 request with the root token; status and JSON body.
async fn raw(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let (status, text) = http(
        port,
        &format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Vault-Token: {ROOT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            body.map(Value::to_string).unwrap_or_default().len(),
            body.map(Value::to_string).unwrap_or_default()
        ),
    )
    .await?;
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    };
    Ok((status, v))
}

async fn http(port: u16, request: &str) -> Result<(u16, String), String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, body.to_string()))
}

fn ready_of(fake: &FakeApi, name: &str) -> Option<(String, String, String)> {
    fake.get("sealedsecrets", "app", name)
        .and_then(|o| ready(&o))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_items_sync_refresh_and_survive_vault_outages() {
    let Some(mut bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("app/db", json!({"password": "vault-pw-one"}))
        .await;

    let mut vault_config = VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(TokenSource::Value(SecretString::from(ROOT_TOKEN))),
    );
    // No shared cache: every refresh reads Vault.
    vault_config.shared_cache_ttl = Duration::ZERO;
    let source = VaultSource::connect(VaultSettings {
        config: vault_config,
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
    bao.put_kv2("app/db", json!({"password": "vault-pw-two"}))
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
    bao.launch().await;
    bao.put_kv2("app/db", json!({"password": "vault-pw-three"}))
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
