//! `gitseal completions SHELL`: shell completion scripts.

use std::process::ExitCode;

/// Print a shell completion script to stdout.
///
/// Example: `gitseal completions bash > /etc/bash_completion.d/gitseal`
#[derive(clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

pub fn run(args: Args, mut cmd: clap::Command) -> anyhow::Result<ExitCode> {
    clap_complete::generate(args.shell, &mut cmd, "gitseal", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
