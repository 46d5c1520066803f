//! Benchmark: resolving the Vault items of 1,000 SealedSecrets.
//!
//! Starts a local OpenBao dev server (`$BAO_BIN` or `bao` on PATH), seeds 50
//! KV v2 secrets (10 namespaces x 5 services, 5 fields each) and resolves
//! 1,000 SealedSecrets with 5 Vault items each (3 distinct paths per
//! SealedSecret) through the same API the controller uses: one shared
//! `VaultClient` (AppRole login), one `Session` per reconcile with the
//! tenancy policy, 16 reconciles in flight. It reports Vault calls, logins
//! and wall time for:
//!
//! * `naive`: one Vault read per item (what a resolver without sessions does),
//! * `session`: one session per reconcile, no cross-reconcile sharing,
//! * `session+shared`: the default client (reads shared for 30 s).
//!
//! Run: `BAO_BIN="$(scripts/openbao.sh)" cargo bench -p gitseal-vault --bench resolve`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gitseal_test_support::openbao::Bao;
use gitseal_vault::{AuthMethod, ExposeSecret, PathPolicy, VaultClient, VaultConfig, VaultRef};
use serde_json::json;
use tokio::sync::Semaphore;

const SEALED_SECRETS: usize = 1000;
const ITEMS: usize = 5;
const NAMESPACES: usize = 10;
const SERVICES: usize = 5;
const IN_FLIGHT: usize = 16;
const RUNS: usize = 3;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Naive,
    Session,
    SessionShared,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Naive => "naive (read per item)",
            Mode::Session => "session per reconcile",
            Mode::SessionShared => "session + shared 30 s",
        }
    }
}

/// The 1,000 SealedSecrets: (namespace, 5 references).
fn sealed_secrets() -> Vec<(String, Vec<VaultRef>)> {
    (0..SEALED_SECRETS)
        .map(|i| {
            let ns = format!("team{}", i % NAMESPACES);
            let refs = (0..ITEMS)
                .map(|j| {
                    let svc = (i / NAMESPACES + j / 2) % SERVICES;
                    format!("secret/{ns}/svc{svc}#f{j}").parse().expect("ref")
                })
                .collect();
            (ns, refs)
        })
        .collect()
}

async fn run(
    bao: &Bao,
    role: &std::path::Path,
    secret: &std::path::Path,
    mode: Mode,
    work: &Arc<Vec<(String, Vec<VaultRef>)>>,
) -> (Duration, gitseal_vault::MetricsSnapshot) {
    let mut config = VaultConfig::new(bao.addr(), AuthMethod::approle(role, secret));
    if mode != Mode::SessionShared {
        config.shared_cache_ttl = Duration::ZERO;
    }
    let client = VaultClient::new(config).await.expect("client");
    let policy = Arc::new(PathPolicy::default());
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..work.len() {
        let (client, policy, gate, work) =
            (client.clone(), policy.clone(), gate.clone(), work.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            let (ns, refs) = &work[idx];
            let session = client.session().for_namespace(&policy, ns.clone());
            let mut total = 0usize;
            for r in refs {
                let v = if mode == Mode::Naive {
                    client
                        .session()
                        .for_namespace(&policy, ns.clone())
                        .resolve(r)
                        .await
                } else {
                    session.resolve(r).await
                }
                .expect("resolve");
                total += v.expose_secret().len();
            }
            total
        });
    }
    let mut bytes = 0;
    while let Some(res) = tasks.join_next().await {
        bytes += res.expect("task");
    }
    let elapsed = start.elapsed();
    assert!(bytes > 0);
    (elapsed, client.metrics())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let Some(bao) = Bao::start().await else {
            eprintln!("bench skipped: no `bao` binary (run scripts/openbao.sh, set BAO_BIN)");
            return;
        };
        let dir = tempfile::tempdir().expect("tmp");
        let (role, secret) = bao.approle_reading_all("bench", dir.path()).await;
        for ns in 0..NAMESPACES {
            for svc in 0..SERVICES {
                let data: serde_json::Map<String, serde_json::Value> = (0..ITEMS)
                    .map(|f| (format!("f{f}"), json!(format!("value-{ns}-{svc}-{f}"))))
                    .collect();
                bao.put_kv2("secret", &format!("team{ns}/svc{svc}"), serde_json::Value::Object(data))
                    .await;
            }
        }
        let work = Arc::new(sealed_secrets());
        let distinct: std::collections::HashSet<(String, String)> = work
            .iter()
            .flat_map(|(_, refs)| refs.iter().map(|r| (r.mount().to_string(), r.path().to_string())))
            .collect();
        println!(
            "{SEALED_SECRETS} SealedSecrets x {ITEMS} Vault items, {} distinct paths, {IN_FLIGHT} reconciles in flight, OpenBao dev server on loopback, best/median of {RUNS} runs",
            distinct.len()
        );
        println!();
        println!("| mode | Vault calls | reads | mount lookups | logins | wall time (best) | wall time (median) | SealedSecrets/s (best) |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for mode in [Mode::Naive, Mode::Session, Mode::SessionShared] {
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..RUNS {
                let (t, m) = run(&bao, &role, &secret, mode, &work).await;
                times.push(t);
                last = Some(m);
            }
            times.sort();
            let m = last.expect("runs");
            let best = times[0];
            let median = times[times.len() / 2];
            println!(
                "| {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.0} |",
                mode.name(),
                m.vault_calls(),
                m.reads,
                m.mount_lookups,
                m.logins,
                best.as_secs_f64() * 1e3,
                median.as_secs_f64() * 1e3,
                SEALED_SECRETS as f64 / best.as_secs_f64(),
            );
        }
    });
}
