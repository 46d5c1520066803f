#!/usr/bin/env bash
# Installs PyYAML (a YAML 1.1 reader, like kubectl's Go yaml.v2) for the
# tests that read gitseal's YAML output back with it (tests/tools/yaml11.py),
# idempotently. Prints nothing on stdout.
set -euo pipefail
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import yaml' >/dev/null 2>&1; then
  echo "pyyaml.sh: installing PyYAML from PyPI" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check "PyYAML>=6,<7" >&2
fi
"$PY" -c 'import yaml; print("pyyaml.sh: PyYAML", yaml.__version__)' >&2
