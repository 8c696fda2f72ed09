// A heap on one memory source: chunks carved from segments of the source's memory. The heap's
// own memory holds user bytes only; its bookkeeping lives beside it: the BoundaryMap (two bits
// per granule: where chunks start, which are free) and the FreeTable (a record per free chunk,
// the bins best fit searches, a page map from address to record).
//
// Layout of a segment (positions in granules from base_address_):
//
//   base   start                                   top           end
//   | pad  | chunk | chunk | free | chunk | ...    | wilderness  |
//
// Chunks tile [start, top) without gaps. Only the last segment has a wilderness; when other code
// moves the break between two of our moves, the old wilderness becomes a free chunk and a new
// segment starts above the foreign memory. Chunks never merge across segments.
//
// The code is split by concept: heap.cpp (creation, addresses, statistics), alloc.cpp (fits,
// splits, the wilderness), free.cpp (release, merging, deferred merging, quarantine),
// realloc.cpp, segment.cpp (growing, trimming, emptying) and check.cpp (Check, Chunks).
//
// Deferred merging (best-fit only, coalescing on): a freed chunk of fewer than
// kDeferredSizes granules is kept unmerged in the front end (front_end.h: per-size stacks, no
// record), so that the next request of its size pops it back without a merge and a re-split (as
// glibc's tcache does). Best fit consults the front end before the bins, and weighs its smallest
// fitting size against theirs, so its placement rule holds. At most kDeferredPerSize chunks of a
// size and kDeferredTotal in all are deferred; every deferred chunk is merged before the heap
// grows or fails for lack of a fitting chunk, and on Trim() and FreeAll(). Only a deferred chunk
// may border another free chunk or the wilderness.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "boundary_map.h"
#include "fit.h"
#include "free_table.h"
#include "front_end.h"
#include "heap_limits.h"
#include "memory_source.h"
#include "metadata_array.h"
#include "status.h"

namespace ma {

constexpr uint64_t kNeverTrim = UINT64_MAX;
constexpr uint64_t kMaxAlign = uint64_t{1} << 20;

// Deferred merging's bounds (see above): sizes below this many granules are deferred...
constexpr uint32_t kDeferredSizes = FrontEnd::kSizes;
// ...at most this many chunks of one size, and this many in all.
// Programs free in bursts of one size (a list, a string table), so the per-size bound is high;
// the total bounds the records deferred chunks cost. Measured on the real-program traces
// (README, "Deferred merging"): 32 and 512 merged half of the Perl trace's frees at once; 4096 and
// 16384 ran it in 206 instructions per request instead of 264 but held up to 28% of a small
// heap's live bytes in records.
constexpr uint32_t kDeferredPerSize = 1024;
constexpr uint32_t kDeferredTotal = 4096;
// The total is also bounded by the heap's size: one deferred chunk per this many heap bytes, and
// at least kDeferredLeast. Each deferred chunk costs an 8-byte entry and the record kept for it
// (CanDefer), so 4096 of them were 112 KiB of tables on a 400 KiB heap. Measured (instructions
// per request, callgrind, 4096 always -> this bound; metadata beyond 64 KiB as a share of peak
// live): cmake-help 152 -> 155, 7.6% -> 4.4%; perl-modules 307 -> 326, 11.9% -> 5.0%;
// python3-ast 339 -> ~350, 8.3% -> 4.6%. A least of 64 instead cost cmake-help 256 (it frees
// bursts of over 1,000 small chunks and takes them back).
#ifndef MA_HEAP_BYTES_PER_DEFERRED
#define MA_HEAP_BYTES_PER_DEFERRED 2048
#endif
constexpr uint64_t kHeapBytesPerDeferred = MA_HEAP_BYTES_PER_DEFERRED;
#ifndef MA_DEFERRED_LEAST
#define MA_DEFERRED_LEAST 1024
#endif
constexpr uint32_t kDeferredLeast = MA_DEFERRED_LEAST;
// ...and only chunks below this many bytes, whatever the granule.
constexpr uint32_t kDeferredBytes = 1024;
// A merge or a realloc that meets a deferred chunk takes it only when it is among the this many
// most recent of its size (the front end finds chunks by size, not by address); otherwise it stays
// deferred until the front end settles. Walking whole stacks cost python3-json 12% of its
// instructions in FrontEnd::Remove.
constexpr uint32_t kDeferredNear = 16;

struct HeapOptions {
  SourceKind source = SourceKind::kBrk;
  Strategy strategy = Strategy::kBestFit;
  uint32_t alignment = 16;              // the granule: a power of two, 8..4096
  uint64_t growth = 65536;              // least bytes per move of the source's end
  bool split = true;
  bool coalesce = true;
  uint64_t trim_threshold = 131072;     // kNeverTrim: only Trim() and Reset() give memory back.
                                        // Adapts upward (to 32 MiB) when the heap grows right
                                        // back after an automatic trim: past twice what it gave.
  uint64_t max_heap_bytes = 0;          // 0: no cap but the source's
  uint64_t segregate_small = 64;        // requests up to this many bytes take the high end of
                                        // the free space they split; 0: every request the low end
  uint64_t move_pages_from = 131072;    // a realloc that moves a chunk of this many bytes or
                                        // more moves its pages where the source can
                                        // (realloc.cpp); 0: always copies bytes
};

struct HeapStats {
  uint64_t heap_start, heap_end, heap_bytes, peak_heap_bytes;
  uint64_t live_bytes, live_chunks, peak_live_bytes;
  uint64_t free_bytes, free_chunks, largest_free_chunk, top_bytes;
  uint64_t deferred_chunks;
  uint64_t metadata_bytes;
  uint64_t peak_metadata_bytes;  // the most metadata_bytes has been: the tables shrink after a peak
  uint64_t allocs, frees, reallocs;
  uint64_t brk_calls, bytes_released;
  uint64_t segments;
  uint64_t search_steps;
};

struct ChunkInfo {
  uintptr_t address;
  uint64_t size;
  bool live;
  bool quarantined;  // live, but held back until a finalizer releases it (see Quarantine)
  bool deferred;     // free, and not merged yet on purpose
};

class Heap {
 public:
  // Checks the options (kInvalidOption, kBrkMainThreadOnly off the main thread) and creates the
  // source. No memory is taken until the first allocation.
  static Status Create(const HeapOptions& options, Heap** out);
  ~Heap();  // gives every segment back that can be given back

  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  // `align` 0 means the heap's alignment. Size 0 gets a minimum chunk, as malloc does.
  Status Alloc(uint64_t bytes, uint64_t align, uintptr_t* address);
  // The same, with the chunk's usable bytes zeroed (a reused chunk holds its last owner's bytes).
  Status AllocZeroed(uint64_t bytes, uint64_t align, uintptr_t* address);
  Status Free(uintptr_t address);
  // Shrinks in place, grows into a following free chunk or the wilderness, else moves.
  Status Realloc(uintptr_t address, uint64_t bytes, uintptr_t* new_address);
  // Always moves: copies into a new chunk and quarantines the old one, which something outside
  // the heap (an escaped view) may still reach.
  Status MoveAndQuarantine(uintptr_t address, uint64_t bytes, uintptr_t* new_address);
  Status UsableSize(uintptr_t address, uint64_t* bytes) const;

  // A quarantined chunk is live but no longer the user's: Free and Realloc refuse it
  // (kDoubleFree) and FreeAll keeps it, until ReleaseQuarantined frees it.
  Status Quarantine(uintptr_t address);
  Status ReleaseQuarantined(uintptr_t address);

  // Frees every chunk but quarantined ones and keeps the memory as wilderness (replay empties its
  // heap between runs this way).
  void FreeAll();
  // FreeAll, then Trim.
  void Reset();
  uint64_t Trim();  // bytes given back now

  HeapStats Stats() const;
  void Chunks(std::vector<ChunkInfo>* out) const;
  // The memory [*low, *high) of the segment whose chunks hold `address`: its chunks, and the
  // wilderness too for the last segment. false when no segment holds it. (The addon's shared
  // views span one segment.)
  bool SegmentBounds(uintptr_t address, uintptr_t* low, uintptr_t* high) const;
  // True when every invariant holds; otherwise names the first broken one in *problem.
  bool Check(std::string* problem) const;

  const HeapOptions& options() const { return options_; }
  uint64_t bytes_released() const { return bytes_released_; }  // Stats().bytes_released, cheaply
  uint32_t granule() const { return options_.alignment; }

 private:
  friend class HeapInspector;  // test/native: breaks invariants on purpose to test Check

  struct Segment {
    uintptr_t base;            // the source's end when the segment opened; released back to it
    Granules start;            // first chunk; start >= position of base
    Granules top;              // start <= top <= end; [top, end) is wilderness (last segment only)
    Granules end;
  };

  explicit Heap(const HeapOptions& options, MemorySource* source);

  // ---- heap.cpp: addresses, sizes, accounting
  uintptr_t AddressOf(Granules pos) const { return base_address_ + (static_cast<uintptr_t>(pos) << granule_shift_); }
  bool PositionOf(uintptr_t address, Granules* pos) const;
  Status ToGranules(uint64_t bytes, Granules* granules) const;
  // The segment whose chunks [start, top) hold `pos`, or nullptr.
  Segment* SegmentOf(Granules pos);
  const Segment* SegmentOf(Granules pos) const { return const_cast<Heap*>(this)->SegmentOf(pos); }
  // The size of the free chunk starting at `pos` in `segment`: it runs to the next chunk start or
  // the segment's top (free records keep no size: free_table.h).
  Granules FreeSizeAt(const Segment& segment, Granules pos) const { return bounds_.EndOf(pos, segment.top) - pos; }
  // The same, finding the segment; 0 outside every segment.
  Granules SizeAt(Granules pos) const {
    const Segment* segment = SegmentOf(pos);
    return segment == nullptr ? 0 : FreeSizeAt(*segment, pos);
  }
  // SizeAt for the free table's Check.
  FreeSizes Sizes() const {
    return FreeSizes{this, [](const void* heap, Granules pos) { return static_cast<const Heap*>(heap)->SizeAt(pos); }};
  }
  bool IsLast(const Segment& segment) const { return &segment == &segments_[segments_.size() - 1]; }
  // kOk with the chunk's segment and size when `address` starts a live chunk that is the user's.
  // The hot path of every free: one subtraction, one segment, one word of bits.
  Status FindLive(uintptr_t address, Segment** segment, Granules* pos, Granules* size) {
    if (segments_.empty()) return Status::kInvalidPointer;
    const uintptr_t offset = address - base_address_;  // wraps below the base: then far too large
    if ((offset & (granule() - 1)) != 0) return Status::kInvalidPointer;
    const uint64_t position = offset >> granule_shift_;
    Segment* holder = &segments_.back();
    if (position - holder->start >= static_cast<uint64_t>(holder->top - holder->start)) {
      // Below the last segment (or not in the heap at all).
      if (position >= holder->start) return Status::kInvalidPointer;
      holder = SegmentOf(static_cast<Granules>(position));
      if (holder == nullptr) return Status::kInvalidPointer;
    }
    const Granules start = static_cast<Granules>(position);
    if (!bounds_.IsStart(start)) return Status::kInvalidPointer;
    // A free chunk, or a quarantined one, was freed by its owner already.
    if (bounds_.IsFree(start) || (!quarantined_.empty() && IsQuarantined(start))) return Status::kDoubleFree;
    *segment = holder;
    *pos = start;
    *size = bounds_.EndOf(start, holder->top) - start;
    return Status::kOk;
  }
  bool IsQuarantined(Granules pos) const;
  Granules AlignmentPad(Granules pos, uint64_t align) const;
  void NoteLive(int64_t granules) {
    live_granules_ += static_cast<uint64_t>(granules);
    if (live_granules_ > peak_live_granules_) peak_live_granules_ = live_granules_;
  }
  void NoteHeapBytes(int64_t bytes);
  Granules LargestBumpFree() const;  // a walk: stats() only

  // ---- alloc.cpp
  // Alloc's every case but the inline ones (bump's pointer, best fit's exact size): out of line.
  __attribute__((noinline)) Status AllocSlow(uint64_t bytes, uint64_t align, uintptr_t* address);
  // Best fit's exact hit in a bin (the front end had none): out of line too, since unlinking a
  // record (its page chain) needs registers the other inline cases do not.
  __attribute__((noinline)) Status AllocFromBin(Granules size, uintptr_t* address);
  // The counters of an allocation that Alloc's inline cases made, in one place.
  Status Allocated(Granules pos, Granules size, uintptr_t* address) {
    NoteLive(size);
    ++live_chunks_;
    ++allocs_;
    *address = AddressOf(pos);
    return Status::kOk;
  }
  // `grows`: the chunk is a realloc's new home; it takes the low end of the free space it splits,
  // never the high end a small request takes, so that it can grow again in place.
  Status AllocGranules(Granules size, uint64_t align, bool grows, Granules* pos);
  // The front end's smallest size that fits `size` when it is no larger than `recorded`, the size
  // of the chunk the table found (ties go to the front end: its chunk was freed last; 0: none),
  // else 0.
  Granules DeferredFit(Granules size, Granules recorded, uint64_t* steps) const {
    if (front_.empty()) return 0;
    ++*steps;
    const Granules fit = front_.SmallestAtLeast(size);
    return fit != 0 && (recorded == 0 || fit <= recorded) ? fit : 0;
  }
  // Takes `size` granules from the free chunk of `record`, of `chunk_size` granules. `deferred`:
  // the chunk came from the front end, so the pieces it leaves may border free chunks and are
  // merged.
  Granules TakeFreeChunk(uint32_t record, Granules chunk_size, Granules size, uint64_t align, bool grows, bool deferred);
  // Takes an unaligned request from the deferred chunk [at, at + fit), popped off the front end;
  // what is left merges with its free neighbours (a deferred chunk may border them; the remainder
  // must not). Needs one record reserved.
  Granules TakeDeferredChunk(Granules at, Granules fit, Granules size, bool grows);
  Status TakeFromTop(Granules size, uint64_t align, bool grows, Granules* pos);
  bool TopHasRoom(Granules size, uint64_t align) const {
    if (segments_.empty()) return false;
    const Segment& last = segments_.back();
    return last.end - last.top >= AlignmentPad(last.top, align) + size;
  }
  // Segregation splits free space, so it needs splitting on; bump never reuses what it splits.
  bool IsSmall(Granules size, uint64_t align) const { return size <= small_granules_ && align == 0; }
  // The part of the wilderness that a small request segregates in: one growth step (at least
  // kSegregationRoom), what a fresh heap's wilderness holds after it grew for the request.
  Granules SegregationWindow(const Segment& last) const {
    const uint64_t step = std::max(options_.growth, kSegregationRoom) >> granule_shift_;
    return static_cast<Granules>(std::min<uint64_t>(last.end - last.top, step));
  }

  // ---- realloc.cpp
  Status Shrink(Segment& segment, Granules pos, Granules old, Granules size);
  // True when the chunk grew in place to `size` (*status kOk) or could have but a record could not
  // be reserved (*status kOutOfMemory); false when it must move. *segment follows a segment table
  // that growth moved.
  bool GrowInPlace(Segment** segment, Granules pos, Granules old, Granules size, Status* status);
  Status MoveTo(Granules pos, Granules old, Granules size, Granules* moved_to);
  // MoveTo by moving the chunk's whole pages (mmap sources): true with *status when it moved the
  // chunk (pieces the source could not move are copied) or failed; false when MoveTo must copy
  // instead: nothing changed, or the kernel lost the destination's pages and that chunk is
  // quarantined for good.
  bool MovePagesTo(Granules pos, Granules old, Granules size, Granules* moved_to, Status* status);

  // ---- free.cpp
  // Frees the live chunk [pos, pos + size) that FindLive found: every free goes this way.
  Status FreeLive(Segment& segment, Granules pos, Granules size);
  // The one rule for a release: whether it is deferred, and room for what it needs (a deferral's
  // entry, or a record for a chunk that may stay free). False, nothing changed, without memory.
  bool ReserveRelease(Granules size, bool* defer) {
    *defer = CanDefer(size);
    return *defer || bump_ || ReserveRecords(1);
  }
  // Room for `inserts` more records, beyond one kept for every deferred chunk: settling the front
  // end (before growth or failure) then never grows the free table, so a call that fails has not.
  bool ReserveRecords(uint32_t inserts) { return free_.Reserve(inserts, front_.count()); }
  // The counters of a freed chunk, in one place.
  void NoteFreed(Granules size) {
    MA_ASSERT(live_chunks_ > 0 && live_granules_ >= size);
    --live_chunks_;
    ++frees_;
    live_granules_ -= size;
  }
  // Releases the chunk [pos, pos + size), no longer counted live, with ReserveRelease's room:
  // deferred, or merged with its free neighbours.
  void ReleaseChunk(Segment& segment, Granules pos, Granules size, bool defer);
  // ReleaseChunk's cases that merge, roll bump's top back or trim: out of line.
  __attribute__((noinline)) void ReleaseMerging(Segment& segment, Granules pos, Granules size);
  // Bump's release: no merging but the roll-back of its top (the caller decides whether to trim).
  void ReleaseBump(Segment& segment, Granules pos, Granules size);
  // Whether bump's pointer rolls back over the chunk: the last of the last segment.
  bool IsBumpTop(const Segment& segment, Granules pos, Granules size) const { return pos + size == segment.top && IsLast(segment); }
  // Bump never reuses a free chunk, so it never merges one either: the bits and two counters are
  // all it keeps.
  void MarkBumpFree(Granules pos, Granules size) {
    bounds_.SetFree(pos);
    ++bump_free_chunks_;
    bump_free_granules_ += size;
  }
  // Makes the chunk start [pos, pos + size) (live, or free with its record already dropped) one
  // free chunk merged with its free neighbours, or part of the wilderness. Needs one record
  // reserved.
  void Merge(Segment& segment, Granules pos, Granules size);
  // A free chunk now starts at `pos` (its bits are set): recorded, or for bump only counted.
  void AddFree(Granules pos, Granules size) {
    if (!bump_) {
      free_.Insert(pos, size);
      return;
    }
    ++bump_free_chunks_;
    bump_free_granules_ += size;
  }
  // Forgets the free chunk at `pos` (its bits stay as they are) and sets *size: a recorded one, or
  // a deferred one among the kDeferredNear most recent of its size; false (nothing changed) for
  // another deferred chunk, which stays deferred (merged when the front end settles).
  bool DropFree(Granules pos, Granules limit, Granules* size);
  // Whether DropFree would take the free chunk at `pos`.
  bool CanDropFree(Granules pos, Granules limit) const;
  // Deferral's bounds (see the file comment), and room for the entry.
  bool CanDefer(Granules size) {
    return size < defer_below_ && front_.count_of(size) < kDeferredPerSize && front_.count() < deferred_total_ &&
           front_.Reserve() && free_.Reserve(0, front_.count() + 1);
  }
  // Merges every deferred chunk with its free neighbours (false: no memory for the records).
  bool SettleDeferred();
  // Gives back table memory the heap no longer needs: the bits and page map above the heap's end,
  // and, when the free records fill less than a quarter of their table (or `all`: Trim), the
  // vacant room of the free table. Called between operations only: it moves records.
  void ShrinkMetadata(bool all);
  // At the end of a free that merged (FreeLive: no caller holds a record index then): shrinks the
  // tables once most of the free table is vacant. Not when an automatic trim merely lowered the
  // heap's end: a heap hovering at its trim threshold gave its bits back and mapped them again on
  // every cycle. With both conditions best-fit's replay ran 5% slower than before the tables
  // shrank (malloc-lab and program traces, `bench --allocators best-fit,libc --json`, interleaved,
  // 4 runs); with neither, as fast. The bits above the end go back with this shrink or on Trim().
  void MaybeShrinkMetadata() {
    if (free_.WantsShrink(front_.count())) ShrinkMetadata(false);
  }
  // The bytes of every table, from the tables themselves (Check compares it with gauge_).
  uint64_t TableBytes() const {
    return bounds_.metadata_bytes() + free_.metadata_bytes() + front_.metadata_bytes() + segments_.bytes() + quarantined_.bytes();
  }

  // ---- segment.cpp
  Status GrowTop(Granules needed);
  // Covers positions [0, limit) in the boundary map and page map.
  bool CoverPositions(Granules limit) { return bounds_.Cover(limit) && free_.Cover(limit); }
  void AbsorbFreeTailIntoTop(Segment* segment);
  void MaybeTrim();
  uint64_t ReleaseTop(Granules keep);

  HeapOptions options_;
  MemorySource* source_;
  uint32_t granule_shift_;
  bool bump_;                      // strategy bump: free chunks are never reused, so they carry
                                   // no records, only bits and the two counters below
  uint64_t bump_free_chunks_ = 0, bump_free_granules_ = 0;
  uint32_t deferred_total_ = kDeferredLeast;  // the total bound for the heap's size (NoteHeapBytes)
  Granules defer_below_;           // chunks below this many granules are deferred; 0 when the
                                   // heap does not defer (only best-fit with coalescing does)
  uintptr_t base_address_ = 0;     // position 0; set when the first segment opens
  MetadataGauge gauge_;            // the mapped bytes of the tables below (declared first: they
                                   // report to it until they are destroyed)
  MetadataArray<Segment> segments_;  // in address order
  BoundaryMap bounds_;
  FreeTable free_;
  FrontEnd front_;                 // the deferred chunks (best fit only)
  MetadataArray<Granules> quarantined_;  // starts of quarantined chunks, unordered (rare)
  Granules rover_ = 0;             // next fit's roving position
  uintptr_t placement_phase_ = 0;  // an aligned placement puts its chunk this many bytes past the
                                   // boundary (AlignmentPad); nonzero only inside MovePagesTo
  uint64_t trim_threshold_;        // options_.trim_threshold, raised after each trim-then-grow
  Granules small_granules_;        // options_.segregate_small in granules; 0 without split or for bump
  uint64_t trimmed_since_growth_ = 0;  // given back by automatic trims since the heap last grew

  uint64_t heap_bytes_ = 0, peak_heap_bytes_ = 0;
  uint64_t live_granules_ = 0, live_chunks_ = 0, peak_live_granules_ = 0;
  uint64_t allocs_ = 0, frees_ = 0, reallocs_ = 0;
  uint64_t brk_calls_ = 0, bytes_released_ = 0, search_steps_ = 0;
};

}  // namespace ma
