#!/usr/bin/env bash
# The whole check of a commit in one device call (about 6 minutes on a
# 16-core H100/H200 machine, under the 10-minute limit of a call): builds
# the GPU test binaries and the FlashMLA-comparison bench (build-peer, see
# compare_flashmla.sh) in parallel, runs every `Gpu` test of the six test
# binaries, compute-sanitizer memcheck on the *Sanitizer subsets, optionally
# ncu cycle counts of some cases, then one verified same-process run against
# FlashMLA and N timed rounds (compare_rounds.py). A step is not started once
# --budget seconds have passed, so the files written so far come back.
#
#   scripts/acceptance_run.sh --out DIR [--commit SHA] [--rounds N] [--cycles D03,S01] [--budget SECONDS] [--pack]
#
# --pack: at the end, put everything written into DIR/<gpu>-<commit>.tgz and
# remove the rest (a device call brings back at most 8 files from $OUT; this
# run writes 9, and the verified results were the ones left behind).
#
# Writes DIR/<gpu>-<commit>.gpu-tests.log, .memcheck.log, .cycles.txt and
# DIR/<gpu>-<commit>-against-flashmla.{json,bench.log,rounds.txt,rounds.json}.
# --commit is what the results record (default: git rev-parse; pass it when
# the tree's .git is not the commit's, as on a copied tree). Needs .deps/
# with CUTLASS, GoogleTest and FlashMLA (scripts/vendor_deps.sh,
# scripts/vendor_flashmla.sh). Exit status: non-zero when a test, memcheck
# or the verified run failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

out=""
commit=""
rounds=8
cycles=""
budget=480
pack=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pack) pack=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --commit) commit="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --cycles) cycles="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    *) echo "acceptance_run: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "acceptance_run: --out DIR is required" >&2; exit 2; }
[ -f .deps/flashmla/csrc/params.h ] || { echo "acceptance_run: no .deps/flashmla (scripts/vendor_flashmla.sh)" >&2; exit 2; }
[ -n "$commit" ] || commit=$(git -c safe.directory="*" rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
mkdir -p "$out"
t0=$(date +%s)
elapsed() { echo $(($(date +%s) - t0)); }
in_budget() { [ "$(elapsed)" -lt "$budget" ] || { echo "acceptance_run: budget spent, skipping $1"; return 1; }; }

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
stem="$out/${gpu:-gpu}-$commit"
binaries=(api device kernels dense_decode sparse_decode sparse_prefill)
status=0

jobs=$(nproc)
targets=()
for b in "${binaries[@]}"; do targets+=("flashmla_${b}_tests"); done
(cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build -j $((jobs / 2)) --target "${targets[@]}" >"$stem.build-tests.log" 2>&1) &
tests_build=$!
(cmake -S . -B build-peer -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF \
  -DFLASHMLA_PEER_SOURCE="$root/.deps/flashmla" >/dev/null &&
  cmake --build build-peer -j $((jobs - jobs / 2)) --target flashmla-bench >"$stem.build-bench.log" 2>&1) &
bench_build=$!
wait $tests_build || { echo "acceptance_run: test build failed"; tail -n 30 "$stem.build-tests.log"; status=1; }
wait $bench_build || { echo "acceptance_run: bench build failed"; tail -n 30 "$stem.build-bench.log"; exit 1; }
echo "built at $(elapsed) s"

if [ $status = 0 ] && in_budget "the GPU tests"; then
  : >"$stem.gpu-tests.log"
  for b in "${binaries[@]}"; do
    timeout 240 "build/tests/$b/flashmla_${b}_tests" --gtest_filter='*Gpu*' >>"$stem.gpu-tests.log" 2>&1 ||
      { echo "acceptance_run: $b GPU tests failed"; status=1; }
  done
  grep -E "^\[  PASSED|^\[  FAILED" "$stem.gpu-tests.log"
  echo "tests at $(elapsed) s"
fi

if [ $status = 0 ] && command -v compute-sanitizer >/dev/null 2>&1 && in_budget "memcheck"; then
  scripts/memcheck.sh "$stem.memcheck.log" || { echo "acceptance_run: memcheck failed"; status=1; }
fi

if [ -n "$cycles" ] && in_budget "the cycle counts"; then
  scripts/cycles.sh --out "$out/cycles" "build-peer/bench/flashmla-bench=$commit" -- ${cycles//,/ } >/dev/null 2>&1
  mv "$out/cycles/cycles.txt" "$stem.cycles.txt" && rm -rf "$out/cycles"
  cat "$stem.cycles.txt"
fi

against="$stem-against-flashmla"
if in_budget "the verified run"; then
  timeout 180 scripts/compare_flashmla.sh --out "$out/verified" --commit "$commit" >/dev/null 2>&1 ||
    { echo "acceptance_run: verified run failed"; status=1; }
  mv "$out/verified/"*-against-flashmla.json "$against.json" 2>/dev/null
  mv "$out/verified/bench.log" "$against.bench.log" 2>/dev/null
  rm -rf "$out/verified"
  grep -E "ok, .* failed" "$against.bench.log"
fi

if [ "$rounds" -gt 0 ] && in_budget "the timed rounds"; then
  left=$((budget - $(elapsed) + 60))
  timeout "$left" python3 scripts/compare_rounds.py --rounds "$rounds" --out "$out/rounds" --commit "$commit" \
    >"$against.rounds.txt" 2>&1
  cp "$out/rounds/rounds.json" "$against.rounds.json" 2>/dev/null
  rm -rf "$out/rounds"
  tail -n 30 "$against.rounds.txt"
fi
echo "acceptance_run: done at $(elapsed) s, status $status"
if [ $pack = 1 ]; then
  name=$(basename "$stem")
  (cd "$out" && tar czf "$name.tgz" --exclude="$name.tgz" "$name"* && find . -maxdepth 1 -name "$name*" ! -name "$name.tgz" -delete)
  echo "acceptance_run: packed into $stem.tgz"
fi
exit $status
