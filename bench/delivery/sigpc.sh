#!/bin/bash
# sigpc.sh BIN OFFSET [G N]: with one tracefs uprobe at file OFFSET of BIN, run BIN
# (GOMAXPROCS=1) and record, with bpftrace on tracepoint signal:signal_deliver,
# the user PC at which every SIGURG is delivered (top frame of the user stack
# = the interrupted PC the Go handler sees in its sigcontext). Prints the PCs as
# main.deep+off, with the probed instruction's offset for comparison.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(readlink -f "$1"); off=$2; G=${3:-20}; N=${4:-10}
comm=$(basename "$bin" | cut -c1-15)
log=$(mktemp)
bpftrace -e "tracepoint:signal:signal_deliver /comm==\"$comm\" && args->sig==23/ { @[ustack(perf, 1)] = count(); }" >"$log" 2>&1 &
bt=$!
sleep 4
GOMAXPROCS=1 "$here/probe_count.sh" "$bin" "$off" -- "$bin" -g "$G" -n "$N"
kill -INT "$bt"; wait "$bt" || true
deep=$(nm "$bin" | awk '$3=="main.deep" {print $1}')
base=$(readelf -lW "$bin" | awk '$1=="LOAD" && / E / { print $3, $2; exit }')
printf 'probed: main.deep+0x%x\n' $(( off - ${base#* } + ${base% *} - 0x$deep ))
# bpftrace prints "@[\n\tADDR ...\n]: COUNT"
python3 - "$log" $((0x$deep)) <<'PY'
import re, sys
text, deep = open(sys.argv[1]).read(), int(sys.argv[2])
c, tot = {}, 0
for pc, n in re.findall(r"@\[\n\s*([0-9a-f]+) [^\n]*\n\]: (\d+)", text):
    d = int(pc, 16) - deep
    where = "main.deep+0x%x" % d if 0 <= d < 0x200 else "0x%x" % int(pc, 16)
    c[where] = c.get(where, 0) + int(n); tot += int(n)
for w, n in sorted(c.items(), key=lambda kv: -kv[1]):
    print("sigurg_at %-18s %d" % (w, n))
print("sigurg_total %d" % tot)
PY
rm -f "$log"
