#!/usr/bin/env bash
# compute-sanitizer memcheck on the small subset the kernel tests keep for it
# (suites named *Sanitizer*), with the test binaries of build/. Writes the
# sanitizer output to LOG and prints its summary lines; used by gpu_check.sh
# and acceptance_run.sh.
#
#   scripts/memcheck.sh LOG
# Exit status: non-zero when a suite reports an error or fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log="${1:?usage: scripts/memcheck.sh LOG}"
status=0
: >"$log"
for suite in dense_decode:GpuDenseDecodeSanitizer sparse_decode:GpuSparseDecodeSanitizer \
             sparse_prefill:GpuSparsePrefillSanitizer; do
  binary="build/tests/${suite%%:*}/flashmla_${suite%%:*}_tests"
  timeout 300 compute-sanitizer --tool memcheck --error-exitcode 1 \
    "$binary" --gtest_filter="${suite#*:}*" >>"$log" 2>&1 || status=1
done
grep -E "ERROR SUMMARY|PASSED|FAILED" "$log" | tail -n 9
exit $status
