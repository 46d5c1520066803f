//! `gitseal completions SHELL`: shell completion scripts.

use std::io::Write as _;
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
    // Generated into memory first: clap_complete panics when its writer
    // fails, and a closed standard output (`| head -1`) is not an error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "gitseal", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
