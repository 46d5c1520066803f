//! Integration tests of gitseal-scan: one test binary, one module per area.
//!
//! Fixtures never contain a literal credential: every fake secret is built
//! at run time from pieces and pseudo-random characters, so neither GitHub
//! push protection nor `gitseal verify` on this repository sees one.

mod allow;
mod commits;
mod corpus;
mod git;
mod hardening;
mod kube;
mod kustomize;
mod report;
mod rules;
mod values;

use gitseal_scan::{Config, Finding, Scanner};

pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const UPPER32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const DIGITS: &[u8] = b"0123456789";

/// Deterministic pseudo-random text, so fixtures are random-looking without
/// being written down anywhere.
pub use gitseal_test_support::fixtures::rand_str;

/// base62 of a CRC32, 6 characters (GitHub and npm token checksums).
pub fn crc_base62(s: &str) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32fast::hash(s.as_bytes());
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = A[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A token with a valid GitHub/npm checksum: `prefix` + 30 random + 6 check.
pub fn checksummed(prefix: &str, seed: u64) -> String {
    let body = rand_str(seed, 30, ALNUM);
    format!("{prefix}{body}{}", crc_base62(&body))
}

/// A PEM block with a random body.
pub fn pem(label: &str, seed: u64, newline: &str) -> String {
    let mut s = format!("-----{} {label}-----{newline}", "BEGIN");
    for i in 0..6 {
        s.push_str(&rand_str(seed + i, 64, B64));
        s.push_str(newline);
    }
    s.push_str(&format!("-----{} {label}-----{newline}", "END"));
    s
}

pub fn scanner() -> Scanner {
    match Scanner::new(Config::default()) {
        Ok(s) => s,
        Err(e) => panic!("scanner: {e}"),
    }
}

pub fn scan(path: &str, text: &str) -> Vec<Finding> {
    scanner().scan_bytes(path, text.as_bytes())
}

pub fn rule_ids(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.rule.id()).collect()
}
