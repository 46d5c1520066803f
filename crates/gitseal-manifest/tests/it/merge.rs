//! `--merge-into`: only the given items change; everything else stays byte
//! for byte.

use gitseal_crypto::Scope;
use gitseal_manifest::input;
use gitseal_manifest::merge::{merge_into, MergeOptions};

use crate::support::*;

fn target(key: &Key) -> String {
    let db = seal_strict(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\ntype: Opaque\nstringData: {a: one, c: three, e: five}\n",
        key,
    )
    .expect("seals");
    let api = seal_strict("apiVersion: v1\nkind: Secret\nmetadata: {name: api, namespace: prod}\nstringData: {t: tok}\n", key)
        .expect("seals");
    format!("# Sealed secrets of prod.\napiVersion: v1\nkind: ConfigMap\nmetadata:   {{name: cfg}}   # odd spacing\n---\n# the db\n{db}---\n{api}")
}

fn merge(
    key: &Key,
    file_text: &str,
    secret: &str,
    scope: Option<Scope>,
) -> Result<gitseal_manifest::merge::Merged, gitseal_manifest::Error> {
    let file = input::parse_file(file_text, "sealed.yaml")?;
    let secrets = input::parse(secret, "new.yaml")?;
    merge_into(
        &file,
        &secrets,
        &MergeOptions {
            recipients: &key.recipients,
            scope,
            namespace: None,
            reseal_with: None,
            memory: None,
        },
    )
}

fn value_of(text: &str, doc: usize, item: &str) -> String {
    let docs = input::parse(text, "t").expect("parse");
    docs[doc].value["spec"]["encryptedData"][item]
        .as_str()
        .expect("item")
        .to_string()
}

#[test]
fn adds_and_replaces_only_the_given_items() {
    let key = key();
    let before = target(&key);
    let merged = merge(
        &key,
        &before,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {c: THREE, d: four}\n",
        None,
    )
    .expect("merges");
    let after = &merged.text;
    assert_eq!(
        merged.changes,
        [
            "replaced item \"c\" in prod/db",
            "added item \"d\" to prod/db"
        ]
    );

    // Untouched ciphertexts are byte-identical; the changed one is new.
    for item in ["a", "e"] {
        assert_eq!(
            value_of(&before, 1, item),
            value_of(after, 1, item),
            "item {item} unchanged"
        );
    }
    assert_ne!(value_of(&before, 1, "c"), value_of(after, 1, "c"));
    // Other documents are byte for byte the same, and so is the comment before the db document.
    let cm_end = before.find("---\n# the db\n").expect("marker") + "---\n# the db\n".len();
    assert_eq!(&after[..cm_end], &before[..cm_end]);
    let api_start = before.rfind("---\n").expect("last marker");
    let api_start_after = after.rfind("---\n").expect("last marker");
    assert_eq!(&after[api_start_after..], &before[api_start..]);

    // The diff is exactly the replaced line and the added one.
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    assert_eq!(new.len(), old.len() + 1);
    let removed: Vec<&&str> = old.iter().filter(|l| !new.contains(l)).collect();
    let added: Vec<&&str> = new.iter().filter(|l| !old.contains(l)).collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(removed[0].trim_start().starts_with("c: gs1:"));
    assert_eq!(added.len(), 2, "{added:?}");
    // Sorted keys stay sorted: d goes between c and e.
    let keys: Vec<String> = input::parse(after, "t").expect("parse")[1].value["spec"]
        ["encryptedData"]
        .as_mapping()
        .expect("map")
        .keys()
        .map(|k| k.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(keys, ["a", "c", "d", "e"]);

    let opened = open_text(
        &after
            .split("---\n")
            .skip(1)
            .collect::<Vec<_>>()
            .join("---\n"),
        &key,
        "m",
    )
    .expect("opens");
    assert_eq!(data_item(&opened, 0, "a"), b"one");
    assert_eq!(data_item(&opened, 0, "c"), b"THREE");
    assert_eq!(data_item(&opened, 0, "d"), b"four");
    assert!(opened.contains("type: Opaque"), "template kept: {opened}");
}

#[test]
fn a_secret_without_name_goes_into_the_only_sealed_secret() {
    let key = key();
    let only = seal_strict("apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {a: one}\n", &key)
        .expect("seals");
    let merged = merge(
        &key,
        &only,
        "apiVersion: v1\nkind: Secret\nstringData: {b: two}\n",
        None,
    )
    .expect("merges");
    let opened = open_text(&merged.text, &key, "m").expect("opens");
    assert_eq!(data_item(&opened, 0, "b"), b"two");

    let err = merge(
        &key,
        &target(&key),
        "apiVersion: v1\nkind: Secret\nstringData: {b: two}\n",
        None,
    )
    .expect_err("ambiguous");
    assert!(
        err.to_string()
            .contains("matches several SealedSecrets in sealed.yaml (prod/db, prod/api)"),
        "{err}"
    );
}

#[test]
fn merge_errors() {
    let key = key();
    let t = target(&key);
    let err = merge(
        &key,
        &t,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: nope}\nstringData: {b: two}\n",
        None,
    )
    .expect_err("no such");
    assert_eq!(
        err.to_string(),
        "new.yaml, document 1 (line 1): no SealedSecret nope in sealed.yaml (it has: prod/db, prod/api); \
         check metadata.name and metadata.namespace"
    );
    let err = merge(&key, &t, "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: dev}\nstringData: {b: two}\n", None)
        .expect_err("other ns");
    assert!(err.to_string().contains("no SealedSecret dev/db"), "{err}");
    let err = merge(
        &key,
        &t,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {b: two}\n",
        Some(Scope::Cluster),
    )
    .expect_err("scope");
    assert!(
        err.to_string()
            .contains("--scope cluster differs from the scope of prod/db (strict)"),
        "{err}"
    );
    let err = merge(
        &key,
        &t,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: db}\n",
        None,
    )
    .expect_err("kind");
    assert!(
        err.to_string()
            .contains("is a ConfigMap, not a Secret; --merge-into takes Secrets"),
        "{err}"
    );
    let err = merge(
        &key,
        "apiVersion: v1\nkind: ConfigMap\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n",
        None,
    )
    .expect_err("no target");
    assert!(
        err.to_string()
            .contains("sealed.yaml, document 1: holds no SealedSecret to merge into"),
        "{err}"
    );
    let err = merge(
        &key,
        &t,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {b: \"not base64!\"}\n",
        None,
    )
    .expect_err("bad input");
    assert!(
        err.to_string()
            .contains("item \"b\": data value is not valid base64"),
        "{err}"
    );
}

#[test]
fn json_target_and_vault_item_replaced() {
    let key = key();
    let json = seal_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {a: one}\n",
        &key,
        Scope::Strict,
        None,
        gitseal_manifest::output::Format::Json,
    )
    .expect("seals");
    let with_vault = json.replace(
        "\"spec\": {",
        "\"spec\": {\n    \"vaultData\": {\"b\": {\"mount\": \"secret\", \"path\": \"prod/db\", \"field\": \"b\"}},",
    );
    let merged = merge(
        &key,
        &with_vault,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {b: two}\n",
        None,
    )
    .expect("merges");
    assert!(
        merged.changes[0].contains("item \"b\" of prod/db was a Vault reference; now sealed"),
        "{:?}",
        merged.changes
    );
    let v: serde_json::Value = serde_json::from_str(&merged.text).expect("still JSON");
    assert!(v["spec"].get("vaultData").is_none(), "{}", merged.text);
    assert_eq!(value_of(&merged.text, 0, "a"), value_of(&json, 0, "a"));
    let opened = open_text(&merged.text, &key, "m.json").expect("opens");
    assert_eq!(data_item(&opened, 0, "b"), b"two");
}

/// A hand-edited SealedSecret: comments between items and in the template,
/// quoted keys, a trailing comment after the last item.
fn commented(key: &Key) -> String {
    let sealed = seal_strict(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {a: one, c: three, e: five}\n",
        key,
    )
    .expect("seals");
    let v = |item: &str| value_of(&sealed, 0, item);
    format!(
        "# db credentials, owned by team-data\n\
         apiVersion: gitseal.dev/v1alpha1\n\
         kind: SealedSecret\n\
         metadata:\n  name: db   # keep in sync with the chart\n  namespace: prod\n\
         spec:\n\
         \x20 # rotated quarterly\n\
         \x20 encryptedData:\n\
         \x20   # the admin user\n\
         \x20   a: {a}\n\
         \x20   \"c\": '{c}'   # quoted on purpose\n\
         \x20   # read-only replica\n\
         \x20   e: {e}\n\
         \x20   # end of items\n\
         \x20 template:\n    type: Opaque   # the default\n",
        a = v("a"),
        c = v("c"),
        e = v("e"),
    )
}

#[test]
fn comments_and_quoting_inside_the_changed_document_survive() {
    let key = key();
    let before = commented(&key);
    let merged = merge(
        &key,
        &before,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {c: THREE, b: two, z: last}\n",
        None,
    )
    .expect("merges");
    let after = &merged.text;

    // Every line of the original is still there except the replaced value's,
    // which keeps its quoting and its comment; b and z are one line each.
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let removed: Vec<&str> = old.iter().copied().filter(|l| !new.contains(l)).collect();
    let added: Vec<&str> = new.iter().copied().filter(|l| !old.contains(l)).collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(removed[0].starts_with("    \"c\": 'gs1:"), "{removed:?}");
    assert_eq!(added.len(), 3, "{added:?}");
    assert!(
        added[0].starts_with("    b: gs1:") || added[0].starts_with("    b: 'gs1:"),
        "{added:?}"
    );
    assert!(
        added[1].starts_with("    \"c\": 'gs1:") && added[1].ends_with("'   # quoted on purpose")
    );
    assert!(added[2].starts_with("    z: "), "{added:?}");
    // b sits before the comment that leads the entry it precedes (c); z
    // after the last item, before the trailing comment of the block.
    let pos = |prefix: &str| {
        new.iter()
            .position(|l| l.starts_with(prefix))
            .expect(prefix)
    };
    assert!(pos("    a: ") < pos("    b: ") && pos("    b: ") < pos("    \"c\": "));
    assert!(pos("    e: ") < pos("    z: ") && pos("    z: ") < pos("    # end of items"));

    let opened = open_text(after, &key, "m").expect("opens");
    for (item, want) in [
        ("a", &b"one"[..]),
        ("b", b"two"),
        ("c", b"THREE"),
        ("e", b"five"),
        ("z", b"last"),
    ] {
        assert_eq!(data_item(&opened, 0, item), want, "item {item}");
    }
}

#[test]
fn a_layout_the_patcher_does_not_know_is_rewritten_correctly() {
    // Flow-style encryptedData: a new item cannot be given a line of its
    // own, so the document is rendered again (values still exact).
    let key = key();
    let sealed = seal_strict(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {a: one}\n",
        &key,
    )
    .expect("seals");
    let flow = format!(
        "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec:\n  encryptedData: {{a: '{}'}}\n",
        value_of(&sealed, 0, "a")
    );
    let merged = merge(
        &key,
        &flow,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {b: two}\n",
        None,
    )
    .expect("merges");
    assert_eq!(value_of(&merged.text, 0, "a"), value_of(&sealed, 0, "a"));
    let opened = open_text(&merged.text, &key, "m").expect("opens");
    assert_eq!(data_item(&opened, 0, "a"), b"one");
    assert_eq!(data_item(&opened, 0, "b"), b"two");
}

#[test]
fn a_tagged_key_in_the_target_is_written_so_that_it_reads_back() {
    // Found by the manifest_input fuzz target: a key with YAML's
    // non-specific tag (`! encryptedData:`) made the re-rendered document
    // unreadable ("did not find expected tag URI").
    let key = key();
    let sealed = seal_strict(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {a: one}\n",
        &key,
    )
    .expect("seals");
    let text = format!(
        "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec:\n! encryptedData:\n     a: '{}'\n",
        value_of(&sealed, 0, "a")
    );
    let merged = merge(
        &key,
        &text,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {b: two}\n",
        None,
    );
    // The tag cannot be written back: refused, nothing written.
    match merged {
        Err(gitseal_manifest::Error::Output(m)) => {
            assert!(m.contains("YAML tag"), "{m}")
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(m) => panic!("wrote a document with an unwritable tag:\n{}", m.text),
    }
    // A tag YAML can write is kept, and the output reads back.
    let named = text.replace("! encryptedData", "!keep other");
    let merged = merge(
        &key,
        &named,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {b: two}\n",
        None,
    )
    .expect("merges");
    let docs = input::parse(&merged.text, "merged").expect("merged output parses");
    assert!(merged.text.contains("!keep other"), "{}", merged.text);
    assert_eq!(docs.len(), 1);
    let opened = open_text(&merged.text, &key, "m").expect("opens");
    assert_eq!(data_item(&opened, 0, "b"), b"two");
}
