//! What people actually commit (issue 11 §2): for each form, a true
//! positive and a near miss.

use crate::{checksummed, pem, rand_str, rule_ids, scan, ALNUM, B64};
use base64::Engine as _;

/// Exactly `rule` on `line`, showing nothing of `secret` beyond a prefix.
fn fires(path: &str, text: &str, rule: &str, line: usize, secret: &str) {
    let f = scan(path, text);
    assert_eq!(rule_ids(&f), vec![rule], "{path}:\n{text}\n{f:#?}");
    assert_eq!(f[0].line, line, "{path}");
    assert!(!f[0].redacted.contains(secret), "{}", f[0].redacted);
}

fn silent(path: &str, text: &str) {
    let f = scan(path, text);
    assert!(f.is_empty(), "expected nothing in {path}:\n{text}\n{f:#?}");
}

fn pw(seed: u64) -> String {
    rand_str(seed, 20, ALNUM)
}

#[test]
fn credentials_in_comments() {
    let p = pw(100);
    fires(
        "main.go",
        &format!("package x\n\n// password: {p}\n"),
        "generic-secret",
        3,
        &p,
    );
    fires(
        "app.py",
        &format!("x = 1\n# api_key = {p}\n"),
        "generic-secret",
        2,
        &p,
    );
    fires(
        "values.yaml",
        &format!("db:\n  # password: {p}\n  user: app\n"),
        "generic-secret",
        2,
        &p,
    );
    silent(
        "main.go",
        "// password: read from the environment\n// token = tc.solverToken\n",
    );
}

#[test]
fn google_api_keys_in_urls_html_and_json() {
    let key = format!("AIza{}", rand_str(101, 35, ALNUM));
    fires(
        "index.html",
        &format!("<div></div>\n<script src=\"https://maps.googleapis.com/maps/api/js?key={key}&sensor=false\"></script>\n"),
        "google-api-key",
        2,
        &key[4..],
    );
    fires(
        "firebase.json",
        &format!("{{\"apiKey\": \"{key}\", \"projectId\": \"shop\"}}\n"),
        "google-api-key",
        1,
        &key[4..],
    );
    silent(
        "index.html",
        "<script src=\"/js?key=AIzaSyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX&a=1\">\n",
    );
    silent(
        "index.html",
        &format!("key=AIza{}\n", rand_str(102, 20, ALNUM)),
    );
}

#[test]
fn env_and_docker_compose_files() {
    let p = pw(103);
    fires(
        ".env",
        &format!("APP=shop\nDB_PASSWORD={p}\n"),
        "generic-secret",
        2,
        &p,
    );
    fires(
        ".env.production",
        &format!("SECRET_KEY=\"{p}\"\n"),
        "generic-secret",
        1,
        &p,
    );
    silent(
        ".env",
        "DB_PASSWORD=\nAPI_TOKEN=${API_TOKEN}\nSECRET_KEY=changeme\n",
    );
    // After a `#`: a YAML comment to the parser, a committed password to us.
    let hashed = format!("%!VCt7{}", rand_str(104, 14, ALNUM));
    fires(
        "docker-compose.yml",
        &format!("services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: #{hashed}\n"),
        "generic-secret",
        4,
        &hashed,
    );
    silent(
        "docker-compose.yml",
        "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: # set in .env\n      MYSQL_PASSWORD: ${MYSQL_PASSWORD:-}\n",
    );
}

#[test]
fn npmrc_pypirc_netrc_git_credentials() {
    let tok = rand_str(105, 36, ALNUM);
    fires(
        ".npmrc",
        &format!("@acme:registry=https://npm.acme.dev/\n//npm.acme.dev/:_authToken={tok}\n"),
        "generic-secret",
        2,
        &tok,
    );
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ci:{}", pw(106)));
    fires(
        ".npmrc",
        &format!("_auth={auth}\nalways-auth=true\n"),
        "generic-secret",
        1,
        &auth,
    );
    fires(
        ".npmrc",
        &format!(
            "//registry.npmjs.org/:_authToken={}\n",
            checksummed("npm_", 107)
        ),
        "npm-token",
        1,
        "npm_x",
    );
    silent(".npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n");

    let p = pw(108);
    fires(
        ".pypirc",
        &format!("[pypi]\nusername = release\npassword = {p}\n"),
        "generic-secret",
        3,
        &p,
    );
    let pypi = format!("pypi-AgEIcHlwaS5vcmc{}", rand_str(109, 80, ALNUM));
    fires(
        ".pypirc",
        &format!("[pypi]\nusername = __token__\npassword = {pypi}\n"),
        "pypi-token",
        3,
        &pypi[8..],
    );
    silent(
        ".pypirc",
        "[pypi]\nusername = __token__\npassword = <your token>\n",
    );

    let n = pw(110);
    fires(
        ".netrc",
        &format!("machine git.example.net login deploy password {n}\n"),
        "generic-secret",
        1,
        &n,
    );
    silent(
        ".netrc",
        "machine git.example.net login deploy password $NETRC_PASSWORD\n",
    );

    let g = pw(111);
    fires(
        ".git-credentials",
        &format!("https://bot:{g}@gitlab.example.net\n"),
        "url-password",
        1,
        &g,
    );
    silent(".git-credentials", "https://bot@gitlab.example.net\n");
}

#[test]
fn tfvars_and_ansible_vars() {
    let p = pw(112);
    fires(
        "envs/prod.tfvars",
        &format!("region = \"eu-west-1\"\ndb_password = \"{p}\"\n"),
        "generic-secret",
        2,
        &p,
    );
    silent(
        "envs/prod.tfvars",
        "db_password = \"\"\ntoken = \"REPLACE_ME\"\n",
    );
    fires(
        "group_vars/all/vault.yml",
        &format!("---\nansible_become_password: {p}\n"),
        "generic-secret",
        2,
        &p,
    );
    silent(
        "group_vars/all/vars.yml",
        "---\nansible_become_password: \"{{ vault_become_password }}\"\nmysql_root_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n",
    );
}

#[test]
fn connection_urls_with_passwords() {
    let p = pw(113);
    fires(
        "application.properties",
        &format!(
            "spring.datasource.url=jdbc:mysql://db:3306/app?user=app&password={p}&useSSL=true\n"
        ),
        "url-password",
        1,
        &p,
    );
    fires(
        "application.properties",
        &format!("url=jdbc:sqlserver://db:1433;databaseName=app;user=app;password={p};\n"),
        "url-password",
        1,
        &p,
    );
    silent(
        "application.properties",
        "spring.datasource.url=jdbc:mysql://db:3306/app?user=app&password=${DB_PASSWORD}\n",
    );
    fires(
        "db.js",
        &format!(
            "const c = new MongoClient(\"mongodb+srv://svc:{p}@cluster0.mongodb.net/app\");\n"
        ),
        "url-password",
        1,
        &p,
    );
    silent(
        "db.js",
        "const c = new MongoClient(\"mongodb://svc:<password>@cluster0/app\");\n",
    );
    fires(
        ".env",
        &format!("REDIS_URL=redis://:{p}@redis.prod:6379/0\n"),
        "url-password",
        1,
        &p,
    );
    silent(".env", "REDIS_URL=redis://redis.prod:6379/0\n");
    fires(
        "celery.py",
        &format!("BROKER = \"amqp://celery:{p}@rabbit.prod:5672//\"\n"),
        "url-password",
        1,
        &p,
    );
    silent(
        "celery.py",
        "BROKER = \"amqp://guest:guest@localhost:5672//\"\n",
    );
}

#[test]
fn private_keys_in_every_form() {
    for label in [
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "DSA PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
    ] {
        let f = scan("k.pem", &pem(label, 120, "\n"));
        assert_eq!(rule_ids(&f), vec!["private-key"], "{label}");
        assert_eq!(f[0].redacted, "…");
    }
    assert_eq!(
        rule_ids(&scan("id_ed25519", &pem("OPENSSH PRIVATE KEY", 121, "\n"))),
        vec!["openssh-private-key"]
    );
    assert_eq!(
        rule_ids(&scan("key.asc", &pem("PGP PRIVATE KEY BLOCK", 122, "\n"))),
        vec!["private-key"]
    );
    // Inside a YAML block scalar, inside a JSON string.
    let indented: String = pem("EC PRIVATE KEY", 123, "\n")
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let f = scan("values.yaml", &format!("tls:\n  key: |\n{indented}"));
    assert_eq!(rule_ids(&f), vec!["private-key"]);
    assert_eq!(f[0].line, 3);
    let f = scan(
        "creds.json",
        &format!("{{\"key\": \"{}\"}}\n", pem("PRIVATE KEY", 124, "\\n")),
    );
    assert_eq!(rule_ids(&f), vec!["private-key"]);
    // PuTTY, unencrypted and encrypted.
    let lines = |seed: u64, n: usize| -> String {
        (0..n)
            .map(|i| format!("{}\n", rand_str(seed + i as u64, 64, B64)))
            .collect()
    };
    let ppk = |enc: &str| {
        format!(
            "PuTTY-User-Key-File-3: ssh-rsa\nEncryption: {enc}\nComment: ci\nPublic-Lines: 2\n{}Private-Lines: 4\n{}Private-MAC: {}\n",
            lines(125, 2),
            lines(130, 4),
            rand_str(131, 64, b"0123456789abcdef")
        )
    };
    let f = scan("deploy.ppk", &ppk("none"));
    assert_eq!(rule_ids(&f), vec!["putty-private-key"]);
    assert!(f[0].message.contains("not encrypted"));
    let f = scan("deploy.ppk", &ppk("aes256-cbc"));
    assert_eq!(rule_ids(&f), vec!["putty-private-key"]);
    assert!(f[0].message.contains("passphrase-protected"));
    // Near misses: a public key, an elided body, PuTTY docs without lines.
    silent("pub.pem", &pem("PUBLIC KEY", 126, "\n"));
    silent(
        "README.md",
        "PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nPrivate-Lines: 14\n...\n",
    );
}
