//! Shared helpers: a key, sealing and opening text.

use gitseal_crypto::{Identity, Recipient, Scope};
use gitseal_manifest::open::{self, OpenOptions};
use gitseal_manifest::output::{self, Format};
use gitseal_manifest::seal::{self, SealOptions};
use gitseal_manifest::{input, Error};

pub struct Key {
    pub identity: Identity,
    pub recipients: Vec<Recipient>,
}

pub fn key() -> Key {
    let identity = Identity::generate();
    let recipients = vec![identity.recipient().clone()];
    Key {
        identity,
        recipients,
    }
}

pub fn seal_text(
    text: &str,
    key: &Key,
    scope: Scope,
    namespace: Option<&str>,
    format: Format,
) -> Result<String, Error> {
    let docs = input::parse(text, "secret.yaml")?;
    let opts = SealOptions {
        recipients: &key.recipients,
        scope,
        namespace,
        ..SealOptions::new(&key.recipients)
    };
    let sealed = seal::seal_documents(&docs, &opts)?;
    output::render(&sealed, format)
}

pub fn seal_strict(text: &str, key: &Key) -> Result<String, Error> {
    seal_text(text, key, Scope::Strict, None, Format::Yaml)
}

pub fn open_text(text: &str, key: &Key, origin: &str) -> Result<String, Error> {
    let docs = input::parse(text, origin)?;
    let opened = open::open_documents(
        &docs,
        &OpenOptions::new(std::slice::from_ref(&key.identity)),
    )?;
    output::render(&opened.documents, Format::Yaml)
}

/// `data` of document `doc` of YAML `text`, item `item`, decoded.
pub fn data_item(text: &str, doc: usize, item: &str) -> Vec<u8> {
    use base64::Engine as _;
    let docs = input::parse(text, "t").expect("parse");
    let b64 = docs[doc].value["data"][item]
        .as_str()
        .expect("data item is a string")
        .to_string();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}
