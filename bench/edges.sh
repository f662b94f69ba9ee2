#!/usr/bin/env bash
# Exact edges, the full matrix of issue 27: tests/edges.rs with 10 runs per configuration
# (funclat, args, goroutines, graph; multi-uprobe and per-site; Go 1.27 amd64 and Go 1.19 386).
# Prints one line per run (lost, unmatched, in_flight_at_start/end, reported calls against the
# target's own count of calls wholly inside / overlapping the window) and the test result.
# Run as root. RUNS=N overrides the 10.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EDGES_RUNS="${RUNS:-10}" cargo test --release --test edges -- --nocapture --test-threads 1 2>&1 |
  grep -E '^go1|test result|panicked|FAILED'
