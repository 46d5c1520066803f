#!/usr/bin/env bash
# Makes sure a real kubectl is available for the controller's status tests
# (`kubectl wait --for=condition=Ready sealedsecret.gitseal.dev/NAME` against
# the fake API served over HTTP), idempotently, and prints its path on stdout
# (the last line), e.g.:
#
#   export KUBECTL_BIN="$(scripts/kubectl.sh)"
#
# A kubectl already on PATH (or named by $KUBECTL_BIN) is used as it is;
# otherwise Debian's `kubernetes-client` package is installed with apt-get.
# Both were tested (v1.32 and Debian bookworm's v1.20). Nothing is started.
set -euo pipefail

usable() { [ -n "$1" ] && "$1" version --client >/dev/null 2>&1; }

bin="${KUBECTL_BIN:-$(command -v kubectl || true)}"
if ! usable "$bin"; then
  echo "kubectl.sh: installing Debian's kubernetes-client (kubectl) with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq kubernetes-client >&2
  bin="$(command -v kubectl || true)"
fi
if ! usable "$bin"; then
  echo "kubectl.sh: no usable kubectl after installing kubernetes-client" >&2
  exit 1
fi
echo "kubectl.sh: $("$bin" version --client 2>/dev/null | head -1)" >&2
echo "$bin"
