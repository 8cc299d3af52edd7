#!/usr/bin/env bash
# Puts FlashMLA's kernel sources (its csrc/, without the CUTLASS submodule:
# ours is used) into .deps/flashmla, ignored by git, so that a GPU machine with
# no network can build `flashmla-bench --against-flashmla`
# (scripts/compare_flashmla.sh). Nothing of FlashMLA is committed here.
#
#   scripts/vendor_flashmla.sh <FlashMLA git repository or checkout> [commit]
#
# With a git repository (a clone, or a bare mirror) the commit is exported
# (default 9241ae3, the commit FlashMLA's H100 anchors were timed at); a plain
# directory holding csrc/params.h is copied as it is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src="${1:?usage: scripts/vendor_flashmla.sh <FlashMLA git repository or checkout> [commit]}"
commit="${2:-9241ae3}"
dest="$root/.deps/flashmla"
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1 && git -C "$src" cat-file -e "$commit^{commit}" 2>/dev/null; then
  git -C "$src" archive "$commit" csrc | tar -x -C "$dest.tmp"
  echo "$commit" >"$dest.tmp/COMMIT"
elif [ -f "$src/csrc/params.h" ]; then
  cp -r "$src/csrc" "$dest.tmp/"
  echo "copied from $src" >"$dest.tmp/COMMIT"
else
  echo "vendor_flashmla: $src is neither a git repository with commit $commit nor a checkout with csrc/params.h" >&2
  exit 1
fi
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "vendor_flashmla: FlashMLA $(cat "$dest/COMMIT") in $dest ($(du -sh "$dest" | cut -f1))"
