//! Property tests: any bytes round trip; any text input gives a value or a
//! typed error, never a panic.

use proptest::prelude::*;

use base64::Engine as _;
use gitseal_manifest::input;

use crate::support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn binary_values_round_trip(values in proptest::collection::btree_map("[a-zA-Z0-9._-]{1,20}", proptest::collection::vec(any::<u8>(), 0..300), 0..6),
                                 text in "\\PC{0,40}") {
        let key = key();
        let mut secret = String::from("apiVersion: v1\nkind: Secret\nmetadata: {name: p, namespace: q}\ndata:\n");
        for (k, v) in &values {
            secret.push_str(&format!("  \"{k}\": \"{}\"\n", base64::engine::general_purpose::STANDARD.encode(v)));
        }
        secret.push_str(&format!("stringData:\n  zz-text: {}\n", serde_json::to_string(&text).expect("json string")));
        let sealed = seal_strict(&secret, &key).expect("seals");
        let opened = open_text(&sealed, &key, "s").expect("opens");
        for (k, v) in &values {
            prop_assert_eq!(&data_item(&opened, 0, k), v);
        }
        prop_assert_eq!(data_item(&opened, 0, "zz-text"), text.as_bytes());
    }

    #[test]
    fn any_text_parses_or_errors(text in "\\PC{0,200}") {
        let _ = input::parse(&text, "fuzz");
    }

    #[test]
    fn secret_like_text_seals_or_errors(body in "[ -~\\n]{0,120}") {
        let key = key();
        let text = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: a, namespace: b}}\n{body}");
        let _ = seal_strict(&text, &key);
    }
}
