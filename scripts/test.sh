#!/usr/bin/env bash
# Builds if needed and runs every test. GPU tests (CTest label `gpu`) skip
# cleanly on a machine without an sm_90 GPU.
# Arguments go to ctest, e.g. `scripts/test.sh -L gpu` or `-R DecodePartition`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
ctest --test-dir "${FLASHMLA_BUILD_DIR:-$root/build}" --output-on-failure -j "$(nproc)" "$@"
