//! Scanning files and directory trees: the `ignore` crate's parallel
//! walker (respects `.gitignore`, `.ignore` and git's exclude files even
//! outside a repository, never enters `.git`), skipping binary files,
//! files over the size cap and ignored paths.

use crate::kustomize::{self, Facts, Kustomization};
use crate::{sort_findings, Error, Finding, Progress, ScanOutput, Scanner, Summary};
use ignore::{WalkBuilder, WalkState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Display form of a walked path: without a leading `./`.
fn display(path: &Path) -> String {
    let p = path.strip_prefix("./").unwrap_or(path);
    p.to_string_lossy().into_owned()
}

pub(crate) fn scan_paths(
    scanner: &Scanner,
    paths: &[PathBuf],
    progress: Option<&Progress>,
) -> Result<ScanOutput, Error> {
    let Some((first, rest)) = paths.split_first() else {
        return Ok(ScanOutput::default());
    };
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(Error::NotFound(p.display().to_string()));
        }
    }
    let cfg = scanner.config();
    let mut b = WalkBuilder::new(first);
    for p in rest {
        b.add(p);
    }
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        cfg.threads
    };
    b.hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(|e| e.file_name() != ".git");

    let findings: Mutex<Vec<Finding>> = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let scanned = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let skipped = AtomicU64::new(0);
    let allowed = AtomicU64::new(0);
    // For secretGenerator references: what each file would contribute, and
    // the references of each kustomization (resolved after the walk).
    let facts: Mutex<Vec<Facts>> = Mutex::new(Vec::new());
    let kusts: Mutex<Vec<Kustomization>> = Mutex::new(Vec::new());
    let keep = |f: Facts| {
        if f.reportable() {
            if let Ok(mut all) = facts.lock() {
                all.push(f);
            }
        }
    };

    b.build_parallel().run(|| {
        Box::new(|entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(err) => {
                    // An unreadable directory entry is reported, not fatal.
                    if let Ok(mut slot) = first_error.lock() {
                        if slot.is_none() {
                            *slot = Some(Error::Walk {
                                path: String::new(),
                                message: err.to_string(),
                            });
                        }
                    }
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let path = entry.path();
            if cfg.filter.is_ignored(path) {
                skipped.fetch_add(1, Ordering::Relaxed);
                return WalkState::Continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if size > cfg.max_file_size {
                skipped.fetch_add(1, Ordering::Relaxed);
                keep(Facts::unread(&display(path), size, None));
                return WalkState::Continue;
            }
            let data = match std::fs::read(path) {
                Ok(d) => d,
                Err(source) => {
                    if let Ok(mut slot) = first_error.lock() {
                        if slot.is_none() {
                            *slot = Some(Error::Io {
                                path: display(path),
                                source,
                            });
                        }
                    }
                    return WalkState::Continue;
                }
            };
            if crate::is_binary(&data) {
                skipped.fetch_add(1, Ordering::Relaxed);
                keep(Facts::binary(&display(path), &data, None));
                return WalkState::Continue;
            }
            let shown = display(path);
            let mut res = scanner.scan_blob(&shown, &data, None, None);
            keep(
                kustomize::facts(&shown, &data, None, None)
                    .with_counted(std::mem::take(&mut res.allowed_lines)),
            );
            if !res.refs.is_empty() {
                if let Ok(mut all) = kusts.lock() {
                    all.push(Kustomization {
                        path: shown.clone(),
                        budget: entry.depth().saturating_sub(1),
                        commit: None,
                        refs: std::mem::take(&mut res.refs),
                    });
                }
            }
            scanned.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            if let Some(p) = progress {
                p.add(data.len());
            }
            allowed.fetch_add(res.allowed_inline, Ordering::Relaxed);
            if !res.findings.is_empty() {
                if let Ok(mut all) = findings.lock() {
                    all.extend(res.findings);
                }
            }
            WalkState::Continue
        })
    });

    if let Some(err) = first_error.into_inner().ok().flatten() {
        return Err(err);
    }
    let mut findings = findings.into_inner().unwrap_or_default();
    let generated = kustomize::resolve_all(
        &kusts.into_inner().unwrap_or_default(),
        &facts.into_inner().unwrap_or_default(),
    );
    kustomize::merge(&mut findings, generated.findings);
    allowed.fetch_add(generated.allowed_inline, Ordering::Relaxed);
    sort_findings(&mut findings);
    Ok(ScanOutput {
        findings,
        summary: Summary {
            files_scanned: scanned.into_inner(),
            bytes_scanned: bytes.into_inner(),
            files_skipped: skipped.into_inner(),
            allowed_inline: allowed.into_inner(),
            allowed_baseline: 0,
            filtered: 0,
        },
    })
}
