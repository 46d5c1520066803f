//! Vault references and their resolution, for gitseal.
//!
//! A `SealedSecret` may take items from Vault/OpenBao instead of sealing them:
//! Git then holds only a reference, and the controller reads the value at
//! reconcile time. This crate is everything between a reference and a value:
//!
//! * [`VaultRef`]: a reference (mount, path, field, version, KV v1/v2), its
//!   YAML/JSON form and its compact text form (`kv/app/db#password@3`);
//! * [`PathPolicy`]: the operator's tenancy rule deciding which paths a
//!   namespace may reference, checked before any Vault call;
//! * [`VaultClient`]: one client per process, one login reused and renewed,
//!   token, AppRole or Kubernetes auth, typed [`Error`]s with stable
//!   condition [reasons](Error::reason), counters ([`MetricsSnapshot`]), and
//!   a signal when Vault is back after an outage
//!   ([`recoveries`](VaultClient::recoveries));
//! * [`Session`]: per-reconcile resolution that reads each secret once, and
//!   only the secret a reference describes: the KV version a reference
//!   declares is checked against the mount's real one before any read, and
//!   the policy judges what the request would actually touch.
//!
//! Features: `manifest` adds the conversions between
//! `gitseal_manifest::types::VaultReference` (`spec.vaultData`) and
//! [`VaultRef`] (`TryFrom`/`From`). The OpenBao dev server the tests run
//! against is in the `gitseal-test-support` crate (`openbao`).
//!
//! Values and credentials live in [`secrecy`] types; no `Debug` or error
//! message of this crate contains a value or a token.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gitseal_vault::Error> {
//! use gitseal_vault::{AuthMethod, PathPolicy, VaultClient, VaultConfig, VaultRef};
//!
//! let client = VaultClient::new(VaultConfig::new(
//!     "https://vault.example:8200",
//!     AuthMethod::kubernetes("gitseal-controller"),
//! ))
//! .await?;
//! let policy = PathPolicy::default(); // {namespace}/*
//! let reference: VaultRef = "secret/team-a/db#password".parse()?;
//! policy.check("team-a", &reference)?;
//! let session = client.session();
//! let _password = session.resolve(&reference).await?;
//! # Ok(()) }
//! ```
//!
//! TLS uses rustls with the *ring* provider only (vaultrs is built with
//! `rustls-no-provider`); [`VaultClient::new`] installs it process-wide if no
//! provider is installed yet, see [`install_default_crypto_provider`].

mod auth;
mod availability;
mod cache;
mod client;
mod config;
mod error;
#[cfg(feature = "manifest")]
mod manifest;
mod metrics;
mod mount;
mod policy;
mod reference;
mod session;

pub use client::{Health, VaultClient};
pub use config::{AuthMethod, TokenSource, VaultConfig, DEFAULT_SERVICE_ACCOUNT_TOKEN};
pub use error::{Error, NotFoundKind};
pub use metrics::MetricsSnapshot;
pub use policy::{PathPolicy, PathTemplate, DEFAULT_TEMPLATE, NAMESPACE_PLACEHOLDER};
pub use reference::{KvVersion, VaultRef, TEXT_FORM};
pub use secrecy::{ExposeSecret, SecretString};
pub use session::Session;

/// Installs rustls' *ring* crypto provider as the process default, unless a
/// provider is already installed (then that one stays). Idempotent and safe
/// to call from several places (the controller calls it before building its
/// kube client, [`VaultClient::new`] calls it too).
///
/// rustls needs exactly one process-level provider when more than one is
/// compiled in (it panics otherwise); gitseal compiles in only ring, and
/// reqwest built without a provider panics when no default is installed.
pub fn install_default_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
