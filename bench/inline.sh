#!/usr/bin/env bash
# Start-up with inlined-call discovery (issue 10): opening and indexing Go's `compile`, `go`
# and esbuild as today, next to the same plus every function's inline tree, in one process
# (tests/inline_startup.rs). Prints milliseconds and the ratio; goal <= 2x and <= 300 ms.
# Also times `gotrace list BIN main.main` (which now reads the inline trees) end to end, and
# funclat start-up to `attached` with and without the inlined calls (goal <= 2x, <= 300 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release -q --test inline_startup -- --ignored --nocapture 2>/dev/null |
  grep -v '^running\|^test \|^$\|test result'
COMPILE="${GOTRACE_CACHE:-$HOME/.cache/gotrace}/go/1.27.3/go/pkg/tool/linux_amd64/compile"
best=999
for _ in 1 2 3 4 5; do
  t=$( { /usr/bin/time -f %e target/release/gotrace list "$COMPILE" main.main >/dev/null; } 2>&1 )
  best=$(awk "BEGIN{print ($t < $best) ? $t : $best}")
done
echo "gotrace list compile main.main (with inlined sites): ${best}s"

# funclat start-up to the `attached` line on compile (launching `compile -V`), with and without
# the inlined calls (--no-inlined), alternating in the same run; best and median of 5 each.
python3 - target/release/gotrace "$COMPILE" 'sync.(*Mutex).Lock' <<'PY'
import subprocess, sys, time
gotrace, binary, pattern = sys.argv[1:4]
def to_attached(extra):
    t0 = time.monotonic()
    p = subprocess.Popen([gotrace, "funclat", "--json", *extra, pattern, "--", binary, "-V"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    t = next((time.monotonic() - t0 for line in p.stdout if '"attached"' in line), float("nan"))
    p.wait()
    return t
runs = {"with inlined calls": [], "--no-inlined": []}
for _ in range(5):
    runs["--no-inlined"].append(to_attached(["--no-inlined"]))
    runs["with inlined calls"].append(to_attached([]))
for name, ts in runs.items():
    print(f"funclat {pattern!r} start-up to attached, {name}: best {min(ts)*1e3:.0f} ms, median {sorted(ts)[2]*1e3:.0f} ms")
print(f"ratio (best): {min(runs['with inlined calls']) / min(runs['--no-inlined']):.2f}")
PY
