//! The `gitseal` command: parses arguments, calls the libraries, prints.
//! Every command lives in `commands/`; exit codes in `exit.rs`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod commands;
mod exit;
mod io;
mod lifecycle;

/// gitseal keeps secrets out of Git: seal Kubernetes Secrets with a cluster's
/// public key, commit the sealed YAML, and let the in-cluster controller open
/// them. `gitseal verify` guards the repository in CI.
#[derive(Parser)]
#[command(name = "gitseal", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 verify found problems, 2 usage or input error, \
3 a sealed value did not open, 4 a remote service was unavailable.\nDocs: docs/cli.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Keygen(commands::keygen::Args),
    Pubkey(commands::pubkey::Args),
    Seal(commands::seal::Args),
    Edit(commands::edit::Args),
    Unseal(commands::unseal::Args),
    Reseal(commands::reseal::Args),
    FetchKey(commands::fetch_key::Args),
    Verify(commands::verify::Args),
    Hook(commands::hook::Args),
    Exec(commands::exec::Args),
    Migrate(commands::migrate::Args),
    Completions(commands::completions::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(a) => commands::keygen::run(a),
        Command::Pubkey(a) => commands::pubkey::run(a),
        Command::Seal(a) => commands::seal::run(a),
        Command::Edit(a) => commands::edit::run(a),
        Command::Unseal(a) => commands::unseal::run(a),
        Command::Reseal(a) => commands::reseal::run(a),
        Command::FetchKey(a) => commands::fetch_key::run(a),
        Command::Verify(a) => commands::verify::run(a),
        Command::Hook(a) => commands::hook::run(a),
        Command::Exec(a) => commands::exec::run(a),
        Command::Migrate(a) => commands::migrate::run(a),
        Command::Completions(a) => {
            commands::completions::run(a, <Cli as clap::CommandFactory>::command())
        }
    };
    match result {
        Ok(code) => code,
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {}", exit::message(err.as_ref()));
            }
            exit::code_of(&err).into()
        }
    }
}
