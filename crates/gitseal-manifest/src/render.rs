//! Rendering: the Secret the controller would write for a SealedSecret
//! (`gitseal render`), offline, with the same template engine
//! (`gitseal-template`) and the same rule for which inputs the Secret
//! holds.
//!
//! Values it cannot open are shown as placeholders: `<sealed:KEY>` for a
//! sealed item when no identity is given, `<vault:KEY>` for a Vault item
//! the caller did not resolve. Templates then render over the placeholders,
//! so a template can be checked without any private key. With identities,
//! sealed items are opened exactly as `unseal` opens them (a value that
//! does not open is an error, not a placeholder).
//!
//! Two differences from the cluster, both documented: the Secret has no
//! owner reference (there is no object uid offline), and htpasswd/bcrypt
//! lines are salted with a public offline key instead of the controller's,
//! so they verify the same passwords but are not the same bytes.

use std::collections::BTreeMap;

use gitseal_crypto::{Identity, Opener};
use gitseal_template::{Limits, Place, SaltKey};
use secrecy::SecretSlice;

use crate::input::Document;
use crate::open::{open_value, read_sealed, secret_document};
use crate::output::OutputDocument;
use crate::seal::{resolve_namespace, Others};
use crate::secret::PlainSecret;
use crate::types::SealedSecret;
use crate::{Error, Location};

/// Label the controller puts on every Secret it writes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "gitseal-controller");

/// The placeholder shown for a sealed item that was not opened.
pub fn sealed_placeholder(key: &str) -> String {
    format!("<sealed:{key}>")
}

/// The placeholder shown for a Vault item that was not read.
pub fn vault_placeholder(key: &str) -> String {
    format!("<vault:{key}>")
}

/// How to render.
#[derive(Clone, Debug)]
pub struct RenderOptions<'a> {
    /// Identities to open sealed items with; none shows placeholders.
    pub identities: &'a [Identity],
    /// Namespace for SealedSecrets that do not name one.
    pub namespace: Option<&'a str>,
    /// What to do with documents that are not SealedSecrets.
    pub others: Others,
}

/// Rendered Secrets and notes (which values are placeholders). `Debug`
/// shows counts and notes only.
pub struct Rendered {
    /// Secret manifests (and passed-through documents), in input order.
    pub documents: Vec<OutputDocument>,
    /// What the user should know. Never a value.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("documents", &self.documents.len())
            .field("notes", &self.notes)
            .finish()
    }
}

/// The Secret the controller would write for `sealed` (at `at`), with the
/// Vault values in `vault` (item key → value; the others are placeholders).
pub fn render_sealed(
    sealed: &SealedSecret,
    at: &Location,
    opts: &RenderOptions<'_>,
    vault: BTreeMap<String, SecretSlice<u8>>,
    notes: &mut Vec<String>,
) -> Result<PlainSecret, Error> {
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
    let ns = namespace.clone().unwrap_or_default();
    let mut inputs: BTreeMap<String, SecretSlice<u8>> = BTreeMap::new();
    let mut opener = Opener::new(opts.identities);
    let mut placeholders = Vec::new();
    for (key, text) in &sealed.spec.encrypted_data {
        let value = if opts.identities.is_empty() {
            placeholders.push(key.clone());
            SecretSlice::from(sealed_placeholder(key).into_bytes())
        } else {
            open_value(text, &mut opener, scope, &ns, name, key, at)?
        };
        inputs.insert(key.clone(), value);
    }
    let mut vault = vault;
    let mut unread = Vec::new();
    for key in sealed.spec.vault_data.keys() {
        if inputs.contains_key(key) {
            return Err(Error::item(
                at,
                key,
                "is in both encryptedData and vaultData; keep it in one",
            ));
        }
        let value = vault.remove(key).unwrap_or_else(|| {
            unread.push(key.clone());
            SecretSlice::from(vault_placeholder(key).into_bytes())
        });
        inputs.insert(key.clone(), value);
    }
    if !placeholders.is_empty() {
        notes.push(format!(
            "{at}: sealed item(s) {} shown as <sealed:KEY> placeholders; pass -i IDENTITY to open them",
            placeholders.join(", ")
        ));
    }
    if !unread.is_empty() {
        notes.push(format!(
            "{at}: Vault item(s) {} shown as <vault:KEY> placeholders; pass --vault (with VAULT_ADDR and your token) to read them",
            unread.join(", ")
        ));
    }
    let template = sealed.spec.template.clone().unwrap_or_default();
    gitseal_template::secret_data(
        &template.data,
        template.include_inputs == Some(true),
        &mut inputs,
        Place {
            namespace: &ns,
            name,
        },
        &SaltKey::offline(),
        &Limits::default(),
    )
    .map_err(|source| Error::Template {
        at: Box::new(at.clone()),
        source,
    })?;
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels;
    labels.insert(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string());
    Ok(PlainSecret {
        name: Some(name.to_string()),
        namespace,
        labels,
        annotations: meta.annotations,
        type_: Some(template.type_.unwrap_or_else(|| "Opaque".to_string())),
        immutable: template.immutable,
        items: inputs,
    })
}

/// Renders every SealedSecret of `docs`; `vault` holds the Vault values
/// read for document `i` (by index in `docs`). Nothing is returned unless
/// every document rendered.
pub fn render_documents(
    docs: &[Document],
    opts: &RenderOptions<'_>,
    mut vault: BTreeMap<usize, BTreeMap<String, SecretSlice<u8>>>,
) -> Result<Rendered, Error> {
    let mut documents = Vec::with_capacity(docs.len());
    let mut notes = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if doc.kind() != Some("SealedSecret") {
            if opts.others == Others::PassThrough {
                documents.push(OutputDocument::from_input(doc));
                continue;
            }
            return Err(Error::invalid(
                &doc.at,
                format!(
                    "is {}, not a SealedSecret (pass --pass-through to copy other objects unchanged)",
                    doc.describe_kind()
                ),
            ));
        }
        let sealed = read_sealed(doc)?;
        let values = vault.remove(&i).unwrap_or_default();
        let secret = render_sealed(&sealed, &doc.at, opts, values, &mut notes)?;
        documents.push(secret_document(&secret));
    }
    Ok(Rendered { documents, notes })
}

/// A Secret document with its UTF-8 `data` values moved to `stringData`
/// as text (binary values stay in `data`): the same Secret, easier to read.
pub fn with_text_data(doc: OutputDocument) -> OutputDocument {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde_yaml::{Mapping, Value};
    let mut value = doc.value;
    let Some(map) = value.as_mapping_mut() else {
        return OutputDocument::new(value);
    };
    let Some(Value::Mapping(data)) = map.remove("data") else {
        return OutputDocument::new(value);
    };
    let mut binary = Mapping::new();
    let mut text = Mapping::new();
    for (k, v) in data {
        let decoded = v
            .as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .and_then(|b| String::from_utf8(b).ok());
        match decoded {
            Some(s) => {
                text.insert(k, Value::from(s));
            }
            None => {
                binary.insert(k, v);
            }
        }
    }
    if !binary.is_empty() {
        map.insert("data".into(), Value::Mapping(binary));
    }
    map.insert("stringData".into(), Value::Mapping(text));
    OutputDocument::new(value)
}
