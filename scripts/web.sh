#!/usr/bin/env bash
# The sealing page (web/): installs what its tests need, idempotently
# (Debian's chromium; the npm packages pinned in web/package-lock.json, by
# `npm ci`), checks that the committed build web/dist is exactly what web/src
# builds to, and runs the JavaScript unit tests (RFC 9180 vectors through
# hpke-js, the envelope, keys, manifests). The browser tests need the
# controller binary, so they run inside `cargo test` (gitseal-controller,
# tests/it/web_page.rs), on what this script installed.
#
# scripts/test.sh runs it; run it alone after changing web/. A part that
# cannot be installed fails the script.
set -euo pipefail
cd "$(dirname "$0")/../web"

fail() {
  echo "web.sh: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node is not installed (Node.js 18 or newer with npm)"
command -v npm >/dev/null || fail "npm is not installed"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if ! "$CHROMIUM" --version >/dev/null 2>&1; then
  echo "web.sh: installing Debian's chromium" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  "$CHROMIUM" --version >/dev/null 2>&1 || fail "$CHROMIUM does not run after installing chromium"
fi
echo "web.sh: $("$CHROMIUM" --version 2>/dev/null), node $(node --version)" >&2

# npm ci when node_modules was not installed from this exact lock file.
stamp=node_modules/.gitseal-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "web.sh: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

echo "web.sh: checking that web/dist is what web/src builds to" >&2
node build.mjs --check

node --test --test-reporter=spec test/unit/
