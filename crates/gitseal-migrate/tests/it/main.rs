//! Migration from Bitnami Sealed Secrets against data made by an
//! independent encoder (`tests/bitnami_seal.py`, Python `cryptography`):
//! every object converts to a gitseal SealedSecret that opens to the
//! original bytes, or is refused with the reason the encoder planted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gitseal_crypto::{Identity, Scope};
use gitseal_manifest::{input, open, output};
use gitseal_migrate::{convert, is_bitnami, manifest_files, BitnamiKeys, Options, Refusal};
use secrecy::ExposeSecret as _;
use serde_json::Value;

/// The fixtures, generated once per test run.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        gitseal_test_support::fixtures::bitnami_seal(dir.path());
        dir
    })
    .path()
}

/// A fresh gitseal identity and its recipient.
fn one_recipient() -> (Identity, [gitseal_crypto::Recipient; 1]) {
    let identity = Identity::generate();
    let recipient = identity.recipient().clone();
    (identity, [recipient])
}

fn keys(files: &[&str]) -> BitnamiKeys {
    let mut keys = BitnamiKeys::new();
    for f in files {
        let path = fixtures().join(f);
        let text = std::fs::read_to_string(&path).expect("key file");
        keys.add(&text, &path.display().to_string())
            .expect("keys load");
    }
    keys
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("JSON")
}

/// Every Bitnami document of the fixture repository, by relative path.
fn bitnami_docs() -> Vec<(String, input::Document)> {
    let repo = fixtures().join("repo");
    let mut out = Vec::new();
    for path in manifest_files(std::slice::from_ref(&repo)).expect("walk") {
        let rel = path
            .strip_prefix(&repo)
            .expect("inside")
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read");
        for doc in input::parse(&text, &rel).expect("parse") {
            if is_bitnami(&doc) {
                out.push((rel.clone(), doc));
            }
        }
    }
    out
}

fn case<'a>(expected: &'a Value, file: &str, document: usize) -> &'a Value {
    expected[file]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["document"] == document))
        .unwrap_or_else(|| panic!("no expectation for {file} document {document}"))
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Renders the converted object as the CLI writes it, reads it back as a
/// gitseal manifest and opens it with `identity`: item → bytes.
fn reopen(
    sealed: &gitseal_manifest::SealedSecret,
    identity: &Identity,
) -> BTreeMap<String, Vec<u8>> {
    let doc = output::OutputDocument::sealed(sealed).expect("document");
    let yaml = output::render(&[doc], output::Format::Yaml).expect("yaml");
    let docs = input::parse(&yaml, "converted.yaml").expect("gitseal reads its output");
    let identities = [identity.clone()];
    let opened = open::read_sealed(&docs[0]).expect("a gitseal SealedSecret");
    let (secret, _) = open::open_sealed(&opened, &docs[0].at, &open::OpenOptions::new(&identities))
        .expect("opens");
    secret
        .items
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_vec()))
        .collect()
}

/// The data the gitseal controller writes for a converted object: opened
/// items, then its templates rendered as the controller renders them.
fn controller_data(
    sealed: &gitseal_manifest::SealedSecret,
    identity: &Identity,
) -> BTreeMap<String, Vec<u8>> {
    let template = sealed.spec.template.clone().unwrap_or_default();
    let mut data: BTreeMap<String, secrecy::SecretSlice<u8>> = reopen(sealed, identity)
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    gitseal_template::secret_data(
        &template.data,
        template.include_inputs.unwrap_or(false),
        &mut data,
        gitseal_template::Place {
            namespace: sealed.metadata.namespace.as_deref().unwrap_or_default(),
            name: sealed.metadata.name.as_deref().unwrap_or_default(),
        },
        &gitseal_template::SaltKey::offline(),
        &gitseal_template::Limits::default(),
    )
    .expect("the translated templates render");
    data.into_iter()
        .map(|(k, v)| (k, v.expose_secret().to_vec()))
        .collect()
}

#[test]
fn every_fixture_converts_or_is_refused_as_planted() {
    let (identity, recipients) = one_recipient();
    let opts = Options {
        recipients: &recipients,
        namespace: None,
    };
    let keys = keys(&["keys.yaml"]);
    assert_eq!(
        keys.len(),
        2,
        "both exported keys (current and rotated) load"
    );
    let expected = expected();
    let docs = bitnami_docs();
    let total: usize = expected
        .as_object()
        .expect("map")
        .values()
        .map(|v| v.as_array().expect("list").len())
        .sum();
    assert_eq!(
        docs.len(),
        total,
        "every planted object is found by the walk"
    );
    let (mut converted, mut refused) = (0, 0);
    for (file, doc) in &docs {
        let want = case(&expected, file, doc.at.document);
        match (convert(doc, &keys, &opts), want.get("refused")) {
            (Ok(c), None) => {
                converted += 1;
                assert_eq!(c.sealed.metadata.name.as_deref(), want["name"].as_str());
                assert_eq!(
                    c.sealed.metadata.namespace.as_deref(),
                    want["namespace"].as_str()
                );
                let scope = match want["scope"].as_str() {
                    Some("strict") => Scope::Strict,
                    Some("namespace") => Scope::Namespace,
                    _ => Scope::Cluster,
                };
                assert_eq!(c.scope, scope, "{file}");
                assert_eq!(c.sealed.spec.scope, scope, "{file}");
                let items: BTreeMap<String, Vec<u8>> = want["items"]
                    .as_object()
                    .expect("items")
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            STANDARD.decode(v.as_str().expect("b64")).expect("b64"),
                        )
                    })
                    .collect();
                assert_eq!(c.items, items.len());
                assert_eq!(
                    reopen(&c.sealed, &identity),
                    items,
                    "{file}: the original bytes"
                );
                let template = c.sealed.spec.template.clone().unwrap_or_default();
                assert_eq!(template.type_.as_deref(), want["type"].as_str(), "{file}");
                assert_eq!(template.immutable, want["immutable"].as_bool(), "{file}");
                let meta = template.metadata.unwrap_or_default();
                assert_eq!(meta.labels, string_map(&want["template_labels"]), "{file}");
                assert_eq!(
                    meta.annotations,
                    string_map(&want["template_annotations"]),
                    "{file}"
                );
                assert_eq!(
                    c.sealed.metadata.annotations.clone().unwrap_or_default(),
                    string_map(&want["annotations"]),
                    "{file}: the object's annotations stay, Bitnami's scope annotations go"
                );
                assert_eq!(
                    c.sealed.metadata.labels.clone().unwrap_or_default(),
                    string_map(&want["labels"]),
                    "{file}"
                );
                if let Some(secret_data) = want.get("secret_data") {
                    // Go templates: the Secret the gitseal controller
                    // writes equals the one Bitnami's wrote (rendered by
                    // Go's text/template + sprig in the fixture script).
                    let want: BTreeMap<String, Vec<u8>> = secret_data
                        .as_object()
                        .expect("secret_data")
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                STANDARD.decode(v.as_str().expect("b64")).expect("b64"),
                            )
                        })
                        .collect();
                    assert_eq!(controller_data(&c.sealed, &identity), want, "{file}");
                    assert_eq!(template.include_inputs, Some(true), "{file}");
                } else {
                    assert!(template.data.is_empty(), "{file}");
                }
            }
            (Err(r), Some(reason)) => {
                refused += 1;
                let items = |k: &str| -> Vec<String> {
                    reason[k]
                        .as_array()
                        .expect("items")
                        .iter()
                        .map(|v| v.as_str().expect("item").to_string())
                        .collect()
                };
                let mut want_items;
                match &r.reason {
                    Refusal::DoesNotOpen(got) => {
                        want_items = items("does_not_open");
                        want_items.sort();
                        assert_eq!(got, &want_items, "{file}");
                    }
                    Refusal::TemplateData { item, reason: why } => {
                        let want = items("template_data");
                        assert_eq!(item, &want[0], "{file}");
                        assert!(why.contains(&want[1]), "{file}: {why}");
                    }
                    other => panic!("{file}: refused for an unplanted reason: {other:?}"),
                }
            }
            (Ok(c), Some(reason)) => {
                panic!("{file}: converted {}, expected refusal {reason}", c.object)
            }
            (Err(r), None) => panic!("{file}: refused: {r}"),
        }
    }
    assert_eq!((converted, refused), (6, 6));
}

#[test]
fn one_pem_key_opens_only_what_it_sealed() {
    let (_identity, recipients) = one_recipient();
    let opts = Options {
        recipients: &recipients,
        namespace: None,
    };
    for file in ["current.pem", "current-pkcs8.pem"] {
        let keys = keys(&[file]);
        assert_eq!(keys.len(), 1);
        for (path, doc) in bitnami_docs() {
            let name = doc.value["metadata"]["name"]
                .as_str()
                .expect("name")
                .to_string();
            let result = convert(&doc, &keys, &opts);
            if name == "old" {
                // Sealed with the rotated key, which this file lacks.
                let r = result.expect_err("refused");
                assert_eq!(
                    r.reason,
                    Refusal::DoesNotOpen(vec!["api-key".into()]),
                    "{path}"
                );
            } else if ["db", "shared", "pull", "legacy"].contains(&name.as_str()) {
                assert!(
                    result.is_ok(),
                    "{file}: {path}: {:?}",
                    result.err().map(|r| r.to_string())
                );
            }
        }
    }
}

#[test]
fn another_clusters_key_opens_only_its_own_object() {
    let (_identity, recipients) = one_recipient();
    let opts = Options {
        recipients: &recipients,
        namespace: None,
    };
    let keys = keys(&["wrong.pem"]);
    for (path, doc) in bitnami_docs() {
        let result = convert(&doc, &keys, &opts);
        match doc.value["metadata"]["name"].as_str() {
            // `foreign` was sealed with this very key.
            Some("foreign") => assert!(result.is_ok(), "{path}"),
            _ => assert!(
                matches!(result.expect_err("refused").reason, Refusal::DoesNotOpen(_)),
                "{path}"
            ),
        }
    }
}

#[test]
fn refusals_and_notes_never_hold_plaintext() {
    let (_identity, recipients) = one_recipient();
    let opts = Options {
        recipients: &recipients,
        namespace: None,
    };
    let expected = expected();
    let mut plaintexts: Vec<String> = Vec::new();
    for cases in expected.as_object().expect("map").values() {
        for c in cases.as_array().expect("list") {
            for v in c["items"].as_object().into_iter().flatten() {
                let bytes = STANDARD.decode(v.1.as_str().expect("b64")).expect("b64");
                let text = String::from_utf8_lossy(&bytes).trim().to_string();
                if text.len() >= 4 {
                    plaintexts.push(text);
                }
            }
        }
    }
    plaintexts.extend(["flipped".to_string(), "fine".to_string()]);
    for keyset in [&["keys.yaml"][..], &["wrong.pem"][..]] {
        let keys = keys(keyset);
        let debug_keys = format!("{keys:?}");
        assert!(
            !debug_keys.contains("BEGIN") && debug_keys.len() < 400,
            "{debug_keys}"
        );
        for (_, doc) in bitnami_docs() {
            let text = match convert(&doc, &keys, &opts) {
                Ok(c) => format!("{c:?} {}", c.notes.join(" ")),
                Err(r) => format!("{r} {r:?}"),
            };
            for p in &plaintexts {
                assert!(!text.contains(p.as_str()), "plaintext {p:?} in {text}");
            }
        }
    }
}

#[test]
fn bad_key_files_are_refused_with_the_reason() {
    let cases: [(&str, &str); 5] = [
        ("", "holds no RSA private key"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "holds no RSA private key",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            "PEM block 1 (RSA PRIVATE KEY)",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: k}\ndata: {tls.key: '%%%'}\n",
            "data.tls.key is not base64",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "decrypt it first",
        ),
    ];
    for (text, want) in cases {
        let mut keys = BitnamiKeys::new();
        let err = keys.add(text, "bad.key").expect_err("refused").to_string();
        assert!(
            err.starts_with("bad.key: ") && err.contains(want),
            "{text:?}: {err}"
        );
        assert!(keys.is_empty(), "nothing was loaded from a bad file");
    }
}

#[test]
fn objects_without_a_namespace_need_one() {
    let (_identity, recipients) = one_recipient();
    let keys = keys(&["keys.yaml"]);
    let (file, mut doc) = bitnami_docs()
        .into_iter()
        .find(|(_, d)| d.value["metadata"]["name"] == "db")
        .expect("db");
    doc.value["metadata"]
        .as_mapping_mut()
        .expect("metadata")
        .remove("namespace");
    let none = Options {
        recipients: &recipients,
        namespace: None,
    };
    let r = convert(&doc, &keys, &none).expect_err("needs a namespace");
    assert_eq!(r.reason, Refusal::MissingNamespace, "{file}");
    assert!(r.to_string().contains("pass --namespace NS"));
    // Given the namespace it was sealed for, it opens; another one does not.
    let shop = Options {
        recipients: &recipients,
        namespace: Some("shop"),
    };
    assert!(convert(&doc, &keys, &shop).is_ok());
    let other = Options {
        recipients: &recipients,
        namespace: Some("other"),
    };
    let r = convert(&doc, &keys, &other).expect_err("bound to shop");
    assert!(matches!(r.reason, Refusal::DoesNotOpen(_)));
}

#[test]
fn reserved_template_metadata_is_refused() {
    let (_identity, recipients) = one_recipient();
    let opts = Options {
        recipients: &recipients,
        namespace: None,
    };
    let keys = keys(&["keys.yaml"]);
    let (_, mut doc) = bitnami_docs()
        .into_iter()
        .find(|(_, d)| d.value["metadata"]["name"] == "db")
        .expect("db");
    doc.value["spec"]["template"]["metadata"]["labels"]["gitseal.dev/sealing-key"] = "true".into();
    let r = convert(&doc, &keys, &opts).expect_err("reserved");
    assert_eq!(
        r.reason,
        Refusal::ReservedMetadata("gitseal.dev/sealing-key".into())
    );
}

#[test]
fn directories_are_walked_in_order_and_hidden_entries_skipped() {
    let dir = tempfile::tempdir().expect("temp");
    for f in [
        "b/x.yaml",
        "a/y.yml",
        "a/z.json",
        "a/notes.txt",
        ".git/c.yaml",
        "a/.hidden.yaml",
    ] {
        let p = dir.path().join(f);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, "").expect("write");
    }
    let files: Vec<PathBuf> = manifest_files(&[dir.path().to_path_buf()]).expect("walk");
    let rel: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(dir.path())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(rel, ["a/y.yml", "a/z.json", "b/x.yaml"]);
    let err = manifest_files(&[dir.path().join("missing")]).expect_err("missing");
    assert!(err.to_string().contains("missing"));
}
