//! The published key list `gitseal fetch-key` reads (the controller's
//! `GET /v1/keys` answer, or its `gitseal-public-keys` ConfigMap) is total:
//! any text gives checked keys or an `Error::PublishedKeys`, never a panic.
//! Oracles: an accepted list has exactly one active key; every key's
//! published id was checked against its recipient, so re-publishing the
//! list as the controller does parses back to the same keys, and changing
//! one published key id makes the list refused; an accepted list written
//! into the example keyring leaves a keyring that loads again.
#![no_main]

use gitseal_manifest::keyring::{
    parse_published_configmap, parse_published_json, Keyring, Published, UpdateMode,
};
use gitseal_manifest::Error;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const EXAMPLE: &str = include_str!("../../../../keys.example");

fn example() -> &'static Keyring {
    static K: OnceLock<Keyring> = OnceLock::new();
    K.get_or_init(|| Keyring::from_yaml(EXAMPLE, "keys.example").expect("keys.example loads"))
}

/// The list as the controller publishes it (`PublicKeyInfo`, camelCase).
fn publish(keys: &[Published], tamper: Option<usize>) -> String {
    let items: Vec<serde_json::Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut id = k.recipient.key_id().to_string();
            if tamper == Some(i) {
                let last = if id.ends_with('0') { "1" } else { "0" };
                id.replace_range(id.len() - 1.., last);
            }
            serde_json::json!({
                "recipient": k.recipient.to_string(),
                "keyId": id,
                "active": k.active,
                "created": "2026-12-04T00:00:00Z",
            })
        })
        .collect();
    serde_json::to_string_pretty(&items).expect("json")
}

fn check(keys: &[Published]) {
    assert_eq!(
        keys.iter().filter(|k| k.active).count(),
        1,
        "one active key"
    );
    let again =
        parse_published_json(&publish(keys, None), "again").expect("republished list parses");
    assert_eq!(again, keys, "re-published list round trip");
    let tampered = keys.len() - 1;
    match parse_published_json(&publish(keys, Some(tampered)), "tampered") {
        Err(Error::PublishedKeys { message, .. }) => {
            assert!(message.contains("tampered"), "{message}")
        }
        other => panic!("a changed key id is not refused: {other:?}"),
    }
    let retired = example().retired_ids();
    for mode in [UpdateMode::Replace, UpdateMode::Add] {
        let mut keyring = example().clone();
        match keyring.apply_published("prod", keys, mode) {
            Ok(_) => {
                let back = Keyring::from_yaml(&keyring.to_yaml(), "written")
                    .expect("the keyring written after fetch-key loads");
                assert_eq!(back, keyring);
            }
            Err(e) => {
                let active = keys
                    .iter()
                    .find(|k| k.active)
                    .expect("active")
                    .recipient
                    .key_id();
                assert!(retired.contains(&active), "refused: {e}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for result in [
        parse_published_json(text, "keys.json"),
        parse_published_configmap(text, "configmap.yaml"),
    ] {
        match result {
            Ok(keys) => check(&keys),
            Err(e) => assert!(
                matches!(e, Error::PublishedKeys { .. }),
                "untyped refusal: {e}"
            ),
        }
    }
});
