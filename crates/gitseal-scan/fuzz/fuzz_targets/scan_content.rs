//! `gitseal verify`'s scanner over arbitrary file contents is total: any
//! bytes, under any of a set of paths that switch on its Kubernetes,
//! kustomize and sealed-value rules, give findings, never a panic.
//! Oracles: binary data (a NUL in the first 8000 bytes) gives nothing;
//! every finding names the scanned path and a line and column inside the
//! data; its preview ends in `…` and holds no control character (a report
//! prints safely on a terminal); the same bytes scanned twice give the same
//! findings; and a finding on a line that carries `gitseal:allow` is never
//! reported.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use gitseal_scan::lifecycle::EnvironmentKeys;
use gitseal_scan::{is_binary, Config, KeyId, Lifecycle, Scanner};
use libfuzzer_sys::fuzz_target;

/// The first input byte picks the path: it decides which rules run.
const PATHS: &[&str] = &[
    "apps/prod/db.yaml",
    "apps/prod/kustomization.yaml",
    "apps/dev/db.sealed.yml",
    "deploy/values.json",
    "config/.env",
    "src/main.go",
    "keys/id_ed25519",
    "README.md",
];

fn scanner() -> &'static Scanner {
    static S: OnceLock<Scanner> = OnceLock::new();
    S.get_or_init(|| {
        let known = KeyId::from_bytes([0x1a; 8]);
        let retired = KeyId::from_bytes([0x2b; 8]);
        let mut lifecycle = Lifecycle::new(None);
        lifecycle
            .add_path_rule("apps/prod/**", &["apps/prod/**".to_string()], "prod")
            .expect("glob");
        lifecycle.add_environment(
            "prod",
            EnvironmentKeys {
                keys: BTreeSet::from([known]),
                required: BTreeSet::from([known]),
            },
        );
        lifecycle.retire(retired, Some("gone".into()));
        Scanner::new(Config {
            known_keys: Some(BTreeSet::from([known, retired])),
            lifecycle: Some(lifecycle),
            threads: 1,
            ..Config::default()
        })
        .expect("scanner")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(pick) % PATHS.len()];
    let scanner = scanner();
    let findings = scanner.scan_bytes(path, content);
    if is_binary(content) {
        assert!(findings.is_empty(), "binary data gives no findings");
        return;
    }
    let lines: Vec<&[u8]> = content.split(|&b| b == b'\n').collect();
    for f in &findings {
        assert_eq!(f.path, path);
        assert!(
            f.line >= 1 && f.line <= lines.len(),
            "line {} of {}",
            f.line,
            lines.len()
        );
        let line = lines[f.line - 1];
        let width = String::from_utf8_lossy(line).chars().count();
        assert!(
            f.column >= 1 && f.column <= width + 1,
            "column {} of {width}",
            f.column
        );
        assert!(
            !memchr_allow(line),
            "a finding on a line with gitseal:allow: {:?} line {}",
            f.rule,
            f.line
        );
        assert!(f.redacted.ends_with('…'), "preview {:?}", f.redacted);
        assert!(
            !f.redacted.chars().any(char::is_control),
            "control character in preview {:?}",
            f.redacted
        );
        assert!(!f.message.is_empty());
    }
    let again = scanner.scan_bytes(path, content);
    let key = |v: &[gitseal_scan::Finding]| -> Vec<_> {
        v.iter()
            .map(|f| {
                (
                    f.line,
                    f.column,
                    f.rule,
                    f.redacted.clone(),
                    f.message.clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        key(&findings),
        key(&again),
        "the same bytes give the same findings"
    );
    assert!(
        findings
            .iter()
            .zip(&again)
            .all(|(a, b)| a.digest == b.digest),
        "the same bytes give the same digests"
    );
});

fn memchr_allow(line: &[u8]) -> bool {
    line.windows(gitseal_scan::allow::ALLOW_MARKER.len())
        .any(|w| w == gitseal_scan::allow::ALLOW_MARKER)
}
