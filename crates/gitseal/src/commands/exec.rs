//! `gitseal exec`: run a command with the items of SealedSecrets as
//! environment variables, for local development and scripts, without ever
//! writing plaintext to disk.
//!
//! Sealed items are opened with the user's identity; Vault items are read
//! with the user's own Vault token (`VAULT_ADDR`, `VAULT_TOKEN` or
//! `~/.vault-token`), so a developer can only see what Vault lets them see.
//! On Unix gitseal then *replaces itself* with the command (`execvp`, like
//! `exec` in a shell): the command keeps gitseal's process id, receives
//! signals directly, and its exit status is the exit status (a command
//! killed by signal N shows as 128+N in a shell). Elsewhere the command runs
//! as a child and its exit code is passed through.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use gitseal_manifest::open::{self, OpenOptions};
use gitseal_manifest::seal::Others;
use gitseal_manifest::Location;
use gitseal_vault::{VaultClient, VaultConfig, VaultRef};
use secrecy::{ExposeSecret as _, SecretSlice};

use crate::args::{IdentityArgs, InputArgs};
use crate::exit::{coded, Exit};
use crate::io::{check_stdin_once, read_documents};

/// Run a command with the items of SealedSecrets as environment variables.
///
/// Sealed items (encryptedData) are opened with the identity; Vault items
/// (vaultData) are read with your own Vault token (VAULT_ADDR, VAULT_TOKEN
/// or ~/.vault-token, VAULT_CACERT, VAULT_NAMESPACE). Nothing is written to
/// disk. An item key becomes a variable name by upper-casing it and
/// replacing every character other than A-Z and 0-9 with `_` (a leading
/// digit gets a `_` in front), after the --prefix: `db-password` →
/// `DB_PASSWORD`, `tls.crt` → `TLS_CRT`. Two items with the same name are
/// an error.
///
/// An item may not set a variable that is already set in the environment,
/// nor one that changes how programs run (PATH, LD_*, DYLD_*, BASH_ENV,
/// ENV, *_PROXY, NODE_OPTIONS and the like), unless you name it with
/// --allow-override NAME: whoever can write the SealedSecret must not be
/// able to take over the command.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal exec -i key.txt -f db.sealed.yaml -- ./manage.py migrate
  gitseal exec -i key.txt -f app.sealed.yaml -f db.sealed.yaml --prefix APP_ -- env
  VAULT_ADDR=https://vault:8200 gitseal exec -f vault-only.sealed.yaml -- make test
  gitseal exec -f app.sealed.yaml --dry-run        # names only; opens nothing
  gitseal exec -i key.txt -f app.sealed.yaml --allow-override HOME -- ./run

Exit codes: the command's own exit code once it runs (a signal N shows as
128+N in a shell); before that 2 bad usage or input (also a name collision),
3 a sealed value did not open, 4 Vault unavailable or refused, 126/127 the
command cannot be run / is not found. When gitseal fails, the command does
not run.")]
pub struct Args {
    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(flatten)]
    pub input: InputArgs,

    /// Put P in front of every variable name (letters, digits and `_`).
    #[arg(long, value_name = "P", default_value = "")]
    pub prefix: String,

    /// Print the variable names (one per line) and exit; opens nothing,
    /// contacts no Vault, runs nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Let an item set variable NAME although it is already set or changes
    /// how programs run (PATH, LD_PRELOAD…); repeatable.
    #[arg(long, value_name = "NAME")]
    pub allow_override: Vec<String>,

    /// The command and its arguments (after `--`).
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "dry_run"
    )]
    pub command: Vec<OsString>,
}

/// Where one variable's value comes from.
enum Source {
    Sealed { doc: usize },
    Vault(VaultRef),
}

struct Var {
    name: String,
    item: String,
    at: Location,
    source: Source,
}

/// The variable name for item `key` (see the command's help).
pub fn env_name(prefix: &str, key: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + key.len() + 1);
    name.push_str(prefix);
    name.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.input.files.is_empty() {
        return Err(coded(
            Exit::Usage,
            "exec needs the SealedSecrets: -f FILE (repeatable; '-' for standard input)",
        ));
    }
    check_stdin_once(&args.identity.identities, &args.input.files)?;
    if !args
        .prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(coded(
            Exit::Usage,
            format!(
                "--prefix {:?}: use only letters, digits and `_`",
                args.prefix
            ),
        ));
    }

    // 1. Read the manifests and plan the variables (no secrets yet).
    let docs = read_documents(&args.input.files)?;
    let mut sealed = Vec::with_capacity(docs.len());
    let mut vars: Vec<Var> = Vec::new();
    for doc in &docs {
        if doc.kind() != Some("SealedSecret") {
            return Err(coded(
                Exit::Usage,
                format!("{}: is {}, not a SealedSecret", doc.at, doc.describe_kind()),
            ));
        }
        let s = open::read_sealed(doc)?;
        for key in s.spec.encrypted_data.keys() {
            vars.push(Var {
                name: env_name(&args.prefix, key),
                item: key.clone(),
                at: doc.at.clone(),
                source: Source::Sealed { doc: sealed.len() },
            });
        }
        for (key, reference) in &s.spec.vault_data {
            let r = VaultRef::try_from(reference)
                .map_err(|e| coded(Exit::Usage, format!("{}, item {key:?}: {e}", doc.at)))?;
            vars.push(Var {
                name: env_name(&args.prefix, key),
                item: key.clone(),
                at: doc.at.clone(),
                source: Source::Vault(r),
            });
        }
        sealed.push(s);
    }
    let mut seen: BTreeMap<&str, &Var> = BTreeMap::new();
    for v in &vars {
        if let Some(first) = seen.insert(&v.name, v) {
            return Err(coded(
                Exit::Usage,
                format!(
                    "{}, item {:?} and {}, item {:?} both become the variable {}; rename one of the items",
                    first.at, first.item, v.at, v.item, v.name
                ),
            ));
        }
    }
    check_overrides(&vars, &args.allow_override, |name| {
        std::env::var_os(name).is_some()
    })?;
    if args.dry_run {
        let mut out = std::io::stdout().lock();
        for name in seen.keys() {
            writeln!(out, "{name}")?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }

    // 2. Open the sealed items.
    let identities = args.identity.load()?;
    let opts = OpenOptions {
        identities: &identities,
        namespace: args.input.namespace.as_deref(),
        others: Others::Refuse,
    };
    let mut values: BTreeMap<String, SecretSlice<u8>> = BTreeMap::new();
    let mut opened: Vec<Option<BTreeMap<String, SecretSlice<u8>>>> =
        Vec::with_capacity(sealed.len());
    for (s, doc) in sealed.iter().zip(&docs) {
        if s.spec.encrypted_data.is_empty() {
            opened.push(None);
            continue;
        }
        if identities.is_empty() {
            return Err(coded(
                Exit::Usage,
                format!(
                    "{}: has sealed items; give the identity that opens them with -i FILE",
                    doc.at
                ),
            ));
        }
        match open::open_sealed(s, &doc.at, &opts) {
            Ok((secret, _notes)) => opened.push(Some(secret.items)),
            Err(e) if e.is_does_not_open() => return Err(coded(Exit::DoesNotOpen, e.to_string())),
            Err(e) => return Err(coded(Exit::Usage, e.to_string())),
        }
    }

    // 3. Read the Vault items with the user's own token.
    let vault_refs: Vec<&Var> = vars
        .iter()
        .filter(|v| matches!(v.source, Source::Vault(_)))
        .collect();
    if !vault_refs.is_empty() {
        for (name, value) in read_vault(&vault_refs)? {
            values.insert(name, value);
        }
    }
    for v in &vars {
        if let Source::Sealed { doc } = v.source {
            let value = opened
                .get_mut(doc)
                .and_then(Option::as_mut)
                .and_then(|items| items.remove(&v.item))
                .with_context(|| format!("{}, item {:?}: not opened", v.at, v.item))?;
            values.insert(v.name.clone(), value);
        }
    }

    // 4. Build the environment and run.
    let mut env: Vec<(String, OsString)> = Vec::with_capacity(values.len());
    for v in &vars {
        let Some(value) = values.get(&v.name) else {
            continue;
        };
        let bytes = value.expose_secret();
        if bytes.contains(&0) {
            return Err(coded(
                Exit::Usage,
                format!(
                    "{}, item {:?}: the value contains a NUL byte and cannot be an environment variable",
                    v.at, v.item
                ),
            ));
        }
        env.push((v.name.clone(), os_string(bytes, &v.at, &v.item)?));
    }
    drop(values);
    drop(opened);
    exec(&args.command, env)
}

/// Whether a variable changes how programs (the dynamic loader, shells,
/// interpreters, HTTP clients) run, so that setting it runs someone else's
/// code or sends traffic elsewhere.
pub fn controls_execution(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "PATH",
        "ENV",
        "BASH_ENV",
        "IFS",
        "PS4",
        "PROMPT_COMMAND",
        "SHELLOPTS",
        "BASHOPTS",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "GCONV_PATH",
        "GIT_SSH_COMMAND",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ];
    let upper = name.to_ascii_uppercase();
    NAMES.contains(&upper.as_str())
        || upper.starts_with("LD_")
        || upper.starts_with("DYLD_")
        || upper.ends_with("_PROXY")
}

/// Refuses variables that would override one already set (`is_set`) or
/// change how programs run, unless named in `allowed`.
fn check_overrides(
    vars: &[Var],
    allowed: &[String],
    is_set: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    for v in vars {
        if allowed.iter().any(|a| a == &v.name) {
            continue;
        }
        let why = if controls_execution(&v.name) {
            "which changes how programs run"
        } else if is_set(&v.name) {
            "which is already set in this environment"
        } else {
            continue;
        };
        return Err(coded(
            Exit::Usage,
            format!(
                "{}, item {:?} would set {}, {why}; refusing (whoever writes the SealedSecret \
                 would control the command). Rename the item, use --prefix, or pass \
                 --allow-override {} if you mean it",
                v.at, v.item, v.name, v.name
            ),
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn os_string(bytes: &[u8], _at: &Location, _item: &str) -> anyhow::Result<OsString> {
    use std::os::unix::ffi::OsStringExt as _;
    Ok(OsString::from_vec(bytes.to_vec()))
}

#[cfg(not(unix))]
fn os_string(bytes: &[u8], at: &Location, item: &str) -> anyhow::Result<OsString> {
    std::str::from_utf8(bytes)
        .map(OsString::from)
        .map_err(|_| coded(Exit::Usage, format!("{at}, item {item:?}: the value is not UTF-8 and cannot be an environment variable here")))
}

/// Reads every Vault item through one client and one session (each secret
/// once), on a current-thread runtime that is gone before the command runs.
fn read_vault(vars: &[&Var]) -> anyhow::Result<Vec<(String, SecretSlice<u8>)>> {
    let config = VaultConfig::from_env().map_err(|e| coded(Exit::Usage, e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = VaultClient::new(config)
            .await
            .map_err(|e| coded(Exit::Usage, e.to_string()))?;
        let session = client.session();
        let mut out = Vec::with_capacity(vars.len());
        for v in vars {
            let Source::Vault(r) = &v.source else {
                continue;
            };
            match session.resolve(r).await {
                Ok(value) => out.push((
                    v.name.clone(),
                    SecretSlice::from(value.expose_secret().as_bytes().to_vec()),
                )),
                Err(e) => {
                    let code = match &e {
                        gitseal_vault::Error::InvalidRef { .. }
                        | gitseal_vault::Error::Config { .. } => Exit::Usage,
                        _ => Exit::Unavailable,
                    };
                    let hint = match &e {
                        gitseal_vault::Error::Auth { .. } => {
                            "; set VAULT_TOKEN or log in with `vault login` / `bao login`"
                        }
                        gitseal_vault::Error::Unavailable { .. } => {
                            "; check VAULT_ADDR (default http://127.0.0.1:8200) and that Vault is up and unsealed"
                        }
                        gitseal_vault::Error::Forbidden { .. } => {
                            "; Vault refused your own token (VAULT_TOKEN or ~/.vault-token): it needs a \
                             policy that may read this path, not the controller's"
                        }
                        _ => "",
                    };
                    return Err(coded(
                        code,
                        format!("{}, item {:?} ({r}): {e}{hint}", v.at, v.item),
                    ));
                }
            }
        }
        Ok(out)
    })
}

#[cfg(unix)]
fn exec(command: &[OsString], env: Vec<(String, OsString)>) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt as _;
    let Some((program, rest)) = command.split_first() else {
        return Err(coded(
            Exit::Usage,
            "no command given: gitseal exec … -- CMD [ARGS…]",
        ));
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest).envs(env);
    // Only returns on failure.
    let err = cmd.exec();
    Ok(cannot_run(program, &err))
}

#[cfg(not(unix))]
fn exec(command: &[OsString], env: Vec<(String, OsString)>) -> anyhow::Result<ExitCode> {
    let Some((program, rest)) = command.split_first() else {
        return Err(coded(
            Exit::Usage,
            "no command given: gitseal exec … -- CMD [ARGS…]",
        ));
    };
    let status = match std::process::Command::new(program)
        .args(rest)
        .envs(env)
        .status()
    {
        Ok(s) => s,
        Err(err) => return Ok(cannot_run(program, &err)),
    };
    Ok(ExitCode::from(
        status.code().map_or(1, |c| (c & 0xff) as u8),
    ))
}

/// The shell's convention: 127 not found, 126 found but not runnable.
fn cannot_run(program: &OsString, err: &std::io::Error) -> ExitCode {
    let (code, what) = match err.kind() {
        std::io::ErrorKind::NotFound => (127, "command not found"),
        _ => (126, "cannot run the command"),
    };
    eprintln!("error: {what}: {}: {err}", program.to_string_lossy());
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::env_name;

    #[test]
    fn item_keys_become_variable_names() {
        assert_eq!(env_name("", "db-password"), "DB_PASSWORD");
        assert_eq!(env_name("", "tls.crt"), "TLS_CRT");
        assert_eq!(env_name("", "api_Token2"), "API_TOKEN2");
        assert_eq!(env_name("", "9lives"), "_9LIVES");
        assert_eq!(env_name("APP_", "9lives"), "APP_9LIVES");
        assert_eq!(env_name("app_", "é-x"), "app___X");
    }
}
