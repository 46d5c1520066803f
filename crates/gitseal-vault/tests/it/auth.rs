//! Token lifetime: renewal, re-login after renewal failure or revocation.

use std::time::Duration;

use gitseal_test_support::openbao::{Bao, READ_ALL_SECRETS};
use gitseal_vault::{AuthMethod, Error, ExposeSecret, SecretString, VaultClient, VaultConfig};
use serde_json::json;
use tempfile::TempDir;

use crate::r;

/// A dev server holding `secret/team/db#pw` = `x`, the directory of the
/// AppRole credential files, and a client logging in with that AppRole
/// (tokens valid `ttl`, at most `max_ttl`; no shared cache). `None`
/// without `bao`.
async fn approle_setup(ttl: &str, max_ttl: &str) -> Option<(Bao, TempDir, VaultClient)> {
    let bao = Bao::start().await?;
    let dir = tempfile::tempdir().expect("tmp");
    bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
    let (role, secret) = bao
        .approle("ctl", READ_ALL_SECRETS, ttl, max_ttl, dir.path())
        .await;
    let mut c = VaultConfig::new(bao.addr(), AuthMethod::approle(role, secret));
    c.shared_cache_ttl = Duration::ZERO;
    let client = VaultClient::new(c).await.expect("client");
    Some((bao, dir, client))
}

/// Reads `secret/team/db#pw` through a new session.
async fn read_pw(client: &VaultClient) -> Result<SecretString, Error> {
    client.session().resolve(&r("secret/team/db#pw")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_outlives_its_ttl_thanks_to_renewal() {
    let Some((_bao, _dir, client)) = approle_setup("5s", "1h").await else {
        return;
    };
    client.login().await.expect("login");
    // Idle for more than twice the TTL: the background task renews.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(read_pw(&client).await.expect("read").expose_secret(), "x");
    let m = client.metrics();
    assert_eq!(m.logins, 1, "{m:?}");
    assert!(m.renewals >= 2, "{m:?}");
    assert_eq!(m.renewal_failures, 0, "{m:?}");
    assert_eq!(m.token_checks, 0, "the token never expired: {m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_ttl_reached_means_a_fresh_login() {
    let Some((_bao, _dir, client)) = approle_setup("2s", "4s").await else {
        return;
    };
    client.login().await.expect("login");
    tokio::time::sleep(Duration::from_secs(7)).await;
    read_pw(&client).await.expect("read");
    let m = client.metrics();
    assert!(
        m.logins >= 2,
        "renewal capped by max TTL must lead to a new login: {m:?}"
    );
    assert_eq!(
        m.token_checks, 0,
        "no read ever saw an expired token: {m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_on_read_triggers_one_relogin_and_retry() {
    let Some((bao, _dir, client)) = approle_setup("1h", "4h").await else {
        return;
    };
    read_pw(&client).await.expect("read");
    bao.revoke_approle_tokens().await;
    assert_eq!(
        read_pw(&client).await.expect("retried").expose_secret(),
        "x"
    );
    let m = client.metrics();
    assert_eq!(m.logins, 2, "{m:?}");
    assert_eq!(m.token_checks, 1, "{m:?}");
    assert_eq!(m.reads, 3, "first read, refused read, retried read: {m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_renewal_falls_back_to_login() {
    let Some((bao, _dir, client)) = approle_setup("5s", "1h").await else {
        return;
    };
    client.login().await.expect("login");
    bao.revoke_approle_tokens().await;
    // The renewal at ~3.3 s fails (token revoked); the refresher logs in again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let m = client.metrics();
    assert!(m.renewal_failures >= 1, "{m:?}");
    assert_eq!(m.logins, 2, "{m:?}");
    read_pw(&client).await.expect("read");
    assert_eq!(client.metrics().token_checks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_from_file_and_short_lived_token() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        format!("  {}\n", gitseal_test_support::openbao::ROOT_TOKEN),
    )
    .expect("write");
    let client = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(gitseal_vault::TokenSource::File(file)),
    ))
    .await
    .expect("client");
    assert_eq!(read_pw(&client).await.expect("read").expose_secret(), "x");
    // A short-lived, renewable token is renewed too.
    let created = bao
        .api(
            "POST",
            "auth/token/create",
            Some(json!({"ttl": "4s", "policies": ["default"], "renewable": true})),
        )
        .await;
    let short = created["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let client = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(gitseal_vault::TokenSource::Value(short.into())),
    ))
    .await
    .expect("client");
    client.login().await.expect("login");
    tokio::time::sleep(Duration::from_secs(7)).await;
    client.login().await.expect("still valid");
    let m = client.metrics();
    assert_eq!(m.logins, 1, "{m:?}");
    assert!(m.renewals >= 2, "{m:?}");
}
