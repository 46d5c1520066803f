//! Running the binary.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gitseal runs");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(input) = stdin {
            pipe.write_all(input).expect("write stdin");
        }
    }
    let out = child.wait_with_output().expect("wait");
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
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
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

    pub fn run(&self, args: &[&str]) -> Out {
        run_in(self.dir.path(), args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        run_in(self.dir.path(), args, Some(stdin))
    }
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
        text.split("\n---\n")
            .map(|d| serde_yaml::from_str(d).expect("yaml"))
            .collect()
    };
    decode(docs[doc]["data"][item].as_str().expect("data item"))
}
