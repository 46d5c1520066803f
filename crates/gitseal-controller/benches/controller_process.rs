//! Controller-only benchmark: the real `gitseal-controller run` binary in its
//! own process reconciles N SealedSecrets × M items served by the fake API
//! over HTTP on 127.0.0.1 (in this process), with kube's default client
//! settings. Reports, for the controller process alone: wall time from
//! spawn until every Secret exists and until every SealedSecret is Synced,
//! CPU seconds per reconcile (`/proc/PID/stat`) and peak RSS (`VmHWM` from
//! `/proc/PID/status`, read before SIGTERM).
//!
//! Run: `cargo bench -p gitseal-controller --bench controller_process`
//! (N=10000, M=10; override with `GITSEAL_BENCH_OBJECTS` /
//! `GITSEAL_BENCH_ITEMS`; extra `run` flags in `GITSEAL_BENCH_ARGS`,
//! space-separated; `GITSEAL_BENCH_LAST_APPLIED=1` gives every object
//! kubectl's last-applied annotation, as `kubectl apply` would;
//! `GITSEAL_BENCH_ITEM_BYTES=B` pads every value to B bytes, e.g. 200
//! objects × 1 item × 1,000,000 bytes for objects near the 1 MiB limit).
//! With N=0 it reports the idle controller. `GITSEAL_BENCH_WORKLOADS=W`
//! also stores W Deployments in the objects' namespaces, every other one
//! opted in to rollout on change for one object's Secret (use with
//! `GITSEAL_BENCH_ARGS=--rollout-on-change=true`).
//!
//! It prints the API requests of the cold start by verb and resource (and
//! per object), the reconciles per object, wall time and peak RSS; then it
//! starts a second controller over the synced objects (`restart`) and
//! prints the requests that one makes until it has reconciled everything
//! (a restart over synced objects must write nothing). `GITSEAL_BENCH_RESTART=0`
//! skips the restart.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use gitseal_test_support::{fake_api, process};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gitseal_crypto::Identity;
use process::{metric_sum, ControllerProcess};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let n = env_usize("GITSEAL_BENCH_OBJECTS", 10_000);
    let items = env_usize("GITSEAL_BENCH_ITEMS", 10);
    let extra = std::env::var("GITSEAL_BENCH_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let last_applied = std::env::var_os("GITSEAL_BENCH_LAST_APPLIED").is_some();
    let item_bytes = env_usize("GITSEAL_BENCH_ITEM_BYTES", 0);
    let workloads = env_usize("GITSEAL_BENCH_WORKLOADS", 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        // Watch history deep enough that the controller's watches never get
        // 410 Gone in the middle of the run (a real API server's watch cache).
        let fake = fake_api::FakeApi::with_history((n * 4).max(4096));
        let id = Identity::generate();
        let t = Instant::now();
        process::seed_sized(&fake, &id, n, items, item_bytes, last_applied);
        for k in 0..workloads {
            let (ns, secret) = process::object_place(k);
            let mut meta = serde_json::json!({"name": format!("web-{k:05}"), "namespace": ns});
            if k % 2 == 0 {
                meta["annotations"] = serde_json::json!({"gitseal.dev/restart-on-change": secret});
            }
            fake.upsert(
                "deployments",
                &ns,
                serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                    "spec": {"selector": {"matchLabels": {"app": "web"}},
                             "template": {"metadata": {"labels": {"app": "web"}},
                                          "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            );
        }
        eprintln!(
            "setup: sealed {} values in {} objects in {:.1}s",
            n * items,
            n,
            t.elapsed().as_secs_f64()
        );
        let stored: usize = fake.list_bytes("sealedsecrets").iter().map(|b| b.len()).sum();
        eprintln!(
            "stored SealedSecret JSON: {:.0} bytes per object on average",
            stored as f64 / n.max(1) as f64
        );
        let addr = process::serve_http(fake.clone()).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let kubeconfig = process::write_kubeconfig(dir.path(), addr);
        let requests_before = fake.request_count();
        let tally_before = fake.request_tally();
        let fake_cpu_before = process::usage(std::process::id())
            .map(|u| u.cpu_secs)
            .unwrap_or(0.0);

        let ctl = ControllerProcess::start(&kubeconfig, &extra).await;
        let started_in = ctl.started.elapsed();
        let mut max_sampled = 0u64;
        let mut all_secrets: Option<Duration> = None;
        let mut last_print = Instant::now();
        let synced_at = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Some(u) = ctl.usage() {
                max_sampled = max_sampled.max(u.rss_kib);
            }
            // The key Secret and the hash key are Secrets too.
            let secrets = fake.count("secrets").saturating_sub(2);
            if all_secrets.is_none() && secrets >= n && process::written_secrets(&fake) >= n {
                all_secrets = Some(ctl.started.elapsed());
            }
            if all_secrets.is_some() {
                if n == 0 {
                    // Idle: let it settle after startup.
                    if ctl.started.elapsed() > Duration::from_secs(5) {
                        break ctl.started.elapsed();
                    }
                } else if process::synced(&fake) >= n {
                    break ctl.started.elapsed();
                }
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                let rss = ctl.usage().map(|u| u.rss_kib).unwrap_or(0);
                eprintln!(
                    "  {:.0}s: {secrets} Secrets, RSS {:.1} MiB",
                    ctl.started.elapsed().as_secs_f64(),
                    mib(rss)
                );
                last_print = Instant::now();
            }
            if ctl.started.elapsed() > Duration::from_secs(900) {
                eprintln!("gave up after 900 s\n{}", ctl.log_text());
                break ctl.started.elapsed();
            }
        };
        // Let the reconciles triggered by the controller's own writes settle.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (_, metrics) = process::http_get(ctl.http, "/metrics").await;
        let reconciles = metric_sum(&metrics, "gitseal_reconciles_total");
        let failures = metric_sum(&metrics, "gitseal_reconcile_failures_total");
        let end = ctl.usage().unwrap_or_default();
        let log_lines = ctl.log_lines();
        let pid = ctl.pid;
        let status = ctl.terminate().await;
        let requests = fake.request_count() - requests_before;
        let tally = tally_since(&tally_before, &fake.request_tally());
        let fake_cpu = process::usage(std::process::id())
            .map(|u| u.cpu_secs)
            .unwrap_or(0.0)
            - fake_cpu_before;

        println!(
            "objects: {n} x {items} items{}{}; controller pid {pid}, separate process, fake API over HTTP",
            if item_bytes > 0 { format!(" of {item_bytes} bytes") } else { String::new() },
            if last_applied { " with kubectl's last-applied annotation" } else { "" }
        );
        if workloads > 0 {
            println!("workloads: {workloads} Deployments, {} opted in; run flags: {extra:?}", workloads.div_ceil(2));
        }
        println!("controller started (HTTP up) after {:.2} s", started_in.as_secs_f64());
        if let Some(w) = all_secrets {
            println!("wall time from spawn to every Secret written: {:.2} s", w.as_secs_f64());
        }
        println!(
            "wall time from spawn to every SealedSecret Synced: {:.2} s",
            synced_at.as_secs_f64()
        );
        println!(
            "reconciles: {reconciles:.0} ({failures:.0} failed), API requests: {requests}, log lines: {log_lines}"
        );
        println!(
            "per object: {:.2} reconciles, {:.2} API requests ({:.2} excluding watches, list pages and discovery)",
            reconciles / n.max(1) as f64,
            requests as f64 / n.max(1) as f64,
            per_object_requests(&tally) / n.max(1) as f64
        );
        print_tally("API requests of the cold start by verb and resource", &tally, n);
        println!(
            "controller CPU: {:.2} s total, {:.0} µs per reconcile, {:.0} µs per object",
            end.cpu_secs,
            end.cpu_secs * 1e6 / reconciles.max(1.0),
            end.cpu_secs * 1e6 / (n.max(1)) as f64
        );
        println!(
            "fake API (this process, same 2 cores) CPU during the run: {fake_cpu:.2} s"
        );
        println!(
            "controller peak RSS (VmHWM): {:.1} MiB; RSS at the end: {:.1} MiB; max sampled every 200 ms: {:.1} MiB; threads: {}",
            mib(end.hwm_kib),
            mib(end.rss_kib),
            mib(max_sampled),
            end.threads
        );
        println!(
            "exit on SIGTERM: {}",
            status.map(|s| s.to_string()).unwrap_or_else(|| "killed after 10 s".to_string())
        );
        if n == 0 || std::env::var("GITSEAL_BENCH_RESTART").is_ok_and(|v| v == "0") {
            return;
        }

        // Restart over the synced objects: a new process, same fake API.
        let before = fake.request_tally();
        let reconciles_wanted = n as f64;
        let ctl = ControllerProcess::start(&kubeconfig, &extra).await;
        let settled = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (_, metrics) = process::http_get(ctl.http, "/metrics").await;
            if metric_sum(&metrics, "gitseal_reconciles_total") >= reconciles_wanted {
                break ctl.started.elapsed();
            }
            if ctl.started.elapsed() > Duration::from_secs(600) {
                eprintln!("restart: gave up after 600 s\n{}", ctl.log_text());
                break ctl.started.elapsed();
            }
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (_, metrics) = process::http_get(ctl.http, "/metrics").await;
        let reconciles = metric_sum(&metrics, "gitseal_reconciles_total");
        let end = ctl.usage().unwrap_or_default();
        let _ = ctl.terminate().await;
        let tally = tally_since(&before, &fake.request_tally());
        let writes: u64 = tally
            .iter()
            .filter(|(k, _)| is_object_write(k))
            .map(|(_, v)| v)
            .sum();
        println!(
            "restart over {n} synced objects: every object reconciled after {:.2} s, {reconciles:.0} reconciles, {writes} writes of Secrets, SealedSecrets or Events, peak RSS {:.1} MiB",
            settled.as_secs_f64(),
            mib(end.hwm_kib)
        );
        print_tally("API requests of the restart by verb and resource", &tally, n);
    });
}

/// Requests per `verb resource` made between two tallies.
fn tally_since(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// A write of a Secret, SealedSecret (or its status) or Event: what a
/// restart over synced objects must not do. (Lease renewals and the
/// public-key ConfigMap are per process, not per object.)
fn is_object_write(key: &str) -> bool {
    let (verb, resource) = key.split_once(' ').unwrap_or((key, ""));
    matches!(verb, "create" | "update" | "patch" | "delete")
        && ["secrets", "sealedsecrets", "events"]
            .iter()
            .any(|r| resource == *r || resource.starts_with(&format!("{r}/")))
}

/// Requests that scale with objects: everything but watches, list pages
/// and discovery.
fn per_object_requests(tally: &BTreeMap<String, u64>) -> f64 {
    tally
        .iter()
        .filter(|(k, _)| {
            !(k.starts_with("watch ") || k.starts_with("list ") || k.starts_with("get discovery"))
        })
        .map(|(_, v)| *v as f64)
        .sum()
}

fn print_tally(title: &str, tally: &BTreeMap<String, u64>, n: usize) {
    println!("{title}:");
    for (k, v) in tally {
        println!(
            "  {k:<32} {v:>8}  ({:.3} per object)",
            *v as f64 / n.max(1) as f64
        );
    }
}
