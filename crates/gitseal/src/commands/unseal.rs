//! `gitseal unseal`: SealedSecret manifests back into Secret manifests with
//! a private identity, for recovery and debugging. The controller does this
//! in the cluster; this command is for when it cannot.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::bail;
use gitseal_manifest::files::NewFileMode;
use gitseal_manifest::open::{self, OpenOptions};
use gitseal_manifest::output;
use gitseal_manifest::seal::Others;

use crate::args::{IdentityArgs, InputArgs, OutputArgs};
use crate::io::{check_stdin_once, read_documents, write_output};

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
written unless every value opened.
Documentation: https://github.com/gitseal/gitseal/blob/main/docs/cli.md#gitseal-unseal")]
pub struct Args {
    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Copy documents that are not SealedSecrets unchanged (default: refuse them).
    #[arg(long)]
    pub pass_through: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.identity.identities.is_empty() {
        bail!("unseal needs the identity (private key) that opens the values: pass -i FILE");
    }
    check_stdin_once(&args.identity.identities, &args.input.files)?;
    let identities = args.identity.load()?;
    let docs = read_documents(&args.input.files)?;
    let opts = OpenOptions {
        identities: &identities,
        namespace: args.input.namespace.as_deref(),
        others: if args.pass_through {
            Others::PassThrough
        } else {
            Others::Refuse
        },
    };
    let opened = open::open_documents(&docs, &opts)?;
    for note in &opened.notes {
        eprintln!("note: {note}");
    }
    let text = output::render(&opened.documents, args.output.format.into())?;
    if args.output.output.is_none() && std::io::stdout().is_terminal() {
        eprintln!("warning: printing plaintext Secrets to the terminal");
    }
    write_output(args.output.output.as_deref(), &text, NewFileMode::Private)?;
    Ok(ExitCode::SUCCESS)
}
