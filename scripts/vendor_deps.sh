#!/usr/bin/env bash
# Copies the build's third-party sources into .deps/ (ignored by git) so that
# a machine with no network (the GPU machine) can configure and build:
#   .deps/cutlass/include    CUTLASS/CuTe headers of the pinned nvidia-cutlass wheel
#   .deps/googletest         GoogleTest sources (Debian's googletest package)
# Idempotent: an existing, complete copy is kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
mkdir -p "$deps"

cutlass_version="4.2.0.0"
if [ ! -f "$deps/cutlass/include/cutlass/cutlass.h" ]; then
  src=$(python3 - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("cutlass_library")
print(os.path.join(os.path.dirname(spec.origin), "source", "include") if spec else "")
PY
)
  if [ -z "$src" ] || [ ! -f "$src/cutlass/cutlass.h" ]; then
    echo "vendor_deps: nvidia-cutlass==$cutlass_version is not installed; run scripts/setup.sh" >&2
    exit 1
  fi
  rm -rf "$deps/cutlass.tmp"
  mkdir -p "$deps/cutlass.tmp/include"
  cp -r "$src/cutlass" "$src/cute" "$deps/cutlass.tmp/include/"
  rm -rf "$deps/cutlass"
  mv "$deps/cutlass.tmp" "$deps/cutlass"
  echo "vendor_deps: CUTLASS headers copied from $src"
fi

if [ ! -f "$deps/googletest/CMakeLists.txt" ]; then
  if [ ! -f /usr/src/googletest/CMakeLists.txt ]; then
    echo "vendor_deps: /usr/src/googletest missing; run scripts/setup.sh (installs Debian's googletest)" >&2
    exit 1
  fi
  rm -rf "$deps/googletest"
  cp -r /usr/src/googletest "$deps/googletest"
  echo "vendor_deps: GoogleTest sources copied from /usr/src/googletest"
fi
