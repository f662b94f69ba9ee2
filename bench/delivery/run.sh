#!/bin/bash
# Exact-delivery experiments (docs/exact-delivery.md). Run as root.
#   bench/delivery/run.sh [ROW_FILTER]      all rows, or the rows whose name contains ROW_FILTER
# Env: G (goroutines, default 20), N (handle calls per goroutine, default 10),
#      REPS (repetitions per row, default 1), OUT (build dir, default /tmp/gotrace-delivery).
#
# Each row puts tracefs uprobes on chosen instructions of main.deep (all attached
# together), runs the target to completion, and compares the kernel's count of
# handler invocations (uprobe_profile) with what the target's own counters say
# that site must see:
#   body    every call once                        = deep_calls
#   entry   before the stack check: every call, plus one re-run per stack growth
#           = deep_calls + hits on deep's `CALL runtime.morestack_noctxt` (probed too)
#   base    the base-case RET/POP (n <= 0)         = deep_top_calls
#   rec     the recursive CALL, and its RET/POP    = deep_calls - deep_top_calls
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/gotrace-delivery}
mkdir -p "$out"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPATH=$HOME/.cache/gotrace/gopath GOCACHE=$HOME/.cache/gotrace/gocache
G=${G:-20}; N=${N:-10}; REPS=${REPS:-1}; filter=${1:-}

go127=$HOME/.cache/gotrace/go/1.27.3/go/bin/go
[ -x "$go127" ] || { echo "missing Go 1.27.3 at $go127" >&2; exit 1; }
build() { # build NAME GO [GOARCH]
	[ -x "$out/$1" ] && [ "$out/$1" -nt "$here/deep/main.go" ] && return
	(cd "$here/deep" && GOARCH=${3:-amd64} CGO_ENABLED=0 "$2" build -o "$out/$1" .)
}
build deep127 "$go127"
build deep119 /usr/bin/go
build deep127_386 "$go127" 386

# site BIN REGEX NTH -> file offset of the NTH instruction of main.deep matching REGEX
site() {
	local addr base
	addr=$("$go127" tool objdump -s '^main.deep$' "$1" | awk -v re="$2" -v nth="$3" \
		'$0 ~ re { if (++n == nth) { print $2; exit } }')
	[ -n "$addr" ] || { echo "no instruction /$2/ #$3 in $1" >&2; exit 1; }
	# file offset = vaddr - p_vaddr + p_offset of the executable PT_LOAD segment
	base=$(readelf -lW "$1" | awk '$1=="LOAD" && / E / { print $3, $2; exit }')
	printf '0x%x\n' $(( addr - ${base% *} + ${base#* } ))
}

# row NAME BIN ENV 'KIND=REGEX[#NTH]'...
row() {
	local name=$1 bin=$out/$2 envs=$3; shift 3
	[[ -z "$filter" || "$name" == *$filter* ]] || return 0
	local offs=() kinds=() spec kind re nth
	for spec in "$@" "morestack=CALL runtime.morestack"; do
		kind=${spec%%=*}; re=${spec#*=}; nth=1
		if [[ "$re" =~ ^(.*)#([0-9]+)$ ]]; then re=${BASH_REMATCH[1]}; nth=${BASH_REMATCH[2]}; fi
		offs+=("$(site "$bin" "$re" "$nth")"); kinds+=("$kind")
	done
	local list; list=$(IFS=,; echo "${offs[*]}")
	for _ in $(seq "$REPS"); do
		local t0 t1 res
		t0=$(date +%s%N)
		res=$(env $envs "$here/probe_count.sh" "$bin" "$list" -- "$bin" -g "$G" -n "$N")
		t1=$(date +%s%N)
		awk -v name="$name" -v envs="$envs" -v kinds="${kinds[*]}" -v ms=$(( (t1 - t0) / 1000000 )) '
			/^deep_calls/ { calls = $2 } /^deep_top_calls/ { top = $2 }
			/^probe/ { off[++n] = $2; hits[n] = $3 }
			END {
				split(kinds, k, " "); ms_hits = hits[n]
				for (i = 1; i < n; i++) {
					want = k[i] == "body" ? calls : k[i] == "base" ? top : \
					      k[i] == "rec" ? calls - top : calls + ms_hits
					printf "%-20s %-36s %-7s %-5s expected=%-7d hits=%-7d diff=%-6d wall=%.1fs\n",
						name, envs, off[i], k[i], want, hits[i], hits[i] - want, ms / 1000.0
				}
			}' <<<"$res"
	done
}

P1="GOMAXPROCS=1"; P2="GOMAXPROCS=2"; OFF="GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1"
# Go 1.27 amd64: LEAQ; CMPQ; JBE; PUSHQ BP; MOVQ SP,BP; SUBQ ... ADDQ; POPQ BP; RET
for env in "$P1" "$P2" "$OFF"; do
	row "127 lea(xol)"      deep127 "$env" 'entry=LEAQ 0xffffff68'
	row "127 push-bp(emu)"  deep127 "$env" 'body=PUSHQ BP'
	row "127 mov-sp-bp(xol)" deep127 "$env" 'body=MOVQ SP, BP'
	row "127 push+2ret"     deep127 "$env" 'body=PUSHQ BP' 'base=RET#1' 'rec=RET#2'
done
for env in "$P1" "$OFF"; do
	row "127 cmp(xol)"      deep127 "$env" 'entry=CMPQ R12'
	row "127 jbe(emu)"      deep127 "$env" 'entry=JBE '
	row "127 sub-sp(xol)"   deep127 "$env" 'body=SUBQ [$]0x'
	row "127 call(emu)"     deep127 "$env" 'rec=CALL main.deep'
	row "127 pop-bp(xol)"   deep127 "$env" 'base=POPQ BP#1' 'rec=POPQ BP#2'
	row "127 ret(xol)"      deep127 "$env" 'base=RET#1' 'rec=RET#2'
	row "119 lea(xol)"      deep119 "$env" 'entry=LEAQ 0xffffff68'
	row "119 jbe(emu)"      deep119 "$env" 'entry=JBE '
	row "119 sub-sp(xol)"   deep119 "$env" 'body=SUBQ [$]0x'
	row "119 ret(xol)"      deep119 "$env" 'base=RET#1' 'rec=RET#2'
	row "386 movl-gs(xol)"  deep127_386 "$env" 'entry=MOVL GS:0, CX'
	row "386 jbe(emu)"      deep127_386 "$env" 'entry=JBE '
	row "386 sub-sp(xol)"   deep127_386 "$env" 'body=SUBL [$]0x'
	row "386 ret(xol)"      deep127_386 "$env" 'base=RET#1' 'rec=RET#2'
done
