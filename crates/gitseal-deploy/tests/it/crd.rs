//! The SealedSecret CRD as users meet it: the `kubectl get` columns (their
//! JSONPaths evaluated by kubectl's own JSONPath engine, the one the API
//! server uses for `additionalPrinterColumns`), names that do not collide
//! with Bitnami Sealed Secrets during a migration, and schema limits that
//! fit what a 1 MiB Secret holds.

use std::process::Command;

use gitseal_crypto::{Binding, Identity, Scope};
use gitseal_deploy::{repo_root, run_ok, tool, yaml_documents};
use gitseal_manifest::types::{
    MAX_SEALED_ITEMS, MAX_SEALED_VALUE_LEN, MAX_SECRET_DATA, MAX_VAULT_ITEMS,
};
use serde_json::{json, Value};

fn crd() -> Value {
    let text = std::fs::read_to_string(repo_root().join("deploy/crd.yaml")).expect("crd.yaml");
    yaml_documents(&text).remove(0)
}

fn version(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]
}

/// `kubectl … -o jsonpath={PATH}` on one object, offline.
fn kubectl_jsonpath(obj: &Value, path: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("obj.json");
    std::fs::write(&file, obj.to_string()).expect("write");
    let kubectl = tool("kubectl", "KUBECTL");
    run_ok(
        Command::new(kubectl)
            // Never a cluster: no kubeconfig, and --local.
            .env("KUBECONFIG", dir.path().join("none"))
            .args(["label", "--local", "-f"])
            .arg(&file)
            .arg("gitseal.dev/probe=1")
            .arg(format!("-o=jsonpath={{{path}}}")),
        b"",
    )
}

fn sealed_secret(status: Value) -> Value {
    json!({
        "apiVersion": "gitseal.dev/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "shop", "generation": 2,
                     "creationTimestamp": "2026-11-02T09:14:07Z"},
        "spec": {},
        "status": status,
    })
}

#[test]
fn kubectl_get_columns_show_ready_reason_and_age() {
    let crd = crd();
    let columns = version(&crd)["additionalPrinterColumns"]
        .as_array()
        .expect("columns");
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Ready", "Reason", "Age", "Message"]);
    assert_eq!(columns[2]["type"], "date");
    assert_eq!(columns[2]["jsonPath"], ".metadata.creationTimestamp");
    // The message is long: only in `-o wide`.
    assert_eq!(columns[3]["priority"], 1);
    let path = |name: &str| {
        columns
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["jsonPath"].as_str())
            .expect("column")
            .to_string()
    };
    // Ready is deliberately not the first condition: the columns must
    // select it by type (Bitnami's read conditions[0]).
    let synced = sealed_secret(json!({"observedGeneration": 2, "conditions": [
        {"type": "Reconciling", "status": "False", "reason": "Synced", "message": ""},
        {"type": "Ready", "status": "True", "reason": "Synced", "message": "Secret shop/db holds 2 item(s)"},
        {"type": "Stalled", "status": "False", "reason": "Synced", "message": ""},
    ]}));
    let failed = sealed_secret(json!({"observedGeneration": 2, "conditions": [
        {"type": "Stalled", "status": "True", "reason": "DecryptFailed", "message": "item \"url\": altered"},
        {"type": "Ready", "status": "False", "reason": "DecryptFailed", "message": "item \"url\": altered"},
    ]}));
    let new = sealed_secret(Value::Null);
    let cases = [
        (&synced, "True", "Synced", "Secret shop/db holds 2 item(s)"),
        (&failed, "False", "DecryptFailed", "item \"url\": altered"),
        (&new, "", "", ""),
    ];
    for (obj, ready, reason, message) in cases {
        assert_eq!(kubectl_jsonpath(obj, &path("Ready")), ready);
        assert_eq!(kubectl_jsonpath(obj, &path("Reason")), reason);
        assert_eq!(kubectl_jsonpath(obj, &path("Message")), message);
    }
    assert_eq!(
        kubectl_jsonpath(&synced, &path("Age")),
        "2026-11-02T09:14:07Z"
    );
}

/// Names in Bitnami's CRD (bitnami-labs/sealed-secrets,
/// helm/sealed-secrets/crds/bitnami.com_sealedsecrets.yaml at 86671a88):
/// plural `sealedsecrets`, singular `sealedsecret`, kind `SealedSecret`,
/// no short names, no categories.
const BITNAMI_NAMES: [&str; 3] = ["sealedsecrets", "sealedsecret", "sealedsecret"];

#[test]
fn short_name_and_category_do_not_collide_with_bitnami() {
    let crd = crd();
    let names = &crd["spec"]["names"];
    assert_eq!(names["shortNames"], json!(["seal"]));
    assert_eq!(names["categories"], json!(["gitseal"]));
    for extra in names["shortNames"]
        .as_array()
        .into_iter()
        .chain(names["categories"].as_array())
        .flatten()
    {
        let extra = extra.as_str().expect("a name");
        assert!(
            !BITNAMI_NAMES.contains(&extra),
            "{extra} would be ambiguous next to bitnami.com's SealedSecret"
        );
        // `kubectl get all` must not list SealedSecrets by surprise.
        assert_ne!(extra, "all");
    }
}

fn schema_validator() -> jsonschema::Validator {
    let crd = crd();
    let schema = version(&crd)["schema"]["openAPIV3Schema"].clone();
    jsonschema::validator_for(&schema).expect("the CRD schema compiles")
}

fn with_spec(spec: Value) -> Value {
    let mut obj = sealed_secret(Value::Null);
    obj.as_object_mut().expect("object").remove("status");
    obj["spec"] = spec;
    obj
}

#[test]
fn the_longest_legal_sealed_value_fits_and_one_more_byte_does_not() {
    // The largest envelope a Secret can need: a 1 MiB value, 64 recipients,
    // a binding with 255-byte namespace, name and item key. Sealed by the
    // real encoder, it is exactly as long as the CRD allows.
    let recipients: Vec<_> = (0..64)
        .map(|_| Identity::generate().recipient().clone())
        .collect();
    let long = "a".repeat(255);
    let binding = Binding::new(Scope::Strict, &long, &long, &long);
    let value = vec![0x5a_u8; MAX_SECRET_DATA];
    let sealed = gitseal_crypto::seal(&value, &recipients, &binding)
        .expect("sealed")
        .to_string();
    assert_eq!(sealed.len(), MAX_SEALED_VALUE_LEN);

    let validator = schema_validator();
    let ok = with_spec(json!({"encryptedData": {"big": sealed}}));
    assert!(validator.is_valid(&ok));
    let too_long = with_spec(json!({"encryptedData": {"big": format!("{sealed}A")}}));
    let errors: Vec<String> = validator
        .iter_errors(&too_long)
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn item_counts_are_bounded() {
    let validator = schema_validator();
    let items = |n: u32| -> Value {
        (0..n)
            .map(|i| (format!("k{i}"), Value::from("gs1:AA==")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    assert!(validator.is_valid(&with_spec(
        json!({"encryptedData": items(MAX_SEALED_ITEMS)})
    )));
    assert!(!validator.is_valid(&with_spec(
        json!({"encryptedData": items(MAX_SEALED_ITEMS + 1)})
    )));

    let refs = |n: u32| -> Value {
        (0..n)
            .map(|i| {
                (
                    format!("k{i}"),
                    json!({"mount": "secret", "path": "shop/db", "field": "f"}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    assert!(validator.is_valid(&with_spec(json!({"vaultData": refs(MAX_VAULT_ITEMS)}))));
    assert!(!validator.is_valid(&with_spec(json!({"vaultData": refs(MAX_VAULT_ITEMS + 1)}))));
}

#[test]
fn template_and_vault_fields_are_bounded() {
    let validator = schema_validator();
    let bad = [
        json!({"template": {"type": "x".repeat(254)}}),
        json!({"template": {"metadata": {"labels": {"a": "x".repeat(64)}}}}),
        json!({"template": {"metadata": {"annotations": {"a": "x".repeat(256 * 1024 + 1)}}}}),
        json!({"vaultData": {"a": {"mount": "", "path": "p", "field": "f"}}}),
        json!({"vaultData": {"a": {"mount": "m", "path": "p".repeat(1025), "field": "f"}}}),
        json!({"refreshInterval": "1".repeat(33)}),
        json!({"scope": "cluster-wide"}),
    ];
    for spec in bad {
        assert!(
            !validator.is_valid(&with_spec(spec.clone())),
            "accepted {spec}"
        );
    }
    let good = json!({
        "scope": "namespace",
        "refreshInterval": "15m",
        "template": {"type": "kubernetes.io/tls", "immutable": true,
                     "metadata": {"labels": {"app": "x".repeat(63)},
                                  "annotations": {"note": "x".repeat(256 * 1024)}}},
        "vaultData": {"a": {"mount": "secret", "path": "shop/db", "field": "password", "kv": "v1"}},
    });
    assert!(validator.is_valid(&with_spec(good)));
}

#[test]
fn argocd_testdata_are_valid_sealed_secrets() {
    let validator = schema_validator();
    let dir = repo_root().join("deploy/argocd/gitseal.dev/SealedSecret/testdata");
    for entry in std::fs::read_dir(&dir).expect("testdata") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let obj = yaml_documents(&text).remove(0);
        let errors: Vec<String> = validator.iter_errors(&obj).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}
