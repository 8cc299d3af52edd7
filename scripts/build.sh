#!/usr/bin/env bash
# Configures (once) and builds everything into build/ with all cores.
# Extra arguments go to the first configure, e.g. -DCUTLASS_DIR=/path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="${FLASHMLA_BUILD_DIR:-$root/build}"
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$build" -j "$(nproc)"
