//! Shared helpers: a controller running against the fake API, sealing
//! helpers, polling, and a log capture.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitseal_controller::keys::{key_secret, KeyStore};
use gitseal_controller::reconcile::Timing;
use gitseal_controller::run::{self, Config, Handles};
use gitseal_crypto::{seal, Binding, Identity, Recipient, Scope};
use serde_json::{json, Value};

use crate::fake_api::FakeApi;

pub const NS: &str = "gitseal-system";

/// A running controller on a fake API.
#[allow(dead_code)]
pub struct Running {
    pub fake: FakeApi,
    pub handles: Handles,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

pub fn fast_timing() -> Timing {
    Timing {
        resync: Duration::from_secs(3600),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
    }
}

pub fn config() -> Config {
    let mut c = Config::new(NS);
    c.timing = fast_timing();
    c.listen = Some("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()));
    c
}

/// Starts a controller on `fake` with `config`.
pub async fn start_with(fake: &FakeApi, config: Config) -> Running {
    start_with_vault(fake, config, None).await
}

/// Starts a controller on `fake` with `config` and a Vault resolver.
pub async fn start_with_vault(
    fake: &FakeApi,
    config: Config,
    vault: Option<Arc<dyn gitseal_controller::sources::VaultResolver>>,
) -> Running {
    start_with_client(fake, fake.client(), config, vault).await
}

/// Starts a controller on `fake` that talks through `client` (e.g. one
/// that tags or delays its requests).
pub async fn start_with_client(
    fake: &FakeApi,
    client: kube::Client,
    config: Config,
    vault: Option<Arc<dyn gitseal_controller::sources::VaultResolver>>,
) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (handles, fut) = run::start(client, config, vault, async {
        let _ = rx.await;
    })
    .await
    .unwrap_or_else(|e| panic!("controller did not start: {e}"));
    let task = tokio::spawn(fut);
    Running {
        fake: fake.clone(),
        handles,
        stop: Some(tx),
        task,
    }
}

/// A fake API holding one sealing key (a minute old) and a controller
/// running on it with [`config`], its keys loaded.
pub async fn keyed_controller() -> (FakeApi, Identity, Running) {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let running = start_with(&fake, config()).await;
    wait_for("keys loaded", 10, || {
        running.handles.keys.is_ready().then_some(())
    })
    .await;
    (fake, id, running)
}

/// Waits until SealedSecret `ns/name` has a `Ready` condition (with
/// `reason`, when given); returns (status, reason, message).
pub async fn wait_ready(
    fake: &FakeApi,
    ns: &str,
    name: &str,
    reason: Option<&str>,
) -> (String, String, String) {
    let what = format!("{ns}/{name} Ready reason {}", reason.unwrap_or("(any)"));
    wait_for(&what, 10, || {
        fake.get("sealedsecrets", ns, name)
            .and_then(|o| ready(&o))
            .filter(|r| reason.is_none_or(|want| r.1 == want))
    })
    .await
}

/// Stores `identity` as a key Secret created `age_secs` ago.
pub fn add_key(fake: &FakeApi, identity: &Identity, age_secs: i64) {
    let created = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(age_secs))
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    let secret = key_secret(identity, created);
    let mut v = serde_json::to_value(&secret).unwrap_or_default();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Secret");
    fake.upsert("secrets", NS, v);
}

pub fn seal_value(
    value: &[u8],
    to: &[Recipient],
    scope: Scope,
    ns: &str,
    name: &str,
    item: &str,
) -> String {
    seal(value, to, &Binding::new(scope, ns, name, item))
        .unwrap_or_else(|e| panic!("seal: {e}"))
        .to_string()
}

/// A SealedSecret manifest with the given items sealed to `to`.
pub fn sealed_secret(ns: &str, name: &str, items: &[(&str, &[u8])], to: &[Recipient]) -> Value {
    let data: serde_json::Map<String, Value> = items
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_string(),
                json!(seal_value(v, to, Scope::Strict, ns, name, k)),
            )
        })
        .collect();
    json!({
        "apiVersion": "gitseal.dev/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"encryptedData": data},
    })
}

/// Polls `f` every 20 ms until it returns Some, or panics after `secs`.
pub async fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The decoded data of a Secret object.
pub fn secret_data(secret: &Value) -> std::collections::BTreeMap<String, Vec<u8>> {
    use base64::Engine as _;
    secret
        .get("data")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let b = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap_or_default();
                    (k.clone(), b)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Ready condition of a SealedSecret: (status, reason, message).
pub fn ready(obj: &Value) -> Option<(String, String, String)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// A writer that keeps every log line in memory.
#[derive(Clone, Default)]
pub struct LogBuffer(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut g) = self.0.lock() {
            g.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl LogBuffer {
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|g| String::from_utf8_lossy(&g).into_owned())
            .unwrap_or_default()
    }
}

#[allow(dead_code)]
pub fn unused(_: &KeyStore) {}
