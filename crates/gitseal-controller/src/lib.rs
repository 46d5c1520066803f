//! gitseal-controller: the in-cluster half of gitseal.
//!
//! It watches `SealedSecret` objects, opens their sealed values with the
//! cluster's private keys and writes ordinary `Secret`s by server-side apply
//! ([`reconcile`]). It generates, rotates, watches and publishes the sealing
//! keys ([`keys`]), serves the public keys, health and Prometheus metrics over
//! HTTP ([`http`], [`metrics`]), and elects one leader among replicas with a
//! `Lease` ([`leader`]). [`run`] wires it all together; the binary is a thin
//! wrapper around it.
//!
//! Nothing here ever logs, reports or exports a plaintext value: opened values
//! live in `secrecy` types until they are serialized into the Secret patch.

pub mod crd;
pub mod hash;
pub mod health;
pub mod http;
pub mod keys;
pub mod kube_client;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod rollout;
pub mod run;
pub mod secret_index;
pub mod shard;
pub mod sources;
pub mod templates;
pub mod term;
pub mod triggers;
pub mod vault;
mod web;

use std::fmt;

/// Field manager of every server-side apply the controller makes.
pub const FIELD_MANAGER: &str = "gitseal-controller";
/// Annotation that lets the controller take over an existing Secret it did not create.
pub const ADOPT_ANNOTATION: &str = "gitseal.dev/adopt";
/// Label the controller puts on every Secret it manages (and watches by).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "gitseal-controller";
/// Label that marks a Secret in the controller namespace as a sealing key.
pub const KEY_LABEL: &str = "gitseal.dev/sealing-key";
/// Annotation with a sealing key's creation time (RFC 3339).
pub const KEY_CREATED_ANNOTATION: &str = "gitseal.dev/created";
/// Annotation with a sealing key's public key (`age1…`).
pub const KEY_RECIPIENT_ANNOTATION: &str = "gitseal.dev/recipient";
/// Prefix of the labels and annotations only the controller sets; refused
/// in a SealedSecret's template.
pub const RESERVED_PREFIX: &str = "gitseal.dev/";
/// Most data a Secret can hold: the sum of its decoded values, as the API
/// server counts it (`MaxSecretSize`).
pub const MAX_SECRET_DATA_BYTES: usize = 1024 * 1024;
/// The Secret type Kubernetes fills with a service account's token; refused
/// in a SealedSecret's template unless the operator allows it.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// Name of the ConfigMap where the public keys are published.
pub const PUBLIC_KEYS_CONFIGMAP: &str = "gitseal-public-keys";

/// The reason of a SealedSecret's `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The Secret holds every item.
    Synced,
    /// A sealed value was altered or is not a valid sealed value.
    DecryptFailed,
    /// A sealed value names no key the controller holds.
    UnknownKey,
    /// A sealed value was sealed for another namespace, name, item or scope.
    ScopeMismatch,
    /// Vault could not be reached (or is not configured).
    VaultUnavailable,
    /// The controller could not log in to Vault (wrong role, secret id,
    /// token or Kubernetes auth role): an operator has to fix its
    /// credentials. Retried with backoff like `VaultUnavailable`.
    VaultAuthFailed,
    /// The Vault path or version does not exist.
    VaultNotFound,
    /// The namespace may not read that Vault path.
    VaultForbidden,
    /// A Secret of that name exists and is not managed by this SealedSecret.
    SecretNotOwned,
    /// The spec is unusable (e.g. an item in both encryptedData and vaultData).
    InvalidSpec,
    /// The Kubernetes API refused to write the Secret.
    ApplyFailed,
    /// The template sets labels or annotations under `gitseal.dev/`, which
    /// are reserved for the controller (a Secret carrying them could pose
    /// as one of its sealing keys).
    ReservedMetadata,
    /// The SealedSecret sits in the controller's own namespace, where its
    /// sealing keys live; refused unless `--allow-controller-namespace`.
    NamespaceNotAllowed,
    /// The data would exceed what a Secret can hold (1 MiB).
    TooLarge,
    /// A template of `spec.template.data` does not render (syntax, an
    /// unknown input, a limit); the message names the key and the line.
    TemplateError,
    /// The template asks for a Secret type the controller does not write
    /// (`kubernetes.io/service-account-token`: Kubernetes would fill it with
    /// a token of any service account of the namespace), unless the
    /// operator allows it.
    SecretTypeNotAllowed,
}

impl Reason {
    /// The CamelCase word used in conditions, events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::DecryptFailed => "DecryptFailed",
            Reason::UnknownKey => "UnknownKey",
            Reason::ScopeMismatch => "ScopeMismatch",
            Reason::VaultUnavailable => "VaultUnavailable",
            Reason::VaultAuthFailed => "VaultAuthFailed",
            Reason::VaultNotFound => "VaultNotFound",
            Reason::VaultForbidden => "VaultForbidden",
            Reason::SecretNotOwned => "SecretNotOwned",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::ReservedMetadata => "ReservedMetadata",
            Reason::NamespaceNotAllowed => "NamespaceNotAllowed",
            Reason::TooLarge => "TooLarge",
            Reason::TemplateError => "TemplateError",
            Reason::SecretTypeNotAllowed => "SecretTypeNotAllowed",
        }
    }

    /// Every reason, for metrics exported at zero.
    pub const ALL: [Reason; 16] = [
        Reason::Synced,
        Reason::DecryptFailed,
        Reason::UnknownKey,
        Reason::ScopeMismatch,
        Reason::VaultUnavailable,
        Reason::VaultAuthFailed,
        Reason::VaultNotFound,
        Reason::VaultForbidden,
        Reason::SecretNotOwned,
        Reason::InvalidSpec,
        Reason::ApplyFailed,
        Reason::ReservedMetadata,
        Reason::NamespaceNotAllowed,
        Reason::TooLarge,
        Reason::TemplateError,
        Reason::SecretTypeNotAllowed,
    ];

    /// Whether the failure may go away by retrying alone (Vault or the API
    /// answering again): the object is then `Reconciling`. Every other
    /// failure needs a person (reseal, import a key, fix the spec or the
    /// credentials, adopt the Secret): the object is `Stalled`, in the
    /// kstatus sense. Both are retried with backoff either way.
    pub fn is_transient(self) -> bool {
        matches!(self, Reason::VaultUnavailable | Reason::ApplyFailed)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the controller. Messages never contain a
/// secret value or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The object lacks a field the API server always sets.
    #[error("object has no {0}")]
    MissingField(&'static str),
    /// One or more items could not be resolved; the status says which. The
    /// existing Secret was left as it was.
    #[error("{reason}: {message}")]
    Items {
        /// The reason of the first failing item.
        reason: Reason,
        /// Which items failed and why.
        message: String,
    },
    /// The object cannot be synced as it is (reserved metadata, the
    /// controller's namespace, too large); the status says why. Nothing
    /// was written.
    #[error("{reason}: {message}")]
    Refused {
        /// Why.
        reason: Reason,
        /// What to do.
        message: String,
    },
    /// A Secret of that name exists and is not managed by this SealedSecret.
    #[error("Secret {0} exists and is not managed by this SealedSecret; add the annotation gitseal.dev/adopt: \"true\" to it to let gitseal take it over")]
    NotOwned(String),
    /// No sealing key is loaded yet.
    #[error("no sealing keys are loaded yet")]
    NoKeys,
    /// A sealing-key Secret or identity file is unusable.
    #[error("sealing key {origin}: {message}")]
    BadKey {
        /// Which Secret or file.
        origin: String,
        /// What is wrong (never the key).
        message: String,
    },
    /// The shard flags are unusable.
    #[error("{0}")]
    InvalidShard(String),
    /// A duration flag could not be parsed.
    #[error("invalid duration {0:?}: expected e.g. 720h, 30m, 90s, 30d or 0")]
    InvalidDuration(String),
    /// Serialization failed.
    #[error("serialization: {0}")]
    Serialize(String),
    /// I/O (the HTTP listener).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// The label used in the `gitseal_reconcile_failures_total` metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Error::Items { reason, .. } | Error::Refused { reason, .. } => reason.as_str(),
            Error::NotOwned(_) => Reason::SecretNotOwned.as_str(),
            Error::Kube(_) => "KubernetesApi",
            Error::NoKeys => "NoKeys",
            Error::MissingField(_) => "InvalidObject",
            Error::BadKey { .. } => "BadKey",
            Error::InvalidDuration(_)
            | Error::InvalidShard(_)
            | Error::Serialize(_)
            | Error::Io { .. } => "Internal",
        }
    }

    /// Every value [`Error::metric_reason`] can take, for metrics exported
    /// at zero.
    pub fn metric_reasons() -> impl Iterator<Item = &'static str> {
        Reason::ALL
            .iter()
            .filter(|r| **r != Reason::Synced)
            .map(|r| r.as_str())
            .chain([
                "KubernetesApi",
                "NoKeys",
                "InvalidObject",
                "BadKey",
                "Internal",
            ])
    }
}

/// Installs rustls' `ring` crypto provider as the process default. Idempotent:
/// a second call (or a provider installed by someone else) is not an error.
/// Must run before the first TLS connection: when two providers are compiled
/// in (e.g. `aws-lc-rs` through another dependency), rustls refuses to pick one.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Parses a duration such as `720h`, `30m`, `90s`, `30d`, `1h30m` or `0`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, Error> {
    let bad = || Error::InvalidDuration(text.chars().take(32).collect());
    let t = text.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}
