//! The shared Vault client: one login per process, renewed in the background.
//!
//! The controller reconciles many `SealedSecret`s concurrently; they all go
//! through one [`VaultClient`] (cheap to clone, an `Arc` inside). It logs in
//! once, keeps the token, renews it at two thirds of its TTL from a
//! background task (and lazily before a read if that task fell behind), logs
//! in again when renewal fails or the token reaches its max TTL, and on a 403
//! asks Vault (`lookup-self`) whether the token is still valid: if not it logs
//! in once more and retries, otherwise the 403 is a policy refusal
//! ([`Error::Forbidden`]). Before the first read of a mount it asks Vault what
//! the mount really is (`mount.rs`), so a reference can never make it send a
//! request other than the one it describes. Reads go through a
//! [`Session`](crate::Session).
//!
//! Logging: vaultrs and rustify log every non-2xx reply at ERROR, including
//! the 403s and 404s that are ordinary answers here, so their calls run with
//! logging off ([`quiet`]) and this client logs each outcome itself: an
//! outage once at WARN and its end at INFO (`availability.rs`), a refused
//! login at WARN, a re-login at the token's max TTL at INFO, the rest at
//! DEBUG. A refusal or a missing secret is an answer for the object that
//! asked, reported in its status, not a log line.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::sync::{watch, Notify};
use tracing::instrument::WithSubscriber as _;
use url::Url;
use vaultrs::client::{VaultClient as ApiClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::auth::LoginRequest;
use crate::availability::{self, Availability};
use crate::cache::SharedCache;
use crate::config::VaultConfig;
use crate::metrics::{inc, Metrics, MetricsSnapshot};
use crate::reference::{sanitize_for_message, KvVersion, RESERVED_MOUNTS};
use crate::{Error, NotFoundKind, Session};

/// The fields of one secret version, values redacted.
pub(crate) type SecretData = HashMap<String, SecretString>;

/// One KV read as it goes on the wire: reads with the same key are made
/// once. Built only by `mount::plan`, after the mount's real KV version is
/// known (`kv` is that version).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ReadKey {
    pub(crate) kv: KvVersion,
    pub(crate) mount: String,
    pub(crate) path: String,
    pub(crate) version: Option<u64>,
}

pub(crate) type ReadResult = Result<Arc<SecretData>, Error>;

/// How long what Vault said about a mount (its KV version) is reused. A
/// mount upgraded in place from KV v1 to v2 is seen within this long.
pub(crate) const MOUNT_INFO_TTL: Duration = Duration::from_secs(60);

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

/// Runs a vaultrs call with logging off. vaultrs and rustify log every
/// non-2xx reply at ERROR (`#[instrument(err)]`, "Detected errors in API
/// response"), although a 403 or 404 is an ordinary answer here; the client
/// logs each outcome itself, at the level it deserves.
async fn quiet<F: Future>(f: F) -> F::Output {
    f.with_subscriber(tracing::Dispatch::none()).await
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
    reads: SharedCache<ReadKey, Arc<SecretData>>,
    mounts: SharedCache<String, KvVersion>,
    availability: Availability,
    wake: Arc<Notify>,
    /// The last failed login: until `retry_at`, logins return this error
    /// without calling Vault (so a burst of reconciles with bad credentials
    /// makes one attempt, not one each).
    login_backoff: Mutex<Option<LoginBackoff>>,
    /// For the tasks the client starts (token refresher, health probe).
    runtime: tokio::runtime::Handle,
    me: Weak<Inner>,
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
    /// which ends when the last clone of the client is dropped). The tasks
    /// the client starts log to the subscriber that is current here.
    pub async fn new(config: VaultConfig) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::Config {
            detail: "VaultClient::new must run inside a Tokio runtime".into(),
        })?;
        crate::install_default_crypto_provider();
        let address = Url::parse(config.address.trim()).map_err(|e| Error::Config {
            detail: format!(
                "Vault address `{}` is not a URL: {e}",
                sanitize_for_message(&config.address)
            ),
        })?;
        if !matches!(address.scheme(), "http" | "https") || address.host_str().is_none() {
            return Err(Error::Config {
                detail: format!(
                    "Vault address must be http(s)://HOST[:PORT], not `{}`",
                    sanitize_for_message(&config.address)
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
        let read_horizon = config.shared_cache_ttl;
        let inner = Arc::new_cyclic(|me| Inner {
            config,
            address,
            shown_address,
            unauth,
            current: Mutex::new(None),
            auth_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            metrics: Metrics::default(),
            reads: SharedCache::new(read_horizon),
            mounts: SharedCache::new(MOUNT_INFO_TTL),
            availability: Availability::new(),
            wake: Arc::new(Notify::new()),
            login_backoff: Mutex::new(None),
            runtime,
            me: me.clone(),
        });
        spawn_refresher(&inner);
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

    /// How many times Vault became reachable again after an outage. The
    /// value changes (and [`changed`](watch::Receiver::changed) wakes) at the
    /// end of each outage: an outage starts when a call cannot reach Vault
    /// (connection refused, timeout, 5xx, sealed) and ends at the next answer
    /// from Vault, which a health probe (every 1 s, 2 s, 4 s, then 5 s) asks
    /// for while it lasts. Use it to retry promptly what failed with
    /// [`Error::Unavailable`].
    pub fn recoveries(&self) -> watch::Receiver<u64> {
        self.inner.availability.subscribe()
    }

    /// `GET /v1/sys/health` with a raw HTTP request (vaultrs 0.8 cannot parse
    /// OpenBao's reply). `Ok` when Vault is initialised and unsealed (active
    /// or standby); [`Error::Unavailable`] otherwise.
    pub async fn health(&self) -> Result<Health, Error> {
        self.inner.health().await
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
    sanitize_for_message(&out)
}

/// How a call failed, reduced to what we act on. Built without keeping
/// response bodies.
#[derive(Debug)]
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

/// Vault's error strings, one line. Go's multierror wrapper
/// ("1 error occurred:\n\t* permission denied\n\n") is reduced to its items.
fn vault_errors(errors: &[String]) -> String {
    let mut items: Vec<String> = Vec::new();
    for e in errors {
        let bullets: Vec<&str> = e
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* "))
            .collect();
        if e.contains("occurred:") && !bullets.is_empty() {
            items.extend(bullets.iter().map(|b| b.trim().to_string()));
        } else {
            items.push(e.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    sanitize_for_message(&items.join("; "))
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

/// Vault refuses to renew a token that reached its max TTL with HTTP 500
/// "past the max TTL, cannot renew": an expected end of the token's life,
/// not an outage.
fn is_past_max_ttl(e: &ClientError) -> bool {
    matches!(e, ClientError::APIError { errors, .. }
        if errors.iter().any(|m| m.contains("past the max TTL")))
}

/// Why a renewal did not extend the token.
enum RenewalRefused {
    /// The token reached its max TTL: log in again, nothing is wrong.
    MaxTtl,
    /// Anything else (Vault down, token revoked, ...).
    Failed(Error),
}

impl Inner {
    /// An [`Error::Unavailable`]; a failure to reach Vault starts an outage
    /// (logged once, probed until Vault answers again).
    fn unavailable(&self, detail: String) -> Error {
        if self.availability.unreachable(&self.shown_address, &detail) {
            self.spawn_probe();
        }
        Error::Unavailable {
            address: self.shown_address.clone(),
            detail,
        }
    }

    /// Vault answered (whatever it said): an outage, if any, is over.
    fn answered(&self) {
        if self.availability.reachable(&self.shown_address) {
            // A login that failed because Vault was down must not hold back
            // the retries that the end of the outage wakes.
            let mut backoff = self.login_backoff.lock().unwrap_or_else(|e| e.into_inner());
            if backoff
                .as_ref()
                .is_some_and(|b| matches!(b.error, Error::Unavailable { .. }))
            {
                *backoff = None;
            }
        }
    }

    /// Starts the health probe of an outage: it ends when Vault answers, or
    /// when something else noticed it first, or with the client.
    fn spawn_probe(&self) {
        let weak = self.me.clone();
        let probe = async move {
            let mut wait = availability::PROBE_FIRST;
            loop {
                tokio::time::sleep(wait).await;
                let Some(inner) = weak.upgrade() else { return };
                if !inner.availability.is_down() {
                    return;
                }
                inc(&inner.metrics.health_probes);
                match inner.health().await {
                    Ok(_) => return,
                    Err(e) => tracing::debug!(error = %e, "Vault health probe failed"),
                }
                wait = availability::next_probe(wait);
            }
        };
        self.runtime.spawn(probe.with_current_subscriber());
    }

    async fn health(&self) -> Result<Health, Error> {
        let mut url = self.address.clone();
        url.set_path("/v1/sys/health");
        url.set_query(Some("standbyok=true&perfstandbyok=true"));
        let resp = self
            .unauth
            .http
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unavailable(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.unavailable(error_chain(&e)))?;
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
            self.unavailable(format!(
                "HTTP {status} with a reply that is not Vault health JSON"
            ))
        })?;
        if !reply.initialized {
            return Err(self.unavailable("Vault is not initialized".into()));
        }
        if reply.sealed {
            return Err(self.unavailable("Vault is sealed".into()));
        }
        self.answered();
        Ok(Health {
            version: reply.version,
            standby: reply.standby,
        })
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
                Err(RenewalRefused::MaxTtl) => {
                    tracing::info!("Vault token reached its max TTL; logging in again");
                }
                Err(RenewalRefused::Failed(e)) if e.is_transient() => {
                    tracing::debug!(error = %e, "Vault token renewal failed; logging in again");
                }
                Err(RenewalRefused::Failed(e)) => {
                    tracing::warn!(error = %e, "Vault token renewal failed; logging in again");
                }
            }
        }
        self.login_locked().await
    }

    async fn renew_locked(&self, t: &Token) -> Result<Arc<Token>, RenewalRefused> {
        match quiet(vaultrs::token::renew_self(t.api.as_ref(), None)).await {
            Ok(info) => {
                inc(&self.metrics.renewals);
                self.answered();
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
                if is_past_max_ttl(&e) {
                    self.answered();
                    return Err(RenewalRefused::MaxTtl);
                }
                Err(RenewalRefused::Failed(match classify(&e) {
                    Failure::Unavailable(d) => self.unavailable(d),
                    Failure::Denied(d) | Failure::NotFound(_, d) | Failure::Other(d) => {
                        self.answered();
                        Error::Auth {
                            method: self.config.auth.name(),
                            detail: format!("token renewal refused: {d}"),
                        }
                    }
                }))
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
                let retry_in_ms = wait.as_millis() as u64;
                if e.is_transient() {
                    // The outage itself is logged once (availability.rs).
                    tracing::debug!(error = %e, retry_in_ms, "Vault login failed");
                } else {
                    tracing::warn!(error = %e, retry_in_ms, "Vault refused the login");
                }
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
            Failure::Denied(d) | Failure::NotFound(_, d) | Failure::Other(d) => {
                self.answered();
                Error::Auth {
                    method,
                    detail: if d.is_empty() {
                        "Vault refused the login".into()
                    } else {
                        d
                    },
                }
            }
        };
        let request = LoginRequest::build(&self.config.auth)?;
        let (token, ttl, renewable) = match request {
            LoginRequest::Token { token } => {
                let api = with_token(&self.unauth, &token);
                let info = quiet(vaultrs::token::lookup_self(&api))
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
                let info = quiet(vaultrs::auth::approle::login(
                    &self.unauth,
                    &mount,
                    role_id.expose_secret(),
                    secret_id.expose_secret(),
                ))
                .await
                .map_err(|e| auth_error(&e))?;
                (
                    SecretString::from(info.client_token),
                    info.lease_duration,
                    info.renewable,
                )
            }
            LoginRequest::Kubernetes { mount, role, jwt } => {
                let info = quiet(vaultrs::auth::kubernetes::login(
                    &self.unauth,
                    &mount,
                    &role,
                    jwt.expose_secret(),
                ))
                .await
                .map_err(|e| auth_error(&e))?;
                (
                    SecretString::from(info.client_token),
                    info.lease_duration,
                    info.renewable,
                )
            }
        };
        self.answered();
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
        match quiet(vaultrs::token::lookup_self(t.api.as_ref())).await {
            Ok(_) => Ok(false),
            Err(e) => match classify(&e) {
                Failure::Denied(_) => Ok(true),
                Failure::Unavailable(d) => Err(self.unavailable(d)),
                Failure::NotFound(..) | Failure::Other(_) => Ok(true),
            },
        }
    }

    /// Runs `call` with the current token. On a 403 asks Vault whether the
    /// token is still valid: if not, logs in once more and runs `call`
    /// again. `Ok(Err(_))` is Vault's answer (or a failure to reach it);
    /// `Err(_)` is a login that failed on the way.
    async fn with_token<T, F, Fut>(&self, mut call: F) -> Result<Result<T, Failure>, Error>
    where
        F: FnMut(Arc<ApiClient>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut relogged = false;
        loop {
            let t = self.token().await?;
            match call(t.api.clone()).await {
                Err(Failure::Denied(detail)) => {
                    if !self.token_rejected(&t).await? {
                        return Ok(Err(Failure::Denied(detail)));
                    }
                    if relogged {
                        return Err(Error::Auth {
                            method: self.config.auth.name(),
                            detail: "Vault rejects the token right after logging in".into(),
                        });
                    }
                    tracing::info!("Vault token rejected; logging in again");
                    self.refresh(Some(t.generation)).await?;
                    relogged = true;
                }
                other => return Ok(other),
            }
        }
    }

    /// The real KV version of `mount`, shared by every session and reused
    /// for [`MOUNT_INFO_TTL`]. Refusals are [`Error::Forbidden`] with an
    /// empty path (the caller names the reference's path).
    pub(crate) async fn mount_kv(&self, mount: &str) -> Result<KvVersion, Error> {
        if RESERVED_MOUNTS.contains(&mount) {
            return Err(crate::reference::reserved_mount(mount, ""));
        }
        let key = mount.to_string();
        let (result, _) = self
            .mounts
            .get(&key, MOUNT_INFO_TTL, true, || self.lookup_mount(mount))
            .await;
        result
    }

    async fn lookup_mount(&self, mount: &str) -> Result<KvVersion, Error> {
        let forbidden = |detail: String| Error::Forbidden {
            namespace: None,
            mount: mount.to_string(),
            path: String::new(),
            detail,
        };
        let outcome = self
            .with_token(|api| {
                inc(&self.metrics.mount_lookups);
                self.get_mount(api, mount)
            })
            .await?;
        match outcome {
            Ok(reply) => {
                self.answered();
                let kv = crate::mount::kv_version_of(mount, &reply).map_err(forbidden)?;
                tracing::debug!(mount, kv = %kv, "Vault mount looked up");
                Ok(kv)
            }
            Err(Failure::Unavailable(d)) => Err(self.unavailable(d)),
            Err(Failure::Denied(_) | Failure::NotFound(..)) => {
                self.answered();
                Err(forbidden(format!(
                    "Vault shows no mount `{mount}` to this token: there is no such mount, or \
                     the token's Vault policy allows nothing below it"
                )))
            }
            Err(Failure::Other(detail)) => {
                self.answered();
                Err(Error::Unexpected {
                    mount: mount.to_string(),
                    path: String::new(),
                    detail,
                })
            }
        }
    }

    /// `GET /v1/sys/internal/ui/mounts/{mount}` (raw: vaultrs has no call
    /// for it): the mount's type, options and path.
    async fn get_mount(&self, api: Arc<ApiClient>, mount: &str) -> Result<Value, Failure> {
        let mut url = self.address.clone();
        url.set_path(&format!("/v1/sys/internal/ui/mounts/{mount}"));
        url.set_query(None);
        let mut request = api
            .http
            .http
            .get(url)
            .header("X-Vault-Request", "true")
            .header("X-Vault-Token", api.settings.token.as_str());
        if let Some(ns) = &self.config.vault_namespace {
            request = request.header("X-Vault-Namespace", ns.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Unavailable(error_chain(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| Failure::Unavailable(error_chain(&e)))?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            return json
                .ok_or_else(|| Failure::Other("Vault's reply has an unexpected shape".into()));
        }
        let errors: Vec<String> = json
            .as_ref()
            .and_then(|v| v.get("errors")?.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect();
        Err(status_failure(status, vault_errors(&errors), None))
    }

    /// One KV read, with one re-login and retry if the token was rejected.
    pub(crate) async fn read(&self, key: &ReadKey) -> ReadResult {
        let outcome = self
            .with_token(|api| async move {
                inc(&self.metrics.reads);
                tracing::debug!(mount = %key.mount, path = %key.path, kv = %key.kv, version = key.version, "reading Vault secret");
                let result = match quiet(read_kv(&api, key)).await {
                    Ok(Some(data)) => Ok(data),
                    Ok(None) => Err(Failure::NotFound(NotFoundKind::Missing, String::new())),
                    Err(e) => Err(classify(&e)),
                };
                if result.is_err() {
                    inc(&self.metrics.read_failures);
                }
                result
            })
            .await?;
        match outcome {
            Ok(data) => {
                self.answered();
                Ok(Arc::new(data))
            }
            Err(Failure::Unavailable(d)) => Err(self.unavailable(d)),
            Err(failure) => {
                self.answered();
                tracing::debug!(mount = %key.mount, path = %key.path, outcome = ?failure, "Vault read refused");
                Err(match failure {
                    Failure::Denied(detail) => Error::Forbidden {
                        namespace: None,
                        mount: key.mount.clone(),
                        path: key.path.clone(),
                        detail: format!("Vault's policy for this token denies it ({detail})"),
                    },
                    Failure::NotFound(kind, _) => Error::NotFound {
                        mount: key.mount.clone(),
                        path: key.path.clone(),
                        version: key.version,
                        kind,
                    },
                    Failure::Unavailable(detail) | Failure::Other(detail) => Error::Unexpected {
                        mount: key.mount.clone(),
                        path: key.path.clone(),
                        detail,
                    },
                })
            }
        }
    }

    /// A read shared with other sessions: concurrent reads of the same key
    /// are made once, and a success is reused for `shared_cache_ttl`, but
    /// never when older than `max_age`. Failures are never kept beyond the
    /// reads that were waiting for them. Returns the result and whether
    /// this call made the Vault read.
    pub(crate) async fn read_shared(&self, key: &ReadKey, max_age: Duration) -> (ReadResult, bool) {
        let ttl = self.config.shared_cache_ttl;
        self.reads
            .get(key, ttl.min(max_age), !ttl.is_zero(), || self.read(key))
            .await
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
fn spawn_refresher(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let wake = inner.wake.clone();
    let refresher = async move {
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
                    let retry_in_ms = backoff.as_millis() as u64;
                    if e.is_transient() {
                        tracing::debug!(error = %e, retry_in_ms, "background Vault token refresh failed");
                    } else {
                        tracing::warn!(error = %e, retry_in_ms, "background Vault token refresh failed");
                    }
                    drop(inner);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = wake.notified() => {}
                    }
                }
            }
        }
    };
    inner.runtime.spawn(refresher.with_current_subscriber());
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
    fn vault_error_strings_become_one_line() {
        let e = |v: &[&str]| vault_errors(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            e(&["1 error occurred:\n\t* permission denied\n\n"]),
            "permission denied"
        );
        assert_eq!(
            e(&["2 errors occurred:\n\t* a\n\t* b\n\n", "plain\tmessage\n"]),
            "a; b; plain message"
        );
        assert_eq!(e(&[]), "");
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
    async fn the_end_of_an_outage_lifts_a_login_backoff_caused_by_it() {
        let client = VaultClient::new(VaultConfig::new(
            "http://127.0.0.1:1",
            AuthMethod::Token(TokenSource::Value("t".into())),
        ))
        .await
        .expect("client");
        let inner = &client.inner;
        let backoff = |error: Error| {
            *inner.login_backoff.lock().unwrap() = Some(LoginBackoff {
                error,
                retry_at: Instant::now() + Duration::from_secs(3600),
                failures: 6,
            });
        };
        let down = inner.unavailable("connection refused".into());
        backoff(down.clone());
        assert_eq!(client.login().await.unwrap_err(), down, "held back");
        let mut recoveries = client.recoveries();
        inner.answered();
        assert!(recoveries.has_changed().unwrap());
        assert!(inner.login_backoff.lock().unwrap().is_none());
        // A refused login (wrong credentials) stays backed off.
        let refused = Error::Auth {
            method: "token",
            detail: "no".into(),
        };
        backoff(refused.clone());
        let _ = inner.unavailable("connection refused".into());
        inner.answered();
        assert_eq!(client.login().await.unwrap_err(), refused);
        assert_eq!(*recoveries.borrow_and_update(), 2);
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
