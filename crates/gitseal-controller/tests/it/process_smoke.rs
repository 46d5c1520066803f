//! Smoke test of the out-of-process path the memory benchmark uses
//! (`benches/controller_process.rs`): the real `gitseal-controller run`
//! binary against the fake API over HTTP, with a few objects, so that path
//! cannot rot between benchmark runs.

use gitseal_crypto::Identity;
use serde_json::json;

use crate::common::{secret_data, wait_for};
use crate::e2e::base64_encode;
use crate::fake_api::FakeApi;
use crate::process::{
    http_get, metric_sum, object_place, plaintext, seed, serve_http, synced, write_kubeconfig,
    written_secrets, ControllerProcess, CONTROLLER_NS,
};

const OBJECTS: usize = 50;
const ITEMS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_binary_over_http_syncs_puts_back_and_stops_on_sigterm() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    seed(&fake, &id, OBJECTS, ITEMS, true);
    let addr = serve_http(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = write_kubeconfig(dir.path(), addr);
    let ctl = ControllerProcess::start(&kubeconfig, &[]).await;

    wait_for("every Secret written and Synced", 60, || {
        (written_secrets(&fake) == OBJECTS && synced(&fake) == OBJECTS).then_some(())
    })
    .await;
    let (ns, name) = object_place(7);
    let secret = fake
        .get("secrets", &ns, &name)
        .unwrap_or_else(|| panic!("no Secret {ns}/{name}"));
    let data = secret_data(&secret);
    for j in 0..ITEMS {
        assert_eq!(
            data.get(&format!("ITEM_{j}")).map(Vec::as_slice),
            Some(plaintext(7, j).as_bytes())
        );
    }

    // Leader election went through the Lease; HTTP serves keys and metrics.
    let lease = fake
        .get("leases", CONTROLLER_NS, "gitseal-controller")
        .unwrap_or_else(|| panic!("no Lease"));
    assert_eq!(lease["spec"]["holderIdentity"], "bench-replica");
    assert_eq!(http_get(ctl.http, "/healthz").await.0, 200);
    let (code, key) = http_get(ctl.http, "/v1/key").await;
    assert_eq!(code, 200);
    assert_eq!(key.trim(), id.recipient().to_string());
    let (_, metrics) = http_get(ctl.http, "/metrics").await;
    assert!(
        metric_sum(&metrics, "gitseal_reconciles_total") >= OBJECTS as f64,
        "{metrics}"
    );
    assert_eq!(metric_sum(&metrics, "gitseal_leader"), 1.0, "{metrics}");

    // An edited Secret is put back: the owned-Secret watch works over HTTP.
    let mut edited = secret.clone();
    edited["data"]["ITEM_1"] = json!(base64_encode(b"edited by hand"));
    fake.upsert("secrets", &ns, edited);
    wait_for("edited Secret put back", 30, || {
        let s = fake.get("secrets", &ns, &name)?;
        (secret_data(&s).get("ITEM_1").map(Vec::as_slice) == Some(plaintext(7, 1).as_bytes()))
            .then_some(())
    })
    .await;
    // So is a deleted one.
    assert!(fake.remove("secrets", &ns, &name));
    wait_for("deleted Secret put back", 30, || {
        let s = fake.get("secrets", &ns, &name)?;
        (secret_data(&s).get("ITEM_0").map(Vec::as_slice) == Some(plaintext(7, 0).as_bytes()))
            .then_some(())
    })
    .await;

    let usage = ctl.usage().unwrap_or_else(|| panic!("no /proc entry"));
    assert!(usage.hwm_kib > 0 && usage.cpu_secs >= 0.0);
    let log = ctl.log_text();
    let status = ctl.terminate().await;
    assert!(
        status.is_some_and(|s| s.success()),
        "controller did not exit cleanly on SIGTERM: {status:?}\n{log}"
    );
    for i in [0, 7, OBJECTS - 1] {
        for j in 0..ITEMS {
            assert!(!log.contains(&plaintext(i, j)), "plaintext in the log");
        }
    }
}

#[test]
fn worker_threads_out_of_range_is_refused_before_starting() {
    for bad in ["0", "65", "many"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
            .args(["run", "--worker-threads", bad])
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .output()
            .unwrap_or_else(|e| panic!("running gitseal-controller: {e}"));
        assert_eq!(out.status.code(), Some(2), "--worker-threads {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("invalid value") && stderr.contains("--worker-threads"),
            "--worker-threads {bad}: {stderr}"
        );
    }
}
