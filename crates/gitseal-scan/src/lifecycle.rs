//! Key lifecycle, checked offline: with what the keyring says about keys
//! and environments, `verify` reports sealed values that are sealed to a
//! retired key, that miss a recipient their environment requires (say, the
//! disaster-recovery key), or that were sealed for another environment
//! than their path maps to. No private key is needed: every sealed value
//! names the key ids it is sealed to.
//!
//! The keyring is read by the CLI (`gitseal-manifest`); this module gets
//! plain facts ([`Lifecycle`]) and is the one place the policy lives, for
//! `verify` and for `reseal --all` alike ([`Lifecycle::problems`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gitseal_crypto::{Envelope, KeyId};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::allow::absolute;
use crate::finding::{escape_control, Rule};
use crate::rules::{line_bounds, Hit};
use crate::Error;

/// The keys of one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvironmentKeys {
    /// Keys its values may be sealed to (recipients and previous keys).
    pub keys: BTreeSet<KeyId>,
    /// Keys each of its values must be sealed to.
    pub required: BTreeSet<KeyId>,
}

/// What the keyring says, for lifecycle checks.
#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    rules: Vec<(GlobSet, String, String)>,
    environments: BTreeMap<String, EnvironmentKeys>,
    retired: BTreeMap<KeyId, Option<String>>,
    root: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

/// One lifecycle problem of a sealed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Sealed to a retired key.
    Retired {
        /// The key.
        key: KeyId,
        /// The keyring's note on it.
        note: Option<String>,
    },
    /// Not sealed to a key its environment requires.
    MissingRequired {
        /// The environment.
        environment: String,
        /// The key it lacks.
        key: KeyId,
    },
    /// Sealed for other environments than the one its path maps to.
    WrongEnvironment {
        /// The path's environment.
        environment: String,
        /// The environments whose keys it is sealed to.
        sealed_for: Vec<String>,
    },
}

impl Problem {
    /// The rule reported for it.
    pub fn rule(&self) -> Rule {
        match self {
            Problem::Retired { .. } => Rule::SealedRetiredKey,
            Problem::MissingRequired { .. } => Rule::SealedMissingRecipient,
            Problem::WrongEnvironment { .. } => Rule::SealedWrongEnvironment,
        }
    }

    /// What is wrong and what to do.
    pub fn message(&self) -> String {
        match self {
            Problem::Retired { key, note } => format!(
                "sealed to key id {key}, which the keyring retires{}: re-seal it (`gitseal reseal --all -i OLD_KEY`)",
                note.as_ref()
                    .map(|n| format!(" ({})", escape_control(n)))
                    .unwrap_or_default()
            ),
            Problem::MissingRequired { environment, key } => format!(
                "not sealed to key id {key}, which environment `{}` requires: re-seal it (`gitseal reseal --all -i KEY`)",
                escape_control(environment)
            ),
            Problem::WrongEnvironment {
                environment,
                sealed_for,
            } => format!(
                "sealed for environment `{}`, but its path maps to `{}`: seal it for `{}` (`gitseal reseal --all -i KEY`)",
                sealed_for
                    .iter()
                    .map(|e| escape_control(e))
                    .collect::<Vec<_>>()
                    .join("`, `"),
                escape_control(environment),
                escape_control(environment)
            ),
        }
    }
}

impl Lifecycle {
    /// An empty policy; path rules are relative to `root` (the repository root).
    pub fn new(root: Option<&Path>) -> Lifecycle {
        let cwd = std::env::current_dir().ok();
        Lifecycle {
            root: root.map(|r| absolute(r, cwd.as_deref())),
            cwd,
            ..Lifecycle::default()
        }
    }

    /// Files matching `patterns` (one keyring glob, as `gitseal_manifest`
    /// expands it) belong to `environment`; earlier rules win.
    pub fn add_path_rule(
        &mut self,
        glob: &str,
        patterns: &[String],
        environment: &str,
    ) -> Result<(), Error> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let g = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Glob {
                    pattern: glob.to_string(),
                    message: e.kind().to_string(),
                })?;
            b.add(g);
        }
        let set = b.build().map_err(|e| Error::Glob {
            pattern: glob.to_string(),
            message: e.to_string(),
        })?;
        self.rules
            .push((set, glob.to_string(), environment.to_string()));
        Ok(())
    }

    /// Declares an environment's keys.
    pub fn add_environment(&mut self, name: &str, keys: EnvironmentKeys) {
        self.environments.insert(name.to_string(), keys);
    }

    /// Declares a retired key.
    pub fn retire(&mut self, key: KeyId, note: Option<String>) {
        self.retired.insert(key, note);
    }

    /// Whether there is anything to check.
    pub fn is_empty(&self) -> bool {
        self.retired.is_empty()
            && (self.rules.is_empty() || self.environments.is_empty())
            && !self.environments.values().any(|e| !e.required.is_empty())
    }

    /// The environment of a path: the first matching rule, else the only
    /// environment. `repo_path` says the path is already relative to the
    /// repository root (git sources); else it is as walked.
    pub fn environment_of(&self, path: &str, repo_path: bool) -> Option<&str> {
        let rel = if repo_path {
            path.trim_start_matches("./").to_string()
        } else {
            let abs = absolute(Path::new(path), self.cwd.as_deref());
            match self.root.as_deref().and_then(|r| abs.strip_prefix(r).ok()) {
                Some(rel) => rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
                None => path.trim_start_matches("./").to_string(),
            }
        };
        if let Some((_, _, env)) = self.rules.iter().find(|(set, _, _)| set.is_match(&rel)) {
            return Some(env.as_str());
        }
        match self.environments.len() {
            1 => self.environments.keys().next().map(String::as_str),
            _ => None,
        }
    }

    /// The problems of a value sealed to `ids` in a file of `environment`.
    pub fn problems(&self, environment: Option<&str>, ids: &[KeyId]) -> Vec<Problem> {
        let mut out: Vec<Problem> = ids
            .iter()
            .filter_map(|id| {
                self.retired.get(id).map(|note| Problem::Retired {
                    key: *id,
                    note: note.clone(),
                })
            })
            .collect();
        let Some(name) = environment else {
            return out;
        };
        let Some(env) = self.environments.get(name) else {
            return out;
        };
        if ids.iter().any(|id| env.keys.contains(id)) {
            out.extend(env.required.iter().filter(|r| !ids.contains(r)).map(|r| {
                Problem::MissingRequired {
                    environment: name.to_string(),
                    key: *r,
                }
            }));
        } else {
            let sealed_for: Vec<String> = self
                .environments
                .iter()
                .filter(|(_, e)| ids.iter().any(|id| e.keys.contains(id)))
                .map(|(n, _)| n.clone())
                .collect();
            // Keys of no environment are the unknown-key rule's business.
            if !sealed_for.is_empty() {
                out.push(Problem::WrongEnvironment {
                    environment: name.to_string(),
                    sealed_for,
                });
            }
        }
        out
    }

    /// Checks every sealed value (`gs1:…`) of one manifest file.
    pub(crate) fn scan(&self, path: &str, repo_path: bool, data: &[u8], out: &mut Vec<Hit>) {
        if memchr::memmem::find(data, b"gs1:").is_none() {
            return;
        }
        let environment = self.environment_of(path, repo_path);
        for at in memchr::memmem::find_iter(data, b"gs1:") {
            let end = data[at + 4..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
                .map_or(data.len(), |n| at + 4 + n);
            let Ok(text) = std::str::from_utf8(&data[at..end]) else {
                continue;
            };
            // Values that do not parse are the invalid-value rule's business.
            let Ok(envelope) = Envelope::parse(text) else {
                continue;
            };
            let (line_start, line_end) = line_bounds(data, at);
            let start = line_start
                + data[line_start..at]
                    .iter()
                    .take_while(|b| matches!(b, b' ' | b'\t' | b'-' | b'"'))
                    .count();
            for problem in self.problems(environment, &envelope.key_ids()) {
                out.push(Hit {
                    rule: problem.rule(),
                    start,
                    span: (start, line_end.max(start)),
                    message: format!(
                        "item `{}`: {}",
                        escape_control(envelope.binding().key()),
                        problem.message()
                    ),
                    secret: text.as_bytes().to_vec(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> KeyId {
        KeyId::from_bytes([n; 8])
    }

    fn policy() -> Lifecycle {
        let mut lc = Lifecycle::new(Some(Path::new("/repo")));
        lc.add_path_rule("apps/prod/**", &["apps/prod/**".into()], "prod")
            .expect("glob");
        lc.add_environment(
            "prod",
            EnvironmentKeys {
                keys: [id(1), id(2), id(3)].into(),
                required: [id(2)].into(),
            },
        );
        lc.add_environment(
            "dev",
            EnvironmentKeys {
                keys: [id(4)].into(),
                required: BTreeSet::new(),
            },
        );
        lc.retire(id(9), Some("leaked".into()));
        lc
    }

    #[test]
    fn each_problem_and_its_near_miss() {
        let lc = policy();
        let prod = lc.environment_of("apps/prod/db.yaml", true);
        assert_eq!(prod, Some("prod"));
        assert_eq!(lc.environment_of("apps/production/db.yaml", true), None);
        // Fine: prod keys with the required one (a previous key is fine too).
        assert!(lc.problems(prod, &[id(1), id(2)]).is_empty());
        assert!(lc.problems(prod, &[id(3), id(2)]).is_empty());
        // Missing the required key.
        assert_eq!(
            lc.problems(prod, &[id(1)]),
            [Problem::MissingRequired {
                environment: "prod".into(),
                key: id(2)
            }]
        );
        // Sealed for dev, found under prod; near miss: dev's key plus a prod key is prod's.
        assert_eq!(
            lc.problems(prod, &[id(4)]),
            [Problem::WrongEnvironment {
                environment: "prod".into(),
                sealed_for: vec!["dev".into()]
            }]
        );
        assert_eq!(lc.problems(prod, &[id(4), id(1), id(2)]), []);
        // Retired, anywhere; near miss: a key that is merely unknown.
        assert_eq!(
            lc.problems(None, &[id(9)]),
            [Problem::Retired {
                key: id(9),
                note: Some("leaked".into())
            }]
        );
        assert_eq!(lc.problems(None, &[id(8)]), []);
        assert_eq!(
            lc.problems(prod, &[id(8)]),
            [],
            "unknown keys are another rule's"
        );
    }
}
