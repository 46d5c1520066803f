//! Kubernetes auth end to end: real OpenBao, fake Kubernetes TokenReview API.
//!
//! OpenBao's kubernetes auth backend validates a service-account JWT by
//! POSTing a TokenReview to the API server. No API server runs here, so the
//! test serves that one endpoint itself (plain HTTP on loopback), which lets
//! the real backend accept our JWT. What this cannot show is a real
//! cluster's token signing and audience checks: those are covered by the
//! KUBECONFIG-gated suite of the controller.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gitseal_test_support::openbao::Bao;
use gitseal_vault::{AuthMethod, ExposeSecret, VaultClient, VaultConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::r;

/// A throwaway self-signed CA: the backend insists on one even for http.
const FAKE_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBgzCCASmgAwIBAgIUch78r4PCvPO7bufpOsp+trSB+scwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLZmFrZS1rOHMtY2EwIBcNMjYxMTIxMjE0NDU5WhgPMjEyNjEw
MjgyMTQ0NTlaMBYxFDASBgNVBAMMC2Zha2UtazhzLWNhMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEBMrXDAc6VCcMGB2aERiD0L8HqZVyLwyN/mf5+zhWsEcvaNeO
zrJUAid43IyGPK+q579yzSF9igfvzeD06fqewKNTMFEwHQYDVR0OBBYEFPmhxwSF
Ntk96JE4w9Isan+nyYmoMB8GA1UdIwQYMBaAFPmhxwSFNtk96JE4w9Isan+nyYmo
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgD7FH3OFfPEGZnz6I
She9zC3xkiFH4mqxqC7kcEq2kh0CIQDuBXFB7aHHKKP//jPXiotmQEHa4l7ttSEf
UhBdlxKLlQ==
-----END CERTIFICATE-----
";

fn b64url(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (c as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// An (unsigned) service-account JWT of `namespace`/`name`.
fn fake_jwt(namespace: &str, name: &str) -> String {
    let header = b64url(r#"{"alg":"RS256","kid":"fake"}"#);
    let claims = b64url(
        &json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": "uid-1234",
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        })
        .to_string(),
    );
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

/// Serves TokenReview: authenticates every token as the service account
/// named in the JWT's claims; records the tokens it was asked about.
async fn fake_token_review() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read headers, then Content-Length bytes of body.
                let body = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body.to_string();
                        }
                    }
                };
                let review: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let token = review["spec"]["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                seen.lock().expect("lock").push(token.clone());
                // Decode the claims to answer with the matching user.
                let user = token
                    .split('.')
                    .nth(1)
                    .and_then(|c| {
                        let mut bits = 0u32;
                        let mut nbits = 0;
                        let mut out = Vec::new();
                        for ch in c.bytes() {
                            let v = match ch {
                                b'A'..=b'Z' => ch - b'A',
                                b'a'..=b'z' => ch - b'a' + 26,
                                b'0'..=b'9' => ch - b'0' + 52,
                                b'-' => 62,
                                b'_' => 63,
                                _ => return None,
                            };
                            bits = (bits << 6) | v as u32;
                            nbits += 6;
                            if nbits >= 8 {
                                nbits -= 8;
                                out.push((bits >> nbits) as u8);
                            }
                        }
                        serde_json::from_slice::<serde_json::Value>(&out).ok()
                    })
                    .and_then(|v| v["sub"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let reply = json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": {
                        "authenticated": true,
                        "user": {"username": user, "uid": "uid-1234", "groups": ["system:serviceaccounts"]}
                    }
                })
                .to_string();
                let resp = format!(
                    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_login_with_service_account_token() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let (api_port, seen) = fake_token_review().await;
    bao.api(
        "POST",
        "sys/auth/k8s-prod",
        Some(json!({"type": "kubernetes"})),
    )
    .await;
    bao.api(
        "POST",
        "auth/k8s-prod/config",
        Some(json!({
            "kubernetes_host": format!("http://127.0.0.1:{api_port}"),
            "kubernetes_ca_cert": FAKE_CA,
            "disable_local_ca_jwt": true,
        })),
    )
    .await;
    bao.api(
        "POST",
        "sys/policies/acl/ctl",
        Some(json!({"policy": r#"path "secret/data/*" { capabilities = ["read"] }"#})),
    )
    .await;
    bao.api(
        "POST",
        "auth/k8s-prod/role/gitseal",
        Some(json!({
            "bound_service_account_names": ["gitseal-controller"],
            "bound_service_account_namespaces": ["gitseal"],
            "token_policies": ["ctl"],
            "token_ttl": "1h",
        })),
    )
    .await;
    bao.put_kv2("secret", "team/db", json!({"pw": "from-k8s-auth"}))
        .await;

    let dir = tempfile::tempdir().expect("tmp");
    let jwt_file = dir.path().join("token");
    let jwt = fake_jwt("gitseal", "gitseal-controller");
    std::fs::write(&jwt_file, &jwt).expect("write jwt");
    let mut c = VaultConfig::new(
        bao.addr(),
        AuthMethod::Kubernetes {
            mount: "k8s-prod".into(),
            role: "gitseal".into(),
            jwt_file: jwt_file.clone(),
        },
    );
    c.timeout = Duration::from_secs(5);
    let client = VaultClient::new(c).await.expect("client");
    let v = client
        .session()
        .resolve(&r("secret/team/db#pw"))
        .await
        .expect("read");
    assert_eq!(v.expose_secret(), "from-k8s-auth");
    assert_eq!(client.metrics().logins, 1);
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        std::slice::from_ref(&jwt),
        "the JWT from the file was reviewed"
    );

    // A service account the role is not bound to is refused.
    std::fs::write(&jwt_file, fake_jwt("gitseal", "someone-else")).expect("write jwt");
    let c = VaultConfig::new(
        bao.addr(),
        AuthMethod::Kubernetes {
            mount: "k8s-prod".into(),
            role: "gitseal".into(),
            jwt_file,
        },
    );
    let other = VaultClient::new(c).await.expect("client");
    let err = other.login().await.unwrap_err();
    assert_eq!(err.reason(), "VaultAuthFailed", "{err}");
    assert!(
        err.to_string()
            .starts_with("Vault login with kubernetes auth failed: HTTP"),
        "{err}"
    );
}
