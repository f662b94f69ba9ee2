#!/usr/bin/env bash
# Per-call overhead of `gotrace funclat` at today's entry site and at the flag-checked one
# (issue 9), as root. The function is main.fib of the matrix `workloads` program (recursive, so
# every call runs its stack check); each build is traced with GOTRACE_ENTRY_SITE=legacy (the
# first instruction after the stack check, `entry_probe`) and with the default flag-checked
# JBE/JLS, alternating in the same run. The RET site is the same in both, so the ratio is of
# the whole per-call cost (entry + RET). A run's per-call overhead is
#   (wall(fib -n N traced) - wall(fib -n 1 traced)) / calls - the same difference untraced,
# so attach time and process start cancel out. The median of ROUNDS rounds is printed.
#
#   bench/entry_site.sh [N] [ROUNDS]     (default N 24: 150,049 calls of main.fib; ROUNDS 3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-24}"
ROUNDS="${2:-3}"
GOTRACE="$ROOT/target/release/gotrace"
BUILDS=(go1.19/amd64-plain go1.19/386-plain go1.21.13/amd64-plain go1.21.13/386-plain
  go1.27.3/amd64-plain go1.27.3/386-plain)

(cd "$ROOT" && cargo build --release --quiet)

# wall_ns CMD...: the command's wall time in ns (its output discarded).
wall_ns() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s%N)
  echo $((t1 - t0))
}

# per_call_ns SITE BIN CALLS: one round's per-call overhead in ns at SITE (legacy|flag-checked).
per_call_ns() {
  local site="$1" bin="$2" calls="$3" big small base_big base_small
  big=$(GOTRACE_ENTRY_SITE="$site" wall_ns "$GOTRACE" funclat main.fib -- "$bin" fib -n "$N")
  small=$(GOTRACE_ENTRY_SITE="$site" wall_ns "$GOTRACE" funclat main.fib -- "$bin" fib -n 1)
  base_big=$(wall_ns "$bin" fib -n "$N")
  base_small=$(wall_ns "$bin" fib -n 1)
  echo $(((big - small - base_big + base_small) / calls))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "funclat per-call overhead on main.fib (fib -n %s), median of %s alternating rounds\n" "$N" "$ROUNDS"
printf "%-22s %-14s %12s %14s %7s\n" build "new site" "legacy ns" "flag-check ns" ratio
for build in "${BUILDS[@]}"; do
  bin="$ROOT/target/go-targets/$build/workloads"
  calls=$("$bin" fib -n "$N" | awk '/^calls main.fib/ { print $3 }')
  class=$("$GOTRACE" list "$bin" main.fib | awk 'NR > 2 { print $7 }')
  legacy=()
  new=()
  for _ in $(seq "$ROUNDS"); do
    legacy+=("$(per_call_ns legacy "$bin" "$calls")")
    new+=("$(per_call_ns flag-checked "$bin" "$calls")")
  done
  l=$(printf "%s\n" "${legacy[@]}" | median)
  f=$(printf "%s\n" "${new[@]}" | median)
  printf "%-22s %-14s %12s %14s %7s\n" "$build" "$class" "$l" "$f" \
    "$(awk -v a="$f" -v b="$l" 'BEGIN { printf "%.2f", a / b }')"
done
