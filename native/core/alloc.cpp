// Allocation: the strategy picks a free chunk (fit.cpp), the heap splits it, or carves the
// wilderness when nothing fits. The hot path is Alloc -> AllocGranules -> TakeFreeChunk.
#include <algorithm>
#include <cstring>

#include "heap.h"
#include "heap_limits.h"

namespace ma {
namespace {

// Requests up to this many bytes take Alloc's inline path: their granule count cannot overflow
// (ToGranules' kOutOfMemory is for larger ones), whatever the granule.
constexpr uint64_t kFastBytes = uint64_t{1} << 30;
static_assert((kFastBytes >> 3) <= kMaxChunkGranules, "a fast request's size must fit a chunk");

}  // namespace

Status Heap::Alloc(uint64_t bytes, uint64_t align, uintptr_t* address) {
  // The common cases, each a handful of loads and stores: bump's pointer moves, or best fit takes a
  // free chunk of exactly this size whole (the front end's most recently freed one, often still in
  // cache, else the head of its bin; an exact size is a best fit). Everything else (errors, size 0,
  // alignment, a search, a split, growth) is AllocSlow's. No call sits in the middle of a case, only
  // at its end: a value live across a call made the compiler save six registers on every request
  // (~15 instructions of prologue and epilogue; callgrind, sqlite3-json under bump).
  if (align <= granule() && (align & (align - 1)) == 0 && bytes <= kFastBytes) {
    const Granules size = bytes == 0 ? 1 : static_cast<Granules>(((bytes - 1) >> granule_shift_) + 1);
    if (bump_) {
      if (TopHasRoom(size, 0)) {
        Segment& last = segments_.back();
        const Granules pos = last.top;
        // A start in a word that has one already needs no summary bit (BoundaryMap::AddStart's
        // call); the first start of a word, one request in ~20, takes the slow path.
        BoundaryMap::Word& word = bounds_.WordOf(pos);
        if (word.starts != 0) {
          MA_ASSERT(!bounds_.IsStart(pos) && pos < bounds_.covered());
          word.starts |= uint64_t{1} << (pos & 63);
          last.top += size;
          return Allocated(pos, size, address);
        }
      }
    } else if (options_.strategy == Strategy::kBestFit) {
      if (size < kDeferredSizes && front_.Has(size)) {
        const Granules pos = front_.Pop(size);
        bounds_.SetLive(pos);
        ++search_steps_;
        return Allocated(pos, size, address);
      }
      if (size < FreeTable::kSmallSizes && free_.SmallHead(size) != kNoRecord) return AllocFromBin(size, address);
    }
  }
  return AllocSlow(bytes, align, address);
}

Status Heap::AllocFromBin(Granules size, uintptr_t* address) {
  const Granules pos = free_.TakeSmallHead(size);
  bounds_.SetLive(pos);
  ++search_steps_;
  return Allocated(pos, size, address);
}

Status Heap::AllocSlow(uint64_t bytes, uint64_t align, uintptr_t* address) {
  if ((align & (align - 1)) != 0 || align > kMaxAlign) return Status::kInvalidAlignment;
  Granules size;
  Status status = ToGranules(bytes, &size);
  if (status != Status::kOk) return status;
  Granules pos;
  status = AllocGranules(size, align > granule() ? align : 0, /*grows=*/false, &pos);
  if (status != Status::kOk) return status;
  ++allocs_;
  *address = AddressOf(pos);
  return Status::kOk;
}

Status Heap::AllocZeroed(uint64_t bytes, uint64_t align, uintptr_t* address) {
  const Status status = Alloc(bytes, align, address);
  if (status != Status::kOk) return status;
  uint64_t usable = 0;
  UsableSize(*address, &usable);
  std::memset(reinterpret_cast<void*>(*address), 0, static_cast<size_t>(usable));
  return Status::kOk;
}

Status Heap::AllocGranules(Granules size, uint64_t align, bool grows, Granules* pos) {
  // An aligned request searches for room to slide its start up to the boundary.
  const Granules worst_pad = align == 0 ? 0 : static_cast<Granules>((align >> granule_shift_) - 1);
  // The search's steps count once the allocation succeeds: a failed call leaves stats() as it was.
  uint64_t steps = 0;
  uint32_t record = kNoRecord;
  Granules record_size = 0;   // the size of record's chunk
  Granules deferred_fit = 0;  // a front-end size that fits, when best fit takes it
  if (grows && options_.strategy == Strategy::kBestFit && options_.split) {
    // A realloc that moves takes the smallest free chunk with room for one more growth by half
    // above it, when there is one: growing buffers (x * 3/2) then grow in place next time.
    // Measured (moves per replay, this rule off -> on, glibc): git-log-patch 3,728 -> 3,246
    // (glibc 5,042), gcc-cc1-small 5,378 -> 4,217 (6,553), perl-text 13,593 -> 12,852 (12,879);
    // utilization unchanged to two digits.
    record = free_.BestFit(size + size / 2, &steps);
    if (record != kNoRecord) record_size = free_.HeadSize(record);
  }
  if (record == kNoRecord) {
    record = FindFreeChunk(options_.strategy, free_, size + worst_pad, rover_, &steps, &record_size);
    deferred_fit = DeferredFit(size + worst_pad, record_size, &steps);
  }
  if (record == kNoRecord && deferred_fit == 0 && !front_.empty()) {
    // Deferred chunks are merged before the wilderness is carved (or the heap grows): merged, they
    // may fit where no part of them did, and a free chunk is reused before new space is taken.
    SettleDeferred();
    record = FindFreeChunk(options_.strategy, free_, size + worst_pad, rover_, &steps, &record_size);
  }
  if (deferred_fit != 0 && align == 0) {
    // A deferred chunk at least as large as the request, split without a record of its own; the
    // remainder needs one (room first, so that a call that fails has changed nothing).
    if (!ReserveRecords(1)) return Status::kOutOfMemory;
    *pos = TakeDeferredChunk(front_.Pop(deferred_fit), deferred_fit, size, grows);
  } else if (deferred_fit != 0) {
    // Aligned: the deferred chunk gets a record and is split as any free chunk (room first for
    // that record and the pieces', so that a call that fails has changed nothing).
    if (!ReserveRecords(3)) return Status::kOutOfMemory;
    const Granules at = front_.Pop(deferred_fit);
    *pos = TakeFreeChunk(free_.Insert(at, deferred_fit), deferred_fit, size, align, grows, /*deferred=*/true);
  } else if (record != kNoRecord) {
    // A split leaves one piece free (an aligned split two): room for their records first, so
    // that a call that fails has changed nothing.
    if (!ReserveRecords(align == 0 ? 1 : 2)) return Status::kOutOfMemory;
    *pos = TakeFreeChunk(record, record_size, size, align, grows, /*deferred=*/false);
  } else {
    const Status status = TakeFromTop(size, align, grows, pos);
    if (status != Status::kOk) return status;
  }
  search_steps_ += steps;
  ++live_chunks_;
  if (options_.strategy == Strategy::kNextFit) rover_ = *pos + size;
  return Status::kOk;
}

Granules Heap::TakeFreeChunk(uint32_t record, Granules chunk_size, Granules size, uint64_t align, bool grows, bool deferred) {
  const Granules chunk_pos = free_[record].pos;
  const Granules chunk_end = chunk_pos + chunk_size;
  const Granules pad = AlignmentPad(chunk_pos, align);
  const Granules room = chunk_size - pad;
  MA_ASSERT(chunk_size >= pad + size && bounds_.IsFree(chunk_pos) && SizeAt(chunk_pos) == chunk_size);
  const Granules taken = options_.split && room > size ? size : room;
  // The records of the pieces that stay free below and above the allocation, and their sizes.
  uint32_t below = kNoRecord, above = kNoRecord;
  Granules below_size = 0, above_size = 0;
  Granules pos;
  if (!grows && IsSmall(size, align) && room > size) {
    // A small request takes the high end, so that small chunks gather apart from large ones and
    // large ones, freed together, merge into holes a larger request can use.
    pos = chunk_end - size;
    below_size = chunk_size - size;
    free_.Resize(record, below_size);
    bounds_.AddStart(pos, false);
    below = record;
    NoteLive(size);
  } else {
    pos = chunk_pos + pad;
    if (pad != 0) {
      // The pad stays free in place; the allocation becomes a chunk of its own above it.
      free_.Resize(record, pad);
      bounds_.AddStart(pos, false);
      below = record;
      below_size = pad;
    } else {
      bounds_.SetLive(pos);
    }
    if (taken < room) {
      const Granules rest = pos + taken;
      above_size = room - taken;
      if (pad == 0) {
        free_.Move(record, rest, above_size);
        above = record;
      } else {
        above = free_.Insert(rest, above_size);
      }
      bounds_.AddStart(rest, true);
    } else if (pad == 0) {
      free_.Remove(record);
    }
    NoteLive(taken);
  }
  if (deferred) {
    // A deferred chunk may border other free chunks; the pieces it leaves must not.
    Segment& segment = *SegmentOf(pos);
    // Each drops its record first, so re-adding one cannot fail.
    const uint32_t pieces[] = {above, below};
    const Granules piece_sizes[] = {above_size, below_size};
    for (int i = 0; i < 2; ++i) {
      if (pieces[i] == kNoRecord) continue;
      const Granules piece_pos = free_[pieces[i]].pos;
      free_.Remove(pieces[i]);
      Merge(segment, piece_pos, piece_sizes[i]);
    }
  }
  return pos;
}

Granules Heap::TakeDeferredChunk(Granules at, Granules fit, Granules size, bool grows) {
  // The same placement as TakeFreeChunk's for an unaligned request (a small one takes the high
  // end, any other the low end), without the record TakeFreeChunk needs: inserting one, resizing it
  // and removing it again before the remainder merged cost ~250 instructions per split, on 16% of
  // python3-json's requests (callgrind).
  MA_ASSERT(fit >= size && bounds_.IsStart(at) && bounds_.IsFree(at));
  if (!options_.split || fit == size) {
    bounds_.SetLive(at);
    NoteLive(fit);
    return at;
  }
  Segment& segment = *SegmentOf(at);
  NoteLive(size);
  if (!grows && IsSmall(size, 0)) {
    // The remainder [at, pos) keeps its start and free bits.
    const Granules pos = at + fit - size;
    bounds_.AddStart(pos, false);
    Merge(segment, at, fit - size);
    return pos;
  }
  bounds_.SetLive(at);
  bounds_.AddStart(at + size, true);
  Merge(segment, at + size, fit - size);
  return at;
}

Status Heap::TakeFromTop(Granules size, uint64_t align, bool grows, Granules* pos) {
  const Granules worst_pad = align == 0 ? 0 : static_cast<Granules>((align >> granule_shift_) - 1);
  if (!TopHasRoom(size, align)) {
    // A small request needs room above it to take the high end: it grows the heap by up to a page,
    // even with growth 0 (the rest becomes a free chunk that the next requests split); a quarter
    // of the heap at most, so that a tiny heap does not hold a page for a few bytes.
    const Granules small_need = static_cast<Granules>(std::min(kSegregationRoom, heap_bytes_ >> 2) >> granule_shift_);
    const Status status = GrowTop(!grows && IsSmall(size, align) && size < small_need ? small_need : size + worst_pad);
    if (status != Status::kOk) return status;
  }
  Segment& last = segments_.back();
  // Carving the wilderness may leave a free chunk below the allocation: its record is reserved
  // only now, so that a call the source refused has not grown the tables either.
  const bool record_at_hand = ReserveRecords(1);
  const Granules window = SegregationWindow(last);
  if (!grows && IsSmall(size, align) && window > size && record_at_hand) {
    // The same for the wilderness: the small chunk takes the high end of its lowest growth step
    // and the rest of that step becomes a free chunk that larger requests split from the bottom.
    // One step, not the whole wilderness: after FreeAll (replay's timed runs) or below a high
    // trim threshold the wilderness can be the whole heap, and small chunks at its very top had
    // packed down from there while large ones climbed from the bottom. Replay's timed runs then
    // placed chunks unlike a fresh heap: python3-json held 74,744 free chunks at their peak
    // against 47,837, and their instructions were 11% below (node-buf) to 6% above (python3-ast)
    // a fresh heap's; now within 1.7% on the 7 shared program traces (bench/instructions.mjs).
    // And a small chunk at the very top pinned the heap against trims.
    const Granules rest = window - size;
    bounds_.AddStart(last.top, true);
    free_.Insert(last.top, rest);
    *pos = last.top + rest;
    bounds_.AddStart(*pos, false);
    last.top = *pos + size;
    NoteLive(size);
    return Status::kOk;
  }
  const Granules pad = AlignmentPad(last.top, align);
  if (pad != 0 && !record_at_hand) return Status::kOutOfMemory;
  if (pad != 0) {
    bounds_.AddStart(last.top, true);
    AddFree(last.top, pad);
    last.top += pad;
  }
  *pos = last.top;
  bounds_.AddStart(*pos, false);
  last.top += size;
  NoteLive(size);
  return Status::kOk;
}

}  // namespace ma
