//! What the working-tree driver ([`crate::walk`]) and the git driver
//! ([`crate::git`]) share: scanning one file or blob, and collecting
//! findings, counts and the facts kustomize `secretGenerator` references
//! are resolved against once every blob has been read.

use crate::kustomize::{self, Facts, Kustomization};
use crate::{sort_findings, Finding, Progress, ScanOutput, Scanner, Summary};

/// Where a file or blob was found.
#[derive(Clone, Copy)]
pub(crate) struct Origin<'a> {
    /// Path as reported.
    pub path: &'a str,
    /// The commit that introduced it (git sources).
    pub commit: Option<&'a str>,
    /// How many directories its directory lies below the scanned root (how
    /// far a kustomization's `..` may climb).
    pub budget: usize,
}

/// What one file or blob contributed.
pub(crate) struct Item {
    /// Bytes scanned; `None` when it was skipped (binary or too large).
    scanned: Option<u64>,
    findings: Vec<Finding>,
    allowed_inline: u64,
    facts: Option<Facts>,
    kustomization: Option<Kustomization>,
}

impl Item {
    /// A file over the size cap: not read, but a generator reading it is
    /// still reported.
    pub(crate) fn too_large(origin: Origin<'_>, size: u64) -> Item {
        Item {
            scanned: None,
            findings: Vec::new(),
            allowed_inline: 0,
            facts: Some(Facts::unread(origin.path, size, origin.commit)),
            kustomization: None,
        }
    }
}

impl Scanner {
    /// Scans one file or blob for a [`Collector`]. `added` restricts
    /// findings to those 1-based lines (git changes).
    pub(crate) fn scan_item(
        &self,
        origin: Origin<'_>,
        data: &[u8],
        added: Option<&dyn Fn(usize) -> bool>,
        progress: Option<&Progress>,
    ) -> Item {
        if crate::is_binary(data) {
            return Item {
                scanned: None,
                findings: Vec::new(),
                allowed_inline: 0,
                facts: Some(Facts::binary(origin.path, data, origin.commit)),
                kustomization: None,
            };
        }
        let res = self.scan_blob(origin.path, data, added, origin.commit);
        let facts = kustomize::facts(origin.path, data, added, origin.commit)
            .with_counted(res.allowed_lines);
        if let Some(p) = progress {
            p.add(data.len());
        }
        Item {
            scanned: Some(data.len() as u64),
            findings: res.findings,
            allowed_inline: res.allowed_inline,
            facts: Some(facts),
            kustomization: (!res.refs.is_empty()).then(|| Kustomization {
                path: origin.path.to_string(),
                budget: origin.budget,
                commit: origin.commit.map(str::to_string),
                refs: res.refs,
            }),
        }
    }
}

/// Findings, totals and kustomize facts gathered from many items.
#[derive(Default)]
pub(crate) struct Collector {
    findings: Vec<Finding>,
    summary: Summary,
    facts: Vec<Facts>,
    kusts: Vec<Kustomization>,
}

impl Collector {
    /// Adds what one file or blob contributed.
    pub(crate) fn add(&mut self, item: Item) {
        match item.scanned {
            Some(bytes) => {
                self.summary.files_scanned += 1;
                self.summary.bytes_scanned += bytes;
            }
            None => self.summary.files_skipped += 1,
        }
        self.summary.allowed_inline += item.allowed_inline;
        self.findings.extend(item.findings);
        if let Some(f) = item.facts.filter(Facts::reportable) {
            self.facts.push(f);
        }
        self.kusts.extend(item.kustomization);
    }

    /// Counts a path left out by the ignore rules.
    pub(crate) fn excluded(&mut self) {
        self.summary.files_skipped += 1;
    }

    /// A kustomization outside the scanned changes whose references still
    /// count (the index's or HEAD's, for `--staged`/`--since`).
    pub(crate) fn add_kustomization(&mut self, k: Kustomization) {
        self.kusts.push(k);
    }

    /// Takes in another collector (one per walker thread).
    pub(crate) fn absorb(&mut self, other: Collector) {
        self.findings.extend(other.findings);
        let (s, o) = (&mut self.summary, other.summary);
        s.files_scanned += o.files_scanned;
        s.bytes_scanned += o.bytes_scanned;
        s.files_skipped += o.files_skipped;
        s.allowed_inline += o.allowed_inline;
        self.facts.extend(other.facts);
        self.kusts.extend(other.kusts);
    }

    /// Resolves the secretGenerator references against the collected
    /// files and sorts the findings.
    pub(crate) fn finish(mut self) -> ScanOutput {
        let generated = kustomize::resolve_all(&self.kusts, &self.facts);
        self.summary.allowed_inline += generated.allowed_inline;
        kustomize::merge(&mut self.findings, generated.findings);
        sort_findings(&mut self.findings);
        ScanOutput {
            findings: self.findings,
            summary: self.summary,
        }
    }
}
