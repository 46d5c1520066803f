//! Envelope parsing is total: any bytes or text give an envelope or a typed
//! error, never a panic; whatever parses re-encodes to the same bytes; and a
//! parsed envelope never opens for a key it was not sealed to.
#![no_main]

use gitseal_crypto::{Envelope, Identity};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(Identity::generate)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::from_bytes(data) {
        assert_eq!(env.to_bytes(), data, "canonical re-encoding");
        let text = env.to_string();
        let again = Envelope::parse(&text).expect("own text form parses");
        assert_eq!(again, env);
        let b = env.binding().clone();
        let _ = env.key_ids();
        let _ = format!("{env:?} {b}");
        // A random identity is not a recipient of fuzzer bytes.
        assert!(env.open(std::slice::from_ref(identity()), &b).is_err());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Envelope::parse(text);
        let _ = gitseal_crypto::is_sealed(text);
    }
});
