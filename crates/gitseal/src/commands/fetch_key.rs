//! `gitseal fetch-key`: get a controller's published public keys, check
//! them, print them, and optionally write them into a keyring file. Public
//! keys only: nothing here is secret.
//!
//! Four sources: the controller's HTTP server (`--url`, http or https); the
//! same `GET /v1/keys` through the Kubernetes API server's service proxy with
//! the user's kubeconfig (`--kube`, no port-forward); the published
//! `gitseal-public-keys` ConfigMap read from the API (`--configmap`); or that
//! ConfigMap saved with kubectl (`--configmap-file`). Network access goes
//! through kube's client, on the controller's TLS stack (rustls with the ring
//! provider), so the kubeconfig's CA, client certificates, tokens and exec
//! plugins all work.
//!
//! Every published recipient is parsed and its published key id checked
//! against the recipient, so a garbled or tampered list is refused instead
//! of being written into the keyring; on any failure the keyring is not
//! touched.
#![allow(clippy::print_stderr)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use gitseal_crypto::Recipient;
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::keyring::{Environment, Keyring};
use http::StatusCode;
use http_body_util::BodyExt as _;
use serde_yaml::Value;

use crate::commands::seal::read_source;
use crate::exit::{coded, Exit};

/// Largest response body read from a controller or the API server.
const MAX_RESPONSE: usize = 1 << 20;
/// Connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout (the API server proxies to the controller: allow for both).
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Name of the ConfigMap the controller publishes its public keys in.
const DEFAULT_CONFIGMAP: &str = "gitseal-public-keys";

/// Fetch a controller's public key(s); print them or write them into a keyring.
///
/// Sources (give one):
///
/// --kube: GET /v1/keys through the Kubernetes API server's service proxy
/// (/api/v1/namespaces/NS/services/SERVICE:PORT/proxy/v1/keys) with your
/// kubeconfig: no port-forward. Needs the RBAC permission `get` on
/// `services/proxy`, which deploy/ grants to every authenticated user.
///
/// --configmap [NAME]: the `gitseal-public-keys` ConfigMap read from the
/// Kubernetes API with your kubeconfig (`keys.json` and `active` entries).
///
/// --url URL: an HTTP GET of URL/v1/keys on the controller (http:// or
/// https://; e.g. after `kubectl port-forward`, or an in-cluster address).
///
/// --configmap-file FILE: the ConfigMap saved with kubectl (YAML or JSON).
///
/// The kubeconfig is --kubeconfig FILE, else $KUBECONFIG, else
/// ~/.kube/config, else the in-cluster service account; --context picks a
/// context other than the current one.
///
/// Every recipient is checked (a valid age1… key whose key id matches the
/// published one); anything wrong is refused and nothing is written. Prints
/// the active recipient (with --all: every published one, newest first), one
/// per line. With --keyring and --write the environment's recipients are
/// replaced by the active key (--add appends it instead); the environment or
/// the keyring file is created when missing; other environments are kept.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal fetch-key --kube
  gitseal fetch-key --kube --context prod --keyring .gitseal/keys.yaml --env prod --write
  gitseal fetch-key --configmap --kubeconfig ~/.kube/dr.yaml --keyring .gitseal/keys.yaml --env dr --add
  kubectl -n gitseal-system port-forward svc/gitseal-controller 8080:8080 &
  gitseal fetch-key --url http://127.0.0.1:8080
  kubectl get configmap gitseal-public-keys -n gitseal-system -o yaml > cm.yaml
  gitseal fetch-key --configmap-file cm.yaml --all

Note: the keyring is written back in canonical form (comments are not kept).
Exit codes: 0 ok; 2 bad usage, an unusable kubeconfig, or invalid published
keys (nothing written); 4 the controller or the Kubernetes API could not be
reached or refused (401, 403 RBAC, 404 not found, 503 not ready; nothing written).")]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["url", "kube", "configmap", "configmap_file"])
))]
#[command(group(clap::ArgGroup::new("api").args(["kube", "configmap"])))]
// (a group, as `requires` on a plain flag counts its default `false` as given)
#[command(group(clap::ArgGroup::new("proxy").args(["kube"])))]
pub struct Args {
    /// Through the Kubernetes API server's service proxy, with your kubeconfig.
    #[arg(long)]
    pub kube: bool,

    /// Read the published ConfigMap from the Kubernetes API, with your kubeconfig.
    #[arg(
        long,
        value_name = "NAME",
        num_args = 0..=1,
        default_missing_value = DEFAULT_CONFIGMAP
    )]
    pub configmap: Option<String>,

    /// Base URL of the controller's HTTP server (http[s]://HOST:PORT[/PREFIX]).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// The `gitseal-public-keys` ConfigMap as saved by `kubectl get … -o yaml` ('-' for standard input).
    #[arg(long, value_name = "FILE")]
    pub configmap_file: Option<PathBuf>,

    /// Kubeconfig file for --kube/--configmap [default: $KUBECONFIG, else ~/.kube/config, else in-cluster].
    #[arg(long, value_name = "FILE", requires = "api")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context for --kube/--configmap [default: the current context].
    #[arg(long, value_name = "NAME", requires = "api")]
    pub context: Option<String>,

    /// Namespace the controller runs in (--kube/--configmap).
    #[arg(
        long,
        value_name = "NS",
        default_value = "gitseal-system",
        requires = "api"
    )]
    pub controller_namespace: String,

    /// The controller's Service (--kube).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "gitseal-controller",
        requires = "proxy"
    )]
    pub service: String,

    /// Port of the Service, by name or number (--kube).
    #[arg(long, value_name = "PORT", default_value = "http", requires = "proxy")]
    pub port: String,

    /// Print every published key (newest first), not only the active one.
    #[arg(long, conflicts_with_all = ["write", "add"])]
    pub all: bool,

    /// Keyring file to update with --write or --add (created if missing).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Environment of the keyring to update [default: the keyring's defaultEnvironment].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Replace the environment's recipients with the active key.
    #[arg(long, requires = "keyring", conflicts_with = "add")]
    pub write: bool,

    /// Append the active key to the environment's recipients (kept once).
    #[arg(long, requires = "keyring")]
    pub add: bool,
}

/// One published key, checked.
#[derive(Clone, Debug)]
struct PublishedKey {
    recipient: Recipient,
    active: bool,
}

/// Parses and checks a `keys.json` document (as served by `GET /v1/keys`).
fn parse_keys_json(text: &str, origin: &str) -> anyhow::Result<Vec<PublishedKey>> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("{origin}: the published keys are not valid JSON: {e}"))?;
    let Some(items) = value.as_array() else {
        bail!("{origin}: the published keys are not a JSON array of keys");
    };
    if items.is_empty() {
        bail!("{origin}: no keys are published (has the controller started?)");
    }
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let field = |name: &str| item.get(name).and_then(serde_json::Value::as_str);
        let Some(text) = field("recipient") else {
            bail!("{origin}: key #{n} has no \"recipient\" string");
        };
        let recipient: Recipient = text
            .parse()
            .with_context(|| format!("{origin}: key #{n}: the recipient is not usable"))?;
        let Some(key_id) = field("keyId") else {
            bail!("{origin}: key #{n} has no \"keyId\" string");
        };
        let actual = recipient.key_id().to_string();
        if key_id != actual {
            bail!(
                "{origin}: key #{n} ({recipient}) is published with key id {key_id:?}, but its \
                 key id is {actual}; the list is corrupt or tampered with, refusing it"
            );
        }
        let active = item
            .get("active")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        keys.push(PublishedKey { recipient, active });
    }
    match keys.iter().filter(|k| k.active).count() {
        1 => Ok(keys),
        0 => bail!("{origin}: no published key is marked active"),
        n => bail!("{origin}: {n} published keys are marked active; expected one"),
    }
}

/// Reads the keys from a saved `gitseal-public-keys` ConfigMap.
fn from_configmap_file(path: &Path) -> anyhow::Result<Vec<PublishedKey>> {
    let (origin, text) = read_source(path)?;
    parse_configmap(&text, &origin)
}

/// Parses and checks a `gitseal-public-keys` ConfigMap (YAML or JSON): its
/// `keys.json`, and `active` when present.
fn parse_configmap(text: &str, origin: &str) -> anyhow::Result<Vec<PublishedKey>> {
    let value: Value = serde_yaml::from_str(text)
        .map_err(|e| anyhow::anyhow!("{origin}: not valid YAML or JSON: {e}"))?;
    if value.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
        bail!(
            "{origin}: not a ConfigMap; save it with \
             `kubectl get configmap gitseal-public-keys -n gitseal-system -o yaml`"
        );
    }
    let data = value.get("data");
    let field = |name: &str| data.and_then(|d| d.get(name)).and_then(Value::as_str);
    let Some(json) = field("keys.json") else {
        bail!("{origin}: the ConfigMap has no data.\"keys.json\" (is it gitseal-public-keys?)");
    };
    let keys = parse_keys_json(json, &format!("{origin}, data.\"keys.json\""))?;
    if let Some(active) = field("active") {
        let active: Recipient = active
            .trim()
            .parse()
            .with_context(|| format!("{origin}: data.active is not usable"))?;
        if !keys.iter().any(|k| k.active && k.recipient == active) {
            bail!(
                "{origin}: data.active ({active}) is not the key marked active in \
                 data.\"keys.json\"; refusing an inconsistent ConfigMap"
            );
        }
    }
    Ok(keys)
}

/// Where a remote GET goes.
enum Target {
    /// The controller's own HTTP server: `base` is `scheme://authority[/prefix]`.
    Controller { url: String, base: http::Uri },
    /// `GET /v1/keys` through the API server's service proxy.
    Proxy {
        namespace: String,
        service: String,
        port: String,
    },
    /// The published ConfigMap, from the API.
    ConfigMap { namespace: String, name: String },
}

impl Target {
    /// The request path (relative to the controller URL or the API server).
    fn path(&self) -> String {
        match self {
            Target::Controller { .. } => "/v1/keys".to_string(),
            Target::Proxy {
                namespace,
                service,
                port,
            } => format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/v1/keys"),
            Target::ConfigMap { namespace, name } => {
                format!("/api/v1/namespaces/{namespace}/configmaps/{name}")
            }
        }
    }

    /// How errors name what was read.
    fn origin(&self) -> String {
        match self {
            Target::Controller { url, .. } => format!("{}/v1/keys", url.trim_end_matches('/')),
            Target::Proxy {
                namespace,
                service,
                port,
            } => format!("service {namespace}/{service}:{port} /v1/keys (API server proxy)"),
            Target::ConfigMap { namespace, name } => format!("ConfigMap {namespace}/{name}"),
        }
    }

    /// The error for a request that got no answer (exit 4).
    fn unreachable(&self, server: &str, err: &kube::Error) -> anyhow::Error {
        let why = describe(err);
        let untrusted = why.contains("invalid peer certificate");
        let message = match self {
            Target::Controller { url, .. } if untrusted => format!(
                "{url}: cannot connect to the controller: {why} (its TLS certificate is not \
                 trusted by this system; use --kube, which trusts the kubeconfig's cluster CA)"
            ),
            Target::Controller { url, .. } => format!(
                "{url}: cannot connect to the controller: {why} (is `kubectl port-forward` \
                 running? or use --kube to go through the Kubernetes API)"
            ),
            _ if is_auth(err) => format!(
                "cannot get credentials for the Kubernetes API server at {server} from the \
                 kubeconfig: {why}"
            ),
            _ if untrusted => format!(
                "cannot reach the Kubernetes API server at {server}: {why} (the server's TLS \
                 certificate is not trusted: check the cluster's certificate-authority(-data) \
                 in the kubeconfig)"
            ),
            _ => format!(
                "cannot reach the Kubernetes API server at {server}: {why} (is the kubeconfig \
                 context right and the cluster reachable? `kubectl cluster-info` tells)"
            ),
        };
        coded(Exit::Unavailable, message)
    }

    /// The error for a non-2xx answer (exit 4).
    fn refused(&self, status: StatusCode, body: &[u8]) -> anyhow::Error {
        let code = status.as_u16();
        let api = status_message(body);
        let detail = excerpt(
            &api.clone()
                .unwrap_or_else(|| String::from_utf8_lossy(body).into()),
        );
        let said = if detail.is_empty() {
            format!("HTTP {code}")
        } else {
            format!("HTTP {code}: {detail}")
        };
        let origin = self.origin();
        let message = match (self, code) {
            (Target::Controller { .. }, 503) => format!(
                "{origin} answered {said} (the controller has not loaded its keys yet; retry)"
            ),
            (Target::Controller { .. }, _) => format!("{origin} answered {said}"),
            (_, 401) => format!(
                "the Kubernetes API server refused the kubeconfig's credentials ({said}); \
                 log in again, or check the user of the kubeconfig context"
            ),
            (
                Target::Proxy {
                    namespace,
                    service,
                    port,
                },
                403,
            ) => format!(
                "{origin}: forbidden ({said}). Reading the keys through the service proxy needs \
                 the RBAC permission `get` on `services/proxy` for service {service} in namespace \
                 {namespace} (deploy/rbac.yaml grants it to every authenticated user with the \
                 gitseal-public-keys-reader Role and RoleBinding). Check with `kubectl auth can-i \
                 get services/{service}:{port} --subresource=proxy -n {namespace}`, or try \
                 --configmap"
            ),
            (Target::ConfigMap { namespace, name }, 403) => format!(
                "{origin}: forbidden ({said}). Reading it needs the RBAC permission `get` on \
                 `configmaps` (name {name}) in namespace {namespace} (deploy/rbac.yaml grants it \
                 to every authenticated user with the gitseal-public-keys-reader Role and \
                 RoleBinding). Check with `kubectl auth can-i get configmaps/{name} -n \
                 {namespace}`, or try --kube"
            ),
            (
                Target::Proxy {
                    namespace,
                    service,
                    port,
                },
                404,
            ) => {
                if api.is_some() {
                    format!(
                        "service {namespace}/{service} not found ({said}): is the gitseal \
                         controller installed in namespace {namespace}? Choose another with \
                         --controller-namespace or --service"
                    )
                } else {
                    format!(
                        "{origin}: the service answered {said}: is it a gitseal controller, and \
                         is port {port:?} its HTTP port (--port)?"
                    )
                }
            }
            (Target::ConfigMap { namespace, name }, 404) => format!(
                "ConfigMap {namespace}/{name} not found ({said}): is the gitseal controller \
                 installed in namespace {namespace} (--controller-namespace) and running? It \
                 publishes the ConfigMap once it has a key"
            ),
            (Target::Proxy { namespace, .. }, 502..=504) => format!(
                "{origin}: no controller is ready behind the service, or it has not loaded its \
                 keys yet ({said}); wait for `kubectl -n {namespace} rollout status \
                 deployment/gitseal-controller` and retry"
            ),
            _ => format!("{origin} answered {said}"),
        };
        coded(Exit::Unavailable, message)
    }
}

/// The message of a Kubernetes `Status` body; `Some` only when the body is
/// one (the API server answered, not the controller behind the proxy).
fn status_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("kind").and_then(serde_json::Value::as_str) != Some("Status") {
        return None;
    }
    let message = value.get("message").and_then(serde_json::Value::as_str);
    Some(message.unwrap_or_default().to_string())
}

/// The first line of a reply, at most 200 characters, for an error message.
fn excerpt(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or_default().trim();
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// A kube error for a message, without credentials: exec plugin failures
/// are described by kube with the plugin's command line and output (which
/// may hold a token), so those are summarised instead.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    use kube::client::AuthError;
    match auth_error(err) {
        // Not even the plugin's stderr: a plugin in debug mode, or a
        // wrapper that prints the failing response, can put a token there.
        Some(AuthError::AuthExecRun { out, .. }) => format!(
            "the kubeconfig user's exec credential plugin failed ({}); run it by hand to see why",
            out.status
        ),
        Some(AuthError::AuthExecParse(_) | AuthError::ParseTokenKey(_)) => {
            "the kubeconfig user's exec credential plugin did not print a valid ExecCredential"
                .to_string()
        }
        Some(other) => chain(other),
        None => chain(err),
    }
}

/// The credentials error in a kube error's chain, if any.
fn auth_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a kube::client::AuthError> {
    std::iter::successors(Some(err), |e| e.source()).find_map(|e| e.downcast_ref())
}

/// Whether a kube error is about getting credentials.
fn is_auth(err: &kube::Error) -> bool {
    auth_error(err).is_some()
}

/// The first line of a kubeconfig error (a YAML parse error goes on with
/// the offending lines, which may hold a token), with the location kept.
fn config_error(err: &(dyn std::error::Error + 'static)) -> String {
    let text = describe(err);
    let mut lines = text.lines();
    let first = lines
        .next()
        .unwrap_or_default()
        .trim_end_matches(':')
        .to_string();
    let location = lines.find_map(|l| l.trim().strip_prefix("--> <input>:"));
    match location.and_then(|l| l.split_once(':')) {
        Some((line, column)) if !first.contains(&format!("line {line}")) => {
            format!("{first} (line {line}, column {column})")
        }
        _ => first,
    }
}

/// An error and its sources as one line, without repeating a source that
/// the message above it already includes.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// The base URI of an `http(s)://host[:port][/prefix]` URL.
fn parse_url(url: &str) -> anyhow::Result<http::Uri> {
    // The URL is echoed only when it cannot hold credentials (no `@`).
    let shown = if url.contains('@') {
        "(a URL with user:password@, which is refused)"
    } else {
        url
    };
    let usage = || {
        anyhow!(
            "--url {shown}: expected http[s]://HOST[:PORT][/PREFIX], e.g. http://127.0.0.1:8080"
        )
    };
    let uri: http::Uri = url.parse().map_err(|_| usage())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(usage()),
    }
    let Some(authority) = uri.authority() else {
        return Err(usage());
    };
    if authority.as_str().contains('@') || authority.host().is_empty() || uri.query().is_some() {
        return Err(usage());
    }
    let prefix = uri.path().trim_end_matches('/');
    http::Uri::builder()
        .scheme(uri.scheme_str().unwrap_or("http"))
        .authority(authority.as_str())
        .path_and_query(if prefix.is_empty() { "/" } else { prefix })
        .build()
        .map_err(|_| usage())
}

/// Checks a Kubernetes name (a DNS label, or a DNS subdomain with dots) given on the command line.
fn check_name(flag: &str, value: &str, dots: bool) -> anyhow::Result<()> {
    let max = if dots { 253 } else { 63 };
    let ok = !value.is_empty()
        && value.len() <= max
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
        })
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && value
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if !ok {
        bail!(
            "{flag} {value:?}: not a Kubernetes name (lowercase letters, digits and '-'{}, at \
             most {max} characters)",
            if dots { ", '.'" } else { "" }
        );
    }
    Ok(())
}

/// The remote source chosen on the command line, checked.
fn target(args: &Args) -> anyhow::Result<Option<Target>> {
    if let Some(url) = &args.url {
        return Ok(Some(Target::Controller {
            url: url.clone(),
            base: parse_url(url)?,
        }));
    }
    let namespace = args.controller_namespace.clone();
    if args.kube {
        check_name("--controller-namespace", &namespace, false)?;
        check_name("--service", &args.service, false)?;
        let numeric = args.port.parse::<u16>().is_ok_and(|p| p > 0);
        if !numeric {
            check_name("--port", &args.port, false)?;
        }
        return Ok(Some(Target::Proxy {
            namespace,
            service: args.service.clone(),
            port: args.port.clone(),
        }));
    }
    if let Some(name) = &args.configmap {
        check_name("--controller-namespace", &namespace, false)?;
        if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e)) && Path::new(name).exists()
        {
            bail!("--configmap {name}: that is a file; use --configmap-file {name}");
        }
        check_name("--configmap", name, true)?;
        return Ok(Some(Target::ConfigMap {
            namespace,
            name: name.clone(),
        }));
    }
    Ok(None)
}

/// The client configuration from the kubeconfig (or the in-cluster service account).
async fn kube_config(args: &Args) -> anyhow::Result<kube::Config> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    if let Some(path) = &args.kubeconfig {
        let shown = path.display();
        let kubeconfig = Kubeconfig::read_from(path)
            .map_err(|e| anyhow!("--kubeconfig {shown}: {}", config_error(&e)))?;
        return kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| anyhow!("--kubeconfig {shown}: {}", config_error(&e)));
    }
    if args.context.is_some() {
        return kube::Config::from_kubeconfig(&options).await.map_err(|e| {
            anyhow!(
                "kubeconfig ($KUBECONFIG or ~/.kube/config): {}",
                config_error(&e)
            )
        });
    }
    kube::Config::infer().await.map_err(|e| {
        anyhow!(
            "no usable Kubernetes configuration: {}; set KUBECONFIG or pass --kubeconfig FILE",
            config_error(&e)
        )
    })
}

/// GETs the target; the body as text. Nothing is retried: a failure is reported at once.
async fn get(args: &Args, target: &Target) -> anyhow::Result<String> {
    // Before any kube client, and so any rustls configuration, exists: with
    // more than one rustls provider compiled in, rustls panics unless a
    // process default is installed.
    gitseal_vault::install_default_crypto_provider();
    let mut config = match target {
        Target::Controller { base, .. } => kube::Config::new(base.clone()),
        _ => kube_config(args).await?,
    };
    // kube retries 503/429 for minutes by default; fetch-key reports at once.
    config.default_retry = false;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    let server = config.cluster_url.to_string();
    // Building the client runs an exec credential plugin, if any.
    let client = kube::Client::try_from(config).map_err(|e| {
        if is_auth(&e) {
            target.unreachable(&server, &e)
        } else {
            anyhow!("cannot set up a client for {server}: {}", config_error(&e))
        }
    })?;
    let request = http::Request::get(target.path())
        .header(http::header::ACCEPT, "application/json")
        .body(kube::client::Body::from(Vec::new()))
        .context("internal error: cannot build the request")?;
    let response = client
        .send(request)
        .await
        .map_err(|e| target.unreachable(&server, &e))?;
    let status = response.status();
    let origin = target.origin();
    let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                anyhow!(
                    "{origin}: the response is larger than 1 MiB; is this a gitseal controller?"
                )
            } else {
                coded(
                    Exit::Unavailable,
                    format!("{origin}: the connection broke while reading the answer: {e}"),
                )
            }
        })?
        .to_bytes();
    if !status.is_success() {
        return Err(target.refused(status, &body));
    }
    String::from_utf8(body.to_vec()).map_err(|_| anyhow!("{origin}: the response is not UTF-8"))
}

/// The published keys from the source chosen on the command line.
fn fetch(args: &Args) -> anyhow::Result<Vec<PublishedKey>> {
    let Some(target) = target(args)? else {
        return match &args.configmap_file {
            Some(path) => from_configmap_file(path),
            None => bail!("give --kube, --configmap, --url URL or --configmap-file FILE"),
        };
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let body = runtime.block_on(get(args, &target))?;
    let origin = target.origin();
    match target {
        Target::ConfigMap { .. } => parse_configmap(&body, &origin),
        _ => parse_keys_json(&body, &origin),
    }
}

/// Writes the active key into the keyring (replace or append).
fn update_keyring(args: &Args, path: &Path, active: &Recipient) -> anyhow::Result<String> {
    let mut keyring = if path.exists() {
        Keyring::load(path)?
    } else {
        Keyring {
            version: 1,
            ..Keyring::default()
        }
    };
    let name = match args
        .env
        .as_deref()
        .or(keyring.default_environment.as_deref())
    {
        Some(n) => n.to_string(),
        None if keyring.environments.len() == 1 => keyring
            .environments
            .keys()
            .next()
            .cloned()
            .unwrap_or_default(),
        None => bail!(
            "{}: which environment? pass --env NAME (the keyring has: {})",
            path.display(),
            keyring
                .environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let env = keyring
        .environments
        .entry(name.clone())
        .or_insert_with(Environment::default);
    if args.add {
        if !env.recipients.contains(active) {
            env.recipients.push(active.clone());
        }
    } else {
        env.recipients = vec![active.clone()];
    }
    let text = keyring.to_yaml();
    // Never write something that does not read back.
    Keyring::from_yaml(&text, &path.display().to_string())
        .context("internal error: the updated keyring does not parse; nothing written")?;
    files::write_atomic(path, text.as_bytes(), NewFileMode::Public)?;
    Ok(name)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if (args.env.is_some() || args.keyring.is_some()) && !args.write && !args.add {
        bail!(
            "--keyring/--env are for updating a keyring: add --write (replace) or --add (append)"
        );
    }
    let keys = fetch(&args)?;
    let Some(active) = keys.iter().find(|k| k.active).map(|k| k.recipient.clone()) else {
        bail!("no published key is marked active");
    };
    if let Some(path) = &args.keyring {
        let env = update_keyring(&args, path, &active)?;
        eprintln!(
            "{}: environment {env:?} {} {} (key id {})",
            path.display(),
            if args.add {
                "now includes"
            } else {
                "now seals to"
            },
            active,
            active.key_id()
        );
    }
    let mut out = std::io::stdout().lock();
    if args.all {
        for k in &keys {
            writeln!(out, "{}", k.recipient)?;
        }
    } else {
        writeln!(out, "{active}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
