//! Issue 9 §8: age secret keys anywhere (tree, staged, history), YAML
//! tag/anchor tricks around a plaintext Secret, keyed baseline fingerprints,
//! previews that show nothing of a base64 value.

use crate::git::{git, repo};
use crate::{rand_str, rule_ids, scan, scanner, ALNUM};
use base64::Engine as _;
use gitseal_scan::git::{scan as git_scan, Source};
use gitseal_scan::{Baseline, Error, FingerprintKey, ScanOutput};

/// A real age identity, generated now (never written in the source).
fn age_key() -> String {
    use secrecy::ExposeSecret as _;
    gitseal_crypto::Identity::generate()
        .to_secret_string()
        .expose_secret()
        .to_string()
}

#[test]
fn age_secret_keys_are_found_in_any_file() {
    let key = age_key();
    for (path, text, line) in [
        (
            "keys/prod.txt",
            format!("# created: 2026-11-30\n# public key: age1…\n{key}\n"),
            3,
        ),
        ("notes.md", format!("use `{key}` to open it\n"), 1),
        (
            "deploy/values.yaml",
            format!("sops:\n  age_key: {key}\n"),
            2,
        ),
        ("main.go", format!("const k = \"{key}\"\n"), 1),
    ] {
        let f = scan(path, &text);
        assert_eq!(rule_ids(&f), vec!["age-secret-key"], "{path}: {f:#?}");
        assert_eq!(f[0].line, line);
        assert_eq!(f[0].redacted, "AGE-SECRET-KEY-1…");
        assert_eq!(f[0].confidence, gitseal_scan::Confidence::High);
    }
    // Near misses: a broken checksum, a truncated key, the bare prefix.
    let mut broken = key.clone();
    let last = broken.pop().unwrap_or('Q');
    broken.push(if last == 'Q' { 'P' } else { 'Q' });
    assert!(scan("k.txt", &format!("{broken}\n")).is_empty());
    assert!(scan("k.txt", &format!("{}\n", &key[..50])).is_empty());
    assert!(scan("docs.md", "keys look like AGE-SECRET-KEY-1...\n").is_empty());
}

#[test]
fn age_secret_keys_are_found_staged_and_in_history() {
    let r = repo();
    let d = r.path();
    let key = age_key();
    std::fs::write(d.join("readme.txt"), "hello\n").unwrap_or_else(|e| panic!("{e}"));
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "init"]);
    std::fs::write(d.join("identity.txt"), format!("{key}\n")).unwrap_or_else(|e| panic!("{e}"));
    git(d, &["add", "identity.txt"]);
    let out = git_scan(&scanner(), d, &Source::Staged, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rule_ids(&out.findings), vec!["age-secret-key"]);
    git(d, &["commit", "-q", "-m", "oops"]);
    let leak = git(d, &["rev-parse", "HEAD"]);
    git(d, &["rm", "-q", "identity.txt"]);
    git(d, &["commit", "-q", "-m", "remove"]);
    let out = git_scan(&scanner(), d, &Source::History, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rule_ids(&out.findings), vec!["age-secret-key"]);
    assert_eq!(out.findings[0].commit.as_deref(), Some(leak.as_str()));
    // The working tree no longer has it.
    let out = scanner()
        .scan_paths(&[d.to_path_buf()], None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn yaml_tricks_do_not_hide_a_plaintext_secret() {
    let pw = rand_str(80, 20, ALNUM);
    let enc = b64(&pw);
    let cases = [
        // A core-schema tag on the kind, on the apiVersion, on the key.
        format!("apiVersion: v1\nkind: !!str Secret\nmetadata:\n  name: a\ndata:\n  password: {enc}\n"),
        format!("apiVersion: !!str v1\n!!str kind: !!str Secret\nmetadata:\n  name: a\ndata:\n  password: {enc}\n"),
        // An anchor on the kind, an alias to it.
        format!("apiVersion: v1\nkind: &k Secret\nmetadata:\n  name: a\ndata:\n  password: {enc}\n"),
        format!("x: &k Secret\napiVersion: v1\nkind: *k\nmetadata:\n  name: a\ndata:\n  password: {enc}\n"),
        // A merge key bringing kind and data in.
        format!(".base: &b {{apiVersion: v1, kind: Secret}}\n<<: *b\nmetadata:\n  name: a\nstringData:\n  password: {pw}\n"),
        format!("<<: [{{apiVersion: v1}}, {{kind: Secret}}]\nmetadata:\n  name: a\nstringData:\n  password: {pw}\n"),
        // Flow style, quoted keys, escapes, the value on the next line.
        format!("{{apiVersion: v1, kind: Secret, metadata: {{name: a}}, stringData: {{password: {pw}}}}}\n"),
        format!("\"apiVersion\": v1\n'kind': \"Secret\"\nmetadata: {{name: a}}\nstringData:\n  \"password\": {pw}\n"),
        format!("apiVersion: v1\nkind: \"\\u0053ecret\"\nmetadata:\n  name: a\nstringData:\n  password: {pw}\n"),
        format!("apiVersion: v1\nkind:\n  Secret\nmetadata:\n  name: a\nstringData:\n  password: {pw}\n"),
        format!("apiVersion: v1\nkind: >-\n  Secret\nmetadata:\n  name: a\nstringData:\n  password: {pw}\n"),
        format!("apiVersion: v1\n? kind\n: Secret\nmetadata:\n  name: a\nstringData:\n  password: {pw}\n"),
    ];
    for text in &cases {
        let f = scan("deploy/secret.yaml", text);
        assert!(
            rule_ids(&f).contains(&"kube-plaintext-secret"),
            "not caught:\n{text}\n{f:#?}"
        );
        for finding in &f {
            assert!(!finding.redacted.contains(&pw[..4]) && !finding.redacted.contains(&enc[..4]));
        }
    }
    // A CRD schema with a `kind:` property is not a Secret.
    let schema = "kind: CustomResourceDefinition\nspec:\n  versions:\n  - schema:\n      properties:\n        kind:\n          type: string\n";
    assert!(scan("crd.yaml", schema).is_empty());
}

fn findings(seed: u64) -> (ScanOutput, String) {
    let pw = rand_str(seed, 24, ALNUM);
    let out = ScanOutput {
        findings: scan("values.yaml", &format!("db:\n  password: {pw}\n")),
        ..Default::default()
    };
    assert_eq!(out.findings.len(), 1);
    (out, pw)
}

#[test]
fn baselines_are_keyed_by_a_random_salt() {
    let (out, pw) = findings(81);
    let a = Baseline::to_json(&out.findings);
    let b = Baseline::to_json(&out.findings);
    // Two baselines of the same finding share no fingerprint: nothing can be
    // precomputed or correlated, and the plain SHA-256 is nowhere.
    let fp = |text: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["version"], 2);
        assert_eq!(v["iterations"], FingerprintKey::ITERATIONS);
        assert_eq!(v["salt"].as_str().map(str::len), Some(64));
        v["findings"][0]["fingerprint"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_ne!(fp(&a), fp(&b));
    assert!(!a.contains(&pw));
    let unkeyed = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"generic-secret\0values.yaml\0");
        h.update(pw.as_bytes());
        hex::encode(h.finalize())
    };
    assert!(!a.contains(&unkeyed[..32]));
    // Each still recognises the finding.
    for text in [&a, &b] {
        let baseline = Baseline::from_json(text, "b.json").unwrap_or_else(|e| panic!("{e}"));
        let mut o = out.clone();
        baseline.apply(&mut o);
        assert!(o.findings.is_empty());
        assert_eq!(o.summary.allowed_baseline, 1);
    }
    // A different secret at the same place is not accepted.
    let (mut other, _) = findings(82);
    let baseline = Baseline::from_json(&a, "b.json").unwrap_or_else(|e| panic!("{e}"));
    baseline.apply(&mut other);
    assert_eq!(other.findings.len(), 1);
    assert!(other.findings[0].fingerprint.is_some());
}

#[test]
fn version_1_baselines_are_still_read() {
    let (out, pw) = findings(83);
    let legacy = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(b"generic-secret\0values.yaml\0");
        h.update(pw.as_bytes());
        hex::encode(h.finalize())[..32].to_string()
    };
    let text = format!("{{\"version\": 1, \"findings\": [{{\"fingerprint\": \"{legacy}\"}}]}}");
    let baseline = Baseline::from_json(&text, "old.json").unwrap_or_else(|e| panic!("{e}"));
    assert!(baseline.is_legacy());
    let mut o = out.clone();
    baseline.apply(&mut o);
    assert!(o.findings.is_empty());
}

#[test]
fn bad_keyed_baselines_are_refused() {
    for (text, want) in [
        (
            "{\"version\": 2, \"findings\": []}",
            "version 2 needs a `salt` of 64 hex digits",
        ),
        (
            "{\"version\": 2, \"salt\": \"abcd\", \"iterations\": 10, \"findings\": []}",
            "version 2 needs a `salt` of 64 hex digits",
        ),
        (
            &format!("{{\"version\": 2, \"salt\": \"{}\", \"findings\": []}}", "ab".repeat(32)),
            "`iterations` must be between 1 and 1000000",
        ),
        (
            &format!(
                "{{\"version\": 2, \"salt\": \"{}\", \"iterations\": 4000000000, \"findings\": []}}",
                "ab".repeat(32)
            ),
            "`iterations` must be between 1 and 1000000",
        ),
        (
            "{\"version\": 3, \"findings\": []}",
            "version 3 is not supported (expected 1 or 2)",
        ),
    ] {
        match Baseline::from_json(text, "b.json") {
            Err(e @ Error::Baseline { .. }) => {
                assert!(e.to_string().contains(want), "{e}");
                assert!(e.to_string().starts_with("invalid baseline file b.json"));
            }
            other => panic!("expected a baseline error for {text}, got {other:?}"),
        }
    }
}

#[test]
fn previews_never_show_any_of_a_base64_value() {
    let pw = rand_str(84, 20, ALNUM);
    let enc = b64(&pw);
    // Under a secret-like key, in a Secret's data, in a sealed item that is
    // not sealed: only `…`.
    let texts = [
        ("app.yaml", format!("token: {enc}\n")),
        (
            "s.yaml",
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\ndata:\n  password: {enc}\n"),
        ),
        (
            "ss.yaml",
            format!("apiVersion: gitseal.dev/v1\nkind: SealedSecret\nmetadata:\n  name: a\nspec:\n  encryptedData:\n    password: {enc}\n"),
        ),
    ];
    for (path, text) in texts {
        let f = scan(path, &text);
        assert!(!f.is_empty(), "{path}");
        for finding in f {
            assert_eq!(finding.redacted, "…", "{path}: {}", finding.redacted);
        }
    }
}
