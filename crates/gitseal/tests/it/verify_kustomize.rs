//! `gitseal verify` on files read by kustomize secretGenerators: the exit
//! code, the text and JSON reports (never the values), the baseline, and
//! `--staged` in a pre-commit situation (the kustomization is already
//! committed, the env file is what the commit adds).

use crate::support::Run;
// `value`: random-looking text built at run time (no literal secret in the source).
use gitseal_test_support::fixtures::{token as value, write};
use gitseal_test_support::git::git;

const KUSTOMIZATION: &str =
    "resources:\n- deploy.yaml\nsecretGenerator:\n- name: db\n  envs:\n  - creds.env\n";

/// The text report of the one finding, on line `line` of deploy/creds.env:
/// the preview shows nothing of the value.
fn report_line(line: usize, pw: &str) -> String {
    assert!(pw.len() > 4);
    format!("deploy/creds.env:{line}:1: kustomize-secret-file (high confidence, production): {MESSAGE} […]\n")
}

const MESSAGE: &str = "plaintext `DB_PASSWORD` is read by secretGenerator `db` (envs) of deploy/kustomization.yaml: seal it with `gitseal seal`, then delete this file and remove it from Git history";

#[test]
fn verify_reports_env_files_of_secret_generators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pw = value(1, 24);
    write(d, "deploy/kustomization.yaml", KUSTOMIZATION);
    write(
        d,
        "deploy/creds.env",
        &format!("# filled by hand\nDB_USER=\nDB_PASSWORD={pw}\n"),
    );

    let out = Run::new(d, &["verify", "--no-progress", "."])
        .no_secret_output(&[&pw])
        .out();
    out.exits(1);
    assert_eq!(out.stdout, report_line(3, &pw));

    let out = Run::new(d, &["verify", "--no-progress", "--format", "json", "."])
        .no_secret_output(&[&pw])
        .out();
    out.exits(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["findings"][0]["rule"], "kustomize-secret-file");
    assert_eq!(v["findings"][0]["path"], "deploy/creds.env");
    assert_eq!(v["findings"][0]["line"], 3);
    assert_eq!(v["findings"].as_array().map(Vec::len), Some(1));

    let out = Run::new(d, &["verify", "--no-progress", "--format", "sarif", "."])
        .no_secret_output(&[&pw])
        .out();
    out.exits(1);
    assert!(out.stdout.contains("\"ruleId\": \"kustomize-secret-file\""));

    // The baseline accepts it; a new value in the file is a new finding.
    Run::new(
        d,
        &["verify", "--no-progress", "--write-baseline", "b.json", "."],
    )
    .out()
    .ok();
    Run::new(d, &["verify", "--no-progress", "--baseline", "b.json", "."])
        .out()
        .ok();
    let rotated = value(2, 24);
    write(
        d,
        "deploy/creds.env",
        &format!("DB_USER=\nDB_PASSWORD={rotated}\n"),
    );
    Run::new(d, &["verify", "--no-progress", "--baseline", "b.json", "."])
        .no_secret_output(&[&rotated])
        .out()
        .exits(1);

    // Generated at deploy time instead: nothing committed, nothing found.
    std::fs::remove_file(d.join("deploy/creds.env")).expect("rm");
    Run::new(d, &["verify", "--no-progress", "."]).out().ok();
}

#[test]
fn verify_staged_catches_an_added_env_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    write(d, "deploy/kustomization.yaml", KUSTOMIZATION);
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "app"]);

    let pw = value(3, 24);
    write(d, "deploy/creds.env", &format!("DB_PASSWORD={pw}\n"));
    git(d, &["add", "deploy/creds.env"]);
    let out = Run::new(d, &["verify", "--no-progress", "--staged"])
        .no_secret_output(&[&pw])
        .out();
    out.exits(1);
    assert_eq!(out.stdout, report_line(1, &pw));
}
