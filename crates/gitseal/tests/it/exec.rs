//! `gitseal exec` through the binary: variable names, values reaching the
//! command (compared inside the command, so no plaintext is printed), exit
//! codes, bad identities, and Vault items read from a real OpenBao dev
//! server (skipped with a note without `bao`, except under `CI`).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_gitseal");
const PW: &str = "hunter2-PLAINTEXT";
const TOKEN: &str = "s3cr3t-T0KEN";
const VAULT_PW: &str = "vault-PLAINTEXT-42";
const ROOT_TOKEN: &str = "gitseal-exec-root-token-51c0";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A temp dir with key.txt, other-key.txt and sealed.yaml (SealedSecret
    /// `app` in namespace `team` with items `db-password` and `api.token`).
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let out = env.gitseal(&["keygen", "-o", "key.txt"], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let recipient = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let out = env.gitseal(&["keygen", "-o", "other-key.txt"], &[]);
        assert!(out.status.success());
        env.write(
            "secret.yaml",
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: app, namespace: team}}\n\
                 stringData: {{db-password: {PW}, api.token: {TOKEN}}}\n"
            ),
        );
        let out = env.gitseal(
            &[
                "seal",
                "-r",
                &recipient,
                "-f",
                "secret.yaml",
                "-o",
                "sealed.yaml",
            ],
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::remove_file(env.path("secret.yaml")).expect("rm plaintext");
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write");
    }

    /// Adds `spec.vaultData` to sealed.yaml, written as `name`.
    fn with_vault(&self, name: &str, vault_data: Value, keep_sealed: bool) {
        let text = std::fs::read_to_string(self.path("sealed.yaml")).expect("read");
        let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        let spec = doc.get_mut("spec").expect("spec");
        if !keep_sealed {
            spec.as_mapping_mut().expect("map").remove("encryptedData");
        }
        spec.as_mapping_mut().expect("map").insert(
            "vaultData".into(),
            serde_yaml::to_value(vault_data).expect("value"),
        );
        self.write(name, &serde_yaml::to_string(&doc).expect("yaml"));
    }

    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Runs gitseal in the temp dir with `vars` added; checks that no
    /// plaintext appears on stdout or stderr.
    fn gitseal(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env("HOME", self.dir.path())
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("gitseal runs");
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        for p in [PW, TOKEN, VAULT_PW, ROOT_TOKEN] {
            assert!(!all.contains(p), "output shows a secret ({p}): {all}");
        }
        out
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
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
    let env = Env::new();
    env.with_vault(
        "mixed.yaml",
        json!({"db-url": {"mount": "secret", "path": "team/db", "field": "url"}}),
        true,
    );
    // No identity, and a Vault address where nothing listens: not needed.
    let out = env.gitseal(
        &["exec", "-f", "mixed.yaml", "--dry-run"],
        &[("VAULT_ADDR", "http://127.0.0.1:1"), ("VAULT_TOKEN", "x")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "API_TOKEN\nDB_PASSWORD\nDB_URL\n"
    );
    let out = env.gitseal(
        &["exec", "-f", "sealed.yaml", "--prefix", "APP_", "--dry-run"],
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "APP_API_TOKEN\nAPP_DB_PASSWORD\n"
    );
}

#[test]
fn values_reach_the_command_and_nothing_is_written() {
    let env = Env::new();
    let before = env.listing();
    let expect = [("EXPECT_PW", PW), ("EXPECT_TOKEN", TOKEN)];
    let script = check(&[("DB_PASSWORD", "EXPECT_PW"), ("API_TOKEN", "EXPECT_TOKEN")]);
    let out = env.gitseal(
        &[
            "exec",
            "-i",
            "key.txt",
            "-f",
            "sealed.yaml",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &expect,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    // The comparison is live: a wrong expectation fails.
    let out = env.gitseal(
        &[
            "exec",
            "-i",
            "key.txt",
            "-f",
            "sealed.yaml",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[("EXPECT_PW", "wrong"), ("EXPECT_TOKEN", TOKEN)],
    );
    assert_eq!(out.status.code(), Some(1));
    // With a prefix; an existing variable of that name is overridden.
    let script = check(&[
        ("APP_DB_PASSWORD", "EXPECT_PW"),
        ("APP_API_TOKEN", "EXPECT_TOKEN"),
    ]);
    let out = env.gitseal(
        &[
            "exec",
            "-i",
            "key.txt",
            "-f",
            "sealed.yaml",
            "--prefix",
            "APP_",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[expect[0], expect[1], ("APP_DB_PASSWORD", "stale")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.listing(), before, "no file was written");
}

#[test]
fn the_commands_exit_status_passes_through() {
    let env = Env::new();
    let run = |script: &str| {
        env.gitseal(
            &[
                "exec",
                "-i",
                "key.txt",
                "-f",
                "sealed.yaml",
                "--",
                "sh",
                "-c",
                script,
            ],
            &[],
        )
    };
    assert_eq!(run("exit 42").status.code(), Some(42));
    assert_eq!(run("exit 0").status.code(), Some(0));
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        let out = run("kill -TERM $$");
        assert_eq!(out.status.signal(), Some(15));
        // As a shell sees it: 128 + 15.
        let line =
            format!("'{BIN}' exec -i key.txt -f sealed.yaml -- sh -c 'kill -TERM $$'; echo $?");
        let out = Command::new("sh")
            .args(["-c", &line])
            .current_dir(env.dir.path())
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "143");
    }
    // Arguments starting with '-' belong to the command.
    let out = env.gitseal(
        &[
            "exec",
            "-i",
            "key.txt",
            "-f",
            "sealed.yaml",
            "--",
            "sh",
            "-c",
            "exit 7",
            "-x",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(7));
    let out = env.gitseal(
        &[
            "exec",
            "-i",
            "key.txt",
            "-f",
            "sealed.yaml",
            "--",
            "./no-such-command",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("command not found: ./no-such-command"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_identity_or_input_runs_nothing() {
    let env = Env::new();
    let touch = ["--", "touch", "ran"];
    let with = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&touch);
        env.gitseal(&a, &[])
    };
    let out = with(&["-i", "other-key.txt", "-f", "sealed.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sealed to key id(s)"),
        "{}",
        stderr(&out)
    );
    // No identity at all for sealed items.
    let out = with(&["-f", "sealed.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("give the identity that opens them with -i FILE"),
        "{}",
        stderr(&out)
    );
    // A value moved to another namespace does not open.
    let moved = std::fs::read_to_string(env.path("sealed.yaml"))
        .expect("read")
        .replace("namespace: team", "namespace: elsewhere");
    env.write("moved.yaml", &moved);
    let out = with(&["-i", "key.txt", "-f", "moved.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Not a SealedSecret; a bad prefix.
    env.write(
        "plain.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let out = with(&["-i", "key.txt", "-f", "plain.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is a ConfigMap, not a SealedSecret"),
        "{}",
        stderr(&out)
    );
    let out = with(&["-i", "key.txt", "-f", "sealed.yaml", "--prefix", "A-"]);
    assert_eq!(out.status.code(), Some(2));
    // Two items with the same variable name.
    env.with_vault(
        "collide.yaml",
        json!({"db_password": {"mount": "secret", "path": "team/db", "field": "pw"}}),
        true,
    );
    let out = with(&["-i", "key.txt", "-f", "collide.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("item \"db-password\" and collide.yaml, document 1")
            && stderr(&out).contains("item \"db_password\" both become the variable DB_PASSWORD"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("ran").exists(), "the command must not run");
}

// ---------------------------------------------------------------------------
// Vault items, against a real OpenBao dev server.

struct Bao {
    child: Child,
    port: u16,
    _home: tempfile::TempDir,
}

impl Bao {
    fn start() -> Option<Bao> {
        let bin = std::env::var_os("BAO_BIN")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join("bao"))
                        .find(|p| p.is_file())
                })
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "the OpenBao `bao` binary was not found (BAO_BIN, PATH; scripts/openbao.sh installs it)"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "note: `bao` not found (run scripts/openbao.sh); skipping this Vault test"
                );
            }
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let home = tempfile::tempdir().expect("home");
        let child = Command::new(bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .env("HOME", home.path())
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bao");
        let bao = Bao {
            child,
            port,
            _home: home,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while bao.api("GET", "sys/health", None).0 != 200 {
            assert!(Instant::now() < deadline, "bao not healthy after 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(bao)
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A root-token request; (status, JSON body). Status 0: no connection.
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, Value::Null);
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} /v1/{path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Vault-Token: {ROOT_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if s.write_all(req.as_bytes()).is_err() {
            return (0, Value::Null);
        }
        let mut buf = String::new();
        if s.read_to_string(&mut buf).is_err() {
            return (0, Value::Null);
        }
        let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn vault_items_are_read_with_the_users_token() {
    let Some(mut bao) = Bao::start() else { return };
    // Right after start the dev server's `secret/` mount may still be
    // upgrading to KV v2 (HTTP 400 "Upgrading ..."): retry that only.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = json!({"data": {"password": VAULT_PW, "user": "app"}});
        let (s, v) = bao.api("POST", "secret/data/team/db", Some(body));
        if s == 200 {
            break;
        }
        assert!(
            v.to_string().contains("Upgrading") && Instant::now() < deadline,
            "{s}: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let env = Env::new();
    env.with_vault(
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
    let out = env.gitseal(
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
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The token may come from ~/.vault-token (HOME is the temp dir).
    env.write(".vault-token", ROOT_TOKEN);
    env.with_vault(
        "vault-only.yaml",
        json!({"pw": {"mount": "secret", "path": "team/db", "field": "password"}}),
        false,
    );
    let out = env.gitseal(
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
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::remove_file(env.path(".vault-token")).expect("rm");

    // A missing path: exit 4, says where, runs nothing.
    env.with_vault(
        "missing.yaml",
        json!({"pw": {"mount": "secret", "path": "team/nothing", "field": "password"}}),
        false,
    );
    let out = env.gitseal(&["exec", "-f", "missing.yaml", "--", "touch", "ran"], &vars);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "missing.yaml, document 1 (line 1), item \"pw\" (secret/team/nothing#password): Vault secret secret/team/nothing not found"
        ),
        "{}",
        stderr(&out)
    );

    // Vault stopped: exit 4 (unavailable), runs nothing.
    bao.stop();
    let out = env.gitseal(
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
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("Vault at {addr} is unavailable")),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("ran").exists());

    // No token anywhere: the login fails (exit 4) with a hint.
    let out = env.gitseal(
        &["exec", "-f", "vault-only.yaml", "--", "true"],
        &[("VAULT_ADDR", addr.as_str())],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Vault login with token auth failed: cannot read token file")
            && stderr(&out)
                .ends_with("; set VAULT_TOKEN or log in with `vault login` / `bao login`\n"),
        "{}",
        stderr(&out)
    );
}
