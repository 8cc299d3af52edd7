#!/usr/bin/env bash
# ncu cycles of the tree and of patched variants of it, in one GPU-machine
# run: builds flashmla-bench for the tree, then for each patch in turn in the
# same build directory (only what the patch touches recompiles: ~20-60 s a
# variant instead of a full build each), keeps a copy of every binary, puts
# the tree back, and hands all binaries to scripts/cycles.sh. The way the
# eighth session measured the no-load ablations (experiments/ablate-*.patch):
# a variant need not be correct, it only has to run.
#
#   scripts/cycles_variants.sh [--out DIR] [--rounds N] [--flashmla] [PATCH[=LABEL]...] -- CASE...
#   e.g. scripts/cycles_variants.sh experiments/ablate-dense-no-loads.patch=noload -- D03 D12
#
# The base build is labelled "base". --flashmla needs a build configured with
# FlashMLA (scripts/compare_flashmla.sh's build-peer): pass --build build-peer.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/cycles-variants"
build="$root/build"
cycles_args=()
rounds=1
patches=()
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --rounds) rounds="$2"; cycles_args+=(--rounds "$2"); shift 2 ;;
    --flashmla) cycles_args+=(--flashmla); shift ;;
    --) shift; cases=("$@"); break ;;
    *) patches+=("$1"); shift ;;
  esac
done
usage="usage: scripts/cycles_variants.sh [--out DIR] [--build DIR] [--rounds N] [--flashmla] [PATCH[=LABEL]...] -- CASE..."
# Everything cycles.sh would refuse is refused here, before minutes of building.
[ ${#cases[@]} -gt 0 ] || { echo "cycles_variants: name at least one case after --; $usage" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "cycles_variants: --rounds needs a positive count, got '$rounds'" >&2; exit 2; }
for spec in "${patches[@]}"; do
  [ -f "${spec%%=*}" ] || { echo "cycles_variants: no patch file ${spec%%=*}" >&2; exit 2; }
done
source "$root/scripts/case_kernels.sh"
for c in "${cases[@]}"; do
  ours_kernel "$c" >/dev/null || { echo "cycles_variants: unknown case $c (D01..D15, S01..S06, P01..P06)" >&2; exit 2; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
bins="$out/bin"
mkdir -p "$bins"
cd "$root"

build_bench() {  # $1: log file
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$1" 2>&1 || return 1
  fi
  cmake --build "$build" -j "$(nproc)" --target flashmla-bench >>"$1" 2>&1
}

specs=()
if build_bench "$out/build-base.log"; then
  cp "$build/bench/flashmla-bench" "$bins/base"
  specs+=("$bins/base=base")
else
  echo "cycles_variants: the base build failed; see $out/build-base.log" >&2
  tail -20 "$out/build-base.log" >&2
  exit 1
fi
for spec in "${patches[@]}"; do
  patch_file=$(cd "$(dirname "${spec%%=*}")" && pwd)/$(basename "${spec%%=*}")
  label="${spec#*=}"
  [ "$label" = "$spec" ] && label=$(basename "$patch_file" .patch)
  if ! patch -p1 -s --dry-run <"$patch_file" >/dev/null 2>&1; then
    echo "cycles_variants: $label does not apply to the tree; skipped" | tee -a "$out/skipped.txt"
    continue
  fi
  patch -p1 -s <"$patch_file"
  if build_bench "$out/build-$label.log"; then
    cp "$build/bench/flashmla-bench" "$bins/$label"
    specs+=("$bins/$label=$label")
  else
    echo "cycles_variants: $label failed to build; see $out/build-$label.log" | tee -a "$out/skipped.txt"
  fi
  # The tree as it was, whatever happened (the next variant applies to it).
  patch -p1 -s -R <"$patch_file" || { echo "cycles_variants: could not reverse $label: the tree is left patched" >&2; exit 1; }
done
# The build directory holds the last variant's objects: rebuild the tree's.
build_bench "$out/build-restore.log" || echo "cycles_variants: rebuilding the tree failed; see $out/build-restore.log" >&2
"$root/scripts/cycles.sh" "${cycles_args[@]}" --out "$out" "${specs[@]}" -- "${cases[@]}"
