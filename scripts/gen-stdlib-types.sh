#!/bin/sh
# Regenerates src/gobin/runtime/stdlib_types.tsv, the standard library's layouts for binaries
# without DWARF, from the DWARF of every toolchain tests/stdlib_types.rs lists (all must be
# installed: scripts/setup.sh). Run it after adding a Go release to the matrix, then run
# `cargo test --release --test stdlib_types` to check the table against debug/dwarf.
set -eu
cd "$(dirname "$0")/.."
GOTRACE_GENERATE_STDLIB_TYPES=1 cargo test --release --test stdlib_types
wc -c src/gobin/runtime/stdlib_types.tsv
