//! What a new user runs into in the first hour: inputs as tools print them,
//! limits with their reason, and errors that say each thing once.

use std::io::Write as _;

use crate::support::*;

fn secret(name: &str, value: &str) -> String {
    format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"prod\"}},\"stringData\":{{\"k\":\"{value}\"}}}}"
    )
}

#[test]
fn a_json_array_of_secrets_is_accepted() {
    let env = Env::new();
    // What `kubectl get secret a b -o json | jq -s '.[]'`… `jq -s` prints.
    let array = format!("[{}, {}]", secret("a", "one"), secret("b", "two"));
    let out = env.seal_stdin(&[], array.as_bytes());
    out.ok();
    let docs: Vec<&str> = out.stdout.split("\n---\n").collect();
    assert_eq!(docs.len(), 2);
    env.write("sealed.yaml", &out.stdout);
    let opened = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    assert_eq!(data_item(&opened.stdout, 1, "k"), b"two");
}

#[test]
fn values_a_secret_cannot_hold_are_refused_with_the_reason() {
    let env = Env::new();
    let big = "x".repeat((1 << 20) + 1);
    env.write("big.yaml", &secret("big", &big));
    env.seal(&["-f", "big.yaml", "-o", "out.yaml"])
        .exits_with(2, "more than a Secret can hold (1 MiB)");
    assert!(!env.path("out.yaml").exists());
    env.write("big.txt", &big);
    env.seal(&[
        "--raw",
        "--namespace",
        "prod",
        "--name",
        "a",
        "--key",
        "k",
        "-f",
        "big.txt",
    ])
    .exits_with(2, "more than a Secret can hold (1 MiB)");
}

#[test]
fn raw_flags_a_scope_ignores_are_refused() {
    let env = Env::new();
    env.seal_stdin(
        &[
            "--raw",
            "--scope",
            "cluster",
            "--namespace",
            "prod",
            "--key",
            "k",
        ],
        b"v",
    )
    .exits_with(2, "--namespace and --name would be ignored");
    env.seal_stdin(
        &[
            "--raw",
            "--scope",
            "namespace",
            "--namespace",
            "prod",
            "--name",
            "a",
            "--key",
            "k",
        ],
        b"v",
    )
    .exits_with(2, "--name would be ignored");
    env.seal_stdin(&["--raw", "--scope", "cluster", "--key", "k"], b"v")
        .ok();
}

#[test]
fn a_passphrase_protected_identity_says_so() {
    let env = Env::new();
    let identity = env.read("key.txt");
    let recipient = age::scrypt::Recipient::new(age::secrecy::SecretString::from(
        "correct horse".to_string(),
    ));
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("encryptor");
    let mut encrypted = Vec::new();
    let mut writer = encryptor.wrap_output(&mut encrypted).expect("wrap");
    writer.write_all(identity.as_bytes()).expect("write");
    writer.finish().expect("finish");
    std::fs::write(env.path("key.age"), &encrypted).expect("write");
    env.write("s.yaml", &secret("a", "one"));
    env.seal(&["-f", "s.yaml", "-o", "sealed.yaml"]).ok();
    let out = env.run(&["unseal", "-i", "key.age", "-f", "sealed.yaml"]);
    out.exits_with(
        2,
        "key.age: the identity file is encrypted with a passphrase",
    )
    .exits_with(2, "age -d key.age | gitseal … -i -");
}

#[test]
fn mistyped_recipients_say_what_is_wrong() {
    let env = Env::new();
    env.write("s.yaml", &secret("a", "one"));
    let cut = &env.recipient[..40];
    let cases = [
        (cut.to_string(), "was it cut off when copied?"),
        (
            "ssh-ed25519 AAAAC3Nza".to_string(),
            "SSH keys are not supported",
        ),
        (
            "4ad4bfc2ce5c258d".to_string(),
            "this is a key id, not a recipient",
        ),
        (
            format!(
                "{}{}",
                &env.recipient[..10],
                env.recipient[10..].to_uppercase()
            ),
            "age recipients are lowercase",
        ),
    ];
    for (given, hint) in cases {
        env.run(&["seal", "-r", &given, "-f", "s.yaml"])
            .exits_with(2, "-r/--recipient #1")
            .exits_with(2, hint);
    }
}

#[test]
fn errors_say_each_thing_once() {
    let env = Env::new();
    let out = env.seal(&["-f", "missing.yaml"]);
    out.exits(2);
    assert_eq!(
        out.stderr,
        "error: cannot read missing.yaml: No such file or directory\n"
    );
    env.write("s.yaml", &secret("a", "one"));
    let out = env.seal(&["-f", "s.yaml", "-o", "no/such/dir/out.yaml"]);
    out.exits_with(2, "no/such/dir/out.yaml");
    assert!(
        !out.stderr.contains(".gitseal-") && !out.stderr.contains("os error"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        out.stderr
    );
    // A broken sealed value: its cause once.
    env.seal(&["-f", "s.yaml", "-o", "sealed.yaml"]).ok();
    let sealed = env.read("sealed.yaml");
    let value = sealed
        .lines()
        .find_map(|l| l.trim().strip_prefix("k: "))
        .expect("value")
        .to_string();
    env.write("broken.yaml", &sealed.replace(&value, "gs1:AAAA"));
    let out = env.run(&["unseal", "-i", "key.txt", "-f", "broken.yaml"]);
    out.exits_with(2, "broken.yaml, document 1");
    let cause = gitseal_crypto::Envelope::parse("gs1:AAAA")
        .err()
        .map(|e| e.to_string())
        .expect("malformed");
    assert_eq!(out.stderr.matches(&cause).count(), 1, "{}", out.stderr);
    // No environment to choose: a question, not `"(none given)"`.
    env.write(
        "keys.yaml",
        &format!(
            "version: 1\nenvironments:\n  a: {{recipients: [{r}]}}\n  b: {{recipients: [{r}]}}\n",
            r = env.recipient
        ),
    );
    let out = env.run(&["seal", "--keyring", "keys.yaml", "-f", "s.yaml"]);
    out.exits_with(2, "which environment?")
        .exits_with(2, "pass --env NAME");
    assert!(!out.stderr.contains("(none given)"), "{}", out.stderr);
}
