#!/usr/bin/env bash
# What the overload guard's hit counter costs a traced call (issue 27), as root. The target is
# the matrix `workloads` program (Go 1.27 amd64) recursing in main.deep on 2 goroutines at
# once (`stackgrow -g 2`: both CPUs of this VM hit the same function's counter slots), traced
# by `funclat main.deep` in three modes, alternating in the same run:
#   floor     --no-guard: the probes without any counter (guard_stride 0)
#   per-cpu   --max-overhead 100000 (a guard that never drops): each CPU adds in its own row
#   shared    the same with GOTRACE_GUARD_SHARED_ROW=1: every CPU adds in one row (one shared
#             atomic per slot, as the counter was before it was per-CPU)
# A mode's per-call overhead is
#   (cpu(traced, C calls) - cpu(traced, 1 call)) / calls - the same difference untraced,
# cpu: the CPU time (user + system) of gotrace and the target it launched, so that attach time
# and process start cancel out, and the other work on a shared machine does not count (a trap
# and a contended cache line are both CPU time of the target). Prints each round, the medians and the ratios
# per-cpu/floor and shared/floor.
#
#   bench/guard_counter.sh [CALLS] [ROUNDS]    (default 600 handle calls a goroutine, 5 rounds)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLS="${1:-600}"
ROUNDS="${2:-5}"
GOTRACE="${GOTRACE:-$ROOT/target/release/gotrace}"
BIN="$ROOT/target/go-targets/go1.27.3/amd64-plain/workloads"
[ -x "$BIN" ] || { echo "bench/guard_counter.sh needs $BIN (scripts/build-targets.sh)" >&2; exit 1; }

# cpu_ns CMD...: the CPU time (user + system) in ns of the command and the children it waited
# for (its output discarded).
cpu_ns() {
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(int((r.ru_utime + r.ru_stime) * 1e9))' "$@"
}

work() { echo "$BIN" stackgrow -g 2 -calls "$1" -maxdepth 400 -warm 0; }

# per_call_ns MODE: one round's per-call overhead of MODE in ns.
per_call_ns() {
  local env=() flags=() big small base_big base_small
  case "$1" in
    floor) flags=(--no-guard) ;;
    per-cpu) flags=(--max-overhead 100000) ;;
    shared) env=(GOTRACE_GUARD_SHARED_ROW=1) flags=(--max-overhead 100000) ;;
  esac
  big=$(cpu_ns env "${env[@]}" "$GOTRACE" funclat "${flags[@]}" main.deep -- $(work "$CALLS"))
  small=$(cpu_ns env "${env[@]}" "$GOTRACE" funclat "${flags[@]}" main.deep -- $(work 1))
  base_big=$(cpu_ns $(work "$CALLS"))
  base_small=$(cpu_ns $(work 1))
  echo $(((big - small - base_big + base_small) / DEEP_CALLS))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

DEEP_CALLS=$(( $($(work "$CALLS") | awk '/^calls main.deep/ { print $3 }') - $($(work 1) | awk '/^calls main.deep/ { print $3 }') ))
printf "funclat main.deep, 2 goroutines, %s calls a run: per-call overhead (ns), %s alternating rounds\n" \
  "$DEEP_CALLS" "$ROUNDS"
printf "%-6s %10s %10s %10s\n" round floor per-cpu shared
declare -a floor percpu shared
for r in $(seq "$ROUNDS"); do
  f=$(per_call_ns floor); p=$(per_call_ns per-cpu); s=$(per_call_ns shared)
  floor+=("$f"); percpu+=("$p"); shared+=("$s")
  printf "%-6s %10s %10s %10s\n" "$r" "$f" "$p" "$s"
done
F=$(printf "%s\n" "${floor[@]}" | median)
P=$(printf "%s\n" "${percpu[@]}" | median)
S=$(printf "%s\n" "${shared[@]}" | median)
printf "median ns/call: floor %s, per-cpu %s, shared %s; per-cpu/floor %s, shared/floor %s\n" \
  "$F" "$P" "$S" "$(ratio "$P" "$F")" "$(ratio "$S" "$F")"
