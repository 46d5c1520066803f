//! `reseal` (re-encrypt to new keys with an old one) and `fetch-key` (a
//! controller's published keys: over HTTP from a canned server in a thread,
//! through a fake Kubernetes API server's service proxy and ConfigMap path
//! with a kubeconfig pointing at it, or from a saved ConfigMap), through the
//! binary.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use gitseal_crypto::{Envelope, Identity};

use crate::support::*;

const SECRETS: &str = "# sealed db credentials
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: prod}
stringData:
  password: hunter2-PLAINTEXT
  user: admin
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: prod}
data: {mode: fast}
";

/// Seals SECRETS (plus a ConfigMap passed through) to `recipient` into `file`.
fn seal_to(env: &Env, recipient: &str, file: &str) -> String {
    env.write("secrets.yaml", SECRETS);
    let out = env.run(&[
        "seal",
        "--pass-through",
        "-r",
        recipient,
        "-f",
        "secrets.yaml",
        "-o",
        file,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    env.read(file)
}

fn keygen(env: &Env, file: &str) -> String {
    let out = env.run(&["keygen", "-o", file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.trim().to_string()
}

/// The encryptedData envelopes of the first SealedSecret in `text`.
/// `gitseal unseal --pass-through -i KEY -f FILE`.
fn unseal(env: &Env, key: &str, file: &str) -> Out {
    env.run(&["unseal", "--pass-through", "-i", key, "-f", file])
}

fn envelopes(text: &str) -> Vec<(String, Envelope)> {
    let doc = text
        .split("\n---\n")
        .find(|d| d.contains("kind: SealedSecret"))
        .expect("a SealedSecret");
    let v: serde_yaml::Value = serde_yaml::from_str(doc).expect("yaml");
    let data = v["spec"]["encryptedData"]
        .as_mapping()
        .expect("encryptedData");
    data.iter()
        .map(|(k, v)| {
            (
                k.as_str().expect("key").to_string(),
                Envelope::parse(v.as_str().expect("value")).expect("envelope"),
            )
        })
        .collect()
}

#[test]
fn reseal_round_trip_in_place() {
    let env = Env::new();
    let new_recipient = keygen(&env, "new.txt");
    let before = seal_to(&env, &env.recipient, "db.sealed.yaml");
    let old_envs = envelopes(&before);
    assert_eq!(old_envs.len(), 2);

    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &new_recipient,
        "-f",
        "db.sealed.yaml",
        "--in-place",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("re-sealed 2 value(s)"),
        "{}",
        out.stderr
    );
    let after = env.read("db.sealed.yaml");
    assert_ne!(after, before);
    assert!(!after.contains("hunter2"), "{after}");

    // Only the sealed values changed: every other line is as it was.
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed
        .iter()
        .all(|(a, b)| a.contains("gs1:") && b.contains("gs1:")));
    assert!(after.contains("kind: ConfigMap") && after.contains("mode: fast"));

    // Same binding, new recipient only.
    let new_id: gitseal_crypto::Recipient = new_recipient.parse().expect("recipient");
    let new_envs = envelopes(&after);
    for ((k1, old), (k2, new)) in old_envs.iter().zip(&new_envs) {
        assert_eq!(k1, k2);
        assert_eq!(old.binding(), new.binding());
        assert_eq!(new.key_ids(), vec![new_id.key_id()]);
    }

    // The new key opens it, byte-exact; the old key no longer does.
    let out = unseal(&env, "new.txt", "db.sealed.yaml");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    assert_eq!(data_item(&out.stdout, 0, "user"), b"admin");
    let out = unseal(&env, "key.txt", "db.sealed.yaml");
    assert_eq!(out.code, 3, "{}", out.stderr);
}

#[test]
fn reseal_to_stdout_from_stdin_with_keyring() {
    let env = Env::new();
    let new_recipient = keygen(&env, "new.txt");
    let dr_recipient = keygen(&env, "dr.txt");
    let before = seal_to(&env, &env.recipient, "db.sealed.yaml");
    env.write(
        "keys.yaml",
        &format!("version: 1\nenvironments:\n  prod:\n    recipients: [{new_recipient}]\n"),
    );
    let out = env.run_stdin(
        &[
            "reseal",
            "-i",
            "key.txt",
            "--keyring",
            "keys.yaml",
            "--env",
            "prod",
            "-r",
            &dr_recipient,
        ],
        before.as_bytes(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(env.read("db.sealed.yaml"), before, "input file untouched");
    let ids = envelopes(&out.stdout)[0].1.key_ids();
    assert_eq!(ids.len(), 2, "sealed to -r and the keyring's recipient");
    for key in ["new.txt", "dr.txt"] {
        let out = env.run_stdin(
            &["unseal", "--pass-through", "-i", key, "-f", "-"],
            out.stdout.as_bytes(),
        );
        assert_eq!(out.code, 0, "{key}: {}", out.stderr);
        assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    }
}

#[test]
fn reseal_failure_writes_nothing() {
    let env = Env::new();
    let new_recipient = keygen(&env, "new.txt");
    let other_recipient = keygen(&env, "other.txt");
    let good = seal_to(&env, &env.recipient, "a.sealed.yaml");
    // b is sealed to a key we do not hold.
    let foreign = seal_to(&env, &other_recipient, "b.sealed.yaml");
    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &new_recipient,
        "-f",
        "a.sealed.yaml",
        "-f",
        "b.sealed.yaml",
        "--in-place",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("b.sealed.yaml, document 1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("item \"password\""), "{}", out.stderr);
    assert_eq!(env.read("a.sealed.yaml"), good, "a is byte-identical");
    assert_eq!(env.read("b.sealed.yaml"), foreign, "b is byte-identical");

    // A value moved to another object does not open either (same key).
    let moved = good.replacen("name: db", "name: other", 1);
    env.write("moved.yaml", &moved);
    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &new_recipient,
        "-f",
        "moved.yaml",
        "--in-place",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("does not open"), "{}", out.stderr);
    assert!(out.stderr.contains("moved.yaml"), "{}", out.stderr);
    assert_eq!(env.read("moved.yaml"), moved);

    // With -o, the output file is not created.
    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &new_recipient,
        "-f",
        "b.sealed.yaml",
        "-o",
        "out.yaml",
    ]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(!env.path("out.yaml").exists());
}

#[test]
fn reseal_usage_errors() {
    let env = Env::new();
    let before = seal_to(&env, &env.recipient, "db.sealed.yaml");
    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-f",
        "db.sealed.yaml",
        "--in-place",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no new recipients"), "{}", out.stderr);
    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        "age1nope",
        "-f",
        "db.sealed.yaml",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("-r/--recipient #1"), "{}", out.stderr);
    let out = env.run_stdin(
        &[
            "reseal",
            "-i",
            "key.txt",
            "-r",
            &env.recipient,
            "--in-place",
        ],
        before.as_bytes(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--in-place needs -f FILE"),
        "{}",
        out.stderr
    );
    env.write("bad.yaml", "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {name: db, namespace: prod}\nspec:\n  encryptedData: {password: not-sealed}\n");
    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &env.recipient,
        "-f",
        "bad.yaml",
        "--in-place",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("bad.yaml"), "{}", out.stderr);
    assert!(out.stderr.contains("not a sealed value"), "{}", out.stderr);
    assert_eq!(env.read("db.sealed.yaml"), before);
}

// ---- fetch-key ----

/// Two published keys: (identity, keys.json text); the first is active.
fn published() -> (Identity, Identity, String) {
    let active = Identity::generate();
    let old = Identity::generate();
    let json = serde_json::json!([
        {"recipient": active.recipient().to_string(), "keyId": active.key_id().to_string(),
         "active": true, "created": "2026-11-01T00:00:00Z"},
        {"recipient": old.recipient().to_string(), "keyId": old.key_id().to_string(),
         "active": false, "created": "2026-10-01T00:00:00Z"},
    ]);
    (
        active,
        old,
        serde_json::to_string_pretty(&json).expect("json"),
    )
}

/// Serves one canned HTTP response; returns the base URL and a receiver
/// for the request head the client sent.
fn serve_once(response: Vec<u8>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        let _ = conn.write_all(&response);
    });
    (format!("http://{addr}"), rx)
}

fn ok_response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn fetch_key_over_http() {
    let env = Env::new();
    let (active, old, json) = published();
    let (url, req) = serve_once(ok_response(&json));
    let out = env.run(&["fetch-key", "--url", &url]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    let head = req.recv().expect("request");
    assert!(head.starts_with("GET /v1/keys HTTP/1.1\r\n"), "{head}");

    // --all, a path prefix, and a chunked body.
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let (a, b) = json.split_at(json.len() / 2);
    for part in [a, b] {
        chunked.extend_from_slice(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (url, req) = serve_once(chunked);
    let out = env.run(&["fetch-key", "--url", &format!("{url}/gitseal/"), "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("{}\n{}\n", active.recipient(), old.recipient())
    );
    assert!(req
        .recv()
        .expect("request")
        .starts_with("GET /gitseal/v1/keys "));
}

#[test]
fn fetch_key_http_failures() {
    let env = Env::new();
    // Nothing listening: exit 4.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let out = env.run(&["fetch-key", "--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);

    // An HTTP error status: exit 4.
    let (url, _req) =
        serve_once(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".to_vec());
    let out = env.run(&["fetch-key", "--url", &url]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 503"), "{}", out.stderr);

    // https goes through rustls (ring provider installed first): a server
    // that does not speak TLS is a connection failure (exit 4), not a panic.
    let api = FakeApi::start(vec![]);
    let https = api.url.replacen("http://", "https://", 1);
    let out = env.run(&["fetch-key", "--url", &https]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(api.requests().is_empty(), "no HTTP request in clear");

    // Not an http(s) URL: exit 2.
    for bad in [
        "ftp://gitseal.example",
        "http://user@gitseal.example",
        // gitseal:allow made-up credential, checked not to be echoed
        "http://admin:s3cr3t-Tok@gitseal.example",
        "gitseal.example",
    ] {
        let out = env.run(&["fetch-key", "--url", bad]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("expected http[s]://HOST"),
            "{}",
            out.stderr
        );
        // A URL with credentials is refused without repeating them.
        assert!(!out.stderr.contains("s3cr3t-Tok"), "{}", out.stderr);
    }

    // Not JSON: exit 2.
    let (url, _req) = serve_once(ok_response("<html>hello</html>"));
    let out = env.run(&["fetch-key", "--url", &url]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not valid JSON"), "{}", out.stderr);
}

fn configmap(json: &str, active: &str) -> String {
    let indented: String = json.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gitseal-public-keys\n  namespace: gitseal-system\n\
         data:\n  active: {active}\n  keys.json: |\n{indented}"
    )
}

const KEYRING: &str = "version: 1
defaultEnvironment: dev
environments:
  dev:
    recipients:
    - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    scope: namespace
";

#[test]
fn fetch_key_configmap_updates_keyring() {
    let env = Env::new();
    let (active, old, json) = published();
    env.write(
        "cm.yaml",
        &configmap(&json, &active.recipient().to_string()),
    );
    env.write("keys.yaml", KEYRING);

    let out = env.run(&["fetch-key", "--configmap-file", "cm.yaml", "--all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("{}\n{}\n", active.recipient(), old.recipient())
    );

    // --write creates prod; dev is kept as it was.
    let out = env.run(&[
        "fetch-key",
        "--configmap-file",
        "cm.yaml",
        "--keyring",
        "keys.yaml",
        "--env",
        "prod",
        "--write",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("keys.yaml")).expect("keyring");
    let before = gitseal_manifest::keyring::Keyring::from_yaml(KEYRING, "k").expect("keyring");
    assert_eq!(k.environments["dev"], before.environments["dev"]);
    assert_eq!(k.default_environment.as_deref(), Some("dev"));
    assert_eq!(
        k.environments["prod"].recipients(),
        vec![active.recipient().clone()]
    );

    // --add appends to dev (once, after accepting the new key id), keeping
    // its key and scope.
    let id = active.key_id().to_string();
    for _ in 0..2 {
        let out = env.run(&[
            "fetch-key",
            "--configmap-file",
            "cm.yaml",
            "--keyring",
            "keys.yaml",
            "--add",
            "--accept-new-key",
            &id,
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("keys.yaml")).expect("keyring");
    let dev = &k.environments["dev"];
    assert_eq!(dev.recipients.len(), 2);
    assert_eq!(dev.recipients[0], before.environments["dev"].recipients[0]);
    assert_eq!(dev.recipients()[1], *active.recipient());
    assert_eq!(dev.scope, before.environments["dev"].scope);

    // The keyring seals: the fetched key opens what is sealed for prod.
    let out = env.run(&[
        "seal",
        "--keyring",
        "keys.yaml",
        "--env",
        "prod",
        "--raw",
        "--namespace",
        "prod",
        "--name",
        "db",
        "--key",
        "k",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sealed = Envelope::parse(out.stdout.trim()).expect("envelope");
    assert_eq!(sealed.key_ids(), vec![active.key_id()]);

    // A JSON ConfigMap (kubectl -o json) on standard input works too.
    let cm: serde_yaml::Value = serde_yaml::from_str(&env.read("cm.yaml")).expect("yaml");
    let out = env.run_stdin(
        &["fetch-key", "--configmap-file", "-"],
        serde_json::to_string(&cm).expect("json").as_bytes(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));

    // A new keyring file is created.
    let out = env.run(&[
        "fetch-key",
        "--configmap-file",
        "cm.yaml",
        "--keyring",
        "new-keys.yaml",
        "--env",
        "prod",
        "--write",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("new-keys.yaml")).expect("keyring");
    assert_eq!(k.environments.len(), 1);
}

#[test]
fn fetch_key_refuses_bad_keys_and_changes_nothing() {
    let env = Env::new();
    let (active, old, json) = published();
    env.write("keys.yaml", KEYRING);
    let write = |file: &str| {
        env.run(&[
            "fetch-key",
            "--configmap-file",
            file,
            "--keyring",
            "keys.yaml",
            "--env",
            "dev",
            "--write",
        ])
    };
    let cases: Vec<(String, &str)> = vec![
        // Not JSON.
        (
            configmap("{not json", &active.recipient().to_string()),
            "not valid JSON",
        ),
        // Key id does not match the recipient.
        (
            configmap(
                &json.replacen(&active.key_id().to_string(), &old.key_id().to_string(), 1),
                &active.recipient().to_string(),
            ),
            "key id",
        ),
        // A recipient that is not one.
        (
            configmap(
                &json.replacen(&active.recipient().to_string(), "age1nope", 1),
                "age1nope",
            ),
            "key #1: the recipient is not usable",
        ),
        // data.active disagrees with keys.json.
        (
            configmap(&json, &old.recipient().to_string()),
            "is not the key marked active",
        ),
        // No key active.
        (
            configmap(
                &json.replace("\"active\": true", "\"active\": false"),
                &active.recipient().to_string(),
            ),
            "no published key is marked active",
        ),
        // Not a ConfigMap.
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n".to_string(),
            "not a ConfigMap",
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let file = format!("cm{i}.yaml");
        env.write(&file, text);
        let out = write(&file);
        assert_eq!(out.code, 2, "case {i}: {}", out.stderr);
        assert!(out.stderr.contains(message), "case {i}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "case {i}: {}", out.stdout);
        assert_eq!(
            env.read("keys.yaml"),
            KEYRING,
            "case {i}: keyring unchanged"
        );
    }

    // Over HTTP, a mismatched key id is refused the same way.
    let bad = json.replacen(&active.key_id().to_string(), &old.key_id().to_string(), 1);
    let (url, _req) = serve_once(ok_response(&bad));
    let out = env.run(&[
        "fetch-key",
        "--url",
        &url,
        "--keyring",
        "keys.yaml",
        "--write",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("refusing it"), "{}", out.stderr);
    assert_eq!(env.read("keys.yaml"), KEYRING);

    // --keyring without --write/--add compares and writes nothing.
    env.write(
        "cm.yaml",
        &configmap(&json, &active.recipient().to_string()),
    );
    let out = env.run(&[
        "fetch-key",
        "--configmap-file",
        "cm.yaml",
        "--keyring",
        "keys.yaml",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("run with --write"), "{}", out.stderr);
    assert_eq!(env.read("keys.yaml"), KEYRING);
}

#[test]
fn reseal_value_not_written_verbatim_is_rewritten() {
    let env = Env::new();
    let new_recipient = keygen(&env, "new.txt");
    let before = seal_to(&env, &env.recipient, "db.sealed.yaml");
    // Split one sealed value over two lines (a YAML escaped line break):
    // the same value, but not findable as written.
    let (_, old) = envelopes(&before).remove(0);
    let old = old.to_string();
    let (a, b) = old.split_at(40);
    let folded = before.replacen(&old, &format!("\"{a}\\\n      {b}\""), 1);
    assert_ne!(folded, before);
    env.write("folded.yaml", &folded);
    let out = env.run(&[
        "reseal",
        "-i",
        "key.txt",
        "-r",
        &new_recipient,
        "-f",
        "folded.yaml",
        "--in-place",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = env.read("folded.yaml");
    assert!(
        after.contains("kind: ConfigMap") && after.contains("mode: fast"),
        "{after}"
    );
    let out = unseal(&env, "new.txt", "folded.yaml");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    assert_eq!(data_item(&out.stdout, 0, "user"), b"admin");
}

// ---- fetch-key through the Kubernetes API (--kube, --configmap) ----

/// The service-proxy path for the default namespace, service and port.
const PROXY_PATH: &str =
    "/api/v1/namespaces/gitseal-system/services/gitseal-controller:http/proxy/v1/keys";
/// The published ConfigMap's path.
const CM_PATH: &str = "/api/v1/namespaces/gitseal-system/configmaps/gitseal-public-keys";
/// The bearer token of the kubeconfig user; it must never show in output.
const TOKEN: &str = "kubeconfig-token-8f3a2c";

/// A fake Kubernetes API server on 127.0.0.1 (plain HTTP): answers each
/// request by its path from a fixed table (anything else: a 404 `Status`,
/// as the API server does), records the request heads, closes each
/// connection after one answer, and drops connections that start a TLS
/// handshake.
struct FakeApi {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

/// A route of [`FakeApi`]: path, status code, JSON body.
type Route = (String, u16, String);

impl FakeApi {
    /// Serves plain HTTP.
    fn start(routes: Vec<Route>) -> FakeApi {
        FakeApi::serve(routes, None)
    }

    /// Serves HTTPS with the self-signed [`TEST_TLS_CERT`] (for 127.0.0.1).
    fn start_tls(routes: Vec<Route>) -> FakeApi {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(TEST_TLS_CERT.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(TEST_TLS_KEY.as_bytes()).expect("key"),
            )
            .expect("server config");
        FakeApi::serve(routes, Some(Arc::new(config)))
    }

    fn serve(routes: Vec<Route>, tls: Option<Arc<rustls::ServerConfig>>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                match &tls {
                    Some(config) => {
                        let Ok(session) = rustls::ServerConnection::new(Arc::clone(config)) else {
                            continue;
                        };
                        let mut stream = rustls::StreamOwned::new(session, conn);
                        answer(&mut stream, &routes, &seen);
                        stream.conn.send_close_notify();
                        let _ = stream.flush();
                    }
                    None => answer(&mut { conn }, &routes, &seen),
                }
            }
        });
        FakeApi { url, requests }
    }

    /// The request heads received so far.
    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    /// The request paths received so far.
    fn paths(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|h| h.split_whitespace().nth(1).unwrap_or_default().to_string())
            .collect()
    }
}

/// Reads one request head from `conn`, records it, and answers it from
/// `routes` (else a 404 `Status`). A plain connection that starts a TLS
/// handshake is dropped.
fn answer(
    conn: &mut (impl std::io::Read + std::io::Write),
    routes: &[Route],
    seen: &Mutex<Vec<String>>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
        if head == [0x16] {
            return; // a TLS ClientHello on the plain port
        }
    }
    if !head.ends_with(b"\r\n\r\n") {
        return;
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    seen.lock().expect("lock").push(head);
    let (code, body) = routes
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, c, b)| (*c, b.clone()))
        .unwrap_or_else(|| {
            let message = "the server could not find the requested resource";
            (404, api_status(404, "NotFound", message))
        });
    let response = format!(
        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
    let _ = conn.flush();
}

/// A Kubernetes `Status` object as the API server sends with an error.
fn api_status(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

/// The published ConfigMap as the API server returns it (JSON).
fn configmap_json(json: &str, active: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "gitseal-public-keys", "namespace": "gitseal-system",
                     "resourceVersion": "4711", "labels": {"app.kubernetes.io/managed-by": "gitseal"}},
        "data": {"active": active, "keys.json": json},
    })
    .to_string()
}

/// A kubeconfig with context `main` (current, token auth) on `server`, and
/// context `other` on `other_server` whose user gets its token from an exec
/// plugin (a shell printing an ExecCredential).
fn kubeconfig(server: &str, other_server: &str) -> String {
    // gitseal:allow a made-up token for the fake API server
    let credential = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"exec-token-77d1"}}"#;
    format!(
        "apiVersion: v1
kind: Config
current-context: main
clusters:
- name: main
  cluster: {{server: \"{server}\"}}
- name: other
  cluster: {{server: \"{other_server}\"}}
users:
- name: alice
  user: {{token: {TOKEN}}}
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: sh
      args:
      - -c
      - |
        printf '%s' '{credential}'
      interactiveMode: Never
contexts:
- name: main
  context: {{cluster: main, user: alice, namespace: default}}
- name: other
  context: {{cluster: other, user: plugin}}
"
    )
}

/// What a run printed and its exit code.
struct KubeOut {
    code: i32,
    stdout: String,
    stderr: String,
}

impl KubeOut {
    /// Asserts exit code `code` and that stderr contains `message`.
    #[track_caller]
    fn fails(&self, code: i32, message: &str) -> &KubeOut {
        assert_eq!(self.code, code, "{}", self.stderr);
        assert!(
            self.stderr.contains(message),
            "expected {message:?} in {}",
            self.stderr
        );
        self
    }
}

/// Runs the binary in `env`'s directory with a clean Kubernetes
/// environment (HOME is the temp dir, so no ~/.kube/config; no in-cluster
/// variables) plus `vars`. Checks that no credential shows in the output.
fn run_kube(env: &Env, args: &[&str], vars: &[(&str, &Path)]) -> KubeOut {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitseal"));
    cmd.args(args)
        .current_dir(env.dir.path())
        .env("HOME", env.dir.path())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("gitseal runs");
    let out = KubeOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [TOKEN, "exec-token-77d1"] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "a credential shows: {}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

/// Whether a recorded request head carries `Authorization: Bearer token`.
fn has_bearer(head: &str, token: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("authorization") && v.trim() == format!("Bearer {token}")
        })
    })
}

#[test]
fn fetch_key_through_the_service_proxy() {
    let env = Env::new();
    let (active, old, json) = published();
    let api = FakeApi::start(vec![
        (PROXY_PATH.to_string(), 200, json.clone()),
        (
            "/api/v1/namespaces/ops/services/sealer:8443/proxy/v1/keys".to_string(),
            200,
            json.clone(),
        ),
    ]);
    env.write("kubeconfig", &kubeconfig(&api.url, "http://127.0.0.1:9"));
    env.write("keys.yaml", KEYRING);
    let kc = env.path("kubeconfig");
    let vars = [("KUBECONFIG", kc.as_path())];

    let out = run_kube(
        &env,
        &[
            "fetch-key",
            "--kube",
            "--keyring",
            "keys.yaml",
            "--env",
            "prod",
            "--write",
        ],
        &vars,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    assert!(
        out.stderr.contains("environment \"prod\" now seals to"),
        "{}",
        out.stderr
    );
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("keys.yaml")).expect("keyring");
    assert_eq!(
        k.environments["prod"].recipients(),
        vec![active.recipient().clone()]
    );
    let before = gitseal_manifest::keyring::Keyring::from_yaml(KEYRING, "k").expect("keyring");
    assert_eq!(
        k.environments["dev"], before.environments["dev"],
        "dev kept"
    );

    let heads = api.requests();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("GET {PROXY_PATH} HTTP/1.1\r\n")),
        "{}",
        heads[0]
    );
    assert!(
        has_bearer(&heads[0], TOKEN),
        "the kubeconfig token is sent: {}",
        heads[0]
    );

    // --all; another namespace, service and numeric port.
    let out = run_kube(
        &env,
        &[
            "fetch-key",
            "--kube",
            "--all",
            "--controller-namespace",
            "ops",
            "--service",
            "sealer",
            "--port",
            "8443",
        ],
        &vars,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("{}\n{}\n", active.recipient(), old.recipient())
    );
    assert_eq!(
        api.paths().last().map(String::as_str),
        Some("/api/v1/namespaces/ops/services/sealer:8443/proxy/v1/keys")
    );
}

#[test]
fn fetch_key_configmap_from_the_api() {
    let env = Env::new();
    let (active, _old, json) = published();
    let cm = configmap_json(&json, &active.recipient().to_string());
    let main = FakeApi::start(vec![(CM_PATH.to_string(), 200, cm.clone())]);
    let other = FakeApi::start(vec![(
        "/api/v1/namespaces/keys/configmaps/dr-keys".to_string(),
        200,
        cm.clone(),
    )]);
    env.write("kubeconfig", &kubeconfig(&main.url, &other.url));

    // Default name, kubeconfig from $KUBECONFIG, current context.
    let kc = env.path("kubeconfig");
    let out = run_kube(
        &env,
        &[
            "fetch-key",
            "--configmap",
            "--keyring",
            "new.yaml",
            "--env",
            "prod",
            "--write",
        ],
        &[("KUBECONFIG", kc.as_path())],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    assert_eq!(main.paths(), vec![CM_PATH.to_string()]);
    assert!(has_bearer(&main.requests()[0], TOKEN));
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("new.yaml")).expect("keyring");
    assert_eq!(
        k.environments["prod"].recipients(),
        vec![active.recipient().clone()]
    );

    // --kubeconfig FILE (no $KUBECONFIG), --context with an exec plugin,
    // a named ConfigMap in another namespace.
    let out = run_kube(
        &env,
        &[
            "fetch-key",
            "--configmap",
            "dr-keys",
            "--controller-namespace",
            "keys",
            "--kubeconfig",
            "kubeconfig",
            "--context",
            "other",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    assert_eq!(
        main.requests().len(),
        1,
        "the current context's server is not asked"
    );
    let heads = other.requests();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].starts_with("GET /api/v1/namespaces/keys/configmaps/dr-keys "));
    assert!(
        has_bearer(&heads[0], "exec-token-77d1"),
        "exec plugin token: {}",
        heads[0]
    );
}

#[test]
fn fetch_key_through_the_api_failures_change_nothing() {
    let env = Env::new();
    let (active, old, json) = published();
    env.write("keys.yaml", KEYRING);
    let bad_id = json.replacen(&active.key_id().to_string(), &old.key_id().to_string(), 1);
    let forbidden_proxy = api_status(
        403,
        "Forbidden",
        "services \"gitseal-controller:http\" is forbidden: User \"bob\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"gitseal-system\"",
    );
    let huge = format!("[{}]", " ".repeat(2 << 20));
    // (source flag, status, body, exit code, messages)
    let cases: Vec<(&str, u16, String, i32, Vec<&str>)> = vec![
        (
            "--kube",
            403,
            forbidden_proxy,
            4,
            vec![
                "forbidden",
                "`get` on `services/proxy`",
                "kubectl auth can-i get services/gitseal-controller:http --subresource=proxy -n gitseal-system",
                "cannot get resource",
            ],
        ),
        (
            "--configmap",
            403,
            api_status(403, "Forbidden", "configmaps \"gitseal-public-keys\" is forbidden"),
            4,
            vec!["`get` on `configmaps`", "kubectl auth can-i get configmaps/gitseal-public-keys"],
        ),
        (
            "--kube",
            404,
            api_status(404, "NotFound", "services \"gitseal-controller\" not found"),
            4,
            vec!["service gitseal-system/gitseal-controller not found", "--controller-namespace"],
        ),
        (
            "--configmap",
            404,
            api_status(404, "NotFound", "configmaps \"gitseal-public-keys\" not found"),
            4,
            vec!["ConfigMap gitseal-system/gitseal-public-keys not found"],
        ),
        (
            // The controller itself answers 404 (not a Status): wrong port?
            "--kube",
            404,
            "404 page not found".to_string(),
            4,
            vec!["is it a gitseal controller", "--port"],
        ),
        (
            "--kube",
            503,
            api_status(503, "ServiceUnavailable", "no endpoints available for service \"gitseal-controller:http\""),
            4,
            vec!["no controller is ready", "no endpoints available", "rollout status"],
        ),
        (
            "--kube",
            401,
            api_status(401, "Unauthorized", "Unauthorized"),
            4,
            vec!["refused the kubeconfig's credentials"],
        ),
        ("--kube", 200, bad_id.clone(), 2, vec!["refusing it"]),
        ("--kube", 200, "<html>hi</html>".to_string(), 2, vec!["not valid JSON"]),
        ("--kube", 200, huge, 2, vec!["larger than 1 MiB"]),
        (
            "--configmap",
            200,
            configmap_json(&json, &old.recipient().to_string()),
            2,
            vec!["is not the key marked active"],
        ),
        (
            "--configmap",
            200,
            configmap_json(&bad_id, &active.recipient().to_string()),
            2,
            vec!["ConfigMap gitseal-system/gitseal-public-keys", "refusing it"],
        ),
    ];
    for (i, (flag, code, body, exit, messages)) in cases.iter().enumerate() {
        let path = if *flag == "--kube" {
            PROXY_PATH
        } else {
            CM_PATH
        };
        let api = FakeApi::start(vec![(path.to_string(), *code, body.clone())]);
        env.write("kubeconfig", &kubeconfig(&api.url, "http://127.0.0.1:9"));
        let kc = env.path("kubeconfig");
        let out = run_kube(
            &env,
            &[
                "fetch-key",
                flag,
                "--keyring",
                "keys.yaml",
                "--env",
                "dev",
                "--write",
            ],
            &[("KUBECONFIG", kc.as_path())],
        );
        assert_eq!(out.code, *exit, "case {i}: {}", out.stderr);
        for m in messages {
            assert!(
                out.stderr.contains(m),
                "case {i}: no {m:?} in: {}",
                out.stderr
            );
        }
        assert!(out.stdout.is_empty(), "case {i}: {}", out.stdout);
        assert_eq!(
            api.paths(),
            vec![path.to_string()],
            "case {i}: one request, no retries"
        );
        assert_eq!(
            env.read("keys.yaml"),
            KEYRING,
            "case {i}: keyring byte-identical"
        );
    }

    let write = ["--keyring", "keys.yaml", "--env", "dev", "--write"];
    let fetch = |extra: &[&str], vars: &[(&str, &Path)]| {
        let mut args = vec!["fetch-key"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&write);
        run_kube(&env, &args, vars)
    };

    // The API server cannot be reached: exit 4.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    env.write("kubeconfig", &kubeconfig(&closed, &closed));
    let kc = env.path("kubeconfig");
    let out = fetch(&["--kube"], &[("KUBECONFIG", kc.as_path())]);
    out.fails(4, "cannot reach the Kubernetes API server at")
        .fails(4, &closed);

    // An exec plugin that fails: exit 4, nothing asked of the API.
    let api = FakeApi::start(vec![(PROXY_PATH.to_string(), 200, json.clone())]);
    env.write(
        "kubeconfig",
        &kubeconfig(&api.url, &api.url).replace(
            "printf '%s'",
            "echo 'session expired, log in again' >&2; exit 3; printf '%s'",
        ),
    );
    let out = fetch(
        &["--kube", "--context", "other"],
        &[("KUBECONFIG", kc.as_path())],
    );
    out.fails(4, "cannot get credentials")
        .fails(4, "exec credential plugin failed")
        .fails(4, "run it by hand to see why");
    // Not even the plugin's error output is shown: it may hold a token.
    assert!(!out.stderr.contains("session expired"), "{}", out.stderr);
    assert!(api.requests().is_empty(), "{:?}", api.requests());

    // A plugin that prints something else (holding its token): exit 4, and
    // the token is not shown (run_kube checks).
    env.write(
        "kubeconfig",
        &kubeconfig(&api.url, &api.url).replace("printf '%s' '{", "printf '%s' '}{"),
    );
    let out = fetch(
        &["--kube", "--context", "other"],
        &[("KUBECONFIG", kc.as_path())],
    );
    out.fails(4, "did not print a valid ExecCredential");
    assert!(api.requests().is_empty(), "{:?}", api.requests());

    // No kubeconfig anywhere and not in a cluster: exit 2.
    let out = fetch(&["--kube"], &[]);
    out.fails(2, "no usable Kubernetes configuration");

    // A kubeconfig that does not exist or does not parse, an unknown context: exit 2.
    let out = fetch(&["--kube", "--kubeconfig", "missing.yaml"], &[]);
    out.fails(2, "--kubeconfig missing.yaml");
    // (its offending line holds a token, which the error must not show)
    env.write(
        "broken.yaml",
        &format!("apiVersion: v1\nusers:\n- name: a\n  user: {{token: \"{TOKEN}\" }} }}\n"),
    );
    let out = fetch(&["--configmap", "--kubeconfig", "broken.yaml"], &[]);
    out.fails(2, "--kubeconfig broken.yaml").fails(2, "line 4");
    let out = fetch(
        &["--kube", "--context", "nowhere"],
        &[("KUBECONFIG", kc.as_path())],
    );
    out.fails(2, "nowhere");

    // Names that would change the request path are refused before any request.
    for (flag, value) in [
        ("--service", "../secrets"),
        ("--controller-namespace", "Gitseal_System"),
        ("--port", "http/../x"),
    ] {
        let out = fetch(&["--kube", flag, value], &[("KUBECONFIG", kc.as_path())]);
        out.fails(2, "not a Kubernetes name").fails(2, flag);
    }
    let out = fetch(&["--configmap", "a/b"], &[("KUBECONFIG", kc.as_path())]);
    out.fails(2, "not a Kubernetes name");
    env.write("cm.yaml", "kind: ConfigMap\n");
    let out = fetch(&["--configmap", "cm.yaml"], &[("KUBECONFIG", kc.as_path())]);
    out.fails(2, "use --configmap-file cm.yaml");
    assert!(api.requests().is_empty(), "{:?}", api.requests());

    // Kubernetes options without a Kubernetes source: usage error.
    let out = fetch(&["--url", "http://127.0.0.1:9", "--context", "main"], &[]);
    out.fails(2, "are for --kube and --configmap, not --url");
    let out = fetch(&["--configmap", "x", "--service", "svc"], &[]);
    out.fails(2, "--service and --port are for --kube, not --configmap");
    let out = fetch(&["--kube", "--configmap"], &[]);
    out.fails(2, "cannot be used with");
    assert_eq!(env.read("keys.yaml"), KEYRING, "keyring byte-identical");
}

/// A self-signed certificate for 127.0.0.1 and localhost (valid until
/// 2126), made for these tests with `openssl req -x509 -newkey ec …`.
const TEST_TLS_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBvDCCAWKgAwIBAgIUfb3lWXsBud6Y/z04gAu06E5reFswCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQZ2l0c2VhbC10ZXN0LWFwaTAgFw0yNjExMjIwMDM3NDdaGA8y
MTI2MTAyOTAwMzc0N1owGzEZMBcGA1UEAwwQZ2l0c2VhbC10ZXN0LWFwaTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABM6noHdKfUzrlwtUaDM0Ory2pqLBt56pbyDP
UNAw0OiJEjlhZXiBxQ+18lvFoxfVIElEd3kO0MzCVEdByGOmeRGjgYEwfzAdBgNV
HQ4EFgQUEqMSrRTmMD9r65iHAiwOK8VOpE4wHwYDVR0jBBgwFoAUEqMSrRTmMD9r
65iHAiwOK8VOpE4wGgYDVR0RBBMwEYcEfwAAAYIJbG9jYWxob3N0MAwGA1UdEwEB
/wQCMAAwEwYDVR0lBAwwCgYIKwYBBQUHAwEwCgYIKoZIzj0EAwIDSAAwRQIgGpyB
bsg4af0ngxqN6hvjmKztBDfAfI0AX5FIS83tw+kCIQD3qMMGbrk0bPpwEP551JOf
oFasxNdTAD6IlwONps95aA==
-----END CERTIFICATE-----
";

// gitseal:allow the test-only key of TEST_TLS_CERT, guards nothing
const TEST_TLS_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUBubiuui44CwL9M8
qV7uJMg8ZClXiJ5M4b8VUC/+Lx+hRANCAATOp6B3Sn1M65cLVGgzNDq8tqaiwbee
qW8gz1DQMNDoiRI5YWV4gcUPtfJbxaMX1SBJRHd5DtDMwlRHQchjpnkR
-----END PRIVATE KEY-----
";

#[test]
fn fetch_key_over_tls_with_the_kubeconfig_ca() {
    use base64::Engine as _;
    let env = Env::new();
    let (active, _old, json) = published();
    let api = FakeApi::start_tls(vec![(PROXY_PATH.to_string(), 200, json)]);
    let ca = base64::engine::general_purpose::STANDARD.encode(TEST_TLS_CERT);
    let kubeconfig = |cluster: &str| {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: tls\nclusters:\n- name: tls\n  \
             cluster: {{server: \"{}\"{cluster}}}\nusers:\n- name: alice\n  user: {{token: {TOKEN}}}\n\
             contexts:\n- name: tls\n  context: {{cluster: tls, user: alice}}\n",
            api.url
        )
    };
    env.write("keys.yaml", KEYRING);
    let id = active.key_id().to_string();
    let write = [
        "fetch-key",
        "--kube",
        "--keyring",
        "keys.yaml",
        "--env",
        "dev",
        "--write",
        "--accept-new-key",
        &id,
    ];

    // Without the cluster's CA the server is not trusted: exit 4, nothing sent, nothing written.
    env.write("untrusted.yaml", &kubeconfig(""));
    let kc = env.path("untrusted.yaml");
    let out = run_kube(&env, &write, &[("KUBECONFIG", kc.as_path())]);
    out.fails(
        4,
        "cannot reach the Kubernetes API server at https://127.0.0.1:",
    )
    .fails(4, "certificate-authority");
    assert!(api.requests().is_empty(), "{:?}", api.requests());
    assert_eq!(env.read("keys.yaml"), KEYRING);

    // With certificate-authority-data: TLS (rustls, ring) and the token go through.
    env.write(
        "kubeconfig",
        &kubeconfig(&format!(", certificate-authority-data: {ca}")),
    );
    let kc = env.path("kubeconfig");
    let out = run_kube(&env, &write, &[("KUBECONFIG", kc.as_path())]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    let heads = api.requests();
    assert_eq!(heads.len(), 1);
    assert!(heads[0].starts_with(&format!("GET {PROXY_PATH} HTTP/1.1\r\n")));
    assert!(has_bearer(&heads[0], TOKEN), "{}", heads[0]);
    // dev's other key (not published by this controller) stays.
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("keys.yaml")).expect("keyring");
    let before = gitseal_manifest::keyring::Keyring::from_yaml(KEYRING, "k").expect("keyring");
    assert_eq!(
        k.environments["dev"].recipients(),
        vec![
            active.recipient().clone(),
            before.environments["dev"].recipients()[0].clone()
        ]
    );

    // --url https:// with the platform's roots does not trust it either.
    let out = run_kube(&env, &["fetch-key", "--url", &api.url], &[]);
    out.fails(4, "cannot connect to the controller")
        .fails(4, "not trusted by this system");
    assert_eq!(api.requests().len(), 1);
}

// ---- fetch-key trust: plain http, the environment's controller block, key changes ----

#[test]
fn fetch_key_refuses_plain_http_to_another_machine() {
    let env = Env::new();
    let (active, _old, json) = published();
    env.write("keys.yaml", KEYRING);
    for url in [
        "http://gitseal.example.com",
        "http://192.0.2.7:8080",
        "http://[2001:db8::1]:8080/prefix",
    ] {
        let out = env.run(&[
            "fetch-key",
            "--url",
            url,
            "--keyring",
            "keys.yaml",
            "--env",
            "dev",
            "--write",
        ]);
        out.exits_with(2, "plain http to another machine")
            .exits_with(2, "--insecure-http");
        assert!(out.stdout.is_empty());
        assert_eq!(env.read("keys.yaml"), KEYRING, "{url}: keyring unchanged");
    }
    // --insecure-http lets it through (127.1 is a loopback address the
    // check does not recognise, so it stands for another machine here).
    let (url, req) = serve_once(ok_response(&json));
    let port = url.rsplit(':').next().expect("port");
    let other = format!("http://127.1:{port}");
    env.run(&["fetch-key", "--url", &other])
        .exits_with(2, "plain http to another machine");
    let out = env.run(&["fetch-key", "--url", &other, "--insecure-http"]);
    out.ok();
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    assert!(req.recv().expect("request").starts_with("GET /v1/keys "));
    // Loopback and https need no flag (https is checked by the TLS tests).
    let (url, _req) = serve_once(ok_response(&json));
    env.run(&[
        "fetch-key",
        "--url",
        &url.replacen("127.0.0.1", "localhost", 1),
    ])
    .ok();
}

/// A kubeconfig whose current context `dev` points at `dev_server` and
/// whose context `prod` points at `prod_server`, both with token auth.
fn two_clusters(dev_server: &str, prod_server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: dev\nclusters:\n\
         - name: dev\n  cluster: {{server: \"{dev_server}\"}}\n\
         - name: prod\n  cluster: {{server: \"{prod_server}\"}}\n\
         users:\n- name: alice\n  user: {{token: {TOKEN}}}\n\
         contexts:\n- name: dev\n  context: {{cluster: dev, user: alice}}\n\
         - name: prod\n  context: {{cluster: prod, user: alice}}\n"
    )
}

#[test]
fn fetch_key_env_reads_the_keyrings_controller_block_and_refuses_another_context() {
    let env = Env::new();
    let (active, _old, json) = published();
    let proxy = "/api/v1/namespaces/ops/services/sealer:8443/proxy/v1/keys";
    let dev = FakeApi::start(vec![(proxy.to_string(), 200, json.clone())]);
    let prod = FakeApi::start(vec![(proxy.to_string(), 200, json.clone())]);
    env.write("kubeconfig", &two_clusters(&dev.url, &prod.url));
    std::fs::create_dir_all(env.path(".git")).expect("mkdir");
    std::fs::create_dir_all(env.path(".gitseal")).expect("mkdir");
    let keyring = "# Our keyring.\n# Keep it reviewed.\nversion: 1\nenvironments:\n  prod:\n    recipients:\n    - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n    controller:\n      context: prod\n      namespace: ops\n      service: sealer\n      port: '8443'\n";
    env.write(".gitseal/keys.yaml", keyring);
    let kc = env.path("kubeconfig");
    let vars = [("KUBECONFIG", kc.as_path())];

    // A context other than the environment's is refused before any request.
    let out = run_kube(
        &env,
        &["fetch-key", "--env", "prod", "--context", "dev", "--write"],
        &vars,
    );
    out.fails(2, "through kube context \"prod\"")
        .fails(2, "--context is \"dev\"");
    assert!(dev.requests().is_empty() && prod.requests().is_empty());
    assert_eq!(env.read(".gitseal/keys.yaml"), keyring);

    // Without --write: fetched from prod's context (not the current dev),
    // compared, nothing written.
    let out = run_kube(&env, &["fetch-key", "--env", "prod"], &vars);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{}\n", active.recipient()));
    assert!(out.stderr.contains("run with --write"), "{}", out.stderr);
    assert_eq!(prod.paths(), vec![proxy.to_string()]);
    assert!(
        dev.requests().is_empty(),
        "the current context is never used"
    );
    assert_eq!(env.read(".gitseal/keys.yaml"), keyring);

    // --write: the environment's other key is not this controller's, so
    // the new key needs accepting; then both stay, and the comments on top.
    let out = run_kube(&env, &["fetch-key", "--env", "prod", "--write"], &vars);
    out.fails(2, "was not accepted")
        .fails(2, &active.key_id().to_string());
    assert_eq!(env.read(".gitseal/keys.yaml"), keyring);
    let id = active.key_id().to_string();
    let out = run_kube(
        &env,
        &[
            "fetch-key",
            "--env",
            "prod",
            "--write",
            "--accept-new-key",
            &id,
        ],
        &vars,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = env.read(".gitseal/keys.yaml");
    assert!(
        text.starts_with("# Our keyring.\n# Keep it reviewed.\n"),
        "{text}"
    );
    let k = gitseal_manifest::keyring::Keyring::from_yaml(&text, "k").expect("keyring");
    let prod_env = &k.environments["prod"];
    assert_eq!(prod_env.recipients().len(), 2);
    assert_eq!(prod_env.recipients()[0], *active.recipient());
    assert!(prod_env.recipients[0].controller);
    assert_eq!(
        prod_env
            .controller
            .as_ref()
            .and_then(|c| c.context.as_deref()),
        Some("prod")
    );
    assert_eq!(prod.requests().len(), 3);
    assert!(dev.requests().is_empty());
}

#[test]
fn fetch_key_write_replaces_only_the_controllers_key_after_consent() {
    let env = Env::new();
    let old = Identity::generate();
    let new = Identity::generate();
    let dr = Identity::generate();
    let glass = Identity::generate();
    let keyring = format!(
        "version: 1\nenvironments:\n  prod:\n    recipients:\n\
         \x20   - {{recipient: {}, controller: true, note: prod cluster}}\n\
         \x20   - {{recipient: {}, required: true, note: disaster recovery}}\n\
         \x20   - {}\n",
        old.recipient(),
        dr.recipient(),
        glass.recipient()
    );
    env.write("keys.yaml", &keyring);
    // The controller rotated: new is active, old still published (it still opens with it).
    let json = serde_json::json!([
        {"recipient": new.recipient().to_string(), "keyId": new.key_id().to_string(), "active": true},
        {"recipient": old.recipient().to_string(), "keyId": old.key_id().to_string(), "active": false},
    ])
    .to_string();
    env.write("cm.yaml", &configmap(&json, &new.recipient().to_string()));
    let write = |extra: &[&str]| {
        let mut args = vec![
            "fetch-key",
            "--configmap-file",
            "cm.yaml",
            "--keyring",
            "keys.yaml",
            "--env",
            "prod",
            "--write",
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };

    // Not accepted (no terminal): both ids shown, nothing written.
    let out = write(&[]);
    out.exits_with(2, "was not accepted")
        .exits_with(2, &old.key_id().to_string())
        .exits_with(2, &new.key_id().to_string());
    assert!(out.stdout.is_empty());
    assert_eq!(env.read("keys.yaml"), keyring);
    // Accepting another id: refused, nothing written.
    write(&["--accept-new-key", &dr.key_id().to_string()])
        .exits_with(2, "does not name the controller's active key");
    assert_eq!(env.read("keys.yaml"), keyring);

    // Accepted: the controller's key replaced in place, the others stay,
    // the old one is a previous key (still opened by the controller).
    let out = write(&["--accept-new-key", &new.key_id().to_string()]);
    out.ok();
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("keys.yaml")).expect("keyring");
    let prod = &k.environments["prod"];
    assert_eq!(
        prod.recipients(),
        vec![
            new.recipient().clone(),
            dr.recipient().clone(),
            glass.recipient().clone()
        ]
    );
    assert_eq!(
        prod.recipients[1].note.as_deref(),
        Some("disaster recovery")
    );
    assert_eq!(prod.required_ids(), vec![dr.key_id()]);
    assert_eq!(
        prod.previous.iter().map(|e| e.key_id()).collect::<Vec<_>>(),
        vec![old.key_id()]
    );
    // Fetching the same again changes nothing and asks nothing.
    let before = env.read("keys.yaml");
    write(&[]).exits_with(0, "unchanged");
    assert_eq!(env.read("keys.yaml"), before);

    // New values for prod are sealed to all three.
    let out = env.run(&[
        "seal",
        "--keyring",
        "keys.yaml",
        "--env",
        "prod",
        "--raw",
        "--namespace",
        "prod",
        "--name",
        "db",
        "--key",
        "k",
    ]);
    out.exits_with(0, "environment \"prod\"");
    let sealed = Envelope::parse(out.stdout.trim()).expect("envelope");
    let mut ids = sealed.key_ids();
    ids.sort_unstable();
    let mut want = vec![new.key_id(), dr.key_id(), glass.key_id()];
    want.sort_unstable();
    assert_eq!(ids, want);

    // An active key the keyring retired is refused, whatever is accepted.
    let retired = format!(
        "version: 1\nenvironments:\n  prod:\n    recipients: [{}]\nretired: [{}]\n",
        dr.recipient(),
        new.key_id()
    );
    env.write("keys.yaml", &retired);
    write(&["--accept-new-key", &new.key_id().to_string()])
        .exits_with(2, "is retired in the keyring");
    assert_eq!(env.read("keys.yaml"), retired);
}
