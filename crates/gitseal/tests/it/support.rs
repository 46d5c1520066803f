//! Running the binary: one place that starts `gitseal`, captures what it
//! printed, checks that no plaintext or private key leaked into it, and
//! asserts exit codes and messages, so each test says only what it checks.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_gitseal");

/// Plaintexts used in tests; no stderr may ever contain one.
pub const PLAINTEXTS: &[&str] = &["hunter2-PLAINTEXT", "s3cr3t-T0KEN"];

/// Whether `text` holds private key material (`AGE-SECRET-KEY-1` followed
/// by key characters; the bare prefix in a hint is fine).
pub fn shows_identity(text: &str) -> bool {
    text.match_indices("AGE-SECRET-KEY-1").any(|(i, m)| {
        text[i + m.len()..]
            .chars()
            .take(10)
            .filter(|c| c.is_ascii_alphanumeric())
            .count()
            >= 10
    })
}

/// What one run printed and how it ended.
pub struct Out {
    /// The exit code; -1 when killed by a signal.
    pub code: i32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts exit code 0 (showing stderr otherwise).
    #[track_caller]
    pub fn ok(&self) -> &Out {
        self.exits(0)
    }

    /// Asserts exit code `code` (showing stderr otherwise).
    #[track_caller]
    pub fn exits(&self, code: i32) -> &Out {
        assert_eq!(self.code, code, "{}", self.stderr);
        self
    }

    /// Asserts exit code `code` and that stderr contains `message`.
    #[track_caller]
    pub fn exits_with(&self, code: i32, message: &str) -> &Out {
        self.exits(code);
        assert!(
            self.stderr.contains(message),
            "expected {message:?} in {}",
            self.stderr
        );
        self
    }
}

/// One run of the binary in a directory, set up with the builder methods
/// and started by [`Run::out`].
pub struct Run {
    command: Command,
    stdin: Option<Vec<u8>>,
    /// Strings that may appear neither on stdout nor on stderr.
    secrets: Vec<String>,
}

impl Run {
    pub fn new(dir: &Path, args: &[&str]) -> Run {
        let mut command = Command::new(BIN);
        command.args(args).current_dir(dir);
        Run {
            command,
            stdin: None,
            secrets: Vec::new(),
        }
    }

    /// Bytes for standard input (default: empty).
    pub fn stdin(mut self, input: &[u8]) -> Run {
        self.stdin = Some(input.to_vec());
        self
    }

    /// Adds environment variables.
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(mut self, vars: &[(K, V)]) -> Run {
        for (k, v) in vars {
            self.command.env(k, v);
        }
        self
    }

    /// Removes environment variables inherited from the test process.
    pub fn env_remove(mut self, names: &[&str]) -> Run {
        for name in names {
            self.command.env_remove(name);
        }
        self
    }

    /// No Vault settings from the caller's environment: `VAULT_ADDR` and
    /// `VAULT_TOKEN` unset, and `HOME` (where `~/.vault-token` lives) set to
    /// `home`.
    pub fn without_vault_env(self, home: &Path) -> Run {
        self.env_remove(&["VAULT_ADDR", "VAULT_TOKEN"])
            .envs(&[("HOME", home)])
    }

    /// Also checks that neither stdout nor stderr shows any of
    /// [`PLAINTEXTS`] or `secrets` (for commands that must print no value).
    pub fn no_secret_output(mut self, secrets: &[&str]) -> Run {
        self.secrets = PLAINTEXTS
            .iter()
            .chain(secrets)
            .map(|s| s.to_string())
            .collect();
        self
    }

    /// Runs to the end. Checks that stderr shows no plaintext of
    /// [`PLAINTEXTS`] and no private key.
    pub fn out(mut self) -> Out {
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gitseal runs");
        {
            let mut pipe = child.stdin.take().expect("stdin");
            if let Some(input) = &self.stdin {
                // A command that fails before reading its input (bad usage)
                // closes the pipe early: that is its answer, not an error.
                if let Err(e) = pipe.write_all(input) {
                    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
                }
            }
        }
        let out = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for p in PLAINTEXTS {
            assert!(
                !stderr.contains(p),
                "stderr shows a plaintext ({p}): {stderr}"
            );
        }
        assert!(
            !shows_identity(&stderr),
            "stderr shows a private key: {stderr}"
        );
        let all = format!("{stdout}{stderr}");
        for p in &self.secrets {
            assert!(!all.contains(p), "output shows a secret ({p}): {all}");
        }
        Out {
            code: out.status.code().unwrap_or(-1),
            status: out.status,
            stdout,
            stderr,
        }
    }
}

pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let run = Run::new(dir, args);
    match stdin {
        Some(input) => run.stdin(input).out(),
        None => run.out(),
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub recipient: String,
}

impl Env {
    /// A temp dir with a key at key.txt.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = run_in(dir.path(), &["keygen", "-o", "key.txt"], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
        Env {
            recipient: out.stdout.trim().to_string(),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).expect("write");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read")
    }

    /// The names in the temp dir, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A run in the temp dir, to set up further (see [`Run`]).
    pub fn cmd(&self, args: &[&str]) -> Run {
        Run::new(self.dir.path(), args)
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.cmd(args).out()
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        self.cmd(args).stdin(stdin).out()
    }

    /// `gitseal seal -r RECIPIENT ARGS…` (to this env's key).
    pub fn seal(&self, args: &[&str]) -> Out {
        let mut all = vec!["seal", "-r", &self.recipient];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// `gitseal seal -r RECIPIENT ARGS…` with `stdin` on standard input.
    pub fn seal_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        let mut all = vec!["seal", "-r", &self.recipient];
        all.extend_from_slice(args);
        self.run_stdin(&all, stdin)
    }

    /// `gitseal keygen -o FILE`; returns the new recipient.
    pub fn keygen(&self, file: &str) -> String {
        self.run(&["keygen", "-o", file])
            .ok()
            .stdout
            .trim()
            .to_string()
    }
}

/// The permission bits of a file.
#[cfg(unix)]
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

/// Parses YAML (or JSON) text.
pub fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).expect("yaml")
}

pub fn decode(b64: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("base64")
}

/// The `data` item of document `doc` of a YAML or JSON Secret output.
pub fn data_item(text: &str, doc: usize, item: &str) -> Vec<u8> {
    let docs: Vec<serde_yaml::Value> = if text.trim_start().starts_with('{') {
        let v: serde_yaml::Value = serde_json::from_str(text).expect("json");
        match v.get("items").and_then(|i| i.as_sequence()) {
            Some(items) => items.clone(),
            None => vec![v],
        }
    } else {
        text.split("\n---\n").map(yaml).collect()
    };
    decode(docs[doc]["data"][item].as_str().expect("data item"))
}

pub use crate::yaml11_support::non_strings as yaml11_non_strings;
