#!/usr/bin/env python3
"""Plant fake credentials of every kind into a real-repository corpus.

usage: plant-secrets.py CORPUS_DIR EXPECTED_JSON

Each planted credential goes into a new file at a realistic place inside one
of the corpus's repositories (a Helm values file, a docker-compose file, an
`.npmrc`, a Go source, a Terraform variables file, ...), with ordinary lines
around it, and is listed in EXPECTED_JSON as {path, line, end_line, kind}
(path relative to CORPUS_DIR). A repository that is missing from the corpus
is skipped, so the list always matches what was planted.

Every fake secret is assembled at run time from pieces and seeded random
characters (valid GitHub/npm checksums and age bech32 checksums are
computed), so this script holds no credential and does not trip secret
scanners itself. The output is deterministic.
"""

import base64
import json
import os
import random
import sys
import zlib

R = random.Random(20261204)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
B64 = ALNUM + "+/"
UPPER32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PUNCT = "!%&*+-=?@^_~"


def rs(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


def password(n=20):
    return rs(n, ALNUM + PUNCT)


def checksummed(prefix):
    body = rs(30)
    n = zlib.crc32(body.encode()) & 0xFFFFFFFF
    check = ""
    for _ in range(6):
        check = BASE62[n % 62] + check
        n //= 62
    return prefix + body + check


def pem_body(nbytes=1200):
    raw = bytes(R.getrandbits(8) for _ in range(nbytes))
    b = base64.b64encode(raw).decode()
    return [b[i:i + 64] for i in range(0, len(b), 64)]


def pem(label, nl="\n"):
    return nl.join([f"-----{'BEGIN'} {label}-----"] + pem_body() + [f"-----{'END'} {label}-----"])


# bech32 (BIP 173) for age identities.
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def bech32(hrp, data8):
    acc, bits, data = 0, 0, []
    for b in data8:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    hx = [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]
    pm = _polymod(hx + data + [0] * 6) ^ 1
    check = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + check)


def age_key():
    return bech32("age-secret-key-", bytes(R.getrandbits(8) for _ in range(32))).upper()


def jwt():
    e = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
    h = e(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = e(json.dumps({"sub": rs(12), "role": "service", "iat": 1764800000}).encode())
    return f"{h}.{p}.{e(bytes(R.getrandbits(8) for _ in range(32)))}"


def putty():
    pub = pem_body(51)
    priv = pem_body(48)
    return "\n".join(
        ["PuTTY-User-Key-File-3: ssh-ed25519", "Encryption: none", "Comment: deploy@ci",
         f"Public-Lines: {len(pub)}"] + pub + [f"Private-Lines: {len(priv)}"] + priv
        + [f"Private-MAC: {rs(64, '0123456789abcdef')}"])


def gcp_sa():
    key = pem("PRIVATE KEY", "\\n")
    return "\n".join([
        "{",
        '  "type": "service_account",',
        '  "project_id": "shop-prod-4471",',
        f'  "private_key_id": "{rs(40, "0123456789abcdef")}",',
        f'  "private_key": "{key}\\n",',
        '  "client_email": "deployer@shop-prod-4471.iam.gserviceaccount.com",',
        '  "client_id": "1048576102400123456789"',
        "}",
    ])


def plants():
    """(repository dir, path in it, kind, lines before, secret text, lines after)."""
    aws_id = "AK" + "IA" + rs(16, UPPER32)
    b64pw = base64.b64encode(password(18).encode()).decode()
    return [
        ("kubespray", "inventory/sample/group_vars/prod/aws.yml", "aws-access-key-id",
         "---\n# AWS credentials for the cloud provider\ncloud_provider: aws\n",
         f"aws_access_key_id: {aws_id}", "aws_region: eu-west-1\n"),
        ("kubespray", "inventory/sample/group_vars/prod/aws-secret.yml", "aws-secret-access-key",
         "---\naws_region: eu-west-1\n", f"aws_secret_access_key: {rs(40, B64)}", ""),
        ("outline", ".github/workflows/release-notes.yml", "github-token",
         "name: release notes\non: [push]\njobs:\n  notes:\n    runs-on: ubuntu-latest\n    env:\n",
         f"      GH_TOKEN: {checksummed('gh' + 'p_')}", "    steps:\n      - uses: actions/checkout@v4\n"),
        ("fluxcd-website", "content/en/blog/2026-11-ci-notes/index.md", "github-fine-grained-token",
         "---\ntitle: CI notes\n---\n\nWe rotated the bot token last week. The new one:\n\n",
         f"    github_{'pat'}_{rs(22)}_{rs(59)}", "\nPlease do not share it.\n"),
        ("awesome-compose", "gitlab-runner/.env", "gitlab-token",
         "RUNNER_NAME=compose-runner\nRUNNER_EXECUTOR=docker\n", f"GITLAB_TOKEN=gl{'pat'}-{rs(20)}", ""),
        ("healthchecks", "hc/local_settings_prod.py", "slack-token",
         "from hc.settings import *  # noqa\n\nDEBUG = False\n",
         f"SLACK_BOT_TOKEN = \"xo{'xb'}-{rs(12, '0123456789')}-{rs(13, '0123456789')}-{rs(24)}\"", ""),
        ("helm-charts", "charts/alertmanager/ci/prod-values.yaml", "slack-webhook",
         "config:\n  receivers:\n    - name: team\n      slack_configs:\n",
         f"        - api_url: https://hooks.{'slack'}.com/services/T{rs(8, UPPER32)}/B{rs(8, UPPER32)}/{rs(24)}",
         "          channel: '#alerts'\n"),
        ("outline", "server/utils/billing.ts", "stripe-secret-key",
         "import Stripe from \"stripe\";\n\n",
         f"const stripe = new Stripe(\"sk_{'live'}_{rs(24)}\", {{ apiVersion: \"2024-06-20\" }});",
         "\nexport default stripe;\n"),
        ("cert-manager", "internal/notify/mail.go", "sendgrid-api-key",
         "package notify\n\nimport \"net/smtp\"\n\n",
         f"const sendgridKey = \"S{'G'}.{rs(22)}.{rs(43)}\"", "\nvar _ = smtp.PlainAuth\n"),
        ("healthchecks", "hc/lib/summarize.py", "openai-api-key",
         "from openai import OpenAI\n\n",
         f"client = OpenAI(api_key=\"sk-{'proj'}-{rs(40)}T3Blbk{'FJ'}{rs(40)}\")", ""),
        ("outline", ".npmrc", "npm-token", "save-exact=true\n",
         f"//registry.npmjs.org/:_authToken={checksummed('np' + 'm_')}", ""),
        ("external-secrets", "e2e/suites/provider/gcp-prod-sa.json", "gcp-service-account-key",
         "", gcp_sa(), ""),
        ("spring-petclinic", "src/main/resources/application-azure.properties", "azure-storage-key",
         "spring.profiles.active=azure\n",
         f"azure.storage.connection-string=DefaultEndpointsProtocol=https;AccountName=petclinicprod;Account{'Key'}={rs(86, B64)}==;EndpointSuffix=core.windows.net",
         ""),
        ("terraform-aws-eks", "examples/bastion/keys/bastion_rsa", "private-key", "",
         pem("RSA PRIVATE KEY"), ""),
        ("kubespray", "contrib/ci/deploy_ed25519", "openssh-private-key", "",
         pem("OPENSSH PRIVATE KEY"), ""),
        ("kubespray", "contrib/windows/admin.ppk", "putty-private-key", "", putty(), ""),
        ("helm-charts", "charts/kube-prometheus-stack/ci/tls-values.yaml", "private-key-in-yaml",
         "prometheus:\n  tls:\n    crt: ''\n    key: |\n",
         "\n".join("      " + l for l in pem("EC PRIVATE KEY").split("\n")), ""),
        ("external-secrets", "hack/sops/age-prod.txt", "age-secret-key",
         "# created: 2026-11-30T10:00:00Z\n# public key: (see keys.txt)\n", age_key(), ""),
        ("outline", "server/test/requests/admin.http", "jwt",
         "GET https://outline.internal/api/users.list\nContent-Type: application/json\n",
         f"Authorization: Bearer {jwt()}", ""),
        ("awesome-compose", "django/.env.production", "postgres-url",
         "DJANGO_DEBUG=0\n", f"DATABASE_URL=postgres://shop:{password(18).replace('@', 'a').replace('%', 'b')}@db.internal:5432/shop", ""),
        ("spring-petclinic", "src/main/resources/application-prod.properties", "jdbc-url",
         "spring.jpa.hibernate.ddl-auto=none\n",
         f"spring.datasource.url=jdbc:mysql://mysql.prod:3306/petclinic?user=petclinic&password={rs(20)}&useSSL=true",
         ""),
        ("outline", "server/scripts/migrate-mongo.js", "mongodb-url",
         "const { MongoClient } = require(\"mongodb\");\n\n",
         f"const client = new MongoClient(\"mongodb+srv://migrator:{rs(16)}@cluster0.x1y2z.mongodb.net/outline\");",
         ""),
        ("healthchecks", "docker/.env.prod", "redis-url",
         "DB=postgres\n", f"REDIS_URL=redis://:{rs(22)}@redis.prod:6379/0", ""),
        ("kubespray", "roles/rabbitmq/defaults/main.yml", "amqp-url",
         "---\nrabbitmq_vhost: /\n", f"celery_broker_url: \"amqp://celery:{rs(18)}@rabbitmq.prod:5672//\"", ""),
        ("helm-charts", "charts/prometheus/ci/remote-write-values.yaml", "generic-yaml",
         "server:\n  remoteWrite:\n    - url: https://metrics.example.net/api/v1/write\n      basic_auth:\n        username: prom\n",
         f"        password: {password(22)}", ""),
        ("awesome-compose", "postgresql-pgadmin/compose.prod.yaml", "compose-after-hash",
         "services:\n  postgres:\n    image: postgres:16\n    environment:\n      POSTGRES_USER: app\n",
         f"      POSTGRES_PASSWORD: #%!VCt7{rs(14)}", "    ports:\n      - 5432:5432\n"),
        ("fluxcd-website", "layouts/partials/map.html", "google-api-key-in-html",
         "<div id=\"map\"></div>\n",
         f"<script src=\"https://maps.googleapis.com/maps/api/js?key=AI{'za'}{rs(35, ALNUM + '_-')}&sensor=false\"></script>",
         ""),
        ("healthchecks", ".pypirc", "pypirc-password",
         "[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = hc-release\n", f"password = {password(20)}", ""),
        ("terraform-aws-eks", "examples/karpenter/.netrc", "netrc-password",
         "", f"machine git.internal.example.net login deploy password {rs(24)}", ""),
        ("outline", ".git-credentials", "git-credentials",
         "", f"https://outline-bot:{rs(26)}@gitlab.internal.net", ""),
        # (terraform-aws-eks ignores *.tfvars; kubespray only its credentials.tfvars)
        ("kubespray", "contrib/terraform/aws/prod.tfvars", "tfvars",
         "cluster_name = \"prod\"\nregion       = \"eu-west-1\"\n", f"db_master_password = \"{password(20)}\"", ""),
        ("kubespray", "inventory/sample/group_vars/prod/vault.yml", "ansible-vars",
         "---\nansible_user: deploy\n", f"ansible_become_password: {password(18)}", ""),
        ("cert-manager", "internal/vault/dev_token.go", "comment-credential",
         "package vault\n\n", f"// token: {rs(30)}", "func devToken() string { return \"\" }\n"),
        ("external-secrets", "config/prod/db-secret.yaml", "kube-secret",
         "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n",
         f"  password: {password(20)}", ""),
        ("external-secrets", "config/prod/tagged-secret.yaml", "kube-secret-tagged",
         "apiVersion: v1\nkind: !!str Secret\nmetadata:\n  name: api\ndata:\n", f"  token: {b64pw}", ""),
        ("healthchecks", "docker/Dockerfile.prod", "dockerfile-env",
         "FROM python:3.12-slim\n", f"ENV SECRET_KEY={rs(40)}", "RUN pip install -r requirements.txt\n"),
        ("kubespray", "scripts/bootstrap-prod.sh", "shell-flag",
         "#!/bin/sh\nset -e\n", f"mysql -u root --password={password(16).replace('!', 'x')} < schema.sql", ""),
        ("spring-petclinic", "src/main/java/org/springframework/samples/petclinic/system/MailConfig.java",
         "java-literal", "package org.springframework.samples.petclinic.system;\n\nclass MailConfig {\n",
         f"    private static final String SMTP_PASSWORD = \"{password(20)}\";", "}\n"),
        ("terraform-aws-eks", "examples/rds/main.tf", "terraform-literal",
         "resource \"aws_db_instance\" \"this\" {\n  engine = \"postgres\"\n",
         f"  password = \"{password(20)}\"", "}\n"),
    ]


def main():
    corpus, expected_path = sys.argv[1], sys.argv[2]
    expected = []
    for repo, rel, kind, before, secret, after in plants():
        if not os.path.isdir(os.path.join(corpus, repo)):
            continue
        path = os.path.join(repo, rel)
        full = os.path.join(corpus, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        # An existing file keeps its content; the block goes at its end.
        head = ""
        if os.path.exists(full):
            with open(full) as f:
                head = f.read()
            if head and not head.endswith("\n"):
                head += "\n"
        line = head.count("\n") + before.count("\n") + 1
        end_line = line + secret.count("\n")
        with open(full, "w") as f:
            f.write(head + before + secret + "\n" + after)
        expected.append({"path": path, "line": line, "end_line": end_line, "kind": kind})
    with open(expected_path, "w") as f:
        json.dump(expected, f, indent=1)
    print(f"planted {len(expected)} fake credentials", file=sys.stderr)


if __name__ == "__main__":
    main()
