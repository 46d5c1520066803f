//! Allowlisting: an inline `gitseal:allow` comment on the finding's line
//! (or the line before), a baseline file of finding fingerprints, and path
//! ignore globs (the keyring's `verify.ignore` plus `--exclude`), and the
//! key that makes baseline fingerprints useless as a brute-force oracle.

use crate::finding::Digest;
use crate::{Error, Finding};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The inline marker.
pub const ALLOW_MARKER: &[u8] = b"gitseal:allow";

/// Whether the line `ls..le` of `data`, or the line before it, carries the
/// inline allow marker.
pub(crate) fn inline_allowed(data: &[u8], ls: usize, le: usize) -> bool {
    if memchr::memmem::find(&data[ls..le], ALLOW_MARKER).is_some() {
        return true;
    }
    if ls == 0 {
        return false;
    }
    let prev_end = ls - 1;
    let prev_start = memchr::memrchr(b'\n', &data[..prev_end]).map_or(0, |i| i + 1);
    memchr::memmem::find(&data[prev_start..prev_end], ALLOW_MARKER).is_some()
}

/// Paths a scan skips: glob patterns matched against the path relative to
/// the repository root. A pattern without `/` matches a file name anywhere
/// (like `.gitignore`); `**` crosses directories, `*` does not.
#[derive(Clone, Debug, Default)]
pub struct PathFilter {
    set: Option<GlobSet>,
    patterns: Vec<String>,
    root: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

impl PathFilter {
    /// Builds a filter from patterns. `root` is the directory patterns are
    /// relative to (the repository root); paths given relative are taken
    /// relative to the current directory.
    pub fn new(patterns: &[String], root: Option<&Path>) -> Result<PathFilter, Error> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let pat = p.strip_prefix("./").unwrap_or(p).trim_start_matches('/');
            let pat = if pat.contains('/') {
                pat.trim_end_matches('/').to_string()
            } else {
                format!("**/{pat}")
            };
            let mut add = |pat: &str| -> Result<(), Error> {
                let g = GlobBuilder::new(pat)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| Error::Glob {
                        pattern: p.to_string(),
                        message: e.kind().to_string(),
                    })?;
                b.add(g);
                Ok(())
            };
            add(&pat)?;
            // A directory pattern also covers everything below it.
            if !pat.ends_with("**") {
                add(&format!("{pat}/**"))?;
            }
        }
        let set = b.build().map_err(|e| Error::Glob {
            pattern: patterns.join(", "),
            message: e.to_string(),
        })?;
        let cwd = std::env::current_dir().ok();
        let root = root.map(|r| absolute(r, cwd.as_deref()));
        Ok(PathFilter {
            set: Some(set),
            patterns: patterns.to_vec(),
            root,
            cwd,
        })
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `path` (as walked, or a repository-relative git path) is
    /// ignored.
    pub fn is_ignored(&self, path: &Path) -> bool {
        let Some(set) = &self.set else { return false };
        if set.is_empty() {
            return false;
        }
        let rel = self.relative(path);
        set.is_match(&rel)
    }

    /// Whether a repository-relative path (from git) is ignored.
    pub fn is_ignored_repo_path(&self, path: &str) -> bool {
        match &self.set {
            Some(set) if !set.is_empty() => set.is_match(path),
            _ => false,
        }
    }

    fn relative(&self, path: &Path) -> PathBuf {
        if let Some(root) = &self.root {
            let abs = absolute(path, self.cwd.as_deref());
            if let Ok(rel) = abs.strip_prefix(root) {
                return rel.to_path_buf();
            }
        }
        path.strip_prefix("./").unwrap_or(path).to_path_buf()
    }
}

/// Lexically absolute, normalised path (no `.`/`..`, no symlink lookups).
pub(crate) fn absolute(path: &Path, cwd: Option<&Path>) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.map_or_else(|| path.to_path_buf(), |c| c.join(path))
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The key that turns a finding's in-memory digest into the fingerprint a
/// baseline (and a report scanned with `--baseline`) shows: PBKDF2-HMAC-
/// SHA256 of the digest with a random 32-byte salt per baseline file and
/// [`FingerprintKey::ITERATIONS`] rounds. Without the salt nothing can be
/// precomputed or compared across repositories; with it, every guess at a
/// short secret costs the full stretch (a plain SHA-256 fingerprint, as
/// version 1 baselines stored, is a fast offline oracle for short secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct FingerprintKey {
    salt: [u8; 32],
    iterations: u32,
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FingerprintKey {{ iterations: {} }}", self.iterations)
    }
}

impl FingerprintKey {
    /// Rounds of PBKDF2 for new baselines.
    pub const ITERATIONS: u32 = 10_000;
    /// The most rounds a baseline file may ask for (bounds the work a
    /// hostile baseline can cause).
    pub const MAX_ITERATIONS: u32 = 1_000_000;

    /// A fresh key with a random salt.
    pub fn generate() -> FingerprintKey {
        use rand_core::RngCore as _;
        let mut salt = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut salt);
        FingerprintKey {
            salt,
            iterations: Self::ITERATIONS,
        }
    }

    /// The fingerprint of a digest: 32 hex digits.
    pub fn fingerprint(&self, d: &Digest) -> String {
        use hmac::{Hmac, Mac};
        type H = Hmac<sha2::Sha256>;
        let Ok(keyed) = <H as Mac>::new_from_slice(&d.0) else {
            return String::new();
        };
        // PBKDF2 (RFC 8018), password = digest, one block.
        let mut mac = keyed.clone();
        mac.update(&self.salt);
        mac.update(&1u32.to_be_bytes());
        let mut u: [u8; 32] = mac.finalize().into_bytes().into();
        let mut acc = u;
        for _ in 1..self.iterations {
            let mut mac = keyed.clone();
            mac.update(&u);
            u = mac.finalize().into_bytes().into();
            for (a, b) in acc.iter_mut().zip(u.iter()) {
                *a ^= b;
            }
        }
        hex::encode(&acc[..16])
    }

    /// Fills in the fingerprint of every finding (in parallel).
    pub fn apply(&self, findings: &mut [Finding]) {
        use rayon::prelude::*;
        findings
            .par_iter_mut()
            .for_each(|f| f.fingerprint = Some(self.fingerprint(&f.digest)));
    }
}

/// A baseline: fingerprints of findings that are known and accepted.
/// Stored as JSON; holds no secret. Version 2 files (written now) carry the
/// salt of their [`FingerprintKey`]; version 1 files (unkeyed SHA-256) are
/// still read, and `verify` asks for them to be rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    /// `None` for a version 1 baseline.
    key: Option<FingerprintKey>,
    fingerprints: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct BaselineFile {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iterations: Option<u32>,
    findings: Vec<BaselineEntry>,
}

#[derive(Serialize, Deserialize)]
struct BaselineEntry {
    fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

impl Baseline {
    /// Parses a baseline file's text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Baseline, Error> {
        let bad = |message: String| Error::Baseline {
            path: origin.to_string(),
            message,
        };
        let file: BaselineFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let key = match file.version {
            1 => None,
            2 => {
                let salt = file
                    .salt
                    .as_deref()
                    .and_then(|s| hex::decode(s).ok())
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| bad("version 2 needs a `salt` of 64 hex digits".into()))?;
                let iterations = file.iterations.unwrap_or(0);
                if !(1..=FingerprintKey::MAX_ITERATIONS).contains(&iterations) {
                    return Err(bad(format!(
                        "`iterations` must be between 1 and {}",
                        FingerprintKey::MAX_ITERATIONS
                    )));
                }
                Some(FingerprintKey { salt, iterations })
            }
            v => {
                return Err(bad(format!(
                    "version {v} is not supported (expected 1 or 2)"
                )))
            }
        };
        let mut fingerprints = BTreeSet::new();
        for e in file.findings {
            let ok =
                e.fingerprint.len() == 32 && e.fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(bad(format!(
                    "fingerprint {:?} is not 32 hex digits",
                    crate::finding::escape_control(
                        &e.fingerprint.chars().take(40).collect::<String>()
                    )
                )));
            }
            fingerprints.insert(e.fingerprint.to_ascii_lowercase());
        }
        Ok(Baseline { key, fingerprints })
    }

    /// Loads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Baseline::from_json(&text, &path.display().to_string())
    }

    /// The baseline text for a set of findings (sorted, deduplicated), keyed
    /// with a fresh random salt.
    pub fn to_json(findings: &[Finding]) -> String {
        Baseline::to_json_with(&FingerprintKey::generate(), findings)
    }

    /// The baseline text for a set of findings, keyed with `key`.
    pub fn to_json_with(key: &FingerprintKey, findings: &[Finding]) -> String {
        let mut keyed = findings.to_vec();
        key.apply(&mut keyed);
        let mut seen = BTreeSet::new();
        let mut entries: Vec<BaselineEntry> = keyed
            .into_iter()
            .filter_map(|f| {
                let fp = f.fingerprint?;
                seen.insert(fp.clone()).then(|| BaselineEntry {
                    fingerprint: fp,
                    rule: Some(f.rule.id().to_string()),
                    path: Some(f.path),
                })
            })
            .collect();
        entries.sort_by(|a, b| (&a.path, &a.fingerprint).cmp(&(&b.path, &b.fingerprint)));
        let file = BaselineFile {
            version: 2,
            salt: Some(hex::encode(key.salt)),
            iterations: Some(key.iterations),
            findings: entries,
        };
        let mut s = serde_json::to_string_pretty(&file).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The key of a version 2 baseline; `None` for version 1.
    pub fn key(&self) -> Option<&FingerprintKey> {
        self.key.as_ref()
    }

    /// Whether this is a version 1 baseline (unkeyed fingerprints).
    pub fn is_legacy(&self) -> bool {
        self.key.is_none()
    }

    /// Whether a finding is in the baseline.
    pub fn contains(&self, f: &Finding) -> bool {
        match &self.key {
            None => self
                .fingerprints
                .contains(&crate::finding::legacy_fingerprint(&f.digest)),
            Some(key) => match &f.fingerprint {
                Some(fp) => self.fingerprints.contains(fp),
                None => self.fingerprints.contains(&key.fingerprint(&f.digest)),
            },
        }
    }

    /// Number of fingerprints.
    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    /// Whether the baseline is empty.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// Removes baselined findings from `out`, counting them in its summary.
    /// With a version 2 baseline the remaining findings carry fingerprints
    /// keyed by its salt.
    pub fn apply(&self, out: &mut crate::ScanOutput) {
        if let Some(key) = &self.key {
            key.apply(&mut out.findings);
        }
        let before = out.findings.len();
        out.findings.retain(|f| !self.contains(f));
        out.summary.allowed_baseline += (before - out.findings.len()) as u64;
    }
}
