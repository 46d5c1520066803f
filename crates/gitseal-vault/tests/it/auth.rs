//! Token lifetime: renewal, re-login after renewal failure or revocation.

use std::time::Duration;

use gitseal_vault::{AuthMethod, ExposeSecret, VaultClient, VaultConfig};
use serde_json::json;

use crate::r;
use crate::support::Bao;

const READ_ALL: &str = r#"path "secret/data/*" { capabilities = ["read"] }"#;

async fn approle_client(bao: &Bao, ttl: &str, max_ttl: &str, dir: &std::path::Path) -> VaultClient {
    let (role, secret) = bao.approle("ctl", READ_ALL, ttl, max_ttl, dir).await;
    let mut c = VaultConfig::new(bao.addr(), AuthMethod::approle(role, secret));
    c.shared_cache_ttl = Duration::ZERO;
    VaultClient::new(c).await.expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_outlives_its_ttl_thanks_to_renewal() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
    let client = approle_client(&bao, "5s", "1h", dir.path()).await;
    client.login().await.expect("login");
    // Idle for more than twice the TTL: the background task renews.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        client
            .session()
            .resolve(&r("secret/team/db#pw"))
            .await
            .expect("read")
            .expose_secret(),
        "x"
    );
    let m = client.metrics();
    assert_eq!(m.logins, 1, "{m:?}");
    assert!(m.renewals >= 2, "{m:?}");
    assert_eq!(m.renewal_failures, 0, "{m:?}");
    assert_eq!(m.token_checks, 0, "the token never expired: {m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_ttl_reached_means_a_fresh_login() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
    let client = approle_client(&bao, "2s", "4s", dir.path()).await;
    client.login().await.expect("login");
    tokio::time::sleep(Duration::from_secs(7)).await;
    client
        .session()
        .resolve(&r("secret/team/db#pw"))
        .await
        .expect("read");
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
    let Some(bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
    let client = approle_client(&bao, "1h", "4h", dir.path()).await;
    client
        .session()
        .resolve(&r("secret/team/db#pw"))
        .await
        .expect("read");
    bao.revoke_approle_tokens().await;
    assert_eq!(
        client
            .session()
            .resolve(&r("secret/team/db#pw"))
            .await
            .expect("retried")
            .expose_secret(),
        "x"
    );
    let m = client.metrics();
    assert_eq!(m.logins, 2, "{m:?}");
    assert_eq!(m.token_checks, 1, "{m:?}");
    assert_eq!(m.reads, 3, "first read, refused read, retried read: {m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_renewal_falls_back_to_login() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
    let client = approle_client(&bao, "5s", "1h", dir.path()).await;
    client.login().await.expect("login");
    bao.revoke_approle_tokens().await;
    // The renewal at ~3.3 s fails (token revoked); the refresher logs in again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let m = client.metrics();
    assert!(m.renewal_failures >= 1, "{m:?}");
    assert_eq!(m.logins, 2, "{m:?}");
    client
        .session()
        .resolve(&r("secret/team/db#pw"))
        .await
        .expect("read");
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
    std::fs::write(&file, format!("  {}\n", crate::support::ROOT_TOKEN)).expect("write");
    let client = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(gitseal_vault::TokenSource::File(file)),
    ))
    .await
    .expect("client");
    assert_eq!(
        client
            .session()
            .resolve(&r("secret/team/db#pw"))
            .await
            .expect("read")
            .expose_secret(),
        "x"
    );
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
