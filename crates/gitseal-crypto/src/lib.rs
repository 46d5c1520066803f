//! gitseal-crypto: keys, key ids, RFC 9180 HPKE and the sealed-value
//! envelope. No I/O, no async: everything here is a pure function of its
//! inputs and the operating system's random numbers.
//!
//! ```
//! use gitseal_crypto::{seal, Binding, Envelope, Identity, Scope};
//! use secrecy::ExposeSecret;
//!
//! let identity = Identity::generate();
//! let binding = Binding::new(Scope::Strict, "prod", "db", "password");
//! let sealed = seal(b"hunter2", &[identity.recipient().clone()], &binding)?.to_string();
//! assert!(sealed.starts_with("gs1:"));
//!
//! let envelope = Envelope::parse(&sealed)?;
//! let opened = envelope.open(&[identity], &binding)?;
//! assert_eq!(opened.expose_secret(), b"hunter2");
//! # Ok::<(), gitseal_crypto::Error>(())
//! ```

pub mod envelope;
pub mod hpke;
mod kdf;
pub mod keys;

pub use envelope::{
    is_sealed, seal, Binding, Envelope, Opener, Scope, Sealer, MAX_RECIPIENTS, PREFIX,
};
pub use keys::{Identity, KeyId, Recipient};

/// Everything that can go wrong in this crate. Messages never contain a
/// secret: not a value, not an identity, not a line of an identity file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A recipient string is not an age X25519 recipient.
    #[error("invalid recipient: {reason} (expected an age X25519 recipient, age1…)")]
    InvalidRecipient {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An identity is not an age X25519 identity. The text is never repeated.
    #[error("invalid identity{}: expected an age X25519 identity (AGE-SECRET-KEY-1…)", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    InvalidIdentity {
        /// 1-based line of the identity file, when parsing a file.
        line: Option<usize>,
    },
    /// An identity file holds no identity.
    #[error("no identity found: the file has no AGE-SECRET-KEY-1… line")]
    NoIdentities,
    /// A key id is not 16 lowercase hex digits.
    #[error("invalid key id {0:?}: expected 16 lowercase hex digits")]
    InvalidKeyId(String),
    /// A scope name is not `strict`, `namespace` or `cluster`.
    #[error("invalid scope {0:?}: expected strict, namespace or cluster")]
    InvalidScope(String),
    /// Not a sealed value at all.
    #[error("not a sealed value: expected text starting with gs1:")]
    NotSealed,
    /// A sealed value of a format version this build does not know.
    #[error("sealed value has version {0:?}, which this gitseal does not understand (it reads gs1); upgrade gitseal")]
    UnsupportedVersion(String),
    /// The envelope's bytes are not a valid envelope.
    #[error("malformed sealed value: {0}")]
    Malformed(&'static str),
    /// Sealing needs at least one recipient.
    #[error("no recipients: give at least one recipient to seal to")]
    NoRecipients,
    /// Too many recipients for one value.
    #[error("too many recipients: at most {max}")]
    TooManyRecipients {
        /// The limit.
        max: usize,
    },
    /// A binding field (namespace, name, item key) is unusable.
    #[error("cannot bind the value: the {field} {reason}")]
    InvalidBinding {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A [`Sealer`] was asked to seal a second value with a binding it has
    /// already used: the two would share a wrapping key.
    #[error("this sealer has already sealed a value for this binding; seal each item of an object once, with one sealer per object")]
    BindingReused,
    /// The value is too long for the cipher (256 GiB).
    #[error("value too long to seal")]
    ValueTooLong,
    /// None of the given identities is a recipient of the value.
    #[error(
        "sealed to key id(s) {}, and none of the given keys has one of those ids",
        join_key_ids(sealed_to)
    )]
    UnknownKey {
        /// The key ids the value was sealed to.
        sealed_to: Vec<KeyId>,
    },
    /// The value does not open: altered, moved to another place or scope, or
    /// corrupted. Deliberately one error, whatever check failed.
    #[error("sealed value does not open: it was altered, or it is not bound to this namespace, name, item key and scope")]
    DoesNotOpen,
}

fn join_key_ids(ids: &[KeyId]) -> String {
    ids.iter()
        .map(KeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shortens user input quoted in an error message (never used for secrets).
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}
