//! Fixture generators: random-looking text that is the same on every run
//! (so fixtures never hold a literal credential that push protection or
//! `gitseal verify` on this repository would flag), and files in a test
//! directory.

use std::path::Path;
use std::process::Command;

/// Letters and digits.
pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Letters and digits a reader cannot confuse (no `I l 1 O o 0`).
pub const UNAMBIGUOUS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Deterministic pseudo-random text (xorshift64*) of `len` characters from
/// `alphabet`: the same `seed` always gives the same text.
pub fn rand_str(seed: u64, len: usize, alphabet: &[u8]) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            alphabet[(v >> 33) as usize % alphabet.len()] as char
        })
        .collect()
}

/// [`rand_str`] over [`UNAMBIGUOUS`]: a password- or token-like value.
pub fn token(seed: u64, len: usize) -> String {
    rand_str(seed, len, UNAMBIGUOUS)
}

/// Writes `contents` to `dir/path`, creating the folders on the way.
pub fn write(dir: &Path, path: &str, contents: &(impl AsRef<[u8]> + ?Sized)) {
    let p = dir.join(path);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
    }
    std::fs::write(&p, contents.as_ref())
        .unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
}

/// Runs the independent Bitnami Sealed Secrets encoder
/// (`crates/gitseal-migrate/tests/bitnami_seal.py`, Python `cryptography`)
/// into `dir`: the exported keys, a repository of SealedSecrets and
/// `expected.json` (see the script). `$PYTHON` or `python3`;
/// `scripts/gitops-tools.sh` installs what it needs. Panics with the
/// script's stderr when it fails, never skips.
pub fn bitnami_seal(dir: &Path) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gitseal-migrate/tests/bitnami_seal.py");
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python:?} (scripts/gitops-tools.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "bitnami_seal.py failed (run scripts/gitops-tools.sh for Python `cryptography` and PyYAML):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rand_str_is_stable_and_stays_in_its_alphabet() {
        // Fixtures (and the findings tests expect from them) depend on
        // these exact values: the generator must not change.
        assert_eq!(rand_str(5, 12, b"01"), "110110101110");
        assert!(token(1, 24).starts_with("KxGh"), "{}", token(1, 24));
        assert_eq!(token(1, 24), rand_str(1, 24, UNAMBIGUOUS));
        assert_ne!(rand_str(7, 32, ALNUM), rand_str(8, 32, ALNUM));
        let t = token(3, 500);
        assert_eq!(t.len(), 500);
        assert!(t.bytes().all(|b| UNAMBIGUOUS.contains(&b)), "{t}");
    }

    #[test]
    fn write_creates_the_folders() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(dir.path(), "a/b/c.txt", "x\n");
        write(dir.path(), "a/d.bin", &[0u8, 1]);
        assert_eq!(
            std::fs::read(dir.path().join("a/b/c.txt")).ok(),
            Some(b"x\n".to_vec())
        );
        assert_eq!(
            std::fs::read(dir.path().join("a/d.bin")).ok(),
            Some(vec![0, 1])
        );
    }
}
