//! Reading inputs and writing outputs the same way in every command: files
//! or standard input (`-`), identity files, and output to a file (atomic)
//! or standard output.
#![allow(clippy::print_stderr)]

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use gitseal_crypto::Identity;
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::input::{self, Document};

use crate::exit::{coded, Exit};

/// Reads a file, or standard input for `-`. Returns its name for messages.
pub fn read_source(path: &Path) -> anyhow::Result<(String, String)> {
    let (origin, bytes) = read_source_bytes(path)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        coded(
            Exit::Usage,
            format!("{origin}: not UTF-8 text (manifests and key files are text)"),
        )
    })?;
    Ok((origin, text))
}

/// Reads a file, or standard input for `-`, as bytes. The error names the
/// path once: `cannot read db.yaml: No such file or directory`.
pub fn read_source_bytes(path: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| anyhow::anyhow!("cannot read standard input: {}", files::reason(&e)))?;
        Ok(("<stdin>".to_string(), buf))
    } else {
        let bytes = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!("cannot read {}: {}", path.display(), files::reason(&e))
        })?;
        Ok((path.display().to_string(), bytes))
    }
}

/// Refuses to read standard input twice: `-` may stand once among the
/// identity files and the inputs together (no inputs means standard input).
pub fn check_stdin_once(identities: &[PathBuf], files: &[PathBuf]) -> anyhow::Result<()> {
    let uses = identities
        .iter()
        .chain(files)
        .filter(|p| p.as_os_str() == "-")
        .count()
        + usize::from(files.is_empty());
    if uses > 1 {
        return Err(coded(
            Exit::Usage,
            "standard input can be read only once: give the identity or the manifests as a file",
        ));
    }
    Ok(())
}

/// Parses every input (stdin when none) into documents.
pub fn read_documents(paths: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let stdin = [PathBuf::from("-")];
    let paths = if paths.is_empty() { &stdin[..] } else { paths };
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("standard input ('-') can be read only once");
    }
    let mut docs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" && std::io::stdin().is_terminal() {
            eprintln!("reading manifests from standard input (end with Ctrl-D; or pass -f FILE)");
        }
        let (origin, text) = read_source(path)?;
        let mut file_docs = input::parse(&text, &origin)?;
        if file_docs.is_empty() {
            return Err(gitseal_manifest::Error::Empty { origin }.into());
        }
        docs.append(&mut file_docs);
    }
    Ok(docs)
}

/// Writes `text` to `output` atomically (with `mode`), or to standard output.
pub fn write_output(output: Option<&Path>, text: &str, mode: NewFileMode) -> anyhow::Result<()> {
    match output {
        Some(path) => files::write_atomic(path, text.as_bytes(), mode)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Reads the identities of an identity file ('-' for stdin). Errors name the
/// file and line, never the content. An age-encrypted file (a
/// passphrase-protected identity) is recognised and explained.
pub fn load_identities(path: &Path) -> anyhow::Result<Vec<Identity>> {
    let (origin, bytes) = read_source_bytes(path)?;
    let bytes = zeroize::Zeroizing::new(bytes);
    if bytes.starts_with(b"age-encryption.org/")
        || bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        bail!(
            "{origin}: the identity file is encrypted with a passphrase (age -p); decrypt it into \
             gitseal without writing it to disk: `age -d {origin} | gitseal … -i -`"
        );
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        coded(
            Exit::Usage,
            format!("{origin}: not UTF-8 text (an identity file is text: AGE-SECRET-KEY-1…)"),
        )
    })?;
    Identity::parse_file(text).with_context(|| {
        format!("{origin}: not a usable identity file (make one with `gitseal keygen -o FILE`)")
    })
}

/// The identities of every file given (none when none given).
pub fn load_all_identities(paths: &[PathBuf]) -> anyhow::Result<Vec<Identity>> {
    let mut identities = Vec::new();
    for path in paths {
        identities.extend(load_identities(path)?);
    }
    Ok(identities)
}
