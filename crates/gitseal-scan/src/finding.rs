//! What a scan reports: the rule catalogue, one finding, how sure it is and
//! where it sits, its digest and its redacted preview. A finding never holds
//! the secret it found: only an in-memory SHA-256 digest of (rule, path,
//! secret), never printed (reports and baselines carry a salted, stretched
//! fingerprint of it, see [`crate::allow::FingerprintKey`]), and a preview
//! that shows at most a rule's public token prefix.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// Every rule `verify` knows. The order is the priority used when two
/// findings cover the same bytes: the earlier, more specific rule wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    KubePlaintextSecret,
    KustomizeSecretLiteral,
    KustomizeSecretFile,
    SealedValueInvalid,
    SealedUnknownKey,
    SealedBindingMismatch,
    SealedRetiredKey,
    SealedMissingRecipient,
    SealedWrongEnvironment,
    SealedTemplateInvalid,
    GcpServiceAccountKey,
    AwsAccessKeyId,
    AwsSecretAccessKey,
    AzureStorageKey,
    GithubToken,
    GithubFineGrainedToken,
    GitlabToken,
    SlackToken,
    SlackWebhook,
    StripeSecretKey,
    SendgridApiKey,
    OpenaiApiKey,
    NpmToken,
    GoogleApiKey,
    PypiToken,
    AgeSecretKey,
    OpensshPrivateKey,
    PuttyPrivateKey,
    PrivateKey,
    Jwt,
    UrlPassword,
    GenericSecret,
}

impl Rule {
    /// All rules, in priority order.
    pub const ALL: &'static [Rule] = &[
        Rule::KubePlaintextSecret,
        Rule::KustomizeSecretLiteral,
        Rule::KustomizeSecretFile,
        Rule::SealedValueInvalid,
        Rule::SealedUnknownKey,
        Rule::SealedBindingMismatch,
        Rule::SealedRetiredKey,
        Rule::SealedMissingRecipient,
        Rule::SealedWrongEnvironment,
        Rule::SealedTemplateInvalid,
        Rule::GcpServiceAccountKey,
        Rule::AwsAccessKeyId,
        Rule::AwsSecretAccessKey,
        Rule::AzureStorageKey,
        Rule::GithubToken,
        Rule::GithubFineGrainedToken,
        Rule::GitlabToken,
        Rule::SlackToken,
        Rule::SlackWebhook,
        Rule::StripeSecretKey,
        Rule::SendgridApiKey,
        Rule::OpenaiApiKey,
        Rule::NpmToken,
        Rule::GoogleApiKey,
        Rule::PypiToken,
        Rule::AgeSecretKey,
        Rule::OpensshPrivateKey,
        Rule::PuttyPrivateKey,
        Rule::PrivateKey,
        Rule::Jwt,
        Rule::UrlPassword,
        Rule::GenericSecret,
    ];

    /// The stable rule id printed in reports and used in fingerprints.
    pub fn id(self) -> &'static str {
        match self {
            Rule::KubePlaintextSecret => "kube-plaintext-secret",
            Rule::KustomizeSecretLiteral => "kustomize-secret-literal",
            Rule::KustomizeSecretFile => "kustomize-secret-file",
            Rule::SealedValueInvalid => "sealed-value-invalid",
            Rule::SealedUnknownKey => "sealed-unknown-key",
            Rule::SealedBindingMismatch => "sealed-binding-mismatch",
            Rule::SealedRetiredKey => "sealed-retired-key",
            Rule::SealedMissingRecipient => "sealed-missing-recipient",
            Rule::SealedWrongEnvironment => "sealed-wrong-environment",
            Rule::SealedTemplateInvalid => "sealed-template-invalid",
            Rule::GcpServiceAccountKey => "gcp-service-account-key",
            Rule::AwsAccessKeyId => "aws-access-key-id",
            Rule::AwsSecretAccessKey => "aws-secret-access-key",
            Rule::AzureStorageKey => "azure-storage-key",
            Rule::GithubToken => "github-token",
            Rule::GithubFineGrainedToken => "github-fine-grained-token",
            Rule::GitlabToken => "gitlab-token",
            Rule::SlackToken => "slack-token",
            Rule::SlackWebhook => "slack-webhook",
            Rule::StripeSecretKey => "stripe-secret-key",
            Rule::SendgridApiKey => "sendgrid-api-key",
            Rule::OpenaiApiKey => "openai-api-key",
            Rule::NpmToken => "npm-token",
            Rule::GoogleApiKey => "google-api-key",
            Rule::PypiToken => "pypi-token",
            Rule::AgeSecretKey => "age-secret-key",
            Rule::PuttyPrivateKey => "putty-private-key",
            Rule::OpensshPrivateKey => "openssh-private-key",
            Rule::PrivateKey => "private-key",
            Rule::Jwt => "jwt",
            Rule::UrlPassword => "url-password",
            Rule::GenericSecret => "generic-secret",
        }
    }

    /// A one-line description of what the rule detects.
    pub fn description(self) -> &'static str {
        match self {
            Rule::KubePlaintextSecret => "Kubernetes Secret with plaintext data committed",
            Rule::KustomizeSecretLiteral => {
                "kustomize secretGenerator literal with a plaintext value"
            }
            Rule::KustomizeSecretFile => {
                "committed file read by a kustomize secretGenerator (envs/env/files) with plaintext content"
            }
            Rule::SealedValueInvalid => "SealedSecret value that is not a valid gitseal envelope",
            Rule::SealedUnknownKey => {
                "SealedSecret value sealed to a key that is not in the keyring"
            }
            Rule::SealedBindingMismatch => {
                "SealedSecret value whose binding does not match where it sits"
            }
            Rule::SealedRetiredKey => "SealedSecret value sealed to a key the keyring retires",
            Rule::SealedMissingRecipient => {
                "SealedSecret value not sealed to a recipient its environment requires"
            }
            Rule::SealedWrongEnvironment => {
                "SealedSecret value sealed for another environment than its path maps to"
            }
            Rule::SealedTemplateInvalid => {
                "SealedSecret template that does not parse, is refused, or reads an input the object does not have"
            }
            Rule::GcpServiceAccountKey => "Google Cloud service account key file",
            Rule::AwsAccessKeyId => "AWS access key id",
            Rule::AwsSecretAccessKey => "AWS secret access key",
            Rule::AzureStorageKey => "Azure storage account key or connection string",
            Rule::GithubToken => "GitHub token (classic, OAuth, user, server or refresh)",
            Rule::GithubFineGrainedToken => "GitHub fine-grained personal access token",
            Rule::GitlabToken => "GitLab personal/project/group access token",
            Rule::SlackToken => "Slack API token",
            Rule::SlackWebhook => "Slack incoming webhook URL",
            Rule::StripeSecretKey => "Stripe live secret or restricted key",
            Rule::SendgridApiKey => "SendGrid API key",
            Rule::OpenaiApiKey => "OpenAI API key",
            Rule::NpmToken => "npm access token",
            Rule::GoogleApiKey => "Google API key",
            Rule::PypiToken => "PyPI upload token",
            Rule::AgeSecretKey => "age secret key (gitseal's private key format)",
            Rule::PuttyPrivateKey => "PuTTY private key file",
            Rule::OpensshPrivateKey => "OpenSSH private key",
            Rule::PrivateKey => "PEM private key block",
            Rule::Jwt => "JSON Web Token",
            Rule::UrlPassword => "URL or connection string with an embedded password",
            Rule::GenericSecret => "High-entropy value assigned to a secret-like key",
        }
    }

    /// What the user should do about a finding of this rule.
    pub fn help(self) -> &'static str {
        match self {
            Rule::KubePlaintextSecret => {
                "seal it: `gitseal seal -f secret.yaml > sealed.yaml`, commit the SealedSecret and delete the Secret"
            }
            Rule::KustomizeSecretLiteral => {
                "move the value into a SealedSecret (`gitseal seal`) instead of a secretGenerator literal"
            }
            Rule::KustomizeSecretFile => {
                "seal the values (`gitseal seal`) and commit the SealedSecret, then delete the file, drop it from the secretGenerator and remove it from Git history (rotate the values)"
            }
            Rule::SealedValueInvalid => {
                "re-seal the value with `gitseal seal`; the envelope is corrupt or not a gitseal value"
            }
            Rule::SealedUnknownKey => {
                "re-seal to a key listed in the keyring (`gitseal reseal`), or add the key to .gitseal/keys.yaml if it is legitimate"
            }
            Rule::SealedBindingMismatch => {
                "a sealed value cannot be moved: seal it again for this namespace, name and item key"
            }
            Rule::SealedRetiredKey | Rule::SealedMissingRecipient | Rule::SealedWrongEnvironment => {
                "re-seal it for its environment: `gitseal reseal --all -i KEY` (with --dry-run to list the files first)"
            }
            Rule::SealedTemplateInvalid => {
                "fix the template (docs/templates.md) or add the missing input; check it offline with `gitseal render -f FILE`"
            }
            Rule::AgeSecretKey => {
                "remove the key file from the repository and its history, and retire the key in the keyring (`gitseal keygen` a new one, `gitseal reseal --all`): everything sealed to it is readable"
            }
            Rule::PrivateKey | Rule::OpensshPrivateKey | Rule::PuttyPrivateKey => {
                "remove the key from the repository, rotate it, and seal it with `gitseal seal` if it must be deployed"
            }
            Rule::GenericSecret | Rule::UrlPassword => {
                "move the value into a SealedSecret or a Vault reference and rotate it; add `gitseal:allow` if it is not a secret"
            }
            _ => "revoke and rotate the credential, then remove it from the repository (and its history)",
        }
    }

    /// How sure a finding of this rule is.
    pub fn confidence(self) -> Confidence {
        match self {
            Rule::GenericSecret => Confidence::Low,
            Rule::AwsSecretAccessKey
            | Rule::GitlabToken
            | Rule::SlackToken
            | Rule::GoogleApiKey
            | Rule::UrlPassword => Confidence::Medium,
            _ => Confidence::High,
        }
    }

    /// Public, non-secret prefixes of this rule's tokens that a preview may
    /// show.
    pub fn public_prefix(self) -> &'static [&'static str] {
        match self {
            Rule::AwsAccessKeyId => &["AKIA", "ASIA", "ABIA", "ACCA"],
            Rule::GithubToken => &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
            Rule::GithubFineGrainedToken => &["github_pat_"],
            Rule::GitlabToken => &["glpat-", "gldt-", "glrt-"],
            Rule::SlackToken => &["xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "xoxe-"],
            Rule::SlackWebhook => &["https://hooks.slack.com/", "hooks.slack.com/"],
            Rule::StripeSecretKey => &["sk_live_", "rk_live_"],
            Rule::SendgridApiKey => &["SG."],
            Rule::OpenaiApiKey => &["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"],
            Rule::NpmToken => &["npm_"],
            Rule::GoogleApiKey => &["AIza"],
            Rule::PypiToken => &["pypi-"],
            Rule::AgeSecretKey => &["AGE-SECRET-KEY-1"],
            Rule::Jwt => &["eyJ"],
            _ => &[],
        }
    }

    /// Looks a rule up by its id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.id() == id)
    }
}

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
