#!/usr/bin/env bash
# Whole-process benchmarks for docs/benchmarks.md, all in one run on one machine:
#   * kpki init vs scripts/openssl-tree.sh (the same tree with the openssl CLI), RSA-2048 and
#     ECDSA-P256, and kpki's ratio to the key-generation floor measured in the same run
#     (crates/kpki/examples/keygen_floor.rs: CPU time of the tree's 16 keys / cores);
#   * kpki verify (whole process);
#   * kpki nodes: 5,000 ECDSA-P256 nodes (wall, peak RSS), RSA-2048 throughput 1 vs 2 threads;
#   * peak RSS (/usr/bin/time -v) of init, verify and nodes.
# Not part of CI. Takes a few minutes. Needs hyperfine (Debian package), openssl, kubectl.
#
# Usage: scripts/bench.sh [OUT.md]   (default target/bench/results.md)
# Knobs: RUNS_SLOW (RSA runs, default 10), RUNS_FAST (default 30), FLOOR_ROUNDS (default 15),
#        BULK_NODES (default 5000), RSA_BULK_NODES (default 40),
#        ALT_KPKI (a second kpki binary, e.g. one built with AWS_LC_SYS_NO_JITTER_ENTROPY=1, whose
#        init is measured beside the first).
# Rows marked (tmpfs) write to /dev/shm: the same work without the disk's fsync and inode costs.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS_SLOW=${RUNS_SLOW:-10}
RUNS_FAST=${RUNS_FAST:-30}
FLOOR_ROUNDS=${FLOOR_ROUNDS:-15}
BULK_NODES=${BULK_NODES:-5000}
RSA_BULK_NODES=${RSA_BULK_NODES:-40}
OUT=${1:-target/bench/results.md}

for tool in hyperfine openssl kubectl python3 /usr/bin/time; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "missing $tool (Debian: apt-get install -y hyperfine openssl kubernetes-client python3 time)" >&2
    exit 2
  fi
done

cargo build --release -q -p kpki-cli
# The floor with the generator the CLI uses (its default feature openssl-rsa).
cargo build --release -q -p kpki --features openssl-rsa --example keygen_floor
# What reading a tree cannot go below: loading (and checking) its 16 private keys on 2 threads.
cargo build --release -q -p kpki --example keyload_floor
KF=$PWD/target/release/examples/keyload_floor
K=$PWD/target/release/kpki
FLOOR=$PWD/target/release/examples/keygen_floor
REF=$PWD/scripts/openssl-tree.sh
# The durable-write floor of an ECDSA tree (benches/write_floor.c: the same 27 files, the same
# crash guarantees, no crypto).
WF=$PWD/target/release/write_floor
cc -O2 -o "$WF" benches/write_floor.c

W=$(mktemp -d "${TMPDIR:-/tmp}/kpki-bench.XXXXXX")
# A tmpfs twin of the work dir, for rows that take the disk (fsync, inode allocation) out.
S=$(mktemp -d /dev/shm/kpki-bench.XXXXXX 2>/dev/null || mktemp -d "$W/shm.XXXXXX")
trap 'rm -rf "$W" "$S"' EXIT
J="$W/json"
mkdir -p "$J" "$(dirname "$OUT")"

flags=(--node-name cp-1 --apiserver-advertise-address 10.0.0.10 --control-plane-endpoint k8s.example.internal:6443)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== key-generation floor (serial, CPU time)"
"$FLOOR" RSA-2048 "$FLOOR_ROUNDS" | tee "$J/floor-rsa.txt"
"$FLOOR" ECDSA-P256 200 | tee "$J/floor-ecdsa.txt"

hf() { # name runs command...
  local name=$1 runs=$2
  shift 2
  hyperfine --style basic --runs "$runs" --export-json "$J/$name.json" "$@"
}

echo "== kpki init vs openssl (RSA-2048)"
hf init-rsa "$RUNS_SLOW" --warmup 1 --prepare "rm -rf $W/k" -n "kpki init RSA-2048" \
  "$K init --cert-dir $W/k/pki ${flags[*]}"
hf openssl-rsa "$(( (RUNS_SLOW + 1) / 2 ))" --prepare "rm -rf $W/o" \
  -n "openssl+kubectl RSA-2048" "$REF rsa $W/o kubectl" \
  -n "openssl+printf RSA-2048" "$REF rsa $W/o printf"

echo "== kpki init vs openssl (ECDSA-P256)"
# `sync` after the removal: syncfs flushes every dirty page of the file system, so without it
# each run would also write back the previous run's deletion (and whatever else is dirty).
hf init-ecdsa "$RUNS_FAST" --warmup 3 --prepare "rm -rf $W/k; sync" -n "kpki init ECDSA-P256" \
  "$K init --cert-dir $W/k/pki ${flags[*]} --encryption-algorithm ECDSA-P256" \
  -n "write floor (27 files, durable)" "$WF $W/k"
hf init-ecdsa-tmpfs "$RUNS_FAST" --warmup 3 --prepare "rm -rf $S/k" -n "kpki init ECDSA-P256 (tmpfs)" \
  "$K init --cert-dir $S/k/pki ${flags[*]} --encryption-algorithm ECDSA-P256"
if [ -n "${ALT_KPKI:-}" ]; then
  hf init-alt "$RUNS_FAST" --warmup 3 --prepare "rm -rf $W/k $S/k" \
    -n "ALT_KPKI init ECDSA-P256" "$ALT_KPKI init --cert-dir $W/k/pki ${flags[*]} --encryption-algorithm ECDSA-P256" \
    -n "ALT_KPKI init ECDSA-P256 (tmpfs)" "$ALT_KPKI init --cert-dir $S/k/pki ${flags[*]} --encryption-algorithm ECDSA-P256"
  hf init-alt-rsa "$RUNS_SLOW" --warmup 1 --prepare "rm -rf $W/k" \
    -n "ALT_KPKI init RSA-2048" "$ALT_KPKI init --cert-dir $W/k/pki ${flags[*]}"
fi
hf openssl-ecdsa "$RUNS_SLOW" --prepare "rm -rf $W/o" \
  -n "openssl+kubectl ECDSA-P256" "$REF ecdsa $W/o kubectl" \
  -n "openssl+printf ECDSA-P256" "$REF ecdsa $W/o printf"

echo "== kpki verify"
sync
rm -rf "$W/ve" "$W/vr"
"$K" init --cert-dir "$W/ve/pki" "${flags[@]}" --encryption-algorithm ECDSA-P256 >/dev/null
"$K" init --cert-dir "$W/vr/pki" "${flags[@]}" >/dev/null
# -i: the two "own process start" rows run a floor program with no arguments, so it prints its
# usage and exits non-zero at once: the cost of starting that very binary.
hf verify "$RUNS_FAST" --warmup 3 -N -i \
  -n "kpki --version (process floor)" "$K --version" \
  -n "write floor's own process start (no arguments)" "$WF" \
  -n "key-loading floor's own process start (no arguments)" "$KF" \
  -n "key-loading floor (16 RSA keys, 2 threads)" "$KF $W/vr/pki $W/vr" \
  -n "kpki verify ECDSA-P256 tree" "$K verify --cert-dir $W/ve/pki ${flags[*]}" \
  -n "kpki verify RSA-2048 tree" "$K verify --cert-dir $W/vr/pki ${flags[*]}" \
  -n "kpki certs check-expiration RSA-2048 tree" "$K certs check-expiration --cert-dir $W/vr/pki"

echo "== kpki nodes: $BULK_NODES ECDSA-P256 nodes"
python3 -c "
for i in range($BULK_NODES):
    print(f'node-{i:05d},10.{i // 62500}.{(i // 250) % 250}.{i % 250 + 1}')" >"$W/nodes.txt"
head -n "$RSA_BULK_NODES" "$W/nodes.txt" >"$W/nodes-rsa.txt"
nodes=(nodes --cert-dir "$W/ve/pki" --control-plane-endpoint k8s.example.internal:6443)
# The previous run's output is moved aside, not deleted: right after a mass delete ext4 skips
# the freed inodes ("recently deleted") when allocating, which would charge the delete to the
# next run. Everything is deleted at the end.
mkdir -p "$W/old" "$S/old"
hf bulk-ecdsa 5 --prepare "if [ -e $W/n ]; then mv $W/n $W/old/\$(date +%s%N); fi" \
  -n "kpki nodes $BULK_NODES ECDSA-P256" "$K ${nodes[*]} --nodes $W/nodes.txt --out-dir $W/n" \
  -n "kpki nodes $BULK_NODES ECDSA-P256 --serving" "$K ${nodes[*]} --nodes $W/nodes.txt --out-dir $W/n --serving"
hf bulk-ecdsa-tmpfs 5 --prepare "rm -rf $S/n" \
  -n "kpki nodes $BULK_NODES ECDSA-P256 (tmpfs)" "$K ${nodes[*]} --nodes $W/nodes.txt --out-dir $S/n" \
  -n "kpki nodes $BULK_NODES ECDSA-P256 --serving (tmpfs)" "$K ${nodes[*]} --nodes $W/nodes.txt --out-dir $S/n --serving"

echo "== kpki nodes: $RSA_BULK_NODES RSA-2048 nodes, 1 vs 2 threads"
rsa_nodes=(nodes --cert-dir "$W/vr/pki" --control-plane-endpoint k8s.example.internal:6443 --nodes "$W/nodes-rsa.txt" --out-dir "$W/nr")
hf bulk-rsa 5 --prepare "rm -rf $W/nr" \
  -n "kpki nodes $RSA_BULK_NODES RSA-2048 --jobs 1" "$K --jobs 1 ${rsa_nodes[*]}" \
  -n "kpki nodes $RSA_BULK_NODES RSA-2048 --jobs 2" "$K --jobs 2 ${rsa_nodes[*]}"

echo "== peak RSS (/usr/bin/time -v)"
rss() { # name command...
  local name=$1
  shift
  /usr/bin/time -v "$@" >/dev/null 2>"$J/rss-$name.txt" || true
  grep -E "Maximum resident|Elapsed" "$J/rss-$name.txt" | sed "s/^/$name: /"
}
rm -rf "$W/k" "$W/n"
rss init-rsa "$K" init --cert-dir "$W/k/pki" "${flags[@]}"
rm -rf "$W/k"
rss init-ecdsa "$K" init --cert-dir "$W/k/pki" "${flags[@]}" --encryption-algorithm ECDSA-P256
rss verify "$K" verify --cert-dir "$W/vr/pki" "${flags[@]}"
rss bulk-ecdsa "$K" "${nodes[@]}" --nodes "$W/nodes.txt" --out-dir "$W/n" --serving
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$J" "$OUT" "$load_before" "$load_after" "$BULK_NODES" "$RSA_BULK_NODES" <<'PY'
import json, os, platform, re, subprocess, sys
j, out, load_before, load_after, bulk_n, rsa_n = sys.argv[1:7]

def res(name):
    with open(os.path.join(j, name + ".json")) as f:
        return {r["command"]: r for r in json.load(f)["results"]}

def kv(path):
    with open(os.path.join(j, path)) as f:
        return dict(x.split("=", 1) for x in f.read().split())

def rss(name):
    with open(os.path.join(j, "rss-" + name + ".txt")) as f:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
    return int(m.group(1)) / 1024 if m else float("nan")

ms = lambda s: s * 1000
lines = []
p = lines.append
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
model = next((l.split(":", 1)[1].strip() for l in cpu if l.startswith("Model name")), "?")
p("| machine | value |")
p("|---|---|")
p(f"| CPU | {model}, {os.cpu_count()} cores (`nproc`) |")
p(f"| kernel | {platform.release()} |")
p(f"| load average before / after | {load_before} / {load_after} |")
p("")

fr, fe = kv("floor-rsa.txt"), kv("floor-ecdsa.txt")
p("| key generation (one thread, CPU time) | mean | sd | min | max | 16 keys | floor = 16 keys / cores |")
p("|---|---|---|---|---|---|---|")
for f in (fr, fe):
    p(f"| {f['alg']} ({f['keys']} keys) | {float(f['key_cpu_ms_mean']):.3f} ms | {float(f['key_cpu_ms_sd']):.3f} ms | "
      f"{float(f['key_cpu_ms_min']):.3f} ms | {float(f['key_cpu_ms_max']):.3f} ms | {float(f['tree_keygen_cpu_ms']):.1f} ms | "
      f"{float(f['floor_ms']):.1f} ms |")
p("")

rows = []
for name in ["init-rsa", "init-alt-rsa", "openssl-rsa", "init-ecdsa", "init-ecdsa-tmpfs", "init-alt", "openssl-ecdsa",
             "verify", "bulk-ecdsa", "bulk-ecdsa-tmpfs", "bulk-rsa"]:
    if not os.path.exists(os.path.join(j, name + ".json")):
        continue
    for cmd, r in res(name).items():
        rows.append((cmd, r))
p("| command (whole process) | runs | median | mean ± sd | min | max | user | sys |")
p("|---|---|---|---|---|---|---|---|")
for cmd, r in rows:
    p(f"| {cmd} | {len(r['times'])} | {ms(r['median']):.1f} ms | {ms(r['mean']):.1f} ± {ms(r['stddev'] or 0):.1f} ms | "
      f"{ms(r['min']):.1f} ms | {ms(r['max']):.1f} ms | {ms(r['user']):.0f} ms | {ms(r['system']):.0f} ms |")
p("")

R = dict(rows)
k_rsa, k_ec = R["kpki init RSA-2048"], R["kpki init ECDSA-P256"]
floor_rsa = float(fr["floor_ms"]) / 1000
v_ec, v_rsa = R["kpki verify ECDSA-P256 tree"], R["kpki verify RSA-2048 tree"]
b = R[f"kpki nodes {bulk_n} ECDSA-P256"]
bs = R[f"kpki nodes {bulk_n} ECDSA-P256 --serving"]
r1, r2 = R[f"kpki nodes {rsa_n} RSA-2048 --jobs 1"], R[f"kpki nodes {rsa_n} RSA-2048 --jobs 2"]
def met(ok): return "met" if ok else "**not met**"
p("| target | measured | |")
p("|---|---|---|")
ratio = k_rsa["mean"] / floor_rsa
p(f"| RSA-2048 full tree ≤ 1.15 × keygen floor | mean {ms(k_rsa['mean']):.0f} ms / floor {ms(floor_rsa):.0f} ms = {ratio:.2f}× "
  f"(median {k_rsa['median'] / floor_rsa:.2f}×) | {met(ratio <= 1.15)} |")
if "ALT_KPKI init RSA-2048" in R:
    a = R["ALT_KPKI init RSA-2048"]
    p(f"| (ALT_KPKI) RSA-2048 full tree ≤ 1.15 × keygen floor | mean {ms(a['mean']):.0f} ms / floor {ms(floor_rsa):.0f} ms = "
      f"{a['mean'] / floor_rsa:.2f}× (median {a['median'] / floor_rsa:.2f}×) | {met(a['mean'] / floor_rsa <= 1.15)} |")
p(f"| ECDSA-P256 full tree, whole process ≤ 15 ms median | {ms(k_ec['median']):.1f} ms | {met(k_ec['median'] <= 0.015)} |")
worst_v = max(v_ec["median"], v_rsa["median"])
if "ALT_KPKI init ECDSA-P256" in R:
    a = R["ALT_KPKI init ECDSA-P256"]
    p(f"| (ALT_KPKI) ECDSA-P256 full tree, whole process ≤ 15 ms median | {ms(a['median']):.1f} ms | {met(a['median'] <= 0.015)} |")
p(f"| kpki verify whole process ≤ 10 ms median | ECDSA {ms(v_ec['median']):.1f} ms, RSA {ms(v_rsa['median']):.1f} ms | {met(worst_v <= 0.010)} |")
wf = R["write floor (27 files, durable)"]
p(f"| ECDSA-P256 full tree ≤ 1.3 × the durable-write floor (issue 17) | mean {ms(k_ec['mean']):.1f} ms / floor {ms(wf['mean']):.1f} ms = "
  f"{k_ec['mean'] / wf['mean']:.2f}× (median {k_ec['median'] / wf['median']:.2f}×) | {met(k_ec['mean'] / wf['mean'] <= 1.3)} |")
pf = R["kpki --version (process floor)"]
ce = R["kpki certs check-expiration RSA-2048 tree"]
for what, r in (("verify", v_rsa), ("certs check-expiration", ce)):
    p(f"| kpki {what} RSA tree ≤ 2 × the process floor (issue 17) | mean {ms(r['mean']):.1f} ms / `kpki --version` {ms(pf['mean']):.1f} ms = "
      f"{r['mean'] / pf['mean']:.2f}× (median {r['median'] / pf['median']:.2f}×) | {met(r['mean'] / pf['mean'] <= 2)} |")
kf = R["key-loading floor (16 RSA keys, 2 threads)"]
p(f"| (verify's own floor) kpki verify RSA tree / loading its 16 keys | mean {ms(v_rsa['mean']):.1f} ms / {ms(kf['mean']):.1f} ms = "
  f"{v_rsa['mean'] / kf['mean']:.2f}×; the key-loading floor alone is {kf['mean'] / pf['mean']:.2f}× `kpki --version` | |")
ws = R["write floor's own process start (no arguments)"]
ks = R["key-loading floor's own process start (no arguments)"]
# Lower bounds: kpki starts as `kpki --version` does, then does at least the floor's own work
# (the floor's whole time minus the floor program's own start).
lb = pf["mean"] + wf["mean"] - ws["mean"]
p(f"| (feasibility) ECDSA init can take no less than `kpki --version` + the write floor's own work (floor − its process start) | "
  f"{ms(pf['mean']):.1f} + {ms(wf['mean']):.1f} − {ms(ws['mean']):.1f} = {ms(lb):.1f} ms = {lb / wf['mean']:.2f}× the write floor, "
  f"before any key, signature or YAML; target 1.3× | {'below the target' if lb / wf['mean'] <= 1.3 else '**the target is below this bound**'} |")
lv = pf["mean"] + kf["mean"] - ks["mean"]
p(f"| (feasibility) verify can take no less than `kpki --version` + loading the keys (key-loading floor − its process start) | "
  f"{ms(pf['mean']):.1f} + {ms(kf['mean']):.1f} − {ms(ks['mean']):.1f} = {ms(lv):.1f} ms = {lv / pf['mean']:.2f}× `kpki --version`, "
  f"before any certificate, signature or kubeconfig; target 2× | {'below the target' if lv / pf['mean'] <= 2 else '**the target is below this bound**'} |")
p(f"| {bulk_n} nodes ECDSA-P256 ≤ 2 s wall | {b['median']:.2f} s median (with --serving: {bs['median']:.2f} s) | {met(b['median'] <= 2.0)} |")
peak = rss("bulk-ecdsa")
p(f"| {bulk_n} nodes peak RSS ≤ 64 MiB | {peak:.1f} MiB (with --serving) | {met(peak <= 64)} |")
speed = r1["mean"] / r2["mean"]
p(f"| RSA-2048 bulk: 2-thread throughput ≥ 1.8 × 1-thread | {speed:.2f}× ({ms(r1['mean']):.0f} ms vs {ms(r2['mean']):.0f} ms for {rsa_n} nodes) | {met(speed >= 1.8)} |")
pi = max(rss("init-rsa"), rss("init-ecdsa"))
p(f"| kpki init peak RSS ≤ 16 MiB | RSA {rss('init-rsa'):.1f} MiB, ECDSA {rss('init-ecdsa'):.1f} MiB | {met(pi <= 16)} |")
p("")
p("| comparison | ratio |")
p("|---|---|")
for alg, k in (("RSA-2048", k_rsa), ("ECDSA-P256", k_ec)):
    for how in ("kubectl", "printf"):
        o = R[f"openssl+{how} {alg}"]
        p(f"| openssl+{how} {alg} / kpki init {alg} (mean) | {o['mean'] / k['mean']:.1f}× |")
p(f"| kpki verify peak RSS (RSA tree) | {rss('verify'):.1f} MiB |")
text = "\n".join(lines) + "\n"
with open(out, "w") as f:
    f.write(text)
print(text)
PY
echo "results: $OUT"
