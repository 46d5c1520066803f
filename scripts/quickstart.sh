#!/usr/bin/env bash
# The gitseal quickstart, no cluster needed: build, make a key, seal the
# example Secret, show the sealed YAML, open it again and compare.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building gitseal"
cargo build --quiet -p gitseal
gitseal="${CARGO_TARGET_DIR:-target}/debug/gitseal"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> gitseal keygen -o key.txt   (the private key; mode 0600. In real use the cluster holds it.)"
recipient=$("$gitseal" keygen -o "$work/key.txt")
echo "    public key: $recipient"

echo "==> gitseal seal -r $recipient -f examples/secret.yaml"
"$gitseal" seal -r "$recipient" -f examples/secret.yaml -o "$work/sealed.yaml"
echo "---- sealed.yaml: safe to commit ----"
cat "$work/sealed.yaml"
echo "-------------------------------------"

echo "==> gitseal verify sealed.yaml   (what CI runs: no plaintext here)"
"$gitseal" verify "$work/sealed.yaml"

echo "==> gitseal unseal -i key.txt -f sealed.yaml   (what the controller does in the cluster)"
"$gitseal" unseal -i "$work/key.txt" -f "$work/sealed.yaml" -o "$work/opened.yaml"
cat "$work/opened.yaml"

echo "==> gitseal verify plain.yaml   (the plaintext example Secret: CI would fail here)"
cp examples/secret.yaml "$work/plain.yaml"
if "$gitseal" verify "$work/plain.yaml"; then
  echo "expected verify to flag the plaintext Secret" >&2
  exit 1
fi
echo "==> quickstart OK: sealed, verified, opened"
