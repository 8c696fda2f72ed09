// Release: a freed chunk is deferred (kept unmerged for its size's next request) or merged with
// its free neighbours at once; quarantined chunks wait for a finalizer. One path for every
// release: Free -> FindLive -> FreeLive -> ReleaseChunk, and for most small frees it ends in the
// deferred branch.
#include "heap.h"

namespace ma {

Status Heap::Free(uintptr_t address) {
  // mimalloc's mi_free_block_local shape: find the chunk (one subtraction, one segment, one word
  // of bits for a chunk that ends in its word), then the one release path below. There is no
  // second copy of the release for the common case: the checks FindLive and FreeLive make are
  // all inline, and the rare work (growing a table, merging) is behind calls.
  Segment* segment;
  Granules pos, size;
  const Status status = FindLive(address, &segment, &pos, &size);
  if (status != Status::kOk) return status;
  return FreeLive(*segment, pos, size);
}

Status Heap::FreeLive(Segment& segment, Granules pos, Granules size) {
  bool defer;
  if (!ReserveRelease(size, &defer)) return Status::kOutOfMemory;
  NoteFreed(size);
  ReleaseChunk(segment, pos, size, defer);
  if (!defer) MaybeShrinkMetadata();  // the free is done: records may move now
  return Status::kOk;
}

void Heap::ReleaseChunk(Segment& segment, Granules pos, Granules size, bool defer) {
  MA_ASSERT(bounds_.IsStart(pos) && !bounds_.IsFree(pos) && pos + size <= segment.top);
  // The two common releases inline, each a few stores: a deferral, and bump's chunk below its top
  // (no merge, no trim: only its bits and counters change). The rest is ReleaseMerging's, out of
  // line, so that this path saves no registers.
  if (defer) {
    bounds_.SetFree(pos);
    front_.Push(pos, size);
    return;
  }
  if (bump_ && !IsBumpTop(segment, pos, size)) {
    MarkBumpFree(pos, size);
    return;
  }
  ReleaseMerging(segment, pos, size);
}

void Heap::ReleaseMerging(Segment& segment, Granules pos, Granules size) {
  if (bump_) {
    ReleaseBump(segment, pos, size);
  } else if (options_.coalesce) {
    Merge(segment, pos, size);
  } else {
    bounds_.SetFree(pos);
    AddFree(pos, size);
  }
  if (IsLast(segment) && segment.top <= pos) MaybeTrim();
}

void Heap::ReleaseBump(Segment& segment, Granules pos, Granules size) {
  if (!IsBumpTop(segment, pos, size)) {
    MarkBumpFree(pos, size);
    return;
  }
  // The last chunk: the pointer rolls back over it and, merging on, over the free chunks below.
  bounds_.RemoveStart(pos);
  Granules top = pos;
  while (options_.coalesce && top > segment.start) {
    const Granules lower = bounds_.PrevStart(top, segment.start);
    if (!bounds_.IsFree(lower)) break;
    bounds_.RemoveStart(lower);
    --bump_free_chunks_;
    bump_free_granules_ -= top - lower;
    top = lower;
  }
  segment.top = top;
}

void Heap::Merge(Segment& segment, Granules pos, Granules size) {
  MA_ASSERT(pos >= segment.start && pos + size <= segment.top && bounds_.IsStart(pos));
  // Deferred chunks may border free chunks, so a run of several free chunks can join here; a
  // deferred chunk the front end does not give up at once ends the run.
  Granules taken;
  for (Granules end = pos + size; end < segment.top && bounds_.IsFree(end) && DropFree(end, segment.top, &taken); end = pos + size) {
    size += taken;
    bounds_.RemoveStart(end);
  }
  while (pos > segment.start) {
    const Granules lower = bounds_.PrevStart(pos, segment.start);
    if (!bounds_.IsFree(lower) || !DropFree(lower, pos, &taken)) break;
    bounds_.RemoveStart(pos);
    size += pos - lower;
    pos = lower;
  }
  if (IsLast(segment) && pos + size == segment.top) {
    // Into the wilderness (the caller decides whether to trim).
    bounds_.RemoveStart(pos);
    segment.top = pos;
    return;
  }
  bounds_.SetFree(pos);
  AddFree(pos, size);
}

bool Heap::DropFree(Granules pos, Granules limit, Granules* size) {
  if (bump_) {
    *size = bounds_.NextStart(pos + 1, limit) - pos;
    --bump_free_chunks_;
    bump_free_granules_ -= *size;
    return true;
  }
  const uint32_t record = free_.Find(pos);
  if (record == kNoRecord) {
    // A deferred chunk: the front end holds it, by size.
    *size = bounds_.EndOf(pos, limit) - pos;
    return front_.Remove(pos, *size, kDeferredNear);
  }
  // A bin's head carries its size; any other record's chunk runs to the next start. Most large
  // chunks head bins of their own, and their end is words away (a climb of the bits' summary:
  // 17 instructions per request on python3-json when every size came from the bits).
  *size = free_.IsHead(free_[record]) ? free_.HeadSize(record) : bounds_.EndOf(pos, limit) - pos;
  MA_ASSERT(*size == bounds_.EndOf(pos, limit) - pos);
  free_.Remove(record);
  return true;
}

bool Heap::CanDropFree(Granules pos, Granules limit) const {
  if (bump_ || free_.Find(pos) != kNoRecord) return true;
  return front_.IsNear(pos, bounds_.EndOf(pos, limit) - pos, kDeferredNear);
}

bool Heap::SettleDeferred() {
  if (front_.empty()) return true;
  // First a record for every deferred chunk (the table kept them in reserve: CanDefer), so that the
  // merges below find each deferred neighbour by its record, never by a walk of its stack: popping
  // a chunk and merging it with a neighbour still in the front end cost python3-json 12% of its
  // instructions in FrontEnd::Remove.
  front_.ForEach([&](Granules pos, Granules size) { free_.Insert(pos, size); });
  while (!front_.empty()) {
    const Granules size = front_.Largest();
    const Granules pos = front_.Pop(size);
    const uint32_t record = free_.Find(pos);
    if (record == kNoRecord) continue;  // merged into a neighbour below already
    // A chunk above may have merged into this one already: the bits have the merged size.
    Segment& segment = *SegmentOf(pos);
    const Granules merged = FreeSizeAt(segment, pos);
    free_.Remove(record);
    // The merge drops its neighbours' records before it adds one; only a new large size may need
    // trie nodes. Without them the chunk and those not merged yet stay deferred, as they were.
    if (!free_.Reserve(1)) {
      front_.Filter([&](Granules held, Granules) {
        const uint32_t held_record = free_.Find(held);
        if (held_record == kNoRecord) return true;  // merged: no longer a chunk of its own
        free_.Remove(held_record);
        return false;
      });
      if (merged == size) {
        front_.Push(pos, size);
      } else {
        // A chunk merged already stays one with a record: Remove just freed its slot and its
        // trie nodes, so re-adding it needs nothing new.
        free_.Insert(pos, merged);
      }
      return false;
    }
    Merge(segment, pos, merged);
  }
  return true;
}

// ---- quarantine ------------------------------------------------------------------------------

Status Heap::Quarantine(uintptr_t address) {
  Segment* segment;
  Granules pos, size;
  const Status status = FindLive(address, &segment, &pos, &size);
  if (status != Status::kOk) return status;
  if (!quarantined_.Reserve(quarantined_.size() + 1)) return Status::kOutOfMemory;
  quarantined_.PushBack(pos);
  return Status::kOk;
}

Status Heap::ReleaseQuarantined(uintptr_t address) {
  Granules pos;
  if (!PositionOf(address, &pos)) return Status::kInvalidPointer;
  size_t index = 0;
  while (index < quarantined_.size() && quarantined_[index] != pos) ++index;
  if (index == quarantined_.size()) return Status::kInvalidPointer;
  Segment& segment = *SegmentOf(pos);
  const Granules size = bounds_.NextStart(pos + 1, segment.top) - pos;
  const Status status = FreeLive(segment, pos, size);
  if (status != Status::kOk) return status;
  quarantined_[index] = quarantined_.back();
  quarantined_.PopBack();
  return Status::kOk;
}

}  // namespace ma
