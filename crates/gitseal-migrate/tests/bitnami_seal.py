#!/usr/bin/env python3
"""An independent encoder of Bitnami Sealed Secrets, for gitseal's tests.

It writes what a Bitnami user has: the controller's exported private keys
and a repository of SealedSecrets (bitnami.com/v1alpha1) made the way
kubeseal makes them. It shares no code with gitseal: Python's
`cryptography` package does RSA-OAEP and AES-GCM, following Bitnami's
pkg/crypto/crypto.go (HybridEncrypt) and
pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go (EncryptionLabel,
NewSealedSecret, NewSealedSecretV1):

    value = u16be(len(rsa)) || RSA-OAEP(SHA-256, MGF1-SHA-256, label)(k)
            || AES-256-GCM(k, nonce = 12 zero bytes, no AAD)(plaintext)
    label = "namespace/name" (strict) | "namespace" (namespace-wide) | "" (cluster-wide)

Usage: bitnami_seal.py OUTDIR
Writes OUTDIR/keys.yaml (the key Secrets as `kubectl get secret -o yaml`
prints them: a List), OUTDIR/current.pem (PKCS#1), OUTDIR/current-pkcs8.pem,
OUTDIR/wrong.pem, OUTDIR/repo/... (the manifests) and OUTDIR/expected.json
(what each object must convert to, or why it must be refused).
"""

import base64
import datetime
import json
import os
import sys
import tempfile

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

ANNO = "sealedsecrets.bitnami.com/"


def new_key(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def pkcs1_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def pkcs8_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate(key):
    # Bitnami's controller publishes a self-signed certificate for its key.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def label(scope, namespace, name):
    if scope == "cluster-wide":
        return b""
    if scope == "namespace-wide":
        return namespace.encode()
    return f"{namespace}/{name}".encode()


def hybrid_encrypt(public_key, plaintext, label_bytes):
    session_key = os.urandom(32)
    rsa_ct = public_key.encrypt(
        session_key,
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()),
            algorithm=hashes.SHA256(),
            label=label_bytes or None,
        ),
    )
    aes_ct = AESGCM(session_key).encrypt(b"\x00" * 12, plaintext, None)
    return len(rsa_ct).to_bytes(2, "big") + rsa_ct + aes_ct


def b64(data):
    return base64.b64encode(data).decode()


def sealed_secret(key, name, namespace, items, scope="strict", template=None, annotations=None,
                  labels=None, seal_as=None):
    """A SealedSecret as kubeseal writes it. `seal_as` = (namespace, name)
    seals for another place than the object claims (a moved object)."""
    ns_for_label, name_for_label = seal_as or (namespace, name)
    lab = label(scope, ns_for_label or "", name_for_label)
    meta = {"name": name, "creationTimestamp": None}
    if namespace:
        meta["namespace"] = namespace
    anns = dict(annotations or {})
    if scope != "strict":
        anns[ANNO + scope] = "true"
    if anns:
        meta["annotations"] = anns
    if labels:
        meta["labels"] = labels
    tmpl = {"metadata": {"name": name, "creationTimestamp": None}}
    if namespace:
        tmpl["metadata"]["namespace"] = namespace
    if scope != "strict":
        tmpl["metadata"]["annotations"] = {ANNO + scope: "true"}
    for k, v in (template or {}).items():
        if k == "metadata":
            for mk, mv in v.items():
                tmpl["metadata"].setdefault(mk, {}).update(mv)
        else:
            tmpl[k] = v
    return {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": meta,
        "spec": {
            "encryptedData": {
                k: b64(hybrid_encrypt(key.public_key(), v, lab)) for k, v in items.items()
            },
            "template": tmpl,
        },
    }


def legacy_sealed_secret(key, name, namespace, items, secret_type):
    """The deprecated format (NewSealedSecretV1): the whole Secret as JSON."""
    secret = {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "data": {k: b64(v) for k, v in items.items()},
        "type": secret_type,
    }
    ct = hybrid_encrypt(key.public_key(), json.dumps(secret).encode(), label("strict", namespace, name))
    return {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"data": b64(ct)},
    }


def go_render(templates, items):
    """What Bitnami's controller writes for `spec.template.data`: each item
    rendered by Go's text/template with sprig's functions over the opened
    values (sealedsecret_expansion.go, Unseal). Rendered here by Helm's
    engine (helm-python-sdk embeds Helm's Go library, which uses the same
    text/template and sprig): the Bitnami template runs inside
    `{{ with .Values.d }}`, so `.` is the map of values as in Bitnami."""
    import helm_python

    with tempfile.TemporaryDirectory() as chart:
        os.makedirs(os.path.join(chart, "templates"))
        with open(os.path.join(chart, "Chart.yaml"), "w") as f:
            f.write("apiVersion: v2\nname: bitnami-template\nversion: 0.1.0\n")
        names = {}
        for i, (key, source) in enumerate(sorted(templates.items())):
            names[key] = f"bitnami-template/templates/t{i}.txt"
            with open(os.path.join(chart, "templates", f"t{i}.txt"), "w") as f:
                f.write("{{- with .Values.d }}" + source + "{{ end }}")
        values = {"d": {k: v.decode() for k, v in items.items()}}
        rendered = helm_python.Chart.load(chart).render(values, name="x", namespace="x", is_install=True)
        return {key: rendered[path].encode() for key, path in names.items()}


def write_yaml(path, docs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)


def main(out):
    current = new_key(4096)
    rotated = new_key(2048)  # an older key the controller keeps after rotation
    wrong = new_key(2048)  # another cluster's key

    key_secrets = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {
                    "name": f"sealed-secrets-key{suffix}",
                    "namespace": "kube-system",
                    "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"},
                },
                "data": {"tls.crt": b64(certificate(k)), "tls.key": b64(pkcs1_pem(k))},
            }
            for suffix, k in (("abcde", current), ("fghij", rotated))
        ],
        "metadata": {"resourceVersion": ""},
    }
    os.makedirs(out, exist_ok=True)
    write_yaml(os.path.join(out, "keys.yaml"), [key_secrets])
    with open(os.path.join(out, "current.pem"), "wb") as f:
        f.write(pkcs1_pem(current))
    with open(os.path.join(out, "current-pkcs8.pem"), "wb") as f:
        f.write(pkcs8_pem(current))
    with open(os.path.join(out, "wrong.pem"), "wb") as f:
        f.write(pkcs1_pem(wrong))

    binary = bytes(range(256)) + b"\x00\xff\x00" + os.urandom(64)
    expected = {}
    repo = os.path.join(out, "repo")

    def expect(file, doc, name, namespace, scope, items, **extra):
        expected.setdefault(file, []).append(
            dict(document=doc, name=name, namespace=namespace, scope=scope,
                 items={k: b64(v) for k, v in items.items()}, **extra)
        )

    def refuse(file, doc, name, reason):
        expected.setdefault(file, []).append(dict(document=doc, name=name, refused=reason))

    db_items = {"password": "pässwörd with spaces\n".encode(), "tls.bin": binary, "empty": b""}
    write_yaml(os.path.join(repo, "apps/shop/db.yaml"), [
        sealed_secret(
            current, "db", "shop", db_items,
            template={"type": "Opaque", "immutable": True,
                      "metadata": {"labels": {"app": "shop"},
                                   "annotations": {"team": "payments", ANNO + "managed": "true"}}},
            annotations={"argocd.argoproj.io/sync-wave": "1"},
            labels={"app": "shop"},
        )
    ])
    expect("apps/shop/db.yaml", 0, "db", "shop", "strict", db_items,
           type="Opaque", immutable=True, template_labels={"app": "shop"},
           template_annotations={"team": "payments"},
           annotations={"argocd.argoproj.io/sync-wave": "1"}, labels={"app": "shop"})

    ns_items = {"token": b"ns-wide-token-value"}
    cluster_items = {".dockerconfigjson": b'{"auths":{"registry.example":{"auth":"dXNlcjpwYXNz"}}}'}
    rotated_items = {"api-key": b"sealed-before-rotation"}
    write_yaml(os.path.join(repo, "apps/shop/more.yaml"), [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
        sealed_secret(current, "shared", "shop", ns_items, scope="namespace-wide"),
        sealed_secret(rotated, "old", "shop", rotated_items),
    ])
    expect("apps/shop/more.yaml", 1, "shared", "shop", "namespace", ns_items)
    expect("apps/shop/more.yaml", 2, "old", "shop", "strict", rotated_items)

    write_yaml(os.path.join(repo, "platform/pull-secret.yaml"), [
        sealed_secret(current, "pull", None, cluster_items, scope="cluster-wide",
                      template={"type": "kubernetes.io/dockerconfigjson"})
    ])
    expect("platform/pull-secret.yaml", 0, "pull", None, "cluster", cluster_items,
           type="kubernetes.io/dockerconfigjson")

    legacy_items = {"user": b"admin", "pass": b"legacy-format"}
    write_yaml(os.path.join(repo, "apps/legacy/old-format.yaml"), [
        legacy_sealed_secret(current, "legacy", "legacy", legacy_items, "Opaque")
    ])
    expect("apps/legacy/old-format.yaml", 0, "legacy", "legacy", "strict", legacy_items, type="Opaque")

    # Refused: a tampered value, a value for another cluster's key, an
    # object renamed after sealing, Go template data.
    tampered = sealed_secret(current, "tampered", "shop", {"ok": b"fine", "bad": b"flipped"})
    raw = bytearray(base64.b64decode(tampered["spec"]["encryptedData"]["bad"]))
    raw[-1] ^= 0x01
    tampered["spec"]["encryptedData"]["bad"] = b64(bytes(raw))
    write_yaml(os.path.join(repo, "apps/shop/tampered.yaml"), [tampered])
    refuse("apps/shop/tampered.yaml", 0, "tampered", {"does_not_open": ["bad"]})

    write_yaml(os.path.join(repo, "apps/other/foreign.yaml"), [
        sealed_secret(wrong, "foreign", "other", {"a": b"1", "b": b"2"})
    ])
    refuse("apps/other/foreign.yaml", 0, "foreign", {"does_not_open": ["a", "b"]})

    write_yaml(os.path.join(repo, "apps/other/renamed.yaml"), [
        sealed_secret(current, "renamed", "other", {"a": b"1"}, seal_as=("other", "original"))
    ])
    refuse("apps/other/renamed.yaml", 0, "renamed", {"does_not_open": ["a"]})

    # Go templates (spec.template.data): the translatable ones convert, and
    # the Secret gitseal writes must equal what Bitnami's controller wrote:
    # every sealed item plus every rendered one.
    tmpl_items = {"user": b"app", "pass": "p@ss:w/rd {% raw %} \"quoted\" ü\n".encode(),
                  "tls.key": b"-----KEY-----\nabc\n"}
    tmpl_data = {
        "url": "postgres://{{ .user }}:{{ index . \"pass\" }}@db:5432/shop?sslmode=require",
        "basic": "{{ .user }}:{{ .pass | b64enc }}",
        "config.yaml": "db:\n  user: {{ .user }}\n  {{- /* trimmed */}}\n  key: |\n    {{ index . `tls.key` -}}\n\n  end: {# not a comment #}\n",
        "literal": "no actions {% at all %}",
        "user": "{{ .user }}-renamed",
    }
    write_yaml(os.path.join(repo, "apps/shop/templated.yaml"), [
        sealed_secret(current, "templated", "shop", tmpl_items, template={"data": tmpl_data})
    ])
    rendered = go_render(tmpl_data, tmpl_items)
    assert rendered["url"].startswith(b"postgres://app:p@ss"), rendered["url"]
    secret_data = dict(tmpl_items)
    secret_data.update(rendered)
    expect("apps/shop/templated.yaml", 0, "templated", "shop", "strict", tmpl_items,
           secret_data={k: b64(v) for k, v in secret_data.items()})

    write_yaml(os.path.join(repo, "apps/shop/templated-refused.yaml"), [
        sealed_secret(current, "branching", "shop", {"a": b"1"},
                      template={"data": {"out": "{{ if .a }}yes{{ end }}"}}),
        sealed_secret(current, "missing", "shop", {"a": b"1"},
                      template={"data": {"out": "{{ .a }}{{ .b }}"}}),
    ])
    write_yaml(os.path.join(repo, "apps/shop/templated-binary.yaml"), [
        sealed_secret(current, "binary", "shop", {"bin": binary},
                      template={"data": {"as-base64": "{{ .bin | b64enc }}", "raw": "{{ .bin }}"}}),
    ])
    refuse("apps/shop/templated-binary.yaml", 0, "binary",
           {"template_data": ["raw", "the translation does not render"]})
    refuse("apps/shop/templated-refused.yaml", 0, "branching",
           {"template_data": ["out", "the control structure {{ if }}"]})
    refuse("apps/shop/templated-refused.yaml", 1, "missing",
           {"template_data": ["out", "it reads \"b\", which the object does not have"]})

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
