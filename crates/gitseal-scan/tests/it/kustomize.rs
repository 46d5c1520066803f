//! Files read by kustomize secretGenerators (`envs`, `env`, `files`):
//! found in directory trees and git changes, placeholders and missing files
//! left alone, references out of the scanned root not followed, inline
//! allow, baseline and every report format without the planted values.

use crate::git::{git, repo};
use crate::{pem, rand_str, rule_ids, scanner, ALNUM};
use gitseal_crypto::{seal, Binding, Identity, Scope};
use gitseal_scan::git::{self, Source};
use gitseal_scan::report::{self, Format};
use gitseal_scan::{Baseline, Finding, ScanOutput};
use std::path::Path;

use gitseal_test_support::fixtures::write;

fn scan_dir(root: &Path) -> ScanOutput {
    scanner()
        .scan_paths(&[root.to_path_buf()], None)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `root`-relative path of a finding.
fn rel<'a>(root: &Path, f: &'a Finding) -> &'a str {
    let prefix = format!("{}/", root.display());
    f.path.strip_prefix(&prefix).unwrap_or(&f.path)
}

fn shown(root: &Path, rel: &str) -> String {
    format!("{}/{rel}", root.display())
}

fn envs_message(key: &str, generator: &str, kustomization: &str, how: &str) -> String {
    format!(
        "plaintext `{key}` is read by secretGenerator `{generator}` ({how}) of {kustomization}: seal it with `gitseal seal`, then delete this file and remove it from Git history"
    )
}

fn file_message(item: &str, generator: &str, kustomization: &str) -> String {
    format!(
        "this file is item `{item}` of secretGenerator `{generator}` in {kustomization}: seal it with `gitseal seal`, then delete this file and remove it from Git history"
    )
}

const KUST_ENVS: &str =
    "resources:\n- deploy.yaml\nsecretGenerator:\n- name: db\n  envs:\n  - creds.env\n";

fn creds_env(pw: &str) -> String {
    format!("# database\nDB_NAME=orders_main\n  DB_PASSWORD={pw}\nDB_HOST=${{HOST}}\nEMPTY=\nFROM_ENV\n")
}

#[test]
fn envs_file_values_are_flagged() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let pw = rand_str(500, 20, ALNUM);
    write(root, "deploy/app/kustomization.yaml", KUST_ENVS.as_bytes());
    write(root, "deploy/app/creds.env", creds_env(&pw).as_bytes());
    let out = scan_dir(root);
    let f = &out.findings;
    // The generic-secret pattern on the password line yields to the
    // structural finding, as it does for a Secret's data item.
    assert_eq!(rule_ids(f), vec!["kustomize-secret-file"; 2], "{f:#?}");
    let k = shown(root, "deploy/app/kustomization.yaml");
    assert_eq!(
        (rel(root, &f[0]), f[0].line, f[0].column),
        ("deploy/app/creds.env", 2, 1)
    );
    assert_eq!(f[0].message, envs_message("DB_NAME", "db", &k, "envs"));
    assert_eq!(
        (rel(root, &f[1]), f[1].line, f[1].column),
        ("deploy/app/creds.env", 3, 3)
    );
    assert_eq!(f[1].message, envs_message("DB_PASSWORD", "db", &k, "envs"));
    assert_eq!(f[1].redacted, "…", "nothing of {} shows", &pw[..1]);
    assert!(f[1].commit.is_none());
}

#[test]
fn older_env_field_and_kustomization_without_extension() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let tok = rand_str(501, 24, ALNUM);
    write(
        root,
        "overlays/prod/Kustomization",
        b"secretGenerator:\n- name: api\n  env: ../../config/api.env\n",
    );
    write(
        root,
        "config/api.env",
        format!("API_TOKEN={tok}\n").as_bytes(),
    );
    let out = scan_dir(root);
    let f = &out.findings;
    assert_eq!(rule_ids(f), vec!["kustomize-secret-file"], "{f:#?}");
    assert_eq!((rel(root, &f[0]), f[0].line), ("config/api.env", 1));
    assert_eq!(
        f[0].message,
        envs_message(
            "API_TOKEN",
            "api",
            &shown(root, "overlays/prod/Kustomization"),
            "envs"
        )
    );
}

#[test]
fn files_with_key_and_path_are_flagged() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let key = pem("EC PRIVATE KEY", 510, "\n");
    let cert = pem("CERTIFICATE", 520, "\n");
    write(
        root,
        "tls/kustomization.yaml",
        b"secretGenerator:\n- name: tls\n  type: kubernetes.io/tls\n  files:\n  - tls.crt\n  - tls.key=secrets/server.key\n  - keystore.jks\n  - ca.crt=generated/ca.crt\n",
    );
    write(root, "tls/tls.crt", cert.as_bytes());
    write(root, "tls/secrets/server.key", key.as_bytes());
    // A binary keystore is secret material too.
    let mut jks = vec![0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2];
    jks.extend(rand_str(530, 64, ALNUM).bytes());
    write(root, "tls/keystore.jks", &jks);
    let out = scan_dir(root);
    let f = &out.findings;
    // tls.crt holds only a certificate (public); ca.crt is not in the tree.
    assert_eq!(rule_ids(f), vec!["kustomize-secret-file"; 2], "{f:#?}");
    let k = shown(root, "tls/kustomization.yaml");
    assert_eq!(
        (rel(root, &f[0]), f[0].line, f[0].column),
        ("tls/keystore.jks", 1, 1)
    );
    assert_eq!(f[0].message, file_message("keystore.jks", "tls", &k));
    // The private-key pattern finding on line 1 yields to this one.
    assert_eq!(
        (rel(root, &f[1]), f[1].line, f[1].column),
        ("tls/secrets/server.key", 1, 1)
    );
    assert_eq!(f[1].message, file_message("tls.key", "tls", &k));
    assert_eq!(f[1].redacted, "…");
}

#[test]
fn placeholder_only_env_file_is_clean() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    write(
        root,
        "kustomization.yaml",
        b"secretGenerator:\n- name: app\n  envs: [app.env]\n- name: whole\n  files: [app.env, token.txt]\n",
    );
    write(
        root,
        "app.env",
        b"# fill in at deploy time\nUSER=\nPASSWORD=changeme\nTOKEN=${TOKEN}\nKEY=<your-api-key>\nCA=/etc/ssl/ca.pem\nURL=https://vault.example.org\nFROM_ENV\n",
    );
    write(root, "token.txt", b"REPLACE_ME\n");
    let out = scan_dir(root);
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
}

#[test]
fn missing_files_and_files_sealed_elsewhere_are_clean() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    // CI writes creds.env and tls.key at deploy time; the committed
    // secret material is a SealedSecret.
    write(
        root,
        "app/kustomization.yaml",
        b"resources:\n- sealed.yaml\nsecretGenerator:\n- name: db\n  envs:\n  - creds.env\n- name: tls\n  files:\n  - tls.key=certs/tls.key\n",
    );
    let id = Identity::generate();
    let v = seal(
        b"value",
        &[id.recipient().clone()],
        &Binding::new(Scope::Strict, "prod", "api", "token"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    write(
        root,
        "app/sealed.yaml",
        format!("apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: api\n  namespace: prod\nspec:\n  encryptedData:\n    token: {v}\n").as_bytes(),
    );
    let out = scan_dir(root);
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
}

#[test]
fn references_out_of_the_scanned_root_are_not_followed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let top = dir.path();
    let pw = rand_str(540, 20, ALNUM);
    let abs = top.join("abs.env");
    write(top, "abs.env", format!("PASSWORD={pw}\n").as_bytes());
    write(
        top,
        "shared/outside.env",
        format!("PASSWORD={pw}\n").as_bytes(),
    );
    write(
        top,
        "deploy/app/kustomization.yaml",
        format!(
            "secretGenerator:\n- name: db\n  envs:\n  - ../../shared/outside.env\n  - {}\n",
            abs.display()
        )
        .as_bytes(),
    );
    // Scanning deploy/ only: `../../shared` climbs above it and the
    // absolute path names a file outside the scan; neither is read.
    let out = scan_dir(&top.join("deploy"));
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    // Scanning the top: the relative reference lies inside and is followed;
    // an absolute path never is (it names a deploy-time mount).
    let out = scan_dir(top);
    let gen: Vec<&Finding> = out
        .findings
        .iter()
        .filter(|f| f.rule.id() == "kustomize-secret-file")
        .collect();
    assert_eq!(gen.len(), 1, "{:#?}", out.findings);
    assert_eq!(rel(top, gen[0]), "shared/outside.env");
}

#[test]
fn inline_allow_and_baseline() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let a = rand_str(550, 20, ALNUM);
    let b = rand_str(551, 20, ALNUM);
    write(root, "kustomization.yaml", KUST_ENVS.as_bytes());
    write(
        root,
        "creds.env",
        format!("# gitseal:allow dev-only value\nDEV_TOKEN={a}\nPROD_TOKEN={b}\n").as_bytes(),
    );
    let out = scan_dir(root);
    assert_eq!(rule_ids(&out.findings), vec!["kustomize-secret-file"]);
    assert_eq!(out.findings[0].line, 3);
    assert_eq!(out.summary.allowed_inline, 1);

    // The baseline silences it; moving the line keeps the fingerprint.
    let baseline = Baseline::from_json(&Baseline::to_json(&out.findings), "b.json")
        .unwrap_or_else(|e| panic!("{e}"));
    write(
        root,
        "creds.env",
        format!("# gitseal:allow dev-only value\nDEV_TOKEN={a}\n\n\nPROD_TOKEN={b}\n").as_bytes(),
    );
    let mut moved = scan_dir(root);
    assert_eq!(moved.findings[0].line, 5);
    assert_eq!(moved.findings[0].digest, out.findings[0].digest);
    baseline.apply(&mut moved);
    assert!(moved.findings.is_empty());
    assert_eq!(moved.summary.allowed_baseline, 1);

    // A whole-file finding: allowed on its first line, baselined by content.
    std::fs::remove_file(root.join("creds.env")).unwrap_or_else(|e| panic!("{e}"));
    write(
        root,
        "kustomization.yaml",
        b"secretGenerator:\n- name: ssh\n  files:\n  - id_key\n",
    );
    write(root, "id_key", format!("{a}{b}\n").as_bytes());
    let out = scan_dir(root);
    assert_eq!(rule_ids(&out.findings), vec!["kustomize-secret-file"]);
    let fp = out.findings[0].digest;
    write(root, "id_key", format!("{b}{a}\n").as_bytes());
    let changed = scan_dir(root);
    assert_ne!(changed.findings[0].digest, fp, "new content, new finding");
    write(
        root,
        "id_key",
        format!("{b}{a} # gitseal:allow fixture only\n").as_bytes(),
    );
    let allowed = scan_dir(root);
    assert!(allowed.findings.is_empty(), "{:#?}", allowed.findings);
    assert_eq!(allowed.summary.allowed_inline, 1);
}

#[test]
fn reports_never_carry_the_values() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let pw = rand_str(560, 20, ALNUM);
    let key = pem("PRIVATE KEY", 561, "\n");
    write(
        root,
        "kustomization.yaml",
        b"secretGenerator:\n- name: db\n  envs: [creds.env]\n  files: [tls.key]\n",
    );
    write(root, "creds.env", creds_env(&pw).as_bytes());
    write(root, "tls.key", key.as_bytes());
    let out = scan_dir(root);
    assert_eq!(rule_ids(&out.findings), vec!["kustomize-secret-file"; 3]);
    let body_line = key.lines().nth(1).unwrap_or_default().to_string();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../data/sarif-schema-2.1.0.json"))
            .unwrap_or_else(|e| panic!("{e}"));
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    for format in [Format::Text, Format::Json, Format::Sarif] {
        let text = report::render(&out, format).unwrap_or_else(|e| panic!("{e}"));
        for planted in [pw.as_str(), "orders_main", &body_line[..20]] {
            assert!(!text.contains(planted), "{format:?} shows a value");
        }
        if format == Format::Sarif {
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            assert!(validator.is_valid(&v));
            let rules = &v["runs"][0]["tool"]["driver"]["rules"];
            let result = &v["runs"][0]["results"][0];
            assert_eq!(result["ruleId"], "kustomize-secret-file");
            let index = result["ruleIndex"].as_u64().unwrap_or(u64::MAX) as usize;
            assert_eq!(rules[index]["id"], "kustomize-secret-file");
            assert!(rules[index]["help"]["text"]
                .as_str()
                .is_some_and(|h| h.contains("gitseal seal") && h.contains("Git history")));
        }
        if format == Format::Json {
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(v["findings"][0]["rule"], "kustomize-secret-file");
            assert_eq!(v["findings"][0]["line"], 2);
        }
    }
}

fn git_scan(root: &Path, source: &Source) -> ScanOutput {
    git::scan(&scanner(), root, source, None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn git_modes_follow_generators() {
    let dir = repo();
    let root = dir.path().to_path_buf();
    write(&root, "deploy/kustomization.yaml", KUST_ENVS.as_bytes());
    write(&root, "deploy/deploy.yaml", b"kind: Deployment\n");
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "app"]);
    let base = git(&root, &["rev-parse", "HEAD"]);

    // --staged: the kustomization is unchanged (read from the index), the
    // env file is what the commit adds.
    let pw = rand_str(570, 20, ALNUM);
    write(&root, "deploy/creds.env", creds_env(&pw).as_bytes());
    assert!(git_scan(&root, &Source::Staged).findings.is_empty());
    git(&root, &["add", "deploy/creds.env"]);
    let out = git_scan(&root, &Source::Staged);
    let f = &out.findings;
    assert_eq!(rule_ids(f), vec!["kustomize-secret-file"; 2], "{f:#?}");
    assert_eq!((f[1].path.as_str(), f[1].line), ("deploy/creds.env", 3));
    assert_eq!(
        f[1].message,
        envs_message("DB_PASSWORD", "db", "deploy/kustomization.yaml", "envs")
    );
    git(&root, &["commit", "-q", "-m", "oops"]);
    let commit = git(&root, &["rev-parse", "HEAD"]);

    // A later change adds one placeholder line: nothing new to report.
    let mut text = creds_env(&pw);
    text.push_str("EXTRA=changeme\n");
    write(&root, "deploy/creds.env", text.as_bytes());
    git(&root, &["add", "deploy/creds.env"]);
    assert!(git_scan(&root, &Source::Staged).findings.is_empty());
    git(&root, &["commit", "-q", "-m", "more"]);

    // --since: HEAD's kustomization, the commit that added the values.
    let out = git_scan(&root, &Source::Since(base));
    assert_eq!(rule_ids(&out.findings), vec!["kustomize-secret-file"; 2]);
    assert!(out
        .findings
        .iter()
        .all(|f| f.commit.as_deref() == Some(commit.as_str())));

    // --history: still found after the file is deleted.
    git(&root, &["rm", "-q", "deploy/creds.env"]);
    git(&root, &["commit", "-q", "-m", "rm"]);
    // Each blob is reported, like every other finding: both versions.
    let out = git_scan(&root, &Source::History);
    let f = &out.findings;
    assert_eq!(rule_ids(f), vec!["kustomize-secret-file"; 4], "{f:#?}");
    let mut places: Vec<(&str, usize)> = f.iter().map(|f| (f.path.as_str(), f.line)).collect();
    places.dedup();
    assert_eq!(
        places,
        vec![("deploy/creds.env", 2), ("deploy/creds.env", 3)]
    );
}
