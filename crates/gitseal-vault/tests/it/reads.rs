//! Successful reads: KV v2 latest and pinned, KV v1, deduplication.

use std::sync::Arc;
use std::time::Duration;

use gitseal_test_support::openbao::Bao;
use gitseal_vault::{AuthMethod, Error, ExposeSecret, VaultClient, VaultConfig};
use serde_json::json;

use crate::{r, root_client, value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv2_latest_and_pinned_versions() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    assert_eq!(
        bao.put_kv2("secret", "team/db", json!({"password": "pw-one"}))
            .await,
        1
    );
    assert_eq!(
        bao.put_kv2(
            "secret",
            "team/db",
            json!({"password": "pw-two", "port": 5432})
        )
        .await,
        2
    );
    let client = root_client(&bao).await;
    let s = client.session();
    assert_eq!(value(&s, &r("secret/team/db#password")).await, "pw-two");
    assert_eq!(value(&s, &r("secret/team/db#password@1")).await, "pw-one");
    assert_eq!(
        value(&s, &r("kv2:secret/team/db#password@2")).await,
        "pw-two"
    );
    // Non-string values come back as JSON text.
    assert_eq!(value(&s, &r("secret/team/db#port")).await, "5432");
    // A field only in v2 is missing in v1.
    let err = s.resolve(&r("secret/team/db#port@1")).await.unwrap_err();
    assert!(
        matches!(err, Error::FieldMissing { ref field, version: Some(1), .. } if field == "port"),
        "{err}"
    );
    assert_eq!(err.reason(), "VaultFieldMissing");
    // latest, @1 and @2 are three distinct reads; the rest came from the session.
    let m = client.metrics();
    assert_eq!(m.reads, 3, "{m:?}");
    assert_eq!(m.cache_hits, 2, "{m:?}");
    assert_eq!(m.logins, 1, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv1_mount() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.enable_kv1("legacy").await;
    bao.api(
        "POST",
        "legacy/team/app",
        Some(json!({"token": "kv1-value", "user": "app"})),
    )
    .await;
    let client = root_client(&bao).await;
    let s = client.session();
    assert_eq!(
        value(&s, &r("kv1:legacy/team/app#token")).await,
        "kv1-value"
    );
    assert_eq!(value(&s, &r("kv1:legacy/team/app#user")).await, "app");
    assert_eq!(client.metrics().reads, 1);
    // The same mount referenced as KV v2 is refused without a read (it
    // would request `legacy/data/team/app`, another secret).
    let err = s.resolve(&r("legacy/team/app#token")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Vault reference `legacy/team/app#token`: mount `legacy` is a KV v1 engine, but \
         the reference is KV v2; add `kv: v1` (text form: `kv1:` in front)"
    );
    assert_eq!(client.metrics().reads, 1);
    assert_eq!(
        client.metrics().mount_lookups,
        1,
        "the mount is looked up once"
    );
    let err = s
        .resolve(&r("kv1:legacy/team/nothing#token"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_reads_each_secret_once_even_concurrently() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2(
        "secret",
        "team/db",
        json!({"user": "u", "password": "p", "host": "h"}),
    )
    .await;
    bao.put_kv2("secret", "team/api", json!({"key": "k"})).await;
    let client = root_client(&bao).await;
    let session = Arc::new(client.session());
    let refs = [
        "secret/team/db#user",
        "secret/team/db#password",
        "secret/team/db#host",
        "secret/team/api#key",
        "secret/team/db#user",
    ];
    let mut tasks = Vec::new();
    for _ in 0..4 {
        for s in refs {
            let session = session.clone();
            tasks.push(tokio::spawn(async move {
                session
                    .resolve(&r(s))
                    .await
                    .map(|v| v.expose_secret().to_string())
            }));
        }
    }
    for t in tasks {
        t.await.expect("join").expect("resolve");
    }
    let m = client.metrics();
    assert_eq!(m.reads, 2, "two distinct paths: {m:?}");
    assert_eq!(m.cache_hits, 18, "{m:?}");
    // A new session reads again (no shared cache in this client).
    client
        .session()
        .resolve(&r("secret/team/api#key"))
        .await
        .expect("again");
    assert_eq!(client.metrics().reads, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_cache_spans_sessions_until_ttl() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": "old"}))
        .await;
    let mut c = VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(gitseal_vault::TokenSource::Value(
            gitseal_test_support::openbao::ROOT_TOKEN.into(),
        )),
    );
    c.shared_cache_ttl = Duration::from_millis(1500);
    let client = VaultClient::new(c).await.expect("client");
    let rf = r("secret/team/db#password");
    assert_eq!(value(&client.session(), &rf).await, "old");
    bao.put_kv2("secret", "team/db", json!({"password": "new"}))
        .await;
    // Within the TTL another session gets the shared read.
    assert_eq!(value(&client.session(), &rf).await, "old");
    assert_eq!(client.metrics().reads, 1);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(value(&client.session(), &rf).await, "new");
    assert_eq!(client.metrics().reads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_max_age_bounds_the_shared_cache() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": "old"}))
        .await;
    let mut c = bao.root_config();
    c.shared_cache_ttl = Duration::from_secs(3600);
    let client = VaultClient::new(c).await.expect("client");
    let rf = r("secret/team/db#password");
    assert_eq!(value(&client.session(), &rf).await, "old");
    bao.put_kv2("secret", "team/db", json!({"password": "new"}))
        .await;
    // A session that refreshes often does not take the hour-old answer...
    let short = client.session().max_age(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(value(&short, &rf).await, "new");
    assert_eq!(client.metrics().reads, 2);
    // ...and its fresher read serves the others from then on.
    assert_eq!(value(&client.session(), &rf).await, "new");
    let young = client.session().max_age(Duration::from_secs(60));
    assert_eq!(value(&young, &rf).await, "new");
    assert_eq!(client.metrics().reads, 2);
    // Zero: always a read of its own.
    assert_eq!(
        value(&client.session().max_age(Duration::ZERO), &rf).await,
        "new"
    );
    assert_eq!(client.metrics().reads, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_one_login_for_many_concurrent_sessions() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let (role, secret) = bao.approle_reading_all("gitseal", dir.path()).await;
    for i in 0..10 {
        bao.put_kv2(
            "secret",
            &format!("team/app{i}"),
            json!({"a": format!("a{i}"), "b": format!("b{i}")}),
        )
        .await;
    }
    let mut c = VaultConfig::new(bao.addr(), AuthMethod::approle(role, secret));
    c.shared_cache_ttl = Duration::ZERO;
    let client = VaultClient::new(c).await.expect("client");
    let mut tasks = Vec::new();
    for n in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let s = client.session();
            let i = n % 10;
            let a = s.resolve(&r(&format!("secret/team/app{i}#a"))).await?;
            let b = s.resolve(&r(&format!("secret/team/app{i}#b"))).await?;
            assert_eq!(a.expose_secret(), format!("a{i}"));
            assert_eq!(b.expose_secret(), format!("b{i}"));
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("resolve");
    }
    let m = client.metrics();
    assert_eq!(m.logins, 1, "{m:?}");
    assert_eq!(m.login_failures, 0, "{m:?}");
    assert!(m.reads <= 50, "at most one read per session: {m:?}");
    assert!(m.reads >= 10, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_version() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let client = root_client(&bao).await;
    let h = client.health().await.expect("healthy");
    assert!(!h.version.is_empty());
    assert!(!h.standby);
}
