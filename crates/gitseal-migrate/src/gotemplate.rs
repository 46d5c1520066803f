//! Bitnami's `spec.template.data` items, Go `text/template` (with sprig's
//! functions) over the opened values, translated into gitseal templates
//! (MiniJinja, docs/templates.md).
//!
//! Only the forms that have one obvious meaning in both languages are
//! translated: literal text, `{{ .key }}`, `{{ index . "key" }}`, the
//! trim markers `{{-`/`-}}`, comments `{{/* … */}}`, and a pipe into
//! `b64enc`. Anything else (`if`, `range`, variables, other functions) is
//! refused with the construct named: a template that means something
//! slightly different after the move is worse than one the user rewrites.
//!
//! Every translation is also evaluated here with Go's semantics for the
//! subset, and [`crate::convert`] renders the translation with the gitseal
//! engine and compares the two byte for byte before anything is written.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice};
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// One piece of a parsed Go template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text, after trim markers were applied.
    Text(String),
    /// The value of an item, base64-encoded when `b64` is set.
    Item { key: String, b64: bool },
}

/// A Bitnami template item translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pieces: Vec<Piece>,
}

impl Translated {
    /// The items the template reads.
    pub fn reads(&self) -> BTreeSet<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Item { key, .. } => Some(key.as_str()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// The gitseal template: literal text as it was, except `{` before `%`,
    /// `#` or `{`, which is written as an expression so that it stays text.
    pub fn jinja(&self) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => {
                    let mut chars = text.chars().peekable();
                    while let Some(c) = chars.next() {
                        if c == '{' && matches!(chars.peek(), Some('%' | '#' | '{')) {
                            out.push_str("{{ \"{\" }}");
                        } else {
                            out.push(c);
                        }
                    }
                }
                Piece::Item { key, b64 } => {
                    let name = if gitseal_template::is_identifier(key)
                        && key != gitseal_template::INPUTS
                        && !gitseal_template::filters::FUNCTIONS.contains(&key.as_str())
                    {
                        key.clone()
                    } else {
                        // Secret keys are [-._a-zA-Z0-9]: nothing to escape.
                        format!("{}[\"{key}\"]", gitseal_template::INPUTS)
                    };
                    let filter = if *b64 { " | b64enc" } else { "" };
                    out.push_str(&format!("{{{{ {name}{filter} }}}}"));
                }
            }
        }
        out
    }

    /// What Bitnami's controller renders from `values` (Go's semantics for
    /// the translated subset). `None` when the template reads an item the
    /// object does not have.
    pub fn render_go(
        &self,
        values: &BTreeMap<String, SecretSlice<u8>>,
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mut parts: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            parts.push(match piece {
                Piece::Text(text) => Zeroizing::new(text.as_bytes().to_vec()),
                Piece::Item { key, b64 } => {
                    let value = values.get(key)?.expose_secret();
                    if *b64 {
                        Zeroizing::new(STANDARD.encode(value).into_bytes())
                    } else {
                        Zeroizing::new(value.to_vec())
                    }
                }
            });
        }
        // One allocation of the final size: no reallocation leaves a copy.
        let mut out = Zeroizing::new(Vec::with_capacity(parts.iter().map(|p| p.len()).sum()));
        for part in &parts {
            out.extend_from_slice(part);
        }
        Some(out)
    }
}

/// Translates one Go template. The error says which construct has no
/// translation; it quotes template syntax, never a value.
pub fn translate(source: &str) -> Result<Translated, String> {
    let mut pieces = Vec::new();
    let mut rest = source;
    let mut trim_next = false;
    loop {
        let Some(open) = rest.find("{{") else {
            push_text(&mut pieces, rest, trim_next, false);
            break;
        };
        let after_open = &rest[open + 2..];
        // `{{- ` trims the text before; a dash must be followed by a space.
        let trim_before =
            after_open.starts_with('-') && after_open[1..].starts_with([' ', '\t', '\r', '\n']);
        push_text(&mut pieces, &rest[..open], trim_next, trim_before);
        let body_start = if trim_before { 1 } else { 0 };
        let body_and_rest = &after_open[body_start..];
        let (body, close_len, trim_after) = action_end(body_and_rest)?;
        trim_next = trim_after;
        let body = &body_and_rest[..body];
        action(body.trim_matches([' ', '\t', '\r', '\n']), &mut pieces)?;
        rest = &body_and_rest[close_len..];
    }
    Ok(Translated { pieces })
}

/// Where the action starting at `s` ends: (length of its body, length up to
/// and including `}}`, whether it ends with ` -}}`).
fn action_end(s: &str) -> Result<(usize, usize, bool), String> {
    let trimmed = s.trim_start_matches([' ', '\t', '\r', '\n']);
    if let Some(comment) = trimmed.strip_prefix("/*") {
        // A comment may hold `}}`; it ends at `*/` then `}}`.
        let end = comment
            .find("*/")
            .ok_or_else(|| "a comment without its closing */".to_string())?;
        let offset = s.len() - comment.len() + end + 2;
        let tail = &s[offset..];
        let (trim, skip) = closing(tail).ok_or_else(|| "a comment not closed by }}".to_string())?;
        return Ok((offset, offset + skip, trim));
    }
    // Quoted strings may hold `}}`.
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if s[i..].starts_with("}}") => {
                let trim = s[..i].ends_with(" -")
                    || s[..i].ends_with("\t-")
                    || s[..i].ends_with("\n-")
                    || s[..i].ends_with("\r-");
                let body = if trim { i - 1 } else { i };
                return Ok((body, i + 2, trim));
            }
            _ => {}
        }
        i += 1;
    }
    Err("an action {{ without its closing }}".to_string())
}

/// After a comment's `*/`: optional ` -` then `}}`.
fn closing(tail: &str) -> Option<(bool, usize)> {
    if tail.starts_with("}}") {
        return Some((false, 2));
    }
    let spaces = tail.len() - tail.trim_start_matches([' ', '\t', '\r', '\n']).len();
    let after = &tail[spaces..];
    if spaces > 0 && after.starts_with("-}}") {
        return Some((true, spaces + 3));
    }
    None
}

fn push_text(pieces: &mut Vec<Piece>, text: &str, trim_start: bool, trim_end: bool) {
    let ws: &[char] = &[' ', '\t', '\r', '\n'];
    let mut t = text;
    if trim_start {
        t = t.trim_start_matches(ws);
    }
    if trim_end {
        t = t.trim_end_matches(ws);
    }
    if !t.is_empty() {
        pieces.push(Piece::Text(t.to_string()));
    }
}

/// One action's body: a comment, `.key`, `index . "key"`, optionally
/// `| b64enc`.
fn action(body: &str, pieces: &mut Vec<Piece>) -> Result<(), String> {
    if body.starts_with("/*") {
        return Ok(());
    }
    let mut stages = split_pipeline(body).into_iter();
    let first = stages.next().unwrap_or_default();
    let key = item_reference(first.trim())?;
    let mut b64 = false;
    for stage in stages {
        match stage.trim() {
            "b64enc" if !b64 => b64 = true,
            other => {
                let word = other.split_whitespace().next().unwrap_or(other);
                return Err(format!(
                    "the action {{{{ {body} }}}} pipes into {word:?}; only `| b64enc` is translated"
                ));
            }
        }
    }
    pieces.push(Piece::Item { key, b64 });
    Ok(())
}

/// Splits at `|` outside quotes.
fn split_pipeline(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote) = (0, None);
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '`') => quote = Some(c),
            (None, '|') => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        escaped = false;
    }
    out.push(&body[start..]);
    out
}

/// `.key` or `index . "key"` (or with a raw string) → the key.
fn item_reference(cmd: &str) -> Result<String, String> {
    if let Some(field) = cmd.strip_prefix('.') {
        if !field.is_empty()
            && field.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !field.starts_with(|c: char| c.is_ascii_digit())
        {
            return Ok(field.to_string());
        }
        if field.is_empty() {
            return Err("the action {{ . }} prints every value at once; name one item".to_string());
        }
    }
    let words: Vec<&str> = cmd.split_whitespace().collect();
    if words.len() == 3 && words[0] == "index" && words[1] == "." {
        let arg = words[2];
        let key = arg
            .strip_prefix('"')
            .and_then(|a| a.strip_suffix('"'))
            .filter(|k| !k.contains('\\') && !k.contains('"'))
            .or_else(|| {
                arg.strip_prefix('`')
                    .and_then(|a| a.strip_suffix('`'))
                    .filter(|k| !k.contains('`'))
            });
        if let Some(key) = key {
            return Ok(key.to_string());
        }
        return Err(format!(
            "the action {{{{ {cmd} }}}} indexes with {arg}; only a plain quoted key is translated"
        ));
    }
    let word = words.first().copied().unwrap_or("");
    let what = match word {
        "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block" | "break"
        | "continue" => format!("the control structure {{{{ {word} }}}}"),
        w if w.starts_with('$') => format!("the variable {w}"),
        w if w.starts_with('.') => format!("the field chain {w}"),
        "" => "an empty action {{ }}".to_string(),
        w if w.starts_with(['"', '`', '\'', '-'])
            || w.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            format!("the constant {w}")
        }
        w => format!("the function {w:?}"),
    };
    Err(format!(
        "{what} has no translation; only text, {{{{ .key }}}}, {{{{ index . \"key\" }}}} and \
         `| b64enc` are translated"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(items: &[(&str, &[u8])]) -> BTreeMap<String, SecretSlice<u8>> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), SecretSlice::from(v.to_vec())))
            .collect()
    }

    #[test]
    fn fields_index_trims_comments_and_b64enc() {
        let t = translate(
            "postgres://{{ .user }}:{{ index . \"pass-word\" | b64enc }}@db/{{/* a }} comment */}}x {{- \" y\" | b64enc }}",
        );
        // A string literal as the command is not an item reference.
        assert!(t.expect_err("a constant").contains("the constant \""));
        let t = translate("postgres://{{ .user }}:{{ index . \"pass-word\" | b64enc }}@db/{{/* a }} c */}}x  {{- .user -}}  \n!")
            .expect("translates");
        assert_eq!(
            t.jinja(),
            "postgres://{{ user }}:{{ inputs[\"pass-word\"] | b64enc }}@db/x{{ user }}!"
        );
        let v = values(&[("user", b"u"), ("pass-word", b"p")]);
        assert_eq!(
            t.render_go(&v).unwrap().as_slice(),
            b"postgres://u:cA==@db/xu!"
        );
        assert_eq!(
            t.reads().into_iter().collect::<Vec<_>>(),
            vec!["pass-word", "user"]
        );
        assert!(t.render_go(&values(&[("user", b"u")])).is_none());
    }

    #[test]
    fn jinja_syntax_in_text_stays_text() {
        let t = translate("{% raw %} {# x #} {{ .a }}{").expect("translates");
        assert_eq!(t.jinja(), "{{ \"{\" }}% raw %} {{ \"{\" }}# x #} {{ a }}{");
    }

    #[test]
    fn function_named_and_non_identifier_keys_go_through_inputs() {
        let t =
            translate("{{ .htpasswd }}{{ .inputs }}{{ index . \"tls.crt\" }}{{ index . `a-b` }}")
                .expect("translates");
        assert_eq!(
            t.jinja(),
            "{{ inputs[\"htpasswd\"] }}{{ inputs[\"inputs\"] }}{{ inputs[\"tls.crt\"] }}{{ inputs[\"a-b\"] }}"
        );
    }

    #[test]
    fn what_has_no_translation_is_named() {
        for (source, says) in [
            ("{{ if .a }}x{{ end }}", "the control structure {{ if }}"),
            (
                "{{ range . }}x{{ end }}",
                "the control structure {{ range }}",
            ),
            ("{{ $x := .a }}", "the variable $x"),
            ("{{ toJson .a }}", "the function \"toJson\""),
            ("{{ .a | upper }}", "pipes into \"upper\""),
            ("{{ .a | b64enc | b64enc }}", "pipes into \"b64enc\""),
            ("{{ .a.b }}", "the field chain .a.b"),
            ("{{ . }}", "prints every value at once"),
            ("{{ index . .k }}", "indexes with .k"),
            ("{{ index . \"a\\\"b\" }}", "only a plain quoted key"),
            ("x {{ .a ", "without its closing }}"),
            ("{{/* open", "without its closing */"),
        ] {
            let err = translate(source).expect_err(source);
            assert!(err.contains(says), "{source}: {err}");
        }
    }

    #[test]
    fn a_dash_without_space_is_not_a_trim_marker() {
        // `{{-3}}` is the number -3 in Go, not a trim marker: refused, and
        // the text before it is not trimmed away silently.
        assert!(translate("a {{-3}}")
            .expect_err("a number")
            .contains("the constant -3"));
        let t = translate("a {{ .x}} b").expect("translates");
        assert_eq!(
            t.render_go(&values(&[("x", b"1")])).unwrap().as_slice(),
            b"a 1 b"
        );
    }
}
