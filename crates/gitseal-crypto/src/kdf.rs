//! HMAC-SHA256 and HKDF-SHA256 (RFC 2104, RFC 5869) whose every
//! key-dependent state is wiped when dropped.
//!
//! The `hkdf` and `hmac` crates of the RustCrypto generation `age` uses
//! keep the HMAC state (the key, padded and hashed) in hasher cores that
//! are not zeroized on drop, so each HPKE step left PRK-equivalent state
//! behind in freed memory. Here the SHA-256 chaining values and block
//! buffers live in `Zeroizing` buffers; the compression function is
//! `sha2::compress256`, the same code (and CPU extensions) `sha2` uses.
//! Checked against RFC 5869's vectors and against the `hkdf` crate.

use sha2::digest::generic_array::GenericArray;
use zeroize::Zeroizing;

const BLOCK: usize = 64;
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A SHA-256 computation in progress, all state wiped on drop.
#[derive(Clone)]
struct Sha256 {
    state: Zeroizing<[u32; 8]>,
    buffer: Zeroizing<[u8; BLOCK]>,
    buffered: usize,
    length: u64,
}

impl Sha256 {
    fn new() -> Self {
        Sha256 {
            state: Zeroizing::new(H0),
            buffer: Zeroizing::new([0; BLOCK]),
            buffered: 0,
            length: 0,
        }
    }

    fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
    }

    fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (BLOCK - self.buffered).min(data.len());
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered == BLOCK {
                Sha256::compress(&mut self.state, &self.buffer);
                self.buffered = 0;
            }
        }
    }

    fn finalize(mut self) -> Zeroizing<[u8; 32]> {
        let bits = self.length.wrapping_mul(8).to_be_bytes();
        let mut at = self.buffered;
        self.buffer[at] = 0x80;
        at += 1;
        if at > BLOCK - 8 {
            self.buffer[at..].fill(0);
            Sha256::compress(&mut self.state, &self.buffer);
            at = 0;
        }
        self.buffer[at..BLOCK - 8].fill(0);
        self.buffer[BLOCK - 8..].copy_from_slice(&bits);
        Sha256::compress(&mut self.state, &self.buffer);
        let mut out = Zeroizing::new([0u8; 32]);
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state.iter()) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// HMAC-SHA256 keyed once: the states after absorbing the inner and outer
/// padded keys.
pub(crate) struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = Zeroizing::new([0u8; BLOCK]);
        if key.len() > BLOCK {
            let mut h = Sha256::new();
            h.update(key);
            block[..32].copy_from_slice(&h.finalize()[..]);
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut pad = Zeroizing::new([0u8; BLOCK]);
        let mut inner = Sha256::new();
        for (p, k) in pad.iter_mut().zip(block.iter()) {
            *p = k ^ 0x36;
        }
        inner.update(&pad[..]);
        let mut outer = Sha256::new();
        for (p, k) in pad.iter_mut().zip(block.iter()) {
            *p = k ^ 0x5c;
        }
        outer.update(&pad[..]);
        Hmac { inner, outer }
    }

    /// HMAC of the concatenation of `parts`.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> Zeroizing<[u8; 32]> {
        let mut inner = self.inner.clone();
        for p in parts {
            inner.update(p);
        }
        self.finish(inner)
    }

    /// The MAC from an inner hash that has absorbed the message.
    fn finish(&self, inner: Sha256) -> Zeroizing<[u8; 32]> {
        let inner = inner.finalize();
        let mut outer = self.outer.clone();
        outer.update(&inner[..]);
        outer.finalize()
    }
}

/// HKDF-Extract(salt, IKM) with the IKM given in parts.
pub(crate) fn extract(salt: &[u8], ikm: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    Hmac::new(salt).mac(ikm)
}

/// HKDF-Expand(PRK, info, L) with the info given in parts; L = `out.len()`,
/// at most 255 × 32 (longer outputs are left zero: no caller asks for them).
pub(crate) fn expand(prk: &[u8; 32], info: &[&[u8]], out: &mut [u8]) {
    if out.len() > 255 * 32 {
        return;
    }
    let hmac = Hmac::new(prk);
    let mut previous: Option<Zeroizing<[u8; 32]>> = None;
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let counter = [u8::try_from(i + 1).unwrap_or(u8::MAX)];
        // T(i) = HMAC(PRK, T(i-1) || info || i): fed part by part, no copy.
        let mut inner = hmac.inner.clone();
        if let Some(t) = &previous {
            inner.update(&t[..]);
        }
        for part in info {
            inner.update(part);
        }
        inner.update(&counter);
        let t = hmac.finish(inner);
        chunk.copy_from_slice(&t[..chunk.len()]);
        previous = Some(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    #[test]
    fn rfc5869_vectors() {
        // (IKM, salt, info, L, PRK, OKM): test cases 1, 2 and 3.
        let cases = [
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                "000102030405060708090a0b0c",
                "f0f1f2f3f4f5f6f7f8f9",
                42,
                "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            ),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
                "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
                "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
                82,
                "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
            ),
            (
                "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
                "",
                "",
                42,
                "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
            ),
        ];
        for (ikm, salt, info, len, prk, okm) in cases {
            let got = extract(&unhex(salt), &[&unhex(ikm)]);
            assert_eq!(hex::encode(&got[..]), prk);
            let mut out = vec![0u8; len];
            expand(&got, &[&unhex(info)], &mut out);
            assert_eq!(hex::encode(&out), okm);
        }
    }

    #[test]
    fn agrees_with_the_hkdf_crate_on_every_length() {
        // Lengths around the block and padding boundaries, parts split anywhere.
        for n in 0..200usize {
            let ikm: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let salt: Vec<u8> = (0..(n * 3 % 150)).map(|i| i as u8 ^ 0x5a).collect();
            let (a, b) = ikm.split_at(n / 3);
            let ours = extract(&salt, &[a, b]);
            let (theirs, hk) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&salt), &ikm);
            assert_eq!(&ours[..], &theirs[..], "extract, {n} bytes");
            let mut want = vec![0u8; n + 1];
            hk.expand(&ikm, &mut want).expect("expand");
            let mut got = vec![0u8; n + 1];
            expand(&ours, &[a, b], &mut got);
            assert_eq!(got, want, "expand, {n} bytes");
        }
    }
}
