//! Manifest input is total: any text gives documents or a typed error, never
//! a panic, and the same holds for sealing, opening and merging what was
//! read. Oracles: whatever seals opens again to the same bytes; whatever is
//! rendered parses again; `--merge-into` never changes an item it was not
//! given.
#![no_main]

use std::sync::OnceLock;

use gitseal_crypto::{Identity, Recipient};
use gitseal_manifest::input;
use gitseal_manifest::merge::{merge_into, MergeOptions};
use gitseal_manifest::open::{self, OpenOptions};
use gitseal_manifest::output::{self, Format};
use gitseal_manifest::seal::{self, Others, SealOptions};
use gitseal_manifest::secret::PlainSecret;
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

fn identity() -> &'static (Identity, Vec<Recipient>) {
    static ID: OnceLock<(Identity, Vec<Recipient>)> = OnceLock::new();
    ID.get_or_init(|| {
        let id = Identity::generate();
        let r = vec![id.recipient().clone()];
        (id, r)
    })
}

const ADD: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: fz}\nstringData: {zz-new: v}\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (id, recipients) = identity();
    let Ok(file) = input::parse_file(text, "fuzz") else {
        return;
    };
    let Ok(docs) = input::documents(&file) else {
        return;
    };

    // Seal with a namespace fallback; what seals opens to the same bytes.
    let opts = SealOptions {
        namespace: Some("fuzz"),
        others: Others::PassThrough,
        ..SealOptions::new(recipients)
    };
    for doc in &docs {
        let secret = PlainSecret::from_document(doc);
        let _ = format!("{secret:?}");
        if let Ok(secret) = secret {
            if let Ok(sealed) = seal::seal_secret(&secret, &doc.at, &opts) {
                let (back, _) = open::open_sealed(
                    &sealed,
                    &doc.at,
                    &OpenOptions::new(std::slice::from_ref(id)),
                )
                .expect("what seals opens");
                assert_eq!(back.items.len(), secret.items.len());
                for (k, v) in &secret.items {
                    assert_eq!(
                        back.items[k].expose_secret(),
                        v.expose_secret(),
                        "item round trip"
                    );
                }
            }
        }
        if doc.kind() == Some("SealedSecret") {
            if let Ok(sealed) = open::read_sealed(doc) {
                let _ = open::open_sealed(
                    &sealed,
                    &doc.at,
                    &OpenOptions::new(std::slice::from_ref(id)),
                );
            }
        }
    }
    if let Ok(out) = seal::seal_documents(&docs, &opts) {
        // YAML refuses only tags it cannot write back (typed, nothing written).
        match output::render(&out, Format::Yaml) {
            Ok(yaml) => {
                if out.iter().all(|d| d.raw.is_none()) {
                    input::parse(&yaml, "rendered").expect("rendered YAML parses");
                }
            }
            Err(gitseal_manifest::Error::Output(m)) => {
                assert!(m.contains("YAML tag"), "{m}")
            }
            Err(e) => panic!("unexpected YAML error: {e}"),
        }
        // JSON refuses only mapping keys it cannot hold (lists, mappings).
        match output::render(&out, Format::Json) {
            Ok(json) => {
                input::parse(&json, "rendered").expect("rendered JSON parses");
            }
            Err(gitseal_manifest::Error::Output(m)) => {
                assert!(m.contains("JSON cannot hold"), "{m}")
            }
            Err(e) => panic!("unexpected JSON error: {e}"),
        }
    }

    // Merge a new item into whatever SealedSecret named fz is there.
    let add = input::parse(ADD, "add").expect("fixed input");
    let mopts = MergeOptions {
        recipients,
        scope: None,
        namespace: Some("fuzz"),
        reseal_with: None,
        memory: None,
    };
    if let Ok(merged) = merge_into(&file, &add, &mopts) {
        let again = input::parse_file(&merged.text, "merged").expect("merged output parses");
        let before = input::documents(&file).expect("parsed before");
        let after = input::documents(&again).expect("parses after");
        for (b, a) in before.iter().zip(&after) {
            if let (Some(bm), Some(am)) = (
                b.value
                    .get("spec")
                    .and_then(|s| s.get("encryptedData"))
                    .and_then(|e| e.as_mapping()),
                a.value
                    .get("spec")
                    .and_then(|s| s.get("encryptedData"))
                    .and_then(|e| e.as_mapping()),
            ) {
                for (k, v) in bm {
                    if k.as_str() != Some("zz-new") {
                        assert_eq!(am.get(k), Some(v), "merge kept other items");
                    }
                }
            }
        }
    }
});
