#!/usr/bin/env bash
# Nsight Compute's cycle count of one launch of each case's kernel, for each
# given flashmla-bench build: the instrument for A/B-ing kernel schedules on
# a power-capped GPU. The benchmark's microseconds move up to 20% between runs
# of the same binary there (the clock follows the power state the previous
# case left); the SM cycles of one launch repeat to 0.5%. The clocks are left
# alone (--clock-control none); the first launch (the eager call before the
# timed graph) is skipped. ncu's kernel replay flushes L2 before the launch
# and restores memory between passes, so what one kernel leaves in L2 for the
# next (the split partials the combine reads) is not seen here: measure that
# with --replay-mode application --cache-control none (dense README,
# "fourteenth session").
#
#   scripts/cycles.sh [--rounds N] [--flashmla] [--out DIR] BENCH[=LABEL]... -- CASE...
#   e.g. scripts/cycles.sh build/bench/flashmla-bench=main /tmp/v/build/bench/flashmla-bench=variant -- D03 D06
#
# --flashmla also counts FlashMLA's own kernel of each case, run by the first
# build (which must have been built with FlashMLA, as scripts/compare_flashmla.sh
# does in build-peer). Rounds alternate over the builds (every build once per
# round), so a drift in the machine hits all of them alike. Prints one line per
# launch: case, label, cycles, microseconds, tensor-pipe activity, L2 hit rate;
# writes the same to DIR/cycles.txt (default build/cycles).
set -uo pipefail
rounds=1
flashmla=0
out="build/cycles"
benches=()
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --flashmla) flashmla=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --) shift; cases=("$@"); break ;;
    *) benches+=("$1"); shift ;;
  esac
done
usage="usage: scripts/cycles.sh [--rounds N] [--flashmla] [--out DIR] BENCH[=LABEL]... -- CASE..."
[ ${#benches[@]} -gt 0 ] || { echo "cycles: name at least one flashmla-bench build; $usage" >&2; exit 2; }
[ ${#cases[@]} -gt 0 ] || { echo "cycles: name at least one case after --; $usage" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "cycles: --rounds needs a positive count, got '$rounds'" >&2; exit 2; }
for spec in "${benches[@]}"; do
  [ -x "${spec%%=*}" ] || { echo "cycles: no flashmla-bench at ${spec%%=*}" >&2; exit 2; }
done
source "$(dirname "$0")/case_kernels.sh"
for c in "${cases[@]}"; do
  ours_kernel "$c" >/dev/null || { echo "cycles: unknown case $c (D01..D15, S01..S06, P01..P06)" >&2; exit 2; }
done
command -v ncu >/dev/null 2>&1 || { echo "cycles: ncu (Nsight Compute) is not on PATH" >&2; exit 2; }
mkdir -p "$out"
metrics=sm__cycles_elapsed.max,gpu__time_duration.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_sector_hit_rate.pct

# One launch: prints "cycles us tensor% l2hit%" (or "failed").
count() {
  local csv="$out/last.csv"
  timeout 120 ncu --clock-control none -k "$1" -s 1 -c 1 --metrics "$metrics" --csv --print-units base "${@:2}" --no-verify >"$csv" 2>&1
  python3 - "$csv" <<'EOF'
import csv, sys
want = ["sm__cycles_elapsed.max", "gpu__time_duration.sum",
        "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active", "lts__t_sector_hit_rate.pct"]
values = {}
for row in csv.reader(l for l in open(sys.argv[1]) if l.startswith('"')):
    if len(row) > 3 and row[-3] in want:
        values[row[-3]] = row[-1].replace(",", "")
if "gpu__time_duration.sum" in values:  # base unit: ns
    values["gpu__time_duration.sum"] = "%.2f" % (float(values["gpu__time_duration.sum"]) / 1000.0)
print(" ".join(values.get(w, "failed") for w in want))
EOF
}

status=0
printf "%-5s %-16s %12s %12s %8s %8s\n" case build cycles us tensor% l2hit% | tee "$out/cycles.txt"
for ((r = 1; r <= rounds; ++r)); do
  for c in "${cases[@]}"; do
    for spec in "${benches[@]}"; do
      bin="${spec%%=*}"
      label="${spec#*=}"
      [ "$label" = "$spec" ] && label="$bin"
      read -r cyc us tensor hit <<<"$(count "$(ours_kernel "$c")" "$bin" --case "$c")"
      [ "$cyc" = failed ] && status=1
      printf "%-5s %-16s %12s %12s %8s %8s\n" "$c" "${label:0:16}" "$cyc" "$us" "$tensor" "$hit" | tee -a "$out/cycles.txt"
    done
    if [ "$flashmla" = 1 ]; then
      read -r cyc us tensor hit <<<"$(count "$(peer_kernel "$c")" "${benches[0]%%=*}" --against-flashmla --case "$c")"
      [ "$cyc" = failed ] && status=1
      printf "%-5s %-16s %12s %12s %8s %8s\n" "$c" FlashMLA "$cyc" "$us" "$tensor" "$hit" | tee -a "$out/cycles.txt"
    fi
  done
done
exit $status
