#!/usr/bin/env bash
# Resolver benchmark (issue: Go binary resolver). On the largest Go binaries here, measures
#   - resolve one function:    gotrace list BIN main.main
#   - index every function:    gotrace list --json BIN   (names, lines, entry + RET sites, DWARF)
#   - peak RSS of both
# and, as the baseline measured in the same run, Go's own symbol reader `go tool nm` on the
# same binary. Prints each figure and the ratio gotrace / baseline. Best of 5 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${GOTRACE_CACHE:-$HOME/.cache/gotrace}"
GO="$CACHE/go/1.27.3/go/bin/go"
cargo build --release -q
GOTRACE=target/release/gotrace
TIMING=$(mktemp)
trap 'rm -f "$TIMING"' EXIT

# best-of-5 wall time (s) and peak RSS (KB) of a command
measure() {
  local best_t=999 best_m=0 out t m
  for _ in 1 2 3 4 5; do
    /usr/bin/time -o "$TIMING" -f "%e %M" "$@" >/dev/null 2>&1
    out=$(tail -1 "$TIMING")
    t=${out% *}; m=${out#* }
    if awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; fi
    [ "$m" -gt "$best_m" ] && best_m=$m
  done
  echo "$best_t $best_m"
}

# Go's own toolchain binaries carry no DWARF: build `compile` with it, so the full index also
# reads every function's signature.
DWARF_COMPILE=target/bench/compile-with-dwarf
if [ ! -x "$DWARF_COMPILE" ]; then
  mkdir -p target/bench
  GOFLAGS= GOTOOLCHAIN=local "$GO" build -o "$DWARF_COMPILE" cmd/compile
fi

printf '%-28s %9s %9s %9s %11s %10s %8s\n' binary one_fn_s index_s nm_s index/nm rss_MB funcs
for bin in "$DWARF_COMPILE" "$CACHE/go/1.27.3/go/pkg/tool/linux_amd64/compile" \
           "$CACHE/go/1.27.3/go/bin/go" \
           "$CACHE/npm/esbuild-linux-64-0.3.9/package/bin/esbuild"; do
  [ -x "$bin" ] || { echo "missing $bin (run scripts/setup.sh)"; exit 1; }
  read -r one _ < <(measure "$GOTRACE" list "$bin" main.main)
  read -r all rss < <(measure "$GOTRACE" list --json "$bin")
  read -r nm _ < <(measure "$GO" tool nm "$bin")
  funcs=$("$GOTRACE" list --json "$bin" | wc -l)
  printf '%-28s %9s %9s %9s %11s %10s %8s\n' "$(basename "$(dirname "$bin")")/$(basename "$bin")$("$GOTRACE" list "$bin" main.main | grep -q ', DWARF,' && echo ' +DWARF')" \
    "$one" "$all" "$nm" "$(awk "BEGIN{printf \"%.2f\", $all/$nm}")" "$(awk "BEGIN{printf \"%.1f\", $rss/1024}")" "$funcs"
done
echo "goals: one function <= 0.05 s, full index <= 1 s, RSS <= 100 MB"
