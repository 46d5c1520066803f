//! Integration tests of gitseal-vault against a real OpenBao dev server.

mod auth;
mod failures;
mod kubernetes;
mod leaks;
mod reads;
mod support;

use std::time::Duration;

use gitseal_vault::{AuthMethod, SecretString, TokenSource, VaultClient, VaultConfig, VaultRef};

/// A client using the dev server's root token, without the shared cache
/// (so counters show session behaviour alone).
pub async fn root_client(bao: &support::Bao) -> VaultClient {
    let mut c = VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(TokenSource::Value(SecretString::from(support::ROOT_TOKEN))),
    );
    c.shared_cache_ttl = Duration::ZERO;
    VaultClient::new(c).await.expect("client")
}

pub fn r(s: &str) -> VaultRef {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}
