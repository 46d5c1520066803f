//! `gitseal migrate sealed-secrets`: Bitnami Sealed Secrets in, gitseal
//! SealedSecrets out. Thin: reading files, the report and the exit code;
//! opening and re-sealing live in `gitseal-migrate`.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use gitseal_manifest::files::{self, NewFileMode};
use gitseal_manifest::{input, output};
use gitseal_migrate::{convert, is_bitnami, manifest_files, BitnamiKeys, Options};
use zeroize::Zeroizing;

use crate::exit::{coded, Exit};
use crate::io::write_output;

/// Move from another sealing tool to gitseal.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub from: From,
}

/// Where to migrate from.
#[derive(clap::Subcommand, Debug)]
pub enum From {
    SealedSecrets(SealedSecretsArgs),
}

/// Convert Bitnami Sealed Secrets (bitnami.com/v1alpha1) into gitseal
/// SealedSecrets, offline.
///
/// Opens every value with the Bitnami controller's private key(s) and seals
/// it again to gitseal recipients with the same binding: strict stays
/// strict (namespace + name), namespace-wide becomes namespace, cluster-wide
/// becomes cluster. Name, namespace, the object's labels and annotations and
/// the template (type, labels, annotations, immutable) are kept; Bitnami's
/// own sealedsecrets.bitnami.com/* annotations are dropped.
///
/// An object is converted whole or not at all: when one of its values does
/// not open (another controller's key, altered, renamed since it was
/// sealed), or it uses spec.template.data (Go templates), nothing is written
/// for it and the report on standard error says why. Directories are walked
/// for .yaml, .yml and .json files; other kinds of objects are left out.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  kubectl -n kube-system get secret -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml > bitnami-keys.yaml
  gitseal migrate sealed-secrets --key bitnami-keys.yaml -f db.sealed.yaml -r age1…
  gitseal migrate sealed-secrets --key bitnami-keys.yaml -f apps/ \\
    --keyring .gitseal/keys.yaml --env prod --out-dir migrated/

The key file holds plaintext private keys: keep it off Git and delete it
(shred -u) when done. See docs/migration.md.

Exit codes: 0 every object converted, 2 bad usage or input (nothing is
written), 3 some objects could not be converted (the others are written).")]
pub struct SealedSecretsArgs {
    /// Bitnami private key(s): the key Secrets as `kubectl get secret -o yaml`
    /// prints them, or PEM; repeatable (give every key the controller ever used).
    #[arg(short = 'k', long = "key", value_name = "FILE", required = true)]
    pub keys: Vec<PathBuf>,

    /// Bitnami SealedSecret manifests: files or directories; repeatable.
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,

    /// Seal to this gitseal recipient (age1…); repeatable. Combined with the keyring's.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Keyring naming each environment's recipients [default with --env: .gitseal/keys.yaml].
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Environment of the keyring to seal for.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Namespace of objects without metadata.namespace (as given to kubeseal).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Write all converted objects to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE", conflicts_with = "out_dir")]
    pub output: Option<PathBuf>,

    /// Write the converted objects of each input file to the same relative
    /// path under DIR (files that exist are not overwritten).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.from {
        From::SealedSecrets(a) => sealed_secrets(a),
    }
}

/// One input file and where its converted objects go under `--out-dir`.
struct Input {
    path: PathBuf,
    relative: PathBuf,
}

fn inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for path in paths {
        for file in manifest_files(std::slice::from_ref(path))? {
            let relative = if path.is_dir() {
                file.strip_prefix(path).unwrap_or(&file).to_path_buf()
            } else {
                PathBuf::from(file.file_name().unwrap_or(file.as_os_str()))
            };
            out.push(Input {
                path: file,
                relative,
            });
        }
    }
    Ok(out)
}

fn load_keys(paths: &[PathBuf]) -> anyhow::Result<BitnamiKeys> {
    let mut keys = BitnamiKeys::new();
    for path in paths {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the Bitnami key file {}", path.display()))?,
        );
        keys.add(&text, &path.display().to_string())?;
    }
    Ok(keys)
}

fn sealed_secrets(args: SealedSecretsArgs) -> anyhow::Result<ExitCode> {
    let recipients = crate::args::RecipientArgs {
        recipients: args.recipients.clone(),
        keyring: args.keyring.clone(),
        env: args.env.clone(),
    }
    .selector(Path::new("."))?
    .target(None)?
    .recipients;
    if recipients.is_empty() {
        bail!("no recipients: pass -r age1… (see `gitseal pubkey`), or --keyring FILE --env NAME");
    }
    let keys = load_keys(&args.keys)?;
    let opts = Options {
        recipients: &recipients,
        namespace: args.namespace.as_deref(),
    };

    // Read and parse everything first: a bad file stops the run before
    // anything is written.
    let mut parsed = Vec::new();
    for input in inputs(&args.files)? {
        let text = files::read_to_string(&input.path)?;
        if !text.contains(gitseal_migrate::BITNAMI_API_VERSION) {
            continue;
        }
        let docs = input::parse(&text, &input.path.display().to_string())?;
        parsed.push((input, docs));
    }

    let (mut converted, mut refused) = (0usize, 0usize);
    let mut outputs: Vec<(PathBuf, Vec<output::OutputDocument>)> = Vec::new();
    for (input, docs) in &parsed {
        let mut out = Vec::new();
        for doc in docs.iter().filter(|d| is_bitnami(d)) {
            match convert(doc, &keys, &opts) {
                Ok(c) => {
                    converted += 1;
                    eprintln!(
                        "converted {}: {} ({} scope, {} item(s))",
                        c.at, c.object, c.scope, c.items
                    );
                    for note in &c.notes {
                        eprintln!("  note: {note}");
                    }
                    out.push(output::OutputDocument::sealed(&c.sealed)?);
                }
                Err(r) => {
                    refused += 1;
                    eprintln!("not converted {r}");
                }
            }
        }
        if !out.is_empty() {
            outputs.push((input.relative.clone(), out));
        }
    }

    write_all(&args, &outputs)?;
    eprintln!("{converted} converted, {refused} not converted");
    if converted + refused == 0 {
        bail!("no Bitnami SealedSecret (apiVersion bitnami.com/v1alpha1) found in the input");
    }
    if refused > 0 {
        return Err(coded(
            Exit::DoesNotOpen,
            format!(
                "{refused} object(s) could not be converted (see above); nothing was written for them"
            ),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_all(
    args: &SealedSecretsArgs,
    outputs: &[(PathBuf, Vec<output::OutputDocument>)],
) -> anyhow::Result<()> {
    let Some(dir) = &args.out_dir else {
        let all: Vec<output::OutputDocument> = outputs
            .iter()
            .flat_map(|(_, d)| d.iter().cloned())
            .collect();
        if all.is_empty() {
            return Ok(());
        }
        let text = output::render(&all, output::Format::Yaml)?;
        return write_output(args.output.as_deref(), &text, NewFileMode::Public);
    };
    // Never overwrite: check every target before writing any.
    let targets: Vec<PathBuf> = outputs.iter().map(|(rel, _)| dir.join(rel)).collect();
    if let Some(existing) = targets.iter().find(|t| t.exists()) {
        return Err(coded(
            Exit::Usage,
            format!(
                "{} exists; --out-dir writes only new files (choose an empty directory)",
                existing.display()
            ),
        ));
    }
    for ((_, docs), target) in outputs.iter().zip(&targets) {
        if let Some(parent) = target.parent() {
            create_dir(parent)?;
        }
        let text = output::render(docs, output::Format::Yaml)?;
        files::write_atomic(target, text.as_bytes(), NewFileMode::Public)?;
    }
    Ok(())
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
