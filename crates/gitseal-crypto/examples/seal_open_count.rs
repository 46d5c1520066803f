//! Seals N values of one object (one `Sealer`), then with `open` opens them
//! (one `Opener`): a fixed amount of work for counting instructions with
//! callgrind, where timings on a shared machine would be noise.
//!
//! ```sh
//! cargo build --release -p gitseal-crypto --example seal_open_count
//! valgrind --tool=callgrind target/release/examples/seal_open_count 201 open
//! ```
//! (Ir(201) − Ir(1)) / 200 is the cost of one value.

use gitseal_crypto::{Binding, Envelope, Identity, Opener, Scope, Sealer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let open = args.get(2).is_some_and(|a| a == "open");
    let identity = Identity::generate();
    let recipients = [identity.recipient().clone()];
    let bindings: Vec<Binding> = (0..n)
        .map(|i| Binding::new(Scope::Strict, "prod", "db", &format!("item-{i}")))
        .collect();
    let Ok(mut sealer) = Sealer::new(&recipients) else {
        std::process::exit(2);
    };
    let sealed: Vec<String> = bindings
        .iter()
        .filter_map(|b| sealer.seal(b"correct horse battery staple", b).ok())
        .map(|e| e.to_string())
        .collect();
    let mut opened = 0;
    if open {
        let identities = [identity];
        let mut opener = Opener::new(&identities);
        for (text, binding) in sealed.iter().zip(&bindings) {
            if let Ok(envelope) = Envelope::parse(text) {
                opened += usize::from(opener.open(&envelope, binding).is_ok());
            }
        }
    }
    std::process::exit(i32::from(sealed.len() != n || (open && opened != n)));
}
