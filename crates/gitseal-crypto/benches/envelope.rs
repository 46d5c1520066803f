//! Seal and open of one value, sealing a 50-item Secret with one `Sealer`,
//! and opening a 10-item Secret with one `Opener` (as the controller does).
//! `cargo bench -p gitseal-crypto --bench envelope`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gitseal_crypto::{seal, Binding, Envelope, Identity, Opener, Scope, Sealer};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let identity = Identity::generate();
    let recipients = [identity.recipient().clone()];
    let three = [
        identity.recipient().clone(),
        Identity::generate().recipient().clone(),
        Identity::generate().recipient().clone(),
    ];
    let binding = Binding::new(Scope::Strict, "prod", "db-credentials", "password");
    let value = b"correct horse battery staple 0123456789";

    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal/1 recipient", |b| {
        b.iter(|| seal(black_box(value), &recipients, &binding).expect("seal"))
    });
    g.bench_function("seal/3 recipients", |b| {
        b.iter(|| seal(black_box(value), &three, &binding).expect("seal"))
    });
    let sealed = seal(value, &recipients, &binding)
        .expect("seal")
        .to_string();
    g.bench_function("parse", |b| {
        b.iter(|| Envelope::parse(black_box(&sealed)).expect("parse"))
    });
    let envelope = Envelope::parse(&sealed).expect("parse");
    let ids = [identity.clone()];
    g.bench_function("open/1 recipient", |b| {
        b.iter(|| envelope.open(black_box(&ids), &binding).expect("open"))
    });
    // The floor: one X25519 scalar multiplication, which opening needs once.
    let peer = x25519_dalek::PublicKey::from(*identity.recipient().as_bytes());
    let secret = x25519_dalek::StaticSecret::random_from_rng(rand_core::OsRng);
    g.bench_function("x25519 reference", |b| {
        b.iter(|| secret.diffie_hellman(black_box(&peer)))
    });
    g.finish();

    let mut g = c.benchmark_group("secret-50-items");
    g.throughput(Throughput::Elements(50));
    let items: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| {
            (
                format!("ITEM_{i:02}"),
                format!("value-{i}-{}", "x".repeat(32)).into_bytes(),
            )
        })
        .collect();
    g.bench_function("seal 50 items", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut sealer = Sealer::new(&recipients).expect("sealer");
                for (k, v) in &items {
                    let binding = Binding::new(Scope::Strict, "prod", "app", k);
                    black_box(sealer.seal(v, &binding).expect("seal").to_string());
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // What the controller does per SealedSecret: parse and open every item
    // with one opener (one X25519 for the object). Throughput is per value.
    let mut g = c.benchmark_group("secret-10-items");
    g.throughput(Throughput::Elements(10));
    let mut sealer = Sealer::new(&recipients).expect("sealer");
    let object: Vec<(Binding, String)> = items[..10]
        .iter()
        .map(|(k, v)| {
            let binding = Binding::new(Scope::Strict, "prod", "app", k);
            let text = sealer.seal(v, &binding).expect("seal").to_string();
            (binding, text)
        })
        .collect();
    g.bench_function("parse and open 10 items", |b| {
        b.iter(|| {
            let mut opener = Opener::new(&ids);
            for (binding, text) in &object {
                let envelope = Envelope::parse(black_box(text)).expect("parse");
                black_box(opener.open(&envelope, binding).expect("open"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
