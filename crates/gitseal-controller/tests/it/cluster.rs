//! Real-cluster tests, run only when `KUBECONFIG` is set (skipped otherwise):
//! install deploy/ with kubectl, fetch the public key from the ConfigMap,
//! seal a Secret, apply the SealedSecret, and see the Secret appear.
//! `GITSEAL_CONTROLLER_IMAGE` overrides the controller image.

use std::process::Command;
use std::time::Duration;

use gitseal_manifest::SealedSecret;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::Api;

use crate::common::*;

fn kubectl(args: &[&str]) -> bool {
    Command::new("kubectl")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn install_seal_apply_secret_appears() {
    if std::env::var_os("KUBECONFIG").is_none() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: KUBECONFIG is not set");
        }
        return;
    }
    gitseal_controller::install_crypto_provider();
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    assert!(
        kubectl(&[
            "apply",
            "--server-side",
            "-k",
            &deploy.display().to_string()
        ]),
        "kubectl apply -k deploy/ failed"
    );
    if let Ok(image) = std::env::var("GITSEAL_CONTROLLER_IMAGE") {
        assert!(kubectl(&[
            "-n",
            NS,
            "set",
            "image",
            "deployment/gitseal-controller",
            &format!("controller={image}")
        ]));
    }
    assert!(kubectl(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deployment/gitseal-controller",
        "--timeout=180s"
    ]));
    let client = kube::Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("kube client: {e}"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let mut recipient = None;
    for _ in 0..60 {
        if let Ok(Some(cm)) = cms.get_opt("gitseal-public-keys").await {
            recipient = cm.data.and_then(|d| d.get("active").cloned());
            if recipient.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let recipient: gitseal_crypto::Recipient = recipient
        .unwrap_or_else(|| panic!("no public key published"))
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let ns_name = format!("gitseal-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns_name}}))
        .unwrap_or_default();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let obj: SealedSecret = serde_json::from_value(sealed_secret(
        &ns_name,
        "db",
        &[("password", b"s3cret")],
        &[recipient],
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), &ns_name);
    sealed
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns_name);
    let mut found = None;
    for _ in 0..60 {
        if let Ok(Some(s)) = secrets.get_opt("db").await {
            found = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = namespaces.delete(&ns_name, &DeleteParams::default()).await;
    let secret = found.unwrap_or_else(|| panic!("the Secret did not appear"));
    let value = secret
        .data
        .and_then(|d| d.get("password").cloned())
        .map(|b| b.0);
    assert_eq!(value.as_deref(), Some(&b"s3cret"[..]));
}
