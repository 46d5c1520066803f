//! `gitseal render`: the Secret the controller would write for each
//! SealedSecret, offline, templated items included
//! (`gitseal_manifest::render` does the work). Without an identity sealed
//! values are `<sealed:KEY>` placeholders, so templates can be checked in
//! CI without any private key.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use gitseal_manifest::files::NewFileMode;
use gitseal_manifest::open;
use gitseal_manifest::output;
use gitseal_manifest::render::{self, RenderOptions};
use gitseal_manifest::seal::Others;
use gitseal_vault::{VaultClient, VaultConfig, VaultRef};
use secrecy::{ExposeSecret as _, SecretSlice};

use crate::args::{IdentityArgs, InputArgs, OutputArgs};
use crate::exit::{coded, Exit};
use crate::io::{check_stdin_once, read_documents, write_output};

/// Print the Secret the controller would write for each SealedSecret.
///
/// Templated items (spec.template.data) are rendered with the controller's
/// engine and rules: inputs that only templates read stay out of the Secret
/// unless spec.template.includeInputs is true. Without -i, sealed values
/// are shown as <sealed:KEY> placeholders (and templates render over them);
/// with -i they are opened as `unseal` opens them. Vault items are
/// <vault:KEY> placeholders unless --vault reads them with your own Vault
/// token (VAULT_ADDR, VAULT_TOKEN or ~/.vault-token, VAULT_CACERT,
/// VAULT_NAMESPACE). htpasswd/bcrypt lines use an offline salt: they verify
/// the same passwords as the cluster's, but are not the same bytes.
#[derive(clap::Args, Debug)]
#[command(after_long_help = "Examples:
  gitseal render -f db.sealed.yaml                       # placeholders: no key needed
  gitseal render -f db.sealed.yaml -i key.txt --text     # real values, as stringData
  VAULT_ADDR=https://vault:8200 gitseal render -f app.sealed.yaml --vault

Exit codes: 0 ok, 2 bad usage or input (also a template that does not
render: the error names the key and the template line), 3 a sealed value
did not open, 4 Vault unavailable or refused. Nothing is printed unless
every document rendered.
Documentation: https://github.com/gitseal/gitseal/blob/main/docs/templates.md")]
pub struct Args {
    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Read vaultData items from Vault with your own token (default: placeholders).
    #[arg(long)]
    pub vault: bool,

    /// Print values as text (stringData) where they are UTF-8, instead of base64 data.
    #[arg(long)]
    pub text: bool,

    /// Copy documents that are not SealedSecrets unchanged (default: refuse them).
    #[arg(long)]
    pub pass_through: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.input.files.is_empty() {
        return Err(coded(
            Exit::Usage,
            "render needs the SealedSecrets: -f FILE (repeatable; '-' for standard input)",
        ));
    }
    check_stdin_once(&args.identity.identities, &args.input.files)?;
    let identities = args.identity.load()?;
    let docs = read_documents(&args.input.files)?;
    let vault = if args.vault {
        read_vault(&docs)?
    } else {
        BTreeMap::new()
    };
    let opts = RenderOptions {
        identities: &identities,
        namespace: args.input.namespace.as_deref(),
        others: if args.pass_through {
            Others::PassThrough
        } else {
            Others::Refuse
        },
    };
    let rendered = render::render_documents(&docs, &opts, vault)?;
    for note in &rendered.notes {
        eprintln!("note: {note}");
    }
    let documents = if args.text {
        rendered
            .documents
            .into_iter()
            .map(render::with_text_data)
            .collect()
    } else {
        rendered.documents
    };
    let text = output::render(&documents, args.output.format.into())?;
    let real = !identities.is_empty() || args.vault;
    if real && args.output.output.is_none() && std::io::stdout().is_terminal() {
        eprintln!("warning: printing plaintext Secrets to the terminal");
    }
    write_output(args.output.output.as_deref(), &text, NewFileMode::Private)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the Vault items of every SealedSecret with the user's own token,
/// through one client and one session.
fn read_vault(
    docs: &[gitseal_manifest::input::Document],
) -> anyhow::Result<BTreeMap<usize, BTreeMap<String, SecretSlice<u8>>>> {
    let mut wanted = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if doc.kind() != Some("SealedSecret") {
            continue;
        }
        let sealed = open::read_sealed(doc)?;
        for (key, reference) in &sealed.spec.vault_data {
            let r = VaultRef::try_from(reference)
                .map_err(|e| coded(Exit::Usage, format!("{}, item {key:?}: {e}", doc.at)))?;
            wanted.push((i, key.clone(), r, doc.at.clone()));
        }
    }
    let mut out: BTreeMap<usize, BTreeMap<String, SecretSlice<u8>>> = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
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
        for (i, key, r, at) in wanted {
            let value = session
                .resolve(&r)
                .await
                .map_err(|e| anyhow::Error::new(e).context(format!("{at}, item {key:?} ({r})")))?;
            out.entry(i).or_default().insert(
                key,
                SecretSlice::from(value.expose_secret().as_bytes().to_vec()),
            );
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(out)
}
