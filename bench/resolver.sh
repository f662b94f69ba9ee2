#!/usr/bin/env bash
# Resolver benchmark (issue: Go binary resolver; issue 28: the full index's cost with inline
# trees). On the largest Go binaries here (and Debian's hugo, when installed), measures
#   - resolve one function:    gotrace list BIN main.main
#   - index every function:    gotrace list --json BIN   (names, lines, entry + RET sites, DWARF,
#                              every inlined call)
#   - peak RSS of the index
# against, as baselines measured in the same run:
#   - Go's own symbol reader `go tool nm` on the same binary;
#   - with GOTRACE_BASELINE=path/to/gotrace, another gotrace build's index (e.g. the one before
#     inline trees were read: `git worktree add /tmp/base a1db141^`, build it there), run
#     alternately with this one so that both see the same load.
# Medians of RUNS (default 5) runs. Prints each figure and the ratios.
#
# Measured (issue 28, 2 shared cores, medians of 5 wall / 7 CPU runs, one run alternating
# a1db141^ (before inline trees), main before the change (8f38c44) and after (c214daa)):
#              wall s: before / 8f38c44 / after   CPU ms (task-clock)      peak RSS MB
#   hugo       0.42 / 0.90 / 0.49                  201 / 515 / 274 (1.36x)  41.5 / 67.6 / 32.5
#   compile    0.15 / 0.62 / 0.35                  102 / 383 / 175 (1.71x)  24.3 / 55.7 / 26.2
#   go         0.11 / 0.38 / 0.18                   74 / 239 / 121 (1.64x)  17.3 / 32.5 / 20.8
# The change: rows serialized from borrowed structs (no serde_json::Value), 40-byte inline-table
# entries sharing their callers and ranges, decoded code released behind the rows, site classes
# judged only at possible probe sites.
#
# Then (issue 28, 2 cores at load 15-20 from other builds, so CPU times: medians of 9 runs,
# this script's run alternating a1db141^ and main at 93353f0):
#              CPU ms: before / after (ratio)     peak RSS MB: before / after
#   hugo       204 / 211 (1.03x)                  41.5 / 32.9
#   compile    109 / 139 (1.28x)                  24.3 / 26.5
#   +DWARF     270 / 274 (1.01x)                  43.9 / 49.6
#   go          80 /  98 (1.23x)                  17.3 / 21.2
#   esbuild     67 /  72 (1.07x)                  15.1 / 18.3
# after: x86 decoded past the prologue looking at branches and RETs only; go1.20+ call sites
# read in one forward pass over each parent's line tables, file names once per file; 256 KiB
# writes. What remains on compile and go (no DWARF, so the inline trees weigh most): reading
# the trees, ~35 ms CPU and 2,200 page faults on compile (`list BIN nomatch`), and writing
# them, the index being 5x larger (23.7 MB of JSON against 4.7 MB); serde_json escapes each
# string byte by byte, keys included (escaping the recurring names once, as RawValues, saved
# less than the lookups cost).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${GOTRACE_CACHE:-$HOME/.cache/gotrace}"
GO="$CACHE/go/1.27.3/go/bin/go"
RUNS="${RUNS:-5}"
BASELINE="${GOTRACE_BASELINE:-}"
cargo build --release -q
GOTRACE=target/release/gotrace
TIMING=$(mktemp)
trap 'rm -f "$TIMING"' EXIT

# wall time (s), CPU time (user + system, ms) and peak RSS (KB) of one run of a command
# (`go tool nm` fails on a stripped binary such as hugo: its time still counts). The CPU time
# is bash's (getrusage of the children: exact, where GNU time rounds to 10 ms), and includes
# /usr/bin/time's own, well under 1 ms. On a loaded machine the wall time measures the
# scheduler more than the program: compare the CPU times there.
once() {
  local cpu
  cpu=$( { TIMEFORMAT='%3U %3S'; time /usr/bin/time -o "$TIMING" -f "%e %M" "$@" >/dev/null 2>&1 || true; } 2>&1 )
  read -r wall rss < <(tail -1 "$TIMING")
  echo "$wall $(awk "BEGIN{printf \"%d\", (${cpu% *} + ${cpu#* }) * 1000}") $rss"
}

# the median of the numbers on stdin
median() {
  sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# median wall time, CPU time and peak RSS of each command line given (one per argument, words
# split), the commands run alternately: "t1 c1 m1 t2 c2 m2 ..."
measure() {
  local -a times cpus rss
  local i c t u m
  for ((i = 0; i < RUNS; i++)); do
    c=0
    for cmd in "$@"; do
      # shellcheck disable=SC2086
      read -r t u m < <(once $cmd)
      times[c]+="$t "; cpus[c]+="$u "; rss[c]+="$m "
      c=$((c + 1))
    done
  done
  for ((c = 0; c < $#; c++)); do
    printf '%s %s %s ' "$(tr ' ' '\n' <<<"${times[c]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${cpus[c]}" | grep . | median)" \
      "$(tr ' ' '\n' <<<"${rss[c]}" | grep . | median)"
  done
  echo
}

# Go's own toolchain binaries carry no DWARF: build `compile` with it, so the full index also
# reads every function's signature.
DWARF_COMPILE=target/bench/compile-with-dwarf
if [ ! -x "$DWARF_COMPILE" ]; then
  mkdir -p target/bench
  GOFLAGS= GOTOOLCHAIN=local "$GO" build -o "$DWARF_COMPILE" cmd/compile
fi

bins=("$DWARF_COMPILE" "$CACHE/go/1.27.3/go/pkg/tool/linux_amd64/compile"
      "$CACHE/go/1.27.3/go/bin/go"
      "$CACHE/npm/esbuild-linux-64-0.3.9/package/bin/esbuild")
for bin in "${bins[@]}"; do
  [ -x "$bin" ] || { echo "missing $bin (run scripts/setup.sh)"; exit 1; }
done
# Debian's hugo (apt-get install hugo): 47k functions, 70k inlined calls, stripped.
if [ -x /usr/bin/hugo ]; then bins+=(/usr/bin/hugo); else echo "no /usr/bin/hugo (apt-get install hugo)"; fi

row='%-28s %8s %8s %7s %7s %8s %7s %7s %8s %7s %9s %8s %8s %6s\n'
# shellcheck disable=SC2059
printf "$row" binary one_fn_s index_s cpu_ms rss_MB nm_s idx/nm base_s base_ms base_MB \
  idx/base cpu/base funcs inl
ratio() { awk "BEGIN{printf \"%.2f\", $1/$2}"; }
for bin in "${bins[@]}"; do
  read -r one _ < <(measure "$GOTRACE list $bin main.main")
  if [ -n "$BASELINE" ]; then
    read -r all cpu rss nm _ _ base base_cpu base_rss < <(measure "$GOTRACE list --json $bin" \
      "$GO tool nm $bin" "$BASELINE list --json $bin")
    vs_base=$(ratio "$all" "$base") cpu_vs_base=$(ratio "$cpu" "$base_cpu")
    base_mb=$(awk "BEGIN{printf \"%.1f\", $base_rss/1024}")
  else
    read -r all cpu rss nm _ < <(measure "$GOTRACE list --json $bin" "$GO tool nm $bin")
    base=- base_cpu=- base_mb=- vs_base=- cpu_vs_base=-
  fi
  funcs=$("$GOTRACE" list --json "$bin" | wc -l)
  inlined=$("$GOTRACE" list "$bin" 2>/dev/null | sed -n 2p | awk '{print $2}')
  name="$(basename "$(dirname "$bin")")/$(basename "$bin")"
  "$GOTRACE" list "$bin" main.main | grep -q ', DWARF,' && name+=' +DWARF'
  # shellcheck disable=SC2059
  printf "$row" "$name" "$one" "$all" "$cpu" "$(awk "BEGIN{printf \"%.1f\", $rss/1024}")" "$nm" \
    "$(ratio "$all" "$nm")" "$base" "$base_cpu" "$base_mb" "$vs_base" "$cpu_vs_base" "$funcs" \
    "$inlined"
done
echo "goals: one function <= 0.05 s, full index <= 1 s, RSS <= 100 MB (hugo <= 50 MB);"
echo "       with inline trees, index <= 1.3x the index before them (GOTRACE_BASELINE=a1db141^ build;"
echo "       cpu/base where other work shares the machine, idx/base (wall) on an idle one)"
