#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 30), one after another.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#        FUZZ_RUNS=N scripts/fuzz.sh SECONDS   also stops each target after N executions
#
# Uses the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags); installs
# cargo-fuzz when missing. Targets are built once with AddressSanitizer and debug assertions
# (so integer overflow panics too). Each run starts from the checked-in seeds (fuzz/corpus/<target>,
# read only) plus what earlier runs found (fuzz/corpus-work/<target>, not checked in).
# Exit 1 when any target crashed, timed out or ran out of memory; the input is kept in
# fuzz/artifacts/<target>/ (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -a <target> <file>).
# See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

cd fuzz
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
echo "== cargo fuzz build (${#targets[@]} targets)"
cargo fuzz build -a
echo "== build took $(( $(date +%s) - start ))s"

failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "corpus-work/$t" "corpus/$t"
  log=$(mktemp)
  echo "== fuzz $t for ${secs}s${FUZZ_RUNS:+ or $FUZZ_RUNS executions}"
  t0=$(date +%s)
  rc=0
  # -timeout: one input may take at most 10 s; -rss_limit_mb also caps single allocations.
  cargo fuzz run -a "$t" "corpus-work/$t" "corpus/$t" -- \
    -max_total_time="$secs" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  line="$t: ${execs:-?} executions in $(( $(date +%s) - t0 ))s (${rate:-?}/s), cov ${cov:-?}, exit $rc"
  summary+=("$line")
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    echo "!! $line"
    grep -E 'ERROR: libFuzzer|panicked at|SUMMARY|Test unit written|artifact_prefix' "$log" | head -20 || true
    tail -40 "$log"
  else
    echo "   $line"
  fi
  rm -f "$log"
done

echo "== fuzz summary (${secs}s per target, total $(( $(date +%s) - start ))s)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
