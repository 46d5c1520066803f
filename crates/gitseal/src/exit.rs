//! Exit codes, documented in `docs/cli.md`, and the error type that carries one.

use std::fmt;
use std::process::ExitCode;

/// What the process exit status means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success (for `verify`: nothing found).
    Ok = 0,
    /// `verify` found problems.
    Findings = 1,
    /// Bad usage or bad input: unknown flag, unreadable or invalid file,
    /// a manifest that cannot be sealed. Nothing was written.
    Usage = 2,
    /// A sealed value did not open (`unseal`, `reseal`, `exec`): wrong or
    /// missing key, altered value, or a value moved to another place.
    DoesNotOpen = 3,
    /// A remote service (controller, Kubernetes API, Vault) could not be reached or refused.
    Unavailable = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error that decides the exit code. Wrap with [`coded`]; anything else exits [`Exit::Usage`].
#[derive(Debug)]
pub struct Coded {
    /// The exit code.
    pub code: Exit,
    /// The message.
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// An error with an exit code.
pub fn coded(code: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        message: message.into(),
    })
}

/// The exit code for an error chain: the first [`Coded`] in it, else [`Exit::Usage`].
pub fn code_of(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>().map(|c| c.code))
        .unwrap_or(Exit::Usage)
}

/// Whether the error is a closed stdout (`gitseal … | head`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
