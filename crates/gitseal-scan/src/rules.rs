//! Credential detection by pattern. Two Aho-Corasick automata built from
//! the rule table ([`crate::catalog`]) find candidate positions: one over
//! the rules' token literals (prefixes and markers), one over secret-like
//! key words. Each candidate runs its rule's small, local check (an
//! anchored regex, a checksum, a decode) on the bytes around it. Nothing
//! runs a regex over a whole file.

use crate::catalog::{Check, Spec, RULES};
use crate::entropy;
use crate::finding::Rule;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use regex::bytes::Regex;

/// A candidate secret: which rule, the byte span of the secret in the blob
/// and a message.
#[derive(Clone)]
pub(crate) struct Hit {
    pub rule: Rule,
    pub start: usize,
    /// Span used for overlap resolution (may be wider than the secret).
    pub span: (usize, usize),
    pub message: String,
    /// The secret bytes used for the fingerprint (never printed whole).
    pub secret: Vec<u8>,
}

impl Hit {
    fn new(rule: Rule, start: usize, end: usize, data: &[u8], message: String) -> Hit {
        Hit {
            rule,
            start,
            span: (start, end),
            message,
            secret: data[start..end].to_vec(),
        }
    }
}

/// One prefilter hit handed to a rule's check.
pub(crate) struct Candidate<'a> {
    /// The whole blob.
    pub data: &'a [u8],
    /// Where the literal starts.
    pub pos: usize,
    /// The literal that matched.
    pub literal: &'static str,
    /// The rule's entry.
    pub spec: &'static Spec,
    /// The rule's compiled patterns, in table order.
    pub patterns: &'a [Regex],
}

/// What checks remember while one blob is scanned.
#[derive(Default)]
pub(crate) struct FileState {
    /// Start of the last line the OpenAI marker regex ran over.
    openai_line: Option<usize>,
    /// Whether the service-account check ran.
    gcp_done: bool,
}

/// The compiled rule table.
pub(crate) struct Patterns {
    /// Token literals of every pattern rule.
    ac: AhoCorasick,
    /// For each literal of `ac`: (rule, literal).
    lits: Vec<(Rule, &'static str)>,
    /// Secret-like key words of the key/value rules.
    keys: AhoCorasick,
    /// Compiled patterns, indexed by rule.
    regexes: Vec<Vec<Regex>>,
}

fn re(s: &str) -> Regex {
    // The patterns are constants checked by the unit tests; a failure here
    // is a programming error caught before release.
    #[allow(clippy::expect_used)]
    Regex::new(s).expect("built-in pattern compiles")
}

fn automaton<'a>(literals: impl IntoIterator<Item = &'a str>) -> AhoCorasick {
    #[allow(clippy::expect_used)]
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(literals)
        .expect("built-in literals compile")
}

impl Patterns {
    pub(crate) fn new() -> Patterns {
        let mut lits = Vec::new();
        let mut key_words: Vec<&'static str> = Vec::new();
        for s in RULES {
            match s.check {
                Check::Token { .. } | Check::Crc32 | Check::Custom(_) => {
                    lits.extend(s.literals.iter().map(|l| (s.rule, *l)));
                }
                Check::KeyValue => key_words.extend(s.literals.iter().copied()),
                Check::Structural | Check::Narrowed => {}
            }
        }
        Patterns {
            ac: automaton(lits.iter().map(|(_, l)| *l)),
            lits,
            keys: automaton(key_words),
            regexes: RULES
                .iter()
                .map(|s| s.patterns.iter().map(|p| re(p)).collect())
                .collect(),
        }
    }

    /// Runs every pattern rule over one blob found at `path`.
    pub(crate) fn scan(&self, path: &str, data: &[u8], out: &mut Vec<Hit>) {
        let mut state = FileState::default();
        for m in self.ac.find_iter(data) {
            let (rule, literal) = self.lits[m.pattern().as_usize()];
            let spec = rule.spec();
            let c = Candidate {
                data,
                pos: m.start(),
                literal,
                spec,
                patterns: &self.regexes[rule as usize],
            };
            match spec.check {
                Check::Token { random_tail } => token(&c, random_tail, out),
                Check::Crc32 => crc32_token(&c, out),
                Check::Custom(check) => check(&c, &mut state, out),
                Check::KeyValue | Check::Structural | Check::Narrowed => {}
            }
        }
        // Secret-like keys: one identifier is looked at once even when it
        // holds several key words (`CLIENT_SECRET_TOKEN`).
        let lang = Lang::of(path);
        let mut done_until = 0usize;
        for m in self.keys.find_iter(data) {
            if m.start() < done_until {
                continue;
            }
            done_until = key_value(data, lang, m.start(), m.end(), out);
        }
    }
}

/// The end of the token at the candidate, matched by the rule's first
/// pattern in a `window` after a word boundary (and before one, with
/// `bounded`).
fn anchored_token(c: &Candidate<'_>, window: usize, bounded: bool) -> Option<usize> {
    let (data, pos) = (c.data, c.pos);
    if !boundary_before(data, pos) {
        return None;
    }
    let m = c
        .patterns
        .first()?
        .find(&data[pos..data.len().min(pos + window)])?;
    let end = pos + m.end();
    (!bounded || boundary_after(data, end)).then_some(end)
}

/// [`Check::Token`].
fn token(c: &Candidate<'_>, random_tail: bool, out: &mut Vec<Hit>) {
    let Some(end) = anchored_token(c, 512, true) else {
        return;
    };
    let rule = c.spec.rule;
    let tok = &c.data[c.pos..end];
    if random_tail {
        // The random part after the public prefix must look random.
        let tail = rule
            .public_prefix()
            .iter()
            .filter(|p| tok.starts_with(p.as_bytes()))
            .map(|p| &tok[p.len()..])
            .min_by_key(|t| t.len())
            .unwrap_or(tok);
        if entropy::is_placeholder(tail) || entropy::shannon(tail) < 3.0 {
            return;
        }
    }
    out.push(Hit::new(
        rule,
        c.pos,
        end,
        c.data,
        rule.description().into(),
    ));
}

/// [`Check::Crc32`]: the checksum follows the literal's 30 random characters.
fn crc32_token(c: &Candidate<'_>, out: &mut Vec<Hit>) {
    let Some(end) = anchored_token(c, 64, true) else {
        return;
    };
    if !base62_crc_ok(&c.data[c.pos + c.literal.len()..end]) {
        return;
    }
    let rule = c.spec.rule;
    out.push(Hit::new(
        rule,
        c.pos,
        end,
        c.data,
        format!("{} (checksum verified)", rule.description()),
    ));
}

/// OpenAI keys: a `sk-proj-`/`sk-svcacct-`/`sk-admin-` token, or any `sk-`
/// token around the "OpenAI" marker (the marker's line is searched once).
pub(crate) fn openai(c: &Candidate<'_>, state: &mut FileState, out: &mut Vec<Hit>) {
    if c.literal != "T3BlbkFJ" {
        token(c, true, out);
        return;
    }
    let Some(marker) = c.patterns.get(1) else {
        return;
    };
    let data = c.data;
    let (ls, le) = line_bounds(data, c.pos);
    if state.openai_line == Some(ls) {
        return;
    }
    state.openai_line = Some(ls);
    for mm in marker.find_iter(&data[ls..le]) {
        let (s, e) = (ls + mm.start(), ls + mm.end());
        if boundary_before(data, s) && boundary_after(data, e) {
            out.push(Hit::new(
                Rule::OpenaiApiKey,
                s,
                e,
                data,
                "OpenAI API key".into(),
            ));
        }
    }
}

/// An Azure storage account key in a connection string (`AccountKey=…`).
pub(crate) fn azure(c: &Candidate<'_>, _: &mut FileState, out: &mut Vec<Hit>) {
    let (data, pos) = (c.data, c.pos);
    let window = &data[pos..data.len().min(pos + 120)];
    let Some(k) = c
        .patterns
        .first()
        .and_then(|p| p.captures(window))
        .and_then(|c| c.get(1))
    else {
        return;
    };
    let (s, e) = (pos + k.start(), pos + k.end());
    if entropy::shannon(&data[s..e]) < 4.0 {
        return;
    }
    out.push(Hit::new(
        Rule::AzureStorageKey,
        s,
        e,
        data,
        "Azure storage account key in a connection string".into(),
    ));
}

/// A JSON Web Token whose header and payload decode to JSON objects and
/// whose algorithm is not `none`.
pub(crate) fn jwt(c: &Candidate<'_>, _: &mut FileState, out: &mut Vec<Hit>) {
    let Some(end) = anchored_token(c, 8192, false) else {
        return;
    };
    let (data, pos) = (c.data, c.pos);
    let tok = &data[pos..end];
    let mut parts = tok.split(|&b| b == b'.');
    let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
        return;
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (Ok(h), Ok(p)) = (engine.decode(h), engine.decode(p)) else {
        return;
    };
    let Ok(serde_json::Value::Object(header)) = serde_json::from_slice(&h) else {
        return;
    };
    let Ok(serde_json::Value::Object(_)) = serde_json::from_slice::<serde_json::Value>(&p) else {
        return;
    };
    let Some(alg) = header.get("alg").and_then(|a| a.as_str()) else {
        return;
    };
    if alg.eq_ignore_ascii_case("none") {
        return;
    }
    out.push(Hit::new(
        Rule::Jwt,
        pos,
        end,
        data,
        format!(
            "JSON Web Token (alg {})",
            crate::finding::escape_control(alg)
        ),
    ));
}

/// An age X25519 identity (`AGE-SECRET-KEY-1…`), the format of gitseal's
/// own private keys: reported only when its bech32 checksum holds and it
/// decodes to 32 bytes.
pub(crate) fn age(c: &Candidate<'_>, _: &mut FileState, out: &mut Vec<Hit>) {
    let Some(end) = anchored_token(c, 80, true) else {
        return;
    };
    let (data, pos) = (c.data, c.pos);
    let Ok(text) = std::str::from_utf8(&data[pos..end]) else {
        return;
    };
    let Ok((hrp, bytes)) = bech32::decode(text) else {
        return;
    };
    if !hrp.as_str().eq_ignore_ascii_case("age-secret-key-") || bytes.len() != 32 {
        return;
    }
    out.push(Hit::new(
        Rule::AgeSecretKey,
        pos,
        end,
        data,
        "age secret key (checksum verified): a private key that opens everything sealed to it"
            .into(),
    ));
}

/// A Google Cloud service account key file (checked once per blob).
pub(crate) fn gcp(c: &Candidate<'_>, state: &mut FileState, out: &mut Vec<Hit>) {
    if !state.gcp_done {
        state.gcp_done = true;
        gcp_file(c.data, out);
    }
}

/// Connection strings: `scheme://user:password@host` and JDBC URLs.
pub(crate) fn url_password(c: &Candidate<'_>, _: &mut FileState, out: &mut Vec<Hit>) {
    if c.literal == "jdbc:" {
        jdbc_password(c.data, c.pos, out);
    } else {
        userinfo_password(c.data, c.pos, out);
    }
}

/// A PuTTY private key file (`PuTTY-User-Key-File-2:`/`-3:`): its
/// `Private-Lines` hold the key (encrypted or not); reported when they hold
/// real base64 material.
pub(crate) fn putty(c: &Candidate<'_>, _: &mut FileState, out: &mut Vec<Hit>) {
    let (data, pos) = (c.data, c.pos);
    let (ls, _) = line_bounds(data, pos);
    if pos != ls {
        return;
    }
    let window = &data[pos..data.len().min(pos + 16384)];
    let Some(p) = memchr::memmem::find(window, b"\nPrivate-Lines:") else {
        return;
    };
    let after = p + "\nPrivate-Lines:".len();
    let Some(nl) = memchr::memchr(b'\n', &window[after..]) else {
        return;
    };
    let Ok(n) = String::from_utf8_lossy(&window[after..after + nl])
        .trim()
        .parse::<usize>()
    else {
        return;
    };
    let body_start = after + nl + 1;
    let mut end = body_start;
    for _ in 0..n.min(64) {
        match memchr::memchr(b'\n', &window[end..]) {
            Some(i) => end += i + 1,
            None => end = window.len(),
        }
    }
    let body = &window[body_start..end];
    let b64 = body
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .count();
    if b64 < 40 || entropy::shannon(body) < 4.0 {
        return;
    }
    let encrypted = memchr::memmem::find(&window[..p], b"Encryption: none").is_none();
    let mut hit = Hit::new(
        Rule::PuttyPrivateKey,
        pos,
        pos + end,
        data,
        if encrypted {
            "PuTTY private key file (passphrase-protected)".into()
        } else {
            "PuTTY private key file (not encrypted)".into()
        },
    );
    hit.secret = body.to_vec();
    out.push(hit);
}

/// A JDBC URL with a password in its properties:
/// `jdbc:mysql://db/app?user=app&password=…`,
/// `jdbc:sqlserver://db;user=app;password=…`. (`jdbc:…://user:pw@host`
/// is the URL rule's.)
fn jdbc_password(data: &[u8], pos: usize, out: &mut Vec<Hit>) {
    let limit = data.len().min(pos + 512);
    let mut end = pos;
    while end < limit
        && !matches!(
            data[end],
            b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'<' | b'`'
        )
    {
        end += 1;
    }
    let url = &data[pos..end];
    let lower = url.to_ascii_lowercase();
    for name in [&b"password="[..], b"pwd="] {
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&lower[from..], name) {
            let at = from + i;
            from = at + name.len();
            if at == 0 || !matches!(url[at - 1], b'?' | b'&' | b';' | b':') {
                continue;
            }
            let vs = at + name.len();
            let ve = url[vs..]
                .iter()
                .position(|b| matches!(b, b'&' | b';'))
                .map_or(url.len(), |e| vs + e);
            let pass = &url[vs..ve];
            if !real_password(pass) {
                continue;
            }
            let mut hit = Hit::new(
                Rule::UrlPassword,
                pos + vs,
                pos + ve,
                data,
                "JDBC URL with an embedded password".into(),
            );
            hit.span = (pos, pos + ve);
            out.push(hit);
            return;
        }
    }
}

/// A password worth reporting from a connection string: not empty, a
/// default, a placeholder or a template.
fn real_password(pass: &[u8]) -> bool {
    let lower = pass.to_ascii_lowercase();
    !(pass.len() < 4
        || DEFAULT_PASSWORDS.contains(&lower.as_slice())
        || entropy::is_placeholder(pass)
        || pass.starts_with(b"$")
        || pass.starts_with(b"%")
        || pass.iter().all(|&b| b == b'*' || b == b'x' || b == b'X'))
}

/// GitHub/npm token checksum: the last 6 characters are the base62 CRC32
/// of the 30 characters before them.
pub(crate) fn base62_crc_ok(body: &[u8]) -> bool {
    if body.len() != 36 {
        return false;
    }
    let (random, check) = body.split_at(30);
    let crc = crc32fast::hash(random);
    base62_6(crc).as_bytes() == check
}

pub(crate) fn base62_6(mut n: u32) -> String {
    const ALPHA: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHA[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn boundary_before(data: &[u8], pos: usize) -> bool {
    pos == 0 || !data[pos - 1].is_ascii_alphanumeric()
}

fn boundary_after(data: &[u8], end: usize) -> bool {
    end >= data.len() || !is_word(data[end]) && data[end] != b'-'
}

/// Start and end (exclusive, without the newline) of the line holding `pos`.
pub(crate) fn line_bounds(data: &[u8], pos: usize) -> (usize, usize) {
    let start = memchr::memrchr(b'\n', &data[..pos]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
    (start, end)
}

/// A PEM or OpenSSH private key block: BEGIN header, a body of real key
/// material (not "..."), and the matching END line. Handles blocks written
/// with `\n` escapes inside JSON strings.
pub(crate) fn pem(c: &Candidate<'_>, _: &mut FileState, out: &mut Vec<Hit>) {
    let (data, pos) = (c.data, c.pos);
    let after = pos + "-----BEGIN ".len();
    let hdr_window = &data[after..data.len().min(after + 64)];
    let Some(close) = memchr::memmem::find(hdr_window, b"-----") else {
        return;
    };
    let label = &hdr_window[..close];
    if !(label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK")) {
        return;
    }
    let body_start = after + close + 5;
    let mut end_marker = b"-----END ".to_vec();
    end_marker.extend_from_slice(label);
    end_marker.extend_from_slice(b"-----");
    let search = &data[body_start..data.len().min(body_start + 65536)];
    let Some(end_rel) = memchr::memmem::find(search, &end_marker) else {
        return;
    };
    let body = &search[..end_rel];
    if memchr::memmem::find(body, b"...").is_some()
        || memchr::memmem::find(body, b"\xe2\x80\xa6").is_some()
    {
        return;
    }
    // Count base64 characters outside header lines ("Proc-Type: …") and
    // `\n` escapes.
    let mut b64 = 0usize;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b == b'\\' && i + 1 < body.len() {
            i += 2;
            continue;
        }
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            b64 += 1;
        }
        i += 1;
    }
    if b64 < 64 || entropy::shannon(body) < 4.0 {
        return;
    }
    let openssh = label == b"OPENSSH PRIVATE KEY";
    let rule = if openssh {
        Rule::OpensshPrivateKey
    } else {
        Rule::PrivateKey
    };
    let end = body_start + end_rel + end_marker.len();
    let label_text = String::from_utf8_lossy(label).into_owned();
    let mut hit = Hit::new(
        rule,
        pos,
        end,
        data,
        format!(
            "{} ({})",
            rule.description(),
            crate::finding::escape_control(&label_text)
        ),
    );
    // The key material without the line breaks around it, so the preview
    // starts with key bytes.
    let trimmed: &[u8] = {
        let mut b = body;
        loop {
            if let Some(r) = b.strip_prefix(b"\\n") {
                b = r;
            } else if let Some((first, r)) = b.split_first() {
                if first.is_ascii_whitespace() {
                    b = r;
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        b
    };
    hit.secret = trimmed.to_vec();
    out.push(hit);
}

/// A Google Cloud service account key file: a JSON object with
/// `"type": "service_account"`, `client_email` and a `private_key` holding
/// a PEM block.
fn gcp_file(data: &[u8], out: &mut Vec<Hit>) {
    let Some(t) = memchr::memmem::find(data, b"\"type\"") else {
        return;
    };
    let tail = &data[t..data.len().min(t + 64)];
    if memchr::memmem::find(tail, b"\"service_account\"").is_none() {
        return;
    }
    if memchr::memmem::find(data, b"\"client_email\"").is_none() {
        return;
    }
    let Some(k) = memchr::memmem::find(data, b"\"private_key\"") else {
        return;
    };
    let rest = &data[k + 13..];
    let Some(q) = memchr::memchr(b'"', rest) else {
        return;
    };
    if rest[..q]
        .iter()
        .any(|&b| !matches!(b, b' ' | b':' | b'\t' | b'\n' | b'\r'))
    {
        return;
    }
    let vstart = k + 13 + q + 1;
    // The value ends at the next unescaped quote.
    let mut i = vstart;
    while i < data.len() && data[i] != b'"' {
        i += if data[i] == b'\\' { 2 } else { 1 };
    }
    let vend = i.min(data.len());
    let value = &data[vstart..vend];
    if memchr::memmem::find(value, b"PRIVATE KEY-----").is_none() || value.len() < 200 {
        return;
    }
    out.push(Hit::new(
        Rule::GcpServiceAccountKey,
        vstart,
        vend,
        data,
        "Google Cloud service account key (private_key with client_email)".into(),
    ));
}

const DEFAULT_PASSWORDS: &[&[u8]] = &[
    b"postgres",
    b"root",
    b"admin",
    b"password",
    b"pass",
    b"guest",
    b"test",
    b"changeme",
    b"secret",
    b"example",
    b"user",
    b"mysql",
    b"redis",
    b"rabbitmq",
    b"pwd",
    b"passwd",
];

/// The generic decision, looking through base64: a Kubernetes-style
/// base64 value that decodes to readable text is judged by that text
/// (`aHVudGVyMg==` is "hunter2", too weak to be anything but a fixture).
fn value_is_secret(value: &[u8]) -> bool {
    if !entropy::looks_like_secret(value) {
        return false;
    }
    if value.len().is_multiple_of(4) && value.len() >= 8 {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) {
            if decoded.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
                return entropy::looks_like_secret(&decoded);
            }
        }
    }
    true
}

/// `scheme://user:password@host` with a real password.
fn userinfo_password(data: &[u8], pos: usize, out: &mut Vec<Hit>) {
    // Scheme: letters, digits, + . - directly before "://".
    let mut s = pos;
    while s > 0 && pos - s < 32 {
        let b = data[s - 1];
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-') {
            s -= 1;
        } else {
            break;
        }
    }
    if s == pos || !data[s].is_ascii_alphabetic() {
        return;
    }
    let auth_start = pos + 3;
    let limit = data.len().min(auth_start + 256);
    // Userinfo ends at the last '@' before any '/', '?', '#', whitespace or quote.
    let mut at = None;
    let mut colon = None;
    let mut i = auth_start;
    while i < limit {
        match data[i] {
            b'@' => at = Some(i),
            b':' if colon.is_none() && at.is_none() => colon = Some(i),
            b'/' | b'?' | b'#' | b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'`' | b'<'
            | b'>' | b'\\' | b',' | b';' | b')' | b'(' | b'[' | b']' | b'{' | b'}' => break,
            _ => {}
        }
        i += 1;
    }
    let (Some(at), Some(colon)) = (at, colon) else {
        return;
    };
    if colon > at {
        return;
    }
    let user = &data[auth_start..colon];
    let pass = &data[colon + 1..at];
    let host_end = data[at + 1..i].len();
    if host_end == 0 || !data[at + 1].is_ascii_alphanumeric() {
        return;
    }
    if pass.len() < 4 || pass == user {
        return;
    }
    let lower = pass.to_ascii_lowercase();
    if DEFAULT_PASSWORDS.contains(&lower.as_slice())
        || entropy::is_placeholder(pass)
        || pass.starts_with(b"$")
        || pass.iter().all(|&b| b == b'*' || b == b'x' || b == b'X')
    {
        return;
    }
    // Local and example hosts: only a password that looks random counts.
    let host = &data[at + 1..i];
    let local = [
        &b"localhost"[..],
        b"127.0.0.1",
        b"0.0.0.0",
        b"example.",
        b"[::1]",
    ]
    .iter()
    .any(|h| host.starts_with(h));
    if local && !entropy::looks_like_secret(pass) {
        return;
    }
    let scheme = String::from_utf8_lossy(&data[s..pos]).to_ascii_lowercase();
    let mut hit = Hit::new(
        Rule::UrlPassword,
        colon + 1,
        at,
        data,
        format!("{scheme} URL with an embedded password"),
    );
    hit.span = (s, at);
    out.push(hit);
}

const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "credential",
    "credentials",
];

const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "signing",
    "encryption",
    "master",
    "account",
    "client",
    "auth",
    "app",
    "service",
];

/// Splits an identifier into words at `_ - .` (and other non-alphanumeric
/// bytes) and camelCase boundaries; returns the spans of the words.
fn word_spans(key: &[u8], out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut start = None;
    let mut prev_lower = false;
    for (i, &b) in key.iter().enumerate() {
        if !b.is_ascii_alphanumeric() {
            if let Some(s) = start.take() {
                out.push((s, i));
            }
            prev_lower = false;
            continue;
        }
        if b.is_ascii_uppercase() && prev_lower {
            if let Some(s) = start.take() {
                out.push((s, i));
            }
        }
        if start.is_none() {
            start = Some(i);
        }
        prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
    }
    if let Some(s) = start {
        out.push((s, key.len()));
    }
}

fn eq_any(word: &[u8], list: &[&str]) -> bool {
    list.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(word))
}

/// Whether an identifier names a secret: its last word is a secret word
/// (`db_password`, `clientSecret`, `access_token`) or it ends in `key`
/// qualified by a secret-ish word (`apiKey`, `AWS_SECRET_ACCESS_KEY`).
pub(crate) fn is_secret_key(key: &[u8]) -> bool {
    let mut spans = Vec::new();
    word_spans(key, &mut spans);
    let Some(&(ls, le)) = spans.last() else {
        return false;
    };
    let last = &key[ls..le];
    if eq_any(last, SECRET_WORDS) {
        return true;
    }
    if last.eq_ignore_ascii_case(b"key") && spans.len() >= 2 {
        let (ps, pe) = spans[spans.len() - 2];
        return eq_any(&key[ps..pe], KEY_QUALIFIERS);
    }
    false
}

/// Whether a key may be followed by its value after plain whitespace: in
/// `.netrc`, and on a Dockerfile `ENV` line.
fn space_separated(data: &[u8], lang: Lang, ks: usize) -> bool {
    match lang {
        Lang::Netrc => true,
        Lang::Docker => {
            let (ls, _) = line_bounds(data, ks);
            let line = data[ls..ks].trim_ascii();
            line.eq_ignore_ascii_case(b"ENV") || line.eq_ignore_ascii_case(b"ARG")
        }
        _ => false,
    }
}

/// Whether the identifier has a word equal to `w` (any case).
fn has_word(key: &[u8], w: &str) -> bool {
    let mut spans = Vec::new();
    word_spans(key, &mut spans);
    spans
        .iter()
        .any(|&(s, e)| key[s..e].eq_ignore_ascii_case(w.as_bytes()))
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// What kind of text a file holds, by its name: decides which values are
/// literals. In program code and Terraform an unquoted value is an
/// expression (a variable, a selector, a call, a composite literal) and is
/// never judged, except in a comment; in configuration, shell, Dockerfiles
/// and prose an unquoted value is a literal unless it is shaped like code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Lang {
    /// Go, Python, JS/TS, Java, Rust, C, C#, Ruby, PHP, …
    Code,
    /// Terraform/HCL (`.tf`, `.tfvars`, `.hcl`): only quoted strings are literals.
    Hcl,
    /// Shell scripts and Makefiles.
    Shell,
    /// Dockerfiles: `ENV KEY value` as well as `ENV KEY=value`.
    Docker,
    /// `.netrc`: `machine HOST login USER password PASS`.
    Netrc,
    /// YAML, JSON, TOML, INI, properties, env files, `.npmrc`, `.pypirc`, …
    Config,
    /// Markdown and anything else.
    Text,
}

impl Lang {
    pub(crate) fn of(path: &str) -> Lang {
        let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let lower = file.to_ascii_lowercase();
        if lower == ".netrc" || lower == "_netrc" {
            return Lang::Netrc;
        }
        if lower == "dockerfile"
            || lower.starts_with("dockerfile.")
            || lower.ends_with(".dockerfile")
            || lower == "containerfile"
        {
            return Lang::Docker;
        }
        if lower == "makefile" || lower == "gnumakefile" {
            return Lang::Shell;
        }
        if lower.starts_with(".env") || lower.ends_with(".env") {
            return Lang::Config;
        }
        let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
        match ext {
            "go" | "py" | "pyi" | "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts"
            | "java" | "kt" | "kts" | "scala" | "groovy" | "gradle" | "rs" | "c" | "h" | "cc"
            | "cpp" | "cxx" | "hpp" | "cs" | "rb" | "php" | "swift" | "dart" | "m" | "mm"
            | "lua" | "ex" | "exs" | "erl" | "clj" | "vue" | "svelte" | "jl" | "r" | "pl"
            | "pm" | "fs" | "vb" | "zig" | "nim" => Lang::Code,
            "tf" | "tfvars" | "hcl" | "nomad" => Lang::Hcl,
            "sh" | "bash" | "zsh" | "ksh" | "fish" | "bats" | "mk" | "ps1" | "bat" | "cmd" => {
                Lang::Shell
            }
            "yaml" | "yml" | "json" | "jsonc" | "json5" | "toml" | "ini" | "cfg" | "conf"
            | "properties" | "env" | "npmrc" | "pypirc" | "yarnrc" | "xml" | "plist" | "tpl"
            | "j2" | "tmpl" | "config" => Lang::Config,
            _ if lower.starts_with('.') && !lower[1..].contains('.') => Lang::Config,
            _ => Lang::Text,
        }
    }

    /// Whether an unquoted value can be a literal here.
    fn unquoted_literals(self) -> bool {
        !matches!(self, Lang::Code | Lang::Hcl)
    }
}

/// Whether the identifier at `ks` sits in a comment: the line before it
/// holds a comment marker (`#`, `//`, `/*`, a leading `*`, `--`, `;`).
fn in_comment(data: &[u8], ks: usize) -> bool {
    let (ls, _) = line_bounds(data, ks);
    let before = &data[ls..ks];
    let trimmed = before.trim_ascii_start();
    if trimmed.starts_with(b"*")
        || trimmed.starts_with(b"--")
        || trimmed.starts_with(b";")
        || trimmed.starts_with(b"<!--")
        || trimmed.starts_with(b"rem ")
    {
        return true;
    }
    // A marker outside a string: count quotes before it (good enough for
    // one line).
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < before.len() {
        let b = before[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' | b'`' => quote = Some(b),
                b'#' if i == 0 || before[i - 1].is_ascii_whitespace() => return true,
                // `//` or `/*`, but not the `//` of `https://`.
                b'/' if before.get(i + 1).is_some_and(|n| *n == b'/' || *n == b'*')
                    && (i == 0 || before[i - 1] != b':') =>
                {
                    return true
                }
                _ => {}
            },
        }
        i += 1;
    }
    false
}

/// `word`, `Word`, `WORD`, `camelCase`, `PascalCase`, each optionally
/// ending in digits: a piece of an identifier, not random material.
fn wordish(s: &[u8]) -> bool {
    let letters = s
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let alpha = &s[..letters];
    if alpha.is_empty() {
        return !s.is_empty();
    }
    if !alpha.iter().all(|b| b.is_ascii_alphabetic() || *b == b'_') {
        return false;
    }
    let upper = alpha.iter().filter(|b| b.is_ascii_uppercase()).count();
    upper == alpha.len() || upper <= 1 || upper * 3 <= alpha.len()
}

/// Whether an unquoted value is code or a reference rather than a literal:
/// a call, an index, a composite literal (`v1.Secret{`), a selector of
/// identifiers (`opts.ClientToken`, `in.PrivateKey`), a pointer or
/// reference (`&x`, `*x`), a variable (`$X`), or a path of words
/// (`foo/restricted-psp-users`).
pub(crate) fn looks_like_code(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    if v.iter()
        .any(|b| matches!(b, b'(' | b')' | b'[' | b']' | b'{' | b'}'))
    {
        return true;
    }
    if matches!(v[0], b'&' | b'*' | b'!' | b'@' | b'$' | b':') {
        return true;
    }
    let ident = |p: &[u8]| {
        !p.is_empty()
            && (p[0].is_ascii_alphabetic() || p[0] == b'_')
            && p.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    if memchr::memchr(b'.', v).is_some() && v.split(|b| *b == b'.').all(|p| ident(p) && wordish(p))
    {
        return true;
    }
    if memchr::memchr(b'/', v).is_some() {
        let parts = v
            .split(|b| matches!(b, b'/' | b'-' | b'_' | b'.' | b':'))
            .filter(|p| !p.is_empty());
        let mut any = false;
        let mut all = true;
        for p in parts {
            any = true;
            all &= wordish(p);
        }
        if any && all {
            return true;
        }
    }
    false
}

/// Whether a bare token in program code could be an expression: a
/// selector chain (`opts.APIToken`, `pendingAuth?.clientSecret`,
/// `env.SECRET!`), an identifier spelled like one (`pw`, `solverToken2`,
/// `pkcs12keyPass`, `DEFAULT_API_KEY`), a difference of such, a number.
/// `6SY0I69XCjok…` (a digit first), `RJE8x1J/n5VH…` and
/// `cUPCVUnHOwECVKIX…` (random capitals) could not.
fn could_be_expression(v: &[u8]) -> bool {
    let mut v = v;
    while let Some((last, rest)) = v.split_last() {
        if matches!(last, b'!' | b'?') {
            v = rest;
        } else {
            break;
        }
    }
    if v.is_empty() || v.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let ident = |p: &[u8]| {
        !p.is_empty()
            && !p[0].is_ascii_digit()
            && p.iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$'))
    };
    // Spelled like a name: each `_` piece all capitals, mostly lower case,
    // or short.
    let plausible = |p: &[u8]| {
        ident(p)
            && p.split(|b| matches!(b, b'_' | b'$')).all(|w| {
                let upper = w.iter().filter(|b| b.is_ascii_uppercase()).count();
                let lower = w.iter().filter(|b| b.is_ascii_lowercase()).count();
                lower == 0 || upper * 3 <= w.len() || w.len() <= 5
            })
    };
    let pieces: Vec<&[u8]> = v
        .split(|b| *b == b'.')
        .map(|p| {
            p.strip_suffix(b"?")
                .or_else(|| p.strip_suffix(b"!"))
                .unwrap_or(p)
        })
        .collect();
    if pieces.len() >= 2 {
        return pieces.iter().all(|p| ident(p));
    }
    v.split(|b| *b == b'-')
        .all(|p| plausible(p) || p.iter().all(u8::is_ascii_digit))
}

/// `key = value`, `key: value`, `"key": "value"`, `key := "value"`,
/// `export KEY=value` around a secret-like key word at `kw_start..kw_end`.
fn key_value(data: &[u8], lang: Lang, kw_start: usize, kw_end: usize, out: &mut Vec<Hit>) -> usize {
    // Whole identifier around the key word.
    let mut ks = kw_start;
    while ks > 0 && kw_start - ks < 64 && is_key_byte(data[ks - 1]) {
        ks -= 1;
    }
    let mut ke = kw_end;
    while ke < data.len() && ke - kw_end < 64 && is_key_byte(data[ke]) {
        ke += 1;
    }
    assignment(data, lang, ks, ke, out);
    ke
}

/// The assignment after identifier `ks..ke`, if it is a secret-like key.
fn assignment(data: &[u8], lang: Lang, ks: usize, ke: usize, out: &mut Vec<Hit>) {
    let key = &data[ks..ke];
    let npm_auth = key == b"_auth" && lang == Lang::Config;
    if !npm_auth && !is_secret_key(key) {
        return;
    }
    // `${DB_PASSWORD:default}`, `$(TOKEN)`: a reference, not an assignment.
    if ks > 0 && matches!(data[ks - 1], b'$' | b'{' | b'(') {
        return;
    }
    let key_quoted = ks > 0 && matches!(data[ks - 1], b'"' | b'\'');
    let mut i = ke;
    if key_quoted && i < data.len() && data[i] == data[ks - 1] {
        i += 1;
    }
    let ws_start = i;
    while i < data.len() && matches!(data[i], b' ' | b'\t') {
        i += 1;
    }
    // Assignment operator.
    let op_start = i;
    if i < data.len() && data[i] == b':' {
        i += 1;
        if i < data.len() && data[i] == b':' {
            return; // a path: `secret::Plain`
        }
        if i < data.len() && data[i] == b'=' {
            i += 1;
        }
    } else if i < data.len() && data[i] == b'=' {
        i += 1;
        if i < data.len() && matches!(data[i], b'=' | b'~') {
            return; // comparison
        }
        if i < data.len() && data[i] == b'>' {
            i += 1;
        }
    } else if i > ws_start && space_separated(data, lang, ks) {
        // `.netrc` `password PASS`, Dockerfile `ENV TOKEN value`.
    } else {
        return;
    }
    if op_start > 0 && matches!(data[op_start - 1], b'!' | b'<' | b'>') {
        return;
    }
    while i < data.len() && matches!(data[i], b' ' | b'\t') {
        i += 1;
    }
    if i >= data.len() {
        return;
    }
    let comment = !lang.unquoted_literals() && in_comment(data, ks);
    let (vs, ve) = match data[i] {
        q @ (b'"' | b'\'' | b'`') => {
            let s = i + 1;
            let lim = data.len().min(s + 600);
            let Some(e) = data[s..lim].iter().position(|&b| b == q || b == b'\n') else {
                return;
            };
            if data[s + e] != q {
                return;
            }
            (s, s + e)
        }
        _ => {
            // Unquoted values are literals in configuration and comments,
            // expressions in code — unless no expression could be spelled
            // so (config text pasted into a source file, a raw string).
            let in_code = !lang.unquoted_literals() && !comment;
            let mut s = i;
            // `KEY: #value`: a YAML comment to a parser, a committed
            // password all the same.
            if data[s] == b'#'
                && data
                    .get(s + 1)
                    .is_some_and(|b| b.is_ascii_graphic() && *b != b'#')
            {
                s += 1;
            }
            let mut e = s;
            while e < data.len()
                && e - s < 600
                && !(in_code && data[e] == b'&')
                && !matches!(
                    data[e],
                    b' ' | b'\t' | b'\n' | b'\r' | b'#' | b'"' | b'\'' | b'`' | b'\\' | b'}' | b']'
                )
            {
                e += 1;
            }
            while e > s && matches!(data[e - 1], b',' | b';' | b'}' | b')') {
                e -= 1;
            }
            if looks_like_code(&data[s..e]) || in_code && could_be_expression(&data[s..e]) {
                return;
            }
            (s, e)
        }
    };
    let value = &data[vs..ve];
    // An AWS secret access key is 40 base64 characters and may start with
    // '/', so it gets its own test instead of the generic one.
    let aws_secret = value.len() == 40
        && has_word(key, "aws")
        && has_word(key, "secret")
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
        && !entropy::is_placeholder(value)
        && entropy::shannon(value) >= 4.0;
    if !aws_secret && !value_is_secret(value) {
        return;
    }
    // A UUID under a password-like name is an id (`LastPass = "b78a…"`,
    // an enum of password managers); under a token name it may be a token.
    if entropy::is_uuid(value) && (has_word(key, "pass") || has_word(key, "password")) {
        return;
    }
    let (rule, message) = if aws_secret {
        (
            Rule::AwsSecretAccessKey,
            "AWS secret access key".to_string(),
        )
    } else {
        let key_text = crate::finding::escape_control(&String::from_utf8_lossy(key));
        (
            Rule::GenericSecret,
            format!("high-entropy value assigned to secret-like key `{key_text}`"),
        )
    };
    let mut hit = Hit::new(rule, vs, ve, data, message);
    hit.span = (ks, ve);
    out.push(hit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_names() {
        for k in [
            "password",
            "db_password",
            "DB_PASS",
            "clientSecret",
            "client_secret",
            "apiKey",
            "API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "access_token",
            "github.token",
            "privateKey",
        ] {
            assert!(is_secret_key(k.as_bytes()), "{k}");
        }
        for k in [
            "secretName",
            "tokenizer",
            "passwordPolicy",
            "token_url",
            "secretKeyRef",
            "password_file",
            "bypass",
            "key",
            "passed",
        ] {
            assert!(!is_secret_key(k.as_bytes()), "{k}");
        }
    }

    #[test]
    fn crc_base62() {
        assert_eq!(base62_6(0), "000000");
        assert_eq!(base62_6(61), "00000z");
        assert_eq!(base62_6(62), "000010");
    }
}
