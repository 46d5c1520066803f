//! Every Kubernetes finding kind, with real sealed values from gitseal-crypto.

use crate::{rand_str, rule_ids, ALNUM};
use gitseal_crypto::{seal, Binding, Identity, KeyId, Scope};
use gitseal_scan::{Config, Finding, Scanner};
use std::collections::BTreeSet;

fn scan_with_keys(path: &str, text: &str, keys: &[KeyId]) -> Vec<Finding> {
    let scanner = Scanner::new(Config {
        known_keys: Some(keys.iter().copied().collect::<BTreeSet<_>>()),
        ..Config::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    scanner.scan_bytes(path, text.as_bytes())
}

fn sealed(id: &Identity, scope: Scope, ns: &str, name: &str, key: &str) -> String {
    seal(
        b"value",
        &[id.recipient().clone()],
        &Binding::new(scope, ns, name, key),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .to_string()
}

fn sealed_secret(ns: &str, name: &str, scope: &str, items: &[(&str, &str)]) -> String {
    let mut s = format!(
        "apiVersion: gitseal.dev/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  scope: {scope}\n  encryptedData:\n"
    );
    for (k, v) in items {
        s.push_str(&format!("    {k}: {v}\n"));
    }
    s
}

#[test]
fn plaintext_secret_yaml_multi_document() {
    let pw = rand_str(40, 20, ALNUM);
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  mode: fast\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  username: app\n  password: {pw}\n"
    );
    let f = scan_with_keys("deploy/db.yaml", &text, &[]);
    assert_eq!(
        rule_ids(&f),
        vec!["kube-plaintext-secret", "kube-plaintext-secret"],
        "{f:#?}"
    );
    assert_eq!((f[0].line, f[1].line), (13, 14));
    assert!(f[1].message.contains("`db`") && f[1].message.contains("`password`"));
    assert!(f[1].message.contains("gitseal seal"));
}

#[test]
fn plaintext_secret_json_and_list() {
    let json = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Secret\",\n  \"metadata\": {\"name\": \"api\"},\n  \"data\": {\n    \"token\": \"c2VjcmV0dmFsdWU=\"\n  }\n}\n";
    let f = scan_with_keys("secret.json", json, &[]);
    assert_eq!(rule_ids(&f), vec!["kube-plaintext-secret"]);
    assert_eq!(f[0].line, 6);
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: one\n  data:\n    a: YQ==\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: two\n  data:\n    b: Yg==\n";
    let f = scan_with_keys("list.yaml", list, &[]);
    assert_eq!(
        rule_ids(&f),
        vec!["kube-plaintext-secret", "kube-plaintext-secret"]
    );
    assert_eq!((f[0].line, f[1].line), (9, 15));
}

#[test]
fn secret_near_misses() {
    // No data, empty values, a Helm template, a ConfigMap, a non-YAML file.
    let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sa-token\ntype: kubernetes.io/service-account-token\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: empty\ndata:\n  a: \"\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Secret\ndata:\n  k: v\n";
    assert!(scan_with_keys("a.yaml", text, &[]).is_empty());
    assert!(scan_with_keys("a.md", "kind: Secret\nstringData:\n  a: b\n", &[]).is_empty());
    // Broken YAML is not a finding and not a panic.
    assert!(scan_with_keys("b.yaml", "kind: Secret\ndata: [unclosed\n", &[]).is_empty());
}

#[test]
fn kustomize_secret_generator_literals() {
    let pw = rand_str(41, 16, ALNUM);
    let text = format!(
        "resources:\n- deploy.yaml\nsecretGenerator:\n- name: db\n  literals:\n  - username=app\n  - password={pw}\n  - fromenv=${{DB_PASS}}\n  - token=changeme\n  - ca=/etc/ssl/ca.pem\n  - api=https://api.example.org/v1\n  - slot=<your-token>\n  - sealed=gs1:AAAA\nconfigMapGenerator:\n- name: cfg\n  literals:\n  - mode=fast\n"
    );
    let f = scan_with_keys("kustomization.yaml", &text, &[]);
    assert_eq!(
        rule_ids(&f),
        vec!["kustomize-secret-literal", "kustomize-secret-literal"],
        "{f:#?}"
    );
    assert_eq!((f[0].line, f[1].line), (6, 7));
    assert!(f[1].message.contains("`password`"));
    // References and obvious stand-ins are not findings: `${DB_PASS}`,
    // `changeme`, a plain path, a URL without credentials, `<your-token>`,
    // a sealed value.
}

/// Real secrets that merely look like stand-ins to a looser rule are still
/// findings: symbols at either end, words such as "password" or "test"
/// inside, a URL that carries credentials.
#[test]
fn kustomize_literals_that_resemble_placeholders_are_still_findings() {
    // gitseal:allow made-up values planted for this test
    let text = "secretGenerator:\n- name: db\n  literals:\n  - a=MyPassword!2024\n  - b=#k9Lq2vX7pR\n  - c=<k9Lq2vX7pR\n  - d=testing-Z8q1w\n  - e=https://admin:hunter2@db.example.org/app\n  - f=/not a path\n  - g=x\n";
    let f = scan_with_keys("kustomization.yaml", text, &[]);
    let lits: Vec<usize> = f
        .iter()
        .filter(|f| f.rule.id() == "kustomize-secret-literal")
        .map(|f| f.line)
        .collect();
    assert_eq!(lits, vec![4, 5, 6, 7, 8, 9, 10], "{f:#?}");
}

#[test]
fn sealed_secret_correct_is_clean() {
    let id = Identity::generate();
    let v = sealed(&id, Scope::Strict, "prod", "db", "password");
    let text = sealed_secret("prod", "db", "strict", &[("password", &v)]);
    let f = scan_with_keys("sealed.yaml", &text, &[id.key_id()]);
    assert!(f.is_empty(), "{f:#?}");
    // Without a keyring the key check is skipped, the binding still holds.
    let open = Scanner::new(Config::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(open.scan_bytes("sealed.yaml", text.as_bytes()).is_empty());
}

#[test]
fn sealed_value_invalid() {
    let id = Identity::generate();
    let good = sealed(&id, Scope::Strict, "prod", "db", "a");
    let truncated = &good[..good.len() / 2];
    let text = sealed_secret(
        "prod",
        "db",
        "strict",
        &[
            ("a", truncated),
            ("b", "plaintext-password"),
            ("c", "gs9:AAAA"),
        ],
    );
    let f = scan_with_keys("sealed.yaml", &text, &[id.key_id()]);
    assert_eq!(rule_ids(&f), vec!["sealed-value-invalid"; 3], "{f:#?}");
    assert_eq!((f[0].line, f[1].line, f[2].line), (9, 10, 11));
    assert!(f[1].message.contains("not sealed"));
    assert!(f[2].message.contains("upgrade"), "{}", f[2].message);
    let bad_scope = sealed_secret("prod", "db", "galaxy", &[("a", &good)]);
    let f = scan_with_keys("sealed.yaml", &bad_scope, &[id.key_id()]);
    assert_eq!(rule_ids(&f), vec!["sealed-value-invalid"]);
    assert!(f[0].message.contains("spec.scope"));
}

#[test]
fn sealed_unknown_key() {
    let ours = Identity::generate();
    let theirs = Identity::generate();
    let v = sealed(&theirs, Scope::Strict, "prod", "db", "password");
    let text = sealed_secret("prod", "db", "strict", &[("password", &v)]);
    let f = scan_with_keys("sealed.yaml", &text, &[ours.key_id()]);
    assert_eq!(rule_ids(&f), vec!["sealed-unknown-key"]);
    assert!(f[0].message.contains(&theirs.key_id().to_string()));
}

#[test]
fn sealed_binding_mismatch_each_part() {
    let id = Identity::generate();
    let keys = [id.key_id()];
    let cases = [
        (
            sealed(&id, Scope::Strict, "staging", "db", "password"),
            "namespace `staging`",
        ),
        (
            sealed(&id, Scope::Strict, "prod", "cache", "password"),
            "name `cache`",
        ),
        (
            sealed(&id, Scope::Strict, "prod", "db", "username"),
            "item key `username`",
        ),
        (
            sealed(&id, Scope::Cluster, "", "", "password"),
            "scope cluster",
        ),
    ];
    for (v, why) in &cases {
        let text = sealed_secret("prod", "db", "strict", &[("password", v)]);
        let f = scan_with_keys("sealed.yaml", &text, &keys);
        assert_eq!(
            rule_ids(&f),
            vec!["sealed-binding-mismatch"],
            "{why}: {f:#?}"
        );
        assert!(f[0].message.contains(why), "{}", f[0].message);
    }
    // Namespace scope ignores the name; cluster scope ignores both.
    let v = sealed(&id, Scope::Namespace, "prod", "other", "password");
    let text = sealed_secret("prod", "db", "namespace", &[("password", &v)]);
    assert!(scan_with_keys("s.yaml", &text, &keys).is_empty());
    let v = sealed(&id, Scope::Cluster, "x", "y", "password");
    let text = sealed_secret("prod", "db", "cluster", &[("password", &v)]);
    assert!(scan_with_keys("s.yaml", &text, &keys).is_empty());
}
