//! Templated Secrets from the command line: `seal` carries templates named
//! by the `gitseal.dev/templated-keys` annotation, `render` prints the
//! Secret the controller would write (placeholders without a key, real
//! values with one), `edit` changes templates in place, and `verify`
//! reports broken templates and credentials pasted into one.

use crate::support::*;

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  annotations:
    gitseal.dev/templated-keys: DATABASE_URL
    team: a
stringData:
  user: shop
  # gitseal:allow a made-up test value
  password: hunter2-PLAINTEXT!
  DATABASE_URL: \"postgres://{{ user }}:{{ password | urlencode }}@db:5432/shop\"
";

/// `sealed.yaml`: [`SECRET`] sealed to this env's key.
fn sealed_env() -> Env {
    let env = Env::new();
    env.write("secret.yaml", SECRET);
    env.seal(&["-f", "secret.yaml", "-o", "sealed.yaml"]).ok();
    env
}

#[test]
fn seal_carries_templates_as_text_and_seals_the_rest() {
    let env = sealed_env();
    let text = env.read("sealed.yaml");
    assert!(!text.contains("hunter2"), "{text}");
    let doc = yaml(&text);
    let spec = &doc["spec"];
    assert_eq!(
        spec["template"]["data"]["DATABASE_URL"].as_str(),
        Some("postgres://{{ user }}:{{ password | urlencode }}@db:5432/shop")
    );
    let sealed: Vec<&str> = spec["encryptedData"]
        .as_mapping()
        .map(|m| m.keys().filter_map(|k| k.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(sealed, ["password", "user"]);
    // The annotation is gitseal's instruction, not the Secret's.
    let annotations = &spec["template"]["metadata"]["annotations"];
    assert_eq!(annotations["team"].as_str(), Some("a"));
    assert!(
        annotations.get("gitseal.dev/templated-keys").is_none(),
        "{text}"
    );
}

#[test]
fn render_without_a_key_shows_placeholders_and_with_one_the_secret() {
    let env = sealed_env();
    let out = env.run(&["render", "-f", "sealed.yaml", "--text"]);
    out.ok();
    let doc = yaml(&out.stdout);
    assert_eq!(
        doc["stringData"]["DATABASE_URL"].as_str(),
        Some("postgres://<sealed:user>:%3Csealed%3Apassword%3E@db:5432/shop")
    );
    // Inputs read only by the template are not in the Secret.
    assert!(doc["stringData"].get("user").is_none(), "{}", out.stdout);
    assert!(doc.get("data").is_none(), "{}", out.stdout);
    assert_eq!(doc["type"].as_str(), Some("Opaque"));
    assert_eq!(
        doc["metadata"]["labels"]["app.kubernetes.io/managed-by"].as_str(),
        Some("gitseal-controller")
    );
    assert!(
        out.stderr
            .contains("password, user shown as <sealed:KEY> placeholders"),
        "{}",
        out.stderr
    );

    let out = env.run(&["render", "-f", "sealed.yaml", "-i", "key.txt"]);
    out.ok();
    assert_eq!(
        data_item(&out.stdout, 0, "DATABASE_URL"),
        // gitseal:allow a made-up password in the expected output of a template test
        b"postgres://shop:hunter2-PLAINTEXT%21@db:5432/shop"
    );

    // Another key: exit 3, nothing printed.
    env.keygen("other.txt");
    let out = env.run(&["render", "-f", "sealed.yaml", "-i", "other.txt"]);
    out.exits_with(3, "sealed to key id(s)");
    assert!(out.stdout.is_empty());
}

#[test]
fn seal_refuses_a_template_that_reads_a_missing_input() {
    let env = Env::new();
    env.write(
        "secret.yaml",
        &SECRET.replace("{{ password | urlencode }}", "\\n{{ pasword }}"),
    );
    let out = env.seal(&["-f", "secret.yaml", "-o", "sealed.yaml"]);
    out.exits_with(
        2,
        "secret.yaml, document 1 (line 1): template \"DATABASE_URL\", line 2: unknown input \"pasword\"",
    );
    assert!(!env.path("sealed.yaml").exists());
    assert!(!out.stderr.contains("hunter2"));
    // The annotation naming an item the Secret does not have.
    env.write(
        "secret.yaml",
        &SECRET.replace(
            "templated-keys: DATABASE_URL",
            "templated-keys: DATABASE_URL, URL",
        ),
    );
    env.seal(&["-f", "secret.yaml", "-o", "sealed.yaml"])
        .exits_with(2, "names \"URL\", but the Secret has no such item");
    assert!(!env.path("sealed.yaml").exists());
}

#[test]
fn render_reports_a_broken_template_with_its_line() {
    let env = sealed_env();
    let text = env.read("sealed.yaml");
    env.write(
        "broken.yaml",
        &text.replace("@db:5432/shop", "@db:5432/shop{% if %}"),
    );
    let out = env.run(&["render", "-f", "broken.yaml", "-i", "key.txt"]);
    out.exits_with(2, "template \"DATABASE_URL\", line 1: syntax error");
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn edit_changes_a_template_in_place() {
    let env = sealed_env();
    std::fs::create_dir_all(env.path("runtime")).expect("mkdir");
    let before = env.read("sealed.yaml");
    env.write(
        "editor.sh",
        "set -e\ngrep -q 'gitseal.dev/templated-keys: DATABASE_URL' \"$1\"\nsed -i 's/@db:5432/@db2:5432/' \"$1\"\n",
    );
    let editor = format!("sh {}", env.path("editor.sh").display());
    let out = env
        .cmd(&["edit", "-r", &env.recipient.clone(), "sealed.yaml"])
        .env_remove(&["VISUAL"])
        .envs(&[
            ("EDITOR", editor.as_str()),
            (
                "XDG_RUNTIME_DIR",
                &env.path("runtime").display().to_string(),
            ),
        ])
        .out();
    out.exits_with(0, "changed template \"DATABASE_URL\" of shop/db");
    let after = env.read("sealed.yaml");
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].1.contains("@db2:5432"), "{changed:?}");
    let out = env.run(&["render", "-f", "sealed.yaml", "-i", "key.txt"]);
    out.ok();
    assert_eq!(
        data_item(&out.stdout, 0, "DATABASE_URL"),
        // gitseal:allow a made-up password in the expected output of a template test
        b"postgres://shop:hunter2-PLAINTEXT%21@db2:5432/shop"
    );
}

#[test]
fn verify_reports_broken_templates_and_pasted_credentials() {
    let env = sealed_env();
    env.write("sealed.yaml", &env.read("sealed.yaml"));
    env.run(&["verify", "sealed.yaml"]).ok();
    let text = env.read("sealed.yaml");
    env.write("typo.yaml", &text.replace("{{ user }}", "{{ usr }}"));
    let out = env.run(&["verify", "typo.yaml"]);
    out.exits(1);
    assert!(
        out.stdout.contains("sealed-template-invalid"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("`usr`"), "{}", out.stdout);
    // A credential pasted into a template is plaintext in Git.
    env.write(
        "pasted.yaml",
        &text.replace("{{ password | urlencode }}", "Zq8vXp2LkT9mWs4R"),
    );
    let out = env.run(&["verify", "pasted.yaml"]);
    out.exits(1);
    assert!(out.stdout.contains("url-password"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("Zq8vXp2LkT9mWs4R"),
        "redacted: {}",
        out.stdout
    );
}

#[test]
fn merge_into_refuses_templates_instead_of_sealing_them() {
    let env = sealed_env();
    let before = env.read("sealed.yaml");
    let out = env.seal(&["-f", "secret.yaml", "--merge-into", "sealed.yaml"]);
    out.exits_with(2, "--merge-into adds sealed items only");
    assert_eq!(env.read("sealed.yaml"), before, "nothing changed");
}
