//! The controller as its own process, against the fake API over real HTTP.
//!
//! The in-process fake (a tower service inside the test binary) cannot tell
//! the controller's memory and CPU apart from its own. Here the fake API is
//! served by hyper on 127.0.0.1 in the test (or bench) process, a kubeconfig
//! points at it, and the real `gitseal-controller run` binary is started
//! against it, so startup, the rustls provider, kubeconfig loading, leader
//! election, the HTTP server and SIGTERM shutdown run as in a pod, and
//! `/proc/PID` measures the controller alone. Shared by the controller's
//! smoke test (`tests/it/process_smoke.rs`: a few objects, in every test run)
//! and `benches/controller_process.rs` (10,000 objects).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitseal_crypto::{Binding, Identity, Scope, Sealer};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::fake_api::{FakeApi, FakeBody};

/// Namespace of the controller (keys, Lease, ConfigMap).
pub const CONTROLLER_NS: &str = "gitseal-system";

/// Serves `fake` over HTTP/1.1 on 127.0.0.1 (a free port) until the runtime
/// stops; returns the address.
pub async fn serve_http(fake: FakeApi) -> SocketAddr {
    serve_http_with(move |req| {
        let fake = fake.clone();
        async move { fake.handle(req).await }
    })
    .await
}

/// Serves HTTP/1.1 on 127.0.0.1 (a free port) with `handle` until the
/// runtime stops; returns the address.
pub async fn serve_http_with<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<FakeBody>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the fake API: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("fake API address: {e}"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handle(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Writes a kubeconfig for `http://addr` into `dir`; returns its path.
pub fn write_kubeconfig(dir: &Path, addr: SocketAddr) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing the kubeconfig: {e}"));
    path
}

/// The value of item `j` of object `i` (what the Secret must hold).
pub fn plaintext(i: usize, j: usize) -> String {
    format!("value-{i}-{j}-0123456789abcdef")
}

/// [`plaintext`] padded with `x` to `bytes` bytes (when longer).
pub fn plaintext_sized(i: usize, j: usize, bytes: usize) -> String {
    let mut p = plaintext(i, j);
    if bytes > p.len() {
        p.extend(std::iter::repeat_n('x', bytes - p.len()));
    }
    p
}

/// Namespace and name of object `i`.
pub fn object_place(i: usize) -> (String, String) {
    (format!("team-{:03}", i % 100), format!("app-{i:05}"))
}

/// Stores the sealing key and `n` SealedSecrets of `items` items each
/// (item `ITEM_j` of object `i` holds [`plaintext`]`(i, j)`, sealed to `id`
/// with one [`Sealer`] per object), sealing on every core. With
/// `last_applied`, each object carries the annotation `kubectl apply` (and
/// Argo CD's default client-side apply) adds: a second copy of the object.
pub fn seed(fake: &FakeApi, id: &Identity, n: usize, items: usize, last_applied: bool) {
    seed_sized(fake, id, n, items, 0, last_applied);
}

/// [`seed`] with every value padded to `item_bytes` ([`plaintext_sized`]).
pub fn seed_sized(
    fake: &FakeApi,
    id: &Identity,
    n: usize,
    items: usize,
    item_bytes: usize,
    last_applied: bool,
) {
    let mut key = serde_json::to_value(gitseal_controller::keys::key_secret(
        id,
        k8s_openapi::jiff::Timestamp::now(),
    ))
    .unwrap_or_default();
    key["apiVersion"] = json!("v1");
    key["kind"] = json!("Secret");
    fake.upsert("secrets", CONTROLLER_NS, key);
    let recipients = [id.recipient().clone()];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let recipients = &recipients;
            s.spawn(move || {
                for i in (t * chunk)..((t + 1) * chunk).min(n) {
                    let (ns, name) = object_place(i);
                    let mut sealer =
                        Sealer::new(recipients).unwrap_or_else(|e| panic!("sealer: {e}"));
                    let mut data = serde_json::Map::new();
                    for j in 0..items {
                        let item = format!("ITEM_{j}");
                        let env = sealer
                            .seal(
                                plaintext_sized(i, j, item_bytes).as_bytes(),
                                &Binding::new(Scope::Strict, &ns, &name, &item),
                            )
                            .unwrap_or_else(|e| panic!("seal: {e}"));
                        data.insert(item, json!(env.to_string()));
                    }
                    let mut obj = json!({
                        "apiVersion": "gitseal.dev/v1alpha1",
                        "kind": "SealedSecret",
                        "metadata": {"name": name, "namespace": ns},
                        "spec": {"encryptedData": data},
                    });
                    if last_applied {
                        obj["metadata"]["annotations"] = json!({
                            "kubectl.kubernetes.io/last-applied-configuration": obj.to_string(),
                        });
                    }
                    fake.upsert("sealedsecrets", &ns, obj);
                }
            });
        }
    });
}

/// How many SealedSecrets have `Ready` = True with reason `Synced`.
pub fn synced(fake: &FakeApi) -> usize {
    fake.list_bytes("sealedsecrets")
        .iter()
        .filter(|b| contains(b, b"\"reason\":\"Synced\""))
        .count()
}

/// How many Secrets the controller wrote (label `managed-by`, not a key).
pub fn written_secrets(fake: &FakeApi) -> usize {
    fake.list_bytes("secrets")
        .iter()
        .filter(|b| {
            contains(b, b"\"ownerReferences\"") && contains(b, b"\"kind\":\"SealedSecret\"")
        })
        .count()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// CPU and memory of a process, from `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu_secs: f64,
    /// Resident set now, KiB.
    pub rss_kib: u64,
    /// Peak resident set (`VmHWM`), KiB.
    pub hwm_kib: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads [`Usage`] of `pid`; `None` when the process is gone.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // USER_HZ is 100 on Linux for every architecture this runs on.
    let cpu_secs = (ticks(11)? + ticks(12)?) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some(Usage {
        cpu_secs,
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        threads: field("Threads:").unwrap_or(0),
    })
}

/// A running `gitseal-controller run` process.
pub struct ControllerProcess {
    child: Child,
    /// Its pid.
    pub pid: u32,
    /// Where its HTTP server listens.
    pub http: SocketAddr,
    /// Where its probe server listens.
    pub probes: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
    lines: Arc<Mutex<u64>>,
    /// When the process was spawned.
    pub started: Instant,
}

/// Log lines kept (the newest).
const LOG_KEEP: usize = 2000;

impl ControllerProcess {
    /// Starts the controller binary on `kubeconfig` (leader election on,
    /// HTTP and probes on free ports, identity `bench-replica` unless
    /// `extra_args` name one) and waits until it says it started.
    pub async fn start(kubeconfig: &Path, extra_args: &[&str]) -> Self {
        let started = Instant::now();
        let mut cmd = Command::new(crate::cargo_bin("gitseal-controller"));
        cmd.args([
            "run",
            "--namespace",
            CONTROLLER_NS,
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ]);
        if !extra_args.contains(&"--identity") {
            cmd.args(["--identity", "bench-replica"]);
        }
        cmd.args(extra_args)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("GITSEAL_VAULT_AUTH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,kube=warn");
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting gitseal-controller: {e}"));
        let pid = child.id();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let lines = Arc::new(Mutex::new(0u64));
        let (tx, rx) = std::sync::mpsc::channel::<(SocketAddr, SocketAddr)>();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            let lines = lines.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = started_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    if let Ok(mut n) = lines.lock() {
                        *n += 1;
                    }
                    if let Ok(mut l) = log.lock() {
                        if l.len() == LOG_KEEP {
                            l.pop_front();
                        }
                        l.push_back(line);
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let (http, probes) = loop {
            if let Ok(addrs) = rx.try_recv() {
                break addrs;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let text = log
                    .lock()
                    .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"));
                panic!(
                    "gitseal-controller exited at start ({status}):\n{}",
                    text.unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("gitseal-controller did not start within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        ControllerProcess {
            child,
            pid,
            http,
            probes,
            log,
            lines,
            started,
        }
    }

    /// CPU and memory now.
    pub fn usage(&self) -> Option<Usage> {
        usage(self.pid)
    }

    /// Log lines written so far.
    pub fn log_lines(&self) -> u64 {
        self.lines.lock().map(|n| *n).unwrap_or(0)
    }

    /// The newest log lines (up to 2,000), joined.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits (up to 10 s) for the exit; SIGKILL after that.
    pub async fn terminate(mut self) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The HTTP and probe addresses in the controller's "gitseal-controller
/// started" line (JSON fields `http` and `probes`, plain `IP:PORT`).
fn started_addr(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    if !line.contains("gitseal-controller started") {
        return None;
    }
    let v: Value = serde_json::from_str(line).ok()?;
    let addr = |field: &str| v.pointer(field)?.as_str()?.parse().ok();
    Some((addr("/fields/http")?, addr("/fields/probes")?))
}

/// Sum of a counter family in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// A minimal HTTP/1.1 GET over TCP: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
