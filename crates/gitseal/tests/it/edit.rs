//! `gitseal edit` with a scripted editor, and `seal --update`: only what
//! changed is sealed, everything else stays byte for byte, and no
//! plaintext is left behind.

use std::path::Path;

use crate::support::*;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: app, namespace: team}\nstringData: {password: hunter2-PLAINTEXT, user: admin, api: key-1}\n";

/// A repository (keyring listing key.txt) holding `app.sealed.yaml`: a
/// comment, a ConfigMap, then the SealedSecret of [`SECRET`].
fn repo() -> Env {
    let env = Env::new();
    for dir in [".git", ".gitseal", "runtime", "cache"] {
        std::fs::create_dir_all(env.path(dir)).expect("mkdir");
    }
    env.write(
        ".gitseal/keys.yaml",
        &format!(
            "version: 1\nenvironments:\n  dev:\n    recipients: [{}]\n",
            env.recipient
        ),
    );
    env.write("secret.yaml", SECRET);
    env.seal(&["-f", "secret.yaml", "-o", "sealed.part"]).ok();
    let sealed = env.read("sealed.part");
    env.write(
        "app.sealed.yaml",
        &format!("# team app secrets\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cfg}}\n---\n# the app\n{sealed}"),
    );
    std::fs::remove_file(env.path("sealed.part")).expect("rm");
    std::fs::remove_file(env.path("secret.yaml")).expect("rm plaintext");
    env
}

/// Runs `gitseal edit ARGS…` with a scripted editor: `script` is shell
/// code run with the buffer as `$1`. The buffer's directory and file modes
/// and path are logged to `editor.log`.
fn edit(env: &Env, args: &[&str], script: &str) -> Out {
    env.write(
        "editor.sh",
        &format!(
            "set -e\nstat -c '%a %n' \"$(dirname \"$1\")\" \"$1\" > '{log}'\n{script}\n",
            log = env.path("editor.log").display()
        ),
    );
    let editor = format!("sh {}", env.path("editor.sh").display());
    let mut all = vec!["edit"];
    all.extend_from_slice(args);
    env.cmd(&all)
        .env_remove(&["VISUAL"])
        .envs(&[
            ("EDITOR", editor.as_str()),
            (
                "XDG_RUNTIME_DIR",
                &env.path("runtime").display().to_string(),
            ),
            (
                "GITSEAL_CACHE_DIR",
                &env.path("cache").display().to_string(),
            ),
        ])
        .no_secret_output(&["new-PLAINTEXT", "added-PLAINTEXT"])
        .out()
}

/// Nothing is left in the runtime directory the buffer was made in.
fn no_buffer_left(env: &Env) {
    let left: Vec<_> = std::fs::read_dir(env.path("runtime"))
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn unsealed(env: &Env, file: &str) -> String {
    let out = env.run(&["unseal", "--pass-through", "-i", "key.txt", "-f", file]);
    out.ok();
    out.stdout
}

#[test]
fn edit_changes_one_item_and_nothing_else() {
    let env = repo();
    let before = env.read("app.sealed.yaml");
    let out = edit(
        &env,
        &["app.sealed.yaml"],
        concat!(
            "grep -q \"password: '<sealed: keep>'\" \"$1\"\n",
            // gitseal:allow a made-up test value typed by the scripted editor
            "sed -i \"s/^  password: .*/  password: new-PLAINTEXT/\" \"$1\"",
        ),
    );
    out.exits_with(0, "changed item \"password\" in team/app");
    let after = env.read("app.sealed.yaml");
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].1.trim_start().starts_with("password: gs1:"));
    let opened = unsealed(&env, "app.sealed.yaml");
    assert_eq!(data_item(&opened, 1, "password"), b"new-PLAINTEXT");
    assert_eq!(data_item(&opened, 1, "user"), b"admin");
    // The buffer was private and is gone.
    let log = env.read("editor.log");
    let mut lines = log.lines();
    let dir = lines.next().expect("dir line");
    let file = lines.next().expect("file line");
    assert!(dir.starts_with("700 "), "{log}");
    assert!(file.starts_with("600 "), "{log}");
    assert!(
        dir.contains(&env.path("runtime").display().to_string()),
        "{log}"
    );
    no_buffer_left(&env);
    // The cache remembers keyed hashes only.
    for entry in std::fs::read_dir(env.path("cache")).expect("ls") {
        let text = std::fs::read(entry.expect("entry").path()).expect("read");
        assert!(!String::from_utf8_lossy(&text).contains("new-PLAINTEXT"));
    }
}

#[test]
fn edit_adds_and_removes_items() {
    let env = repo();
    let out = edit(
        &env,
        &["app.sealed.yaml"],
        "sed -i '/^  user: /d' \"$1\"\nprintf '  token: added-PLAINTEXT\\n' >> \"$1\"",
    );
    out.exits_with(0, "added item \"token\" to team/app")
        .exits_with(0, "removed item \"user\" from team/app");
    let after = env.read("app.sealed.yaml");
    assert!(after.starts_with("# team app secrets\n") && after.contains("# the app\n"));
    let opened = unsealed(&env, "app.sealed.yaml");
    assert_eq!(data_item(&opened, 1, "token"), b"added-PLAINTEXT");
    assert_eq!(data_item(&opened, 1, "password"), b"hunter2-PLAINTEXT");
    let doc = yaml(opened.split("\n---\n").nth(1).expect("secret"));
    assert!(doc["data"].get("user").is_none(), "{opened}");
    no_buffer_left(&env);
}

#[test]
fn edit_aborts_write_nothing_and_leave_nothing() {
    let env = repo();
    let before = env.read("app.sealed.yaml");
    let cases: Vec<(&str, i32, &str)> = vec![
        ("sed -i 's/^  api: .*/  api: new-PLAINTEXT/' \"$1\"; exit 3", 2, "the editor exited with"),
        (": > \"$1\"", 0, "empty buffer"),
        ("true", 0, "no changes"),
        ("printf 'stringData: [new-PLAINTEXT\\n' > \"$1\"", 2, "not valid YAML"),
        ("sed -i 's/name: app/name: other/' \"$1\"", 2, "must stay team/app"),
        ("printf \"  copy: '<sealed: keep>'\\n\" >> \"$1\"", 2, "has no sealed item \"copy\""),
        ("sed -i 's/^  api: .*/  api: [new-PLAINTEXT]/' \"$1\"", 2, "stringData value is a list"),
        // SIGTERM to gitseal while the editor runs: the buffer still goes.
        (
            "sed -i 's/^  api: .*/  api: new-PLAINTEXT/' \"$1\"\n\
             p=$PPID\n\
             while [ \"$(cat /proc/$p/comm)\" != gitseal ]; do p=$(awk '{print $4}' /proc/$p/stat); [ \"$p\" -gt 1 ] || exit 9; done\n\
             kill -TERM \"$p\"\nsleep 0.3",
            130,
            "interrupted",
        ),
    ];
    for (script, code, message) in cases {
        let out = edit(&env, &["app.sealed.yaml"], script);
        out.exits_with(code, message);
        assert_eq!(
            env.read("app.sealed.yaml"),
            before,
            "{script}: file unchanged"
        );
        no_buffer_left(&env);
    }
}

#[test]
fn edit_seals_to_the_objects_keys_only() {
    let env = repo();
    let other = env.keygen("other.txt");
    let before = env.read("app.sealed.yaml");
    // Other recipients than the object's: refused before any editor runs.
    let out = edit(&env, &["app.sealed.yaml", "-r", &other], "touch ran");
    out.exits_with(2, "would need two different keys");
    assert!(!env.path("ran").exists());
    // An object sealed to a key the keyring does not list, and no -r.
    env.write(
        ".gitseal/keys.yaml",
        &format!("version: 1\nenvironments:\n  dev:\n    recipients: [{other}]\n"),
    );
    let out = edit(&env, &["app.sealed.yaml"], "touch ran");
    out.exits_with(2, "which the keyring does not list with a public key");
    assert_eq!(env.read("app.sealed.yaml"), before);
    // Naming the object's key works without a keyring entry.
    let out = edit(
        &env,
        &["app.sealed.yaml", "-r", &env.recipient],
        "sed -i 's/^  api: .*/  api: new-PLAINTEXT/' \"$1\"",
    );
    out.ok();
    assert_eq!(
        data_item(&unsealed(&env, "app.sealed.yaml"), 1, "api"),
        b"new-PLAINTEXT"
    );
}

fn update(env: &Env, cache: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        "seal",
        "-r",
        &env.recipient,
        "--update",
        "-f",
        "secret.yaml",
        "-o",
        "sealed.yaml",
    ];
    args.extend_from_slice(extra);
    env.cmd(&args).envs(&[("GITSEAL_CACHE_DIR", cache)]).out()
}

#[test]
fn seal_update_keeps_unchanged_values_byte_for_byte() {
    let env = Env::new();
    let cache = env.path("cache");
    env.write("secret.yaml", SECRET);
    // First seal (no file yet): everything sealed, and remembered.
    update(&env, &cache, &[]).exits_with(0, "kept 0 unchanged sealed value(s), sealed 3");
    let first = env.read("sealed.yaml");
    // Unchanged input: byte-identical output.
    update(&env, &cache, &[]).exits_with(0, "kept 3 unchanged sealed value(s), sealed 0");
    assert_eq!(env.read("sealed.yaml"), first);
    // One value changed: one line changes.
    env.write("secret.yaml", &SECRET.replace("user: admin", "user: root"));
    update(&env, &cache, &[]).exits_with(0, "kept 2 unchanged sealed value(s), sealed 1");
    let second = env.read("sealed.yaml");
    let changed: Vec<&str> = second.lines().filter(|l| !first.contains(*l)).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].trim_start().starts_with("user: gs1:"));
    let out = env.run(&["unseal", "-i", "key.txt", "-f", "sealed.yaml"]);
    assert_eq!(data_item(&out.stdout, 0, "user"), b"root");
    // Near misses: another key, or no cache (another machine): sealed anew.
    let other = env.keygen("other.txt");
    let out = update(&env, &cache, &["-r", &other]);
    out.exits_with(0, "kept 0 unchanged sealed value(s), sealed 3");
    env.write("sealed.yaml", &second);
    update(&env, &env.path("fresh-cache"), &[])
        .exits_with(0, "kept 0 unchanged sealed value(s), sealed 3");
    // The cache lives outside the repository and holds no plaintext.
    for entry in std::fs::read_dir(&cache).expect("ls") {
        let text = std::fs::read(entry.expect("entry").path()).expect("read");
        let text = String::from_utf8_lossy(&text);
        assert!(
            !text.contains("hunter2") && !text.contains("root"),
            "{text}"
        );
    }
    // --update needs -o.
    env.run(&[
        "seal",
        "-r",
        &env.recipient,
        "--update",
        "-f",
        "secret.yaml",
    ])
    .exits_with(2, "--output");
}
