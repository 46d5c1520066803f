//! RFC 9180 HPKE, base mode, for exactly one cipher suite:
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
//!
//! gitseal wraps each value's data key to each recipient with HPKE. Only the
//! one suite is needed, so it is written out here on the RustCrypto
//! primitives the `age` crate already pulls in (x25519-dalek, sha2,
//! chacha20poly1305): one generation of them is compiled, and the code is
//! checked against the RFC's own test vectors (`tests/data/`, run by the unit
//! test at the bottom of this file).
//!
//! Every intermediate secret lives in a `Zeroizing` buffer and is wiped when
//! dropped, the HKDF and HMAC states included (`crate::kdf`). Nothing here
//! derives `Debug`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use rand_core::{OsRng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::kdf;

/// A pseudorandom key from `LabeledExtract`, wiped on drop.
type Prk = Zeroizing<[u8; 32]>;

/// `KEM` || I2OSP(0x0020, 2): DHKEM(X25519, HKDF-SHA256).
const KEM_SUITE_ID: &[u8] = b"KEM\x00\x20";
/// `HPKE` || kem_id || kdf_id (HKDF-SHA256 = 1) || aead_id (ChaCha20Poly1305 = 3).
const HPKE_SUITE_ID: &[u8] = b"HPKE\x00\x20\x00\x01\x00\x03";
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// mode_base.
const MODE_BASE: u8 = 0x00;

/// Length of an encapsulated key (`enc`): an X25519 public key.
pub const N_ENC: usize = 32;
/// Length of the AEAD key.
pub const N_K: usize = 32;
/// Length of the AEAD nonce.
pub const N_N: usize = 12;
/// Length of the AEAD tag.
pub const N_T: usize = 16;

/// HPKE failed. Deliberately carries no detail: callers turn it into their
/// own opaque "does not open" error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpkeError;

fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Prk {
    kdf::extract(salt, &[VERSION_LABEL, suite_id, label, ikm])
}

/// `LabeledExtract` returning the PRK bytes themselves (for the hashes that
/// enter the key schedule context; they are not secret).
fn labeled_extract_bytes(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> [u8; 32] {
    *labeled_extract(suite_id, salt, label, ikm)
}

fn labeled_expand(prk: &Prk, suite_id: &[u8], label: &[u8], info: &[u8], out: &mut [u8]) {
    // Lengths used here are at most 255 * 32 (checked by the callers).
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    kdf::expand(prk, &[&len, VERSION_LABEL, suite_id, label, info], out);
}

/// `DeriveKeyPair(ikm)` for X25519 (RFC 9180 §7.1.3).
pub fn derive_key_pair(ikm: &[u8]) -> (StaticSecret, PublicKey) {
    let prk = labeled_extract(KEM_SUITE_ID, b"", b"dkp_prk", ikm);
    let mut sk = Zeroizing::new([0u8; 32]);
    labeled_expand(&prk, KEM_SUITE_ID, b"sk", b"", &mut sk[..]);
    let secret = StaticSecret::from(*sk);
    let public = PublicKey::from(&secret);
    (secret, public)
}

/// X25519 with the RFC's check that the output is not all zeroes (a
/// low-order peer key).
fn dh(secret: &StaticSecret, public: &PublicKey) -> Result<Zeroizing<[u8; 32]>, HpkeError> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(HpkeError);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

fn extract_and_expand(dh: &[u8; 32], kem_context: &[u8]) -> Zeroizing<[u8; 32]> {
    let prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut shared_secret = Zeroizing::new([0u8; 32]);
    labeled_expand(
        &prk,
        KEM_SUITE_ID,
        b"shared_secret",
        kem_context,
        &mut shared_secret[..],
    );
    shared_secret
}

/// `Encap` with the ephemeral key derived from `ikm_e`. Returns `(enc, shared_secret)`.
fn encap_derand(
    pk_r: &PublicKey,
    ikm_e: &[u8],
) -> Result<([u8; N_ENC], Zeroizing<[u8; 32]>), HpkeError> {
    let (sk_e, pk_e) = derive_key_pair(ikm_e);
    let dh = dh(&sk_e, pk_r)?;
    let enc = pk_e.to_bytes();
    let mut kem_context = [0u8; 64];
    kem_context[..32].copy_from_slice(&enc);
    kem_context[32..].copy_from_slice(pk_r.as_bytes());
    Ok((enc, extract_and_expand(&dh, &kem_context)))
}

/// `Decap`: recovers the shared secret from `enc` with the recipient's key
/// pair (the public half is passed in to save a scalar multiplication).
fn decap(
    enc: &[u8; N_ENC],
    sk_r: &StaticSecret,
    pk_r: &PublicKey,
) -> Result<Zeroizing<[u8; 32]>, HpkeError> {
    let pk_e = PublicKey::from(*enc);
    let dh = dh(sk_r, &pk_e)?;
    let mut kem_context = [0u8; 64];
    kem_context[..32].copy_from_slice(enc);
    kem_context[32..].copy_from_slice(pk_r.as_bytes());
    Ok(extract_and_expand(&dh, &kem_context))
}

/// An HPKE encryption context (RFC 9180 §5.2), the same type on both sides.
pub struct Context {
    key: Zeroizing<[u8; N_K]>,
    base_nonce: [u8; N_N],
    exporter: Exporter,
    seq: u64,
}

/// The key schedule context of mode_base for one `info`:
/// `mode ‖ LabeledExtract("", "psk_id_hash", "") ‖ LabeledExtract("", "info_hash", info)`.
/// It depends only on `info`, so a caller with a fixed `info` computes it once.
pub struct KeyScheduleContext([u8; 65]);

impl KeyScheduleContext {
    /// The context for mode_base with `info`.
    pub fn base(info: &[u8]) -> Self {
        let psk_id_hash = labeled_extract_bytes(HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract_bytes(HPKE_SUITE_ID, b"", b"info_hash", info);
        let mut ks_context = [0u8; 65];
        ks_context[0] = MODE_BASE;
        ks_context[1..33].copy_from_slice(&psk_id_hash);
        ks_context[33..].copy_from_slice(&info_hash);
        KeyScheduleContext(ks_context)
    }
}

/// The secret-export half of an HPKE context (RFC 9180 §5.3), for callers
/// that only export: it skips deriving the AEAD key and nonce.
pub struct Exporter {
    exporter_secret: Zeroizing<[u8; 32]>,
}

impl Exporter {
    fn from_secret(secret: &Prk, ks: &KeyScheduleContext) -> Self {
        let mut exporter_secret = Zeroizing::new([0u8; 32]);
        labeled_expand(
            secret,
            HPKE_SUITE_ID,
            b"exp",
            &ks.0,
            &mut exporter_secret[..],
        );
        Exporter { exporter_secret }
    }

    fn from_shared_secret(shared_secret: &[u8; 32], ks: &KeyScheduleContext) -> Self {
        let secret = labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"");
        Exporter::from_secret(&secret, ks)
    }

    /// `Context.Export(exporter_context, L)` (RFC 9180 §5.3), L = `out.len()` ≤ 255·32.
    pub fn export(&self, exporter_context: &[u8], out: &mut [u8]) -> Result<(), HpkeError> {
        if out.len() > 255 * 32 {
            return Err(HpkeError);
        }
        labeled_expand(
            &self.exporter_secret,
            HPKE_SUITE_ID,
            b"sec",
            exporter_context,
            out,
        );
        Ok(())
    }
}

impl Context {
    /// `KeySchedule` for mode_base (no PSK).
    fn key_schedule(shared_secret: &[u8; 32], info: &[u8]) -> Self {
        let ks = KeyScheduleContext::base(info);
        let secret = labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"");
        let mut key = Zeroizing::new([0u8; N_K]);
        labeled_expand(&secret, HPKE_SUITE_ID, b"key", &ks.0, &mut key[..]);
        let mut base_nonce = [0u8; N_N];
        labeled_expand(
            &secret,
            HPKE_SUITE_ID,
            b"base_nonce",
            &ks.0,
            &mut base_nonce,
        );
        let exporter = Exporter::from_secret(&secret, &ks);
        Context {
            key,
            base_nonce,
            exporter,
            seq: 0,
        }
    }

    fn next_nonce(&mut self) -> Result<[u8; N_N], HpkeError> {
        let mut nonce = self.base_nonce;
        for (n, s) in nonce[N_N - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1).ok_or(HpkeError)?;
        Ok(nonce)
    }

    /// `ContextS.Seal(aad, pt)`.
    pub fn seal(&mut self, aad: &[u8], pt: &[u8]) -> Result<Vec<u8>, HpkeError> {
        let nonce = self.next_nonce()?;
        ChaCha20Poly1305::new((&*self.key).into())
            .encrypt((&nonce).into(), Payload { msg: pt, aad })
            .map_err(|_| HpkeError)
    }

    /// `ContextR.Open(aad, ct)`. The sequence number only advances on success.
    pub fn open(&mut self, aad: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
        let seq = self.seq;
        let nonce = self.next_nonce()?;
        ChaCha20Poly1305::new((&*self.key).into())
            .decrypt((&nonce).into(), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| {
                self.seq = seq;
                HpkeError
            })
    }

    /// `Context.Export(exporter_context, L)` (RFC 9180 §5.3), L = `out.len()` ≤ 255·32.
    pub fn export(&self, exporter_context: &[u8], out: &mut [u8]) -> Result<(), HpkeError> {
        self.exporter.export(exporter_context, out)
    }
}

/// `SetupBaseS` for a caller that only exports: a fresh random ephemeral
/// key, and the key schedule context `ks` precomputed for the `info`.
pub fn setup_base_s_exporter(
    pk_r: &PublicKey,
    ks: &KeyScheduleContext,
) -> Result<([u8; N_ENC], Exporter), HpkeError> {
    let mut ikm_e = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut ikm_e[..]);
    let (enc, shared_secret) = encap_derand(pk_r, &ikm_e[..])?;
    Ok((enc, Exporter::from_shared_secret(&shared_secret, ks)))
}

/// `SetupBaseR` for a caller that only exports and already has the
/// recipient's public key `pk_r` (the public half of `sk_r`).
pub fn setup_base_r_exporter(
    enc: &[u8; N_ENC],
    sk_r: &StaticSecret,
    pk_r: &PublicKey,
    ks: &KeyScheduleContext,
) -> Result<Exporter, HpkeError> {
    let shared_secret = decap(enc, sk_r, pk_r)?;
    Ok(Exporter::from_shared_secret(&shared_secret, ks))
}

/// `SetupBaseS(pkR, info)` with a fresh random ephemeral key. Returns `(enc, context)`.
pub fn setup_base_s(pk_r: &PublicKey, info: &[u8]) -> Result<([u8; N_ENC], Context), HpkeError> {
    let mut ikm_e = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut ikm_e[..]);
    setup_base_s_derand(pk_r, info, &ikm_e[..])
}

/// `SetupBaseS` with the ephemeral key derived from `ikm_e` (the RFC's
/// deterministic form, used by the test vectors; production code calls
/// [`setup_base_s`]).
pub fn setup_base_s_derand(
    pk_r: &PublicKey,
    info: &[u8],
    ikm_e: &[u8],
) -> Result<([u8; N_ENC], Context), HpkeError> {
    let (enc, shared_secret) = encap_derand(pk_r, ikm_e)?;
    Ok((enc, Context::key_schedule(&shared_secret, info)))
}

/// `SetupBaseR(enc, skR, info)`.
pub fn setup_base_r(
    enc: &[u8; N_ENC],
    sk_r: &StaticSecret,
    info: &[u8],
) -> Result<Context, HpkeError> {
    setup_base_r_with_public(enc, sk_r, &PublicKey::from(sk_r), info)
}

/// `SetupBaseR` for a caller that already has the recipient's public key
/// `pk_r` (it must be the public half of `sk_r`).
pub fn setup_base_r_with_public(
    enc: &[u8; N_ENC],
    sk_r: &StaticSecret,
    pk_r: &PublicKey,
    info: &[u8],
) -> Result<Context, HpkeError> {
    let shared_secret = decap(enc, sk_r, pk_r)?;
    Ok(Context::key_schedule(&shared_secret, info))
}

#[cfg(test)]
mod tests {
    //! RFC 9180 Appendix A.2.1 (base mode, this suite), from the data file.

    use super::*;
    use std::collections::HashMap;

    const VECTORS: &str = include_str!("../tests/data/hpke-rfc9180-a2-base.txt");

    /// One block of `name: value` entries of the vector file.
    type Block = HashMap<String, Vec<u8>>;

    /// The file's `name: hex` entries, with values wrapped over several lines
    /// joined. Returns the setup section and each encryption/export block.
    fn parse_sections() -> (Block, Vec<Block>) {
        let mut blocks: Vec<Block> = vec![HashMap::new()];
        let mut current: Option<(String, String)> = None;
        let flush = |blocks: &mut Vec<HashMap<String, Vec<u8>>>,
                     cur: &mut Option<(String, String)>| {
            if let Some((k, v)) = cur.take() {
                let bytes =
                    if k == "sequence number" || k == "L" || k == "mode" || k.ends_with("_id") {
                        v.trim()
                            .parse::<u64>()
                            .expect("number")
                            .to_be_bytes()
                            .to_vec()
                    } else {
                        hex::decode(v.trim()).unwrap_or_else(|e| panic!("{k}: {e}"))
                    };
                blocks.last_mut().expect("block").insert(k, bytes);
            }
        };
        for line in VECTORS.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with("~~~") {
                flush(&mut blocks, &mut current);
                if line.starts_with("####") {
                    blocks.push(HashMap::new());
                }
                continue;
            }
            if line.is_empty() {
                flush(&mut blocks, &mut current);
                blocks.push(HashMap::new());
                continue;
            }
            match line.split_once(':') {
                Some((k, v)) if !k.contains(' ') || k == "sequence number" => {
                    flush(&mut blocks, &mut current);
                    current = Some((k.to_string(), v.trim().to_string()));
                }
                _ => {
                    if let Some((_, v)) = current.as_mut() {
                        v.push_str(line);
                    }
                }
            }
        }
        flush(&mut blocks, &mut current);
        blocks.retain(|b| !b.is_empty());
        let setup = blocks.remove(0);
        (setup, blocks)
    }

    fn arr32(v: &[u8]) -> [u8; 32] {
        v.try_into().expect("32 bytes")
    }

    #[test]
    fn rfc9180_a2_base_vectors() {
        let (s, blocks) = parse_sections();
        assert_eq!(s["kem_id"], 32u64.to_be_bytes());
        let (sk_r, pk_r) = derive_key_pair(&s["ikmR"]);
        assert_eq!(sk_r.to_bytes().to_vec(), s["skRm"]);
        assert_eq!(pk_r.as_bytes().to_vec(), s["pkRm"]);
        let (sk_e, pk_e) = derive_key_pair(&s["ikmE"]);
        assert_eq!(sk_e.to_bytes().to_vec(), s["skEm"]);
        assert_eq!(pk_e.as_bytes().to_vec(), s["pkEm"]);

        let (enc, shared_secret) = encap_derand(&pk_r, &s["ikmE"]).expect("encap");
        assert_eq!(enc.to_vec(), s["enc"]);
        assert_eq!(shared_secret.to_vec(), s["shared_secret"]);
        assert_eq!(
            decap(&enc, &sk_r, &pk_r).expect("decap").to_vec(),
            s["shared_secret"]
        );

        let (enc, mut sender) =
            setup_base_s_derand(&pk_r, &s["info"], &s["ikmE"]).expect("setup s");
        assert_eq!(enc.to_vec(), s["enc"]);
        assert_eq!(sender.key.to_vec(), s["key"]);
        assert_eq!(sender.base_nonce.to_vec(), s["base_nonce"]);
        let mut receiver = setup_base_r(&arr32(&s["enc"]), &sk_r, &s["info"]).expect("setup r");
        assert_eq!(receiver.key.to_vec(), s["key"]);

        let mut encryptions = 0;
        let mut exports = 0;
        for b in &blocks {
            if let Some(seq) = b.get("sequence number") {
                let seq = u64::from_be_bytes(seq[..].try_into().expect("u64"));
                sender.seq = seq;
                receiver.seq = seq;
                assert_eq!(
                    sender.next_nonce().expect("nonce").to_vec(),
                    b["nonce"],
                    "seq {seq}"
                );
                sender.seq = seq;
                let ct = sender.seal(&b["aad"], &b["pt"]).expect("seal");
                assert_eq!(ct, b["ct"], "ciphertext for sequence number {seq}");
                let pt = receiver.open(&b["aad"], &b["ct"]).expect("open");
                assert_eq!(pt.to_vec(), b["pt"]);
                encryptions += 1;
            } else if let Some(value) = b.get("exported_value") {
                let context = b.get("exporter_context").cloned().unwrap_or_default();
                let mut out = vec![0u8; value.len()];
                sender.export(&context, &mut out).expect("export");
                assert_eq!(&out, value);
                receiver.export(&context, &mut out).expect("export");
                assert_eq!(&out, value);
                // The export-only path gives the same values.
                let ks = KeyScheduleContext::base(&s["info"]);
                let exporter =
                    setup_base_r_exporter(&arr32(&s["enc"]), &sk_r, &pk_r, &ks).expect("setup");
                exporter.export(&context, &mut out).expect("export");
                assert_eq!(&out, value);
                exports += 1;
            }
        }
        assert_eq!(encryptions, 6, "every encryption vector in the file ran");
        assert_eq!(exports, 3, "every export vector in the file ran");
    }

    #[test]
    fn open_refuses_wrong_aad_and_keeps_sequence() {
        let (sk_r, pk_r) = derive_key_pair(b"recipient ikm recipient ikm 32by");
        let (enc, mut s) = setup_base_s(&pk_r, b"info").expect("setup");
        let mut r = setup_base_r(&enc, &sk_r, b"info").expect("setup r");
        let ct = s.seal(b"aad", b"hello").expect("seal");
        assert_eq!(r.open(b"other", &ct).err(), Some(HpkeError));
        assert_eq!(r.open(b"aad", &ct).expect("open").as_slice(), b"hello");
    }

    #[test]
    fn low_order_point_is_refused() {
        let (_, pk_r) = derive_key_pair(b"x");
        let zero = PublicKey::from([0u8; 32]);
        assert!(setup_base_s(&zero, b"").is_err());
        let (sk_r, _) = derive_key_pair(b"y");
        let _ = pk_r;
        assert!(setup_base_r(&[0u8; 32], &sk_r, b"").is_err());
    }
}
