//! `gitseal migrate sealed-secrets` on a repository made by an independent
//! Bitnami encoder (crates/gitseal-migrate/tests/bitnami_seal.py, Python
//! `cryptography`): what converts opens with `gitseal unseal` to the
//! original bytes; what does not is reported, and nothing is written for it.

use std::path::Path;

use crate::support::Env;

/// Generates the Bitnami fixtures into `dir`; returns expected.json.
fn bitnami_fixtures(dir: &Path) -> serde_json::Value {
    gitseal_test_support::fixtures::bitnami_seal(dir);
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("JSON")
}

/// item → base64 of the `data` of the Secret named `name` in `yaml`.
fn secret_data(yaml: &str, name: &str) -> serde_json::Map<String, serde_json::Value> {
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).expect("YAML");
        if v["kind"] == "Secret" && v["metadata"]["name"] == name {
            return v["data"].as_object().cloned().unwrap_or_default();
        }
    }
    panic!("no Secret {name} in {yaml}")
}

#[test]
fn a_bitnami_repository_migrates_and_unseals_to_the_same_bytes() {
    let env = Env::new();
    let expected = bitnami_fixtures(&env.path("bitnami"));
    let out = env.run(&[
        "migrate",
        "sealed-secrets",
        "--key",
        "bitnami/keys.yaml",
        "-f",
        "bitnami/repo",
        "-r",
        &env.recipient,
        "--out-dir",
        "migrated",
    ]);
    out.exits_with(3, "6 converted, 6 not converted");
    assert!(
        out.stderr
            .contains("shop/tampered: no given key opens item(s) \"bad\""),
        "{}",
        out.stderr
    );
    assert!(out
        .stderr
        .contains("other/foreign: no given key opens item(s) \"a\", \"b\""));
    assert!(
        out.stderr.contains(
            "shop/branching: spec.template.data item \"out\": the control structure {{ if }} \
             has no translation"
        ),
        "{}",
        out.stderr
    );
    assert!(out
        .stderr
        .contains("converted bitnami/repo/apps/shop/templated.yaml"));

    // Files holding only refused objects get no output file at all.
    for refused in [
        "apps/shop/tampered.yaml",
        "apps/other/foreign.yaml",
        "apps/other/renamed.yaml",
        "apps/shop/templated-refused.yaml",
        "apps/shop/templated-binary.yaml",
    ] {
        assert!(
            !env.path("migrated").join(refused).exists(),
            "{refused} written"
        );
    }
    let mut converted = 0;
    for (file, cases) in expected.as_object().expect("map") {
        for case in cases.as_array().expect("list") {
            if case.get("refused").is_some() {
                continue;
            }
            converted += 1;
            let path = format!("migrated/{file}");
            let text = env.read(&path);
            assert!(text.contains("apiVersion: gitseal.dev/v1alpha1"), "{path}");
            assert!(
                !text.contains("bitnami.com"),
                "{path}: no Bitnami leftovers:\n{text}"
            );
            let mut args = vec!["unseal", "-i", "key.txt", "-f", &path];
            if case["namespace"].is_null() {
                args.extend(["--namespace", "anywhere"]);
            }
            let opened = env.run(&args);
            opened.ok();
            let name = case["name"].as_str().expect("name");
            let got = secret_data(&opened.stdout, name);
            let want = case["items"].as_object().expect("items");
            assert_eq!(&got, want, "{path}: {name}");
            if let Some(want) = case.get("secret_data") {
                // Translated Go templates: `gitseal render` gives the
                // Secret Bitnami's controller wrote (Go's text/template
                // rendered it in the fixture script).
                let rendered = env.run(&["render", "-i", "key.txt", "-f", &path]);
                rendered.ok();
                let got = secret_data(&rendered.stdout, name);
                assert_eq!(&got, want.as_object().expect("map"), "{path}: {name}");
            }
        }
    }
    assert_eq!(converted, 6);
}

#[test]
fn everything_converted_exits_0_and_writes_to_stdout() {
    let env = Env::new();
    bitnami_fixtures(&env.path("bitnami"));
    let out = env.run(&[
        "migrate",
        "sealed-secrets",
        "-k",
        "bitnami/current.pem",
        "-k",
        "bitnami/keys.yaml",
        "-f",
        "bitnami/repo/apps/shop/db.yaml",
        "-f",
        "bitnami/repo/platform",
        "-r",
        &env.recipient,
    ]);
    out.ok();
    assert!(
        out.stderr.contains("2 converted, 0 not converted"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.matches("kind: SealedSecret").count(), 2);
    assert!(out.stdout.contains("scope: cluster"));
}

#[test]
fn bad_input_writes_nothing() {
    let env = Env::new();
    bitnami_fixtures(&env.path("bitnami"));
    let base = ["migrate", "sealed-secrets", "-f", "bitnami/repo", "-r"];
    // A key file that holds no key.
    env.write("empty.key", "# nothing\n");
    let mut args = base.to_vec();
    args.extend([
        env.recipient.as_str(),
        "--key",
        "empty.key",
        "--out-dir",
        "out",
    ]);
    env.run(&args)
        .exits_with(2, "empty.key: holds no RSA private key");
    assert!(!env.path("out").exists());
    // A file that is not YAML in the walked directory: stops before writing.
    std::fs::write(
        env.path("bitnami/repo/broken.yaml"),
        "apiVersion: bitnami.com/v1alpha1\nkind: [\n",
    )
    .expect("write");
    let mut args = base.to_vec();
    args.extend([
        env.recipient.as_str(),
        "--key",
        "bitnami/keys.yaml",
        "--out-dir",
        "out",
    ]);
    env.run(&args).exits_with(2, "broken.yaml");
    assert!(!env.path("out").exists());
    std::fs::remove_file(env.path("bitnami/repo/broken.yaml")).expect("rm");
    // An existing output file is never overwritten, and nothing else is written.
    std::fs::create_dir_all(env.path("out/apps/shop")).expect("mkdir");
    env.write("out/apps/shop/db.yaml", "mine\n");
    env.run(&args)
        .exits_with(2, "exists; --out-dir writes only new files");
    assert_eq!(env.read("out/apps/shop/db.yaml"), "mine\n");
    assert!(!env.path("out/platform").exists());
    // No recipients.
    env.run(&[
        "migrate",
        "sealed-secrets",
        "--key",
        "bitnami/keys.yaml",
        "-f",
        "bitnami/repo",
    ])
    .exits_with(2, "no recipients");
}
