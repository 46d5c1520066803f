//! Every string gitseal writes reads back as the same string with a YAML
//! 1.1 reader (PyYAML, as kubectl's Go yaml.v2 reads YAML 1.1) and with
//! serde_yaml (YAML 1.2): names, namespaces, item keys, labels,
//! annotations, keyring fields. PyYAML runs through
//! `tests/tools/yaml11.py` (installed by `scripts/pyyaml.sh`).

use gitseal_crypto::Scope;
use gitseal_manifest::keyring::{Environment, KeyEntry, Keyring};
use gitseal_manifest::merge::{merge_into, MergeOptions};
use gitseal_manifest::output::Format;
use gitseal_manifest::{input, output};
use serde_yaml::Value;

use crate::support::*;
use crate::yaml11_support::{pyyaml, typed};

/// Strings YAML 1.1 readers take for booleans, nulls, numbers or dates,
/// and strings with indicators, quotes, spaces and line breaks.
const TRICKY: &[&str] = &[
    "y",
    "Y",
    "n",
    "N",
    "yes",
    "Yes",
    "YES",
    "no",
    "No",
    "NO",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "true",
    "True",
    "false",
    "FALSE",
    "null",
    "Null",
    "NULL",
    "~",
    "",
    "=",
    "<<",
    "0o17",
    "0x1F",
    "0b1011",
    "0777",
    "1_000",
    "1:20",
    "-1:20",
    "190:20:30.15",
    ".inf",
    "-.inf",
    "+.INF",
    ".nan",
    ".NaN",
    "1e3",
    "1.5",
    "-1",
    "+1",
    "6.8523015e+5",
    "685.230_15e+03",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "-",
    "---",
    "...",
    "?",
    ":",
    "- a",
    "? a",
    ": a",
    "a: b",
    "a #b",
    "#c",
    "@x",
    "`x",
    "!x",
    "&x",
    "*x",
    "%x",
    "|",
    ">",
    "[x]",
    "{x}",
    ",x",
    "'q'",
    "\"q\"",
    " lead",
    "trail ",
    "tab\tin",
    "two\nlines",
    "end\n",
    "crlf\r\n",
    "nel\u{85}x",
    "ls\u{2028}x",
    "\u{feff}bom",
    "é",
    "back\\slash",
    "gs1:AAAA+/==",
    "plain words",
    "a:b",
];

/// Names and namespaces (DNS labels) and item keys (`[-._a-zA-Z0-9]`) that
/// YAML 1.1 readers would not read as strings.
const NAMES: &[&str] = &[
    "y",
    "n",
    "on",
    "off",
    "yes",
    "no",
    "true",
    "null",
    "0o17",
    "1e3",
    "0777",
    "2001-12-14",
];
const ITEM_KEYS: &[&str] = &[
    "y",
    "N",
    "on",
    "Off",
    "YES",
    "no",
    "true",
    "NULL",
    "0o17",
    "0x1F",
    "1_000",
    "0777",
    ".inf",
    "-.inf",
    ".NaN",
    "1e3",
    "1.5",
    "-1",
    "2001-12-14",
    "_",
    "ok",
];

/// Asserts that PyYAML (YAML 1.1) and serde_yaml (YAML 1.2) read the same
/// typed documents from `text`; returns serde_yaml's.
#[track_caller]
fn same_in_both(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = input::parse_file(text, "out.yaml")
        .expect("serde_yaml reads it")
        .documents
        .into_iter()
        .map(|d| d.value)
        .collect();
    let ours: Vec<serde_json::Value> = docs.iter().map(typed).collect();
    let theirs = pyyaml(text);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a,
            b,
            "document {}: YAML 1.1 reads it differently:\n{text}",
            i + 1
        );
    }
    assert_eq!(ours.len(), theirs.len());
    docs
}

fn string_map(items: &[&str]) -> serde_yaml::Mapping {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| (Value::from(format!("k{i}")), Value::from(*s)))
        .chain(items.iter().map(|s| (Value::from(*s), Value::from("v"))))
        .collect()
}

/// Secrets named and namespaced with [`NAMES`], holding [`ITEM_KEYS`], with
/// every [`TRICKY`] string as a label and annotation key and value.
fn tricky_secrets() -> String {
    let mut docs = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let namespace = NAMES[(i + 1) % NAMES.len()];
        let data: serde_yaml::Mapping = ITEM_KEYS
            .iter()
            .map(|k| (Value::from(*k), Value::from(format!("value of {k}"))))
            .collect();
        let mut metadata = serde_yaml::Mapping::new();
        metadata.insert("name".into(), (*name).into());
        metadata.insert("namespace".into(), namespace.into());
        metadata.insert("labels".into(), Value::Mapping(string_map(TRICKY)));
        metadata.insert("annotations".into(), Value::Mapping(string_map(TRICKY)));
        let mut secret = serde_yaml::Mapping::new();
        secret.insert("apiVersion".into(), "v1".into());
        secret.insert("kind".into(), "Secret".into());
        secret.insert("metadata".into(), Value::Mapping(metadata));
        secret.insert("type".into(), "on".into());
        secret.insert("stringData".into(), Value::Mapping(data));
        docs.push(output::OutputDocument::new(Value::Mapping(secret)));
    }
    output::render(&docs, Format::Yaml).expect("renders")
}

#[test]
fn sealed_and_opened_manifests_read_the_same_in_yaml_11() {
    let key = key();
    let input = tricky_secrets();
    // The input, written by the same emitter, already reads the same.
    same_in_both(&input);
    let sealed = seal_strict(&input, &key).expect("seals");
    let docs = same_in_both(&sealed);
    assert_eq!(docs.len(), NAMES.len());
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(doc["metadata"]["name"].as_str(), Some(NAMES[i]));
        assert_eq!(
            doc["metadata"]["namespace"].as_str(),
            Some(NAMES[(i + 1) % NAMES.len()])
        );
        let data = doc["spec"]["encryptedData"].as_mapping().expect("data");
        let keys: Vec<&str> = data.keys().filter_map(Value::as_str).collect();
        let mut want = ITEM_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        let annotations = doc["spec"]["template"]["metadata"]["annotations"]
            .as_mapping()
            .expect("annotations");
        for s in TRICKY {
            assert!(annotations.contains_key(*s), "annotation key {s:?}");
            assert!(
                annotations.values().any(|v| v.as_str() == Some(s)),
                "annotation value {s:?}"
            );
        }
    }
    // Opening binds to the names and keys as read: every value opens.
    let opened = open_text(&sealed, &key, "sealed.yaml").expect("opens");
    let docs = same_in_both(&opened);
    assert_eq!(data_item(&opened, 0, "on"), b"value of on");
    assert_eq!(docs[0]["type"].as_str(), Some("on"));

    // JSON output is unaffected and reads back the same.
    let json = seal_text(&input, &key, Scope::Namespace, None, Format::Json).expect("json");
    same_in_both(&json);
}

#[test]
fn merged_items_read_the_same_in_yaml_11() {
    let key = key();
    let file = seal_strict(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: 'on', namespace: 'y'}\nstringData: {a: one, z: last}\n",
        &key,
    )
    .expect("seals");
    let secrets = input::parse(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: 'on'}\nstringData: {'off': two, 'n': three, '1_000': four}\n",
        "new.yaml",
    )
    .expect("parses");
    let merged = merge_into(
        &input::parse_file(&file, "sealed.yaml").expect("parses"),
        &secrets,
        &MergeOptions {
            recipients: &key.recipients,
            scope: None,
            namespace: None,
            reseal_with: None,
            memory: None,
        },
    )
    .expect("merges");
    let docs = same_in_both(&merged.text);
    let data = docs[0]["spec"]["encryptedData"].as_mapping().expect("data");
    for k in ["a", "z", "off", "n", "1_000"] {
        assert!(data.contains_key(k), "{k}: {}", merged.text);
    }
    assert_eq!(
        data_item(
            &open_text(&merged.text, &key, "m").expect("opens"),
            0,
            "off"
        ),
        b"two"
    );
}

#[test]
fn keyrings_read_the_same_in_yaml_11() {
    let key = key();
    let mut keyring = Keyring {
        version: 1,
        default_environment: Some("n".into()),
        ..Keyring::default()
    };
    for name in ["n", "on", "0o17", "2001-12-14"] {
        keyring.environments.insert(
            name.to_string(),
            Environment {
                recipients: key
                    .recipients
                    .iter()
                    .cloned()
                    .map(KeyEntry::recipient)
                    .collect(),
                ..Environment::default()
            },
        );
    }
    let text = keyring.to_yaml();
    same_in_both(&text);
    assert_eq!(Keyring::from_yaml(&text, "k").expect("reads"), keyring);
}
