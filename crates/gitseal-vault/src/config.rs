//! How to reach and log in to Vault.
//!
//! Separate from the client so the controller and the CLI can build it from
//! their own flags and environment. Credentials are never stored in plain
//! `String`s: inline tokens are [`SecretString`]s, everything else is a file
//! path or an environment variable *name* read at login time (so a rotated
//! service-account token or secret-id file is picked up on the next login).
//! `Debug` output is safe to log.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::Error;

/// Where the default Kubernetes service-account token lives in a pod.
pub const DEFAULT_SERVICE_ACCOUNT_TOKEN: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Where a Vault token comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// The token itself.
    Value(SecretString),
    /// The name of an environment variable holding the token.
    Env(String),
    /// A file holding the token (surrounding whitespace is ignored). Re-read
    /// on every login, so a rotated file is picked up.
    File(PathBuf),
}

/// How the client authenticates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A Vault token.
    Token(TokenSource),
    /// AppRole: role id and secret id read from files at each login.
    AppRole {
        /// Auth mount, default `approle`.
        mount: String,
        /// File holding the role id.
        role_id_file: PathBuf,
        /// File holding the secret id.
        secret_id_file: PathBuf,
    },
    /// Kubernetes: the pod's service-account JWT, read at each login.
    Kubernetes {
        /// Auth mount, default `kubernetes`.
        mount: String,
        /// Vault role bound to the service account.
        role: String,
        /// The JWT file, default [`DEFAULT_SERVICE_ACCOUNT_TOKEN`].
        jwt_file: PathBuf,
    },
}

impl AuthMethod {
    /// AppRole on the default `approle` mount.
    pub fn approle(role_id_file: impl Into<PathBuf>, secret_id_file: impl Into<PathBuf>) -> Self {
        AuthMethod::AppRole {
            mount: "approle".into(),
            role_id_file: role_id_file.into(),
            secret_id_file: secret_id_file.into(),
        }
    }

    /// Kubernetes auth on the default `kubernetes` mount with the pod's
    /// default service-account token.
    pub fn kubernetes(role: impl Into<String>) -> Self {
        AuthMethod::Kubernetes {
            mount: "kubernetes".into(),
            role: role.into(),
            jwt_file: PathBuf::from(DEFAULT_SERVICE_ACCOUNT_TOKEN),
        }
    }

    /// Short name used in errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Token(_) => "token",
            AuthMethod::AppRole { .. } => "approle",
            AuthMethod::Kubernetes { .. } => "kubernetes",
        }
    }
}

/// Client configuration. Build with [`VaultConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VaultConfig {
    /// Vault address, e.g. `https://vault.example:8200`.
    pub address: String,
    /// How to log in.
    pub auth: AuthMethod,
    /// Extra CA certificates (PEM files) to trust for `https` addresses.
    pub ca_cert_files: Vec<PathBuf>,
    /// Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub vault_namespace: Option<String>,
    /// Per-request timeout (default 10 s).
    pub timeout: Duration,
    /// How long a successful read is shared across sessions (default 30 s;
    /// zero disables sharing beyond reads that are in flight at the same
    /// time). Bounds how stale a value can be in addition to the refresh
    /// interval, and lets a burst of reconciles that name the same path make
    /// one Vault read.
    pub shared_cache_ttl: Duration,
}

impl VaultConfig {
    /// A configuration with defaults for everything but address and auth.
    pub fn new(address: impl Into<String>, auth: AuthMethod) -> Self {
        VaultConfig {
            address: address.into(),
            auth,
            ca_cert_files: Vec::new(),
            vault_namespace: None,
            timeout: Duration::from_secs(10),
            shared_cache_ttl: Duration::from_secs(30),
        }
    }

    /// The configuration the `vault`/`bao` CLIs use: `VAULT_ADDR` (default
    /// `http://127.0.0.1:8200`), `VAULT_TOKEN` or else `~/.vault-token`,
    /// `VAULT_CACERT`, `VAULT_NAMESPACE`. For `gitseal exec`, which reads
    /// with the user's own token.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_with(|k| std::env::var_os(k).and_then(|v| v.into_string().ok()))
    }

    pub(crate) fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let address = get("VAULT_ADDR")
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:8200".into());
        let auth = if get("VAULT_TOKEN").is_some_and(|t| !t.trim().is_empty()) {
            AuthMethod::Token(TokenSource::Env("VAULT_TOKEN".into()))
        } else if let Some(home) = get("HOME").filter(|h| !h.is_empty()) {
            AuthMethod::Token(TokenSource::File(PathBuf::from(home).join(".vault-token")))
        } else {
            return Err(Error::Config {
                detail: "no Vault token: set VAULT_TOKEN or log in with `vault login`/`bao login` \
                         (which writes ~/.vault-token)"
                    .into(),
            });
        };
        let mut config = VaultConfig::new(address, auth);
        if let Some(ca) = get("VAULT_CACERT").filter(|c| !c.is_empty()) {
            config.ca_cert_files.push(PathBuf::from(ca));
        }
        config.vault_namespace = get("VAULT_NAMESPACE").filter(|n| !n.is_empty());
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn from_env_prefers_vault_token_then_token_file() {
        let c = VaultConfig::from_env_with(env(&[
            ("VAULT_ADDR", "https://vault:8200"),
            ("VAULT_TOKEN", "s.x"),
            ("VAULT_CACERT", "/ca.pem"),
            ("VAULT_NAMESPACE", "team"),
        ]))
        .unwrap();
        assert_eq!(c.address, "https://vault:8200");
        assert!(matches!(c.auth, AuthMethod::Token(TokenSource::Env(ref v)) if v == "VAULT_TOKEN"));
        assert_eq!(c.ca_cert_files, [PathBuf::from("/ca.pem")]);
        assert_eq!(c.vault_namespace.as_deref(), Some("team"));

        let c = VaultConfig::from_env_with(env(&[("HOME", "/home/me")])).unwrap();
        assert_eq!(c.address, "http://127.0.0.1:8200");
        assert!(
            matches!(c.auth, AuthMethod::Token(TokenSource::File(ref p)) if p == &PathBuf::from("/home/me/.vault-token"))
        );
        let e = VaultConfig::from_env_with(env(&[])).unwrap_err();
        assert_eq!(e.reason(), "VaultConfigInvalid");
        assert!(e.to_string().contains("set VAULT_TOKEN"), "{e}");
    }

    #[test]
    fn debug_is_safe_to_log() {
        let c = VaultConfig::new(
            "http://127.0.0.1:8200",
            AuthMethod::Token(TokenSource::Value("s.canary-token".into())),
        );
        let out = format!("{c:?}");
        assert!(!out.contains("canary"), "{out}");
        assert!(out.contains("REDACTED"), "{out}");
    }
}
