//! The filters, functions and tests a gitseal template can use, and the
//! per-object budget they draw from. The environment starts empty: nothing
//! here reads a file, the environment or the network, and every filter that
//! can make a value larger charges its output to the object's work budget
//! ([`Budget`]) before or right after building it.
//!
//! A filter's error says which filter and why in words written here, never
//! with the value; such errors carry a [`Safe`] marker so the caller can
//! tell them from engine errors whose detail might hold a value.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Limits, Place, SaltKey};

/// Names of the global functions (not inputs, even when an input has the
/// same key: such an input is reached as `inputs["htpasswd"]`).
pub const FUNCTIONS: &[&str] = &["htpasswd", "dockerconfigjson"];

/// Every filter, for docs and tests.
pub const FILTERS: &[&str] = &[
    "b64enc",
    "b64dec",
    "tojson",
    "json",
    "toyaml",
    "yaml",
    "urlencode",
    "urlencode_path",
    "trim",
    "lower",
    "upper",
    "indent",
    "nindent",
    "sha256",
    "bcrypt",
    "join",
    "default",
    "length",
];

/// Widest indentation `indent`/`nindent` accept.
pub const MAX_INDENT: usize = 256;
/// Cost `htpasswd`/`bcrypt` use unless given one.
pub const DEFAULT_BCRYPT_COST: u32 = 10;
/// Domain separation of bcrypt salts.
const SALT_DOMAIN: &[u8] = b"gitseal.dev/template/bcrypt-salt/v1\0";

/// Marks an error whose detail was written by gitseal and holds no value.
#[derive(Debug)]
pub struct Safe;

impl std::fmt::Display for Safe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gitseal filter error")
    }
}

impl std::error::Error for Safe {}

fn safe(message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message).with_source(Safe)
}

/// The detail of `e` if gitseal wrote it.
pub(crate) fn safe_detail(e: &Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<Safe>() {
            return e.detail().map(str::to_string);
        }
        source = s.source();
    }
    None
}

/// What one object's rendering may still spend, and what binds its salts.
pub(crate) struct Budget {
    limits: Limits,
    work: AtomicUsize,
    bcrypt: AtomicU64,
    namespace: String,
    name: String,
    salt_key: Zeroizing<[u8; 32]>,
}

impl Budget {
    pub(crate) fn new(limits: Limits, place: Place<'_>, salt: &SaltKey) -> Self {
        Budget {
            limits,
            work: AtomicUsize::new(0),
            bcrypt: AtomicU64::new(0),
            namespace: place.namespace.to_string(),
            name: place.name.to_string(),
            salt_key: Zeroizing::new(*salt.bytes()),
        }
    }

    /// Charges `bytes` of filter output.
    fn charge(&self, bytes: usize, filter: &str) -> Result<(), Error> {
        let before = self.work.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limits.max_work {
            return Err(safe(format!(
                "{filter}: filters produced more than {} bytes while rendering this object; \
                 the templates ask for too much work",
                self.limits.max_work
            )));
        }
        Ok(())
    }

    /// A bcrypt hash of `password` at `cost`, salted with a keyed hash of
    /// the object, the templated key and the inputs, so the same inputs
    /// give the same hash on every render.
    fn bcrypt(
        &self,
        state: &State<'_, '_>,
        user: &str,
        password: &[u8],
        cost: u32,
    ) -> Result<String, Error> {
        if !(4..=14).contains(&cost) {
            return Err(safe(format!("bcrypt cost {cost} is outside 4..=14")));
        }
        let units = 1u64 << cost;
        let before = self.bcrypt.fetch_add(units, Ordering::Relaxed);
        if before.saturating_add(units) > self.limits.max_bcrypt_work {
            return Err(safe(format!(
                "bcrypt: more hashing than allowed for one object ({} units of 2^cost; one hash \
                 at cost 10 is 1024); lower the cost or hash fewer passwords",
                self.limits.max_bcrypt_work
            )));
        }
        if password.len() > 72 {
            return Err(safe(
                "bcrypt: the password is longer than 72 bytes, which bcrypt cannot hash whole",
            ));
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.salt_key[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(SALT_DOMAIN);
        for part in [
            self.namespace.as_bytes(),
            self.name.as_bytes(),
            state.name().as_bytes(),
            user.as_bytes(),
            password,
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&digest[..16]);
        let parts = bcrypt::non_truncating_hash_with_salt(password, cost, salt)
            .map_err(|_| safe("bcrypt: the password cannot be hashed"))?;
        Ok(parts.format_for_version(bcrypt::Version::TwoY))
    }
}

/// The bytes of a scalar value (strings as UTF-8, numbers and booleans as
/// written).
fn bytes_of<'a>(v: &'a Value, filter: &str) -> Result<Cow<'a, [u8]>, Error> {
    match v.kind() {
        ValueKind::String => Ok(Cow::Borrowed(v.as_str().unwrap_or_default().as_bytes())),
        ValueKind::Bytes => Ok(Cow::Borrowed(v.as_bytes().unwrap_or_default())),
        ValueKind::Number | ValueKind::Bool => Ok(Cow::Owned(v.to_string().into_bytes())),
        ValueKind::Undefined => Err(Error::from(ErrorKind::UndefinedError)),
        kind => Err(safe(format!("{filter}: expects a string, got {kind}"))),
    }
}

/// The text of a scalar value; binary values that are not UTF-8 are refused.
fn text_of<'a>(v: &'a Value, filter: &str) -> Result<Cow<'a, str>, Error> {
    match bytes_of(v, filter)? {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        Cow::Owned(b) => String::from_utf8(b)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
    .map_err(|_| {
        safe(format!(
            "{filter}: the value is binary (not UTF-8 text); b64enc it first"
        ))
    })
}

/// A value as JSON, refusing what has no JSON form.
fn to_json(v: &Value, filter: &str) -> Result<serde_json::Value, Error> {
    use serde_json::Value as J;
    Ok(match v.kind() {
        ValueKind::Undefined => return Err(Error::from(ErrorKind::UndefinedError)),
        ValueKind::None => J::Null,
        ValueKind::Bool => J::Bool(v.is_true()),
        ValueKind::Number => match v.as_i64() {
            Some(i) => J::from(i),
            None => f64::try_from(v.clone())
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(J::Number)
                .ok_or_else(|| safe(format!("{filter}: a number with no JSON form")))?,
        },
        ValueKind::String => J::String(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => {
            return Err(safe(format!(
                "{filter}: a binary value has no JSON form; b64enc it first"
            )))
        }
        ValueKind::Seq | ValueKind::Iterable => J::Array(
            v.try_iter()?
                .map(|item| to_json(&item, filter))
                .collect::<Result<_, _>>()?,
        ),
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                let key = match k.as_str() {
                    Some(s) => s.to_string(),
                    None => k.to_string(),
                };
                map.insert(key, to_json(&item, filter)?);
            }
            J::Object(map)
        }
        kind => {
            return Err(safe(format!(
                "{filter}: a value of kind {kind} has no JSON form"
            )))
        }
    })
}

/// A string as a YAML double-quoted scalar: valid on one line anywhere a
/// YAML value goes (YAML 1.1 and 1.2). Escapes what JSON escapes, plus the
/// characters YAML treats as line breaks or refuses (NEL, LS, PS, BOM, C1).
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value as a one-line YAML flow value (strings through
/// [`yaml_quote`]).
fn yaml_flow(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) => out.push_str(&yaml_quote(s)),
        J::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_flow(item, out);
            }
            out.push(']');
        }
        J::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&yaml_quote(k));
                out.push_str(": ");
                yaml_flow(item, out);
            }
            out.push('}');
        }
    }
}

/// Percent-encodes every byte but RFC 3986's unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`), and also `/` when `keep_slash`.
pub fn percent_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn urlencode(v: &Value, keep_slash: bool, filter: &str) -> Result<String, Error> {
    if v.kind() == ValueKind::Map {
        let mut parts = Vec::new();
        for k in v.try_iter()? {
            let item = v.get_item(&k)?;
            if item.is_none() {
                continue;
            }
            parts.push(format!(
                "{}={}",
                percent_encode(&bytes_of(&k, filter)?, keep_slash),
                percent_encode(&bytes_of(&item, filter)?, keep_slash)
            ));
        }
        return Ok(parts.join("&"));
    }
    Ok(percent_encode(&bytes_of(v, filter)?, keep_slash))
}

/// Indents lines by `width` spaces: every line but the first unless
/// `first`, and blank lines only with `blank` (Jinja's `indent`).
fn indent_text(text: &str, width: usize, first: bool, blank: bool) -> String {
    let pad = " ".repeat(width);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let is_blank = line.trim_end_matches(['\n', '\r']).is_empty();
        if (i > 0 || first) && (blank || !is_blank) {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    out
}

fn check_width(width: usize, filter: &str) -> Result<(), Error> {
    if width > MAX_INDENT {
        return Err(safe(format!(
            "{filter}: width {width} is more than {MAX_INDENT}"
        )));
    }
    Ok(())
}

fn indented_size(text: &str, width: usize) -> usize {
    text.len() + (text.matches('\n').count() + 1) * width
}

/// Adds the filters, functions and tests to `env`, all drawing from `budget`.
pub(crate) fn install(env: &mut Environment<'static>, budget: &Arc<Budget>) {
    let b = budget.clone();
    env.add_filter("b64enc", move |v: &Value| -> Result<Value, Error> {
        let bytes = bytes_of(v, "b64enc")?;
        b.charge(bytes.len().div_ceil(3) * 4, "b64enc")?;
        Ok(Value::from(STANDARD.encode(bytes)))
    });
    let b = budget.clone();
    env.add_filter("b64dec", move |v: &Value| -> Result<Value, Error> {
        let text = text_of(v, "b64dec")?;
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .map_err(|_| safe("b64dec: the value is not valid base64"))?;
        b.charge(bytes.len(), "b64dec")?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => Value::from(s),
            Err(e) => Value::from_bytes(e.into_bytes()),
        })
    });
    for name in ["tojson", "json"] {
        let b = budget.clone();
        env.add_filter(
            name,
            move |v: &Value, kwargs: Kwargs| -> Result<String, Error> {
                let indent: Option<usize> = kwargs.get("indent")?;
                kwargs.assert_all_used()?;
                let json = to_json(v, name)?;
                let text = match indent {
                    None => serde_json::to_string(&json),
                    Some(n) => {
                        check_width(n, name)?;
                        let pad = vec![b' '; n];
                        let mut buf = Vec::new();
                        let fmt = serde_json::ser::PrettyFormatter::with_indent(&pad);
                        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
                        serde::Serialize::serialize(&json, &mut ser)
                            .map(|_| String::from_utf8(buf).unwrap_or_default())
                    }
                }
                .map_err(|_| safe(format!("{name}: the value cannot be written as JSON")))?;
                b.charge(text.len(), name)?;
                Ok(text)
            },
        );
    }
    let b = budget.clone();
    env.add_filter("toyaml", move |v: &Value| -> Result<String, Error> {
        let json = to_json(v, "toyaml")?;
        let text = serde_yaml::to_string(&json)
            .map_err(|_| safe("toyaml: the value cannot be written as YAML"))?;
        let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
        b.charge(text.len(), "toyaml")?;
        Ok(text)
    });
    let b = budget.clone();
    env.add_filter("yaml", move |v: &Value| -> Result<String, Error> {
        let json = to_json(v, "yaml")?;
        let mut text = String::new();
        yaml_flow(&json, &mut text);
        b.charge(text.len(), "yaml")?;
        Ok(text)
    });
    for (name, keep_slash) in [("urlencode", false), ("urlencode_path", true)] {
        let b = budget.clone();
        env.add_filter(name, move |v: &Value| -> Result<String, Error> {
            let text = urlencode(v, keep_slash, name)?;
            b.charge(text.len(), name)?;
            Ok(text)
        });
    }
    env.add_filter(
        "trim",
        |v: &Value, chars: Option<&str>| -> Result<String, Error> {
            let text = text_of(v, "trim")?;
            Ok(match chars {
                Some(c) => text.trim_matches(|x| c.contains(x)).to_string(),
                None => text.trim().to_string(),
            })
        },
    );
    let b = budget.clone();
    env.add_filter("lower", move |v: &Value| -> Result<String, Error> {
        let text = text_of(v, "lower")?.to_lowercase();
        b.charge(text.len(), "lower")?;
        Ok(text)
    });
    let b = budget.clone();
    env.add_filter("upper", move |v: &Value| -> Result<String, Error> {
        let text = text_of(v, "upper")?.to_uppercase();
        b.charge(text.len(), "upper")?;
        Ok(text)
    });
    let b = budget.clone();
    env.add_filter(
        "indent",
        move |v: &Value, width: usize, kwargs: Kwargs| -> Result<String, Error> {
            let first: Option<bool> = kwargs.get("first")?;
            let blank: Option<bool> = kwargs.get("blank")?;
            kwargs.assert_all_used()?;
            check_width(width, "indent")?;
            let text = text_of(v, "indent")?;
            b.charge(indented_size(&text, width), "indent")?;
            Ok(indent_text(
                &text,
                width,
                first.unwrap_or(false),
                blank.unwrap_or(false),
            ))
        },
    );
    let b = budget.clone();
    env.add_filter(
        "nindent",
        move |v: &Value, width: usize| -> Result<String, Error> {
            check_width(width, "nindent")?;
            let text = text_of(v, "nindent")?;
            b.charge(indented_size(&text, width) + 1, "nindent")?;
            Ok(format!("\n{}", indent_text(&text, width, true, false)))
        },
    );
    env.add_filter("sha256", |v: &Value| -> Result<String, Error> {
        Ok(hex::encode(Sha256::digest(bytes_of(v, "sha256")?)))
    });
    let b = budget.clone();
    env.add_filter(
        "bcrypt",
        move |state: &State<'_, '_>, v: &Value, kwargs: Kwargs| -> Result<String, Error> {
            let cost: Option<u32> = kwargs.get("cost")?;
            kwargs.assert_all_used()?;
            let password = Zeroizing::new(bytes_of(v, "bcrypt")?.into_owned());
            b.bcrypt(state, "", &password, cost.unwrap_or(DEFAULT_BCRYPT_COST))
        },
    );
    let b = budget.clone();
    env.add_filter(
        "join",
        move |v: &Value, sep: Option<&str>| -> Result<String, Error> {
            let sep = sep.unwrap_or("");
            let items: Vec<Value> = v.try_iter()?.collect();
            let mut parts = Vec::with_capacity(items.len());
            for item in &items {
                parts.push(text_of(item, "join")?.into_owned());
            }
            let size = parts.iter().map(String::len).sum::<usize>()
                + sep.len() * parts.len().saturating_sub(1);
            b.charge(size, "join")?;
            Ok(parts.join(sep))
        },
    );
    env.add_filter("default", minijinja::filters::default);
    env.add_filter("length", minijinja::filters::length);

    let b = budget.clone();
    env.add_function(
        "htpasswd",
        move |state: &State<'_, '_>,
              user: &Value,
              password: &Value,
              kwargs: Kwargs|
              -> Result<String, Error> {
            let cost: Option<u32> = kwargs.get("cost")?;
            kwargs.assert_all_used()?;
            let user = text_of(user, "htpasswd")?;
            if user.contains([':', '\n', '\r']) {
                return Err(safe("htpasswd: the user name contains `:` or a line break"));
            }
            let password = Zeroizing::new(bytes_of(password, "htpasswd")?.into_owned());
            let hash = b.bcrypt(state, &user, &password, cost.unwrap_or(DEFAULT_BCRYPT_COST))?;
            Ok(format!("{user}:{hash}"))
        },
    );
    let b = budget.clone();
    env.add_function(
        "dockerconfigjson",
        move |registry: &Value,
              username: &Value,
              password: &Value,
              kwargs: Kwargs|
              -> Result<String, Error> {
            let email: Option<Value> = kwargs.get("email")?;
            kwargs.assert_all_used()?;
            let f = "dockerconfigjson";
            let registry = text_of(registry, f)?;
            let username = text_of(username, f)?;
            let password = text_of(password, f)?;
            if username.contains(':') {
                return Err(safe(
                    "dockerconfigjson: the user name contains `:`, which the auth field cannot hold",
                ));
            }
            let auth = Zeroizing::new(STANDARD.encode(format!("{username}:{password}")));
            let mut entry = serde_json::Map::new();
            entry.insert("username".into(), username.as_ref().into());
            entry.insert("password".into(), password.as_ref().into());
            entry.insert("auth".into(), auth.as_str().into());
            if let Some(e) = email {
                entry.insert("email".into(), text_of(&e, f)?.as_ref().into());
            }
            let mut auths = BTreeMap::new();
            auths.insert(registry.to_string(), serde_json::Value::Object(entry));
            let doc = serde_json::json!({ "auths": auths });
            let text = doc.to_string();
            b.charge(text.len(), f)?;
            Ok(text)
        },
    );

    env.add_test("defined", minijinja::tests::is_defined);
    env.add_test("undefined", minijinja::tests::is_undefined);
    env.add_test("none", minijinja::tests::is_none);
    // Binary inputs cannot be written as text: say so instead of writing
    // replacement characters.
    env.set_formatter(|out, state, value| {
        if value.kind() == ValueKind::Bytes
            && value
                .as_bytes()
                .is_some_and(|b| std::str::from_utf8(b).is_err())
        {
            return Err(safe(
                "a binary value (not UTF-8 text) cannot be written as text; b64enc it",
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
}
