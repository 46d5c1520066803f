//! Flag groups shared by several commands, one struct each, flattened into
//! the commands' arguments (`#[command(flatten)]`), so a flag is spelt,
//! documented and checked once.

use std::path::{Path, PathBuf};

use gitseal_crypto::{Identity, Recipient, Scope};
use gitseal_manifest::output::Format;
use gitseal_manifest::select::Selector;

use crate::io::load_all_identities;

/// Who to seal to: `-r`, `--keyring`, `--env`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RecipientArgs {
    /// Seal to this recipient (age1…); repeatable. Alone, exactly these;
    /// with --keyring or --env, added to the environment's recipients.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Keyring file [default: .gitseal/keys.yaml at the repository root,
    /// found by walking up from the file worked on].
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Keyring environment to seal for [default: the one the file's path
    /// maps to, else the keyring's defaultEnvironment].
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

impl RecipientArgs {
    /// The `-r` recipients, parsed; a mistyped one says what is wrong.
    pub fn parsed(&self) -> anyhow::Result<Vec<Recipient>> {
        self.recipients
            .iter()
            .enumerate()
            .map(|(i, text)| {
                text.parse::<Recipient>().map_err(|e| {
                    anyhow::anyhow!(
                        "-r/--recipient #{} ({}) is not usable: {e}{}",
                        i + 1,
                        shorten(text),
                        recipient_hint(text)
                    )
                })
            })
            .collect()
    }

    /// The selector for this run; `start` is where the keyring is looked
    /// for (the first file worked on, else the current directory).
    pub fn selector(&self, start: &Path) -> anyhow::Result<Selector> {
        Ok(Selector::new(
            self.parsed()?,
            self.keyring.as_deref(),
            self.env.as_deref(),
            start,
        )?)
    }
}

/// The start of a long argument, for a message.
fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(24).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// What a mistyped recipient most likely is.
fn recipient_hint(text: &str) -> &'static str {
    let t = text.trim();
    if t.starts_with("ssh-") {
        "; SSH keys are not supported: use an age key (`gitseal keygen`, or the cluster's with `gitseal fetch-key`)"
    } else if t.starts_with("age1") && t.len() != 62 {
        "; an age recipient is 62 characters long: was it cut off when copied?"
    } else if t.to_ascii_lowercase().starts_with("age1") && t != t.to_ascii_lowercase() {
        "; age recipients are lowercase"
    } else if !t.starts_with("age1") && t.len() == 16 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        "; this is a key id, not a recipient: give the age1… public key"
    } else if !t.starts_with("age1") {
        "; recipients start with age1 (see `gitseal pubkey -i KEY` or `gitseal fetch-key`)"
    } else {
        ""
    }
}

/// Private keys: `-i`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct IdentityArgs {
    /// Identity file (age-keygen format; '-' for standard input); repeatable.
    #[arg(short, long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
}

impl IdentityArgs {
    /// Every identity of every file.
    pub fn load(&self) -> anyhow::Result<Vec<Identity>> {
        load_all_identities(&self.identities)
    }
}

/// Manifests in: `-f`, and `-n` for objects without a namespace.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct InputArgs {
    /// Input file ('-' for standard input); repeatable [default: standard input].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Namespace for objects without metadata.namespace (with --raw: the value's namespace).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
}

impl InputArgs {
    /// The input files that are files (not standard input).
    pub fn paths(&self) -> Vec<&Path> {
        self.files
            .iter()
            .filter(|p| p.as_os_str() != "-")
            .map(PathBuf::as_path)
            .collect()
    }
}

/// Manifests out: `-o`, `--format`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OutputArgs {
    /// Write to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
    pub format: FormatArg,
}

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
