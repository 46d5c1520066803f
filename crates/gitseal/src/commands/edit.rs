//! `gitseal edit FILE`: a SealedSecret in `$VISUAL`/`$EDITOR` as if it were
//! a Secret, without a private key (`gitseal_manifest::edit` does the
//! work). This command owns the plaintext's short life on disk: one 0600
//! file in a private (0700), memory-backed where available, temporary
//! directory, removed on every way out: the editor failing, an abort, an
//! error, Ctrl-C or a termination signal while the editor runs.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use gitseal_crypto::{KeyId, Recipient};
use gitseal_manifest::edit::{self, Outcome, Session};
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::input;
use gitseal_manifest::memory::Memory;
use gitseal_manifest::select::LoadedKeyring;
use zeroize::Zeroizing;

use crate::args::RecipientArgs;
use crate::commands::seal::{save_cache, value_cache};
use crate::exit::{coded, Exit};

/// Edit a SealedSecret as if it were a Secret (no private key needed).
///
/// Opens FILE's SealedSecret in $VISUAL, else $EDITOR, else vi, as a Secret
/// whose sealed items read "<sealed: keep>". Replace a placeholder with a
/// new value to change that item, delete a line to remove an item, add
/// lines to add items; on save only those items are sealed (with the
/// object's scope, name, namespace and recipients) and written back in
/// place: every other value, document and comment of FILE stays byte for
/// byte. An unchanged or empty buffer, or an editor that fails, writes
/// nothing.
///
/// Recipients: the keys the object's items are sealed to, looked up in the
/// repository's keyring; or -r/--env/--keyring, which must name the same
/// keys (re-seal with `gitseal reseal` to change them).
///
/// The plaintext you type lives only in one file of mode 0600 in a new
/// directory of mode 0700 under $XDG_RUNTIME_DIR or /dev/shm (memory, not
/// disk) when they exist, else the temporary directory; it is removed when
/// the editor exits, also on Ctrl-C (a SIGKILL cannot be caught).
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal edit apps/prod/db.sealed.yaml
  EDITOR='code --wait' gitseal edit db.sealed.yaml
  gitseal edit --name api sealed.yaml            # a file with several SealedSecrets

Exit codes: 0 written, or nothing to write (unchanged, empty buffer); 2 bad
input, an editor that failed, a buffer that does not read (nothing
written); 130 interrupted (nothing written).
Documentation: https://github.com/gitseal/gitseal/blob/main/docs/cli.md#gitseal-edit")]
pub struct Args {
    /// The SealedSecret file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// With several SealedSecrets in FILE: the one to edit.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub recipients: RecipientArgs,

    /// Namespace for a SealedSecret without metadata.namespace.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
}

/// The recipients for the edited items: the object's own keys (from the
/// keyring), or those given, which must be the same.
fn recipients(args: &Args, session: &Session) -> anyhow::Result<Vec<Recipient>> {
    let have = session.key_ids()?;
    let given = !args.recipients.recipients.is_empty()
        || args.recipients.keyring.is_some()
        || args.recipients.env.is_some();
    if given || have.is_none() {
        let target = args
            .recipients
            .selector(&args.file)?
            .target(Some(&args.file))?;
        if target.recipients.is_empty() {
            bail!("no recipients: pass -r age1…, or keep a keyring at .gitseal/keys.yaml (see keys.example)");
        }
        if let Some(have) = &have {
            let want: std::collections::BTreeSet<KeyId> =
                target.recipients.iter().map(Recipient::key_id).collect();
            if *have != want {
                return Err(gitseal_manifest::Error::RecipientsDiffer {
                    at: Box::new(session.at.clone()),
                    object: session.describe(),
                    have: have.iter().copied().collect(),
                    want: want.into_iter().collect(),
                }
                .into());
            }
        }
        return Ok(target.recipients);
    }
    let have = have.unwrap_or_default();
    let keyring = LoadedKeyring::discover(&args.file)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in &have {
        match keyring.as_ref().and_then(|k| k.keyring.recipient_of(*id)) {
            Some(r) => found.push(r.clone()),
            None => missing.push(id.to_string()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} is sealed to key id(s) {}, which {}: pass -r age1… for each, or add it to the \
             keyring",
            session.describe(),
            missing.join(", "),
            if keyring.is_some() {
                "the keyring does not list with a public key"
            } else {
                "no keyring names (there is no .gitseal/keys.yaml at the repository root)"
            }
        );
    }
    Ok(found)
}

/// A new private directory for the buffer: memory-backed when possible.
fn private_dir() -> anyhow::Result<tempfile::TempDir> {
    let mut bases: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        bases.push(PathBuf::from(dir));
    }
    bases.push(PathBuf::from("/dev/shm"));
    bases.push(std::env::temp_dir());
    let mut last = None;
    for base in bases.iter().filter(|b| b.is_dir()) {
        let mut builder = tempfile::Builder::new();
        builder.prefix("gitseal-edit-");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // Created with mode 0700 (not after): nobody else can look in.
            builder.permissions(std::fs::Permissions::from_mode(0o700));
        }
        match builder.tempdir_in(base) {
            Ok(dir) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow!(
        "cannot create a private temporary directory: {}",
        last.map_or_else(|| "no usable directory".into(), |e| files::reason(&e))
    ))
}

/// Watches for SIGINT, SIGTERM and SIGHUP while the editor runs, so
/// gitseal survives them long enough to remove the buffer. Returns the
/// flag a signal sets, once the handlers are in place.
#[cfg(unix)]
fn watch_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&flag);
    let (ready, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            let _ = ready.send(());
            return;
        };
        runtime.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let handlers = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            );
            let _ = ready.send(());
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = handlers else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            seen.store(true, Ordering::SeqCst);
        });
    });
    let _ = wait.recv();
    flag
}

#[cfg(not(unix))]
fn watch_signals() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// Runs the user's editor on `path`, as git does: through the shell, so
/// `EDITOR='code --wait'` works.
fn run_editor(path: &Path) -> anyhow::Result<std::process::ExitStatus> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(&editor)
        .arg(path)
        .status()
        .with_context(|| format!("cannot run the editor ({editor})"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let origin = args.file.display().to_string();
    let text = files::read_to_string(&args.file)?;
    let file = input::parse_file(&text, &origin)?;
    let session = edit::start(&file, args.name.as_deref())?;
    let recipients = recipients(&args, &session)?;
    let buffer = session.buffer(&origin)?;

    let dir = private_dir()?;
    let path = dir.path().join(format!("{}.secret.yaml", session.name));
    files::create_new_private(&path, buffer.as_bytes())?;
    let interrupted = watch_signals();
    let status = run_editor(&path);
    // The plaintext is read back and the directory removed before anything else.
    let edited = std::fs::read(&path)
        .map(Zeroizing::new)
        .map_err(|e| anyhow!("cannot read the edited buffer: {}", files::reason(&e)));
    let removed = dir.close();
    if interrupted.load(Ordering::SeqCst) {
        eprintln!("gitseal: interrupted; {origin} is unchanged");
        return Ok(ExitCode::from(130));
    }
    removed.map_err(|e| {
        anyhow!(
            "cannot remove the temporary buffer: {}; nothing written",
            files::reason(&e)
        )
    })?;
    let status = status?;
    if !status.success() {
        return Err(coded(
            Exit::Usage,
            format!("the editor exited with {status}; {origin} is unchanged"),
        ));
    }
    let edited = edited?;
    let edited = std::str::from_utf8(&edited)
        .map_err(|_| anyhow!("the edited buffer is not UTF-8 text; {origin} is unchanged"))?;
    if edited == buffer {
        eprintln!("gitseal: no changes; {origin} is unchanged");
        return Ok(ExitCode::SUCCESS);
    }
    let buffer_name = format!("the edited buffer of {origin}");
    let changes = match session.read(edited, &buffer_name)? {
        Outcome::Empty => {
            eprintln!("gitseal: empty buffer, edit cancelled; {origin} is unchanged");
            return Ok(ExitCode::SUCCESS);
        }
        Outcome::Changes(c) if c.is_empty() => {
            eprintln!("gitseal: no item changed; {origin} is unchanged");
            return Ok(ExitCode::SUCCESS);
        }
        Outcome::Changes(c) => c,
    };
    let memory = value_cache(Some(&file), args.namespace.as_deref(), false);
    let merged = edit::apply(
        &file,
        &session,
        &changes,
        &recipients,
        args.namespace.as_deref(),
        memory.as_ref().map(|m| m as &dyn Memory),
    )?;
    drop(changes);
    files::write_atomic(&args.file, merged.text.as_bytes(), NewFileMode::Public)?;
    if let Some(cache) = &memory {
        save_cache(cache);
    }
    for change in &merged.changes {
        eprintln!("{origin}: {change}");
    }
    Ok(ExitCode::SUCCESS)
}
