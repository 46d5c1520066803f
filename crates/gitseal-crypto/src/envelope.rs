//! The envelope: one sealed value, its binding and its recipients.
//!
//! Text form: `gs1:` followed by the standard, padded base64 of the body. The
//! prefix names the format version, so any tool can tell a sealed value from
//! plaintext at a glance. The body (all integers unsigned, one byte):
//!
//! ```text
//! scope            0 strict, 1 namespace, 2 cluster
//! namespace        len (1..=255) + UTF-8      strict, namespace scopes only
//! name             len (1..=255) + UTF-8      strict scope only
//! item key         len (1..=255) + UTF-8
//! count            number of recipients (1..=64)
//! count × stanza   key id (8) | enc (32) | wrapped data key (32)
//! ciphertext       ChaCha20-Poly1305(value key, nonce 0, aad = header) of the value, with its 16-byte tag
//! ```
//!
//! Everything before the ciphertext is the *header*; it is the associated
//! data of the value, so changing any byte of it — the binding, a key id, any
//! recipient's stanza — makes the value refuse to open for every recipient.
//!
//! Keys: a fresh random 32-byte data key per value. For each recipient,
//! HPKE base mode (RFC 9180, [`crate::hpke`]) with info `gitseal/v1 wrap`
//! gives a context whose secret export (`gitseal/v1 data key`, 32 bytes) is
//! XORed onto the data key. The value key is HKDF-Expand-SHA256 with the
//! (uniformly random) data key as PRK and info `gitseal/v1 value key`, so a
//! flipped bit in a wrapped key gives an unrelated value key and the tag
//! check fails. The value key is used once,
//! so the nonce is zero. One recipient costs 72 bytes, and the fixed part is
//! 2 bytes + one length byte per binding string + the 16-byte tag: 93 bytes
//! with one recipient, plus the binding's own text (see `docs/envelope.md`).
//!
//! The binding is stored in clear so `verify` can catch a misplaced value
//! without any private key, but an opener never trusts it: [`Envelope::open`]
//! takes the binding computed from where the value actually sits.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use rand_core::{OsRng, RngCore};
use secrecy::SecretSlice;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::hpke;
use crate::keys::{Identity, KeyId, Recipient};
use crate::Error;

/// The text prefix of a version-1 sealed value.
pub const PREFIX: &str = "gs1:";
/// Most recipients one value may be sealed to.
pub const MAX_RECIPIENTS: usize = 64;
/// Longest namespace, name or item key (bytes); Kubernetes allows 253.
pub const MAX_FIELD_LEN: usize = 255;

const HPKE_INFO: &[u8] = b"gitseal/v1 wrap";
const EXPORT_CONTEXT: &[u8] = b"gitseal/v1 data key";
const VALUE_KEY_INFO: &[u8] = b"gitseal/v1 value key";
const STANZA_LEN: usize = KeyId::LEN + hpke::N_ENC + 32;
const TAG_LEN: usize = 16;

/// Whether `s` looks like a sealed value of any gitseal version (`gs<N>:`).
/// Cheap: no decoding.
pub fn is_sealed(s: &str) -> bool {
    let s = s.trim();
    match s.strip_prefix("gs") {
        Some(rest) => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0 && rest.as_bytes().get(digits) == Some(&b':')
        }
        None => false,
    }
}

/// Where a sealed value may be opened. The wider the scope, the less is bound.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Namespace + object name + item key: the value opens only in that one place.
    #[default]
    Strict,
    /// Namespace + item key: any object name in that namespace.
    Namespace,
    /// Item key only: any namespace, any name.
    Cluster,
}

impl Scope {
    fn to_byte(self) -> u8 {
        match self {
            Scope::Strict => 0,
            Scope::Namespace => 1,
            Scope::Cluster => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Scope::Strict),
            1 => Some(Scope::Namespace),
            2 => Some(Scope::Cluster),
            _ => None,
        }
    }

    /// The lowercase name: `strict`, `namespace`, `cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::Namespace => "namespace",
            Scope::Cluster => "cluster",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "strict" => Ok(Scope::Strict),
            "namespace" => Ok(Scope::Namespace),
            "cluster" => Ok(Scope::Cluster),
            _ => Err(Error::InvalidScope(crate::truncate_for_message(s))),
        }
    }
}

/// What a sealed value is bound to: the scope and the parts of its place the
/// scope covers. Build it with [`Binding::new`], which keeps only those parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    scope: Scope,
    namespace: Option<String>,
    name: Option<String>,
    key: String,
}

impl Binding {
    /// The binding of item `key` of object `namespace`/`name` under `scope`.
    /// The parts the scope does not cover are dropped, so two places that
    /// the scope does not tell apart give equal bindings.
    pub fn new(scope: Scope, namespace: &str, name: &str, key: &str) -> Self {
        Binding {
            scope,
            namespace: (scope != Scope::Cluster).then(|| namespace.to_string()),
            name: (scope == Scope::Strict).then(|| name.to_string()),
            key: key.to_string(),
        }
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The namespace, for strict and namespace scope.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The object name, for strict scope.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The item key (the key under `data` of the Secret).
    pub fn key(&self) -> &str {
        &self.key
    }

    fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            self.namespace.as_deref().map(|n| ("namespace", n)),
            self.name.as_deref().map(|n| ("name", n)),
            Some(("item key", self.key.as_str())),
        ]
        .into_iter()
        .flatten()
    }

    fn validate(&self) -> Result<(), Error> {
        for (what, value) in self.fields() {
            if value.is_empty() {
                return Err(Error::InvalidBinding {
                    field: what,
                    reason: "is empty",
                });
            }
            if value.len() > MAX_FIELD_LEN {
                return Err(Error::InvalidBinding {
                    field: what,
                    reason: "is longer than 255 bytes",
                });
            }
        }
        Ok(())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.scope.to_byte());
        for (_, value) in self.fields() {
            // validate() bounds every field to 255 bytes.
            out.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(value.as_bytes());
        }
    }
}

impl fmt::Display for Binding {
    /// E.g. `namespace "prod", name "db", item "password" (strict scope)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "namespace {ns:?}, ")?;
        }
        if let Some(name) = &self.name {
            write!(f, "name {name:?}, ")?;
        }
        write!(f, "item {:?} ({} scope)", self.key, self.scope)
    }
}

#[derive(Clone, PartialEq, Eq)]
struct Stanza {
    key_id: KeyId,
    enc: [u8; hpke::N_ENC],
    wrapped: [u8; 32],
}

/// One sealed value, parsed. Holds no secret: everything in it is safe to
/// commit. `Display` gives the `gs1:` text form.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    binding: Binding,
    stanzas: Vec<Stanza>,
    ciphertext: Vec<u8>,
}

fn encode_header(binding: &Binding, stanzas: &[Stanza]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 3 * 64 + stanzas.len() * STANZA_LEN);
    binding.encode(&mut out);
    out.push(u8::try_from(stanzas.len()).unwrap_or(u8::MAX));
    for s in stanzas {
        out.extend_from_slice(&s.key_id.to_bytes());
        out.extend_from_slice(&s.enc);
        out.extend_from_slice(&s.wrapped);
    }
    out
}

/// HPKE's key schedule context for our fixed `info`, computed once.
fn key_schedule_context() -> &'static hpke::KeyScheduleContext {
    static KS: OnceLock<hpke::KeyScheduleContext> = OnceLock::new();
    KS.get_or_init(|| hpke::KeyScheduleContext::base(HPKE_INFO))
}

/// The value cipher: key = HKDF-Expand-SHA256(PRK = data key, info, 32).
/// The data key is 32 uniformly random bytes, so it serves as the PRK
/// directly (RFC 5869 §3.3).
fn value_cipher(data_key: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut value_key = Zeroizing::new([0u8; 32]);
    // A 32-byte PRK is valid and 32 bytes is far below HKDF's output limit.
    if let Ok(prk) = Hkdf::<Sha256>::from_prk(data_key) {
        let _ = prk.expand(VALUE_KEY_INFO, &mut value_key[..]);
    }
    ChaCha20Poly1305::new((&*value_key).into())
}

fn xor32(a: &mut [u8; 32], b: &[u8; 32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// Seals `plaintext` to every recipient, bound to `binding`.
///
/// Duplicate recipients are sealed to once. Errors: no recipients, more than
/// [`MAX_RECIPIENTS`], an empty or over-long binding field, or a recipient
/// that is a low-order point.
pub fn seal(
    plaintext: &[u8],
    recipients: &[Recipient],
    binding: &Binding,
) -> Result<Envelope, Error> {
    binding.validate()?;
    let mut unique: Vec<&Recipient> = Vec::with_capacity(recipients.len());
    for r in recipients {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    if unique.is_empty() {
        return Err(Error::NoRecipients);
    }
    if unique.len() > MAX_RECIPIENTS {
        return Err(Error::TooManyRecipients {
            max: MAX_RECIPIENTS,
        });
    }

    let mut data_key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut data_key[..]);
    let mut stanzas = Vec::with_capacity(unique.len());
    for r in unique {
        let (enc, ctx) =
            hpke::setup_base_s(r.public_key(), HPKE_INFO).map_err(|_| Error::InvalidRecipient {
                reason: "the key is a low-order point",
            })?;
        let mut wrapped = [0u8; 32];
        ctx.export(EXPORT_CONTEXT, &mut wrapped)
            .map_err(|_| Error::DoesNotOpen)?;
        xor32(&mut wrapped, &data_key);
        stanzas.push(Stanza {
            key_id: r.key_id(),
            enc,
            wrapped,
        });
    }

    let header = encode_header(binding, &stanzas);
    let mut ciphertext = Vec::with_capacity(plaintext.len() + TAG_LEN);
    ciphertext.extend_from_slice(plaintext);
    value_cipher(&data_key)
        .encrypt_in_place(&[0u8; 12].into(), &header, &mut ciphertext)
        .map_err(|_| Error::ValueTooLong)?;
    Ok(Envelope {
        binding: binding.clone(),
        stanzas,
        ciphertext,
    })
}

impl Envelope {
    /// Parses the `gs1:` text form. Total: any input gives an envelope or a
    /// typed error, never a panic. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Envelope, Error> {
        let text = text.trim();
        let Some(b64) = text.strip_prefix(PREFIX) else {
            if is_sealed(text) {
                let version = text.split(':').next().unwrap_or_default();
                return Err(Error::UnsupportedVersion(crate::truncate_for_message(
                    version,
                )));
            }
            return Err(Error::NotSealed);
        };
        let body = STANDARD
            .decode(b64)
            .map_err(|_| Error::Malformed("the text after gs1: is not valid base64"))?;
        Envelope::from_bytes(&body)
    }

    /// Parses the binary body (the bytes after base64 decoding).
    pub fn from_bytes(body: &[u8]) -> Result<Envelope, Error> {
        let mut r = Reader(body);
        let scope =
            Scope::from_byte(r.byte("empty")?).ok_or(Error::Malformed("unknown scope byte"))?;
        let namespace = if scope != Scope::Cluster {
            Some(r.string("truncated before the namespace")?)
        } else {
            None
        };
        let name = if scope == Scope::Strict {
            Some(r.string("truncated before the name")?)
        } else {
            None
        };
        let key = r.string("truncated before the item key")?;
        let binding = Binding {
            scope,
            namespace,
            name,
            key,
        };

        let count = usize::from(r.byte("truncated before the recipient count")?);
        if count == 0 {
            return Err(Error::Malformed("no recipients"));
        }
        if count > MAX_RECIPIENTS {
            return Err(Error::Malformed("more than 64 recipients"));
        }
        let mut stanzas = Vec::with_capacity(count);
        for _ in 0..count {
            let raw = r.take(STANZA_LEN, "truncated recipient stanza")?;
            let (key_id, rest) = raw.split_at(KeyId::LEN);
            let (enc, wrapped) = rest.split_at(hpke::N_ENC);
            let stanza = Stanza {
                key_id: KeyId::from_bytes(
                    key_id.try_into().map_err(|_| Error::Malformed("key id"))?,
                ),
                enc: enc.try_into().map_err(|_| Error::Malformed("enc"))?,
                wrapped: wrapped
                    .try_into()
                    .map_err(|_| Error::Malformed("wrapped key"))?,
            };
            if stanzas.iter().any(|s: &Stanza| s.key_id == stanza.key_id) {
                return Err(Error::Malformed("the same key id appears twice"));
            }
            stanzas.push(stanza);
        }
        if r.0.len() < TAG_LEN {
            return Err(Error::Malformed("ciphertext shorter than its tag"));
        }
        Ok(Envelope {
            binding,
            stanzas,
            ciphertext: r.0.to_vec(),
        })
    }

    /// The binary body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = encode_header(&self.binding, &self.stanzas);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// The binding written in the header. Untrusted: useful for diagnostics
    /// and for `verify`, never for deciding whether a value may open.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// The key ids this value was sealed to, in stanza order.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.stanzas.iter().map(|s| s.key_id).collect()
    }

    /// Length of the sealed value in bytes (ciphertext without its tag).
    pub fn plaintext_len(&self) -> usize {
        self.ciphertext.len().saturating_sub(TAG_LEN)
    }

    /// Opens the value with whichever of `identities` it was sealed to,
    /// checking it against `expected`: the binding computed from where the
    /// value actually sits (not the header's).
    ///
    /// Errors: [`Error::UnknownKey`] when none of the identities is a
    /// recipient; otherwise one opaque [`Error::DoesNotOpen`] whatever the
    /// cause (altered, moved, wrong scope).
    pub fn open(
        &self,
        identities: &[Identity],
        expected: &Binding,
    ) -> Result<SecretSlice<u8>, Error> {
        let mut candidates = self
            .stanzas
            .iter()
            .flat_map(|s| {
                identities
                    .iter()
                    .filter(move |i| i.key_id() == s.key_id)
                    .map(move |i| (s, i))
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(Error::UnknownKey {
                sealed_to: self.key_ids(),
            });
        }
        if self.binding != *expected {
            return Err(Error::DoesNotOpen);
        }
        let header = encode_header(expected, &self.stanzas);
        for (stanza, identity) in candidates {
            let Ok(ctx) = hpke::setup_base_r_exporter(
                &stanza.enc,
                identity.secret(),
                identity.recipient().public_key(),
                key_schedule_context(),
            ) else {
                continue;
            };
            let mut data_key = Zeroizing::new([0u8; 32]);
            if ctx.export(EXPORT_CONTEXT, &mut data_key[..]).is_err() {
                continue;
            }
            xor32(&mut data_key, &stanza.wrapped);
            let mut buf = Zeroizing::new(self.ciphertext.clone());
            if value_cipher(&data_key)
                .decrypt_in_place(&[0u8; 12].into(), &header, &mut *buf)
                .is_ok()
            {
                let out: Box<[u8]> = buf.as_slice().into();
                return Ok(SecretSlice::from(out));
            }
        }
        Err(Error::DoesNotOpen)
    }
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        f.write_str(&STANDARD.encode(self.to_bytes()))
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("binding", &self.binding)
            .field("key_ids", &self.key_ids())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl FromStr for Envelope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Envelope::parse(s)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Malformed(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    fn string(&mut self, what: &'static str) -> Result<String, Error> {
        let len = usize::from(self.byte(what)?);
        if len == 0 {
            return Err(Error::Malformed("empty binding field"));
        }
        let raw = self.take(len, "truncated binding field")?;
        String::from_utf8(raw.to_vec()).map_err(|_| Error::Malformed("binding field is not UTF-8"))
    }
}
