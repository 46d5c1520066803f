//! What templated items cost per object: rendering the examples of
//! docs/templates.md (a DATABASE_URL, a config.yaml, a .dockerconfigjson
//! and a trimmed token) from ten inputs, checking templates alone, and one
//! htpasswd line at cost 10 (bcrypt dominates when used).
//!
//! Run: `cargo bench -p gitseal-template --bench render`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gitseal_template::{check, secret_data, Limits, Place, SaltKey};
use secrecy::SecretSlice;

fn inputs() -> BTreeMap<String, SecretSlice<u8>> {
    (0..10)
        .map(|i| {
            (
                format!("ITEM_{i}"),
                SecretSlice::from(format!("value-{i}-p@ss/w#rd-0123456789abcdef").into_bytes()),
            )
        })
        .collect()
}

fn templates() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "DATABASE_URL".to_string(),
            "postgres://{{ ITEM_0 }}:{{ ITEM_1 | urlencode }}@db:5432/app".to_string(),
        ),
        (
            "config.yaml".to_string(),
            "database:\n  user: {{ ITEM_0 | yaml }}\n  password: {{ ITEM_1 | yaml }}\napi:\n  key: {{ ITEM_2 | yaml }}\nsmtp:\n  password: {{ ITEM_3 | yaml }}\n".to_string(),
        ),
        (
            ".dockerconfigjson".to_string(),
            "{{ dockerconfigjson('ghcr.io', ITEM_4, ITEM_5) }}".to_string(),
        ),
        ("token".to_string(), "{{ ITEM_6 | trim }}".to_string()),
    ])
}

fn bench(c: &mut Criterion) {
    let place = Place {
        namespace: "app",
        name: "db",
    };
    let salt = SaltKey::new([9; 32]);
    let limits = Limits::default();
    let templates = templates();
    c.bench_function("secret_data: 4 templates over 10 inputs", |b| {
        b.iter(|| {
            let mut data = inputs();
            secret_data(&templates, false, &mut data, place, &salt, &limits)
                .unwrap_or_else(|e| panic!("{e}"));
            black_box(data)
        })
    });
    c.bench_function("inputs only (no templates): the baseline copy", |b| {
        b.iter(|| black_box(inputs()))
    });
    c.bench_function("check: 4 templates (verify, seal)", |b| {
        b.iter(|| {
            for (k, t) in &templates {
                black_box(check(k, t).unwrap_or_else(|e| panic!("{e}")));
            }
        })
    });
    let htpasswd = BTreeMap::from([(
        "auth".to_string(),
        "{{ htpasswd('admin', ITEM_0) }}".to_string(),
    )]);
    let mut group = c.benchmark_group("bcrypt");
    group.sample_size(10);
    group.bench_function("htpasswd line at cost 10", |b| {
        b.iter(|| {
            let mut data = inputs();
            secret_data(&htpasswd, false, &mut data, place, &salt, &limits)
                .unwrap_or_else(|e| panic!("{e}"));
            black_box(data)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
