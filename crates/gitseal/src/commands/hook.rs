//! `gitseal hook`: installs (or removes) a git pre-commit hook that runs
//! `gitseal verify --staged`, so a plaintext secret is stopped before it
//! becomes a commit. A hook written by someone else is never overwritten
//! unless asked (`--force`, which keeps a backup).
#![allow(clippy::print_stderr)]

use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The first line after the shebang of every hook gitseal writes.
pub const MARKER: &str = "# gitseal-hook v1";

/// Manage the git pre-commit hook that runs `gitseal verify --staged`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: HookCommand,
}

/// Hook subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum HookCommand {
    /// Write .git/hooks/pre-commit running `gitseal verify --staged`.
    Install {
        /// Replace an existing pre-commit hook that gitseal did not write
        /// (it is kept as pre-commit.gitseal-backup).
        #[arg(long)]
        force: bool,
        /// The repository (default: the current directory).
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
    },
    /// Remove the pre-commit hook if gitseal wrote it.
    Uninstall {
        /// The repository (default: the current directory).
        #[arg(long, value_name = "DIR", default_value = ".")]
        repo: PathBuf,
    },
}

/// Where git looks for hooks in `repo` (honours `core.hooksPath` and worktrees).
fn hooks_dir(repo: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "{} is not a git repository: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The hook script. It prefers `gitseal` on PATH and falls back to the
/// binary that installed it.
pub fn script(fallback: Option<&Path>) -> String {
    let fallback = fallback
        .map(|p| shell_quote(&p.to_string_lossy()))
        .unwrap_or_else(|| "gitseal".to_string());
    format!(
        "#!/bin/sh\n{MARKER}: installed by `gitseal hook install`.\n\
# Blocks commits that add plaintext secrets. Bypass once: git commit --no-verify\n\
GITSEAL=\"${{GITSEAL:-gitseal}}\"\n\
command -v \"$GITSEAL\" >/dev/null 2>&1 || GITSEAL={fallback}\n\
if ! command -v \"$GITSEAL\" >/dev/null 2>&1; then\n\
  echo \"gitseal pre-commit hook: no gitseal binary found (not on PATH, not at $GITSEAL). Install it \
(cargo install --locked --path crates/gitseal, or a release binary) or set GITSEAL=/path/to/gitseal; \
remove this hook with: gitseal hook uninstall. Commit refused: the secret check did not run.\" >&2\n\
  exit 1\n\
fi\n\
\"$GITSEAL\" verify --staged\n\
status=$?\n\
if [ \"$status\" -eq 1 ]; then\n\
  echo \"gitseal: commit blocked. Seal secrets with gitseal seal. If a finding is not a secret, add a \
comment 'gitseal:allow REASON' on its line (or the line before), or record it in a baseline \
(gitseal verify --write-baseline FILE, then --baseline FILE). Skip the check once: git commit --no-verify.\" >&2\n\
fi\n\
exit \"$status\"\n"
    )
}

fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(MARKER))
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Runs `gitseal hook`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        HookCommand::Install { force, repo } => {
            let dir = hooks_dir(&repo)?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let hook = dir.join("pre-commit");
            if hook.exists() && !is_ours(&hook) {
                if !force {
                    bail!(
                        "{} already exists and was not written by gitseal; add `gitseal verify --staged` to it yourself, or rerun with --force to replace it (a backup is kept)",
                        hook.display()
                    );
                }
                let backup = dir.join("pre-commit.gitseal-backup");
                std::fs::rename(&hook, &backup).with_context(|| {
                    format!("cannot back up {} to {}", hook.display(), backup.display())
                })?;
                eprintln!("gitseal: kept the previous hook as {}", backup.display());
            }
            let exe = std::env::current_exe().ok();
            std::fs::write(&hook, script(exe.as_deref()))
                .with_context(|| format!("cannot write {}", hook.display()))?;
            make_executable(&hook)?;
            eprintln!(
                "gitseal: installed {} (runs `gitseal verify --staged`)",
                hook.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        HookCommand::Uninstall { repo } => {
            let hook = hooks_dir(&repo)?.join("pre-commit");
            if !hook.exists() {
                eprintln!("gitseal: no pre-commit hook at {}", hook.display());
                return Ok(ExitCode::SUCCESS);
            }
            if !is_ours(&hook) {
                bail!(
                    "{} was not written by gitseal; leaving it alone",
                    hook.display()
                );
            }
            std::fs::remove_file(&hook)
                .with_context(|| format!("cannot remove {}", hook.display()))?;
            eprintln!("gitseal: removed {}", hook.display());
            let backup = hook.with_file_name("pre-commit.gitseal-backup");
            if backup.exists() {
                std::fs::rename(&backup, &hook).with_context(|| {
                    format!(
                        "cannot restore {} from {}",
                        hook.display(),
                        backup.display()
                    )
                })?;
                eprintln!(
                    "gitseal: restored the previous hook from {}",
                    backup.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_init(dir: &Path) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["init", "-q"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git init failed");
    }

    fn install(repo: &Path, force: bool) -> anyhow::Result<ExitCode> {
        run(Args {
            command: HookCommand::Install {
                force,
                repo: repo.to_path_buf(),
            },
        })
    }

    #[test]
    fn script_runs_verify_staged_and_quotes_the_fallback() {
        let s = script(Some(Path::new("/opt/it's here/gitseal")));
        assert!(s.starts_with("#!/bin/sh\n# gitseal-hook v1"));
        assert!(s.contains("\"$GITSEAL\" verify --staged\n"));
        assert!(s.contains("gitseal:allow REASON") && s.contains("no gitseal binary found"));
        assert!(s.contains(r"GITSEAL='/opt/it'\''s here/gitseal'"), "{s}");
    }

    #[test]
    fn the_hook_explains_a_missing_binary_and_a_blocked_commit() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let run_hook = |fallback: &str| {
            let hook = dir.path().join("pre-commit");
            std::fs::write(&hook, script(Some(Path::new(fallback))))
                .unwrap_or_else(|e| panic!("{e}"));
            Command::new("sh")
                .arg(&hook)
                .current_dir(dir.path())
                .env("PATH", "/usr/bin:/bin")
                .env_remove("GITSEAL")
                .output()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let out = run_hook("/nonexistent/gitseal");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no gitseal binary found") && err.contains("Commit refused"),
            "{err}"
        );
        // A stand-in gitseal that finds something: the hook says how to allow it.
        let fake = dir.path().join("fake-gitseal");
        std::fs::write(&fake, "#!/bin/sh\nexit 1\n").unwrap_or_else(|e| panic!("{e}"));
        make_executable(&fake).unwrap_or_else(|e| panic!("{e}"));
        let out = run_hook(&fake.to_string_lossy());
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("gitseal:allow REASON") && err.contains("--no-verify"),
            "{err}"
        );
    }

    #[test]
    fn install_refuses_a_foreign_hook_unless_forced() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        git_init(dir.path());
        let hooks = dir.path().join(".git").join("hooks");
        std::fs::create_dir_all(&hooks).unwrap_or_else(|e| panic!("{e}"));
        let hook = hooks.join("pre-commit");
        std::fs::write(&hook, "#!/bin/sh\nmake lint\n").unwrap_or_else(|e| panic!("{e}"));

        let err = install(dir.path(), false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("was not written by gitseal"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&hook).unwrap_or_default(),
            "#!/bin/sh\nmake lint\n"
        );

        assert!(install(dir.path(), true).is_ok());
        let text = std::fs::read_to_string(&hook).unwrap_or_default();
        assert!(text.contains(MARKER) && text.contains("verify --staged"));
        let backup =
            std::fs::read_to_string(hooks.join("pre-commit.gitseal-backup")).unwrap_or_default();
        assert_eq!(backup, "#!/bin/sh\nmake lint\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&hook)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            assert_eq!(mode & 0o777, 0o755);
        }
        // Reinstalling over our own hook needs no --force; uninstall removes it.
        assert!(install(dir.path(), false).is_ok());
        let un = run(Args {
            command: HookCommand::Uninstall {
                repo: dir.path().to_path_buf(),
            },
        });
        assert!(un.is_ok());
        // The hook that --force set aside is back.
        assert_eq!(
            std::fs::read_to_string(&hook).unwrap_or_default(),
            "#!/bin/sh\nmake lint\n"
        );
        assert!(!hooks.join("pre-commit.gitseal-backup").exists());
    }

    #[test]
    fn install_outside_a_repository_fails() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let err = install(dir.path(), false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("is not a git repository"), "{err}");
    }
}
