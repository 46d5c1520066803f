//! Tests of the Vault adapter: flags, reason mapping, refresh intervals,
//! and resolution against a real OpenBao dev server (one per test, stopped
//! by PID; `gitseal_test_support::openbao`). Without `bao` (`$BAO_BIN` or `PATH`;
//! `scripts/openbao.sh` installs it) the server tests return early with a
//! note, except under `CI`, where they fail.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gitseal_manifest::types::KvVersion as ManifestKv;
use gitseal_test_support::openbao::{vault_reference as vref, Bao, ROOT_TOKEN};
use gitseal_vault::{SecretString, TokenSource};
use secrecy::ExposeSecret as _;
use serde_json::json;

use super::*;
use crate::sources::{merge_vault, Resolved};

const CANARY: &str = "canary-vault-value-5e1f";
const HOUR: Duration = Duration::from_secs(3600);

/// A source on `bao` with the root token, the default policy
/// (`{namespace}/*`) and no shared cache (counters show sessions alone).
async fn source(bao: &Bao) -> VaultSource {
    let settings = VaultSettings {
        config: bao.root_config(),
        policy: PathPolicy::default(),
    };
    VaultSource::connect(settings).await.expect("client")
}

fn items(list: &[(&str, VaultReference)]) -> BTreeMap<String, VaultReference> {
    list.iter()
        .map(|(k, r)| (k.to_string(), r.clone()))
        .collect()
}

fn text(item: &VaultItem) -> String {
    match item {
        Ok(v) => String::from_utf8_lossy(v.expose_secret()).into_owned(),
        Err(f) => panic!("item {} failed: {}: {}", f.item, f.reason, f.message),
    }
}

fn failed(item: &VaultItem) -> &ItemFailure {
    match item {
        Ok(_) => panic!("expected a failure"),
        Err(f) => f,
    }
}

// ---------------------------------------------------------------------------
// Against a real OpenBao.

#[tokio::test]
async fn kv2_latest_and_pinned_versions_and_kv1() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let v1 = bao
        .put_kv2(
            "secret",
            "team/db",
            json!({"user": "app", "password": "pw-one"}),
        )
        .await;
    let v2 = bao
        .put_kv2(
            "secret",
            "team/db",
            json!({"user": "app", "password": "pw-two"}),
        )
        .await;
    assert_eq!((v1, v2), (1, 2));
    bao.enable_kv1("legacy").await;
    bao.api(
        "POST",
        "legacy/team/api",
        Some(json!({"token": "kv1-token"})),
    )
    .await;

    let src = source(&bao).await;
    let spec = items(&[
        ("user", vref("secret", "team/db", "user", None, None)),
        (
            "password",
            vref("secret", "team/db", "password", None, Some(ManifestKv::V2)),
        ),
        (
            "old-password",
            vref("secret", "team/db", "password", Some(1), None),
        ),
        (
            "api",
            vref("legacy", "team/api", "token", None, Some(ManifestKv::V1)),
        ),
    ]);
    let out = src.resolve_items("team", &spec, HOUR).await;
    assert_eq!(out.len(), 4);
    assert_eq!(text(&out["user"]), "app");
    assert_eq!(text(&out["password"]), "pw-two");
    assert_eq!(text(&out["old-password"]), "pw-one");
    assert_eq!(text(&out["api"]), "kv1-token");
    // user + password share one read; version 1 and the KV v1 secret are two more.
    let m = src.metrics();
    assert_eq!((m.logins, m.reads, m.read_failures), (1, 3, 0), "{m:?}");

    // Exported for Prometheus, under the controller registry's prefix.
    let mut registry = prometheus_client::registry::Registry::with_prefix("gitseal");
    registry.register_collector(Box::new(VaultMetricsCollector::new(&src)));
    let mut exported = String::new();
    prometheus_client::encoding::text::encode(&mut exported, &registry).expect("encode");
    for line in [
        "# TYPE gitseal_vault_calls counter",
        "gitseal_vault_calls_total{kind=\"login\"} 1",
        "gitseal_vault_calls_total{kind=\"read\"} 3",
        "gitseal_vault_calls_total{kind=\"token_check\"} 0",
        "gitseal_vault_calls_total{kind=\"mount_lookup\"} 2",
        "gitseal_vault_calls_total{kind=\"health_probe\"} 0",
        "gitseal_vault_read_failures_total 0",
        "gitseal_vault_cache_hits_total 1",
    ] {
        assert!(exported.lines().any(|l| l == line), "{line} in\n{exported}");
    }

    // A new reconcile is a new session: latest values are read again, and a
    // change in Vault reaches the Secret.
    bao.put_kv2(
        "secret",
        "team/db",
        json!({"user": "app", "password": "pw-three"}),
    )
    .await;
    let out = src.resolve_items("team", &spec, HOUR).await;
    assert_eq!(text(&out["password"]), "pw-three");
    assert_eq!(text(&out["old-password"]), "pw-one");
    let m = src.metrics();
    assert_eq!((m.logins, m.reads), (1, 6), "one login per process: {m:?}");

    // Through the trait object reconcile holds, and merged like reconcile does.
    let resolver: std::sync::Arc<dyn VaultResolver> = std::sync::Arc::new(src.clone());
    let mut resolved = Resolved::default();
    merge_vault(resolver.resolve("team", &spec, HOUR).await, &mut resolved);
    assert!(resolved.failures.is_empty());
    assert_eq!(
        resolved.data.keys().collect::<Vec<_>>(),
        ["api", "old-password", "password", "user"]
    );
}

#[tokio::test]
async fn forbidden_paths_are_refused_before_any_vault_call() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "other-team/db", json!({"password": CANARY}))
        .await;
    let src = source(&bao).await;
    let spec = items(&[
        ("a", vref("secret", "other-team/db", "password", None, None)),
        ("b", vref("secret", "team-b/db", "password", None, None)),
        ("c", vref("secret", "team", "password", None, None)),
    ]);
    let out = src.resolve_items("team", &spec, HOUR).await;
    for item in ["a", "b", "c"] {
        let f = failed(&out[item]);
        assert_eq!(f.reason, Reason::VaultForbidden, "{item}: {}", f.message);
        assert!(
            f.message
                .contains("namespace `team` may not read Vault path"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("this namespace may read: team/*"),
            "{}",
            f.message
        );
    }
    // Not one Vault call: no login, no read.
    assert_eq!(src.metrics().vault_calls(), 0, "{:?}", src.metrics());

    // An operator template naming the mount narrows it further.
    let narrow = VaultSource::new(
        src.client().clone(),
        PathPolicy::from_templates(["kv:{namespace}/*"]).expect("template"),
    );
    let out = narrow
        .resolve_items(
            "team",
            &items(&[("x", vref("secret", "team/db", "password", None, None))]),
            HOUR,
        )
        .await;
    assert_eq!(failed(&out["x"]).reason, Reason::VaultForbidden);
    assert_eq!(src.metrics().vault_calls(), 0);
}

#[tokio::test]
async fn vaults_own_403_is_forbidden() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": CANARY}))
        .await;
    bao.api(
        "POST",
        "sys/policies/acl/nothing",
        Some(json!({"policy": "path \"secret/data/elsewhere/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    let tok = bao
        .api(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["nothing"], "ttl": "1h"})),
        )
        .await;
    let token = tok["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token).expect("write token");

    let f = resolve_team_db_password(&[
        "--vault-addr",
        &bao.addr(),
        "--vault-auth",
        "token",
        "--vault-token-file",
        token_file.to_str().expect("utf-8"),
    ])
    .await;
    assert_eq!(f.reason, Reason::VaultForbidden, "{}", f.message);
    assert_eq!(
        f.message,
        "Vault path secret/team/db may not be read: Vault's policy for this token denies it \
         (HTTP 403: permission denied)"
    );
    assert!(
        !f.message.contains(&token) && !f.message.contains(CANARY),
        "{}",
        f.message
    );
}

/// Connects with the controller's Vault flags `flags` and resolves
/// `secret/team/db#password` for namespace `team`, which must fail.
async fn resolve_team_db_password(flags: &[&str]) -> ItemFailure {
    let args = Args::parse_from(std::iter::once("t").chain(flags.iter().copied()));
    let settings = args.vault.settings().expect("settings").expect("vault on");
    let src = VaultSource::connect(settings).await.expect("client");
    let out = src
        .resolve_items(
            "team",
            &items(&[("pw", vref("secret", "team/db", "password", None, None))]),
            HOUR,
        )
        .await;
    failed(&out["pw"]).clone()
}

#[tokio::test]
async fn a_refused_login_is_vault_auth_failed_and_names_no_credential() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": "pw-one"}))
        .await;
    let dir = tempfile::tempdir().expect("dir");
    let (role_file, secret_file) = bao.approle_reading_all("ctl", dir.path()).await;
    // The right role id with a wrong secret id: Vault refuses the login.
    let wrong_secret = "secret-ctl-WRONG-4d1f9e"; // gitseal:allow made-up AppRole secret id
    std::fs::write(&secret_file, wrong_secret).expect("write secret id");

    // The login happens on first use, so connecting succeeds.
    let f = resolve_team_db_password(&[
        "--vault-addr",
        &bao.addr(),
        "--vault-auth",
        "approle",
        "--vault-role-id-file",
        role_file.to_str().expect("utf-8"),
        "--vault-secret-id-file",
        secret_file.to_str().expect("utf-8"),
    ])
    .await;
    assert_eq!(f.reason, Reason::VaultAuthFailed, "{}", f.message);
    assert_eq!(f.reason.as_str(), "VaultAuthFailed");
    assert!(
        f.message
            .starts_with("Vault login with approle auth failed"),
        "{}",
        f.message
    );
    assert!(
        !f.message.contains(wrong_secret) && !f.message.contains("pw-one"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn missing_paths_deleted_versions_and_fields_are_not_found() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": "pw-one"}))
        .await;
    bao.put_kv2("secret", "team/db", json!({"password": "pw-two"}))
        .await;
    bao.put_kv2("secret", "team/db", json!({"password": "pw-three"}))
        .await;
    // Soft-delete version 1, destroy version 3.
    bao.api(
        "POST",
        "secret/delete/team/db",
        Some(json!({"versions": [1]})),
    )
    .await;
    bao.api(
        "POST",
        "secret/destroy/team/db",
        Some(json!({"versions": [3]})),
    )
    .await;
    bao.put_kv2("secret", "team/db", json!({"password": "pw-four"}))
        .await;
    let src = source(&bao).await;
    let spec = items(&[
        (
            "missing",
            vref("secret", "team/nothing-here", "password", None, None),
        ),
        (
            "deleted",
            vref("secret", "team/db", "password", Some(1), None),
        ),
        (
            "destroyed",
            vref("secret", "team/db", "password", Some(3), None),
        ),
        (
            "no-such-version",
            vref("secret", "team/db", "password", Some(9), None),
        ),
        (
            "no-field",
            vref("secret", "team/db", "username", None, None),
        ),
        ("ok", vref("secret", "team/db", "password", Some(2), None)),
    ]);
    let out = src.resolve_items("team", &spec, HOUR).await;
    let msg = |k: &str| {
        let f = failed(&out[k]);
        assert_eq!(f.reason, Reason::VaultNotFound, "{k}: {}", f.message);
        assert_eq!(f.item, k);
        f.message.clone()
    };
    assert_eq!(
        msg("missing"),
        "Vault secret secret/team/nothing-here not found: no secret at this path"
    );
    assert_eq!(
        msg("deleted"),
        "Vault secret secret/team/db@1 not found: this version was deleted"
    );
    assert_eq!(
        msg("destroyed"),
        "Vault secret secret/team/db@3 not found: this version was destroyed"
    );
    assert_eq!(
        msg("no-such-version"),
        "Vault secret secret/team/db@9 not found: no secret at this path"
    );
    assert_eq!(
        msg("no-field"),
        "Vault secret secret/team/db has no field `username`"
    );
    assert_eq!(text(&out["ok"]), "pw-two");

    // Reconcile sees the first failure and leaves the Secret alone.
    let mut resolved = Resolved::default();
    merge_vault(out, &mut resolved);
    assert_eq!(resolved.failures.len(), 5);
    assert_eq!(resolved.failures[0].item, "deleted");
}

#[tokio::test]
async fn vault_stopped_is_unavailable_and_recovers() {
    let Some(mut bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": "pw-one"}))
        .await;
    let src = source(&bao).await;
    let spec = items(&[("pw", vref("secret", "team/db", "password", None, None))]);
    assert_eq!(
        text(&src.resolve_items("team", &spec, HOUR).await["pw"]),
        "pw-one"
    );

    bao.stop();
    let out = src.resolve_items("team", &spec, HOUR).await;
    let f = failed(&out["pw"]);
    assert_eq!(f.reason, Reason::VaultUnavailable, "{}", f.message);
    assert!(
        f.message
            .starts_with(&format!("Vault at {} is unavailable: ", bao.addr())),
        "{}",
        f.message
    );
    // Reconcile turns this into an error: error_policy backs off, the
    // existing Secret is not touched.
    let mut resolved = Resolved::default();
    merge_vault(out, &mut resolved);
    assert!(resolved.data.is_empty());
    assert_eq!(resolved.failures[0].reason, Reason::VaultUnavailable);

    // Vault comes back (a dev server starts empty: seed it again).
    bao.restart().await;
    bao.put_kv2("secret", "team/db", json!({"password": "pw-back"}))
        .await;
    assert_eq!(
        text(&src.resolve_items("team", &spec, HOUR).await["pw"]),
        "pw-back"
    );
}

#[tokio::test]
async fn no_value_or_token_in_failures_or_debug() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": CANARY}))
        .await;
    let src = source(&bao).await;
    let spec = items(&[
        ("pw", vref("secret", "team/db", "password", None, None)),
        ("nope", vref("secret", "team/db", "nope", None, None)),
        (
            "forbidden",
            vref("secret", "other/db", "password", None, None),
        ),
    ]);
    let out = src.resolve_items("team", &spec, HOUR).await;
    assert_eq!(text(&out["pw"]), CANARY);
    let shown = format!("{out:?} {src:?}");
    for f in out.values().filter_map(|r| r.as_ref().err()) {
        assert!(
            !f.message.contains(CANARY) && !f.message.contains(ROOT_TOKEN),
            "{}",
            f.message
        );
    }
    assert!(!shown.contains(CANARY), "{shown}");
    assert!(!shown.contains(ROOT_TOKEN), "{shown}");
}

/// The attack of issue 9 §10 through the adapter, from every namespace
/// named like a KV v2 API segment: refused as `VaultForbidden`, and the
/// audit log shows no request to the KV mount.
#[tokio::test]
async fn kv1_references_into_a_kv2_mount_are_vault_forbidden_and_read_nothing() {
    let Some(bao) = Bao::start_audited().await else {
        return;
    };
    bao.put_kv2("secret", "team-b/db", json!({"data": CANARY}))
        .await;
    let client = VaultClient::new(bao.root_config()).await.expect("client");
    let hardened = PathPolicy::from_templates(["secret:{namespace}/*"]).expect("template");
    let src = VaultSource::new(client, hardened);
    let before = bao.audited_requests().len();
    for ns in [
        "data", "metadata", "delete", "destroy", "undelete", "subkeys", "config",
    ] {
        let spec = items(&[(
            "stolen",
            vref(
                "secret",
                &format!("{ns}/team-b/db"),
                "data",
                None,
                Some(ManifestKv::V1),
            ),
        )]);
        let out = src.resolve_items(ns, &spec, HOUR).await;
        let f = failed(&out["stolen"]);
        assert_eq!(f.reason, Reason::VaultForbidden, "{ns}: {}", f.message);
        assert!(
            f.message
                .starts_with(&format!("namespace `{ns}` may not read Vault path secret/")),
            "{ns}: {}",
            f.message
        );
        assert!(!f.message.contains(CANARY), "{}", f.message);
    }
    let kv: Vec<String> = bao
        .audited_requests()
        .into_iter()
        .skip(before)
        .map(|q| q.path)
        .filter(|p| p.starts_with("secret/"))
        .collect();
    assert_eq!(kv, Vec::<String>::new(), "nothing on the KV mount was read");
}

/// A `refreshInterval` shorter than `--vault-cache-ttl` is not stretched:
/// an object reads again once a tenth of its interval has passed.
#[tokio::test]
async fn a_short_refresh_interval_is_not_stretched_by_the_shared_cache() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    bao.put_kv2("secret", "team/db", json!({"password": "one"}))
        .await;
    let mut config = bao.root_config();
    config.shared_cache_ttl = Duration::from_secs(30); // the flag's default
    let src = VaultSource::new(
        VaultClient::new(config).await.expect("client"),
        PathPolicy::default(),
    );
    let spec = items(&[("pw", vref("secret", "team/db", "password", None, None))]);
    let ten_seconds = Duration::from_secs(10);
    assert_eq!(shared_read_max_age(ten_seconds), Duration::from_secs(1));
    assert_eq!(
        text(&src.resolve_items("team", &spec, ten_seconds).await["pw"]),
        "one"
    );
    bao.put_kv2("secret", "team/db", json!({"password": "two"}))
        .await;
    // Within a second the shared read serves the 10 s object too...
    assert_eq!(
        text(&src.resolve_items("team", &spec, ten_seconds).await["pw"]),
        "one"
    );
    assert_eq!(src.metrics().reads, 1);
    // ...after it, the 10 s object reads again, although the cache keeps
    // reads for 30 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        text(&src.resolve_items("team", &spec, ten_seconds).await["pw"]),
        "two"
    );
    assert_eq!(src.metrics().reads, 2);
    // An hourly object takes that fresh read from the cache.
    assert_eq!(
        text(&src.resolve_items("team", &spec, HOUR).await["pw"]),
        "two"
    );
    assert_eq!(src.metrics().reads, 2);
}

// ---------------------------------------------------------------------------
// Without a server.

#[test]
fn retries_come_at_base_then_as_long_again_as_the_object_has_been_failing() {
    use crate::reconcile::backoff;
    let timing = crate::reconcile::Timing::default();
    // Seconds after the first failure at which each retry runs.
    let mut at = Duration::ZERO;
    let mut schedule = Vec::new();
    for _ in 0..9 {
        at += backoff(timing, at);
        schedule.push(at.as_secs());
    }
    assert_eq!(schedule, [5, 10, 20, 40, 80, 160, 320, 620, 920]);
}

/// A reconcile that fails again right away (its own status update, a
/// change of the object, Vault coming back and failing again) does not
/// double the wait: the old per-failure count made the first retries
/// +10 s, +20 s, ... instead of +5 s, +10 s.
#[tokio::test]
async fn an_extra_failed_reconcile_does_not_double_the_backoff() {
    use crate::reconcile::{error_policy, Context, Timing};
    use kube::runtime::controller::Action;
    let (service, _handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let ctx = std::sync::Arc::new(Context::new(
        kube::Client::new(service, "default"),
        std::sync::Arc::new(crate::keys::KeyStore::new()),
        std::sync::Arc::new(crate::hash::DataHasher::random()),
        std::sync::Arc::new(crate::sources::NoVault),
        kube::runtime::events::Reporter {
            controller: "test".into(),
            instance: None,
        },
        std::sync::Arc::new(crate::metrics::Metrics::new()),
        Timing::default(),
    ));
    let obj: SealedSecret = serde_json::from_value(json!({
        "apiVersion": "gitseal.dev/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "db", "namespace": "team", "uid": "u1"},
        "spec": {},
    }))
    .expect("object");
    let obj = std::sync::Arc::new(obj);
    let err = Error::Items {
        reason: Reason::VaultUnavailable,
        message: "Vault at http://vault:8200 is unavailable".into(),
    };
    for _ in 0..3 {
        assert_eq!(
            error_policy(obj.clone(), &err, ctx.clone()),
            Action::requeue(Duration::from_secs(5))
        );
    }
}

#[test]
fn objects_wait_for_vault_when_their_ready_condition_says_so() {
    let object = |vault: bool, status: &str, reason: &str| -> SealedSecret {
        let mut v = json!({
            "apiVersion": "gitseal.dev/v1alpha1",
            "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "team"},
            "spec": {},
            "status": {"conditions": [{
                "type": "Ready", "status": status, "reason": reason, "message": "m"
            }]},
        });
        if vault {
            v["spec"]["vaultData"] =
                json!({"pw": {"mount": "secret", "path": "team/db", "field": "pw"}});
        }
        serde_json::from_value(v).expect("object")
    };
    assert!(waits_for_vault(&object(true, "False", "VaultUnavailable")));
    assert!(!waits_for_vault(&object(
        false,
        "False",
        "VaultUnavailable"
    )));
    assert!(!waits_for_vault(&object(true, "False", "VaultForbidden")));
    assert!(!waits_for_vault(&object(true, "True", "Synced")));
}

#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    vault: VaultArgs,
}

fn parse(args: &[&str]) -> Result<Option<VaultSettings>, gitseal_vault::Error> {
    let mut argv = vec!["t"];
    argv.extend_from_slice(args);
    Args::try_parse_from(argv)
        .expect("flags parse")
        .vault
        .settings_with(|_| false)
}

#[test]
fn no_address_means_vault_is_off() {
    assert!(parse(&[]).expect("ok").is_none() || std::env::var_os("VAULT_ADDR").is_some());
    let a = Args::try_parse_from(["t", "--vault-addr", ""]).expect("flags");
    assert!(a.vault.settings_with(|_| false).expect("ok").is_none());
}

#[test]
fn flags_build_each_auth_method() {
    let s = parse(&["--vault-addr", "https://vault:8200", "--vault-role", "gs"])
        .expect("ok")
        .expect("on");
    assert_eq!(s.config.address, "https://vault:8200");
    match &s.config.auth {
        AuthMethod::Kubernetes {
            mount,
            role,
            jwt_file,
        } => {
            assert_eq!((mount.as_str(), role.as_str()), ("kubernetes", "gs"));
            assert_eq!(jwt_file, &PathBuf::from(DEFAULT_SERVICE_ACCOUNT_TOKEN));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.policy, PathPolicy::default());
    assert_eq!(s.config.timeout, Duration::from_secs(10));
    assert_eq!(s.config.shared_cache_ttl, Duration::from_secs(30));

    let s = parse(&[
        "--vault-addr",
        "http://v:8200",
        "--vault-auth",
        "approle",
        "--vault-auth-mount",
        "ar",
        "--vault-role-id-file",
        "/r",
        "--vault-secret-id-file",
        "/s",
        "--vault-path-template",
        "secret:{namespace}/*,kv:shared/{namespace}/*",
        "--vault-path-template",
        "kv:common/*",
        "--vault-timeout",
        "3s",
        "--vault-cache-ttl",
        "0",
        "--vault-namespace",
        "ops",
        "--vault-cacert",
        "/ca.pem",
    ])
    .expect("ok")
    .expect("on");
    match &s.config.auth {
        AuthMethod::AppRole {
            mount,
            role_id_file,
            secret_id_file,
        } => {
            assert_eq!(mount, "ar");
            assert_eq!(
                (role_id_file.to_str(), secret_id_file.to_str()),
                (Some("/r"), Some("/s"))
            );
        }
        other => panic!("{other:?}"),
    }
    let templates: Vec<String> = s
        .policy
        .templates()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        templates,
        [
            "secret:{namespace}/*",
            "kv:shared/{namespace}/*",
            "kv:common/*"
        ]
    );
    assert_eq!(s.config.timeout, Duration::from_secs(3));
    assert_eq!(s.config.shared_cache_ttl, Duration::ZERO);
    assert_eq!(s.config.vault_namespace.as_deref(), Some("ops"));
    assert_eq!(s.config.ca_cert_files, [PathBuf::from("/ca.pem")]);

    let s = parse(&[
        "--vault-addr",
        "http://v:8200",
        "--vault-auth",
        "token",
        "--vault-token-file",
        "/t",
    ])
    .expect("ok")
    .expect("on");
    assert!(
        matches!(&s.config.auth, AuthMethod::Token(TokenSource::File(p)) if p == &PathBuf::from("/t"))
    );
    let a = Args::try_parse_from([
        "t",
        "--vault-addr",
        "http://v:8200",
        "--vault-auth",
        "token",
    ])
    .expect("flags");
    let s = a
        .vault
        .settings_with(|n| n == "VAULT_TOKEN")
        .expect("ok")
        .expect("on");
    assert!(matches!(&s.config.auth, AuthMethod::Token(TokenSource::Env(v)) if v == "VAULT_TOKEN"));
}

#[test]
fn incomplete_or_invalid_flags_are_clear_errors() {
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--vault-addr",
                "http://v",
                "--vault-auth",
                "approle",
                "--vault-role-id-file",
                "/r",
            ],
            "--vault-auth approle needs --vault-role-id-file and --vault-secret-id-file",
        ),
        (
            &["--vault-addr", "http://v", "--vault-auth", "token"],
            "--vault-auth token needs --vault-token-file or the VAULT_TOKEN variable",
        ),
        (
            &["--vault-addr", "http://v", "--vault-role", " "],
            "needs --vault-role",
        ),
        (
            &[
                "--vault-addr",
                "http://v",
                "--vault-path-template",
                "sys:{namespace}/*",
            ],
            "built-in Vault paths cannot be allowed",
        ),
    ];
    for (args, want) in cases {
        let e = parse(args).expect_err("must fail");
        assert!(e.to_string().contains(want), "{args:?}: {e}");
        assert_eq!(e.reason(), "VaultConfigInvalid");
    }
    assert!(Args::try_parse_from(["t", "--vault-timeout", "soon"]).is_err());
    assert!(Args::try_parse_from(["t", "--vault-auth", "ldap"]).is_err());
}

#[tokio::test]
async fn a_bad_address_fails_at_start_not_per_reconcile() {
    let e = VaultSource::connect(
        parse(&[
            "--vault-addr",
            "vault:8200",
            "--vault-auth",
            "token",
            "--vault-token-file",
            "/t",
        ])
        .expect("flags")
        .expect("on"),
    )
    .await
    .expect_err("not a URL");
    assert_eq!(e.reason(), "VaultConfigInvalid", "{e}");
}

#[tokio::test]
async fn invalid_references_fail_without_vault() {
    // Nothing listens on port 1: any call would be VaultUnavailable.
    let client = VaultClient::new(VaultConfig::new(
        "http://127.0.0.1:1",
        AuthMethod::Token(TokenSource::Value(SecretString::from("t"))),
    ))
    .await
    .expect("client");
    let src = VaultSource::new(client, PathPolicy::default());
    let spec = items(&[
        ("dotdot", vref("secret", "team/../other", "pw", None, None)),
        (
            "v1-version",
            vref("kv", "team/x", "pw", Some(2), Some(ManifestKv::V1)),
        ),
        ("no-field", vref("kv", "team/x", "", None, None)),
    ]);
    let out = src.resolve_items("team", &spec, HOUR).await;
    for (k, r) in &out {
        let f = failed(r);
        assert_eq!(f.reason, Reason::InvalidSpec, "{k}: {}", f.message);
        assert!(
            f.message.starts_with("invalid Vault reference"),
            "{k}: {}",
            f.message
        );
    }
    assert!(failed(&out["v1-version"])
        .message
        .contains("KV v1 secrets have no versions"));
    assert_eq!(src.metrics().vault_calls(), 0);
    // Built-in mounts are not malformed references: they are forbidden.
    let spec = items(&[
        (
            "auth",
            vref(
                "auth",
                "token/lookup-self",
                "id",
                None,
                Some(ManifestKv::V1),
            ),
        ),
        (
            "cubbyhole",
            vref("cubbyhole", "team/x", "pw", None, Some(ManifestKv::V1)),
        ),
        (
            "identity",
            vref("identity", "entity/name", "id", None, None),
        ),
        ("sys", vref("sys", "team/x", "pw", None, None)),
    ]);
    let out = src.resolve_items("team", &spec, HOUR).await;
    for (k, r) in &out {
        let f = failed(r);
        assert_eq!(f.reason, Reason::VaultForbidden, "{k}: {}", f.message);
        assert!(
            f.message
                .ends_with(&format!("`{k}` is a built-in Vault path, not a KV mount")),
            "{k}: {}",
            f.message
        );
    }
    assert_eq!(src.metrics().vault_calls(), 0);
    // And an unreachable Vault is VaultUnavailable.
    let out = src
        .resolve_items(
            "team",
            &items(&[("pw", vref("kv", "team/x", "pw", None, None))]),
            HOUR,
        )
        .await;
    assert_eq!(failed(&out["pw"]).reason, Reason::VaultUnavailable);
}

#[test]
fn every_vault_error_maps_to_a_reason() {
    use gitseal_vault::{Error as V, NotFoundKind};
    let s = String::new;
    let cases = [
        (
            V::Unavailable {
                address: s(),
                detail: s(),
            },
            Reason::VaultUnavailable,
        ),
        (
            V::Auth {
                method: "kubernetes",
                detail: s(),
            },
            Reason::VaultAuthFailed,
        ),
        (V::Config { detail: s() }, Reason::VaultUnavailable),
        (
            V::Unexpected {
                mount: s(),
                path: s(),
                detail: s(),
            },
            Reason::VaultUnavailable,
        ),
        (
            V::NotFound {
                mount: s(),
                path: s(),
                version: Some(1),
                kind: NotFoundKind::Deleted,
            },
            Reason::VaultNotFound,
        ),
        (
            V::NotFound {
                mount: s(),
                path: s(),
                version: None,
                kind: NotFoundKind::Missing,
            },
            Reason::VaultNotFound,
        ),
        (
            V::FieldMissing {
                mount: s(),
                path: s(),
                version: None,
                field: s(),
            },
            Reason::VaultNotFound,
        ),
        (
            V::Forbidden {
                namespace: None,
                mount: s(),
                path: s(),
                detail: s(),
            },
            Reason::VaultForbidden,
        ),
        (
            V::InvalidRef {
                reference: s(),
                reason: s(),
            },
            Reason::InvalidSpec,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(reason_for(&e), want, "{e:?}");
    }
}

#[test]
fn refresh_intervals_parse_with_clear_errors() {
    assert_eq!(
        parse_refresh_interval(None).expect("default"),
        Duration::from_secs(3600)
    );
    for (t, secs) in [
        ("1h", 3600),
        ("15m", 900),
        ("30s", 30),
        ("1h30m", 5400),
        ("10s", 10),
        ("30d", 2_592_000),
    ] {
        assert_eq!(
            parse_refresh_interval(Some(t)).expect(t),
            Duration::from_secs(secs),
            "{t}"
        );
    }
    for (t, why) in [
        ("soon", "is not a duration"),
        ("", "is not a duration"),
        ("1x", "is not a duration"),
        ("-5m", "is not a duration"),
        ("0", "is too short"),
        ("5s", "is too short"),
        ("31d", "is too long"),
    ] {
        match parse_refresh_interval(Some(t)) {
            Err(Error::Items {
                reason: Reason::InvalidSpec,
                message,
            }) => {
                assert!(
                    message.starts_with(&format!("spec.refreshInterval {t:?} {why}")),
                    "{message}"
                );
                assert!(message.contains("such as 1h, 15m, 30s"), "{message}");
            }
            other => panic!("{t:?}: {other:?}"),
        }
    }
}

#[test]
fn requeue_is_the_sooner_of_resync_and_refresh() {
    let hour = Duration::from_secs(3600);
    let mut spec = SealedSecretSpec {
        refresh_interval: Some("garbage".into()),
        ..SealedSecretSpec::default()
    };
    // No Vault items: refreshInterval does not matter.
    assert_eq!(requeue_after(&spec, hour).expect("ok"), hour);
    spec.vault_data = items(&[("pw", vref("secret", "team/db", "pw", None, None))]);
    assert!(matches!(
        requeue_after(&spec, hour),
        Err(Error::Items {
            reason: Reason::InvalidSpec,
            ..
        })
    ));
    spec.refresh_interval = Some("15m".into());
    assert_eq!(
        requeue_after(&spec, hour).expect("ok"),
        Duration::from_secs(900)
    );
    spec.refresh_interval = Some("2h".into());
    assert_eq!(requeue_after(&spec, hour).expect("ok"), hour);
    spec.refresh_interval = None;
    assert_eq!(
        requeue_after(&spec, Duration::from_secs(7200)).expect("ok"),
        hour
    );
    assert_eq!(requeue_after(&spec, Duration::ZERO).expect("ok"), hour);
}
