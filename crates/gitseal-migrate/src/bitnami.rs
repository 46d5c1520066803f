//! Bitnami Sealed Secrets' side of the migration: its private keys and its
//! hybrid encryption, read only (gitseal never seals in this format).
//!
//! The format, from `pkg/crypto/crypto.go` and
//! `pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go` of
//! bitnami-labs/sealed-secrets: a value is
//! `u16 big-endian length ‖ RSA-OAEP(SHA-256, MGF1-SHA-256, label)(session key) ‖ AES-256-GCM(session key, zero nonce)(plaintext)`,
//! base64 (standard, padded) in `encryptedData`. The OAEP label is the
//! scope: `namespace/name` (strict), `namespace` (namespace-wide) or empty
//! (cluster-wide), read from the SealedSecret's own annotations.

use std::fmt;

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gitseal_crypto::Scope;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{Oaep, RsaPrivateKey};
use serde_yaml::Value;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;

/// Annotation that makes a Bitnami SealedSecret cluster-wide.
pub(crate) const CLUSTER_WIDE: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Annotation that makes a Bitnami SealedSecret namespace-wide.
pub(crate) const NAMESPACE_WIDE: &str = "sealedsecrets.bitnami.com/namespace-wide";
/// Prefix of Bitnami's own annotations (scope, managed, patch…).
pub(crate) const ANNOTATION_PREFIX: &str = "sealedsecrets.bitnami.com/";

/// Bitnami's session keys are 32 bytes (AES-256).
const SESSION_KEY_LEN: usize = 32;

/// The private keys of a Bitnami Sealed Secrets controller, as exported
/// from its cluster (see docs/migration.md). `Debug` shows only how many
/// there are and where they came from.
pub struct BitnamiKeys {
    keys: Vec<(String, RsaPrivateKey)>,
}

impl fmt::Debug for BitnamiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins: Vec<&str> = self.keys.iter().map(|(o, _)| o.as_str()).collect();
        f.debug_struct("BitnamiKeys")
            .field("keys", &origins)
            .finish()
    }
}

impl BitnamiKeys {
    /// No keys yet.
    pub fn new() -> Self {
        BitnamiKeys { keys: Vec::new() }
    }

    /// How many keys are loaded.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds the RSA private keys in `text` (named `origin` in messages):
    /// PEM (`RSA PRIVATE KEY` or `PRIVATE KEY` blocks; certificates are
    /// skipped), or the key Secrets as `kubectl get secret -o yaml` prints
    /// them (one Secret, several documents or a `kind: List`, each with a
    /// base64 PEM in `data.tls.key`). Returns how many keys were added; a
    /// file with none is an error.
    pub fn add(&mut self, text: &str, origin: &str) -> Result<usize, Error> {
        let before = self.keys.len();
        if text.contains("-----BEGIN") {
            self.add_pem(text, origin)?;
        } else {
            self.add_secrets(text, origin)?;
        }
        let added = self.keys.len() - before;
        if added == 0 {
            return Err(Error::Key {
                origin: origin.to_string(),
                message:
                    "holds no RSA private key (expected PEM, or the key Secrets with data.tls.key)"
                        .to_string(),
            });
        }
        Ok(added)
    }

    fn add_pem(&mut self, text: &str, origin: &str) -> Result<(), Error> {
        for (i, block) in pem_blocks(text).into_iter().enumerate() {
            let label = block
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .trim_start_matches("-----BEGIN ")
                .trim_end_matches("-----");
            let key = match label {
                "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_pem(&block).map_err(|e| e.to_string()),
                "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_pem(&block).map_err(|e| e.to_string()),
                "ENCRYPTED PRIVATE KEY" => Err(
                    "is an encrypted PEM key; decrypt it first (openssl pkey -in KEY -out plain.pem)"
                        .to_string(),
                ),
                _ => continue,
            };
            let key = key.map_err(|message| Error::Key {
                origin: origin.to_string(),
                message: format!("PEM block {} ({label}): {message}", i + 1),
            })?;
            self.keys
                .push((format!("{origin}, PEM block {}", i + 1), key));
        }
        Ok(())
    }

    fn add_secrets(&mut self, text: &str, origin: &str) -> Result<(), Error> {
        let docs = gitseal_manifest::input::parse(text, origin).map_err(|e| Error::Key {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        for doc in docs {
            if doc.kind() != Some("Secret") {
                continue;
            }
            let Some(encoded) = doc
                .value
                .get("data")
                .and_then(|d| d.get("tls.key"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let compact: Zeroizing<String> =
                Zeroizing::new(encoded.chars().filter(|c| !c.is_whitespace()).collect());
            let pem = STANDARD
                .decode(compact.as_bytes())
                .map(Zeroizing::new)
                .map_err(|_| Error::Key {
                    origin: origin.to_string(),
                    message: format!("{}: data.tls.key is not base64", doc.at),
                })?;
            let pem = std::str::from_utf8(&pem).map_err(|_| Error::Key {
                origin: origin.to_string(),
                message: format!("{}: data.tls.key is not a PEM key", doc.at),
            })?;
            let before = self.keys.len();
            self.add_pem(pem, &doc.at.to_string())?;
            if self.keys.len() == before {
                return Err(Error::Key {
                    origin: origin.to_string(),
                    message: format!("{}: data.tls.key holds no RSA private key", doc.at),
                });
            }
        }
        Ok(())
    }

    /// Opens one Bitnami value (base64 text) with any of the keys; `None`
    /// when no key opens it (wrong key, other label, altered), as Bitnami's
    /// `HybridDecrypt` says "no key could decrypt secret".
    pub(crate) fn open(&self, value: &str, label: &[u8]) -> Opened {
        let Ok(bytes) = STANDARD.decode(value.trim()) else {
            return Opened::NotBase64;
        };
        for (_, key) in &self.keys {
            if let Some(plaintext) = hybrid_decrypt(key, &bytes, label) {
                return Opened::Value(plaintext);
            }
        }
        Opened::NoKey
    }
}

impl Default for BitnamiKeys {
    fn default() -> Self {
        BitnamiKeys::new()
    }
}

/// What opening one value gave.
pub(crate) enum Opened {
    /// The plaintext.
    Value(Zeroizing<Vec<u8>>),
    /// The value is not base64.
    NotBase64,
    /// No key opened it.
    NoKey,
}

/// The PEM blocks of `text`, each from its BEGIN line to its END line.
fn pem_blocks(text: &str) -> Vec<Zeroizing<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Zeroizing<String>> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("-----BEGIN ") {
            current = Some(Zeroizing::new(String::new()));
        }
        if let Some(block) = current.as_mut() {
            block.push_str(trimmed);
            block.push('\n');
        }
        if trimmed.starts_with("-----END ") {
            if let Some(block) = current.take() {
                blocks.push(block);
            }
        }
    }
    blocks
}

/// Bitnami's `singleDecrypt`: RSA-OAEP for the session key, then AES-GCM
/// with a zero nonce and no associated data.
fn hybrid_decrypt(
    key: &RsaPrivateKey,
    ciphertext: &[u8],
    label: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let (len, rest) = ciphertext.split_first_chunk::<2>()?;
    let rsa_len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < rsa_len {
        return None;
    }
    let (rsa_part, aes_part) = rest.split_at(rsa_len);
    // The rsa crate takes the OAEP label as text; Bitnami's labels are
    // namespace and object names, which are ASCII.
    let label = std::str::from_utf8(label).ok()?;
    let padding = Oaep::new_with_label::<Sha256, _>(label);
    let session_key = Zeroizing::new(key.decrypt(padding, rsa_part).ok()?);
    if session_key.len() != SESSION_KEY_LEN {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(&session_key).ok()?;
    let plaintext = cipher
        .decrypt(Nonce::from_slice(&[0u8; 12]), aes_part)
        .ok()?;
    Some(Zeroizing::new(plaintext))
}

/// The scope of a Bitnami SealedSecret, from its own annotations, as
/// Bitnami's `SecretScope` reads them (cluster-wide wins).
pub(crate) fn scope(annotations: Option<&serde_yaml::Mapping>) -> Scope {
    let is_true =
        |key: &str| annotations.and_then(|a| a.get(key)).and_then(Value::as_str) == Some("true");
    if is_true(CLUSTER_WIDE) {
        Scope::Cluster
    } else if is_true(NAMESPACE_WIDE) {
        Scope::Namespace
    } else {
        Scope::Strict
    }
}

/// Bitnami's `EncryptionLabel`.
pub(crate) fn label(scope: Scope, namespace: &str, name: &str) -> Vec<u8> {
    match scope {
        Scope::Cluster => Vec::new(),
        Scope::Namespace => namespace.as_bytes().to_vec(),
        Scope::Strict => format!("{namespace}/{name}").into_bytes(),
    }
}
