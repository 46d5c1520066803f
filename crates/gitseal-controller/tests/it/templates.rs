//! Templated Secrets (`spec.template.data`) end to end: the real
//! controller against the fake API renders connection strings, config files
//! and `.dockerconfigjson`; a template that fails keeps the last good Secret
//! byte-identical, with `TemplateError` naming the key and the line, one
//! Event per change, and no plaintext in conditions, Events or logs.

use std::time::Duration;

use gitseal_crypto::Identity;
use serde_json::{json, Value};

use crate::common::*;
use crate::fake_api::FakeApi;

const USER: &[u8] = b"app_user";
const PASSWORD: &[u8] = b"CANARY-tmpl-p@ss/w:rd";
const TOKEN: &[u8] = b"CANARY-tmpl-ghp-token";

fn templated(id: &Identity, name: &str, templates: Value) -> Value {
    with_inputs(id, name, templates, &[])
}

fn with_inputs(id: &Identity, name: &str, templates: Value, extra: &[(&str, &[u8])]) -> Value {
    let mut items: Vec<(&str, &[u8])> = vec![
        ("user", USER),
        ("password", PASSWORD),
        ("token", TOKEN),
        ("plain-item", b"kept"),
    ];
    items.extend_from_slice(extra);
    let mut obj = sealed_secret("app", name, &items, &[id.recipient().clone()]);
    obj["spec"]["template"] = templates;
    obj
}

fn events_with(fake: &FakeApi, reason: &str, name: &str) -> Vec<Value> {
    fake.list("events")
        .into_iter()
        .filter(|e| e["reason"] == reason && e["regarding"]["name"] == name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_url_config_file_and_dockerconfigjson() {
    let (fake, id, running) = keyed_controller().await;
    let config = "db:\n  user: {{ user | yaml }}\n  password: {{ password | yaml }}\n";
    fake.upsert(
        "sealedsecrets",
        "app",
        templated(
            &id,
            "db",
            json!({"data": {
                "DATABASE_URL": "postgres://{{ user }}:{{ password | urlencode }}@db:5432/app",
                "config.yaml": config,
            }}),
        ),
    );
    fake.upsert(
        "sealedsecrets",
        "app",
        templated(
            &id,
            "pull",
            json!({
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": "{{ dockerconfigjson('ghcr.io', user, token) }}"},
            }),
        ),
    );
    let (status, _, message) = wait_ready(&fake, "app", "db", Some("Synced")).await;
    assert_eq!(status, "True");
    // DATABASE_URL, config.yaml, and the two inputs no template reads.
    assert!(message.contains("4 item"), "{message}");
    let secret = fake.get("secrets", "app", "db").unwrap_or_default();
    let data = secret_data(&secret);
    assert_eq!(
        data.keys().cloned().collect::<Vec<_>>(),
        ["DATABASE_URL", "config.yaml", "plain-item", "token"],
        "inputs read by templates stay out of the Secret"
    );
    assert_eq!(
        String::from_utf8_lossy(&data["DATABASE_URL"]),
        // gitseal:allow a made-up password in the expected output of a template test
        "postgres://app_user:CANARY-tmpl-p%40ss%2Fw%3Ard@db:5432/app"
    );
    let cfg: serde_yaml::Value = serde_yaml::from_slice(&data["config.yaml"]).unwrap_or_default();
    assert_eq!(
        cfg["db"]["password"].as_str().map(str::as_bytes),
        Some(PASSWORD)
    );
    assert_eq!(cfg["db"]["user"].as_str().map(str::as_bytes), Some(USER));

    wait_ready(&fake, "app", "pull", Some("Synced")).await;
    let pull = fake.get("secrets", "app", "pull").unwrap_or_default();
    assert_eq!(pull["type"], "kubernetes.io/dockerconfigjson");
    let data = secret_data(&pull);
    let doc: Value = serde_json::from_slice(&data[".dockerconfigjson"]).unwrap_or_default();
    assert_eq!(
        doc["auths"]["ghcr.io"]["password"]
            .as_str()
            .map(str::as_bytes),
        Some(TOKEN)
    );
    assert_eq!(
        crate::e2e::base64_decode(doc["auths"]["ghcr.io"]["auth"].as_str().unwrap_or_default()),
        [USER, b":", TOKEN].concat()
    );

    // includeInputs: the inputs are written too.
    let mut both = templated(
        &id,
        "db",
        json!({"data": {"url": "{{ user }}"}, "includeInputs": true}),
    );
    both["metadata"]["name"] = json!("both");
    both = templated(&id, "both", both["spec"]["template"].clone());
    fake.upsert("sealedsecrets", "app", both);
    wait_ready(&fake, "app", "both", Some("Synced")).await;
    let keys: Vec<String> = secret_data(&fake.get("secrets", "app", "both").unwrap_or_default())
        .into_keys()
        .collect();
    assert_eq!(keys, ["password", "plain-item", "token", "url", "user"]);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_lines_do_not_change_between_reconciles() {
    let (fake, id, running) = keyed_controller().await;
    let obj = templated(
        &id,
        "auth",
        json!({"data": {"auth": "{{ htpasswd(user, password, cost=4) }}\n"}}),
    );
    fake.upsert("sealedsecrets", "app", obj.clone());
    wait_ready(&fake, "app", "auth", Some("Synced")).await;
    let before = fake.get_bytes("secrets", "app", "auth").unwrap_or_default();
    let hash_before =
        fake.get("sealedsecrets", "app", "auth").unwrap_or_default()["status"]["dataHash"].clone();
    // A change of the object that does not touch its inputs or templates
    // renders again: same bytes, no write, same hash.
    let mut relabelled = obj;
    relabelled["metadata"]["labels"] = json!({"touched": "yes"});
    relabelled["spec"]["template"]["metadata"] = json!({"labels": {"team": "a"}});
    fake.upsert("sealedsecrets", "app", relabelled);
    wait_for("relabelled Secret", 10, || {
        fake.get("secrets", "app", "auth")
            .filter(|s| s["metadata"]["labels"]["team"] == "a")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = fake.get("secrets", "app", "auth").unwrap_or_default();
    assert_eq!(
        secret_data(&after),
        secret_data(&serde_json::from_slice(&before).unwrap_or_default())
    );
    let line = String::from_utf8(secret_data(&after)["auth"].clone()).unwrap_or_default();
    assert!(line.starts_with("app_user:$2y$04$"), "{line}");
    let status = fake.get("sealedsecrets", "app", "auth").unwrap_or_default()["status"].clone();
    assert_eq!(status["dataHash"], hash_before);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_template_output_changes_the_data_hash() {
    let (fake, id, running) = keyed_controller().await;
    let obj = templated(&id, "h", json!({"data": {"url": "a:{{ user }}"}}));
    fake.upsert("sealedsecrets", "app", obj.clone());
    wait_ready(&fake, "app", "h", Some("Synced")).await;
    let first =
        fake.get("sealedsecrets", "app", "h").unwrap_or_default()["status"]["dataHash"].clone();
    let mut changed = obj;
    changed["spec"]["template"]["data"]["url"] = json!("b:{{ user }}");
    fake.upsert("sealedsecrets", "app", changed);
    let second = wait_for("new data hash", 10, || {
        fake.get("sealedsecrets", "app", "h")
            .map(|o| o["status"]["dataHash"].clone())
            .filter(|h| *h != first && h.is_string())
    })
    .await;
    assert_ne!(first, second);
    let data = secret_data(&fake.get("secrets", "app", "h").unwrap_or_default());
    assert_eq!(data["url"], b"b:app_user");
    running.shutdown().await;
}

/// Each bad template is refused with `TemplateError` naming the key and the
/// line; the Secret stays byte-identical; one Event per change.
#[test]
fn failing_templates_keep_the_last_good_secret() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let fake = rt.block_on(async {
        let (fake, id, running) = keyed_controller().await;
        let blob = vec![b'b'; 9000];
        let times = "x".repeat(130);
        let good = json!({"data": {"DATABASE_URL": "postgres://{{ user }}:{{ password | urlencode }}@db/app"}});
        fake.upsert("sealedsecrets", "app", with_inputs(&id, "db", good, &[("blob", &blob)]));
        wait_ready(&fake, "app", "db", Some("Synced")).await;
        let before = fake.get_bytes("secrets", "app", "db").unwrap_or_default();

        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "unknown input",
                json!({"data": {"DATABASE_URL": "postgres://{{ user }}:\n{{ pasword }}@db/app"}}),
                "template \"DATABASE_URL\", line 2: unknown input \"pasword\"",
            ),
            (
                "syntax error",
                json!({"data": {"DATABASE_URL": "line 1\nline 2\n{{ user | }}"}}),
                "template \"DATABASE_URL\", line 3: syntax error",
            ),
            (
                "oversized output",
                json!({"data": {
                    "DATABASE_URL": format!("{{% for x in {times:?} %}}{{{{ blob }}}}{{% endfor %}}"),
                }}),
                "template \"DATABASE_URL\": the rendered output exceeds 1048576 bytes",
            ),
            (
                "runaway",
                json!({"data": {"DATABASE_URL": "ok\n{% for a in password %}{% for b in password %}{% for c in password %}{% for d in password %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}"}}),
                "template \"DATABASE_URL\", line 2: the templates of this object ran longer than their budget",
            ),
            (
                "input missing at render time",
                json!({"data": {"DATABASE_URL": "x\n\n{{ inputs['db-password'] }}"}}),
                "template \"DATABASE_URL\", line 3: undefined value",
            ),
        ];
        for (generation, (what, template, expected)) in (2..).zip(cases) {
            fake.upsert("sealedsecrets", "app", with_inputs(&id, "db", template, &[("blob", &blob)]));
            let (status, _, message) = wait_for(what, 10, || {
                fake.get("sealedsecrets", "app", "db")
                    .filter(|o| o["status"]["observedGeneration"] == generation)
                    .and_then(|o| ready(&o))
                    .filter(|r| r.1 == "TemplateError")
            })
            .await;
            assert_eq!(status, "False", "{what}");
            assert!(message.contains(expected), "{what}: {message}");
            assert!(message.ends_with("the existing Secret was left unchanged"), "{what}: {message}");
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(
                fake.get_bytes("secrets", "app", "db").unwrap_or_default(),
                before,
                "{what}: the Secret must stay byte-identical"
            );
            let stalled = fake.get("sealedsecrets", "app", "db").unwrap_or_default();
            assert!(
                stalled["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["type"] == "Stalled" && c["reason"] == "TemplateError")),
                "{what}: {stalled}"
            );
            let events: Vec<Value> = events_with(&fake, "TemplateError", "db")
                .into_iter()
                .filter(|e| e["note"].as_str().is_some_and(|n| n == message))
                .collect();
            assert_eq!(events.len(), 1, "{what}: one Event per change, not per retry");
        }
        running.shutdown().await;
        fake
    });
    let logs = logs.text();
    assert!(
        logs.contains("reconcile failed"),
        "the capture must hold the controller's logs"
    );
    let events = serde_json::to_string(&fake.list("events")).unwrap_or_default();
    let status = serde_json::to_string(
        &fake.get("sealedsecrets", "app", "db").unwrap_or_default()["status"],
    )
    .unwrap_or_default();
    for secret in [PASSWORD, TOKEN] {
        let text = String::from_utf8_lossy(secret);
        let encoded = crate::e2e::base64_encode(secret);
        for (what, haystack) in [("logs", &logs), ("events", &events), ("status", &status)] {
            assert!(!haystack.contains(text.as_ref()), "{what} hold plaintext");
            assert!(!haystack.contains(&encoded), "{what} hold base64 plaintext");
            assert!(!haystack.contains("CANARY"), "{what} hold part of a value");
        }
    }
}

/// A Vault resolver that answers `vault-KEY` for every item.
struct StubVault;

impl gitseal_controller::sources::VaultResolver for StubVault {
    fn resolve<'a>(
        &'a self,
        _namespace: &'a str,
        items: &'a std::collections::BTreeMap<String, gitseal_manifest::types::VaultReference>,
        _refresh: Duration,
    ) -> futures::future::BoxFuture<
        'a,
        std::collections::BTreeMap<String, gitseal_controller::sources::VaultItem>,
    > {
        let out = items
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    Ok(secrecy::SecretSlice::from(
                        format!("vault-{k}").into_bytes(),
                    )),
                )
            })
            .collect();
        Box::pin(futures::future::ready(out))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_combine_sealed_and_vault_inputs() {
    let fake = FakeApi::new();
    let id = Identity::generate();
    add_key(&fake, &id, 60);
    let running = start_with_vault(&fake, config(), Some(std::sync::Arc::new(StubVault))).await;
    wait_for("keys loaded", 10, || {
        running.handles.keys.is_ready().then_some(())
    })
    .await;
    let mut obj = sealed_secret("app", "mail", &[("user", USER)], &[id.recipient().clone()]);
    obj["spec"]["vaultData"] =
        json!({"smtp": {"mount": "secret", "path": "app/smtp", "field": "password"}});
    obj["spec"]["template"] =
        json!({"data": {"SMTP_URL": "smtp://{{ user }}:{{ smtp | urlencode }}@mail:587"}});
    fake.upsert("sealedsecrets", "app", obj);
    wait_ready(&fake, "app", "mail", Some("Synced")).await;
    let data = secret_data(&fake.get("secrets", "app", "mail").unwrap_or_default());
    assert_eq!(data.keys().cloned().collect::<Vec<_>>(), ["SMTP_URL"]);
    // gitseal:allow a made-up test value, rendered
    assert_eq!(data["SMTP_URL"], b"smtp://app_user:vault-smtp@mail:587");
    running.shutdown().await;
}
