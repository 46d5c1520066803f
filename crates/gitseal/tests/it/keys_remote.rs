//! `reseal` (re-encrypt to new keys with an old one) and `fetch-key` (a
//! controller's published keys, over HTTP from a canned server in a thread,
//! or from a saved ConfigMap), through the binary.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::mpsc;

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
    let out = env.run(&[
        "unseal",
        "--pass-through",
        "-i",
        "new.txt",
        "-f",
        "db.sealed.yaml",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    assert_eq!(data_item(&out.stdout, 0, "user"), b"admin");
    let out = env.run(&[
        "unseal",
        "--pass-through",
        "-i",
        "key.txt",
        "-f",
        "db.sealed.yaml",
    ]);
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

    // https is refused with a way forward: exit 2.
    let out = env.run(&["fetch-key", "--url", "https://gitseal.example"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--configmap-file"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("kubectl get configmap gitseal-public-keys"),
        "{}",
        out.stderr
    );

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
        k.environments["prod"].recipients,
        vec![active.recipient().clone()]
    );

    // --add appends to dev (once), keeping its key and scope.
    for _ in 0..2 {
        let out = env.run(&[
            "fetch-key",
            "--configmap-file",
            "cm.yaml",
            "--keyring",
            "keys.yaml",
            "--add",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let k = gitseal_manifest::keyring::Keyring::load(&env.path("keys.yaml")).expect("keyring");
    let dev = &k.environments["dev"];
    assert_eq!(dev.recipients.len(), 2);
    assert_eq!(dev.recipients[0], before.environments["dev"].recipients[0]);
    assert_eq!(dev.recipients[1], *active.recipient());
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

    // --keyring without --write/--add is a usage error.
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
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--write"), "{}", out.stderr);
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
    let out = env.run(&[
        "unseal",
        "--pass-through",
        "-i",
        "new.txt",
        "-f",
        "folded.yaml",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    assert_eq!(data_item(&out.stdout, 0, "user"), b"admin");
}
