//! `gitseal edit`: a SealedSecret edited as if it were a Secret, without a
//! private key. The buffer the user edits shows every sealed item as the
//! placeholder [`KEEP`]; items given a value are sealed (with the object's
//! scope, name and namespace), items deleted are removed, items left as
//! the placeholder keep their sealed value byte for byte. The file is
//! changed in place like `--merge-into` does: other documents, comments and
//! untouched values stay as written.
//!
//! The buffer starts with no value at all (only item names), so only what
//! the user types is plaintext; the command keeps that in a private
//! temporary file and removes it.
//!
//! Templated items (`spec.template.data`) are shown as text under
//! `stringData`, named by the annotation `gitseal.dev/templated-keys`, as
//! `gitseal seal` reads them: edit a template in place, add a key to the
//! annotation to make a new one, remove it to drop one. Templates are not
//! secret and are written back as text, never sealed.

use std::collections::{BTreeMap, BTreeSet};

use gitseal_crypto::{Envelope, KeyId, Recipient, Scope};
use secrecy::{ExposeSecret as _, SecretSlice};
use serde_yaml::{Mapping, Value};

use crate::input::{self, File};
use crate::memory::Memory;
use crate::merge::{child_mapping, object_mut, rebuild, upsert, Merged};
use crate::open::read_sealed;
use crate::seal::{resolve_namespace, seal_items, split_templates, TEMPLATED_KEYS};
use crate::secret::PlainSecret;
use crate::{output, Error, Location};

/// The placeholder that keeps an item's sealed value.
pub const KEEP: &str = "<sealed: keep>";

/// The SealedSecret being edited.
#[derive(Clone, Debug)]
pub struct Session {
    /// Where it is in the file.
    pub at: Location,
    /// Its name.
    pub name: String,
    /// Its `metadata.namespace`.
    pub namespace: Option<String>,
    /// Its scope.
    pub scope: Scope,
    /// Its sealed items: key → key ids it is sealed to.
    pub items: BTreeMap<String, BTreeSet<KeyId>>,
    /// Its Vault items.
    pub vault_items: Vec<String>,
    /// Its templated items (`spec.template.data`): key → template.
    pub templates: BTreeMap<String, String>,
}

/// What the user changed. Holds plaintext: no `Debug`.
pub struct Edit {
    /// Items to seal (new or changed), with their values.
    pub set: BTreeMap<String, SecretSlice<u8>>,
    /// Sealed items to remove.
    pub remove: Vec<String>,
    /// The new templated items, when they changed.
    pub templates: Option<BTreeMap<String, String>>,
}

impl Edit {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.templates.is_none()
    }
}

/// What the edited buffer says.
pub enum Outcome {
    /// The buffer is empty (or only comments): abort.
    Empty,
    /// The changes.
    Changes(Edit),
}

/// Chooses the SealedSecret of `file` to edit: the only one, or the one
/// named `name`.
pub fn start(file: &File, name: Option<&str>) -> Result<Session, Error> {
    let docs = input::documents(file)?;
    let mut found = Vec::new();
    for doc in &docs {
        if doc.kind() != Some("SealedSecret") {
            continue;
        }
        let sealed = read_sealed(doc)?;
        let Some(object) = sealed.metadata.name.clone() else {
            return Err(Error::invalid(
                &doc.at,
                "the SealedSecret has no metadata.name; add one",
            ));
        };
        if name.is_some_and(|n| n != object) {
            continue;
        }
        let mut items = BTreeMap::new();
        for (key, text) in &sealed.spec.encrypted_data {
            let envelope = Envelope::parse(text).map_err(|source| Error::Envelope {
                at: Box::new(doc.at.clone()),
                item: key.clone(),
                source,
            })?;
            items.insert(key.clone(), envelope.key_ids().into_iter().collect());
        }
        found.push(Session {
            at: doc.at.clone(),
            name: object,
            namespace: sealed.metadata.namespace.clone(),
            scope: sealed.spec.scope,
            items,
            vault_items: sealed.spec.vault_data.keys().cloned().collect(),
            templates: sealed
                .spec
                .template
                .as_ref()
                .map(|t| t.data.clone())
                .unwrap_or_default(),
        });
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::invalid(
            &Location::new(file.origin.clone(), 0),
            match name {
                Some(n) => format!("holds no SealedSecret named {n:?}"),
                None => "holds no SealedSecret to edit; make one with `gitseal seal`".to_string(),
            },
        )),
        _ => Err(Error::invalid(
            &Location::new(file.origin.clone(), 0),
            format!(
                "holds several SealedSecrets ({}); say which with --name NAME",
                found
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

impl Session {
    /// `namespace/name`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The key ids the object's items are sealed to: `None` when it has no
    /// sealed item; an error when its items disagree.
    pub fn key_ids(&self) -> Result<Option<BTreeSet<KeyId>>, Error> {
        let mut sets = self.items.values();
        let Some(first) = sets.next() else {
            return Ok(None);
        };
        if sets.any(|s| s != first) {
            return Err(Error::invalid(
                &self.at,
                format!(
                    "the items of {} are sealed to different keys; re-seal them to one set first \
                     (`gitseal reseal`)",
                    self.describe()
                ),
            ));
        }
        Ok(Some(first.clone()))
    }

    /// The text the user edits: a Secret whose sealed items are [`KEEP`]
    /// placeholders. It holds no secret value.
    pub fn buffer(&self, origin: &str) -> Result<String, Error> {
        let mut text = format!(
            "# Editing SealedSecret {} ({origin}).\n\
             # Items showing {KEEP:?} keep their sealed value. Replace the placeholder to\n\
             # change an item, delete its line to remove it, add lines to add items.\n\
             # Values are text (stringData); for binary values add a data: section in base64.\n\
             # Save and quit to seal the changes; an empty buffer or no change writes nothing.\n",
            self.describe()
        );
        if !self.vault_items.is_empty() {
            text.push_str(&format!(
                "# Vault items (not shown; an item of the same name here replaces one): {}\n",
                self.vault_items.join(", ")
            ));
        }
        if !self.templates.is_empty() {
            text.push_str(&format!(
                "# Templated items (text, not sealed) are the stringData keys named by the\n\
                 # {TEMPLATED_KEYS} annotation; they are not secret: never paste a value in one.\n"
            ));
        }
        let mut metadata = Mapping::new();
        metadata.insert("name".into(), self.name.as_str().into());
        if let Some(ns) = &self.namespace {
            metadata.insert("namespace".into(), ns.as_str().into());
        }
        if !self.templates.is_empty() {
            let mut annotations = Mapping::new();
            let keys: Vec<&str> = self.templates.keys().map(String::as_str).collect();
            annotations.insert(TEMPLATED_KEYS.into(), keys.join(",").into());
            metadata.insert("annotations".into(), Value::Mapping(annotations));
        }
        let mut doc = Mapping::new();
        doc.insert("apiVersion".into(), "v1".into());
        doc.insert("kind".into(), "Secret".into());
        doc.insert("metadata".into(), Value::Mapping(metadata));
        let data: Mapping = self
            .items
            .keys()
            .map(|k| (Value::from(k.as_str()), Value::from(KEEP)))
            .chain(
                self.templates
                    .iter()
                    .map(|(k, t)| (Value::from(k.as_str()), Value::from(t.as_str()))),
            )
            .collect();
        doc.insert("stringData".into(), Value::Mapping(data));
        text.push_str(&output::yaml(&Value::Mapping(doc))?);
        Ok(text)
    }

    /// Reads the edited buffer. Errors name `origin` and never a value.
    pub fn read(&self, edited: &str, origin: &str) -> Result<Outcome, Error> {
        let docs = input::parse(edited, origin)?;
        let doc = match docs.as_slice() {
            [] => return Ok(Outcome::Empty),
            [one] => one,
            _ => {
                return Err(Error::invalid(
                    &docs[1].at,
                    "the buffer holds more than one document; edit the one Secret",
                ))
            }
        };
        let secret = PlainSecret::from_document(doc)?;
        if secret.name.as_deref() != Some(self.name.as_str()) || secret.namespace != self.namespace
        {
            return Err(Error::invalid(
                &doc.at,
                format!(
                    "metadata.name and metadata.namespace must stay {}: every sealed value is bound \
                     to them (seal a new SealedSecret to move it)",
                    self.describe()
                ),
            ));
        }
        let (secret, templates) = split_templates(&secret, &doc.at, &self.vault_items)?;
        if secret.type_.is_some()
            || secret.immutable.is_some()
            || !secret.labels.is_empty()
            || !secret.annotations.is_empty()
        {
            return Err(Error::invalid(
                &doc.at,
                "edit changes items and templates only (the one annotation it reads is \
                 gitseal.dev/templated-keys); change type, labels, annotations or immutable in \
                 the SealedSecret's spec.template",
            ));
        }
        let mut set = BTreeMap::new();
        let mut kept = BTreeSet::new();
        for (key, value) in secret.items {
            if value.expose_secret() == KEEP.as_bytes() {
                if !self.items.contains_key(&key) {
                    return Err(Error::item(
                        &doc.at,
                        &key,
                        format!(
                            "is {KEEP:?}, but {} has no sealed item {key:?} to keep (the \
                             placeholder keeps an existing value; it cannot copy or rename one): \
                             give the value",
                            self.describe()
                        ),
                    ));
                }
                kept.insert(key);
            } else {
                set.insert(key, value);
            }
        }
        let remove = self
            .items
            .keys()
            .filter(|k| !kept.contains(*k) && !set.contains_key(*k))
            .cloned()
            .collect();
        let templates = (templates != self.templates).then_some(templates);
        Ok(Outcome::Changes(Edit {
            set,
            remove,
            templates,
        }))
    }
}

/// Applies `edit` to the SealedSecret of `session` in `file`: the set items
/// sealed to `recipients`, the removed ones gone, the rest of the file as
/// written. `namespace` is the fallback for an object without one.
pub fn apply(
    file: &File,
    session: &Session,
    edit: &Edit,
    recipients: &[Recipient],
    namespace: Option<&str>,
    memory: Option<&dyn Memory>,
) -> Result<Merged, Error> {
    let ns = resolve_namespace(
        session.namespace.as_deref(),
        namespace,
        session.scope,
        "SealedSecret",
        &session.at,
    )?;
    let secret = PlainSecret {
        name: Some(session.name.clone()),
        namespace: ns.clone(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        type_: None,
        immutable: None,
        items: edit
            .set
            .iter()
            .map(|(k, v)| (k.clone(), SecretSlice::from(v.expose_secret().to_vec())))
            .collect(),
    };
    let sealed = seal_items(
        &secret,
        &session.name,
        ns.as_deref(),
        session.scope,
        recipients,
        &session.at,
        memory,
    )?;
    let mut documents = file.documents.clone();
    let object = object_mut(&mut documents, &session.at)
        .ok_or_else(|| Error::invalid(&session.at, "the SealedSecret moved while editing"))?;
    let spec = child_mapping(object, "spec");
    let object_name = session.describe();
    let mut changes = Vec::new();
    for (key, value) in sealed {
        if let Some(Value::Mapping(vault)) = spec.get_mut("vaultData") {
            if vault.shift_remove(key.as_str()).is_some() {
                changes.push(format!(
                    "item {key:?} of {object_name} was a Vault reference; now sealed"
                ));
            }
            if vault.is_empty() {
                spec.shift_remove("vaultData");
            }
        }
        let data = child_mapping(spec, "encryptedData");
        let replaced = upsert(data, &key, value);
        changes.push(format!(
            "{} item {key:?} {} {object_name}",
            if replaced { "changed" } else { "added" },
            if replaced { "in" } else { "to" },
        ));
    }
    if let Some(Value::Mapping(data)) = spec.get_mut("encryptedData") {
        for key in &edit.remove {
            if data.shift_remove(key.as_str()).is_some() {
                changes.push(format!("removed item {key:?} from {object_name}"));
            }
        }
        if data.is_empty() {
            spec.shift_remove("encryptedData");
        }
    }
    if let Some(templates) = &edit.templates {
        let template = child_mapping(spec, "template");
        if templates.is_empty() {
            template.shift_remove("data");
        } else {
            let data: Mapping = templates
                .iter()
                .map(|(k, t)| (Value::from(k.as_str()), Value::from(t.as_str())))
                .collect();
            template.insert("data".into(), Value::Mapping(data));
        }
        if template.is_empty() {
            spec.shift_remove("template");
        }
        for key in templates
            .keys()
            .filter(|k| !session.templates.contains_key(*k))
        {
            changes.push(format!("added template {key:?} to {object_name}"));
        }
        for (key, text) in templates {
            if session.templates.get(key).is_some_and(|old| old != text) {
                changes.push(format!("changed template {key:?} of {object_name}"));
            }
        }
        for key in session
            .templates
            .keys()
            .filter(|k| !templates.contains_key(*k))
        {
            changes.push(format!("removed template {key:?} from {object_name}"));
        }
    }
    let mut touched = vec![false; documents.len()];
    if let Some(t) = touched.get_mut(session.at.document) {
        *t = true;
    }
    let text = rebuild(file, &documents, &touched)?;
    Ok(Merged { text, changes })
}
