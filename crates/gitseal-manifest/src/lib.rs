//! gitseal-manifest: `SealedSecret` and `Secret` manifests.
//!
//! Types of the `SealedSecret` resource ([`types`]), the keyring file
//! ([`keyring`]), reading multi-document YAML/JSON ([`input`]), sealing a
//! Secret manifest into a SealedSecret ([`mod@seal`]), opening it again
//! ([`open`]), adding items to an existing SealedSecret file ([`merge`]),
//! writing YAML/JSON ([`output`]) and writing files safely ([`files`]).
//!
//! Errors name the file, the document (1-based) and the item key, and never
//! contain a secret value: manifests are parsed into generic values and
//! their fields extracted by hand, so no serde message such as
//! `invalid type: string "hunter2"` can carry plaintext into an error.
//!
//! ```
//! use gitseal_crypto::{Identity, Scope};
//! use gitseal_manifest::{input, open, output, seal};
//!
//! let identity = Identity::generate();
//! let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n";
//! let docs = input::parse(text, "secret.yaml")?;
//! let recipients = [identity.recipient().clone()];
//! let sealed = seal::seal_documents(&docs, &seal::SealOptions::new(&recipients))?;
//! let yaml = output::render(&sealed, output::Format::Yaml)?;
//! assert!(yaml.contains("kind: SealedSecret") && !yaml.contains("hunter2"));
//!
//! let docs = input::parse(&yaml, "sealed.yaml")?;
//! let opened = open::open_documents(&docs, &open::OpenOptions::new(std::slice::from_ref(&identity)))?;
//! let secret = output::render(&opened.documents, output::Format::Yaml)?;
//! assert!(secret.contains("password: aHVudGVyMg=="));
//! # let _ = Scope::Strict;
//! # Ok::<(), gitseal_manifest::Error>(())
//! ```

use std::fmt;

use gitseal_crypto::KeyId;

pub mod edit;
pub mod files;
pub mod input;
pub mod keyring;
pub mod memory;
pub mod merge;
pub mod open;
pub mod output;
pub mod render;
pub mod reseal;
pub mod seal;
pub mod secret;
pub mod select;
pub mod types;
mod value;
mod yaml;

pub use types::{SealedSecret, SealedSecretSpec, SealedSecretStatus};

/// Where in the input something is: the file (or `<stdin>`), the document
/// (0-based here, printed 1-based), the line the document starts on, and
/// the index inside a `kind: List` when the object is one of its items.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file path, or `<stdin>`.
    pub origin: String,
    /// 0-based index of the document in the file (empty documents do not count).
    pub document: usize,
    /// 1-based line where the document starts, when known.
    pub line: Option<usize>,
    /// 0-based index in the `items` of a `kind: List` document.
    pub list_item: Option<usize>,
}

impl Location {
    /// The location of document `document` (0-based) of `origin`.
    pub fn new(origin: impl Into<String>, document: usize) -> Self {
        Location {
            origin: origin.into(),
            document,
            line: None,
            list_item: None,
        }
    }
}

impl fmt::Display for Location {
    /// E.g. `secret.yaml, document 2 (line 14)` or
    /// `list.json, document 1, List item 3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, document {}", self.origin, self.document + 1)?;
        if let Some(item) = self.list_item {
            write!(f, ", List item {}", item + 1)?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// Key ids as `a, b`, or `(none)`, for messages.
pub fn join_ids(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "(none)".to_string();
    }
    ids.iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything that can go wrong reading, sealing or opening manifests.
/// Messages name the file, document and item, never a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written. The message names the path
    /// once and never a temporary file.
    #[error("{path}: {}", files::reason(cause))]
    Io {
        /// The file.
        path: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// A keyring file is not valid.
    #[error("{origin}: invalid keyring: {message}")]
    Keyring {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A controller's published key list (`GET /v1/keys`, or the
    /// `gitseal-public-keys` ConfigMap) is unusable: not the expected
    /// JSON/YAML, no active key, or a key id that does not match its
    /// recipient (a garbled or tampered list).
    #[error("{origin}: {message}")]
    PublishedKeys {
        /// Where the list came from (a URL, a service, a file).
        origin: String,
        /// What is wrong.
        message: String,
        /// The cause, when a published recipient does not parse.
        source: Option<gitseal_crypto::Error>,
    },
    /// `--env` (or a path rule) names no environment of the keyring.
    #[error("unknown environment {name:?}; the keyring has: {}", known.join(", "))]
    UnknownEnvironment {
        /// The name asked for.
        name: String,
        /// The keyring's environments.
        known: Vec<String>,
    },
    /// Nothing says which environment to use.
    #[error(
        "which environment? {}the keyring has several ({}) and no defaultEnvironment: pass \
         --env NAME, or map the path to an environment under `paths:` in the keyring",
        path.as_ref().map(|p| format!("{p} matches no path rule of the keyring, and ")).unwrap_or_default(),
        known.join(", ")
    )]
    NoEnvironment {
        /// The file's path relative to the repository root, when there is one.
        path: Option<String>,
        /// The keyring's environments.
        known: Vec<String>,
    },
    /// The input is not valid YAML or JSON.
    #[error("{origin}: not valid {format}: {message}")]
    Syntax {
        /// The file.
        origin: String,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message, with absolute line numbers (never a value).
        message: String,
    },
    /// A command-line argument is unusable (`--namespace`, `--name`, `--key`…).
    #[error("{0}")]
    Argument(String),
    /// Output could not be produced (serialization).
    #[error("cannot write the output: {0}")]
    Output(String),
    /// The input holds no manifest at all.
    #[error("{origin}: no manifests found (the input is empty or only comments)")]
    Empty {
        /// The file.
        origin: String,
    },
    /// A manifest is not what the command expects (wrong kind, missing
    /// name, a field of the wrong type…).
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Box<Location>,
        /// What is wrong and what to do.
        message: String,
    },
    /// One item of a manifest is unusable (bad base64, not a string…).
    #[error("{at}, item {item:?}: {message}")]
    Item {
        /// Where.
        at: Box<Location>,
        /// The item key.
        item: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Sealing an item failed (e.g. an over-long binding field).
    #[error("{at}, item {item:?}: {source}")]
    Seal {
        /// Where.
        at: Box<Location>,
        /// The item key.
        item: String,
        /// The cause.
        source: gitseal_crypto::Error,
    },
    /// A sealed value is not a valid envelope.
    #[error("{at}, item {item:?}: {source}")]
    Envelope {
        /// Where.
        at: Box<Location>,
        /// The item key.
        item: String,
        /// The cause.
        source: gitseal_crypto::Error,
    },
    /// `--merge-into`: new items would be sealed to other keys than the
    /// object's other items.
    #[error(
        "{at}: the sealed items of {object} are sealed to key id(s) {}, but the new items would be \
         sealed to key id(s) {}: the object would need two different keys to open. Seal to the \
         object's recipients, or re-seal its items first (`gitseal reseal`, or `seal \
         --merge-into … --reseal-all -i OLD_KEY`)",
        join_ids(have),
        join_ids(want)
    )]
    RecipientsDiffer {
        /// The SealedSecret.
        at: Box<Location>,
        /// `namespace/name`.
        object: String,
        /// Key ids of its items.
        have: Vec<KeyId>,
        /// Key ids of the new recipients.
        want: Vec<KeyId>,
    },
    /// A template of `spec.template.data` does not render (or is refused).
    #[error("{at}: {source}")]
    Template {
        /// Where.
        at: Box<Location>,
        /// Which template, which line, why (never a value).
        source: gitseal_template::Error,
    },
    /// None of the given identities is a recipient of a sealed value.
    #[error(
        "{at}, item {item:?}: sealed to key id(s) {}, but the given identities have key id(s) {}; \
         use an identity of one of those keys",
        join_ids(sealed_to),
        join_ids(have)
    )]
    UnknownKey {
        /// Where.
        at: Box<Location>,
        /// The item key.
        item: String,
        /// Key ids the value was sealed to.
        sealed_to: Vec<KeyId>,
        /// Key ids of the identities that were tried.
        have: Vec<KeyId>,
    },
    /// A sealed value did not open: altered, or moved to another place.
    #[error(
        "{at}, item {item:?}: sealed value does not open{}; it is sealed to key id(s) {}",
        mismatch.as_ref().map(|m| format!(": {m}")).unwrap_or_else(|| ": it was altered, or sealed for another place".to_string()),
        join_ids(sealed_to)
    )]
    DoesNotOpen {
        /// Where.
        at: Box<Location>,
        /// The item key.
        item: String,
        /// Key ids the value was sealed to.
        sealed_to: Vec<KeyId>,
        /// How the clear header's binding differs from where the value sits,
        /// when it does (e.g. `sealed for namespace "a", found in namespace "b"`).
        mismatch: Option<String>,
    },
}

impl Error {
    /// Whether this is a sealed value that did not open (wrong key, altered,
    /// moved): the CLI's exit code 3.
    pub fn is_does_not_open(&self) -> bool {
        matches!(self, Error::UnknownKey { .. } | Error::DoesNotOpen { .. })
    }

    pub(crate) fn invalid(at: &Location, message: impl Into<String>) -> Error {
        Error::Invalid {
            at: Box::new(at.clone()),
            message: message.into(),
        }
    }

    pub(crate) fn item(at: &Location, item: &str, message: impl Into<String>) -> Error {
        Error::Item {
            at: Box::new(at.clone()),
            item: item.to_string(),
            message: message.into(),
        }
    }
}
