//! Throughput of the per-blob scan on generated repository-like text.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gitseal_scan::{Config, Scanner};

fn corpus() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..20_000 {
        s.push_str(&format!(
            "func handler{i}(w http.ResponseWriter, r *http.Request) {{\n\ttoken := r.Header.Get(\"Authorization\")\n\tif token == \"\" {{ return }}\n\turl := \"https://api.example.com/v1/items/{i}\"\n}}\n"
        ));
        s.push_str(&format!("replicaCount: {i}\nimage:\n  repository: nginx\n  tag: \"1.{i}\"\npassword: ${{DB_PASSWORD}}\n"));
    }
    s.into_bytes()
}

fn bench(c: &mut Criterion) {
    let data = corpus();
    let scanner = match Scanner::new(Config::default()) {
        Ok(s) => s,
        Err(e) => panic!("scanner: {e}"),
    };
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("scan_bytes", |b| {
        b.iter(|| scanner.scan_bytes("values.yaml", &data))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
