//! No secret value, token or credential in errors, Debug output or logs.
//!
//! Drives every kind of outcome against a real server with canary values
//! while capturing all logs at TRACE level (this crate's, and reqwest's and
//! hyper's for the raw requests; vaultrs' calls run with logging off), then
//! searches everything for the canaries.

use gitseal_test_support::openbao::Bao;
use gitseal_vault::{AuthMethod, PathPolicy, TokenSource, VaultClient, VaultConfig};
use serde_json::json;

use crate::{r, LogCapture};

const VALUE: &str = "canary-value-5d2f9a71";
const OTHER_VALUE: &str = "canary-other-value-0c44e1";
const TOKEN: &str = "canary-token-93e1b7c2";
const BAD_SECRET_ID: &str = "canary-bad-secret-id-77aa";

#[test]
fn no_value_or_token_in_errors_debug_output_or_logs() {
    let capture = LogCapture::default();
    let mut outputs: Vec<String> = Vec::new();
    let ran = tracing::dispatcher::with_default(&capture.dispatch(), || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(scenario(&mut outputs))
    });
    if !ran {
        return;
    }
    let logs = capture.text();
    assert!(logs.contains("logged in to Vault"), "log capture works");
    assert!(
        logs.contains("reading Vault secret") && logs.contains("path=team/db"),
        "reads were traced"
    );
    for canary in [
        VALUE,
        OTHER_VALUE,
        TOKEN,
        BAD_SECRET_ID,
        "secret-ctl-b7f2a9c4e1",
    ] {
        for o in &outputs {
            assert!(!o.contains(canary), "`{canary}` leaked into: {o}");
        }
        assert!(!logs.contains(canary), "`{canary}` leaked into the logs");
    }
    assert!(outputs.len() >= 12, "{}", outputs.len());
}

async fn scenario(out: &mut Vec<String>) -> bool {
    let Some(mut bao) = Bao::start().await else {
        return false;
    };
    let dir = tempfile::tempdir().expect("tmp");
    bao.api(
        "POST",
        "sys/policies/acl/team",
        Some(json!({"policy": r#"path "secret/data/team/*" { capabilities = ["read"] }"#})),
    )
    .await;
    bao.api(
        "POST",
        "auth/token/create",
        Some(json!({"id": TOKEN, "policies": ["team"], "ttl": "1h"})),
    )
    .await;
    bao.put_kv2("secret", "team/db", json!({"pw": VALUE})).await;
    bao.put_kv2("secret", "other/db", json!({"pw": OTHER_VALUE}))
        .await;
    let (role, secret) = bao.approle_reading_all("ctl", dir.path()).await;

    let config = VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(TokenSource::Value(TOKEN.into())),
    );
    out.push(format!("{config:?}"));
    let client = VaultClient::new(config).await.expect("client");
    out.push(format!("{client:?}"));
    let session = client.session();
    let v = session
        .resolve(&r("secret/team/db#pw"))
        .await
        .expect("read");
    out.push(format!("{v:?}"));
    out.push(format!("{session:?}"));
    let mut errors = vec![
        session
            .resolve(&r("secret/team/db#nope"))
            .await
            .unwrap_err(),
        session
            .resolve(&r("secret/team/db#pw@7"))
            .await
            .unwrap_err(),
        session.resolve(&r("secret/other/db#pw")).await.unwrap_err(),
        PathPolicy::default()
            .check("team", &r("secret/other/db#pw"))
            .unwrap_err(),
    ];

    let approle = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::approle(&role, &secret),
    ))
    .await
    .expect("client");
    approle
        .session()
        .resolve(&r("secret/other/db#pw"))
        .await
        .expect("read");
    out.push(format!("{approle:?}"));
    std::fs::write(&secret, BAD_SECRET_ID).expect("write");
    let bad = VaultClient::new(VaultConfig::new(
        bao.addr(),
        AuthMethod::approle(&role, &secret),
    ))
    .await
    .expect("client");
    errors.push(bad.login().await.unwrap_err());

    bao.stop();
    // (The shared cache still serves `secret/team/db` for 30 s; read a version.)
    errors.push(
        client
            .session()
            .resolve(&r("secret/team/db#pw@1"))
            .await
            .unwrap_err(),
    );
    errors.push(client.health().await.unwrap_err());
    let reasons: Vec<&str> = errors.iter().map(|e| e.reason()).collect();
    assert_eq!(
        reasons,
        [
            "VaultFieldMissing",
            "VaultNotFound",
            "VaultForbidden",
            "VaultForbidden",
            "VaultAuthFailed",
            "VaultUnavailable",
            "VaultUnavailable"
        ]
    );
    for e in &errors {
        out.push(e.to_string());
        out.push(format!("{e:?}"));
    }
    out.push(format!("{:?}", client.metrics()));
    true
}
