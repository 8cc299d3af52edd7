#!/usr/bin/env bash
# The phase stamps of dense decode cases, in one GPU-machine run: configures
# and builds a measurement build (-DFLASHMLA_TRACE=ON, in build-trace/), runs
# each case once timed (the stamps of its last call stay), and prints
# scripts/trace_summary.py's report of each; writes DIR/<case>.txt and packs
# the stamps and logs into DIR/trace.tgz (a device call brings back at most
# 8 files).
#
#   scripts/trace_cases.sh [--out DIR] CASE...     e.g. scripts/trace_cases.sh --out "$OUT" D11 D12 D13 D15
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build-trace/trace"
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) cases+=("$1"); shift ;;
  esac
done
usage="usage: scripts/trace_cases.sh [--out DIR] CASE..."
[ ${#cases[@]} -gt 0 ] || { echo "trace_cases: name at least one dense decode case; $usage" >&2; exit 2; }
for c in "${cases[@]}"; do
  [[ "$c" =~ ^D(0[1-9]|1[0-5])$ ]] || { echo "trace_cases: $c is not a dense decode case (D01..D15): only dense decode and its combine are stamped" >&2; exit 2; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
build=build-trace
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLASHMLA_BUILD_TESTS=OFF -DFLASHMLA_TRACE=ON \
  >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" --target flashmla-bench >"$out/build.log" 2>&1 || { tail -40 "$out/build.log" >&2; exit 1; }
status=0
for c in "${cases[@]}"; do
  rm -f "$out/$c.csv"
  FLASHMLA_TRACE_DUMP="$out/$c.csv" timeout 120 "$build/bench/flashmla-bench" --case "$c" --no-verify >"$out/$c.bench.log" 2>&1 || status=1
  echo "== $c"
  if [ -s "$out/$c.csv" ]; then
    python3 scripts/trace_summary.py "$out/$c.csv" | tee "$out/$c.txt"
  else
    echo "no stamps written (see $out/$c.bench.log)"; status=1
  fi
done
(cd "$out" && tar czf trace.tgz --remove-files ./*.csv ./*.log 2>/dev/null)
exit $status
