#!/usr/bin/env bash
# RSA key generation (issue 17), in one run on one machine:
#   1. the candidates compared key by key (crates/kpki/examples/rsa_candidates.rs: aws-lc-rs,
#      rcgen over aws-lc-rs, OpenSSL through the `openssl` crate; mean/median/sd/min/max), and
#      the floor: the fastest candidate making the tree's 16 keys on 2 threads (wall);
#   2. `kpki init` RSA-2048, whole process (release build, default features), fresh dir each run;
#   3. the floor again (load drifts: the floor is the mean of its rounds before and after init);
#   4. for reference, the system's openssl CLI making one RSA-2048 key per process;
# then the ratio mean(init) / mean(floor). Target (issue 17): <= 1.1.
# Not part of CI. Needs hyperfine. Takes about two minutes.
#
# Usage: scripts/bench-rsa.sh [OUT.md]   (default target/bench/rsa.md)
# Knobs: KEYS (per candidate, default 80), FLOOR_ROUNDS (each half, default 10), RUNS (init, 20).
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-80}
FLOOR_ROUNDS=${FLOOR_ROUNDS:-10}
RUNS=${RUNS:-20}
OUT=${1:-target/bench/rsa.md}

for tool in hyperfine python3 openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool (Debian: apt-get install -y hyperfine python3 openssl)" >&2; exit 2; }
done

export CARGO_INCREMENTAL=0
cargo build --release -q -p kpki-cli
cargo build --release -q -p kpki --features openssl-rsa --example rsa_candidates
K=$PWD/target/release/kpki
C=$PWD/target/release/examples/rsa_candidates

W=$(mktemp -d "${TMPDIR:-/tmp}/kpki-bench-rsa.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$(dirname "$OUT")"
flags=(--node-name cp-1 --apiserver-advertise-address 10.0.0.10 --control-plane-endpoint k8s.example.internal:6443)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== candidates, then the floor (first half)"
"$C" "$KEYS" "$FLOOR_ROUNDS" | tee "$W/candidates.txt"
fastest=$(tail -1 "$W/candidates.txt" | tr ' ' '\n' | sed -n 's/^fastest=//p')

echo "== kpki init RSA-2048 (whole process)"
hyperfine --style basic --runs "$RUNS" --warmup 1 --prepare "rm -rf $W/k" \
  --export-json "$W/init.json" -n "kpki init RSA-2048" \
  "$K init --cert-dir $W/k/pki --kubeconfig-dir $W/k ${flags[*]}"
test -f "$W/k/pki/ca.key" && test -f "$W/k/admin.conf"

echo "== the floor (second half)"
"$C" floor "$fastest" "$FLOOR_ROUNDS" | tee "$W/floor2.txt"

echo "== reference: system openssl CLI, one key per process"
hyperfine --style basic --runs "$RUNS" --export-json "$W/cli.json" -n "$(openssl version | cut -d' ' -f1-2) genpkey RSA-2048 (whole process)" \
  "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $W/cli.key"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$W" "$OUT" "$load_before" "$load_after" <<'PY'
import json, os, statistics, sys
w, out, lb, la = sys.argv[1:5]
def kv(path):
    line = open(os.path.join(w, path)).read().strip().splitlines()[-1]
    return dict(x.split("=", 1) for x in line.split())
cand = open(os.path.join(w, "candidates.txt")).read().strip().splitlines()[:-1]
f1, f2 = kv("candidates.txt"), kv("floor2.txt")
walls = [float(x) for x in f1["floor_ms_all"].split(",") + f2["floor_ms_all"].split(",")]
floor = statistics.mean(walls)
init = json.load(open(os.path.join(w, "init.json")))["results"][0]
cli = json.load(open(os.path.join(w, "cli.json")))["results"][0]
ms = lambda s: s * 1000
lines = [f"load average before / after: {lb} / {la}; {os.cpu_count()} cores", ""]
lines += cand
lines += ["", "| whole process | runs | mean ± sd | median | min | max |", "|---|---|---|---|---|---|"]
for r in (init, cli):
    lines.append(f"| {r['command']} | {len(r['times'])} | {ms(r['mean']):.1f} ± {ms(r['stddev'] or 0):.1f} ms | "
                 f"{ms(r['median']):.1f} ms | {ms(r['min']):.1f} ms | {ms(r['max']):.1f} ms |")
ratio = ms(init["mean"]) / floor
lines += ["",
          f"floor ({f1['fastest']}, 16 keys on 2 threads, wall): {len(walls)} rounds (before and after init), "
          f"mean {floor:.1f} ms, sd {statistics.stdev(walls):.1f} ms (halves: {float(f1['floor_ms_mean']):.1f} / {float(f2['floor_ms_mean']):.1f} ms)",
          f"kpki init RSA-2048 mean / floor mean = {ms(init['mean']):.1f} / {floor:.1f} = {ratio:.3f}x "
          f"(median/median {ms(init['median']) / statistics.median(walls):.3f}x); target <= 1.1: {'met' if ratio <= 1.1 else 'NOT met'}"]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
echo "results: $OUT"
