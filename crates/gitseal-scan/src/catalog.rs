//! The rule table: every rule `verify` knows is one entry below (id,
//! description, help, confidence, SARIF severity, public prefixes,
//! prefilter literals, patterns and check). The [`Rule`] enum, its
//! accessors, the Aho-Corasick prefilters and the dispatch of
//! [`crate::rules`], and the SARIF rule metadata of [`crate::report`] are
//! all derived from it: adding a rule is adding an entry (and, for a
//! [`Check::Custom`] rule, its function).
//!
//! The order of the entries is the priority used when two findings cover
//! the same bytes: the earlier, more specific rule wins.

use crate::finding::Confidence;
use crate::rules::{self, Candidate, FileState, Hit};

/// A custom check, run at each prefilter hit of its rule's literals.
pub(crate) type CustomCheck = fn(&Candidate<'_>, &mut FileState, &mut Vec<Hit>);

/// How a rule's candidates are judged.
#[derive(Clone, Copy)]
pub(crate) enum Check {
    /// Reported by the Kubernetes, kustomize and key-lifecycle checks
    /// (`kube.rs`, `kustomize.rs`, `lifecycle.rs`), not by pattern. These
    /// are independent checks and never hide each other.
    Structural,
    /// A token that starts at the literal: the first pattern matches there,
    /// between word boundaries. With `random_tail`, what follows the public
    /// prefix must not be a placeholder and must look random (Shannon
    /// entropy ≥ 3 bits per character).
    Token {
        /// Whether the part after the public prefix must look random.
        random_tail: bool,
    },
    /// A token as [`Check::Token`] whose last six characters are the
    /// base62 CRC32 of the 30 before them (GitHub, npm).
    Crc32,
    /// The literals are secret-like key words: the value assigned to the
    /// identifier around them is judged (literal values only, never code).
    KeyValue,
    /// Reported by the check of the rule it narrows, at that rule's
    /// literals: the key/value check for AWS secret keys, the PEM check for
    /// OpenSSH keys.
    Narrowed,
    /// A check of its own at each literal.
    Custom(CustomCheck),
}

/// One rule.
pub(crate) struct Spec {
    /// The rule.
    pub rule: Rule,
    /// The stable id printed in reports and used in fingerprints.
    pub id: &'static str,
    /// What it detects, in one line.
    pub description: &'static str,
    /// What the user should do about a finding.
    pub help: &'static str,
    /// How sure a finding is.
    pub confidence: Confidence,
    /// SARIF `security-severity` (0.0–10.0).
    pub severity: &'static str,
    /// Public, non-secret token prefixes a preview may show.
    pub public_prefix: &'static [&'static str],
    /// Case-sensitive literals of the prefilter: a check runs only where one
    /// of them occurs.
    pub literals: &'static [&'static str],
    /// Regexes compiled once; [`Check::Token`] and [`Check::Crc32`] match
    /// the first anchored at the literal, a custom check may use them all.
    pub patterns: &'static [&'static str],
    /// How candidates are judged.
    pub check: Check,
}

const ROTATE: &str =
    "revoke and rotate the credential, then remove it from the repository (and its history)";
const RESEAL_ENV: &str =
    "re-seal it for its environment: `gitseal reseal --all -i KEY` (with --dry-run to list the files first)";
const REMOVE_KEY: &str =
    "remove the key from the repository, rotate it, and seal it with `gitseal seal` if it must be deployed";
const MOVE_VALUE: &str =
    "move the value into a SealedSecret or a Vault reference and rotate it; add `gitseal:allow` if it is not a secret";

impl Spec {
    const DEFAULT: Spec = Spec {
        rule: Rule::GenericSecret,
        id: "",
        description: "",
        help: ROTATE,
        confidence: Confidence::High,
        severity: "9.0",
        public_prefix: &[],
        literals: &[],
        patterns: &[],
        check: Check::Structural,
    };
}

macro_rules! rule_table {
    ($( $variant:ident { id: $id:literal, description: $desc:literal $(, $field:ident: $value:expr)* $(,)? } )*) => {
        /// Every rule `verify` knows (one entry each in the rule table of
        /// `catalog.rs`). The
        /// order is the priority used when two findings cover the same
        /// bytes: the earlier, more specific rule wins.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule {
            $( #[doc = $desc] $variant, )*
        }

        impl Rule {
            /// All rules, in priority order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];
        }

        /// The table, in [`Rule`] order.
        pub(crate) static RULES: &[Spec] = &[$(
            Spec { rule: Rule::$variant, id: $id, description: $desc, $($field: $value,)* ..Spec::DEFAULT }
        ),*];
    };
}

rule_table! {
    KubePlaintextSecret {
        id: "kube-plaintext-secret",
        description: "Kubernetes Secret with plaintext data committed",
        help: "seal it: `gitseal seal -f secret.yaml > sealed.yaml`, commit the SealedSecret and delete the Secret",
    }
    KustomizeSecretLiteral {
        id: "kustomize-secret-literal",
        description: "kustomize secretGenerator literal with a plaintext value",
        help: "move the value into a SealedSecret (`gitseal seal`) instead of a secretGenerator literal",
    }
    KustomizeSecretFile {
        id: "kustomize-secret-file",
        description: "committed file read by a kustomize secretGenerator (envs/env/files) with plaintext content",
        help: "seal the values (`gitseal seal`) and commit the SealedSecret, then delete the file, drop it from the secretGenerator and remove it from Git history (rotate the values)",
    }
    SealedValueInvalid {
        id: "sealed-value-invalid",
        description: "SealedSecret value that is not a valid gitseal envelope",
        help: "re-seal the value with `gitseal seal`; the envelope is corrupt or not a gitseal value",
        severity: "7.0",
    }
    SealedUnknownKey {
        id: "sealed-unknown-key",
        description: "SealedSecret value sealed to a key that is not in the keyring",
        help: "re-seal to a key listed in the keyring (`gitseal reseal`), or add the key to .gitseal/keys.yaml if it is legitimate",
    }
    SealedBindingMismatch {
        id: "sealed-binding-mismatch",
        description: "SealedSecret value whose binding does not match where it sits",
        help: "a sealed value cannot be moved: seal it again for this namespace, name and item key",
        severity: "7.0",
    }
    SealedRetiredKey {
        id: "sealed-retired-key",
        description: "SealedSecret value sealed to a key the keyring retires",
        help: RESEAL_ENV,
    }
    SealedMissingRecipient {
        id: "sealed-missing-recipient",
        description: "SealedSecret value not sealed to a recipient its environment requires",
        help: RESEAL_ENV,
    }
    SealedWrongEnvironment {
        id: "sealed-wrong-environment",
        description: "SealedSecret value sealed for another environment than its path maps to",
        help: RESEAL_ENV,
    }
    SealedTemplateInvalid {
        id: "sealed-template-invalid",
        description: "SealedSecret template that does not parse, is refused, or reads an input the object does not have",
        help: "fix the template (docs/templates.md) or add the missing input; check it offline with `gitseal render -f FILE`",
        severity: "7.0",
    }
    GcpServiceAccountKey {
        id: "gcp-service-account-key",
        description: "Google Cloud service account key file",
        literals: &["service_account"],
        check: Check::Custom(rules::gcp),
    }
    AwsAccessKeyId {
        id: "aws-access-key-id",
        description: "AWS access key id",
        public_prefix: &["AKIA", "ASIA", "ABIA", "ACCA"],
        literals: &["AKIA", "ASIA", "ABIA", "ACCA"],
        patterns: &[r"^(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"],
        check: Check::Token { random_tail: true },
    }
    AwsSecretAccessKey {
        id: "aws-secret-access-key",
        description: "AWS secret access key",
        confidence: Confidence::Medium,
        check: Check::Narrowed,
    }
    AzureStorageKey {
        id: "azure-storage-key",
        description: "Azure storage account key or connection string",
        literals: &["AccountKey="],
        patterns: &[r"^AccountKey=([A-Za-z0-9+/]{86}==)"],
        check: Check::Custom(rules::azure),
    }
    GithubToken {
        id: "github-token",
        description: "GitHub token (classic, OAuth, user, server or refresh)",
        public_prefix: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        literals: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        patterns: &[r"^gh[pousr]_[A-Za-z0-9]{36}"],
        check: Check::Crc32,
    }
    GithubFineGrainedToken {
        id: "github-fine-grained-token",
        description: "GitHub fine-grained personal access token",
        public_prefix: &["github_pat_"],
        literals: &["github_pat_"],
        patterns: &[r"^github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"],
        check: Check::Token { random_tail: true },
    }
    GitlabToken {
        id: "gitlab-token",
        description: "GitLab personal/project/group access token",
        confidence: Confidence::Medium,
        public_prefix: &["glpat-", "gldt-", "glrt-"],
        literals: &["glpat-", "gldt-", "glrt-"],
        patterns: &[r"^gl(?:pat|dt|rt)-[A-Za-z0-9_\-]{20,300}(?:\.[0-9a-z]{2}[0-9a-z]{7})?"],
        check: Check::Token { random_tail: true },
    }
    SlackToken {
        id: "slack-token",
        description: "Slack API token",
        confidence: Confidence::Medium,
        public_prefix: &["xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "xoxe-"],
        literals: &["xox"],
        patterns: &[r"^xox[abprse]-(?:[0-9]{6,}-)+[A-Za-z0-9\-]{10,}"],
        check: Check::Token { random_tail: true },
    }
    SlackWebhook {
        id: "slack-webhook",
        description: "Slack incoming webhook URL",
        public_prefix: &["https://hooks.slack.com/", "hooks.slack.com/"],
        literals: &["hooks.slack.com/"],
        patterns: &[r"^hooks\.slack\.com/(?:services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,}|workflows/T[A-Z0-9]{6,}/A[A-Z0-9]{6,}/[0-9]{10,}/[A-Za-z0-9]{20,})"],
        check: Check::Token { random_tail: false },
    }
    StripeSecretKey {
        id: "stripe-secret-key",
        description: "Stripe live secret or restricted key",
        public_prefix: &["sk_live_", "rk_live_"],
        literals: &["sk_live_", "rk_live_"],
        patterns: &[r"^[rs]k_live_[A-Za-z0-9]{20,247}"],
        check: Check::Token { random_tail: true },
    }
    SendgridApiKey {
        id: "sendgrid-api-key",
        description: "SendGrid API key",
        public_prefix: &["SG."],
        literals: &["SG."],
        patterns: &[r"^SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"],
        check: Check::Token { random_tail: false },
    }
    OpenaiApiKey {
        id: "openai-api-key",
        description: "OpenAI API key",
        public_prefix: &["sk-proj-", "sk-svcacct-", "sk-admin-", "sk-"],
        // The project/service/admin prefixes, and the base64 of "OpenAI"
        // every key carries inside (older `sk-` keys have only that).
        literals: &["sk-proj-", "sk-svcacct-", "sk-admin-", "T3BlbkFJ"],
        patterns: &[
            r"^sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,250}",
            r"sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_\-]{16,200}T3BlbkFJ[A-Za-z0-9_\-]{16,200}",
        ],
        check: Check::Custom(rules::openai),
    }
    NpmToken {
        id: "npm-token",
        description: "npm access token",
        public_prefix: &["npm_"],
        literals: &["npm_"],
        patterns: &[r"^npm_[A-Za-z0-9]{36}"],
        check: Check::Crc32,
    }
    GoogleApiKey {
        id: "google-api-key",
        description: "Google API key",
        confidence: Confidence::Medium,
        public_prefix: &["AIza"],
        literals: &["AIza"],
        patterns: &[r"^AIza[0-9A-Za-z_\-]{35}"],
        check: Check::Token { random_tail: true },
    }
    PypiToken {
        id: "pypi-token",
        description: "PyPI upload token",
        public_prefix: &["pypi-"],
        literals: &["pypi-AgE"],
        patterns: &[r"^pypi-AgE[A-Za-z0-9_\-]{70,}"],
        check: Check::Token { random_tail: false },
    }
    AgeSecretKey {
        id: "age-secret-key",
        description: "age secret key (gitseal's private key format)",
        help: "remove the key file from the repository and its history, and retire the key in the keyring (`gitseal keygen` a new one, `gitseal reseal --all`): everything sealed to it is readable",
        public_prefix: &["AGE-SECRET-KEY-1"],
        literals: &["AGE-SECRET-KEY-1"],
        patterns: &[r"^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"],
        check: Check::Custom(rules::age),
    }
    OpensshPrivateKey {
        id: "openssh-private-key",
        description: "OpenSSH private key",
        help: REMOVE_KEY,
        check: Check::Narrowed,
    }
    PuttyPrivateKey {
        id: "putty-private-key",
        description: "PuTTY private key file",
        help: REMOVE_KEY,
        literals: &["PuTTY-User-Key-File-"],
        check: Check::Custom(rules::putty),
    }
    PrivateKey {
        id: "private-key",
        description: "PEM private key block",
        help: REMOVE_KEY,
        literals: &["-----BEGIN "],
        check: Check::Custom(rules::pem),
    }
    Jwt {
        id: "jwt",
        description: "JSON Web Token",
        severity: "7.0",
        public_prefix: &["eyJ"],
        literals: &["eyJ"],
        patterns: &[r"^eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,}"],
        check: Check::Custom(rules::jwt),
    }
    UrlPassword {
        id: "url-password",
        description: "URL or connection string with an embedded password",
        help: MOVE_VALUE,
        confidence: Confidence::Medium,
        literals: &["://", "jdbc:"],
        check: Check::Custom(rules::url_password),
    }
    GenericSecret {
        id: "generic-secret",
        description: "High-entropy value assigned to a secret-like key",
        help: MOVE_VALUE,
        confidence: Confidence::Low,
        severity: "7.0",
        // Secret-like key words in the spellings identifiers use (lower,
        // UPPER, Capitalised, camelCase), searched case-sensitively: a set
        // of exact literals keeps the SIMD prefilter on, which a
        // case-insensitive automaton loses.
        literals: &[
            "pass", "Pass", "PASS", "pwd", "Pwd", "PWD", "secret", "Secret", "SECRET", "token",
            "Token", "TOKEN", "credential", "Credential", "CREDENTIAL", "apikey", "apiKey",
            "ApiKey", "APIKEY", "api_key", "API_KEY", "api-key", "API-KEY", "accesskey",
            "accessKey", "AccessKey", "ACCESSKEY", "access_key", "ACCESS_KEY", "privatekey",
            "privateKey", "PrivateKey", "PRIVATEKEY", "private_key", "PRIVATE_KEY", "_auth",
        ],
        check: Check::KeyValue,
    }
}

impl Rule {
    /// This rule's entry in the table.
    pub(crate) fn spec(self) -> &'static Spec {
        &RULES[self as usize]
    }

    /// The stable rule id printed in reports and used in fingerprints.
    pub fn id(self) -> &'static str {
        self.spec().id
    }

    /// A one-line description of what the rule detects.
    pub fn description(self) -> &'static str {
        self.spec().description
    }

    /// What the user should do about a finding of this rule.
    pub fn help(self) -> &'static str {
        self.spec().help
    }

    /// How sure a finding of this rule is.
    pub fn confidence(self) -> Confidence {
        self.spec().confidence
    }

    /// SARIF `security-severity` of the rule.
    pub fn security_severity(self) -> &'static str {
        self.spec().severity
    }

    /// Public, non-secret prefixes of this rule's tokens that a preview may
    /// show.
    pub fn public_prefix(self) -> &'static [&'static str] {
        self.spec().public_prefix
    }

    /// Whether the rule is a structural (Kubernetes, kustomize, key
    /// lifecycle) check rather than a pattern.
    pub fn is_structural(self) -> bool {
        matches!(self.spec().check, Check::Structural)
    }

    /// Looks a rule up by its id.
    pub fn from_id(id: &str) -> Option<Rule> {
        RULES.iter().find(|s| s.id == id).map(|s| s.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut ids = std::collections::HashSet::new();
        for (i, s) in RULES.iter().enumerate() {
            assert_eq!(s.rule as usize, i, "{}", s.id);
            assert!(ids.insert(s.id), "duplicate id {}", s.id);
            assert!(!s.description.is_empty(), "{}", s.id);
            let wants_pattern = matches!(s.check, Check::Token { .. } | Check::Crc32);
            assert!(!wants_pattern || !s.patterns.is_empty(), "{}", s.id);
            let wants_literals = matches!(
                s.check,
                Check::Token { .. } | Check::Crc32 | Check::KeyValue | Check::Custom(_)
            );
            assert_eq!(wants_literals, !s.literals.is_empty(), "{}", s.id);
            for p in s.patterns {
                assert!(regex::bytes::Regex::new(p).is_ok(), "{}: {p}", s.id);
            }
            assert!(s
                .severity
                .parse::<f32>()
                .is_ok_and(|v| (0.0..=10.0).contains(&v)));
        }
        assert_eq!(Rule::ALL.len(), RULES.len());
    }
}
