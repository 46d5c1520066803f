//! Small helpers for pulling typed fields out of a generic YAML value by
//! hand. They describe a wrong value by its *type* only ("a number"), never
//! by its content, so an error can never echo a secret.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use crate::{Error, Location};

/// "a number", "a list"…: what a value is, without saying what it holds.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null (empty)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a value with a YAML tag",
    }
}

/// The mapping at `key` of `map`, `None` when absent or null.
pub(crate) fn mapping<'a>(
    map: &'a Mapping,
    key: &str,
    path: &str,
    at: &Location,
) -> Result<Option<&'a Mapping>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(m)) => Ok(Some(m)),
        Some(other) => Err(Error::invalid(
            at,
            format!("{path} is {}, expected a mapping", kind_of(other)),
        )),
    }
}

/// The string at `key` of `map`, `None` when absent or null. Only for
/// fields that are never secret (names, types).
pub(crate) fn string<'a>(
    map: &'a Mapping,
    key: &str,
    path: &str,
    at: &Location,
) -> Result<Option<&'a str>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::invalid(
            at,
            format!("{path} is {}, expected a string", kind_of(other)),
        )),
    }
}

/// The boolean at `key` of `map`, `None` when absent or null.
pub(crate) fn boolean(
    map: &Mapping,
    key: &str,
    path: &str,
    at: &Location,
) -> Result<Option<bool>, Error> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Error::invalid(
            at,
            format!("{path} is {}, expected true or false", kind_of(other)),
        )),
    }
}

/// The keys of a mapping as strings. A YAML key that is a number or a
/// boolean is turned into its text, as Kubernetes' YAML reader does.
pub(crate) fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string → string mapping (labels, annotations). Values are described by
/// type only on error.
pub(crate) fn string_map(
    map: &Mapping,
    key: &str,
    path: &str,
    at: &Location,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    if let Some(m) = mapping(map, key, path, at)? {
        for (k, v) in m {
            let k = key_text(k).ok_or_else(|| {
                Error::invalid(at, format!("{path} has a key that is {}", kind_of(k)))
            })?;
            match v {
                Value::String(s) => {
                    out.insert(k, s.clone());
                }
                other => {
                    return Err(Error::invalid(
                        at,
                        format!(
                            "{path}.{k} is {}, expected a string (quote it)",
                            kind_of(other)
                        ),
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// Whether `s` is a DNS-1123 subdomain (Kubernetes object names): at most
/// 253 characters of lowercase letters, digits, '-' and '.', starting and
/// ending with a letter or digit.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Whether `s` is a DNS-1123 label (Kubernetes namespaces): at most 63
/// characters of lowercase letters, digits and '-', starting and ending
/// with a letter or digit.
pub(crate) fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

/// Whether `s` is a valid key of a Secret's `data`: 1–253 characters of
/// letters, digits, '-', '_' and '.'.
pub(crate) fn is_item_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Checks an item key and says what is wrong with it.
pub(crate) fn check_item_key(key: &str) -> Result<(), String> {
    if is_item_key(key) {
        Ok(())
    } else {
        Err(format!(
            "item key {key:?} is not valid: use 1 to 253 letters, digits, '-', '_' or '.' (as Kubernetes requires)"
        ))
    }
}

/// Checks an object name (`metadata.name`, `--name`).
pub(crate) fn check_name(name: &str, what: &str) -> Result<(), String> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253)"
        ))
    }
}

/// Checks a namespace (`metadata.namespace`, `--namespace`).
pub(crate) fn check_namespace(ns: &str, what: &str) -> Result<(), String> {
    if is_dns_label(ns) {
        Ok(())
    } else {
        Err(format!("{what} {ns:?} is not a valid namespace (lowercase letters, digits and '-', at most 63)"))
    }
}
