//! Reports: text for people, JSON for scripts, SARIF 2.1.0 for code
//! scanning. Every format shows only the redacted preview of a secret and
//! escapes control characters in anything taken from scanned files.

use crate::finding::{escape_control, Confidence, Context, Finding, Rule};
use crate::{Error, ScanOutput};
use serde_json::{json, Value};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `path:line:column: rule (confidence confidence, context): message
    /// [preview]`, one finding a line.
    Text,
    /// `{"findings": [...], "summary": {...}}`.
    Json,
    /// SARIF 2.1.0.
    Sarif,
}

/// Renders `out` in `format`.
pub fn render(out: &ScanOutput, format: Format) -> Result<String, Error> {
    match format {
        Format::Text => Ok(text(out)),
        Format::Json => json_report(out),
        Format::Sarif => sarif(out),
    }
}

/// The text report: one line per finding, with how sure it is and where
/// it sits, as JSON and SARIF carry them:
/// `values.yaml:3:13: generic-secret (low confidence, production): … […]`.
pub fn text(out: &ScanOutput) -> String {
    let mut s = String::new();
    for f in &out.findings {
        s.push_str(&format!(
            "{}:{}:{}: {} ({} confidence, {}): {} [{}]",
            escape_control(&f.path),
            f.line,
            f.column,
            f.rule.id(),
            f.confidence.as_str(),
            f.context.as_str(),
            escape_control(&f.message),
            f.redacted
        ));
        if let Some(c) = &f.commit {
            s.push_str(&format!(" (commit {})", &c[..c.len().min(12)]));
        }
        s.push('\n');
    }
    s
}

/// A one-line summary for stderr.
pub fn summary_line(out: &ScanOutput, seconds: f64) -> String {
    let files: std::collections::BTreeSet<&str> =
        out.findings.iter().map(|f| f.path.as_str()).collect();
    let mb = out.summary.bytes_scanned as f64 / (1024.0 * 1024.0);
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let found = match out.findings.len() {
        0 => "no findings".to_string(),
        n => format!(
            "{n} finding{} in {} file{}",
            plural(n as u64),
            files.len(),
            plural(files.len() as u64)
        ),
    };
    let scanned = out.summary.files_scanned;
    let mut s = format!(
        "gitseal verify: {found}; scanned {scanned} file{} ({mb:.1} MiB) in {seconds:.2}s",
        plural(scanned),
    );
    if out.summary.allowed_inline + out.summary.allowed_baseline > 0 {
        s.push_str(&format!(
            "; allowed: {} inline, {} by baseline",
            out.summary.allowed_inline, out.summary.allowed_baseline
        ));
    }
    if out.summary.filtered > 0 {
        s.push_str(&format!(
            "; {} below --min-confidence or in an --exclude-context",
            out.summary.filtered
        ));
    }
    s
}

/// The JSON report.
pub fn json_report(out: &ScanOutput) -> Result<String, Error> {
    let v = json!({
        "version": 1,
        "findings": out.findings,
        "summary": {
            "findings": out.findings.len(),
            "files_scanned": out.summary.files_scanned,
            "bytes_scanned": out.summary.bytes_scanned,
            "files_skipped": out.summary.files_skipped,
            "allowed_inline": out.summary.allowed_inline,
            "allowed_baseline": out.summary.allowed_baseline,
            "filtered": out.summary.filtered,
        }
    });
    serde_json::to_string_pretty(&v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Error::Report(e.to_string()))
}

/// Percent-encodes a relative path for a SARIF `uri`.
fn uri_encode(path: &str) -> String {
    let mut s = String::new();
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn precision(rule: Rule) -> &'static str {
    match rule.confidence() {
        Confidence::High => "very-high",
        Confidence::Medium => "high",
        Confidence::Low => "medium",
    }
}

/// The SARIF `level` of a finding: `error` for a high or medium
/// confidence finding in production paths, `warning` for a low-confidence
/// one there or a high-confidence one in tests or docs, `note` for the rest.
pub fn sarif_level(f: &Finding) -> &'static str {
    match (f.confidence, f.context) {
        (Confidence::High | Confidence::Medium, Context::Production) => "error",
        (Confidence::Low, Context::Production) | (Confidence::High, _) => "warning",
        _ => "note",
    }
}

/// The SARIF 2.1.0 report.
pub fn sarif(out: &ScanOutput) -> Result<String, Error> {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "name": r.id(),
                "shortDescription": {"text": r.description()},
                "fullDescription": {"text": r.description()},
                "help": {"text": r.help(), "markdown": r.help()},
                "defaultConfiguration": {"level": if r.confidence() == Confidence::Low { "warning" } else { "error" }},
                "properties": {"tags": ["security", "secret"], "precision": precision(*r), "security-severity": r.security_severity()}
            })
        })
        .collect();
    let results: Vec<Value> = out
        .findings
        .iter()
        .map(|f| {
            let index = Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0);
            let mut msg = format!("{} [{}]", escape_control(&f.message), f.redacted);
            if let Some(c) = &f.commit {
                msg.push_str(&format!(" (commit {c})"));
            }
            let mut result = json!({
                "ruleId": f.rule.id(),
                "ruleIndex": index,
                "level": sarif_level(f),
                "message": {"text": msg},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri_encode(&f.path), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)}
                    }
                }],
                "properties": {"confidence": f.confidence.as_str(), "context": f.context.as_str()}
            });
            if let Some(fp) = &f.fingerprint {
                result["partialFingerprints"] = json!({"gitseal/v2": fp});
            }
            if let Some(c) = &f.commit {
                result["properties"]["commit"] = json!(c);
            }
            result
        })
        .collect();
    let v = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gitseal",
                "informationUri": "https://github.com/gitseal/gitseal",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The directory the scan ran from."}}},
            "results": results
        }]
    });
    serde_json::to_string_pretty(&v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Error::Report(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ScanOutput, Summary};

    #[test]
    fn summary_line_counts_in_words() {
        let one = ScanOutput {
            findings: Vec::new(),
            summary: Summary {
                files_scanned: 1,
                ..Summary::default()
            },
        };
        assert_eq!(
            summary_line(&one, 0.0),
            "gitseal verify: no findings; scanned 1 file (0.0 MiB) in 0.00s"
        );
        let many = ScanOutput {
            findings: Vec::new(),
            summary: Summary {
                files_scanned: 312,
                bytes_scanned: 3 * 1024 * 1024,
                ..Summary::default()
            },
        };
        assert_eq!(
            summary_line(&many, 0.5),
            "gitseal verify: no findings; scanned 312 files (3.0 MiB) in 0.50s"
        );
    }
}
