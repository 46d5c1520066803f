//! seal and unseal end to end through the binary, and their error paths.

use crate::support::*;

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
  labels: {app: db}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{\"stringData\":{\"password\":\"hunter2-PLAINTEXT\"}}'
  resourceVersion: \"1\"
type: Opaque
data:
  blob: AAEC/4CBfn8=
stringData:
  password: hunter2-PLAINTEXT
---
apiVersion: v1
kind: Secret
metadata: {name: api, namespace: prod}
stringData: {token: s3cr3t-T0KEN}  # gitseal:allow test fixture
";

fn sealed(env: &Env) -> String {
    env.write("secret.yaml", SECRET);
    let out = env.seal(&["-f", "secret.yaml", "-o", "sealed.yaml"]);
    out.ok();
    assert!(out.stdout.is_empty());
    env.read("sealed.yaml")
}

#[test]
fn seal_unseal_round_trip_byte_exact() {
    let env = Env::new();
    let text = sealed(&env);
    assert!(
        !text.contains("hunter2") && !text.contains("s3cr3t") && !text.contains("last-applied"),
        "{text}"
    );
    assert_eq!(text.matches("kind: SealedSecret").count(), 2);
    #[cfg(unix)]
    assert_eq!(
        file_mode(&env.path("sealed.yaml")),
        0o644,
        "sealed output is shareable"
    );
    let out = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    out.ok();
    assert_eq!(
        data_item(&out.stdout, 0, "blob"),
        [0, 1, 2, 255, 128, 129, 126, 127]
    );
    assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    assert_eq!(data_item(&out.stdout, 1, "token"), b"s3cr3t-T0KEN");
    assert!(out.stdout.contains("type: Opaque") && out.stdout.contains("app: db"));

    // stdin in, unseal -o out (mode 0600), JSON.
    let out = env.run_stdin(
        &[
            "unseal",
            "-i",
            "key.txt",
            "-o",
            "plain.json",
            "--format",
            "json",
        ],
        text.as_bytes(),
    );
    out.ok();
    let json = env.read("plain.json");
    assert!(json.contains("\"kind\": \"List\""), "{json}");
    assert_eq!(data_item(&json, 1, "token"), b"s3cr3t-T0KEN");
    #[cfg(unix)]
    assert_eq!(
        file_mode(&env.path("plain.json")),
        0o600,
        "plaintext output is private"
    );
}

#[test]
fn json_in_and_out() {
    let env = Env::new();
    let json = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"j","namespace":"n"},"data":{"bin":"/wA="}}"#;
    let out = env.seal_stdin(&["--format", "json"], json.as_bytes());
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["kind"], "SealedSecret");
    let opened = env.run_stdin(
        &["unseal", "-i", "key.txt", "--format", "json"],
        out.stdout.as_bytes(),
    );
    opened.ok();
    assert_eq!(data_item(&opened.stdout, 0, "bin"), [255, 0]);
}

#[test]
fn raw_seals_exact_bytes() {
    let env = Env::new();
    let raw = |args: &[&str], value: &[u8]| {
        let mut all = vec!["--raw"];
        all.extend_from_slice(args);
        env.seal_stdin(&all, value)
    };
    let args = ["--namespace", "prod", "--name", "api", "--key", "token"];
    let out = raw(&args, b"s3cr3t-T0KEN");
    out.ok();
    assert!(
        out.stdout.starts_with("gs1:")
            && out.stdout.ends_with('\n')
            && out.stdout.lines().count() == 1
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let doc = |sealed: &str| {
        format!(
            "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {{name: api, namespace: prod}}\nspec:\n  encryptedData:\n    token: {sealed}"
        )
    };
    let opened = env.run_stdin(&["unseal", "-i", "key.txt"], doc(&out.stdout).as_bytes());
    opened.ok();
    assert_eq!(data_item(&opened.stdout, 0, "token"), b"s3cr3t-T0KEN");

    // A trailing newline is kept, with a note.
    let out = raw(&args, b"s3cr3t-T0KEN\n");
    assert!(
        out.stderr
            .contains("the value ends with a newline, which is sealed too"),
        "{}",
        out.stderr
    );
    let opened = env.run_stdin(&["unseal", "-i", "key.txt"], doc(&out.stdout).as_bytes());
    opened.ok();
    assert_eq!(data_item(&opened.stdout, 0, "token"), b"s3cr3t-T0KEN\n");

    // Missing binding parts.
    raw(&["--namespace", "prod", "--key", "k"], b"x").exits_with(
        2,
        "strict scope binds the value to an object name: pass --name NAME",
    );
    let out = raw(&["--scope", "cluster", "--key", "k"], b"x");
    assert_eq!(
        out.code, 0,
        "cluster scope needs only the key: {}",
        out.stderr
    );
    let out = raw(&["--namespace", "prod", "--name", "n"], b"x");
    assert_eq!(out.code, 2, "--key is required");
}

#[test]
fn merge_into_keeps_other_ciphertexts() {
    let env = Env::new();
    let before = sealed(&env);
    env.write("more.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: new-pass, extra: x}\n");
    let out = env.seal(&["--merge-into", "sealed.yaml", "-f", "more.yaml"]);
    out.exits_with(0, "sealed.yaml: replaced item \"password\" in prod/db");
    assert!(
        out.stderr
            .contains("sealed.yaml: added item \"extra\" to prod/db"),
        "{}",
        out.stderr
    );
    let after = env.read("sealed.yaml");
    let blob_line = |t: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with("blob:"))
            .expect("blob")
            .to_string()
    };
    assert_eq!(
        blob_line(&before),
        blob_line(&after),
        "untouched ciphertext byte-identical"
    );
    let api_doc = |t: &str| t.split("---\n").nth(1).expect("second doc").to_string();
    assert_eq!(
        api_doc(&before),
        api_doc(&after),
        "other document byte-identical"
    );
    let out = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    assert_eq!(data_item(&out.stdout, 0, "password"), b"new-pass");
    assert_eq!(
        data_item(&out.stdout, 0, "blob"),
        [0, 1, 2, 255, 128, 129, 126, 127]
    );

    // A bad input leaves the file exactly as it was.
    let snapshot = std::fs::read(env.path("sealed.yaml")).expect("read");
    env.write("bad.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: \"hunter2-PLAINTEXT\"}\n");
    let out = env.seal(&["--merge-into", "sealed.yaml", "-f", "bad.yaml"]);
    out.exits_with(
        2,
        "bad.yaml, document 1 (line 1), item \"password\": data value is not valid base64",
    );
    assert_eq!(
        std::fs::read(env.path("sealed.yaml")).expect("read"),
        snapshot,
        "file unchanged"
    );
    let out = env.seal(&["--merge-into", "missing.yaml", "-f", "more.yaml"]);
    out.exits_with(2, "missing.yaml");
    assert!(!env.path("missing.yaml").exists());
    let out = env.seal(&[
        "--merge-into",
        "sealed.yaml",
        "-o",
        "x.yaml",
        "-f",
        "more.yaml",
    ]);
    assert_eq!(out.code, 2, "--merge-into writes in place; -o conflicts");
    let leftovers: Vec<String> = env
        .listing()
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left");
}

#[test]
fn keyring_environments() {
    let env = Env::new();
    let other = env.keygen("other.txt");
    let keyring = format!(
        "version: 1\ndefaultEnvironment: dev\nenvironments:\n  dev:\n    recipients: [{}]\n  prod:\n    recipients: [{}, {other}]\n    scope: namespace\n",
        env.recipient, env.recipient
    );
    env.write("keys.yaml", &keyring);
    env.write("secret.yaml", SECRET);
    let out = env.run(&[
        "seal",
        "--keyring",
        "keys.yaml",
        "--env",
        "prod",
        "-f",
        "secret.yaml",
    ]);
    out.ok();
    assert!(
        out.stdout.contains("scope: namespace"),
        "environment scope applies: {}",
        out.stdout
    );
    env.write("sealed.yaml", &out.stdout);
    // Both prod keys open it.
    for key in ["key.txt", "other.txt"] {
        let opened = env.run(&["unseal", "-i", key, "-f", "sealed.yaml"]);
        opened.ok();
        assert_eq!(data_item(&opened.stdout, 1, "token"), b"s3cr3t-T0KEN");
    }
    // --scope overrides; default environment; default keyring path.
    let out = env.run(&[
        "seal",
        "--keyring",
        "keys.yaml",
        "--env",
        "prod",
        "--scope",
        "strict",
        "-f",
        "secret.yaml",
    ]);
    assert!(!out.stdout.contains("scope:"), "{}", out.stdout);
    let out = env.run(&["seal", "--keyring", "keys.yaml", "-f", "secret.yaml"]);
    assert_eq!(out.code, 0);
    let out = env.run(&[
        "seal",
        "--keyring",
        "keys.yaml",
        "--env",
        "staging",
        "-f",
        "secret.yaml",
    ]);
    out.exits_with(
        2,
        "unknown environment \"staging\"; the keyring has: dev, prod",
    );
    let out = env.run(&["seal", "--env", "prod", "-f", "secret.yaml"]);
    out.exits_with(2, "--env needs a keyring");
    std::fs::create_dir(env.path(".gitseal")).expect("mkdir");
    env.write(".gitseal/keys.yaml", &keyring);
    let out = env.run(&["seal", "--env", "prod", "-f", "secret.yaml"]);
    out.ok();
}

#[test]
fn seal_errors_name_the_place_and_write_nothing() {
    let env = Env::new();
    env.write("out.yaml", "previous\n");
    let cases: &[(&str, &str, &str)] = &[
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\nstringData: {ok: x}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
            "in.yaml, document 2 (line 6): is a Deployment, not a Secret",
            "non-Secret",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\ndata: {password: \"hunter2-PLAINTEXT\"}\n",
            "in.yaml, document 1 (line 1), item \"password\": data value is not valid base64",
            "bad base64",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {password: hunter2-PLAINTEXT}\n",
            "add metadata.namespace to the Secret or pass --namespace NS",
            "no namespace",
        ),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: b}\nstringData: {port: 5432}\n", "item \"port\": stringData value is a number, not a string: quote it", "number"),
        ("apiVersion: v1\nkind: Secret\nstringData: {password: \"hunter2-PLAINTEXT\n", "in.yaml: not valid YAML", "syntax"),
        ("# only a comment\n", "in.yaml: no manifests found", "empty"),
    ];
    for (input, expected, what) in cases {
        env.write("in.yaml", input);
        let out = env.seal(&["-f", "in.yaml", "-o", "out.yaml"]);
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(
            out.stderr.contains(expected),
            "{what}: expected {expected:?} in {}",
            out.stderr
        );
        assert_eq!(
            env.read("out.yaml"),
            "previous\n",
            "{what}: output untouched"
        );
        let out = env.seal(&["-f", "in.yaml", "-o", "new.yaml"]);
        assert_eq!(out.code, 2);
        assert!(
            !env.path("new.yaml").exists(),
            "{what}: no output file created"
        );
    }
    // Usage problems.
    let out = env.run(&["seal", "-f", "in.yaml"]);
    out.exits_with(2, "no recipients: pass -r age1…");
    let out = env.run(&["seal", "-r", "age1notakey", "-f", "in.yaml"]);
    out.exits_with(
        2,
        "-r/--recipient #1 (age1notakey) is not usable: invalid recipient",
    );
    let key_line = env
        .read("key.txt")
        .lines()
        .nth(2)
        .expect("line")
        .to_string();
    let out = env.run(&["seal", "-r", &key_line, "-f", "in.yaml"]);
    out.exits_with(2, "this is a private identity");
    let out = env.seal(&["-f", "nope.yaml"]);
    out.exits_with(2, "cannot read nope.yaml");
    let out = env.seal(&["--scope", "galaxy"]);
    assert_eq!(out.code, 2);
}

#[test]
fn unseal_failures_exit_3_and_write_nothing() {
    let env = Env::new();
    let text = sealed(&env);
    env.keygen("other.txt");
    let out = env.run(&[
        "unseal",
        "-i",
        "other.txt",
        "-f",
        "sealed.yaml",
        "-o",
        "plain.yaml",
    ]);
    out.exits_with(
        3,
        "sealed.yaml, document 1 (line 1), item \"blob\": sealed to key id(s) ",
    );
    assert!(!env.path("plain.yaml").exists());

    env.write(
        "moved.yaml",
        &text.replacen("namespace: prod", "namespace: dev", 1),
    );
    let out = env.run(&[
        "unseal",
        "-i",
        "key.txt",
        "-f",
        "moved.yaml",
        "-o",
        "plain.yaml",
    ]);
    out.exits_with(3, "moved.yaml, document 1 (line 1), item \"blob\": sealed value does not open: sealed for namespace \"prod\", found in namespace \"dev\"; it is sealed to key id(s)");
    assert!(!env.path("plain.yaml").exists());

    // Input problems are exit 2.
    let out = env.run(&["unseal", "-i", "key.txt", "-f", "secret.yaml"]);
    out.exits_with(
        2,
        "secret.yaml, document 1 (line 1): is a Secret, not a SealedSecret",
    );
    let out = env.run(&[
        "unseal",
        "-i",
        "key.txt",
        "-f",
        "secret.yaml",
        "--pass-through",
    ]);
    assert_eq!(out.code, 0, "--pass-through copies other kinds");
    let out = env.run(&["unseal", "-f", "sealed.yaml"]);
    assert_eq!(out.code, 2, "an identity is required");
    let out = env.run_stdin(&["unseal", "-i", "-"], b"");
    out.exits_with(2, "standard input can be read only once");
}

#[test]
fn the_example_secret_round_trips() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/secret.yaml");
    let env = Env::new();
    let example = example.to_str().expect("utf8 path");
    let out = env.seal(&["-f", example, "-o", "sealed.yaml"]);
    out.ok();
    let sealed = env.read("sealed.yaml");
    assert!(!sealed.contains("last-applied"), "{sealed}");
    let out = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    out.ok();
    let original = std::fs::read_to_string(example).expect("example");
    let docs: serde_yaml::Value = serde_yaml::from_str(&original).expect("yaml");
    for (k, v) in docs["data"].as_mapping().expect("data") {
        let k = k.as_str().expect("key");
        assert_eq!(
            data_item(&out.stdout, 0, k),
            decode(v.as_str().expect("b64")),
            "item {k}"
        );
    }
    for (k, v) in docs["stringData"].as_mapping().expect("stringData") {
        let k = k.as_str().expect("key");
        assert_eq!(
            data_item(&out.stdout, 0, k),
            v.as_str().expect("text").as_bytes(),
            "item {k}"
        );
    }
}

#[test]
fn names_and_keys_yaml_11_reads_as_booleans_stay_strings() {
    let env = Env::new();
    // kubectl (YAML 1.1) read `namespace: y` as a boolean and item keys
    // `on`/`n` as true/false, which then failed to open.
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: 'on'}\nstringData:\n  'n': one\n  'on': two\n  'off': three\n  '0o17': four\n  '1_000': five\n  '.inf': six\n  'Yes': seven\n";
    env.write("secret.yaml", secret);
    let out = env.seal(&["-f", "secret.yaml", "--namespace", "y", "-o", "sealed.yaml"]);
    out.ok();
    let sealed = env.read("sealed.yaml");
    assert_eq!(
        yaml11_non_strings(&sealed),
        Vec::<String>::new(),
        "{sealed}"
    );
    let opened = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    opened.ok();
    assert_eq!(
        yaml11_non_strings(&opened.stdout),
        Vec::<String>::new(),
        "{}",
        opened.stdout
    );
    assert_eq!(data_item(&opened.stdout, 0, "on"), b"two");
    assert_eq!(data_item(&opened.stdout, 0, "0o17"), b"four");
    let doc = yaml(&opened.stdout);
    assert_eq!(doc["metadata"]["namespace"].as_str(), Some("y"));
    assert_eq!(doc["metadata"]["name"].as_str(), Some("on"));

    // Merging keeps it so.
    env.write(
        "more.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: 'on'}\nstringData: {'no': eight, 'NULL': nine}\n",
    );
    env.seal(&["--merge-into", "sealed.yaml", "-f", "more.yaml"])
        .ok();
    let merged = env.read("sealed.yaml");
    assert_eq!(
        yaml11_non_strings(&merged),
        Vec::<String>::new(),
        "{merged}"
    );
    let opened = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    opened.ok();
    assert_eq!(data_item(&opened.stdout, 0, "NULL"), b"nine");
}
