//! Re-sealing: the sealed values of SealedSecrets opened with an old
//! identity and sealed again to new recipients, with the same binding
//! (scope, namespace, name, item key), so each still opens only where it
//! did. Used by `gitseal reseal` and by `seal --merge-into --reseal-all`.
//!
//! The file stays as written: each old value is replaced where it stands
//! (comments, order and quoting kept); when a value cannot be found
//! verbatim (a folded or escaped scalar) the file is rendered again.

use gitseal_crypto::{Binding, Envelope, Identity, Opener, Recipient, Scope, Sealer};
use secrecy::ExposeSecret as _;
use serde_yaml::Value;

use crate::input::{self, Document, Syntax};
use crate::open::{open_value, read_sealed};
use crate::output::{self, Format, OutputDocument};
use crate::seal::resolve_namespace;
use crate::{Error, Location};

/// Which objects to re-seal, and to whom.
pub trait Plan {
    /// The recipients for the SealedSecret at `at`, or `None` to leave it
    /// as it is. `envelopes` are its items' sealed values, parsed.
    fn recipients(
        &self,
        at: &Location,
        envelopes: &[(&str, Envelope)],
    ) -> Result<Option<Vec<Recipient>>, Error>;
}

/// Every object, to the same recipients.
pub struct All<'a>(pub &'a [Recipient]);

impl Plan for All<'_> {
    fn recipients(
        &self,
        _at: &Location,
        _envelopes: &[(&str, Envelope)],
    ) -> Result<Option<Vec<Recipient>>, Error> {
        Ok(Some(self.0.to_vec()))
    }
}

/// One re-sealed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resealed {
    /// The new text.
    pub text: String,
    /// How many values were re-sealed.
    pub values: usize,
    /// Where the re-sealed objects are (`file, document 2`).
    pub objects: Vec<Location>,
}

/// The namespace a SealedSecret's values are bound to: its own, else
/// `fallback` (`--namespace`); both given and different is an error, as
/// for `unseal`.
pub fn namespace_of(
    doc_namespace: Option<&str>,
    fallback: Option<&str>,
    scope: Scope,
    at: &Location,
) -> Result<String, Error> {
    Ok(resolve_namespace(doc_namespace, fallback, scope, "SealedSecret", at)?.unwrap_or_default())
}

/// Re-seals the SealedSecrets of one file's text that `plan` picks. All or
/// nothing: an error means nothing is returned. Values that do not open
/// give the does-not-open errors ([`Error::is_does_not_open`]).
pub fn reseal_text(
    text: &str,
    origin: &str,
    identities: &[Identity],
    plan: &dyn Plan,
    namespace: Option<&str>,
) -> Result<Resealed, Error> {
    let file = input::parse_file(text, origin)?;
    let docs = input::documents(&file)?;
    let mut swaps: Vec<(String, String)> = Vec::new();
    let mut rendered = Vec::with_capacity(docs.len());
    let mut objects = Vec::new();
    for doc in &docs {
        match reseal_document(doc, identities, plan, namespace)? {
            Some((value, mut pairs)) => {
                objects.push(doc.at.clone());
                swaps.append(&mut pairs);
                rendered.push(OutputDocument::new(value));
            }
            None => rendered.push(OutputDocument::from_input(doc)),
        }
    }
    let values = swaps.len();
    // Sealed values are random, so each appears exactly once; when one
    // does not (a folded or escaped scalar), write the documents again.
    let verbatim = swaps
        .iter()
        .all(|(old, _)| file.text.matches(old.trim()).count() == 1);
    let text = if verbatim {
        let mut out = file.text.clone();
        for (old, new) in &swaps {
            out = out.replacen(old.trim(), new, 1);
        }
        out
    } else {
        let format = match file.syntax {
            Syntax::Json => Format::Json,
            Syntax::Yaml => Format::Yaml,
        };
        output::render(&rendered, format)?
    };
    Ok(Resealed {
        text,
        values,
        objects,
    })
}

/// The SealedSecrets of one file's text that `plan` would re-seal, without
/// opening anything (`reseal --all --dry-run`).
pub fn affected(text: &str, origin: &str, plan: &dyn Plan) -> Result<Vec<Location>, Error> {
    let file = input::parse_file(text, origin)?;
    let mut out = Vec::new();
    for doc in input::documents(&file)? {
        if let Some((_, envelopes)) = sealed_items(&doc)? {
            let items: Vec<(&str, Envelope)> = envelopes
                .iter()
                .map(|(k, e)| (k.as_str(), e.clone()))
                .collect();
            if plan.recipients(&doc.at, &items)?.is_some() {
                out.push(doc.at.clone());
            }
        }
    }
    Ok(out)
}

/// A SealedSecret document and its items' envelopes; `None` for other
/// documents and SealedSecrets without sealed items.
#[allow(clippy::type_complexity)]
fn sealed_items(
    doc: &Document,
) -> Result<Option<(crate::types::SealedSecret, Vec<(String, Envelope)>)>, Error> {
    if doc.kind() != Some("SealedSecret") {
        return Ok(None);
    }
    let sealed = read_sealed(doc)?;
    let envelopes = sealed
        .spec
        .encrypted_data
        .iter()
        .map(|(k, v)| {
            Envelope::parse(v)
                .map(|e| (k.clone(), e))
                .map_err(|source| Error::Envelope {
                    at: Box::new(doc.at.clone()),
                    item: k.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if envelopes.is_empty() {
        return Ok(None);
    }
    Ok(Some((sealed, envelopes)))
}

/// Re-seals one document when it is a SealedSecret the plan picks: its new
/// value and the (old, new) sealed texts.
#[allow(clippy::type_complexity)]
fn reseal_document(
    doc: &Document,
    identities: &[Identity],
    plan: &dyn Plan,
    namespace: Option<&str>,
) -> Result<Option<(Value, Vec<(String, String)>)>, Error> {
    let Some((sealed, envelopes)) = sealed_items(doc)? else {
        return Ok(None);
    };
    let at = &doc.at;
    let items: Vec<(&str, Envelope)> = envelopes
        .iter()
        .map(|(k, e)| (k.as_str(), e.clone()))
        .collect();
    let Some(recipients) = plan.recipients(at, &items)? else {
        return Ok(None);
    };
    let name = sealed
        .metadata
        .name
        .as_deref()
        .ok_or_else(|| Error::invalid(at, "the SealedSecret has no metadata.name; add one"))?;
    let scope = sealed.spec.scope;
    let ns = namespace_of(sealed.metadata.namespace.as_deref(), namespace, scope, at)?;
    let mut value = doc.value.clone();
    // One opener and one sealer per object: one X25519 per key each way.
    let mut opener = Opener::new(identities);
    let mut sealer = Sealer::new(&recipients).map_err(|source| Error::Seal {
        at: Box::new(at.clone()),
        item: envelopes
            .first()
            .map(|(k, _)| k.to_string())
            .unwrap_or_default(),
        source,
    })?;
    let mut swaps = Vec::with_capacity(envelopes.len());
    for (item, old) in &sealed.spec.encrypted_data {
        let plain = open_value(old, &mut opener, scope, &ns, name, item, at)?;
        let binding = Binding::new(scope, &ns, name, item);
        let new = sealer
            .seal(plain.expose_secret(), &binding)
            .map_err(|source| Error::Seal {
                at: Box::new(at.clone()),
                item: item.clone(),
                source,
            })?
            .to_string();
        if let Some(slot) = value
            .get_mut("spec")
            .and_then(|s| s.get_mut("encryptedData"))
            .and_then(|d| d.get_mut(item.as_str()))
        {
            *slot = Value::String(new.clone());
        }
        swaps.push((old.clone(), new));
    }
    Ok(Some((value, swaps)))
}
