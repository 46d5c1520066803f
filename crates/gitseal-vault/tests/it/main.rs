//! Integration tests of gitseal-vault against a real OpenBao dev server.

mod auth;
mod failures;
mod kubernetes;
mod leaks;
mod reads;

use gitseal_vault::testing::Bao;
use gitseal_vault::{ExposeSecret as _, Session, VaultClient, VaultRef};

/// A client using the dev server's root token, without the shared cache
/// (so counters show session behaviour alone).
pub async fn root_client(bao: &Bao) -> VaultClient {
    VaultClient::new(bao.root_config()).await.expect("client")
}

pub fn r(s: &str) -> VaultRef {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The value `reference` resolves to through `session`; panics (naming the
/// reference and the error) when it does not resolve.
pub async fn value(session: &Session, reference: &VaultRef) -> String {
    session
        .resolve(reference)
        .await
        .unwrap_or_else(|e| panic!("{reference}: {e}"))
        .expose_secret()
        .to_string()
}
