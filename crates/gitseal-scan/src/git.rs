//! Git sources: what a commit would add (`--staged`), what commits since a
//! revision added (`--since REV`), and every blob reachable from HEAD
//! (`--history`).
//!
//! This drives the git CLI (`git log`/`git diff` for the change lists,
//! one long-lived `git cat-file --batch` for blob contents) rather than a
//! git library: no extra dependency tree, and the behaviour is exactly the
//! user's git (index extensions, worktrees, `safe.directory`, alternates,
//! partial clones). Each blob is read and scanned once, in parallel.

use crate::collect::{Collector, Item, Origin};
use crate::kustomize::{self, Kustomization};
use crate::{Error, Progress, ScanOutput, Scanner};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// Which git changes to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The index against HEAD: only added lines are reported.
    Staged,
    /// Commits in `REV..HEAD`: lines they added.
    Since(String),
    /// Every blob reachable from HEAD, each scanned once, all lines.
    History,
}

/// One blob to scan: where it appeared first and which lines were added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The commit that added or changed it (`None` for staged changes).
    pub commit: Option<String>,
    /// Its path in the repository, unquoted.
    pub path: String,
    /// Its blob id.
    pub blob: String,
}

/// Added line ranges (1-based, inclusive).
pub type Ranges = Vec<(usize, usize)>;

/// Added line ranges per (commit, path).
pub type Added = HashMap<(Option<String>, String), Ranges>;

fn git_command(repo: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(repo)
        .args(["-c", "core.quotePath=false", "-c", "diff.noprefix=false"])
        .stdin(Stdio::null());
    c
}

fn run_git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let name = args.first().copied().unwrap_or("").to_string();
    let out = git_command(repo)
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| Error::Git {
            command: name.clone(),
            message: format!("cannot run git: {e}"),
        })?;
    if !out.status.success() {
        return Err(Error::Git {
            command: name,
            message: crate::finding::escape_control(String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(out.stdout)
}

/// The repository's top-level directory.
pub fn toplevel(dir: &Path) -> Result<std::path::PathBuf, Error> {
    let out = run_git(dir, &["rev-parse", "--show-toplevel"])?;
    let s = String::from_utf8_lossy(&out).trim().to_string();
    Ok(std::path::PathBuf::from(s))
}

/// Undoes git's C-style quoting of unusual path names.
pub fn unquote(p: &str) -> String {
    let Some(inner) = p.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return p.to_string();
    };
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let c = b[i + 1];
            match c {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'v' => out.push(11),
                b'0'..=b'7' => {
                    let digits = b[i + 1..]
                        .iter()
                        .take(3)
                        .take_while(|d| (b'0'..=b'7').contains(*d))
                        .count();
                    let v = b[i + 1..i + 1 + digits]
                        .iter()
                        .fold(0u32, |a, d| a * 8 + u32::from(d - b'0'));
                    out.push((v & 0xff) as u8);
                    i += 1 + digits;
                    continue;
                }
                other => out.push(other),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `git log --raw -p -U0` / `git diff --raw -p -U0` output: the
/// regular files added or modified (with their blob ids), and, with
/// `want_lines`, the line ranges each commit added to each path. Public
/// so the fuzz target can feed it arbitrary bytes; `verify` calls it on
/// git's own output.
pub fn parse_changes(out: &[u8], want_lines: bool) -> Result<(Vec<Entry>, Added), Error> {
    let mut entries = Vec::new();
    let mut added: Added = HashMap::new();
    let mut commit: Option<String> = None;
    let mut cur_path: Option<String> = None;
    let mut remaining = 0usize;
    for raw in out.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(raw);
        if remaining > 0 {
            if !line.starts_with('\\') {
                remaining -= 1;
            }
            continue;
        }
        if let Some(h) = line.strip_prefix("commit ") {
            commit = Some(h.trim().to_string());
            cur_path = None;
        } else if let Some(rest) = line.strip_prefix(':') {
            let Some((meta, path)) = rest.split_once('\t') else {
                return Err(Error::GitOutput {
                    command: "log".into(),
                    message: "raw diff line without a path".into(),
                });
            };
            let f: Vec<&str> = meta.split_whitespace().collect();
            if f.len() < 5 {
                return Err(Error::GitOutput {
                    command: "log".into(),
                    message: "short raw diff line".into(),
                });
            }
            // Regular files only: skip symlinks (120000) and submodules (160000).
            if !(f[1] == "100644" || f[1] == "100755")
                || !matches!(f[4].chars().next(), Some('A' | 'M'))
            {
                continue;
            }
            entries.push(Entry {
                commit: commit.clone(),
                path: unquote(path),
                blob: f[3].to_string(),
            });
        } else if let Some(p) = line.strip_prefix("+++ ") {
            let p = unquote(p.trim_end_matches('\t'));
            cur_path = p.strip_prefix("b/").map(str::to_string);
        } else if let Some(h) = line.strip_prefix("@@ ") {
            // @@ -a[,b] +c[,d] @@
            let mut parts = h.split_whitespace();
            let old = parts.next().unwrap_or("");
            let new = parts.next().unwrap_or("");
            // Any bytes may reach here (a hunk header is not checked to be
            // ASCII, numbers may overflow): never slice inside a character
            // or overflow (found by the scan_git fuzz target).
            let count = |s: &str| -> (usize, usize) {
                let s = s.get(1..).unwrap_or_default();
                match s.split_once(',') {
                    Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
                    None => (s.parse().unwrap_or(0), 1),
                }
            };
            let (_, removed) = count(old);
            let (start, n) = count(new);
            remaining = removed.saturating_add(n);
            if want_lines && n > 0 {
                if let Some(p) = &cur_path {
                    added
                        .entry((commit.clone(), p.clone()))
                        .or_default()
                        .push((start, start.saturating_add(n - 1)));
                }
            }
        }
    }
    Ok((entries, added))
}

/// A long-lived `git cat-file --batch`.
struct CatFile {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CatFile {
    fn new(repo: &Path) -> Result<CatFile, Error> {
        let mut child = git_command(repo)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Git {
                command: "cat-file".into(),
                message: format!("cannot run git: {e}"),
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Git {
                command: "cat-file".into(),
                message: "no pipes".into(),
            });
        };
        Ok(CatFile {
            child,
            stdin,
            stdout: BufReader::with_capacity(1 << 20, stdout),
        })
    }

    /// Reads one blob; `None` when it is larger than `max` (its bytes are
    /// consumed and dropped).
    fn read(&mut self, sha: &str, max: u64) -> Result<Option<Vec<u8>>, Error> {
        let io = |e: std::io::Error| Error::Git {
            command: "cat-file".into(),
            message: e.to_string(),
        };
        writeln!(self.stdin, "{sha}").map_err(io)?;
        self.stdin.flush().map_err(io)?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).map_err(io)?;
        let f: Vec<&str> = header.split_whitespace().collect();
        if f.len() != 3 {
            return Err(Error::GitOutput {
                command: "cat-file".into(),
                message: format!("object {sha} is missing"),
            });
        }
        let size: u64 = f[2].parse().map_err(|_| Error::GitOutput {
            command: "cat-file".into(),
            message: "bad object size".into(),
        })?;
        let keep = size <= max;
        let mut buf = Vec::new();
        if keep {
            buf.reserve(size as usize);
        }
        let mut limited = (&mut self.stdout).take(size + 1);
        if keep {
            limited.read_to_end(&mut buf).map_err(io)?;
            buf.pop(); // trailing newline
            Ok(Some(buf))
        } else {
            std::io::copy(&mut limited, &mut std::io::sink()).map_err(io)?;
            Ok(None)
        }
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn list(repo: &Path, source: &Source) -> Result<(Vec<Entry>, Option<Added>), Error> {
    const DIFF: &[&str] = &[
        "--no-renames",
        "--no-abbrev",
        "--full-index",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--diff-filter=AM",
        "-U0",
    ];
    match source {
        Source::Staged => {
            let has_head = run_git(repo, &["rev-parse", "--verify", "-q", "HEAD"]).is_ok();
            let base = if has_head {
                "HEAD".to_string()
            } else {
                let t = run_git(repo, &["hash-object", "-t", "tree", "/dev/null"])?;
                String::from_utf8_lossy(&t).trim().to_string()
            };
            let mut args = vec!["diff", "--cached", "--raw", "-p"];
            args.extend_from_slice(DIFF);
            args.push(&base);
            args.push("--");
            let out = run_git(repo, &args)?;
            let (e, a) = parse_changes(&out, true)?;
            Ok((e, Some(a)))
        }
        Source::Since(rev) => {
            // Validate the revision first for a clear error.
            run_git(
                repo,
                &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")],
            )
            .map_err(|_| Error::Git {
                command: "rev-parse".into(),
                message: format!("unknown revision {}", crate::finding::escape_control(rev)),
            })?;
            let range = format!("{rev}..HEAD");
            let mut args = vec![
                "log",
                "--format=commit %H",
                "--raw",
                "-p",
                "--diff-merges=first-parent",
                "--reverse",
            ];
            args.extend_from_slice(DIFF);
            args.push(&range);
            args.push("--");
            let out = run_git(repo, &args)?;
            let (e, a) = parse_changes(&out, true)?;
            Ok((e, Some(a)))
        }
        Source::History => {
            let has_head = run_git(repo, &["rev-parse", "--verify", "-q", "HEAD"]).is_ok();
            if !has_head {
                return Ok((Vec::new(), None));
            }
            let out = run_git(
                repo,
                &[
                    "log",
                    "--format=commit %H",
                    "--raw",
                    "--no-renames",
                    "--no-abbrev",
                    "--diff-merges=first-parent",
                    "--diff-filter=AM",
                    "--reverse",
                    "HEAD",
                    "--",
                ],
            )?;
            let (e, _) = parse_changes(&out, false)?;
            Ok((e, None))
        }
    }
}

/// Kustomization files (path, blob) of the index (`--staged`) or of HEAD
/// (`--since`); none for `--history`, whose changes hold every version.
fn unchanged_kustomizations(repo: &Path, source: &Source) -> Result<Vec<(String, String)>, Error> {
    let out = match source {
        Source::Staged => run_git(
            repo,
            &[
                "ls-files",
                "-s",
                "-z",
                "--",
                ":(glob)**/kustomization.yaml",
                ":(glob)**/kustomization.yml",
                ":(glob)**/Kustomization",
            ],
        )?,
        Source::Since(_) => run_git(repo, &["ls-tree", "-r", "-z", "HEAD"])?,
        Source::History => return Ok(Vec::new()),
    };
    let mut found = Vec::new();
    for rec in out.split(|&b| b == 0) {
        let rec = String::from_utf8_lossy(rec);
        // ls-files: "mode sha stage\tpath"; ls-tree: "mode type sha\tpath".
        let Some((meta, path)) = rec.split_once('\t') else {
            continue;
        };
        if !kustomize::is_kustomization(path) {
            continue;
        }
        let f: Vec<&str> = meta.split_whitespace().collect();
        let sha = match (source, f.as_slice()) {
            (Source::Staged, [mode, sha, "0"]) if mode.starts_with("100") => sha,
            (_, [mode, "blob", sha]) if mode.starts_with("100") => sha,
            _ => continue,
        };
        found.push((path.to_string(), (*sha).to_string()));
    }
    Ok(found)
}

/// Scans a git source of the repository at (or containing) `repo`. Paths
/// in findings are relative to the repository root.
pub fn scan(
    scanner: &Scanner,
    repo: &Path,
    source: &Source,
    progress: Option<&Progress>,
) -> Result<ScanOutput, Error> {
    let root = toplevel(repo)?;
    let (entries, added) = list(&root, source)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(scanner.config().threads)
        .build()
        .map_err(|e| Error::Walk {
            path: root.display().to_string(),
            message: format!("cannot start worker threads: {e}"),
        })?;
    pool.install(|| scan_entries(scanner, &root, source, entries, added.as_ref(), progress))
}

/// Where a blob sits, for the collector.
fn origin(e: &Entry) -> Origin<'_> {
    Origin {
        path: &e.path,
        commit: e.commit.as_deref(),
        budget: kustomize::repo_budget(&e.path),
    }
}

fn scan_entries(
    scanner: &Scanner,
    root: &Path,
    source: &Source,
    entries: Vec<Entry>,
    added: Option<&Added>,
    progress: Option<&Progress>,
) -> Result<ScanOutput, Error> {
    let cfg = scanner.config();
    let mut all = Collector::default();
    // Each blob once (the first place it appeared); staged: each path.
    let mut seen = HashSet::new();
    let mut todo = Vec::new();
    for e in entries {
        if cfg.filter.is_ignored_repo_path(&e.path) {
            all.excluded();
            continue;
        }
        if *source != Source::Staged && !seen.insert(e.blob.clone()) {
            continue;
        }
        todo.push(e);
    }
    let mut cat = CatFile::new(root)?;
    let mut batch: Vec<(Entry, Vec<u8>)> = Vec::new();
    let mut batch_bytes = 0usize;
    let empty: Ranges = Vec::new();
    let flush = |batch: &mut Vec<(Entry, Vec<u8>)>, all: &mut Collector| {
        let items: Vec<Item> = batch
            .par_iter()
            .map(|(e, data)| {
                let ranges =
                    added.map(|a| a.get(&(e.commit.clone(), e.path.clone())).unwrap_or(&empty));
                let in_added = |line: usize| {
                    ranges.is_none_or(|r| r.iter().any(|&(s, t)| line >= s && line <= t))
                };
                scanner.scan_item(origin(e), data, Some(&in_added), progress)
            })
            .collect();
        for item in items {
            all.add(item);
        }
        batch.clear();
    };
    for e in todo {
        match cat.read(&e.blob, cfg.max_file_size)? {
            Some(data) => {
                batch_bytes += data.len();
                batch.push((e, data));
                if batch_bytes > 32 << 20 || batch.len() >= 4096 {
                    flush(&mut batch, &mut all);
                    batch_bytes = 0;
                }
            }
            None => all.add(Item::too_large(
                origin(&e),
                cfg.max_file_size.saturating_add(1),
            )),
        }
    }
    flush(&mut batch, &mut all);
    // Kustomizations the changes did not touch still read the files the
    // changes add: the index's (`--staged`) or HEAD's (`--since`).
    for (path, blob) in unchanged_kustomizations(root, source)? {
        if cfg.filter.is_ignored_repo_path(&path) {
            continue;
        }
        if let Some(data) = cat.read(&blob, cfg.max_file_size)? {
            let refs = scanner.kustomization_refs(&path, &data);
            if !refs.is_empty() {
                all.add_kustomization(Kustomization {
                    budget: kustomize::repo_budget(&path),
                    path,
                    commit: None,
                    refs,
                });
            }
        }
    }
    Ok(all.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_c_style_paths() {
        assert_eq!(unquote("plain/path"), "plain/path");
        assert_eq!(unquote("\"a\\tb\""), "a\tb");
        assert_eq!(unquote("\"caf\\303\\251\""), "café");
        assert_eq!(unquote("\"q\\\"x\""), "q\"x");
    }

    #[test]
    fn odd_hunk_headers_neither_panic_nor_overflow() {
        // Found by the scan_git fuzz target: a hunk header whose counts
        // start with a multi-byte character, and counts near usize::MAX.
        let out =
            "+++ b/a\n@@ -1 +18446744073709551615,2 @@\nx\nx\nx\n@@ \u{fffd}v +1 @@\n".as_bytes();
        let (entries, added) = parse_changes(out, true).expect("parses");
        assert!(entries.is_empty());
        assert_eq!(
            added.get(&(None, "a".into())),
            Some(&vec![(usize::MAX, usize::MAX), (1, 1)])
        );
    }

    #[test]
    fn parses_raw_and_hunks() {
        let out = b"commit abc\n\n:000000 100644 0000 1111 A\tdir/a.txt\n:000000 120000 0000 2222 A\tlink\n\ndiff --git a/dir/a.txt b/dir/a.txt\n--- /dev/null\n+++ b/dir/a.txt\n@@ -0,0 +1,2 @@\n+++ b/not-a-header\n+two\n";
        let (e, a) = parse_changes(out, true).unwrap_or_default();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "dir/a.txt");
        assert_eq!(e[0].blob, "1111");
        assert_eq!(
            a.get(&(Some("abc".into()), "dir/a.txt".into())),
            Some(&vec![(1, 2)])
        );
        assert_eq!(a.len(), 1);
    }
}
