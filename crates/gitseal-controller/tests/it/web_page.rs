//! The sealing page (`web/`), end to end and against the Rust code.
//!
//! - In a real headless Chromium: the real `gitseal-controller run` binary
//!   serves the page against the fake API (over HTTP, as in
//!   `process_smoke`), and `web/test/browser.test.mjs` (puppeteer-core)
//!   drives it like a user and opens the results with the real `gitseal
//!   unseal`. Then the controller itself opens a SealedSecret the browser
//!   sealed into a Secret, and its log is searched for the plaintexts.
//! - JS against Rust: values sealed by the page's sealer
//!   (`web/src/envelope.js`, through `web/test/seal-stdin.mjs`) open with
//!   the Rust opener, and the committed test vectors
//!   (`web/test/data/gs1-vectors.json`) open too.
//!
//! Needs `node`, the npm packages of `web/` (`npm ci`), Debian's
//! `chromium`, and the `gitseal` binary next to this crate's (built by
//! `cargo test --workspace`); `scripts/web.sh` installs the first three.
//! Without them the tests return early with a note, except under `CI`,
//! where they fail.

// The skip note and the browser run's report go to the test's stderr.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gitseal_crypto::{Binding, Envelope, Error, Identity, Opener, Scope};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::common::{secret_data, wait_for};
use crate::fake_api::FakeApi;
use crate::process::{http_get, seed, serve_http, write_kubeconfig, ControllerProcess};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the tests run, found; `None` (after a note) when something is
/// missing outside CI.
struct Tools {
    node: PathBuf,
    chromium: PathBuf,
    gitseal: PathBuf,
}

fn missing(what: &str) -> Option<Tools> {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what}: the sealing-page tests must run in CI (scripts/web.sh installs node, the npm packages and chromium)"
    );
    eprintln!("note: skipping the sealing-page test: {what} (scripts/web.sh installs it)");
    None
}

fn tools(browser: bool) -> Option<Tools> {
    let node = PathBuf::from(std::env::var_os("NODE").unwrap_or_else(|| "node".into()));
    let works = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        return missing("node is not installed");
    }
    let modules = repo().join("web/node_modules");
    for package in ["@hpke/core", "yaml", "puppeteer-core"] {
        if !modules.join(package).is_dir() {
            return missing(&format!(
                "web/node_modules/{package} is missing (npm ci in web/)"
            ));
        }
    }
    let chromium =
        PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    if browser && !chromium.is_file() {
        return missing(&format!("{} is missing", chromium.display()));
    }
    let gitseal = Path::new(env!("CARGO_BIN_EXE_gitseal-controller")).with_file_name("gitseal");
    if browser && !gitseal.is_file() {
        return missing("the gitseal binary is not built (cargo build -p gitseal)");
    }
    Some(Tools {
        node,
        chromium,
        gitseal,
    })
}

fn identity_file(dir: &Path, name: &str, id: &Identity) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, id.to_identity_file(None).expose_secret())
        .unwrap_or_else(|e| panic!("writing {name}: {e}"));
    path
}

/// Runs `node ARGS` in `web/` with `stdin`, failing with its output unless it succeeds.
async fn node(tools: &Tools, args: &[&str], envs: &[(&str, &Path)], stdin: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncWriteExt as _;
    let mut cmd = tokio::process::Command::new(&tools.node);
    cmd.args(args)
        .current_dir(repo().join("web"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting node: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .await
            .unwrap_or_else(|e| panic!("writing to node: {e}"));
    }
    let out = tokio::time::timeout(Duration::from_secs(600), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("node {args:?} did not finish within 10 minutes"))
        .unwrap_or_else(|e| panic!("node {args:?}: {e}"));
    assert!(
        out.status.success(),
        "node {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_page_in_chromium_served_by_the_controller_binary() {
    let Some(tools) = tools(true) else { return };
    let fake = FakeApi::new();
    let id = Identity::generate();
    seed(&fake, &id, 0, 0, false);
    let addr = serve_http(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let kubeconfig = write_kubeconfig(dir.path(), addr);
    let ctl = ControllerProcess::start(&kubeconfig, &[]).await;
    let mut ready = false;
    for _ in 0..600 {
        ready = http_get(ctl.http, "/readyz").await.0 == 200;
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ready,
        "the controller did not load its key within 30 s:\n{}",
        ctl.log_text()
    );
    let (code, page) = http_get(ctl.http, "/").await;
    assert_eq!(code, 200);
    assert!(page.contains("<title>gitseal: seal a Secret</title>"));

    let identity = identity_file(dir.path(), "controller.key", &id);
    let out = dir.path().join("out");
    let url = PathBuf::from(format!("http://{}/", ctl.http));
    let page_file = repo().join("web/dist/index.html");
    let screenshot = std::env::var_os("GITSEAL_UPDATE_SCREENSHOT")
        .map(|_| repo().join("docs/images/sealing-page.png"))
        .unwrap_or_else(|| out.join("sealing-page.png"));
    let mut envs: Vec<(&str, &Path)> = vec![
        ("GITSEAL_PAGE_URL", &url),
        ("GITSEAL_PAGE_FILE", &page_file),
        ("GITSEAL_BIN", &tools.gitseal),
        ("GITSEAL_IDENTITY", &identity),
        ("GITSEAL_OUT", &out),
        ("CHROMIUM", &tools.chromium),
        ("GITSEAL_SCREENSHOT", &screenshot),
    ];
    envs.sort();
    let report = node(
        &tools,
        &["--test", "--test-reporter=spec", "test/browser.test.mjs"],
        &envs,
        b"",
    )
    .await;
    eprintln!("{}", String::from_utf8_lossy(&report));

    // The controller opens what the browser sealed, into the Secret it writes.
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let sealed: Value = serde_yaml::from_str(&read("controller-strict.yaml"))
        .unwrap_or_else(|e| panic!("the browser's SealedSecret: {e}"));
    fake.upsert("sealedsecrets", "team-a", sealed);
    let expected: BTreeMap<String, String> =
        serde_json::from_str(&read("controller-strict.expected.json"))
            .unwrap_or_else(|e| panic!("expected values: {e}"));
    let expected: BTreeMap<String, Vec<u8>> = expected
        .into_iter()
        .map(|(k, v)| (k, STANDARD.decode(v).unwrap_or_default()))
        .collect();
    wait_for(
        "the controller to write the browser-sealed Secret",
        60,
        || {
            let s = fake.get("secrets", "team-a", "db")?;
            (secret_data(&s) == expected).then_some(())
        },
    )
    .await;

    // Nothing the page sealed is in the controller's log.
    let plaintexts: Vec<String> = serde_json::from_str(&read("plaintexts.json"))
        .unwrap_or_else(|e| panic!("plaintexts: {e}"));
    let log = ctl.log_text();
    assert!(!log.is_empty());
    for p in plaintexts {
        let bytes = STANDARD.decode(&p).unwrap_or_default();
        assert!(!log.contains(&p), "a sealed value (base64) in the log");
        if let Ok(text) = std::str::from_utf8(&bytes) {
            assert!(!log.contains(text), "a sealed value in the log");
        }
    }
}

fn binding_of(item: &Value) -> Binding {
    let s = |k: &str| item[k].as_str().unwrap_or_default();
    let scope: Scope = s("scope").parse().unwrap_or_else(|e| panic!("scope: {e}"));
    Binding::new(scope, s("namespace"), s("name"), s("key"))
}

#[tokio::test]
async fn values_sealed_by_the_page_open_with_the_rust_opener() {
    let Some(tools) = tools(false) else { return };
    let a = Identity::generate();
    let b = Identity::generate();
    let stranger = Identity::generate();
    let mut objects = Vec::new();
    for (o, scope) in ["strict", "namespace", "cluster"].iter().enumerate() {
        let items: Vec<Value> = [0usize, 1, 15, 16, 17, 1000, 65_536]
            .iter()
            .enumerate()
            .map(|(i, len)| {
                let mut value = vec![0u8; *len];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut value);
                json!({
                    "scope": scope, "namespace": format!("ns-{o}-ü"), "name": format!("obj-{o}"),
                    "key": format!("item.{i}"), "plaintext": STANDARD.encode(&value),
                })
            })
            .collect();
        objects.push(items);
    }
    let input = json!({
        "recipients": [a.recipient().to_string(), b.recipient().to_string()],
        "objects": objects,
    });
    let out = node(
        &tools,
        &["test/seal-stdin.mjs"],
        &[],
        input.to_string().as_bytes(),
    )
    .await;
    let sealed: Vec<Vec<String>> =
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("node output: {e}"));
    assert_eq!(sealed.len(), objects.len());
    let both = [a.clone(), b.clone()];
    for (items, texts) in objects.iter().zip(&sealed) {
        assert_eq!(items.len(), texts.len());
        // One opener per object: all its values share one decapsulation.
        let only_b = [b.clone()];
        let mut opener = Opener::new(&only_b);
        for (item, text) in items.iter().zip(texts) {
            let env = Envelope::parse(text).unwrap_or_else(|e| panic!("parse: {e}"));
            assert_eq!(env.to_string(), *text, "canonical encoding");
            assert_eq!(env.key_ids(), vec![a.key_id(), b.key_id()]);
            let binding = binding_of(item);
            assert_eq!(env.binding(), &binding);
            let want = STANDARD
                .decode(item["plaintext"].as_str().unwrap_or_default())
                .unwrap_or_default();
            for who in [&both[..1], &both[1..]] {
                let got = env
                    .open(who, &binding)
                    .unwrap_or_else(|e| panic!("open {binding}: {e}"));
                assert_eq!(got.expose_secret(), want.as_slice());
            }
            let got = opener
                .open(&env, &binding)
                .unwrap_or_else(|e| panic!("opener {binding}: {e}"));
            assert_eq!(got.expose_secret(), want.as_slice());
            let moved = Binding::new(binding.scope(), "elsewhere", "other", binding.key());
            let moved_key = Binding::new(binding.scope(), "ns", "n", "another-key");
            for wrong in [moved, moved_key] {
                if wrong != binding {
                    assert!(matches!(env.open(&both, &wrong), Err(Error::DoesNotOpen)));
                }
            }
            assert!(matches!(
                env.open(std::slice::from_ref(&stranger), &binding),
                Err(Error::UnknownKey { .. })
            ));
        }
        assert_eq!(opener.decapsulations(), 1, "one encapsulation per object");
    }
}

#[test]
fn the_committed_test_vectors_open_with_the_rust_opener() {
    let text = std::fs::read_to_string(repo().join("web/test/data/gs1-vectors.json"))
        .unwrap_or_else(|e| panic!("gs1-vectors.json: {e}"));
    let file: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("vectors: {e}"));
    let vectors = file["vectors"].as_array().cloned().unwrap_or_default();
    assert!(vectors.len() >= 4);
    let mut values = 0;
    for v in &vectors {
        let strs = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let identities: Vec<Identity> = strs("identities")
            .iter()
            .map(|s| s.parse().unwrap_or_else(|e| panic!("identity: {e}")))
            .collect();
        let recipients = strs("recipients");
        let key_ids = strs("keyIds");
        for (i, id) in identities.iter().enumerate() {
            assert_eq!(id.recipient().to_string(), recipients[i]);
            assert_eq!(id.key_id().to_string(), key_ids[i]);
        }
        for item in v["values"].as_array().cloned().unwrap_or_default() {
            let b = &item["binding"];
            let s = |k: &str| b[k].as_str().unwrap_or_default();
            let scope: Scope = s("scope").parse().unwrap_or_else(|e| panic!("{e}"));
            let binding = Binding::new(scope, s("namespace"), s("name"), s("key"));
            let env = Envelope::parse(item["envelope"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("vector envelope: {e}"));
            let want = hex::decode(item["plaintext"].as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("plaintext hex: {e}"));
            for id in &identities {
                let got = env
                    .open(std::slice::from_ref(id), &binding)
                    .unwrap_or_else(|e| panic!("{}: {e}", v["description"]));
                assert_eq!(got.expose_secret(), want.as_slice());
            }
            let other = Binding::new(Scope::Cluster, "", "", "not-the-key");
            assert!(matches!(
                env.open(&identities, &other),
                Err(Error::DoesNotOpen)
            ));
            values += 1;
        }
    }
    assert!(values >= 5);
}
