//! Every bad-input path: what the error says, where, and that it never
//! repeats a secret value.

use gitseal_crypto::Scope;
use gitseal_manifest::output::Format;
use gitseal_manifest::Error;

use crate::support::*;

const PLAIN: &str = "hunter2-SECRET";

fn secret_with(body: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n{body}")
}

/// Seals `text` and returns the error message, checking it leaks nothing.
fn seal_err(text: &str) -> String {
    let key = key();
    let err = seal_strict(text, &key).expect_err("must fail");
    let msg = err.to_string();
    assert!(!msg.contains(PLAIN), "error leaks the value: {msg}");
    assert!(
        !msg.contains("12345678"),
        "error leaks a numeric value: {msg}"
    );
    assert!(
        !format!("{err:?}").contains(PLAIN),
        "Debug leaks the value: {err:?}"
    );
    msg
}

#[test]
fn invalid_base64_names_file_document_and_item() {
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\n---\n{}",
        secret_with(&format!("data:\n  password: \"{PLAIN}!\"\n"))
    );
    let key = key();
    let docs = gitseal_manifest::input::parse(&text, "secret.yaml").expect("parse");
    let opts = gitseal_manifest::seal::SealOptions {
        others: gitseal_manifest::seal::Others::PassThrough,
        ..gitseal_manifest::seal::SealOptions::new(&key.recipients)
    };
    let err = gitseal_manifest::seal::seal_documents(&docs, &opts).expect_err("bad base64");
    let msg = err.to_string();
    assert_eq!(
        msg,
        "secret.yaml, document 2 (line 4), item \"password\": data value is not valid base64; data holds \
         base64-encoded values (put plain text under stringData instead)"
    );
    assert!(!msg.contains(PLAIN));
}

#[test]
fn wrong_value_types_never_echo_the_value() {
    let msg = seal_err(&secret_with("stringData:\n  pin: 12345678\n"));
    assert!(
        msg.ends_with("item \"pin\": stringData value is a number, not a string: quote it"),
        "{msg}"
    );
    let msg = seal_err(&secret_with("stringData:\n  on: true\n"));
    assert!(
        msg.contains("stringData value is a boolean, not a string: quote it"),
        "{msg}"
    );
    let msg = seal_err(&secret_with(&format!("stringData:\n  list: [{PLAIN}]\n")));
    assert!(
        msg.contains("item \"list\": stringData value is a list, expected a string"),
        "{msg}"
    );
    let msg = seal_err(&secret_with("stringData:\n  empty:\n"));
    assert!(
        msg.contains("item \"empty\": stringData value is empty (null); write \"\""),
        "{msg}"
    );
    let msg = seal_err(&secret_with("data:\n  n: 12345678\n"));
    assert!(
        msg.contains("item \"n\": data value is a number, expected a base64 string"),
        "{msg}"
    );
    let msg = seal_err(&secret_with(&format!("data:\n  m: {{a: {PLAIN}}}\n")));
    assert!(msg.contains("data value is a mapping"), "{msg}");
    let msg = seal_err(&secret_with("data:\n  e:\n"));
    assert!(
        msg.contains("item \"e\": data value is empty (null)"),
        "{msg}"
    );
    let msg = seal_err(&secret_with(&format!("data: {PLAIN}\n")));
    assert!(
        msg.ends_with("data is a string, expected a mapping"),
        "{msg}"
    );
    let msg = seal_err(&secret_with(&format!("stringData: [{PLAIN}]\n")));
    assert!(
        msg.ends_with("stringData is a list, expected a mapping"),
        "{msg}"
    );
}

#[test]
fn yaml_syntax_error_does_not_echo_the_line() {
    let msg = seal_err(&secret_with(&format!(
        "stringData:\n  password: \"{PLAIN}\n  other: [\n"
    )));
    assert!(
        msg.starts_with("secret.yaml: not valid YAML: document 1:"),
        "{msg}"
    );
    assert!(msg.contains("line"), "{msg}");
    let msg = seal_err(&format!(
        "{{\"kind\": \"Secret\", \"stringData\": {{\"p\": \"{PLAIN}\" \"q\": 1}}}}"
    ));
    assert!(msg.starts_with("secret.yaml: not valid JSON:"), "{msg}");
}

#[test]
fn bad_item_keys_and_metadata() {
    let msg = seal_err(&secret_with(&format!(
        "stringData:\n  \"a key\": {PLAIN}\n"
    )));
    assert!(msg.contains("item key \"a key\" is not valid"), "{msg}");
    let msg = seal_err(&secret_with(&format!(
        "stringData:\n  ? [x]\n  : {PLAIN}\n"
    )));
    assert!(msg.contains("stringData has a key that is a list"), "{msg}");
    let msg = seal_err(&format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: Bad_Name, namespace: p}}\nstringData: {{a: {PLAIN}}}\n"));
    assert!(
        msg.contains("metadata.name \"Bad_Name\" is not a valid Kubernetes name"),
        "{msg}"
    );
    let msg = seal_err(&format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: ok, namespace: a.b}}\nstringData: {{a: {PLAIN}}}\n"));
    assert!(
        msg.contains("metadata.namespace \"a.b\" is not a valid namespace"),
        "{msg}"
    );
    let msg = seal_err(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: [x]\nstringData: {{a: {PLAIN}}}\n"
    ));
    assert!(
        msg.contains("metadata is a list, expected a mapping"),
        "{msg}"
    );
    let msg = seal_err(&format!(
        "{}stringData: {{a: {PLAIN}}}\n",
        secret_with("").replace("namespace: prod\n", "namespace: prod\n  labels: {n: 1}\n")
    ));
    assert!(
        msg.contains("metadata.labels.n is a number, expected a string (quote it)"),
        "{msg}"
    );
    let msg = seal_err(&format!("{}immutable: \"yes\"\n", secret_with("")));
    assert!(
        msg.contains("immutable is a string, expected true or false"),
        "{msg}"
    );
    let msg = seal_err(&format!("{}datas:\n  a: {PLAIN}\n", secret_with("")));
    assert!(msg.contains("unknown field \"datas\" in a Secret"), "{msg}");
}

#[test]
fn names_and_namespaces_are_required() {
    let msg = seal_err(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{namespace: p}}\nstringData: {{a: {PLAIN}}}\n"
    ));
    assert_eq!(msg, "secret.yaml, document 1 (line 1): the Secret has no metadata.name; add one (it is bound into every sealed value)");
    let msg = seal_err(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: x}}\nstringData: {{a: {PLAIN}}}\n"
    ));
    assert!(msg.contains("no namespace: strict scope binds values to a namespace; add metadata.namespace to the Secret or pass --namespace NS"), "{msg}");
    let key = key();
    let text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: x}}\nstringData: {{a: {PLAIN}}}\n"
    );
    let err =
        seal_text(&text, &key, Scope::Namespace, None, Format::Yaml).expect_err("namespace scope");
    assert!(
        err.to_string()
            .contains("namespace scope binds values to a namespace"),
        "{err}"
    );
    let text = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: x, namespace: a}}\nstringData: {{a: {PLAIN}}}\n");
    let err = seal_text(&text, &key, Scope::Strict, Some("b"), Format::Yaml).expect_err("conflict");
    assert!(
        err.to_string()
            .contains("metadata.namespace is \"a\" but --namespace is \"b\"; remove one of them"),
        "{err}"
    );
    let err = seal_text(
        &text.replace("namespace: a", "namespace: b"),
        &key,
        Scope::Strict,
        Some("BAD"),
        Format::Yaml,
    )
    .expect_err("bad --namespace");
    assert!(
        err.to_string()
            .contains("--namespace \"BAD\" is not a valid namespace"),
        "{err}"
    );
}

#[test]
fn other_kinds_are_refused_by_name() {
    let msg = seal_err("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n");
    assert_eq!(
        msg,
        "secret.yaml, document 1 (line 1): is a Deployment, not a Secret; only Secrets are sealed \
         (pass --pass-through to copy other objects unchanged)"
    );
    let msg =
        seal_err("apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {name: x}\n");
    assert!(msg.contains("is a SealedSecret, not a Secret; it is already sealed (to add or replace items in it, use --merge-into)"), "{msg}");
    let msg = seal_err("apiVersion: v2\nkind: Secret\nmetadata: {name: x}\n");
    assert!(
        msg.contains("is a Secret of apiVersion \"v2\", expected apiVersion v1"),
        "{msg}"
    );
    let msg = seal_err("metadata: {name: x}\n");
    assert!(
        msg.contains("is an object with no kind, not a Secret"),
        "{msg}"
    );
    let msg = seal_err(&format!("- {PLAIN}\n"));
    assert!(
        msg.contains("is a list, expected a Kubernetes object"),
        "{msg}"
    );
}

#[test]
fn raw_arguments_are_checked() {
    let key = key();
    let s = |scope, ns, name, k| {
        gitseal_manifest::seal::seal_raw(PLAIN.as_bytes(), &key.recipients, scope, ns, name, k)
    };
    let e = s(Scope::Strict, None, Some("n"), "k").expect_err("no ns");
    assert!(matches!(e, Error::Argument(_)));
    assert_eq!(
        e.to_string(),
        "strict scope binds the value to a namespace: pass --namespace NS"
    );
    let e = s(Scope::Strict, Some("ns"), None, "k").expect_err("no name");
    assert_eq!(
        e.to_string(),
        "strict scope binds the value to an object name: pass --name NAME"
    );
    let e = s(Scope::Cluster, None, None, "bad key").expect_err("bad key");
    assert!(
        e.to_string().contains("item key \"bad key\" is not valid"),
        "{e}"
    );
    assert!(s(Scope::Cluster, None, None, "k").is_ok());
    assert!(s(Scope::Namespace, Some("ns"), None, "k").is_ok());
    let e = gitseal_manifest::seal::seal_raw(b"x", &[], Scope::Cluster, None, None, "k")
        .expect_err("no recipients");
    assert!(e.to_string().contains("no recipients"), "{e}");
}

// ---- opening ----

fn sealed_db(key: &Key) -> String {
    seal_strict(
        &secret_with(&format!(
            "stringData:\n  password: {PLAIN}\n  user: admin\n"
        )),
        key,
    )
    .expect("seals")
}

fn open_err(text: &str, key: &Key) -> Error {
    let err = open_text(text, key, "sealed.yaml").expect_err("must not open");
    let msg = err.to_string();
    assert!(!msg.contains(PLAIN), "error leaks the value: {msg}");
    assert!(
        !format!("{err:?}").contains(PLAIN),
        "Debug leaks the value: {err:?}"
    );
    err
}

#[test]
fn wrong_key_names_the_key_ids() {
    let owner = key();
    let sealed = sealed_db(&owner);
    let other = key();
    let err = open_err(&sealed, &other);
    assert!(err.is_does_not_open());
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "sealed.yaml, document 1 (line 1), item \"password\": sealed to key id(s) "
        ),
        "{msg}"
    );
    assert!(msg.contains(&owner.identity.key_id().to_string()), "{msg}");
    assert!(
        msg.contains(&format!(
            "the given identities have key id(s) {}",
            other.identity.key_id()
        )),
        "{msg}"
    );
}

#[test]
fn moved_values_say_where_they_were_sealed_for() {
    let key = key();
    let sealed = sealed_db(&key);
    let err = open_err(&sealed.replace("namespace: prod", "namespace: dev"), &key);
    assert!(matches!(err, Error::DoesNotOpen { .. }) && err.is_does_not_open());
    let msg = err.to_string();
    assert!(msg.contains("item \"password\": sealed value does not open: sealed for namespace \"prod\", found in namespace \"dev\""), "{msg}");
    assert!(msg.contains(&key.identity.key_id().to_string()), "{msg}");

    let msg = open_err(&sealed.replace("name: db", "name: other"), &key).to_string();
    assert!(
        msg.contains("sealed for name \"db\", found in SealedSecret \"other\""),
        "{msg}"
    );

    let msg = open_err(&sealed.replace("    password:", "    passw0rd:"), &key).to_string();
    assert!(msg.contains("item \"passw0rd\": sealed value does not open: sealed for item \"password\", found under item \"passw0rd\""), "{msg}");

    let msg = open_err(
        &sealed.replace("spec:\n", "spec:\n  scope: namespace\n"),
        &key,
    )
    .to_string();
    assert!(
        msg.contains("sealed with strict scope, but the SealedSecret says scope namespace"),
        "{msg}"
    );
}

#[test]
fn altered_value_does_not_open() {
    let key = key();
    let sealed = sealed_db(&key);
    // Flip one base64 character near the end of the password's ciphertext.
    let line = sealed
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .expect("line")
        .to_string();
    let mut altered = line.clone().into_bytes();
    let i = altered.len() - 4;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("utf8");
    let msg = open_err(&sealed.replace(&line, &altered), &key).to_string();
    assert!(msg.contains("item \"password\": sealed value does not open: it was altered, or sealed for another place"), "{msg}");
}

#[test]
fn plaintext_in_encrypted_data_is_refused_without_echo() {
    let key = key();
    let text = format!("apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec:\n  encryptedData:\n    password: {PLAIN}\n");
    let err = open_err(&text, &key);
    assert!(!err.is_does_not_open());
    assert_eq!(err.to_string(), "sealed.yaml, document 1 (line 1), item \"password\": not a sealed value: expected text starting with gs1:");
    let text = text.replace(&format!("password: {PLAIN}"), "pin: 12345678");
    let msg = open_err(&text, &key).to_string();
    assert!(
        msg.contains(
            "item \"pin\": spec.encryptedData value is a number, expected a sealed value (gs1:…)"
        ) && !msg.contains("12345678"),
        "{msg}"
    );
}

#[test]
fn bad_sealed_secret_documents() {
    let key = key();
    let base = "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {name: db, namespace: prod}\n";
    let msg = open_err(&format!("{base}spec:\n  encryptedDate: {{}}\n"), &key).to_string();
    assert!(msg.contains("unknown field spec.encryptedDate"), "{msg}");
    let msg = open_err(&format!("{base}spec:\n  scope: everywhere\n"), &key).to_string();
    assert!(
        msg.contains("spec.scope: invalid scope \"everywhere\""),
        "{msg}"
    );
    let msg = open_err(
        &base.replace("gitseal.dev/v1alpha1", "bitnami.com/v1alpha1"),
        &key,
    )
    .to_string();
    assert!(
        msg.contains(
            "is a Bitnami Sealed Secrets object (bitnami.com/v1alpha1); gitseal cannot open it"
        ),
        "{msg}"
    );
    let msg = open_err("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n", &key).to_string();
    assert!(msg.contains("is a Secret, not a SealedSecret"), "{msg}");
    let msg = open_err(
        "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {name: db}\nspec: {}\n",
        &key,
    )
    .to_string();
    assert!(msg.contains("no namespace: strict scope binds values to a namespace; add metadata.namespace to the SealedSecret or pass --namespace NS"), "{msg}");
    let msg = open_err(
        "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {namespace: p}\n",
        &key,
    )
    .to_string();
    assert!(
        msg.contains("the SealedSecret has no metadata.name"),
        "{msg}"
    );
    let msg = open_err(
        &format!("{base}spec:\n  vaultData:\n    x: {{mount: 1}}\n"),
        &key,
    )
    .to_string();
    assert!(msg.contains("spec.vaultData is not valid"), "{msg}");
}

#[test]
fn debug_of_plaintext_holding_types_shows_no_plaintext() {
    use gitseal_manifest::open::{self, OpenOptions};
    use gitseal_manifest::output;
    let key = key();
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2-DEBUG}\ndata: {b64: aHVudGVyMi1CQVNFNjQ=}\n";
    let file = gitseal_manifest::input::parse_file(text, "secret.yaml").expect("parses");
    let docs = gitseal_manifest::input::documents(&file).expect("documents");
    let out = docs
        .iter()
        .map(output::OutputDocument::from_input)
        .collect::<Vec<_>>();
    let sealed = seal_strict(text, &key).expect("seals");
    let sealed_docs = gitseal_manifest::input::parse(&sealed, "sealed.yaml").expect("parses");
    let opened = open::open_documents(
        &sealed_docs,
        &OpenOptions::new(std::slice::from_ref(&key.identity)),
    )
    .expect("opens");
    for shown in [
        format!("{file:?}"),
        format!("{:?}", file.documents),
        format!("{docs:?}"),
        format!("{out:?}"),
        format!("{opened:?}"),
        format!("{:?}", opened.documents),
    ] {
        for secret in ["hunter2", "aHVudGVyMi1CQVNFNjQ", "aHVudGVyMi1ERUJVRw"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    // They still say what they are.
    assert!(format!("{docs:?}").contains("secret.yaml"));
    assert!(format!("{out:?}").contains("Secret"));
}

#[test]
fn tagged_objects_are_refused_alone_and_in_lists() {
    // Found by the manifest_input fuzz target: a tagged item of a bare
    // array was read as an object, passed through, and written as a
    // tagged document that reading then refused.
    use gitseal_manifest::input;
    let alone =
        input::parse("!x\napiVersion: v1\nkind: ConfigMap\n", "a.yaml").expect_err("tagged");
    assert!(
        alone
            .to_string()
            .contains("is a value with a YAML tag, expected a Kubernetes object"),
        "{alone}"
    );
    let in_array = input::parse("- !x\n  apiVersion: v1\n  kind: ConfigMap\n", "b.yaml")
        .expect_err("tagged item of an array");
    assert!(matches!(in_array, Error::Invalid { .. }), "{in_array}");
    assert!(
        in_array
            .to_string()
            .contains("expected a Kubernetes object"),
        "{in_array}"
    );
    let in_list = input::parse(
        "apiVersion: v1\nkind: List\nitems:\n- !x\n  apiVersion: v1\n  kind: ConfigMap\n",
        "c.yaml",
    )
    .expect_err("tagged item of a List");
    assert!(
        in_list
            .to_string()
            .contains("is a value with a YAML tag, expected a Kubernetes object"),
        "{in_list}"
    );
    // Untagged arrays of objects still read.
    let docs = input::parse("- apiVersion: v1\n  kind: ConfigMap\n", "d.yaml").expect("array");
    assert_eq!(docs.len(), 1);
}
