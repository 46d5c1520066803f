//! Scanning files and directory trees: the `ignore` crate's parallel
//! walker (respects `.gitignore`, `.ignore` and git's exclude files even
//! outside a repository, never enters `.git`), skipping binary files,
//! files over the size cap and ignored paths.

use crate::collect::{Collector, Item, Origin};
use crate::{Error, Progress, ScanOutput, Scanner};
use ignore::{DirEntry, ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};
use std::path::{Path, PathBuf};
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

    let shared = Shared {
        scanner,
        progress,
        all: Mutex::new(Collector::default()),
        first_error: Mutex::new(None),
    };
    b.build_parallel().visit(&mut &shared);
    if let Some(err) = shared.first_error.into_inner().ok().flatten() {
        return Err(err);
    }
    Ok(shared.all.into_inner().unwrap_or_default().finish())
}

/// What the walker threads share.
struct Shared<'a> {
    scanner: &'a Scanner,
    progress: Option<&'a Progress>,
    /// Each thread's collector is added here when the thread ends.
    all: Mutex<Collector>,
    first_error: Mutex<Option<Error>>,
}

impl Shared<'_> {
    fn error(&self, err: Error) {
        if let Ok(mut slot) = self.first_error.lock() {
            if slot.is_none() {
                *slot = Some(err);
            }
        }
    }
}

impl<'s> ParallelVisitorBuilder<'s> for &'s Shared<'s> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Visitor {
            shared: self,
            mine: Collector::default(),
        })
    }
}

/// One walker thread: scans the files it is handed into its own collector.
struct Visitor<'s> {
    shared: &'s Shared<'s>,
    mine: Collector,
}

impl Drop for Visitor<'_> {
    fn drop(&mut self) {
        if let Ok(mut all) = self.shared.all.lock() {
            all.absorb(std::mem::take(&mut self.mine));
        }
    }
}

impl ParallelVisitor for Visitor<'_> {
    fn visit(&mut self, entry: Result<DirEntry, ignore::Error>) -> WalkState {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                // An unreadable directory entry is reported, not fatal.
                self.shared.error(Error::Walk {
                    path: String::new(),
                    message: err.to_string(),
                });
                return WalkState::Continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return WalkState::Continue;
        }
        let path = entry.path();
        let scanner = self.shared.scanner;
        if scanner.config().filter.is_ignored(path) {
            self.mine.excluded();
            return WalkState::Continue;
        }
        let shown = display(path);
        let origin = Origin {
            path: &shown,
            commit: None,
            budget: entry.depth().saturating_sub(1),
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        if size > scanner.config().max_file_size {
            self.mine.add(Item::too_large(origin, size));
            return WalkState::Continue;
        }
        match std::fs::read(path) {
            Ok(data) => {
                let item = scanner.scan_item(origin, &data, None, self.shared.progress);
                self.mine.add(item);
            }
            Err(source) => self.shared.error(Error::Io {
                path: shown.clone(),
                source,
            }),
        }
        WalkState::Continue
    }
}
