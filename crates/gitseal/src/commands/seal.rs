//! `gitseal seal`: Secret manifests in, SealedSecret manifests out; `--raw`
//! for one value; `--merge-into` to add or replace items of an existing
//! SealedSecret file without touching its other sealed values;
//! `--from-vault ITEM=REF` to add Vault references (`spec.vaultData`).
//!
//! Also the input/output helpers shared by `unseal` and `pubkey`.
#![allow(clippy::print_stderr)]

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use gitseal_crypto::{Recipient, Scope};
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::input::{self, Document};
use gitseal_manifest::keyring::{Keyring, DEFAULT_PATH};
use gitseal_manifest::merge::{self, MergeOptions};
use gitseal_manifest::output::{self, Format};
use gitseal_manifest::seal::{self as sealing, Others, SealOptions};
use gitseal_manifest::types::VaultReference;
use serde_yaml::Value;

use crate::exit::{coded, Exit};

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// YAML; several documents separated by `---`.
    #[default]
    Yaml,
    /// JSON; several documents become one `kind: List`.
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Yaml => Format::Yaml,
            FormatArg::Json => Format::Json,
        }
    }
}

/// Binding scope of sealed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// Bound to namespace + name + item key: opens only in that one place.
    Strict,
    /// Bound to namespace + item key: any object name in the namespace.
    Namespace,
    /// Bound to the item key only: any namespace, any name.
    Cluster,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Strict => Scope::Strict,
            ScopeArg::Namespace => Scope::Namespace,
            ScopeArg::Cluster => Scope::Cluster,
        }
    }
}

/// Seal Kubernetes Secret manifests into SealedSecret manifests.
///
/// Reads Secrets (YAML, several documents separated by `---`, or JSON, one
/// object or a `kind: List`) from -f FILE or standard input, seals every
/// `data` and `stringData` item to the recipients, and writes SealedSecrets
/// (safe to commit) to standard output or -o FILE. Type, labels, annotations
/// and `immutable` go to `spec.template`; server fields and kubectl's
/// last-applied annotation are dropped.
///
/// Each value is bound to where it will live: with the default strict scope
/// to its namespace, name and item key; --scope namespace binds namespace and
/// item key; --scope cluster only the item key. Strict and namespace scope
/// need a namespace: metadata.namespace, or --namespace for Secrets without one.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal seal -r age1… -f secret.yaml -o sealed.yaml
  kubectl create secret generic db --from-literal=password=s3cret --dry-run=client -o yaml \\
    | gitseal seal --keyring .gitseal/keys.yaml --env prod --namespace prod > db.sealed.yaml
  gitseal seal -r age1… --merge-into db.sealed.yaml -f new-items.yaml
  printf '%s' \"$TOKEN\" | gitseal seal --raw -r age1… --namespace prod --name api --key token
  gitseal seal -r age1… -f secret.yaml --from-vault password=kv/prod/db#password@3
  gitseal seal --merge-into db.sealed.yaml --from-vault token=kv1:secret/prod/api#token

--from-vault ITEM=REF adds item ITEM as a Vault reference (spec.vaultData),
read by the controller at reconcile time. REF is
[kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION] (KV v2 unless kv1:). Without
--merge-into the input must hold exactly one Secret, and ITEM must not be
one of its data items. With --merge-into the file must hold exactly one
SealedSecret; a sealed item of the same name is replaced by the reference,
and -f may be left out (no recipients needed then).

--raw seals the exact bytes read (a trailing newline from `echo` is sealed
too: use printf '%s'). Exit codes: 0 ok, 2 bad usage or input (nothing is
written).")]
pub struct Args {
    /// Seal to this recipient (age1…); repeatable. Combined with the keyring's.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Keyring file naming each environment's recipients and default scope
    /// [default with --env: .gitseal/keys.yaml].
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Environment of the keyring to seal for [default: the keyring's defaultEnvironment].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Binding scope [default: the environment's scope, else strict].
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,

    /// Namespace for Secrets without metadata.namespace (with --raw: the value's namespace).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Input file ('-' for standard input); repeatable [default: standard input].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
    pub format: FormatArg,

    /// Copy documents that are not Secrets to the output unchanged (default: refuse them).
    #[arg(long)]
    pub pass_through: bool,

    /// Seal one value read from standard input (or -f FILE), exactly as read,
    /// and print the sealed value (gs1:…). Needs --key, and --namespace and
    /// --name as the scope requires.
    #[arg(long, requires = "key", conflicts_with_all = ["pass_through", "format"])]
    pub raw: bool,

    /// With --raw: the object name the value is bound to.
    #[arg(long, value_name = "NAME", requires = "raw")]
    pub name: Option<String>,

    /// With --raw: the item key the value is bound to.
    #[arg(long, value_name = "KEY", requires = "raw")]
    pub key: Option<String>,

    /// Add or replace the items of the input Secrets in this SealedSecret
    /// file, in place. Other sealed values and documents stay byte for byte.
    #[arg(long, value_name = "SEALED_FILE", conflicts_with_all = ["raw", "output", "format", "pass_through"])]
    pub merge_into: Option<PathBuf>,

    /// Add item ITEM as a Vault reference (spec.vaultData); repeatable. REF is
    /// [kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION], e.g. kv/app/db#password@3.
    #[arg(long = "from-vault", value_name = "ITEM=REF", value_parser = parse_from_vault, conflicts_with = "raw")]
    pub from_vault: Vec<(String, VaultReference)>,
}

/// Parses `ITEM=REF` of `--from-vault` (REF in `gitseal_vault::VaultRef`'s
/// text form).
fn parse_from_vault(text: &str) -> Result<(String, VaultReference), String> {
    let Some((item, reference)) = text.split_once('=') else {
        return Err(format!(
            "expected ITEM=REF with REF {}",
            gitseal_vault::TEXT_FORM
        ));
    };
    let item_ok = !item.is_empty()
        && item.len() <= 253
        && item
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !item_ok {
        return Err(format!(
            "item key {:?} is not a valid Secret key (letters, digits, '-', '_', '.')",
            item.chars().take(64).collect::<String>()
        ));
    }
    let r: gitseal_vault::VaultRef = reference.parse().map_err(|e| format!("{e}"))?;
    Ok((item.to_string(), VaultReference::from(&r)))
}

/// Reads a file, or standard input for `-`. Returns its name for messages.
pub fn read_source(path: &Path) -> anyhow::Result<(String, String)> {
    let (origin, bytes) = read_source_bytes(path)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        coded(
            Exit::Usage,
            format!("{origin}: not UTF-8 text (manifests and key files are text)"),
        )
    })?;
    Ok((origin, text))
}

/// Reads a file, or standard input for `-`, as bytes.
pub fn read_source_bytes(path: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        Ok(("<stdin>".to_string(), buf))
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok((path.display().to_string(), bytes))
    }
}

/// Refuses to read standard input twice: `-` may stand once among the
/// identity files and the inputs together (no inputs means standard input).
pub fn check_stdin_once(identities: &[PathBuf], files: &[PathBuf]) -> anyhow::Result<()> {
    let uses = identities
        .iter()
        .chain(files)
        .filter(|p| p.as_os_str() == "-")
        .count()
        + usize::from(files.is_empty());
    if uses > 1 {
        return Err(coded(
            Exit::Usage,
            "standard input can be read only once: give the identity or the manifests as a file",
        ));
    }
    Ok(())
}

/// Parses every input (stdin when none) into documents.
pub fn read_documents(paths: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let stdin = [PathBuf::from("-")];
    let paths = if paths.is_empty() { &stdin[..] } else { paths };
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("standard input ('-') can be read only once");
    }
    let mut docs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" && std::io::stdin().is_terminal() {
            eprintln!("reading manifests from standard input (end with Ctrl-D; or pass -f FILE)");
        }
        let (origin, text) = read_source(path)?;
        let mut file_docs = input::parse(&text, &origin)?;
        if file_docs.is_empty() {
            return Err(gitseal_manifest::Error::Empty { origin }.into());
        }
        docs.append(&mut file_docs);
    }
    Ok(docs)
}

/// Writes `text` to `output` atomically (with `mode`), or to standard output.
pub fn write_output(output: Option<&Path>, text: &str, mode: NewFileMode) -> anyhow::Result<()> {
    match output {
        Some(path) => files::write_atomic(path, text.as_bytes(), mode)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(())
}

/// The recipients and scope from -r, --keyring/--env and --scope.
fn recipients(args: &Args) -> anyhow::Result<(Vec<Recipient>, Option<Scope>)> {
    let (recipients, env_scope) = recipients_from(
        &args.recipients,
        args.keyring.as_deref(),
        args.env.as_deref(),
    )?;
    if recipients.is_empty() {
        bail!("no recipients: pass -r age1… (see `gitseal pubkey`), or --keyring FILE --env NAME");
    }
    Ok((recipients, args.scope.map(Scope::from).or(env_scope)))
}

/// The recipients given with `-r` (in order), then those of the keyring
/// environment `--env` (from `--keyring`, else [`DEFAULT_PATH`]), and that
/// environment's scope. No recipients at all is not an error here: each
/// command says what it needs.
pub fn recipients_from(
    given: &[String],
    keyring: Option<&Path>,
    env: Option<&str>,
) -> anyhow::Result<(Vec<Recipient>, Option<Scope>)> {
    let mut recipients = Vec::new();
    for (i, r) in given.iter().enumerate() {
        let recipient: Recipient = r
            .parse()
            .with_context(|| format!("-r/--recipient #{} is not usable", i + 1))?;
        recipients.push(recipient);
    }
    let keyring_path = match (keyring, env) {
        (Some(p), _) => Some(p.to_path_buf()),
        (None, Some(_)) => {
            let p = PathBuf::from(DEFAULT_PATH);
            if !p.is_file() {
                bail!(
                    "--env needs a keyring: pass --keyring FILE (there is no {DEFAULT_PATH} here)"
                );
            }
            Some(p)
        }
        (None, None) => None,
    };
    let mut env_scope = None;
    if let Some(path) = keyring_path {
        let keyring = Keyring::load(&path)?;
        let (_, env) = keyring.environment(env)?;
        recipients.extend(env.recipients.iter().cloned());
        env_scope = env.scope;
    }
    Ok((recipients, env_scope))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_unique_items(&args.from_vault)?;
    if let Some(target) = &args.merge_into {
        if args.files.is_empty() && !args.from_vault.is_empty() {
            // Only Vault references: nothing to seal, no recipients needed.
            return run_merge_vault_only(&args, target);
        }
    }
    let (recipients, scope) = recipients(&args)?;
    if args.raw {
        return run_raw(&args, &recipients, scope.unwrap_or_default());
    }
    if let Some(target) = &args.merge_into {
        return run_merge(&args, target, &recipients, scope);
    }
    let docs = read_documents(&args.files)?;
    let opts = SealOptions {
        recipients: &recipients,
        scope: scope.unwrap_or_default(),
        namespace: args.namespace.as_deref(),
        others: if args.pass_through {
            Others::PassThrough
        } else {
            Others::Refuse
        },
    };
    let mut sealed = sealing::seal_documents(&docs, &opts)?;
    if !args.from_vault.is_empty() {
        add_vault_to_sealed(&docs, &mut sealed, &args.from_vault)?;
    }
    let text = output::render(&sealed, args.format.into())?;
    write_output(args.output.as_deref(), &text, NewFileMode::Public)?;
    Ok(ExitCode::SUCCESS)
}

fn run_raw(args: &Args, recipients: &[Recipient], scope: Scope) -> anyhow::Result<ExitCode> {
    let path = match args.files.as_slice() {
        [] => PathBuf::from("-"),
        [one] => one.clone(),
        _ => bail!("--raw seals one value: give at most one -f FILE"),
    };
    if path.as_os_str() == "-" && std::io::stdin().is_terminal() {
        eprintln!("reading the value from standard input (end with Ctrl-D; the bytes are sealed exactly as typed)");
    }
    let (_, value) = read_source_bytes(&path)?;
    let value = zeroize::Zeroizing::new(value);
    let key = args.key.as_deref().unwrap_or_default();
    let sealed = sealing::seal_raw(
        &value,
        recipients,
        scope,
        args.namespace.as_deref(),
        args.name.as_deref(),
        key,
    )?;
    let single_line = value.iter().filter(|&&b| b == b'\n').count() == 1;
    if single_line && value.ends_with(b"\n") {
        eprintln!(
            "note: the value ends with a newline, which is sealed too; use printf '%s' instead of echo to leave it out"
        );
    }
    write_output(
        args.output.as_deref(),
        &format!("{sealed}\n"),
        NewFileMode::Public,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_merge(
    args: &Args,
    target: &Path,
    recipients: &[Recipient],
    scope: Option<Scope>,
) -> anyhow::Result<ExitCode> {
    let text = files::read_to_string(target)?;
    let file = input::parse_file(&text, &target.display().to_string())?;
    let secrets = read_documents(&args.files)?;
    let opts = MergeOptions {
        recipients,
        scope,
        namespace: args.namespace.as_deref(),
    };
    let mut merged = merge::merge_into(&file, &secrets, &opts)?;
    if !args.from_vault.is_empty() {
        let (text, mut changes) = merge_vault(target, &merged.text, &args.from_vault)?;
        merged.text = text;
        merged.changes.append(&mut changes);
    }
    files::write_atomic(target, merged.text.as_bytes(), NewFileMode::Public)?;
    for change in &merged.changes {
        eprintln!("{}: {change}", target.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_merge_vault_only(args: &Args, target: &Path) -> anyhow::Result<ExitCode> {
    let text = files::read_to_string(target)?;
    let (text, changes) = merge_vault(target, &text, &args.from_vault)?;
    files::write_atomic(target, text.as_bytes(), NewFileMode::Public)?;
    for change in &changes {
        eprintln!("{}: {change}", target.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn check_unique_items(items: &[(String, VaultReference)]) -> anyhow::Result<()> {
    for (i, (item, _)) in items.iter().enumerate() {
        if items[..i].iter().any(|(other, _)| other == item) {
            bail!("--from-vault names item {item:?} twice; give each item once");
        }
    }
    Ok(())
}

fn vault_value(reference: &VaultReference) -> anyhow::Result<Value> {
    serde_yaml::to_value(reference).context("encoding a Vault reference")
}

/// Adds the `--from-vault` items to the one SealedSecret sealed from the input.
fn add_vault_to_sealed(
    inputs: &[Document],
    docs: &mut [output::OutputDocument],
    items: &[(String, VaultReference)],
) -> anyhow::Result<()> {
    // One output document per input document, in order: the sealed Secrets
    // (not SealedSecrets passed through unchanged) are the candidates.
    let mut sealed: Vec<&mut output::OutputDocument> = docs
        .iter_mut()
        .zip(inputs)
        .filter(|(_, input)| input.kind() == Some("Secret"))
        .map(|(d, _)| d)
        .collect();
    let doc = match sealed.as_mut_slice() {
        [one] => one,
        other => bail!(
            "--from-vault adds items to one SealedSecret, but the input holds {} Secrets; seal them one at a time",
            other.len()
        ),
    };
    let spec = doc
        .value
        .get_mut("spec")
        .and_then(Value::as_mapping_mut)
        .context("the sealed document has no spec")?;
    if let Some(Value::Mapping(data)) = spec.get("encryptedData") {
        for (item, _) in items {
            if data.contains_key(item.as_str()) {
                bail!(
                    "item {item:?} is both in the Secret and in --from-vault; keep it in one of them"
                );
            }
        }
    }
    let vault = merge::child_mapping(spec, "vaultData");
    for (item, reference) in items {
        vault.insert(item.as_str().into(), vault_value(reference)?);
    }
    Ok(())
}

/// Adds or replaces the `--from-vault` items in the one SealedSecret of the
/// file `text` (a sealed item of the same name is removed). Other documents
/// keep their text; the changed one keeps its leading comments and key order.
fn merge_vault(
    target: &Path,
    text: &str,
    items: &[(String, VaultReference)],
) -> anyhow::Result<(String, Vec<String>)> {
    let origin = target.display().to_string();
    let mut file = input::parse_file(text, &origin)?;
    let docs = input::documents(&file)?;
    let targets: Vec<&Document> = docs
        .iter()
        .filter(|d| d.kind() == Some("SealedSecret"))
        .collect();
    let at = match targets.as_slice() {
        [one] => one.at.clone(),
        other => bail!(
            "{origin}: --from-vault with --merge-into needs a file holding exactly one SealedSecret; it holds {}",
            other.len()
        ),
    };
    let object =
        merge::object_mut(&mut file.documents, &at).context("the SealedSecret is not a mapping")?;
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(no name)")
        .to_string();
    let spec = merge::child_mapping(object, "spec");
    let mut changes = Vec::new();
    for (item, reference) in items {
        if let Some(Value::Mapping(data)) = spec.get_mut("encryptedData") {
            if data.shift_remove(item.as_str()).is_some() {
                changes.push(format!(
                    "item {item:?} of {name} was sealed; now a Vault reference"
                ));
            }
            if data.is_empty() {
                spec.shift_remove("encryptedData");
            }
        }
        let vault = merge::child_mapping(spec, "vaultData");
        let replaced = vault
            .insert(item.as_str().into(), vault_value(reference)?)
            .is_some();
        changes.push(format!(
            "{} Vault item {item:?} {} {name}",
            if replaced { "replaced" } else { "added" },
            if replaced { "in" } else { "to" },
        ));
    }
    let doc = file
        .documents
        .get(at.document)
        .context("the SealedSecret moved while merging")?;
    let range = doc.range.clone();
    let text = &file.text;
    let new_doc = merge::render_document(
        text.get(range.clone()).unwrap_or_default(),
        &doc.value,
        file.syntax,
    )?;
    let mut out = String::with_capacity(text.len() + 256);
    out.push_str(text.get(..range.start).unwrap_or_default());
    out.push_str(&new_doc);
    out.push_str(text.get(range.end..).unwrap_or_default());
    Ok((out, changes))
}
