//! Kubernetes-aware checks: plaintext `Secret`s, kustomize
//! `secretGenerator` literals (and the files generators read, handed to
//! `kustomize`), and SealedSecret values that do not parse,
//! are sealed to a key outside the keyring, or are bound to another place.
//! Documents are parsed generically (`serde_yaml::Value`); line numbers are
//! recovered by locating keys in the document text.

use crate::finding::{escape_control, Rule};
use crate::kustomize::{self, RawRef, Source};
use crate::rules::{line_bounds, Hit};
use gitseal_crypto::{Binding, Envelope, KeyId, Scope};
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::str::FromStr;

/// Cheap test: could this file hold anything the Kubernetes checks look at?
pub(crate) fn wants(path: &str, data: &[u8]) -> bool {
    let lower = path.to_ascii_lowercase();
    let ext_ok = lower.ends_with(".yaml")
        || lower.ends_with(".yml")
        || lower.ends_with(".json")
        || kustomize::is_kustomization(path);
    if !ext_ok {
        return false;
    }
    memchr::memmem::find(data, b"secretGenerator").is_some() || may_hold_secret_kind(data)
}

/// Whether some `kind` in the text could be `Secret`, `SealedSecret` or
/// `List`: a plain `kind: Deployment` rules a place out, anything YAML can
/// dress a value in (a tag `!!str`, an anchor or alias, a block or flow
/// scalar, a value on the next line, a quoted string with escapes, a
/// complex `? kind` key, an escaped key) keeps the file for a full parse.
fn may_hold_secret_kind(data: &[u8]) -> bool {
    if memchr::memmem::find(data, b"\\u").is_some() || memchr::memmem::find(data, b"\\x").is_some()
    {
        return true;
    }
    for p in memchr::memmem::find_iter(data, b"kind") {
        let mut i = p + 4;
        if matches!(data.get(i), Some(b'"' | b'\'')) {
            i += 1;
        }
        while data.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
            i += 1;
        }
        if data.get(i) != Some(&b':') {
            // `? kind` (a complex key) puts the value on the next line.
            let (ls, _) = line_bounds(data, p);
            if data[ls..p].trim_ascii_start().starts_with(b"?") {
                return true;
            }
            continue;
        }
        i += 1;
        while data.get(i).is_some_and(|b| *b == b' ' || *b == b'\t') {
            i += 1;
        }
        let rest = &data[i.min(data.len())..];
        let word = |r: &[u8]| {
            r.starts_with(b"Secret") || r.starts_with(b"SealedSecret") || r.starts_with(b"List")
        };
        match rest.first() {
            Some(q @ (b'"' | b'\'')) => {
                let body = &rest[1..];
                let end = memchr::memchr(*q, body).unwrap_or(body.len());
                if word(body) || memchr::memchr(b'\\', &body[..end]).is_some() {
                    return true;
                }
            }
            Some(b) if b.is_ascii_alphanumeric() => {
                if word(rest) {
                    return true;
                }
            }
            // A mapping or sequence (`kind:` as a schema property).
            Some(b'{' | b'[') => {}
            // Nothing more on this line: the value is on the next one,
            // unless that starts a nested mapping or sequence.
            Some(b'\n' | b'\r' | b'#') | None => {
                let (_, le) = line_bounds(data, i.min(data.len().saturating_sub(1)));
                let next = data.get(le + 1..).unwrap_or(&[]);
                let (_, ne) = line_bounds(next, 0);
                let line = next[..ne].trim_ascii();
                let nested = line.starts_with(b"-")
                    || memchr::memmem::find(line, b": ").is_some()
                    || line.ends_with(b":");
                if !nested {
                    return true;
                }
            }
            // A tag, anchor, alias or block scalar.
            Some(_) => return true,
        }
    }
    false
}

/// What YAML means, without its dress: tags dropped (`!!str Secret` is the
/// string `Secret`), merge keys (`<<: *base`) applied. Aliases are already
/// resolved by the parser.
fn normalize(v: &mut Value) {
    fn untag(v: &mut Value) {
        match v {
            Value::Tagged(t) => {
                let inner = std::mem::replace(&mut t.value, Value::Null);
                *v = inner;
                untag(v);
            }
            Value::Sequence(items) => items.iter_mut().for_each(untag),
            Value::Mapping(m) => {
                let entries: Vec<(Value, Value)> = std::mem::take(m).into_iter().collect();
                for (mut k, mut val) in entries {
                    untag(&mut k);
                    untag(&mut val);
                    m.insert(k, val);
                }
            }
            _ => {}
        }
    }
    untag(v);
    // A malformed merge leaves the rest as it is.
    let _ = v.apply_merge();
}

/// Runs the Kubernetes checks on one file.
/// secretGenerator file references go to `refs`.
pub(crate) fn scan(
    data: &[u8],
    known: Option<&BTreeSet<KeyId>>,
    out: &mut Vec<Hit>,
    refs: &mut Vec<RawRef>,
) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            if let Ok(v) = serde_yaml::to_value(v) {
                let doc = Doc {
                    text,
                    base: 0,
                    end: text.len(),
                };
                check_value(&doc, &v, known, out, refs);
                return;
            }
        }
        // Not JSON: YAML flow style (`{kind: Secret, …}`), parsed below.
    }
    for (base, end) in split_documents(text) {
        let chunk = &text[base..end];
        if !chunk.contains("secretGenerator") && !may_hold_secret_kind(chunk.as_bytes()) {
            continue;
        }
        let Ok(mut v) = serde_yaml::from_str::<Value>(chunk) else {
            continue;
        };
        normalize(&mut v);
        let doc = Doc { text, base, end };
        check_value(&doc, &v, known, out, refs);
    }
}

/// Byte ranges of the documents of a YAML stream (split at `---` lines).
fn split_documents(text: &str) -> Vec<(usize, usize)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end();
        if l == "---" || l.starts_with("--- ") || l == "..." {
            if pos > start {
                docs.push((start, pos));
            }
            start = pos + line.len();
        }
        pos += line.len();
    }
    if text.len() > start {
        docs.push((start, text.len()));
    }
    docs
}

struct Doc<'a> {
    text: &'a str,
    base: usize,
    end: usize,
}

impl Doc<'_> {
    /// Finds `key` used as a mapping key (YAML or JSON style) at or after
    /// byte `from`; returns its offset.
    fn locate(&self, from: usize, key: &str) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        let hay = self.text.as_bytes();
        let region = &hay[from.max(self.base)..self.end];
        let region_start = from.max(self.base);
        for p in memchr::memmem::find_iter(region, key.as_bytes()) {
            let s = region_start + p;
            let e = s + key.len();
            let (qs, qe) = match (s.checked_sub(1).map(|i| hay[i]), hay.get(e)) {
                (Some(q @ (b'"' | b'\'')), Some(&q2)) if q == q2 => (s - 1, e + 1),
                _ => (s, e),
            };
            let before_ok = qs == 0
                || matches!(
                    hay[qs - 1],
                    b' ' | b'\t' | b'\n' | b'{' | b',' | b'-' | b'\r'
                );
            let mut i = qe;
            while i < hay.len() && matches!(hay[i], b' ' | b'\t') {
                i += 1;
            }
            if before_ok && hay.get(i) == Some(&b':') {
                return Some(qs);
            }
        }
        None
    }

    /// Finds a literal string (e.g. a secretGenerator entry) at or after `from`.
    fn find(&self, from: usize, needle: &str) -> Option<usize> {
        let from = from.max(self.base);
        if needle.is_empty() || from >= self.end {
            return None;
        }
        memchr::memmem::find(&self.text.as_bytes()[from..self.end], needle.as_bytes())
            .map(|p| from + p)
    }
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn check_value(
    doc: &Doc<'_>,
    v: &Value,
    known: Option<&BTreeSet<KeyId>>,
    out: &mut Vec<Hit>,
    refs: &mut Vec<RawRef>,
) {
    if s(v, "kind") == Some("List") {
        if let Some(items) = v.get("items").and_then(Value::as_sequence) {
            let mut from = doc.base;
            for item in items {
                let anchor = item
                    .get("metadata")
                    .and_then(|m| s(m, "name"))
                    .and_then(|n| doc.find(from, n))
                    .unwrap_or(from);
                from = anchor;
                check_object(doc, item, from, known, out, refs);
                from = from.saturating_add(1);
            }
        }
        return;
    }
    check_object(doc, v, doc.base, known, out, refs);
}

fn check_object(
    doc: &Doc<'_>,
    v: &Value,
    from: usize,
    known: Option<&BTreeSet<KeyId>>,
    out: &mut Vec<Hit>,
    refs: &mut Vec<RawRef>,
) {
    let kind = s(v, "kind");
    let api = s(v, "apiVersion").unwrap_or("");
    if kind == Some("Secret") && (api == "v1" || api.is_empty()) {
        plaintext_secret(doc, v, from, out);
    } else if kind == Some("SealedSecret") && api.starts_with("gitseal.dev/") {
        sealed_secret(doc, v, from, known, out);
    }
    if let Some(gens) = v.get("secretGenerator").and_then(Value::as_sequence) {
        secret_generator(doc, gens, from, out, refs);
    }
}

/// Builds a hit located at `pos`, covering the rest of that line so that
/// pattern findings on the same value yield to it.
fn hit_at(doc: &Doc<'_>, pos: usize, rule: Rule, message: String, secret: &[u8]) -> Hit {
    let (_, le) = line_bounds(doc.text.as_bytes(), pos);
    Hit {
        rule,
        start: pos,
        span: (pos, le.max(pos)),
        message,
        secret: secret.to_vec(),
    }
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn plaintext_secret(doc: &Doc<'_>, v: &Value, from: usize, out: &mut Vec<Hit>) {
    let name = v
        .get("metadata")
        .and_then(|m| s(m, "name"))
        .unwrap_or("<unnamed>");
    for field in ["data", "stringData"] {
        let Some(map) = v.get(field).and_then(Value::as_mapping) else {
            continue;
        };
        let field_pos = doc.locate(from, field).unwrap_or(from);
        for (k, val) in map {
            let Some(k) = k.as_str() else { continue };
            let Some(text) = value_text(val) else {
                continue;
            };
            if text.is_empty() || text.contains("{{") {
                continue;
            }
            let pos = doc.locate(field_pos, k).unwrap_or(field_pos);
            out.push(hit_at(
                doc,
                pos,
                Rule::KubePlaintextSecret,
                format!(
                    "Secret `{}` has plaintext {field} item `{}`: seal it with `gitseal seal` and commit the SealedSecret instead",
                    escape_control(name),
                    escape_control(k)
                ),
                text.as_bytes(),
            ));
        }
    }
}

fn secret_generator(
    doc: &Doc<'_>,
    gens: &[Value],
    from: usize,
    out: &mut Vec<Hit>,
    refs: &mut Vec<RawRef>,
) {
    let base = doc.locate(from, "secretGenerator").unwrap_or(from);
    let mut cursor = base;
    for g in gens {
        let gname = s(g, "name").unwrap_or("<unnamed>");
        generator_refs(g, gname, refs);
        let Some(lits) = g.get("literals").and_then(Value::as_sequence) else {
            continue;
        };
        for lit in lits {
            let Some(lit) = lit.as_str() else { continue };
            let Some((k, val)) = lit.split_once('=') else {
                continue;
            };
            if kustomize::placeholder_value(val.as_bytes()) {
                continue;
            }
            let pos = doc.find(cursor, lit).unwrap_or(cursor);
            cursor = pos;
            out.push(hit_at(
                doc,
                pos,
                Rule::KustomizeSecretLiteral,
                format!(
                    "secretGenerator `{}` has plaintext literal `{}`: use a SealedSecret instead",
                    escape_control(gname),
                    escape_control(k)
                ),
                val.as_bytes(),
            ));
        }
    }
}

/// The files a generator reads: `envs:` (list), `env:` (one path) and
/// `files:` (`path` or `key=path`).
fn generator_refs(g: &Value, gname: &str, refs: &mut Vec<RawRef>) {
    let strings = |key: &str| -> Vec<&str> {
        match g.get(key) {
            Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(one)) => vec![one.as_str()],
            _ => Vec::new(),
        }
    };
    for path in strings("envs").into_iter().chain(strings("env")) {
        refs.push(RawRef {
            generator: gname.to_string(),
            source: Source::Env,
            item: None,
            path: path.to_string(),
        });
    }
    for entry in strings("files") {
        let (item, path) = kustomize::file_entry(entry);
        refs.push(RawRef {
            generator: gname.to_string(),
            source: Source::File,
            item: Some(item),
            path,
        });
    }
}

fn sealed_secret(
    doc: &Doc<'_>,
    v: &Value,
    from: usize,
    known: Option<&BTreeSet<KeyId>>,
    out: &mut Vec<Hit>,
) {
    let meta = v.get("metadata");
    let name = meta.and_then(|m| s(m, "name"));
    let namespace = meta.and_then(|m| s(m, "namespace"));
    let spec = v.get("spec");
    for f in crate::template::findings(spec) {
        let base = doc.locate(from, "template").unwrap_or(from);
        let pos = doc.locate(base, &f.key).unwrap_or(base);
        let message = format!(
            "SealedSecret `{}`: {}",
            escape_control(name.unwrap_or("<unnamed>")),
            escape_control(&f.message)
        );
        let (rule, secret) = match &f.secret {
            Some(pasted) => (Rule::UrlPassword, pasted.as_slice()),
            None => (Rule::SealedTemplateInvalid, f.key.as_bytes()),
        };
        out.push(hit_at(doc, pos, rule, message, secret));
    }
    let scope_text = spec.and_then(|sp| s(sp, "scope")).unwrap_or("strict");
    let Some(map) = spec
        .and_then(|sp| sp.get("encryptedData"))
        .and_then(Value::as_mapping)
    else {
        return;
    };
    let data_pos = doc.locate(from, "encryptedData").unwrap_or(from);
    let obj = escape_control(name.unwrap_or("<unnamed>"));
    let scope = match Scope::from_str(scope_text) {
        Ok(sc) => sc,
        Err(_) => {
            let pos = doc.locate(from, "scope").unwrap_or(data_pos);
            out.push(hit_at(
                doc,
                pos,
                Rule::SealedValueInvalid,
                format!(
                    "SealedSecret `{obj}` has spec.scope `{}`: use strict, namespace or cluster",
                    escape_control(scope_text)
                ),
                scope_text.as_bytes(),
            ));
            return;
        }
    };
    for (k, val) in map {
        let Some(k) = k.as_str() else { continue };
        let pos = doc.locate(data_pos, k).unwrap_or(data_pos);
        let item = escape_control(k);
        let Some(text) = val.as_str() else {
            out.push(hit_at(
                doc,
                pos,
                Rule::SealedValueInvalid,
                format!("SealedSecret `{obj}` item `{item}` is not a string: re-seal it with `gitseal seal`"),
                k.as_bytes(),
            ));
            continue;
        };
        if !gitseal_crypto::is_sealed(text) {
            out.push(hit_at(
                doc,
                pos,
                Rule::SealedValueInvalid,
                format!(
                    "SealedSecret `{obj}` item `{item}` is not sealed (no gs1: prefix); if this is plaintext, rotate it and seal it with `gitseal seal`"
                ),
                text.as_bytes(),
            ));
            continue;
        }
        let env = match Envelope::parse(text.trim()) {
            Ok(env) => env,
            Err(e) => {
                out.push(hit_at(
                    doc,
                    pos,
                    Rule::SealedValueInvalid,
                    format!(
                        "SealedSecret `{obj}` item `{item}`: {e}; re-seal it with `gitseal seal`"
                    ),
                    text.as_bytes(),
                ));
                continue;
            }
        };
        if let Some(known) = known {
            let unknown: Vec<String> = env
                .key_ids()
                .into_iter()
                .filter(|id| !known.contains(id))
                .map(|id| id.to_string())
                .collect();
            if !unknown.is_empty() {
                out.push(hit_at(
                    doc,
                    pos,
                    Rule::SealedUnknownKey,
                    format!(
                        "SealedSecret `{obj}` item `{item}` is sealed to key id(s) {} not in the keyring: re-seal to the keyring's keys (`gitseal reseal`) or add the key to .gitseal/keys.yaml",
                        unknown.join(", ")
                    ),
                    text.as_bytes(),
                ));
            }
        }
        if let Some(why) = binding_mismatch(env.binding(), scope, namespace, name, k) {
            out.push(hit_at(
                doc,
                pos,
                Rule::SealedBindingMismatch,
                format!(
                    "SealedSecret `{obj}` item `{item}`: {why}; a sealed value cannot be moved, seal it again for this place"
                ),
                text.as_bytes(),
            ));
        }
    }
}

fn binding_mismatch(
    b: &Binding,
    scope: Scope,
    namespace: Option<&str>,
    name: Option<&str>,
    key: &str,
) -> Option<String> {
    if b.scope() != scope {
        return Some(format!(
            "sealed with scope {} but spec.scope is {}",
            b.scope(),
            scope
        ));
    }
    if b.key() != key {
        return Some(format!("sealed for item key `{}`", escape_control(b.key())));
    }
    if scope != Scope::Cluster {
        if let (Some(want), Some(got)) = (namespace, b.namespace()) {
            if want != got {
                return Some(format!(
                    "sealed for namespace `{}`, not `{}`",
                    escape_control(got),
                    escape_control(want)
                ));
            }
        }
    }
    if scope == Scope::Strict {
        if let (Some(want), Some(got)) = (name, b.name()) {
            if want != got {
                return Some(format!(
                    "sealed for name `{}`, not `{}`",
                    escape_control(got),
                    escape_control(want)
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_on_separators() {
        let t = "a: 1\n---\nb: 2\n--- \nc: 3\n";
        let docs = split_documents(t);
        assert_eq!(docs.len(), 3);
        assert_eq!(&t[docs[1].0..docs[1].1], "b: 2\n");
    }

    #[test]
    fn locate_yaml_and_json_keys() {
        let t = "data:\n  password: x\n";
        let d = Doc {
            text: t,
            base: 0,
            end: t.len(),
        };
        assert_eq!(d.locate(0, "password"), Some(8));
        let j = r#"{"data": {"password": "x"}}"#;
        let d = Doc {
            text: j,
            base: 0,
            end: j.len(),
        };
        assert_eq!(d.locate(0, "password"), Some(10));
    }
}
