//! The shared Vault client: one login per process, renewed in the background.
//!
//! The controller reconciles many `SealedSecret`s concurrently; they all go
//! through one [`VaultClient`] (cheap to clone, an `Arc` inside). It logs in
//! once, keeps the token, renews it at two thirds of its TTL from a
//! background task (and lazily before a read if that task fell behind), logs
//! in again when renewal fails or the token reaches its max TTL, and on a 403
//! asks Vault (`lookup-self`) whether the token is still valid: if not it logs
//! in once more and retries, otherwise the 403 is a policy refusal
//! ([`Error::Forbidden`]). Reads go through a [`Session`](crate::Session).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::sync::{Notify, OnceCell};
use url::Url;
use vaultrs::client::{VaultClient as ApiClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::auth::LoginRequest;
use crate::config::VaultConfig;
use crate::metrics::{inc, Metrics, MetricsSnapshot};
use crate::reference::{KvVersion, VaultRef};
use crate::{Error, NotFoundKind, Session};

/// The fields of one secret version, values redacted.
pub(crate) type SecretData = HashMap<String, SecretString>;

/// What one Vault read is keyed by: reads with the same key are made once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadKey {
    pub(crate) kv: KvVersion,
    pub(crate) mount: String,
    pub(crate) path: String,
    pub(crate) version: Option<u64>,
}

impl ReadKey {
    pub(crate) fn of(r: &VaultRef) -> Self {
        ReadKey {
            kv: r.kv(),
            mount: r.mount().to_string(),
            path: r.path().to_string(),
            version: r.version(),
        }
    }
}

pub(crate) type ReadResult = Result<Arc<SecretData>, Error>;
pub(crate) type ReadCell = Arc<OnceCell<ReadResult>>;

/// A token obtained by a login, and what we know about its lifetime.
struct Token {
    generation: u64,
    api: Arc<ApiClient>,
    renewable: bool,
    /// The TTL granted at login (None: never expires).
    login_ttl: Option<Duration>,
    expires_at: Option<Instant>,
    refresh_at: Option<Instant>,
    /// Renewal no longer extends the token (max TTL reached): log in instead.
    relogin: bool,
}

impl Token {
    fn due(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }
}

const LOGIN_BACKOFF_BASE: Duration = Duration::from_secs(1);
const LOGIN_BACKOFF_MAX: Duration = Duration::from_secs(16);

fn refresh_point(now: Instant, ttl: Duration) -> Instant {
    now + ttl.mul_f64(2.0 / 3.0)
}

struct SharedEntry {
    cell: ReadCell,
    created: Instant,
}

pub(crate) struct Inner {
    config: VaultConfig,
    address: Url,
    /// For display in errors: scheme://host:port, no credentials.
    shown_address: String,
    /// Client without a token: logins and health.
    unauth: ApiClient,
    current: Mutex<Option<Arc<Token>>>,
    auth_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    pub(crate) metrics: Metrics,
    shared: Mutex<HashMap<ReadKey, SharedEntry>>,
    wake: Arc<Notify>,
    /// The last failed login: until `retry_at`, logins return this error
    /// without calling Vault (so a burst of reconciles with bad credentials
    /// makes one attempt, not one each).
    login_backoff: Mutex<Option<LoginBackoff>>,
}

struct LoginBackoff {
    error: Error,
    retry_at: Instant,
    failures: u32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Lets the refresher notice the client is gone and exit.
        self.wake.notify_one();
    }
}

/// A Vault/OpenBao client shared by the whole process.
///
/// `Clone` is cheap and shares the token, counters and caches.
#[derive(Clone)]
pub struct VaultClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.inner.shown_address)
            .field("auth", &self.inner.config.auth.name())
            .finish_non_exhaustive()
    }
}

/// `GET /v1/sys/health`, as far as the client needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Server version, e.g. `2.7.2`.
    pub version: String,
    /// The node is a standby (reads are forwarded to the active node).
    pub standby: bool,
}

impl VaultClient {
    /// Validates the configuration and builds the HTTP client. Does not
    /// contact Vault: the first login happens on the first read (or
    /// [`login`](Self::login)), so a controller can start while Vault is down.
    /// Must run inside a Tokio runtime (it starts the token refresher task,
    /// which ends when the last clone of the client is dropped).
    pub async fn new(config: VaultConfig) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Config {
            detail: "VaultClient::new must run inside a Tokio runtime".into(),
        })?;
        crate::install_default_crypto_provider();
        let address = Url::parse(config.address.trim()).map_err(|e| Error::Config {
            detail: format!(
                "Vault address `{}` is not a URL: {e}",
                crate::reference::sanitize_for_message(&config.address)
            ),
        })?;
        if !matches!(address.scheme(), "http" | "https") || address.host_str().is_none() {
            return Err(Error::Config {
                detail: format!(
                    "Vault address must be http(s)://HOST[:PORT], not `{}`",
                    crate::reference::sanitize_for_message(&config.address)
                ),
            });
        }
        if let Some(ns) = &config.vault_namespace {
            if ns.is_empty() || !ns.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Config {
                    detail: "the Vault namespace must be non-empty visible ASCII".into(),
                });
            }
        }
        if config.timeout.is_zero() {
            return Err(Error::Config {
                detail: "the request timeout must be greater than zero".into(),
            });
        }
        let shown_address = format!(
            "{}://{}{}",
            address.scheme(),
            address.host_str().unwrap_or_default(),
            address.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        let unauth = build_api(&config, &address, "")?;
        let inner = Arc::new(Inner {
            config,
            address,
            shown_address,
            unauth,
            current: Mutex::new(None),
            auth_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            metrics: Metrics::default(),
            shared: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            login_backoff: Mutex::new(None),
        });
        spawn_refresher(&runtime, &inner);
        Ok(VaultClient { inner })
    }

    /// Logs in now (if not logged in yet), to fail fast on bad credentials.
    pub async fn login(&self) -> Result<(), Error> {
        self.inner.token().await.map(|_| ())
    }

    /// A new read session; see [`Session`].
    pub fn session(&self) -> Session {
        Session::new(self.clone())
    }

    /// The client's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// `GET /v1/sys/health` with a raw HTTP request (vaultrs 0.8 cannot parse
    /// OpenBao's reply). `Ok` when Vault is initialised and unsealed (active
    /// or standby); [`Error::Unavailable`] otherwise.
    pub async fn health(&self) -> Result<Health, Error> {
        let inner = &self.inner;
        let mut url = inner.address.clone();
        url.set_path("/v1/sys/health");
        url.set_query(Some("standbyok=true&perfstandbyok=true"));
        let unavailable = |detail: String| Error::Unavailable {
            address: inner.shown_address.clone(),
            detail,
        };
        let resp = inner
            .unauth
            .http
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| unavailable(error_chain(&e)))?;
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(default)]
            initialized: bool,
            #[serde(default)]
            sealed: bool,
            #[serde(default)]
            standby: bool,
            #[serde(default)]
            version: String,
        }
        let reply: Reply = serde_json::from_slice(&body).map_err(|_| {
            unavailable(format!(
                "HTTP {status} with a reply that is not Vault health JSON"
            ))
        })?;
        if !reply.initialized {
            return Err(unavailable("Vault is not initialized".into()));
        }
        if reply.sealed {
            return Err(unavailable("Vault is sealed".into()));
        }
        Ok(Health {
            version: reply.version,
            standby: reply.standby,
        })
    }
}

/// A vaultrs client that sends `token`, sharing `base`'s HTTP connection pool.
fn with_token(base: &ApiClient, token: &SecretString) -> ApiClient {
    let mut settings = base.settings.clone();
    settings.token = token.expose_secret().to_string();
    let mut middle = base.middle.clone();
    middle.token = token.expose_secret().to_string();
    ApiClient {
        http: rustify::clients::reqwest::Client::new(&base.http.base, base.http.http.clone()),
        middle,
        settings,
    }
}

fn build_api(config: &VaultConfig, address: &Url, token: &str) -> Result<ApiClient, Error> {
    let mut ca = Vec::with_capacity(config.ca_cert_files.len());
    for p in &config.ca_cert_files {
        ca.push(
            p.to_str()
                .ok_or_else(|| Error::Config {
                    detail: format!("CA file path {} is not UTF-8", p.display()),
                })?
                .to_string(),
        );
    }
    let mut b = VaultClientSettingsBuilder::default();
    // `address` panics on an invalid URL; it was parsed above.
    b.address(address.as_str())
        .token(token)
        .ca_certs(ca)
        .identity(None)
        .verify(true)
        .timeout(Some(config.timeout));
    if let Some(ns) = &config.vault_namespace {
        b.set_namespace(ns.clone());
    }
    let settings = b.build().map_err(|e| Error::Config {
        detail: format!("Vault client settings: {e}"),
    })?;
    ApiClient::new(settings).map_err(|e| Error::Config {
        detail: match &e {
            ClientError::FileReadError { path, source } => {
                format!("cannot read CA file {path}: {}", source.kind())
            }
            ClientError::ParseCertificateError { path, .. } => {
                format!("CA file {path} is not a PEM certificate bundle")
            }
            other => format!("cannot build the HTTP client: {other}"),
        },
    })
}

/// Display of an error and its sources. Used only for transport errors
/// (reqwest), whose messages carry the URL but no headers or bodies.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    crate::reference::sanitize_for_message(&out)
}

/// How a vaultrs call failed, reduced to what we act on. Built without
/// keeping response bodies.
enum Failure {
    /// HTTP 403.
    Denied(String),
    /// HTTP 404; the kind is read from the body's metadata.
    NotFound(NotFoundKind, String),
    /// Connection/timeout, 5xx, 429, 412.
    Unavailable(String),
    /// Other 4xx, or a reply we cannot parse.
    Other(String),
}

fn vault_errors(errors: &[String]) -> String {
    let joined = errors
        .iter()
        .map(|e| e.trim().replace('\n', " "))
        .collect::<Vec<_>>()
        .join("; ");
    crate::reference::sanitize_for_message(&joined)
}

fn classify(e: &ClientError) -> Failure {
    use rustify::errors::ClientError as Rest;
    match e {
        ClientError::APIError { code, errors } => status_failure(*code, vault_errors(errors), None),
        ClientError::RestClientError { source } => match source {
            Rest::ServerResponseError { code, content } => {
                status_failure(*code, String::new(), content.as_deref())
            }
            Rest::RequestError { .. } | Rest::ResponseError { .. } => {
                Failure::Unavailable(error_chain(source))
            }
            _ => Failure::Other("Vault's reply could not be read".into()),
        },
        ClientError::ResponseEmptyError | ClientError::ResponseDataEmptyError => {
            Failure::Other("Vault returned an empty reply".into())
        }
        ClientError::JsonParseError { .. } => {
            Failure::Other("Vault's reply has an unexpected shape".into())
        }
        _ => Failure::Other("the Vault client failed".into()),
    }
}

fn status_failure(code: u16, vault_msg: String, body: Option<&str>) -> Failure {
    let detail = if vault_msg.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {vault_msg}")
    };
    match code {
        403 => Failure::Denied(detail),
        404 => Failure::NotFound(not_found_kind(body), vault_msg),
        412 | 429 | 500..=599 => Failure::Unavailable(detail),
        _ => Failure::Other(detail),
    }
}

/// OpenBao/Vault answer a deleted or destroyed KV v2 version with 404 and a
/// body whose `data.metadata` has `deletion_time` set or `destroyed: true`
/// (and no `errors`); a missing path is 404 with `{"errors":[]}`.
fn not_found_kind(body: Option<&str>) -> NotFoundKind {
    let Some(meta) = body
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .and_then(|v| v.get("data")?.get("metadata").cloned())
    else {
        return NotFoundKind::Missing;
    };
    if meta.get("destroyed").and_then(Value::as_bool) == Some(true) {
        NotFoundKind::Destroyed
    } else if meta
        .get("deletion_time")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        NotFoundKind::Deleted
    } else {
        NotFoundKind::Missing
    }
}

impl Inner {
    fn unavailable(&self, detail: String) -> Error {
        Error::Unavailable {
            address: self.shown_address.clone(),
            detail,
        }
    }

    fn current(&self) -> Option<Arc<Token>> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_current(&self, t: Option<Arc<Token>>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = t;
        self.wake.notify_one();
    }

    /// A usable token: the current one, or one obtained now (single-flight).
    async fn token(&self) -> Result<Arc<Token>, Error> {
        if let Some(t) = self.current() {
            if !t.due(Instant::now()) {
                return Ok(t);
            }
        }
        self.refresh(None).await
    }

    /// Under the auth lock: log in if there is no token, renew (or log in
    /// again) if it is due. With `invalid = Some(generation)`, the token of
    /// that generation was rejected by Vault: drop it and log in again
    /// (unless another task already replaced it).
    async fn refresh(&self, invalid: Option<u64>) -> Result<Arc<Token>, Error> {
        let _guard = self.auth_lock.lock().await;
        let now = Instant::now();
        let cur = self.current();
        let t = match cur {
            Some(t) if invalid == Some(t.generation) => {
                self.set_current(None);
                return self.login_locked().await;
            }
            Some(t) if !t.due(now) => return Ok(t),
            Some(t) => t,
            None => return self.login_locked().await,
        };
        let still_valid = t.expires_at.is_none_or(|e| now < e);
        if t.renewable && !t.relogin && still_valid {
            match self.renew_locked(&t).await {
                // A renewal that leaves (almost) no time is followed by a login.
                Ok(new) if !new.due(Instant::now()) => return Ok(new),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "Vault token renewal failed; logging in again");
                }
            }
        }
        self.login_locked().await
    }

    async fn renew_locked(&self, t: &Token) -> Result<Arc<Token>, Error> {
        match vaultrs::token::renew_self(t.api.as_ref(), None).await {
            Ok(info) => {
                inc(&self.metrics.renewals);
                let now = Instant::now();
                let ttl = Duration::from_secs(info.lease_duration);
                // Capped by the max TTL: renewing again gains little, so the
                // next refresh is a fresh login.
                let relogin =
                    !info.renewable || t.login_ttl.is_some_and(|l| ttl < l / 2) || ttl.is_zero();
                // Vault reports whole seconds: 0 means "about to expire".
                let new = Arc::new(Token {
                    generation: t.generation,
                    api: t.api.clone(),
                    renewable: info.renewable,
                    login_ttl: t.login_ttl,
                    expires_at: Some(now + ttl),
                    refresh_at: Some(refresh_point(now, ttl)),
                    relogin,
                });
                tracing::debug!(ttl_secs = ttl.as_secs(), "renewed Vault token");
                self.set_current(Some(new.clone()));
                Ok(new)
            }
            Err(e) => {
                inc(&self.metrics.renewal_failures);
                Err(match classify(&e) {
                    Failure::Unavailable(d) => self.unavailable(d),
                    Failure::Denied(d) | Failure::NotFound(_, d) | Failure::Other(d) => {
                        Error::Auth {
                            method: self.config.auth.name(),
                            detail: format!("token renewal refused: {d}"),
                        }
                    }
                })
            }
        }
    }

    async fn login_locked(&self) -> Result<Arc<Token>, Error> {
        let failures = {
            let backoff = self.login_backoff.lock().unwrap_or_else(|e| e.into_inner());
            match backoff.as_ref() {
                Some(b) if Instant::now() < b.retry_at => return Err(b.error.clone()),
                Some(b) => b.failures,
                None => 0,
            }
        };
        let result = self.do_login().await;
        match &result {
            Ok(t) => {
                *self.login_backoff.lock().unwrap_or_else(|e| e.into_inner()) = None;
                inc(&self.metrics.logins);
                tracing::info!(
                    method = self.config.auth.name(),
                    ttl_secs = t.login_ttl.map(|d| d.as_secs()),
                    "logged in to Vault"
                );
                self.set_current(Some(t.clone()));
            }
            Err(e) => {
                inc(&self.metrics.login_failures);
                let failures = failures.saturating_add(1);
                let wait = LOGIN_BACKOFF_BASE
                    .saturating_mul(1u32 << (failures - 1).min(5))
                    .min(LOGIN_BACKOFF_MAX);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Vault login failed");
                *self.login_backoff.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(LoginBackoff {
                        error: e.clone(),
                        retry_at: Instant::now() + wait,
                        failures,
                    });
            }
        }
        result
    }

    async fn do_login(&self) -> Result<Arc<Token>, Error> {
        let method = self.config.auth.name();
        let auth_error = |e: &ClientError| match classify(e) {
            Failure::Unavailable(d) => self.unavailable(d),
            Failure::Denied(d) | Failure::NotFound(_, d) | Failure::Other(d) => Error::Auth {
                method,
                detail: if d.is_empty() {
                    "Vault refused the login".into()
                } else {
                    d
                },
            },
        };
        let request = LoginRequest::build(&self.config.auth)?;
        let (token, ttl, renewable) = match request {
            LoginRequest::Token { token } => {
                let api = with_token(&self.unauth, &token);
                let info =
                    vaultrs::token::lookup_self(&api)
                        .await
                        .map_err(|e| match auth_error(&e) {
                            Error::Auth { detail, .. } => Error::Auth {
                                method,
                                detail: format!("Vault does not accept the token ({detail})"),
                            },
                            other => other,
                        })?;
                (token, info.ttl, info.renewable.unwrap_or(false))
            }
            LoginRequest::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let info = vaultrs::auth::approle::login(
                    &self.unauth,
                    &mount,
                    role_id.expose_secret(),
                    secret_id.expose_secret(),
                )
                .await
                .map_err(|e| auth_error(&e))?;
                (
                    SecretString::from(info.client_token),
                    info.lease_duration,
                    info.renewable,
                )
            }
            LoginRequest::Kubernetes { mount, role, jwt } => {
                let info = vaultrs::auth::kubernetes::login(
                    &self.unauth,
                    &mount,
                    &role,
                    jwt.expose_secret(),
                )
                .await
                .map_err(|e| auth_error(&e))?;
                (
                    SecretString::from(info.client_token),
                    info.lease_duration,
                    info.renewable,
                )
            }
        };
        if !token.expose_secret().bytes().all(|b| b.is_ascii_graphic())
            || token.expose_secret().is_empty()
        {
            return Err(Error::Auth {
                method,
                detail: "Vault returned an unusable token".into(),
            });
        }
        let now = Instant::now();
        let ttl = (ttl > 0).then(|| Duration::from_secs(ttl));
        Ok(Arc::new(Token {
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            api: Arc::new(with_token(&self.unauth, &token)),
            renewable,
            login_ttl: ttl,
            expires_at: ttl.map(|t| now + t),
            refresh_at: ttl.map(|t| refresh_point(now, t)),
            relogin: false,
        }))
    }

    /// After a 403: is the token itself no longer valid?
    async fn token_rejected(&self, t: &Token) -> Result<bool, Error> {
        inc(&self.metrics.token_checks);
        match vaultrs::token::lookup_self(t.api.as_ref()).await {
            Ok(_) => Ok(false),
            Err(e) => match classify(&e) {
                Failure::Denied(_) => Ok(true),
                Failure::Unavailable(d) => Err(self.unavailable(d)),
                Failure::NotFound(..) | Failure::Other(_) => Ok(true),
            },
        }
    }

    /// One KV read, with one re-login and retry if the token was rejected.
    pub(crate) async fn read(&self, key: &ReadKey) -> ReadResult {
        let mut relogged = false;
        loop {
            let t = self.token().await?;
            inc(&self.metrics.reads);
            let result = read_kv(&t.api, key).await;
            let failure = match result {
                Ok(Some(data)) => return Ok(Arc::new(data)),
                Ok(None) => Failure::NotFound(NotFoundKind::Missing, String::new()),
                Err(e) => classify(&e),
            };
            inc(&self.metrics.read_failures);
            return Err(match failure {
                Failure::Denied(detail) => {
                    if self.token_rejected(&t).await? {
                        if relogged {
                            Error::Auth {
                                method: self.config.auth.name(),
                                detail: "Vault rejects the token right after logging in".into(),
                            }
                        } else {
                            tracing::info!("Vault token rejected; logging in again");
                            self.refresh(Some(t.generation)).await?;
                            relogged = true;
                            continue;
                        }
                    } else {
                        Error::Forbidden {
                            namespace: None,
                            mount: key.mount.clone(),
                            path: key.path.clone(),
                            detail: format!("the controller's Vault policy denies it ({detail})"),
                        }
                    }
                }
                Failure::NotFound(kind, _) => Error::NotFound {
                    mount: key.mount.clone(),
                    path: key.path.clone(),
                    version: key.version,
                    kind,
                },
                Failure::Unavailable(d) => self.unavailable(d),
                Failure::Other(detail) => Error::Unexpected {
                    mount: key.mount.clone(),
                    path: key.path.clone(),
                    detail,
                },
            });
        }
    }

    /// A read shared with other sessions: concurrent reads of the same key
    /// are made once, and a successful result is reused for
    /// `shared_cache_ttl`. Failures are never kept beyond the reads that
    /// were waiting for them.
    /// Returns the result and whether this call made the Vault read.
    pub(crate) async fn read_shared(&self, key: &ReadKey) -> (ReadResult, bool) {
        let ttl = self.config.shared_cache_ttl;
        let (cell, hit) = {
            let mut map = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let fresh = |e: &SharedEntry| match e.cell.get() {
                None => true,
                Some(Ok(_)) => now.duration_since(e.created) < ttl,
                Some(Err(_)) => false,
            };
            match map.get(key) {
                Some(e) if fresh(e) => (e.cell.clone(), true),
                _ => {
                    if map.len() >= 1024 {
                        map.retain(|_, e| fresh(e));
                    }
                    let cell: ReadCell = Arc::new(OnceCell::new());
                    map.insert(
                        key.clone(),
                        SharedEntry {
                            cell: cell.clone(),
                            created: now,
                        },
                    );
                    (cell, false)
                }
            }
        };
        let mut performed = false;
        let result = cell
            .get_or_init(|| {
                performed = true;
                self.read(key)
            })
            .await
            .clone();
        if result.is_err() || ttl.is_zero() {
            let mut map = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            if map.get(key).is_some_and(|e| Arc::ptr_eq(&e.cell, &cell)) {
                map.remove(key);
            }
        }
        let _ = hit;
        (result, performed)
    }
}

/// `Ok(None)`: the reply had no data (treated as not found).
async fn read_kv(api: &ApiClient, key: &ReadKey) -> Result<Option<SecretData>, ClientError> {
    let data: Option<Map<String, Value>> = match (key.kv, key.version) {
        (KvVersion::V2, None) => vaultrs::kv2::read(api, &key.mount, &key.path).await?,
        (KvVersion::V2, Some(v)) => {
            vaultrs::kv2::read_version(api, &key.mount, &key.path, v).await?
        }
        (KvVersion::V1, _) => vaultrs::kv1::get(api, &key.mount, &key.path).await?,
    };
    Ok(data.map(|m| {
        m.into_iter()
            .filter_map(|(k, v)| {
                let s = match v {
                    Value::Null => return None,
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                Some((k, SecretString::from(s)))
            })
            .collect()
    }))
}

/// Renews (or re-obtains) the token at two thirds of its TTL, so reads never
/// wait for it. Holds only a weak reference: it ends when the client is
/// dropped.
fn spawn_refresher(runtime: &tokio::runtime::Handle, inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let wake = inner.wake.clone();
    runtime.spawn(async move {
        let mut failures: u32 = 0;
        loop {
            let due = {
                let Some(inner) = weak.upgrade() else { return };
                inner.current().and_then(|t| t.refresh_at)
            };
            match due {
                None => {
                    wake.notified().await;
                    continue;
                }
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = wake.notified() => continue,
                    }
                }
            }
            let Some(inner) = weak.upgrade() else { return };
            let due_now = inner.current().is_some_and(|t| t.due(Instant::now()));
            if !due_now {
                continue;
            }
            match inner.refresh(None).await {
                Ok(_) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(500)
                        .saturating_mul(1u32 << failures.min(6))
                        .min(Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "background Vault token refresh failed");
                    drop(inner);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = wake.notified() => {}
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMethod, TokenSource};

    #[test]
    fn the_two_404_shapes_are_told_apart() {
        // Bodies as OpenBao 2.7 sends them (see the integration tests).
        let deleted = r#"{"request_id":"x","data":{"data":null,"metadata":{"created_time":"t","custom_metadata":null,"deletion_time":"2026-11-21T21:33:58.68Z","destroyed":false,"version":1}},"warnings":null}"#;
        let destroyed = r#"{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":2}}}"#;
        assert_eq!(not_found_kind(Some(deleted)), NotFoundKind::Deleted);
        assert_eq!(not_found_kind(Some(destroyed)), NotFoundKind::Destroyed);
        assert_eq!(
            not_found_kind(Some(r#"{"errors":[]}"#)),
            NotFoundKind::Missing
        );
        assert_eq!(not_found_kind(Some("not json")), NotFoundKind::Missing);
        assert_eq!(not_found_kind(None), NotFoundKind::Missing);

        let e = ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError {
                code: 404,
                content: Some(deleted.into()),
            },
        };
        assert!(matches!(
            classify(&e),
            Failure::NotFound(NotFoundKind::Deleted, _)
        ));
        let e = ClientError::APIError {
            code: 404,
            errors: vec![],
        };
        assert!(matches!(
            classify(&e),
            Failure::NotFound(NotFoundKind::Missing, _)
        ));
    }

    #[test]
    fn status_codes_map_to_failures() {
        let api = |code| ClientError::APIError {
            code,
            errors: vec!["Vault is sealed".into()],
        };
        assert!(matches!(classify(&api(403)), Failure::Denied(_)));
        for code in [412, 429, 500, 502, 503] {
            match classify(&api(code)) {
                Failure::Unavailable(d) => assert_eq!(d, format!("HTTP {code}: Vault is sealed")),
                _ => panic!("{code}"),
            }
        }
        assert!(matches!(classify(&api(400)), Failure::Other(_)));
        assert!(matches!(
            classify(&ClientError::ResponseDataEmptyError),
            Failure::Other(_)
        ));
        // A 5xx whose body is not Vault JSON: status only, body dropped.
        let e = ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError {
                code: 502,
                content: Some("<html>canary-body</html>".into()),
            },
        };
        match classify(&e) {
            Failure::Unavailable(d) => assert_eq!(d, "HTTP 502"),
            _ => panic!("502"),
        }
    }

    #[tokio::test]
    async fn https_client_builds_with_the_ring_provider() {
        // Possibly the first client of this test process: reqwest (built
        // without a provider) would panic if `new` did not install one.
        let client = VaultClient::new(VaultConfig::new(
            "https://127.0.0.1:1",
            AuthMethod::Token(TokenSource::Value("t".into())),
        ))
        .await
        .expect("client");
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        crate::install_default_crypto_provider();
        crate::install_default_crypto_provider();
        let err = client.health().await.unwrap_err();
        assert_eq!(err.reason(), "VaultUnavailable", "{err}");
        assert!(
            err.to_string()
                .starts_with("Vault at https://127.0.0.1:1 is unavailable: "),
            "{err}"
        );
        let err = client.login().await.unwrap_err();
        assert_eq!(err.reason(), "VaultUnavailable", "{err}");
    }

    #[tokio::test]
    async fn address_credentials_are_not_shown() {
        let client = VaultClient::new(VaultConfig::new(
            "http://user:canary-pass@127.0.0.1:1/",
            AuthMethod::Token(TokenSource::Value("t".into())),
        ))
        .await
        .expect("client");
        let out = format!("{client:?} {}", client.health().await.unwrap_err());
        assert!(!out.contains("canary"), "{out}");
    }
}
