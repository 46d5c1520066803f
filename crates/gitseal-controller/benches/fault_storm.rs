//! The fault storm of `tests/it/storm.rs` (run short in the suite by
//! `tests/it/fault_storm.rs`), long: the real controller
//! (in this process) against the fake API while the API injects faults at
//! random and users create, change and delete SealedSecrets and edit and
//! delete their Secrets by hand. Prints the faults injected by kind, the
//! operations done, the time to converge after the faults stop, Secret
//! writes per Secret-changing operation, the requests and CPU time of the
//! quiet window after converging, and the peak RSS of the process
//! (`VmHWM`; the fake API and the driver run in it too). Exits non-zero on
//! any violation (a Secret blanked, lost, written after its SealedSecret
//! was deleted, not converged, or still written to after converging).
//!
//! Run: `cargo bench -p gitseal-controller --bench fault_storm`
//! (200 objects, 120 s at a 20 % fault rate; override with
//! `GITSEAL_STORM_OBJECTS`, `GITSEAL_STORM_SECS`, `GITSEAL_STORM_RATE`,
//! `GITSEAL_STORM_SEED`).

#![allow(clippy::print_stdout, clippy::print_stderr, dead_code)]

#[path = "../tests/it/common.rs"]
mod common;
#[path = "../tests/it/storm.rs"]
mod storm;

use gitseal_test_support::fake_api;

use std::time::Duration;

use storm::{run_storm, seed_from_env, StormConfig};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let objects: usize = env("GITSEAL_STORM_OBJECTS", 200);
    let secs: u64 = env("GITSEAL_STORM_SECS", 120);
    let rate: f64 = env("GITSEAL_STORM_RATE", 0.2);
    let seed = seed_from_env(16);
    let mut cfg = StormConfig::new(objects, Duration::from_secs(secs), rate, seed);
    cfg.converge_limit = Duration::from_secs(300);
    cfg.quiet = Duration::from_secs(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let report = rt.block_on(run_storm(&cfg));
    println!(
        "fault storm: {objects} objects, {secs} s at rate {rate}, seed {seed}, request timeout {} ms",
        cfg.request_timeout.as_millis()
    );
    for line in report.lines() {
        println!("  {line}");
    }
    match peak_rss_kib() {
        Some(kib) => println!("  peak RSS (whole process): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("  peak RSS: unknown"),
    }
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
}
