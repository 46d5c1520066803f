//! Writing manifests: YAML (the default; several documents separated by
//! `---`) or JSON (one object, or a `kind: List` holding several).
//!
//! Documents are generic values whose mapping order is kept, so a
//! SealedSecret prints as `apiVersion, kind, metadata, spec` and a Secret as
//! `apiVersion, kind, metadata, type, immutable, data`. A document passed
//! through from YAML input is written back as its original text.

use serde_yaml::{Mapping, Value};

use crate::types::SealedSecret;
use crate::Error;

/// Output syntax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// YAML, documents separated by `---`.
    #[default]
    Yaml,
    /// JSON, pretty-printed; several documents become a `kind: List`.
    Json,
}

/// One document to write. Holds plaintext when it is an opened Secret:
/// `Debug` shows its kind, never its content.
#[derive(Clone, PartialEq)]
pub struct OutputDocument {
    /// The object.
    pub value: Value,
    /// Its original YAML text, written as is in YAML output.
    pub raw: Option<String>,
}

impl std::fmt::Debug for OutputDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputDocument")
            .field("kind", &self.value.get("kind").and_then(Value::as_str))
            .finish_non_exhaustive()
    }
}

impl OutputDocument {
    /// A generic value.
    pub fn new(value: Value) -> Self {
        OutputDocument { value, raw: None }
    }

    /// An input document, unchanged.
    pub fn from_input(doc: &crate::input::Document) -> Self {
        OutputDocument {
            value: doc.value.clone(),
            raw: doc.raw.clone(),
        }
    }

    /// A SealedSecret (`apiVersion, kind, metadata, spec` order; no status).
    pub fn sealed(sealed: &SealedSecret) -> Result<Self, Error> {
        let value = serde_yaml::to_value(sealed).map_err(|e| Error::Output(e.to_string()))?;
        let mut map = match value {
            Value::Mapping(m) => m,
            _ => {
                return Err(Error::Output(
                    "a SealedSecret did not serialize to a mapping".into(),
                ))
            }
        };
        map.remove("status");
        Ok(OutputDocument::new(Value::Mapping(map)))
    }
}

/// Whether a line starts a YAML document (`---` then a blank or the end).
fn starts_with_marker(text: &str) -> bool {
    text.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// Renders documents in `format`. YAML: each document, `---` between them.
/// JSON: one object, or a `List` of several (an empty `List` for none).
pub fn render(docs: &[OutputDocument], format: Format) -> Result<String, Error> {
    match format {
        Format::Yaml => {
            let mut out = String::new();
            for (i, doc) in docs.iter().enumerate() {
                let text = match &doc.raw {
                    Some(raw) => raw.clone(),
                    None => yaml(&doc.value)?,
                };
                if i > 0 && !starts_with_marker(&text) {
                    out.push_str("---\n");
                }
                out.push_str(&text);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Ok(out)
        }
        Format::Json => {
            let value = match docs {
                [one] => one.value.clone(),
                many => {
                    let mut list = Mapping::new();
                    list.insert("apiVersion".into(), "v1".into());
                    list.insert("kind".into(), "List".into());
                    list.insert(
                        "items".into(),
                        Value::Sequence(many.iter().map(|d| d.value.clone()).collect()),
                    );
                    Value::Mapping(list)
                }
            };
            json(&value)
        }
    }
}

/// One value as YAML that YAML 1.1 and 1.2 readers (kubectl, Go yaml.v2
/// and v3, PyYAML, serde_yaml) read back the same: strings such as `on`,
/// `y`, `0o17` or `1:20` are quoted (see the `yaml` module).
pub fn yaml(value: &Value) -> Result<String, Error> {
    crate::yaml::to_string(value)
}

/// A copy of `value` that JSON can hold: mapping keys that are numbers,
/// booleans or null become their text (as Kubernetes' YAML reader does);
/// a key that is a list or a mapping is an error.
fn json_safe(value: &Value) -> Result<Value, Error> {
    Ok(match value {
        Value::Mapping(m) => {
            let mut out = Mapping::with_capacity(m.len());
            for (k, v) in m {
                let key = match k {
                    Value::String(_) => k.clone(),
                    Value::Null => Value::String("null".into()),
                    Value::Bool(_) | Value::Number(_) => {
                        Value::String(crate::value::key_text(k).unwrap_or_default())
                    }
                    other => {
                        return Err(Error::Output(format!(
                            "a mapping key is {}, which JSON cannot hold; use --format yaml",
                            crate::value::kind_of(other)
                        )))
                    }
                };
                out.insert(key, json_safe(v)?);
            }
            Value::Mapping(out)
        }
        Value::Sequence(items) => {
            Value::Sequence(items.iter().map(json_safe).collect::<Result<_, _>>()?)
        }
        Value::Tagged(t) => json_safe(&t.value)?,
        other => other.clone(),
    })
}

/// One value as pretty JSON, with a final newline. YAML tags are dropped
/// (JSON has none); mapping keys as `json_safe` says. Characters that YAML
/// 1.1 reads as line breaks or refuses (U+0085, U+2028, U+2029, DEL and the
/// C1 controls, U+FEFF) are written as `\uXXXX` escapes, so the JSON also
/// reads back the same as YAML.
pub fn json(value: &Value) -> Result<String, Error> {
    let value = json_safe(value)?;
    let text = serde_json::to_string_pretty(&value).map_err(|e| Error::Output(e.to_string()))?;
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if crate::yaml::needs_escape(c) && u32::from(c) >= 0x20 {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_turns_scalar_keys_into_text_and_refuses_complex_keys() {
        let v: Value =
            serde_yaml::from_str("1: a\ntrue: b\nnested: {2: c}\ntagged: !x d\n").expect("yaml");
        let text = json(&v).expect("json");
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back["1"], "a");
        assert_eq!(back["true"], "b");
        assert_eq!(back["nested"]["2"], "c");
        assert_eq!(back["tagged"], "d");
        let v: Value = serde_yaml::from_str("? [a]\n: b\n").expect("yaml");
        let err = json(&v).expect_err("list key");
        assert_eq!(err.to_string(), "cannot write the output: a mapping key is a list, which JSON cannot hold; use --format yaml");
    }
}
