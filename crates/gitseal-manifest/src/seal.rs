//! Sealing: Secret manifests in, SealedSecret manifests out.
//!
//! Each item is sealed to every recipient, bound to where it will live
//! (scope + namespace + name + item key, see `gitseal_crypto::Binding`).
//! The Secret's type, labels, annotations and `immutable` go to
//! `spec.template`; server-set fields and kubectl's last-applied annotation
//! are dropped. Strict and namespace scope need a namespace: the manifest's
//! `metadata.namespace`, or a fallback given by the caller (`--namespace`).

use std::collections::BTreeMap;

use gitseal_crypto::{Binding, Recipient, Scope, Sealer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use secrecy::ExposeSecret;

use crate::input::Document;
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
#[derive(Clone, Debug)]
pub struct SealOptions<'a> {
    /// Every value is sealed to all of these.
    pub recipients: &'a [Recipient],
    /// The binding scope.
    pub scope: Scope,
    /// Namespace for Secrets that do not name one.
    pub namespace: Option<&'a str>,
    /// What to do with documents that are not Secrets.
    pub others: Others,
}

impl<'a> SealOptions<'a> {
    /// Strict scope, no namespace fallback, other kinds refused.
    pub fn new(recipients: &'a [Recipient]) -> Self {
        SealOptions {
            recipients,
            scope: Scope::Strict,
            namespace: None,
            others: Others::Refuse,
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

/// Seals one Secret into a SealedSecret.
pub fn seal_secret(
    secret: &PlainSecret,
    at: &Location,
    opts: &SealOptions<'_>,
) -> Result<SealedSecret, Error> {
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
    )?;

    let metadata =
        (!secret.labels.is_empty() || !secret.annotations.is_empty()).then(|| TemplateMetadata {
            labels: secret.labels.clone(),
            annotations: secret.annotations.clone(),
        });
    let template = (secret.type_.is_some() || secret.immutable.is_some() || metadata.is_some())
        .then(|| SecretTemplate {
            type_: secret.type_.clone(),
            metadata,
            immutable: secret.immutable,
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

/// Seals every item of `secret` for `namespace`/`name`, with one
/// [`Sealer`]: one HPKE encapsulation per recipient for the whole object,
/// a fresh data key and a binding-specific wrapping key per item.
pub(crate) fn seal_items(
    secret: &PlainSecret,
    name: &str,
    namespace: Option<&str>,
    scope: Scope,
    recipients: &[Recipient],
    at: &Location,
) -> Result<BTreeMap<String, String>, Error> {
    let mut items = secret.items.iter();
    let Some(first) = items.next() else {
        return Ok(BTreeMap::new());
    };
    let error = |key: &str, source| Error::Seal {
        at: Box::new(at.clone()),
        item: key.to_string(),
        source,
    };
    let mut sealer = Sealer::new(recipients).map_err(|e| error(first.0, e))?;
    std::iter::once(first)
        .chain(items)
        .map(|(key, value)| {
            let binding = Binding::new(scope, namespace.unwrap_or_default(), name, key);
            sealer
                .seal(value.expose_secret(), &binding)
                .map(|envelope| (key.clone(), envelope.to_string()))
                .map_err(|e| error(key, e))
        })
        .collect()
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
    let binding = Binding::new(scope, namespace, name, key);
    gitseal_crypto::seal(value, recipients, &binding)
        .map(|e| e.to_string())
        .map_err(|source| Error::Argument(source.to_string()))
}
