//! Files a kustomize `secretGenerator` reads: `envs:` (and the older
//! `env:`) env files and `files:` entries (`path` or `key=path`). A
//! committed `creds.env` or `tls.key` next to a kustomization.yaml is a
//! plaintext Secret in Git just like a `Secret` manifest, so `verify`
//! follows these references.
//!
//! No second walk and no second read: while a file is scanned, its
//! [`Facts`] (real env values with their positions, whether the whole file
//! holds anything, a cheap digest) are computed from the bytes already in
//! memory; while a kustomization is scanned, its generator references are
//! collected. After the walk the references are resolved against the facts.
//! A reference that escapes the scanned root (`..` above it, or an absolute
//! path) is not followed and not reported: what it names is not part of the
//! scan (absolute paths are how deploy-time mounts are named).

use crate::finding::{self, escape_control, Context, Finding, Rule};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path};

/// Files larger than this are not parsed as env files (a whole-file
/// reference to them is still reported).
const ENV_MAX: usize = 1 << 20;

/// Whether `path` names a kustomization file.
pub(crate) fn is_kustomization(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// How a generator reads a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// `envs:` or `env:`: KEY=VALUE lines, one item each.
    Env,
    /// `files:`: the whole file is one item.
    File,
}

/// A generator reference as written in a kustomization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawRef {
    /// The generator's `name`.
    pub generator: String,
    /// `envs`/`env` or `files`.
    pub source: Source,
    /// The item key of a `files` entry (explicit `key=` or the file name).
    pub item: Option<String>,
    /// The path as written, relative to the kustomization's directory.
    pub path: String,
}

/// The references of one kustomization file.
#[derive(Clone, Debug)]
pub(crate) struct Kustomization {
    /// Its path as scanned.
    pub path: String,
    /// How many directories its own directory lies below the scanned root:
    /// how far `..` may climb.
    pub budget: usize,
    /// The commit of the blob (git sources).
    pub commit: Option<String>,
    pub refs: Vec<RawRef>,
}

/// One real (non-placeholder) value of an env-shaped file. Holds no secret:
/// only its place, key, fingerprint and redacted preview.
#[derive(Clone, Debug)]
pub(crate) struct EnvValue {
    line: usize,
    column: usize,
    key: String,
    digest: finding::Digest,
    redacted: String,
    allowed: bool,
}

/// What one scanned file would contribute if a generator reads it.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    /// Path as scanned (normalised).
    path: String,
    commit: Option<String>,
    /// `Some` when the file is a valid kustomize env file: its real values.
    env: Option<Vec<EnvValue>>,
    /// Whether the file as a whole holds something (not empty, not a lone
    /// placeholder, not only public certificates, not an env file of
    /// placeholders).
    whole: bool,
    /// `gitseal:allow` on the first line.
    whole_allowed: bool,
    len: u64,
    crc: u32,
    /// Lines whose allowed findings the blob scan already counted.
    counted: Vec<usize>,
}

impl Facts {
    /// Records the lines the blob scan already counted as allowed.
    pub(crate) fn with_counted(mut self, lines: Vec<usize>) -> Facts {
        self.counted = lines;
        self
    }

    /// Whether resolving a reference to this file can report anything.
    pub(crate) fn reportable(&self) -> bool {
        self.whole || self.env.as_ref().is_some_and(|v| !v.is_empty())
    }

    /// Facts of a file that was not read (over the size cap): it holds
    /// something, nothing more is known.
    pub(crate) fn unread(path: &str, len: u64, commit: Option<&str>) -> Facts {
        Facts {
            path: normalize(path),
            commit: commit.map(str::to_string),
            env: None,
            whole: len > 0,
            whole_allowed: false,
            len,
            crc: 0,
            counted: Vec::new(),
        }
    }

    /// Facts of a binary file (a keystore, a DER key).
    pub(crate) fn binary(path: &str, data: &[u8], commit: Option<&str>) -> Facts {
        Facts {
            path: normalize(path),
            commit: commit.map(str::to_string),
            env: None,
            whole: !data.is_empty(),
            whole_allowed: false,
            len: data.len() as u64,
            crc: digest(data),
            counted: Vec::new(),
        }
    }
}

/// The placeholder rule shared by secretGenerator literals and env-file
/// values: empty, a template or environment reference, an obvious filler
/// (`changeme`, `<token>`, `xxxx`), or a reference to a secret stored
/// elsewhere (`vault:`, a file path, a URL without credentials).
pub(crate) fn placeholder_value(v: &[u8]) -> bool {
    // Deliberately narrow: a generator value goes straight into a Secret,
    // so anything that could be a real secret (symbols, words like
    // "password" inside it, a URL with credentials) is reported. The
    // entropy rule's wider placeholder list is for values under keys that
    // merely look secret-like.
    let v = unquote(v.trim_ascii());
    let lower = v.to_ascii_lowercase();
    v.is_empty()
        // A reference resolved elsewhere: another variable, a sealed value,
        // a Vault reference.
        || v.starts_with(b"${")
        || v.starts_with(b"$(")
        || v.starts_with(b"gs1:")
        || v.starts_with(b"vault:")
        // A whole-value template slot: <your-token>, {{ .Values.token }}.
        || (v.len() > 2 && v.starts_with(b"<") && v.ends_with(b">"))
        || (v.len() > 4 && v.starts_with(b"{{") && v.ends_with(b"}}"))
        // The usual stand-ins.
        || matches!(
            lower.as_slice(),
            b"changeme" | b"change-me" | b"change_me" | b"changeit" | b"replaceme"
                | b"replace-me" | b"replace_me" | b"todo" | b"tbd" | b"redacted"
        )
        || (v.len() >= 3 && v.iter().all(|&b| matches!(b, b'x' | b'X' | b'*')))
        || plain_path(v)
        || url_without_credentials(v)
}

/// An absolute file path of plain characters (`/etc/ssl/ca.pem`): where a
/// mounted file is, not a secret.
fn plain_path(v: &[u8]) -> bool {
    v.first() == Some(&b'/')
        && v.iter().skip(1).any(|&b| b == b'/')
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
}

/// An http(s) URL with no user or password in it and no whitespace.
fn url_without_credentials(v: &[u8]) -> bool {
    let rest = v
        .strip_prefix(b"https://")
        .or_else(|| v.strip_prefix(b"http://"));
    match rest {
        Some(rest) => {
            let authority_end = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(rest.len());
            !rest[..authority_end].contains(&b'@') && !v.iter().any(u8::is_ascii_whitespace)
        }
        None => false,
    }
}

/// A kustomize env-file key (Kubernetes `IsEnvVarName`):
/// `[-._a-zA-Z][-._a-zA-Z0-9]*`.
fn env_key_ok(k: &[u8]) -> bool {
    match k.split_first() {
        Some((f, rest)) => {
            (f.is_ascii_alphabetic() || matches!(f, b'-' | b'.' | b'_'))
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        }
        None => false,
    }
}

fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [q @ (b'"' | b'\''), inner @ .., last] if q == last => inner,
        _ => v,
    }
}

/// Parses `data` the way kustomize reads an env file (leading whitespace
/// trimmed, `#` comments, `KEY=VALUE` or a bare `KEY` taken from the
/// environment). Stops at the first line kustomize would refuse. Returns
/// the real values and the number of `KEY=VALUE` lines, or `None`.
fn env_values(
    path: &str,
    data: &[u8],
    added: Option<&dyn Fn(usize) -> bool>,
) -> Option<(Vec<EnvValue>, usize)> {
    if data.len() > ENV_MAX {
        return None;
    }
    let mut values = Vec::new();
    let mut assignments = 0usize;
    let mut offset = 0usize;
    for (i, raw) in data.split_inclusive(|&b| b == b'\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let mut line = raw.strip_suffix(b"\n").unwrap_or(raw);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut skipped = 0usize;
        if i == 0 {
            if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF".as_slice()) {
                line = rest;
                skipped += 3;
            }
        }
        let trimmed = line.trim_ascii_start();
        skipped += line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed[0] == b'#' {
            continue;
        }
        let (key, value) = match memchr::memchr(b'=', trimmed) {
            Some(eq) => (&trimmed[..eq], Some(&trimmed[eq + 1..])),
            None => (trimmed.trim_ascii_end(), None),
        };
        if !env_key_ok(key) {
            return None;
        }
        let Some(value) = value else { continue };
        assignments += 1;
        let value = unquote(value.trim_ascii());
        if placeholder_value(value) {
            continue;
        }
        let line_no = i + 1;
        if added.is_some_and(|f| !f(line_no)) {
            continue;
        }
        let key_at = start + skipped;
        let (ls, le) = (start, start + raw.len() - usize::from(raw.ends_with(b"\n")));
        let column = String::from_utf8_lossy(&data[ls..key_at]).chars().count() + 1;
        let key = String::from_utf8_lossy(key).into_owned();
        values.push(EnvValue {
            line: line_no,
            column,
            digest: finding::digest(Rule::KustomizeSecretFile, path, value),
            redacted: finding::redact(Rule::KustomizeSecretFile, value),
            allowed: crate::allow::inline_allowed(data, ls, le),
            key,
        });
    }
    // kustomize refuses invalid UTF-8; checked last, as most files stop
    // at their first line.
    std::str::from_utf8(data).ok()?;
    Some((values, assignments))
}

/// A content digest for the fingerprint of a whole-file finding: CRC-32 of
/// the file, or of its first and last 32 KiB when larger (bounded work per
/// scanned file; secret files are small).
fn digest(data: &[u8]) -> u32 {
    const HALF: usize = 32 << 10;
    if data.len() <= 2 * HALF {
        return crc32fast::hash(data);
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&data[..HALF]);
    h.update(&data[data.len() - HALF..]);
    h.finalize()
}

/// A text file holding only X.509 certificates (public material).
fn only_certificates(text: &[u8]) -> bool {
    const CERT: &[u8] = b"-----BEGIN CERTIFICATE-----";
    text.starts_with(CERT)
        && memchr::memmem::find_iter(text, b"-----BEGIN ").all(|p| text[p..].starts_with(CERT))
}

/// The facts of a scanned text file. `added` restricts env values to those
/// lines (git sources), like every other finding.
pub(crate) fn facts(
    path: &str,
    data: &[u8],
    added: Option<&dyn Fn(usize) -> bool>,
    commit: Option<&str>,
) -> Facts {
    let env = env_values(path, data, added);
    let trimmed = data.trim_ascii();
    let single_line = !trimmed.contains(&b'\n');
    let holds_nothing = trimmed.is_empty()
        || only_certificates(trimmed)
        || (single_line && placeholder_value(trimmed));
    let whole = if holds_nothing {
        false
    } else {
        match &env {
            Some((values, assignments)) if *assignments > 0 => {
                // Placeholders only: reading the file as one item carries
                // no secret either. `added` filtered values, so ask again
                // without the filter only when needed.
                !values.is_empty()
                    || (added.is_some()
                        && env_values(path, data, None).is_some_and(|(v, _)| !v.is_empty()))
            }
            _ => true,
        }
    };
    let first_end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    Facts {
        path: normalize(path),
        commit: commit.map(str::to_string),
        env: env.map(|(v, _)| v),
        whole,
        whole_allowed: memchr::memmem::find(&data[..first_end], crate::allow::ALLOW_MARKER)
            .is_some(),
        len: data.len() as u64,
        crc: digest(data),
        counted: Vec::new(),
    }
}

/// Lexical normalisation of a `/`-separated path: drops `.`, folds `..`
/// into the component before it (keeps leading `..`).
pub(crate) fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !absolute {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let joined = out.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Resolves `rel` against the directory of the kustomization at `kpath`,
/// whose directory lies `budget` levels below the scanned root. `None` for
/// an absolute path or one whose `..` climbs above the root.
pub(crate) fn resolve(kpath: &str, budget: usize, rel: &str) -> Option<String> {
    let rel = rel.trim();
    if rel.is_empty() || rel.starts_with('/') || rel.starts_with('\\') {
        return None;
    }
    let mut level = budget;
    for c in Path::new(rel).components() {
        match c {
            Component::Prefix(_) | Component::RootDir => return None,
            Component::CurDir => {}
            Component::ParentDir => level = level.checked_sub(1)?,
            Component::Normal(_) => level += 1,
        }
    }
    let dir = kpath.rsplit_once('/').map_or("", |(d, _)| d);
    if dir.is_empty() {
        Some(normalize(rel))
    } else {
        Some(normalize(&format!("{dir}/{rel}")))
    }
}

/// How far `..` may climb from the directory of a repository-relative path.
pub(crate) fn repo_budget(path: &str) -> usize {
    path.split('/')
        .filter(|c| !c.is_empty())
        .count()
        .saturating_sub(1)
}

/// Parses a `files:` entry: `key=path` or `path` (key = file name).
pub(crate) fn file_entry(entry: &str) -> (String, String) {
    match entry.split_once('=') {
        Some((k, p)) if !k.is_empty() => (k.trim().to_string(), p.trim().to_string()),
        _ => {
            let p = entry.trim().trim_start_matches('=');
            let name = p.rsplit('/').next().unwrap_or(p);
            (name.to_string(), p.to_string())
        }
    }
}

/// What resolving produced.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub findings: Vec<Finding>,
    pub allowed_inline: u64,
}

struct Target<'a> {
    kustomization: &'a str,
    generator: &'a str,
    source: Source,
    item: Option<&'a str>,
}

/// Reports every reportable file a generator reads.
pub(crate) fn resolve_all(kusts: &[Kustomization], facts: &[Facts]) -> Resolved {
    let mut res = Resolved::default();
    if kusts.is_empty() {
        return res;
    }
    // target path -> references (first by kustomization path, generator).
    let mut targets: BTreeMap<String, Vec<Target<'_>>> = BTreeMap::new();
    let mut sorted: Vec<&Kustomization> = kusts.iter().collect();
    sorted.sort_by(|a, b| (&a.path, &a.commit).cmp(&(&b.path, &b.commit)));
    for k in sorted {
        for r in &k.refs {
            let Some(t) = resolve(&k.path, k.budget, &r.path) else {
                continue;
            };
            targets.entry(t).or_default().push(Target {
                kustomization: &k.path,
                generator: &r.generator,
                source: r.source,
                item: r.item.as_deref(),
            });
        }
    }
    let mut by_path: HashMap<&str, Vec<&Facts>> = HashMap::new();
    for f in facts {
        by_path.entry(f.path.as_str()).or_default().push(f);
    }
    let mut seen = HashSet::new();
    for (target, refs) in &targets {
        let Some(files) = by_path.get(target.as_str()) else {
            continue; // not in the scan: generated at deploy time
        };
        let env_ref = refs.iter().find(|r| r.source == Source::Env);
        let file_ref = refs.iter().find(|r| r.source == Source::File);
        for f in files {
            if let (Some(r), Some(values)) = (env_ref, &f.env) {
                for v in values {
                    if !seen.insert((f.path.clone(), v.line, f.commit.clone())) {
                        continue;
                    }
                    if v.allowed {
                        res.allowed_inline += u64::from(!f.counted.contains(&v.line));
                        continue;
                    }
                    res.findings.push(Finding {
                        path: f.path.clone(),
                        line: v.line,
                        column: v.column,
                        rule: Rule::KustomizeSecretFile,
                        message: format!(
                            "plaintext `{}` is read by secretGenerator `{}` (envs) of {}: seal it with `gitseal seal`, then delete this file and remove it from Git history",
                            escape_control(&v.key),
                            escape_control(r.generator),
                            escape_control(r.kustomization)
                        ),
                        confidence: Rule::KustomizeSecretFile.confidence(),
                        context: Context::of_path(&f.path),
                        fingerprint: None,
                        digest: v.digest,
                        redacted: v.redacted.clone(),
                        commit: f.commit.clone(),
                    });
                }
            }
            // A whole-file read: `files:`, or an env reference to a file
            // kustomize cannot parse as env lines.
            let whole_ref = file_ref.or(if f.env.is_none() { env_ref } else { None });
            let Some(r) = whole_ref else { continue };
            if !f.whole || !seen.insert((f.path.clone(), 1, f.commit.clone())) {
                continue;
            }
            if f.whole_allowed {
                res.allowed_inline += u64::from(!f.counted.contains(&1));
                continue;
            }
            let how = match (r.source, r.item) {
                (Source::File, Some(item)) => format!("item `{}`", escape_control(item)),
                _ => "an item (not valid env lines, read whole)".to_string(),
            };
            let digest = format!("file:{}:{:08x}", f.len, f.crc);
            res.findings.push(Finding {
                path: f.path.clone(),
                line: 1,
                column: 1,
                rule: Rule::KustomizeSecretFile,
                message: format!(
                    "this file is {how} of secretGenerator `{}` in {}: seal it with `gitseal seal`, then delete this file and remove it from Git history",
                    escape_control(r.generator),
                    escape_control(r.kustomization)
                ),
                confidence: Rule::KustomizeSecretFile.confidence(),
                context: Context::of_path(&f.path),
                fingerprint: None,
                digest: finding::digest(Rule::KustomizeSecretFile, &f.path, digest.as_bytes()),
                redacted: "…".to_string(),
                commit: f.commit.clone(),
            });
        }
    }
    res
}

/// Adds `new` findings to `all`; a pattern finding on the same line of the
/// same blob yields to them (as pattern findings yield to a plaintext
/// Secret item).
pub(crate) fn merge(all: &mut Vec<Finding>, new: Vec<Finding>) {
    if new.is_empty() {
        return;
    }
    let lines: HashSet<(&str, usize, Option<&str>)> = new
        .iter()
        .map(|f| (f.path.as_str(), f.line, f.commit.as_deref()))
        .collect();
    all.retain(|f| {
        f.rule.is_structural()
            || !lines.contains(&(normalize(&f.path).as_str(), f.line, f.commit.as_deref()))
    });
    all.extend(new);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_within_the_root_only() {
        assert_eq!(
            resolve("deploy/app/kustomization.yaml", 2, "creds.env").as_deref(),
            Some("deploy/app/creds.env")
        );
        assert_eq!(
            resolve("deploy/app/kustomization.yaml", 2, "./s/../tls.key").as_deref(),
            Some("deploy/app/tls.key")
        );
        assert_eq!(
            resolve("deploy/app/kustomization.yaml", 2, "../../x.env").as_deref(),
            Some("x.env")
        );
        assert_eq!(
            resolve("deploy/app/kustomization.yaml", 2, "../../../x.env"),
            None
        );
        assert_eq!(
            resolve("deploy/app/kustomization.yaml", 2, "/etc/creds.env"),
            None
        );
        assert_eq!(
            resolve("kustomization.yaml", 0, "creds.env").as_deref(),
            Some("creds.env")
        );
        assert_eq!(resolve("kustomization.yaml", 0, "a/../../x"), None);
        assert_eq!(resolve("k/kustomization.yaml", 1, ""), None);
    }

    #[test]
    fn file_entries() {
        assert_eq!(file_entry("tls.key"), ("tls.key".into(), "tls.key".into()));
        assert_eq!(
            file_entry("key.pem=secrets/tls.key"),
            ("key.pem".into(), "secrets/tls.key".into())
        );
        assert_eq!(
            file_entry("dir/ca.crt"),
            ("ca.crt".into(), "dir/ca.crt".into())
        );
    }

    #[test]
    fn env_shape_and_placeholders() {
        let f = facts(
            "a.env",
            b"\xEF\xBB\xBF# c\n  USER=\nPASS=${PASS}\nTOKEN\n",
            None,
            None,
        );
        assert!(f.env.as_ref().is_some_and(Vec::is_empty));
        assert!(!f.reportable());
        let f = facts("a.env", b"A=changeme\nB=k8Jq2LmZ9xPw4RtY\n", None, None);
        let v = f.env.as_deref().unwrap_or_default();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].line, v[0].column, v[0].key.as_str()), (2, 1, "B"));
        assert!(f.whole);
        // Not env lines: read whole when referenced.
        let f = facts("x", b"apiVersion: v1\n", None, None);
        assert!(f.env.is_none() && f.whole);
        // A lone placeholder or only certificates hold nothing.
        assert!(!facts("t", b"changeme\n", None, None).whole);
        let cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(!facts("c.crt", cert, None, None).whole);
        let mixed = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN EC PARAMETERS-----\nBggq\n-----END EC PARAMETERS-----\n";
        assert!(facts("m.pem", mixed, None, None).whole);
    }
}
