#!/usr/bin/env bash
# The overload guard on a real server (issue 27): Debian's caddy (stripped Go) serving a small
# static file on 127.0.0.1 under `ab -k -c 20`, untraced, traced by
# `gotrace funclat 'net/http.*' -p PID` with the default guard, and with --no-guard, in
# alternating rounds of the same run (the VM is shared: only ratios within one run mean
# anything). Each traced round starts ab as soon as gotrace says the probes are attached, so
# the guard's first checks are inside the measured window. Prints each round, the median
# requests/s of each mode, and the ratios to untraced. As root.
#
#   bench/guard.sh [ROUNDS] [SECONDS]      (default 3 rounds of 5 s each)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
SECS="${2:-5}"
GOTRACE="${GOTRACE:-$ROOT/target/release/gotrace}"
PORT="${PORT:-18181}"
command -v caddy >/dev/null && command -v ab >/dev/null ||
  { echo "bench/guard.sh needs caddy and ab (apt-get install caddy apache2-utils)" >&2; exit 1; }

WORK="$(mktemp -d)"
trap 'kill "$CADDY" 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir "$WORK/site" && echo "hello from caddy" >"$WORK/site/index.html"
(cd "$WORK" && exec caddy file-server --listen "127.0.0.1:$PORT" --root "$WORK/site") \
  >"$WORK/caddy.log" 2>&1 &
CADDY=$!
URL="http://127.0.0.1:$PORT/index.html"
for _ in $(seq 50); do curl -sf "$URL" >/dev/null 2>&1 && break; sleep 0.1; done

# rps: requests per second of one bounded ab run (-t seconds, at most 10M requests).
rps() { ab -k -c 20 -t "$SECS" -n 10000000 "$URL" 2>/dev/null | awk '/^Requests per second/ { print $4 }'; }

# traced TAG FLAGS...: starts gotrace with FLAGS, waits for the attached line, runs ab, stops
# gotrace; prints the rps, keeps gotrace's output in $WORK/TAG.json.
traced() {
  local tag="$1"; shift
  "$GOTRACE" funclat --json "$@" 'net/http.*' -p "$CADDY" >"$WORK/$tag.json" 2>"$WORK/$tag.err" &
  local g=$!
  for _ in $(seq 600); do grep -q '"attached"' "$WORK/$tag.json" 2>/dev/null && break; sleep 0.05; done
  rps
  kill -INT "$g"; wait "$g" || true
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

rps >/dev/null # warm-up
declare -a base guard noguard
printf "%-6s %12s %12s %12s\n" round untraced guard no-guard
for r in $(seq "$ROUNDS"); do
  b=$(rps)
  g=$(traced guard)
  dropped=$(grep -c '"guard_dropped"' "$WORK/guard.json" || true)
  n=$(traced noguard --no-guard)
  base+=("$b"); guard+=("$g"); noguard+=("$n")
  printf "%-6s %12s %12s %12s   (guard dropped %s functions)\n" "$r" "$b" "$g" "$n" "$dropped"
done
B=$(printf "%s\n" "${base[@]}" | median)
G=$(printf "%s\n" "${guard[@]}" | median)
N=$(printf "%s\n" "${noguard[@]}" | median)
printf "median req/s: untraced %s, guard %s, no-guard %s\n" "$B" "$G" "$N"
awk -v b="$B" -v g="$G" -v n="$N" 'BEGIN { printf "throughput ratio: guard %.3f, no-guard %.3f\n", g / b, n / b }'
echo "dropped in the last guarded round (after_s, hits/s, function):"
jq -r 'select(.type == "guard_dropped") | "  \(.after_s) \(.hits_per_s) \(.function)"' "$WORK/guard.json"
