#!/usr/bin/env bash
# `kpki nodes` at scale against its durable-write floor, for docs/benchmarks.md (issue 17):
#   * N (default 100,000) ECDSA-P256 nodes, kpki vs crates/kpki/examples/nodes_floor.rs (the
#     same directories and files, temporary name + rename, one syncfs: no keys, no checks) and
#     vs the same floor with each node's key and signature made (`--crypto`),
#     alternately, RUNS runs each, every run on a freshly made ext4 (a loop-mounted sparse image,
#     `mkfs.ext4 -N 600000`: a file system that just had 100k folders deleted is slow to fill
#     again, and differently so from run to run); wall time and peak RSS (/usr/bin/time -v);
#   * the same with --serving (kubelet.crt and kubelet.key too) against the floor of those files;
#   * resume: the same command again over the complete set (every node up to date);
#   * re-issue: every node's credentials again after a CA change (a second CA tree, as after a
#     rotation), against the floor's overwrite of the same files;
#   * the issue-10 figure: 5,000 nodes with hyperfine on the root file system and on tmpfs, as
#     scripts/bench.sh measures it;
#   * RSA-2048 bulk throughput with --jobs 1 vs --jobs 2 (100 nodes, 10 runs each, hyperfine: an
#     RSA key takes from a tenth to ten times the mean, so fewer keys make the ratio noise).
# Needs root (mkfs, mount), hyperfine, python3, /usr/bin/time. Not part of CI.
#
# Usage: scripts/bench-nodes.sh [OUT.md]   (default target/bench/nodes.md)
# Knobs: NODES (100000), RUNS (3), SERVING_RUNS (RUNS), SMALL_NODES (5000, 0 = skip),
#        RSA_NODES (100, 0 = skip), RSA_RUNS (10), IMG_SIZE (8G), BENCH_DIR (parent of the work dir; default
#        ${TMPDIR:-/tmp}).
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-100000}
RUNS=${RUNS:-3}
SERVING_RUNS=${SERVING_RUNS:-$RUNS}
SMALL_NODES=${SMALL_NODES:-5000}
RSA_NODES=${RSA_NODES:-100}
RSA_RUNS=${RSA_RUNS:-10}
IMG_SIZE=${IMG_SIZE:-8G}
OUT=${1:-target/bench/nodes.md}

for tool in hyperfine python3 /usr/bin/time mkfs.ext4 mount umount mountpoint; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "missing $tool (Debian: apt-get install -y hyperfine python3 time e2fsprogs)" >&2
    exit 2
  fi
done
if [ "$(id -u)" != 0 ]; then
  echo "needs root: it makes and mounts an ext4 image" >&2
  exit 2
fi

cargo build --release -q -p kpki-cli
cargo build --release -q -p kpki --example nodes_floor
cargo build --release -q -p kpki --example resume_floor
RESUME_FLOOR=$PWD/target/release/examples/resume_floor
K=$PWD/target/release/kpki
FLOOR=$PWD/target/release/examples/nodes_floor

W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/kpki-bench-nodes.XXXXXX")
S=$(mktemp -d /dev/shm/kpki-bench-nodes.XXXXXX 2>/dev/null || mktemp -d "$W/shm.XXXXXX")
M="$W/mnt"
IMG="$W/ext4.img"
J="$W/json"
mkdir -p "$M" "$J" "$(dirname "$OUT")"
cleanup() {
  if mountpoint -q "$M"; then umount "$M" || umount -l "$M"; fi
  rm -rf "$W" "$S"
}
trap cleanup EXIT

# A new, empty ext4 on the loop image, mounted on $M.
fresh_fs() {
  if mountpoint -q "$M"; then umount "$M"; fi
  rm -f "$IMG"
  truncate -s "$IMG_SIZE" "$IMG"
  mkfs.ext4 -q -F -N 600000 "$IMG"
  mount -o loop "$IMG" "$M"
  sync
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cp_flags=(--node-name cp-1 --apiserver-advertise-address 10.0.0.10 --control-plane-endpoint k8s.example.internal:6443)
"$K" init --cert-dir "$W/ca/pki" --kubeconfig-dir "$W/ca" --encryption-algorithm ECDSA-P256 "${cp_flags[@]}" >/dev/null
"$K" init --cert-dir "$W/ca2/pki" --kubeconfig-dir "$W/ca2" --encryption-algorithm ECDSA-P256 "${cp_flags[@]}" >/dev/null
python3 -c "
for i in range($NODES):
    print(f'node-{i:05d},10.{i // 62500}.{(i // 250) % 250}.{i % 250 + 1}')" >"$W/nodes.txt"
nodes() { # CA-dir extra-args...
  local ca=$1
  shift
  echo "$K" nodes --cert-dir "$ca/pki" --control-plane-endpoint k8s.example.internal:6443 \
    --nodes "$W/nodes.txt" --out-dir "$M/n" "$@"
}

# timed NAME command...: one run under /usr/bin/time -v; appends "NAME wall_s rss_kib" to $J/runs.
timed() {
  local name=$1
  shift
  /usr/bin/time -v "$@" >"$J/last.out" 2>"$J/last.err" || { tail -5 "$J/last.err" >&2; exit 1; }
  python3 - "$J/last.err" "$name" >>"$J/runs" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", t)
wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
print(sys.argv[2], f"{wall:.3f}", rss)
PY
  tail -1 "$J/runs"
}
: >"$J/runs"

echo "== $NODES nodes: floor and kpki alternately, $RUNS runs each, a fresh ext4 each"
for r in $(seq "$RUNS"); do
  fresh_fs
  timed floor "$FLOOR" "$M/n" "$NODES"
  fresh_fs
  timed floor-crypto "$FLOOR" "$M/n" "$NODES" --crypto
  fresh_fs
  # shellcheck disable=SC2046
  timed kpki $(nodes "$W/ca")
done

echo "== resume: the complete set again (last kpki run's tree)"
# The resume check's CPU floor: one ECDSA verify and one validated key load per node, on every
# core, no I/O (crates/kpki/examples/resume_floor.rs).
"$RESUME_FLOOR" "$NODES" | tee "$J/resume-floor.txt"
for r in $(seq "$RUNS"); do
  # shellcheck disable=SC2046
  timed resume $(nodes "$W/ca")
done

echo "== re-issue after a CA change vs the floor overwriting the same files"
# shellcheck disable=SC2046
timed reissue $(nodes "$W/ca2")
timed floor-overwrite "$FLOOR" "$M/n" "$NODES" --overwrite

echo "== $NODES nodes --serving: floor and kpki alternately, $SERVING_RUNS runs each"
for r in $(seq "$SERVING_RUNS"); do
  fresh_fs
  timed floor-serving "$FLOOR" "$M/n" "$NODES" --serving
  fresh_fs
  # shellcheck disable=SC2046
  timed kpki-serving $(nodes "$W/ca" --serving)
done
umount "$M"
rm -f "$IMG"

if [ "$SMALL_NODES" -gt 0 ]; then
  echo "== $SMALL_NODES nodes, hyperfine, as scripts/bench.sh (root file system and tmpfs)"
  head -n "$SMALL_NODES" "$W/nodes.txt" >"$W/small.txt"
  small=(nodes --cert-dir "$W/ca/pki" --control-plane-endpoint k8s.example.internal:6443 --nodes "$W/small.txt")
  # The previous run's output is moved aside, not deleted (see scripts/bench.sh).
  mkdir -p "$W/old"
  hyperfine --style basic --runs 5 --export-json "$J/small.json" \
    --prepare "if [ -e $W/s ]; then mv $W/s $W/old/\$(date +%s%N); fi" \
    -n "kpki nodes $SMALL_NODES ECDSA-P256" "$K ${small[*]} --out-dir $W/s" \
    -n "kpki nodes $SMALL_NODES ECDSA-P256 --serving" "$K ${small[*]} --out-dir $W/s --serving"
  hyperfine --style basic --runs 5 --export-json "$J/small-tmpfs.json" --prepare "rm -rf $S/s" \
    -n "kpki nodes $SMALL_NODES ECDSA-P256 (tmpfs)" "$K ${small[*]} --out-dir $S/s" \
    -n "kpki nodes $SMALL_NODES ECDSA-P256 --serving (tmpfs)" "$K ${small[*]} --out-dir $S/s --serving"
  rm -rf "$W/old" "$W/s" "$S/s"
fi

if [ "$RSA_NODES" -gt 0 ]; then
  echo "== $RSA_NODES RSA-2048 nodes, --jobs 1 vs --jobs 2"
  "$K" init --cert-dir "$W/rsa/pki" --kubeconfig-dir "$W/rsa" "${cp_flags[@]}" >/dev/null
  head -n "$RSA_NODES" "$W/nodes.txt" >"$W/rsa.txt"
  rsa=(nodes --cert-dir "$W/rsa/pki" --control-plane-endpoint k8s.example.internal:6443 --nodes "$W/rsa.txt" --out-dir "$W/nr")
  hyperfine --style basic --runs "$RSA_RUNS" --export-json "$J/rsa.json" --prepare "rm -rf $W/nr" \
    -n "kpki nodes $RSA_NODES RSA-2048 --jobs 1" "$K --jobs 1 ${rsa[*]}" \
    -n "kpki nodes $RSA_NODES RSA-2048 --jobs 2" "$K --jobs 2 ${rsa[*]}"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$J" "$OUT" "$load_before" "$load_after" "$NODES" "$SMALL_NODES" "$RSA_NODES" <<'PY'
import json, os, platform, statistics, sys
j, out, lb, la, n, small_n, rsa_n = sys.argv[1:8]
runs = {}
for line in open(os.path.join(j, "runs")):
    name, wall, rss = line.split()
    runs.setdefault(name, []).append((float(wall), int(rss) / 1024))
med = lambda name: statistics.median(w for w, _ in runs[name])
peak = lambda name: max(r for _, r in runs[name])
L = []
p = L.append
p("| machine | value |")
p("|---|---|")
p(f"| cores (`nproc`) | {os.cpu_count()} |")
p(f"| kernel | {platform.release()} |")
p(f"| load average before / after | {lb} / {la} |")
p("")
p(f"| {int(n):,} nodes, each run on a fresh ext4 (loop image, `mkfs.ext4 -N 600000`) | runs | median | min | max | peak RSS |")
p("|---|---|---|---|---|---|")
labels = {
    "floor": "floor: mkdir + temp file + rename per node, one syncfs",
    "kpki": "kpki nodes ECDSA-P256",
    "floor-crypto": "floor + the node's key and signature (`--crypto`, every core, pipelined)",
    "floor-serving": "floor, serving files too (3 files per node)",
    "kpki-serving": "kpki nodes ECDSA-P256 --serving",
    "resume": "kpki nodes, complete set again (resume check)",
    "reissue": "kpki nodes after a CA change (re-issue of every node)",
    "floor-overwrite": "floor --overwrite (the same files replaced)",
}
for k, label in labels.items():
    if k in runs:
        ws = [w for w, _ in runs[k]]
        p(f"| {label} | {len(ws)} | {med(k):.2f} s | {min(ws):.2f} s | {max(ws):.2f} s | {peak(k):.1f} MiB |")
p("")
def met(ok): return "met" if ok else "**not met**"
p("| target | measured | |")
p("|---|---|---|")
r = med("kpki") / med("floor")
rc = med("kpki") / med("floor-crypto")
p(f"| {int(n):,} nodes ≤ 1.2 × the durable-write floor (medians) | {med('kpki'):.2f} s / {med('floor'):.2f} s = {r:.2f}× | {met(r <= 1.2)} |")
p(f"| (the same against the write + crypto floor) | {med('kpki'):.2f} s / {med('floor-crypto'):.2f} s = {rc:.2f}× | |")
if "kpki-serving" in runs:
    rs = med("kpki-serving") / med("floor-serving")
    p(f"| --serving ≤ 1.2 × its floor | {med('kpki-serving'):.2f} s / {med('floor-serving'):.2f} s = {rs:.2f}× | {met(rs <= 1.2)} |")
pk = max(peak("kpki"), peak("kpki-serving") if "kpki-serving" in runs else 0)
p(f"| peak RSS ≤ 64 MiB | {peak('kpki'):.1f} MiB (--serving: {peak('kpki-serving') if 'kpki-serving' in runs else float('nan'):.1f} MiB) | {met(pk <= 64)} |")
p(f"| resume check of the complete set ≤ 3 s | {med('resume'):.2f} s median | {met(med('resume') <= 3)} |")
rf = dict(x.split("=", 1) for x in open(os.path.join(j, "resume-floor.txt")).read().split())
p(f"| (feasibility) resume check's CPU floor: an ECDSA verify ({float(rf['verify_us']):.1f} µs) and a validated key load "
  f"({float(rf['key_load_us']):.1f} µs) per node on {rf['cores']} cores, no I/O | {float(rf['floor_s']):.2f} s; kpki "
  f"{med('resume') / float(rf['floor_s']):.2f}× it; target 3 s | "
  f"{'below the target' if float(rf['floor_s']) <= 3 else '**the target is below this floor**'} |")
fc = med("floor-crypto") / med("floor")
p(f"| (feasibility) the keys and signatures alone, written by the floor (`--crypto`) | {fc:.2f}× the write floor; target for kpki 1.2× | "
  f"{'below the target' if fc <= 1.2 else '**the target is below this floor**'} |")
rr = med("reissue") / med("floor-overwrite")
p(f"| re-issue, bounded memory (vs overwrite floor) | {med('reissue'):.2f} s / {med('floor-overwrite'):.2f} s = {rr:.2f}×, peak RSS {peak('reissue'):.1f} MiB | {met(peak('reissue') <= 64)} |")
def hf(name):
    path = os.path.join(j, name + ".json")
    if not os.path.exists(path):
        return {}
    return {x["command"]: x for x in json.load(open(path))["results"]}
rsa = hf("rsa")
if rsa:
    a, b = rsa[f"kpki nodes {rsa_n} RSA-2048 --jobs 1"], rsa[f"kpki nodes {rsa_n} RSA-2048 --jobs 2"]
    s = a["mean"] / b["mean"]
    p(f"| RSA-2048 bulk: 2-thread throughput ≥ 1.8 × 1-thread | {s:.2f}× ({a['mean']*1000:.0f} ms vs {b['mean']*1000:.0f} ms for {rsa_n} nodes, means of {len(a['times'])}) | {met(s >= 1.8)} |")
p("")
rows = list(hf("small").items()) + list(hf("small-tmpfs").items()) + list(rsa.items())
if rows:
    p("| command (hyperfine) | runs | median | mean ± sd | min | max | user | sys |")
    p("|---|---|---|---|---|---|---|---|")
    ms = lambda s: s * 1000
    for cmd, x in rows:
        p(f"| {cmd} | {len(x['times'])} | {ms(x['median']):.1f} ms | {ms(x['mean']):.1f} ± {ms(x['stddev'] or 0):.1f} ms | "
          f"{ms(x['min']):.1f} ms | {ms(x['max']):.1f} ms | {ms(x['user']):.0f} ms | {ms(x['system']):.0f} ms |")
text = "\n".join(L) + "\n"
open(out, "w").write(text)
print(text)
PY
echo "results: $OUT"
