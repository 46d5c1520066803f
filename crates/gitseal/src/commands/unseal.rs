//! `gitseal unseal`: SealedSecret manifests back into Secret manifests with
//! a private identity, for recovery and debugging. The controller does this
//! in the cluster; this command is for when it cannot.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use gitseal_manifest::files::NewFileMode;
use gitseal_manifest::open::{self, OpenOptions};
use gitseal_manifest::output;
use gitseal_manifest::seal::Others;

use crate::commands::pubkey::load_identities;
use crate::commands::seal::{check_stdin_once, read_documents, write_output, FormatArg};
use crate::exit::{coded, Exit};

/// Open SealedSecret manifests into Secret manifests (needs a private key).
///
/// Every sealed item is opened with the identities given and checked against
/// where the SealedSecret is: its scope, namespace, name and the item key.
/// The output holds plaintext (base64 `data`, byte-exact): do not commit it.
/// Vault items (`vaultData`) are left out with a note on standard error.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal unseal -i key.txt -f db.sealed.yaml
  gitseal unseal -i key.txt -f sealed.yaml -o secret.yaml     # written with mode 0600
  kubectl get sealedsecret db -o yaml | gitseal unseal -i key.txt --format json

Exit codes: 0 ok, 2 bad usage or input, 3 a sealed value did not open (wrong
key, altered, or moved to another namespace, name or item). Nothing is
written unless every value opened.")]
pub struct Args {
    /// Identity file (age-keygen format; '-' for standard input); repeatable.
    #[arg(short, long = "identity", value_name = "FILE", required = true)]
    pub identities: Vec<PathBuf>,

    /// Input file ('-' for standard input); repeatable [default: standard input].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write to FILE (atomically, mode 0600) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
    pub format: FormatArg,

    /// Namespace for SealedSecrets without metadata.namespace.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Copy documents that are not SealedSecrets unchanged (default: refuse them).
    #[arg(long)]
    pub pass_through: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_stdin_once(&args.identities, &args.files)?;
    let mut identities = Vec::new();
    for path in &args.identities {
        identities.extend(load_identities(path)?);
    }
    let docs = read_documents(&args.files)?;
    let opts = OpenOptions {
        identities: &identities,
        namespace: args.namespace.as_deref(),
        others: if args.pass_through {
            Others::PassThrough
        } else {
            Others::Refuse
        },
    };
    let opened = match open::open_documents(&docs, &opts) {
        Ok(o) => o,
        Err(e) if e.is_does_not_open() => return Err(coded(Exit::DoesNotOpen, e.to_string())),
        Err(e) => return Err(e.into()),
    };
    for note in &opened.notes {
        eprintln!("note: {note}");
    }
    let text = output::render(&opened.documents, args.format.into())?;
    if args.output.is_none() && std::io::stdout().is_terminal() {
        eprintln!("warning: printing plaintext Secrets to the terminal");
    }
    write_output(args.output.as_deref(), &text, NewFileMode::Private)?;
    Ok(ExitCode::SUCCESS)
}
