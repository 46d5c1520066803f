//! Reading manifests: multi-document YAML (`---`), JSON (one object, a
//! stream of objects, or a `kind: List` with `items`), from text with an
//! origin name (a path or `<stdin>`).
//!
//! Documents are parsed into generic [`serde_yaml::Value`]s (mapping order
//! kept), never straight into typed structs, so that the callers can report
//! errors precisely and without echoing values. The YAML splitter keeps each
//! document's own text too: a document passed through, or left alone by
//! `--merge-into`, is written back byte for byte.

use std::fmt;
use std::ops::Range;

use serde_yaml::Value;

use crate::value::kind_of;
use crate::{Error, Location};

/// The syntax of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// YAML, possibly several documents separated by `---`.
    Yaml,
    /// JSON: one value or a stream of values.
    Json,
}

/// One top-level document of a file, as written. Holds plaintext when the
/// file does: `Debug` shows where it is, never what it holds.
#[derive(Clone)]
pub struct FileDocument {
    /// 0-based index among the non-empty documents of the file.
    pub index: usize,
    /// 1-based line where its content starts (after any `---` and comments).
    pub line: usize,
    /// Byte range of its text in the file (YAML: from its `---` line, if
    /// any, up to the next one; JSON: the value itself).
    pub range: Range<usize>,
    /// The parsed value.
    pub value: Value,
}

/// A whole input file, split into documents. `Debug` shows its name,
/// syntax and documents, never its text.
#[derive(Clone)]
pub struct File {
    /// The path, or `<stdin>`.
    pub origin: String,
    /// Its syntax.
    pub syntax: Syntax,
    /// The text (without a leading byte order mark).
    pub text: String,
    /// The non-empty documents, in order.
    pub documents: Vec<FileDocument>,
}

/// One Kubernetes object to work on: a top-level document, or one item of a
/// `kind: List`. Holds plaintext when it is a Secret: `Debug` shows where
/// it is and its kind, never its content.
#[derive(Clone)]
pub struct Document {
    /// Where it is.
    pub at: Location,
    /// The object: always a YAML mapping.
    pub value: Value,
    /// Its YAML text as written (top-level YAML documents only), so it can
    /// be passed through unchanged.
    pub raw: Option<String>,
}

impl fmt::Debug for FileDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileDocument")
            .field("index", &self.index)
            .field("line", &self.line)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("origin", &self.origin)
            .field("syntax", &self.syntax)
            .field("documents", &self.documents)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("at", &self.at)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl Document {
    /// The object's `kind`, if it is a string.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }

    /// The object's `apiVersion`, if it is a string.
    pub fn api_version(&self) -> Option<&str> {
        self.value.get("apiVersion").and_then(Value::as_str)
    }

    /// "a Deployment", "an object with no kind"…, for messages.
    pub fn describe_kind(&self) -> String {
        match self.kind() {
            Some(k) if k.starts_with(['A', 'E', 'I', 'O', 'U']) => format!("an {k}"),
            Some(k) => format!("a {k}"),
            None => "an object with no kind".to_string(),
        }
    }
}

/// Parses `text` and returns its objects, with the items of `kind: List`
/// documents expanded in place. Empty documents are skipped.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Document>, Error> {
    documents(&parse_file(text, origin)?)
}

/// The objects of a parsed file; see [`parse`].
pub fn documents(file: &File) -> Result<Vec<Document>, Error> {
    let mut out = Vec::with_capacity(file.documents.len());
    for doc in &file.documents {
        let at = Location {
            origin: file.origin.clone(),
            document: doc.index,
            line: Some(doc.line),
            list_item: None,
        };
        // A `kind: List`, or a bare array of objects (`jq -s` prints one).
        let items = match &doc.value {
            Value::Mapping(map) => list_items(map),
            // Untagged mappings only: serde_yaml's `is_mapping` looks
            // through a tag, and a tagged item, passed through, was written
            // as a tagged document this function then refused (found by
            // the manifest_input fuzz target).
            Value::Sequence(items)
                if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Mapping(_))) =>
            {
                Some(items)
            }
            _ => {
                return Err(Error::invalid(
                    &at,
                    format!(
                        "is {}, expected a Kubernetes object (a mapping with apiVersion and kind)",
                        kind_of(&doc.value)
                    ),
                ))
            }
        };
        if let Some(items) = items {
            for (i, item) in items.iter().enumerate() {
                let at = Location {
                    list_item: Some(i),
                    ..at.clone()
                };
                if !matches!(item, Value::Mapping(_)) {
                    return Err(Error::invalid(
                        &at,
                        format!("is {}, expected a Kubernetes object", kind_of(item)),
                    ));
                }
                out.push(Document {
                    at,
                    value: item.clone(),
                    raw: None,
                });
            }
            continue;
        }
        let raw = match file.syntax {
            Syntax::Yaml => file.text.get(doc.range.clone()).map(str::to_string),
            Syntax::Json => None,
        };
        out.push(Document {
            at,
            value: doc.value.clone(),
            raw,
        });
    }
    Ok(out)
}

/// The `items` of a `kind: List` (or `…List`) object.
pub(crate) fn list_items(map: &serde_yaml::Mapping) -> Option<&Vec<Value>> {
    let kind = map.get("kind")?.as_str()?;
    if !kind.ends_with("List") {
        return None;
    }
    match map.get("items") {
        Some(Value::Sequence(items)) => Some(items),
        _ => None,
    }
}

/// Whether the text looks like JSON: its first non-blank character opens
/// an object or an array.
pub fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('{' | '['))
}

/// Splits and parses a file. An input that starts with `{` or `[` is read as
/// JSON (falling back to YAML, of which JSON is nearly a subset).
pub fn parse_file(text: &str, origin: &str) -> Result<File, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if looks_like_json(text) {
        match parse_json(text, origin) {
            Ok(file) => return Ok(file),
            // A YAML flow mapping (`{apiVersion: v1, …}`) fails as JSON
            // right at its first key, and YAML documents starting with one
            // (`{}` then `---`) have document markers: read those as YAML.
            Err((json_err, at_start)) => {
                if at_start || text.lines().any(is_marker) {
                    return parse_yaml(text, origin).map_err(|_| json_err);
                }
                return Err(json_err);
            }
        }
    }
    parse_yaml(text, origin)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_json(text: &str, origin: &str) -> Result<File, (Error, bool)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut documents = Vec::new();
    let mut end = 0;
    loop {
        let next = stream.next();
        let Some(item) = next else { break };
        let value = item.map_err(|e| {
            let at_start = e.line() == 1 && e.column() <= 3 && documents.is_empty();
            (
                Error::Syntax {
                    origin: origin.to_string(),
                    format: "JSON",
                    message: e.to_string(),
                },
                at_start,
            )
        })?;
        let start = end
            + text
                .get(end..)
                .map_or(0, |rest| rest.len() - rest.trim_start().len());
        end = stream.byte_offset();
        if value.is_null() {
            continue;
        }
        documents.push(FileDocument {
            index: documents.len(),
            line: line_of(text, start),
            range: start..end,
            value,
        });
    }
    Ok(File {
        origin: origin.to_string(),
        syntax: Syntax::Json,
        text: text.to_string(),
        documents,
    })
}

/// Whether a line is a YAML document start marker: `---` at column 0,
/// followed by the end of the line or a blank. YAML forbids such a line
/// inside any document's content, so splitting on it is exact.
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

fn is_blank_line(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t == "..." || t.starts_with("%")
}

/// Byte ranges and starting lines of the YAML documents of `text`.
pub(crate) fn split_yaml(text: &str) -> Vec<(usize, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if is_marker(line) && offset > 0 {
            out.push((start_line, start..offset));
            start = offset;
            start_line = i + 1;
        } else if is_marker(line) {
            start_line = i + 1;
        }
        offset += line.len();
    }
    out.push((start_line, start..text.len()));
    out
}

/// The 0-based line of a document's text where its content starts, or
/// `None` when it holds nothing but comments and markers.
fn first_content_line(slice: &str) -> Option<usize> {
    slice
        .split_inclusive('\n')
        .enumerate()
        .position(|(i, line)| {
            let line = if i == 0 {
                line.strip_prefix("---")
                    .filter(|_| is_marker(line))
                    .unwrap_or(line)
            } else {
                line
            };
            !is_blank_line(line)
        })
}

fn parse_yaml(text: &str, origin: &str) -> Result<File, Error> {
    let mut documents = Vec::new();
    for (line, range) in split_yaml(text) {
        let slice = text.get(range.clone()).unwrap_or_default();
        let Some(content) = first_content_line(slice) else {
            continue;
        };
        // Pad with the lines before the document so the parser's line
        // numbers are the file's.
        let mut padded = String::with_capacity(line + slice.len());
        for _ in 1..line {
            padded.push('\n');
        }
        padded.push_str(slice);
        let value: Value = serde_yaml::from_str(&padded).map_err(|e| Error::Syntax {
            origin: origin.to_string(),
            format: "YAML",
            message: format!("document {}: {e}", documents.len() + 1),
        })?;
        if value.is_null() {
            continue;
        }
        documents.push(FileDocument {
            index: documents.len(),
            line: line + content,
            range,
            value,
        });
    }
    Ok(File {
        origin: origin.to_string(),
        syntax: Syntax::Yaml,
        text: text.to_string(),
        documents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_markers_only_at_column_zero() {
        let text = "a: 1\n---\nb: |\n  ---\n  x\n--- \nc: 3\n";
        let docs = parse(text, "t.yaml").expect("parses");
        assert_eq!(docs.len(), 3);
        assert_eq!(
            docs[1].value.get("b").and_then(Value::as_str),
            Some("---\nx\n")
        );
        assert_eq!(docs[2].at.line, Some(7));
        assert_eq!(docs[1].raw.as_deref(), Some("---\nb: |\n  ---\n  x\n"));
    }

    #[test]
    fn empty_and_comment_documents_do_not_count() {
        let text = "# header\n---\n# only a comment\n---\na: 1\n---\n---\nb: 2\n---\n";
        let docs = parse(text, "t.yaml").expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].at.document, 0);
        assert_eq!(docs[1].at.document, 1);
        assert_eq!(docs[1].at.to_string(), "t.yaml, document 2 (line 8)");
    }

    #[test]
    fn yaml_errors_use_file_line_numbers() {
        let text = "a: 1\n---\nb: 2\n---\nc: [\n";
        let err = parse(text, "t.yaml").expect_err("bad yaml");
        let msg = err.to_string();
        assert!(
            msg.starts_with("t.yaml: not valid YAML: document 3:"),
            "{msg}"
        );
        assert!(msg.contains("line 5") || msg.contains("line 6"), "{msg}");
    }

    #[test]
    fn json_stream_and_list() {
        let text = r#"{"kind":"List","items":[{"kind":"A"},{"kind":"B"}]}
{"kind":"C"}"#;
        let docs = parse(text, "t.json").expect("parses");
        let kinds: Vec<_> = docs.iter().map(|d| d.kind().unwrap_or_default()).collect();
        assert_eq!(kinds, ["A", "B", "C"]);
        assert_eq!(
            docs[1].at.to_string(),
            "t.json, document 1, List item 2 (line 1)"
        );
        assert_eq!(docs[2].at.to_string(), "t.json, document 2 (line 2)");
    }

    #[test]
    fn a_json_array_of_objects_is_a_list() {
        let docs = parse(r#"[{"kind":"A"},{"kind":"B"}]"#, "jq.json").expect("parses");
        let kinds: Vec<_> = docs.iter().map(|d| d.kind().unwrap_or_default()).collect();
        assert_eq!(kinds, ["A", "B"]);
        let err = parse("[1]", "t.json").expect_err("not objects");
        assert!(
            err.to_string()
                .contains("is a list, expected a Kubernetes object"),
            "{err}"
        );
        assert!(parse("[]", "t.json").is_err());
    }

    #[test]
    fn json_errors_say_json() {
        let err = parse("{\"kind\": \"Secret\",}", "t.json").expect_err("bad json");
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn yaml_flow_mapping_is_not_json() {
        let docs = parse("{apiVersion: v1, kind: Secret}\n", "t.yaml").expect("flow YAML");
        assert_eq!(docs[0].kind(), Some("Secret"));
    }

    #[test]
    fn yaml_documents_starting_with_a_flow_mapping() {
        let docs = parse("{}\n---\n{kind: A}\n", "t.yaml").expect("YAML with markers");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].kind(), Some("A"));
    }

    #[test]
    fn scalar_document_is_refused() {
        let err = parse("just text\n", "t.yaml").expect_err("scalar");
        assert_eq!(err.to_string(), "t.yaml, document 1 (line 1): is a string, expected a Kubernetes object (a mapping with apiVersion and kind)");
    }

    #[test]
    fn crlf_and_bom() {
        let text = "\u{feff}a: 1\r\n---\r\nb: 2\r\n";
        let docs = parse(text, "t.yaml").expect("parses");
        assert_eq!(docs.len(), 2);
    }
}
