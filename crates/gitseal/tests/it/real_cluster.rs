//! The real-cluster suite: installs `deploy/` (with the image under test)
//! into the cluster that `KUBECONFIG` points at, fetches the controller's key
//! with `gitseal fetch-key --kube`, seals a Secret, applies the SealedSecret
//! and checks that the controller writes the Secret with the right data;
//! then removes everything it created. No API server can run on the build
//! machines, so this is the only test that talks to a real one.
//!
//! It runs only when both `KUBECONFIG` and `GITSEAL_IMAGE` (the controller
//! image, e.g. `ghcr.io/gitseal/gitseal-controller:0.1.0`, pullable by the
//! cluster or loaded into it) are set: the image is the explicit opt-in, so
//! a developer whose shell happens to hold a KUBECONFIG never gets a
//! controller installed by `cargo test`. Otherwise it says on stderr that no
//! cluster was tested, and returns. It needs `kubectl` (with kustomize), and
//! a user that may install CRDs and cluster roles; it refuses a cluster that
//! already has a `gitseal-system` namespace, so it never removes someone's
//! keys. `GITSEAL_E2E_KEEP=1` leaves everything installed for a look.
//!
//! The tests at the bottom always run: they check, without a cluster, the
//! facts about `deploy/` and the Dockerfile that the suite relies on.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Decodes a Secret's base64 data item.
fn decode(b64: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64 in Secret data")
}

/// The image name `deploy/` uses; the suite overrides it with `GITSEAL_IMAGE`.
const DEPLOY_IMAGE: &str = "ghcr.io/gitseal/gitseal-controller";
/// Where `deploy/` installs the controller (its kustomization's namespace).
const SYSTEM_NS: &str = "gitseal-system";

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes a line to the real stderr (not captured by the test harness), so
/// a run without a cluster says so in plain `cargo test` output.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "real_cluster: {text}");
}

/// An image reference split for kustomize's `images:` override.
#[derive(Debug, PartialEq, Eq)]
struct ImageRef {
    name: String,
    /// `newTag: …` or `digest: …` (none: the name alone, kustomize keeps the base tag).
    pin: Option<(&'static str, String)>,
}

/// Splits `name[:tag][@digest]`; a `:` before the last `/` is a registry port.
fn split_image(image: &str) -> Option<ImageRef> {
    let image = image.trim();
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return None;
    }
    if let Some((name, digest)) = image.split_once('@') {
        let name = name
            .rsplit_once(':')
            .map_or(name, |(n, tag)| if tag.contains('/') { name } else { n });
        return (!name.is_empty() && digest.contains(':')).then(|| ImageRef {
            name: name.to_string(),
            pin: Some(("digest", digest.to_string())),
        });
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => {
            (!name.is_empty() && !tag.is_empty()).then(|| ImageRef {
                name: name.to_string(),
                pin: Some(("newTag", tag.to_string())),
            })
        }
        _ => Some(ImageRef {
            name: image.to_string(),
            pin: None,
        }),
    }
}

/// The overlay's kustomization: `deploy/` (copied to `base/`) with the image replaced.
fn overlay_kustomization(image: &ImageRef) -> String {
    let pin = image
        .pin
        .as_ref()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - base\n\
         images:\n  - name: {DEPLOY_IMAGE}\n    newName: \"{}\"\n{pin}",
        image.name
    )
}

/// Runs kubectl (inheriting KUBECONFIG).
fn kubectl(args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("real_cluster: cannot run kubectl ({e}); it is needed with KUBECONFIG and GITSEAL_IMAGE set"))
}

/// Runs kubectl and panics with its stderr unless it succeeds; its stdout.
#[track_caller]
fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the gitseal binary in `dir` (inheriting KUBECONFIG).
fn gitseal(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitseal"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("gitseal runs")
}

/// Polls `check` every 2 s until it gives a value or `timeout` passes.
#[track_caller]
fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "real_cluster: timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Removes what the suite installed, also when an assertion failed.
struct Cleanup {
    overlay: PathBuf,
    test_ns: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::env::var_os("GITSEAL_E2E_KEEP").is_some() {
            say(&format!(
                "GITSEAL_E2E_KEEP is set: left namespace {} and the controller installed",
                self.test_ns
            ));
            return;
        }
        let _ = kubectl(&[
            "delete",
            "namespace",
            &self.test_ns,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=120s",
        ]);
        let overlay = self.overlay.display().to_string();
        let _ = kubectl(&[
            "delete",
            "-k",
            &overlay,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=180s",
        ]);
    }
}

#[test]
fn seal_apply_and_the_controller_writes_the_secret() {
    let kubeconfig = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let image = std::env::var("GITSEAL_IMAGE")
        .ok()
        .filter(|v| !v.is_empty());
    let (Some(_), Some(image)) = (kubeconfig, image) else {
        say(
            "SKIPPED, no cluster was tested: set KUBECONFIG (a scratch cluster) and \
             GITSEAL_IMAGE (the controller image) to run the real-cluster suite",
        );
        return;
    };
    let Some(image_ref) = split_image(&image) else {
        panic!("GITSEAL_IMAGE={image:?} is not an image reference (NAME[:TAG][@DIGEST])");
    };
    say(&format!("installing deploy/ with image {image}"));

    // Refuse a cluster that already runs gitseal: the cleanup would delete its keys.
    let existing = kubectl(&["get", "namespace", SYSTEM_NS, "-o", "name"]);
    let stderr = String::from_utf8_lossy(&existing.stderr);
    assert!(
        !existing.status.success(),
        "namespace {SYSTEM_NS} already exists in this cluster; the suite installs and removes its \
         own controller there. Use a scratch cluster (e.g. kind)"
    );
    assert!(
        stderr.contains("NotFound") || stderr.contains("not found"),
        "cannot talk to the cluster of KUBECONFIG: {stderr}"
    );

    // The overlay: a copy of deploy/ as base/, the image replaced.
    let work = tempfile::tempdir().expect("tempdir");
    let overlay = work.path().join("overlay");
    let base = overlay.join("base");
    std::fs::create_dir_all(&base).expect("mkdir");
    for entry in std::fs::read_dir(repo().join("deploy")).expect("deploy/") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, base.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    std::fs::write(
        overlay.join("kustomization.yaml"),
        overlay_kustomization(&image_ref),
    )
    .expect("write overlay");
    let rendered = kubectl_ok(&["kustomize", &overlay.display().to_string()]);
    assert!(
        rendered.contains(&format!("image: {}", image_ref.name)),
        "the overlay does not set the image:\n{rendered}"
    );

    let suffix = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            & 0xff_ffff
    );
    // From here on, whatever happens, the namespace and deploy/ are removed.
    let cleanup = Cleanup {
        overlay: overlay.clone(),
        test_ns: format!("gitseal-e2e-{suffix}"),
    };
    let ns = cleanup.test_ns.clone();

    // Install (server-side, as docs/operations.md says) and wait for the rollout
    // (readiness = /readyz = sealing keys loaded).
    kubectl_ok(&[
        "apply",
        "--server-side",
        "-k",
        &overlay.display().to_string(),
    ]);
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/sealedsecrets.gitseal.dev",
        "--timeout=60s",
    ]);
    kubectl_ok(&[
        "-n",
        SYSTEM_NS,
        "rollout",
        "status",
        "deployment/gitseal-controller",
        "--timeout=300s",
    ]);

    // The key, through the API server's service proxy: no port-forward.
    let dir = work.path();
    let recipient = wait_for("fetch-key --kube", Duration::from_secs(90), || {
        let out = gitseal(
            dir,
            &[
                "fetch-key",
                "--kube",
                "--keyring",
                "keys.yaml",
                "--env",
                "e2e",
                "--write",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        // Exit 4: not reachable or not ready yet; or a replica that has not seen the first key.
        let not_yet = out.status.code() == Some(4) || stderr.contains("no keys are published");
        assert!(not_yet, "fetch-key --kube failed: {stderr}");
        say(&format!("fetch-key --kube not yet: {}", stderr.trim()));
        None
    });
    assert!(recipient.starts_with("age1"), "{recipient}");
    // The published ConfigMap names the same active key (it may lag a little).
    wait_for(
        "the ConfigMap's active key",
        Duration::from_secs(60),
        || {
            let out = gitseal(dir, &["fetch-key", "--configmap"]);
            (out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == recipient)
                .then_some(())
        },
    );

    // Seal a Secret with a text and a binary value, for a fresh namespace.
    let password = format!("e2e-password-{suffix}");
    let binary: Vec<u8> = (0u8..=255).rev().collect();
    let binary_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&binary)
    };
    std::fs::write(
        dir.join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {ns}\n  labels: {{app: e2e}}\n\
             type: Opaque\nstringData:\n  password: {password}\ndata:\n  blob: {binary_b64}\n"
        ),
    )
    .expect("write secret");
    let out = gitseal(
        dir,
        &[
            "seal",
            "--keyring",
            "keys.yaml",
            "--env",
            "e2e",
            "-f",
            "secret.yaml",
            "-o",
            "sealed.yaml",
        ],
    );
    assert!(
        out.status.success(),
        "seal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed = std::fs::read_to_string(dir.join("sealed.yaml")).expect("sealed");
    assert!(
        !sealed.contains(&password),
        "sealed output shows the plaintext"
    );

    kubectl_ok(&["create", "namespace", &ns]);
    kubectl_ok(&[
        "apply",
        "-f",
        &dir.join("sealed.yaml").display().to_string(),
    ]);

    // The controller writes the Secret, owned by the SealedSecret, with the data.
    let secret = wait_for("Secret db", Duration::from_secs(120), || {
        let out = kubectl(&["-n", &ns, "get", "secret", "db", "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json"))
    });
    let item = |name: &str| decode(secret["data"][name].as_str().unwrap_or_default());
    assert_eq!(item("password"), password.as_bytes());
    assert_eq!(item("blob"), binary);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["metadata"]["labels"]["app"], "e2e");
    let owner = &secret["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "SealedSecret", "{secret}");
    assert_eq!(owner["name"], "db");
    assert_eq!(owner["controller"], true);

    // Its status says Ready/Synced and names the key id.
    wait_for(
        "SealedSecret db Ready=True",
        Duration::from_secs(60),
        || {
            let out = kubectl(&["-n", &ns, "get", "sealedsecret", "db", "-o", "json"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let ready = v["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?
                .clone();
            (ready["status"] == "True" && ready["reason"] == "Synced").then_some(())
        },
    );

    // A deleted Secret is put back.
    kubectl_ok(&["-n", &ns, "delete", "secret", "db", "--wait=true"]);
    let again = wait_for("Secret db put back", Duration::from_secs(120), || {
        let out = kubectl(&["-n", &ns, "get", "secret", "db", "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json"))
    });
    assert_eq!(
        decode(again["data"]["password"].as_str().unwrap_or_default()),
        password.as_bytes()
    );

    // No controller log line shows the plaintext.
    let logs = kubectl_ok(&[
        "-n",
        SYSTEM_NS,
        "logs",
        "-l",
        "app.kubernetes.io/name=gitseal-controller",
        "--all-containers",
        "--tail=-1",
    ]);
    assert!(
        !logs.contains(&password),
        "a controller log shows the plaintext"
    );

    drop(cleanup);
    say("passed against the cluster of KUBECONFIG");
}

// ---- without a cluster: what the suite relies on ----

/// A top-level `key: value` (or indented `key: value`) of a YAML text, unquoted.
fn yaml_field<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- ")
                .unwrap_or(l.trim())
                .strip_prefix(key)
        })
        .filter_map(|rest| rest.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
        .collect()
}

#[test]
fn image_references_split_for_kustomize() {
    let cases = [
        (
            "ghcr.io/gitseal/gitseal-controller:0.1.0",
            "ghcr.io/gitseal/gitseal-controller",
            Some(("newTag", "0.1.0")),
        ),
        (
            "localhost:5000/gitseal-controller:dev",
            "localhost:5000/gitseal-controller",
            Some(("newTag", "dev")),
        ),
        (
            "localhost:5000/gitseal-controller",
            "localhost:5000/gitseal-controller",
            None,
        ),
        ("gitseal-controller", "gitseal-controller", None),
        (
            "reg.example/gitseal@sha256:abc123",
            "reg.example/gitseal",
            Some(("digest", "sha256:abc123")),
        ),
        (
            "reg.example:443/gitseal:1.0@sha256:abc123",
            "reg.example:443/gitseal",
            Some(("digest", "sha256:abc123")),
        ),
    ];
    for (image, name, pin) in cases {
        let got = split_image(image).unwrap_or_else(|| panic!("{image}"));
        assert_eq!(got.name, name, "{image}");
        assert_eq!(
            got.pin.as_ref().map(|(k, v)| (*k, v.as_str())),
            pin,
            "{image}"
        );
    }
    for bad in ["", "a b:1", "name:", ":tag", "name@nodigest"] {
        assert_eq!(split_image(bad), None, "{bad:?}");
    }
    let k = overlay_kustomization(&split_image("localhost:5000/gs:dev").expect("image"));
    assert!(
        k.contains(&format!(
            "  - name: {DEPLOY_IMAGE}\n    newName: \"localhost:5000/gs\"\n    newTag: \"dev\"\n"
        )),
        "{k}"
    );
    assert!(k.contains("resources:\n  - base\n"), "{k}");
}

#[test]
fn deploy_image_and_user_match_the_dockerfile() {
    let root = repo();
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let deployment = read("deploy/deployment.yaml");
    let kustomization = read("deploy/kustomization.yaml");
    let dockerfile = read("Dockerfile");
    let cargo = read("Cargo.toml");
    let version = cargo
        .split("[workspace.package]")
        .nth(1)
        .and_then(|s| yaml_field_toml(s, "version"))
        .expect("workspace version");

    // The image the Deployment runs is the one the overlay (and the kustomization) replaces,
    // tagged with the workspace version.
    assert_eq!(
        yaml_field(&deployment, "image"),
        vec![format!("{DEPLOY_IMAGE}:{version}").as_str()]
    );
    assert_eq!(yaml_field(&kustomization, "name"), vec![DEPLOY_IMAGE]);
    assert_eq!(yaml_field(&kustomization, "newTag"), vec![version.as_str()]);
    assert_eq!(yaml_field(&kustomization, "namespace"), vec![SYSTEM_NS]);

    // The image's user is the uid/gid the pod runs as.
    let uid = yaml_field(&deployment, "runAsUser");
    let gid = yaml_field(&deployment, "runAsGroup");
    assert_eq!((uid.len(), gid.len()), (1, 1), "one pod securityContext");
    let user = format!("USER {}:{}", uid[0], gid[0]);
    assert!(
        dockerfile.lines().any(|l| l.trim() == user),
        "Dockerfile lacks {user:?}"
    );
    assert!(dockerfile.contains("cargo build --release --locked -p gitseal-controller"));
    assert!(dockerfile.contains(&format!("docker build -t {DEPLOY_IMAGE}:{version} .")));
    assert!(dockerfile.contains(&format!("ARG VERSION={version}")));
    // The container runs `gitseal-controller run …`: args start with the subcommand.
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/gitseal-controller\"]"));
    let args = deployment.split("args:").nth(1).expect("args");
    assert_eq!(args.lines().nth(1).map(str::trim), Some("- run"));
    // The Service port the proxy path names (`gitseal-controller:http`) exists.
    let service = read("deploy/service.yaml");
    assert!(service.contains("name: gitseal-controller"));
    assert_eq!(yaml_field(&service, "name").last().copied(), Some("http"));
}

/// `key = "value"` in a TOML section.
fn yaml_field_toml(section: &str, key: &str) -> Option<String> {
    section.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}
