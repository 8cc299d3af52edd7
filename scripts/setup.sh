#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs the main job (flashmla-bench).
# Idempotent: what is already there is kept, so it also runs offline on a
# GPU machine that received .deps/ (see README, "Offline GPU machine").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# 1. System packages (Debian), only the missing ones: a C++20 compiler,
#    CMake >= 3.25, Ninja, GoogleTest sources, pip. The CUDA 13 toolkit
#    (nvcc) must already be installed; configure says so if it is not.
missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
[ -f /usr/src/googletest/CMakeLists.txt ] || [ -f .deps/googletest/CMakeLists.txt ] || missing+=(googletest)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. Pinned Python packages: the CUTLASS/CuTe headers ship in nvidia-cutlass.
if [ ! -f .deps/cutlass/include/cutlass/cutlass.h ]; then
  python3 -m pip install -q --no-deps "nvidia-cutlass==4.2.0.0" 2>&1 | grep -v "^WARNING: Running pip as" || true
fi

# 3. Copy CUTLASS and GoogleTest into .deps/ for offline builds.
scripts/vendor_deps.sh

# 4. Build.
scripts/build.sh

# 5. The Python package (README, "Python"): its build and test tools, pinned,
#    installed only when missing, so that a machine without network access that
#    already has them (the GPU machine's PyTorch venv) uses its own; then the
#    package itself, built from this tree by scikit-build-core into build/pip.
py_missing=()
py_has() { python3 -c "import $1" >/dev/null 2>&1; }
py_has numpy || py_missing+=("numpy==2.4.6")
py_has pytest || py_missing+=("pytest==9.0.2")
py_has nanobind || py_missing+=("nanobind==3.1.0")
py_has scikit_build_core || py_missing+=("scikit-build-core==0.11.6")
if [ ${#py_missing[@]} -gt 0 ]; then
  echo "setup: installing ${py_missing[*]}"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q "${py_missing[@]}"
fi
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --no-build-isolation --no-deps "$root"

# 6. Run the main job.
build/bench/flashmla-bench
