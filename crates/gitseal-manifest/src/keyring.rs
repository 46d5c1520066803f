//! The keyring file: which public keys each environment seals to, which
//! paths of the repository belong to which environment, and which keys are
//! retired.
//!
//! A keyring holds only public keys, so it is committed next to the
//! manifests, at [`DEFAULT_PATH`] from the repository root. Every command
//! finds it the same way ([`discover`]): `seal`, `edit` and `reseal` seal to
//! the recipients of the environment a file's path maps to, `verify` checks
//! that every sealed value names a known key and, offline, that none is
//! sealed to a retired key, misses a recipient its environment requires or
//! was sealed for another environment than its path maps to; `fetch-key`
//! writes a controller's active key into it ([`Keyring::apply_published`]).
//! `keys.example` at the top of the gitseal repository documents every field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use gitseal_crypto::{KeyId, Recipient, Scope};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::files::{self, NewFileMode};
use crate::Error;

/// Where a repository keeps its keyring, relative to its root.
pub const DEFAULT_PATH: &str = ".gitseal/keys.yaml";

/// A parsed keyring file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Keyring {
    /// Format version; this build reads version 1.
    pub version: u32,
    /// Environment used when neither `--env` nor a path rule names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_environment: Option<String>,
    /// Path rules, first match wins: a file whose path (relative to the
    /// repository root) matches `glob` belongs to `environment`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathRule>,
    /// Environment name → its keys and settings.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    /// Keys no value may stay sealed to (a leaked key, a cluster that is
    /// gone): `verify` reports values sealed to them and `reseal --all`
    /// re-seals those values. Recipients or key ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<KeyEntry>,
    /// Settings for `gitseal verify`.
    #[serde(default, skip_serializing_if = "VerifyConfig::is_empty")]
    pub verify: VerifyConfig,
}

/// A path rule: files matching `glob` belong to `environment`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathRule {
    /// A glob relative to the repository root (`apps/prod/**`); `*` stays
    /// inside a directory, `**` crosses directories, a pattern without `/`
    /// matches a name at any depth, and a directory matches everything below it.
    pub glob: String,
    /// The environment those files are sealed for.
    pub environment: String,
}

/// One environment (a cluster, or a set of clusters sharing keys).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    /// Public keys every new value for this environment is sealed to (the
    /// cluster's, a disaster-recovery cluster's, an offline break-glass
    /// key…), each optionally marked `controller` or `required`.
    pub recipients: Vec<KeyEntry>,
    /// Older keys the environment's controller still opens with (written by
    /// `fetch-key --write` when the controller's key changes): values sealed
    /// to them are fine, new values are not sealed to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<KeyEntry>,
    /// Default scope when sealing for this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Where the controller publishes its public keys, for `gitseal fetch-key --env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerEndpoint>,
}

/// How to reach a controller's published public keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerEndpoint {
    /// Base URL of the controller's HTTP server (`GET /v1/keys`); `https://`,
    /// or `http://` to a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// kubeconfig context of the cluster, for the Kubernetes API. A
    /// different `--context` is refused, the current context is never
    /// used in its place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Namespace of the controller (default `gitseal-system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Service name of the controller (default `gitseal-controller`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Port of the Service, by name or number (default `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Read this published ConfigMap instead of going through the service
    /// proxy (usually `gitseal-public-keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
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

/// A key named in the keyring: a recipient, or (for retired and previous
/// keys, which nothing is sealed to) just its key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// The public key (`age1…`).
    Recipient(Recipient),
    /// Only the key id (16 hex digits).
    KeyId(KeyId),
}

impl KeyRef {
    /// The key id.
    pub fn key_id(&self) -> KeyId {
        match self {
            KeyRef::Recipient(r) => r.key_id(),
            KeyRef::KeyId(id) => *id,
        }
    }

    /// The recipient, when the keyring names the public key.
    pub fn recipient(&self) -> Option<&Recipient> {
        match self {
            KeyRef::Recipient(r) => Some(r),
            KeyRef::KeyId(_) => None,
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::Recipient(r) => r.fmt(f),
            KeyRef::KeyId(id) => id.fmt(f),
        }
    }
}

impl FromStr for KeyRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return s.parse().map(KeyRef::KeyId).map_err(|e| e.to_string());
        }
        s.parse().map(KeyRef::Recipient).map_err(|e| e.to_string())
    }
}

/// One key of a list in the keyring, with its marks. Written as the bare
/// key (`- age1…`) when it has none, else as a mapping
/// (`- {recipient: age1…, required: true, note: …}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key.
    pub key: KeyRef,
    /// Published by the environment's controller: `fetch-key --write`
    /// replaces it when the controller's active key changes.
    pub controller: bool,
    /// Every value sealed for the environment must be sealed to this key
    /// (e.g. the disaster-recovery cluster's); `verify` reports values
    /// that are not.
    pub required: bool,
    /// A note for people (kept when gitseal rewrites the keyring; comments are not).
    pub note: Option<String>,
}

impl KeyEntry {
    /// A bare recipient, unmarked.
    pub fn recipient(recipient: Recipient) -> Self {
        KeyEntry {
            key: KeyRef::Recipient(recipient),
            controller: false,
            required: false,
            note: None,
        }
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }
}

impl Serialize for KeyEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        if !self.controller && !self.required && self.note.is_none() {
            return s.collect_str(&self.key);
        }
        let mut map = s.serialize_map(None)?;
        match &self.key {
            KeyRef::Recipient(r) => map.serialize_entry("recipient", r)?,
            KeyRef::KeyId(id) => map.serialize_entry("keyId", id)?,
        }
        if self.controller {
            map.serialize_entry("controller", &true)?;
        }
        if self.required {
            map.serialize_entry("required", &true)?;
        }
        if let Some(note) = &self.note {
            map.serialize_entry("note", note)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for KeyEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = KeyEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a recipient (age1…), a key id (16 hex digits), or a mapping with \
                     recipient or keyId and controller, required, note",
                )
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyEntry, E> {
                let key = v.parse().map_err(E::custom)?;
                Ok(KeyEntry {
                    key,
                    controller: false,
                    required: false,
                    note: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyEntry, A::Error> {
                let mut key: Option<KeyRef> = None;
                let mut entry = KeyEntry {
                    key: KeyRef::KeyId(KeyId::from_bytes([0; 8])),
                    controller: false,
                    required: false,
                    note: None,
                };
                while let Some(field) = map.next_key::<String>()? {
                    match field.as_str() {
                        "recipient" | "keyId" if key.is_some() => {
                            return Err(de::Error::custom("give either recipient or keyId, once"))
                        }
                        "recipient" => {
                            key = Some(KeyRef::Recipient(map.next_value()?));
                        }
                        "keyId" => key = Some(KeyRef::KeyId(map.next_value()?)),
                        "controller" => entry.controller = map.next_value()?,
                        "required" => entry.required = map.next_value()?,
                        "note" => entry.note = Some(map.next_value()?),
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["recipient", "keyId", "controller", "required", "note"],
                            ))
                        }
                    }
                }
                entry.key = key.ok_or_else(|| de::Error::missing_field("recipient"))?;
                Ok(entry)
            }
        }

        d.deserialize_any(EntryVisitor)
    }
}

impl Environment {
    /// The recipients new values are sealed to, in order.
    pub fn recipients(&self) -> Vec<Recipient> {
        self.recipients
            .iter()
            .filter_map(|e| e.key.recipient().cloned())
            .collect()
    }

    /// Key ids every value of the environment must be sealed to.
    pub fn required_ids(&self) -> Vec<KeyId> {
        self.recipients
            .iter()
            .filter(|e| e.required)
            .map(KeyEntry::key_id)
            .collect()
    }

    /// Key ids values of this environment may be sealed to: its recipients
    /// and its previous keys.
    pub fn key_ids(&self) -> BTreeSet<KeyId> {
        self.recipients
            .iter()
            .chain(&self.previous)
            .map(KeyEntry::key_id)
            .collect()
    }
}

/// Why an environment was chosen (printed by the commands).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `--env NAME`.
    Named,
    /// A path rule matched.
    Path {
        /// The path, relative to the repository root.
        path: String,
        /// The rule's glob.
        glob: String,
    },
    /// The keyring's `defaultEnvironment`.
    Default,
    /// The keyring has only this environment.
    Only,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Named => f.write_str("--env"),
            Reason::Path { path, glob } => write!(f, "{path} matches {glob}"),
            Reason::Default => f.write_str("the keyring's defaultEnvironment"),
            Reason::Only => f.write_str("the keyring's only environment"),
        }
    }
}

/// An environment chosen by [`Keyring::choose`].
#[derive(Clone, Debug)]
pub struct Choice<'k> {
    /// Its name.
    pub name: &'k str,
    /// The environment.
    pub environment: &'k Environment,
    /// Why it was chosen.
    pub reason: Reason,
}

/// The glob patterns one keyring pattern stands for (as `verify.ignore`):
/// relative to the root, a pattern without `/` at any depth, a directory
/// with everything below it.
pub fn glob_patterns(pattern: &str) -> Vec<String> {
    let p = pattern.trim();
    let p = p.strip_prefix("./").unwrap_or(p).trim_start_matches('/');
    let p = if p.contains('/') {
        p.trim_end_matches('/').to_string()
    } else {
        format!("**/{p}")
    };
    let mut out = vec![p.clone()];
    if !p.ends_with("**") {
        out.push(format!("{p}/**"));
    }
    out
}

/// Compiles one keyring pattern (see [`glob_patterns`]).
fn compile(pattern: &str) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in glob_patterns(pattern) {
        let glob = GlobBuilder::new(&p)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("glob {pattern:?}: {}", e.kind()))?;
        b.add(glob);
    }
    b.build().map_err(|e| format!("glob {pattern:?}: {e}"))
}

impl Keyring {
    /// Reads and parses a keyring file.
    pub fn load(path: &Path) -> Result<Keyring, Error> {
        let text = files::read_to_string(path)?;
        Keyring::from_yaml(&text, &path.display().to_string())
    }

    /// Parses keyring text; `origin` names it in errors (usually the path).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Keyring, Error> {
        let invalid = |message: String| Error::Keyring {
            origin: origin.to_string(),
            message,
        };
        let keyring: Keyring = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if keyring.version != 1 {
            return Err(invalid(format!(
                "version {} is not supported; this gitseal reads version 1",
                keyring.version
            )));
        }
        keyring.check().map_err(invalid)?;
        Ok(keyring)
    }

    /// Checks what the types cannot say; the message says what to change.
    fn check(&self) -> Result<(), String> {
        let retired: BTreeSet<KeyId> = self.retired_ids();
        for (name, env) in &self.environments {
            if env.recipients.is_empty() {
                return Err(format!("environment {name:?} has no recipients"));
            }
            for entry in &env.recipients {
                let KeyRef::Recipient(r) = &entry.key else {
                    return Err(format!(
                        "environment {name:?}: recipient {} is a key id; recipients need the \
                         public key (age1…) to seal to",
                        entry.key
                    ));
                };
                if retired.contains(&r.key_id()) {
                    return Err(format!(
                        "environment {name:?} seals to key id {}, which is retired; remove it \
                         from the environment's recipients or from retired",
                        r.key_id()
                    ));
                }
            }
            for entry in &env.previous {
                if entry.controller || entry.required {
                    return Err(format!(
                        "environment {name:?}: previous key {} cannot be marked controller or \
                         required (nothing is sealed to it)",
                        entry.key
                    ));
                }
            }
        }
        for entry in &self.retired {
            if entry.controller || entry.required {
                return Err(format!(
                    "retired key {} cannot be marked controller or required",
                    entry.key
                ));
            }
        }
        if let Some(default) = &self.default_environment {
            if !self.environments.contains_key(default) {
                return Err(format!(
                    "defaultEnvironment {default:?} is not one of the environments"
                ));
            }
        }
        for rule in &self.paths {
            if !self.environments.contains_key(&rule.environment) {
                return Err(format!(
                    "paths: {:?} maps to environment {:?}, which is not one of the environments",
                    rule.glob, rule.environment
                ));
            }
            compile(&rule.glob).map_err(|e| format!("paths: {e}"))?;
        }
        Ok(())
    }

    /// The keyring as YAML (for writing it back after `fetch-key`).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_value(self)
            .map_err(|e| Error::Output(e.to_string()))
            .and_then(|v| crate::yaml::to_string(&v))
            .unwrap_or_default()
    }

    /// Writes the keyring to `path` atomically, keeping the comment lines
    /// at the top of the file it replaces (`previous`); other comments are
    /// not kept. What is written is read back first: a keyring that would
    /// not load is never written.
    pub fn save(&self, path: &Path, previous: Option<&str>) -> Result<(), Error> {
        let mut text: String = previous
            .unwrap_or_default()
            .split_inclusive('\n')
            .take_while(|l| {
                let t = l.trim();
                t.is_empty() || t.starts_with('#')
            })
            .collect();
        text.push_str(&self.to_yaml());
        let again = Keyring::from_yaml(&text, &path.display().to_string())?;
        if again != *self {
            return Err(Error::Output(
                "the keyring does not read back as written; nothing written".into(),
            ));
        }
        files::write_atomic(path, text.as_bytes(), NewFileMode::Public)
    }

    /// Chooses the environment: `name` (`--env`) when given, else the first
    /// path rule matching `path` (relative to the repository root), else
    /// `defaultEnvironment`, else the only environment.
    pub fn choose(&self, name: Option<&str>, path: Option<&str>) -> Result<Choice<'_>, Error> {
        let (name, reason) = match (name, path.and_then(|p| self.rule_for(p).map(|r| (p, r)))) {
            (Some(n), _) => (n, Reason::Named),
            (None, Some((p, rule))) => (
                rule.environment.as_str(),
                Reason::Path {
                    path: p.to_string(),
                    glob: rule.glob.clone(),
                },
            ),
            (None, None) => match &self.default_environment {
                Some(d) => (d.as_str(), Reason::Default),
                None if self.environments.len() == 1 => (
                    self.environments
                        .keys()
                        .next()
                        .map(String::as_str)
                        .unwrap_or_default(),
                    Reason::Only,
                ),
                None => {
                    return Err(Error::NoEnvironment {
                        path: path.map(str::to_string),
                        known: self.environments.keys().cloned().collect(),
                    })
                }
            },
        };
        let (name, environment) =
            self.environments
                .get_key_value(name)
                .ok_or_else(|| Error::UnknownEnvironment {
                    name: name.to_string(),
                    known: self.environments.keys().cloned().collect(),
                })?;
        Ok(Choice {
            name,
            environment,
            reason,
        })
    }

    /// The first path rule matching `path` (relative to the repository root).
    pub fn rule_for(&self, path: &str) -> Option<&PathRule> {
        let path = path.strip_prefix("./").unwrap_or(path);
        self.paths
            .iter()
            .find(|r| compile(&r.glob).is_ok_and(|set| set.is_match(path)))
    }

    /// The environment `name`, or the default one when `name` is `None`.
    pub fn environment(&self, name: Option<&str>) -> Result<(&str, &Environment), Error> {
        self.choose(name, None).map(|c| (c.name, c.environment))
    }

    /// Every key id the keyring knows: every environment's recipients and
    /// previous keys, and the retired keys.
    pub fn key_ids(&self) -> BTreeSet<KeyId> {
        self.environments
            .values()
            .flat_map(Environment::key_ids)
            .chain(self.retired_ids())
            .collect()
    }

    /// The retired key ids.
    pub fn retired_ids(&self) -> BTreeSet<KeyId> {
        self.retired.iter().map(KeyEntry::key_id).collect()
    }

    /// The recipient for a key id, from any environment.
    pub fn recipient_of(&self, id: KeyId) -> Option<&Recipient> {
        self.environments
            .values()
            .flat_map(|e| e.recipients.iter().chain(&e.previous))
            .chain(&self.retired)
            .find(|e| e.key_id() == id)
            .and_then(|e| e.key.recipient())
    }

    /// Paths `gitseal verify` skips.
    pub fn verify_ignore(&self) -> &[String] {
        &self.verify.ignore
    }

    /// Writes a controller's published keys into environment `name`
    /// (created when missing). See [`KeyUpdate`] for what changed; the
    /// caller decides whether to save (a new key needs the user's consent).
    ///
    /// [`UpdateMode::Replace`]: the keys this controller published before
    /// (recipients marked `controller`, or whose key id the controller
    /// still publishes) are replaced by the active key, marked
    /// `controller`; the other recipients (disaster recovery, break-glass)
    /// stay where they are. Replaced keys the controller still publishes
    /// become `previous` keys; previous keys it no longer publishes are
    /// dropped. [`UpdateMode::Add`]: the active key is appended, nothing
    /// is removed.
    pub fn apply_published(
        &mut self,
        name: &str,
        published: &[Published],
        mode: UpdateMode,
    ) -> Result<KeyUpdate, Error> {
        let Some(active) = published
            .iter()
            .find(|p| p.active)
            .map(|p| p.recipient.clone())
        else {
            return Err(Error::Argument(
                "the controller publishes no active key".into(),
            ));
        };
        if self.retired_ids().contains(&active.key_id()) {
            return Err(Error::Argument(format!(
                "the controller's active key {} (key id {}) is retired in the keyring; \
                 refusing to seal to it",
                active,
                active.key_id()
            )));
        }
        let published_ids: BTreeSet<KeyId> =
            published.iter().map(|p| p.recipient.key_id()).collect();
        let created = !self.environments.contains_key(name);
        let env = self.environments.entry(name.to_string()).or_default();
        let before: Vec<KeyId> = env.recipients.iter().map(KeyEntry::key_id).collect();
        let is_controllers = |e: &KeyEntry| e.controller || published_ids.contains(&e.key_id());
        let controller_before: Vec<KeyId> = env
            .recipients
            .iter()
            .filter(|e| is_controllers(e))
            .map(KeyEntry::key_id)
            .collect();
        let mut dropped = Vec::new();
        match mode {
            UpdateMode::Add => {
                if !before.contains(&active.key_id()) {
                    env.recipients.push(KeyEntry {
                        controller: true,
                        ..KeyEntry::recipient(active.clone())
                    });
                }
            }
            UpdateMode::Replace => {
                let at = env.recipients.iter().position(is_controllers).unwrap_or(0);
                let mut kept_note = None;
                let mut recipients = Vec::with_capacity(env.recipients.len() + 1);
                let mut replaced = Vec::new();
                for entry in env.recipients.drain(..) {
                    if is_controllers(&entry) {
                        if entry.key_id() == active.key_id() {
                            kept_note = entry.note.clone();
                        } else {
                            replaced.push(entry);
                        }
                    } else {
                        recipients.push(entry);
                    }
                }
                let required = replaced.iter().any(|e| e.required);
                recipients.insert(
                    at.min(recipients.len()),
                    KeyEntry {
                        controller: true,
                        required,
                        note: kept_note,
                        key: KeyRef::Recipient(active.clone()),
                    },
                );
                env.recipients = recipients;
                let mut previous: Vec<KeyEntry> = Vec::new();
                for entry in env
                    .previous
                    .drain(..)
                    .chain(replaced.into_iter().map(|e| KeyEntry {
                        controller: false,
                        required: false,
                        ..e
                    }))
                {
                    let id = entry.key_id();
                    if id == active.key_id() || previous.iter().any(|p| p.key_id() == id) {
                        continue;
                    }
                    if published_ids.contains(&id) {
                        previous.push(entry);
                    } else {
                        dropped.push(id);
                    }
                }
                env.previous = previous;
            }
        }
        let after: Vec<KeyId> = env.recipients.iter().map(KeyEntry::key_id).collect();
        let new_key = !before.is_empty() && !before.contains(&active.key_id());
        Ok(KeyUpdate {
            environment: name.to_string(),
            created,
            active,
            before,
            controller_before,
            after,
            dropped,
            new_key,
        })
    }
}

/// One key a controller publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The public key.
    pub recipient: Recipient,
    /// Whether it is the key the controller seals new values to.
    pub active: bool,
}

/// Parses and checks a controller's published key list: the `keys.json`
/// document `GET /v1/keys` serves, a JSON array of
/// `{"recipient": "age1…", "keyId": "…", "active": bool}`. Every recipient
/// must parse and match its published key id, and exactly one key must be
/// active; otherwise the whole list is refused ([`Error::PublishedKeys`]),
/// so a garbled or tampered list never reaches the keyring. `origin` names
/// the source in errors.
pub fn parse_published_json(text: &str, origin: &str) -> Result<Vec<Published>, Error> {
    let refuse = |message: String, source: Option<gitseal_crypto::Error>| Error::PublishedKeys {
        origin: origin.to_string(),
        message,
        source,
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| refuse(format!("the published keys are not valid JSON: {e}"), None))?;
    let Some(items) = value.as_array() else {
        return Err(refuse(
            "the published keys are not a JSON array of keys".into(),
            None,
        ));
    };
    if items.is_empty() {
        return Err(refuse(
            "no keys are published (has the controller started?)".into(),
            None,
        ));
    }
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        let field = |name: &str| item.get(name).and_then(serde_json::Value::as_str);
        let Some(text) = field("recipient") else {
            return Err(refuse(
                format!("key #{n} has no \"recipient\" string"),
                None,
            ));
        };
        let recipient: Recipient = text
            .parse()
            .map_err(|e| refuse(format!("key #{n}: the recipient is not usable"), Some(e)))?;
        let Some(key_id) = field("keyId") else {
            return Err(refuse(format!("key #{n} has no \"keyId\" string"), None));
        };
        let actual = recipient.key_id().to_string();
        if key_id != actual {
            return Err(refuse(
                format!(
                    "key #{n} ({recipient}) is published with key id {key_id:?}, but its key id \
                     is {actual}; the list is corrupt or tampered with, refusing it"
                ),
                None,
            ));
        }
        let active = item
            .get("active")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        keys.push(Published { recipient, active });
    }
    match keys.iter().filter(|k| k.active).count() {
        1 => Ok(keys),
        0 => Err(refuse("no published key is marked active".into(), None)),
        n => Err(refuse(
            format!("{n} published keys are marked active; expected one"),
            None,
        )),
    }
}

/// Parses and checks a saved `gitseal-public-keys` ConfigMap (YAML or
/// JSON): its `data."keys.json"` as [`parse_published_json`] does, and
/// `data.active`, when present, must be the key marked active there.
pub fn parse_published_configmap(text: &str, origin: &str) -> Result<Vec<Published>, Error> {
    use serde_yaml::Value;
    let refuse = |message: String, source: Option<gitseal_crypto::Error>| Error::PublishedKeys {
        origin: origin.to_string(),
        message,
        source,
    };
    let value: Value = serde_yaml::from_str(text)
        .map_err(|e| refuse(format!("not valid YAML or JSON: {e}"), None))?;
    if value.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
        return Err(refuse(
            "not a ConfigMap; save it with \
             `kubectl get configmap gitseal-public-keys -n gitseal-system -o yaml`"
                .into(),
            None,
        ));
    }
    let data = value.get("data");
    let field = |name: &str| data.and_then(|d| d.get(name)).and_then(Value::as_str);
    let Some(json) = field("keys.json") else {
        return Err(refuse(
            "the ConfigMap has no data.\"keys.json\" (is it gitseal-public-keys?)".into(),
            None,
        ));
    };
    let keys = parse_published_json(json, &format!("{origin}, data.\"keys.json\""))?;
    if let Some(active) = field("active") {
        let active: Recipient = active
            .trim()
            .parse()
            .map_err(|e| refuse("data.active is not usable".into(), Some(e)))?;
        if !keys.iter().any(|k| k.active && k.recipient == active) {
            return Err(refuse(
                format!(
                    "data.active ({active}) is not the key marked active in \
                     data.\"keys.json\"; refusing an inconsistent ConfigMap"
                ),
                None,
            ));
        }
    }
    Ok(keys)
}

/// How [`Keyring::apply_published`] changes an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMode {
    /// Replace the keys this controller published before (`--write`).
    Replace,
    /// Append the active key (`--add`).
    Add,
}

/// What [`Keyring::apply_published`] changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUpdate {
    /// The environment.
    pub environment: String,
    /// The environment did not exist before.
    pub created: bool,
    /// The controller's active key, now a recipient.
    pub active: Recipient,
    /// The environment's recipients before.
    pub before: Vec<KeyId>,
    /// Of those, the ones published by this controller.
    pub controller_before: Vec<KeyId>,
    /// The environment's recipients after.
    pub after: Vec<KeyId>,
    /// Keys removed because the controller no longer publishes them:
    /// values sealed to them will not open any more.
    pub dropped: Vec<KeyId>,
    /// The keyring will seal to a key id it did not seal to before, while
    /// the environment already had recipients: the active key changed (or
    /// the keyring's keys are not this controller's). Needs the user's consent.
    pub new_key: bool,
}

impl KeyUpdate {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.created || self.before != self.after || !self.dropped.is_empty()
    }
}

/// A repository's root and its keyring file (see [`discover`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The repository root.
    pub root: PathBuf,
    /// `ROOT/.gitseal/keys.yaml`.
    pub path: PathBuf,
}

impl Located {
    /// `file` relative to the root, with `/` separators; `None` when it is
    /// outside the repository.
    pub fn relative(&self, file: &Path) -> Option<String> {
        relative_to(&self.root, file)
    }
}

/// `file` relative to `root` (both made absolute lexically), `/`-separated.
pub fn relative_to(root: &Path, file: &Path) -> Option<String> {
    let abs = normalize(file);
    let rel = abs.strip_prefix(normalize(root)).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(parts.join("/"))
}

/// `path` made absolute against the current directory and normalised
/// lexically (no `.` or `..`; symbolic links are not followed).
pub fn normalize(path: &Path) -> PathBuf {
    let joined = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The repository root for `start` (a file, existing or not, or a
/// directory): the nearest directory at or above it holding `.git` or
/// [`DEFAULT_PATH`].
pub fn find_root(start: &Path) -> Option<PathBuf> {
    let mut dir = normalize(start);
    if !dir.is_dir() {
        dir.pop();
    }
    loop {
        if dir.join(".git").exists() || dir.join(DEFAULT_PATH).is_file() {
            return Some(dir);
        }
        if !dir.pop() {
            return None;
        }
    }
}

/// The one way every command finds the keyring: [`DEFAULT_PATH`] at the
/// repository root of `start` (see [`find_root`]), when that file exists.
pub fn discover(start: &Path) -> Option<Located> {
    let root = find_root(start)?;
    let path = root.join(DEFAULT_PATH);
    path.is_file().then_some(Located { root, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../keys.example");

    fn recipient() -> Recipient {
        gitseal_crypto::Identity::generate().recipient().clone()
    }

    #[test]
    fn keys_example_parses() {
        let k =
            Keyring::from_yaml(EXAMPLE, "keys.example").expect("keys.example is a valid keyring");
        assert!(k.environments.len() >= 2);
        let (name, env) = k.environment(None).expect("default environment");
        assert_eq!(Some(name), k.default_environment.as_deref());
        assert!(!env.recipients.is_empty());
        assert!(!k.key_ids().is_empty());
        assert!(!k.paths.is_empty(), "keys.example shows path rules");
        assert!(!k.retired.is_empty(), "keys.example shows a retired key");
        let prod = k.choose(None, Some("apps/prod/db.yaml")).expect("prod");
        assert_eq!(prod.name, "prod");
        assert!(!prod.environment.required_ids().is_empty());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases = [
            ("version: 2\n", "version 2 is not supported"),
            (
                "version: 1\nenvironments:\n  dev:\n    recipients: []\n",
                "\"dev\" has no recipients",
            ),
            (
                "version: 1\nenvironments:\n  dev:\n    recipients: [age1nope]\n",
                "invalid recipient",
            ),
            ("version: 1\nbogus: 1\n", "bogus"),
            (
                "version: 1\nenvironments:\n  dev:\n    recipients: [0123456789abcdef]\n",
                "is a key id; recipients need the public key",
            ),
            (
                "version: 1\nretired: [{keyId: 0123456789abcdef, colour: red}]\n",
                "unknown field `colour`",
            ),
            (
                "version: 1\nenvironments:\n  dev:\n    recipients: [{required: true}]\n",
                "missing field `recipient`",
            ),
            (
                "version: 1\npaths: [{glob: 'apps/**', environment: prod}]\nenvironments: {}\n",
                "maps to environment \"prod\", which is not one of the environments",
            ),
            (
                "version: 1\nretired: [{keyId: 0123456789abcdef, required: true}]\n",
                "cannot be marked controller or required",
            ),
        ];
        for (text, message) in cases {
            let err = Keyring::from_yaml(text, "k.yaml").expect_err(text);
            assert!(
                err.to_string().starts_with("k.yaml: invalid keyring"),
                "{err}"
            );
            assert!(err.to_string().contains(message), "{text}: {err}");
        }
        let r = recipient();
        let retired = format!(
            "version: 1\nenvironments:\n  dev:\n    recipients: [{r}]\nretired: [{}]\n",
            r.key_id()
        );
        let err = Keyring::from_yaml(&retired, "k.yaml").expect_err("retired recipient");
        assert!(err.to_string().contains("which is retired"), "{err}");

        let k = Keyring::from_yaml(EXAMPLE, "keys.example").expect("parse");
        let err = k.environment(Some("nope")).expect_err("unknown env");
        assert!(matches!(err, Error::UnknownEnvironment { .. }));
        assert!(err.to_string().contains("prod"), "{err}");
    }

    #[test]
    fn round_trips_through_yaml() {
        let k = Keyring::from_yaml(EXAMPLE, "keys.example").expect("parse");
        let again = Keyring::from_yaml(&k.to_yaml(), "again").expect("reparse");
        assert_eq!(k, again);
    }

    #[test]
    fn paths_choose_environments_first_match_wins() {
        let (a, b) = (recipient(), recipient());
        let text = format!(
            "version: 1\ndefaultEnvironment: dev\npaths:\n- {{glob: apps/prod/**, environment: prod}}\n\
             - {{glob: '*.prod.yaml', environment: prod}}\n- {{glob: apps, environment: dev}}\n\
             environments:\n  dev: {{recipients: [{a}]}}\n  prod: {{recipients: [{b}], scope: namespace}}\n"
        );
        let k = Keyring::from_yaml(&text, "k").expect("parse");
        let pick = |path: &str| k.choose(None, Some(path)).expect("choice");
        assert_eq!(pick("apps/prod/db.yaml").name, "prod");
        assert_eq!(pick("apps/prod/deep/x/db.yaml").name, "prod");
        assert_eq!(pick("other/db.prod.yaml").name, "prod");
        assert_eq!(pick("apps/dev/db.yaml").name, "dev");
        assert_eq!(
            pick("apps/prod/db.yaml").reason,
            Reason::Path {
                path: "apps/prod/db.yaml".into(),
                glob: "apps/prod/**".into()
            }
        );
        // Near misses: a sibling directory with the same prefix, a file
        // named like the directory.
        assert_eq!(
            pick("apps/production/db.yaml").reason,
            Reason::Path {
                path: "apps/production/db.yaml".into(),
                glob: "apps".into()
            }
        );
        assert_eq!(pick("apps-prod/db.yaml").reason, Reason::Default);
        assert_eq!(pick("apps-prod/db.yaml").name, "dev");
        // --env wins over the path.
        let named = k
            .choose(Some("dev"), Some("apps/prod/db.yaml"))
            .expect("named");
        assert_eq!((named.name, named.reason), ("dev", Reason::Named));
        // No default and several environments: say so, with the choices.
        let mut no_default = k.clone();
        no_default.default_environment = None;
        let err = no_default
            .choose(None, Some("x/y.yaml"))
            .expect_err("ambiguous");
        assert!(err.to_string().contains("dev, prod"), "{err}");
        assert!(err.to_string().contains("x/y.yaml"), "{err}");
    }

    fn published(active: &Recipient, others: &[&Recipient]) -> Vec<Published> {
        std::iter::once(Published {
            recipient: active.clone(),
            active: true,
        })
        .chain(others.iter().map(|r| Published {
            recipient: (*r).clone(),
            active: false,
        }))
        .collect()
    }

    #[test]
    fn apply_published_replaces_only_the_controllers_keys() {
        let (old, new, dr, glass) = (recipient(), recipient(), recipient(), recipient());
        let text = format!(
            "version: 1\nenvironments:\n  prod:\n    recipients:\n    - {{recipient: {old}, controller: true, note: cluster}}\n\
             \x20   - {{recipient: {dr}, required: true}}\n    - {glass}\n"
        );
        let mut k = Keyring::from_yaml(&text, "k").expect("parse");
        let update = k
            .apply_published("prod", &published(&new, &[&old]), UpdateMode::Replace)
            .expect("applies");
        assert!(update.new_key && update.changed());
        assert_eq!(update.controller_before, vec![old.key_id()]);
        let prod = &k.environments["prod"];
        assert_eq!(
            prod.recipients(),
            vec![new.clone(), dr.clone(), glass.clone()]
        );
        assert!(prod.recipients[0].controller);
        assert_eq!(prod.required_ids(), vec![dr.key_id()]);
        assert_eq!(
            prod.previous
                .iter()
                .map(KeyEntry::key_id)
                .collect::<Vec<_>>(),
            vec![old.key_id()],
            "the old key is still published: values sealed to it still open"
        );
        // The same again changes nothing; a later rotation drops keys the
        // controller no longer publishes.
        let again = k
            .apply_published("prod", &published(&new, &[&old]), UpdateMode::Replace)
            .expect("applies");
        assert!(!again.changed() && !again.new_key);
        let newer = recipient();
        let rotated = k
            .apply_published("prod", &published(&newer, &[&new]), UpdateMode::Replace)
            .expect("applies");
        assert_eq!(rotated.dropped, vec![old.key_id()]);
        let prod = &k.environments["prod"];
        assert_eq!(prod.recipients(), vec![newer.clone(), dr, glass]);
        assert_eq!(
            prod.previous
                .iter()
                .map(KeyEntry::key_id)
                .collect::<Vec<_>>(),
            vec![new.key_id()]
        );
        // A new environment is created without asking; a retired key is refused.
        let created = k
            .apply_published("dev", &published(&old, &[]), UpdateMode::Replace)
            .expect("creates");
        assert!(created.created && !created.new_key);
        k.retired.push(KeyEntry::recipient(newer.clone()));
        let before = k.clone();
        let err = k
            .apply_published("prod", &published(&newer, &[]), UpdateMode::Replace)
            .expect_err("retired");
        assert!(err.to_string().contains("is retired"), "{err}");
        assert_eq!(k, before);
    }

    #[test]
    fn discovery_walks_up_to_the_repository_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join(".gitseal")).expect("mkdir");
        std::fs::create_dir_all(root.join("apps/prod")).expect("mkdir");
        std::fs::write(root.join(DEFAULT_PATH), "version: 1\n").expect("write");
        let found = discover(&root.join("apps/prod/new.yaml")).expect("found");
        assert_eq!(found.root, normalize(root));
        assert_eq!(
            found
                .relative(&root.join("apps/prod/../prod/db.yaml"))
                .as_deref(),
            Some("apps/prod/db.yaml")
        );
        // A nested git repository is its own root, without a keyring.
        std::fs::create_dir_all(root.join("apps/vendored/.git")).expect("mkdir");
        assert_eq!(discover(&root.join("apps/vendored/x.yaml")), None);
        assert_eq!(
            find_root(&root.join("apps/vendored/x.yaml")),
            Some(normalize(&root.join("apps/vendored")))
        );
    }

    #[test]
    fn published_lists_are_checked_and_refusals_are_typed() {
        let a = gitseal_crypto::Identity::generate();
        let b = gitseal_crypto::Identity::generate();
        let item = |id: &gitseal_crypto::Identity, key_id: String, active: bool| {
            format!(
                r#"{{"recipient": "{}", "keyId": "{key_id}", "active": {active}}}"#,
                id.recipient()
            )
        };
        let good = format!(
            "[{}, {}]",
            item(&a, a.key_id().to_string(), true),
            item(&b, b.key_id().to_string(), false)
        );
        let keys = parse_published_json(&good, "u").expect("a good list");
        assert_eq!(keys.len(), 2);
        assert_eq!(&keys[0].recipient, a.recipient());
        assert!(keys[0].active && !keys[1].active);

        let refused = |text: &str| match parse_published_json(text, "https://c/v1/keys") {
            Err(e @ Error::PublishedKeys { .. }) => e.to_string(),
            other => panic!("not refused as a published list: {other:?}"),
        };
        let wrong_id = format!("[{}]", item(&a, b.key_id().to_string(), true));
        let m = refused(&wrong_id);
        assert!(m.starts_with("https://c/v1/keys: key #1 ("), "{m}");
        assert!(m.contains("tampered with, refusing it"), "{m}");
        assert!(refused("<html>").contains("the published keys are not valid JSON"));
        assert!(refused("{}").ends_with("not a JSON array of keys"));
        assert!(refused("[]").contains("no keys are published"));
        let none_active = format!("[{}]", item(&a, a.key_id().to_string(), false));
        assert!(refused(&none_active).ends_with("no published key is marked active"));
        let two_active = format!(
            "[{}, {}]",
            item(&a, a.key_id().to_string(), true),
            item(&b, b.key_id().to_string(), true)
        );
        assert!(refused(&two_active).ends_with("2 published keys are marked active; expected one"));
        let bad_recipient =
            r#"[{"recipient": "age1nope", "keyId": "0011223344556677", "active": true}]"#;
        match parse_published_json(bad_recipient, "f") {
            Err(Error::PublishedKeys {
                message,
                source: Some(_),
                ..
            }) => {
                assert_eq!(message, "key #1: the recipient is not usable")
            }
            other => panic!("{other:?}"),
        }

        let cm = |active: &str| {
            format!(
                "kind: ConfigMap\ndata:\n  active: {active}\n  keys.json: '{}'\n",
                good.replace('\'', "''")
            )
        };
        let from_cm = parse_published_configmap(&cm(&a.recipient().to_string()), "cm.yaml")
            .expect("a consistent ConfigMap");
        assert_eq!(from_cm, keys);
        match parse_published_configmap(&cm(&b.recipient().to_string()), "cm.yaml") {
            Err(Error::PublishedKeys {
                origin, message, ..
            }) => {
                assert_eq!(origin, "cm.yaml");
                assert!(
                    message.contains("refusing an inconsistent ConfigMap"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_published_configmap("kind: Secret\n", "s.yaml") {
            Err(e @ Error::PublishedKeys { .. }) => {
                assert!(e.to_string().starts_with("s.yaml: not a ConfigMap"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
}
