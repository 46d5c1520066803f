//! What a scan reports: one finding (its rule is an entry of
//! the rule table of `catalog.rs`), how sure it is and
//! where it sits, its digest and its redacted preview. A finding never holds
//! the secret it found: only an in-memory SHA-256 digest of (rule, path,
//! secret), never printed (reports and baselines carry a salted, stretched
//! fingerprint of it, see [`crate::allow::FingerprintKey`]), and a preview
//! that shows at most a rule's public token prefix.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt;

pub use crate::catalog::Rule;

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How sure a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Confidence {
    /// A guess: a random-looking value under a secret-like name.
    Low,
    /// A token shape with a provider prefix but no checksum, or a password
    /// in a connection string.
    Medium,
    /// A checksummed or structured credential (GitHub/npm checksum, a
    /// private key block, an age key with its bech32 checksum, a decoded
    /// JWT) or a structural Kubernetes check.
    High,
}

impl Confidence {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    /// Parses `low`, `medium` or `high`.
    pub fn from_name(s: &str) -> Option<Confidence> {
        match s {
            "low" => Some(Confidence::Low),
            "medium" => Some(Confidence::Medium),
            "high" => Some(Confidence::High),
            _ => None,
        }
    }
}

/// Where a finding sits, judged from its path by common conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Context {
    /// Anything not recognised as a test or documentation.
    Production,
    /// Test code and fixtures (`test/`, `testdata/`, `__tests__/`,
    /// `fixtures/`, `*_test.go`, `test_*.py`, `*.spec.ts`, `FooTest.java`…).
    Test,
    /// Documentation and examples (`docs/`, `examples/`, `*.md`, `*.rst`…).
    Docs,
}

impl Context {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Production => "production",
            Context::Test => "test",
            Context::Docs => "docs",
        }
    }

    /// Parses `production`, `test` or `docs`.
    pub fn from_name(s: &str) -> Option<Context> {
        match s {
            "production" | "prod" => Some(Context::Production),
            "test" | "tests" => Some(Context::Test),
            "docs" | "doc" => Some(Context::Docs),
            _ => None,
        }
    }

    /// The context of a path (either `/` or `\\` separated).
    pub fn of_path(path: &str) -> Context {
        let lower = path.to_ascii_lowercase().replace('\\', "/");
        let mut segments: Vec<&str> = lower.split('/').filter(|s| !s.is_empty()).collect();
        let file = segments.pop().unwrap_or("");
        const TEST_DIRS: &[&str] = &[
            "test",
            "tests",
            "testdata",
            "test-data",
            "test_data",
            "testing",
            "__tests__",
            "__mocks__",
            "spec",
            "specs",
            "fixtures",
            "fixture",
            "e2e",
            "testutil",
            "testutils",
            "mocks",
            "mock",
            "fake",
            "fakes",
        ];
        const DOC_DIRS: &[&str] = &[
            "docs",
            "doc",
            "documentation",
            "examples",
            "example",
            "samples",
            "sample",
            "demo",
            "demos",
            "tutorial",
            "tutorials",
            "website",
            "content",
            "site",
        ];
        let test_dir = |s: &&str| {
            let s = s.trim_start_matches(['_', '.']);
            TEST_DIRS.contains(&s)
                || ["-test", "_test", "-tests", "_tests", "-testdata"]
                    .iter()
                    .any(|t| s.ends_with(t))
                || ["test-", "test_", "tests-", "tests_"]
                    .iter()
                    .any(|t| s.starts_with(t))
        };
        if segments.iter().any(test_dir) {
            return Context::Test;
        }
        let stem = file.split('.').next().unwrap_or("");
        let test_file = file.contains("_test.")
            || file.contains(".test.")
            || file.contains(".spec.")
            || file.contains("_spec.")
            || stem.starts_with("test_")
            || stem.ends_with("test") && file.ends_with(".java")
            || stem.ends_with("tests") && (file.ends_with(".java") || file.ends_with(".cs"))
            || stem == "conftest"
            || file.ends_with(".test")
            || file.ends_with(".testing")
            || stem.starts_with("fake_")
            || stem.starts_with("mock_");
        if test_file {
            return Context::Test;
        }
        let doc_ext = [
            ".md",
            ".markdown",
            ".rst",
            ".adoc",
            ".asciidoc",
            ".mdx",
            ".ipynb",
        ]
        .iter()
        .any(|e| file.ends_with(e));
        if doc_ext
            || segments.iter().any(|s| DOC_DIRS.contains(s))
            || stem.ends_with("example")
            || stem.ends_with("-example")
            || file.ends_with(".example")
            || file.ends_with(".sample")
            || file.ends_with(".dist")
            || file.ends_with(".tmpl") && stem.contains("example")
        {
            return Context::Docs;
        }
        Context::Production
    }
}

/// An in-memory SHA-256 digest of (rule, path, secret): what baselines key
/// and stretch into a fingerprint. Never printed, serialised or logged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub(crate) [u8; 32]);

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(..)")
    }
}

/// One problem found by a scan. Holds no secret: only where it is, what it
/// is, how sure, an in-memory digest, and a redacted preview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Path as given or walked (for git sources: the path in the repository).
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The rule that fired.
    pub rule: Rule,
    /// How sure the finding is.
    pub confidence: Confidence,
    /// Test fixture, docs/example or production, by path.
    pub context: Context,
    /// What is wrong and what to do.
    pub message: String,
    /// The salted, stretched fingerprint (hex) when the scan is keyed by a
    /// baseline's salt ([`crate::allow::FingerprintKey`]); none otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The digest the fingerprint is computed from (never serialised).
    #[serde(skip)]
    pub digest: Digest,
    /// A preview that never shows the secret (at most a public token prefix).
    pub redacted: String,
    /// The commit that introduced the blob, for `--staged`/`--since`/`--history`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Finding {
    /// A finding of `rule` about `secret` at `path:line:column`, with the
    /// rule's confidence and the path's context.
    pub fn new(
        path: &str,
        line: usize,
        column: usize,
        rule: Rule,
        message: String,
        secret: &[u8],
        commit: Option<&str>,
    ) -> Finding {
        Finding {
            path: path.to_string(),
            line,
            column,
            rule,
            confidence: rule.confidence(),
            context: Context::of_path(path),
            message,
            fingerprint: None,
            digest: digest(rule, path, secret),
            redacted: redact(rule, secret),
            commit: commit.map(str::to_string),
        }
    }
}

/// The digest of a finding: SHA-256 over rule id, path and secret. Stable
/// across line moves.
pub fn digest(rule: Rule, path: &str, secret: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update(rule.id().as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(secret);
    Digest(h.finalize().into())
}

/// The fingerprint version 1 baselines stored: the first 16 bytes of the
/// digest, hex (unkeyed; only read, never written any more).
pub(crate) fn legacy_fingerprint(d: &Digest) -> String {
    hex::encode(&d.0[..16])
}

/// A preview of a secret that shows none of it: the rule's public token
/// prefix when it has one (`ghp_…`, `AKIA…`), else `…`. Nothing of a
/// generic value, a password or a base64 value is ever shown.
pub fn redact(rule: Rule, secret: &[u8]) -> String {
    let n = rule
        .public_prefix()
        .iter()
        .filter(|p| secret.starts_with(p.as_bytes()))
        .map(|p| p.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in String::from_utf8_lossy(&secret[..n]).chars() {
        push_escaped(&mut out, c);
    }
    out.push('…');
    out
}

/// Escapes control characters (and other non-printing characters) so a
/// report can be printed on a terminal safely.
pub fn escape_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
        {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
        c => out.push(c),
    }
}
