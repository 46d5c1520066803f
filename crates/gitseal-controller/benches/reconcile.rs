//! Reconcile benchmark: N SealedSecrets × M items through the in-process
//! fake API and the real kube-runtime Controller, with kube's default client
//! settings. Reports wall time, CPU per reconcile and peak RSS.
//!
//! Run: `cargo bench -p gitseal-controller --bench reconcile` (N=10000, M=10;
//! override with `GITSEAL_BENCH_OBJECTS` / `GITSEAL_BENCH_ITEMS`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/it/fake_api.rs"]
mod fake_api;

use std::time::{Duration, Instant};

use gitseal_controller::keys::key_secret;
use gitseal_controller::run::{self, Config};
use gitseal_crypto::{seal, Binding, Identity, Scope};
use serde_json::{json, Value};

const NS: &str = "gitseal-system";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (user+system CPU seconds, peak RSS in KiB) of this process, from /proc
/// (`VmHWM` is what getrusage reports as ru_maxrss).
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is state (field 3); utime is field 14, stime 15.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (cpu, kib("VmHWM:"))
}

fn rss_now() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn make_objects(n: usize, items: usize, id: &Identity) -> Vec<(String, Value)> {
    let recipients = [id.recipient().clone()];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let recipients = &recipients;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in (t * chunk)..((t + 1) * chunk).min(n) {
                        let ns = format!("team-{:03}", i % 100);
                        let name = format!("app-{i:05}");
                        let mut data = serde_json::Map::new();
                        for j in 0..items {
                            let key = format!("ITEM_{j}");
                            let value = format!("value-{i}-{j}-0123456789abcdef");
                            let env = seal(
                                value.as_bytes(),
                                recipients,
                                &Binding::new(Scope::Strict, &ns, &name, &key),
                            );
                            if let Ok(e) = env {
                                data.insert(key, json!(e.to_string()));
                            }
                        }
                        out.push((
                            ns.clone(),
                            json!({
                                "apiVersion": "gitseal.dev/v1alpha1",
                                "kind": "SealedSecret",
                                "metadata": {"name": name, "namespace": ns},
                                "spec": {"encryptedData": data},
                            }),
                        ));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn synced(fake: &fake_api::FakeApi) -> usize {
    fake.list_bytes("sealedsecrets")
        .iter()
        .filter(|b| memmem(b, b"\"reason\":\"Synced\""))
        .count()
}

fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn main() {
    let n = env_usize("GITSEAL_BENCH_OBJECTS", 10_000);
    let items = env_usize("GITSEAL_BENCH_ITEMS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        let fake = fake_api::FakeApi::with_history(4096);
        let id = Identity::generate();
        let mut key = serde_json::to_value(key_secret(&id, k8s_openapi::jiff::Timestamp::now())).unwrap_or_default();
        key["apiVersion"] = json!("v1");
        key["kind"] = json!("Secret");
        fake.upsert("secrets", NS, key);
        let t = Instant::now();
        let objects = make_objects(n, items, &id);
        for (ns, obj) in objects {
            fake.upsert("sealedsecrets", &ns, obj);
        }
        eprintln!("setup: sealed {} values in {:.1}s", n * items, t.elapsed().as_secs_f64());
        let rss_before = rss_now();
        let (cpu0, _) = usage();
        let start = Instant::now();
        let mut config = Config::new(NS);
        config.listen = None;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (handles, fut) = run::start(fake.client(), config, None, async {
            let _ = rx.await;
        })
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
        let task = tokio::spawn(fut);
        let mut last_print = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let secrets = fake.count("secrets").saturating_sub(2);
            if secrets >= n && synced(&fake) >= n {
                break;
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                eprintln!("  {:.0}s: {secrets} Secrets", start.elapsed().as_secs_f64());
                last_print = Instant::now();
            }
            if start.elapsed() > Duration::from_secs(600) {
                eprintln!("gave up after 600 s");
                break;
            }
        }
        let wall = start.elapsed();
        // Let the reconciles triggered by our own writes settle, then count them.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (cpu1, peak) = usage();
        let metrics = handles.metrics.render();
        let reconciles: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("gitseal_reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let _ = tx.send(());
        let _ = task.await;
        println!("objects: {n} x {items} items");
        println!("wall time to all Secrets written and Synced: {:.2} s", wall.as_secs_f64());
        println!("reconciles: {reconciles:.0} ({:.0}/s)", reconciles / wall.as_secs_f64());
        println!("API requests: {}", fake.request_count());
        println!(
            "CPU: {:.2} s total, {:.0} µs per reconcile, {:.0} µs per object (controller + fake API, same process)",
            cpu1 - cpu0,
            (cpu1 - cpu0) * 1e6 / reconciles.max(1.0),
            (cpu1 - cpu0) * 1e6 / n as f64
        );
        println!(
            "peak RSS: {:.1} MiB (process); RSS before the controller started: {:.1} MiB (fake API holding the objects); controller share ≈ {:.1} MiB",
            peak as f64 / 1024.0,
            rss_before as f64 / 1024.0,
            peak.saturating_sub(rss_before) as f64 / 1024.0
        );
    });
}
