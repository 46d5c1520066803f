//! The OpenBao harness (feature `vault`): a real OpenBao dev server per
//! test, and a tiny raw HTTP client to seed it.
//!
//! Every gitseal test suite that talks to Vault (this crate's, the
//! controller's, the CLI's) starts its servers through [`Bao`], so they all
//! find the binary, pick ports, wait for health and seed KV v1/v2 data,
//! policies and AppRoles the same way.
//!
//! `bao` comes from `$BAO_BIN` or `PATH` (`scripts/openbao.sh` installs it).
//! Without it [`Bao::start`] returns `None` after a note on stderr, so the
//! test returns early, except when the `CI` variable is set: then it panics,
//! because CI must run the Vault tests for real.
//!
//! This is test code: it panics on any failure, with a message saying what
//! failed.
#![allow(clippy::print_stderr)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use gitseal_vault::{AuthMethod, TokenSource, VaultConfig};

/// The dev server's root token (a test value, never a real credential).
pub const ROOT_TOKEN: &str = "gitseal-test-root-token-7c1e";

/// An ACL policy that reads every secret of the dev server's KV v2 mount
/// `secret/`.
pub const READ_ALL_SECRETS: &str = r#"path "secret/data/*" { capabilities = ["read"] }"#;

/// The `bao` binary: `$BAO_BIN` if set and not empty, else `bao` on `PATH`.
pub fn find_bao() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BAO_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// How a launch ended.
enum Launch {
    /// Healthy.
    Up,
    /// Another process holds the port.
    PortTaken,
}

/// One `bao server -dev` on a free loopback port, with [`ROOT_TOKEN`] as
/// its root token and a temporary `HOME`; killed (by PID) when dropped.
pub struct Bao {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    home: tempfile::TempDir,
    audited: bool,
}

/// One request the server handled, from its audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditedRequest {
    /// `read`, `update`, `list`, ...
    pub operation: String,
    /// The path below `/v1/`, e.g. `secret/data/team/db`.
    pub path: String,
    /// The policies of the token that made it (empty when unauthenticated).
    pub policies: Vec<String>,
}

impl Bao {
    /// Starts a dev server and waits until it is healthy, or returns `None`
    /// (with a note) when `bao` is not installed and `CI` is not set.
    ///
    /// # Panics
    /// When `bao` is missing and `CI` is set, or the server does not start.
    pub async fn start() -> Option<Bao> {
        Self::start_with(false).await
    }

    /// [`start`](Bao::start) with a file audit device (configured
    /// declaratively: OpenBao refuses to enable one through the API), so
    /// [`audited_requests`](Bao::audited_requests) shows every request the
    /// server handled.
    pub async fn start_audited() -> Option<Bao> {
        Self::start_with(true).await
    }

    async fn start_with(audited: bool) -> Option<Bao> {
        let Some(bin) = find_bao() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "the OpenBao `bao` binary was not found (set BAO_BIN or put `bao` on PATH; \
                     scripts/openbao.sh installs it): Vault integration tests must run in CI"
                );
            }
            eprintln!("note: `bao` not found (run scripts/openbao.sh); skipping this Vault test");
            return None;
        };
        let mut bao = Bao {
            bin,
            child: None,
            port: free_port(),
            home: tempfile::tempdir().expect("temp HOME"),
            audited,
        };
        if audited {
            let config = format!(
                "audit \"file\" \"gitseal-test\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                bao.audit_log_path().display().to_string()
            );
            std::fs::write(bao.home.path().join("audit.hcl"), config).expect("audit config");
        }
        // Another test may take the free port between our probe and the
        // server's bind: then try another port.
        for _ in 0..5 {
            match bao.launch().await {
                Launch::Up => return Some(bao),
                Launch::PortTaken => bao.port = free_port(),
            }
        }
        panic!("bao server: no free port after 5 tries");
    }

    /// The server's address, `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client configuration with the root token and no shared cache (so a
    /// client's counters show what its sessions did alone).
    pub fn root_config(&self) -> VaultConfig {
        let mut config = VaultConfig::new(
            self.addr(),
            AuthMethod::Token(TokenSource::Value(SecretString::from(ROOT_TOKEN))),
        );
        config.shared_cache_ttl = Duration::ZERO;
        config
    }

    fn audit_log_path(&self) -> PathBuf {
        self.home.path().join("audit.log")
    }

    /// Every request the server handled so far (of a server started with
    /// [`start_audited`](Bao::start_audited); empty otherwise), in order.
    ///
    /// # Panics
    /// When the audit log holds a line that is not JSON.
    pub fn audited_requests(&self) -> Vec<AuditedRequest> {
        let text = std::fs::read_to_string(self.audit_log_path()).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("audit log line is JSON"))
            .filter(|v| v["type"] == "request")
            .map(|v| AuditedRequest {
                operation: v["request"]["operation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                path: v["request"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                policies: v["auth"]["policies"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    async fn launch(&mut self) -> Launch {
        let log = std::fs::File::create(self.home.path().join("bao.log")).expect("log file");
        let mut args = vec![
            "server".to_string(),
            "-dev".to_string(),
            format!("-dev-root-token-id={ROOT_TOKEN}"),
            format!("-dev-listen-address=127.0.0.1:{}", self.port),
        ];
        if self.audited {
            args.push(format!(
                "-config={}",
                self.home.path().join("audit.hcl").display()
            ));
        }
        let child = Command::new(&self.bin)
            .args(&args)
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
            // Healthy, and it is our server that answers (not another
            // test's on the same port).
            if let Ok((200, _)) = raw(self.port, "GET", "/v1/sys/health", None, None).await {
                if self.log().contains("server started!") {
                    return Launch::Up;
                }
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    if self.log().contains("address already in use") {
                        return Launch::PortTaken;
                    }
                    panic!("bao server exited ({status}): {}", self.log_tail());
                }
            }
            if Instant::now() > deadline {
                panic!("bao server not healthy after 30 s: {}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's output so far.
    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.home.path().join("bao.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The last 2,000 characters of the server's output, for messages.
    fn log_tail(&self) -> String {
        let s = self.log();
        let skip = s.chars().count().saturating_sub(2000);
        s.chars().skip(skip).collect()
    }

    /// Kills the server (by PID) and waits for it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a fresh dev server on the same port (stopping the running one,
    /// if any); dev mode keeps no data, so seed it again.
    ///
    /// # Panics
    /// When the port has been taken meanwhile (clients know this address).
    pub async fn restart(&mut self) {
        self.stop();
        if let Launch::PortTaken = self.launch().await {
            panic!("bao server: port {} was taken while it was down", self.port);
        }
    }

    /// Seals the server: every read answers 503 and `sys/health` says
    /// sealed, as in an outage, but the data and tokens stay.
    pub async fn seal(&self) {
        self.api("PUT", "sys/seal", None).await;
    }

    /// Unseals a [sealed](Bao::seal) server with the dev server's unseal
    /// key (from its output).
    ///
    /// # Panics
    /// When the key is not in the output or the server stays sealed.
    pub async fn unseal(&self) {
        let log = self.log();
        let key = log
            .lines()
            .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
            .expect("the dev server prints its unseal key")
            .trim()
            .to_string();
        let v = self
            .api("PUT", "sys/unseal", Some(json!({ "key": key })))
            .await;
        assert_eq!(v["sealed"], false, "still sealed: {v}");
    }

    /// A root-token API call to `/v1/{path}`.
    ///
    /// # Panics
    /// Unless the reply is 2xx.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.api_status(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} -> HTTP {status}: {v}"
        );
        v
    }

    /// A root-token API call to `/v1/{path}`: the status and the JSON body.
    ///
    /// # Panics
    /// When the server cannot be reached or answers with something that is
    /// not HTTP with a JSON (or empty) body.
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

    /// Writes `data` as a new version of the KV v2 secret `mount/path`;
    /// returns the version number.
    ///
    /// Right after start a dev server's `secret/` mount may still be
    /// upgrading to KV v2 and answer 400 for a moment: that (only) is
    /// retried for up to 15 s.
    pub async fn put_kv2(&self, mount: &str, path: &str, data: Value) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(15);
        let api_path = format!("{mount}/data/{path}");
        loop {
            let (status, v) = self
                .api_status("POST", &api_path, Some(json!({ "data": data })))
                .await;
            if (200..300).contains(&status) {
                return v["data"]["version"].as_u64().expect("version in reply");
            }
            let upgrading = v.to_string().contains("Upgrading from non-versioned");
            assert!(
                upgrading && Instant::now() < deadline,
                "POST {api_path} -> HTTP {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Mounts a KV v1 engine at `mount`.
    pub async fn enable_kv1(&self, mount: &str) {
        self.api(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "options": {"version": "1"}})),
        )
        .await;
    }

    /// Mounts a KV v2 engine at `mount`.
    pub async fn enable_kv2(&self, mount: &str) {
        self.api(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await;
    }

    /// Creates an AppRole `name` with `policy` (HCL) and token TTLs, with
    /// fixed role/secret ids (so a restarted server can be re-seeded with
    /// the same credentials). Writes the ids to files in `dir`; returns
    /// their paths (role id, secret id).
    pub async fn approle(
        &self,
        name: &str,
        policy: &str,
        token_ttl: &str,
        token_max_ttl: &str,
        dir: &Path,
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

    /// [`approle`](Bao::approle) `name` with [`READ_ALL_SECRETS`] and
    /// tokens valid 1 h (at most 4 h).
    pub async fn approle_reading_all(&self, name: &str, dir: &Path) -> (PathBuf, PathBuf) {
        self.approle(name, READ_ALL_SECRETS, "1h", "4h", dir).await
    }

    /// Revokes every token obtained through AppRole (as if an operator
    /// revoked the client's token).
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

/// A `spec.vaultData` entry as written in a manifest, unvalidated (so tests
/// can also build invalid ones).
pub fn vault_reference(
    mount: &str,
    path: &str,
    field: &str,
    version: Option<u64>,
    kv: Option<gitseal_manifest::types::KvVersion>,
) -> gitseal_manifest::types::VaultReference {
    gitseal_manifest::types::VaultReference {
        mount: mount.into(),
        path: path.into(),
        field: field.into(),
        version,
        kv,
    }
}

/// Sends one raw HTTP/1.0 `request` to 127.0.0.1:`port` and reads the reply
/// to the end: the status and the body as text.
pub async fn http(port: u16, request: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(request.as_bytes())
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
    Ok((status, body.to_string()))
}

/// An HTTP/1.0 JSON request to 127.0.0.1:`port` (with `X-Vault-Token` when
/// `token` is given): the status and the JSON body (`Null` when empty).
pub async fn raw(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("X-Vault-Token: {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let (status, text) = http(port, &req).await?;
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?
    };
    Ok((status, v))
}
