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
3 a sealed value did not open, 4 a remote service was unavailable.\n\
Documentation: https://github.com/gitseal/gitseal/blob/main/docs/cli.md"
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
    Render(commands::render::Args),
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
        Command::Render(a) => commands::render::run(a),
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

#[cfg(test)]
mod tests {
    //! docs/cli.md is checked against the commands' flags, both ways, so
    //! it cannot drift from `--help`.

    use clap::CommandFactory as _;

    const DOCS: &str = include_str!("../../../docs/cli.md");

    /// The text of `## gitseal NAME` up to the next `## ` heading.
    fn section(name: &str) -> Option<&'static str> {
        let heading = format!("\n## gitseal {name}\n");
        let start = DOCS.find(&heading)? + heading.len();
        let end = DOCS[start..]
            .find("\n## ")
            .map_or(DOCS.len(), |e| start + e);
        Some(&DOCS[start..end])
    }

    /// Every long flag of a command and its subcommands.
    fn flags(cmd: &clap::Command) -> Vec<String> {
        let mut out: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .filter(|f| f != "--help" && f != "--version")
            .collect();
        for sub in cmd.get_subcommands() {
            out.extend(flags(sub));
        }
        out
    }

    #[test]
    fn docs_cli_md_matches_help() {
        let cli = super::Cli::command();
        let mut problems = Vec::new();
        for cmd in cli.get_subcommands() {
            let name = cmd.get_name();
            let Some(text) = section(name) else {
                problems.push(format!("docs/cli.md has no `## gitseal {name}` section"));
                continue;
            };
            let known = flags(cmd);
            for flag in &known {
                let mentioned = text.match_indices(flag.as_str()).any(|(i, _)| {
                    !text[i + flag.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                });
                if !mentioned {
                    problems.push(format!(
                        "`gitseal {name} {flag}` is not documented in its section"
                    ));
                }
            }
            // Every flag a table row of the section documents exists.
            for line in text.lines().filter(|l| l.starts_with("| `-")) {
                let cell = line.split('|').nth(1).unwrap_or_default();
                for word in cell.split(|c: char| c == '`' || c == ',' || c.is_whitespace()) {
                    if word.starts_with("--") && !known.iter().any(|k| k == word) {
                        problems.push(format!(
                            "docs/cli.md documents `gitseal {name} {word}`, which does not exist"
                        ));
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
