#!/usr/bin/env python3
"""Generate a repository-like benchmark corpus for `gitseal verify`.

Writes OUT_DIR with Go/Python/JS sources, Kubernetes YAML, Helm values,
package locks and Markdown docs (deterministic, seeded), including the
high-entropy non-secrets real repositories are full of (image digests,
commit ids, lockfile integrity hashes, CA bundles, UUIDs) and obvious
placeholders, then plants ~30 fake secrets at known lines and writes the list
to OUT_DIR/../expected.json as [{path, line, end_line, kind}].

Every fake secret is assembled at run time from prefixes and random
characters (valid GitHub/npm checksums are computed), so this script holds no
credential and does not trip secret scanners itself.

usage: gen-corpus.py OUT_DIR [SIZE_MB]
"""

import base64
import json
import os
import random
import sys
import zlib

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
UPPER32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

R = random.Random(20261121)

WORDS = (
    "account cache client config context cluster deploy event handler index item job "
    "ledger manager metric node order payment queue record request response route "
    "service session shard store stream task tenant user worker invoice billing search "
    "catalog inventory gateway auth profile audit report export import notify backup"
).split()
PROSE = (
    "the controller reconciles the desired state with the cluster and records an event "
    "when a rollout stalls operators should check the readiness probe and the service "
    "endpoints before scaling the deployment a canary receives a small share of traffic "
    "while metrics are compared against the baseline release notes list every change "
    "that affects configuration migrations run before the new version starts serving"
).split()


def rs(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


def word():
    return R.choice(WORDS)


def camel(a, b):
    return a + b[:1].upper() + b[1:]


def sentence(n=14):
    s = " ".join(R.choice(PROSE) for _ in range(n))
    return s[:1].upper() + s[1:] + "."


# ---------------------------------------------------------------- fillers


def go_file():
    pkg = word()
    out = [f"package {pkg}", "", "import (", '\t"context"', '\t"fmt"', '\t"net/http"', '\t"os"', ")", ""]
    for _ in range(R.randint(6, 14)):
        a, b = word(), word()
        name = camel(a, b).capitalize()
        out += [
            f"// {name} {sentence(10)}",
            f"type {name} struct {{",
            f"\tID        string `json:\"id\"`",
            f"\t{b.capitalize()}Count int    `json:\"{b}_count\"`",
            f"\tSecretName string `json:\"secretName\"`",
            "}",
            "",
            f"func (s *{name}) Handle{a.capitalize()}(ctx context.Context, w http.ResponseWriter, r *http.Request) error {{",
            '\ttoken := r.Header.Get("Authorization")',
            '\tif token == "" {',
            '\t\treturn fmt.Errorf("missing token for %s", s.ID)',
            "\t}",
            '\tpassword := os.Getenv("DB_PASSWORD")',
            f'\turl := fmt.Sprintf("https://api.internal/{a}/%s/{b}", s.ID)',
            f"\tfor i := 0; i < s.{b.capitalize()}Count; i++ {{",
            f'\t\tfmt.Fprintf(w, "{a} %d of %d\\n", i, s.{b.capitalize()}Count)',
            "\t}",
            "\t_ = password",
            "\t_ = url",
            "\treturn nil",
            "}",
            "",
        ]
    return "\n".join(out) + "\n"


def py_file():
    out = ['"""' + sentence(12) + '"""', "", "import os", "import logging", "", "log = logging.getLogger(__name__)", ""]
    for _ in range(R.randint(5, 12)):
        a, b = word(), word()
        cls = a.capitalize() + b.capitalize()
        out += [
            f"class {cls}:",
            f'    """{sentence(10)}"""',
            "",
            "    def __init__(self, client, token=None):",
            "        self.client = client",
            "        self.token = token or os.environ.get(\"API_TOKEN\")",
            f"        self.{b}_id = \"{R.randint(1000, 9999)}-{word()}\"",
            "",
            f"    def fetch_{a}(self, {b}_id):",
            f"        log.info(\"fetching {a} %s\", {b}_id)",
            f"        resp = self.client.get(f\"/v1/{a}/{{{b}_id}}\", headers={{\"X-Token\": self.token}})",
            "        resp.raise_for_status()",
            "        return resp.json()",
            "",
            f"    def checksum(self):",
            f"        return \"{rs(64, HEX)}\"",
            "",
        ]
    return "\n".join(out) + "\n"


def js_file():
    out = ["'use strict';", "", "const axios = require('axios');", "const apiKey = process.env.API_KEY;", ""]
    for _ in range(R.randint(6, 14)):
        a, b = word(), word()
        fn = camel(a, b)
        out += [
            f"/** {sentence(9)} */",
            f"async function {fn}(id, options = {{}}) {{",
            f"  const url = `https://api.example.com/v2/{a}/${{id}}/{b}`;",
            "  const headers = { Authorization: `Bearer ${options.token || apiKey}` };",
            "  const res = await axios.get(url, { headers, timeout: 5000 });",
            f"  if (res.status !== 200) throw new Error('{a} lookup failed: ' + res.status);",
            f"  return res.data.{b}s.map((x) => ({{ ...x, traceId: '{rs(32, HEX)}' }}));",
            "}",
            "",
        ]
    out.append("module.exports = { " + ", ".join(camel(word(), word()) for _ in range(3)) + " };")
    return "\n".join(out) + "\n"


def k8s_file(svc):
    digest = rs(64, HEX)
    ca = base64.b64encode(os.urandom(0) + bytes(R.getrandbits(8) for _ in range(600))).decode()
    docs = [
        f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}
  labels:
    app: {svc}
  annotations:
    checksum/config: {rs(64, HEX)}
spec:
  replicas: {R.randint(1, 6)}
  selector:
    matchLabels:
      app: {svc}
  template:
    metadata:
      labels:
        app: {svc}
    spec:
      containers:
      - name: {svc}
        image: registry.example.com/{svc}@sha256:{digest}
        env:
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {svc}-db
              key: password
        - name: API_TOKEN
          valueFrom:
            secretKeyRef:
              name: {svc}-api
              key: token
        resources:
          limits:
            cpu: 500m
            memory: 256Mi
""",
        f"""apiVersion: v1
kind: Service
metadata:
  name: {svc}
spec:
  ports:
  - port: 80
    targetPort: 8080
  selector:
    app: {svc}
""",
        f"""apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: {svc}-webhook
webhooks:
- name: {svc}.example.com
  clientConfig:
    caBundle: {ca}
    service:
      name: {svc}
      namespace: default
""",
        f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {svc}-config
data:
  LOG_LEVEL: info
  TRACE_ID_SALT_NAME: {svc}_salt
  REQUEST_ID: "{rs(8, HEX)}-{rs(4, HEX)}-{rs(4, HEX)}-{rs(4, HEX)}-{rs(12, HEX)}"
""",
    ]
    return "---\n".join(docs)


def values_file(svc):
    return f"""# Default values for {svc}.
replicaCount: {R.randint(1, 5)}
image:
  repository: registry.example.com/{svc}
  tag: "{R.randint(1, 9)}.{R.randint(0, 30)}.{R.randint(0, 9)}"
  digest: sha256:{rs(64, HEX)}
  pullPolicy: IfNotPresent
postgresql:
  auth:
    username: {svc}
    password: ""
    existingSecret: {svc}-postgres
    secretKeys:
      adminPasswordKey: postgres-password
redis:
  password: changeme
  url: redis://redis-master:6379/0
ingress:
  enabled: true
  hosts:
  - host: {svc}.example.com
    paths: ["/"]
auth:
  clientId: {svc}-web
  clientSecret: ${{CLIENT_SECRET}}
  tokenUrl: https://auth.example.com/oauth/token
  apiKey: "<your-api-key>"
podAnnotations:
  commit: {rs(40, HEX)}
"""


def md_file(svc):
    out = [f"# {svc}", "", sentence(20), ""]
    for _ in range(R.randint(4, 10)):
        out += [f"## {word().capitalize()} {word()}", "", sentence(25), sentence(18), ""]
        out += ["```bash", f"export DATABASE_URL=postgres://user:password@localhost:5432/{svc}",
                "export API_KEY=<your-api-key>", f"kubectl -n {svc} rollout status deploy/{svc}", "```", ""]
        out += [f"Fixed in commit {rs(40, HEX)} (see #{R.randint(100, 999)}).", ""]
    out += ["Example AWS key from the AWS docs: `" + "AKIA" + "IOSFODNN7" + "EXAMPLE" + "`.", ""]
    return "\n".join(out) + "\n"


def lock_file():
    pk = {}
    for _ in range(R.randint(60, 120)):
        name = f"{word()}-{word()}"
        pk[f"node_modules/{name}"] = {
            "version": f"{R.randint(0, 9)}.{R.randint(0, 20)}.{R.randint(0, 9)}",
            "resolved": f"https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",
            "integrity": "sha512-" + base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode(),
        }
    return json.dumps({"name": "web", "lockfileVersion": 3, "packages": pk}, indent=2) + "\n"


# ---------------------------------------------------------------- planted


def crc62(s):
    n = zlib.crc32(s.encode()) & 0xFFFFFFFF
    out = ""
    for _ in range(6):
        out = ALNUM_62[n % 62] + out
        n //= 62
    return out


ALNUM_62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def checksummed(prefix):
    body = rs(30)
    return prefix + body + crc62(body)


def pem(label, escaped=False):
    nl = "\\n" if escaped else "\n"
    body = base64.b64encode(bytes(R.getrandbits(8) for _ in range(900))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return f"-----{'BEGIN'} {label}-----" + nl + nl.join(lines) + nl + f"-----{'END'} {label}-----"


def jwt():
    e = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
    h = e(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = e(json.dumps({"sub": rs(12), "name": "svc", "iat": 1700000000 + R.randint(0, 9999)}).encode())
    return f"{h}.{p}.{e(bytes(R.getrandbits(8) for _ in range(32)))}"


def planted():
    """(kind, text) pairs; text may span several lines."""
    aws_id = "AKIA" + rs(16, UPPER32)
    items = [
        ("aws-credentials", f"aws_access_key_id = {aws_id}\naws_secret_access_key = {rs(40, B64)}"),
        ("github-token", f'GITHUB_TOKEN="{checksummed("gh" + "p_")}"'),
        ("github-oauth", f"    oauth: {checksummed('gh' + 'o_')}"),
        ("github-fine-grained", f"token: github_{'pat'}_{rs(22)}_{rs(59)}"),
        ("gitlab-token", f"  GITLAB_TOKEN: gl{'pat'}-{rs(20)}"),
        ("slack-token", f"slack_bot = \"xo{'xb'}-{rs(12, '0123456789')}-{rs(13, '0123456789')}-{rs(24)}\""),
        ("slack-webhook", f"  webhook: https://hooks.{'slack'}.com/services/T{rs(8, UPPER32)}/B{rs(8, UPPER32)}/{rs(24)}"),
        ("stripe", f"const stripe = require('stripe')('sk_{'live'}_{rs(24)}');"),
        ("sendgrid", f"SENDGRID = \"S{'G'}.{rs(22)}.{rs(43)}\""),
        ("openai", f"client = OpenAI(api_key=\"sk-{'proj'}-{rs(40)}T3Blbk{'FJ'}{rs(40)}\")"),
        ("npm", f"//registry.npmjs.org/:_authToken={checksummed('np' + 'm_')}"),
        ("azure-storage", f"  AZURE_STORAGE: \"DefaultEndpointsProtocol=https;AccountName=prodstore;Account{'Key'}={rs(86, B64)}==;EndpointSuffix=core.windows.net\""),
        ("pem-rsa", pem("RSA PRIVATE KEY")),
        ("pem-ec", pem("EC PRIVATE KEY")),
        ("pem-pkcs8", pem("PRIVATE KEY")),
        ("openssh", pem("OPENSSH PRIVATE KEY")),
        ("jwt", f"Authorization: Bearer {jwt()}"),
        ("postgres-url", f"DATABASE_URL=postgres://app:{rs(18)}@db.prod.internal:5432/app"),
        ("mongodb-url", f"  uri: \"mongodb+srv://svc:{rs(16)}@cluster0.ab1cd.mongodb.net/orders\""),
        ("mysql-url", f"MYSQL_DSN=mysql://shop:{rs(20)}@mysql.prod.internal:3306/shop"),
        ("redis-url", f"REDIS_URL = \"redis://default:{rs(24)}@cache.prod.internal:6379/0\""),
        ("generic-password-yaml", f"  password: {rs(20)}"),
        ("generic-env", f"export PAYMENTS_API_KEY={rs(32)}"),
        ("generic-json", f'  "client_secret": "{rs(28)}",'),
        ("generic-properties", f"spring.datasource.password={rs(16, ALNUM)}!x"),
        ("generic-python", f'DB_PASSWORD = "{rs(14)}#{rs(6)}"'),
    ]
    gcp = (
        "gcp-service-account",
        "{\n  \"type\": \"service_account\",\n  \"project_id\": \"prod-1234\",\n  \"private_key_id\": \"" + rs(40, HEX)
        + "\",\n  \"private_key\": \"" + pem("PRIVATE KEY", escaped=True) + "\\n\",\n  \"client_email\": \"ci@prod-1234.iam.gserviceaccount.com\",\n  \"client_id\": \""
        + rs(21, "0123456789") + "\"\n}",
    )
    secret_data = base64.b64encode(rs(20).encode()).decode()
    k8s = (
        "k8s-secret-data",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: payments-db\n  namespace: payments\ntype: Opaque\ndata:\n  password: {secret_data}",
    )
    k8s2 = (
        "k8s-secret-stringdata",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: search-api\nstringData:\n  api-token: {rs(30)}",
    )
    return items + [gcp, k8s, k8s2]


# ---------------------------------------------------------------- main


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    size_mb = float(sys.argv[2]) if len(sys.argv) > 2 else 56
    target = int(size_mb * 1024 * 1024)
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    files = []  # (relpath, text)
    n = 0
    gens = [
        ("cmd/{svc}/main_{i}.go", lambda svc: go_file()),
        ("internal/{svc}/{w}_{i}.go", lambda svc: go_file()),
        ("api/{svc}/{w}_{i}.py", lambda svc: py_file()),
        ("web/src/{svc}/{w}_{i}.js", lambda svc: js_file()),
        ("deploy/{svc}/{w}_{i}.yaml", k8s_file),
        ("charts/{svc}/values-{w}-{i}.yaml", values_file),
        ("docs/{svc}/{w}_{i}.md", md_file),
        ("web/{svc}/package-lock-{i}.json", lambda svc: lock_file()),
    ]
    while written < target:
        svc = f"{word()}-{word()}"
        tmpl, gen = gens[n % len(gens)]
        rel = tmpl.format(svc=svc, w=word(), i=n)
        text = gen(svc)
        files.append((rel, text))
        written += len(text)
        n += 1

    # Plant each secret in its own existing file, at a line in the middle,
    # choosing a file of a fitting type.
    expected = []
    kinds_ext = {
        "k8s-secret-data": ".yaml", "k8s-secret-stringdata": ".yaml", "gcp-service-account": ".json",
    }
    for idx, (kind, text) in enumerate(planted()):
        ext = kinds_ext.get(kind)
        if ext == ".json":
            rel = f"secrets/{word()}-sa-{idx}.json"
            files.append((rel, text + "\n"))
            line = 1 + text.split("\n").index(next(l for l in text.split("\n") if "private_key\"" in l))
            expected.append({"path": rel, "line": line, "end_line": line, "kind": kind})
            continue
        if ext == ".yaml":
            # Append as an extra document to a manifest file.
            j = next(i for i in range(idx * 7, len(files)) if files[i][0].startswith("deploy/"))
            rel, body = files[j]
            start = body.count("\n") + 2  # after the '---' line
            body = body + "---\n" + text + "\n"
            files[j] = (rel, body)
            tl = text.split("\n")
            line = start + len(tl) - 1
            expected.append({"path": rel, "line": line, "end_line": line, "kind": kind})
            continue
        j = (idx * 131 + 17) % len(files)
        while files[j][0].endswith(".json"):
            j = (j + 1) % len(files)
        rel, body = files[j]
        lines = body.split("\n")
        at = len(lines) // 2
        block = text.split("\n")
        lines[at:at] = block
        files[j] = (rel, "\n".join(lines))
        # Other plants in the same file shift: recompute after insertion.
        for e in expected:
            if e["path"] == rel and e["line"] > at:
                e["line"] += len(block)
                e["end_line"] += len(block)
        if kind == "aws-credentials":
            # Two secrets, one a line: the key id and the secret key.
            expected.append({"path": rel, "line": at + 1, "end_line": at + 1, "kind": "aws-access-key-id"})
            expected.append({"path": rel, "line": at + 2, "end_line": at + 2, "kind": "aws-secret-access-key"})
        else:
            expected.append({"path": rel, "line": at + 1, "end_line": at + len(block), "kind": kind})

    total = 0
    for rel, text in files:
        p = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        total += len(text.encode())
    exp_path = os.path.join(os.path.dirname(os.path.abspath(out_dir)), "expected.json")
    with open(exp_path, "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {len(files)} files, {total / 1048576:.1f} MiB, {len(expected)} planted secrets -> {exp_path}")


if __name__ == "__main__":
    main()
