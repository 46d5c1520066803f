//! Opening: SealedSecret manifests back into Secret manifests, with the
//! private identities (`gitseal unseal`, for recovery and debugging).
//!
//! Every item is opened against the binding computed from where the
//! SealedSecret *is* (its scope, namespace, name and the item key), never
//! the envelope's clear header. When a value does not open, the header is
//! used only to explain why (e.g. "sealed for namespace "a", found in
//! namespace "b""). Vault items are left out with a note.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gitseal_crypto::{Binding, Envelope, Identity, Opener, Scope};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use secrecy::{ExposeSecret, SecretSlice};
use serde_yaml::{Mapping, Value};

use crate::input::Document;
use crate::output::OutputDocument;
use crate::seal::{resolve_namespace, Others};
use crate::secret::PlainSecret;
use crate::types::{SealedSecret, SealedSecretSpec, SecretTemplate, VaultReference, API_VERSION};
use crate::value::{self, kind_of};
use crate::{Error, Location};

const SPEC_FIELDS: &[&str] = &[
    "scope",
    "encryptedData",
    "vaultData",
    "template",
    "refreshInterval",
];

/// How to open.
#[derive(Clone, Debug)]
pub struct OpenOptions<'a> {
    /// The private keys to try (each value names its key ids, so only the
    /// matching ones are tried).
    pub identities: &'a [Identity],
    /// Namespace for SealedSecrets that do not name one.
    pub namespace: Option<&'a str>,
    /// What to do with documents that are not SealedSecrets.
    pub others: Others,
}

impl<'a> OpenOptions<'a> {
    /// No namespace fallback; other kinds refused.
    pub fn new(identities: &'a [Identity]) -> Self {
        OpenOptions {
            identities,
            namespace: None,
            others: Others::Refuse,
        }
    }
}

/// The result of opening documents: plaintext Secrets. `Debug` shows how
/// many documents and the notes, never a value.
pub struct Opened {
    /// Secret manifests (and passed-through documents), in input order.
    pub documents: Vec<OutputDocument>,
    /// Things the user should know (Vault items left out…). Never a value.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("documents", &self.documents.len())
            .field("notes", &self.notes)
            .finish()
    }
}

/// Reads a SealedSecret document by hand (so no error repeats a value).
pub fn read_sealed(doc: &Document) -> Result<SealedSecret, Error> {
    let at = &doc.at;
    let Value::Mapping(map) = &doc.value else {
        return Err(Error::invalid(
            at,
            format!("is {}, expected a SealedSecret", kind_of(&doc.value)),
        ));
    };
    match (doc.kind(), doc.api_version()) {
        (Some("SealedSecret"), Some(API_VERSION)) => {}
        (Some("SealedSecret"), Some(v)) if v.starts_with("bitnami.com/") => {
            return Err(Error::invalid(
                at,
                format!("is a Bitnami Sealed Secrets object ({v}); gitseal cannot open it (use kubeseal)"),
            ))
        }
        (Some("SealedSecret"), v) => {
            return Err(Error::invalid(
                at,
                format!("is a SealedSecret of apiVersion {:?}, expected {API_VERSION}", v.unwrap_or("(none)")),
            ))
        }
        _ => return Err(Error::invalid(at, format!("is {}, not a SealedSecret", doc.describe_kind()))),
    }
    let metadata: ObjectMeta = match map.get("metadata") {
        None | Some(Value::Null) => ObjectMeta::default(),
        Some(m @ Value::Mapping(_)) => serde_yaml::from_value(m.clone())
            .map_err(|e| Error::invalid(at, format!("metadata is not valid: {e}")))?,
        Some(other) => {
            return Err(Error::invalid(
                at,
                format!("metadata is {}, expected a mapping", kind_of(other)),
            ))
        }
    };
    let empty = Mapping::new();
    let spec = value::mapping(map, "spec", "spec", at)?.unwrap_or(&empty);
    for (k, _) in spec {
        if !k.as_str().is_some_and(|k| SPEC_FIELDS.contains(&k)) {
            let name = value::key_text(k).unwrap_or_else(|| kind_of(k).to_string());
            return Err(Error::invalid(
                at,
                format!(
                    "unknown field spec.{name} (a SealedSecret spec has scope, encryptedData, vaultData, \
                     template and refreshInterval); check its spelling"
                ),
            ));
        }
    }
    let scope = match value::string(spec, "scope", "spec.scope", at)? {
        None => Scope::Strict,
        Some(s) => s
            .parse()
            .map_err(|e: gitseal_crypto::Error| Error::invalid(at, format!("spec.scope: {e}")))?,
    };
    let mut encrypted_data = BTreeMap::new();
    if let Some(items) = value::mapping(spec, "encryptedData", "spec.encryptedData", at)? {
        for (k, v) in items {
            let key = value::key_text(k).ok_or_else(|| {
                Error::invalid(
                    at,
                    format!(
                        "spec.encryptedData has a key that is {}, expected a string",
                        kind_of(k)
                    ),
                )
            })?;
            match v {
                Value::String(s) => {
                    encrypted_data.insert(key, s.clone());
                }
                other => {
                    return Err(Error::item(
                        at,
                        &key,
                        format!(
                            "spec.encryptedData value is {}, expected a sealed value (gs1:…)",
                            kind_of(other)
                        ),
                    ))
                }
            }
        }
    }
    let vault_data: BTreeMap<String, VaultReference> = match spec.get("vaultData") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => serde_yaml::from_value(v.clone())
            .map_err(|e| Error::invalid(at, format!("spec.vaultData is not valid: {e}")))?,
    };
    let template: Option<SecretTemplate> = match spec.get("template") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_yaml::from_value(v.clone())
                .map_err(|e| Error::invalid(at, format!("spec.template is not valid: {e}")))?,
        ),
    };
    let refresh_interval =
        value::string(spec, "refreshInterval", "spec.refreshInterval", at)?.map(str::to_string);
    Ok(SealedSecret {
        metadata,
        spec: SealedSecretSpec {
            scope,
            encrypted_data,
            vault_data,
            template,
            refresh_interval,
        },
        status: None,
    })
}

/// Says how a value's clear binding differs from where it was found, e.g.
/// `sealed for namespace "a", found in namespace "b"`. `None` when they agree.
pub fn describe_mismatch(sealed_for: &Binding, found: &Binding) -> Option<String> {
    let mut parts = Vec::new();
    if sealed_for.scope() != found.scope() {
        parts.push(format!(
            "sealed with {} scope, but the SealedSecret says scope {}",
            sealed_for.scope(),
            found.scope()
        ));
    }
    if let (Some(a), Some(b)) = (sealed_for.namespace(), found.namespace()) {
        if a != b {
            parts.push(format!(
                "sealed for namespace {a:?}, found in namespace {b:?}"
            ));
        }
    }
    if let (Some(a), Some(b)) = (sealed_for.name(), found.name()) {
        if a != b {
            parts.push(format!(
                "sealed for name {a:?}, found in SealedSecret {b:?}"
            ));
        }
    }
    if sealed_for.key() != found.key() {
        parts.push(format!(
            "sealed for item {:?}, found under item {:?}",
            sealed_for.key(),
            found.key()
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Opens one sealed value sitting at item `key` of the SealedSecret
/// `namespace`/`name` with `scope`. Use one `opener` for the items of an
/// object: they share their X25519 work.
pub fn open_value(
    text: &str,
    opener: &mut Opener<'_>,
    scope: Scope,
    namespace: &str,
    name: &str,
    key: &str,
    at: &Location,
) -> Result<SecretSlice<u8>, Error> {
    let envelope = Envelope::parse(text).map_err(|source| Error::Envelope {
        at: Box::new(at.clone()),
        item: key.to_string(),
        source,
    })?;
    let expected = Binding::new(scope, namespace, name, key);
    opener.open(&envelope, &expected).map_err(|e| match e {
        gitseal_crypto::Error::UnknownKey { sealed_to } => Error::UnknownKey {
            at: Box::new(at.clone()),
            item: key.to_string(),
            sealed_to,
            have: opener.identities().iter().map(Identity::key_id).collect(),
        },
        gitseal_crypto::Error::DoesNotOpen => Error::DoesNotOpen {
            at: Box::new(at.clone()),
            item: key.to_string(),
            sealed_to: envelope.key_ids(),
            mismatch: describe_mismatch(envelope.binding(), &expected),
        },
        source => Error::Envelope {
            at: Box::new(at.clone()),
            item: key.to_string(),
            source,
        },
    })
}

/// Opens every sealed item of a SealedSecret. Returns the Secret and notes
/// (Vault items are left out).
pub fn open_sealed(
    sealed: &SealedSecret,
    at: &Location,
    opts: &OpenOptions<'_>,
) -> Result<(PlainSecret, Vec<String>), Error> {
    let name = sealed
        .metadata
        .name
        .as_deref()
        .ok_or_else(|| Error::invalid(at, "the SealedSecret has no metadata.name; add one"))?;
    let scope = sealed.spec.scope;
    let namespace = resolve_namespace(
        sealed.metadata.namespace.as_deref(),
        opts.namespace,
        scope,
        "SealedSecret",
        at,
    )?;
    let mut items = BTreeMap::new();
    let mut opener = Opener::new(opts.identities);
    for (key, text) in &sealed.spec.encrypted_data {
        let value = open_value(
            text,
            &mut opener,
            scope,
            namespace.as_deref().unwrap_or_default(),
            name,
            key,
            at,
        )?;
        items.insert(key.clone(), value);
    }
    let notes = sealed
        .spec
        .vault_data
        .iter()
        .map(|(key, r)| {
            format!(
                "{at}: item {key:?} is a Vault reference ({}/{}#{}) and is not included; \
                 the controller or `gitseal exec` resolves it",
                r.mount, r.path, r.field
            )
        })
        .collect();
    let template = sealed.spec.template.clone().unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let secret = PlainSecret {
        name: Some(name.to_string()),
        namespace,
        labels: meta.labels,
        annotations: meta.annotations,
        type_: template.type_,
        immutable: template.immutable,
        items,
    };
    Ok((secret, notes))
}

/// A Secret manifest (`apiVersion, kind, metadata, type, immutable, data`),
/// with `data` base64: the exact bytes.
pub fn secret_document(secret: &PlainSecret) -> OutputDocument {
    let mut metadata = Mapping::new();
    if let Some(name) = &secret.name {
        metadata.insert("name".into(), name.as_str().into());
    }
    if let Some(ns) = &secret.namespace {
        metadata.insert("namespace".into(), ns.as_str().into());
    }
    for (field, map) in [
        ("labels", &secret.labels),
        ("annotations", &secret.annotations),
    ] {
        if !map.is_empty() {
            let m: Mapping = map
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                .collect();
            metadata.insert(field.into(), Value::Mapping(m));
        }
    }
    let mut out = Mapping::new();
    out.insert("apiVersion".into(), "v1".into());
    out.insert("kind".into(), "Secret".into());
    out.insert("metadata".into(), Value::Mapping(metadata));
    if let Some(t) = &secret.type_ {
        out.insert("type".into(), t.as_str().into());
    }
    if let Some(i) = secret.immutable {
        out.insert("immutable".into(), i.into());
    }
    let data: Mapping = secret
        .items
        .iter()
        .map(|(k, v)| {
            (
                Value::from(k.as_str()),
                Value::from(STANDARD.encode(v.expose_secret())),
            )
        })
        .collect();
    out.insert("data".into(), Value::Mapping(data));
    OutputDocument::new(Value::Mapping(out))
}

/// Opens every SealedSecret of `docs`. Nothing is returned unless every
/// sealed value opened.
pub fn open_documents(docs: &[Document], opts: &OpenOptions<'_>) -> Result<Opened, Error> {
    let mut documents = Vec::with_capacity(docs.len());
    let mut notes = Vec::new();
    for doc in docs {
        if doc.kind() != Some("SealedSecret") && opts.others == Others::PassThrough {
            documents.push(OutputDocument::from_input(doc));
            continue;
        }
        if doc.kind() != Some("SealedSecret") {
            return Err(Error::invalid(
                &doc.at,
                format!(
                    "is {}, not a SealedSecret (pass --pass-through to copy other objects unchanged)",
                    doc.describe_kind()
                ),
            ));
        }
        let sealed = read_sealed(doc)?;
        let (secret, mut n) = open_sealed(&sealed, &doc.at, opts)?;
        notes.append(&mut n);
        documents.push(secret_document(&secret));
    }
    Ok(Opened { documents, notes })
}
