//! Reading YAML with PyYAML (a YAML 1.1 reader, as kubectl's Go yaml.v2)
//! through `tests/tools/yaml11.py`, shared by the manifest and CLI tests
//! (feature `yaml11`). `scripts/pyyaml.sh` installs
//! PyYAML; without it these helpers fail, never skip.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The node types of a value, as `tests/tools/yaml11.py` prints PyYAML's.
#[allow(dead_code)] // (each test crate uses its own part of this file)
pub fn typed(v: &serde_yaml::Value) -> serde_json::Value {
    use serde_json::json;
    use serde_yaml::Value;
    match v {
        Value::Mapping(m) => {
            json!({"map": m.iter().map(|(k, v)| json!([typed(k), typed(v)])).collect::<Vec<_>>()})
        }
        Value::Sequence(s) => json!({"seq": s.iter().map(typed).collect::<Vec<_>>()}),
        Value::String(s) => json!({ "str": s }),
        Value::Bool(b) => json!({"bool": if *b { "True" } else { "False" }}),
        Value::Number(n) if n.is_f64() => json!({ "float": n.to_string() }),
        Value::Number(n) => json!({ "int": n.to_string() }),
        Value::Null => json!({"NoneType": "None"}),
        Value::Tagged(t) => typed(&t.value),
    }
}

/// What PyYAML reads from `text`, typed (one entry per document).
pub fn pyyaml(text: &str) -> Vec<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/tools/yaml11.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} does not run ({e}); run scripts/pyyaml.sh"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "PyYAML cannot read it (run scripts/pyyaml.sh if it is missing): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The scalars PyYAML reads from `text` as something other than a string,
/// as `TYPE: TEXT` lines.
#[allow(dead_code)] // (each test crate uses its own part of this file)
pub fn non_strings(text: &str) -> Vec<String> {
    fn walk(node: &serde_json::Value, out: &mut Vec<String>) {
        match node {
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(o) => {
                for (ty, inner) in o {
                    match ty.as_str() {
                        "map" | "seq" => walk(inner, out),
                        "str" => {}
                        other => out.push(format!("{other}: {inner}")),
                    }
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    for doc in pyyaml(text) {
        walk(&doc, &mut found);
    }
    found
}
