//! Exit codes, documented in `docs/cli.md`, derived from the typed errors
//! of the libraries (a value that does not open, a remote service that is
//! down), and how an error is printed.

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

/// An error that decides the exit code itself. Wrap with [`coded`].
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

/// The exit code of one error of the chain, when its type decides one.
fn code_of_one(e: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if let Some(c) = e.downcast_ref::<Coded>() {
        return Some(c.code);
    }
    if let Some(m) = e.downcast_ref::<gitseal_manifest::Error>() {
        return Some(if m.is_does_not_open() {
            Exit::DoesNotOpen
        } else {
            Exit::Usage
        });
    }
    if let Some(v) = e.downcast_ref::<gitseal_vault::Error>() {
        use gitseal_vault::Error as V;
        return Some(match v {
            V::InvalidRef { .. } | V::InvalidPolicy { .. } | V::Config { .. } => Exit::Usage,
            _ => Exit::Unavailable,
        });
    }
    None
}

/// The exit code for an error chain: the first error in it whose type
/// decides one, else [`Exit::Usage`].
pub fn code_of(err: &anyhow::Error) -> Exit {
    err.chain().find_map(code_of_one).unwrap_or(Exit::Usage)
}

/// Whether the error is a closed stdout (`gitseal … | head`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes as one line, each cause once: a cause whose
/// text the message above it already includes is not repeated
/// (`malformed sealed value: no recipients`, not twice).
pub fn message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_said_once_and_codes_come_from_types() {
        let envelope = gitseal_crypto::Envelope::parse("gs1:AAAA").expect_err("malformed");
        let err = anyhow::Error::new(gitseal_manifest::Error::Envelope {
            at: Box::new(gitseal_manifest::Location::new("a.yaml", 0)),
            item: "k".into(),
            source: envelope,
        });
        let text = message(err.as_ref());
        let cause = gitseal_crypto::Envelope::parse("gs1:AAAA")
            .expect_err("malformed")
            .to_string();
        assert_eq!(text.matches(&cause).count(), 1, "{text}");
        assert_eq!(code_of(&err), Exit::Usage);
        let err = anyhow::Error::new(gitseal_manifest::Error::DoesNotOpen {
            at: Box::new(gitseal_manifest::Location::new("a.yaml", 0)),
            item: "k".into(),
            sealed_to: vec![],
            mismatch: None,
        })
        .context("while re-sealing");
        assert_eq!(code_of(&err), Exit::DoesNotOpen);
        assert_eq!(
            code_of(&coded(Exit::Unavailable, "down")),
            Exit::Unavailable
        );
        assert_eq!(code_of(&anyhow::anyhow!("plain")), Exit::Usage);
    }
}
