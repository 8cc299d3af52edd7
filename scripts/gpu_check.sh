#!/usr/bin/env bash
# The GPU check: on a machine with an H100 (no network needed), build with all
# cores, run the `gpu`-labelled tests and the benchmark suite, and write the
# result file bench/results/<gpu>-<commit>.json plus logs.
#
#   scripts/gpu_check.sh [--out DIR] [--commit SHA] [-- flashmla-bench flags]
#
# --out DIR    also copy the result file and the logs there
# --commit SHA the commit being measured (default: git rev-parse, when .git exists)
# Exit status: non-zero when a GPU test or the benchmark's verification fails;
# the result file is written either way.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

out=""
commit="${FLASHMLA_COMMIT:-}"
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --commit) commit="$2"; shift 2 ;;
    --) shift; bench_args=("$@"); break ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$commit" ] || commit=$(git -c safe.directory="*" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
logs="$root/build/gpu_check"
mkdir -p "$logs" bench/results

status=0
scripts/vendor_deps.sh >/dev/null 2>&1 || true  # offline: the carried .deps/ is used as is
if ! scripts/build.sh >"$logs/build.log" 2>&1; then
  echo "gpu_check: build failed; tail of build/gpu_check/build.log:" >&2
  tail -n 40 "$logs/build.log" >&2
  [ -n "$out" ] && cp "$logs/build.log" "$out/"
  exit 1
fi
# The register / spill report of every kernel, from ptxas -v.
grep -E "Compiling entry|Used [0-9]+ registers|spill|lmem|warning" "$logs/build.log" >"$logs/ptxas.log" || true

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu \
  --format=csv >"$logs/gpu.csv" 2>&1 || true
cat "$logs/gpu.csv"

echo "== GPU tests"
ctest --test-dir build -L gpu --output-on-failure --timeout 300 >"$logs/gpu-tests.log" 2>&1 || status=1
tail -n 25 "$logs/gpu-tests.log"

if command -v compute-sanitizer >/dev/null 2>&1; then
  echo "== compute-sanitizer memcheck"
  scripts/memcheck.sh "$logs/memcheck.log" || status=1
fi

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
result="bench/results/${gpu:-gpu}-${commit}.json"
echo "== flashmla-bench -> $result"
timeout 420 build/bench/flashmla-bench --commit "$commit" --results "$result" "${bench_args[@]}" \
  >"$logs/bench.log" 2>&1 || status=1
cat "$logs/bench.log" | grep -v "^FLASHMLA_BENCH " | tail -n 45

if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "$result" "$logs/gpu-tests.log" "$logs/memcheck.log" "$logs/bench.log" "$logs/ptxas.log" "$logs/gpu.csv" \
    "$out/" 2>/dev/null || true
fi
exit $status
