//! The crate's one error type.
//!
//! Every failure the controller has to tell a user about maps to one variant,
//! and [`Error::reason`] gives the stable condition reason the controller
//! writes into `status.conditions`. Errors name the mount, path, field and
//! version involved, never a secret value or a token: they are built only
//! from references, HTTP status codes and Vault's own error strings, never
//! from response bodies or the underlying client's error chain (which can
//! carry response content).

use std::fmt;

/// What went wrong talking to Vault, or with a reference or policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference (text or structured form) is malformed.
    #[error("invalid Vault reference `{reference}`: {reason}")]
    InvalidRef {
        /// The reference as given (sanitised, shortened).
        reference: String,
        /// What is wrong, and the expected form.
        reason: String,
    },

    /// An operator path template is malformed.
    #[error("invalid Vault path template `{template}`: {reason}")]
    InvalidPolicy {
        /// The template as given.
        template: String,
        /// What is wrong.
        reason: String,
    },

    /// Client configuration is unusable (bad address, unreadable CA file, ...).
    #[error("invalid Vault client configuration: {detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },

    /// The read is refused, before or by Vault: the tenancy policy
    /// (namespace given), a path that is not a secret of a KV mount (a
    /// built-in mount such as `sys`, another secrets engine, a KV v2 API
    /// endpoint, no such mount), or Vault itself (HTTP 403). Nothing was
    /// read.
    #[error("{}", forbidden_message(.namespace.as_deref(), .mount, .path, .detail))]
    Forbidden {
        /// The namespace the reference came from, for policy refusals.
        namespace: Option<String>,
        /// KV mount.
        mount: String,
        /// Path below the mount.
        path: String,
        /// Why.
        detail: String,
    },

    /// Vault has no secret there: the path does not exist (404 with
    /// `errors: []`), or the requested version was deleted or destroyed
    /// (404 with `deletion_time` set or `destroyed: true`).
    #[error("Vault secret {mount}/{path}{} not found: {kind}", version_suffix(.version))]
    NotFound {
        /// KV mount.
        mount: String,
        /// Path below the mount.
        path: String,
        /// Requested version, if pinned.
        version: Option<u64>,
        /// Which kind of 404.
        kind: NotFoundKind,
    },

    /// The secret exists but has no such field (or the field is `null`).
    #[error("Vault secret {mount}/{path}{} has no field `{field}`", version_suffix(.version))]
    FieldMissing {
        /// KV mount.
        mount: String,
        /// Path below the mount.
        path: String,
        /// Requested version, if pinned.
        version: Option<u64>,
        /// The missing field.
        field: String,
    },

    /// Vault cannot be used right now: connection refused, timeout, 5xx,
    /// 429, sealed or not initialised. Transient: retry with backoff.
    #[error("Vault at {address} is unavailable: {detail}")]
    Unavailable {
        /// The Vault address configured.
        address: String,
        /// What happened (no secret content).
        detail: String,
    },

    /// Logging in (or re-validating a token) failed.
    #[error("Vault login with {method} auth failed: {detail}")]
    Auth {
        /// `token`, `approle` or `kubernetes`.
        method: &'static str,
        /// What happened (never the credential).
        detail: String,
    },

    /// Vault answered in a way this client does not expect (other 4xx,
    /// unparsable reply).
    #[error("Vault rejected the request for {mount}/{path}: {detail}")]
    Unexpected {
        /// KV mount.
        mount: String,
        /// Path below the mount.
        path: String,
        /// HTTP status and Vault's error strings.
        detail: String,
    },
}

/// The two (three) shapes of a KV 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotFoundKind {
    /// No secret (or no such version) at the path.
    Missing,
    /// The version exists but was soft-deleted (`deletion_time` set).
    Deleted,
    /// The version was destroyed.
    Destroyed,
}

impl fmt::Display for NotFoundKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotFoundKind::Missing => "no secret at this path",
            NotFoundKind::Deleted => "this version was deleted",
            NotFoundKind::Destroyed => "this version was destroyed",
        })
    }
}

fn version_suffix(v: &Option<u64>) -> String {
    v.map(|v| format!("@{v}")).unwrap_or_default()
}

fn forbidden_message(namespace: Option<&str>, mount: &str, path: &str, detail: &str) -> String {
    match namespace {
        Some(ns) => format!("namespace `{ns}` may not read Vault path {mount}/{path}: {detail}"),
        None => format!("Vault path {mount}/{path} may not be read: {detail}"),
    }
}

impl Error {
    /// The stable condition reason for `status.conditions`:
    /// `VaultUnavailable`, `VaultNotFound`, `VaultFieldMissing`,
    /// `VaultForbidden`, `VaultAuthFailed`, `VaultInvalidRef`,
    /// `VaultConfigInvalid` or `VaultError`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Unavailable { .. } => "VaultUnavailable",
            Error::NotFound { .. } => "VaultNotFound",
            Error::FieldMissing { .. } => "VaultFieldMissing",
            Error::Forbidden { .. } => "VaultForbidden",
            Error::Auth { .. } => "VaultAuthFailed",
            Error::InvalidRef { .. } => "VaultInvalidRef",
            Error::InvalidPolicy { .. } | Error::Config { .. } => "VaultConfigInvalid",
            Error::Unexpected { .. } => "VaultError",
        }
    }

    /// The error with `path` as its path where it has none yet (mount-level
    /// refusals are made before any path is known).
    pub(crate) fn at_path(mut self, at: &str) -> Self {
        if let Error::Forbidden { path, .. } | Error::Unexpected { path, .. } = &mut self {
            if path.is_empty() {
                *path = at.to_string();
            }
        }
        self
    }

    /// True for failures worth retrying soon with backoff (Vault down,
    /// sealed, overloaded, or a login that failed for those reasons).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_stable() {
        let s = String::new;
        let cases = [
            (
                Error::InvalidRef {
                    reference: s(),
                    reason: s(),
                },
                "VaultInvalidRef",
            ),
            (
                Error::InvalidPolicy {
                    template: s(),
                    reason: s(),
                },
                "VaultConfigInvalid",
            ),
            (Error::Config { detail: s() }, "VaultConfigInvalid"),
            (
                Error::Forbidden {
                    namespace: None,
                    mount: s(),
                    path: s(),
                    detail: s(),
                },
                "VaultForbidden",
            ),
            (
                Error::NotFound {
                    mount: s(),
                    path: s(),
                    version: None,
                    kind: NotFoundKind::Missing,
                },
                "VaultNotFound",
            ),
            (
                Error::FieldMissing {
                    mount: s(),
                    path: s(),
                    version: None,
                    field: s(),
                },
                "VaultFieldMissing",
            ),
            (
                Error::Unavailable {
                    address: s(),
                    detail: s(),
                },
                "VaultUnavailable",
            ),
            (
                Error::Auth {
                    method: "token",
                    detail: s(),
                },
                "VaultAuthFailed",
            ),
            (
                Error::Unexpected {
                    mount: s(),
                    path: s(),
                    detail: s(),
                },
                "VaultError",
            ),
        ];
        for (e, reason) in cases {
            assert_eq!(e.reason(), reason);
            assert_eq!(e.is_transient(), reason == "VaultUnavailable");
        }
    }

    #[test]
    fn messages_name_mount_path_field_and_version() {
        let e = Error::FieldMissing {
            mount: "kv".into(),
            path: "app/db".into(),
            version: Some(3),
            field: "password".into(),
        };
        assert_eq!(
            e.to_string(),
            "Vault secret kv/app/db@3 has no field `password`"
        );
        let e = Error::NotFound {
            mount: "kv".into(),
            path: "app/db".into(),
            version: Some(2),
            kind: NotFoundKind::Destroyed,
        };
        assert_eq!(
            e.to_string(),
            "Vault secret kv/app/db@2 not found: this version was destroyed"
        );
    }
}
