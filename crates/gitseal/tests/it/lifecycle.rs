//! Key lifecycle, offline: `verify` with a keyring reports values sealed
//! to a retired key, missing a required recipient, or sealed for another
//! environment than their path maps to (each with a near miss that is not
//! reported), and `reseal --all [--dry-run]` fixes exactly those.

use std::collections::BTreeMap;

use crate::support::*;

/// A repository with prod (prod key, DR required, an old previous key),
/// dev (dev key), a retired key, and one SealedSecret file per case.
struct Repo {
    env: Env,
}

const CASES: &[(&str, &[&str])] = &[
    ("apps/prod/good.yaml", &["prod", "dr"]),
    ("apps/prod/previous.yaml", &["old", "dr"]),
    ("apps/prod/no-dr.yaml", &["prod"]),
    ("apps/prod/devs.yaml", &["dev"]),
    ("apps/dev/good.yaml", &["dev"]),
    ("apps/dev/retired.yaml", &["dev", "leaked"]),
    ("apps/dev/both.yaml", &["dev", "prod", "dr"]),
];

/// The files `verify` and `reseal --all` must report, with their rule.
const AFFECTED: &[(&str, &str)] = &[
    ("apps/dev/retired.yaml", "sealed-retired-key"),
    ("apps/prod/devs.yaml", "sealed-wrong-environment"),
    ("apps/prod/no-dr.yaml", "sealed-missing-recipient"),
];

impl Repo {
    fn new() -> Repo {
        let env = Env::new();
        let mut keys = BTreeMap::new();
        for name in ["prod", "dr", "old", "dev", "leaked"] {
            keys.insert(name, env.keygen(&format!("{name}.txt")));
        }
        let id = |name: &str| {
            keys[name]
                .parse::<gitseal_crypto::Recipient>()
                .expect("recipient")
                .key_id()
        };
        for dir in [".git", ".gitseal", "apps/prod", "apps/dev"] {
            std::fs::create_dir_all(env.path(dir)).expect("mkdir");
        }
        // The identity files stay out of Git (verify reports age keys).
        env.write(".gitignore", "*.txt\n");
        env.write(
            ".gitseal/keys.yaml",
            &format!(
                "version: 1\npaths:\n- {{glob: apps/prod/**, environment: prod}}\n- {{glob: apps/dev/**, environment: dev}}\n\
                 environments:\n  prod:\n    recipients:\n    - {{recipient: {}, controller: true}}\n\
                 \x20   - {{recipient: {}, required: true}}\n    previous: [{}]\n  dev:\n    recipients: [{}]\n\
                 retired:\n- {{keyId: {}, note: leaked in a CI log}}\n",
                keys["prod"], keys["dr"], id("old"), keys["dev"], id("leaked")
            ),
        );
        for (file, to) in CASES {
            let name = file
                .rsplit('/')
                .next()
                .expect("name")
                .trim_end_matches(".yaml");
            env.write(
                "secret.yaml",
                &format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: shop}}\nstringData: {{password: hunter2-PLAINTEXT, user: admin}}\n"),
            );
            let mut args = vec!["seal", "-f", "secret.yaml", "-o", file];
            for k in *to {
                args.extend_from_slice(&["-r", &keys[k]]);
            }
            env.run(&args).ok();
        }
        std::fs::remove_file(env.path("secret.yaml")).expect("rm plaintext");
        Repo { env }
    }

    fn snapshot(&self) -> Vec<String> {
        CASES.iter().map(|(f, _)| self.env.read(f)).collect()
    }

    /// `verify --format json .`: (path, rule) of every finding.
    fn findings(&self) -> Vec<(String, String)> {
        let out = self
            .env
            .run(&["verify", "--no-progress", "--format", "json", "."]);
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json report");
        let mut found: Vec<(String, String)> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| {
                (
                    f["path"]
                        .as_str()
                        .expect("path")
                        .trim_start_matches("./")
                        .to_string(),
                    f["rule"].as_str().expect("rule").to_string(),
                )
            })
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

#[test]
fn verify_reports_each_lifecycle_problem_and_no_near_miss() {
    let repo = Repo::new();
    let want: Vec<(String, String)> = AFFECTED
        .iter()
        .map(|(f, r)| (f.to_string(), r.to_string()))
        .collect();
    assert_eq!(repo.findings(), want);
    let out = repo.env.run(&["verify", "--no-progress", "."]);
    out.exits(1);
    assert!(
        out.stdout
            .contains("which the keyring retires (leaked in a CI log)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("which environment `prod` requires"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("sealed for environment `dev`, but its path maps to `prod`"),
        "{}",
        out.stdout
    );
}

#[test]
fn reseal_all_dry_run_lists_exactly_the_affected_files_and_changes_nothing() {
    let repo = Repo::new();
    let before = repo.snapshot();
    let out = repo.env.run(&["reseal", "--all", "--dry-run"]);
    out.ok();
    let listed: Vec<&str> = out.stdout.lines().collect();
    let want: Vec<&str> = AFFECTED.iter().map(|(f, _)| *f).collect();
    assert_eq!(listed, want, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("would be re-sealed for environment \"prod\""),
        "{}",
        out.stderr
    );
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn reseal_all_fixes_them_and_nothing_else() {
    let repo = Repo::new();
    let env = &repo.env;
    let before = repo.snapshot();
    // Without an identity that opens every affected value: nothing written.
    env.run(&["reseal", "--all", "-i", "prod.txt"]).exits(3);
    assert_eq!(repo.snapshot(), before);
    // With them: exactly the affected files change, and verify is clean.
    let out = env.run(&["reseal", "--all", "-i", "prod.txt", "-i", "dev.txt"]);
    out.exits_with(
        0,
        "apps/prod/no-dr.yaml: re-sealed 2 value(s) in 1 object(s) for environment \"prod\"",
    );
    let after = repo.snapshot();
    for (i, (file, _)) in CASES.iter().enumerate() {
        let affected = AFFECTED.iter().any(|(f, _)| f == file);
        assert_eq!(after[i] != before[i], affected, "{file}");
    }
    assert_eq!(repo.findings(), Vec::<(String, String)>::new());
    env.run(&["verify", "--no-progress", "."]).ok();
    // Each still opens where it is, with its environment's keys.
    for (file, key) in [
        ("apps/prod/no-dr.yaml", "dr.txt"),
        ("apps/prod/devs.yaml", "dr.txt"),
        ("apps/dev/retired.yaml", "dev.txt"),
    ] {
        let out = env.run(&["unseal", "-i", key, "-f", file]);
        out.ok();
        assert_eq!(data_item(&out.stdout, 0, "password"), b"hunter2-PLAINTEXT");
    }
    env.run(&["unseal", "-i", "leaked.txt", "-f", "apps/dev/retired.yaml"])
        .exits(3);
    // Run again: nothing left to do.
    env.run(&["reseal", "--all", "--dry-run"])
        .exits_with(0, "nothing to re-seal");
}
