//! `--merge-into`: add or replace items of an existing SealedSecret file.
//!
//! Only the items given are sealed; every other sealed value stays byte
//! for byte as it was, and so does the rest of the file: other documents are
//! copied as their original text, and the changed document keeps its key
//! order, its leading comments and everything outside `encryptedData`. So
//! the Git diff shows exactly the items that changed. The SealedSecret's
//! scope, name and namespace decide the binding; its template is kept.

use gitseal_crypto::{Recipient, Scope};
use serde_yaml::{Mapping, Value};

use crate::input::{self, Document, File, Syntax};
use crate::open::read_sealed;
use crate::seal::{resolve_namespace, seal_items};
use crate::secret::PlainSecret;
use crate::value::kind_of;
use crate::{output, Error, Location};

/// How to merge.
#[derive(Clone, Debug)]
pub struct MergeOptions<'a> {
    /// Every new value is sealed to all of these.
    pub recipients: &'a [Recipient],
    /// The scope asked for; must agree with the SealedSecret's when given.
    pub scope: Option<Scope>,
    /// Namespace for a SealedSecret that does not name one.
    pub namespace: Option<&'a str>,
}

/// The merged file.
#[derive(Debug)]
pub struct Merged {
    /// The new text of the whole file.
    pub text: String,
    /// What changed, one line each (`added item "x" to prod/db`).
    pub changes: Vec<String>,
}

struct Target {
    document: usize,
    list_item: Option<usize>,
    at: Location,
    name: String,
    namespace: Option<String>,
    scope: Scope,
}

fn targets(file: &File) -> Result<Vec<Target>, Error> {
    let mut out = Vec::new();
    for doc in input::documents(file)? {
        if doc.kind() != Some("SealedSecret") {
            continue;
        }
        let sealed = read_sealed(&doc)?;
        let Some(name) = sealed.metadata.name.clone() else {
            return Err(Error::invalid(
                &doc.at,
                "the SealedSecret has no metadata.name",
            ));
        };
        out.push(Target {
            document: doc.at.document,
            list_item: doc.at.list_item,
            at: doc.at.clone(),
            name,
            namespace: sealed.metadata.namespace.clone(),
            scope: sealed.spec.scope,
        });
    }
    Ok(out)
}

fn describe(t: &Target) -> String {
    match &t.namespace {
        Some(ns) => format!("{ns}/{}", t.name),
        None => t.name.clone(),
    }
}

/// The object a target points at, inside the file's values.
fn object_mut<'a>(docs: &'a mut [input::FileDocument], t: &Target) -> Option<&'a mut Mapping> {
    let value = &mut docs.get_mut(t.document)?.value;
    let value = match t.list_item {
        Some(i) => value.get_mut("items")?.as_sequence_mut()?.get_mut(i)?,
        None => value,
    };
    value.as_mapping_mut()
}

fn child_mapping<'a>(map: &'a mut Mapping, key: &str) -> &'a mut Mapping {
    let entry = map
        .entry(key.into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if !entry.is_mapping() {
        *entry = Value::Mapping(Mapping::new());
    }
    match entry {
        Value::Mapping(m) => m,
        _ => unreachable!("just made a mapping"),
    }
}

/// Sets `key` in `map`: replaced in place if present; otherwise inserted in
/// sorted position when the keys are sorted, else appended.
fn upsert(map: &mut Mapping, key: &str, value: String) -> bool {
    if let Some(slot) = map.get_mut(key) {
        *slot = Value::String(value);
        return true;
    }
    let keys: Vec<Option<&str>> = map.keys().map(Value::as_str).collect();
    let sorted = keys.windows(2).all(|w| w[0] <= w[1]);
    map.insert(key.into(), Value::String(value));
    if sorted {
        let mut entries: Vec<(Value, Value)> = std::mem::take(map).into_iter().collect();
        entries.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
        *map = entries.into_iter().collect();
    }
    false
}

/// Merges the Secrets of `secrets` into the SealedSecrets of `file`.
///
/// Each Secret goes into the SealedSecret of the same name (and namespace,
/// when the Secret names one); a Secret without a name goes into the only
/// SealedSecret of the file. Nothing is returned unless every item sealed.
pub fn merge_into(
    file: &File,
    secrets: &[Document],
    opts: &MergeOptions<'_>,
) -> Result<Merged, Error> {
    let targets = targets(file)?;
    if targets.is_empty() {
        return Err(Error::Invalid {
            at: Box::new(Location::new(file.origin.clone(), 0)),
            message:
                "holds no SealedSecret to merge into; seal the Secret without --merge-into first"
                    .into(),
        });
    }
    let mut documents = file.documents.clone();
    let mut touched = vec![false; documents.len()];
    let mut changes = Vec::new();
    for doc in secrets {
        if doc.kind() != Some("Secret") {
            return Err(Error::invalid(
                &doc.at,
                format!(
                    "is {}, not a Secret; --merge-into takes Secrets",
                    doc.describe_kind()
                ),
            ));
        }
        let secret = PlainSecret::from_document(doc)?;
        let matching: Vec<&Target> = targets
            .iter()
            .filter(|t| secret.name.as_ref().is_none_or(|n| *n == t.name))
            .filter(|t| match (&secret.namespace, &t.namespace) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .collect();
        let target = match matching.as_slice() {
            [one] => *one,
            [] => {
                let known: Vec<String> = targets.iter().map(describe).collect();
                let wanted = match (&secret.namespace, &secret.name) {
                    (Some(ns), Some(n)) => format!("{ns}/{n}"),
                    (None, Some(n)) => n.clone(),
                    _ => "(no name)".into(),
                };
                return Err(Error::invalid(
                    &doc.at,
                    format!(
                        "no SealedSecret {wanted} in {} (it has: {}); check metadata.name and metadata.namespace",
                        file.origin,
                        known.join(", ")
                    ),
                ));
            }
            several => {
                let known: Vec<String> = several.iter().map(|t| describe(t)).collect();
                return Err(Error::invalid(
                    &doc.at,
                    format!(
                        "matches several SealedSecrets in {} ({}); give the Secret a metadata.name and metadata.namespace",
                        file.origin,
                        known.join(", ")
                    ),
                ));
            }
        };
        if let Some(scope) = opts.scope {
            if scope != target.scope {
                return Err(Error::invalid(
                    &doc.at,
                    format!(
                        "--scope {scope} differs from the scope of {} ({}); every item of a SealedSecret has its scope, \
                         so drop --scope",
                        describe(target),
                        target.scope
                    ),
                ));
            }
        }
        let own_ns = target.namespace.as_deref().or(secret.namespace.as_deref());
        let namespace = resolve_namespace(
            own_ns,
            opts.namespace,
            target.scope,
            "SealedSecret",
            &target.at,
        )?;
        let sealed = seal_items(
            &secret,
            &target.name,
            namespace.as_deref(),
            target.scope,
            opts.recipients,
            &doc.at,
        )?;

        let object = object_mut(&mut documents, target)
            .ok_or_else(|| Error::invalid(&target.at, "the SealedSecret moved while merging"))?;
        let spec = child_mapping(object, "spec");
        for (key, value) in sealed {
            if let Some(Value::Mapping(vault)) = spec.get_mut("vaultData") {
                if vault.shift_remove(key.as_str()).is_some() {
                    changes.push(format!(
                        "item {key:?} of {} was a Vault reference; now sealed",
                        describe(target)
                    ));
                }
            }
            if let Some(Value::Mapping(vault)) = spec.get("vaultData") {
                if vault.is_empty() {
                    spec.shift_remove("vaultData");
                }
            }
            let data = child_mapping(spec, "encryptedData");
            let replaced = upsert(data, &key, value);
            changes.push(format!(
                "{} item {key:?} {} {}",
                if replaced { "replaced" } else { "added" },
                if replaced { "in" } else { "to" },
                describe(target)
            ));
        }
        if let Some(t) = touched.get_mut(target.document) {
            *t = true;
        }
    }

    // Rebuild the text: untouched documents as written, touched ones re-rendered.
    let mut text = String::with_capacity(file.text.len() + 1024);
    let mut pos = 0;
    for (doc, touched) in documents.iter().zip(&touched) {
        if !touched {
            continue;
        }
        let original = file.text.get(doc.range.clone()).unwrap_or_default();
        text.push_str(file.text.get(pos..doc.range.start).unwrap_or_default());
        text.push_str(&render_document(original, &doc.value, file.syntax)?);
        pos = doc.range.end;
    }
    text.push_str(file.text.get(pos..).unwrap_or_default());
    Ok(Merged { text, changes })
}

/// The new text of a changed document: YAML keeps the document's leading
/// marker and comment lines; JSON is pretty-printed in place.
/// Renders one changed document in the file's syntax. For YAML, the comments
/// and `---` marker that led the original document are kept.
pub fn render_document(original: &str, value: &Value, syntax: Syntax) -> Result<String, Error> {
    match syntax {
        Syntax::Json => {
            let mut json = output::json(value)?;
            json.truncate(json.trim_end().len());
            Ok(json)
        }
        Syntax::Yaml => {
            let mut out = String::new();
            for line in original.split_inclusive('\n') {
                let t = line.trim();
                let marker_only = line.starts_with("---") && {
                    let rest = line.get(3..).unwrap_or_default().trim();
                    rest.is_empty() || rest.starts_with('#')
                };
                if marker_only || t.is_empty() || t.starts_with('#') {
                    out.push_str(line);
                } else {
                    break;
                }
            }
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !value.is_mapping() {
                return Err(Error::Output(format!("document is {}", kind_of(value))));
            }
            out.push_str(&output::yaml(value)?);
            Ok(out)
        }
    }
}
