//! What a scan reports: the rule catalogue, one finding, its fingerprint and
//! its redacted preview. A finding never holds the secret it found: only a
//! keyed-free SHA-256 fingerprint of (rule, path, secret) and a preview that
//! shows at most a few leading characters.

use serde::Serialize;
use sha2::{Digest, Sha256};
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
    OpensshPrivateKey,
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
        Rule::OpensshPrivateKey,
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
            Rule::PrivateKey | Rule::OpensshPrivateKey => {
                "remove the key from the repository, rotate it, and seal it with `gitseal seal` if it must be deployed"
            }
            Rule::GenericSecret | Rule::UrlPassword => {
                "move the value into a SealedSecret or a Vault reference and rotate it; add `gitseal:allow` if it is not a secret"
            }
            _ => "revoke and rotate the credential, then remove it from the repository (and its history)",
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

/// One problem found by a scan. Holds no secret: only where it is, what it
/// is, a fingerprint, and a redacted preview.
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
    /// What is wrong and what to do.
    pub message: String,
    /// Stable hex fingerprint of (rule, path, secret).
    pub fingerprint: String,
    /// A preview that never shows the whole secret.
    pub redacted: String,
    /// The commit that introduced the blob, for `--staged`/`--since`/`--history`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The fingerprint of a finding: SHA-256 over rule id, path and secret,
/// hex, first 32 characters. Stable across line moves.
pub fn fingerprint(rule: Rule, path: &str, secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(rule.id().as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(secret);
    let digest = h.finalize();
    let mut s = hex::encode(digest);
    s.truncate(32);
    s
}

/// A preview of a secret: up to `min(4, len/4)` leading characters then `…`,
/// with control characters escaped. Never the whole value.
pub fn redact(secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let n = text.chars().count();
    let shown = (n / 4).min(4);
    let mut out = String::new();
    for c in text.chars().take(shown) {
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
