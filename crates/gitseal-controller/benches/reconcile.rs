//! Reconcile benchmark: N SealedSecrets × M items through the in-process
//! fake API and the real kube-runtime Controller, with kube's default client
//! settings. Reports wall time, CPU per reconcile and peak RSS — of the whole
//! process, fake API included; `benches/controller_process.rs` measures the
//! controller binary alone.
//!
//! Run: `cargo bench -p gitseal-controller --bench reconcile` (N=10000, M=10;
//! override with `GITSEAL_BENCH_OBJECTS` / `GITSEAL_BENCH_ITEMS`).
//! `GITSEAL_BENCH_TEMPLATES=1` gives every object four templated items
//! over its first seven items (M >= 7): a DATABASE_URL, a config.yaml, a
//! .dockerconfigjson and a trimmed token, as in docs/templates.md.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use gitseal_test_support::{fake_api, process};

use std::time::{Duration, Instant};

use gitseal_controller::run::{self, Config};
use gitseal_crypto::Identity;

const NS: &str = "gitseal-system";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (CPU seconds, peak RSS KiB, RSS now KiB) of this process.
fn usage() -> (f64, u64, u64) {
    let u = process::usage(std::process::id()).unwrap_or_default();
    (u.cpu_secs, u.hwm_kib, u.rss_kib)
}

/// Adds the templated items of docs/templates.md's examples to every
/// SealedSecret of `fake` (before the controller starts).
fn add_templates(fake: &fake_api::FakeApi) {
    let data = serde_json::json!({
        "DATABASE_URL": "postgres://{{ ITEM_0 }}:{{ ITEM_1 | urlencode }}@db:5432/app",
        "config.yaml": "database:\n  user: {{ ITEM_0 | yaml }}\n  password: {{ ITEM_1 | yaml }}\napi:\n  key: {{ ITEM_2 | yaml }}\nsmtp:\n  password: {{ ITEM_3 | yaml }}\n",
        ".dockerconfigjson": "{{ dockerconfigjson('ghcr.io', ITEM_4, ITEM_5 ) }}",
        "token": "{{ ITEM_6 | trim }}",
    });
    for mut obj in fake.list("sealedsecrets") {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        obj["spec"]["template"] = serde_json::json!({"data": data});
        fake.upsert("sealedsecrets", &ns, obj);
    }
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
        let t = Instant::now();
        process::seed(&fake, &id, n, items, false);
        let templated = std::env::var("GITSEAL_BENCH_TEMPLATES").is_ok_and(|v| v == "1");
        if templated {
            add_templates(&fake);
        }
        eprintln!("setup: sealed {} values in {:.1}s", n * items, t.elapsed().as_secs_f64());
        let (cpu0, _, rss_before) = usage();
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
            if secrets >= n && process::synced(&fake) >= n {
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
        let (cpu1, peak, _) = usage();
        let metrics = handles.metrics.render();
        let reconciles: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("gitseal_reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let _ = tx.send(());
        let _ = task.await;
        println!(
            "objects: {n} x {items} items{}",
            if templated { ", 4 templated items each" } else { "" }
        );
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
