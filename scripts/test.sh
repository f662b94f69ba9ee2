#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): prerequisites, the Go build matrix, every
# cargo test (release), formatting and lints. Exits non-zero if any step fails. With CI set, a
# test whose prerequisite (toolchain, binary, root) is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
  echo "== $*"
  local started=$SECONDS
  "$@"
  echo "== $1 done ($((SECONDS - started))s)"
}

step scripts/setup.sh
step scripts/build-targets.sh
step cargo test --release
step cargo fmt --check
step cargo clippy --all-targets -- -D warnings
echo "== all passed"
