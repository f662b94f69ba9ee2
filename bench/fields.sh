#!/usr/bin/env bash
# Benchmark of field paths (issue 25), as root: the per-call cost of `gotrace args --no-ret`
# reading three fields (r.Method, r.URL.Path, r.Host, each behind one or two pointers) against
# the same command without fields and against the machine's uprobe floor (bpftrace counting
# hits of the same function), all measured in this run. Both args runs also show r as its
# struct, r.URL as its own (deeper default values: two field reads and their strings), so the
# fields' ratio is the cost of the three paths on top of that. The target,
# examples/go-targets/httpserver -hot N, calls main.hot(r *http.Request, i int) N times in a
# tight loop and prints its own time per call; gotrace launches it (every call is traced).
# Each configuration runs RUNS times, interleaved; the median is reported.
#
#   bench/fields.sh [CALLS] [RUNS]        (default 20000 and 3; results on stdout)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLS="${1:-20000}"
RUNS="${2:-3}"
BIN="$ROOT/target/go-targets/go1.24.11/amd64-plain/httpserver"
GOTRACE="$ROOT/target/release/gotrace"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

"$ROOT/scripts/build-targets.sh" >/dev/null
(cd "$ROOT" && cargo build --release --quiet)

# ns_of FILE: the target's own time per call.
ns_of() { awk '/^HOT_NS_PER_CALL/ {print $2}' "$1"; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# One run of each configuration; appends ns/call to $OUT/<name>.
run_all() {
  "$BIN" -hot "$CALLS" >"$OUT/t" && ns_of "$OUT/t" >>"$OUT/untraced"

  bpftrace -e "uprobe:$BIN:main.hot { @hits = count(); }" >"$OUT/bpftrace" 2>&1 &
  local bt=$!
  sleep 3 # bpftrace attaches
  "$BIN" -hot "$CALLS" >"$OUT/t" && ns_of "$OUT/t" >>"$OUT/floor"
  kill -INT "$bt"
  wait "$bt" || true

  "$GOTRACE" args --json --no-ret -o "$OUT/plain.json" main.hot -- "$BIN" -hot "$CALLS" >"$OUT/t"
  ns_of "$OUT/t" >>"$OUT/plain"
  grep -c '"type":"call"' "$OUT/plain.json" >>"$OUT/plain.events"

  "$GOTRACE" args --json --no-ret --field r.Method --field r.URL.Path --field r.Host \
    -o "$OUT/fields.json" main.hot -- "$BIN" -hot "$CALLS" >"$OUT/t"
  ns_of "$OUT/t" >>"$OUT/fields"
  grep -c '"type":"call"' "$OUT/fields.json" >>"$OUT/fields.events"
  tail -n 1 "$OUT/fields.json" >"$OUT/fields.summary"
  head -n 2 "$OUT/fields.json" | tail -n 1 >"$OUT/fields.sample"
}

for _ in $(seq 1 "$RUNS"); do run_all; done

untraced="$(median <"$OUT/untraced")"
over() { awk -v a="$1" -v b="$untraced" 'BEGIN { printf "%.0f", a - b }'; }
ratio() { awk -v a="$1" -v b="$2" -v u="$untraced" 'BEGIN { if (b - u > 0) printf "%.2f", (a - u) / (b - u); else print "n/a" }'; }
floor="$(median <"$OUT/floor")"
plain="$(median <"$OUT/plain")"
fields="$(median <"$OUT/fields")"
echo "gotrace args --field benchmark: $CALLS calls of main.hot(r *http.Request, i int), Go 1.24 amd64, median of $RUNS runs"
echo "  untraced                                  $untraced ns/call"
echo "  floor (bpftrace count at the entry)       $floor ns/call   overhead $(over "$floor") ns"
echo "  args --no-ret                             $plain ns/call   overhead $(over "$plain") ns = $(ratio "$plain" "$floor")x floor   events $(median <"$OUT/plain.events")"
echo "  args --no-ret + 3 fields                  $fields ns/call   overhead $(over "$fields") ns = $(ratio "$fields" "$floor")x floor = $(ratio "$fields" "$plain")x args without fields   events $(median <"$OUT/fields.events")"
echo "  last summary: $(cat "$OUT/fields.summary")"
echo "  a call: $(cut -c1-400 "$OUT/fields.sample")"
