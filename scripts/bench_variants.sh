#!/usr/bin/env bash
# Times kernel variants against the tree as it is, in one GPU-machine run:
# each variant is the tree plus one patch (`diff -u` / `git diff` output,
# applied with patch -p1), built in its own directory in parallel with the
# others, then every build runs the same benchmark cases one after another
# on the same GPU, so the numbers compare. Ablations (a patch that removes
# the loads, the dequantization, the consumer) are variants too: they need
# not be correct, so variants run with --no-verify unless --verify is given;
# the base always verifies.
#
#   scripts/bench_variants.sh [--out DIR] [--cases S01,S03] [--jobs N] [--verify] [PATCH...]
#
# Writes DIR/variants.log (the table of every build, then the ptxas spill
# lines of each) and DIR/variants.tgz (build logs, per-build result JSON).
# Exit status: non-zero when the base build fails or does not verify; a
# variant that fails to patch or build is reported in the log and skipped.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="build/variants"
cases="S01,S03,S05,S06"
jobs=$(nproc)
variant_verify=--no-verify
patches=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --verify) variant_verify=""; shift ;;
    *) patches+=("$1"); shift ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
log="$out/variants.log"
: >"$log"

# The base builds with half the cores, the variants share the other half.
n=${#patches[@]}
base_jobs=$(( n > 0 ? (jobs + 1) / 2 : jobs ))
variant_jobs=$(( n > 0 ? (jobs / 2 > n ? jobs / 2 / n : 1) : 1 ))

configure() {  # dir [cmake args]: an existing build keeps its cache (and its tests)
  local dir="$1"
  shift
  [ -f "$dir/build/CMakeCache.txt" ] && return 0
  cmake -S "$dir" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null 2>&1
}

names=()
pids=()
for p in "${patches[@]}"; do
  name=$(basename "$p" .patch)
  dir="$work/$name"
  mkdir -p "$dir"
  tar -C "$root" --exclude=./build -cf - . | tar -C "$dir" -xf -
  if ! (cd "$dir" && patch -p1 -s <"$(cd "$(dirname "$p")" && pwd)/$(basename "$p")") >>"$log" 2>&1; then
    echo "variant $name: patch does not apply, skipped" >>"$log"
    continue
  fi
  names+=("$name")
done

configure "$root" || { echo "bench_variants: base configure failed" >&2; exit 1; }
(cmake --build "$root/build" -j "$base_jobs" --target flashmla-bench >"$work/build-base.log" 2>&1) &
base_pid=$!
for name in "${names[@]}"; do
  (configure "$work/$name" -DFLASHMLA_BUILD_TESTS=OFF && cmake --build "$work/$name/build" -j "$variant_jobs" --target flashmla-bench \
     >"$work/build-$name.log" 2>&1) &
  pids+=($!)
done

status=0
# Wait on each build by its pid: a bare `wait` would also wait on any process
# substitution the caller set up, and never return.
if ! wait "$base_pid"; then
  echo "base: build failed (build-base.log)" >>"$log"
  status=1
fi
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || echo "variant ${names[$i]}: build failed (build-${names[$i]}.log)" >>"$log"
done

run_bench() {  # label binary extra-args...
  local label="$1" binary="$2"
  shift 2
  [ -x "$binary" ] || return 0
  echo "== $label" >>"$log"
  timeout 300 "$binary" --case "$cases" --results "$work/bench-$label.json" "$@" >"$work/bench-$label.log" 2>&1 || true
  grep -E "^[DSP][0-9][0-9] |failed|ceilings" "$work/bench-$label.log" >>"$log"
}
if [ $status -eq 0 ]; then
  run_bench base "$root/build/bench/flashmla-bench"
  grep -Eq "^[DSP][0-9][0-9] .* fail *$" "$work/bench-base.log" && status=1
fi
for name in "${names[@]}"; do run_bench "$name" "$work/$name/build/bench/flashmla-bench" $variant_verify; done

echo "== ptxas spills" >>"$log"
for f in "$work"/build-*.log; do
  frames=$(grep -E '^ +[0-9]+ bytes stack frame' "$f")
  echo "$(basename "$f" .log): $(echo "$frames" | grep -c 'stack frame') kernels compiled, $(echo "$frames" | grep -vc ' 0 bytes spill stores') spill" >>"$log"
done
tar -C "$work" -czf "$out/variants.tgz" $(cd "$work" && ls *.log *.json 2>/dev/null)
rm -rf "$work"
cat "$log"
exit $status
