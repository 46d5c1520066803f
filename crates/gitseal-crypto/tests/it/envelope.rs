//! The envelope: round trips, tampering, binding, parsing and size.

use base64::Engine as _;
use gitseal_crypto::{is_sealed, seal, Binding, Envelope, Error, Identity, Recipient, Scope};
use proptest::prelude::*;
use secrecy::ExposeSecret;

fn keys(n: usize) -> (Vec<Identity>, Vec<Recipient>) {
    let ids: Vec<Identity> = (0..n).map(|_| Identity::generate()).collect();
    let rs = ids.iter().map(|i| i.recipient().clone()).collect();
    (ids, rs)
}

fn strict() -> Binding {
    Binding::new(Scope::Strict, "prod", "db", "password")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_one_recipient(value in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (ids, rs) = keys(1);
        let text = seal(&value, &rs, &strict()).expect("seal").to_string();
        prop_assert!(text.starts_with("gs1:"));
        let env = Envelope::parse(&text).expect("parse");
        let opened = env.open(&ids, &strict()).expect("open");
        prop_assert_eq!(opened.expose_secret(), &value[..]);
        prop_assert_eq!(env.plaintext_len(), value.len());
    }

    #[test]
    fn round_trip_three_recipients_each_opens(value in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (ids, rs) = keys(3);
        let env = Envelope::parse(&seal(&value, &rs, &strict()).expect("seal").to_string()).expect("parse");
        prop_assert_eq!(env.key_ids(), rs.iter().map(Recipient::key_id).collect::<Vec<_>>());
        for id in &ids {
            let opened = env.open(std::slice::from_ref(id), &strict()).expect("open");
            prop_assert_eq!(opened.expose_secret(), &value[..]);
        }
    }

    /// Parsing is total: arbitrary bytes and text give a value or an error.
    #[test]
    fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..400), text in ".{0,200}") {
        let _ = Envelope::from_bytes(&body);
        let _ = Envelope::parse(&text);
        let b64 = format!("gs1:{}", base64::engine::general_purpose::STANDARD.encode(&body));
        if let Ok(env) = Envelope::parse(&b64) {
            // Whatever parses re-encodes to the same bytes (canonical form).
            prop_assert_eq!(env.to_bytes(), body);
        }
    }
}

#[test]
fn every_single_byte_change_is_refused() {
    let (ids, rs) = keys(2);
    let binding = strict();
    let body = seal(b"s3cr3t value", &rs, &binding)
        .expect("seal")
        .to_bytes();
    let mut checked = 0;
    for pos in 0..body.len() {
        for delta in 1..=255u8 {
            let mut tampered = body.clone();
            tampered[pos] ^= delta;
            // Either it no longer parses, or it parses and refuses to open for every holder.
            if let Ok(env) = Envelope::from_bytes(&tampered) {
                for id in &ids {
                    assert!(
                        env.open(std::slice::from_ref(id), &binding).is_err(),
                        "byte {pos} ^ {delta:#04x} still opens"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, body.len() * 255);
    // Truncation and extension are refused too.
    for len in 0..body.len() {
        if let Ok(env) = Envelope::from_bytes(&body[..len]) {
            assert!(
                env.open(&ids, &binding).is_err(),
                "truncated to {len} opens"
            );
        }
    }
    let mut longer = body.clone();
    longer.push(0);
    assert!(Envelope::from_bytes(&longer)
        .expect("parses")
        .open(&ids, &binding)
        .is_err());
}

#[test]
fn every_single_character_change_of_the_text_is_refused() {
    let (ids, rs) = keys(1);
    let text = seal(b"v", &rs, &strict()).expect("seal").to_string();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    for pos in 0..text.len() {
        for &c in alphabet {
            if text.as_bytes()[pos] == c {
                continue;
            }
            let mut t = text.clone().into_bytes();
            t[pos] = c;
            let t = String::from_utf8(t).expect("ascii");
            if let Ok(env) = Envelope::parse(&t) {
                assert!(env.open(&ids, &strict()).is_err(), "{pos}:{c} still opens");
            }
        }
    }
}

/// Moving a value to another item key is refused in every scope; another
/// name or namespace is refused exactly as the scope says.
#[test]
fn binding_is_enforced_per_scope() {
    let (ids, rs) = keys(1);
    for scope in [Scope::Strict, Scope::Namespace, Scope::Cluster] {
        let here = Binding::new(scope, "prod", "db", "password");
        let env = seal(b"v", &rs, &here).expect("seal");
        assert_eq!(
            env.open(&ids, &here)
                .expect("opens in place")
                .expose_secret(),
            b"v"
        );

        let other_key = Binding::new(scope, "prod", "db", "username");
        assert!(
            matches!(env.open(&ids, &other_key), Err(Error::DoesNotOpen)),
            "{scope}: other item key"
        );

        let other_name = Binding::new(scope, "prod", "cache", "password");
        let other_ns = Binding::new(scope, "staging", "db", "password");
        match scope {
            Scope::Strict => {
                assert!(matches!(
                    env.open(&ids, &other_name),
                    Err(Error::DoesNotOpen)
                ));
                assert!(matches!(env.open(&ids, &other_ns), Err(Error::DoesNotOpen)));
            }
            Scope::Namespace => {
                assert!(
                    env.open(&ids, &other_name).is_ok(),
                    "namespace scope: any name"
                );
                assert!(matches!(env.open(&ids, &other_ns), Err(Error::DoesNotOpen)));
            }
            Scope::Cluster => {
                assert!(
                    env.open(&ids, &other_name).is_ok(),
                    "cluster scope: any name"
                );
                assert!(
                    env.open(&ids, &other_ns).is_ok(),
                    "cluster scope: any namespace"
                );
            }
        }
        // Claiming a wider scope than was sealed is refused.
        if scope != Scope::Cluster {
            let wider = Binding::new(Scope::Cluster, "prod", "db", "password");
            assert!(
                matches!(env.open(&ids, &wider), Err(Error::DoesNotOpen)),
                "{scope} opened as cluster"
            );
        }
    }
}

#[test]
fn forged_clear_binding_is_refused() {
    // Re-encode the envelope with a header binding that claims another place:
    // it must not open there, nor in the original place.
    let (ids, rs) = keys(1);
    let here = strict();
    let env = seal(b"v", &rs, &here).expect("seal");
    let body = env.to_bytes();
    let text = String::from_utf8_lossy(&body).replace("prod", "test");
    let forged_body: Vec<u8> = {
        let mut b = body.clone();
        let at = body
            .windows(4)
            .position(|w| w == b"prod")
            .expect("namespace in header");
        b[at..at + 4].copy_from_slice(b"test");
        b
    };
    let _ = text;
    let forged = Envelope::from_bytes(&forged_body).expect("parses");
    assert_eq!(forged.binding().namespace(), Some("test"));
    assert!(forged
        .open(&ids, &Binding::new(Scope::Strict, "test", "db", "password"))
        .is_err());
    assert!(forged.open(&ids, &here).is_err());
}

#[test]
fn header_is_readable_without_a_key() {
    let (_, rs) = keys(2);
    let b = Binding::new(Scope::Namespace, "team-a", "ignored-name", "token");
    let env = Envelope::parse(&seal(b"v", &rs, &b).expect("seal").to_string()).expect("parse");
    assert_eq!(env.binding().scope(), Scope::Namespace);
    assert_eq!(env.binding().namespace(), Some("team-a"));
    assert_eq!(
        env.binding().name(),
        None,
        "namespace scope does not bind the name"
    );
    assert_eq!(env.binding().key(), "token");
    assert_eq!(env.key_ids(), vec![rs[0].key_id(), rs[1].key_id()]);
    assert_eq!(
        env.binding().to_string(),
        "namespace \"team-a\", item \"token\" (namespace scope)"
    );
}

#[test]
fn unknown_key_names_the_key_ids() {
    let (_, rs) = keys(1);
    let (others, _) = keys(1);
    let env = seal(b"v", &rs, &strict()).expect("seal");
    match env.open(&others, &strict()) {
        Err(Error::UnknownKey { sealed_to }) => assert_eq!(sealed_to, vec![rs[0].key_id()]),
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    let msg = env
        .open(&others, &strict())
        .expect_err("unknown")
        .to_string();
    assert!(msg.contains(&rs[0].key_id().to_string()), "{msg}");
    assert!(env.open(&[], &strict()).is_err());
}

#[test]
fn seal_errors() {
    assert!(matches!(
        seal(b"v", &[], &strict()),
        Err(Error::NoRecipients)
    ));
    let (_, rs) = keys(1);
    let many = vec![rs[0].clone(); 3];
    assert_eq!(
        seal(b"v", &many, &strict()).expect("dedup").key_ids().len(),
        1,
        "duplicates sealed once"
    );
    let too_many: Vec<Recipient> = keys(65).1;
    assert!(matches!(
        seal(b"v", &too_many, &strict()),
        Err(Error::TooManyRecipients { max: 64 })
    ));
    let empty_key = Binding::new(Scope::Strict, "prod", "db", "");
    assert!(matches!(
        seal(b"v", &rs, &empty_key),
        Err(Error::InvalidBinding {
            field: "item key",
            ..
        })
    ));
    let empty_ns = Binding::new(Scope::Namespace, "", "db", "k");
    assert!(matches!(
        seal(b"v", &rs, &empty_ns),
        Err(Error::InvalidBinding {
            field: "namespace",
            ..
        })
    ));
    // Cluster scope needs no namespace.
    assert!(seal(b"v", &rs, &Binding::new(Scope::Cluster, "", "", "k")).is_ok());
    let long = "x".repeat(256);
    assert!(matches!(
        seal(b"v", &rs, &Binding::new(Scope::Strict, "ns", &long, "k")),
        Err(Error::InvalidBinding { field: "name", .. })
    ));
    let low_order = Recipient::from_bytes([0u8; 32]);
    assert!(matches!(
        seal(b"v", &[low_order], &strict()),
        Err(Error::InvalidRecipient { .. })
    ));
}

#[test]
fn parse_errors_are_typed() {
    assert!(matches!(Envelope::parse("hunter2"), Err(Error::NotSealed)));
    assert!(matches!(Envelope::parse("gs2:AAAA"), Err(Error::UnsupportedVersion(v)) if v == "gs2"));
    assert!(matches!(
        Envelope::parse("gs1:***"),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        Envelope::parse("gs1:"),
        Err(Error::Malformed("empty"))
    ));
    assert!(matches!(
        Envelope::from_bytes(&[9]),
        Err(Error::Malformed("unknown scope byte"))
    ));
    assert!(matches!(
        Envelope::from_bytes(&[2, 1, b'k', 0]),
        Err(Error::Malformed("no recipients"))
    ));
    assert!(matches!(
        Envelope::from_bytes(&[2, 0]),
        Err(Error::Malformed("empty binding field"))
    ));
    assert!(matches!(
        Envelope::from_bytes(&[2, 1, 0xff, 1]),
        Err(Error::Malformed("binding field is not UTF-8"))
    ));
    // Surrounding whitespace (YAML block scalars) is fine.
    let (ids, rs) = keys(1);
    let text = seal(b"v", &rs, &strict()).expect("seal").to_string();
    assert!(Envelope::parse(&format!("  {text}\n"))
        .expect("parse")
        .open(&ids, &strict())
        .is_ok());
}

#[test]
fn is_sealed_tells_sealed_from_plaintext() {
    assert!(is_sealed("gs1:AAAA"));
    assert!(is_sealed("gs12:AAAA"));
    assert!(!is_sealed("gs:AAAA"));
    assert!(!is_sealed("password"));
    assert!(!is_sealed("gsx:1"));
}

#[test]
fn one_recipient_overhead() {
    let (_, rs) = keys(1);
    let b = strict();
    let binding_text = "prod".len() + "db".len() + "password".len();
    for len in [0usize, 1, 32, 1000] {
        let env = seal(&vec![7u8; len], &rs, &b).expect("seal");
        let overhead = env.to_bytes().len() - len;
        assert_eq!(
            overhead - binding_text,
            93,
            "fixed overhead for one recipient"
        );
        let three = seal(&vec![7u8; len], &keys(3).1, &b).expect("seal");
        assert_eq!(
            three.to_bytes().len() - env.to_bytes().len(),
            2 * 72,
            "each extra recipient costs 72 bytes"
        );
    }
}

#[test]
fn sealing_twice_differs() {
    let (_, rs) = keys(1);
    let a = seal(b"v", &rs, &strict()).expect("seal").to_string();
    let b = seal(b"v", &rs, &strict()).expect("seal").to_string();
    assert_ne!(a, b, "fresh data key and ephemeral key every time");
}

#[test]
fn debug_of_envelope_and_plaintext_hides_value() {
    let (ids, rs) = keys(1);
    let env = seal(b"TOPSECRETVALUE", &rs, &strict()).expect("seal");
    let opened = env.open(&ids, &strict()).expect("open");
    let dbg = format!("{env:?} {opened:?}");
    assert!(!dbg.contains("TOPSECRETVALUE"), "{dbg}");
}
