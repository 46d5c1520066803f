//! `gitseal keygen`: make a new sealing identity (an age X25519 key) in
//! `age-keygen`'s file format, written with mode 0600 or printed. Warns
//! when the file lands in a git work tree without being ignored, one
//! `git add .` away from a commit.
#![allow(clippy::print_stderr)]

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use gitseal_crypto::Identity;
use gitseal_manifest::files::{self, NewFileMode};
use secrecy::ExposeSecret;

use crate::exit::{coded, Exit};

/// Generate a new identity (private key) and print or save it.
///
/// The identity is an age X25519 key: `age`, `age-keygen -y` and SOPS read
/// it, and keys made by `age-keygen` work with gitseal. Give its recipient
/// (public key, `age1…`) to `gitseal seal -r`; keep the identity secret.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal keygen -o key.txt             # writes key.txt (mode 0600), prints the recipient
  gitseal keygen -o key.txt --force     # replaces an existing key.txt
  gitseal keygen > key.txt              # prints the identity file instead

The file format is age-keygen's: '# created: …', '# public key: age1…', then
the AGE-SECRET-KEY-1… line.")]
pub struct Args {
    /// Write the identity to FILE (mode 0600) and print its recipient on
    /// standard output. Without it the identity file is printed.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Replace FILE if it exists (atomically). Without it an existing file is never touched.
    #[arg(long, requires = "output")]
    pub force: bool,
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The current time in RFC 3339, UTC (`2026-11-21T21:48:48Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let secs = i64::try_from(secs).unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The root of the git work tree holding `path`, when `path` is in one and
/// git does not ignore it. `None` when git is not installed or says no.
fn unignored_in_work_tree(path: &Path) -> Option<PathBuf> {
    let abs = gitseal_manifest::keyring::normalize(path);
    let dir = abs.parent()?;
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(dir).args(args);
        cmd.stdin(Stdio::null()).stderr(Stdio::null());
        cmd
    };
    let top = git(&["rev-parse", "--show-toplevel"]).output().ok()?;
    if !top.status.success() {
        return None;
    }
    let top = PathBuf::from(String::from_utf8(top.stdout).ok()?.trim());
    let ignored = git(&["check-ignore", "-q", "--"])
        .arg(&abs)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    // check-ignore: 0 ignored, 1 not ignored, 128 an error.
    (ignored.code() == Some(1)).then_some(top)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let identity = Identity::generate();
    let file = identity.to_identity_file(Some(&now_rfc3339()));
    match &args.output {
        None => {
            if std::io::stdout().is_terminal() {
                eprintln!(
                    "warning: printing a private key to the terminal; use `gitseal keygen -o FILE` to save it with mode 0600"
                );
            }
            let mut out = std::io::stdout().lock();
            out.write_all(file.expose_secret().as_bytes())?;
            out.flush()?;
        }
        Some(path) => {
            let written = if args.force {
                files::write_atomic(path, file.expose_secret().as_bytes(), NewFileMode::Private)
            } else {
                files::create_new_private(path, file.expose_secret().as_bytes())
            };
            match written {
                Ok(()) => {}
                Err(gitseal_manifest::Error::Io { cause, .. })
                    if cause.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    return Err(coded(
                        Exit::Usage,
                        format!(
                            "{} already exists; not overwriting a key (pass --force to replace it, \
                             or choose another file)",
                            path.display()
                        ),
                    ));
                }
                Err(e) => return Err(e).context("cannot write the identity"),
            }
            eprintln!("wrote {} (key id {})", path.display(), identity.key_id());
            if let Some(top) = unignored_in_work_tree(path) {
                eprintln!(
                    "warning: {} is inside the git work tree {} and not ignored: `git add` would \
                     commit this private key. Add it to .gitignore, or keep keys outside the \
                     repository",
                    path.display(),
                    top.display()
                );
            }
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", identity.recipient())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
