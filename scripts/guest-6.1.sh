#!/usr/bin/env bash
# Runs commands inside a QEMU guest booted with Debian 12's 6.1 kernel (the kernel before
# uprobe-multi that gotrace's per-site path is for), sharing this machine's root read-only.
#
#   scripts/guest-6.1.sh [-o OUTDIR] [-t SECONDS] COMMAND...
#
# Each COMMAND is one shell command line, run in order by bash inside the guest from the
# repository's root. Command i's stdout and stderr go to OUTDIR/i.out and its exit code to
# OUTDIR/i.rc; OUTDIR/summary gets one line per command: "i exit_code seconds command" (the
# guest's own exit status does not reach the host, so these files are the result).
# OUTDIR/guest.txt describes the guest (kernel, BTF, mounts, limits) and OUTDIR/console.log
# holds the boot. OUTDIR defaults to a new directory under /tmp (printed on the last line).
# Exits 0 when the guest ran every command (whatever their exit codes), 2 when the kernel or
# vng is missing (scripts/setup.sh installs them), 1 otherwise.
#
# The guest: `vng --disable-kvm` (this machine's /dev/kvm is not usable by QEMU, so the guest
# is emulated: boot alone takes ~1.5 min), 2 CPUs, 2 GiB, OUTDIR shared read-write. Inside,
# BPF needs the kernel's BTF (/sys/kernel/btf/vmlinux, built in), tracefs and debugfs (mounted
# here if virtme did not), and no memlock limit (6.1 charges BPF memory to the memory cgroup,
# but the limit is raised anyway); RLIMIT_NOFILE is left at the guest's default (1,024 soft)
# on purpose: gotrace must raise it itself.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GOTRACE_CACHE:-$HOME/.cache/gotrace}"

# --inside OUTDIR: the guest half. Runs OUTDIR/commands (NUL-separated) one by one.
if [ "${1:-}" = "--inside" ]; then
  out="$2"
  cd "$ROOT"
  {
    echo "kernel: $(uname -r)"
    echo "btf: $(ls -l /sys/kernel/btf/vmlinux 2>&1)"
    mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
    mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
    ulimit -l unlimited
    echo "mounts: $(grep -E 'tracefs|debugfs' /proc/mounts | tr '\n' ';')"
    echo "memlock: $(ulimit -l); nofile: soft $(ulimit -Sn) hard $(ulimit -Hn)"
    echo "cpus: $(nproc); memory: $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
    echo "uprobe_multi_link: $(grep -c bpf_uprobe_multi_link_attach /proc/kallsyms || true)"
  } >"$out/guest.txt" 2>&1
  i=0
  while IFS= read -r -d '' cmd; do
    i=$((i + 1))
    start=$(date +%s%N)
    rc=0
    bash -c "$cmd" >"$out/$i.out" 2>&1 </dev/null || rc=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    secs=$((ms / 1000)).$(printf '%03d' $((ms % 1000)))
    echo "$rc" >"$out/$i.rc"
    printf '%s %s %s %s\n' "$i" "$rc" "$secs" "$cmd" >>"$out/summary"
    sync
  done <"$out/commands"
  echo done >"$out/finished"
  sync
  exit 0
fi

out="" timeout_secs="${GOTRACE_GUEST_TIMEOUT:-1500}"
while getopts "o:t:" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    t) timeout_secs="$OPTARG" ;;
    *) sed -n '2,16p' "$0" >&2; exit 1 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { sed -n '2,16p' "$0" >&2; exit 1; }

kimg=$(ls "$CACHE"/kernel/6.1.*/boot/vmlinuz-6.1.* 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$kimg" ]; then
  echo "guest-6.1: no Debian 6.1 kernel under $CACHE/kernel (run scripts/setup.sh)" >&2
  exit 2
fi
if ! command -v vng >/dev/null 2>&1 || ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  echo "guest-6.1: vng (PyPI virtme-ng) or qemu-system-x86_64 missing (run scripts/setup.sh)" >&2
  exit 2
fi

if [ -z "$out" ]; then out=$(mktemp -d /tmp/gotrace-guest.XXXXXX); fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.out "$out"/*.rc "$out/summary" "$out/finished" "$out/commands"
for cmd in "$@"; do printf '%s\0' "$cmd" >>"$out/commands"; done

rc=0
timeout "$timeout_secs" vng --disable-kvm --cpus 2 --memory 2G --verbose \
  --run "$kimg" --rwdir "$out" --cwd "$ROOT" \
  --exec "$ROOT/scripts/guest-6.1.sh --inside $out" \
  </dev/null >"$out/console.log" 2>&1 || rc=$?
if [ ! -e "$out/finished" ]; then
  echo "guest-6.1: the guest did not finish its commands (vng exit $rc; see $out/console.log)" >&2
  [ -e "$out/summary" ] && cat "$out/summary" >&2
  echo "$out"
  exit 1
fi
cat "$out/summary"
echo "$out"
