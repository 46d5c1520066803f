//! Telling a real secret value from a placeholder, a reference or an
//! identifier. Every credential rule without a checksum leans on these
//! checks to keep false positives down.

/// Shannon entropy of the bytes of `s`, in bits per byte.
pub fn shannon(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[b as usize] += 1;
    }
    let len = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

/// Number of character classes (lower, upper, digit, other) present.
pub fn char_classes(s: &[u8]) -> usize {
    let mut lower = false;
    let mut upper = false;
    let mut digit = false;
    let mut other = false;
    for &b in s {
        match b {
            b'a'..=b'z' => lower = true,
            b'A'..=b'Z' => upper = true,
            b'0'..=b'9' => digit = true,
            _ => other = true,
        }
    }
    usize::from(lower) + usize::from(upper) + usize::from(digit) + usize::from(other)
}

const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "example",
    "dummy",
    "placeholder",
    "your_",
    "your-",
    "yourpass",
    "yourtoken",
    "xxxx",
    "****",
    "...",
    "\u{2026}",
    "redacted",
    "replace",
    "todo",
    "fixme",
    "sample",
    "fake",
    "mock",
    "notasecret",
    "not-a-secret",
    "insert",
    "secret_here",
    "here",
    "foobar",
    "lorem",
    "abcdef",
    "123456",
    "qwerty",
    "password",
    "passwd",
    "undefined",
    "test",
];

/// True for values that are obviously not real secrets: template
/// expressions, environment references, angle-bracket placeholders,
/// well-known filler words, repeated characters.
pub fn is_placeholder(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    let first = v[0];
    let last = v[v.len() - 1];
    if matches!(first, b'$' | b'<' | b'{' | b'[' | b'@' | b'#' | b'&' | b'*')
        || matches!(last, b'>' | b'}' | b']' | b')')
    {
        return true;
    }
    // `%VAR%`, `%s`, `%(name)s`; a password may well start with `%`.
    if first == b'%' && (last == b'%' || v.len() <= 3 || matches!(v.get(1), Some(b'(' | b'{'))) {
        return true;
    }
    if memchr::memmem::find(v, b"{{").is_some()
        || memchr::memmem::find(v, b"${").is_some()
        || memchr::memmem::find(v, b"$(").is_some()
        || memchr::memmem::find(v, b"%(").is_some()
        || memchr::memmem::find(v, b"#{").is_some()
    {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if PLACEHOLDER_WORDS
        .iter()
        .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some())
    {
        return true;
    }
    // Few distinct characters: "aaaaaaaa", "abababab", "--------".
    let mut seen = [false; 256];
    let mut distinct = 0;
    for &b in v {
        if !seen[b as usize] {
            seen[b as usize] = true;
            distinct += 1;
        }
    }
    distinct <= 3
}

/// True for values that name a secret instead of holding it: sealed
/// values, Vault and secret-manager references, file paths, environment
/// lookups, code expressions.
pub fn is_reference(v: &[u8]) -> bool {
    const PREFIXES: &[&[u8]] = &[
        b"gs1:",
        b"kv1:",
        b"kv2:",
        b"vault:",
        b"ref+",
        b"arn:",
        b"projects/",
        b"secretref:",
        b"env:",
        b"file:",
        b"sm://",
        b"awssm:",
        b"gcpsm:",
        b"azkv:",
        b"op://",
        b"keyvault:",
        b"/",
        b"./",
        b"../",
        b"~/",
        b"http://",
        b"https://",
    ];
    let lower = v.to_ascii_lowercase();
    if PREFIXES.iter().any(|p| lower.starts_with(p)) || is_vault_ref_text(v) {
        return true;
    }
    const INFIXES: &[&[u8]] = &[
        b"process.env",
        b"os.environ",
        b"getenv",
        b"secretkeyref",
        b"valuefrom",
        b".pem",
        b".key",
        b".crt",
        b".json",
        b".yaml",
        b".yml",
        b".txt",
        b"()",
    ];
    INFIXES
        .iter()
        .any(|p| memchr::memmem::find(&lower, p).is_some())
}

/// gitseal's Vault reference text form, `MOUNT/PATH#FIELD[@VERSION]`
/// (`gitseal seal --from-vault ITEM=kv/app/db#password@3`).
fn is_vault_ref_text(v: &[u8]) -> bool {
    let Some(hash) = memchr::memrchr(b'#', v) else {
        return false;
    };
    let (path, field) = (&v[..hash], &v[hash + 1..]);
    let field = match memchr::memchr(b'@', field) {
        Some(at) if at + 1 < field.len() && field[at + 1..].iter().all(u8::is_ascii_digit) => {
            &field[..at]
        }
        Some(_) => return false,
        None => field,
    };
    let path_ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.');
    let field_ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    memchr::memchr(b'/', path).is_some_and(|slash| slash > 0 && slash + 1 < path.len())
        && path.iter().all(path_ok)
        && !field.is_empty()
        && field.iter().all(field_ok)
}

#[cfg(test)]
mod vault_ref_tests {
    use super::is_reference;

    #[test]
    fn vault_references_are_references() {
        assert!(is_reference(b"kv/prod/db#password@3"));
        assert!(is_reference(b"secret/team-a/api#token"));
        assert!(is_reference(b"kv1:secret/app/api#token"));
        // Near misses stay candidates: no path, no field, a bad version.
        assert!(!is_reference(b"aZ3kQ9#xY7pL2mN8"));
        assert!(!is_reference(b"kv/prod#"));
        assert!(!is_reference(b"kvprod/db#pass word"));
        assert!(!is_reference(b"kv/prod/db#password@v3"));
    }
}

/// True when the value looks like a program identifier or a word rather
/// than random material: `my_token_name`, `secretName`, `db.password`.
pub fn is_identifier_like(v: &[u8]) -> bool {
    if v.iter()
        .all(|b| b.is_ascii_lowercase() || matches!(b, b'_' | b'-' | b'.'))
    {
        return true;
    }
    if v.iter()
        .all(|b| b.is_ascii_uppercase() || matches!(b, b'_' | b'-' | b'.'))
    {
        return true;
    }
    // lowerCamelCase / UpperCamelCase words without digits.
    if v.iter().all(u8::is_ascii_alphabetic) {
        let upper = v.iter().filter(|b| b.is_ascii_uppercase()).count();
        return upper * 3 <= v.len();
    }
    // Words joined by separators: `kv1-value`, `admin-2024`, `Prod_DB.v2`.
    let segments: Vec<&[u8]> = v
        .split(|b| matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'[' | b']'))
        .filter(|s| !s.is_empty())
        .collect();
    if segments.len() >= 2 && segments.iter().all(|s| is_word(s) || short_word(s)) {
        return true;
    }
    // A constant's name: `MY_K8S_SECRET_KEY`, `AWS_REGION_2`.
    v.contains(&b'_')
        && v.iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        && v.split(|b| *b == b'_')
            .all(|s| s.iter().any(u8::is_ascii_uppercase) && s.len() <= 12)
}

/// A short lower-case (or capitalised) piece such as `k8s`, `K8s`, `etcd`,
/// `v2`, `s3`: too short to carry a secret's entropy.
fn short_word(s: &[u8]) -> bool {
    s.len() <= 5
        && s.iter()
            .skip(1)
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.first().is_some_and(u8::is_ascii_alphanumeric)
        && s.iter().filter(|b| b.is_ascii_digit()).count() <= 1
}

/// `8-4-4-4-12` hexadecimal: a UUID.
pub fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `word`, `Word`, `WORD`, optionally followed by digits, or digits alone.
fn is_word(s: &[u8]) -> bool {
    let letters = s.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let (alpha, rest) = s.split_at(letters);
    if !rest.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match alpha {
        [] => true,
        [first, tail @ ..] => {
            tail.iter().all(u8::is_ascii_lowercase) && first.is_ascii_alphabetic()
                || alpha.iter().all(u8::is_ascii_uppercase)
        }
    }
}

/// The decision for a value found under a secret-like key.
pub fn looks_like_secret(v: &[u8]) -> bool {
    if v.len() < 8 || v.len() > 512 {
        return false;
    }
    // Whitespace, control characters, or non-ASCII letters: prose or a
    // translated word, not generated material.
    if v.iter()
        .any(|b| b.is_ascii_whitespace() || *b < 0x20 || *b >= 0x80)
    {
        return false;
    }
    if is_placeholder(v) || is_reference(v) || is_identifier_like(v) {
        return false;
    }
    if v.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let h = shannon(v);
    let classes = char_classes(v);
    if v.len() >= 20 {
        h >= 3.5 && classes >= 2
    } else {
        h >= 2.8 && classes >= 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_orders_random_above_words() {
        assert!(shannon(b"aaaaaaaa") < 0.01);
        assert!(shannon(b"k8Jq2LmZ9xPw4RtY") > 3.5);
    }

    #[test]
    fn placeholders() {
        for v in [
            "changeme",
            "${DB_PASSWORD}",
            "<your-token>",
            "{{ .Values.password }}",
            "$(cat /run/secret)",
            "xxxxxxxxxxxx",
            "example-token-123",
        ] {
            assert!(is_placeholder(v.as_bytes()), "{v}");
        }
        assert!(!is_placeholder(b"k8Jq2LmZ9xPw4RtY"));
    }

    #[test]
    fn secret_decision() {
        assert!(looks_like_secret(b"k8Jq2LmZ9xPw4RtY"));
        assert!(looks_like_secret(b"Tr0ub4dor&3x!"));
        assert!(!looks_like_secret(b"short1A"));
        assert!(!looks_like_secret(b"mySecretName"));
        assert!(!looks_like_secret(b"gs1:AAAAbbbbCCCCdddd1234"));
        assert!(!looks_like_secret(b"/etc/secrets/token"));
        assert!(!looks_like_secret(b"12345678901234"));
        assert!(!looks_like_secret(b"kv1-value"));
        assert!(!looks_like_secret(b"admin-2024"));
        assert!(looks_like_secret(b"Sup3rS3cret!x"));
        assert!(looks_like_secret(b"aZ3_kQ9x-Lm2P"));
    }
}
