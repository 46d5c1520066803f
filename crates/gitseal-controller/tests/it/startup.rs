//! Start-up and shutdown of the real binary: the CRD gate (a missing CRD is
//! logged, reported by `/readyz` and waited for without backoff), the Lease
//! hand-over on SIGTERM between two processes, the TLS provider, and the
//! flags table of docs/operations.md against `--help`.

use std::collections::BTreeSet;
use std::time::Duration;

use gitseal_crypto::Identity;
use tokio::time::Instant;

use crate::common::*;
use crate::fake_api::FakeApi;
use crate::interpose::{keyed_fake, put_sealed, synced, Action, Rule};
use crate::process::{http_get, ControllerProcess, CONTROLLER_NS};

/// Answers 404 for everything under the SealedSecret API group.
fn no_crd() -> Rule {
    Rule {
        tag: None,
        method: None,
        contains: "/apis/gitseal.dev/",
        action: Action::Status(404),
        times: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_crd_is_logged_reported_by_readyz_and_start_is_prompt_once_installed() {
    let (fake, id, ip) = keyed_fake();
    put_sealed(&fake, &id, "app", "db");
    let rule = ip.add(no_crd());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = ip.serve_http(dir.path()).await;
    // Default log level (the helper sets RUST_LOG=info,kube=warn as the Deployment does).
    let ctl = ControllerProcess::start(&kubeconfig, &[]).await;

    let log = wait_for("a warning about the CRD", 20, || {
        let log = ctl.log_text();
        log.lines()
            .any(|l| l.contains("\"level\":\"WARN\"") && l.contains("CRD is not installed"))
            .then_some(log)
    })
    .await;
    assert!(log.contains("apply deploy/crd.yaml"), "{log}");
    for addr in [ctl.probes, ctl.http] {
        let (code, body) = http_get(addr, "/readyz").await;
        assert_eq!(code, 503, "{body}");
        assert!(
            body.contains("the sealedsecrets.gitseal.dev CRD is not installed"),
            "{body}"
        );
    }
    // Nothing is written meanwhile, and the warning is not repeated per poll.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(fake.get("secrets", "app", "db").is_none());
    let warnings = ctl
        .log_text()
        .lines()
        .filter(|l| l.contains("CRD is not installed"))
        .count();
    assert_eq!(warnings, 1, "{}", ctl.log_text());

    // The CRD appears: the object is reconciled within one poll (2 s), not
    // after a watch backoff.
    ip.remove(rule);
    let installed = Instant::now();
    wait_for("synced once the CRD exists", 20, || {
        synced(&fake, "app", "db")
    })
    .await;
    let waited = installed.elapsed();
    crate::interpose::report(&format!("first Secret {waited:?} after the CRD appeared"));
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let (code, body) = http_get(ctl.probes, "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    assert!(ctl
        .log_text()
        .contains("the SealedSecret CRD is installed; starting"));
    let status = ctl.terminate().await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_removed_while_running_stops_reconciles_until_it_is_back() {
    let (fake, id, ip) = keyed_fake();
    let running = start_with_client(&fake, ip.client("a"), config(), None).await;
    put_sealed(&fake, &id, "app", "one");
    wait_for("synced", 10, || synced(&fake, "app", "one")).await;
    assert!(running.handles.health.not_ready().is_empty());

    // The CRD is deleted: the API server ends the watches and 404s the relist.
    let rule = ip.add(no_crd());
    ip.cut_watches();
    wait_for("not ready", 10, || {
        let reasons = running.handles.health.not_ready();
        reasons
            .iter()
            .any(|r| r.contains("CRD is not installed"))
            .then_some(())
    })
    .await;
    // Back: reconciling resumes within a poll.
    ip.remove(rule);
    put_sealed(&fake, &id, "app", "two");
    let back = Instant::now();
    wait_for("synced after the CRD is back", 10, || {
        synced(&fake, "app", "two")
    })
    .await;
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "{:?}",
        back.elapsed()
    );
    assert!(running.handles.health.not_ready().is_empty());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lease_and_the_other_process_leads_within_a_retry_period() {
    let (fake, id, ip) = keyed_fake();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = ip.serve_http(dir.path()).await;
    let holder = || {
        fake.get("leases", CONTROLLER_NS, "gitseal-controller")
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    };
    // Default timings: a 15 s lease, a 2 s retry period.
    let a = ControllerProcess::start(&kubeconfig, &["--identity", "replica-a"]).await;
    wait_for("a leads", 20, || {
        (holder().as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let b = ControllerProcess::start(&kubeconfig, &["--identity", "replica-b"]).await;
    // b is up, ready, and follows. SIGTERM comes right after b's first try,
    // so the measured hand-over is the worst case: one full retry period.
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(b.probes, "/readyz").await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "b never got ready:\n{}",
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(holder().as_deref(), Some("replica-a"));

    let stopped = Instant::now();
    let a_log = a.log_text();
    let status = a.terminate().await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{a_log}");
    wait_for("b leads", 30, || {
        (holder().as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    let handover = stopped.elapsed();
    crate::interpose::report(&format!("hand-over between two processes after SIGTERM: {handover:?} (retry period 2 s, lease 15 s)"));
    assert!(
        handover < Duration::from_secs(2) + Duration::from_millis(2_500),
        "b led {handover:?} after SIGTERM to a"
    );
    put_sealed(&fake, &id, "app", "x");
    wait_for("b reconciles", 20, || synced(&fake, "app", "x")).await;
    let status = b.terminate().await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(holder(), None, "b released the Lease too");
}

/// Bad timing flags are refused before anything starts.
#[test]
fn inconsistent_lease_timings_are_refused() {
    for (args, message) in [
        (
            &["--lease-duration", "10s", "--renew-deadline", "10s"][..],
            "the renew deadline (10.000s) must be shorter than the lease duration (10.000s)",
        ),
        (
            &["--renew-deadline", "2s", "--retry-period", "2s"][..],
            "the retry period (2.000s) and the renew interval (1.000s) must be shorter than the renew deadline (2.000s)",
        ),
        (&["--api-request-timeout", "0"][..], "--api-request-timeout must be above 0"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
            .arg("run")
            .args(args)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("VAULT_ADDR")
            .output()
            .unwrap_or_else(|e| panic!("running gitseal-controller: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("kubeconfig"), "{args:?} reached the client: {stderr}");
    }
}

/// The TLS stack: one rustls provider (ring), installed by the binary
/// before kube or Vault build a TLS client. Against an https API server
/// that is not TLS at all, the binary fails with an error, not a panic
/// about an ambiguous or missing provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_installs_one_tls_provider_and_fails_cleanly_on_a_bad_tls_peer() {
    // Only ring in the dependency graph: otherwise rustls refuses to pick.
    let lock = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"),
    )
    .unwrap_or_else(|e| panic!("Cargo.lock: {e}"));
    for other in ["aws-lc-rs", "aws-lc-sys", "openssl-sys", "native-tls"] {
        assert!(
            !lock.contains(&format!("name = \"{other}\"")),
            "{other} is in Cargo.lock: a second TLS stack"
        );
    }
    // Idempotent: a second call (or a provider installed first) is fine.
    gitseal_controller::install_crypto_provider();
    gitseal_controller::install_crypto_provider();
    let installed = rustls::crypto::CryptoProvider::get_default()
        .unwrap_or_else(|| panic!("no provider installed"));
    let ring = rustls::crypto::ring::default_provider();
    let suites = |p: &rustls::crypto::CryptoProvider| {
        p.cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        suites(installed),
        suites(&ring),
        "the process provider is not ring"
    );
    // An https client builds on it (kube's rustls connector).
    let uri: http::Uri = "https://127.0.0.1:6443"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = gitseal_controller::kube_client::client_from_config(
        kube::Config::new(uri),
        gitseal_controller::kube_client::ApiTimeouts::default(),
    ) {
        panic!("building an https kube client failed: {e}");
    }

    // A "server" that accepts TCP and answers garbage.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{addr}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "127.0.0.1:0",
        ])
        .args(["--api-request-timeout", "5s", "--vault-addr"])
        .arg(format!("https://{addr}"))
        .args(["--vault-auth", "token"])
        .env("VAULT_TOKEN", "not-a-real-token")
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("POD_NAMESPACE")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .unwrap_or_else(|_| panic!("the binary did not give up"))
        .unwrap_or_else(|e| panic!("running gitseal-controller: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // rustls itself refused the peer: the TLS client was built and used.
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("received corrupt message"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("CryptoProvider"), "{stderr}");
}

/// docs/operations.md lists every flag of `gitseal-controller run`, with the
/// default `--help` shows.
#[test]
fn operations_doc_flag_table_matches_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
        .args(["run", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("running gitseal-controller: {e}"));
    let help = String::from_utf8_lossy(&out.stdout);
    // (flag, default) from --help.
    let mut from_help = Vec::new();
    let mut current: Option<String> = None;
    for line in help.lines() {
        let t = line.trim_start();
        // Option lines: "      --flag <V>" or "  -h, --help"; descriptions
        // are indented further.
        let option = line.starts_with("      --") || line.starts_with("  -");
        if let Some(rest) = t
            .strip_prefix("--")
            .or_else(|| t.split_once(", --").map(|(_, f)| f))
            .filter(|_| option)
        {
            let flag = format!("--{}", rest.split([' ', '=']).next().unwrap_or_default());
            if flag != "--help" {
                from_help.push((flag.clone(), None));
                current = Some(flag);
            }
            continue;
        }
        if let (Some(flag), Some(d)) = (&current, t.strip_prefix("[default: ")) {
            let d = d.trim_end_matches(']').to_string();
            if let Some(e) = from_help.iter_mut().find(|(f, _)| f == flag) {
                e.1 = Some(d);
            }
        }
    }
    assert!(from_help.len() > 15, "{help}");

    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
    )
    .unwrap_or_else(|e| panic!("docs/operations.md: {e}"));
    let section = doc
        .split_once("### Flags of `gitseal-controller run`")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no flags section in docs/operations.md"));
    let section = section.split("\n## ").next().unwrap_or_default();
    let rows: Vec<(String, String)> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let flag = cells.get(1)?.strip_prefix("`--")?.strip_suffix('`')?;
            Some((format!("--{flag}"), cells.get(2)?.to_string()))
        })
        .collect();
    let documented: BTreeSet<&str> = rows.iter().map(|(f, _)| f.as_str()).collect();
    let actual: BTreeSet<&str> = from_help.iter().map(|(f, _)| f.as_str()).collect();
    let missing: Vec<_> = actual.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&actual).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/operations.md's flag table is out of date: add {missing:?}, remove {stale:?}"
    );
    for (flag, default) in &from_help {
        let Some(default) = default else { continue };
        let row = rows
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, d)| d.as_str());
        assert!(
            row.is_some_and(|d| d.contains(&format!("`{default}`"))),
            "docs/operations.md: {flag} defaults to `{default}`, the table says {row:?}"
        );
    }
}

/// deploy/: the kubelet probes the probe port (the binary's
/// `--probe-listen` default), and the Service does not expose it.
#[test]
fn deployment_probes_use_the_probe_port_the_service_does_not_expose() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let read = |f: &str| -> serde_yaml::Value {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    let deployment = read("deployment.yaml");
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    let port_of = |name: &str| {
        c["ports"]
            .as_sequence()
            .and_then(|ps| ps.iter().find(|p| p["name"].as_str() == Some(name)))
            .and_then(|p| p["containerPort"].as_u64())
    };
    for probe in ["livenessProbe", "readinessProbe"] {
        let port = c[probe]["httpGet"]["port"].as_str().unwrap_or_default();
        assert_eq!(port_of(port), Some(8081), "{probe} uses port {port:?}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
        .args(["run", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[default: 0.0.0.0:8081]"));
    let service = read("service.yaml");
    let exposed: Vec<_> = service["spec"]["ports"]
        .as_sequence()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["targetPort"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(exposed, ["http"]);
}

/// Without any HTTP server (as the reconcile benchmark runs) the controller
/// still runs: no server is not a server that stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_without_http_servers() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let mut c = config();
    c.listen = None;
    c.probe_listen = None;
    let running = start_with(&fake, c).await;
    assert!(running.handles.http_addr.is_none() && running.handles.probe_addr.is_none());
    put_sealed(&fake, &id, "app", "db");
    wait_for("synced", 10, || synced(&fake, "app", "db")).await;
    assert!(!running.task.is_finished());
    running.shutdown().await;
}

/// A start-up LIST that fails for another reason (here RBAC: 403) keeps the
/// replica unready with a short public reason, and nothing is reconciled
/// until it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_sealedsecret_list_keeps_the_replica_unready_until_it_works() {
    let (fake, id, ip) = keyed_fake();
    put_sealed(&fake, &id, "app", "db");
    let rule = ip.add(Rule {
        tag: None,
        method: Some(http::Method::GET),
        contains: "/sealedsecrets?",
        action: Action::Status(403),
        times: None,
    });
    let mut c = config();
    c.probe_listen = Some("127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()));
    let running = start_with_client(&fake, ip.client("a"), c, None).await;
    let probes = running
        .handles
        .probe_addr
        .unwrap_or_else(|| panic!("no probes"));
    wait_for("keys", 10, || running.handles.keys.is_ready().then_some(())).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (code, body) = http_get(probes, "/readyz").await;
        if body.contains("cannot list") {
            assert_eq!(code, 503);
            break body;
        }
        assert!(Instant::now() < deadline, "{code} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        body,
        "not ready:\ncannot list SealedSecrets: the API server answered 403\n"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.get("secrets", "app", "db").is_none());
    ip.remove(rule);
    wait_for("synced once listing works", 10, || {
        synced(&fake, "app", "db")
    })
    .await;
    assert_eq!(http_get(probes, "/readyz").await, (200, "ready\n".into()));
    running.shutdown().await;
}
