//! `gitseal fetch-key`: get a controller's published public keys, from its
//! HTTP server (`GET /v1/keys`) or from the `gitseal-public-keys` ConfigMap
//! saved with kubectl, check them, print them, and optionally write them
//! into a keyring file. Public keys only: nothing here is secret.
//!
//! Every published recipient is parsed and its published key id checked
//! against the recipient, so a garbled or tampered list is refused instead
//! of being written into the keyring.
#![allow(clippy::print_stderr)]

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use gitseal_crypto::Recipient;
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::keyring::{Environment, Keyring};
use serde_yaml::Value;

use crate::commands::seal::read_source;
use crate::exit::{coded, Exit};

/// Largest response body read from a controller.
const MAX_RESPONSE: u64 = 1 << 20;
/// Connect, read and write timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Fetch a controller's public key(s); print them or write them into a keyring.
///
/// From --url: an HTTP GET of URL/v1/keys on the controller (port-forward or
/// an in-cluster address; plain http:// only). From --configmap-file: the
/// `gitseal-public-keys` ConfigMap saved with kubectl (YAML or JSON), using
/// its `keys.json` and `active` entries.
///
/// Every recipient is checked (a valid age1… key whose key id matches the
/// published one); anything wrong is refused and nothing is written. Prints
/// the active recipient (with --all: every published one, newest first), one
/// per line. With --keyring and --write the environment's recipients are
/// replaced by the active key (--add appends it instead); the environment or
/// the keyring file is created when missing; other environments are kept.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  kubectl -n gitseal-system port-forward svc/gitseal-controller 8080:8080 &
  gitseal fetch-key --url http://127.0.0.1:8080
  gitseal fetch-key --url http://127.0.0.1:8080 --keyring .gitseal/keys.yaml --env prod --write
  kubectl get configmap gitseal-public-keys -n gitseal-system -o yaml > cm.yaml
  gitseal fetch-key --configmap-file cm.yaml --keyring .gitseal/keys.yaml --env dr --add
  gitseal fetch-key --configmap-file cm.yaml --all

Note: the keyring is written back in canonical form (comments are not kept).
Exit codes: 0 ok, 2 bad usage or invalid published keys (nothing written),
4 the controller could not be reached or answered with an error.")]
#[command(group(clap::ArgGroup::new("source").required(true).args(["url", "configmap_file"])))]
pub struct Args {
    /// Base URL of the controller's HTTP server (http://HOST:PORT[/PREFIX]).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// The `gitseal-public-keys` ConfigMap as saved by `kubectl get … -o yaml` ('-' for standard input).
    #[arg(long, value_name = "FILE")]
    pub configmap_file: Option<PathBuf>,

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
fn from_configmap(path: &Path) -> anyhow::Result<Vec<PublishedKey>> {
    let (origin, text) = read_source(path)?;
    let value: Value = serde_yaml::from_str(&text)
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

/// The parts of an `http://host[:port][/prefix]` URL.
fn parse_url(url: &str) -> anyhow::Result<(String, u16, String)> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        bail!(
            "--url {url}: https is not supported by fetch-key's built-in client; use \
             `kubectl port-forward` and an http:// URL, or save the ConfigMap with \
             `kubectl get configmap gitseal-public-keys -n gitseal-system -o yaml > cm.yaml` \
             and pass --configmap-file cm.yaml"
        );
    } else {
        bail!("--url {url}: expected an http:// URL, e.g. http://127.0.0.1:8080");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        bail!("--url {url}: expected http://HOST[:PORT][/PREFIX]");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| anyhow::anyhow!("--url {url}: the port {p:?} is not a number"))?;
            (h, port)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("--url {url}: no host");
    }
    Ok((
        host.to_string(),
        port,
        path.trim_end_matches('/').to_string(),
    ))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(body.get(..line_end)?).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = body.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// `GET URL/v1/keys` over plain HTTP/1.1; the response body as text.
fn http_get_keys(url: &str) -> anyhow::Result<String> {
    let (host, port, prefix) = parse_url(url)?;
    let unavailable = |what: String| coded(Exit::Unavailable, what);
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| unavailable(format!("{url}: cannot resolve {host}: {e}")))?
        .collect();
    let mut last_err = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(mut stream) = stream else {
        let why = last_err.map_or_else(|| "no address".to_string(), |e| e.to_string());
        return Err(unavailable(format!(
            "{url}: cannot connect to the controller: {why} \
             (is `kubectl port-forward` running? or use --configmap-file)"
        )));
    };
    let io = |e: std::io::Error| unavailable(format!("{url}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {prefix}/v1/keys HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\n\
         User-Agent: gitseal/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE + 1)
        .read_to_end(&mut response)
        .map_err(io)?;
    if response.len() as u64 > MAX_RESPONSE {
        bail!("{url}/v1/keys: the response is larger than 1 MiB; is this a gitseal controller?");
    }
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(unavailable(format!(
            "{url}/v1/keys: not an HTTP response (connection closed early?)"
        )));
    };
    let head = String::from_utf8_lossy(response.get(..split).unwrap_or_default());
    let body = response.get(split + 4..).unwrap_or_default();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200) => {}
        Some(code) => {
            return Err(unavailable(format!(
                "{url}/v1/keys answered HTTP {code}{}",
                if code == 503 {
                    " (the controller has not loaded its keys yet; retry)"
                } else {
                    ""
                }
            )))
        }
        None => return Err(unavailable(format!("{url}/v1/keys: not an HTTP response"))),
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)
            .ok_or_else(|| unavailable(format!("{url}/v1/keys: a malformed chunked response")))?
    } else {
        body.to_vec()
    };
    String::from_utf8(body).map_err(|_| anyhow::anyhow!("{url}/v1/keys: the response is not UTF-8"))
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
    let keys = match (&args.url, &args.configmap_file) {
        (Some(url), _) => {
            let body = http_get_keys(url)?;
            parse_keys_json(&body, &format!("{}/v1/keys", url.trim_end_matches('/')))?
        }
        (None, Some(path)) => from_configmap(path)?,
        (None, None) => bail!("give --url URL or --configmap-file FILE"),
    };
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
