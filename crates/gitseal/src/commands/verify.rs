//! `gitseal verify`: the CI guard. Parses arguments, finds the keyring and
//! repository root, runs `gitseal_scan`, applies the baseline and prints a
//! report. Exit codes: 0 clean, 1 findings, 2 usage or I/O error.
#![allow(clippy::print_stderr)]

use anyhow::{bail, Context as _};
use gitseal_manifest::keyring::find_root;
use gitseal_scan::git::Source;
use gitseal_scan::report::{self, Format};
use gitseal_scan::{
    Baseline, Confidence, Config, Context, FingerprintKey, PathFilter, Progress, ScanOutput,
    Scanner,
};
use std::collections::BTreeSet;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// One line per finding: path:line:column: rule: message [preview].
    Text,
    /// A JSON object with a `findings` array and a `summary`.
    Json,
    /// SARIF 2.1.0, for code-scanning upload.
    Sarif,
}

/// How sure a finding must be to be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfidenceArg {
    /// Everything, including entropy guesses (the default).
    Low,
    /// Provider token shapes and connection-string passwords and up.
    Medium,
    /// Only checksummed or structured credentials and Kubernetes checks.
    High,
}

/// Where a finding sits, by path conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ContextArg {
    /// Test code and fixtures (test/, testdata/, fixtures/, *_test.go, …).
    Test,
    /// Documentation and examples (docs/, examples/, *.md, …).
    Docs,
    /// Everything else.
    Production,
}

/// Find committed plaintext secrets, unsealed Secrets and misplaced sealed values.
///
/// Scans files and directories (respecting .gitignore), or git changes with
/// --staged, --since or --history. Exit status: 0 when clean, 1 when there
/// are findings, 2 on a usage or I/O error.
///
/// Silence a false positive with a `gitseal:allow` comment (optionally
/// followed by a reason) on its line or the line before, with a baseline
/// file (--write-baseline, then --baseline), or skip paths with --exclude or
/// the keyring's `verify.ignore` globs.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or directories to scan (default: the current directory). With
    /// --staged/--since/--history: the repository (default: current directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Scan what the next commit would add (the index against HEAD); only added lines count.
    #[arg(long, conflicts_with_all = ["since", "history"])]
    pub staged: bool,

    /// Scan lines added by the commits in REV..HEAD (e.g. origin/main).
    #[arg(long, value_name = "REV", conflicts_with = "history")]
    pub since: Option<String>,

    /// Scan every blob reachable from HEAD, each once, reporting the commit that introduced it.
    #[arg(long)]
    pub history: bool,

    /// Keyring with the allowed sealing keys and `verify.ignore` globs
    /// [default: .gitseal/keys.yaml at the repository root, if present].
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Report only findings whose fingerprint is not in this baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write the fingerprints of all current findings to FILE and exit 0.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Skip paths matching GLOB (relative to the repository root; repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Report only findings at least this sure (each finding's confidence is
    /// in the JSON and SARIF reports).
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = ConfidenceArg::Low)]
    pub min_confidence: ConfidenceArg,

    /// Leave out findings in these contexts (comma-separated: test, docs,
    /// production). Nothing is left out by default.
    #[arg(long, value_enum, value_name = "CONTEXT", value_delimiter = ',')]
    pub exclude_context: Vec<ContextArg>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Skip files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_file_size: u64,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Never show the progress line on standard error.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `gitseal verify`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let git_mode = args.staged || args.since.is_some() || args.history;
    if git_mode && args.paths.len() > 1 {
        bail!("with --staged, --since or --history give at most one PATH: the repository");
    }
    let start = args
        .paths
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let root = find_root(&start);

    // Keyring: explicit, or the repository's default if it exists.
    let keyring_path = match &args.keyring {
        Some(p) => Some(p.clone()),
        None => root
            .as_ref()
            .map(|r| r.join(".gitseal").join("keys.yaml"))
            .filter(|p| p.is_file()),
    };
    let mut ignore: Vec<String> = Vec::new();
    let mut known_keys = None;
    let mut lifecycle = None;
    if let Some(path) = &keyring_path {
        let keyring = gitseal_manifest::keyring::Keyring::load(path)
            .with_context(|| format!("cannot use keyring {}", path.display()))?;
        known_keys = Some(keyring.key_ids().into_iter().collect::<BTreeSet<_>>());
        ignore.extend(keyring.verify_ignore().iter().cloned());
        lifecycle = Some(crate::lifecycle::of(&keyring, root.as_deref())?);
    }
    ignore.extend(args.exclude.iter().cloned());
    let filter = PathFilter::new(&ignore, root.as_deref())?;

    let baseline = match &args.baseline {
        Some(p) => {
            let b = Baseline::load(p)?;
            if b.is_legacy() {
                eprintln!(
                    "gitseal verify: {} is a version 1 baseline (unkeyed fingerprints, a brute-force oracle for short secrets): rewrite it with --write-baseline",
                    p.display()
                );
            }
            Some(b)
        }
        None => None,
    };

    let scanner = Scanner::new(Config {
        known_keys,
        filter,
        max_file_size: args.max_file_size,
        threads: args.threads.unwrap_or(0),
        lifecycle,
    })?;

    let progress = Arc::new(Progress::default());
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let done = Arc::new(AtomicBool::new(false));
    let ticker = show_progress.then(|| {
        let progress = Arc::clone(&progress);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut err = std::io::stderr();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(120));
                let files = progress.files.load(Ordering::Relaxed);
                let mb = progress.bytes.load(Ordering::Relaxed) as f64 / 1048576.0;
                let _ = write!(err, "\r\x1b[2Kscanning: {files} files, {mb:.1} MiB");
                let _ = err.flush();
            }
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        })
    });

    let started = Instant::now();
    let result = if args.staged {
        gitseal_scan::git::scan(&scanner, &start, &Source::Staged, Some(&progress))
    } else if let Some(rev) = &args.since {
        gitseal_scan::git::scan(
            &scanner,
            &start,
            &Source::Since(rev.clone()),
            Some(&progress),
        )
    } else if args.history {
        gitseal_scan::git::scan(&scanner, &start, &Source::History, Some(&progress))
    } else {
        let paths = if args.paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            args.paths.clone()
        };
        scanner.scan_paths(&paths, Some(&progress))
    };
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    let mut out: ScanOutput = result?;
    let elapsed = started.elapsed().as_secs_f64();

    let min = match args.min_confidence {
        ConfidenceArg::Low => Confidence::Low,
        ConfidenceArg::Medium => Confidence::Medium,
        ConfidenceArg::High => Confidence::High,
    };
    let exclude: Vec<Context> = args
        .exclude_context
        .iter()
        .map(|c| match c {
            ContextArg::Test => Context::Test,
            ContextArg::Docs => Context::Docs,
            ContextArg::Production => Context::Production,
        })
        .collect();
    out.retain_confident(min, &exclude);

    if let Some(path) = &args.write_baseline {
        let text = Baseline::to_json_with(&FingerprintKey::generate(), &out.findings);
        std::fs::write(path, text)
            .with_context(|| format!("cannot write baseline {}", path.display()))?;
        eprintln!(
            "gitseal verify: wrote {} fingerprint(s) to {}",
            out.findings.len(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(b) = &baseline {
        b.apply(&mut out);
    }

    let format = match args.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
        FormatArg::Sarif => Format::Sarif,
    };
    let rendered = report::render(&out, format)?;
    match &args.output {
        Some(path) => std::fs::write(path, rendered.as_bytes())
            .with_context(|| format!("cannot write report {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(rendered.as_bytes())
                .and_then(|()| stdout.flush())
            {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("cannot write the report");
                }
            }
        }
    }
    if format == Format::Text || args.output.is_some() {
        eprintln!("{}", report::summary_line(&out, elapsed));
    }
    Ok(if out.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
