//! Sealing keys: X25519 key pairs in their age text forms, and key ids.
//!
//! A gitseal key *is* an age X25519 key: `age1…` recipients and
//! `AGE-SECRET-KEY-1…` identities are parsed and printed by the `age` crate,
//! so a key made by `age-keygen` works here and ours work with `age`. The raw
//! 32 bytes needed for HPKE are taken from the same Bech32 text the `age`
//! crate validated.
//!
//! A [`KeyId`] is the first 8 bytes of SHA-256 over the 32-byte public key,
//! printed as 16 hex digits. Every sealed value names the key ids it was
//! sealed to, so an opener picks its key directly and `verify` can tell which
//! key sealed what without holding any private key.

use std::fmt;
use std::str::FromStr;

use bech32::{Bech32, Hrp};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::Error;

const RECIPIENT_HRP: &str = "age";
const IDENTITY_HRP: &str = "age-secret-key-";

/// A short, stable fingerprint of a public key: SHA-256(public key)[..8].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// Length in bytes.
    pub const LEN: usize = 8;

    /// The key id of a raw X25519 public key.
    pub fn of_public_key(public: &[u8; 32]) -> Self {
        let digest = Sha256::digest(public);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// The raw bytes, as stored in an envelope.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// From the raw bytes stored in an envelope.
    pub fn from_bytes(bytes: [u8; 8]) -> Self {
        KeyId(bytes)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let mut id = [0u8; 8];
        match hex::decode_to_slice(s, &mut id) {
            Ok(()) if s.bytes().all(|b| !b.is_ascii_uppercase()) => Ok(KeyId(id)),
            _ => Err(Error::InvalidKeyId(crate::truncate_for_message(s))),
        }
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A public sealing key (`age1…`). Anyone may hold it; it only seals.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Recipient {
    public: PublicKey,
    key_id: KeyId,
}

impl Recipient {
    /// From the raw 32-byte X25519 public key.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Recipient {
            key_id: KeyId::of_public_key(&bytes),
            public: PublicKey::from(bytes),
        }
    }

    /// The raw 32-byte public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.public.as_bytes()
    }

    /// This key's id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub(crate) fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The same key as an `age` crate recipient, for encrypting with age.
    pub fn to_age(&self) -> age::x25519::Recipient {
        // Our own Bech32 text of a 32-byte key always parses.
        age::x25519::Recipient::from_str(&self.to_string())
            .unwrap_or_else(|_| unreachable!("a 32-byte key is a valid age recipient"))
    }
}

impl FromStr for Recipient {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
            return Err(Error::InvalidRecipient {
                reason: "this is a private identity (AGE-SECRET-KEY-1…), not a public recipient; \
                         run `gitseal pubkey -i FILE` to get its recipient",
            });
        }
        // The age crate is the authority on what a valid recipient is.
        age::x25519::Recipient::from_str(s).map_err(|reason| Error::InvalidRecipient { reason })?;
        let (hrp, data) = bech32::decode(s).map_err(|_| Error::InvalidRecipient {
            reason: "invalid Bech32 encoding",
        })?;
        let bytes: [u8; 32] = match (
            hrp.to_lowercase().as_str(),
            <[u8; 32]>::try_from(data.as_slice()),
        ) {
            (RECIPIENT_HRP, Ok(b)) => b,
            _ => {
                return Err(Error::InvalidRecipient {
                    reason: "not an age X25519 recipient",
                })
            }
        };
        Ok(Recipient::from_bytes(bytes))
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(RECIPIENT_HRP);
        let text =
            bech32::encode_lower::<Bech32>(hrp, self.public.as_bytes()).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl serde::Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A private sealing key (`AGE-SECRET-KEY-1…`): opens what was sealed to its
/// recipient. The secret scalar is wiped on drop; `Debug` shows only the key id.
#[derive(Clone)]
pub struct Identity {
    secret: StaticSecret,
    recipient: Recipient,
}

impl Identity {
    /// A new random identity.
    pub fn generate() -> Self {
        Identity::from_secret(StaticSecret::random_from_rng(rand_core::OsRng))
    }

    fn from_secret(secret: StaticSecret) -> Self {
        let recipient = Recipient::from_bytes(PublicKey::from(&secret).to_bytes());
        Identity { secret, recipient }
    }

    /// The public half.
    pub fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// The key id of the public half.
    pub fn key_id(&self) -> KeyId {
        self.recipient.key_id
    }

    pub(crate) fn secret(&self) -> &StaticSecret {
        &self.secret
    }

    /// The `AGE-SECRET-KEY-1…` text form.
    pub fn to_secret_string(&self) -> SecretString {
        let hrp = Hrp::parse_unchecked(IDENTITY_HRP);
        let bytes = Zeroizing::new(self.secret.to_bytes());
        let text = bech32::encode_upper::<Bech32>(hrp, &bytes[..])
            .unwrap_or_else(|_| unreachable!("32 bytes always encode"));
        SecretString::from(text)
    }

    /// The same key as an `age` crate identity, for decrypting with age.
    pub fn to_age(&self) -> age::x25519::Identity {
        age::x25519::Identity::from_str(self.to_secret_string().expose_secret())
            .unwrap_or_else(|_| unreachable!("our own identity text always parses"))
    }

    /// An identity file in `age-keygen`'s format: two comment lines (creation
    /// time if given, public key) and the identity.
    pub fn to_identity_file(&self, created: Option<&str>) -> SecretString {
        let mut out = String::new();
        if let Some(created) = created {
            out.push_str("# created: ");
            out.push_str(created);
            out.push('\n');
        }
        out.push_str("# public key: ");
        out.push_str(&self.recipient.to_string());
        out.push('\n');
        out.push_str(self.to_secret_string().expose_secret());
        out.push('\n');
        SecretString::from(out)
    }

    /// Parses every identity in an identity file (`age-keygen` format: `#`
    /// comments, blank lines, one `AGE-SECRET-KEY-1…` per line). Errors name
    /// the line, never its content.
    pub fn parse_file(text: &str) -> Result<Vec<Identity>, Error> {
        let mut identities = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = line
                .parse::<Identity>()
                .map_err(|_| Error::InvalidIdentity {
                    line: Some(index + 1),
                })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(Error::NoIdentities);
        }
        Ok(identities)
    }
}

impl FromStr for Identity {
    type Err = Error;

    /// Parses one `AGE-SECRET-KEY-1…` string. The error never repeats the input.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        age::x25519::Identity::from_str(s).map_err(|_| Error::InvalidIdentity { line: None })?;
        let (hrp, data) = bech32::decode(s).map_err(|_| Error::InvalidIdentity { line: None })?;
        let data = Zeroizing::new(data);
        if hrp.to_lowercase() != IDENTITY_HRP {
            return Err(Error::InvalidIdentity { line: None });
        }
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            data.as_slice()
                .try_into()
                .map_err(|_| Error::InvalidIdentity { line: None })?,
        );
        Ok(Identity::from_secret(StaticSecret::from(*bytes)))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Identity {{ key_id: {}, secret: [REDACTED] }}",
            self.key_id()
        )
    }
}
