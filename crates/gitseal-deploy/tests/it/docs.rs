//! Every manifest in docs/gitops.md and docs/migration.md parses and
//! validates: Kubernetes kinds against Kubernetes' OpenAPI schemas
//! (`kubernetes-validate`), Flux `Kustomization`, Argo CD `Application` and
//! both `SealedSecret`s against their CRDs' schemas (tests/schemas, from the
//! projects' repositories), gitseal's against deploy/crd.yaml. Paths of this
//! repository that the pages name exist.

use std::path::Path;

use gitseal_deploy::{kubernetes_validate, repo_root, yaml_documents};
use serde_json::Value;

/// The ```yaml blocks of a Markdown file.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    blocks
}

fn schema(file: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas")
        .join(file);
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn gitseal_schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_root().join("deploy/crd.yaml")).expect("crd");
    let crd = yaml_documents(&text).remove(0);
    jsonschema::validator_for(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        .expect("compiles")
}

fn check_page(page: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("docs").join(page)).expect("page");
    let flux = schema("flux-kustomization-v1.json");
    let argo = schema("argocd-application-v1alpha1.json");
    let bitnami = schema("bitnami-sealedsecret-v1alpha1.json");
    let gitseal = gitseal_schema();
    let mut kinds = Vec::new();
    let mut plain = Vec::new();
    for block in yaml_blocks(&text) {
        for doc in yaml_documents(&block) {
            let api = doc["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            assert!(
                doc["metadata"]["name"].is_string(),
                "{page}: a {api}/{kind} without metadata.name:\n{block}"
            );
            let validator = match (api.as_str(), kind.as_str()) {
                ("kustomize.toolkit.fluxcd.io/v1", "Kustomization") => Some(&flux),
                ("argoproj.io/v1alpha1", "Application") => Some(&argo),
                ("bitnami.com/v1alpha1", "SealedSecret") => Some(&bitnami),
                ("gitseal.dev/v1alpha1", "SealedSecret") => Some(&gitseal),
                _ => None,
            };
            match validator {
                Some(v) => {
                    let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
                    assert!(
                        errors.is_empty(),
                        "{page}: {api}/{kind}: {errors:?}\n{block}"
                    );
                }
                None => plain.push(doc.clone()),
            }
            // argocd-cm values that are YAML must parse.
            if kind == "ConfigMap" {
                for (key, value) in doc["data"].as_object().into_iter().flatten() {
                    if key.starts_with("resource.customizations.ignoreDifferences.") {
                        let parsed = yaml_documents(value.as_str().expect("a string"));
                        assert_eq!(parsed.len(), 1, "{page}: {key}");
                        let fields = parsed[0].as_object().expect("a mapping");
                        assert!(
                            fields.keys().all(|k| [
                                "jqPathExpressions",
                                "jsonPointers",
                                "managedFieldsManagers"
                            ]
                            .contains(&k.as_str())),
                            "{page}: {key}: {fields:?}"
                        );
                    }
                }
            }
            kinds.push(format!("{api}/{kind}"));
        }
    }
    let unknown = kubernetes_validate(&plain);
    assert!(unknown.is_empty(), "{page}: no schema for {unknown:?}");
    check_paths(page, &text);
    kinds
}

/// Paths like `deploy/argocd/argocd-cm.yaml` named in the page exist.
fn check_paths(page: &str, text: &str) {
    let root = repo_root();
    for word in text.split(|c: char| c.is_whitespace() || "`()[],:".contains(c)) {
        let word = word.trim_end_matches('.');
        let ours = ["deploy/", "scripts/", "crates/", "docs/"]
            .iter()
            .any(|p| word.starts_with(p));
        if ours && !word.contains('<') && !word.contains('*') {
            assert!(
                root.join(word).exists(),
                "{page} names {word}, which does not exist"
            );
        }
    }
}

#[test]
fn gitops_page_manifests_validate() {
    let kinds = check_page("gitops.md");
    for want in [
        "kustomize.toolkit.fluxcd.io/v1/Kustomization",
        "argoproj.io/v1alpha1/Application",
        "gitseal.dev/v1alpha1/SealedSecret",
        "v1/ConfigMap",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "gitops.md has no {want}: {kinds:?}"
        );
    }
    assert_eq!(kinds.len(), 8, "{kinds:?}");
}

#[test]
fn migration_page_manifests_validate() {
    let kinds = check_page("migration.md");
    assert!(
        kinds
            .iter()
            .any(|k| k == "gitseal.dev/v1alpha1/SealedSecret"),
        "{kinds:?}"
    );
}

#[test]
fn an_invalid_manifest_is_caught() {
    // The checks can fail: a Flux Kustomization without sourceRef, an Argo
    // CD Application without destination, a Deployment with a typo.
    let flux = schema("flux-kustomization-v1.json");
    let doc = yaml_documents(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: x}\nspec: {interval: 1m, prune: true}\n",
    )
    .remove(0);
    assert!(!flux.is_valid(&doc));
    let argo = schema("argocd-application-v1alpha1.json");
    let doc = yaml_documents(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: x}\nspec: {project: default}\n",
    )
    .remove(0);
    assert!(!argo.is_valid(&doc));
    let doc = yaml_documents(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 1}\n",
    );
    let caught = std::panic::catch_unwind(|| kubernetes_validate(&doc));
    assert!(caught.is_err());
}

/// Every test that docs/security.md names as proof of a threat-model row
/// exists: a `fn NAME` for each snake_case name in backticks, a file for
/// each path. A renamed or deleted test makes the table stale, and this
/// test says which entry.
#[test]
fn security_threat_model_names_tests_that_exist() {
    let root = repo_root();
    let page = std::fs::read_to_string(root.join("docs/security.md")).expect("docs/security.md");
    let mut sources = String::new();
    let mut stack = vec![root.join("crates"), root.join("tests")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && name != "target" && name != "fuzz" {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut named = 0;
    for line in page.lines().filter(|l| l.starts_with("| **")) {
        for (i, quoted) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let is_test = quoted.len() > 20
                && quoted
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if is_test {
                named += 1;
                assert!(
                    sources.contains(&format!("fn {quoted}(")),
                    "docs/security.md names the test `{quoted}`, which no longer exists"
                );
            } else if quoted.starts_with("tests/") || quoted.starts_with("crates/") {
                assert!(
                    root.join(quoted).exists(),
                    "docs/security.md names `{quoted}`, which does not exist"
                );
            }
        }
    }
    assert!(
        named >= 10,
        "the threat-model table names only {named} tests"
    );
}
