//! Report formats: redaction, escaping, JSON shape, SARIF schema validity.

use crate::{checksummed, scanner};
use gitseal_scan::report::{self, Format};
use gitseal_scan::ScanOutput;

fn sample() -> (ScanOutput, String) {
    let tok = checksummed("ghp_", 70);
    let mut findings = scanner().scan_bytes(
        "dir/with space/ev\u{1b}[31mil.txt",
        format!("t = {tok}\n").as_bytes(),
    );
    findings.extend(scanner().scan_bytes("b.txt", format!("\n  u = {tok}\n").as_bytes()));
    let out = ScanOutput {
        findings,
        ..Default::default()
    };
    (out, tok)
}

#[test]
fn text_is_redacted_and_escaped() {
    let (out, tok) = sample();
    let text = report::text(&out);
    assert!(!text.contains(&tok));
    assert!(!text.contains('\u{1b}'));
    assert!(
        text.contains("ev\\u{1b}[31mil.txt:1:5: github-token (high confidence, production): "),
        "{text}"
    );
    assert!(text.contains("b.txt:2:7: github-token (high confidence, production): GitHub"));
    assert!(text.contains("[ghp_…]"), "{text}");
}

#[test]
fn text_shows_confidence_and_context_like_json() {
    let value = crate::rand_str(71, 32, crate::ALNUM);
    let mut findings = scanner().scan_bytes(
        "charts/app/tests/values.yaml",
        format!("db:\n  password: {value}\n").as_bytes(),
    );
    findings.extend(scanner().scan_bytes(
        "docs/setup.md",
        format!("export TOKEN={}\n", checksummed("ghp_", 72)).as_bytes(),
    ));
    let out = ScanOutput {
        findings,
        ..Default::default()
    };
    let text = report::text(&out);
    let json: serde_json::Value =
        serde_json::from_str(&report::json_report(&out).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(
            "charts/app/tests/values.yaml:2:13: generic-secret (low confidence, test): "
        ),
        "{text}"
    );
    assert!(
        lines[1].starts_with("docs/setup.md:1:14: github-token (high confidence, docs): "),
        "{text}"
    );
    for (line, f) in lines
        .iter()
        .zip(json["findings"].as_array().into_iter().flatten())
    {
        let shown = format!(
            "({} confidence, {})",
            f["confidence"].as_str().unwrap_or("?"),
            f["context"].as_str().unwrap_or("?")
        );
        assert!(line.contains(&shown), "{line} vs {f}");
    }
    assert!(!text.contains(&value));
}

#[test]
fn json_has_findings_and_summary() {
    let (mut out, tok) = sample();
    let text = report::render(&out, Format::Json).unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    // Unkeyed: no fingerprint at all (a plain hash would be an oracle).
    assert!(v["findings"][0].get("fingerprint").is_none());
    assert!(v["findings"][0].get("digest").is_none());
    assert_eq!(v["findings"][0]["confidence"], "high");
    assert_eq!(v["findings"][0]["context"], "production");
    gitseal_scan::FingerprintKey::generate().apply(&mut out.findings);
    let text = report::render(&out, Format::Json).unwrap_or_else(|e| panic!("{e}"));
    assert!(!text.contains(&tok));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let f = &v["findings"][1];
    assert_eq!(f["path"], "b.txt");
    assert_eq!(f["line"], 2);
    assert_eq!(f["column"], 7);
    assert_eq!(f["rule"], "github-token");
    assert_eq!(f["fingerprint"].as_str().map(str::len), Some(32));
    assert!(f["message"]
        .as_str()
        .is_some_and(|m| m.contains("checksum verified")));
    assert_eq!(v["summary"]["findings"], 2);
}

#[test]
fn sarif_is_valid_against_the_2_1_0_schema() {
    let schema_text = include_str!("../data/sarif-schema-2.1.0.json");
    let schema: serde_json::Value =
        serde_json::from_str(schema_text).unwrap_or_else(|e| panic!("{e}"));
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    let (mut out, tok) = sample();
    gitseal_scan::FingerprintKey::generate().apply(&mut out.findings);
    out.findings[1].commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    let text = report::render(&out, Format::Sarif).unwrap_or_else(|e| panic!("{e}"));
    assert!(!text.contains(&tok));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = &v["runs"][0]["results"];
    assert_eq!(results.as_array().map(Vec::len), Some(2));
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "dir/with%20space/ev%1B%5B31mil.txt"
    );
    assert!(results[0]["partialFingerprints"]["gitseal/v2"].is_string());
    assert_eq!(results[0]["level"], "error");
    assert_eq!(results[0]["properties"]["confidence"], "high");
    assert_eq!(
        results[1]["properties"]["commit"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    // A document that breaks the schema is rejected by the same validator.
    let mut broken = v.clone();
    broken["version"] = serde_json::json!("2.0.0");
    assert!(!validator.is_valid(&broken));
    // An empty report is valid too.
    let empty =
        report::render(&ScanOutput::default(), Format::Sarif).unwrap_or_else(|e| panic!("{e}"));
    let empty: serde_json::Value = serde_json::from_str(&empty).unwrap_or_else(|e| panic!("{e}"));
    assert!(validator.is_valid(&empty));
}
