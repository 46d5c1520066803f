//! `gitseal pubkey`: the recipients (public keys) of an identity file, like
//! `age-keygen -y`.
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use gitseal_crypto::Identity;

use crate::commands::seal::read_source;

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

/// Reads the identities of an identity file ('-' for stdin). Errors name the
/// file and line, never the content.
pub fn load_identities(path: &std::path::Path) -> anyhow::Result<Vec<Identity>> {
    let (origin, text) = read_source(path)?;
    let text = secrecy::SecretString::from(text);
    Identity::parse_file(secrecy::ExposeSecret::expose_secret(&text)).with_context(|| {
        format!("{origin}: not a usable identity file (make one with `gitseal keygen -o FILE`)")
    })
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
