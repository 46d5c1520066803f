//! Every API request is bounded in time ([`gitseal_controller::kube_client`]):
//! a held request fails and is retried, while watches, which are long polls,
//! stay open past the request timeout and end only after their own
//! `timeoutSeconds`.

use std::time::Duration;

use futures::StreamExt;
use http::Method;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::WatchParams;
use kube::Api;
use tokio::time::Instant;

use crate::common::*;
use crate::fake_api::FakeApi;
use crate::interpose::{hold_creates_of, keyed_fake, put_sealed, synced, Action, Interposer, Rule};
use crate::process::ControllerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_fails_after_the_request_timeout_and_is_retried() {
    let (fake, id, ip) = keyed_fake();
    // The first write of the Secret (its create) is never answered.
    ip.add(hold_creates_of("/namespaces/app/secrets?", 1));
    let timeout = Duration::from_millis(400);
    let running =
        start_with_client(&fake, ip.client_with_timeout("a", timeout), config(), None).await;
    put_sealed(&fake, &id, "app", "db");
    wait_for("synced after the held write", 10, || {
        synced(&fake, "app", "db")
    })
    .await;
    let seen = ip.seen();
    let writes: Vec<_> = seen
        .iter()
        .filter(|s| s.method == Method::POST && s.line.contains("/namespaces/app/secrets?"))
        .collect();
    assert!(matches!(
        writes.first().and_then(|s| s.action),
        Some(Action::Hold)
    ));
    assert!(writes.len() >= 2, "the held write was not retried");
    let retry_after = writes[1].at - writes[0].at;
    assert!(
        retry_after >= timeout,
        "retried after {retry_after:?}, before the timeout"
    );
    let secret = fake.get("secrets", "app", "db").unwrap_or_default();
    assert_eq!(secret_data(&secret)["k"], b"v");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_watches_stay_open_past_the_request_timeout() {
    let (fake, id, ip) = keyed_fake();
    let running = start_with_client(
        &fake,
        ip.client_with_timeout("a", Duration::from_millis(300)),
        config(),
        None,
    )
    .await;
    put_sealed(&fake, &id, "app", "one");
    wait_for("synced", 10, || synced(&fake, "app", "one")).await;
    let watches = || ip.seen().iter().filter(|s| s.is_watch()).count();
    let before = watches();
    assert!(before >= 2, "SealedSecrets and Secrets are watched");
    // Five request timeouts without a single event.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        watches(),
        before,
        "a quiet watch was torn down and reopened"
    );
    // The open watch still delivers.
    put_sealed(&fake, &id, "app", "two");
    wait_for("synced through the same watch", 5, || {
        synced(&fake, "app", "two")
    })
    .await;
    assert_eq!(watches(), before);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_after_its_own_timeout_seconds_plus_the_request_timeout() {
    let fake = FakeApi::new();
    let ip = Interposer::new(&fake);
    let client = ip.client_with_timeout("a", Duration::from_millis(500));
    let api: Api<ConfigMap> = Api::namespaced(client, "x");
    let started = Instant::now();
    let stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap_or_else(|e| panic!("watch: {e}"));
    // The fake never ends a watch by itself: the client has to.
    let items: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .unwrap_or_else(|_| panic!("the watch was not bounded"));
    let ended = started.elapsed();
    assert!(
        ended >= Duration::from_millis(1_500) && ended < Duration::from_secs(5),
        "ended after {ended:?}"
    );
    assert!(items.iter().all(|i| i.is_err()), "{items:?}");
    // Headers of a watch are bounded by the request timeout.
    ip.add(Rule {
        tag: None,
        method: None,
        contains: "watch=true",
        action: Action::Hold,
        times: Some(1),
    });
    let started = Instant::now();
    let res = api.watch(&WatchParams::default(), "0").await;
    assert!(res.is_err(), "a held watch request succeeded");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let text = res.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("did not send response headers within 0.5s"),
        "{text}"
    );
}

/// The binary builds its client with the timeout: a held write of the
/// Secret fails after `--api-request-timeout` and the retry writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_binary_bounds_a_held_request() {
    let (fake, id, ip) = keyed_fake();
    ip.add(hold_creates_of("/namespaces/app/secrets?", 1));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = ip.serve_http(dir.path()).await;
    let ctl = ControllerProcess::start(&kubeconfig, &["--api-request-timeout", "1s"]).await;
    put_sealed(&fake, &id, "app", "db");
    wait_for("synced after the held write", 20, || {
        synced(&fake, "app", "db")
    })
    .await;
    let writes: Vec<_> = ip
        .seen()
        .into_iter()
        .filter(|s| s.method == Method::POST && s.line.contains("/namespaces/app/secrets?"))
        .collect();
    assert!(matches!(
        writes.first().and_then(|s| s.action),
        Some(Action::Hold)
    ));
    assert!(writes.len() >= 2);
    assert!(writes[1].at - writes[0].at >= Duration::from_secs(1));
    let status = ctl.terminate().await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
