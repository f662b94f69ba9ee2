#!/usr/bin/env bash
# The gotrace demo, for a fresh Debian machine (as root): installs the prerequisites, builds
# gotrace and the counter example (Go 1.19), then shows the latency histogram of main.doWork
# while gotrace launches the counter and traces it for 5 seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
cargo build --release

counter="$PWD/target/demo/counter"
cache="${GOTRACE_CACHE:-$HOME/.cache/gotrace}"
(cd examples/go-targets/counter &&
  GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 \
    GOPATH="$cache/gopath" GOCACHE="$cache/gocache" \
    /usr/bin/go build -trimpath -buildvcs=false -o "$counter" .)

exec target/release/gotrace funclat -d 5 main.doWork -- "$counter"
