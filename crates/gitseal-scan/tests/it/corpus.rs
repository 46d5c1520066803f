//! The generated corpus of `scripts/gen-corpus.py` (repository-like text
//! with the non-secrets real repositories are full of, and ~30 planted fake
//! credentials at known lines) as a regression test: every planted secret
//! is found at its line, and nothing else is. It is not the measure of
//! `verify` (the rules and the generator were written by the same people;
//! docs/performance.md measures on public repositories), only a guard that
//! a change to the rules loses nothing the generator covers.

use crate::scanner;
use std::path::Path;

#[test]
fn generated_corpus_all_planted_found_nothing_else() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let corpus = dir.path().join("corpus");
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let status = std::process::Command::new(python)
        .arg(root.join("scripts/gen-corpus.py"))
        .arg(&corpus)
        .arg("3")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("python3 runs: {e}"));
    assert!(status.success());
    let expected: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(dir.path().join("expected.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(expected.len() >= 30, "{}", expected.len());

    let out = scanner()
        .scan_paths(std::slice::from_ref(&corpus), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let prefix = format!("{}/", corpus.display());
    let mut found = vec![false; expected.len()];
    let mut other = Vec::new();
    for f in &out.findings {
        let path = f.path.strip_prefix(&prefix).unwrap_or(&f.path);
        let hit = expected.iter().position(|e| {
            e["path"] == path
                && e["line"].as_u64().is_some_and(|l| l as usize <= f.line)
                && e["end_line"].as_u64().is_some_and(|l| f.line <= l as usize)
        });
        match hit {
            Some(i) => found[i] = true,
            None => other.push(format!("{path}:{}: {}", f.line, f.rule)),
        }
    }
    let missed: Vec<&serde_json::Value> = expected
        .iter()
        .zip(&found)
        .filter(|(_, f)| !**f)
        .map(|(e, _)| &e["kind"])
        .collect();
    assert!(missed.is_empty(), "missed: {missed:?}");
    assert!(other.is_empty(), "other findings: {other:?}");
}
