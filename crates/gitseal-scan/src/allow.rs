//! Allowlisting: an inline `gitseal:allow` comment on the finding's line
//! (or the line before), a baseline file of finding fingerprints, and path
//! ignore globs (the keyring's `verify.ignore` plus `--exclude`).

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

/// A baseline: fingerprints of findings that are known and accepted.
/// Stored as JSON; holds no secret (a fingerprint is a truncated SHA-256).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Baseline {
    fingerprints: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct BaselineFile {
    version: u32,
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
        let file: BaselineFile = serde_json::from_str(text).map_err(|e| Error::Baseline {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        if file.version != 1 {
            return Err(Error::Baseline {
                path: origin.to_string(),
                message: format!("version {} is not supported (expected 1)", file.version),
            });
        }
        let mut fingerprints = BTreeSet::new();
        for e in file.findings {
            let ok =
                e.fingerprint.len() == 32 && e.fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(Error::Baseline {
                    path: origin.to_string(),
                    message: format!(
                        "fingerprint {:?} is not 32 hex digits",
                        crate::finding::escape_control(
                            &e.fingerprint.chars().take(40).collect::<String>()
                        )
                    ),
                });
            }
            fingerprints.insert(e.fingerprint.to_ascii_lowercase());
        }
        Ok(Baseline { fingerprints })
    }

    /// Loads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Baseline::from_json(&text, &path.display().to_string())
    }

    /// The baseline text for a set of findings (sorted, deduplicated).
    pub fn to_json(findings: &[Finding]) -> String {
        let mut seen = BTreeSet::new();
        let mut entries: Vec<BaselineEntry> = findings
            .iter()
            .filter(|f| seen.insert(f.fingerprint.clone()))
            .map(|f| BaselineEntry {
                fingerprint: f.fingerprint.clone(),
                rule: Some(f.rule.id().to_string()),
                path: Some(f.path.clone()),
            })
            .collect();
        entries.sort_by(|a, b| (&a.path, &a.fingerprint).cmp(&(&b.path, &b.fingerprint)));
        let file = BaselineFile {
            version: 1,
            findings: entries,
        };
        let mut s = serde_json::to_string_pretty(&file).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Whether a finding is in the baseline.
    pub fn contains(&self, f: &Finding) -> bool {
        self.fingerprints.contains(&f.fingerprint)
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
    pub fn apply(&self, out: &mut crate::ScanOutput) {
        let before = out.findings.len();
        out.findings.retain(|f| !self.contains(f));
        out.summary.allowed_baseline += (before - out.findings.len()) as u64;
    }
}
