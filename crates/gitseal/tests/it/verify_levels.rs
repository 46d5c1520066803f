//! `gitseal verify` confidence and context: text, JSON and SARIF carry both,
//! `--min-confidence` and `--exclude-context` leave findings out (and say
//! how many), nothing is dropped by default; baselines are keyed (version 2),
//! version 1 baselines still work with a warning, a bad one changes nothing.

use crate::support::Run;
use std::path::Path;
// `value`: random-looking text built at run time (no literal secret in the source).
use gitseal_test_support::fixtures::{token as value, write};

/// A test-fixture private key, a docs example password, a production one.
fn tree(d: &Path) -> Vec<String> {
    let prod = value(11, 24);
    let docs = value(12, 24);
    let mut key = format!("-----{} RSA PRIVATE KEY-----\n", "BEGIN");
    for i in 0..6 {
        key.push_str(&value(20 + i, 64));
        key.push('\n');
    }
    key.push_str(&format!("-----{} RSA PRIVATE KEY-----\n", "END"));
    write(
        d,
        "deploy/values.yaml",
        &format!("db:\n  password: {prod}\n"),
    );
    write(
        d,
        "docs/setup.md",
        &format!("Set `password: {docs}` in values.yaml.\n"),
    );
    write(d, "pkg/tls/testdata/key.pem", &key);
    vec![prod, docs, key[40..80].to_string()]
}

fn json(d: &Path, extra: &[&str], secrets: &[&str]) -> serde_json::Value {
    let mut args = vec!["verify", "--no-progress", "--format", "json"];
    args.extend_from_slice(extra);
    args.push(".");
    let out = Run::new(d, &args).no_secret_output(secrets).out();
    serde_json::from_str(&out.stdout).expect("json")
}

fn seen(v: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let mut all: Vec<_> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("path"), s("rule"), s("confidence"), s("context"))
        })
        .collect();
    all.sort();
    all
}

#[test]
fn text_report_shows_confidence_and_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let secrets = tree(d);
    let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let out = Run::new(d, &["verify", "--no-progress", "."])
        .no_secret_output(&s)
        .out();
    out.exits(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let want = [
        "deploy/values.yaml:2:13: generic-secret (low confidence, production): ",
        "docs/setup.md:1:16: generic-secret (low confidence, docs): ",
        "pkg/tls/testdata/key.pem:1:1: private-key (high confidence, test): ",
    ];
    for (line, want) in lines.iter().zip(want) {
        assert!(
            line.starts_with(want),
            "{line:?} does not start with {want:?}"
        );
        assert!(line.ends_with("[…]"), "{line}");
    }
    assert!(
        out.stderr.contains("3 findings in 3 files"),
        "{}",
        out.stderr
    );
}

#[test]
fn findings_carry_confidence_and_context_and_can_be_filtered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let secrets = tree(d);
    let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let t = |a: &str, b: &str, c: &str, e: &str| (a.into(), b.into(), c.into(), e.into());
    // Nothing dropped by default: the fixture key is there, as a test.
    let all = json(d, &[], &s);
    assert_eq!(
        seen(&all),
        vec![
            t("deploy/values.yaml", "generic-secret", "low", "production"),
            t("docs/setup.md", "generic-secret", "low", "docs"),
            t("pkg/tls/testdata/key.pem", "private-key", "high", "test"),
        ]
    );
    assert_eq!(all["summary"]["filtered"], 0);
    let high = json(d, &["--min-confidence", "high"], &s);
    assert_eq!(
        seen(&high),
        vec![t("pkg/tls/testdata/key.pem", "private-key", "high", "test")]
    );
    assert_eq!(high["summary"]["filtered"], 2);
    let prod = json(d, &["--exclude-context", "test,docs"], &s);
    assert_eq!(
        seen(&prod),
        vec![t(
            "deploy/values.yaml",
            "generic-secret",
            "low",
            "production"
        )]
    );
    // Both filters: nothing left, exit 0, and the summary says why.
    let out = Run::new(
        d,
        &[
            "verify",
            "--no-progress",
            "--min-confidence",
            "medium",
            "--exclude-context",
            "test",
            ".",
        ],
    )
    .no_secret_output(&s)
    .out();
    out.ok();
    assert!(
        out.stderr
            .contains("3 below --min-confidence or in an --exclude-context"),
        "{}",
        out.stderr
    );
    // SARIF levels follow confidence and context.
    let out = Run::new(d, &["verify", "--no-progress", "--format", "sarif", "."])
        .no_secret_output(&s)
        .out();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("sarif");
    let mut levels: Vec<(String, String)> = v["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r["level"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    levels.sort();
    assert_eq!(
        levels,
        vec![
            ("deploy/values.yaml".into(), "warning".into()),
            ("docs/setup.md".into(), "note".into()),
            ("pkg/tls/testdata/key.pem".into(), "warning".into()),
        ]
    );
    // A bad level is a usage error.
    Run::new(d, &["verify", "--min-confidence", "sure", "."])
        .out()
        .exits(2);
}

#[test]
fn baselines_are_keyed_and_old_ones_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let secrets = tree(d);
    let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
    Run::new(
        d,
        &["verify", "--no-progress", "--write-baseline", "b.json", "."],
    )
    .no_secret_output(&s)
    .out()
    .ok();
    let text = std::fs::read_to_string(d.join("b.json")).expect("baseline");
    let b: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(b["version"], 2);
    assert_eq!(b["findings"].as_array().map(Vec::len), Some(3));
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()));
    }
    // Everything baselined: clean, and the JSON fingerprints match the file.
    let v = json(d, &["--baseline", "b.json"], &s);
    assert_eq!(v["summary"]["allowed_baseline"], 3);
    // A new secret is reported, with a fingerprint keyed by the baseline.
    let new = value(13, 24);
    write(d, "deploy/other.yaml", &format!("token: {new}\n"));
    let v = json(d, &["--baseline", "b.json"], &[&new]);
    assert_eq!(v["findings"].as_array().map(Vec::len), Some(1));
    let fp = v["findings"][0]["fingerprint"]
        .as_str()
        .expect("fingerprint");
    assert_eq!(fp.len(), 32);
    assert!(!text.contains(fp));

    // A version 1 baseline (unkeyed) still silences, with a warning.
    std::fs::remove_file(d.join("deploy/other.yaml")).expect("rm");
    write(d, "old.json", "{\"version\": 1, \"findings\": []}\n");
    let out = Run::new(
        d,
        &["verify", "--no-progress", "--baseline", "old.json", "."],
    )
    .no_secret_output(&s)
    .out();
    out.exits(1);
    assert!(
        out.stderr.contains("old.json is a version 1 baseline")
            && out.stderr.contains("rewrite it"),
        "{}",
        out.stderr
    );
    // A broken baseline is an error (exit 2) and is left as it was.
    write(
        d,
        "bad.json",
        "{\"version\": 2, \"salt\": \"zz\", \"findings\": []}\n",
    );
    let out = Run::new(
        d,
        &["verify", "--no-progress", "--baseline", "bad.json", "."],
    )
    .out();
    out.exits(2);
    assert!(
        out.stderr
            .contains("version 2 needs a `salt` of 64 hex digits"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(d.join("bad.json")).expect("read"),
        "{\"version\": 2, \"salt\": \"zz\", \"findings\": []}\n"
    );
}
