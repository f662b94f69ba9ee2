#!/bin/bash
# jcc_entry.sh BIN [ENV...]: exact entry counting on the emulated stack-check
# branch (JBE/JLS to the morestack block) of main.deep, for targets whose
# post-prologue instruction is single-stepped (Go < 1.21 amd64: SUBQ; 386: SUBL).
# The probe fetches the flags register; a pass on which the branch is taken
# (CF|ZF set: the stack must grow, the function will be re-run from its entry)
# is not a call. Counted: all passes (uprobe_profile) and taken passes (trace
# buffer, filter "flags & 0x41"); calls = all - taken must equal deep_calls, and
# taken must equal the hits on deep's `CALL runtime.morestack_noctxt`.
set -euo pipefail
T=/sys/kernel/tracing
bin=$(readlink -f "$1"); shift
go127=$HOME/.cache/gotrace/go/1.27.3/go/bin/go
off() { # file offset of the first main.deep instruction matching $1
	local a base
	a=$("$go127" tool objdump -s '^main.deep$' "$bin" | awk -v re="$1" '$0 ~ re {print $2; exit}')
	base=$(readelf -lW "$bin" | awk '$1=="LOAD" && / E / { print $3, $2; exit }')
	printf '0x%x' $(( a - ${base% *} + ${base#* } ))
}
jcc=$(off 'JBE |JLS '); ms=$(off 'CALL runtime.morestack')
I=$T/instances/gtj
cleanup() {
	[ -e $I/events/gtj/enable ] && echo 0 > $I/events/gtj/enable
	[ -d $I ] && rmdir $I
	grep '^p:gtj/' $T/uprobe_events | sed 's/^p:\([^ ]*\).*/-:\1/' >> $T/uprobe_events 2>/dev/null || true
}
cleanup
echo "p:gtj/jcc $bin:$jcc flags=%flags:x64" >> $T/uprobe_events
echo "p:gtj/ms $bin:$ms" >> $T/uprobe_events
mkdir $I
echo 'flags & 65' > $I/events/gtj/jcc/filter
echo 'common_pid == -1' > $I/events/gtj/ms/filter  # counted in uprobe_profile only
trap cleanup EXIT
echo 1 > $I/tracing_on
echo 1 > $I/events/gtj/enable
res=$(env "$@" "$bin" -g "${G:-20}" -n "${N:-10}")
echo 0 > $I/events/gtj/enable
calls=$(awk '/^deep_calls/ {print $2}' <<<"$res")
all=$(awk '$2=="jcc" {print $3}' $T/uprobe_profile)
morestack=$(awk '$2=="ms" {print $3}' $T/uprobe_profile)
taken=$(grep -c ' jcc: ' $I/trace || true)
lost=$(grep -o 'entries-in-buffer/entries-written: [0-9]*/[0-9]*' $I/trace || true)
echo "jcc-entry $(basename "$bin") $* offset=$jcc passes=$all taken=$taken calls=$((all - taken)) deep_calls=$calls diff=$((all - taken - calls)) morestack=$morestack ($lost)"
