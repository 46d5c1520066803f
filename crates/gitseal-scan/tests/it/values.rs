//! Values, not code (issue 11 §1): the generic rule judges literal values
//! only. For each language, secret-looking code that must stay silent (the
//! lines real repositories are full of) and a literal that must fire.

use crate::{rand_str, rule_ids, scan, ALNUM};

fn silent(path: &str, text: &str) {
    let f = scan(path, text);
    assert!(
        f.is_empty(),
        "expected no findings in {path}:\n{text}\ngot {f:#?}"
    );
}

/// Exactly one generic-secret finding on `line`, not showing the value.
fn fires(path: &str, text: &str, line: usize, secret: &str) {
    let f = scan(path, text);
    assert_eq!(
        rule_ids(&f),
        vec!["generic-secret"],
        "{path}:\n{text}\n{f:#?}"
    );
    assert_eq!(f[0].line, line, "{path}");
    assert!(!f[0].redacted.contains(&secret[..4]), "{}", f[0].redacted);
}

fn v(seed: u64) -> String {
    rand_str(seed, 24, ALNUM)
}

#[test]
fn go_code_is_not_a_value() {
    silent(
        "pkg/apis/deepcopy.go",
        "func (in *Issuer) DeepCopyInto(out *Issuer) {\n\tout.PrivateKey = in.PrivateKey\n\tc.ClientToken = opt.ClientToken\n}\n",
    );
    silent(
        "pkg/controller/secret.go",
        "\tsecret := v1.Secret{\n\t\tToken:      tc.solverToken,\n\t\tAccessToken: cmmeta.SecretKeySelector{Name: \"vault-token\"},\n\t\tClusterIssuerAmbientCredentials: opts.ClusterIssuerAmbientCredentials,\n\t}\n\tpassword := os.Getenv(\"DB_PASSWORD\")\n\tapiKey := &cfg.APIKey\n\tsecretKey := *ref.SecretKey\n",
    );
    let s = v(1);
    fires(
        "pkg/client/client.go",
        &format!("package client\n\nconst apiKey = \"{s}\"\n"),
        3,
        &s,
    );
    // In a comment a bare value is a committed credential.
    let c = v(2);
    fires(
        "pkg/client/client.go",
        &format!("package client\n// password: {c}\nfunc x() {{}}\n"),
        2,
        &c,
    );
}

#[test]
fn python_code_is_not_a_value() {
    silent(
        "app/settings.py",
        "SECRET_KEY = os.environ[\"SECRET_KEY\"]\npassword = get_password(user)\ntoken = self.config.auth.accessToken\napi_key = settings.STRIPE_API_KEY\nclient_secret = request.form.clientSecret\n",
    );
    let s = v(3);
    fires(
        "app/settings.py",
        &format!("DEBUG = False\nSECRET_KEY = '{s}'\n"),
        2,
        &s,
    );
    let c = v(4);
    fires(
        "app/tasks.py",
        &format!("def run():\n    # token = {c}\n    pass\n"),
        2,
        &c,
    );
}

#[test]
fn javascript_and_typescript_code_is_not_a_value() {
    silent(
        "src/auth.ts",
        "const token = req.headers.authorization;\nconst apiKey: string = config.apiKey;\nthis.accessToken = response.data.accessToken;\nconst { password } = body;\nexport const secret = process.env.SESSION_SECRET!;\n",
    );
    let s = v(5);
    fires(
        "src/config.js",
        &format!("module.exports = {{\n  port: 3000,\n  apiKey: \"{s}\",\n}};\n"),
        3,
        &s,
    );
    fires(
        "src/config.ts",
        &format!("export const clientSecret = `{s}`;\n"),
        1,
        &s,
    );
}

#[test]
fn java_code_is_not_a_value() {
    silent(
        "src/main/java/App.java",
        "    private final String password = properties.getPassword();\n    this.secretKey = secretKeyProvider.secretKey;\n    String token = TokenUtil.generateToken(user);\n",
    );
    let s = v(6);
    fires(
        "src/main/java/Config.java",
        &format!("class Config {{\n    private static final String API_KEY = \"{s}\";\n}}\n"),
        2,
        &s,
    );
}

#[test]
fn rust_code_is_not_a_value() {
    silent(
        "src/lib.rs",
        "let token = self.token.clone();\nlet password = args.password.as_deref();\nlet secret_key = SecretKey::from(bytes);\nuse crate::secret::PlainSecret;\n",
    );
    let s = v(7);
    fires(
        "src/main.rs",
        &format!("fn main() {{\n    let api_key = \"{s}\";\n}}\n"),
        2,
        &s,
    );
}

#[test]
fn shell_references_and_paths_are_not_values() {
    silent(
        "hack/e2e.sh",
        "export TOKEN=$(cat /var/run/secrets/token)\nPASSWORD=\"${DB_PASSWORD}\"\nkubectl --server=https://127.0.0.1:6443 --token=foo/restricted-psp-users get pods\nSECRET_NAME=cluster-issuer-secret\n",
    );
    let s = v(8);
    fires(
        "hack/deploy.sh",
        &format!("#!/bin/sh\nexport API_TOKEN={s}\n"),
        2,
        &s,
    );
    fires(
        "Makefile",
        &format!("run:\n\tcurl --password={s} https://api\n"),
        2,
        &s,
    );
}

#[test]
fn terraform_references_are_not_values() {
    silent(
        "modules/db/main.tf",
        "resource \"aws_db_instance\" \"db\" {\n  password = var.db_password\n  master_password = random_password.master.result\n  secret_key = data.aws_secretsmanager_secret_version.x.secret_string\n  token = local.token\n}\n",
    );
    let s = v(9);
    fires(
        "modules/db/main.tf",
        &format!("resource \"aws_db_instance\" \"db\" {{\n  password = \"{s}\"\n}}\n"),
        2,
        &s,
    );
    fires(
        "envs/prod.tfvars",
        &format!("region = \"eu-west-1\"\ndb_password = \"{s}\"\n"),
        2,
        &s,
    );
}

#[test]
fn dockerfile_references_are_not_values() {
    silent(
        "Dockerfile",
        "FROM alpine\nARG GITHUB_TOKEN\nENV API_TOKEN=${API_TOKEN}\nRUN --mount=type=secret,id=npm_token cat /run/secrets/npm_token\n",
    );
    let s = v(10);
    fires(
        "Dockerfile",
        &format!("FROM alpine\nENV API_TOKEN={s}\n"),
        2,
        &s,
    );
    fires(
        "build/Dockerfile.prod",
        &format!("FROM alpine\nENV DB_PASSWORD {s}\n"),
        2,
        &s,
    );
}

#[test]
fn yaml_and_markdown_code_selectors_are_not_values() {
    silent(
        "docs/guide.md",
        "```go\nToken: tc.solverToken,\nout.PrivateKey = in.PrivateKey\n```\n",
    );
    silent(
        "values.yaml",
        "auth:\n  existingSecret: \"\"\n  password: \"\"\n  secretKey: auth.secretKey\n",
    );
    let s = v(11);
    fires("values.yaml", &format!("auth:\n  password: {s}\n"), 2, &s);
}

#[test]
fn names_and_paths_in_quotes_are_not_values() {
    silent(
        "pkg/controller_test.go",
        "\t\tSecretKey: \"some-array[0].entity\",\n\t\tpassword: \"K8s_admin\",\n",
    );
    silent("docs/vsphere.md", "vsphere_password: \"K8s_admin\"\n");
}

#[test]
fn contexts_follow_path_conventions() {
    use gitseal_scan::Context;
    for (path, want) in [
        ("runtime/template/v2/_testdata/root-ca.key", Context::Test),
        ("pkg/issuer/vault/setup_test.go", Context::Test),
        ("hc/tests/test_notify.py", Context::Test),
        ("src/app.spec.ts", Context::Test),
        ("src/test/java/AppTest.java", Context::Test),
        ("integration-tests/a.yaml", Context::Test),
        (".env.test", Context::Test),
        ("providers/chef/fake/fake.go", Context::Test),
        ("docs/snippets/secret.yaml", Context::Docs),
        ("README.md", Context::Docs),
        ("examples/basic/main.tf", Context::Docs),
        ("config.yaml.example", Context::Docs),
        ("deploy/values.yaml", Context::Production),
        ("pkg/latest/contest.go", Context::Production),
        ("cmd/main.go", Context::Production),
    ] {
        assert_eq!(Context::of_path(path), want, "{path}");
    }
}

#[test]
fn config_text_in_a_source_file_is_still_judged() {
    // No expression is spelled like these: a digit first, a `/`, no words.
    let a = format!("6{}", rand_str(12, 19, ALNUM));
    fires("cmd/main.go", &format!("  password: {a}\n"), 1, &a);
    let b = format!("{}/{}", rand_str(13, 20, ALNUM), rand_str(14, 19, ALNUM));
    let f = scan("cmd/main.go", &format!("aws_secret_access_key = {b}\n"));
    assert_eq!(rule_ids(&f), vec!["aws-secret-access-key"], "{f:#?}");
    let c = "cUPCVUnHOwECVKIXtrkYTibSZGdSZfcv";
    fires(
        "web/app.js",
        &format!("export PAYMENTS_API_KEY={c}\n"),
        1,
        c,
    );
    // Identifiers and numbers still are expressions.
    silent(
        "cmd/main.go",
        "password = pw\ntoken = solverToken2\napi_key = DEFAULT_API_KEY\nsecret = 12345678901\n",
    );
}

#[test]
fn selectors_and_names_in_code_are_expressions() {
    silent(
        "providers/cloudflare.go",
        "\t\tauthToken: opts.APIToken,\n\tparametersObj.ApiKey = input.APIKey\n\t\"pkcs12keyPass\":  pkcs12keyPass,\n\t\"pemTruststoreToPKCS12Pass\": pemTruststoreToPKCS12Pass,\n",
    );
    silent(
        "server/api/github.ts",
        "  secretKey: env.GITHUB_WEBHOOK_SECRET!,\n  clientSecret: pendingAuth?.clientSecret ?? undefined,\n  return { user, accessToken: auth.accessToken! };\n  const token = context.authInfo?.token ?? \"\";\n",
    );
    silent(
        "server/routes/notify.ts",
        "  const url = `/api/unsubscribe?userId=${user.id}&token=invalid-token&eventType=documents.update`;\n",
    );
}
