//! Vault references come from SealedSecrets (`spec.vaultData`, the
//! structured form) and the command line (`seal --from-vault`, the text
//! form `[kv1:|kv2:]MOUNT/PATH#FIELD[@VERSION]`), and operators write path
//! templates (`--vault-path-template`). All three parsers are total: any
//! input gives a value or a typed error, never a panic.
//!
//! Input: lines; the first is a text reference, the second a path
//! template, the third a namespace; the whole input is also tried as a
//! structured (JSON) reference.
//!
//! Oracles: a parsed reference prints as text that parses back to itself
//! and serialises to JSON that deserialises to itself (both spellings
//! validate the same way); no path segment is empty, `.` or `..`; a
//! built-in mount (`sys`, `auth`, `identity`, `cubbyhole`) never parses;
//! refusals are `InvalidRef` / `Forbidden` / `InvalidPolicy` and hold no
//! control character; the default policy lets a namespace read only
//! references whose first path segment is exactly its name, and a
//! template's own check agrees with itself for the same input.
#![no_main]

use gitseal_vault::{Error, PathPolicy, VaultRef};
use libfuzzer_sys::fuzz_target;

const RESERVED: [&str; 4] = ["sys", "auth", "identity", "cubbyhole"];

fn accepted(r: &VaultRef) {
    let text = r.to_string();
    let again: VaultRef = text.parse().expect("own text form parses");
    assert_eq!(&again, r, "text round trip");
    let json = serde_json::to_string(r).expect("serialises");
    let back: VaultRef = serde_json::from_str(&json).expect("own JSON parses");
    assert_eq!(&back, r, "JSON round trip");
    assert!(
        !RESERVED.contains(&r.mount()),
        "built-in mount {}",
        r.mount()
    );
    for seg in std::iter::once(r.mount()).chain(r.path_segments()) {
        assert!(
            !seg.is_empty() && seg != "." && seg != "..",
            "segment {seg:?}"
        );
    }
    assert!(!r.field().is_empty());
}

fn refused(e: &Error) {
    assert!(
        matches!(
            e,
            Error::InvalidRef { .. } | Error::Forbidden { .. } | Error::InvalidPolicy { .. }
        ),
        "untyped refusal: {e}"
    );
    assert!(
        !e.to_string().chars().any(char::is_control),
        "control character in {e:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let reference = lines.next().unwrap_or_default();
    let template = lines.next();
    let namespace = lines.next().unwrap_or("shop");

    let parsed = match reference.parse::<VaultRef>() {
        Ok(r) => {
            accepted(&r);
            Some(r)
        }
        Err(e) => {
            refused(&e);
            None
        }
    };
    match serde_json::from_str::<VaultRef>(text) {
        Ok(r) => accepted(&r),
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    let Some(r) = parsed else {
        return;
    };
    match PathPolicy::default().check(namespace, &r) {
        Ok(()) => assert_eq!(
            r.path_segments().next(),
            Some(namespace),
            "the default policy let {namespace:?} read {r}"
        ),
        Err(e) => refused(&e),
    }
    if let Some(template) = template {
        match PathPolicy::from_templates([template]) {
            Ok(policy) => {
                let first = policy.check(namespace, &r);
                if let Err(e) = &first {
                    refused(e);
                }
                assert_eq!(first.is_ok(), policy.check(namespace, &r).is_ok());
            }
            Err(e) => refused(&e),
        }
    }
});
