//! Failures: 404 shapes, 403, policy refusals, Vault going away, bad logins.

use std::time::Duration;

use gitseal_test_support::openbao::Bao;
use gitseal_vault::{
    AuthMethod, Error, NotFoundKind, PathPolicy, TokenSource, VaultClient, VaultConfig,
};
use serde_json::json;

use crate::{r, root_client, value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_in_all_its_shapes() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    for v in ["one", "two", "three", "four"] {
        bao.put_kv2("secret", "team/app", json!({ "pw": v })).await;
    }
    bao.api(
        "POST",
        "secret/delete/team/app",
        Some(json!({"versions": [1]})),
    )
    .await;
    bao.api(
        "POST",
        "secret/destroy/team/app",
        Some(json!({"versions": [2]})),
    )
    .await;
    let client = root_client(&bao).await;
    let s = client.session();
    let kind = |e: Error| match e {
        Error::NotFound { kind, .. } => kind,
        other => panic!("expected NotFound, got {other}"),
    };
    let missing = s.resolve(&r("secret/team/nothing#pw")).await.unwrap_err();
    assert_eq!(missing.reason(), "VaultNotFound");
    assert_eq!(
        missing.to_string(),
        "Vault secret secret/team/nothing not found: no secret at this path"
    );
    assert_eq!(kind(missing), NotFoundKind::Missing);
    let deleted = s.resolve(&r("secret/team/app#pw@1")).await.unwrap_err();
    assert_eq!(
        deleted.to_string(),
        "Vault secret secret/team/app@1 not found: this version was deleted"
    );
    assert_eq!(kind(deleted), NotFoundKind::Deleted);
    assert_eq!(
        kind(s.resolve(&r("secret/team/app#pw@2")).await.unwrap_err()),
        NotFoundKind::Destroyed
    );
    assert_eq!(
        kind(s.resolve(&r("secret/team/app#pw@99")).await.unwrap_err()),
        NotFoundKind::Missing
    );
    // No such mount: Vault answers 403 to the mount lookup (even for root),
    // so it cannot be told from a mount the token may not use.
    let no_mount = s.resolve(&r("nomount/team/app#pw")).await.unwrap_err();
    assert_eq!(no_mount.reason(), "VaultForbidden");
    assert_eq!(
        no_mount.to_string(),
        "Vault path nomount/team/app may not be read: Vault shows no mount `nomount` to this \
         token: there is no such mount, or the token's Vault policy allows nothing below it"
    );
    assert_eq!(value(&s, &r("secret/team/app#pw@3")).await, "three");
    // Deleting the latest version: the unpinned read is a 404 too.
    bao.api("DELETE", "secret/data/team/app", None).await;
    let s2 = client.session();
    assert_eq!(
        kind(s2.resolve(&r("secret/team/app#pw")).await.unwrap_err()),
        NotFoundKind::Deleted
    );
    // Errors are remembered for the session: no second read.
    let before = client.metrics().reads;
    assert!(s2.resolve(&r("secret/team/app#other")).await.is_err());
    assert_eq!(client.metrics().reads, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_policy_403_is_forbidden_without_relogin() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (role, secret) = bao
        .approle(
            "narrow",
            r#"path "secret/data/team/*" { capabilities = ["read"] }"#,
            "1h",
            "4h",
            dir.path(),
        )
        .await;
    bao.put_kv2("secret", "team/ok", json!({"v": "fine"})).await;
    bao.put_kv2("secret", "other/x", json!({"v": "not yours"}))
        .await;
    let client = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::approle(role, secret),
    ))
    .await
    .expect("client");
    let s = client.session();
    assert_eq!(value(&s, &r("secret/team/ok#v")).await, "fine");
    let err = s.resolve(&r("secret/other/x#v")).await.unwrap_err();
    assert_eq!(err.reason(), "VaultForbidden");
    assert!(
        matches!(&err, Error::Forbidden { namespace: None, mount, path, .. } if mount == "secret" && path == "other/x"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Vault path secret/other/x may not be read: Vault's policy for this token denies it \
         (HTTP 403: permission denied)"
    );
    let m = client.metrics();
    assert_eq!(
        m.logins, 1,
        "a valid token is not replaced on a policy 403: {m:?}"
    );
    assert_eq!(m.token_checks, 1, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_policy_refuses_before_any_vault_call() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team-b/db", json!({"pw": "b's"}))
        .await;
    let client = root_client(&bao).await;
    let policy = PathPolicy::default();
    let s = client.session().for_namespace(&policy, "team");
    let err = s.resolve(&r("secret/team-b/db#pw")).await.unwrap_err();
    assert_eq!(err.reason(), "VaultForbidden");
    assert_eq!(
        err.to_string(),
        "namespace `team` may not read Vault path secret/team-b/db: outside the operator's \
         Vault path policy; this namespace may read: team/*"
    );
    let m = client.metrics();
    assert_eq!((m.logins, m.reads), (0, 0), "no Vault call at all: {m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_stopped_mid_run_is_unavailable_then_recovers() {
    let Some(mut bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (role, secret) = bao.approle_reading_all("ctl", dir.path()).await;
    bao.put_kv2("secret", "team/db", json!({"pw": "before"}))
        .await;
    let mut c = VaultConfig::new(bao.addr(), AuthMethod::approle(role, secret));
    c.timeout = Duration::from_secs(3);
    c.shared_cache_ttl = Duration::ZERO;
    let client = VaultClient::new(c).await.expect("client");
    let rf = r("secret/team/db#pw");
    assert_eq!(value(&client.session(), &rf).await, "before");

    bao.stop();
    let err = client.session().resolve(&rf).await.unwrap_err();
    assert_eq!(err.reason(), "VaultUnavailable", "{err}");
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .starts_with(&format!("Vault at {} is unavailable", bao.addr())),
        "{err}"
    );
    let herr = client.health().await.unwrap_err();
    assert_eq!(herr.reason(), "VaultUnavailable");

    // Back on the same port, as a brand-new server: our token is unknown
    // there, so the client must log in again by itself.
    bao.restart().await;
    bao.approle_reading_all("ctl", dir.path()).await;
    bao.put_kv2("secret", "team/db", json!({"pw": "after"}))
        .await;
    assert_eq!(value(&client.session(), &rf).await, "after");
    let m = client.metrics();
    assert_eq!(m.logins, 2, "{m:?}");
    client.health().await.expect("healthy again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_vault_is_unavailable() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
    let client = root_client(&bao).await;
    client.login().await.expect("login");
    bao.api("PUT", "sys/seal", None).await;
    let err = client
        .session()
        .resolve(&r("secret/team/db#pw"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "VaultUnavailable", "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    let herr = client.health().await.unwrap_err();
    assert_eq!(
        herr.to_string(),
        format!("Vault at {} is unavailable: Vault is sealed", bao.addr())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_auth_errors() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (role, secret) = bao.approle_reading_all("ctl", dir.path()).await;
    std::fs::write(&secret, "wrong-secret-id-123").expect("write");
    let client = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::approle(role.clone(), secret),
    ))
    .await
    .expect("client");
    let err = client.login().await.unwrap_err();
    assert_eq!(err.reason(), "VaultAuthFailed", "{err}");
    assert!(
        err.to_string()
            .starts_with("Vault login with approle auth failed: HTTP 400"),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-secret-id-123"));
    // A failed login is not retried by every read at once: reads within the
    // backoff get the same error without a Vault call.
    let again = client
        .session()
        .resolve(&r("secret/a/b#c"))
        .await
        .unwrap_err();
    assert_eq!(again, err);
    assert_eq!(client.metrics().login_failures, 1);
    // After the backoff (1 s) a fixed credential file is picked up.
    let (_, fixed) = bao.approle_reading_all("ctl", dir.path()).await;
    assert!(fixed.exists());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client
        .login()
        .await
        .expect("login with the fixed secret id");
    assert_eq!(client.metrics().logins, 1);

    let missing = dir.path().join("no-such-file");
    let client = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::approle(role, missing.clone()),
    ))
    .await
    .expect("client");
    let err = client.login().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Vault login with approle auth failed: cannot read secret id file {}: entity not found",
            missing.display()
        )
    );

    let client = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(TokenSource::Value("not-a-real-token".into())),
    ))
    .await
    .expect("client");
    let err = client.login().await.unwrap_err();
    assert_eq!(err.reason(), "VaultAuthFailed", "{err}");
    assert!(
        err.to_string().contains("Vault does not accept the token"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-a-real-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_refused_up_front() {
    let token = || AuthMethod::Token(TokenSource::Value("t".into()));
    for (addr, want) in [
        ("not a url", "Vault address `not a url` is not a URL"),
        (
            "ftp://vault:21",
            "Vault address must be http(s)://HOST[:PORT], not `ftp://vault:21`",
        ),
    ] {
        let err = VaultClient::new(VaultConfig::new(addr, token()))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "VaultConfigInvalid");
        assert!(err.to_string().contains(want), "{err}");
    }
    let mut c = VaultConfig::new("https://vault.example:8200", token());
    c.ca_cert_files.push("/nonexistent/ca.pem".into());
    let err = VaultClient::new(c).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Vault client configuration: cannot read CA file /nonexistent/ca.pem: entity not found"
    );
    let mut c = VaultConfig::new("https://vault.example:8200", token());
    c.vault_namespace = Some("bad\nns".into());
    assert!(VaultClient::new(c).await.is_err());
    let mut c = VaultConfig::new("https://vault.example:8200", token());
    c.timeout = Duration::ZERO;
    assert!(VaultClient::new(c).await.is_err());
}
