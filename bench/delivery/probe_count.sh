#!/bin/bash
# probe_count.sh BIN 'OFF[,OFF...]' -- CMD...
# Registers one tracefs uprobe per file offset of BIN (group "gtd"), enables
# them in a private trace instance whose output is off (the kernel still runs
# every uprobe handler and counts it in uprobe_profile), runs CMD, then prints "offset hits" per probe and removes
# the probes. The uprobe handler count is the kernel's own count of handler
# invocations (trace_uprobe nhit), the same path a perf-event BPF uprobe takes.
set -euo pipefail
T=/sys/kernel/tracing
[ -e $T/uprobe_events ] || mount -t tracefs nodev $T
bin=$(readlink -f "$1"); offs=$2; shift 2; [ "$1" = "--" ] && shift
I=$T/instances/gtd
cleanup() {
	[ -e $I/events/gtd/enable ] && echo 0 > $I/events/gtd/enable
	[ -d $I ] && rmdir $I || true
	grep '^p:gtd/' $T/uprobe_events | sed 's/^p:\([^ ]*\).*/-:\1/' >> $T/uprobe_events 2>/dev/null || true
}
cleanup
i=0
for off in ${offs//,/ }; do
	echo "p:gtd/p$i $bin:$off" >> $T/uprobe_events
	i=$((i+1))
done
mkdir $I
echo 0 > $I/tracing_on
echo 1 > $I/events/gtd/enable
trap cleanup EXIT
"$@"
i=0
for off in ${offs//,/ }; do
	echo "probe $off $(awk -v e=p$i '$2==e {print $3}' $T/uprobe_profile)"
	i=$((i+1))
done
