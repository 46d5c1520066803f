//! Writing YAML that every reader reads back the same.
//!
//! serde_yaml's emitter quotes a string only when a YAML 1.2 reader would
//! take it for something else, so `y`, `on`, `off`, `no`, `0o17`, `1_000`,
//! `1:20` or `2026-01-01` came out plain, and readers that follow YAML 1.1
//! (kubectl and Go's yaml.v2, PyYAML, Ruby) read them back as booleans,
//! numbers or dates: kubectl refused `namespace: y`, and an item key `on`
//! was stored as `true`, which then no longer matched the binding sealed into
//! its value. Every YAML text gitseal writes goes through this emitter
//! instead. A string is written plain only when it is made of a small safe
//! alphabet, starts with a letter, `_` or `/`, and is none of the words any
//! YAML version resolves to a boolean or null; everything else is quoted
//! (single quotes, or double quotes with escapes for control and
//! line-break characters), and a multi-line value is a literal block when
//! that is exact. The layout is serde_yaml's (block style, two spaces,
//! sequences at their key's indentation), so files keep their shape.

use serde_yaml::{Mapping, Value};

use crate::Error;

/// The longest key written as an implicit key (`key: value`); YAML 1.1
/// readers refuse longer ones, so those use the explicit form (`? key`).
const MAX_IMPLICIT_KEY: usize = 1000;

/// One YAML document for `value`, ending with a newline (no `---`).
pub(crate) fn to_string(value: &Value) -> Result<String, Error> {
    let mut out = String::new();
    match value {
        Value::Mapping(m) if !m.is_empty() => mapping(&mut out, m, 0, false)?,
        Value::Sequence(s) if !s.is_empty() => sequence(&mut out, s, 0, false)?,
        Value::Tagged(t) => {
            out.push_str(&tag(&t.tag)?);
            after_indicator_body(&mut out, &t.value, 0)?;
        }
        Value::String(s) if literal_ok(s) => literal(&mut out, s, 0),
        other => {
            out.push_str(&inline(other)?);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Writes the entries of a non-empty mapping at `indent`. With `inline_first`
/// the first entry's indentation is already written (after `- ` or `? `).
fn mapping(
    out: &mut String,
    map: &Mapping,
    indent: usize,
    inline_first: bool,
) -> Result<(), Error> {
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            push_indent(out, indent);
        }
        match implicit_key(k)? {
            Some(key) => {
                out.push_str(&key);
                out.push(':');
                after_key(out, v, indent)?;
            }
            None => {
                out.push_str("? ");
                after_indicator(out, k, indent + 2)?;
                push_indent(out, indent);
                out.push(':');
                out.push(' ');
                after_indicator(out, v, indent + 2)?;
            }
        }
    }
    Ok(())
}

/// Writes the items of a non-empty sequence at `indent` (see [`mapping`]).
fn sequence(
    out: &mut String,
    seq: &[Value],
    indent: usize,
    inline_first: bool,
) -> Result<(), Error> {
    for (i, item) in seq.iter().enumerate() {
        if i > 0 || !inline_first {
            push_indent(out, indent);
        }
        out.push_str("- ");
        after_indicator(out, item, indent + 2)?;
    }
    Ok(())
}

/// A value after `key:` at `indent` (the key's indentation).
fn after_key(out: &mut String, value: &Value, indent: usize) -> Result<(), Error> {
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2, false)
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, indent, false)
        }
        Value::Tagged(t) => {
            out.push(' ');
            out.push_str(&tag(&t.tag)?);
            after_indicator_body(out, &t.value, indent + 2)
        }
        Value::String(s) if literal_ok(s) => {
            out.push(' ');
            literal(out, s, indent + 2);
            Ok(())
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other)?);
            out.push('\n');
            Ok(())
        }
    }
}

/// A node right after `- `, `? ` or `: `; its block content is at `indent`.
fn after_indicator(out: &mut String, value: &Value, indent: usize) -> Result<(), Error> {
    match value {
        Value::Mapping(m) if !m.is_empty() => mapping(out, m, indent, true),
        Value::Sequence(s) if !s.is_empty() => sequence(out, s, indent, true),
        Value::Tagged(t) => {
            out.push_str(&tag(&t.tag)?);
            after_indicator_body(out, &t.value, indent)
        }
        Value::String(s) if literal_ok(s) => {
            literal(out, s, indent);
            Ok(())
        }
        other => {
            out.push_str(&inline(other)?);
            out.push('\n');
            Ok(())
        }
    }
}

/// The content of a tagged node, after its tag: collections on the next
/// lines at `indent`, anything else on the same line.
fn after_indicator_body(out: &mut String, value: &Value, indent: usize) -> Result<(), Error> {
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent, false)
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, indent, false)
        }
        Value::Tagged(_) => Err(Error::Output(
            "a value carries two YAML tags, which YAML cannot write".into(),
        )),
        Value::String(s) if literal_ok(s) => {
            out.push(' ');
            literal(out, s, indent);
            Ok(())
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other)?);
            out.push('\n');
            Ok(())
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A key written as `key:` on one line, or `None` for the explicit form
/// (a collection, a tagged value or a very long key).
fn implicit_key(key: &Value) -> Result<Option<String>, Error> {
    let text = match key {
        Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_) => return Ok(None),
        Value::String(s) => quoted_or_plain(s),
        other => inline(other)?,
    };
    Ok((text.len() <= MAX_IMPLICIT_KEY).then_some(text))
}

/// A scalar (or an empty collection) on one line.
fn inline(value: &Value) -> Result<String, Error> {
    Ok(match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quoted_or_plain(s),
        Value::Mapping(m) if m.is_empty() => "{}".to_string(),
        Value::Sequence(s) if s.is_empty() => "[]".to_string(),
        Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_) => {
            return Err(Error::Output(
                "internal error: a collection where a scalar was expected".into(),
            ))
        }
    })
}

/// A number as YAML 1.1 and 1.2 both read it: a float always has a `.` in
/// its mantissa and a sign in its exponent (`1.0e+300`, not `1e300`).
fn number(n: &serde_yaml::Number) -> String {
    let text = n.to_string();
    if !n.is_f64() || text.ends_with("inf") || text.ends_with("nan") {
        return text;
    }
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m.to_string(), Some(e.to_string())),
        None => (text, None),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
    } else {
        format!("{mantissa}.0")
    };
    match exponent {
        Some(e) if e.starts_with(['-', '+']) => format!("{mantissa}e{e}"),
        Some(e) => format!("{mantissa}e+{e}"),
        None => mantissa,
    }
}

/// A tag (`!name`), when it is one YAML can write back: plain characters,
/// and the written text must read back as the same tag. (YAML's
/// non-specific tag `! key` reads as a tag that prints as `!!` with no
/// name, which no reader accepts; found by the `manifest_input` fuzz target.)
fn tag(tag: &serde_yaml::value::Tag) -> Result<String, Error> {
    let text = tag.to_string();
    let ok = text.len() > 1
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!:/._~%-".contains(&b))
        && matches!(
            serde_yaml::from_str::<Value>(&format!("{text} x")),
            Ok(Value::Tagged(t)) if t.tag == *tag
        );
    if ok {
        Ok(text)
    } else {
        Err(Error::Output(
            "a YAML tag with unusual characters cannot be written; remove the tag".into(),
        ))
    }
}

/// Words that some YAML version reads as a boolean or null (YAML 1.1's
/// `y|n|yes|no|on|off`, 1.1 and 1.2's `true|false|null`), in any case.
const RESERVED_WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// Whether `s` reads back as the same string when written plain, in YAML
/// 1.1 and 1.2, as a key or a value, in block context. Deliberately
/// narrow: anything unusual is quoted.
pub(crate) fn plain_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    // A letter, `_` or `/` first: no indicator (`-?:,[]{}#&*!|>'"%@` and
    // backquote), no number, date or special float (`.inf`), no `~`, `=`, `<<`.
    let Some(first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || matches!(first, b'_' | b'/')) {
        return false;
    }
    let alphabet_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b" -_./:@%+=,~^()$;".contains(b));
    alphabet_ok
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !RESERVED_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// Whether a character must be escaped (double quotes): a control or
/// non-printable character, or one that YAML 1.1 reads as a line break.
pub(crate) fn needs_escape(c: char) -> bool {
    matches!(c,
        '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
        | '\u{fffe}' | '\u{ffff}')
}

/// `s` on one line: plain when [`plain_ok`], else single-quoted, else
/// double-quoted with escapes.
fn quoted_or_plain(s: &str) -> String {
    if plain_ok(s) {
        return s.to_string();
    }
    if !s.chars().any(needs_escape) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::with_capacity(s.len() + 8);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) && u32::from(c) <= 0xff => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a multi-line string can be a literal block (`|`) exactly: it
/// holds a line break, does not start with white space or a line break (the
/// first line decides the block's indentation), and has no character
/// needing an escape other than line feeds and tabs.
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && !s.chars().any(|c| c != '\n' && c != '\t' && needs_escape(c))
}

/// A literal block: the indicator with its chomping (`|-` no final line
/// break, `|` one, `|+` more), then the lines at `indent`.
fn literal(out: &mut String, s: &str, indent: usize) {
    let body = s.trim_end_matches('\n');
    let breaks = s.len() - body.len();
    out.push_str(match breaks {
        0 => "|-\n",
        1 => "|\n",
        _ => "|+\n",
    });
    for line in body.split('\n') {
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    for _ in 1..breaks {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(v: &Value) -> String {
        to_string(v).expect("emits")
    }

    #[test]
    fn yaml_11_words_and_numbers_are_quoted() {
        for s in [
            "y",
            "Y",
            "n",
            "N",
            "yes",
            "No",
            "on",
            "OFF",
            "true",
            "Null",
            "~",
            "=",
            "<<",
            "",
            "0o17",
            "0x1F",
            "0b101",
            "1_000",
            "1:20",
            ".inf",
            "-.inf",
            ".NaN",
            "1e3",
            "0777",
            "2026-01-01",
            "+1",
            "-",
            "---",
            "...",
            "-a",
            "@x",
            "!x",
            "&x",
            "*x",
            "%x",
            "#x",
            "a: b",
            "a #b",
            "a:",
            " x",
            "x ",
            "é",
        ] {
            assert!(!plain_ok(s), "{s:?} must be quoted");
            let v = Value::String(s.to_string());
            let back: Value = serde_yaml::from_str(&emit(&v)).expect("parses");
            assert_eq!(back, v, "{s:?}");
        }
        for s in [
            "db",
            "gs1:AAAA+/==",
            "kubernetes.io/tls",
            "hello world",
            "a:b",
            "_x",
        ] {
            assert!(plain_ok(s), "{s:?} can be plain");
        }
    }

    #[test]
    fn layout_is_serde_yamls() {
        let text =
            "a: 1\nb:\n- x\n- k: v\n  l: w\nc:\n  d: ''\n  e: []\n  f: {}\ng: |\n  one\n  two\n";
        let v: Value = serde_yaml::from_str(text).expect("yaml");
        assert_eq!(emit(&v), text);
    }

    #[test]
    fn strings_and_numbers_round_trip() {
        for s in [
            "a\nb",
            "a\nb\n",
            "a\nb\n\n",
            "a\n\n  b\n",
            "tab\there\n",
            "x\r\ny",
            "\u{85}",
            "it's",
            "\"q\"",
            "back\\slash",
            "\u{2028}",
            "\0",
            " lead\n",
            "\n",
        ] {
            let v = Value::String(s.to_string());
            let mut map = Mapping::new();
            map.insert(v.clone(), v.clone());
            map.insert("k".into(), Value::Sequence(vec![v.clone()]));
            let text = emit(&Value::Mapping(map.clone()));
            let back: Value = serde_yaml::from_str(&text).expect("parses");
            assert_eq!(back, Value::Mapping(map), "{s:?}: {text}");
        }
        let v: Value = serde_yaml::from_str("[1.0e+300, 2.5, -1, .inf, 1.0]").expect("yaml");
        assert_eq!(emit(&v), "- 1.0e+300\n- 2.5\n- -1\n- .inf\n- 1.0\n");
    }

    #[test]
    fn complex_and_long_keys_use_the_explicit_form() {
        let long = "k".repeat(MAX_IMPLICIT_KEY + 1);
        let text = format!("? [a, b]\n: 1\n? {{x: y}}\n: [2]\n{long}: 3\n");
        let v: Value = serde_yaml::from_str(&text).expect("yaml");
        let out = emit(&v);
        assert!(out.contains(&format!("? {long}\n: 3\n")), "{out}");
        assert_eq!(serde_yaml::from_str::<Value>(&out).expect("parses"), v);
    }
}
