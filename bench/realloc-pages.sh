#!/bin/sh
# Realloc's page moves, timed: large buffers growing by half (64 KiB -> 64 MiB), one move of each
# size with the reuse of its old range, and the traces with the most realloc bytes, each with page
# moves from several thresholds, never, and glibc. Writes bench/results/realloc-pages.txt.
#   sh bench/realloc-pages.sh [runs]
set -eu
cd "$(dirname "$0")/.."
runs=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
g++ -O2 -std=c++17 -I native/core native/core/*.cpp bench/native/realloc_pages.cpp -o "$work/realloc_pages"
out=bench/results/realloc-pages.txt
{
  echo "# sh bench/realloc-pages.sh $runs   ($(date -u +%Y-%m-%d), $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$work/realloc_pages" growth "$runs"
  "$work/realloc_pages" move $((runs * 4 + 1))
  for trace in /work/shared/traces/programs/python3-json.rep.gz /work/shared/traces/programs/sqlite3-json.rep.gz bench/traces/git-log-patch.rep.gz; do
    [ -f "$trace" ] || continue
    gzip -dc "$trace" >"$work/trace.rep"
    "$work/realloc_pages" replay "$work/trace.rep" "$runs" | sed "s|$work/trace.rep|$(basename "$trace")|"
  done
} | tee "$out"
