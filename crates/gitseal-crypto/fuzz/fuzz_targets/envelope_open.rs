//! Tampering with sealed values never opens: the fuzzer edits the bytes of
//! two values sealed together (one `Sealer`, so they share an encapsulation)
//! and one `Opener` — kept across runs, so its decapsulation cache is
//! exercised too — must refuse every changed envelope and open every
//! unchanged one to its own value.
//!
//! Input: pairs of bytes (position, xor mask) applied to the body of the
//! value chosen by the first byte, then the (possibly changed) body is
//! opened at the chosen binding.
#![no_main]

use gitseal_crypto::{Binding, Envelope, Identity, Opener, Scope, Sealer};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

struct Fixture {
    identities: [Identity; 1],
    values: [(Binding, &'static [u8], Vec<u8>); 2],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let id = Identity::generate();
        let mut sealer = Sealer::new(&[id.recipient().clone()]).expect("sealer");
        let mut one = |key: &str, value: &'static [u8]| {
            let b = Binding::new(Scope::Strict, "prod", "db", key);
            let body = sealer.seal(value, &b).expect("seal").to_bytes();
            (b, value, body)
        };
        let values = [one("user", b"admin"), one("password", b"hunter2")];
        Fixture {
            identities: [id],
            values,
        }
    })
}

fn opener() -> &'static Mutex<Opener<'static>> {
    static O: OnceLock<Mutex<Opener<'static>>> = OnceLock::new();
    O.get_or_init(|| Mutex::new(Opener::new(&fixture().identities)))
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&which, edits)) = data.split_first() else {
        return;
    };
    let (binding, value, original) = &f.values[usize::from(which & 1)];
    // Opened where the *other* value sits, too: must never open.
    let elsewhere = &f.values[usize::from(!which & 1)].0;
    let mut body = original.clone();
    for pair in edits.chunks_exact(2) {
        let pos = usize::from(pair[0]) % body.len();
        body[pos] ^= pair[1];
    }
    let Ok(mut opener) = opener().lock() else {
        return;
    };
    let Ok(env) = Envelope::from_bytes(&body) else {
        return;
    };
    let here = opener.open(&env, binding);
    if body == *original {
        let opened = here.expect("an unchanged value opens");
        assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), *value);
    } else {
        assert!(here.is_err(), "a changed value opened");
    }
    assert!(opener.open(&env, elsewhere).is_err(), "opened at the wrong item");
});
