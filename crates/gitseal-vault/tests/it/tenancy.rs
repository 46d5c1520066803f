//! Tenancy against a real OpenBao with an audit log: a reference can only
//! make the client read the secret it describes, within the policy.
//!
//! The attack (issue 9 §10): from namespace `data`, the KV v1 reference
//! `secret/data/team-b/db` on the KV v2 mount `secret` passed the hardened
//! template `secret:{namespace}/*` and read team-b's secret, because Vault
//! serves `secret/data/team-b/db` as the KV v2 secret `team-b/db`. Every
//! namespace named like a KV v2 API segment tried the same. Here each try is
//! refused, and OpenBao's audit log shows that none of them reached a KV
//! mount at all.

use gitseal_test_support::openbao::{AuditedRequest, Bao};
use gitseal_vault::{
    AuthMethod, Error, PathPolicy, SecretString, TokenSource, VaultClient, VaultConfig,
};
use serde_json::json;

use crate::{r, value};

/// The namespace names that collide with a KV v2 API segment.
const COLLIDING: [&str; 7] = [
    "data", "metadata", "delete", "destroy", "undelete", "subkeys", "config",
];

const TEAM_B: &str = "team-b-canary-3f9e";

/// A client whose token reads everything on `secret/` (KV v2) and `legacy/`
/// (KV v1), as the documented controller policy does.
async fn reader(bao: &Bao) -> VaultClient {
    bao.api(
        "POST",
        "sys/policies/acl/gitseal-read",
        Some(
            json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }\n\
                               path \"legacy/*\" { capabilities = [\"read\"] }"}),
        ),
    )
    .await;
    let created = bao
        .api(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["gitseal-read"], "ttl": "1h"})),
        )
        .await;
    let token = created["auth"]["client_token"].as_str().expect("token");
    let mut config = VaultConfig::new(
        bao.addr(),
        AuthMethod::Token(TokenSource::Value(SecretString::from(token.to_string()))),
    );
    config.shared_cache_ttl = std::time::Duration::ZERO;
    VaultClient::new(config).await.expect("client")
}

/// Requests made after the first `skip` that touched a KV mount.
fn kv_requests(bao: &Bao, skip: usize) -> Vec<AuditedRequest> {
    bao.audited_requests()
        .into_iter()
        .skip(skip)
        .filter(|q| q.path.starts_with("secret/") || q.path.starts_with("legacy/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_namespaces_cannot_read_other_tenants_on_kv1_or_kv2_mounts() {
    let Some(bao) = Bao::start_audited().await else {
        return;
    };
    bao.enable_kv1("legacy").await;
    // Victims: team-b on the KV v2 mount, and namespace `data` on the KV v1
    // mount (a KV v2 reference on a KV v1 mount requests `legacy/data/...`).
    bao.put_kv2("secret", "team-b/db", json!({"data": TEAM_B, "pw": TEAM_B}))
        .await;
    for ns in COLLIDING {
        bao.api(
            "POST",
            &format!("legacy/data/{ns}/team-b/db"),
            Some(json!({"pw": TEAM_B})),
        )
        .await;
        // The attacker's own secret, for the control read below.
        bao.put_kv2("secret", &format!("{ns}/own"), json!({"pw": "own"}))
            .await;
    }
    let client = reader(&bao).await;
    let hardened =
        PathPolicy::from_templates(["secret:{namespace}/*", "legacy:{namespace}/*"]).expect("ok");
    for (name, policy) in [("hardened", &hardened), ("default", &PathPolicy::default())] {
        for ns in COLLIDING {
            let session = client.session().for_namespace(policy, ns);
            let before = bao.audited_requests().len();
            let attacks = [
                // The reference, and its metadata/subkeys/... twins.
                (format!("kv1:secret/{ns}/team-b/db#data"), "VaultForbidden"),
                (format!("kv1:secret/{ns}/team-b/db#pw"), "VaultForbidden"),
                // The mirror image on a KV v1 mount: touches `data/{ns}/...`,
                // namespace `data`'s path (its own, when ns is `data`).
                (
                    format!("legacy/{ns}/team-b/db#pw"),
                    if ns == "data" {
                        "VaultInvalidRef"
                    } else {
                        "VaultForbidden"
                    },
                ),
            ];
            for (attack, want) in attacks {
                let e = session.resolve(&r(&attack)).await.unwrap_err();
                assert_eq!(e.reason(), want, "{name}, namespace {ns}, {attack}: {e}");
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains(TEAM_B), "{shown}");
            }
            let touched = kv_requests(&bao, before);
            assert!(
                touched.is_empty(),
                "{name}, namespace {ns}: the attacks reached a KV mount: {touched:?}"
            );
            // Control: the same session reads the namespace's own secret, and
            // the audit log shows that read (so the check above can fail).
            assert_eq!(
                value(&session, &r(&format!("secret/{ns}/own#pw"))).await,
                "own"
            );
            let touched = kv_requests(&bao, before);
            assert_eq!(touched.len(), 1, "{touched:?}");
            assert_eq!(touched[0].path, format!("secret/data/{ns}/own"));
            assert_eq!(touched[0].policies, ["default", "gitseal-read"]);
        }
    }
    // The mount lookups are the only extra calls: once per mount and minute.
    assert_eq!(client.metrics().mount_lookups, 2, "{:?}", client.metrics());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_and_non_kv_mounts_are_forbidden_and_never_read() {
    let Some(bao) = Bao::start_audited().await else {
        return;
    };
    bao.api(
        "POST",
        "sys/mounts/transit",
        Some(json!({"type": "transit"})),
    )
    .await;
    bao.api("POST", "transit/keys/team", None).await;
    let client = VaultClient::new(bao.root_config()).await.expect("client");
    let session = client.session();
    let before = bao.audited_requests().len();

    // Built-in mounts are refused when the reference is made.
    for text in [
        "kv1:auth/token/lookup-self#id",
        "kv1:sys/policy/root#policy",
        "kv1:cubbyhole/team/x#y",
        "identity/entity/name#id",
    ] {
        let e = text.parse::<gitseal_vault::VaultRef>().unwrap_err();
        assert_eq!(e.reason(), "VaultForbidden", "{text}: {e}");
        assert!(e.to_string().contains("is a built-in Vault path"), "{e}");
    }
    // Another engine is refused once its type is known, before any read.
    let e = session
        .resolve(&r("kv1:transit/keys/team#type"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Vault path transit/keys/team may not be read: mount `transit` is a `transit` engine, \
         not KV; only KV secrets can be referenced"
    );
    assert!(
        matches!(
            e,
            Error::Forbidden {
                namespace: None,
                ..
            }
        ),
        "{e:?}"
    );
    let paths: Vec<String> = bao
        .audited_requests()
        .into_iter()
        .skip(before)
        .map(|q| q.path)
        .collect();
    assert_eq!(
        paths,
        ["auth/token/lookup-self", "sys/internal/ui/mounts/transit"],
        "the login and the mount lookup, nothing else"
    );
}
