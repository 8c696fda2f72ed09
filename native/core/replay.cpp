// The replay loop, written once as a template over the allocator so that our heap and libc run
// exactly the same instructions around their calls.
#include "replay.h"

#include <time.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace ma {
namespace {

uint64_t NowNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

class LibcAllocator {
 public:
  void* Alloc(size_t bytes) { return std::malloc(bytes); }
  void* Realloc(void* block, size_t bytes) { return std::realloc(block, bytes); }
  void Free(void* block) { std::free(block); }
};

class HeapAllocator {
 public:
  explicit HeapAllocator(Heap* heap) : heap_(heap) {}
  void* Alloc(size_t bytes) {
    uintptr_t address = 0;
    return heap_->Alloc(bytes, 0, &address) == Status::kOk ? reinterpret_cast<void*>(address) : nullptr;
  }
  void* Realloc(void* block, size_t bytes) {
    uintptr_t address = 0;
    return heap_->Realloc(reinterpret_cast<uintptr_t>(block), bytes, &address) == Status::kOk
               ? reinterpret_cast<void*>(address)
               : nullptr;
  }
  void Free(void* block) { heap_->Free(reinterpret_cast<uintptr_t>(block)); }

 private:
  Heap* heap_;
};

// One more than the largest id the ops use (ids outside [0, num_ids) are left to ValidateTrace).
// The per-id tables are sized by this, never by the header's num_ids, which a hostile trace sets
// to 2**31 while using a handful of ids.
size_t IdsUsed(const TraceView& trace) {
  size_t used = 0;
  for (size_t op = 0; op < trace.ops; ++op) {
    const int32_t id = trace.ids[op];
    if (id >= 0 && static_cast<uint32_t>(id) < trace.num_ids && static_cast<size_t>(id) >= used) used = static_cast<size_t>(id) + 1;
  }
  return used;
}

// A zero-filled per-id table. calloc rather than std::vector: the core has no exceptions, so a
// table that cannot be had must fail with kOutOfMemory instead of aborting the process, and
// calloc's fresh pages are only touched where the trace's ids fall, even when those are sparse.
template <typename T>
class IdTable {
 public:
  explicit IdTable(size_t length) : items_(static_cast<T*>(std::calloc(length == 0 ? 1 : length, sizeof(T)))) {}
  ~IdTable() { std::free(items_); }
  IdTable(const IdTable&) = delete;
  IdTable& operator=(const IdTable&) = delete;
  bool ok() const { return items_ != nullptr; }
  T& operator[](size_t id) { return items_[id]; }

 private:
  T* items_;
};

// C lets malloc(0) and realloc(p, 0) return NULL, and glibc's realloc(p, 0) frees p: replayed
// as is, the id would look failed (or dead, and be freed twice). So every allocator is asked for
// at least one byte; the id stays live with a block of its own, as the trace says. Our heap gives
// 0 and 1 bytes the same minimum chunk, so its figures do not change.
size_t RequestBytes(double size) { return size < 1 ? 1 : static_cast<size_t>(size); }

// Runs the ops; returns the index of the op that failed to allocate, or trace.ops. Never inlined,
// so that profilers can count exactly the timed loop (callgrind --toggle-collect='*RunOps*').
template <typename Allocator>
__attribute__((noinline)) size_t RunOps(Allocator& allocator, const TraceView& trace, bool touch, IdTable<void*>& blocks, IdTable<size_t>& lengths) {
  for (size_t op = 0; op < trace.ops; ++op) {
    const int32_t id = trace.ids[op];
    switch (static_cast<TraceOp>(trace.kinds[op])) {
      case TraceOp::kAlloc: {
        const size_t bytes = static_cast<size_t>(trace.sizes[op]);
        void* block = allocator.Alloc(RequestBytes(trace.sizes[op]));
        if (block == nullptr) return op;
        if (touch) std::memset(block, id & 0xFF, bytes);
        blocks[id] = block;
        lengths[id] = bytes;
        break;
      }
      case TraceOp::kFree:
        if (id >= 0 && blocks[id] != nullptr) {
          allocator.Free(blocks[id]);
          blocks[id] = nullptr;
        }
        break;
      case TraceOp::kRealloc: {
        const size_t bytes = static_cast<size_t>(trace.sizes[op]);
        const size_t request = RequestBytes(trace.sizes[op]);
        void* block = blocks[id] == nullptr ? allocator.Alloc(request) : allocator.Realloc(blocks[id], request);
        if (block == nullptr) return op;
        const size_t kept = blocks[id] == nullptr ? 0 : lengths[id];
        if (touch && bytes > kept) std::memset(static_cast<char*>(block) + kept, id & 0xFF, bytes - kept);
        blocks[id] = block;
        lengths[id] = bytes;
        break;
      }
    }
  }
  return trace.ops;
}

// `blocks` is all null on entry and again on return.
template <typename Allocator>
size_t TimedRun(Allocator& allocator, const TraceView& trace, bool touch, IdTable<void*>& blocks, IdTable<size_t>& lengths,
                double* ns_per_op) {
  const uint64_t start = NowNs();
  const size_t stopped_at = RunOps(allocator, trace, touch, blocks, lengths);
  const uint64_t elapsed = NowNs() - start;
  *ns_per_op = trace.ops == 0 ? 0 : static_cast<double>(elapsed) / static_cast<double>(trace.ops);
  // Through the trace's ids, not the whole table: a sparse table is never read end to end.
  for (size_t op = 0; op < trace.ops; ++op) {
    const int32_t id = trace.ids[op];
    if (id >= 0 && blocks[id] != nullptr) {
      allocator.Free(blocks[id]);
      blocks[id] = nullptr;
    }
  }
  return stopped_at;
}

}  // namespace

Status ValidateTrace(const TraceView& trace, size_t* bad_op, uint64_t* peak_live_bytes) {
  IdTable<double> live(IdsUsed(trace));  // current size + 1 of each live id, 0 when dead
  if (!live.ok()) {
    *bad_op = trace.ops;
    return Status::kOutOfMemory;
  }
  double live_bytes = 0, peak = 0;
  for (size_t op = 0; op < trace.ops; ++op) {
    *bad_op = op;
    const int32_t id = trace.ids[op];
    const uint8_t kind = trace.kinds[op];
    const double size = trace.sizes[op];
    if (kind > 2) return Status::kTraceFormat;
    if (kind == static_cast<uint8_t>(TraceOp::kFree) && id == -1) continue;
    if (id < 0 || static_cast<uint32_t>(id) >= trace.num_ids) return Status::kTraceFormat;
    if (kind != static_cast<uint8_t>(TraceOp::kFree) && !(size >= 0 && size <= 9007199254740991.0 && std::floor(size) == size)) {
      return Status::kTraceFormat;
    }
    switch (static_cast<TraceOp>(kind)) {
      case TraceOp::kAlloc:
        if (live[id] > 0) return Status::kTraceFormat;
        live[id] = size + 1;
        live_bytes += size;
        break;
      case TraceOp::kFree:
        if (live[id] == 0) return Status::kTraceFormat;
        live_bytes -= live[id] - 1;
        live[id] = 0;
        break;
      case TraceOp::kRealloc:
        live_bytes += size - (live[id] == 0 ? 0 : live[id] - 1);
        live[id] = size + 1;
        break;
    }
    if (live_bytes > peak) peak = live_bytes;
  }
  *peak_live_bytes = static_cast<uint64_t>(peak);
  return Status::kOk;
}

Status Replay(const TraceView& trace, bool use_libc, const HeapOptions& heap_options, bool touch, uint32_t repeat,
              std::vector<double>* run_ns, ReplayResult* result, size_t* failed_op) {
  *result = ReplayResult{};
  run_ns->clear();
  std::unique_ptr<Heap> heap;
  if (!use_libc) {
    Heap* created = nullptr;
    const Status status = Heap::Create(heap_options, &created);
    if (status != Status::kOk) return status;
    heap.reset(created);
  }
  IdTable<void*> blocks(IdsUsed(trace));
  IdTable<size_t> lengths(IdsUsed(trace));
  if (!blocks.ok() || !lengths.ok()) {
    *failed_op = trace.ops;
    return Status::kOutOfMemory;
  }
  // Run 0 is untimed: it warms the allocator up, so that timed runs compare warm with warm. The
  // process's malloc arena is already warm from Node's own use, while a fresh heap would pay its
  // first page faults and table growth inside the timing. Its heap statistics are the ones
  // reported: they describe the trace on a fresh heap.
  for (uint32_t run = 0; run <= repeat; ++run) {
    double ns_per_op = 0;
    size_t stopped_at;
    if (use_libc) {
      LibcAllocator allocator;
      stopped_at = TimedRun(allocator, trace, touch, blocks, lengths, &ns_per_op);
    } else {
      HeapAllocator allocator(heap.get());
      stopped_at = TimedRun(allocator, trace, touch, blocks, lengths, &ns_per_op);
      if (run == 0) {
        const HeapStats stats = heap->Stats();
        result->has_heap_stats = true;
        result->peak_heap_bytes = stats.peak_heap_bytes;
        result->metadata_bytes = stats.peak_metadata_bytes;  // the tables shrink after their peak
        result->brk_calls = stats.brk_calls;
        result->search_steps = stats.search_steps;
      }
      heap->FreeAll();
    }
    if (stopped_at != trace.ops) {
      *failed_op = stopped_at;
      return Status::kOutOfMemory;
    }
    if (run > 0) run_ns->push_back(ns_per_op);
  }
  return Status::kOk;
}

}  // namespace ma
