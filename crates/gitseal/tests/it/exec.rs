//! `gitseal exec` through the binary: variable names, values reaching the
//! command (compared inside the command, so no plaintext is printed), exit
//! codes, bad identities, and Vault items read from a real OpenBao dev
//! server (skipped with a note without `bao`, except under `CI`).

use gitseal_test_support::openbao::{Bao, ROOT_TOKEN};
use serde_json::{json, Value};

use crate::support::*;

const PW: &str = "hunter2-PLAINTEXT";
const TOKEN: &str = "s3cr3t-T0KEN";
const VAULT_PW: &str = "vault-PLAINTEXT-42";

/// A temp dir with key.txt, other-key.txt and sealed.yaml (SealedSecret
/// `app` in namespace `team` with items `db-password` and `api.token`).
fn sealed_env() -> Env {
    let env = Env::new();
    env.keygen("other-key.txt");
    env.write(
        "secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: app, namespace: team}}\n\
             stringData: {{db-password: {PW}, api.token: {TOKEN}}}\n"
        ),
    );
    env.seal(&["-f", "secret.yaml", "-o", "sealed.yaml"]).ok();
    std::fs::remove_file(env.path("secret.yaml")).expect("rm plaintext");
    env
}

/// Adds `spec.vaultData` to sealed.yaml, written as `name`.
fn with_vault(env: &Env, name: &str, vault_data: Value, keep_sealed: bool) {
    let mut doc = yaml(&env.read("sealed.yaml"));
    let spec = doc
        .get_mut("spec")
        .and_then(serde_yaml::Value::as_mapping_mut)
        .expect("spec");
    if !keep_sealed {
        spec.remove("encryptedData");
    }
    spec.insert(
        "vaultData".into(),
        serde_yaml::to_value(vault_data).expect("value"),
    );
    env.write(name, &serde_yaml::to_string(&doc).expect("yaml"));
}

/// Runs gitseal in the temp dir (HOME there, no Vault variables but
/// `vars`); checks that no plaintext appears on stdout or stderr.
fn gitseal(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Out {
    env.cmd(args)
        .without_vault_env(env.dir.path())
        .envs(vars)
        .no_secret_output(&[PW, TOKEN, VAULT_PW, ROOT_TOKEN])
        .out()
}

/// A shell script that exits 0 when every `NAME=EXPECTED_VAR` pair holds.
fn check(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, expect)| format!("[ \"${name}\" = \"${expect}\" ]"))
        .collect::<Vec<_>>()
        .join(" && ")
}

#[test]
fn dry_run_lists_names_only_and_opens_nothing() {
    let env = sealed_env();
    with_vault(
        &env,
        "mixed.yaml",
        json!({"db-url": {"mount": "secret", "path": "team/db", "field": "url"}}),
        true,
    );
    // No identity, and a Vault address where nothing listens: not needed.
    let out = gitseal(
        &env,
        &["exec", "-f", "mixed.yaml", "--dry-run"],
        &[("VAULT_ADDR", "http://127.0.0.1:1"), ("VAULT_TOKEN", "x")],
    );
    out.ok();
    assert_eq!(out.stdout, "API_TOKEN\nDB_PASSWORD\nDB_URL\n");
    let out = gitseal(
        &env,
        &["exec", "-f", "sealed.yaml", "--prefix", "APP_", "--dry-run"],
        &[],
    );
    assert_eq!(out.stdout, "APP_API_TOKEN\nAPP_DB_PASSWORD\n");
}

#[test]
fn values_reach_the_command_and_nothing_is_written() {
    let env = sealed_env();
    let before = env.listing();
    let expect = [("EXPECT_PW", PW), ("EXPECT_TOKEN", TOKEN)];
    let script = check(&[("DB_PASSWORD", "EXPECT_PW"), ("API_TOKEN", "EXPECT_TOKEN")]);
    let exec = |prefix: &[&str], script: &str, vars: &[(&str, &str)]| {
        let mut args = vec!["exec", "-i", "key.txt", "-f", "sealed.yaml"];
        args.extend_from_slice(prefix);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        gitseal(&env, &args, vars)
    };
    let out = exec(&[], &script, &expect);
    out.ok();
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    // The comparison is live: a wrong expectation fails.
    let out = exec(
        &[],
        &script,
        &[("EXPECT_PW", "wrong"), ("EXPECT_TOKEN", TOKEN)],
    );
    assert_eq!(out.code, 1);
    // With a prefix; an existing variable of that name is refused unless
    // named with --allow-override, and then overridden.
    let script = check(&[
        ("APP_DB_PASSWORD", "EXPECT_PW"),
        ("APP_API_TOKEN", "EXPECT_TOKEN"),
    ]);
    let stale = [expect[0], expect[1], ("APP_DB_PASSWORD", "stale")];
    exec(&["--prefix", "APP_"], "touch ran", &stale)
        .exits_with(
            2,
            "item \"db-password\" would set APP_DB_PASSWORD, which is already set",
        )
        .exits_with(2, "--allow-override APP_DB_PASSWORD");
    assert!(!env.path("ran").exists(), "the command did not run");
    let out = exec(
        &["--prefix", "APP_", "--allow-override", "APP_DB_PASSWORD"],
        &script,
        &stale,
    );
    out.ok();
    assert_eq!(env.listing(), before, "no file was written");
}

#[test]
fn items_cannot_take_over_the_command() {
    let env = Env::new();
    env.write(
        "evil.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: app, namespace: team}\n\
         stringData: {ld-preload: /tmp/evil.so, path: /tmp/evil, https-proxy: http://evil:3128, node-options: --require=/tmp/x.js, bash-env: /tmp/x.sh, home: /tmp}\n",
    );
    env.seal(&["-f", "evil.yaml", "-o", "evil.sealed.yaml"])
        .ok();
    let exec = |extra: &[&str], vars: &[(&str, &str)]| {
        let mut args = vec!["exec", "-i", "key.txt", "-f", "evil.sealed.yaml"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", "touch ran"]);
        env.cmd(&args)
            .env_remove(&["LD_PRELOAD", "HTTPS_PROXY", "NODE_OPTIONS", "BASH_ENV"])
            .envs(vars)
            .out()
    };
    // Each dangerous name is refused even when it is not set; HOME because it is set.
    let all = [
        "LD_PRELOAD",
        "PATH",
        "HTTPS_PROXY",
        "NODE_OPTIONS",
        "BASH_ENV",
        "HOME",
    ];
    for name in all {
        let allowed: Vec<&str> = all
            .iter()
            .filter(|n| **n != name)
            .flat_map(|n| ["--allow-override", n])
            .collect();
        let out = exec(&allowed, &[("HOME", "/home/me")]);
        out.exits_with(2, &format!("would set {name}"));
        assert!(!env.path("ran").exists(), "{name}: the command did not run");
    }
    // The dry run checks too, before anything is opened.
    env.run(&["exec", "-f", "evil.sealed.yaml", "--dry-run"])
        .exits_with(2, "which changes how programs run");
    // A prefix makes them other names (…_PROXY names stay suspect).
    exec(&["--prefix", "APP_"], &[]).exits_with(2, "would set APP_HTTPS_PROXY");
    let out = exec(
        &["--prefix", "APP_", "--allow-override", "APP_HTTPS_PROXY"],
        &[],
    );
    out.ok();
    assert!(env.path("ran").exists());
}

#[test]
fn the_commands_exit_status_passes_through() {
    let env = sealed_env();
    let run = |command: &[&str]| {
        let mut args = vec!["exec", "-i", "key.txt", "-f", "sealed.yaml", "--"];
        args.extend_from_slice(command);
        gitseal(&env, &args, &[])
    };
    assert_eq!(run(&["sh", "-c", "exit 42"]).code, 42);
    assert_eq!(run(&["sh", "-c", "exit 0"]).code, 0);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        let out = run(&["sh", "-c", "kill -TERM $$"]);
        assert_eq!(out.status.signal(), Some(15));
        // As a shell sees it: 128 + 15.
        let line =
            format!("'{BIN}' exec -i key.txt -f sealed.yaml -- sh -c 'kill -TERM $$'; echo $?");
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .current_dir(env.dir.path())
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "143");
    }
    // Arguments starting with '-' belong to the command.
    assert_eq!(run(&["sh", "-c", "exit 7", "-x"]).code, 7);
    run(&["./no-such-command"]).exits_with(127, "command not found: ./no-such-command");
}

#[test]
fn a_bad_identity_or_input_runs_nothing() {
    let env = sealed_env();
    let touch = ["--", "touch", "ran"];
    let with = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&touch);
        gitseal(&env, &a, &[])
    };
    with(&["-i", "other-key.txt", "-f", "sealed.yaml"]).exits_with(3, "sealed to key id(s)");
    // No identity at all for sealed items.
    with(&["-f", "sealed.yaml"]).exits_with(2, "give the identity that opens them with -i FILE");
    // Standard input for both the identity and the manifests.
    with(&["-i", "-", "-f", "-"]).exits_with(2, "standard input can be read only once");
    // A value moved to another namespace does not open.
    let moved = env
        .read("sealed.yaml")
        .replace("namespace: team", "namespace: elsewhere");
    env.write("moved.yaml", &moved);
    with(&["-i", "key.txt", "-f", "moved.yaml"]).exits(3);
    // Not a SealedSecret; a bad prefix.
    env.write(
        "plain.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    with(&["-i", "key.txt", "-f", "plain.yaml"])
        .exits_with(2, "is a ConfigMap, not a SealedSecret");
    assert_eq!(
        with(&["-i", "key.txt", "-f", "sealed.yaml", "--prefix", "A-"]).code,
        2
    );
    // Two items with the same variable name.
    with_vault(
        &env,
        "collide.yaml",
        json!({"db_password": {"mount": "secret", "path": "team/db", "field": "pw"}}),
        true,
    );
    with(&["-i", "key.txt", "-f", "collide.yaml"])
        .exits_with(2, "item \"db-password\" and collide.yaml, document 1")
        .exits_with(
            2,
            "item \"db_password\" both become the variable DB_PASSWORD",
        );
    assert!(!env.path("ran").exists(), "the command must not run");
}

// ---------------------------------------------------------------------------
// Vault items, against a real OpenBao dev server.

#[test]
fn vault_items_are_read_with_the_users_token() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let Some(mut bao) = runtime.block_on(Bao::start()) else {
        return;
    };
    runtime.block_on(bao.put_kv2(
        "secret",
        "team/db",
        json!({"password": VAULT_PW, "user": "app"}),
    ));
    let env = sealed_env();
    with_vault(
        &env,
        "mixed.yaml",
        json!({
            "vault-pw": {"mount": "secret", "path": "team/db", "field": "password"},
            "vault-pw-v1": {"mount": "secret", "path": "team/db", "field": "password", "version": 1},
        }),
        true,
    );
    let addr = bao.addr();
    let vars = [
        ("VAULT_ADDR", addr.as_str()),
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("EXPECT_VAULT", VAULT_PW),
        ("EXPECT_PW", PW),
    ];
    let script = check(&[
        ("VAULT_PW", "EXPECT_VAULT"),
        ("VAULT_PW_V1", "EXPECT_VAULT"),
        ("DB_PASSWORD", "EXPECT_PW"),
    ]);
    gitseal(
        &env,
        &[
            "exec",
            "-i",
            "key.txt",
            "-f",
            "mixed.yaml",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &vars,
    )
    .ok();

    // The token may come from ~/.vault-token (HOME is the temp dir).
    env.write(".vault-token", ROOT_TOKEN);
    with_vault(
        &env,
        "vault-only.yaml",
        json!({"pw": {"mount": "secret", "path": "team/db", "field": "password"}}),
        false,
    );
    gitseal(
        &env,
        &[
            "exec",
            "-f",
            "vault-only.yaml",
            "--",
            "sh",
            "-c",
            &check(&[("PW", "EXPECT_VAULT")]),
        ],
        &[("VAULT_ADDR", addr.as_str()), ("EXPECT_VAULT", VAULT_PW)],
    )
    .ok();
    std::fs::remove_file(env.path(".vault-token")).expect("rm");

    // A missing path: exit 4, says where, runs nothing.
    with_vault(
        &env,
        "missing.yaml",
        json!({"pw": {"mount": "secret", "path": "team/nothing", "field": "password"}}),
        false,
    );
    gitseal(
        &env,
        &["exec", "-f", "missing.yaml", "--", "touch", "ran"],
        &vars,
    )
    .exits_with(
        4,
        "missing.yaml, document 1 (line 1), item \"pw\" (secret/team/nothing#password): Vault secret secret/team/nothing not found",
    );

    // Vault stopped: exit 4 (unavailable), runs nothing.
    bao.stop();
    gitseal(
        &env,
        &[
            "exec",
            "-i",
            "key.txt",
            "-f",
            "mixed.yaml",
            "--",
            "touch",
            "ran",
        ],
        &vars,
    )
    .exits_with(4, &format!("Vault at {addr} is unavailable"));
    assert!(!env.path("ran").exists());

    // No token anywhere: the login fails (exit 4) with a hint.
    let out = gitseal(
        &env,
        &["exec", "-f", "vault-only.yaml", "--", "true"],
        &[("VAULT_ADDR", addr.as_str())],
    );
    out.exits_with(
        4,
        "Vault login with token auth failed: cannot read token file",
    );
    assert!(
        out.stderr
            .ends_with("; set VAULT_TOKEN or log in with `vault login` / `bao login`\n"),
        "{}",
        out.stderr
    );
}
