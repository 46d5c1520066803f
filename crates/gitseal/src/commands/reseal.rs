//! `gitseal reseal`: re-encrypt the sealed values of SealedSecret files to
//! new recipients, for whoever holds an old private key (a retired cluster
//! key, a break-glass key). Each value keeps its binding (scope, namespace,
//! name, item key); Vault references and other documents stay as written.
//!
//! All or nothing: every value of every file is opened before anything is
//! written, and files are replaced atomically, so a value that does not open
//! leaves every file byte for byte as it was.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use gitseal_crypto::{Binding, Identity, Opener, Recipient, Sealer};
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::input::{self, Syntax};
use gitseal_manifest::open::{open_value, read_sealed};
use gitseal_manifest::output::{self, Format, OutputDocument};
use secrecy::ExposeSecret as _;
use serde_yaml::Value;

use crate::commands::pubkey::load_identities;
use crate::commands::seal::{check_stdin_once, read_source, recipients_from, write_output};
use crate::exit::{coded, Exit};

/// Re-seal SealedSecret files to new recipients (needs an old private key).
///
/// Every `spec.encryptedData` value is opened with the old identity (-i) and
/// sealed again to the new recipients (-r and/or --keyring/--env) with the
/// same binding, so it still opens only where it did. Documents that are
/// not SealedSecrets, `vaultData`, and everything else in the files stay as
/// they were. The old key is not kept as a recipient unless you list it.
///
/// Nothing is written unless every value opened: a value that does not open
/// (wrong key, altered, moved) stops the command with exit 3, naming the
/// file, document and item, and every file is left byte for byte as it was.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal reseal -i old-key.txt -r age1new… -f db.sealed.yaml --in-place
  gitseal reseal -i old-key.txt --keyring .gitseal/keys.yaml --env prod \\
    -f apps/a.sealed.yaml -f apps/b.sealed.yaml --in-place
  gitseal reseal -i old-key.txt -r age1new… -r age1dr… -f db.sealed.yaml -o db.new.yaml
  cat db.sealed.yaml | gitseal reseal -i old-key.txt -r age1new… > db.new.yaml

Exit codes: 0 ok, 2 bad usage or input, 3 a sealed value did not open.
Nothing is written unless every value of every file opened.")]
pub struct Args {
    /// Old identity file (age-keygen format); repeatable.
    #[arg(short, long = "identity", value_name = "FILE", required = true)]
    pub identities: Vec<PathBuf>,

    /// New recipient (age1…); repeatable. Combined with the keyring's.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Keyring file naming each environment's recipients
    /// [default with --env: .gitseal/keys.yaml].
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Environment of the keyring whose recipients to seal to
    /// [default: the keyring's defaultEnvironment].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// SealedSecret file ('-' for standard input); repeatable [default: standard input].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write the result to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,

    /// Replace each -f FILE with its re-sealed version (atomically).
    #[arg(long)]
    pub in_place: bool,

    /// Namespace for SealedSecrets without metadata.namespace.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
}

fn new_recipients(args: &Args) -> anyhow::Result<Vec<Recipient>> {
    let (recipients, _) = recipients_from(
        &args.recipients,
        args.keyring.as_deref(),
        args.env.as_deref(),
    )?;
    if recipients.is_empty() {
        bail!("no new recipients: pass -r age1…, or --keyring FILE --env NAME");
    }
    Ok(recipients)
}

/// One re-sealed input file.
struct Resealed {
    origin: PathBuf,
    text: String,
    values: usize,
}

/// Re-seals every SealedSecret value of one file's text.
fn reseal_text(
    text: &str,
    origin: &str,
    identities: &[Identity],
    recipients: &[Recipient],
    namespace: Option<&str>,
) -> anyhow::Result<(String, usize)> {
    let file = input::parse_file(text, origin)?;
    let docs = input::documents(&file)?;
    // (old value, new value) pairs, and each document's new value.
    let mut swaps: Vec<(String, String)> = Vec::new();
    let mut rendered = Vec::with_capacity(docs.len());
    for doc in &docs {
        if doc.kind() != Some("SealedSecret") {
            rendered.push(OutputDocument::from_input(doc));
            continue;
        }
        let sealed = read_sealed(doc)?;
        let at = &doc.at;
        let name = sealed.metadata.name.as_deref().ok_or_else(|| {
            anyhow::anyhow!("{at}: the SealedSecret has no metadata.name; add one")
        })?;
        let scope = sealed.spec.scope;
        let ns = match (sealed.metadata.namespace.as_deref(), namespace) {
            (Some(ns), _) | (None, Some(ns)) => ns,
            (None, None) if scope == gitseal_crypto::Scope::Cluster => "",
            (None, None) => bail!(
                "{at}: the SealedSecret has no metadata.namespace and scope {scope}; \
                 pass --namespace NS"
            ),
        };
        let mut value = doc.value.clone();
        // One opener and one sealer per object: one X25519 per key each way
        // (and none for an object with only Vault items).
        let mut opener = Opener::new(identities);
        let mut sealer = None;
        for (item, old) in &sealed.spec.encrypted_data {
            let plain = open_value(old, &mut opener, scope, ns, name, item, at).map_err(|e| {
                if e.is_does_not_open() {
                    coded(Exit::DoesNotOpen, e.to_string())
                } else {
                    e.into()
                }
            })?;
            let binding = Binding::new(scope, ns, name, item);
            let sealer = match &mut sealer {
                Some(s) => s,
                None => sealer
                    .insert(Sealer::new(recipients).with_context(|| format!("{at}: cannot seal"))?),
            };
            let new = sealer
                .seal(plain.expose_secret(), &binding)
                .with_context(|| format!("{at}, item {item:?}: cannot seal"))?
                .to_string();
            if let Some(slot) = value
                .get_mut("spec")
                .and_then(|s| s.get_mut("encryptedData"))
                .and_then(|d| d.get_mut(item.as_str()))
            {
                *slot = Value::String(new.clone());
            }
            swaps.push((old.clone(), new));
        }
        rendered.push(OutputDocument::new(value));
    }
    let count = swaps.len();
    // Keep the file as written (comments, order, quoting): replace each old
    // value where it stands. Sealed values are random, so each one appears
    // exactly once; when one does not (a folded or escaped scalar), write
    // the documents out again instead.
    let mut out = file.text.clone();
    let verbatim = swaps
        .iter()
        .all(|(old, _)| file.text.matches(old.trim()).count() == 1);
    if verbatim {
        for (old, new) in &swaps {
            out = out.replacen(old.trim(), new, 1);
        }
    } else {
        let format = match file.syntax {
            Syntax::Json => Format::Json,
            Syntax::Yaml => Format::Yaml,
        };
        out = output::render(&rendered, format)?;
    }
    Ok((out, count))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.in_place && (args.files.is_empty() || args.files.iter().any(|p| p == Path::new("-"))) {
        bail!("--in-place needs -f FILE (it cannot replace standard input)");
    }
    check_stdin_once(&args.identities, &args.files)?;
    let recipients = new_recipients(&args)?;
    let mut identities = Vec::new();
    for path in &args.identities {
        identities.extend(load_identities(path)?);
    }
    let stdin = [PathBuf::from("-")];
    let paths = if args.files.is_empty() {
        &stdin[..]
    } else {
        &args.files[..]
    };
    let mut results = Vec::with_capacity(paths.len());
    for path in paths {
        let (origin, text) = read_source(path)?;
        let (text, values) = reseal_text(
            &text,
            &origin,
            &identities,
            &recipients,
            args.namespace.as_deref(),
        )?;
        results.push(Resealed {
            origin: path.clone(),
            text,
            values,
        });
    }
    // Everything opened and sealed: now write.
    if args.in_place {
        for r in &results {
            files::write_atomic(&r.origin, r.text.as_bytes(), NewFileMode::Public)?;
            eprintln!("{}: re-sealed {} value(s)", r.origin.display(), r.values);
        }
    } else {
        let mut all = String::new();
        for r in &results {
            if !all.is_empty() {
                if !all.ends_with('\n') {
                    all.push('\n');
                }
                if !r.text.trim_start().starts_with("---") {
                    all.push_str("---\n");
                }
            }
            all.push_str(&r.text);
        }
        write_output(args.output.as_deref(), &all, NewFileMode::Public)?;
    }
    Ok(ExitCode::SUCCESS)
}
