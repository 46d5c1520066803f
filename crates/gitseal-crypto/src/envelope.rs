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
//! gives an export-only context; its secret export with context
//! `gitseal/v1 data key` ‖ the binding's header encoding (32 bytes) is XORed
//! onto the data key. The values of one object are sealed by one [`Sealer`]
//! and share one encapsulation (`enc`) per recipient; the binding in the
//! export context gives each of them its own wrapping key, and a sealer
//! refuses to use a binding twice. The value key is HKDF-Expand-SHA256 with
//! the (uniformly random) data key as PRK and info `gitseal/v1 value key`,
//! so a flipped bit in a wrapped key gives an unrelated value key and the
//! tag check fails. The value key is used once,
//! so the nonce is zero. One recipient costs 72 bytes, and the fixed part is
//! 2 bytes + one length byte per binding string + the 16-byte tag: 93 bytes
//! with one recipient, plus the binding's own text (see `docs/envelope.md`).
//!
//! The binding is stored in clear so `verify` can catch a misplaced value
//! without any private key, but an opener never trusts it: [`Envelope::open`]
//! takes the binding computed from where the value actually sits.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use rand_core::{OsRng, RngCore};
use secrecy::SecretSlice;
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
    crate::kdf::expand(data_key, &[VALUE_KEY_INFO], &mut value_key[..]);
    ChaCha20Poly1305::new((&*value_key).into())
}

fn xor32(a: &mut [u8; 32], b: &[u8; 32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// Seals `plaintext` to every recipient, bound to `binding`: a [`Sealer`]
/// used for one value.
///
/// Duplicate recipients are sealed to once. Errors: no recipients, more than
/// [`MAX_RECIPIENTS`], an empty or over-long binding field, or a recipient
/// that is a low-order point.
pub fn seal(
    plaintext: &[u8],
    recipients: &[Recipient],
    binding: &Binding,
) -> Result<Envelope, Error> {
    Sealer::new(recipients)?.seal(plaintext, binding)
}

/// The HPKE export context that wraps the data key of the value bound to
/// `binding`: the fixed label, then the binding's header encoding. The
/// label has a fixed length and the encoding is self-delimiting, so
/// different bindings always give different contexts.
fn export_context(binding: &Binding) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(EXPORT_CONTEXT.len() + 4 + 3 * 32);
    ctx.extend_from_slice(EXPORT_CONTEXT);
    binding.encode(&mut ctx);
    ctx
}

/// One recipient's half of a [`Sealer`]: its key id, the encapsulated key
/// and the sender's export-only HPKE context.
struct SenderStanza {
    key_id: KeyId,
    enc: [u8; hpke::N_ENC],
    exporter: hpke::Exporter,
}

/// Seals the values of one object. It does one HPKE encapsulation per
/// recipient, when it is made, and shares it between all the values it
/// seals: each value still gets its own random data key, wrapped with the
/// HPKE secret export whose context is that value's binding. Sealing 50
/// items to one recipient costs two X25519 operations instead of a hundred,
/// and an opener that remembers decapsulations ([`Opener`]) opens them with
/// one.
///
/// Every value a sealer seals must have a different binding (so a different
/// wrapping key); [`Sealer::seal`] refuses a binding it has already used
/// with [`Error::BindingReused`]. Use one sealer per object.
pub struct Sealer {
    stanzas: Vec<SenderStanza>,
    used: HashSet<Binding>,
}

impl Sealer {
    /// Encapsulates to each recipient (duplicates once). Errors: no
    /// recipients, more than [`MAX_RECIPIENTS`], or a recipient that is a
    /// low-order point.
    pub fn new(recipients: &[Recipient]) -> Result<Sealer, Error> {
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
        let stanzas = unique
            .into_iter()
            .map(|r| {
                let (enc, exporter) =
                    hpke::setup_base_s_exporter(r.public_key(), key_schedule_context()).map_err(
                        |_| Error::InvalidRecipient {
                            reason: "the key is a low-order point",
                        },
                    )?;
                Ok(SenderStanza {
                    key_id: r.key_id(),
                    enc,
                    exporter,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Sealer {
            stanzas,
            used: HashSet::new(),
        })
    }

    /// Seals `plaintext` bound to `binding`. Errors: an empty or over-long
    /// binding field, or a binding this sealer has already sealed a value
    /// for ([`Error::BindingReused`]).
    pub fn seal(&mut self, plaintext: &[u8], binding: &Binding) -> Result<Envelope, Error> {
        binding.validate()?;
        if self.used.contains(binding) {
            return Err(Error::BindingReused);
        }
        let context = export_context(binding);
        let mut data_key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut data_key[..]);
        let mut stanzas = Vec::with_capacity(self.stanzas.len());
        for s in &self.stanzas {
            let mut wrapped = [0u8; 32];
            s.exporter
                .export(&context, &mut wrapped)
                .map_err(|_| Error::DoesNotOpen)?;
            xor32(&mut wrapped, &data_key);
            stanzas.push(Stanza {
                key_id: s.key_id,
                enc: s.enc,
                wrapped,
            });
        }
        let header = encode_header(binding, &stanzas);
        let mut ciphertext = Vec::with_capacity(plaintext.len() + TAG_LEN);
        ciphertext.extend_from_slice(plaintext);
        value_cipher(&data_key)
            .encrypt_in_place(&[0u8; 12].into(), &header, &mut ciphertext)
            .map_err(|_| Error::ValueTooLong)?;
        self.used.insert(binding.clone());
        Ok(Envelope {
            binding: binding.clone(),
            stanzas,
            ciphertext,
        })
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field(
                "key_ids",
                &self.stanzas.iter().map(|s| s.key_id).collect::<Vec<_>>(),
            )
            .field("sealed", &self.used.len())
            .finish_non_exhaustive()
    }
}

/// Most decapsulations an [`Opener`] remembers; the oldest is forgotten
/// first. An object's values share one per recipient, so a handful is
/// plenty; the bound keeps a long-lived opener small.
const OPENER_CACHE: usize = 64;

/// Opens envelopes with a set of identities, remembering each HPKE
/// decapsulation (identity, `enc`) it has done, so the values of one object
/// sealed by one [`Sealer`] cost one X25519 operation between them.
///
/// What it remembers are HPKE exporter secrets: key material, zeroized when
/// forgotten or dropped. Keep an opener as long as the identities, e.g. one
/// per reconcile or per file.
pub struct Opener<'a> {
    identities: &'a [Identity],
    cache: VecDeque<(usize, [u8; hpke::N_ENC], Option<hpke::Exporter>)>,
}

impl<'a> Opener<'a> {
    /// An opener for `identities`, remembering nothing yet.
    pub fn new(identities: &'a [Identity]) -> Self {
        Opener {
            identities,
            cache: VecDeque::new(),
        }
    }

    /// The identities this opener opens with.
    pub fn identities(&self) -> &'a [Identity] {
        self.identities
    }

    /// How many decapsulations (X25519 operations) this opener remembers:
    /// the number it has done, up to its bound of 64.
    pub fn decapsulations(&self) -> usize {
        self.cache.len()
    }

    /// The exporter of identity `index` for `enc`, decapsulating on a miss.
    /// `None` when `enc` is not a usable public key.
    fn exporter(&mut self, index: usize, enc: &[u8; hpke::N_ENC]) -> Option<&hpke::Exporter> {
        let pos = match self
            .cache
            .iter()
            .position(|(i, e, _)| *i == index && e == enc)
        {
            Some(pos) => pos,
            None => {
                let identity = self.identities.get(index)?;
                let exporter = hpke::setup_base_r_exporter(
                    enc,
                    identity.secret(),
                    identity.recipient().public_key(),
                    key_schedule_context(),
                )
                .ok();
                if self.cache.len() == OPENER_CACHE {
                    self.cache.pop_front();
                }
                self.cache.push_back((index, *enc, exporter));
                self.cache.len() - 1
            }
        };
        self.cache.get(pos).and_then(|(_, _, e)| e.as_ref())
    }

    /// Opens `envelope` with whichever identity it was sealed to, checking
    /// it against `expected`: the binding computed from where the value
    /// actually sits (not the header's).
    ///
    /// Errors: [`Error::UnknownKey`] when none of the identities is a
    /// recipient; otherwise one opaque [`Error::DoesNotOpen`] whatever the
    /// cause (altered, moved, wrong scope).
    pub fn open(
        &mut self,
        envelope: &Envelope,
        expected: &Binding,
    ) -> Result<SecretSlice<u8>, Error> {
        let identities = self.identities;
        let candidates: Vec<(&Stanza, usize)> = envelope
            .stanzas
            .iter()
            .flat_map(|s| {
                identities
                    .iter()
                    .enumerate()
                    .filter(move |(_, i)| i.key_id() == s.key_id)
                    .map(move |(index, _)| (s, index))
            })
            .collect();
        if candidates.is_empty() {
            return Err(Error::UnknownKey {
                sealed_to: envelope.key_ids(),
            });
        }
        if envelope.binding != *expected {
            return Err(Error::DoesNotOpen);
        }
        let header = encode_header(expected, &envelope.stanzas);
        let context = export_context(expected);
        for (stanza, index) in candidates {
            let Some(exporter) = self.exporter(index, &stanza.enc) else {
                continue;
            };
            let mut data_key = Zeroizing::new([0u8; 32]);
            if exporter.export(&context, &mut data_key[..]).is_err() {
                continue;
            }
            xor32(&mut data_key, &stanza.wrapped);
            let mut buf = Zeroizing::new(envelope.ciphertext.clone());
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

impl fmt::Debug for Opener<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field(
                "key_ids",
                &self
                    .identities
                    .iter()
                    .map(Identity::key_id)
                    .collect::<Vec<_>>(),
            )
            .field("decapsulations", &self.cache.len())
            .finish_non_exhaustive()
    }
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
    /// value actually sits (not the header's). To open several values of one
    /// object, an [`Opener`] does the X25519 work once.
    ///
    /// Errors: [`Error::UnknownKey`] when none of the identities is a
    /// recipient; otherwise one opaque [`Error::DoesNotOpen`] whatever the
    /// cause (altered, moved, wrong scope).
    pub fn open(
        &self,
        identities: &[Identity],
        expected: &Binding,
    ) -> Result<SecretSlice<u8>, Error> {
        Opener::new(identities).open(self, expected)
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

#[cfg(test)]
mod tests {
    //! The key derivation exactly as `docs/envelope.md` specifies it.

    use super::*;

    #[test]
    fn the_wrapping_key_is_the_hpke_export_under_the_values_binding() {
        let id = Identity::generate();
        let a = Binding::new(Scope::Strict, "prod", "db", "a");
        let b = Binding::new(Scope::Strict, "prod", "db", "b");
        let mut sealer = Sealer::new(&[id.recipient().clone()]).expect("sealer");
        let env = sealer.seal(b"value", &a).expect("seal");
        let stanza = &env.stanzas[0];

        let exporter = hpke::setup_base_r_exporter(
            &stanza.enc,
            id.secret(),
            id.recipient().public_key(),
            &hpke::KeyScheduleContext::base(b"gitseal/v1 wrap"),
        )
        .expect("decap");
        let header = encode_header(&a, &env.stanzas);
        let unwrap = |binding: &Binding| {
            let mut ctx = b"gitseal/v1 data key".to_vec();
            binding.encode(&mut ctx);
            let mut dk = [0u8; 32];
            exporter.export(&ctx, &mut dk).expect("export");
            xor32(&mut dk, &stanza.wrapped);
            let mut buf = env.ciphertext.clone();
            value_cipher(&dk)
                .decrypt_in_place(&[0u8; 12].into(), &header, &mut buf)
                .map(|()| buf)
        };
        assert_eq!(unwrap(&a).expect("opens"), b"value");
        // Same enc, same header, another binding in the export context.
        assert!(unwrap(&b).is_err());
    }

    #[test]
    fn export_contexts_of_different_bindings_differ() {
        let all = [
            Binding::new(Scope::Strict, "ab", "c", "d"),
            Binding::new(Scope::Strict, "a", "bc", "d"),
            Binding::new(Scope::Strict, "a", "b", "cd"),
            Binding::new(Scope::Namespace, "ab", "", "c"),
            Binding::new(Scope::Namespace, "a", "", "bc"),
            Binding::new(Scope::Cluster, "", "", "abc"),
            Binding::new(Scope::Cluster, "", "", "ab"),
        ];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(export_context(x), export_context(y), "{x} vs {y}");
            }
        }
    }
}
