#!/usr/bin/env bash
# Benchmark row for the exact-delivery issue: counted / true calls of main.deep for
# `gotrace funclat` and for bpftrace's `uprobe:BIN:"main.deep"` (when bpftrace is installed),
# on the workloads example's `deep` experiment (goroutines whose stacks grow and shrink under
# Go's async preemption), GOMAXPROCS 1 and 2. True calls are the target's own atomic count.
# Both tools count until the target exits. Run as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/build-targets.sh >/dev/null
cargo build --release -q
BIN=$PWD/target/go-targets/go1.27.3/amd64-plain/workloads
ARGS=(deep -g 100 -calls 2 -maxdepth 400 -warm 1000)

printf '%-10s %-9s %10s %10s %8s\n' tool GOMAXPROCS counted true ratio
for procs in 1 2; do
  out=$(GOMAXPROCS=$procs target/release/gotrace funclat --json main.deep -- "$BIN" "${ARGS[@]}")
  truth=$(awk '/^calls main.deep/ {print $3}' <<<"$out")
  counted=$(grep '^{' <<<"$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  printf '%-10s %-9s %10s %10s %8s\n' gotrace "$procs" "$counted" "$truth" "$(awk "BEGIN{printf \"%.4f\", $counted/$truth}")"
  if command -v bpftrace >/dev/null; then
    log=$(mktemp)
    GOMAXPROCS=$procs bpftrace -q -e "uprobe:$BIN:\"main.deep\" { @hits = count(); }" \
      -c "$BIN ${ARGS[*]}" >"$log" 2>&1 || true
    truth=$(awk '/^calls main.deep/ {print $3}' "$log")
    counted=$(awk '/^@hits/ {print $2}' "$log")
    printf '%-10s %-9s %10s %10s %8s\n' bpftrace "$procs" "$counted" "$truth" "$(awk "BEGIN{printf \"%.4f\", $counted/$truth}")"
    rm -f "$log"
  fi
done
echo "bpftrace probes the first instruction (before the stack check): each stack growth re-runs it, so it may count more than the calls."
