//! One `Sealer` per object, one `Opener` per reconcile: shared
//! encapsulations, distinct wrapping keys, cached decapsulations.

use gitseal_crypto::{Binding, Envelope, Error, Identity, Opener, Recipient, Scope, Sealer};
use secrecy::ExposeSecret;

fn item(key: &str) -> Binding {
    Binding::new(Scope::Strict, "prod", "db", key)
}

/// The `enc` of each stanza: bytes after the header's binding and count.
fn encs(env: &Envelope) -> Vec<[u8; 32]> {
    let body = env.to_bytes();
    // scope, then len-prefixed namespace, name, item key (strict scope).
    let mut at = 1;
    for _ in 0..3 {
        at += 1 + usize::from(body[at]);
    }
    let count = usize::from(body[at]);
    at += 1;
    (0..count)
        .map(|i| {
            let start = at + i * 72 + 8;
            body[start..start + 32].try_into().expect("32 bytes")
        })
        .collect()
}

#[test]
fn values_of_one_object_share_one_encapsulation_and_open_with_one_decapsulation() {
    let ids = [Identity::generate(), Identity::generate()];
    let rs: Vec<Recipient> = ids.iter().map(|i| i.recipient().clone()).collect();
    let mut sealer = Sealer::new(&rs).expect("sealer");
    let items: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("key-{i}"), format!("value number {i}").into_bytes()))
        .collect();
    let sealed: Vec<Envelope> = items
        .iter()
        .map(|(k, v)| {
            let text = sealer.seal(v, &item(k)).expect("seal").to_string();
            Envelope::parse(&text).expect("parse")
        })
        .collect();

    // Same enc per recipient across all 50 values, different per recipient.
    let first = encs(&sealed[0]);
    assert_eq!(first.len(), 2);
    assert_ne!(first[0], first[1]);
    assert!(sealed.iter().all(|e| encs(e) == first));

    // Each identity opens every value with one X25519 operation.
    for id in &ids {
        let mut opener = Opener::new(std::slice::from_ref(id));
        for ((k, v), env) in items.iter().zip(&sealed) {
            let opened = opener.open(env, &item(k)).expect("open");
            assert_eq!(opened.expose_secret(), &v[..]);
        }
        assert_eq!(opener.decapsulations(), 1);
    }
}

#[test]
fn a_second_value_for_the_same_binding_is_refused_and_the_sealer_still_works() {
    let id = Identity::generate();
    let mut sealer = Sealer::new(&[id.recipient().clone()]).expect("sealer");
    let first = sealer.seal(b"one", &item("password")).expect("seal");
    let err = sealer.seal(b"two", &item("password")).expect_err("reused");
    assert!(matches!(err, Error::BindingReused), "{err}");
    assert_eq!(
        err.to_string(),
        "this sealer has already sealed a value for this binding; seal each item of an object once, with one sealer per object"
    );
    // The refused call changed nothing: the first value and new items open.
    let other = sealer.seal(b"three", &item("user")).expect("seal");
    let mut opener = Opener::new(std::slice::from_ref(&id));
    let a = opener.open(&first, &item("password")).expect("open");
    assert_eq!(a.expose_secret(), b"one");
    let b = opener.open(&other, &item("user")).expect("open");
    assert_eq!(b.expose_secret(), b"three");
}

#[test]
fn swapping_parts_between_values_of_one_object_is_refused() {
    let id = Identity::generate();
    let ids = [id];
    let mut sealer = Sealer::new(&[ids[0].recipient().clone()]).expect("sealer");
    let a = sealer.seal(b"alpha", &item("a")).expect("seal").to_bytes();
    let b = sealer.seal(b"bravo", &item("b")).expect("seal").to_bytes();
    // Both bindings have the same length, so the headers line up: 1 + (1+4)
    // + (1+2) + (1+1) + 1 + 72 = 84 bytes.
    let header = 84;
    let mut opener = Opener::new(&ids);

    // a's header (and wrapped key) with b's ciphertext, opened as a and as b.
    let mut mixed = a[..header].to_vec();
    mixed.extend_from_slice(&b[header..]);
    let mixed = Envelope::from_bytes(&mixed).expect("parse");
    assert!(matches!(
        opener.open(&mixed, &item("a")),
        Err(Error::DoesNotOpen)
    ));

    // b's value relabelled as a (header binding rewritten): refused, even
    // though a and b share the encapsulation.
    let mut moved = b.clone();
    let key_at = header - 73 - 1; // the item key's one byte
    moved[key_at] = b'a';
    let moved = Envelope::from_bytes(&moved).expect("parse");
    assert_eq!(moved.binding(), &item("a"));
    assert!(matches!(
        opener.open(&moved, &item("a")),
        Err(Error::DoesNotOpen)
    ));

    // a's wrapped key placed into b (same enc, so only the export context
    // tells them apart): refused.
    let mut grafted = b.clone();
    grafted[header - 32..header].copy_from_slice(&a[header - 32..header]);
    let grafted = Envelope::from_bytes(&grafted).expect("parse");
    assert!(matches!(
        opener.open(&grafted, &item("b")),
        Err(Error::DoesNotOpen)
    ));

    // The originals still open.
    let a = Envelope::from_bytes(&a).expect("parse");
    assert_eq!(
        opener.open(&a, &item("a")).expect("open").expose_secret(),
        b"alpha"
    );
}

#[test]
fn an_opener_tries_the_identity_the_value_names_and_bounds_its_memory() {
    let unrelated = Identity::generate();
    let holder = Identity::generate();
    let ids = [unrelated, holder];
    let mut opener = Opener::new(&ids);
    // 70 objects, each sealed by its own sealer: 70 encapsulations.
    for n in 0..70 {
        let mut sealer = Sealer::new(&[ids[1].recipient().clone()]).expect("sealer");
        let env = sealer.seal(b"v", &item(&format!("k{n}"))).expect("seal");
        let opened = opener.open(&env, &item(&format!("k{n}"))).expect("open");
        assert_eq!(opened.expose_secret(), b"v");
    }
    // Never more than 64 remembered; the unrelated key was never tried.
    assert_eq!(opener.decapsulations(), 64);

    // A value for a key the opener does not hold: UnknownKey, no X25519.
    let stranger = Identity::generate();
    let env = Sealer::new(&[stranger.recipient().clone()])
        .expect("sealer")
        .seal(b"v", &item("x"))
        .expect("seal");
    match opener.open(&env, &item("x")) {
        Err(Error::UnknownKey { sealed_to }) => assert_eq!(sealed_to, vec![stranger.key_id()]),
        other => panic!("expected UnknownKey, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_low_order_enc_is_refused_every_time() {
    let id = Identity::generate();
    let ids = [id];
    let env = gitseal_crypto::seal(b"v", &[ids[0].recipient().clone()], &item("k")).expect("seal");
    let mut body = env.to_bytes();
    // enc sits after the 1+5+3+2 = 11-byte binding, the count and the key id.
    let enc_at = 11 + 1 + 8;
    body[enc_at..enc_at + 32].fill(0); // the all-zero point: low order
    let bad = Envelope::from_bytes(&body).expect("parse");
    let mut opener = Opener::new(&ids);
    for _ in 0..2 {
        assert!(matches!(
            opener.open(&bad, &item("k")),
            Err(Error::DoesNotOpen)
        ));
    }
    assert_eq!(opener.decapsulations(), 1);
}
