#!/usr/bin/env bash
# Start-up with inlined-call discovery (issue 10): opening and indexing Go's `compile`, `go`
# and esbuild as today, next to the same plus every function's inline tree, in one process
# (tests/inline_startup.rs). Prints milliseconds and the ratio; goal <= 2x and <= 300 ms.
# Also times `gotrace list BIN main.main` (which now reads the inline trees) end to end.
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
