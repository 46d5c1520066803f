//! Templated items of a SealedSecret (`spec.template.data`): a template
//! that does not parse, uses what gitseal templates refuse, or reads an
//! input the object does not have (no such `encryptedData` or `vaultData`
//! item) would fail in the cluster with `TemplateError`; `verify` says so
//! before it is merged. The template text itself is ordinary file text, so
//! the credential rules scan it like any other value; one case they cannot
//! see is a URL whose user is an expression and whose password is pasted
//! (`postgres://{{ user }}:S3cr3t@db`: the braces end the URL for them), so
//! [`pasted_url_passwords`] looks at the template with its expressions
//! masked.

use serde_yaml::Value;

/// One problem with one templated item.
pub(crate) struct TemplateFinding {
    /// The templated key.
    pub key: String,
    /// What is wrong (names the key and the line; never a value).
    pub message: String,
    /// A pasted credential (for redaction and fingerprints), when that is
    /// the problem.
    pub secret: Option<Vec<u8>>,
}

/// The problems of the templated items of a SealedSecret's `spec`.
pub(crate) fn findings(spec: Option<&Value>) -> Vec<TemplateFinding> {
    let Some(spec) = spec else {
        return Vec::new();
    };
    let Some(data) = spec
        .get("template")
        .and_then(|t| t.get("data"))
        .and_then(Value::as_mapping)
    else {
        return Vec::new();
    };
    let inputs = |field: &str| -> Vec<String> {
        spec.get(field)
            .and_then(Value::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut known = inputs("encryptedData");
    known.extend(inputs("vaultData"));
    let mut out = Vec::new();
    for (k, v) in data {
        let Some(key) = k.as_str() else { continue };
        let Some(text) = v.as_str() else {
            out.push(TemplateFinding {
                key: key.to_string(),
                message: format!("templated item `{key}` is not a string"),
                secret: None,
            });
            continue;
        };
        out.extend(pasted_url_passwords(key, text));
        match gitseal_template::check(key, text) {
            Err(e) => out.push(TemplateFinding {
                key: key.to_string(),
                message: format!("{e}"),
                secret: None,
            }),
            Ok(reads) => {
                let unknown: Vec<&String> =
                    reads.names.keys().filter(|n| !known.contains(n)).collect();
                if let Some(first) = unknown.first() {
                    let line = reads.names.get(*first).copied().unwrap_or(1);
                    let names: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
                    out.push(TemplateFinding {
                        key: key.to_string(),
                        message: format!(
                            "template `{key}`, line {line}: reads {}, which the object has no \
                             encryptedData or vaultData item of (the controller would refuse it \
                             with TemplateError)",
                            names.join(", ")
                        ),
                        secret: None,
                    });
                }
            }
        }
    }
    out
}

/// URLs in a template's literal text whose password is written out while
/// other parts are expressions.
fn pasted_url_passwords(key: &str, text: &str) -> Vec<TemplateFinding> {
    if !text.contains("{{") {
        // No expression: the credential rules see the text as it is.
        return Vec::new();
    }
    // Expressions become runs of `x` of the same length, so offsets (and
    // lines) stay those of the template.
    let mut masked = text.as_bytes().to_vec();
    let mut literal = vec![true; masked.len()];
    let mut from = 0;
    while let Some(start) = text[from..].find("{{").map(|p| p + from) {
        let end = text[start..]
            .find("}}")
            .map_or(text.len(), |p| start + p + 2);
        for i in start..end {
            masked[i] = b'x';
            literal[i] = false;
        }
        from = end;
    }
    let mut out = Vec::new();
    for (pos, _) in text.match_indices("://") {
        let auth = pos + 3;
        let stop = masked[auth..]
            .iter()
            .position(|b| matches!(b, b'/' | b'?' | b'#' | b' ' | b'\n' | b'"' | b'\''))
            .map_or(masked.len(), |p| auth + p);
        let Some(at) = masked[auth..stop]
            .iter()
            .rposition(|b| *b == b'@')
            .map(|p| auth + p)
        else {
            continue;
        };
        let Some(colon) = masked[auth..at]
            .iter()
            .position(|b| *b == b':')
            .map(|p| auth + p)
        else {
            continue;
        };
        let pass = &masked[colon + 1..at];
        let all_literal = literal[colon + 1..at].iter().all(|l| *l);
        let templated_elsewhere = literal[auth..stop].iter().any(|l| !*l);
        if !all_literal
            || !templated_elsewhere
            || pass.len() < 4
            || crate::entropy::is_placeholder(pass)
            || !crate::entropy::looks_like_secret(pass)
        {
            continue;
        }
        let line = text[..colon].matches('\n').count() + 1;
        out.push(TemplateFinding {
            key: key.to_string(),
            message: format!(
                "template `{key}`, line {line}: a URL with a password written in the template \
                 (templates are not sealed); seal the password as an input and write \
                 `{{{{ password | urlencode }}}}`"
            ),
            secret: Some(pass.to_vec()),
        });
    }
    out
}
