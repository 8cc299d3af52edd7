#!/usr/bin/env bash
# Builds if needed and runs every test: the GoogleTest suites (ctest), then the
# Python package's tests (pytest, tests/python). GPU tests (CTest label `gpu`,
# pytest marker `gpu`) skip cleanly on a machine without an sm_90 GPU.
# Arguments go to ctest, e.g. `scripts/test.sh -L gpu` or `-R DecodePartition`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
ctest --test-dir "${FLASHMLA_BUILD_DIR:-$root/build}" --output-on-failure -j "$(nproc)" "$@"

# Reinstall the package from this tree (incremental in build/pip: seconds when
# nothing changed), so pytest tests the tree, not an older install.
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --no-build-isolation --no-deps "$root"
status=0
(cd "$root" && python3 -m pytest tests/python -q -rs -p no:cacheprovider) || status=$?
# pytest's 5 means "no tests collected": an empty selection is not a failure.
if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
