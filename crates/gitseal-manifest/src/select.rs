//! Which recipients and scope a command seals to: one rule for `seal`,
//! `edit`, `reseal` and `--merge-into`, so the same file is always sealed
//! for the same environment whatever command touches it.
//!
//! Recipients given with `-r` are used as they are when nothing else is
//! asked for. Otherwise the keyring (`--keyring FILE`, else the one
//! [`keyring::discover`] finds from the repository root) chooses the
//! environment: `--env NAME`, else the first path rule matching the file
//! the sealed values are for, else its `defaultEnvironment`, else its only
//! environment; `-r` recipients are added to the environment's.

use std::fmt;
use std::path::{Path, PathBuf};

use gitseal_crypto::{KeyId, Recipient, Scope};

use crate::keyring::{self, Keyring, Reason, DEFAULT_PATH};
use crate::Error;

/// A loaded keyring and the root its path rules are relative to.
#[derive(Clone, Debug)]
pub struct LoadedKeyring {
    /// The keyring file.
    pub path: PathBuf,
    /// The repository root (path rules are relative to it), when known.
    pub root: Option<PathBuf>,
    /// The keyring.
    pub keyring: Keyring,
}

impl LoadedKeyring {
    /// Loads `path` (`--keyring`); its root is the directory holding
    /// `.gitseal/` when the file is a `.gitseal/keys.yaml`, else the
    /// repository root of `start`.
    pub fn load(path: &Path, start: &Path) -> Result<LoadedKeyring, Error> {
        let keyring = Keyring::load(path)?;
        let normalized = keyring::normalize(path);
        let root = if normalized.ends_with(DEFAULT_PATH) {
            normalized
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
        } else {
            keyring::find_root(start)
        };
        Ok(LoadedKeyring {
            path: path.to_path_buf(),
            root,
            keyring,
        })
    }

    /// The repository's keyring for `start`, if it has one (see
    /// [`keyring::discover`]).
    pub fn discover(start: &Path) -> Result<Option<LoadedKeyring>, Error> {
        let Some(found) = keyring::discover(start) else {
            return Ok(None);
        };
        let keyring = Keyring::load(&found.path)?;
        Ok(Some(LoadedKeyring {
            path: found.path,
            root: Some(found.root),
            keyring,
        }))
    }

    /// `file` relative to the root, for path rules.
    pub fn relative(&self, file: &Path) -> Option<String> {
        keyring::relative_to(self.root.as_deref()?, file)
    }
}

/// Chooses recipients for the files of one command run.
#[derive(Clone, Debug)]
pub struct Selector {
    given: Vec<Recipient>,
    env: Option<String>,
    keyring: Option<LoadedKeyring>,
}

/// The environment a [`Target`] seals for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// Its name.
    pub name: String,
    /// Why it was chosen.
    pub reason: Reason,
    /// The keyring file it is from.
    pub keyring: PathBuf,
    /// Key ids its values must be sealed to (`required` recipients).
    pub required: Vec<KeyId>,
}

/// What to seal to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Every value is sealed to all of these (no key twice).
    pub recipients: Vec<Recipient>,
    /// The environment's default scope.
    pub scope: Option<Scope>,
    /// The environment, when a keyring chose one.
    pub environment: Option<Chosen>,
}

impl Target {
    /// The key ids of the recipients, sorted.
    pub fn key_ids(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self.recipients.iter().map(Recipient::key_id).collect();
        ids.sort_unstable();
        ids
    }
}

impl fmt::Display for Target {
    /// `environment "prod" (apps/prod/db.yaml matches apps/prod/** in
    /// .gitseal/keys.yaml), key ids 1a2b…, 3c4d…`, or `key ids …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(env) = &self.environment {
            write!(
                f,
                "environment {:?} ({} in {}), ",
                env.name,
                env.reason,
                shown(&env.keyring)
            )?;
        }
        let ids: Vec<String> = self.key_ids().iter().map(KeyId::to_string).collect();
        write!(f, "key id(s) {}", ids.join(", "))
    }
}

/// A path as short as it reads: relative to the current directory when
/// that takes at most three `..`, else absolute.
fn shown(path: &Path) -> String {
    let abs = keyring::normalize(path);
    let Ok(cwd) = std::env::current_dir() else {
        return abs.display().to_string();
    };
    let cwd = keyring::normalize(&cwd);
    let common = abs
        .components()
        .zip(cwd.components())
        .take_while(|(a, b)| a == b)
        .count();
    let up = cwd.components().count() - common;
    if common == 0 || up > 3 {
        return abs.display().to_string();
    }
    let mut rel = PathBuf::new();
    for _ in 0..up {
        rel.push("..");
    }
    rel.extend(abs.components().skip(common));
    rel.display().to_string()
}

impl Selector {
    /// `given` (`-r`), `keyring` (`--keyring`) and `env` (`--env`) as the
    /// user gave them; `start` is where to look for the repository's
    /// keyring (the first file worked on, or the current directory). The
    /// keyring is only looked for when `-r` alone does not say it all.
    pub fn new(
        given: Vec<Recipient>,
        keyring: Option<&Path>,
        env: Option<&str>,
        start: &Path,
    ) -> Result<Selector, Error> {
        let loaded = match keyring {
            Some(path) => Some(LoadedKeyring::load(path, start)?),
            None if given.is_empty() || env.is_some() => LoadedKeyring::discover(start)?,
            None => None,
        };
        if env.is_some() && loaded.is_none() {
            return Err(Error::Argument(format!(
                "--env needs a keyring, and there is no {DEFAULT_PATH} at the repository root \
                 of {}; pass --keyring FILE, or create one (see keys.example)",
                keyring::normalize(start).display()
            )));
        }
        Ok(Selector {
            given,
            env: env.map(str::to_string),
            keyring: loaded,
        })
    }

    /// A selector for recipients only (no keyring).
    pub fn recipients(given: Vec<Recipient>) -> Selector {
        Selector {
            given,
            env: None,
            keyring: None,
        }
    }

    /// The keyring in use, if any.
    pub fn keyring(&self) -> Option<&LoadedKeyring> {
        self.keyring.as_ref()
    }

    /// What to seal to for a file at `place` (where the sealed values will
    /// live; `None`: no path, e.g. standard output).
    pub fn target(&self, place: Option<&Path>) -> Result<Target, Error> {
        let mut recipients: Vec<Recipient> = Vec::new();
        let mut push = |r: &Recipient| {
            if !recipients.iter().any(|have| have.key_id() == r.key_id()) {
                recipients.push(r.clone());
            }
        };
        self.given.iter().for_each(&mut push);
        let Some(loaded) = &self.keyring else {
            return Ok(Target {
                recipients,
                scope: None,
                environment: None,
            });
        };
        let rel = place.and_then(|p| loaded.relative(p));
        let choice = loaded.keyring.choose(self.env.as_deref(), rel.as_deref())?;
        choice.environment.recipients().iter().for_each(push);
        Ok(Target {
            recipients,
            scope: choice.environment.scope,
            environment: Some(Chosen {
                name: choice.name.to_string(),
                reason: choice.reason,
                keyring: loaded.path.clone(),
                required: choice.environment.required_ids(),
            }),
        })
    }

    /// The one target for several files: they must all be for the same
    /// environment (else say which differ and ask for `--env`).
    pub fn target_for_all(&self, places: &[&Path]) -> Result<Target, Error> {
        let Some((first, rest)) = places.split_first() else {
            return self.target(None);
        };
        let target = self.target(Some(first))?;
        for place in rest {
            let other = self.target(Some(place))?;
            if other.environment.as_ref().map(|e| &e.name)
                != target.environment.as_ref().map(|e| &e.name)
            {
                let name = |t: &Target| {
                    t.environment
                        .as_ref()
                        .map_or_else(|| "(none)".to_string(), |e| format!("{:?}", e.name))
                };
                return Err(Error::Argument(format!(
                    "{} is for environment {} but {} is for environment {}; seal them \
                     separately, or pass --env NAME",
                    first.display(),
                    name(&target),
                    place.display(),
                    name(&other)
                )));
            }
        }
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitseal_crypto::Identity;

    #[test]
    fn recipients_alone_skip_the_keyring_and_keyring_paths_choose() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let (dev, prod, extra) = (
            Identity::generate().recipient().clone(),
            Identity::generate().recipient().clone(),
            Identity::generate().recipient().clone(),
        );
        std::fs::create_dir_all(root.join(".gitseal")).expect("mkdir");
        std::fs::create_dir_all(root.join("apps/prod")).expect("mkdir");
        std::fs::write(
            root.join(DEFAULT_PATH),
            format!(
                "version: 1\ndefaultEnvironment: dev\npaths: [{{glob: apps/prod/**, environment: prod}}]\n\
                 environments:\n  dev: {{recipients: [{dev}]}}\n  prod: {{recipients: [{prod}], scope: namespace}}\n"
            ),
        )
        .expect("write");
        let file = root.join("apps/prod/db.yaml");

        // -r alone: exactly those, no keyring.
        let only = Selector::new(vec![extra.clone()], None, None, &file).expect("selector");
        assert!(only.keyring().is_none());
        let t = only.target(Some(&file)).expect("target");
        assert_eq!((t.recipients, t.environment), (vec![extra.clone()], None));

        // Nothing given: the repository's keyring, by path.
        let auto = Selector::new(vec![], None, None, &file).expect("selector");
        let t = auto.target(Some(&file)).expect("target");
        assert_eq!(t.recipients, vec![prod.clone()]);
        assert_eq!(t.scope, Some(Scope::Namespace));
        let env = t.environment.clone().expect("environment");
        assert_eq!(env.name, "prod");
        assert!(
            t.to_string()
                .contains("apps/prod/db.yaml matches apps/prod/**"),
            "{t}"
        );
        // Elsewhere (or no path): the default environment.
        let t = auto.target(None).expect("target");
        assert_eq!(t.recipients, vec![dev.clone()]);

        // -r with --env: both, each key once.
        let both = Selector::new(vec![extra.clone(), prod.clone()], None, Some("prod"), &file)
            .expect("selector");
        let t = both.target(None).expect("target");
        assert_eq!(t.recipients, vec![extra, prod]);

        // Files of two environments at once need --env.
        let err = auto
            .target_for_all(&[&file, &root.join("other.yaml")])
            .expect_err("two environments");
        assert!(err.to_string().contains("pass --env NAME"), "{err}");

        // --env without any keyring says where it looked.
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let err = Selector::new(vec![], None, Some("prod"), elsewhere.path()).expect_err("none");
        assert!(err.to_string().contains("--env needs a keyring"), "{err}");
    }
}
