//! Inline allow comments, baselines and path ignores.

use crate::{checksummed, rand_str, rule_ids, scan, scanner, ALNUM};
use gitseal_scan::{Baseline, Config, Error, PathFilter, Scanner};
use std::path::{Path, PathBuf};

#[test]
fn inline_allow_on_line_and_line_before() {
    let tok = checksummed("ghp_", 50);
    let text = format!(
        "a = {tok} # gitseal:allow revoked test token\n# gitseal:allow fixture for docs\nb = {tok}\n\nc = {tok}\n"
    );
    let out = scanner().scan_bytes("x.txt", text.as_bytes());
    assert_eq!(rule_ids(&out), vec!["github-token"]);
    assert_eq!(out[0].line, 5);
}

#[test]
fn inline_allow_counted_in_summary() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tok = checksummed("ghp_", 51);
    std::fs::write(
        dir.path().join("a.txt"),
        format!("x = {tok} # gitseal:allow\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = scanner()
        .scan_paths(&[dir.path().to_path_buf()], None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.findings.is_empty());
    assert_eq!(out.summary.allowed_inline, 1);
}

#[test]
fn baseline_survives_moved_lines_and_reports_new_findings() {
    let old = rand_str(52, 24, ALNUM);
    let before = format!("db:\n  password: {old}\n");
    let findings = scan("values.yaml", &before);
    assert_eq!(findings.len(), 1);
    let text = Baseline::to_json(&findings);
    assert!(!text.contains(&old), "baseline must not hold the secret");
    let baseline = Baseline::from_json(&text, "b.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(baseline.len(), 1);

    // The same secret moved down two lines, plus a new one.
    let new = rand_str(53, 24, ALNUM);
    let after = format!("# moved\n\ndb:\n  password: {old}\n  token: {new}\n");
    let mut out = gitseal_scan::ScanOutput {
        findings: scan("values.yaml", &after),
        ..Default::default()
    };
    assert_eq!(out.findings.len(), 2);
    baseline.apply(&mut out);
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].line, 5);
    assert_eq!(out.summary.allowed_baseline, 1);
}

#[test]
fn digest_depends_on_rule_path_and_secret_only() {
    let v = rand_str(54, 24, ALNUM);
    let a = scan("a.yaml", &format!("password: {v}\n"));
    let b = scan("a.yaml", &format!("\n\n  password: {v}\n"));
    let c = scan("b.yaml", &format!("password: {v}\n"));
    assert_eq!(a[0].digest, b[0].digest);
    assert_ne!(a[0].digest, c[0].digest);
    // Keyed by one baseline's salt, fingerprints follow the digest.
    let key = gitseal_scan::FingerprintKey::generate();
    let fp = |f: &gitseal_scan::Finding| key.fingerprint(&f.digest);
    assert_eq!(fp(&a[0]), fp(&b[0]));
    assert_ne!(fp(&a[0]), fp(&c[0]));
    assert_eq!(fp(&a[0]).len(), 32);
    // The digest never prints.
    assert_eq!(format!("{:?}", a[0].digest), "Digest(..)");
}

#[test]
fn bad_baselines_are_errors() {
    for (text, want) in [
        ("not json", "invalid baseline file b.json"),
        (
            "{\"version\": 7, \"findings\": []}",
            "version 7 is not supported",
        ),
        (
            "{\"version\": 1, \"findings\": [{\"fingerprint\": \"zz\"}]}",
            "is not 32 hex digits",
        ),
    ] {
        match Baseline::from_json(text, "b.json") {
            Err(e @ Error::Baseline { .. }) => assert!(e.to_string().contains(want), "{e}"),
            other => panic!("expected a baseline error, got {other:?}"),
        }
    }
    match Baseline::load(Path::new("/nonexistent/baseline.json")) {
        Err(Error::Io { .. }) => {}
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn path_filter_globs() {
    let root = PathBuf::from("/repo");
    let f = PathFilter::new(
        &[
            "tests/fixtures/**".to_string(),
            "*.lock".to_string(),
            "docs/".to_string(),
        ],
        Some(&root),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(f.is_ignored(Path::new("/repo/tests/fixtures/a/b.yaml")));
    assert!(f.is_ignored(Path::new("/repo/sub/Cargo.lock")));
    assert!(f.is_ignored(Path::new("/repo/docs/guide.md")));
    assert!(!f.is_ignored(Path::new("/repo/tests/it/main.rs")));
    assert!(!f.is_ignored(Path::new("/repo/src/fixtures.rs")));
    assert!(f.is_ignored_repo_path("tests/fixtures/x.env"));
    match PathFilter::new(&["a/[".to_string()], None) {
        Err(e @ Error::Glob { .. }) => assert!(e.to_string().contains("a/[")),
        other => panic!("expected a glob error, got {other:?}"),
    }
}

#[test]
fn walker_skips_ignored_binary_gitignored_and_large_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let tok = checksummed("ghp_", 55);
    let write = |p: &str, data: &[u8]| {
        let p = d.join(p);
        std::fs::create_dir_all(p.parent().unwrap_or(d)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(p, data).unwrap_or_else(|e| panic!("{e}"));
    };
    write("found.txt", format!("t={tok}\n").as_bytes());
    write("fixtures/skip.txt", format!("t={tok}\n").as_bytes());
    write(".gitignore", b"ignored.txt\n");
    write("ignored.txt", format!("t={tok}\n").as_bytes());
    write("bin.dat", format!("\0\0t={tok}\n").as_bytes());
    write(
        "big.txt",
        format!("{}\nt={tok}\n", "a".repeat(5000)).as_bytes(),
    );
    write(".git/config", format!("t={tok}\n").as_bytes());
    write(".env", format!("t={tok}\n").as_bytes());
    let scanner = Scanner::new(Config {
        filter: PathFilter::new(&["fixtures/**".to_string()], Some(d))
            .unwrap_or_else(|e| panic!("{e}")),
        max_file_size: 4096,
        ..Config::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let out = scanner
        .scan_paths(&[d.to_path_buf()], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<String> = out
        .findings
        .iter()
        .map(|f| {
            Path::new(&f.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    names.sort();
    assert_eq!(names, vec![".env", "found.txt"]);
    assert!(out.summary.files_skipped >= 3, "{:?}", out.summary);
}

#[test]
fn missing_path_is_an_error() {
    match scanner().scan_paths(&[PathBuf::from("/definitely/not/here")], None) {
        Err(e @ Error::NotFound(_)) => assert!(e.to_string().contains("no such file")),
        other => panic!("expected NotFound, got {other:?}"),
    }
}
