//! `gitseal pubkey`: the recipients (public keys) of an identity file, like
//! `age-keygen -y`.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::io::load_identities;

/// Print the recipient (public key) of each identity in an identity file.
///
/// One `age1…` per line, in file order; with --key-id each is followed by a
/// space and its key id (the 16 hex digits that sealed values name).
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal pubkey -i key.txt
  gitseal pubkey -i key.txt --key-id
  cat key.txt | gitseal pubkey -i -")]
pub struct Args {
    /// Identity file (age-keygen format; '-' reads standard input).
    #[arg(short, long, value_name = "FILE")]
    pub identity: PathBuf,

    /// Also print each key's id after its recipient.
    #[arg(long)]
    pub key_id: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let identities = load_identities(&args.identity)?;
    let mut out = std::io::stdout().lock();
    for identity in &identities {
        if args.key_id {
            writeln!(out, "{} {}", identity.recipient(), identity.key_id())?;
        } else {
            writeln!(out, "{}", identity.recipient())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
