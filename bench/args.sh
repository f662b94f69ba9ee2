#!/usr/bin/env bash
# Benchmark of `gotrace args` (issue 4, "Performance"), as root: events per second delivered
# to a file without loss, and gotrace's own CPU per event, against the machine's uprobe
# ceiling measured in the same run (bpftrace counting hits of the same function: the minimal
# probe). argstarget's -hot mode calls main.hot(i int, s string) in a tight loop and prints
# its own call rate; gotrace attaches with -p (so its CPU time excludes the target's).
# Everything is measured three times: on the idle machine, then with 1 and 2 CPU-bound
# processes competing for the cores (issue 13: lossless events/s next to the floor).
#
#   bench/args.sh [CALLS]        (default 200000; results on stdout)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLS="${1:-200000}"
BIN="$ROOT/target/go-targets/go1.24.11/amd64-plain/argstarget"
GOTRACE="$ROOT/target/release/gotrace"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

"$ROOT/scripts/build-targets.sh" >/dev/null
(cd "$ROOT" && cargo build --release --quiet)

# rate_of FILE: the target's own calls/s.
rate_of() { awk '/^HOT_RATE/ {print $2}' "$1"; }

# traced MODE_ARGS...: runs the target under gotrace -p with the options, JSON to a file;
# prints "rate events lost gotrace_cpu_seconds".
traced() {
  "$BIN" -rounds 0 -hot "$CALLS" -delay 1s >"$OUT/target" &
  local target=$!
  /usr/bin/time -f "%U %S" -o "$OUT/cpu" \
    "$GOTRACE" args --json "$@" -p "$target" main.hot >"$OUT/events"
  wait "$target"
  local summary cpu
  summary="$(tail -n 1 "$OUT/events")"
  cpu="$(awk '{print $1 + $2}' "$OUT/cpu")"
  echo "$(rate_of "$OUT/target") $(echo "$summary" | sed -E 's/.*"events":([0-9]+).*/\1/') $(echo "$summary" | sed -E 's/.*"lost":([0-9]+).*/\1/') $cpu"
}

# busy N: starts N CPU-bound loops; their pids in BUSY_PIDS.
BUSY_PIDS=()
busy() {
  for _ in $(seq 1 "$1"); do sh -c 'while :; do :; done' & BUSY_PIDS+=($!); done
}
unbusy() { [ ${#BUSY_PIDS[@]} -eq 0 ] || kill "${BUSY_PIDS[@]}" 2>/dev/null || true; BUSY_PIDS=(); }
trap 'unbusy; rm -rf "$OUT"' EXIT

per_event() { awk -v cpu="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", cpu * 1e6 / n; else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "gotrace args benchmark, $CALLS calls of main.hot (Go 1.24 amd64), JSON to a file"
for competitors in 0 1 2; do
  busy "$competitors"
  # The target alone, and under the minimal probe (bpftrace count at main.hot's entry).
  "$BIN" -rounds 0 -hot "$CALLS" >"$OUT/untraced"
  bpftrace -e "uprobe:$BIN:main.hot { @hits = count(); }" >"$OUT/bpftrace" 2>&1 &
  BT=$!
  sleep 3 # bpftrace attaches
  "$BIN" -rounds 0 -hot "$CALLS" >"$OUT/floor"
  kill -INT "$BT"
  wait "$BT" || true

  read -r entry_rate entry_events entry_lost entry_cpu < <(traced --no-ret)
  read -r full_rate full_events full_lost full_cpu < <(traced)
  unbusy
  floor_rate="$(rate_of "$OUT/floor")"
  echo "with $competitors busy processes:"
  echo "  untraced                      $(rate_of "$OUT/untraced") calls/s"
  echo "  floor (bpftrace count, entry) $floor_rate calls/s   $(grep -o '@hits: [0-9]*' "$OUT/bpftrace")"
  echo "  args --no-ret (entry only)    $entry_rate calls/s ($(ratio "$entry_rate" "$floor_rate")x floor)   events $entry_events lost $entry_lost   gotrace CPU $(per_event "$entry_cpu" "$entry_events") us/event"
  echo "  args (entry + every RET)      $full_rate calls/s ($(ratio "$full_rate" "$floor_rate")x floor)   events $full_events lost $full_lost   gotrace CPU $(per_event "$full_cpu" "$full_events") us/event"
done
