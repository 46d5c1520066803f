//! The controller's Vault adapter: turns `spec.vaultData` items into values
//! through `gitseal-vault`, behind the [`VaultResolver`] seam of
//! [`sources`](crate::sources).
//!
//! It exists so that reconcile never deals with Vault details:
//!
//! * one [`VaultClient`] per process (one login, renewed in the background),
//!   built from the `run` command's `--vault-*` flags ([`VaultArgs`]);
//! * one [`Session`](gitseal_vault::Session) per reconcile, so fields of the
//!   same secret (`db#user`, `db#password`) cost one Vault read;
//! * the operator's tenancy policy ([`PathPolicy`]) is checked for every item
//!   *before* any Vault call, and again (by the session) on the path a read
//!   would really touch once the mount's KV version is known; a refused item
//!   fails with `VaultForbidden`;
//! * every `gitseal_vault::Error` maps to a condition [`Reason`]
//!   ([`reason_for`]): `VaultUnavailable` is transient (reconcile keeps the
//!   last good Secret and retries with backoff), `VaultNotFound` covers both
//!   404 shapes (missing path, deleted or destroyed version) and a missing
//!   field, `VaultForbidden` covers the policy, references to built-in or
//!   non-KV mounts, and Vault's own 403;
//! * `spec.refreshInterval` becomes the requeue delay ([`requeue_after`]),
//!   and bounds the age of a read shared with other reconciles
//!   ([`shared_read_max_age`]), so `--vault-cache-ttl` never stretches it;
//! * when Vault is back after an outage, the objects waiting for it are
//!   retried at once ([`waiting_when_back`]), not at their next backoff.
//!
//! Values stay in `secrecy` types; failure messages are built from
//! references and status codes only, never from values or tokens.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use futures::stream::{BoxStream, StreamExt};
use gitseal_manifest::types::{SealedSecretSpec, VaultReference};
use gitseal_manifest::SealedSecret;
use gitseal_vault::{
    AuthMethod, ExposeSecret, MetricsSnapshot, PathPolicy, TokenSource, VaultClient, VaultConfig,
    VaultRef, DEFAULT_SERVICE_ACCOUNT_TOKEN, DEFAULT_TEMPLATE,
};
use kube::runtime::reflector::{ObjectRef, Store};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use secrecy::SecretSlice;

use crate::sources::{ItemFailure, VaultItem, VaultResolver};
use crate::{Error, Reason};

/// How often Vault items are read again when `spec.refreshInterval` is not set.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// The shortest accepted `spec.refreshInterval` (protects Vault from a
/// tenant asking for a read every second).
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// The longest accepted `spec.refreshInterval` (30 days).
pub const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(30 * 86_400);

/// How the controller logs in to Vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VaultAuthKind {
    /// Kubernetes auth with the pod's service-account token.
    Kubernetes,
    /// AppRole with a role id and a secret id read from files.
    Approle,
    /// A Vault token from `--vault-token-file` or the `VAULT_TOKEN` variable.
    Token,
}

/// The `--vault-*` flags of `gitseal-controller run` (flatten into its args).
///
/// Credentials are never flag values: the token, role id and secret id are
/// read from files (or, for a token, the `VAULT_TOKEN` variable) at each
/// login, so they appear neither in `ps` nor in `--help`.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
#[command(next_help_heading = "Vault")]
pub struct VaultArgs {
    /// Vault/OpenBao address, e.g. https://vault.vault.svc:8200. Without it
    /// Vault is off and every vaultData item fails with VaultUnavailable.
    #[arg(long = "vault-addr", env = "VAULT_ADDR", value_name = "URL")]
    pub vault_addr: Option<String>,

    /// How to log in to Vault.
    #[arg(
        long = "vault-auth",
        env = "GITSEAL_VAULT_AUTH",
        value_enum,
        default_value_t = VaultAuthKind::Kubernetes
    )]
    pub vault_auth: VaultAuthKind,

    /// Mount of the auth method [default: kubernetes or approle].
    #[arg(long = "vault-auth-mount", value_name = "MOUNT")]
    pub vault_auth_mount: Option<String>,

    /// Vault role bound to the controller's service account (kubernetes auth).
    #[arg(
        long = "vault-role",
        env = "GITSEAL_VAULT_ROLE",
        value_name = "ROLE",
        default_value = "gitseal-controller"
    )]
    pub vault_role: String,

    /// Service-account token presented to Vault (kubernetes auth); re-read at each login.
    #[arg(long = "vault-jwt-file", value_name = "FILE", default_value = DEFAULT_SERVICE_ACCOUNT_TOKEN)]
    pub vault_jwt_file: PathBuf,

    /// File holding the AppRole role id (approle auth); re-read at each login.
    #[arg(long = "vault-role-id-file", value_name = "FILE")]
    pub vault_role_id_file: Option<PathBuf>,

    /// File holding the AppRole secret id (approle auth); re-read at each login.
    #[arg(long = "vault-secret-id-file", value_name = "FILE")]
    pub vault_secret_id_file: Option<PathBuf>,

    /// File holding a Vault token (token auth) [default: the VAULT_TOKEN variable].
    #[arg(long = "vault-token-file", value_name = "FILE")]
    pub vault_token_file: Option<PathBuf>,

    /// Extra CA certificate (PEM) to trust for an https address; repeatable.
    #[arg(long = "vault-cacert", env = "VAULT_CACERT", value_name = "FILE")]
    pub vault_ca_cert: Vec<PathBuf>,

    /// Vault Enterprise / OpenBao namespace.
    #[arg(long = "vault-namespace", env = "VAULT_NAMESPACE", value_name = "NS")]
    pub vault_namespace: Option<String>,

    /// Which Vault paths a Kubernetes namespace may read, as
    /// [MOUNT:]SEGMENT/.../[*] templates with {namespace}; repeatable or
    /// comma-separated. Anything else is refused with VaultForbidden before
    /// any Vault call. See docs/vault.md.
    #[arg(
        long = "vault-path-template",
        env = "GITSEAL_VAULT_PATH_TEMPLATES",
        value_name = "TEMPLATE",
        value_delimiter = ',',
        default_value = DEFAULT_TEMPLATE
    )]
    pub vault_path_templates: Vec<String>,

    /// Timeout of one Vault request.
    #[arg(long = "vault-timeout", value_name = "DURATION", default_value = "10s", value_parser = duration_arg)]
    pub vault_timeout: Duration,

    /// How long one Vault read is shared by reconciles that name the same
    /// secret (0 = only reads in flight at the same time); never longer than
    /// a tenth of the reading object's refreshInterval.
    #[arg(long = "vault-cache-ttl", value_name = "DURATION", default_value = "30s", value_parser = duration_arg)]
    pub vault_cache_ttl: Duration,
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    crate::parse_duration(s).map_err(|e| e.to_string())
}

/// Validated Vault settings: how to reach and log in to Vault, and the
/// tenancy policy.
#[derive(Clone, Debug)]
pub struct VaultSettings {
    /// Client configuration (its `Debug` is safe to log).
    pub config: VaultConfig,
    /// Which paths each namespace may read.
    pub policy: PathPolicy,
}

impl VaultArgs {
    /// The settings these flags describe; `Ok(None)` when no Vault address
    /// is set (Vault is off). Errors say which flag is wrong.
    pub fn settings(&self) -> Result<Option<VaultSettings>, gitseal_vault::Error> {
        self.settings_with(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    }

    fn settings_with(
        &self,
        env_is_set: impl Fn(&str) -> bool,
    ) -> Result<Option<VaultSettings>, gitseal_vault::Error> {
        let Some(addr) = self.vault_addr.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if addr.is_empty() {
            return Ok(None);
        }
        let config_err = |detail: String| gitseal_vault::Error::Config { detail };
        let auth = match self.vault_auth {
            VaultAuthKind::Kubernetes => {
                if self.vault_role.trim().is_empty() {
                    return Err(config_err(
                        "--vault-auth kubernetes needs --vault-role (the Vault role bound to the controller's service account)".into(),
                    ));
                }
                AuthMethod::Kubernetes {
                    mount: self
                        .vault_auth_mount
                        .clone()
                        .unwrap_or_else(|| "kubernetes".into()),
                    role: self.vault_role.trim().to_string(),
                    jwt_file: self.vault_jwt_file.clone(),
                }
            }
            VaultAuthKind::Approle => {
                let (Some(role_id_file), Some(secret_id_file)) =
                    (&self.vault_role_id_file, &self.vault_secret_id_file)
                else {
                    return Err(config_err(
                        "--vault-auth approle needs --vault-role-id-file and --vault-secret-id-file"
                            .into(),
                    ));
                };
                AuthMethod::AppRole {
                    mount: self
                        .vault_auth_mount
                        .clone()
                        .unwrap_or_else(|| "approle".into()),
                    role_id_file: role_id_file.clone(),
                    secret_id_file: secret_id_file.clone(),
                }
            }
            VaultAuthKind::Token => {
                match &self.vault_token_file {
                    Some(file) => AuthMethod::Token(TokenSource::File(file.clone())),
                    None if env_is_set("VAULT_TOKEN") => {
                        AuthMethod::Token(TokenSource::Env("VAULT_TOKEN".into()))
                    }
                    None => return Err(config_err(
                        "--vault-auth token needs --vault-token-file or the VAULT_TOKEN variable"
                            .into(),
                    )),
                }
            }
        };
        let policy = PathPolicy::from_templates(&self.vault_path_templates)?;
        let mut config = VaultConfig::new(addr, auth);
        config.ca_cert_files = self.vault_ca_cert.clone();
        config.vault_namespace = self
            .vault_namespace
            .clone()
            .filter(|n| !n.trim().is_empty());
        config.timeout = self.vault_timeout;
        config.shared_cache_ttl = self.vault_cache_ttl;
        Ok(Some(VaultSettings { config, policy }))
    }
}

/// The controller's [`VaultResolver`]: one shared client, a policy check
/// before any call, a read session per reconcile. Cheap to clone.
#[derive(Clone)]
pub struct VaultSource {
    client: VaultClient,
    policy: PathPolicy,
}

impl std::fmt::Debug for VaultSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let templates: Vec<String> = self
            .policy
            .templates()
            .iter()
            .map(ToString::to_string)
            .collect();
        f.debug_struct("VaultSource")
            .field("client", &self.client)
            .field("path_templates", &templates)
            .finish()
    }
}

impl VaultSource {
    /// Builds the process's Vault client. Does not contact Vault (the first
    /// login happens on the first read), so the controller starts while
    /// Vault is down. Must run inside a Tokio runtime.
    pub async fn connect(settings: VaultSettings) -> Result<Self, gitseal_vault::Error> {
        let client = VaultClient::new(settings.config).await?;
        Ok(VaultSource::new(client, settings.policy))
    }

    /// A source over an existing client.
    pub fn new(client: VaultClient, policy: PathPolicy) -> Self {
        VaultSource { client, policy }
    }

    /// The shared client.
    pub fn client(&self) -> &VaultClient {
        &self.client
    }

    /// The tenancy policy.
    pub fn policy(&self) -> &PathPolicy {
        &self.policy
    }

    /// The client's counters (logins, renewals, reads, cache hits), for
    /// `/metrics`.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.client.metrics()
    }

    /// Resolves every item of one SealedSecret in `namespace` that re-reads
    /// them every `refresh`: one entry per item. Invalid references fail
    /// with `InvalidSpec`, references outside the policy or to built-in
    /// mounts with `VaultForbidden`, both without any Vault call; the others
    /// are read through one session (each distinct secret once, a read
    /// shared with other reconciles only if younger than
    /// [`shared_read_max_age`]), concurrently.
    pub async fn resolve_items(
        &self,
        namespace: &str,
        items: &BTreeMap<String, VaultReference>,
        refresh: Duration,
    ) -> BTreeMap<String, VaultItem> {
        let mut out = BTreeMap::new();
        let mut allowed = Vec::with_capacity(items.len());
        for (item, reference) in items {
            let checked = VaultRef::try_from(reference).and_then(|r| {
                self.policy.check(namespace, &r)?;
                Ok(r)
            });
            match checked {
                Ok(r) => allowed.push((item, r)),
                Err(e) => {
                    out.insert(item.clone(), Err(failure(item, &e)));
                }
            }
        }
        if allowed.is_empty() {
            return out;
        }
        // The policy was checked above; the session checks it again, and on
        // the path a read would really touch, so no read can ever skip it.
        let session = self
            .client
            .session()
            .for_namespace(&self.policy, namespace)
            .max_age(shared_read_max_age(refresh));
        let reads = allowed.iter().map(|(item, r)| {
            let session = &session;
            async move { (*item, session.resolve(r).await) }
        });
        for (item, result) in join_all(reads).await {
            let value = match result {
                Ok(secret) => Ok(SecretSlice::from(
                    secret.expose_secret().as_bytes().to_vec(),
                )),
                Err(e) => Err(failure(item, &e)),
            };
            out.insert(item.clone(), value);
        }
        out
    }
}

impl VaultResolver for VaultSource {
    fn resolve<'a>(
        &'a self,
        namespace: &'a str,
        items: &'a BTreeMap<String, VaultReference>,
        refresh: Duration,
    ) -> BoxFuture<'a, BTreeMap<String, VaultItem>> {
        Box::pin(self.resolve_items(namespace, items, refresh))
    }

    fn recoveries(&self) -> Option<BoxStream<'static, ()>> {
        let changes = futures::stream::unfold(self.client.recoveries(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        });
        Some(changes.boxed())
    }

    fn metrics_collector(&self) -> Option<Box<dyn Collector>> {
        Some(Box::new(VaultMetricsCollector::new(self)))
    }
}

/// Exports the Vault client's counters on `/metrics` (register it with
/// `Registry::register_collector`; the registry's `gitseal` prefix applies):
///
/// * `gitseal_vault_calls_total{kind="login|login_failure|renewal|renewal_failure|read|token_check|mount_lookup|health_probe"}`:
///   HTTP calls made to Vault (the goal: one login per process, one read per
///   distinct secret per refresh, one mount lookup per mount and minute,
///   health probes only during an outage);
/// * `gitseal_vault_read_failures_total`: reads that failed (any reason);
/// * `gitseal_vault_cache_hits_total`: items served without a Vault read.
///
/// Labels are fixed words; no path, value or token is ever exported.
#[derive(Debug)]
pub struct VaultMetricsCollector {
    client: VaultClient,
}

impl VaultMetricsCollector {
    /// A collector reading `source`'s client counters at each scrape.
    pub fn new(source: &VaultSource) -> Self {
        VaultMetricsCollector {
            client: source.client.clone(),
        }
    }
}

impl Collector for VaultMetricsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.client.metrics();
        let calls = [
            ("login", m.logins),
            ("login_failure", m.login_failures),
            ("renewal", m.renewals),
            ("renewal_failure", m.renewal_failures),
            ("read", m.reads),
            ("token_check", m.token_checks),
            ("mount_lookup", m.mount_lookups),
            ("health_probe", m.health_probes),
        ];
        let mut family = encoder.encode_descriptor(
            "vault_calls",
            "HTTP calls made to Vault, by kind",
            None,
            MetricType::Counter,
        )?;
        for (kind, value) in calls {
            let labels = [("kind", kind)];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        for (name, help, value) in [
            (
                "vault_read_failures",
                "Vault reads that failed (unavailable, not found, forbidden, ...)",
                m.read_failures,
            ),
            (
                "vault_cache_hits",
                "Vault items served without a Vault read (same reconcile, or shared cache)",
                m.cache_hits,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// The condition reason for a Vault error.
///
/// | `gitseal_vault::Error` | reason |
/// |---|---|
/// | `Unavailable` (network, timeout, 5xx, 429, sealed) | `VaultUnavailable` (transient) |
/// | `Auth` (login refused) | `VaultAuthFailed` |
/// | `Config`, `InvalidPolicy`, `Unexpected` (other 4xx) | `VaultUnavailable` |
/// | `NotFound` (missing path; deleted or destroyed version), `FieldMissing` | `VaultNotFound` |
/// | `Forbidden` (tenancy policy, also on the path a KV-version mismatch would touch; a built-in, non-KV or invisible mount; Vault's 403) | `VaultForbidden` |
/// | `InvalidRef` (malformed, or a KV version that is not the mount's) | `InvalidSpec` |
pub fn reason_for(e: &gitseal_vault::Error) -> Reason {
    use gitseal_vault::Error as V;
    match e {
        V::NotFound { .. } | V::FieldMissing { .. } => Reason::VaultNotFound,
        V::Forbidden { .. } => Reason::VaultForbidden,
        V::InvalidRef { .. } => Reason::InvalidSpec,
        V::Auth { .. } => Reason::VaultAuthFailed,
        _ => Reason::VaultUnavailable,
    }
}

fn failure(item: &str, e: &gitseal_vault::Error) -> ItemFailure {
    ItemFailure {
        item: item.to_string(),
        reason: reason_for(e),
        message: e.to_string(),
    }
}

/// How old a Vault read shared with other reconciles may be for an object
/// that refreshes every `refresh`: a tenth of it (and never more than
/// `--vault-cache-ttl`). A change in Vault, or an outage, then shows within
/// 1.1 refresh intervals; reconciles of many objects naming the same secret
/// at about the same time still share one read.
pub fn shared_read_max_age(refresh: Duration) -> Duration {
    refresh / 10
}

/// Whether `obj` waits for Vault to come back: it has Vault items and its
/// `Ready` condition says `VaultUnavailable`.
pub fn waits_for_vault(obj: &SealedSecret) -> bool {
    !obj.spec.vault_data.is_empty()
        && obj.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "False"
                    && c.reason == Reason::VaultUnavailable.as_str()
            })
        })
}

/// Each time `recoveries` yields (Vault is back after an outage), the
/// objects in `store` that [wait for Vault](waits_for_vault): the controller
/// reconciles them at once rather than at their next backoff, which may be
/// minutes away. Empty without a recovery signal.
pub fn waiting_when_back(
    recoveries: Option<BoxStream<'static, ()>>,
    store: Store<SealedSecret>,
) -> BoxStream<'static, ObjectRef<SealedSecret>> {
    let Some(recoveries) = recoveries else {
        return futures::stream::empty().boxed();
    };
    recoveries
        .flat_map(move |()| {
            let waiting: Vec<ObjectRef<SealedSecret>> = store
                .state()
                .iter()
                .filter(|o| waits_for_vault(o))
                .map(|o| ObjectRef::from_obj(&**o))
                .collect();
            if !waiting.is_empty() {
                tracing::info!(
                    objects = waiting.len(),
                    "Vault is back; retrying the objects waiting for it"
                );
            }
            futures::stream::iter(waiting)
        })
        .boxed()
}

/// Parses a `refreshInterval` such as `1h`, `15m`, `30s` or `1h30m`
/// (`None`: the default, 1h). Between 10s and 30d; anything else is an
/// `InvalidSpec` error saying what is accepted.
pub fn parse_refresh_interval(text: Option<&str>) -> Result<Duration, Error> {
    let Some(text) = text else {
        return Ok(DEFAULT_REFRESH_INTERVAL);
    };
    let shown: String = text.chars().take(32).collect();
    let invalid = |why: &str| {
        Error::Items {
        reason: Reason::InvalidSpec,
        message: format!(
            "spec.refreshInterval {shown:?} {why}: expected a duration such as 1h, 15m, 30s or 1h30m, between 10s and 30d"
        ),
    }
    };
    let d = crate::parse_duration(text).map_err(|_| invalid("is not a duration"))?;
    if d < MIN_REFRESH_INTERVAL {
        return Err(invalid("is too short"));
    }
    if d > MAX_REFRESH_INTERVAL {
        return Err(invalid("is too long"));
    }
    Ok(d)
}

/// When reconcile should run again after a success: the controller's resync
/// period, or the SealedSecret's refresh interval if it has Vault items and
/// that is sooner. An invalid `refreshInterval` is an `InvalidSpec` error
/// (report it like an item failure; the existing Secret stays).
pub fn requeue_after(spec: &SealedSecretSpec, resync: Duration) -> Result<Duration, Error> {
    if spec.vault_data.is_empty() {
        return Ok(resync);
    }
    let refresh = parse_refresh_interval(spec.refresh_interval.as_deref())?;
    Ok(if resync.is_zero() {
        refresh
    } else {
        resync.min(refresh)
    })
}

#[cfg(test)]
mod tests;
