//! One true positive and at least one near miss per credential rule.

use crate::{checksummed, pem, rand_str, rule_ids, scan, ALNUM, B64, DIGITS, UPPER32};
use base64::Engine as _;

/// The text must give exactly one finding, of `rule`, on `line`, and the
/// report must not contain the secret.
fn fires(path: &str, text: &str, rule: &str, line: usize, secret: &str) {
    let f = scan(path, text);
    assert_eq!(rule_ids(&f), vec![rule], "findings for {path}: {f:#?}");
    assert_eq!(f[0].line, line);
    assert!(!f[0].redacted.contains(secret), "preview leaks the secret");
    assert!(f[0].redacted.ends_with('…'));
    assert!(
        f[0].fingerprint.is_none(),
        "unkeyed scans carry no fingerprint"
    );
}

fn silent(path: &str, text: &str) {
    let f = scan(path, text);
    assert!(f.is_empty(), "expected no findings in {path}, got {f:#?}");
}

#[test]
fn aws_access_key_id() {
    let id = format!("{}{}", "AK", format_args!("IA{}", rand_str(1, 16, UPPER32)));
    fires(
        "config.txt",
        &format!("region = eu-west-1\naccess = {id}\n"),
        "aws-access-key-id",
        2,
        &id,
    );
    // The documentation example key, and a key embedded in a longer word.
    silent(
        "docs.md",
        &format!("key: {}{}{}\n", "AKIA", "IOSFODNN7", "EXAMPLE"),
    );
    silent("x.txt", &format!("XAKIA{}\n", rand_str(1, 16, UPPER32)));
}

#[test]
fn aws_secret_access_key() {
    let secret = rand_str(2, 40, B64);
    fires(
        "credentials",
        &format!("[default]\naws_secret_access_key = {secret}\n"),
        "aws-secret-access-key",
        2,
        &secret,
    );
    silent(
        "credentials",
        "[default]\naws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}\n",
    );
}

#[test]
fn gcp_service_account_key() {
    let key = pem("PRIVATE KEY", 3, "\\n");
    let json = format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo\",\n  \"private_key_id\": \"{}\",\n  \"private_key\": \"{key}\",\n  \"client_email\": \"ci@demo.iam.gserviceaccount.com\"\n}}\n",
        rand_str(4, 40, b"0123456789abcdef")
    );
    let f = scan("sa.json", &json);
    assert_eq!(rule_ids(&f), vec!["gcp-service-account-key"], "{f:#?}");
    assert_eq!(f[0].line, 5);
    // Not a service account: the PEM rule still sees the key, GCP does not.
    let other = json.replace("service_account", "authorized_user");
    assert_eq!(rule_ids(&scan("sa.json", &other)), vec!["private-key"]);
    // A service account file without key material.
    silent(
        "sa.json",
        "{\"type\": \"service_account\", \"private_key\": \"\", \"client_email\": \"a@b.c\"}\n",
    );
}

#[test]
fn azure_storage_key() {
    let key = format!("{}==", rand_str(5, 86, B64));
    let conn = format!(
        "DefaultEndpointsProtocol=https;AccountName=store;{}={key};EndpointSuffix=core.windows.net",
        "AccountKey"
    );
    fires(
        "app.config",
        &format!("conn: \"{conn}\"\n"),
        "azure-storage-key",
        1,
        &key,
    );
    silent(
        "app.config",
        "conn: \"AccountName=store;AccountKey=abc==;\"\n",
    );
}

#[test]
fn github_classic_token_with_checksum() {
    let tok = checksummed("ghp_", 6);
    fires(
        "ci.sh",
        &format!("export GH={tok}\n"),
        "github-token",
        1,
        &tok,
    );
    let oauth = checksummed("gho_", 7);
    fires(
        "ci.sh",
        &format!("\n\nx {oauth}\n"),
        "github-token",
        3,
        &oauth,
    );
    // Same shape, wrong checksum.
    let mut bad = checksummed("ghp_", 8);
    let last = if bad.ends_with('A') { 'B' } else { 'A' };
    bad.pop();
    bad.push(last);
    silent("ci.sh", &format!("export GH={bad}\n"));
}

#[test]
fn github_fine_grained_token() {
    let tok = format!(
        "github_pat_{}_{}",
        rand_str(9, 22, ALNUM),
        rand_str(10, 59, ALNUM)
    );
    fires(
        "notes.txt",
        &format!("use {tok} for ci\n"),
        "github-fine-grained-token",
        1,
        &tok,
    );
    silent(
        "notes.txt",
        "token format: github_pat_XXXXXXXXXXXXXXXXXXXXXX_...\n",
    );
}

#[test]
fn gitlab_token() {
    let tok = format!("glpat-{}", rand_str(11, 20, ALNUM));
    fires(
        ".gitlab-ci.yml",
        &format!("variables:\n  GL: {tok}\n"),
        "gitlab-token",
        2,
        &tok,
    );
    silent(".gitlab-ci.yml", &format!("GL: glpat-{}\n", "x".repeat(20)));
}

#[test]
fn slack_token_and_webhook() {
    let tok = format!(
        "xoxb-{}-{}-{}",
        rand_str(12, 12, DIGITS),
        rand_str(13, 13, DIGITS),
        rand_str(14, 24, ALNUM)
    );
    fires(
        "bot.py",
        &format!("SLACK = \"{tok}\"\n"),
        "slack-token",
        1,
        &tok,
    );
    silent("bot.py", "SLACK = \"xoxb-your-bot-token-here\"\n");
    let hook = format!(
        "https://{}/services/T{}/B{}/{}",
        "hooks.slack.com",
        rand_str(15, 8, UPPER32),
        rand_str(16, 8, UPPER32),
        rand_str(17, 24, ALNUM)
    );
    fires(
        "alert.yaml",
        &format!("url: {hook}\n"),
        "slack-webhook",
        1,
        &hook,
    );
    silent(
        "alert.yaml",
        "url: https://hooks.slack.com/services/T000/B000/XXXX\n",
    );
}

#[test]
fn stripe_live_key() {
    let tok = format!("sk_{}_{}", "live", rand_str(18, 24, ALNUM));
    fires(
        "pay.js",
        &format!("const stripe = require('stripe')('{tok}');\n"),
        "stripe-secret-key",
        1,
        &tok,
    );
    silent(
        "pay.js",
        &format!(
            "const stripe = require('stripe')('sk_test_{}');\n",
            rand_str(18, 24, ALNUM)
        ),
    );
}

#[test]
fn sendgrid_key() {
    let tok = format!("SG.{}.{}", rand_str(19, 22, ALNUM), rand_str(20, 43, ALNUM));
    fires(
        "mail.go",
        &format!("key := \"{tok}\"\n"),
        "sendgrid-api-key",
        1,
        &tok,
    );
    silent("mail.go", "msg.Send(ctx)\nresult := SG.short.value\n");
}

#[test]
fn openai_key() {
    let tok = format!(
        "sk-proj-{}{}{}",
        rand_str(21, 40, ALNUM),
        "T3Blbk",
        format_args!("FJ{}", rand_str(22, 40, ALNUM))
    );
    fires(
        "ai.py",
        &format!("client = OpenAI(api_key=\"{tok}\")\n"),
        "openai-api-key",
        1,
        &tok,
    );
    silent("ai.py", "# keys look like sk-proj-... \n");
}

#[test]
fn npm_token_with_checksum() {
    let tok = checksummed("npm_", 23);
    fires(
        ".npmrc",
        &format!("//registry.npmjs.org/:_authToken={tok}\n"),
        "npm-token",
        1,
        &tok,
    );
    let bad = format!("npm_{}", rand_str(24, 36, ALNUM));
    silent("notes.txt", &format!("the old one was {bad}\n"));
}

#[test]
fn pem_private_keys() {
    let key = pem("RSA PRIVATE KEY", 25, "\n");
    let f = scan("id_rsa", &format!("# deploy key\n{key}"));
    assert_eq!(rule_ids(&f), vec!["private-key"]);
    assert_eq!(f[0].line, 2);
    let enc = pem("ENCRYPTED PRIVATE KEY", 26, "\n");
    assert_eq!(rule_ids(&scan("k.pem", &enc)), vec!["private-key"]);
    let ssh = pem("OPENSSH PRIVATE KEY", 27, "\n");
    assert_eq!(
        rule_ids(&scan("id_ed25519", &ssh)),
        vec!["openssh-private-key"]
    );
    // Documentation with an elided body, and a public key.
    silent(
        "README.md",
        &format!(
            "-----{0} RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n",
            "BEGIN"
        ),
    );
    silent("pub.pem", &pem("PUBLIC KEY", 28, "\n"));
}

#[test]
fn jwt_decoded_before_reporting() {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = e.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = e.encode(br#"{"sub":"1234567890","name":"ci","iat":1516239022}"#);
    let jwt = format!("{header}.{payload}.{}", rand_str(29, 43, ALNUM));
    fires(
        "req.http",
        &format!("Authorization: Bearer {jwt}\n"),
        "jwt",
        1,
        &jwt,
    );
    // Looks like a JWT but the header is not JSON.
    let fake = format!(
        "eyJ{}.eyJ{}.{}",
        rand_str(30, 20, ALNUM),
        rand_str(31, 20, ALNUM),
        rand_str(32, 20, ALNUM)
    );
    silent("req.http", &format!("x {fake}\n"));
}

#[test]
fn urls_with_passwords() {
    let pw = rand_str(33, 18, ALNUM);
    let url = format!("postgres://app:{pw}@db.internal:5432/app");
    fires(
        "app.env.txt",
        &format!("DATABASE_URL={url}\n"),
        "url-password",
        1,
        &pw,
    );
    let mongo = format!(
        "mongodb+srv://svc:{}@cluster0.mongodb.net/db",
        rand_str(34, 16, ALNUM)
    );
    assert_eq!(rule_ids(&scan("m.txt", &mongo)), vec!["url-password"]);
    silent(
        "a.txt",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app\n",
    );
    silent(
        "a.txt",
        "url: postgres://postgres:postgres@localhost:5432/dev\n",
    );
    silent("a.txt", "see https://user:<password>@host/path\n");
    silent("a.txt", "plain https://example.com/a:b@c\n");
    silent(
        "a.rs",
        "let u = \"http://user:canary-pass@127.0.0.1:1/\";\n",
    );
}

#[test]
fn high_entropy_values_under_secret_keys() {
    let v = rand_str(35, 24, ALNUM);
    fires(
        "values.yaml",
        &format!("db:\n  password: {v}\n"),
        "generic-secret",
        2,
        &v,
    );
    fires(
        "app.json",
        &format!("{{\"clientSecret\": \"{v}\"}}\n"),
        "generic-secret",
        1,
        &v,
    );
    fires(
        ".env",
        &format!("export API_TOKEN={v}\n"),
        "generic-secret",
        1,
        &v,
    );
    fires(
        "app.properties",
        &format!("spring.datasource.password={v}\n"),
        "generic-secret",
        1,
        &v,
    );
    fires(
        "main.go",
        &format!("apiKey := \"{v}\"\n"),
        "generic-secret",
        1,
        &v,
    );
    // Placeholders, references, sealed values, names and code.
    silent(
        "values.yaml",
        "db:\n  password: changeme\n  token: ${API_TOKEN}\n  apiKey: <your-api-key>\n",
    );
    silent(
        "values.yaml",
        "password: \"{{ .Values.db.password }}\"\nsecretName: db-credentials-prod\n",
    );
    silent(
        "values.yaml",
        &format!("password: gs1:{}\n", rand_str(36, 60, ALNUM)),
    );
    silent(
        "values.yaml",
        "password_file: /run/secrets/db_password\ntoken: vault:secret/data/app#token\n",
    );
    silent(
        "main.py",
        "token = get_token(session)\nif password == expected_password_value: pass\n",
    );
    silent(
        "main.go",
        "tokenizer := NewTokenizer(input)\npassword := os.Getenv(\"DB_PASSWORD\")\n",
    );
    silent("values.yaml", "password: aaaaaaaaaaaaaaaa\ntoken: short\n");
    // A Rust path, an escaped quote in a string literal, a flow mapping,
    // base64 of a weak fixture value.
    silent(
        "lib.rs",
        "use crate::secret::PlainSecret;\nlet t = \"{password: hunter2}\\n\";\n",
    );
    silent("t.rs", "let y = format!(\"password: \\\"{PLAIN}!\\\"\");\n");
    silent("s.json", "{\"data\": {\"password\": \"aHVudGVyMg==\"}}\n");
}
