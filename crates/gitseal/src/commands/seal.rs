//! `gitseal seal`: Secret manifests in, SealedSecret manifests out; `--raw`
//! for one value; `--merge-into` to add or replace items of an existing
//! SealedSecret file without touching its other sealed values;
//! `--from-vault ITEM=REF` to add Vault references (`spec.vaultData`).
//! Parses flags, chooses recipients through the keyring, calls
//! `gitseal_manifest`, prints.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use gitseal_crypto::{Recipient, Scope};
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::input;
use gitseal_manifest::memory::{self, Memory, ValueCache};
use gitseal_manifest::merge::{self, MergeOptions};
use gitseal_manifest::output;
use gitseal_manifest::seal::{self as sealing, Others, SealOptions};
use gitseal_manifest::select::Target;
use gitseal_manifest::types::VaultReference;

use crate::args::{InputArgs, OutputArgs, RecipientArgs, ScopeArg};
use crate::io::{load_all_identities, read_documents, read_source_bytes, write_output};

/// Seal Kubernetes Secret manifests into SealedSecret manifests.
///
/// Reads Secrets (YAML, several documents separated by `---`, or JSON, one
/// object, a stream, an array or a `kind: List`) from -f FILE or standard
/// input, seals every `data` and `stringData` item to the recipients, and
/// writes SealedSecrets (safe to commit) to standard output or -o FILE.
/// Type, labels, annotations and `immutable` go to `spec.template`; server
/// fields and kubectl's last-applied annotation are dropped.
///
/// Recipients: with -r alone, exactly those. Otherwise the repository's
/// keyring (.gitseal/keys.yaml at the root, or --keyring FILE) chooses the
/// environment: --env NAME, else the path rule matching where the sealed
/// file goes (-o, --merge-into, else -f), else its defaultEnvironment; seal
/// says on standard error which environment and key ids it used.
///
/// Each value is bound to where it will live: with the default strict scope
/// to its namespace, name and item key; --scope namespace binds namespace and
/// item key; --scope cluster only the item key. Strict and namespace scope
/// need a namespace: metadata.namespace, or --namespace for Secrets without one.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal seal -f apps/prod/db.yaml -o apps/prod/db.sealed.yaml    # prod's keys, by the path
  gitseal seal -r age1… -f secret.yaml -o sealed.yaml
  gitseal seal --update -f secret.yaml -o sealed.yaml     # only changed values change
  kubectl create secret generic db --from-literal=password=s3cret --dry-run=client -o yaml \\
    | gitseal seal --env prod --namespace prod > db.sealed.yaml
  gitseal seal --merge-into db.sealed.yaml -f new-items.yaml
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

--merge-into refuses new items sealed to other keys than the object's other
items (the object would need two keys to open); --reseal-all -i OLD_KEY
re-seals every item to the new recipients.

--update keeps the sealed value of every item whose plaintext is the one
already sealed into -o FILE, so re-sealing an unchanged file changes no
byte (see docs/cli.md, \"No churn\").

--raw seals the exact bytes read (a trailing newline from `echo` is sealed
too: use printf '%s'). Values over 1 MiB are refused (a Secret cannot hold
them). Exit codes: 0 ok, 2 bad usage or input (nothing is written), 3 with
--reseal-all: an item did not open.
Documentation: https://github.com/gitseal/gitseal/blob/main/docs/cli.md#gitseal-seal")]
pub struct Args {
    #[command(flatten)]
    pub recipients: RecipientArgs,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Binding scope [default: the environment's scope, else strict].
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,

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

    /// With --merge-into: when the object's other items are sealed to other
    /// keys, open them with -i OLD_KEY and seal them again to the new recipients.
    #[arg(long, requires_all = ["merge_into", "identities"])]
    pub reseal_all: bool,

    /// Keep the sealed value of every item whose plaintext did not change
    /// since it was sealed into -o FILE (recognised by a local cache of
    /// keyed hashes, never committed); seal only the changed ones, so the
    /// diff shows one line per changed value.
    #[arg(long, requires = "output", conflicts_with = "raw")]
    pub update: bool,

    /// With --reseal-all: identity file that opens the object's items; repeatable.
    #[arg(short, long = "identity", value_name = "FILE", requires = "reseal_all")]
    pub identities: Vec<PathBuf>,

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
    if let Some((prefix, _)) = reference.split_once(':') {
        let version = prefix
            .strip_prefix("kv")
            .filter(|v| v.bytes().all(|b| b.is_ascii_digit()));
        if version.is_some_and(|v| !v.is_empty() && v != "1" && v != "2") {
            return Err(format!(
                "unknown KV version prefix `{prefix}:`: Vault's KV engine has versions 1 and 2, \
                 so use kv1: or kv2: (or none, for KV v2); expected {}",
                gitseal_vault::TEXT_FORM
            ));
        }
    }
    let r: gitseal_vault::VaultRef = reference.parse().map_err(|e| format!("{e}"))?;
    Ok((item.to_string(), VaultReference::from(&r)))
}

/// Where the sealed values will live, for the keyring's path rules: `-o`,
/// else `--merge-into`, else the input files (none for standard output of
/// standard input, or a `--raw` value).
fn places(args: &Args) -> Vec<&Path> {
    if let Some(out) = &args.output.output {
        return vec![out.as_path()];
    }
    if let Some(target) = &args.merge_into {
        return vec![target.as_path()];
    }
    if args.raw {
        return Vec::new();
    }
    args.input.paths()
}

/// The recipients for this run, announced on standard error when a keyring chose them.
fn target(args: &Args) -> anyhow::Result<Target> {
    let places = places(args);
    let start = places.first().copied().unwrap_or(Path::new("."));
    let target = args.recipients.selector(start)?.target_for_all(&places)?;
    if target.recipients.is_empty() {
        bail!(
            "no recipients: pass -r age1… (see `gitseal pubkey` or `gitseal fetch-key`), or \
             keep a keyring at .gitseal/keys.yaml in the repository (see keys.example), or \
             pass --keyring FILE"
        );
    }
    if target.environment.is_some() {
        eprintln!("gitseal: sealing for {target}");
    }
    Ok(target)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    merge::check_unique_items(&args.from_vault)?;
    if let Some(file) = &args.merge_into {
        if args.input.files.is_empty() && !args.from_vault.is_empty() {
            // Only Vault references: nothing to seal, no recipients needed.
            return run_merge_vault_only(&args, file);
        }
    }
    let target = target(&args)?;
    let scope = args.scope.map(Scope::from).or(target.scope);
    if args.raw {
        return run_raw(&args, &target.recipients, scope.unwrap_or_default());
    }
    if let Some(file) = &args.merge_into {
        return run_merge(&args, file, &target.recipients);
    }
    let docs = read_documents(&args.input.files)?;
    // Writing a file: remember what is sealed (so a later --update keeps
    // it); with --update, keep what is unchanged.
    let out_file = args.output.output.as_deref();
    let previous = match (args.update, out_file) {
        (true, Some(path)) if path.exists() => Some(files::read_to_string(path)?),
        _ => None,
    };
    let memory = out_file.and_then(|path| {
        let existing = previous
            .as_deref()
            .and_then(|text| input::parse_file(text, &path.display().to_string()).ok());
        value_cache(
            existing.as_ref(),
            args.input.namespace.as_deref(),
            args.update,
        )
    });
    let opts = SealOptions {
        recipients: &target.recipients,
        scope: scope.unwrap_or_default(),
        namespace: args.input.namespace.as_deref(),
        others: if args.pass_through {
            Others::PassThrough
        } else {
            Others::Refuse
        },
        memory: memory.as_ref().map(|m| m as &dyn Memory),
    };
    let mut sealed = sealing::seal_documents(&docs, &opts)?;
    if !args.from_vault.is_empty() {
        merge::add_vault_items(&docs, &mut sealed, &args.from_vault)?;
    }
    let text = output::render(&sealed, args.output.format.into())?;
    write_output(out_file, &text, NewFileMode::Public)?;
    if let Some(cache) = &memory {
        save_cache(cache);
    }
    if let (true, Some(path)) = (args.update, out_file) {
        let (kept, total) = kept_values(previous.as_deref(), &text);
        eprintln!(
            "{}: kept {kept} unchanged sealed value(s), sealed {} new or changed",
            path.display(),
            total - kept
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The local cache of sealed values (see `gitseal_manifest::memory`), with
/// the values of `existing` (the file being replaced or merged into) to
/// keep. A cache that cannot be used only costs churn: say so when it
/// matters (`--update`), and seal anew.
pub fn value_cache(
    existing: Option<&input::File>,
    namespace: Option<&str>,
    update: bool,
) -> Option<ValueCache> {
    let dir = memory::default_dir()?;
    match ValueCache::open(&dir) {
        Ok(cache) => Some(
            cache.with_existing(
                existing
                    .map(|f| memory::existing_values(f, namespace))
                    .unwrap_or_default(),
            ),
        ),
        Err(e) => {
            if update {
                eprintln!("warning: cannot use the cache of sealed values ({e}); sealing every value anew");
            }
            None
        }
    }
}

/// Saves the cache; a failure only means more churn next time.
pub fn save_cache(cache: &ValueCache) {
    if let Err(e) = cache.save() {
        eprintln!("warning: cannot update the cache of sealed values ({e})");
    }
}

/// How many sealed values of `new` were already in `old`, and how many `new` has.
fn kept_values(old: Option<&str>, new: &str) -> (usize, usize) {
    let values = |text: &str| -> Vec<String> {
        text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .filter(|w| gitseal_crypto::is_sealed(w))
            .map(str::to_string)
            .collect()
    };
    let before = old.map(values).unwrap_or_default();
    let after = values(new);
    let kept = after.iter().filter(|v| before.contains(v)).count();
    (kept, after.len())
}

fn run_raw(args: &Args, recipients: &[Recipient], scope: Scope) -> anyhow::Result<ExitCode> {
    let path = match args.input.files.as_slice() {
        [] => PathBuf::from("-"),
        [one] => one.clone(),
        _ => bail!("--raw seals one value: give at most one -f FILE"),
    };
    if scope == Scope::Cluster && (args.input.namespace.is_some() || args.name.is_some()) {
        bail!(
            "--scope cluster binds the value to its item key only: --namespace and --name would \
             be ignored, so leave them out (or use --scope namespace or strict)"
        );
    }
    if scope == Scope::Namespace && args.name.is_some() {
        bail!(
            "--scope namespace binds the value to its namespace and item key: --name would be \
             ignored, so leave it out (or use --scope strict)"
        );
    }
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
        args.input.namespace.as_deref(),
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
        args.output.output.as_deref(),
        &format!("{sealed}\n"),
        NewFileMode::Public,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_merge(args: &Args, file: &Path, recipients: &[Recipient]) -> anyhow::Result<ExitCode> {
    let text = files::read_to_string(file)?;
    let parsed = input::parse_file(&text, &file.display().to_string())?;
    let secrets = read_documents(&args.input.files)?;
    let identities = load_all_identities(&args.identities)?;
    let memory = value_cache(Some(&parsed), args.input.namespace.as_deref(), false);
    let opts = MergeOptions {
        recipients,
        scope: args.scope.map(Scope::from),
        namespace: args.input.namespace.as_deref(),
        reseal_with: args.reseal_all.then_some(identities.as_slice()),
        memory: memory.as_ref().map(|m| m as &dyn Memory),
    };
    let mut merged = merge::merge_into(&parsed, &secrets, &opts)?;
    if !args.from_vault.is_empty() {
        let mut vault =
            merge::merge_vault(&merged.text, &file.display().to_string(), &args.from_vault)?;
        merged.text = vault.text;
        merged.changes.append(&mut vault.changes);
    }
    files::write_atomic(file, merged.text.as_bytes(), NewFileMode::Public)?;
    if let Some(cache) = &memory {
        save_cache(cache);
    }
    for change in &merged.changes {
        eprintln!("{}: {change}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_merge_vault_only(args: &Args, file: &Path) -> anyhow::Result<ExitCode> {
    let text = files::read_to_string(file)?;
    let merged = merge::merge_vault(&text, &file.display().to_string(), &args.from_vault)?;
    files::write_atomic(file, merged.text.as_bytes(), NewFileMode::Public)?;
    for change in &merged.changes {
        eprintln!("{}: {change}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
