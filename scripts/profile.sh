#!/usr/bin/env bash
# Nsight Compute profile of one timed launch per benchmark case, on a GPU
# machine: the kernel of each case is picked by name, the verification launch
# (a smaller shape, run first by flashmla-bench) is skipped, and the clocks
# are left as the benchmark sees them (ncu would lock them to base, which
# also slows the L2 and shifts every throughput percentage).
#
#   scripts/profile.sh [--out DIR] CASE...      e.g. scripts/profile.sh --out "$OUT" D04 S01 P02
#
# Writes DIR/ncu-<case>.txt (default build/profile) and prints the headline
# metrics: duration, L2 / DRAM throughput, tensor-pipe activity, eligible warps.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/case_kernels.sh
out="build/profile"
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) cases+=("$1"); shift ;;
  esac
done
[ ${#cases[@]} -gt 0 ] || { echo "profile: name at least one case (D01..D15, S01..S06, P01..P06)" >&2; exit 2; }
command -v ncu >/dev/null 2>&1 || { echo "profile: ncu (Nsight Compute) is not on PATH" >&2; exit 2; }
mkdir -p "$out"
scripts/build.sh >"$out/build.log" 2>&1 || { echo "profile: build failed, see $out/build.log" >&2; exit 1; }

status=0
for c in "${cases[@]}"; do
  kernel=$(ours_kernel "$c") || { echo "profile: unknown case $c" >&2; status=2; continue; }
  timeout 300 ncu --clock-control none -k "$kernel" -s 1 -c 1 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
    --section SchedulerStats --section WarpStateStats --section SourceCounters \
    --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active \
    build/bench/flashmla-bench --case "$c" --results "$out/bench-$c.json" >"$out/ncu-$c.txt" 2>&1 || status=1
  echo "== $c ($out/ncu-$c.txt)"
  grep -E "Duration|SM Frequency|L2 Cache Throughput|DRAM Throughput|tensor_op_hmma|Eligible Warps" "$out/ncu-$c.txt" | head -n 8
done
exit $status
