#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (crypto vectors,
# manifests, CLI, controller against an in-process API, Vault against a real
# OpenBao dev server, the sealing page in headless Chromium), and gitseal
# scanning its own repository.
# CI runs exactly this (.ci/run). With CI=true a missing part fails, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> installing test dependencies (OpenBao dev server)"
BAO_BIN="$(scripts/openbao.sh)"
export BAO_BIN
echo "==> installing test dependencies (PyYAML, a YAML 1.1 reader)"
scripts/pyyaml.sh

echo "==> the sealing page (web/): chromium, npm packages, bundle check, JS unit tests"
scripts/web.sh

echo "==> installing test dependencies (kubectl, lua5.1, Helm engine, Python cryptography)"
scripts/gitops-tools.sh
# The controller's status tests run `kubectl wait` with this kubectl.
KUBECTL_BIN="$(command -v kubectl)"
export KUBECTL_BIN

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked

echo "==> gitseal verify . (the repository scans itself)"
cargo run --quiet --locked -p gitseal -- verify .

echo "==> quickstart"
scripts/quickstart.sh > /dev/null
echo "all checks passed"
