//! Test support for checking the files gitseal ships around the controller
//! (`deploy/`, the Helm chart, the Argo CD health check, `docs/gitops.md`)
//! with the tools users run them with, not with a re-implementation:
//! `kubectl` (and the kustomize built into it), Helm's own Go engine (the
//! PyPI package `helm-python-sdk`, driven by `scripts/helm-render.py`), and
//! a real Lua 5.1 interpreter for Argo CD's health check.
//!
//! `scripts/gitops-tools.sh` installs those tools; a missing tool fails the
//! test that needs it with that hint, it never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A tool from `$VAR` if set and not empty, else `name` on `PATH`. Panics
/// with the install hint when it is missing.
pub fn tool(name: &str, var: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` was not found (set {var} or put it on PATH): run scripts/gitops-tools.sh, \
             which installs kubectl, lua5.1 and the Python packages these tests use"
        )
    })
}

/// `python3` (or `$PYTHON`).
pub fn python() -> PathBuf {
    tool("python3", "PYTHON")
}

/// Runs `cmd` with `stdin` as its input; panics with its stderr unless it
/// exits 0. Returns stdout.
pub fn run_ok(cmd: &mut Command, stdin: &[u8]) -> String {
    let out = run(cmd, stdin);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tool output is UTF-8")
}

/// Runs `cmd` with `stdin` as its input and returns what it did.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().expect("the tool ran");
    writer.join().expect("stdin writer").expect("stdin written");
    out
}

/// Parses a multi-document YAML stream into JSON values, skipping empty
/// documents (as kubectl does).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// `kubectl kustomize DIR`: the objects a kustomization builds.
pub fn kustomize(dir: &Path) -> Vec<Value> {
    let kubectl = tool("kubectl", "KUBECTL");
    let out = run_ok(Command::new(kubectl).arg("kustomize").arg(dir), b"");
    yaml_documents(&out)
}

/// Renders the Helm chart at `chart` with Helm's engine and `values`
/// (merged over the chart's values.yaml), as release `release` in
/// `namespace`. Returns the objects in the order of the template files.
pub fn helm_template(chart: &Path, values: &Value, release: &str, namespace: &str) -> Vec<Value> {
    let out = helm_template_raw(chart, values, release, namespace);
    assert!(
        out.status.success(),
        "helm template failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_documents(&String::from_utf8(out.stdout).expect("UTF-8"))
}

/// Like [`helm_template`], but returns the process result (for values the
/// chart must refuse).
pub fn helm_template_raw(chart: &Path, values: &Value, release: &str, namespace: &str) -> Output {
    let script = repo_root().join("scripts/helm-render.py");
    run(
        Command::new(python())
            .arg(script)
            .arg("template")
            .arg(chart)
            .args([
                "--release",
                release,
                "--namespace",
                namespace,
                "--values",
                "-",
            ]),
        values.to_string().as_bytes(),
    )
}

/// A Lua 5.1 expression for a JSON value: objects become tables with
/// string keys, arrays 1-based sequences, `null` is left out (as Argo CD's
/// conversion of an object leaves it `nil`). Strings use decimal escapes
/// for every byte outside printable ASCII, so any text round-trips.
pub fn to_lua(value: &Value) -> String {
    let mut out = String::new();
    write_lua(value, &mut out);
    out
}

fn write_lua(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => lua_string(s, out),
        Value::Array(items) => {
            out.push('{');
            for item in items {
                write_lua(item, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (k, v) in map.iter().filter(|(_, v)| !v.is_null()) {
                out.push('[');
                lua_string(k, out);
                out.push_str("]=");
                write_lua(v, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

fn lua_string(s: &str, out: &mut String) {
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
}

/// `kubernetes-validate --strict` (the Kubernetes OpenAPI schemas shipped in
/// the PyPI package, offline) on `objects`; panics with its report unless
/// every object passes. Kinds it has no schema for (custom resources) are
/// returned as `apiVersion/kind`, for the caller to check otherwise.
pub fn kubernetes_validate(objects: &[Value]) -> Vec<String> {
    let stream: Vec<String> = objects.iter().map(Value::to_string).collect();
    let out = run(
        Command::new(tool("kubernetes-validate", "KUBERNETES_VALIDATE"))
            .args(["--strict", "-k", "1.32.0", "-"]),
        stream.join("\n---\n").as_bytes(),
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = report
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    let unknown: Vec<String> = report
        .lines()
        .filter_map(|l| {
            let rest = l.split_once("Couldn't find schema for kind ")?.1;
            let (kind, rest) = rest.split_once(" with api version ")?;
            let (api, _) = rest.split_once(" for kubernetes")?;
            Some(format!("{api}/{kind}"))
        })
        .collect();
    assert!(
        out.status.success() && passed + unknown.len() == objects.len(),
        "not every object validates ({passed} passed of {}):\n{report}",
        objects.len()
    );
    unknown
}
