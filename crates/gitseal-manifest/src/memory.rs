//! No churn: recognising, without a private key, that a value about to be
//! sealed is the one an existing sealed value already holds, so its
//! ciphertext is kept and `git diff` shows only the values that changed.
//!
//! A sealed value cannot be compared with a plaintext without the private
//! key (the envelope is randomised), and nothing derived from the plaintext
//! may be committed. So gitseal keeps a local cache, outside the
//! repository: for each value it seals, the SHA-256 of the sealed text and
//! an HMAC-SHA256 of (binding, plaintext) under a random 32-byte key that
//! never leaves this machine. A value is kept only when the existing sealed
//! text is in the cache with the MAC of the new plaintext and the same
//! binding, and is sealed to exactly the recipients asked for; anything
//! else is sealed anew. Without the cache (another machine, a cleared
//! cache) values are sealed anew: correct, just noisier.
//!
//! The cache is `$GITSEAL_CACHE_DIR`, else `$XDG_CACHE_HOME/gitseal`, else
//! `~/.cache/gitseal`: a directory of mode 0700 holding `key` and `values`
//! (mode 0600). Whoever can read it can test guesses of the values it
//! describes, as whoever reads the plaintext files next to it can read them.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use gitseal_crypto::{Binding, Envelope, KeyId};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::files::{self, NewFileMode};
use crate::Error;

/// Entries kept; the oldest go first.
const MAX_ENTRIES: usize = 50_000;
/// Domain separation of the MAC.
const CONTEXT: &[u8] = b"gitseal seal --update v1\0";

/// What sealing asks of a memory of sealed values: an existing sealed text
/// to keep for a plaintext, and to remember what it sealed.
pub trait Memory {
    /// The existing sealed text at item `key` of `namespace`/`name` when it
    /// holds `plaintext` for `binding` and is sealed to exactly
    /// `recipients`; `None` to seal anew.
    fn recall(
        &self,
        place: (&str, &str, &str),
        binding: &Binding,
        recipients: &BTreeSet<KeyId>,
        plaintext: &[u8],
    ) -> Option<String>;

    /// Remembers that `sealed` holds `plaintext` for `binding`.
    fn remember(&self, binding: &Binding, plaintext: &[u8], sealed: &str);
}

/// The local cache of keyed hashes (see the module documentation), with
/// the sealed values of the file being replaced.
pub struct ValueCache {
    dir: PathBuf,
    key: Zeroizing<[u8; 32]>,
    /// SHA-256 of a sealed text → MAC of its (binding, plaintext), oldest first.
    entries: RefCell<Vec<([u8; 32], [u8; 32])>>,
    index: RefCell<HashMap<[u8; 32], [u8; 32]>>,
    /// (namespace, name, item) → the existing sealed text there.
    existing: HashMap<(String, String, String), String>,
    changed: RefCell<bool>,
}

impl std::fmt::Debug for ValueCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueCache")
            .field("dir", &self.dir)
            .field("entries", &self.entries.borrow().len())
            .finish_non_exhaustive()
    }
}

/// Where the cache lives by default (see the module documentation).
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GITSEAL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("gitseal"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("gitseal"))
}

fn io(path: &Path, cause: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        cause,
    }
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.trim().as_bytes()).into()
}

impl ValueCache {
    /// Opens (or creates) the cache in `dir`.
    pub fn open(dir: &Path) -> Result<ValueCache, Error> {
        create_private_dir(dir)?;
        let key_path = dir.join("key");
        let key = match std::fs::read(&key_path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::Io {
                path: key_path.display().to_string(),
                cause: std::io::Error::other("not a 32-byte key; delete the cache directory"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                OsRng.fill_bytes(&mut key);
                match files::create_new_private(&key_path, &key) {
                    Ok(()) => key,
                    // Another gitseal made it first: use that one.
                    Err(_) => <[u8; 32]>::try_from(
                        std::fs::read(&key_path)
                            .map_err(|e| io(&key_path, e))?
                            .as_slice(),
                    )
                    .map_err(|_| io(&key_path, std::io::Error::other("not a 32-byte key")))?,
                }
            }
            Err(e) => return Err(io(&key_path, e)),
        };
        let mut entries = Vec::new();
        let values = dir.join("values");
        match std::fs::read_to_string(&values) {
            Ok(text) => {
                for line in text.lines() {
                    let mut parts = line.split(' ');
                    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let (Ok(a), Ok(b)) = (hex::decode(a), hex::decode(b)) else {
                        continue;
                    };
                    if let (Ok(a), Ok(b)) = (<[u8; 32]>::try_from(a), <[u8; 32]>::try_from(b)) {
                        entries.push((a, b));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&values, e)),
        }
        let index = entries.iter().copied().collect();
        Ok(ValueCache {
            dir: dir.to_path_buf(),
            key: Zeroizing::new(key),
            entries: RefCell::new(entries),
            index: RefCell::new(index),
            existing: HashMap::new(),
            changed: RefCell::new(false),
        })
    }

    /// The sealed values now at their places (from the file being replaced):
    /// `(namespace, name, item key) → sealed text`.
    pub fn with_existing(mut self, existing: HashMap<(String, String, String), String>) -> Self {
        self.existing = existing;
        self
    }

    fn mac(&self, binding: &Binding, plaintext: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(CONTEXT);
        for part in [
            binding.scope().as_str(),
            binding.namespace().unwrap_or_default(),
            binding.name().unwrap_or_default(),
            binding.key(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(plaintext);
        mac.finalize().into_bytes().into()
    }

    /// Writes the cache back (atomically, mode 0600), when it changed.
    pub fn save(&self) -> Result<(), Error> {
        if !*self.changed.borrow() {
            return Ok(());
        }
        let entries = self.entries.borrow();
        let skip = entries.len().saturating_sub(MAX_ENTRIES);
        let mut text = String::with_capacity((entries.len() - skip) * 130);
        for (a, b) in entries.iter().skip(skip) {
            text.push_str(&hex::encode(a));
            text.push(' ');
            text.push_str(&hex::encode(b));
            text.push('\n');
        }
        files::write_atomic(
            &self.dir.join("values"),
            text.as_bytes(),
            NewFileMode::Private,
        )
    }
}

impl Memory for ValueCache {
    fn recall(
        &self,
        place: (&str, &str, &str),
        binding: &Binding,
        recipients: &BTreeSet<KeyId>,
        plaintext: &[u8],
    ) -> Option<String> {
        let (namespace, name, key) = place;
        let sealed =
            self.existing
                .get(&(namespace.to_string(), name.to_string(), key.to_string()))?;
        let envelope = Envelope::parse(sealed).ok()?;
        let ids: BTreeSet<KeyId> = envelope.key_ids().into_iter().collect();
        if envelope.binding() != binding || ids != *recipients {
            return None;
        }
        let known = self.index.borrow().get(&sha256(sealed)).copied()?;
        (known == self.mac(binding, plaintext)).then(|| sealed.trim().to_string())
    }

    fn remember(&self, binding: &Binding, plaintext: &[u8], sealed: &str) {
        let id = sha256(sealed);
        let mac = self.mac(binding, plaintext);
        if self.index.borrow().get(&id) == Some(&mac) {
            return;
        }
        self.index.borrow_mut().insert(id, mac);
        self.entries.borrow_mut().push((id, mac));
        *self.changed.borrow_mut() = true;
    }
}

/// The sealed values of the SealedSecrets of `file`, by place:
/// `(namespace, name, item key) → sealed text` (a SealedSecret without a
/// namespace is at `namespace`, else at ""). Documents that do not read as
/// SealedSecrets are skipped: they have nothing to keep.
pub fn existing_values(
    file: &crate::input::File,
    namespace: Option<&str>,
) -> HashMap<(String, String, String), String> {
    let mut out = HashMap::new();
    let Ok(docs) = crate::input::documents(file) else {
        return out;
    };
    for doc in docs.iter().filter(|d| d.kind() == Some("SealedSecret")) {
        let Ok(sealed) = crate::open::read_sealed(doc) else {
            continue;
        };
        let Some(name) = sealed.metadata.name.clone() else {
            continue;
        };
        let ns = sealed
            .metadata
            .namespace
            .clone()
            .or_else(|| namespace.map(str::to_string))
            .unwrap_or_default();
        for (key, text) in sealed.spec.encrypted_data {
            out.insert((ns.clone(), name.clone(), key), text);
        }
    }
    out
}

/// Creates `dir` (and its parents) with mode 0700 for the last part.
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_crypto::{Identity, Scope};

    #[test]
    fn keeps_only_what_it_sealed_with_the_same_plaintext_place_and_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = Identity::generate();
        let other = Identity::generate();
        let binding = Binding::new(Scope::Strict, "prod", "db", "password");
        let sealed = gitseal_crypto::seal(b"hunter2", &[id.recipient().clone()], &binding)
            .expect("seals")
            .to_string();
        let place = ("prod", "db", "password");
        let ids: BTreeSet<KeyId> = [id.key_id()].into();
        let existing: HashMap<_, _> = [(
            ("prod".to_string(), "db".to_string(), "password".to_string()),
            sealed.clone(),
        )]
        .into();
        let cache_dir = dir.path().join("cache");
        let cache = ValueCache::open(&cache_dir)
            .expect("opens")
            .with_existing(existing.clone());
        // Unknown to the cache: sealed anew.
        assert_eq!(cache.recall(place, &binding, &ids, b"hunter2"), None);
        cache.remember(&binding, b"hunter2", &sealed);
        cache.save().expect("saves");
        // Another run, from disk.
        let cache = ValueCache::open(&cache_dir)
            .expect("opens")
            .with_existing(existing);
        assert_eq!(
            cache.recall(place, &binding, &ids, b"hunter2"),
            Some(sealed.clone())
        );
        // Near misses: another plaintext, other keys, another binding.
        assert_eq!(cache.recall(place, &binding, &ids, b"hunter3"), None);
        let both: BTreeSet<KeyId> = [id.key_id(), other.key_id()].into();
        assert_eq!(cache.recall(place, &binding, &both, b"hunter2"), None);
        let moved = Binding::new(Scope::Strict, "prod", "api", "password");
        assert_eq!(cache.recall(place, &moved, &ids, b"hunter2"), None);
        // The files are private and hold no plaintext.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&cache_dir), 0o700);
            assert_eq!(mode(&cache_dir.join("key")), 0o600);
            assert_eq!(mode(&cache_dir.join("values")), 0o600);
        }
        let values = std::fs::read_to_string(cache_dir.join("values")).expect("values");
        assert!(!values.contains("hunter2") && !values.contains(&hex::encode("hunter2")));
    }
}
