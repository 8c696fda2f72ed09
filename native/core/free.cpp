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
  return Status::kOk;
}

void Heap::ReleaseChunk(Segment& segment, Granules pos, Granules size, bool defer) {
  if (defer) {
    bounds_.SetFree(pos);
    free_.InsertDeferred(pos, size);
    return;
  }
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
  if (!IsLast(segment) || pos + size != segment.top) {
    // Bump never reuses a free chunk, so it never merges one either: the bits and two counters
    // are all it keeps.
    bounds_.SetFree(pos);
    ++bump_free_chunks_;
    bump_free_granules_ += size;
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
  // Deferred chunks may border free chunks, so a run of several free chunks can join here.
  for (Granules end = pos + size; end < segment.top && bounds_.IsFree(end); end = pos + size) {
    size += DropFree(end, segment.top);
    bounds_.RemoveStart(end);
  }
  while (pos > segment.start) {
    const Granules lower = bounds_.PrevStart(pos, segment.start);
    if (!bounds_.IsFree(lower)) break;
    DropFree(lower, pos);
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

Granules Heap::DropFree(Granules pos, Granules limit) {
  if (bump_) {
    const Granules size = bounds_.NextStart(pos + 1, limit) - pos;
    --bump_free_chunks_;
    bump_free_granules_ -= size;
    return size;
  }
  const uint32_t record = free_.Find(pos);
  const Granules size = free_[record].size;
  if (free_[record].deferred != 0) Undefer(record);
  free_.Remove(record);
  return size;
}

bool Heap::SettleDeferred() {
  // Each merge drops its record before it adds one, so only a new large size may need room (trie
  // nodes); then the chunk stays deferred, as it was.
  while (free_.deferred_count() != 0) {
    const uint32_t record = free_.deferred_at(free_.deferred_count() - 1);
    const Granules pos = free_[record].pos, size = free_[record].size;
    Undefer(record);
    free_.Remove(record);
    if (!free_.Reserve(1)) {
      free_.MarkDeferred(free_.Insert(pos, size));
      return false;
    }
    Merge(*SegmentOf(pos), pos, size);
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
