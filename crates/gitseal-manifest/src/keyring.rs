//! The keyring file: which public keys each environment seals to.
//!
//! A keyring holds only public keys, so it is committed next to the
//! manifests. `gitseal seal --keyring FILE --env prod` seals to the prod
//! recipients with the prod default scope; `gitseal verify` checks that every
//! sealed value in the repository names a key id found here;
//! `gitseal fetch-key` writes a controller's current key into it. The
//! default location in a repository is [`DEFAULT_PATH`]; `keys.example` at
//! the top of the gitseal repository is a commented example.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gitseal_crypto::{KeyId, Recipient, Scope};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a repository keeps its keyring, relative to its root.
pub const DEFAULT_PATH: &str = ".gitseal/keys.yaml";

/// A parsed keyring file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Keyring {
    /// Format version; this build reads version 1.
    pub version: u32,
    /// Environment used when `--env` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_environment: Option<String>,
    /// Environment name → its keys and settings.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    /// Settings for `gitseal verify`.
    #[serde(default, skip_serializing_if = "VerifyConfig::is_empty")]
    pub verify: VerifyConfig,
}

/// One environment (a cluster, or a set of clusters sharing keys).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    /// Public keys every value for this environment is sealed to (the
    /// cluster's, a disaster-recovery cluster's, an offline break-glass key…).
    pub recipients: Vec<Recipient>,
    /// Default scope when sealing for this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Where the controller publishes its public keys, for `gitseal fetch-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerEndpoint>,
}

/// How to reach a controller's published public keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerEndpoint {
    /// Base URL of the controller's HTTP server (`GET /v1/keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// kubeconfig context to reach the cluster through the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Namespace of the controller (default `gitseal-system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Service name of the controller (default `gitseal-controller`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// `gitseal verify` settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyConfig {
    /// Glob patterns (relative to the repository root) that verify skips.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
}

impl VerifyConfig {
    fn is_empty(&self) -> bool {
        self.ignore.is_empty()
    }
}

impl Keyring {
    /// Reads and parses a keyring file.
    pub fn load(path: &Path) -> Result<Keyring, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Keyring::from_yaml(&text, &path.display().to_string())
    }

    /// Parses keyring text; `origin` names it in errors (usually the path).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Keyring, Error> {
        let keyring: Keyring = serde_yaml::from_str(text).map_err(|e| Error::Keyring {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        if keyring.version != 1 {
            return Err(Error::Keyring {
                origin: origin.to_string(),
                message: format!(
                    "version {} is not supported; this gitseal reads version 1",
                    keyring.version
                ),
            });
        }
        for (name, env) in &keyring.environments {
            if env.recipients.is_empty() {
                return Err(Error::Keyring {
                    origin: origin.to_string(),
                    message: format!("environment {name:?} has no recipients"),
                });
            }
        }
        if let Some(default) = &keyring.default_environment {
            if !keyring.environments.contains_key(default) {
                return Err(Error::Keyring {
                    origin: origin.to_string(),
                    message: format!(
                        "defaultEnvironment {default:?} is not one of the environments"
                    ),
                });
            }
        }
        Ok(keyring)
    }

    /// The keyring as YAML (for writing it back after `fetch-key`).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_value(self)
            .map_err(|e| Error::Output(e.to_string()))
            .and_then(|v| crate::yaml::to_string(&v))
            .unwrap_or_default()
    }

    /// The environment `name`, or the default one when `name` is `None`.
    pub fn environment(&self, name: Option<&str>) -> Result<(&str, &Environment), Error> {
        let name = match name.or(self.default_environment.as_deref()) {
            Some(n) => n,
            None if self.environments.len() == 1 => self
                .environments
                .keys()
                .next()
                .map(String::as_str)
                .unwrap_or_default(),
            None => return Err(self.unknown_environment("(none given)")),
        };
        self.environments
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| self.unknown_environment(name))
    }

    fn unknown_environment(&self, name: &str) -> Error {
        Error::UnknownEnvironment {
            name: name.to_string(),
            known: self.environments.keys().cloned().collect(),
        }
    }

    /// Every key id of every environment.
    pub fn key_ids(&self) -> BTreeSet<KeyId> {
        self.environments
            .values()
            .flat_map(|e| e.recipients.iter().map(Recipient::key_id))
            .collect()
    }

    /// Paths `gitseal verify` skips.
    pub fn verify_ignore(&self) -> &[String] {
        &self.verify.ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../keys.example");

    #[test]
    fn keys_example_parses() {
        let k =
            Keyring::from_yaml(EXAMPLE, "keys.example").expect("keys.example is a valid keyring");
        assert!(k.environments.len() >= 2);
        let (name, env) = k.environment(None).expect("default environment");
        assert_eq!(Some(name), k.default_environment.as_deref());
        assert!(!env.recipients.is_empty());
        assert!(!k.key_ids().is_empty());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = Keyring::from_yaml("version: 2\n", "k.yaml").expect_err("v2");
        assert!(
            err.to_string().contains("version 2 is not supported"),
            "{err}"
        );
        let err = Keyring::from_yaml(
            "version: 1\nenvironments:\n  dev:\n    recipients: []\n",
            "k.yaml",
        )
        .expect_err("empty");
        assert!(
            err.to_string().contains("\"dev\" has no recipients"),
            "{err}"
        );
        let err = Keyring::from_yaml(
            "version: 1\nenvironments:\n  dev:\n    recipients: [age1nope]\n",
            "k.yaml",
        )
        .expect_err("bad recipient");
        assert!(err.to_string().contains("k.yaml"), "{err}");
        assert!(err.to_string().contains("invalid recipient"), "{err}");
        let err =
            Keyring::from_yaml("version: 1\nbogus: 1\n", "k.yaml").expect_err("unknown field");
        assert!(err.to_string().contains("bogus"), "{err}");
        let k = Keyring::from_yaml(EXAMPLE, "keys.example").expect("parse");
        let err = k.environment(Some("nope")).expect_err("unknown env");
        assert!(matches!(err, Error::UnknownEnvironment { .. }));
        assert!(
            err.to_string().contains("prod"),
            "lists the known environments: {err}"
        );
    }

    #[test]
    fn round_trips_through_yaml() {
        let k = Keyring::from_yaml(EXAMPLE, "keys.example").expect("parse");
        let again = Keyring::from_yaml(&k.to_yaml(), "again").expect("reparse");
        assert_eq!(k, again);
    }
}
