//! The keyring file (`.gitseal/keys.yaml`) is total: any text gives a
//! keyring or an `Error::Keyring`, never a panic. Oracles: a keyring that
//! loads writes back (`to_yaml`) to text that loads to the same keyring
//! (what `Keyring::save` relies on); choosing an environment by a
//! fuzzer-chosen path gives one of the keyring's environments or a typed
//! error; and writing a controller's published keys into an environment
//! (the first, the last, a new one)
//! with `fetch-key --write` / `--add` leaves a keyring that still loads, with
//! the active key among the environment's recipients, marked `controller`.
#![no_main]

use gitseal_crypto::Recipient;
use gitseal_manifest::keyring::{Keyring, Published, Reason, UpdateMode};
use gitseal_manifest::Error;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Two recipients of keys.example (prod's controller key and dev's): the
/// seeds use them, so the fuzzer reaches keyrings that already hold them.
fn published() -> &'static [Published] {
    static P: OnceLock<Vec<Published>> = OnceLock::new();
    P.get_or_init(|| {
        let r = |s: &str| s.parse::<Recipient>().expect("recipient of keys.example");
        vec![
            Published {
                recipient: r("age1da7t2ax4d6eramjas3hkk0823e40rnja6tqmmlejnev8ynqjyzvq0qmu0s"),
                active: true,
            },
            Published {
                recipient: r("age1qm7270v0hg07cwnfe4f5mngqlx7d67cjj2jxq2gtqj7448n7ys7q2qgjfg"),
                active: false,
            },
        ]
    })
}

fn reloads(keyring: &Keyring, what: &str) {
    let text = keyring.to_yaml();
    match Keyring::from_yaml(&text, "again") {
        Ok(again) => assert_eq!(&again, keyring, "{what}: keyring round trip"),
        Err(e) => panic!("{what}: the written keyring does not load: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keyring = match Keyring::from_yaml(text, "keys.yaml") {
        Ok(k) => k,
        Err(e) => {
            assert!(matches!(e, Error::Keyring { .. }), "untyped refusal: {e}");
            return;
        }
    };
    reloads(&keyring, "loaded");

    // Environment by path: the last line of the input doubles as a path.
    let path = text.lines().last().unwrap_or_default();
    for (name, p) in [(None, Some(path)), (None, None), (Some(path), None)] {
        match keyring.choose(name, p) {
            Ok(choice) => {
                assert!(keyring.environments.contains_key(choice.name));
                if let Reason::Path { glob, .. } = &choice.reason {
                    let rule = keyring.rule_for(path).expect("a path rule chose it");
                    assert_eq!(&rule.glob, glob);
                }
            }
            Err(e) => assert!(
                matches!(
                    e,
                    Error::NoEnvironment { .. } | Error::UnknownEnvironment { .. }
                ),
                "untyped refusal: {e}"
            ),
        }
    }
    let _ = (
        keyring.key_ids(),
        keyring.retired_ids(),
        keyring.verify_ignore(),
    );

    // fetch-key --write / --add into the first and the last environment
    // and a new one (every environment would reload the keyring, and so
    // compile its globs, twice per environment: the target's cost).
    let existing: Vec<&String> = keyring.environments.keys().collect();
    let mut names: Vec<String> = existing
        .first()
        .into_iter()
        .chain(existing.last().filter(|_| existing.len() > 1))
        .map(|s| s.to_string())
        .collect();
    names.push("fuzz-new".to_string());
    let active = published()[0].recipient.key_id();
    for name in &names {
        for mode in [UpdateMode::Replace, UpdateMode::Add] {
            let mut updated = keyring.clone();
            match updated.apply_published(name, published(), mode) {
                Ok(update) => {
                    assert_eq!(update.active.key_id(), active);
                    let env = &updated.environments[name];
                    assert!(
                        env.recipients
                            .iter()
                            .any(|e| e.key_id() == active
                                && (e.controller || mode == UpdateMode::Add)),
                        "active key written"
                    );
                    reloads(&updated, "after apply_published");
                }
                Err(e) => {
                    assert!(matches!(e, Error::Argument(_)), "untyped refusal: {e}");
                    assert!(keyring.retired_ids().contains(&active), "refused: {e}");
                }
            }
        }
    }
});
