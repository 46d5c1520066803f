//! gitseal-template: the sandboxed template engine behind a SealedSecret's
//! `spec.template.data`.
//!
//! A templated item is a Secret key whose value is rendered from the
//! object's *inputs* (its opened `encryptedData` and resolved `vaultData`
//! items), e.g. `postgres://{{ user }}:{{ password | urlencode }}@db/app`.
//! The controller renders in the cluster and `gitseal render` offline, with
//! this one crate, so both produce the same bytes.
//!
//! The engine is [MiniJinja](https://docs.rs/minijinja), configured so that
//! a template written by anyone who may create a SealedSecret cannot harm
//! the controller or read more than its own object's inputs:
//!
//! - **no I/O**: no loader, no `include`/`import`/`extends`, no macros; the
//!   environment starts empty and only the filters and functions of
//!   [`mod@filters`] are added (none reads a file, the environment or the
//!   network);
//! - **strict**: an unknown input is an error, statically (a name no input
//!   has, even in a branch not taken) and at render time;
//! - **bounded work and memory**: one fuel budget per object, which MiniJinja
//!   charges for every instruction and for every byte a string operator,
//!   literal, filter or function creates (checked *before* a known-size
//!   allocation, so `{% set b = a ~ a %}` repeated forty times stops at the
//!   budget, not at a terabyte); a bound on the rendered output of all the
//!   object's templates together, on what gitseal's filters produce, and on
//!   bcrypt work;
//! - **no plaintext in errors**: an [`Error`] names the templated key and
//!   the template line, and carries detail only when it comes from the
//!   template text (committed to Git anyway) or from gitseal's own filters,
//!   never a message the engine built from a value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use minijinja::machinery::Token;
use minijinja::{Environment, ErrorKind, Value};
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

pub mod filters;

/// Longest template (bytes of source) per templated key.
pub const MAX_TEMPLATE_LEN: usize = 64 * 1024;
/// Most templated keys per object.
pub const MAX_TEMPLATES: usize = 128;
/// The name under which every input is reachable, whatever its key
/// (`inputs["tls.crt"]`).
pub const INPUTS: &str = "inputs";

/// Bounds on one object's rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel for all templates of one object: one per instruction, and one
    /// per 64 bytes of data created (MiniJinja's accounting).
    pub fuel: u64,
    /// Bytes all rendered items of one object may hold together (a Secret
    /// holds at most 1 MiB).
    pub max_output: usize,
    /// Bytes filters and functions may produce while rendering one object
    /// (intermediate values included).
    pub max_work: usize,
    /// bcrypt work for one object, in units of 2^cost (one hash at cost 10
    /// is 1024 units).
    pub max_bcrypt_work: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 250_000,
            max_output: 1024 * 1024,
            max_work: 8 * 1024 * 1024,
            max_bcrypt_work: 1 << 13,
        }
    }
}

/// Where the object is; binds htpasswd salts to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place<'a> {
    /// Namespace of the SealedSecret (empty for none).
    pub namespace: &'a str,
    /// Name of the SealedSecret.
    pub name: &'a str,
}

/// The key that derives bcrypt salts (`htpasswd`, `bcrypt`): the salt of
/// a hash is a keyed hash of the object, the templated key, the user and
/// the password, so the same inputs give the same line on every reconcile
/// (no rewrite, no restart) while nobody without the key can precompute
/// anything. The controller derives it from its hash key.
pub struct SaltKey(Zeroizing<[u8; 32]>);

impl SaltKey {
    /// A salt key from 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        SaltKey(Zeroizing::new(bytes))
    }

    /// The public key `gitseal render` uses when it has no controller key:
    /// its htpasswd lines verify the same passwords as the controller's,
    /// but are not byte-identical to them.
    pub fn offline() -> Self {
        SaltKey(Zeroizing::new(*b"gitseal.dev/offline-salt-key/v1\0"))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SaltKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SaltKey([REDACTED])")
    }
}

/// Why a template was refused. Every variant names the templated key and,
/// where there is one, the 1-based line of the template; none holds a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The template does not parse.
    #[error("template {key:?}{}: syntax error: {detail}", at(*line))]
    Syntax {
        /// The templated key.
        key: String,
        /// Line of the template.
        line: Option<usize>,
        /// What the parser expected (from the template text only).
        detail: String,
    },
    /// The template names an input the object does not have.
    #[error(
        "template {key:?}{}: unknown input{} {}: the object has no such encryptedData or vaultData item{}",
        at(*line),
        if names.len() == 1 { "" } else { "s" },
        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
        if names.iter().any(|n| n.contains('.')) { "" } else { " (reach keys that are not names as inputs[\"key\"])" }
    )]
    UnknownInput {
        /// The templated key.
        key: String,
        /// Line of the template where it is used (first use).
        line: Option<usize>,
        /// The names.
        names: Vec<String>,
    },
    /// A value was undefined at render time: `inputs["x"]` of an input the
    /// object does not have, or an attribute a value does not have.
    #[error("template {key:?}{}: undefined value (an input the object does not have, or an attribute or key a value does not have)", at(*line))]
    Undefined {
        /// The templated key.
        key: String,
        /// Line of the template.
        line: Option<usize>,
    },
    /// The object's templates ran out of their fuel (a runaway loop, or
    /// strings built without end).
    #[error("template {key:?}{}: the templates of this object ran longer than their budget of {fuel} fuel (instructions, and bytes of data created); simplify its loops", at(*line))]
    OutOfFuel {
        /// The templated key.
        key: String,
        /// Line of the template.
        line: Option<usize>,
        /// The budget.
        fuel: u64,
    },
    /// The rendered items would be larger than allowed.
    #[error("template {key:?}{}: the rendered output exceeds {limit} bytes (all templated items of the object together)", at(*line))]
    OutputTooLarge {
        /// The templated key.
        key: String,
        /// Line of the template.
        line: Option<usize>,
        /// The bound.
        limit: usize,
    },
    /// The template source is too long, or the object has too many templates.
    #[error("template {key:?}: {message}")]
    TooLong {
        /// The templated key.
        key: String,
        /// What is too long.
        message: String,
    },
    /// A filter or function refused its input (message written by gitseal,
    /// never holding the value), or the engine failed for a reason whose
    /// detail could hold a value (only its kind is given).
    #[error("template {key:?}{}: {message}", at(*line))]
    Render {
        /// The templated key.
        key: String,
        /// Line of the template.
        line: Option<usize>,
        /// What went wrong.
        message: String,
    },
}

fn at(line: Option<usize>) -> String {
    line.map(|l| format!(", line {l}")).unwrap_or_default()
}

impl Error {
    /// The templated key the error is about.
    pub fn key(&self) -> &str {
        match self {
            Error::Syntax { key, .. }
            | Error::UnknownInput { key, .. }
            | Error::Undefined { key, .. }
            | Error::OutOfFuel { key, .. }
            | Error::OutputTooLarge { key, .. }
            | Error::TooLong { key, .. }
            | Error::Render { key, .. } => key,
        }
    }
}

/// What a template reads: the inputs it names, and whether it reaches
/// inputs by a computed key (`inputs[k]`, `for k in inputs`), in which case
/// it may read any of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// Inputs named as variables (`{{ password }}`): required, an object
    /// without them is refused. With the line of their first use.
    pub names: BTreeMap<String, usize>,
    /// Inputs named through `inputs` (`inputs.x`, `inputs["x"]`): they may
    /// be optional (`inputs.x is defined`, `inputs.x | default(…)`), so a
    /// missing one is an error only when rendering uses it.
    pub optional: BTreeMap<String, usize>,
    /// Whether `inputs` is used in a way that can reach any input.
    pub dynamic: bool,
}

impl Reads {
    /// Every input named, required or optional.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.names.keys().chain(self.optional.keys())
    }
}

/// Checks a template without inputs: its length and its syntax. Returns
/// what it reads. Used before any
/// rendering, and by `gitseal verify`.
pub fn check(key: &str, source: &str) -> Result<Reads, Error> {
    if source.len() > MAX_TEMPLATE_LEN {
        return Err(Error::TooLong {
            key: key.to_string(),
            message: format!(
                "the template is {} bytes, more than the {MAX_TEMPLATE_LEN} allowed",
                source.len()
            ),
        });
    }
    let mut reads = Reads::default();
    let tokens: Vec<(Token<'_>, minijinja::machinery::Span)> =
        minijinja::machinery::tokenize(source, false, syntax())
            .collect::<Result<_, _>>()
            .map_err(|e| syntax_error(key, &e))?;
    for (i, (token, span)) in tokens.iter().enumerate() {
        let line = usize::from(span.start_line);
        if let Token::Ident(name) = token {
            let prev = i.checked_sub(1).map(|p| &tokens[p].0);
            if *name == INPUTS && !matches!(prev, Some(Token::Dot)) {
                let next: Vec<&Token<'_>> =
                    tokens[i + 1..].iter().take(3).map(|(t, _)| t).collect();
                match next.as_slice() {
                    [Token::Dot, Token::Ident(n), ..] => {
                        reads.optional.entry((*n).to_string()).or_insert(line);
                    }
                    [Token::BracketOpen, Token::Str(n), Token::BracketClose] => {
                        reads.optional.entry((*n).to_string()).or_insert(line);
                    }
                    [Token::BracketOpen, Token::String(n), Token::BracketClose] => {
                        reads.optional.entry(n.to_string()).or_insert(line);
                    }
                    _ => reads.dynamic = true,
                }
            }
        }
    }
    // Names read as variables: the engine knows which ones are not set
    // by the template itself (loop variables, `set`).
    let env = analysis_env();
    let template = env
        .template_from_named_str(key, source)
        .map_err(|e| syntax_error(key, &e))?;
    let globals = filters::FUNCTIONS;
    for name in template.undeclared_variables(false) {
        if name == INPUTS || globals.contains(&name.as_str()) {
            continue;
        }
        let line = first_use(&tokens, &name);
        reads.names.entry(name).or_insert(line);
    }
    Ok(reads)
}

/// The line of the first use of `name` as a variable in `tokens`.
fn first_use(tokens: &[(Token<'_>, minijinja::machinery::Span)], name: &str) -> usize {
    tokens
        .iter()
        .enumerate()
        .find(|(i, (t, _))| {
            matches!(t, Token::Ident(n) if *n == name)
                && !matches!(i.checked_sub(1).map(|p| &tokens[p].0), Some(Token::Dot))
        })
        .map(|(_, (_, s))| usize::from(s.start_line))
        .unwrap_or(1)
}

fn syntax_error(key: &str, e: &minijinja::Error) -> Error {
    // Parse errors come from the template text alone (no value is known
    // yet), so their detail is safe to show.
    Error::Syntax {
        key: key.to_string(),
        line: e.line(),
        detail: e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string()),
    }
}

/// Whitespace handling (the same for `check` and rendering): block tags on
/// their own line leave no blank line behind (`trim_blocks`,
/// `lstrip_blocks`), and the template's final newline is kept, so a config
/// file comes out as written.
fn syntax() -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .unwrap_or_default()
}

fn analysis_env() -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_syntax(syntax());
    env
}

/// Whether `key` can be written as a bare variable name.
pub fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The inputs a template sees: every input whose key is a name as a
/// variable of that name (unless it is `inputs` or a function's name),
/// and every input under `inputs["key"]`. Text values are strings; values
/// that are not UTF-8 are bytes (usable with `b64enc`, `sha256`).
fn context(inputs: &BTreeMap<String, SecretSlice<u8>>) -> Value {
    let mut all: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in inputs {
        let bytes = v.expose_secret();
        let value = match std::str::from_utf8(bytes) {
            Ok(s) => Value::from(s),
            Err(_) => Value::from_bytes(bytes.to_vec()),
        };
        all.insert(k.clone(), value);
    }
    let mut ctx: BTreeMap<String, Value> = all
        .iter()
        .filter(|(k, _)| {
            is_identifier(k) && k.as_str() != INPUTS && !filters::FUNCTIONS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ctx.insert(INPUTS.to_string(), Value::from(all));
    Value::from(ctx)
}

/// Renders every template of an object from its inputs. Returns the
/// rendered items (templated key → bytes), or the first template's error
/// in key order. Nothing partial is returned.
pub fn render(
    templates: &BTreeMap<String, String>,
    inputs: &BTreeMap<String, SecretSlice<u8>>,
    place: Place<'_>,
    salt: &SaltKey,
    limits: &Limits,
) -> Result<BTreeMap<String, SecretSlice<u8>>, Error> {
    render_reads(templates, inputs, place, salt, limits).map(|(out, _)| out)
}

/// Item key → value.
type Items = BTreeMap<String, SecretSlice<u8>>;

/// [`render`], also returning what the templates read.
fn render_reads(
    templates: &BTreeMap<String, String>,
    inputs: &BTreeMap<String, SecretSlice<u8>>,
    place: Place<'_>,
    salt: &SaltKey,
    limits: &Limits,
) -> Result<(Items, Vec<Reads>), Error> {
    if templates.len() > MAX_TEMPLATES {
        let key = templates
            .keys()
            .nth(MAX_TEMPLATES)
            .cloned()
            .unwrap_or_default();
        return Err(Error::TooLong {
            key,
            message: format!(
                "the object has {} templated items, more than the {MAX_TEMPLATES} allowed",
                templates.len()
            ),
        });
    }
    // Every template is checked before any is rendered.
    let mut all_reads = Vec::with_capacity(templates.len());
    for (key, source) in templates {
        let reads = check(key, source)?;
        let unknown: Vec<(&String, &usize)> = reads
            .names
            .iter()
            .filter(|(n, _)| !inputs.contains_key(*n))
            .collect();
        if let Some((_, line)) = unknown.first() {
            return Err(Error::UnknownInput {
                key: key.clone(),
                line: Some(**line),
                names: unknown.iter().map(|(n, _)| (*n).clone()).collect(),
            });
        }
        all_reads.push(reads);
    }
    let budget = Arc::new(filters::Budget::new(*limits, place, salt));
    let mut env = environment(&budget);
    let ctx = context(inputs);
    let mut out = BTreeMap::new();
    let mut remaining = limits.max_output;
    let mut fuel = limits.fuel;
    for (key, source) in templates {
        let mut writer = Bounded {
            buf: Zeroizing::new(Vec::new()),
            limit: remaining,
            exceeded: false,
        };
        env.set_fuel(Some(fuel));
        let template = env
            .template_from_named_str(key.as_str(), source.as_str())
            .map_err(|e| syntax_error(key, &e))?;
        let captured = template
            .render_captured_to(ctx.clone(), &mut writer)
            .map_err(|e| render_error(key, &e, writer.exceeded, limits))?;
        let (used, _) = captured.state().fuel_levels().unwrap_or((fuel, 0));
        fuel = fuel.saturating_sub(used);
        remaining -= writer.buf.len();
        out.insert(key.clone(), SecretSlice::from(writer.buf.to_vec()));
    }
    Ok((out, all_reads))
}

/// Turns an object's inputs into its Secret's data: the rendered items,
/// plus the inputs no template reads (every input when `include_inputs`).
/// An input read only by templates stays out of the Secret, so the Secret
/// holds what the application reads; a template that reads inputs by a
/// computed key (`inputs[k]`) counts as reading all of them. A rendered
/// item wins over an input of the same key. Objects without templates are
/// left as they are. On error `data` is unchanged.
pub fn secret_data(
    templates: &BTreeMap<String, String>,
    include_inputs: bool,
    data: &mut BTreeMap<String, SecretSlice<u8>>,
    place: Place<'_>,
    salt: &SaltKey,
    limits: &Limits,
) -> Result<(), Error> {
    if templates.is_empty() {
        return Ok(());
    }
    let (rendered, reads) = render_reads(templates, data, place, salt, limits)?;
    if !include_inputs {
        let dynamic = reads.iter().any(|r| r.dynamic);
        let read: BTreeSet<&String> = reads.iter().flat_map(Reads::all).collect();
        data.retain(|k, _| !dynamic && !read.contains(k));
    }
    data.extend(rendered);
    Ok(())
}

/// Output that refuses to grow past `limit` bytes.
struct Bounded {
    buf: Zeroizing<Vec<u8>>,
    limit: usize,
    exceeded: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit"));
        }
        // Grow by hand so no reallocation leaves a copy behind unwiped.
        if self.buf.capacity() < self.buf.len() + data.len() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (self.buf.len() + data.len()).max(self.buf.capacity() * 2),
            ));
            bigger.extend_from_slice(&self.buf);
            self.buf = bigger;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Maps an engine error to one that holds no value: detail is kept only
/// when it comes from the template text or from gitseal's own filters.
fn render_error(key: &str, e: &minijinja::Error, exceeded: bool, limits: &Limits) -> Error {
    let key = key.to_string();
    let line = e.line();
    if exceeded {
        return Error::OutputTooLarge {
            key,
            line,
            limit: limits.max_output,
        };
    }
    if let Some(safe) = filters::safe_detail(e) {
        return Error::Render {
            key,
            line,
            message: safe,
        };
    }
    match e.kind() {
        ErrorKind::SyntaxError | ErrorKind::BadEscape => syntax_error(&key, e),
        ErrorKind::UndefinedError => Error::Undefined { key, line },
        ErrorKind::OutOfFuel => Error::OutOfFuel {
            key,
            line,
            fuel: limits.fuel,
        },
        // Names from the template text.
        ErrorKind::UnknownFilter
        | ErrorKind::UnknownFunction
        | ErrorKind::UnknownTest
        | ErrorKind::UnknownMethod
        | ErrorKind::TooManyArguments
        | ErrorKind::MissingArgument => Error::Render {
            key,
            line,
            message: format!(
                "{}{}; see docs/templates.md for the filters and functions gitseal provides",
                e.kind(),
                e.detail().map(|d| format!(": {d}")).unwrap_or_default()
            ),
        },
        // The engine may build these details from values ("unable to
        // calculate <value> - 1"): only the kind is shown.
        kind => Error::Render {
            key,
            line,
            message: kind.to_string(),
        },
    }
}

fn environment(budget: &Arc<filters::Budget>) -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_syntax(syntax());
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_recursion_limit(32);
    // Never HTML-escape, whatever the key's extension (`config.html`).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    filters::install(&mut env, budget);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("user"));
        assert!(is_identifier("_x9"));
        assert!(!is_identifier("db-password"));
        assert!(!is_identifier("tls.crt"));
        assert!(!is_identifier("9lives"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn reads_names_and_subscripts() {
        let r = check(
            "k",
            "{{ user }}\n{{ inputs[\"tls.crt\"] | b64enc }}{{ inputs.token }}{% for x in [1] %}{{ x }}{% endfor %}",
        )
        .unwrap_or_default();
        assert_eq!(r.names.keys().cloned().collect::<Vec<_>>(), vec!["user"]);
        assert_eq!(
            r.optional.keys().cloned().collect::<Vec<_>>(),
            vec!["tls.crt", "token"]
        );
        assert_eq!(r.optional.get("tls.crt"), Some(&2));
        assert!(!r.dynamic);
        let r = check("k", "{% for k in inputs %}{{ k }}{% endfor %}").unwrap_or_default();
        assert!(r.dynamic);
    }
}
