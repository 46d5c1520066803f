//! The Helm chart (deploy/helm/gitseal), rendered by Helm's own engine:
//! it lints clean, renders the objects of the kustomize base (built by
//! kubectl's kustomize) for the same settings, its options reach the
//! objects, and what it renders passes the Kubernetes schemas.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use gitseal_deploy::{
    helm_template, helm_template_raw, kubernetes_validate, kustomize, python, repo_root, run,
};
use serde_json::{json, Value};

const NAMESPACE: &str = "gitseal-system";

fn chart() -> PathBuf {
    repo_root().join("deploy/helm/gitseal")
}

fn render(values: &Value) -> Vec<Value> {
    helm_template(&chart(), values, "gitseal", NAMESPACE)
}

/// Labels and annotations Helm adds and the kustomize base has not.
const HELM_ONLY_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

fn strip_helm(obj: &mut Value) {
    let paths: [&[&str]; 2] = [&["metadata"], &["spec", "template", "metadata"]];
    for path in paths {
        let mut meta = Some(&mut *obj);
        for p in path {
            meta = meta.and_then(|m| m.get_mut(*p));
        }
        let Some(meta) = meta.and_then(Value::as_object_mut) else {
            continue;
        };
        for field in ["labels", "annotations"] {
            if let Some(map) = meta.get_mut(field).and_then(Value::as_object_mut) {
                for l in HELM_ONLY_LABELS {
                    map.remove(l);
                }
                map.remove("helm.sh/resource-policy");
                if map.is_empty() {
                    meta.remove(field);
                }
            }
        }
    }
}

/// Numbers as numbers: `0.0` (kustomize keeps the CRD's float) and `0`
/// (Helm's YAML writer) are the same value to the API server.
fn normalize_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && n.is_f64()) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_numbers),
        Value::Object(map) => map.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

fn by_identity(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|mut o| {
            normalize_numbers(&mut o);
            let key = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            );
            (key, o)
        })
        .collect()
}

/// The kustomize base in an overlay: deploy/ copied next to a
/// kustomization that applies `patches` (JSON6902 on the Deployment).
fn kustomize_overlay(patches: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("base");
    std::fs::create_dir(&base).expect("mkdir");
    for entry in std::fs::read_dir(repo_root().join("deploy")).expect("deploy/") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, base.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let overlay = dir.path().join("overlay");
    std::fs::create_dir(&overlay).expect("mkdir");
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../base"],
        "patches": [{
            "target": {"kind": "Deployment", "name": "gitseal-controller"},
            "patch": Value::Array(patches.to_vec()).to_string(),
        }],
    });
    std::fs::write(
        overlay.join("kustomization.yaml"),
        kustomization.to_string(),
    )
    .expect("write");
    kustomize(&overlay)
}

fn add_arg(arg: &str) -> Value {
    json!({"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": arg})
}

#[test]
fn helm_and_kustomize_render_the_same_objects_for_the_same_settings() {
    // The base's settings: its namespace, rollout on change off (the
    // controller's default; in deploy/ its RBAC is rbac-rollout.yaml, apart).
    let mut helm: Vec<Value> = render(&json!({
        "namespace": {"create": true},
    }));
    helm.iter_mut().for_each(strip_helm);
    let kustomize =
        kustomize_overlay(&[json!({"op": "test", "path": "/kind", "value": "Deployment"})]);
    let (helm, kustomize) = (by_identity(helm), by_identity(kustomize));
    assert_eq!(
        helm.keys().collect::<Vec<_>>(),
        kustomize.keys().collect::<Vec<_>>(),
        "the same objects"
    );
    for (key, k) in &kustomize {
        assert_eq!(
            &helm[key], k,
            "{key} differs between the chart and deploy/ (for the CRD: run scripts/helm-crd.sh)"
        );
    }

    // Other settings, expressed both ways.
    let mut helm: Vec<Value> = render(&json!({
        "namespace": {"create": true},
        "replicaCount": 3,
        "keyRotationPeriod": "48h",
        "concurrency": 4,
    }));
    helm.iter_mut().for_each(strip_helm);
    let kustomize = kustomize_overlay(&[
        json!({"op": "replace", "path": "/spec/replicas", "value": 3}),
        json!({"op": "replace", "path": "/spec/template/spec/containers/0/args/2",
               "value": "--key-rotation-period=48h"}),
        add_arg("--concurrency=4"),
    ]);
    let (helm, kustomize) = (by_identity(helm), by_identity(kustomize));
    let deployment = "Deployment/gitseal-system/gitseal-controller";
    assert_eq!(helm[deployment], kustomize[deployment]);
}

#[test]
fn rollout_on_change_is_off_by_default_and_brings_its_rbac_when_on() {
    let workload_rule = json!({"apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["list", "watch", "patch"]});
    for (values, on) in [
        (json!({}), false),
        (json!({"rolloutOnChange": {"enabled": true}}), true),
    ] {
        let objects = by_identity(render(&values));
        let role = &objects["ClusterRole//gitseal-controller"];
        let rules = role["rules"].as_array().expect("rules");
        assert_eq!(rules.contains(&workload_rule), on, "{values}");
        let args = &objects["Deployment/gitseal-system/gitseal-controller"]["spec"]["template"]
            ["spec"]["containers"][0]["args"];
        let arg = json!(format!("--rollout-on-change={on}"));
        assert!(args.as_array().expect("args").contains(&arg), "{args}");
    }
}

#[test]
fn a_namespace_list_shard_gets_roles_in_its_namespaces_instead_of_the_cluster_role() {
    let secrets_rule = json!({"apiGroups": [""], "resources": ["secrets"],
        "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"]});
    let objects = by_identity(render(&json!({"watchNamespaces": ["team-a", "team-b"]})));
    assert!(
        !objects.keys().any(|k| k.starts_with("ClusterRole")),
        "{:?}",
        objects.keys()
    );
    for ns in ["team-a", "team-b"] {
        let role = &objects[&format!("Role/{ns}/gitseal-controller")];
        let rules = role["rules"].as_array().expect("rules");
        assert!(rules.contains(&secrets_rule), "{role}");
        assert!(rules
            .iter()
            .any(|r| r["resources"] == json!(["sealedsecrets/status"])));
        let binding = &objects[&format!("RoleBinding/{ns}/gitseal-controller")];
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    }
    // Its keys are Secrets in its own namespace.
    let own = &objects[&format!("Role/{NAMESPACE}/gitseal-controller")];
    assert!(own["rules"]
        .as_array()
        .expect("rules")
        .contains(&secrets_rule));
    let args = &objects["Deployment/gitseal-system/gitseal-controller"]["spec"]["template"]["spec"]
        ["containers"][0]["args"];
    assert!(
        args.as_array()
            .expect("args")
            .contains(&json!("--watch-namespaces=team-a,team-b")),
        "{args}"
    );

    // A selector keeps the ClusterRole, which may then list namespaces.
    let objects = by_identity(render(&json!({"watchNamespaceSelector": "team=x"})));
    let rules = objects["ClusterRole//gitseal-controller"]["rules"]
        .as_array()
        .expect("rules")
        .clone();
    assert!(
        rules.contains(&json!({"apiGroups": [""], "resources": ["namespaces"],
        "verbs": ["list", "watch"]}))
    );
    let args = &objects["Deployment/gitseal-system/gitseal-controller"]["spec"]["template"]["spec"]
        ["containers"][0]["args"];
    assert!(args
        .as_array()
        .expect("args")
        .contains(&json!("--watch-namespace-selector=team=x")));
}

/// Every option of the chart at once (deploy/helm/gitseal/ci/).
fn everything_on() -> Value {
    let path = chart().join("ci/all-options-values.yaml");
    let text = std::fs::read_to_string(&path).expect("ci values");
    gitseal_deploy::yaml_documents(&text).remove(0)
}

#[test]
fn every_option_reaches_the_objects_and_passes_the_kubernetes_schemas() {
    let objects = render(&everything_on());
    let unknown = kubernetes_validate(&objects);
    assert_eq!(
        unknown,
        ["monitoring.coreos.com/v1/ServiceMonitor"],
        "only the CRD kind has no schema"
    );
    let objects = by_identity(objects);
    for (key, o) in &objects {
        assert_eq!(o["metadata"]["labels"]["team"], "platform", "{key}");
        if !key.starts_with("CustomResourceDefinition") {
            assert_eq!(
                o["metadata"]["annotations"]["owner"], "platform@example.org",
                "{key}"
            );
        }
    }
    let d = &objects["Deployment/gitseal-system/gitseal-controller"];
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(c["image"], "registry.example/gitseal-controller:9.9.9");
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    assert_eq!(pod["imagePullSecrets"][0]["name"], "registry");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    let meta = &d["spec"]["template"]["metadata"];
    assert_eq!(meta["labels"]["sidecar.istio.io/inject"], "false");
    assert_eq!(meta["annotations"]["example.org/scrape"], "yes");
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "gitseal-controller"})
    );
    let env = c["env"].as_array().expect("env");
    assert!(env.contains(&json!({"name": "RUST_LOG", "value": "debug"})));
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "--key-rotation-period=0",
        "--leader-election=false",
        "--log-format=text",
        "--concurrency=8",
        "--worker-threads=4",
        "--rollout-on-change=true",
        "--vault-addr=https://vault.vault.svc:8200",
        "--vault-auth=approle",
        "--vault-auth-mount=approle-k8s",
        "--vault-namespace=team",
        "--vault-path-template=secret:{namespace}/*,kv:shared/{namespace}",
        "--vault-role-id-file=/etc/gitseal/vault-approle/role-id",
        "--vault-secret-id-file=/etc/gitseal/vault-approle/secret-id",
        "--vault-cacert=/etc/gitseal/vault-ca/ca.crt",
        "--vault-timeout=5s",
        "--vault-cache-ttl=1m",
    ] {
        assert!(args.contains(&want), "{want} missing from {args:?}");
    }
    let mounts = c["volumeMounts"].as_array().expect("mounts");
    assert_eq!(mounts.len(), 2);
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "gitseal-vault-approle"
    );
    assert_eq!(pod["volumes"][1]["configMap"]["name"], "vault-ca");
    assert_eq!(
        objects["ServiceAccount/gitseal-system/gitseal-controller"]["metadata"]["annotations"]
            ["iam.example/role"],
        "gitseal"
    );
    assert!(!objects
        .keys()
        .any(|k| k.contains("gitseal-public-keys-reader")));
    assert_eq!(
        objects["PodDisruptionBudget/gitseal-system/gitseal-controller"]["spec"]["minAvailable"],
        1
    );
    let np = &objects["NetworkPolicy/gitseal-system/gitseal-controller"]["spec"];
    assert_eq!(np["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["ingress"][0]["ports"],
        json!([{"port": "http", "protocol": "TCP"}])
    );
    let sm = &objects["ServiceMonitor/gitseal-system/gitseal-controller"];
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        sm["spec"]["endpoints"][0],
        json!({"port": "http", "path": "/metrics", "interval": "15s"})
    );
    let crd = &objects["CustomResourceDefinition//sealedsecrets.gitseal.dev"];
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
}

#[test]
fn defaults_render_only_the_controller_and_pass_the_schemas() {
    let objects = render(&json!({}));
    assert!(kubernetes_validate(&objects).is_empty());
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "Deployment",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    let without_crd = render(&json!({"crds": {"install": false}}));
    assert!(!without_crd
        .iter()
        .any(|o| o["kind"] == "CustomResourceDefinition"));
}

#[test]
fn incomplete_vault_settings_are_refused_at_render_time() {
    for (auth, want) in [
        ("approle", "vault.appRoleSecret is required"),
        ("token", "vault.tokenSecret is required"),
    ] {
        let out = helm_template_raw(
            &chart(),
            &json!({"vault": {"address": "https://vault:8200", "auth": auth}}),
            "gitseal",
            NAMESPACE,
        );
        assert!(!out.status.success(), "{auth}: rendered");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(want), "{auth}: {stderr}");
    }
    // Without an address nothing about Vault is rendered.
    let objects = by_identity(render(&json!({"vault": {"auth": "approle"}})));
    let args = objects["Deployment/gitseal-system/gitseal-controller"]["spec"]["template"]["spec"]
        ["containers"][0]["args"]
        .to_string();
    assert!(!args.contains("vault"), "{args}");
}

#[test]
fn the_chart_lints_clean() {
    let script = repo_root().join("scripts/helm-render.py");
    let out = run(
        Command::new(python())
            .arg(script)
            .arg("lint")
            .arg(chart())
            .args(["--values", "-"]),
        everything_on().to_string().as_bytes(),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm lint:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&report).expect("JSON");
    // Severity 2 = warning, 3 = error; 1 (info: no icon) is fine.
    let serious: Vec<&Value> = report["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["severity"].as_u64().unwrap_or(0) >= 2)
        .collect();
    assert!(serious.is_empty(), "{serious:?}");
}
