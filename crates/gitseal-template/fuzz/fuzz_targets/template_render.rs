//! Templates (`spec.template.data`) are written by anyone who may create a
//! SealedSecret, so checking and rendering them is total and bounded: any
//! template text, over fuzzer-chosen inputs, gives rendered items or a
//! typed [`Error`], never a panic, and stops at the fuel budget instead of
//! running on (libFuzzer's `-timeout` turns a runaway render into a crash).
//!
//! Input: NUL-separated parts; the first two are the templates of items
//! `out` and `url`, the third is the value of input `port`. The inputs
//! `user`, `password` and `tls.crt` hold fixed canary values.
//!
//! Oracles: a template `check` refuses makes `render` refuse, naming a
//! templated key; no error ever holds a canary value unless a template's
//! own text does (errors carry template text, never values); rendered
//! items are exactly the templated keys, their total size stays within
//! `max_output`; rendering twice gives the same bytes (the controller
//! must not rewrite a Secret on every reconcile); and `secret_data`
//! puts exactly the rendered bytes under the templated keys.
#![no_main]

use std::collections::BTreeMap;

use gitseal_template::{check, render, secret_data, Limits, Place, SaltKey};
use libfuzzer_sys::fuzz_target;
use secrecy::{ExposeSecret, SecretSlice};

const CANARIES: [(&str, &str); 3] = [
    ("user", "CANARYuser7c1Q"),
    ("password", "CANARYpass9f2Z"),
    ("tls.crt", "-----CANARYcrt-----\nCANARYline2x8K\n"),
];

fn limits() -> Limits {
    Limits {
        // Keep bcrypt (htpasswd) to a few hashes per input so exec/s stays
        // useful; every other bound is the controller's default.
        max_bcrypt_work: 1 << 6,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let mut templates = BTreeMap::new();
    templates.insert(
        "out".to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    if let Some(second) = parts.next() {
        templates.insert("url".to_string(), second.to_string());
    }
    let port = parts.next().unwrap_or("5432");
    let mut inputs: BTreeMap<String, SecretSlice<u8>> = CANARIES
        .iter()
        .map(|(k, v)| (k.to_string(), SecretSlice::from(v.as_bytes().to_vec())))
        .collect();
    inputs.insert("port".into(), SecretSlice::from(port.as_bytes().to_vec()));

    let place = Place {
        namespace: "shop",
        name: "db",
    };
    let salt = SaltKey::offline();
    let limits = limits();
    let checked: Vec<bool> = templates.iter().map(|(k, s)| check(k, s).is_ok()).collect();
    let result = render(&templates, &inputs, place, &salt, &limits);
    match &result {
        Ok(items) => {
            assert!(
                checked.iter().all(|ok| *ok),
                "a template check refuses rendered"
            );
            assert_eq!(
                items.keys().collect::<Vec<_>>(),
                templates.keys().collect::<Vec<_>>(),
                "one item per template"
            );
            let total: usize = items.values().map(|v| v.expose_secret().len()).sum();
            assert!(total <= limits.max_output, "output {total} over the bound");
            let again = render(&templates, &inputs, place, &salt, &limits)
                .expect("the same render succeeds again");
            for (k, v) in items {
                assert_eq!(
                    v.expose_secret(),
                    again[k].expose_secret(),
                    "deterministic {k}"
                );
            }
            let mut data = inputs.clone();
            secret_data(&templates, false, &mut data, place, &salt, &limits)
                .expect("secret_data renders what render rendered");
            for (k, v) in items {
                assert_eq!(
                    data[k].expose_secret(),
                    v.expose_secret(),
                    "secret_data {k}"
                );
            }
        }
        Err(e) => {
            assert!(
                templates.contains_key(e.key()),
                "error names key {:?}",
                e.key()
            );
            let message = e.to_string();
            let sources: String = templates.values().map(String::as_str).collect();
            for (_, canary) in CANARIES {
                for piece in canary.lines() {
                    if !sources.contains(piece) {
                        assert!(!message.contains(piece), "an error holds an input value");
                    }
                }
            }
        }
    }
});
