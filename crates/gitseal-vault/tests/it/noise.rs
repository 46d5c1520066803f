//! What the client logs, captured from a real run: expected answers (403,
//! 404, a token at its max TTL) log no ERROR and nothing from vaultrs or
//! rustify; an outage is one WARN and its end one INFO, noticed by the health
//! probe without any read.

use std::time::Duration;

use gitseal_test_support::openbao::Bao;
use gitseal_vault::{AuthMethod, VaultClient, VaultConfig};
use serde_json::json;
use tracing::instrument::WithSubscriber as _;

use crate::{r, value, LogCapture};

/// The captured lines at `level` (`ERROR`, `WARN`, `INFO`, ...).
fn lines_at<'a>(logs: &'a str, level: &str) -> Vec<&'a str> {
    let tag = format!(" {level} ");
    logs.lines().filter(|l| l.contains(&tag)).collect()
}

/// Runs `test` with every log line captured; the logs, or `None` when the
/// test did not run (no `bao`).
async fn logs_of(test: impl std::future::Future<Output = bool>) -> Option<String> {
    let capture = LogCapture::default();
    let ran = test.with_subscriber(capture.dispatch()).await;
    ran.then(|| capture.text())
}

/// Lines from vaultrs or rustify above DEBUG (their debug line "Using API
/// version 1" when a client is built is fine).
fn library_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("vaultrs") || l.contains("rustify"))
        .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_missing_secrets_and_max_ttl_are_not_errors() {
    let logs = logs_of(async {
        let Some(bao) = Bao::start().await else {
            return false;
        };
        let dir = tempfile::tempdir().expect("tmp");
        bao.put_kv2("secret", "team/db", json!({"pw": "x"})).await;
        bao.put_kv2("secret", "team/db", json!({"pw": "y"})).await;
        bao.api(
            "POST",
            "secret/delete/team/db",
            Some(json!({"versions": [1]})),
        )
        .await;
        bao.put_kv2("secret", "other/db", json!({"pw": "z"})).await;
        // Tokens live 2 s, at most 4 s: renewals, then a refusal at the max
        // TTL and a new login, several times during the test.
        let (role, secret) = bao
            .approle(
                "narrow",
                r#"path "secret/data/team/*" { capabilities = ["read"] }"#,
                "2s",
                "4s",
                dir.path(),
            )
            .await;
        let mut config = VaultConfig::new(bao.addr(), AuthMethod::approle(role, secret));
        config.shared_cache_ttl = Duration::ZERO;
        let client = VaultClient::new(config).await.expect("client");
        for _ in 0..9 {
            let s = client.session();
            assert_eq!(value(&s, &r("secret/team/db#pw")).await, "y");
            let refused = s.resolve(&r("secret/other/db#pw")).await.unwrap_err();
            assert_eq!(refused.reason(), "VaultForbidden");
            let missing = s.resolve(&r("secret/team/none#pw")).await.unwrap_err();
            assert_eq!(missing.reason(), "VaultNotFound");
            let deleted = s.resolve(&r("secret/team/db#pw@1")).await.unwrap_err();
            assert_eq!(deleted.reason(), "VaultNotFound");
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        let m = client.metrics();
        assert!(m.logins >= 2, "the max TTL was reached: {m:?}");
        true
    })
    .await;
    let Some(logs) = logs else {
        return;
    };
    assert!(logs.contains(" DEBUG "), "capture works: {logs}");
    assert_eq!(lines_at(&logs, "ERROR"), Vec::<&str>::new());
    assert_eq!(lines_at(&logs, "WARN"), Vec::<&str>::new());
    assert_eq!(library_lines(&logs), Vec::<&str>::new());
    assert!(!logs.contains("unavailable"), "{logs}");
    let info = lines_at(&logs, "INFO");
    assert!(
        info.iter()
            .any(|l| l.ends_with("Vault token reached its max TTL; logging in again")),
        "{logs}"
    );
    assert!(
        info.iter().all(|l| l.contains("logged in to Vault")
            || l.ends_with("Vault token reached its max TTL; logging in again")),
        "{info:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_logged_once_and_its_end_is_noticed_without_a_read() {
    let logs = logs_of(async {
        let Some(mut bao) = Bao::start().await else {
            return false;
        };
        let dir = tempfile::tempdir().expect("tmp");
        let (role, secret) = bao.approle_reading_all("ctl", dir.path()).await;
        bao.put_kv2("secret", "team/db", json!({"pw": "before"}))
            .await;
        let mut config = VaultConfig::new(bao.addr(), AuthMethod::approle(role, secret));
        config.shared_cache_ttl = Duration::ZERO;
        config.timeout = Duration::from_secs(3);
        let client = VaultClient::new(config).await.expect("client");
        let mut recoveries = client.recoveries();
        assert_eq!(
            value(&client.session(), &r("secret/team/db#pw")).await,
            "before"
        );

        bao.stop();
        // Many objects fail during the outage: one WARN, not one each.
        for _ in 0..3 {
            let e = client
                .session()
                .resolve(&r("secret/team/db#pw"))
                .await
                .unwrap_err();
            assert_eq!(e.reason(), "VaultUnavailable", "{e}");
        }
        assert!(!recoveries.has_changed().expect("open"));

        bao.restart().await;
        bao.approle_reading_all("ctl", dir.path()).await;
        bao.put_kv2("secret", "team/db", json!({"pw": "after"}))
            .await;
        // Nobody reads: the probe notices Vault is back (within 5 s).
        tokio::time::timeout(Duration::from_secs(15), recoveries.changed())
            .await
            .expect("Vault noticed back within 15 s")
            .expect("client alive");
        assert!(
            client.metrics().health_probes >= 1,
            "{:?}",
            client.metrics()
        );
        // The token died with the old server: the read logs in again.
        assert_eq!(
            value(&client.session(), &r("secret/team/db#pw")).await,
            "after"
        );
        true
    })
    .await;
    let Some(logs) = logs else {
        return;
    };
    assert_eq!(lines_at(&logs, "ERROR"), Vec::<&str>::new());
    let warns = lines_at(&logs, "WARN");
    assert_eq!(warns.len(), 1, "one outage, one WARN:\n{logs}");
    assert!(
        warns[0].contains(
            "Vault is unavailable; objects with Vault items keep their last good Secret until \
             it is back"
        ),
        "{logs}"
    );
    let back: Vec<&str> = lines_at(&logs, "INFO")
        .into_iter()
        .filter(|l| l.contains("Vault is reachable again"))
        .collect();
    assert_eq!(back.len(), 1, "{logs}");
    assert_eq!(library_lines(&logs), Vec::<&str>::new());
}
