//! The runner of the project's data-driven CLI cases, `tests/cmd/*.case`
//! (format: `tests/README.md`): one case per file, each in a fresh
//! directory with a key, every failure reported with its file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::support::*;

/// Where the cases are.
fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cmd")
}

/// A string field of a case, with `{recipient}` and `{key_id}` filled in.
fn text(case: &Value, field: &str, subst: &dyn Fn(&str) -> String) -> Option<String> {
    case.get(field).and_then(Value::as_str).map(subst)
}

/// A list of strings (`args`, `stderr_contains`…), filled in.
fn list(value: Option<&Value>, subst: &dyn Fn(&str) -> String) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(Value::as_str).map(subst).collect())
        .unwrap_or_default()
}

/// Runs one case; the problems found.
fn run_case(path: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let source = std::fs::read_to_string(path).expect("read case");
    let case: Value = match serde_yaml::from_str(&source) {
        Ok(v) => v,
        Err(e) => return vec![format!("not a valid case: {e}")],
    };
    let known = [
        "about",
        "before",
        "args",
        "stdin",
        "env",
        "files",
        "exit",
        "stdout",
        "stderr",
        "stdout_contains",
        "stderr_contains",
        "after",
    ];
    for key in case
        .as_mapping()
        .map(|m| m.keys().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if !key.as_str().is_some_and(|k| known.contains(&k)) {
            problems.push(format!("unknown field {key:?}"));
        }
    }
    if case.get("about").and_then(Value::as_str).is_none() {
        problems.push("no `about:` line saying what the case shows".into());
    }
    let env = Env::new();
    let key_id = env
        .recipient
        .parse::<gitseal_crypto::Recipient>()
        .expect("recipient")
        .key_id()
        .to_string();
    let recipient = env.recipient.clone();
    let subst = move |s: &str| {
        s.replace("{recipient}", &recipient)
            .replace("{key_id}", &key_id)
    };

    let mut before_files: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    if let Some(files) = case.get("files").and_then(Value::as_mapping) {
        for (name, content) in files {
            let (Some(name), Some(content)) = (name.as_str(), content.as_str()) else {
                problems.push(format!("files: {name:?} is not name: text"));
                continue;
            };
            let p = env.path(name);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).expect("mkdir");
            }
            std::fs::write(&p, subst(content)).expect("write");
        }
    }
    for step in case
        .get("before")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let args = list(Some(step), &subst);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&refs);
        if out.code != 0 {
            problems.push(format!(
                "before: {args:?} exited {}: {}",
                out.code, out.stderr
            ));
            return problems;
        }
    }
    if let Some(after) = case.get("after").and_then(Value::as_mapping) {
        for name in after.keys().filter_map(Value::as_str) {
            before_files.insert(name.to_string(), std::fs::read(env.path(name)).ok());
        }
    }

    let args = list(case.get("args"), &subst);
    if args.is_empty() {
        problems.push("no args".into());
        return problems;
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let vars: Vec<(String, String)> = case
        .get("env")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), subst(v.as_str()?))))
                .collect()
        })
        .unwrap_or_default();
    let mut run = env
        .cmd(&refs)
        .envs(&vars)
        .env_remove(&["GITSEAL_CACHE_DIR"])
        .envs(&[("HOME", env.dir.path())])
        .no_secret_output(&["hunter2"]);
    if let Some(stdin) = text(&case, "stdin", &subst) {
        run = run.stdin(stdin.as_bytes());
    }
    let out = run.out();

    match case.get("exit").and_then(Value::as_i64) {
        Some(code) if i64::from(out.code) != code => problems.push(format!(
            "exit {} (expected {code}); stderr: {}",
            out.code, out.stderr
        )),
        Some(_) => {}
        None => problems.push("no `exit:`".into()),
    }
    for (stream, got) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some(want) = text(&case, stream, &subst) {
            if *got != want {
                problems.push(format!("{stream} is {got:?}, expected {want:?}"));
            }
        }
        for fragment in list(case.get(format!("{stream}_contains").as_str()), &subst) {
            if !got.contains(&fragment) {
                problems.push(format!("{stream} lacks {fragment:?}: {got:?}"));
            }
        }
    }
    if let Some(after) = case.get("after").and_then(Value::as_mapping) {
        for (name, want) in after {
            let Some(name) = name.as_str() else { continue };
            let now = std::fs::read(env.path(name)).ok();
            let ok = match want {
                Value::Null => now.is_none(),
                Value::String(s) if s == "unchanged" => {
                    now.is_some() && before_files.get(name).cloned().flatten() == now
                }
                Value::String(s) => now.as_deref() == Some(subst(s).as_bytes()),
                _ => false,
            };
            if !ok {
                problems.push(format!("after: {name} is not {want:?}"));
            }
        }
    }
    problems
}

#[test]
fn data_driven_cli_cases() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/cmd")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 15, "the cases are gone: {paths:?}");
    let failures: Vec<String> = paths
        .iter()
        .flat_map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            run_case(p)
                .into_iter()
                .map(move |problem| format!("{name}: {problem}"))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
