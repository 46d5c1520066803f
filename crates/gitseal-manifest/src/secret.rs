//! A Kubernetes `Secret` read from a manifest, with its values held in
//! `secrecy` types, and the rules for reading one.
//!
//! The fields are extracted by hand from the generic value so that every
//! error names the file, the document and the item, and none repeats a
//! value. What Kubernetes does is followed: `data` is base64, `stringData`
//! is text and wins over `data` for the same key, keys are
//! `[-._a-zA-Z0-9]+`. Server-set fields (resourceVersion, uid,
//! managedFields, status…) and kubectl's last-applied annotation, which
//! holds a copy of the plaintext, are dropped.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice};
use serde_yaml::{Mapping, Value};

use crate::input::Document;
use crate::value::{self, kind_of};
use crate::{Error, Location};

/// kubectl's copy of the last applied object: it holds the plaintext of a
/// Secret, so it never goes into a SealedSecret.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Top-level fields of a Secret that are read.
const SECRET_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "type",
    "immutable",
    "data",
    "stringData",
    "status",
];

/// A Secret's contents. `Debug` shows item keys and lengths, never values.
pub struct PlainSecret {
    /// `metadata.name`, if given.
    pub name: Option<String>,
    /// `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`, without kubectl's last-applied copy.
    pub annotations: BTreeMap<String, String>,
    /// `type`.
    pub type_: Option<String>,
    /// `immutable`.
    pub immutable: Option<bool>,
    /// Item key → value bytes (`data` decoded, overlaid with `stringData`).
    pub items: BTreeMap<String, SecretSlice<u8>>,
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: BTreeMap<&str, String> = self
            .items
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    format!("[REDACTED; {} bytes]", v.expose_secret().len()),
                )
            })
            .collect();
        f.debug_struct("PlainSecret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("type_", &self.type_)
            .field("immutable", &self.immutable)
            .field("items", &items)
            .finish()
    }
}

impl PlainSecret {
    /// Reads a Secret document. Errors when the document is not a Secret,
    /// when a field has the wrong type, when a `data` value is not base64 or
    /// a `stringData` value is not a string.
    pub fn from_document(doc: &Document) -> Result<PlainSecret, Error> {
        let at = &doc.at;
        let Value::Mapping(map) = &doc.value else {
            return Err(Error::invalid(
                at,
                format!("is {}, expected a Secret", kind_of(&doc.value)),
            ));
        };
        match (doc.kind(), doc.api_version()) {
            (Some("Secret"), None | Some("v1")) => {}
            (Some("Secret"), Some(other)) => {
                return Err(Error::invalid(
                    at,
                    format!("is a Secret of apiVersion {other:?}, expected apiVersion v1"),
                ))
            }
            _ => {
                return Err(Error::invalid(
                    at,
                    format!("is {}, not a Secret", doc.describe_kind()),
                ))
            }
        }
        for (k, _) in map {
            let known = k.as_str().is_some_and(|k| SECRET_FIELDS.contains(&k));
            if !known {
                let name = value::key_text(k).unwrap_or_else(|| kind_of(k).to_string());
                return Err(Error::invalid(
                    at,
                    format!(
                        "unknown field {name:?} in a Secret (it has apiVersion, kind, metadata, type, \
                         immutable, data and stringData); check its spelling"
                    ),
                ));
            }
        }
        let empty = Mapping::new();
        let metadata = value::mapping(map, "metadata", "metadata", at)?.unwrap_or(&empty);
        let name = value::string(metadata, "name", "metadata.name", at)?.map(str::to_string);
        let namespace =
            value::string(metadata, "namespace", "metadata.namespace", at)?.map(str::to_string);
        if let Some(name) = &name {
            value::check_name(name, "metadata.name").map_err(|m| Error::invalid(at, m))?;
        }
        if let Some(ns) = &namespace {
            value::check_namespace(ns, "metadata.namespace").map_err(|m| Error::invalid(at, m))?;
        }
        let labels = value::string_map(metadata, "labels", "metadata.labels", at)?;
        let mut annotations =
            value::string_map(metadata, "annotations", "metadata.annotations", at)?;
        annotations.remove(LAST_APPLIED);
        let type_ = value::string(map, "type", "type", at)?.map(str::to_string);
        let immutable = value::boolean(map, "immutable", "immutable", at)?;

        let mut items = BTreeMap::new();
        if let Some(data) = value::mapping(map, "data", "data", at)? {
            for (k, v) in data {
                let key = item_key(k, "data", at)?;
                let bytes = decode_data(v, &key, at)?;
                items.insert(key, bytes);
            }
        }
        if let Some(string_data) = value::mapping(map, "stringData", "stringData", at)? {
            for (k, v) in string_data {
                let key = item_key(k, "stringData", at)?;
                let bytes = string_data_value(v, &key, at)?;
                // As in Kubernetes: stringData wins over data for the same key.
                items.insert(key, bytes);
            }
        }
        Ok(PlainSecret {
            name,
            namespace,
            labels,
            annotations,
            type_,
            immutable,
            items,
        })
    }
}

fn item_key(k: &Value, field: &str, at: &Location) -> Result<String, Error> {
    let key = value::key_text(k).ok_or_else(|| {
        Error::invalid(
            at,
            format!(
                "{field} has a key that is {}, expected a string",
                kind_of(k)
            ),
        )
    })?;
    value::check_item_key(&key).map_err(|m| Error::invalid(at, m))?;
    Ok(key)
}

fn decode_data(v: &Value, key: &str, at: &Location) -> Result<SecretSlice<u8>, Error> {
    let text = match v {
        Value::String(s) => s,
        Value::Null => {
            return Err(Error::item(
                at,
                key,
                "data value is empty (null); write \"\" for an empty value, or remove the item",
            ))
        }
        other => {
            return Err(Error::item(
                at,
                key,
                format!(
                    "data value is {}, expected a base64 string (put plain text under stringData)",
                    kind_of(other)
                ),
            ))
        }
    };
    // Like Go's decoder behind Kubernetes, line breaks inside are ignored.
    let compact: zeroize::Zeroizing<Vec<u8>> = zeroize::Zeroizing::new(
        text.bytes()
            .filter(|b| !matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
            .collect(),
    );
    match STANDARD.decode(&*compact) {
        Ok(bytes) => Ok(SecretSlice::from(bytes)),
        Err(_) => Err(Error::item(
            at,
            key,
            "data value is not valid base64; data holds base64-encoded values \
             (put plain text under stringData instead)",
        )),
    }
}

fn string_data_value(v: &Value, key: &str, at: &Location) -> Result<SecretSlice<u8>, Error> {
    match v {
        Value::String(s) => Ok(SecretSlice::from(s.as_bytes().to_vec())),
        Value::Null => Err(Error::item(
            at,
            key,
            "stringData value is empty (null); write \"\" for an empty value, or remove the item",
        )),
        Value::Bool(_) | Value::Number(_) => Err(Error::item(
            at,
            key,
            format!("stringData value is {}, not a string: quote it", kind_of(v)),
        )),
        other => Err(Error::item(
            at,
            key,
            format!("stringData value is {}, expected a string", kind_of(other)),
        )),
    }
}
