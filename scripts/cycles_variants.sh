#!/usr/bin/env bash
# ncu cycles of the tree and of patched variants of it, in one GPU-machine
# run: builds flashmla-bench for the tree, then for each patch in turn in the
# same build directory (only what the patch touches recompiles: ~20-60 s a
# variant instead of a full build each), keeps a copy of every binary, puts
# the tree back, and hands all binaries to scripts/cycles.sh. The way the
# eighth session measured the no-load ablations (experiments/ablate-*.patch):
# a variant need not be correct, it only has to run.
#
#   scripts/cycles_variants.sh [--out DIR] [--rounds N] [--flashmla] [PATCH[+PATCH...][=LABEL]...] -- CASE...
#   e.g. scripts/cycles_variants.sh experiments/ablate-dense-no-loads.patch=noload \
#          experiments/dense-seesaw-v5-rebased.patch+experiments/ablate-dense-seesaw-v5-no-loads.patch=v5-noload -- D03
#
# A variant of several patches joined by + applies them in order (an
# ablation on top of the change it ablates).
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
usage="usage: scripts/cycles_variants.sh [--out DIR] [--build DIR] [--rounds N] [--flashmla] [PATCH[+PATCH...][=LABEL]...] -- CASE..."
# Everything cycles.sh would refuse is refused here, before minutes of building.
[ ${#cases[@]} -gt 0 ] || { echo "cycles_variants: name at least one case after --; $usage" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "cycles_variants: --rounds needs a positive count, got '$rounds'" >&2; exit 2; }
for spec in "${patches[@]}"; do
  IFS=+ read -r -a files <<<"${spec%%=*}"
  for f in "${files[@]}"; do
    [ -f "$f" ] || { echo "cycles_variants: no patch file $f" >&2; exit 2; }
  done
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
  IFS=+ read -r -a files <<<"${spec%%=*}"
  label="${spec#*=}"
  [ "$label" = "$spec" ] && label=$(basename "${files[-1]}" .patch)
  applied=()
  for f in "${files[@]}"; do
    if ! patch -p1 -s --dry-run <"$f" >/dev/null 2>&1; then
      echo "cycles_variants: $f does not apply (variant $label); skipped" | tee -a "$out/skipped.txt"
      break
    fi
    patch -p1 -s <"$f"
    applied+=("$f")
  done
  if [ ${#applied[@]} -eq ${#files[@]} ]; then
    if build_bench "$out/build-$label.log"; then
      cp "$build/bench/flashmla-bench" "$bins/$label"
      specs+=("$bins/$label=$label")
    else
      echo "cycles_variants: $label failed to build; see $out/build-$label.log" | tee -a "$out/skipped.txt"
    fi
  fi
  # The tree as it was, whatever happened (the next variant applies to it).
  for ((k = ${#applied[@]} - 1; k >= 0; --k)); do
    patch -p1 -s -R <"${applied[k]}" || { echo "cycles_variants: could not reverse ${applied[k]}: the tree is left patched" >&2; exit 1; }
  done
done
# The build directory holds the last variant's objects: rebuild the tree's.
build_bench "$out/build-restore.log" || echo "cycles_variants: rebuilding the tree failed; see $out/build-restore.log" >&2
"$root/scripts/cycles.sh" "${cycles_args[@]}" --out "$out" "${specs[@]}" -- "${cases[@]}"
