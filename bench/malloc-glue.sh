#!/bin/sh
# Instructions per malloc/free pair of the malloc library (build/Release/memory-allocator-malloc.so)
# and of glibc, counted by callgrind (immune to the machine's load): bench/native/malloc_pairs.c
# run with 100,000 and 400,000 pairs, the difference divided by 300,000. "main" is the main
# thread on the main (brk) heap; "thread" is one other thread on its own mmap heap.
# The split comes from callgrind_annotate on the same runs: core = Heap::Alloc + Heap::Free
# (inclusive), loop = the benchmark's own loop (Ring, exclusive), glue = the rest (the library's
# entry points, PLT jumps included).
# Under valgrind a thread heap's 64 GiB region cannot be reserved, so the "thread" rows measure a
# thread that the main heap serves with foreign access (shared mode), not a thread heap's fast
# path; and valgrind loads the library into the 64 GiB region of the program break, so the main
# heap's "is it mine" takes the owner-table path instead of one compare (a few more instructions
# than natively).
# Usage: sh bench/malloc-glue.sh [library.so]   (prints the table of bench/results/malloc-glue.txt)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
lib=${1:-$root/build/Release/memory-allocator-malloc.so}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/pairs" "$root/bench/native/malloc_pairs.c" -pthread

count() { # $1 preload (or "") $2 pairs $3 threads -> total Ir
  out="$work/cg.$2.$3"
  if [ -n "$1" ]; then
    LD_PRELOAD=$1 valgrind --tool=callgrind --callgrind-out-file="$out" "$work/pairs" "$2" "$3" 2>/dev/null
  else
    valgrind --tool=callgrind --callgrind-out-file="$out" "$work/pairs" "$2" "$3" 2>/dev/null
  fi
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

loop_share() {
  callgrind_annotate "$work/cg.$1.$2" 2>/dev/null | awk '/:Ring / { gsub(",", "", $1); s += $1 } END { print s + 0 }'
}

core_share() { # instructions inside Heap::Alloc/Heap::Free (inclusive) in the last run of $1 pairs $2 threads
  callgrind_annotate --inclusive=yes "$work/cg.$1.$2" 2>/dev/null |
    awk '/ma::Heap::(Alloc|Free)\(/ { gsub(",", "", $1); s += $1 } END { print s + 0 }'
}

printf '%-8s %-7s %10s %10s %10s %10s\n' allocator thread per-pair core loop glue
for threads in 1 2; do
  name=main; [ "$threads" = 2 ] && name=thread
  # Two threads: one pair count each, so the difference covers 2 x 300,000 pairs.
  n=$threads
  g1=$(count "" 100000 $threads); g2=$(count "" 400000 $threads)
  printf '%-8s %-7s %10.1f\n' glibc $name "$(echo "($g2 - $g1) / (300000 * $n)" | bc -l)"
  m1=$(count "$lib" 100000 $threads); m2=$(count "$lib" 400000 $threads)
  c1=$(core_share 100000 $threads); c2=$(core_share 400000 $threads)
  l1=$(loop_share 100000 $threads); l2=$(loop_share 400000 $threads)
  pair=$(echo "($m2 - $m1) / (300000 * $n)" | bc -l)
  core=$(echo "($c2 - $c1) / (300000 * $n)" | bc -l)
  loop=$(echo "($l2 - $l1) / (300000 * $n)" | bc -l)
  printf '%-8s %-7s %10.1f %10.1f %10.1f %10.1f\n' library $name "$pair" "$core" "$loop" "$(echo "$pair - $core - $loop" | bc -l)"
done
