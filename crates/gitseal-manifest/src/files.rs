//! Reading and writing files so that a failure never leaves a half-written
//! file: output goes to a temporary file in the same directory, which is
//! then renamed over the target (atomic on POSIX). Files that hold a
//! private key or plaintext are created with mode 0600.

use std::io::Write as _;
use std::path::Path;

use crate::Error;

fn io_error(path: &Path, cause: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// What an I/O error says, without the `(os error N)` suffix and without
/// the temporary file's name that `tempfile` adds (`… at path "/x/.gitseal-…"`).
pub fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let end = [" (os error ", " at path "]
        .iter()
        .filter_map(|cut| text.find(cut))
        .min()
        .unwrap_or(text.len());
    text[..end].to_string()
}

/// Reads a UTF-8 text file; the error names the path.
pub fn read_to_string(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, e))
}

/// Permissions of a file written by [`write_atomic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewFileMode {
    /// Safe to share (sealed manifests, public keys): an existing file keeps
    /// its permissions, a new one gets 0644.
    Public,
    /// Owner only (private keys, plaintext Secrets): always 0600, from the
    /// first byte written, even when replacing a file that had wider permissions.
    Private,
}

/// Replaces (or creates) `path` with `contents` atomically: a temporary file
/// (mode 0600) in the same directory, flushed to disk, then renamed over
/// `path`. Permissions as [`NewFileMode`] says. On any error `path` is left
/// exactly as it was.
pub fn write_atomic(path: &Path, contents: &[u8], mode: NewFileMode) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gitseal-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_error(path, e))?;
    tmp.write_all(contents).map_err(|e| io_error(path, e))?;
    tmp.as_file().sync_all().map_err(|e| io_error(path, e))?;
    match std::fs::metadata(path) {
        _ if mode == NewFileMode::Private => {
            set_mode(tmp.path(), mode).map_err(|e| io_error(path, e))?
        }
        Ok(existing) => {
            std::fs::set_permissions(tmp.path(), existing.permissions())
                .map_err(|e| io_error(path, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            set_mode(tmp.path(), mode).map_err(|e| io_error(path, e))?
        }
        Err(e) => return Err(io_error(path, e)),
    }
    tmp.persist(path).map_err(|e| io_error(path, e.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: NewFileMode) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let bits = match mode {
        NewFileMode::Public => 0o644,
        NewFileMode::Private => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: NewFileMode) -> std::io::Result<()> {
    Ok(())
}

/// Creates `path` with `contents`, mode 0600 from the first byte on, and
/// fails if it exists (never overwrites). A failed write removes the file.
pub fn create_new_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io_error(path, e))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io_error(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_keeps_permissions_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.yaml");
        write_atomic(&path, b"one", NewFileMode::Public).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o644
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        }
        write_atomic(&path, b"two", NewFileMode::Public).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o640
            );
        }
        write_atomic(&path, b"three", NewFileMode::Private).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn write_atomic_into_missing_dir_fails_and_names_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope/out.yaml");
        let err = write_atomic(&path, b"x", NewFileMode::Public).expect_err("no dir");
        assert!(err.to_string().contains("nope/out.yaml"), "{err}");
    }

    #[test]
    fn create_new_private_refuses_existing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.txt");
        create_new_private(&path, b"secret").expect("create");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
        }
        let err = create_new_private(&path, b"other").expect_err("exists");
        assert!(
            matches!(err, Error::Io { ref cause, .. } if cause.kind() == std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"secret");
    }
}
