#!/usr/bin/env bash
# The gotrace demo, for a fresh Debian machine (as root): installs only what the demo needs
# (scripts/setup.sh --demo: clang, libelf, zlib, Debian's Go), builds
# gotrace and the counter example (Go 1.19), then shows the latency histogram of main.doWork
# while gotrace launches the counter and traces it (at most 5 seconds). The counter makes 4000
# calls at 1000 per second, then prints its own count ("calls 4000") and exits, so the
# histogram's count can be compared with the program's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh --demo
cargo build --release

counter="$PWD/target/demo/counter"
cache="${GOTRACE_CACHE:-$HOME/.cache/gotrace}"
(cd examples/go-targets/counter &&
  GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 \
    GOPATH="$cache/gopath" GOCACHE="$cache/gocache" \
    /usr/bin/go build -trimpath -buildvcs=false -o "$counter" .)

exec target/release/gotrace funclat -d 5 main.doWork -- "$counter" -n 4000
