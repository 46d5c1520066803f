//! Sealing: Secret manifests in, SealedSecret manifests out.
//!
//! Each item is sealed to every recipient, bound to where it will live
//! (scope + namespace + name + item key, see `gitseal_crypto::Binding`).
//! The Secret's type, labels, annotations and `immutable` go to
//! `spec.template`; server-set fields and kubectl's last-applied annotation
//! are dropped. Strict and namespace scope need a namespace: the manifest's
//! `metadata.namespace`, or a fallback given by the caller (`--namespace`).

use std::collections::{BTreeMap, BTreeSet};

use gitseal_crypto::{Binding, KeyId, Recipient, Scope, Sealer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use secrecy::ExposeSecret;

use crate::input::Document;
use crate::memory::Memory;
use crate::output::OutputDocument;
use crate::secret::PlainSecret;
use crate::types::{SealedSecret, SealedSecretSpec, SecretTemplate, TemplateMetadata};
use crate::{value, Error, Location};

/// What to do with a document that is not a Secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Others {
    /// Refuse it (the default): sealing a file that also holds a Deployment
    /// is most likely a mistake.
    #[default]
    Refuse,
    /// Copy it to the output unchanged.
    PassThrough,
}

/// How to seal.
#[derive(Clone)]
pub struct SealOptions<'a> {
    /// Every value is sealed to all of these.
    pub recipients: &'a [Recipient],
    /// The binding scope.
    pub scope: Scope,
    /// Namespace for Secrets that do not name one.
    pub namespace: Option<&'a str>,
    /// What to do with documents that are not Secrets.
    pub others: Others,
    /// Existing sealed values to keep when their plaintext did not change
    /// (`seal --update`), and where to remember what was sealed.
    pub memory: Option<&'a dyn Memory>,
}

impl std::fmt::Debug for SealOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealOptions")
            .field("recipients", &self.recipients)
            .field("scope", &self.scope)
            .field("namespace", &self.namespace)
            .field("others", &self.others)
            .field("memory", &self.memory.is_some())
            .finish()
    }
}

impl<'a> SealOptions<'a> {
    /// Strict scope, no namespace fallback, other kinds refused.
    pub fn new(recipients: &'a [Recipient]) -> Self {
        SealOptions {
            recipients,
            scope: Scope::Strict,
            namespace: None,
            others: Others::Refuse,
            memory: None,
        }
    }
}

/// Seals every Secret of `docs`. Nothing is returned unless every document
/// sealed.
pub fn seal_documents(
    docs: &[Document],
    opts: &SealOptions<'_>,
) -> Result<Vec<OutputDocument>, Error> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        if doc.kind() != Some("Secret") {
            match opts.others {
                Others::PassThrough => {
                    out.push(OutputDocument::from_input(doc));
                    continue;
                }
                Others::Refuse => {
                    let hint = if doc.kind() == Some("SealedSecret") {
                        "; it is already sealed (to add or replace items in it, use --merge-into)"
                    } else {
                        "; only Secrets are sealed (pass --pass-through to copy other objects unchanged)"
                    };
                    return Err(Error::invalid(
                        &doc.at,
                        format!("is {}, not a Secret{hint}", doc.describe_kind()),
                    ));
                }
            }
        }
        let secret = PlainSecret::from_document(doc)?;
        let sealed = seal_secret(&secret, &doc.at, opts)?;
        out.push(OutputDocument::sealed(&sealed)?);
    }
    Ok(out)
}

/// The namespace a Secret is sealed for: its own, else the fallback. Both
/// given and different is an error (which one did the user mean?).
pub(crate) fn resolve_namespace(
    own: Option<&str>,
    fallback: Option<&str>,
    scope: Scope,
    what: &str,
    at: &Location,
) -> Result<Option<String>, Error> {
    if let Some(ns) = fallback {
        value::check_namespace(ns, "--namespace").map_err(|m| Error::invalid(at, m))?;
    }
    let ns = match (own, fallback) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::invalid(
                at,
                format!("metadata.namespace is {a:?} but --namespace is {b:?}; remove one of them"),
            ))
        }
        (Some(a), _) => Some(a.to_string()),
        (None, b) => b.map(str::to_string),
    };
    if ns.is_none() && scope != Scope::Cluster {
        return Err(Error::invalid(
            at,
            format!(
                "no namespace: {scope} scope binds values to a namespace; add metadata.namespace \
                 to the {what} or pass --namespace NS"
            ),
        ));
    }
    Ok(ns)
}

/// The annotation of an input Secret that names its templated items
/// (comma-separated keys): their values are templates, copied as text to
/// `spec.template.data` instead of being sealed. The annotation itself is
/// not copied. See docs/templates.md.
pub const TEMPLATED_KEYS: &str = "gitseal.dev/templated-keys";

/// Splits `secret` into the Secret whose items are sealed and the templates
/// its [`TEMPLATED_KEYS`] annotation names. Every template is checked, and
/// may read only the items that are sealed with it and `other_inputs`.
pub fn split_templates(
    secret: &PlainSecret,
    at: &Location,
    other_inputs: &[String],
) -> Result<(PlainSecret, std::collections::BTreeMap<String, String>), Error> {
    let mut annotations = secret.annotations.clone();
    let named = annotations.remove(TEMPLATED_KEYS);
    let mut templates = BTreeMap::new();
    let mut items = BTreeMap::new();
    let keys: BTreeSet<&str> = named
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    for key in &keys {
        if !secret.items.contains_key(*key) {
            return Err(Error::invalid(
                at,
                format!(
                    "the annotation {TEMPLATED_KEYS} names {key:?}, but the Secret has no such item; \
                     add it to stringData with its template, or remove it from the annotation"
                ),
            ));
        }
    }
    for (key, value) in &secret.items {
        if keys.contains(key.as_str()) {
            let text = std::str::from_utf8(value.expose_secret())
                .map_err(|_| Error::item(at, key, "is named a template but is not UTF-8 text"))?;
            templates.insert(key.clone(), text.to_string());
        } else {
            items.insert(
                key.clone(),
                secrecy::SecretSlice::from(value.expose_secret().to_vec()),
            );
        }
    }
    for (key, text) in &templates {
        let reads = gitseal_template::check(key, text).map_err(|source| Error::Template {
            at: Box::new(at.clone()),
            source,
        })?;
        let unknown: Vec<String> = reads
            .names
            .keys()
            .filter(|n| !items.contains_key(*n) && !other_inputs.contains(n))
            .cloned()
            .collect();
        if let Some(first) = unknown.first() {
            return Err(Error::Template {
                at: Box::new(at.clone()),
                source: gitseal_template::Error::UnknownInput {
                    key: key.clone(),
                    line: reads.names.get(first).copied(),
                    names: unknown,
                },
            });
        }
    }
    let rest = PlainSecret {
        name: secret.name.clone(),
        namespace: secret.namespace.clone(),
        labels: secret.labels.clone(),
        annotations,
        type_: secret.type_.clone(),
        immutable: secret.immutable,
        items,
    };
    Ok((rest, templates))
}

/// Seals one Secret into a SealedSecret. Items named by the
/// [`TEMPLATED_KEYS`] annotation become `spec.template.data`.
pub fn seal_secret(
    secret: &PlainSecret,
    at: &Location,
    opts: &SealOptions<'_>,
) -> Result<SealedSecret, Error> {
    let (secret, templates) = split_templates(secret, at, &[])?;
    let secret = &secret;
    let name = secret.name.as_deref().ok_or_else(|| {
        Error::invalid(
            at,
            "the Secret has no metadata.name; add one (it is bound into every sealed value)",
        )
    })?;
    let namespace = resolve_namespace(
        secret.namespace.as_deref(),
        opts.namespace,
        opts.scope,
        "Secret",
        at,
    )?;
    let encrypted_data = seal_items(
        secret,
        name,
        namespace.as_deref(),
        opts.scope,
        opts.recipients,
        at,
        opts.memory,
    )?;

    let metadata =
        (!secret.labels.is_empty() || !secret.annotations.is_empty()).then(|| TemplateMetadata {
            labels: secret.labels.clone(),
            annotations: secret.annotations.clone(),
        });
    let template = (secret.type_.is_some()
        || secret.immutable.is_some()
        || metadata.is_some()
        || !templates.is_empty())
    .then(|| SecretTemplate {
        type_: secret.type_.clone(),
        metadata,
        immutable: secret.immutable,
        data: templates,
        include_inputs: None,
    });
    Ok(SealedSecret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace,
            ..ObjectMeta::default()
        },
        spec: SealedSecretSpec {
            scope: opts.scope,
            encrypted_data,
            vault_data: BTreeMap::new(),
            template,
            refresh_interval: None,
        },
        status: None,
    })
}

/// The most a Secret holds, all items together (Kubernetes refuses more).
pub const MAX_SECRET_BYTES: usize = 1 << 20;

/// Seals every item of `secret` for `namespace`/`name`, with one
/// [`Sealer`]: one HPKE encapsulation per recipient for the whole object,
/// a fresh data key and a binding-specific wrapping key per item. With a
/// `memory`, an item whose existing sealed value holds the same plaintext
/// keeps it (no churn), and every sealed value is remembered.
pub(crate) fn seal_items(
    secret: &PlainSecret,
    name: &str,
    namespace: Option<&str>,
    scope: Scope,
    recipients: &[Recipient],
    at: &Location,
    memory: Option<&dyn Memory>,
) -> Result<BTreeMap<String, String>, Error> {
    let total: usize = secret.items.values().map(|v| v.expose_secret().len()).sum();
    if total > MAX_SECRET_BYTES {
        return Err(Error::invalid(
            at,
            format!(
                "the items hold {total} bytes together, more than a Secret can hold (1 MiB); \
                 keep large files elsewhere (a volume, an object store) and seal a reference"
            ),
        ));
    }
    let error = |key: &str, source| Error::Seal {
        at: Box::new(at.clone()),
        item: key.to_string(),
        source,
    };
    let ids: BTreeSet<KeyId> = recipients.iter().map(Recipient::key_id).collect();
    let ns = namespace.unwrap_or_default();
    let mut sealer: Option<Sealer> = None;
    let mut out = BTreeMap::new();
    for (key, value) in &secret.items {
        let binding = Binding::new(scope, ns, name, key);
        let plain = value.expose_secret();
        if let Some(kept) = memory.and_then(|m| m.recall((ns, name, key), &binding, &ids, plain)) {
            out.insert(key.clone(), kept);
            continue;
        }
        let sealer = match &mut sealer {
            Some(s) => s,
            None => sealer.insert(Sealer::new(recipients).map_err(|e| error(key, e))?),
        };
        let sealed = sealer
            .seal(plain, &binding)
            .map_err(|e| error(key, e))?
            .to_string();
        if let Some(m) = memory {
            m.remember(&binding, plain, &sealed);
        }
        out.insert(key.clone(), sealed);
    }
    Ok(out)
}

/// Seals one value (`gitseal seal --raw`): returns the `gs1:` text.
/// Strict scope needs `namespace` and `name`, namespace scope `namespace`.
pub fn seal_raw(
    value: &[u8],
    recipients: &[Recipient],
    scope: Scope,
    namespace: Option<&str>,
    name: Option<&str>,
    key: &str,
) -> Result<String, Error> {
    let namespace = match (scope, namespace) {
        (Scope::Cluster, _) => "",
        (_, Some(ns)) => {
            value::check_namespace(ns, "--namespace").map_err(Error::Argument)?;
            ns
        }
        (_, None) => {
            return Err(Error::Argument(format!(
                "{scope} scope binds the value to a namespace: pass --namespace NS"
            )))
        }
    };
    let name = match (scope, name) {
        (Scope::Strict, Some(n)) => {
            value::check_name(n, "--name").map_err(Error::Argument)?;
            n
        }
        (Scope::Strict, None) => {
            return Err(Error::Argument(
                "strict scope binds the value to an object name: pass --name NAME".into(),
            ))
        }
        (_, n) => n.unwrap_or_default(),
    };
    value::check_item_key(key).map_err(Error::Argument)?;
    if value.len() > MAX_SECRET_BYTES {
        return Err(Error::Argument(format!(
            "the value is {} bytes, more than a Secret can hold (1 MiB)",
            value.len()
        )));
    }
    let binding = Binding::new(scope, namespace, name, key);
    gitseal_crypto::seal(value, recipients, &binding)
        .map(|e| e.to_string())
        .map_err(|source| Error::Argument(source.to_string()))
}
