//! A real OpenBao dev server per test, and a tiny raw HTTP client to set it up.
//!
//! `bao` comes from `$BAO_BIN` or `PATH` (`scripts/openbao.sh` installs it).
//! Without it the tests return early with a note, except under `CI`, where
//! they fail: CI must run them for real.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const ROOT_TOKEN: &str = "gitseal-test-root-token-7c1e";

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

pub struct Bao {
    bin: PathBuf,
    child: Option<Child>,
    pub port: u16,
    home: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Bao {
    /// Starts a dev server, or returns `None` (with a note) when `bao` is not
    /// installed and `CI` is not set.
    pub async fn start() -> Option<Bao> {
        let Some(bin) = find_bao() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "the OpenBao `bao` binary was not found (set BAO_BIN or put `bao` on PATH; \
                     scripts/openbao.sh installs it): Vault integration tests must run in CI"
                );
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "note: `bao` not found (run scripts/openbao.sh); skipping this Vault test"
                );
            }
            return None;
        };
        let mut bao = Bao {
            bin,
            child: None,
            port: free_port(),
            home: tempfile::tempdir().expect("temp HOME"),
        };
        bao.launch().await;
        Some(bao)
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        let log = std::fs::File::create(self.home.path().join("bao.log")).expect("log file");
        let child = Command::new(&self.bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{}", self.port),
            ])
            .env("HOME", self.home.path())
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn bao server -dev");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = raw(self.port, "GET", "/v1/sys/health", None, None).await {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("bao server exited ({status}): {}", self.log_tail());
                }
            }
            if Instant::now() > deadline {
                panic!("bao server not healthy after 30 s: {}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.home.path().join("bao.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s.chars()
            .rev()
            .take(2000)
            .collect::<String>()
            .chars()
            .rev()
            .collect()
    }

    /// Kills the server (by PID) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a fresh dev server on the same port (dev mode keeps no data).
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    /// A root-token API call; panics unless the status is 2xx.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.api_status(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} -> HTTP {status}: {v}"
        );
        v
    }

    pub async fn api_status(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        raw(
            self.port,
            method,
            &format!("/v1/{path}"),
            Some(ROOT_TOKEN),
            body.as_ref(),
        )
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub async fn put_kv2(&self, mount: &str, path: &str, data: Value) -> u64 {
        let v = self
            .api(
                "POST",
                &format!("{mount}/data/{path}"),
                Some(json!({ "data": data })),
            )
            .await;
        v["data"]["version"].as_u64().expect("version in reply")
    }

    pub async fn enable_kv1(&self, mount: &str) {
        self.api(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "options": {"version": "1"}})),
        )
        .await;
    }

    /// Creates an AppRole `name` with `policy` (HCL) and token TTLs, with
    /// fixed role/secret ids (so a restarted server can be re-seeded with
    /// the same credentials). Writes the ids to files; returns their paths.
    pub async fn approle(
        &self,
        name: &str,
        policy: &str,
        token_ttl: &str,
        token_max_ttl: &str,
        dir: &std::path::Path,
    ) -> (PathBuf, PathBuf) {
        let (status, _) = self.api_status("GET", "sys/auth/approle", None).await;
        if status != 200 {
            let (s, v) = self
                .api_status("POST", "sys/auth/approle", Some(json!({"type": "approle"})))
                .await;
            assert!(
                s < 300 || v.to_string().contains("path is already in use"),
                "{v}"
            );
        }
        self.api(
            "POST",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": policy })),
        )
        .await;
        self.api(
            "POST",
            &format!("auth/approle/role/{name}"),
            Some(json!({
                "token_policies": [name],
                "token_ttl": token_ttl,
                "token_max_ttl": token_max_ttl,
            })),
        )
        .await;
        let role_id = format!("role-{name}-0001");
        let secret_id = format!("secret-{name}-b7f2a9c4e1");
        self.api(
            "POST",
            &format!("auth/approle/role/{name}/role-id"),
            Some(json!({ "role_id": role_id })),
        )
        .await;
        let (status, v) = self
            .api_status(
                "POST",
                &format!("auth/approle/role/{name}/custom-secret-id"),
                Some(json!({ "secret_id": secret_id })),
            )
            .await;
        assert!(
            status < 300 || v.to_string().contains("already registered"),
            "custom-secret-id -> HTTP {status}: {v}"
        );
        let rp = dir.join(format!("{name}.role-id"));
        let sp = dir.join(format!("{name}.secret-id"));
        std::fs::write(&rp, format!("{role_id}\n")).expect("write role id");
        std::fs::write(&sp, format!("{secret_id}\n")).expect("write secret id");
        (rp, sp)
    }

    /// Revokes every token obtained through AppRole (as if an operator
    /// revoked the controller's token).
    pub async fn revoke_approle_tokens(&self) {
        self.api("PUT", "sys/leases/revoke-prefix/auth/approle", None)
            .await;
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// HTTP/1.0 request to 127.0.0.1:port; returns status and JSON body (Null
/// when empty).
pub async fn raw(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("X-Vault-Token: {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let v = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?
    };
    Ok((status, v))
}
