//! gitseal-scan: the verifier behind `gitseal verify`.
//!
//! It finds what must not be committed to a GitOps repository: plaintext
//! Kubernetes `Secret`s, kustomize secret literals and the committed files
//! a kustomize `secretGenerator` reads, SealedSecret values
//! that are broken, sealed to unknown keys or moved to another place, and
//! credentials in any text file (provider tokens by pattern with checksum
//! checks, private keys, JWTs, URLs with passwords, high-entropy values under
//! secret-like keys). Sources are directory trees ([`Scanner::scan_paths`])
//! and git ([`git`]: staged changes, a revision range, or all history).
//!
//! The hot path: one Aho-Corasick pass over each file finds candidate
//! positions; only those run small anchored checks. Files are scanned in
//! parallel with rayon (the `ignore` crate's parallel walker for trees).
//!
//! ```no_run
//! use gitseal_scan::{Config, Scanner};
//! let scanner = Scanner::new(Config::default())?;
//! let out = scanner.scan_paths(&[std::path::PathBuf::from(".")], None)?;
//! for f in &out.findings {
//!     // f.redacted never holds the whole secret
//!     let _ = (&f.path, f.line, f.rule.id(), &f.redacted);
//! }
//! # Ok::<(), gitseal_scan::Error>(())
//! ```

pub mod allow;
mod catalog;
mod collect;
pub mod entropy;
pub mod finding;
pub mod git;
mod kube;
mod kustomize;
pub mod lifecycle;
pub mod report;
mod rules;
mod template;
pub mod walk;

pub use allow::{Baseline, FingerprintKey, PathFilter};
pub use finding::{Confidence, Context, Finding, Rule};
pub use gitseal_crypto::KeyId;
pub use lifecycle::Lifecycle;

use rules::{Hit, Patterns};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Everything that can go wrong in a scan. Never holds secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// What was being read.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Walking a directory tree failed.
    #[error("cannot walk {path}: {message}")]
    Walk {
        /// The root or entry.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A path given to scan does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// A glob pattern (from `--exclude` or `verify.ignore`) is invalid.
    #[error("invalid ignore pattern {pattern:?}: {message}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// A git command could not run or failed.
    #[error("git {command} failed: {message}")]
    Git {
        /// The git subcommand.
        command: String,
        /// git's error output (trimmed) or the spawn error.
        message: String,
    },
    /// git printed something this crate cannot parse.
    #[error("unexpected output from git {command}: {message}")]
    GitOutput {
        /// The git subcommand.
        command: String,
        /// What was unexpected.
        message: String,
    },
    /// A baseline file is not valid.
    #[error("invalid baseline file {path}: {message}")]
    Baseline {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The report could not be serialised.
    #[error("cannot write the report: {0}")]
    Report(String),
}

/// How a scan is configured.
#[derive(Clone, Debug)]
pub struct Config {
    /// Key ids of the keyring; `None` skips the unknown-key check.
    pub known_keys: Option<BTreeSet<KeyId>>,
    /// Which paths to skip.
    pub filter: PathFilter,
    /// Files larger than this are skipped (bytes).
    pub max_file_size: u64,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Key lifecycle checks from the keyring (retired keys, required
    /// recipients, environments by path); `None` skips them.
    pub lifecycle: Option<Lifecycle>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            known_keys: None,
            filter: PathFilter::default(),
            max_file_size: 10 * 1024 * 1024,
            threads: 0,
            lifecycle: None,
        }
    }
}

/// Counters a caller can read while a scan runs (for a progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    /// Files (or blobs) scanned so far.
    pub files: AtomicU64,
    /// Bytes scanned so far.
    pub bytes: AtomicU64,
}

impl Progress {
    fn add(&self, bytes: usize) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// The result of a scan.
#[derive(Clone, Debug, Default)]
pub struct ScanOutput {
    /// Findings, sorted by path, line, column, rule.
    pub findings: Vec<Finding>,
    /// Totals.
    pub summary: Summary,
}

/// Totals of a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Files or blobs scanned.
    pub files_scanned: u64,
    /// Bytes scanned.
    pub bytes_scanned: u64,
    /// Files skipped (binary, too large, excluded).
    pub files_skipped: u64,
    /// Findings silenced by an inline `gitseal:allow`.
    pub allowed_inline: u64,
    /// Findings silenced by the baseline.
    pub allowed_baseline: u64,
    /// Findings left out by `--min-confidence` / `--exclude-context`.
    pub filtered: u64,
}

impl ScanOutput {
    /// Keeps the findings at or above `min` confidence whose context is not
    /// in `exclude`; counts the others in `summary.filtered`.
    pub fn retain_confident(&mut self, min: Confidence, exclude: &[Context]) {
        let before = self.findings.len();
        self.findings
            .retain(|f| f.confidence >= min && !exclude.contains(&f.context));
        self.summary.filtered += (before - self.findings.len()) as u64;
    }
}

/// The scanner: compiled rules plus configuration. Cheap to share between
/// threads (`&Scanner` is `Sync`).
pub struct Scanner {
    config: Config,
    patterns: Patterns,
}

/// What scanning one blob produced.
#[derive(Debug, Default)]
pub(crate) struct BlobResult {
    pub findings: Vec<Finding>,
    pub allowed_inline: u64,
    /// Lines of the allowed findings (so a finding added later on the same
    /// line is not counted twice).
    pub allowed_lines: Vec<usize>,
    /// Files a kustomization's secretGenerators read (kustomization files only).
    pub refs: Vec<kustomize::RawRef>,
}

/// Bytes looked at to decide whether a file is binary.
const BINARY_PROBE: usize = 8000;

/// Whether the bytes look binary (a NUL in the first 8000 bytes, as git does).
pub fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(BINARY_PROBE)]).is_some()
}

impl Scanner {
    /// Compiles the rules.
    pub fn new(config: Config) -> Result<Scanner, Error> {
        Ok(Scanner {
            config,
            patterns: Patterns::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Scans one in-memory blob reported as `path`. Binary data gives no
    /// findings. `added` restricts findings to those 1-based lines.
    pub fn scan_bytes(&self, path: &str, data: &[u8]) -> Vec<Finding> {
        self.scan_blob(path, data, None, None).findings
    }

    pub(crate) fn scan_blob(
        &self,
        path: &str,
        data: &[u8],
        added: Option<&dyn Fn(usize) -> bool>,
        commit: Option<&str>,
    ) -> BlobResult {
        let mut res = BlobResult::default();
        if is_binary(data) {
            return res;
        }
        let mut hits: Vec<Hit> = Vec::new();
        self.patterns.scan(path, data, &mut hits);
        if kube::wants(path, data) {
            let mut refs = Vec::new();
            kube::scan(data, self.config.known_keys.as_ref(), &mut hits, &mut refs);
            if kustomize::is_kustomization(path) {
                res.refs = refs;
            }
            if let Some(lifecycle) = &self.config.lifecycle {
                lifecycle.scan(path, added.is_some(), data, &mut hits);
            }
        }
        if hits.is_empty() {
            return res;
        }
        let hits = resolve_overlaps(hits);
        let mut line = 1usize;
        let mut cursor = 0usize;
        for h in hits {
            let start = h.start.min(data.len());
            if start >= cursor {
                line += memchr::memchr_iter(b'\n', &data[cursor..start]).count();
            } else {
                line -= memchr::memchr_iter(b'\n', &data[start..cursor]).count();
            }
            cursor = start;
            if let Some(added) = added {
                if !added(line) {
                    continue;
                }
            }
            let (ls, le) = rules::line_bounds(data, start);
            let column = String::from_utf8_lossy(&data[ls..start]).chars().count() + 1;
            if allow::inline_allowed(data, ls, le) {
                res.allowed_inline += 1;
                res.allowed_lines.push(line);
                continue;
            }
            res.findings.push(Finding::new(
                path, line, column, h.rule, h.message, &h.secret, commit,
            ));
        }
        res
    }

    /// The secretGenerator file references of a kustomization file.
    pub(crate) fn kustomization_refs(&self, path: &str, data: &[u8]) -> Vec<kustomize::RawRef> {
        let mut refs = Vec::new();
        if kustomize::is_kustomization(path) && !is_binary(data) {
            kube::scan(data, None, &mut Vec::new(), &mut refs);
        }
        refs
    }

    /// Scans files and directory trees (see [`walk`]).
    pub fn scan_paths(
        &self,
        paths: &[PathBuf],
        progress: Option<&Progress>,
    ) -> Result<ScanOutput, Error> {
        walk::scan_paths(self, paths, progress)
    }
}

fn resolve_overlaps(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| (h.span.0, h.rule));
    let mut keep: Vec<Hit> = Vec::with_capacity(hits.len());
    'next: for h in hits {
        let mut i = keep.len();
        while i > 0 {
            i -= 1;
            let k = &keep[i];
            // keep is sorted by span start; stop once spans cannot overlap
            // (spans are short, look back a bounded distance).
            if keep.len() - i > 64 {
                break;
            }
            let overlap = h.span.0 < k.span.1 && k.span.0 < h.span.1;
            if !overlap {
                continue;
            }
            if h.rule == k.rule && h.start == k.start {
                continue 'next; // duplicate
            }
            // Structural (Kubernetes) rules are independent checks and never
            // hide each other; any other overlap keeps the earlier rule.
            if h.rule.is_structural() && k.rule.is_structural() {
                continue;
            }
            if h.rule < k.rule {
                keep.remove(i);
            } else {
                continue 'next;
            }
        }
        keep.push(h);
    }
    keep.sort_by_key(|h| h.start);
    keep
}

/// Sorts findings in report order.
pub fn sort_findings(f: &mut [Finding]) {
    f.sort_by(|a, b| {
        (&a.path, a.line, a.column, a.rule, &a.commit)
            .cmp(&(&b.path, b.line, b.column, b.rule, &b.commit))
    });
}
