//! gitseal-migrate: moves a repository from Bitnami Sealed Secrets to
//! gitseal without re-typing a secret.
//!
//! Each `bitnami.com/v1alpha1` SealedSecret is opened offline with the
//! Bitnami controller's private key(s) (exported from its cluster), and its
//! values are sealed again to gitseal recipients with the same binding:
//! strict stays strict (namespace + name), namespace-wide becomes
//! `namespace`, cluster-wide becomes `cluster`. Name, namespace, the
//! object's labels and annotations, and the template (type, labels,
//! annotations, `immutable`) are kept, Go templates in `spec.template.data`
//! are translated where the translation is exact ([`gotemplate`]); Bitnami's own
//! `sealedsecrets.bitnami.com/*` annotations are dropped and reported.
//!
//! An object is converted whole or not at all: when one value does not
//! open, nothing is produced for it and [`Refusal`] says why. Plaintext
//! lives in `secrecy`/`zeroize` types and appears in no message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use gitseal_crypto::{Recipient, Scope};
use gitseal_manifest::input::Document;
use gitseal_manifest::seal::{self, Others, SealOptions};
use gitseal_manifest::secret::PlainSecret;
use gitseal_manifest::types::SealedSecret;
use gitseal_manifest::Location;
use secrecy::{ExposeSecret, SecretSlice};
use serde_yaml::{Mapping, Value};

mod bitnami;
pub mod gotemplate;

pub use bitnami::BitnamiKeys;
use bitnami::Opened;

/// `apiVersion` of Bitnami's SealedSecret.
pub const BITNAMI_API_VERSION: &str = "bitnami.com/v1alpha1";

/// kubectl's copy of the last applied object (never carried over).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Argo CD's tracking label and annotation: on the generated Secret they
/// make Argo CD treat it as a resource of the application.
const ARGO_TRACKING: [&str; 2] = [
    "app.kubernetes.io/instance",
    "argocd.argoproj.io/tracking-id",
];

/// What can stop the migration as a whole (a key file, an input file).
/// One object that does not convert is a [`Refusal`], not an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Bitnami key file is unusable.
    #[error("{origin}: {message}")]
    Key {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or walked.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An input manifest could not be parsed.
    #[error(transparent)]
    Manifest(#[from] gitseal_manifest::Error),
}

/// Why one Bitnami SealedSecret was not converted. Names items, never
/// values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `metadata.name` is missing.
    MissingName,
    /// Strict and namespace-wide values are bound to a namespace, and the
    /// object names none.
    MissingNamespace,
    /// `metadata.namespace` and the namespace given for objects without one differ.
    NamespaceConflict {
        /// The object's.
        own: String,
        /// The one given.
        given: String,
    },
    /// A field has the wrong shape.
    Invalid(String),
    /// These items are not base64.
    NotBase64(Vec<String>),
    /// No key opens these items.
    DoesNotOpen(Vec<String>),
    /// An item of `spec.template.data` (a Go template over the opened
    /// values) that has no exact gitseal translation.
    TemplateData {
        /// The templated item.
        item: String,
        /// What in it has no translation (template syntax, never a value).
        reason: String,
    },
    /// An item key Kubernetes would refuse in a Secret.
    InvalidItemKey(String),
    /// A template label or annotation under `gitseal.dev/`, reserved for
    /// the gitseal controller.
    ReservedMetadata(String),
    /// Sealing for gitseal failed.
    Seal(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Refusal::MissingName => write!(f, "it has no metadata.name"),
            Refusal::MissingNamespace => write!(
                f,
                "it has no metadata.namespace and its values are bound to one; \
                 pass --namespace NS (the namespace it was sealed for)"
            ),
            Refusal::NamespaceConflict { own, given } => write!(
                f,
                "metadata.namespace is {own:?} but --namespace is {given:?}; remove one of them"
            ),
            Refusal::Invalid(message) => write!(f, "{message}"),
            Refusal::NotBase64(items) => write!(f, "item(s) {} are not base64", list(items)),
            Refusal::DoesNotOpen(items) => write!(
                f,
                "no given key opens item(s) {}: they were sealed with another controller's key \
                 (pass every exported key with --key), altered, or sealed for another \
                 namespace/name/scope than the object now has",
                list(items)
            ),
            Refusal::TemplateData { item, reason } => write!(
                f,
                "spec.template.data item {item:?}: {reason}; rewrite it as a gitseal template \
                 (docs/templates.md) or as a sealed value, and migrate again"
            ),
            Refusal::InvalidItemKey(key) => write!(
                f,
                "item key {key:?} is not a valid Secret key (letters, digits, '-', '_', '.'; at most 253)"
            ),
            Refusal::ReservedMetadata(key) => write!(
                f,
                "spec.template.metadata has {key:?}; labels and annotations under gitseal.dev/ \
                 are reserved for the gitseal controller"
            ),
            Refusal::Seal(message) => write!(f, "sealing for gitseal failed: {message}"),
        }
    }
}

/// How to convert.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    /// gitseal recipients every value is sealed to.
    pub recipients: &'a [Recipient],
    /// Namespace of objects that name none (as `kubeseal --namespace`).
    pub namespace: Option<&'a str>,
}

/// One converted object.
#[derive(Debug)]
pub struct Converted {
    /// Where it was.
    pub at: Location,
    /// `namespace/name` (or `name` for a cluster-wide object without a namespace).
    pub object: String,
    /// Its binding scope, the same as Bitnami's.
    pub scope: Scope,
    /// How many items were sealed again.
    pub items: usize,
    /// What the user should know (dropped annotations, tracking labels).
    pub notes: Vec<String>,
    /// The gitseal SealedSecret.
    pub sealed: SealedSecret,
}

/// One object that was not converted.
#[derive(Debug)]
pub struct Refused {
    /// Where it is.
    pub at: Location,
    /// `namespace/name`, as far as known.
    pub object: String,
    /// Why.
    pub reason: Refusal,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.object, self.reason)
    }
}

/// Whether `doc` is a Bitnami SealedSecret.
pub fn is_bitnami(doc: &Document) -> bool {
    doc.kind() == Some("SealedSecret") && doc.api_version() == Some(BITNAMI_API_VERSION)
}

/// Converts one Bitnami SealedSecret (see [`is_bitnami`]).
pub fn convert(
    doc: &Document,
    keys: &BitnamiKeys,
    opts: &Options<'_>,
) -> Result<Converted, Box<Refused>> {
    let metadata = doc.value.get("metadata").and_then(Value::as_mapping);
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let own_ns = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let object = match (&own_ns, &name) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.clone(),
        (_, None) => "(no name)".to_string(),
    };
    let refuse = |reason| {
        Box::new(Refused {
            at: doc.at.clone(),
            object: object.clone(),
            reason,
        })
    };
    let name = name.ok_or_else(|| refuse(Refusal::MissingName))?;
    let annotations = metadata
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_mapping);
    let scope = bitnami::scope(annotations);
    let namespace = match (own_ns.as_deref(), opts.namespace) {
        (Some(a), Some(b)) if a != b => {
            return Err(refuse(Refusal::NamespaceConflict {
                own: a.to_string(),
                given: b.to_string(),
            }))
        }
        (Some(a), _) | (None, Some(a)) => Some(a.to_string()),
        (None, None) => None,
    };
    if namespace.is_none() && scope != Scope::Cluster {
        return Err(refuse(Refusal::MissingNamespace));
    }
    let label = bitnami::label(scope, namespace.as_deref().unwrap_or_default(), &name);
    let spec = doc
        .value
        .get("spec")
        .and_then(Value::as_mapping)
        .ok_or_else(|| refuse(Refusal::Invalid("spec is missing or not a mapping".into())))?;

    let mut notes = Vec::new();
    let mut plain = PlainSecret {
        name: Some(name.clone()),
        namespace: namespace.clone(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        type_: None,
        immutable: None,
        items: BTreeMap::new(),
    };
    let go_templates = read_template(spec, &mut plain, &mut notes).map_err(&refuse)?;
    open_items(spec, keys, &label, &doc.at, &mut plain).map_err(&refuse)?;
    let template_data = translate_templates(
        &go_templates,
        &plain.items,
        gitseal_template::Place {
            namespace: namespace.as_deref().unwrap_or_default(),
            name: &name,
        },
    )
    .map_err(&refuse)?;
    for key in template_data.keys() {
        if !valid_item_key(key) {
            return Err(refuse(Refusal::InvalidItemKey(key.clone())));
        }
    }
    for key in plain.items.keys() {
        if !valid_item_key(key) {
            return Err(refuse(Refusal::InvalidItemKey(key.clone())));
        }
    }
    let reserved = plain
        .labels
        .keys()
        .chain(plain.annotations.keys())
        .find(|k| k.starts_with("gitseal.dev/"));
    if let Some(key) = reserved {
        return Err(refuse(Refusal::ReservedMetadata(key.clone())));
    }
    for key in ARGO_TRACKING {
        if plain.labels.contains_key(key) || plain.annotations.contains_key(key) {
            notes.push(format!(
                "the template sets {key}: the generated Secret will carry Argo CD's tracking \
                 metadata, and Argo CD will treat it as part of the application (and may prune it)"
            ));
        }
    }

    let seal_opts = SealOptions {
        recipients: opts.recipients,
        scope,
        namespace: None,
        others: Others::Refuse,
        memory: None,
    };
    let mut sealed = seal::seal_secret(&plain, &doc.at, &seal_opts)
        .map_err(|e| refuse(Refusal::Seal(e.to_string())))?;
    if !template_data.is_empty() {
        if !plain.items.is_empty() {
            notes.push(format!(
                "translated the Go template(s) of item(s) {} to gitseal templates; \
                 includeInputs keeps every sealed item in the Secret, as Bitnami does",
                template_data
                    .keys()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let template = sealed.spec.template.get_or_insert_with(Default::default);
        template.include_inputs = (!plain.items.is_empty()).then_some(true);
        template.data = template_data;
    }
    // The object's own labels and annotations (sync waves, app labels) stay.
    let (labels, annotations) = object_metadata(metadata, &mut notes);
    sealed.metadata.labels = (!labels.is_empty()).then_some(labels);
    sealed.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Ok(Converted {
        at: doc.at.clone(),
        object,
        scope,
        items: plain.items.len(),
        notes,
        sealed,
    })
}

/// Type, labels, annotations and `immutable` of `spec.template`; returns
/// its `data` (Go templates by item key).
fn read_template(
    spec: &Mapping,
    plain: &mut PlainSecret,
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, Refusal> {
    let Some(template) = spec.get("template") else {
        return Ok(BTreeMap::new());
    };
    let template = match template {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Mapping(m) => m,
        _ => return Err(Refusal::Invalid("spec.template is not a mapping".into())),
    };
    let go_templates = string_map(template, "data", "spec.template.data")?;
    plain.type_ = optional_string(template, "type", "spec.template.type")?;
    plain.immutable = match template.get("immutable") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(Refusal::Invalid(
                "spec.template.immutable is not a boolean".into(),
            ))
        }
    };
    if let Some(meta) = template.get("metadata").and_then(Value::as_mapping) {
        plain.labels = string_map(meta, "labels", "spec.template.metadata.labels")?;
        plain.annotations = string_map(meta, "annotations", "spec.template.metadata.annotations")?;
        plain.annotations.remove(LAST_APPLIED);
        let dropped: Vec<String> = plain
            .annotations
            .keys()
            .filter(|k| k.starts_with(bitnami::ANNOTATION_PREFIX))
            .cloned()
            .collect();
        for key in dropped {
            plain.annotations.remove(&key);
            // The scope annotations become spec.scope; others are reported.
            if key != bitnami::CLUSTER_WIDE && key != bitnami::NAMESPACE_WIDE {
                notes.push(format!(
                    "dropped the template annotation {key} (Bitnami's own)"
                ));
            }
        }
    }
    Ok(go_templates)
}

/// Translates Bitnami's Go templates (see [`gotemplate`]) and proves each
/// translation: rendered by the gitseal engine from the opened values, it
/// must give the bytes Bitnami's controller renders.
fn translate_templates(
    go_templates: &BTreeMap<String, String>,
    items: &BTreeMap<String, SecretSlice<u8>>,
    place: gitseal_template::Place<'_>,
) -> Result<BTreeMap<String, String>, Refusal> {
    if go_templates.is_empty() {
        return Ok(BTreeMap::new());
    }
    let refuse = |item: &str, reason: String| Refusal::TemplateData {
        item: item.to_string(),
        reason,
    };
    let mut translated = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for (item, source) in go_templates {
        let t = gotemplate::translate(source).map_err(|reason| refuse(item, reason))?;
        let missing: Vec<String> = t
            .reads()
            .into_iter()
            .filter(|k| !items.contains_key(*k))
            .map(|k| format!("{k:?}"))
            .collect();
        if !missing.is_empty() {
            return Err(refuse(
                item,
                format!(
                    "it reads {}, which the object does not have (Bitnami renders \"<no value>\" \
                     there, gitseal refuses)",
                    missing.join(", ")
                ),
            ));
        }
        let go = t.render_go(items).unwrap_or_default();
        expected.insert(item.clone(), go);
        translated.insert(item.clone(), t.jinja());
    }
    let rendered = gitseal_template::render(
        &translated,
        items,
        place,
        &gitseal_template::SaltKey::offline(),
        &gitseal_template::Limits::default(),
    )
    .map_err(|e| refuse(e.key(), format!("the translation does not render: {e}")))?;
    for (item, want) in &expected {
        let same = rendered
            .get(item)
            .is_some_and(|got| got.expose_secret() == want.as_slice());
        if !same {
            return Err(refuse(
                item,
                "the gitseal translation renders other bytes than Bitnami's template".to_string(),
            ));
        }
    }
    Ok(translated)
}

/// Opens `spec.encryptedData` (or the deprecated whole-Secret `spec.data`)
/// into `plain.items`. Every item is tried, so the refusal names all that
/// failed.
fn open_items(
    spec: &Mapping,
    keys: &BitnamiKeys,
    label: &[u8],
    at: &Location,
    plain: &mut PlainSecret,
) -> Result<(), Refusal> {
    let encrypted = match spec.get("encryptedData") {
        None | Some(Value::Null) => None,
        Some(Value::Mapping(m)) => Some(m),
        Some(_) => {
            return Err(Refusal::Invalid(
                "spec.encryptedData is not a mapping".into(),
            ))
        }
    };
    let legacy = match spec.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(Refusal::Invalid("spec.data is not a base64 string".into())),
    };
    if let Some(legacy) = legacy {
        if encrypted.is_some_and(|m| !m.is_empty()) {
            return Err(Refusal::Invalid(
                "spec.data (deprecated) and spec.encryptedData are both set; Bitnami refuses that too"
                    .into(),
            ));
        }
        return open_legacy(legacy, keys, label, at, plain);
    }
    let Some(encrypted) = encrypted else {
        return Ok(());
    };
    let (mut not_base64, mut closed) = (Vec::new(), Vec::new());
    for (k, v) in encrypted {
        let Some(key) = k.as_str() else {
            return Err(Refusal::Invalid(
                "spec.encryptedData has a key that is not a string".into(),
            ));
        };
        let Some(value) = v.as_str() else {
            return Err(Refusal::Invalid(format!(
                "spec.encryptedData item {key:?} is not a string"
            )));
        };
        match keys.open(value, label) {
            Opened::Value(mut bytes) => {
                let bytes = std::mem::take(&mut *bytes);
                plain
                    .items
                    .insert(key.to_string(), SecretSlice::from(bytes));
            }
            Opened::NotBase64 => not_base64.push(key.to_string()),
            Opened::NoKey => closed.push(key.to_string()),
        }
    }
    if !not_base64.is_empty() {
        return Err(Refusal::NotBase64(not_base64));
    }
    if !closed.is_empty() {
        return Err(Refusal::DoesNotOpen(closed));
    }
    Ok(())
}

/// The deprecated format: the whole Secret, as JSON, in one value.
fn open_legacy(
    value: &str,
    keys: &BitnamiKeys,
    label: &[u8],
    at: &Location,
    plain: &mut PlainSecret,
) -> Result<(), Refusal> {
    let json = match keys.open(value, label) {
        Opened::Value(bytes) => bytes,
        Opened::NotBase64 => return Err(Refusal::NotBase64(vec!["spec.data".into()])),
        Opened::NoKey => return Err(Refusal::DoesNotOpen(vec!["spec.data".into()])),
    };
    let text = std::str::from_utf8(&json)
        .map_err(|_| Refusal::Invalid("spec.data opened, but is not a JSON Secret".into()))?;
    let origin = format!("{at}, spec.data");
    let docs = gitseal_manifest::input::parse(text, &origin)
        .map_err(|_| Refusal::Invalid("spec.data opened, but is not a JSON Secret".into()))?;
    let [doc] = docs.as_slice() else {
        return Err(Refusal::Invalid(
            "spec.data opened, but is not one Secret".into(),
        ));
    };
    let inner = PlainSecret::from_document(doc).map_err(|e| Refusal::Invalid(e.to_string()))?;
    plain.items = inner.items;
    plain.type_ = plain.type_.take().or(inner.type_);
    plain.immutable = plain.immutable.or(inner.immutable);
    plain.labels.extend(inner.labels);
    plain.annotations.extend(inner.annotations);
    plain
        .annotations
        .retain(|k, _| !k.starts_with(bitnami::ANNOTATION_PREFIX));
    Ok(())
}

/// The object's labels and annotations without Bitnami's and kubectl's.
fn object_metadata(
    metadata: Option<&Mapping>,
    notes: &mut Vec<String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let pairs = |field: &str| -> BTreeMap<String, String> {
        metadata
            .and_then(|m| m.get(field))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels = pairs("labels");
    let mut annotations = pairs("annotations");
    annotations.remove(LAST_APPLIED);
    annotations.retain(|k, _| {
        let bitnami = k.starts_with(bitnami::ANNOTATION_PREFIX);
        if bitnami && k != bitnami::CLUSTER_WIDE && k != bitnami::NAMESPACE_WIDE {
            notes.push(format!("dropped the annotation {k} (Bitnami's own)"));
        }
        !bitnami
    });
    (labels, annotations)
}

fn optional_string(map: &Mapping, key: &str, field: &str) -> Result<Option<String>, Refusal> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::Invalid(format!("{field} is not a string"))),
    }
}

fn string_map(map: &Mapping, key: &str, field: &str) -> Result<BTreeMap<String, String>, Refusal> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| match (k.as_str(), v.as_str()) {
                (Some(k), Some(v)) => Ok((k.to_string(), v.to_string())),
                _ => Err(Refusal::Invalid(format!(
                    "{field} holds a non-string entry"
                ))),
            })
            .collect(),
        Some(_) => Err(Refusal::Invalid(format!("{field} is not a mapping"))),
    }
}

/// Kubernetes' rule for Secret keys: `[-._a-zA-Z0-9]+`, at most 253.
fn valid_item_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The manifest files under `paths`: files as given, directories walked
/// (sorted, hidden entries skipped) for `.yaml`, `.yml` and `.json`.
pub fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        {
            out.push(path);
        }
    }
    Ok(())
}
