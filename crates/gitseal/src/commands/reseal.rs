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

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::reseal::{self, All};
use gitseal_manifest::select::Selector;

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
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
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
}

/// One re-sealed input file.
struct Resealed {
    origin: PathBuf,
    text: String,
    values: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
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
