#!/usr/bin/env bash
# Installs, idempotently, the real tools the deployment and migration tests
# run (crates/gitseal-deploy, crates/gitseal-migrate):
#   - kubectl, with its built-in kustomize (the machine image ships it;
#     Debian's `kubectl` or `kubernetes-client` package otherwise);
#   - lua5.1 (Debian), the interpreter for Argo CD's Lua health check;
#   - age (Debian), which the disaster-recovery drill of the controller
#     (docs/operations.md's backup and restore) encrypts the backup with;
#   - from PyPI: helm-python-sdk (Helm's Go engine, libhelm_c), PyYAML,
#     kubernetes-validate (the Kubernetes OpenAPI schemas, offline) and
#     cryptography (the independent Bitnami Sealed Secrets encoder).
# Prints what it found on stderr; exits non-zero when a tool is still
# missing, so CI fails instead of skipping.
set -euo pipefail

PY="${PYTHON:-python3}"
PY_PACKAGES=(
  "helm-python-sdk==0.2.2"
  "kubernetes-validate==1.37.0"
  "PyYAML>=6"
  "cryptography>=42"
)

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >&2
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

if ! command -v lua5.1 >/dev/null 2>&1; then
  echo "gitops-tools.sh: installing lua5.1 (Debian)" >&2
  apt_install lua5.1
fi

if ! command -v age >/dev/null 2>&1; then
  echo "gitops-tools.sh: installing age (Debian)" >&2
  apt_install age
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "gitops-tools.sh: installing kubectl (Debian)" >&2
  apt_install kubectl || apt_install kubernetes-client
fi

if ! "$PY" - <<'PYEOF' >/dev/null 2>&1
import helm_python, kubernetes_validate, yaml, cryptography
PYEOF
then
  echo "gitops-tools.sh: installing ${PY_PACKAGES[*]} (PyPI)" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >&2
fi

missing=0
command -v lua5.1 >/dev/null 2>&1 || { echo "gitops-tools.sh: lua5.1 is missing" >&2; missing=1; }
command -v kubectl >/dev/null 2>&1 || { echo "gitops-tools.sh: kubectl is missing" >&2; missing=1; }
command -v age >/dev/null 2>&1 || { echo "gitops-tools.sh: age is missing" >&2; missing=1; }
kubectl kustomize --help >/dev/null 2>&1 || { echo "gitops-tools.sh: kubectl has no kustomize" >&2; missing=1; }
"$PY" - <<'PYEOF' >&2 || missing=1
import helm_python, kubernetes_validate, yaml, cryptography
print("gitops-tools.sh: helm SDK", helm_python.helm_sdk_version(), "cryptography", cryptography.__version__)
PYEOF
[ "$missing" = 0 ] || exit 1
echo "gitops-tools.sh: $(lua5.1 -v 2>&1); kubectl $(kubectl version --client 2>/dev/null | head -1)" >&2
