//! `--staged`, `--since` and `--history` on temporary repositories.

use crate::{checksummed, rand_str, rule_ids, scanner, ALNUM};
use gitseal_scan::git::{scan, Source};
use gitseal_scan::Error;

use gitseal_test_support::fixtures::write;
pub use gitseal_test_support::git::{git, repo};

#[test]
fn staged_reports_only_added_lines() {
    let r = repo();
    let d = r.path();
    let old = checksummed("ghp_", 60);
    // Unborn branch: everything staged is new.
    write(d, "a.txt", &format!("one\nold = {old}\n"));
    git(d, &["add", "a.txt"]);
    let out = scan(&scanner(), d, &Source::Staged, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rule_ids(&out.findings), vec!["github-token"]);
    git(d, &["commit", "-q", "-m", "init"]);

    let new = rand_str(61, 24, ALNUM);
    write(d, "a.txt", &format!("one\nold = {old}\npassword = {new}\n"));
    write(d, "unstaged.txt", &format!("password = {new}\n"));
    git(d, &["add", "a.txt"]);
    let out = scan(&scanner(), d, &Source::Staged, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rule_ids(&out.findings),
        vec!["generic-secret"],
        "{:#?}",
        out.findings
    );
    assert_eq!(
        (out.findings[0].path.as_str(), out.findings[0].line),
        ("a.txt", 3)
    );

    git(d, &["commit", "-q", "-m", "two"]);
    let out = scan(&scanner(), d, &Source::Staged, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.findings.is_empty());
}

#[test]
fn since_reports_commits_in_range_even_if_removed_later() {
    let r = repo();
    let d = r.path();
    let old = checksummed("ghp_", 62);
    write(d, "base.txt", &format!("t = {old}\n"));
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "base"]);
    let base = git(d, &["rev-parse", "HEAD"]);

    let tok = checksummed("npm_", 63);
    write(d, "sub dir/conf.txt", &format!("x\nnpm = {tok}\n"));
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "leak"]);
    let leak = git(d, &["rev-parse", "HEAD"]);
    write(d, "sub dir/conf.txt", "x\n");
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "remove"]);

    let out =
        scan(&scanner(), d, &Source::Since(base.clone()), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rule_ids(&out.findings),
        vec!["npm-token"],
        "{:#?}",
        out.findings
    );
    let f = &out.findings[0];
    assert_eq!((f.path.as_str(), f.line), ("sub dir/conf.txt", 2));
    assert_eq!(f.commit.as_deref(), Some(leak.as_str()));

    match scan(&scanner(), d, &Source::Since("no-such-rev".into()), None) {
        Err(e @ Error::Git { .. }) => {
            assert!(e.to_string().contains("unknown revision no-such-rev"))
        }
        other => panic!("expected a git error, got {other:?}"),
    }
}

#[test]
fn history_scans_each_blob_once() {
    let r = repo();
    let d = r.path();
    let tok = checksummed("ghp_", 64);
    write(d, "a.txt", &format!("t = {tok}\n"));
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "one"]);
    let first = git(d, &["rev-parse", "HEAD"]);
    // Same content under another name, then both deleted.
    write(d, "b.txt", &format!("t = {tok}\n"));
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "two"]);
    git(d, &["rm", "-q", "a.txt", "b.txt"]);
    git(d, &["commit", "-q", "-m", "three"]);

    let out = scan(&scanner(), d, &Source::History, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rule_ids(&out.findings),
        vec!["github-token"],
        "{:#?}",
        out.findings
    );
    assert_eq!(out.findings[0].path, "a.txt");
    assert_eq!(out.findings[0].commit.as_deref(), Some(first.as_str()));
    assert_eq!(out.summary.files_scanned, 1);
}

#[test]
fn not_a_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    match scan(&scanner(), dir.path(), &Source::History, None) {
        Err(Error::Git { command, .. }) => assert_eq!(command, "rev-parse"),
        other => panic!("expected a git error, got {other:?}"),
    }
}
