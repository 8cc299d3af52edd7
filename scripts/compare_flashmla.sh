#!/usr/bin/env bash
# On a GPU machine: builds flashmla-bench with FlashMLA's own kernels built in
# (from .deps/flashmla, see scripts/vendor_flashmla.sh) and times FlashMLA and
# this library case by case in one process, on the same inputs: "FlashMLA
# measured in the same run". Writes the results file (every case twice: the
# "<case>/FlashMLA" row, then ours with FlashMLA's time as its anchor).
#
#   scripts/compare_flashmla.sh [--out DIR] [flashmla-bench flags, e.g. --case D01,S01]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out="build-peer/results"
if [ "${1:-}" = "--out" ]; then
  out="$2"
  shift 2
fi
mkdir -p "$out"
[ -f .deps/flashmla/csrc/params.h ] || { echo "compare_flashmla: run scripts/vendor_flashmla.sh first" >&2; exit 1; }
if [ ! -f build-peer/CMakeCache.txt ]; then
  cmake -S . -B build-peer -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
    -DFLASHMLA_PEER_SOURCE="$root/.deps/flashmla" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
fi
cmake --build build-peer -j "$(nproc)" --target flashmla-bench >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
result="$out/${gpu:-gpu}-against-flashmla.json"
build-peer/bench/flashmla-bench --against-flashmla --results "$result" "$@" 2>&1 | grep -v "^FLASHMLA_BENCH " | tee "$out/bench.log"
status=${PIPESTATUS[0]}
echo "compare_flashmla: $result"
exit $status
