//! A closed standard output (`gitseal … | head -1`) is not an error: every
//! command that prints exits 0 without a panic message.

use std::process::{Command, Stdio};

use crate::support::*;

/// Runs the binary with standard output a pipe whose reading end is
/// already closed, so the first write fails with EPIPE.
fn run_closed(env: &Env, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(BIN)
        .args(args)
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_printing_command_survives_a_closed_stdout() {
    let env = Env::new();
    env.write(
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2-PLAINTEXT}\n",
    );
    env.seal(&["-f", "secret.yaml", "-o", "sealed.yaml"]).ok();
    let r = env.recipient.clone();
    let cases: Vec<Vec<&str>> = vec![
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["--help"],
        vec!["seal", "--help"],
        vec!["--version"],
        vec!["keygen"],
        vec!["keygen", "-o", "new.txt"],
        vec!["pubkey", "-i", "key.txt", "--key-id"],
        vec!["seal", "-r", &r, "-f", "secret.yaml"],
        vec!["seal", "-r", &r, "-f", "secret.yaml", "--format", "json"],
        vec![
            "seal",
            "-r",
            &r,
            "--raw",
            "--key",
            "k",
            "--namespace",
            "prod",
            "--name",
            "db",
            "-f",
            "secret.yaml",
        ],
        vec!["unseal", "-i", "key.txt", "-f", "sealed.yaml"],
        vec!["reseal", "-i", "key.txt", "-r", &r, "-f", "sealed.yaml"],
        vec!["exec", "-f", "sealed.yaml", "--dry-run"],
        vec!["verify", "--no-progress", "secret.yaml"],
    ];
    for args in cases {
        let (code, stderr) = run_closed(&env, &args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // verify exits 1 for its finding (the plaintext Secret), as with an open stdout.
        let want = if args[0] == "verify" { 1 } else { 0 };
        assert_eq!(code, want, "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}
