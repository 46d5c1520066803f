//! `gitseal reseal`: re-encrypt the sealed values of SealedSecret files to
//! new recipients, for whoever holds an old private key (a retired cluster
//! key, a break-glass key). The re-sealing itself is
//! `gitseal_manifest::reseal`; this command chooses files and recipients
//! (each file's environment from the keyring), and writes.
//!
//! All or nothing: every value of every file is opened before anything is
//! written, and files are replaced atomically, so a value that does not open
//! leaves every file byte for byte as it was.
#![allow(clippy::print_stderr)]

use std::cell::RefCell;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use gitseal_crypto::{Envelope, Recipient};
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::reseal::{self, All, Plan};
use gitseal_manifest::select::{LoadedKeyring, Selector, Target};
use gitseal_manifest::Location;
use gitseal_scan::lifecycle::Lifecycle;

use crate::args::{IdentityArgs, RecipientArgs};
use crate::io::{check_stdin_once, read_source, write_output};

/// Re-seal SealedSecret files to new recipients (needs an old private key).
///
/// Every `spec.encryptedData` value is opened with the old identity (-i) and
/// sealed again with the same binding, so it still opens only where it did,
/// to the new recipients: -r alone, else the keyring environment of each
/// file (--env, else the path rule the file matches, else the default; see
/// `gitseal seal --help`). Documents that are not SealedSecrets,
/// `vaultData`, and everything else in the files stay as they were. The
/// old key is not kept as a recipient unless you list it.
///
/// Nothing is written unless every value opened: a value that does not open
/// (wrong key, altered, moved) stops the command with exit 3, naming the
/// file, document and item, and every file is left byte for byte as it was.
///
/// --all: every SealedSecret under PATH (default: the repository root) that
/// `gitseal verify` reports for its key lifecycle (sealed to a retired key,
/// missing a recipient its environment requires, sealed for another
/// environment than its path maps to) is re-sealed whole, in place, to the
/// recipients of the environment its path maps to; nothing else changes.
/// --dry-run lists those files (one per line) and opens nothing.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal reseal --all --dry-run                 # which files need it, and why
  gitseal reseal --all -i old-key.txt            # re-seal them, in place
  gitseal reseal -i old-key.txt -r age1new… -f db.sealed.yaml --in-place
  gitseal reseal -i old-key.txt -f apps/prod/a.sealed.yaml -f apps/dev/b.sealed.yaml --in-place
  gitseal reseal -i old-key.txt -r age1new… -r age1dr… -f db.sealed.yaml -o db.new.yaml
  cat db.sealed.yaml | gitseal reseal -i old-key.txt -r age1new… > db.new.yaml

Exit codes: 0 ok, 2 bad usage or input, 3 a sealed value did not open.
Nothing is written unless every value of every file opened.
Documentation: https://github.com/gitseal/gitseal/blob/main/docs/cli.md#gitseal-reseal")]
pub struct Args {
    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(flatten)]
    pub recipients: RecipientArgs,

    /// SealedSecret file ('-' for standard input); repeatable [default: standard input].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write the result to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,

    /// Replace each -f FILE with its re-sealed version (atomically).
    #[arg(long)]
    pub in_place: bool,

    /// Namespace for SealedSecrets without metadata.namespace.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Re-seal every SealedSecret under PATH that the keyring's lifecycle
    /// rules report (retired key, missing required recipient, another
    /// environment), in place, for its environment.
    #[arg(long, conflicts_with_all = ["files", "output", "in_place", "recipients", "env"])]
    pub all: bool,

    /// With --all: list the files that would be re-sealed; open and write nothing.
    #[arg(long, requires = "all")]
    pub dry_run: bool,

    /// With --all: directories or files to look in [default: the repository root].
    #[arg(value_name = "PATH", requires = "all")]
    pub paths: Vec<PathBuf>,
}

/// One re-sealed input file.
struct Resealed {
    origin: PathBuf,
    text: String,
    values: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.all {
        return run_all(&args);
    }
    if args.identity.identities.is_empty() {
        bail!("reseal needs the old identity that opens the values: pass -i FILE");
    }
    if args.in_place && (args.files.is_empty() || args.files.iter().any(|p| p == Path::new("-"))) {
        bail!("--in-place needs -f FILE (it cannot replace standard input)");
    }
    check_stdin_once(&args.identity.identities, &args.files)?;
    let start = args
        .files
        .iter()
        .find(|p| p.as_os_str() != "-")
        .map_or(Path::new("."), PathBuf::as_path);
    let selector = args.recipients.selector(start)?;
    let identities = args.identity.load()?;
    let stdin = [PathBuf::from("-")];
    let paths = if args.files.is_empty() {
        &stdin[..]
    } else {
        &args.files[..]
    };
    let mut results = Vec::with_capacity(paths.len());
    for path in paths {
        let place = (path.as_os_str() != "-").then_some(path.as_path());
        let place = args.output.as_deref().or(place);
        let recipients = new_recipients(&selector, place, path)?;
        let (origin, text) = read_source(path)?;
        let resealed = reseal::reseal_text(
            &text,
            &origin,
            &identities,
            &All(&recipients),
            args.namespace.as_deref(),
        )?;
        results.push(Resealed {
            origin: path.clone(),
            text: resealed.text,
            values: resealed.values,
        });
    }
    // Everything opened and sealed: now write.
    if args.in_place {
        for r in &results {
            files::write_atomic(&r.origin, r.text.as_bytes(), NewFileMode::Public)?;
            eprintln!("{}: re-sealed {} value(s)", r.origin.display(), r.values);
        }
    } else {
        let mut all = String::new();
        for r in &results {
            if !all.is_empty() {
                if !all.ends_with('\n') {
                    all.push('\n');
                }
                if !r.text.trim_start().starts_with("---") {
                    all.push_str("---\n");
                }
            }
            all.push_str(&r.text);
        }
        write_output(args.output.as_deref(), &all, NewFileMode::Public)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The new recipients for one file, announced when a keyring chose them.
fn new_recipients(
    selector: &Selector,
    place: Option<&Path>,
    path: &Path,
) -> anyhow::Result<Vec<gitseal_crypto::Recipient>> {
    let target = selector.target(place)?;
    if target.recipients.is_empty() {
        bail!("no new recipients: pass -r age1…, or keep a keyring at .gitseal/keys.yaml (or pass --keyring FILE)");
    }
    if target.environment.is_some() {
        eprintln!("{}: re-sealing for {target}", path.display());
    }
    Ok(target.recipients)
}

/// The lifecycle plan of one file: the objects whose values have problems
/// are re-sealed to the file's environment.
struct LifecyclePlan<'a> {
    lifecycle: &'a Lifecycle,
    environment: Option<String>,
    target: Result<Target, String>,
    reasons: RefCell<Vec<String>>,
}

impl Plan for LifecyclePlan<'_> {
    fn recipients(
        &self,
        at: &Location,
        envelopes: &[(&str, Envelope)],
    ) -> Result<Option<Vec<Recipient>>, gitseal_manifest::Error> {
        let mut reasons = Vec::new();
        for (item, envelope) in envelopes {
            for problem in self
                .lifecycle
                .problems(self.environment.as_deref(), &envelope.key_ids())
            {
                reasons.push(format!("{at}, item {item:?}: {}", problem.message()));
            }
        }
        if reasons.is_empty() {
            return Ok(None);
        }
        self.reasons.borrow_mut().extend(reasons);
        match &self.target {
            Ok(t) => Ok(Some(t.recipients.clone())),
            Err(e) => Err(gitseal_manifest::Error::Argument(format!("{at}: {e}"))),
        }
    }
}

/// Every manifest file under `roots`, as git sees the tree (ignored and
/// hidden files skipped), in a stable order.
fn manifest_files(roots: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for root in roots {
        for entry in ignore::WalkBuilder::new(root).build() {
            let entry =
                entry.map_err(|e| anyhow::anyhow!("cannot walk {}: {e}", root.display()))?;
            let path = entry.path();
            let manifest = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
            if manifest && entry.file_type().is_some_and(|t| t.is_file()) {
                out.push(path.to_path_buf());
            }
        }
    }
    // Shown (and used) relative to the current directory when under it.
    if let Ok(cwd) = std::env::current_dir() {
        let cwd = gitseal_manifest::keyring::normalize(&cwd);
        for path in &mut out {
            let abs = gitseal_manifest::keyring::normalize(path);
            if let Ok(rel) = abs.strip_prefix(&cwd) {
                *path = rel.to_path_buf();
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `reseal --all`: re-seal what the keyring's lifecycle rules report.
fn run_all(args: &Args) -> anyhow::Result<ExitCode> {
    let start = args.paths.first().map_or(Path::new("."), PathBuf::as_path);
    let loaded = match &args.recipients.keyring {
        Some(path) => LoadedKeyring::load(path, start)?,
        None => LoadedKeyring::discover(start)?.ok_or_else(|| {
            anyhow::anyhow!(
                "reseal --all needs the keyring (.gitseal/keys.yaml at the repository root, or \
                 --keyring FILE): it says which keys are retired and which recipients each \
                 environment requires"
            )
        })?,
    };
    let roots = if args.paths.is_empty() {
        vec![loaded.root.clone().unwrap_or_else(|| PathBuf::from("."))]
    } else {
        args.paths.clone()
    };
    let lifecycle = crate::lifecycle::of(&loaded.keyring, loaded.root.as_deref())?;
    let selector = Selector::new(Vec::new(), Some(&loaded.path), None, start)?;
    let identities = if args.dry_run {
        Vec::new()
    } else if args.identity.identities.is_empty() {
        bail!("reseal --all needs the identity that opens the values: pass -i FILE (or --dry-run to list the files)");
    } else {
        args.identity.load()?
    };
    let mut results = Vec::new();
    for path in manifest_files(&roots)? {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if !text.contains("SealedSecret") || !text.contains("gs1:") {
            continue;
        }
        let shown = path.display().to_string();
        let plan = LifecyclePlan {
            lifecycle: &lifecycle,
            environment: lifecycle.environment_of(&shown, false).map(str::to_string),
            target: selector.target(Some(&path)).map_err(|e| e.to_string()),
            reasons: RefCell::new(Vec::new()),
        };
        if args.dry_run {
            match reseal::affected(&text, &shown, &plan) {
                Ok(objects) if !objects.is_empty() => results.push((path, None, plan)),
                Ok(_) => {}
                Err(e) => eprintln!("warning: skipped {shown}: {e}"),
            }
            continue;
        }
        let resealed =
            reseal::reseal_text(&text, &shown, &identities, &plan, args.namespace.as_deref())?;
        if resealed.values > 0 {
            results.push((path, Some(resealed), plan));
        }
    }
    let mut out = std::io::stdout().lock();
    for (path, resealed, plan) in &results {
        for reason in plan.reasons.borrow().iter() {
            eprintln!("{reason}");
        }
        if resealed.is_none() {
            let env = match &plan.target {
                Ok(t) => t.to_string(),
                Err(e) => e.clone(),
            };
            writeln!(out, "{}", path.display())?;
            eprintln!("{}: would be re-sealed for {env}", path.display());
        }
    }
    // Every value of every file opened and sealed before the first write.
    for (path, resealed, plan) in &results {
        if let Some(r) = resealed {
            files::write_atomic(path, r.text.as_bytes(), NewFileMode::Public)?;
            let env = plan
                .target
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            eprintln!(
                "{}: re-sealed {} value(s) in {} object(s) for {env}",
                path.display(),
                r.values,
                r.objects.len()
            );
        }
    }
    out.flush()?;
    if results.is_empty() {
        eprintln!("gitseal: nothing to re-seal");
    }
    Ok(ExitCode::SUCCESS)
}
