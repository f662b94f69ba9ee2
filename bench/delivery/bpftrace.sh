#!/bin/bash
# bpftrace.sh BIN [WINDOW_SECS] [G N]: bpftrace 0.17 counts uprobe:BIN:"main.deep"
# (the function's first instruction, single-stepped out of line) system-wide while
# BIN runs with GOMAXPROCS=1; a tracefs probe on deep's `CALL runtime.morestack_noctxt`
# counts stack growths (each re-runs the entry once), so the exact expectation is
# deep_calls + morestack. Without WINDOW_SECS bpftrace is stopped after the target
# exits (exact); with it, bpftrace is stopped after WINDOW_SECS while the target
# still runs, which is how a count can come out short with no kernel statistic
# showing any miss. Also prints the BPF program's run_cnt (kernel.bpf_stats_enabled).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(readlink -f "$1"); window=${2:-}; G=${3:-20}; N=${4:-10}
go127=$HOME/.cache/gotrace/go/1.27.3/go/bin/go
ms=$("$go127" tool objdump -s '^main.deep$' "$bin" | awk '/CALL runtime.morestack/ {print $2; exit}')
base=$(readelf -lW "$bin" | awk '$1=="LOAD" && / E / { print $3, $2; exit }')
msoff=$(printf '0x%x' $(( ms - ${base% *} + ${base#* } )))
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
log=$(mktemp)
bpftrace -e "uprobe:$bin:\"main.deep\" { @hits = count(); }" >"$log" 2>&1 &
bt=$!
sleep 4
# the newest kprobe-type program named main_deep is bpftrace's (one bpftrace at a time)
prog=$(bpftool prog show | awk '/ kprobe +name main_deep / {id=$1} END {print id}' | tr -d :)
GOMAXPROCS=1 "$here/probe_count.sh" "$bin" "$msoff" -- "$bin" -g "$G" -n "$N" >"$log.target" &
tgt=$!
if [ -n "$window" ]; then sleep "$window"; else wait "$tgt"; fi
run_cnt=$(bpftool prog show id "$prog" | grep -o 'run_cnt [0-9]*' || true)
kill -INT "$bt"; wait "$bt" || true
wait "$tgt" || true
sysctl -qw kernel.bpf_stats_enabled="$stats_before"
calls=$(awk '/^deep_calls/ {print $2}' "$log.target")
more=$(awk '/^probe/ {print $3}' "$log.target")
hits=$(awk '/^@hits/ {print $2}' "$log")
echo "bpftrace main.deep window=${window:-until-exit} expected=$((calls + more)) (deep_calls=$calls morestack=$more) hits=$hits diff=$((hits - calls - more)) prog $run_cnt"
rm -f "$log" "$log.target"
