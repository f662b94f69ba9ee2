#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): prerequisites and the Go build matrix (a
# failure there stops the run), then every cargo test in release mode, formatting and lints
# (each runs even if an earlier one failed). Exits non-zero if any step fails. With CI set, a
# test whose prerequisite (toolchain, binary, root) is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failed=()

# step COMMAND...: runs one step, timing it and remembering a failure.
step() {
  echo "== $*"
  local started=$SECONDS status=0
  "$@" || status=$?
  echo "== $* -> exit $status ($((SECONDS - started))s)"
  [ "$status" -eq 0 ] || failed+=("$*")
}

scripts/setup.sh
scripts/build-targets.sh
step cargo test --release --no-fail-fast
step cargo fmt --check
step cargo clippy --all-targets -- -D warnings

if [ ${#failed[@]} -gt 0 ]; then
  printf '== FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "== all passed"
