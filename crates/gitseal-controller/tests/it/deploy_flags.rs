//! Every flag that deploy/ (kustomize) and the Helm chart pass to the
//! controller is one `gitseal-controller run` accepts, with its value: the
//! rendered args are parsed by the real binary (`run ARGS --help` parses
//! every argument before printing the help, and exits non-zero on an
//! unknown flag or a bad value). The chart is rendered by Helm's engine
//! (scripts/helm-render.py; scripts/gitops-tools.sh installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deployment_args(yaml: &str) -> Vec<String> {
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("YAML");
        if v["kind"].as_str() == Some("Deployment") {
            let args = v["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_sequence()
                .expect("args");
            return args
                .iter()
                .map(|a| a.as_str().expect("string arg").to_string())
                .collect();
        }
    }
    panic!("no Deployment rendered")
}

fn helm_args(values: &Path) -> Vec<String> {
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let out = Command::new(python)
        .arg(repo().join("scripts/helm-render.py"))
        .arg("template")
        .arg(repo().join("deploy/helm/gitseal"))
        .args(["--namespace", "gitseal-system", "--values"])
        .arg(values)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "helm template failed (scripts/gitops-tools.sh installs the Helm engine):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    deployment_args(&String::from_utf8(out.stdout).expect("UTF-8"))
}

/// Runs `gitseal-controller ARGS --help`: Ok when every arg parsed.
fn parse(args: &[String]) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_gitseal-controller"))
        .args(args)
        .arg("--help")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .output()
        .expect("the controller runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_flag_deploy_and_the_chart_render_is_accepted() {
    let base = std::fs::read_to_string(repo().join("deploy/deployment.yaml")).expect("deployment");
    let mut cases = vec![("deploy/deployment.yaml", deployment_args(&base))];
    let dir = tempfile::tempdir().expect("temp");
    let defaults = dir.path().join("defaults.yaml");
    std::fs::write(&defaults, "{}\n").expect("write");
    cases.push(("chart defaults", helm_args(&defaults)));
    let all = repo().join("deploy/helm/gitseal/ci/all-options-values.yaml");
    cases.push(("chart, every option", helm_args(&all)));
    // The other two Vault login methods.
    for auth in ["kubernetes", "token"] {
        let values = dir.path().join(format!("{auth}.yaml"));
        std::fs::write(
            &values,
            format!(
                "vault: {{address: 'https://vault:8200', auth: {auth}, authMount: k8s, \
                 role: gitseal, tokenSecret: vault-token, caConfigMap: vault-ca}}\n"
            ),
        )
        .expect("write");
        cases.push(("chart, Vault login", helm_args(&values)));
    }
    for (what, args) in &cases {
        assert_eq!(args.first().map(String::as_str), Some("run"), "{what}");
        parse(args).unwrap_or_else(|e| panic!("{what}: {args:?} refused:\n{e}"));
    }
    // Every Vault flag of the chart was exercised.
    let all_args: Vec<&str> = cases
        .iter()
        .flat_map(|(_, a)| a.iter().map(String::as_str))
        .collect();
    for flag in [
        "--vault-auth=kubernetes",
        "--vault-role=gitseal",
        "--vault-token-file=",
        "--vault-role-id-file=",
    ] {
        assert!(
            all_args.iter().any(|a| a.starts_with(flag)),
            "{flag} not rendered by any case"
        );
    }
}

#[test]
fn the_check_refuses_a_flag_the_binary_lacks() {
    // The check above can fail: an unknown flag or a bad value is refused.
    let base = std::fs::read_to_string(repo().join("deploy/deployment.yaml")).expect("deployment");
    let mut args = deployment_args(&base);
    args.push("--shard-count=2".into());
    assert!(parse(&args)
        .expect_err("unknown flag")
        .contains("--shard-count"));
    let mut args = deployment_args(&base);
    args.push("--key-rotation-period=soon".into());
    assert!(parse(&args).is_err());
}
