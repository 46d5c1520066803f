//! `--merge-into`: add or replace items of an existing SealedSecret file.
//!
//! Only the items given are sealed; every other sealed value stays byte
//! for byte as it was, and so does the rest of the file: other documents are
//! copied as their original text, and the changed document is edited in
//! place when its `encryptedData` is a plain block mapping (comments,
//! quoting and layout kept; checked by parsing the result again), or else
//! rendered again with its key order and leading comments. So the Git diff
//! shows exactly the items that changed. The SealedSecret's
//! scope, name and namespace decide the binding; its template is kept.
//!
//! New items must be sealed to the same keys as the object's other items,
//! or the object would need two keys to open: different recipients are
//! refused, unless the caller gives the old identities to re-seal every
//! item (`--reseal-all`).
//!
//! Vault references (`--from-vault`) are merged here too: into the
//! SealedSecrets just sealed ([`add_vault_items`]) or into a file
//! ([`merge_vault`]).

use std::collections::BTreeSet;

use gitseal_crypto::{Binding, Envelope, Identity, KeyId, Opener, Recipient, Scope, Sealer};
use secrecy::ExposeSecret as _;
use serde_yaml::{Mapping, Value};

use crate::input::{self, Document, File, Syntax};
use crate::open::{open_value, read_sealed};
use crate::output::OutputDocument;
use crate::seal::{resolve_namespace, seal_items};
use crate::secret::PlainSecret;
use crate::types::VaultReference;
use crate::value::kind_of;
use crate::{output, Error, Location};

/// How to merge.
#[derive(Clone)]
pub struct MergeOptions<'a> {
    /// Every new value is sealed to all of these.
    pub recipients: &'a [Recipient],
    /// The scope asked for; must agree with the SealedSecret's when given.
    pub scope: Option<Scope>,
    /// Namespace for a SealedSecret that does not name one.
    pub namespace: Option<&'a str>,
    /// When the object's items are sealed to other keys than `recipients`:
    /// `None` refuses ([`Error::RecipientsDiffer`]); `Some(identities)`
    /// opens every other item with them and seals it again to `recipients`.
    pub reseal_with: Option<&'a [Identity]>,
    /// Existing sealed values to keep when their plaintext did not change,
    /// and where to remember what was sealed (see [`crate::memory`]).
    pub memory: Option<&'a dyn crate::memory::Memory>,
}

/// The merged file.
#[derive(Debug)]
pub struct Merged {
    /// The new text of the whole file.
    pub text: String,
    /// What changed, one line each (`added item "x" to prod/db`).
    pub changes: Vec<String>,
}

pub(crate) struct Target {
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

/// The object at `at` (a document, or an item of a `kind: List`), inside
/// the file's values.
pub fn object_mut<'a>(
    docs: &'a mut [input::FileDocument],
    at: &Location,
) -> Option<&'a mut Mapping> {
    let value = &mut docs.get_mut(at.document)?.value;
    let value = match (at.list_item, value) {
        (Some(i), Value::Sequence(items)) => items.get_mut(i)?,
        (Some(i), value) => value.get_mut("items")?.as_sequence_mut()?.get_mut(i)?,
        (None, value) => value,
    };
    value.as_mapping_mut()
}

/// The mapping under `key` of `map`, made (or made a mapping) if it is not one.
pub fn child_mapping<'a>(map: &'a mut Mapping, key: &str) -> &'a mut Mapping {
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
pub(crate) fn upsert(map: &mut Mapping, key: &str, value: String) -> bool {
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
        if secret.annotations.contains_key(crate::seal::TEMPLATED_KEYS) {
            // Templates are not sealed items: never seal one by mistake.
            return Err(Error::invalid(
                &doc.at,
                format!(
                    "has the annotation {}: --merge-into adds sealed items only; add or change \
                     templates with `gitseal edit` (or seal the whole Secret without --merge-into)",
                    crate::seal::TEMPLATED_KEYS
                ),
            ));
        }
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
            opts.memory,
        )?;

        let object = object_mut(&mut documents, &target.at)
            .ok_or_else(|| Error::invalid(&target.at, "the SealedSecret moved while merging"))?;
        let spec = child_mapping(object, "spec");
        let resealed = align_recipients(
            spec,
            &secret,
            target,
            namespace.as_deref().unwrap_or_default(),
            opts,
        )?;
        if resealed > 0 {
            changes.push(format!(
                "re-sealed {resealed} other item(s) of {} to the new recipients",
                describe(target)
            ));
        }
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
        if let Some(t) = touched.get_mut(target.at.document) {
            *t = true;
        }
    }

    let text = rebuild(file, &documents, &touched)?;
    Ok(Merged { text, changes })
}

/// Makes the object's other sealed items agree with the new recipients:
/// nothing to do when they are sealed to exactly those keys; else refused,
/// or re-sealed with `opts.reseal_with`. Returns how many were re-sealed.
fn align_recipients(
    spec: &mut Mapping,
    secret: &PlainSecret,
    target: &Target,
    namespace: &str,
    opts: &MergeOptions<'_>,
) -> Result<usize, Error> {
    let want: BTreeSet<KeyId> = opts.recipients.iter().map(Recipient::key_id).collect();
    let Some(Value::Mapping(data)) = spec.get_mut("encryptedData") else {
        return Ok(0);
    };
    let mut differing = Vec::new();
    let mut have = BTreeSet::new();
    for (k, v) in data.iter() {
        let (Some(key), Some(text)) = (k.as_str(), v.as_str()) else {
            continue;
        };
        if secret.items.contains_key(key) {
            continue; // replaced anyway
        }
        let envelope = Envelope::parse(text).map_err(|source| Error::Envelope {
            at: Box::new(target.at.clone()),
            item: key.to_string(),
            source,
        })?;
        let ids: BTreeSet<KeyId> = envelope.key_ids().into_iter().collect();
        if ids != want {
            have.extend(ids);
            differing.push((key.to_string(), text.to_string()));
        }
    }
    if differing.is_empty() {
        return Ok(0);
    }
    let Some(identities) = opts.reseal_with else {
        return Err(Error::RecipientsDiffer {
            at: Box::new(target.at.clone()),
            object: describe(target),
            have: have.into_iter().collect(),
            want: want.into_iter().collect(),
        });
    };
    let mut opener = Opener::new(identities);
    let mut sealer = Sealer::new(opts.recipients).map_err(|source| Error::Seal {
        at: Box::new(target.at.clone()),
        item: differing[0].0.clone(),
        source,
    })?;
    for (key, text) in &differing {
        let plain = open_value(
            text,
            &mut opener,
            target.scope,
            namespace,
            &target.name,
            key,
            &target.at,
        )?;
        let binding = Binding::new(target.scope, namespace, &target.name, key);
        let new = sealer
            .seal(plain.expose_secret(), &binding)
            .map_err(|source| Error::Seal {
                at: Box::new(target.at.clone()),
                item: key.clone(),
                source,
            })?;
        data.insert(key.as_str().into(), Value::String(new.to_string()));
    }
    Ok(differing.len())
}

/// Adds Vault references to the one SealedSecret sealed from `inputs`
/// (`seal --from-vault` without `--merge-into`): `docs` are the sealed
/// output documents, one per input document.
pub fn add_vault_items(
    inputs: &[Document],
    docs: &mut [OutputDocument],
    items: &[(String, VaultReference)],
) -> Result<(), Error> {
    check_unique_items(items)?;
    let mut sealed: Vec<(&mut OutputDocument, &Document)> = docs
        .iter_mut()
        .zip(inputs)
        .filter(|(_, input)| input.kind() == Some("Secret"))
        .collect();
    let (doc, input) = match sealed.as_mut_slice() {
        [one] => (&mut *one.0, one.1),
        other => {
            return Err(Error::Argument(format!(
                "--from-vault adds items to one SealedSecret, but the input holds {} Secrets; \
                 seal them one at a time",
                other.len()
            )))
        }
    };
    let spec = doc
        .value
        .get_mut("spec")
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| Error::invalid(&input.at, "the sealed document has no spec"))?;
    if let Some(Value::Mapping(data)) = spec.get("encryptedData") {
        if let Some((item, _)) = items.iter().find(|(i, _)| data.contains_key(i.as_str())) {
            return Err(Error::invalid(
                &input.at,
                format!("item {item:?} is both in the Secret and in --from-vault; keep it in one of them"),
            ));
        }
    }
    let vault = child_mapping(spec, "vaultData");
    for (item, reference) in items {
        vault.insert(item.as_str().into(), vault_value(reference)?);
    }
    Ok(())
}

/// Refuses an item given twice.
pub fn check_unique_items(items: &[(String, VaultReference)]) -> Result<(), Error> {
    for (i, (item, _)) in items.iter().enumerate() {
        if items[..i].iter().any(|(other, _)| other == item) {
            return Err(Error::Argument(format!(
                "--from-vault names item {item:?} twice; give each item once"
            )));
        }
    }
    Ok(())
}

fn vault_value(reference: &VaultReference) -> Result<Value, Error> {
    serde_yaml::to_value(reference).map_err(|e| Error::Output(e.to_string()))
}

/// Adds or replaces Vault references in the one SealedSecret of the file
/// `text` (`seal --merge-into FILE --from-vault …`); a sealed item of the
/// same name is removed. Other documents keep their text; the changed one
/// keeps its leading comments and key order.
pub fn merge_vault(
    text: &str,
    origin: &str,
    items: &[(String, VaultReference)],
) -> Result<Merged, Error> {
    check_unique_items(items)?;
    let mut file = input::parse_file(text, origin)?;
    let docs = input::documents(&file)?;
    let targets: Vec<&Document> = docs
        .iter()
        .filter(|d| d.kind() == Some("SealedSecret"))
        .collect();
    let at = match targets.as_slice() {
        [one] => one.at.clone(),
        other => {
            return Err(Error::invalid(
                &Location::new(origin, 0),
                format!(
                    "--from-vault with --merge-into needs a file holding exactly one \
                     SealedSecret; it holds {}",
                    other.len()
                ),
            ))
        }
    };
    let object = object_mut(&mut file.documents, &at)
        .ok_or_else(|| Error::invalid(&at, "the SealedSecret is not a mapping"))?;
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(no name)")
        .to_string();
    let spec = child_mapping(object, "spec");
    let mut changes = Vec::new();
    for (item, reference) in items {
        if let Some(Value::Mapping(data)) = spec.get_mut("encryptedData") {
            if data.shift_remove(item.as_str()).is_some() {
                changes.push(format!(
                    "item {item:?} of {name} was sealed; now a Vault reference"
                ));
            }
            if data.is_empty() {
                spec.shift_remove("encryptedData");
            }
        }
        let vault = child_mapping(spec, "vaultData");
        let replaced = vault
            .insert(item.as_str().into(), vault_value(reference)?)
            .is_some();
        changes.push(format!(
            "{} Vault item {item:?} {} {name}",
            if replaced { "replaced" } else { "added" },
            if replaced { "in" } else { "to" },
        ));
    }
    let doc = file
        .documents
        .get(at.document)
        .ok_or_else(|| Error::invalid(&at, "the SealedSecret moved while merging"))?;
    let range = doc.range.clone();
    let new_doc = render_document(
        file.text.get(range.clone()).unwrap_or_default(),
        &doc.value,
        file.syntax,
    )?;
    let mut out = String::with_capacity(file.text.len() + 256);
    out.push_str(file.text.get(..range.start).unwrap_or_default());
    out.push_str(&new_doc);
    out.push_str(file.text.get(range.end..).unwrap_or_default());
    Ok(Merged { text: out, changes })
}

/// The `spec.encryptedData` mapping of a SealedSecret document (or of the
/// first object of a List), when there is one.
fn encrypted_data(doc: &Value) -> Option<&Mapping> {
    let object = match doc.get("items").and_then(Value::as_sequence) {
        Some(_) => return None,
        None => doc,
    };
    object.get("spec")?.get("encryptedData")?.as_mapping()
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The layout of a plain block `encryptedData:` mapping in a document's lines.
struct Layout {
    /// The `encryptedData:` line.
    header: usize,
    /// The first line of each entry, in order.
    starts: Vec<usize>,
    /// The entries' indentation.
    item_indent: usize,
    /// The last line of the block that is not blank or a comment.
    last_content: usize,
}

impl Layout {
    fn of(lines: &[&str]) -> Option<Layout> {
        let header = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let t = l.trim();
                t.strip_prefix("encryptedData:")
                    .is_some_and(|rest| rest.trim().is_empty() || rest.trim().starts_with('#'))
            })
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        let [header] = header.as_slice() else {
            return None;
        };
        let header = *header;
        let parent = indent_of(lines[header]);
        // The block: every line after the header until one at the parent's
        // indentation or less (blank lines and comments do not end it).
        let mut end = header + 1;
        let mut starts = Vec::new();
        let mut item_indent = None;
        let mut last_content = header;
        while let Some(line) = lines.get(end) {
            if !is_blank_or_comment(line) {
                let indent = indent_of(line);
                if indent <= parent {
                    break;
                }
                let q = *item_indent.get_or_insert(indent);
                if indent == q {
                    starts.push(end);
                }
                last_content = end;
            }
            end += 1;
        }
        Some(Layout {
            header,
            starts,
            item_indent: item_indent?,
            last_content,
        })
    }

    /// Where entry `n` starts, with the comment lines just above it.
    fn entry_start(&self, lines: &[&str], n: usize) -> usize {
        let mut at = self.starts[n];
        while at > self.header + 1 && lines[at - 1].trim().starts_with('#') {
            at -= 1;
        }
        at
    }
}

/// Edits the text of a YAML SealedSecret document in place so that it says
/// `after`, when the only change from `before` is items of
/// `spec.encryptedData` replaced, added or removed: a replaced value is
/// swapped where it stands, an added item gets a line of its own in its
/// sorted place, a removed item's lines go (the comments above it stay).
/// Comments, quoting and layout everywhere else stay as written. `None`
/// when the change is anything else or the layout is not the plain block
/// style this understands; the result is checked by parsing it again, so
/// a `Some` always means the same document as `after` (mapping equality:
/// key order is not part of the check; new keys are placed by `after`'s
/// order).
fn patch_encrypted_data(original: &str, before: &Value, after: &Value) -> Option<String> {
    let old = encrypted_data(before)?;
    let new = encrypted_data(after)?;
    let mut text = original.to_string();

    // Removed items first: their entries' lines.
    let removed: Vec<usize> = old
        .keys()
        .enumerate()
        .filter(|(_, k)| !new.contains_key(*k))
        .map(|(i, _)| i)
        .collect();
    let mut kept = old.clone();
    if !removed.is_empty() {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let layout = Layout::of(&lines)?;
        if layout.starts.len() != old.len() {
            return None;
        }
        let mut drop = vec![false; lines.len()];
        for &n in &removed {
            let end = if n + 1 < layout.starts.len() {
                layout.entry_start(&lines, n + 1)
            } else {
                layout.last_content + 1
            };
            for d in drop.iter_mut().take(end).skip(layout.starts[n]) {
                *d = true;
            }
        }
        text = lines
            .iter()
            .zip(&drop)
            .filter(|(_, d)| !**d)
            .map(|(l, _)| *l)
            .collect();
        kept.retain(|k, _| new.contains_key(k));
    }

    for (key, value) in new {
        let (Some(was), Some(now)) = (kept.get(key).and_then(Value::as_str), value.as_str()) else {
            continue;
        };
        if was != now {
            if was.is_empty() || text.matches(was).count() != 1 {
                return None;
            }
            text = text.replacen(was, now, 1);
        }
    }

    let added: Vec<(&Value, &Value)> = new.iter().filter(|(k, _)| !kept.contains_key(*k)).collect();
    if !added.is_empty() {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let layout = Layout::of(&lines)?;
        if layout.starts.len() != kept.len() {
            return None;
        }
        let mut inserts: Vec<(usize, String)> = Vec::new();
        for (key, value) in &added {
            let later_old = new
                .keys()
                .skip_while(|k| k != key)
                .find_map(|k| kept.keys().position(|o| o == k));
            let at = match later_old {
                Some(n) => layout.entry_start(&lines, n),
                None => layout.last_content + 1,
            };
            let mut one = Mapping::new();
            one.insert((*key).clone(), (*value).clone());
            let rendered = output::yaml(&Value::Mapping(one)).ok()?;
            if rendered.trim_end().contains('\n') {
                return None;
            }
            inserts.push((
                at,
                format!(
                    "{}{}\n",
                    " ".repeat(layout.item_indent),
                    rendered.trim_end()
                ),
            ));
        }
        let mut out = String::with_capacity(text.len() + inserts.len() * 200);
        for (i, line) in lines.iter().enumerate() {
            for (_, new_line) in inserts.iter().filter(|(at, _)| *at == i) {
                out.push_str(new_line);
            }
            if i + 1 == lines.len()
                && !line.ends_with('\n')
                && inserts.iter().any(|(at, _)| *at > i)
            {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            out.push_str(line);
        }
        for (_, new_line) in inserts.iter().filter(|(at, _)| *at >= lines.len()) {
            out.push_str(new_line);
        }
        text = out;
    }

    let reparsed: Value = serde_yaml::from_str(&text).ok()?;
    (reparsed == *after).then_some(text)
}

/// The file's new text after its documents' values changed: untouched
/// documents as written, touched ones patched in place when only
/// `encryptedData` items changed (see [`patch_encrypted_data`]), else
/// rendered again.
pub(crate) fn rebuild(
    file: &File,
    documents: &[input::FileDocument],
    touched: &[bool],
) -> Result<String, Error> {
    let mut text = String::with_capacity(file.text.len() + 1024);
    let mut pos = 0;
    for (i, (doc, touched)) in documents.iter().zip(touched).enumerate() {
        if !touched {
            continue;
        }
        let original = file.text.get(doc.range.clone()).unwrap_or_default();
        text.push_str(file.text.get(pos..doc.range.start).unwrap_or_default());
        let before = file.documents.get(i).map(|d| &d.value);
        let patched = match (file.syntax, before) {
            (Syntax::Yaml, Some(before)) => patch_encrypted_data(original, before, &doc.value),
            _ => None,
        };
        match patched {
            Some(patched) => text.push_str(&patched),
            None => text.push_str(&render_document(original, &doc.value, file.syntax)?),
        }
        pos = doc.range.end;
    }
    text.push_str(file.text.get(pos..).unwrap_or_default());
    Ok(text)
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
