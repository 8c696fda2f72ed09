// Trace replay: a whole malloc-lab trace run inside native code, against a fresh Heap or against
// the process's own malloc/free/realloc, by the same loop, so that their times compare.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "heap.h"
#include "status.h"

namespace ma {

enum class TraceOp : uint8_t { kAlloc = 0, kFree = 1, kRealloc = 2 };

struct TraceView {
  const uint8_t* kinds;   // TraceOp per op
  const int32_t* ids;     // -1 only for free(NULL)
  const double* sizes;    // bytes; ignored for frees
  size_t ops;
  uint32_t num_ids;
};

// What a replay of our heap measured, besides the time of each run (Replay's run_ns) and the
// trace's peak live payload (ValidateTrace's, by the malloc-lab rule: requested bytes).
struct ReplayResult {
  bool has_heap_stats;        // false for libc: the rest is only known for our heap
  uint64_t peak_heap_bytes;
  uint64_t metadata_bytes;    // out-of-band tables at their peak in the run (HeapStats::peak_metadata_bytes)
  uint64_t brk_calls;
  uint64_t search_steps;
};

// Checks ids, kinds and sizes, and that every free and realloc names a live id or -1.
// On failure *bad_op is the 0-based index of the first bad op. Per-id tables are sized by the
// largest id the ops use, not by num_ids; kOutOfMemory (with *bad_op == ops) when even that
// table cannot be allocated.
Status ValidateTrace(const TraceView& trace, size_t* bad_op, uint64_t* peak_live_bytes);

// One untimed warm-up run, then `repeat` timed runs against one allocator; run_ns gets each timed
// run's ns per op. Our heap is created once (from `heap_options`) and emptied between runs,
// keeping its memory as a long-running allocator keeps its arena, so timed runs compare a warm
// heap with libc's warm arena. *result's heap figures are the warm-up run's, on a fresh heap.
// `touch` writes every allocated byte once. Leftover chunks are freed after the clock stops.
// *failed_op names the op that could not be satisfied (kOutOfMemory), or is trace.ops when the
// replay's own per-id tables could not be allocated. A request of 0 bytes is made as 1 byte for
// every allocator (C's malloc(0) and realloc(p, 0) may return NULL; glibc's realloc(p, 0) frees p).
Status Replay(const TraceView& trace, bool use_libc, const HeapOptions& heap_options, bool touch, uint32_t repeat,
              std::vector<double>* run_ns, ReplayResult* result, size_t* failed_op);

}  // namespace ma
