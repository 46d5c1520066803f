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
//!
//! Trust: `--env NAME` reads where to fetch from the keyring's `controller:`
//! block, and a kube context other than the environment's is refused;
//! plain `http://` is refused except to loopback (`--insecure-http`
//! overrides); `--write` replaces only the keys this controller published
//! before (`gitseal_manifest::keyring::Keyring::apply_published`), and a
//! changed active key is written only after the user accepts its key id
//! (`--accept-new-key KEYID`, or yes at a prompt).
#![allow(clippy::print_stderr)]

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use gitseal_crypto::KeyId;
use gitseal_manifest::keyring::{
    self, ControllerEndpoint, KeyUpdate, Keyring, Published, UpdateMode, DEFAULT_PATH,
};
use http::StatusCode;
use http_body_util::BodyExt as _;

use crate::exit::{coded, Exit};
use crate::io::read_source;

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
/// Sources (give one, or --env NAME to use that environment's `controller:`
/// block in the keyring):
///
/// --kube: GET /v1/keys through the Kubernetes API server's service proxy
/// (/api/v1/namespaces/NS/services/SERVICE:PORT/proxy/v1/keys) with your
/// kubeconfig: no port-forward. Needs the RBAC permission `get` on
/// `services/proxy`, which deploy/ grants to every authenticated user.
///
/// --configmap [NAME]: the `gitseal-public-keys` ConfigMap read from the
/// Kubernetes API with your kubeconfig (`keys.json` and `active` entries).
///
/// --url URL: an HTTP GET of URL/v1/keys on the controller (https://, or
/// http:// to this machine, e.g. after `kubectl port-forward`; plain http to
/// another host needs --insecure-http).
///
/// --configmap-file FILE: the ConfigMap saved with kubectl (YAML or JSON).
///
/// The kubeconfig is --kubeconfig FILE, else $KUBECONFIG, else
/// ~/.kube/config, else the in-cluster service account. The context is the
/// environment's (`controller.context`; a different --context is refused),
/// else --context, else the current one.
///
/// Every recipient is checked (a valid age1… key whose key id matches the
/// published one); anything wrong is refused and nothing is written. Prints
/// the active recipient (with --all: every published one, newest first), one
/// per line. --write puts the active key in place of the keys this
/// controller published before, keeping the environment's other recipients
/// (disaster recovery, break-glass); --add appends it. When the active key
/// changed, both key ids are shown and nothing is written until you accept
/// the new one (--accept-new-key KEYID, or yes at the prompt).
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal fetch-key --env prod --write          # prod's controller, as the keyring's controller: block says
  gitseal fetch-key --kube
  gitseal fetch-key --kube --context prod --env prod --write
  gitseal fetch-key --env prod --write --accept-new-key 4ad4bfc2ce5c258d
  gitseal fetch-key --configmap --kubeconfig ~/.kube/dr.yaml --env dr --add
  kubectl -n gitseal-system port-forward svc/gitseal-controller 8080:8080 &
  gitseal fetch-key --url http://127.0.0.1:8080
  kubectl get configmap gitseal-public-keys -n gitseal-system -o yaml > cm.yaml
  gitseal fetch-key --configmap-file cm.yaml --all

The keyring is --keyring FILE, else .gitseal/keys.yaml at the repository
root (created by --write when missing). It is written back in canonical
form: the comment lines at its top are kept, other comments are not (use
`note:` on keys).
Exit codes: 0 ok; 2 bad usage, an unusable kubeconfig, invalid published
keys, a refused source (plain http, another context) or a new key not
accepted (nothing written); 4 the controller or the Kubernetes API could not
be reached or refused (401, 403 RBAC, 404 not found, 503 not ready; nothing
written).
Documentation: https://github.com/gitseal/gitseal/blob/main/docs/cli.md#gitseal-fetch-key")]
#[command(group(
    clap::ArgGroup::new("source")
        .args(["url", "kube", "configmap", "configmap_file"])
))]
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

    /// Allow --url http:// to a host other than this machine (anyone on
    /// the path can swap the key).
    #[arg(long)]
    pub insecure_http: bool,

    /// Kubeconfig file for the Kubernetes API [default: $KUBECONFIG, else ~/.kube/config, else in-cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context [default: the environment's controller.context, else the current one].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace the controller runs in [default: controller.namespace, else gitseal-system].
    #[arg(long, value_name = "NS")]
    pub controller_namespace: Option<String>,

    /// The controller's Service (--kube) [default: controller.service, else gitseal-controller].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Port of the Service, by name or number (--kube) [default: controller.port, else http].
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,

    /// Print every published key (newest first), not only the active one.
    #[arg(long, conflicts_with_all = ["write", "add"])]
    pub all: bool,

    /// Keyring file [default: .gitseal/keys.yaml at the repository root].
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Environment of the keyring: where to fetch from (its controller:
    /// block) and what to update [default: the keyring's defaultEnvironment].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Put the active key in place of the keys this controller published
    /// before; other recipients stay.
    #[arg(long, conflicts_with = "add")]
    pub write: bool,

    /// Append the active key to the environment's recipients (kept once).
    #[arg(long)]
    pub add: bool,

    /// Write a changed active key without asking, if its key id is KEYID.
    #[arg(long, value_name = "KEYID")]
    pub accept_new_key: Option<String>,
}

/// Reads the keys from a saved `gitseal-public-keys` ConfigMap.
fn from_configmap_file(path: &Path) -> anyhow::Result<Vec<Published>> {
    let (origin, text) = read_source(path)?;
    Ok(keyring::parse_published_configmap(&text, &origin)?)
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
        Some(other) => crate::exit::message(other),
        None => crate::exit::message(err),
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

/// Whether `host` (from a URL) is this machine: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where the keys come from, after the command line and the keyring's
/// `controller:` block are put together.
struct Plan {
    /// A remote source, or `None` for `--configmap-file`.
    target: Option<Target>,
    /// The kubeconfig context to use (checked against the environment's).
    context: Option<String>,
}

/// The keyring in use and the environment named.
struct KeyringChoice {
    path: PathBuf,
    /// The file's text (`None`: it does not exist yet and is created).
    text: Option<String>,
    keyring: Keyring,
    env: Option<String>,
}

impl KeyringChoice {
    /// The environment's controller block, when the environment exists.
    fn endpoint(&self) -> Option<&ControllerEndpoint> {
        let name = self.env.as_deref()?;
        self.keyring.environments.get(name)?.controller.as_ref()
    }
}

/// The keyring: --keyring, else the repository's; `None` when neither
/// exists and nothing is to be written.
fn choose_keyring(args: &Args) -> anyhow::Result<Option<KeyringChoice>> {
    let writing = args.write || args.add;
    let path = match &args.keyring {
        Some(p) => p.clone(),
        None => match keyring::discover(Path::new(".")) {
            Some(found) => found.path,
            None if writing || args.env.is_some() => match keyring::find_root(Path::new(".")) {
                Some(root) if writing => root.join(DEFAULT_PATH),
                _ => bail!(
                    "no keyring: there is no {DEFAULT_PATH} at the repository root{}; pass \
                     --keyring FILE",
                    if writing {
                        " (and this is not in a git repository, so none is created)"
                    } else {
                        ""
                    }
                ),
            },
            None => return Ok(None),
        },
    };
    let (text, keyring) = if path.exists() {
        let text = gitseal_manifest::files::read_to_string(&path)?;
        let keyring = Keyring::from_yaml(&text, &path.display().to_string())?;
        (Some(text), keyring)
    } else if writing {
        let keyring = Keyring {
            version: 1,
            ..Keyring::default()
        };
        (None, keyring)
    } else {
        bail!("--keyring {}: no such file", path.display());
    };
    let env = match args.env.clone() {
        Some(n) => Some(n),
        None => keyring.default_environment.clone().or_else(|| {
            (keyring.environments.len() == 1)
                .then(|| keyring.environments.keys().next().cloned())
                .flatten()
        }),
    };
    if env.is_none() && writing {
        bail!(
            "{}: which environment? pass --env NAME (the keyring has: {})",
            path.display(),
            keyring
                .environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let (Some(name), false) = (&args.env, writing) {
        if !keyring.environments.contains_key(name) {
            return Err(gitseal_manifest::Error::UnknownEnvironment {
                name: name.clone(),
                known: keyring.environments.keys().cloned().collect(),
            }
            .into());
        }
    }
    Ok(Some(KeyringChoice {
        path,
        text,
        keyring,
        env,
    }))
}

/// The source: the command line's, else the environment's controller block.
fn plan(
    args: &Args,
    endpoint: Option<&ControllerEndpoint>,
    env: Option<&str>,
) -> anyhow::Result<Plan> {
    let empty = ControllerEndpoint::default();
    let ep = endpoint.unwrap_or(&empty);
    // The environment's context is the only one used for it.
    let context = match (&ep.context, &args.context) {
        (Some(want), Some(given)) if want != given => {
            return Err(coded(
                Exit::Usage,
                format!(
                    "environment {:?} reaches its controller through kube context {want:?} (the \
                     keyring's controller.context), but --context is {given:?}: refusing to read \
                     another cluster's key for it. Drop --context, or fix the keyring",
                    env.unwrap_or_default()
                ),
            ))
        }
        (Some(want), _) => Some(want.clone()),
        (None, given) => given.clone(),
    };
    let namespace = args
        .controller_namespace
        .clone()
        .or_else(|| ep.namespace.clone())
        .unwrap_or_else(|| "gitseal-system".to_string());
    let explicit = args.kube
        || args.url.is_some()
        || args.configmap.is_some()
        || args.configmap_file.is_some();
    let url = args
        .url
        .clone()
        .or_else(|| (!explicit).then(|| ep.url.clone()).flatten());
    let configmap = args.configmap.clone().or_else(|| {
        (!explicit && url.is_none())
            .then(|| ep.config_map.clone())
            .flatten()
    });
    let kube =
        args.kube || (!explicit && url.is_none() && configmap.is_none() && endpoint.is_some());
    let kube_flags =
        args.kubeconfig.is_some() || args.context.is_some() || args.controller_namespace.is_some();
    let proxy_flags = args.service.is_some() || args.port.is_some();
    if let Some(url) = url {
        if kube_flags || proxy_flags || args.configmap_file.is_some() {
            bail!("--kubeconfig, --context, --controller-namespace, --service and --port are for --kube and --configmap, not --url");
        }
        let base = parse_url(&url)?;
        if base.scheme_str() == Some("http")
            && !base.host().is_some_and(is_loopback)
            && !args.insecure_http
        {
            return Err(coded(
                Exit::Usage,
                format!(
                    "{}: plain http to another machine: anyone on the way can swap the key, and \
                     everything sealed to it would open for them. Use https://, or --kube \
                     (through the Kubernetes API, with the kubeconfig's CA), or --url \
                     http://127.0.0.1:PORT after `kubectl port-forward`; --insecure-http \
                     overrides",
                    if url.contains('@') {
                        "--url"
                    } else {
                        url.as_str()
                    }
                ),
            ));
        }
        return Ok(Plan {
            target: Some(Target::Controller { url, base }),
            context: None,
        });
    }
    if let Some(path) = &args.configmap_file {
        if kube_flags || proxy_flags {
            bail!("--kubeconfig, --context, --controller-namespace, --service and --port are for --kube and --configmap, not --configmap-file");
        }
        let _ = path;
        return Ok(Plan {
            target: None,
            context: None,
        });
    }
    if let Some(name) = configmap {
        if proxy_flags {
            bail!("--service and --port are for --kube, not --configmap");
        }
        check_name("--controller-namespace", &namespace, false)?;
        if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e)) && Path::new(&name).exists()
        {
            bail!("--configmap {name}: that is a file; use --configmap-file {name}");
        }
        check_name("--configmap", &name, true)?;
        return Ok(Plan {
            target: Some(Target::ConfigMap { namespace, name }),
            context,
        });
    }
    if kube {
        let service = args
            .service
            .clone()
            .or_else(|| ep.service.clone())
            .unwrap_or_else(|| "gitseal-controller".to_string());
        let port = args
            .port
            .clone()
            .or_else(|| ep.port.clone())
            .unwrap_or_else(|| "http".to_string());
        check_name("--controller-namespace", &namespace, false)?;
        check_name("--service", &service, false)?;
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            check_name("--port", &port, false)?;
        }
        return Ok(Plan {
            target: Some(Target::Proxy {
                namespace,
                service,
                port,
            }),
            context,
        });
    }
    bail!(
        "where from? give --kube, --configmap, --url URL or --configmap-file FILE, or --env NAME \
         with a controller: block for that environment in the keyring (see keys.example)"
    )
}

/// The client configuration from the kubeconfig (or the in-cluster service account).
async fn kube_config(args: &Args, context: Option<&str>) -> anyhow::Result<kube::Config> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
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
    if context.is_some() {
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
async fn get(args: &Args, target: &Target, context: Option<&str>) -> anyhow::Result<String> {
    // Before any kube client, and so any rustls configuration, exists: with
    // more than one rustls provider compiled in, rustls panics unless a
    // process default is installed.
    gitseal_vault::install_default_crypto_provider();
    let mut config = match target {
        Target::Controller { base, .. } => kube::Config::new(base.clone()),
        _ => kube_config(args, context).await?,
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

/// The published keys from the planned source.
fn fetch(args: &Args, plan: &Plan) -> anyhow::Result<Vec<Published>> {
    let Some(target) = &plan.target else {
        return match &args.configmap_file {
            Some(path) => from_configmap_file(path),
            None => bail!("give --kube, --configmap, --url URL or --configmap-file FILE"),
        };
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let body = runtime.block_on(get(args, target, plan.context.as_deref()))?;
    let origin = target.origin();
    match target {
        Target::ConfigMap { .. } => Ok(keyring::parse_published_configmap(&body, &origin)?),
        _ => Ok(keyring::parse_published_json(&body, &origin)?),
    }
}

/// Whether the user accepts a changed active key: `--accept-new-key` naming
/// it, or yes at a prompt on a terminal. Says what changed either way.
fn accepted(args: &Args, update: &KeyUpdate) -> anyhow::Result<bool> {
    let new_id = update.active.key_id();
    let old: Vec<String> = if update.controller_before.is_empty() {
        update.before.iter().map(KeyId::to_string).collect()
    } else {
        update
            .controller_before
            .iter()
            .map(KeyId::to_string)
            .collect()
    };
    eprintln!(
        "gitseal: the controller's active key for environment {:?} changed: the keyring seals to key id(s) {}; the controller now publishes key id {new_id} ({})",
        update.environment,
        old.join(", "),
        update.active
    );
    if let Some(given) = &args.accept_new_key {
        let given = given.trim();
        if given == new_id.to_string() || given == update.active.to_string() {
            return Ok(true);
        }
        return Err(coded(
            Exit::Usage,
            format!(
                "--accept-new-key {given} does not name the controller's active key (key id \
                 {new_id}); the key changed again, or another was expected: nothing written"
            ),
        ));
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!("Seal new values to key id {new_id}? Check it with the cluster's operator first. [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(matches!(
            line.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ));
    }
    Ok(false)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let writing = args.write || args.add;
    if args.accept_new_key.is_some() && !writing {
        bail!("--accept-new-key is for --write and --add");
    }
    let mut chosen = choose_keyring(&args)?;
    let plan = plan(
        &args,
        chosen.as_ref().and_then(KeyringChoice::endpoint),
        chosen.as_ref().and_then(|c| c.env.as_deref()),
    )?;
    let keys = fetch(&args, &plan)?;
    let Some(active) = keys.iter().find(|k| k.active).map(|k| k.recipient.clone()) else {
        bail!("no published key is marked active");
    };
    if let Some(choice) = chosen.as_mut() {
        if let Some(name) = choice.env.clone() {
            let mode = if args.add {
                UpdateMode::Add
            } else {
                UpdateMode::Replace
            };
            let mut updated = choice.keyring.clone();
            let update = updated.apply_published(&name, &keys, mode)?;
            let path = choice.path.display().to_string();
            if !writing {
                if update.changed() {
                    eprintln!(
                        "{path}: environment {name:?} seals to key id(s) {}; the controller's active key is {} (run with --write to update)",
                        gitseal_manifest::join_ids(&update.before),
                        active.key_id()
                    );
                } else {
                    eprintln!(
                        "{path}: environment {name:?} is up to date (key id {})",
                        active.key_id()
                    );
                }
            } else if !update.changed() {
                eprintln!(
                    "{path}: environment {name:?} already seals to {active} (key id {}); unchanged",
                    active.key_id()
                );
            } else {
                if update.new_key && !accepted(&args, &update)? {
                    return Err(coded(
                        Exit::Usage,
                        format!(
                            "the new key was not accepted; {path} is unchanged. Check key id {} with \
                             the cluster's operator, then run again with --accept-new-key {}",
                            active.key_id(),
                            active.key_id()
                        ),
                    ));
                }
                if let Some(dir) = choice.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if !dir.exists() {
                        std::fs::create_dir_all(dir).map_err(|e| {
                            anyhow!(
                                "cannot create {}: {}",
                                dir.display(),
                                gitseal_manifest::files::reason(&e)
                            )
                        })?;
                    }
                }
                updated.save(&choice.path, choice.text.as_deref())?;
                eprintln!(
                    "{path}: environment {name:?} {} {active} (key id {}); it seals to key id(s) {}",
                    if args.add { "now includes" } else { "now seals to" },
                    active.key_id(),
                    gitseal_manifest::join_ids(&update.after)
                );
                if !update.dropped.is_empty() {
                    eprintln!(
                        "warning: the controller no longer publishes key id(s) {}: values sealed only to them will not open; re-seal them (`gitseal verify` lists them)",
                        gitseal_manifest::join_ids(&update.dropped)
                    );
                }
                choice.keyring = updated;
            }
        }
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
