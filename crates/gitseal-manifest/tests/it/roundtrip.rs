//! Seal → open round trips, and what a sealed manifest holds.

use gitseal_crypto::Scope;
use gitseal_manifest::input;
use gitseal_manifest::open::{self, OpenOptions};
use gitseal_manifest::output::Format;
use gitseal_manifest::seal::{self, Others, SealOptions};

use crate::support::*;

const SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
  labels:
    app: db
  annotations:
    team: storage
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","kind":"Secret","stringData":{"password":"hunter2-in-annotation"}}
  resourceVersion: "4711"
  uid: 0f0e0d0c-0000-0000-0000-000000000000
  creationTimestamp: "2024-01-01T00:00:00Z"
  generation: 3
  selfLink: /api/v1/namespaces/prod/secrets/db
  managedFields:
    - manager: kubectl
  ownerReferences:
    - apiVersion: v1
      kind: ConfigMap
      name: x
      uid: y
type: kubernetes.io/basic-auth
immutable: true
data:
  binary: AAEC/4CBfn8=
  username: YWRtaW4=
  password: b3ZlcnJpZGRlbg==
stringData:
  password: hunter2
status:
  something: true
"#;

#[test]
fn seal_then_open_is_byte_exact_and_drops_server_fields() {
    let key = key();
    let sealed = seal_strict(SECRET, &key).expect("seals");
    assert!(
        !sealed.contains("hunter2"),
        "no plaintext in the sealed output:\n{sealed}"
    );
    assert!(!sealed.contains("YWRtaW4="), "no base64 plaintext either");
    for dropped in [
        "last-applied",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "selfLink",
        "managedFields",
        "ownerReferences",
        "status",
    ] {
        assert!(!sealed.contains(dropped), "{dropped} is dropped:\n{sealed}");
    }
    assert!(sealed.starts_with("apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\n  namespace: prod\nspec:\n"), "{sealed}");
    assert!(
        sealed.contains("type: kubernetes.io/basic-auth"),
        "{sealed}"
    );
    assert!(
        sealed.contains("app: db")
            && sealed.contains("team: storage")
            && sealed.contains("immutable: true"),
        "{sealed}"
    );

    let opened = open_text(&sealed, &key, "sealed.yaml").expect("opens");
    assert_eq!(
        data_item(&opened, 0, "binary"),
        [0, 1, 2, 255, 128, 129, 126, 127]
    );
    assert_eq!(data_item(&opened, 0, "username"), b"admin");
    assert_eq!(
        data_item(&opened, 0, "password"),
        b"hunter2",
        "stringData wins over data"
    );
    let docs = input::parse(&opened, "o").expect("parse");
    let v = &docs[0].value;
    assert_eq!(v["type"].as_str(), Some("kubernetes.io/basic-auth"));
    assert_eq!(v["immutable"].as_bool(), Some(true));
    assert_eq!(v["metadata"]["labels"]["app"].as_str(), Some("db"));
    assert_eq!(
        v["metadata"]["annotations"]["team"].as_str(),
        Some("storage")
    );
    assert!(v["metadata"]["annotations"]
        .get("kubectl.kubernetes.io/last-applied-configuration")
        .is_none());
    assert!(
        opened.starts_with(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n"
        ),
        "{opened}"
    );
}

#[test]
fn multi_document_yaml_and_json_list() {
    let key = key();
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: a, namespace: ns}\nstringData: {k: one}\n---\n# comment\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: ns}\nstringData: {k: two}\n";
    let sealed = seal_strict(yaml, &key).expect("seals");
    assert_eq!(sealed.matches("kind: SealedSecret").count(), 2);
    assert_eq!(sealed.matches("\n---\n").count(), 1);
    let opened = open_text(&sealed, &key, "s").expect("opens");
    assert_eq!(data_item(&opened, 0, "k"), b"one");
    assert_eq!(data_item(&opened, 1, "k"), b"two");

    // JSON List in, JSON out.
    let json = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"Secret","metadata":{"name":"a","namespace":"ns"},"data":{"k":"AP8="}},
        {"apiVersion":"v1","kind":"Secret","metadata":{"name":"b","namespace":"ns"},"stringData":{"k":"two"}}]}"#;
    let sealed = seal_text(json, &key, Scope::Strict, None, Format::Json).expect("seals JSON");
    let v: serde_json::Value = serde_json::from_str(&sealed).expect("JSON output");
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"][1]["kind"], "SealedSecret");
    let opened = open_text(&sealed, &key, "s.json").expect("opens JSON");
    assert_eq!(data_item(&opened, 0, "k"), [0, 255]);

    // One JSON object out is an object, not a List.
    let one = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a","namespace":"ns"},"stringData":{"k":"v"}}"#;
    let sealed = seal_text(one, &key, Scope::Strict, None, Format::Json).expect("seals");
    let v: serde_json::Value = serde_json::from_str(&sealed).expect("JSON output");
    assert_eq!(v["kind"], "SealedSecret");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 4);
}

#[test]
fn scopes_and_namespace_fallback() {
    let key = key();
    let no_ns = "apiVersion: v1\nkind: Secret\nmetadata: {name: app}\nstringData: {token: t0ken}\n";
    let sealed = seal_text(no_ns, &key, Scope::Strict, Some("team-a"), Format::Yaml)
        .expect("fallback namespace");
    assert!(sealed.contains("namespace: team-a"), "{sealed}");
    assert_eq!(
        data_item(&open_text(&sealed, &key, "s").expect("opens"), 0, "token"),
        b"t0ken"
    );

    let sealed = seal_text(no_ns, &key, Scope::Cluster, None, Format::Yaml)
        .expect("cluster scope needs no namespace");
    assert!(!sealed.contains("namespace:"), "{sealed}");
    assert!(sealed.contains("scope: cluster"), "{sealed}");
    let opened = open_text(&sealed, &key, "s").expect("opens anywhere");
    assert_eq!(data_item(&opened, 0, "token"), b"t0ken");
    // A cluster-scoped value opens under another name and namespace.
    let moved = sealed.replace("name: app", "name: elsewhere\n  namespace: other");
    assert_eq!(
        data_item(&open_text(&moved, &key, "s").expect("opens"), 0, "token"),
        b"t0ken"
    );

    let sealed = seal_text(no_ns, &key, Scope::Namespace, Some("team-a"), Format::Yaml)
        .expect("namespace scope");
    assert!(sealed.contains("scope: namespace"), "{sealed}");
    let renamed = sealed.replace("name: app", "name: renamed");
    assert_eq!(
        data_item(&open_text(&renamed, &key, "s").expect("opens"), 0, "token"),
        b"t0ken"
    );
}

#[test]
fn empty_secret_seals_to_empty_encrypted_data() {
    let key = key();
    let sealed = seal_strict(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: e, namespace: n}\n",
        &key,
    )
    .expect("seals");
    assert!(!sealed.contains("encryptedData"), "{sealed}");
    let opened = open_text(&sealed, &key, "s").expect("opens");
    assert!(opened.contains("data: {}"), "{opened}");
}

#[test]
fn pass_through_keeps_other_documents_verbatim() {
    let key = key();
    let cm = "# keep me\napiVersion: v1\nkind: ConfigMap\nmetadata:   {name: cfg}\ndata:\n  x: \"1\"   # odd spacing kept\n";
    let text = format!("{cm}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: n}}\nstringData: {{a: b}}\n");
    let docs = input::parse(&text, "in.yaml").expect("parse");
    let opts = SealOptions {
        others: Others::PassThrough,
        ..SealOptions::new(&key.recipients)
    };
    let out = seal::seal_documents(&docs, &opts).expect("seals");
    let yaml = gitseal_manifest::output::render(&out, Format::Yaml).expect("render");
    assert!(yaml.starts_with(cm), "{yaml}");
    assert!(yaml.contains("kind: SealedSecret"));
}

#[test]
fn vault_items_are_skipped_with_a_note() {
    let key = key();
    let sealed = seal_strict(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {a: b}\n",
        &key,
    )
    .expect("seals");
    let with_vault = sealed.replace("spec:\n", "spec:\n  vaultData:\n    db:\n      mount: secret\n      path: n/db\n      field: password\n");
    let docs = input::parse(&with_vault, "v.yaml").expect("parse");
    let opened = open::open_documents(
        &docs,
        &OpenOptions::new(std::slice::from_ref(&key.identity)),
    )
    .expect("opens");
    assert_eq!(opened.notes.len(), 1);
    assert!(
        opened.notes[0].contains("item \"db\" is a Vault reference (secret/n/db#password)"),
        "{:?}",
        opened.notes
    );
    let yaml = gitseal_manifest::output::render(&opened.documents, Format::Yaml).expect("render");
    assert!(!yaml.contains("db:"), "{yaml}");
}

#[test]
fn raw_value_opens_at_its_binding() {
    let key = key();
    let text = seal::seal_raw(
        b"\x00raw\n",
        &key.recipients,
        Scope::Strict,
        Some("ns"),
        Some("api"),
        "token",
    )
    .expect("seals");
    assert!(text.starts_with("gs1:"));
    let opened = gitseal_manifest::open::open_value(
        &text,
        &mut gitseal_crypto::Opener::new(std::slice::from_ref(&key.identity)),
        Scope::Strict,
        "ns",
        "api",
        "token",
        &gitseal_manifest::Location::new("t", 0),
    )
    .expect("opens");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), b"\x00raw\n");
}

#[test]
fn many_items_seal_and_round_trip() {
    let key = key();
    let mut text = String::from(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: big, namespace: ns}\nstringData:\n",
    );
    for i in 0..60 {
        text.push_str(&format!("  item-{i:02}: value-{i}\n"));
    }
    let sealed = seal_strict(&text, &key).expect("seals");
    let opened = open_text(&sealed, &key, "s").expect("opens");
    for i in 0..60 {
        assert_eq!(
            data_item(&opened, 0, &format!("item-{i:02}")),
            format!("value-{i}").as_bytes()
        );
    }
    // A failure in any thread is reported, with the item.
    let docs = input::parse(&text, "big.yaml").expect("parse");
    let err = seal::seal_documents(&docs, &SealOptions::new(&[])).expect_err("no recipients");
    let msg = err.to_string();
    assert!(
        msg.starts_with("big.yaml, document 1 (line 1), item \"item-"),
        "{msg}"
    );
    assert!(msg.contains("no recipients"), "{msg}");
}
