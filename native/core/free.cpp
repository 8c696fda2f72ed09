// Release: a freed chunk is deferred (kept unmerged for its size's next request) or merged with
// its free neighbours at once; quarantined chunks wait for a finalizer. The hot path is
// Free -> ReleaseChunk, and for most small frees it ends in the deferred branch.
#include "heap.h"

namespace ma {

Status Heap::Free(uintptr_t address) {
  Segment* segment;
  Granules pos, size;
  const Status status = FindLive(address, &segment, &pos, &size);
  if (status != Status::kOk) return status;
  // The chunk may need a record of its own; reserved first, so that a failed free changes nothing.
  if (!free_.Reserve(1)) return Status::kOutOfMemory;
  --live_chunks_;
  ++frees_;
  live_granules_ -= size;
  ReleaseChunk(*segment, pos, size);
  return Status::kOk;
}

void Heap::ReleaseChunk(Segment& segment, Granules pos, Granules size) {
  if (CanDefer(size)) {
    bounds_.SetFree(pos);
    free_.MarkDeferred(free_.Insert(pos, size));
    ++deferred_per_size_[size];
    return;
  }
  if (options_.coalesce) {
    Merge(segment, pos, size, kNoRecord);
  } else if (options_.strategy == Strategy::kBump && IsLast(segment) && pos + size == segment.top) {
    // The bump pointer rolls back over its last chunk even without merging.
    bounds_.RemoveStart(pos);
    segment.top = pos;
  } else {
    bounds_.SetFree(pos);
    free_.Insert(pos, size);
  }
  if (IsLast(segment) && segment.top <= pos) MaybeTrim();
}

void Heap::Merge(Segment& segment, Granules pos, Granules size, uint32_t record) {
  // Deferred chunks may border free chunks, so a run of several free chunks can join here.
  for (Granules end = pos + size; end < segment.top && bounds_.IsFree(end); end = pos + size) {
    const uint32_t upper = free_.Find(end);
    if (free_[upper].deferred != 0) Undefer(upper);
    size += free_[upper].size;
    free_.Remove(upper);
    bounds_.RemoveStart(end);
  }
  while (pos > segment.start) {
    const Granules lower_pos = bounds_.PrevStart(pos, segment.start);
    if (!bounds_.IsFree(lower_pos)) break;
    const uint32_t lower = free_.Find(lower_pos);
    if (free_[lower].deferred != 0) Undefer(lower);
    if (record != kNoRecord) free_.Remove(record);
    bounds_.RemoveStart(pos);
    size += pos - lower_pos;
    pos = lower_pos;
    record = lower;
  }
  if (IsLast(segment) && pos + size == segment.top) {
    // Into the wilderness (the caller decides whether to trim).
    if (record != kNoRecord) free_.Remove(record);
    bounds_.RemoveStart(pos);
    segment.top = pos;
    return;
  }
  if (record == kNoRecord) {
    bounds_.SetFree(pos);
    free_.Insert(pos, size);
  } else {
    free_.Resize(record, size);
  }
}

void Heap::Undefer(uint32_t record) {
  --deferred_per_size_[free_[record].size];
  free_.ClearDeferred(record);
}

void Heap::SettleDeferred() {
  while (free_.deferred_count() != 0) {
    const uint32_t record = free_.deferred_at(free_.deferred_count() - 1);
    Undefer(record);
    const Granules pos = free_[record].pos;
    Merge(*SegmentOf(pos), pos, free_[record].size, record);
  }
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
  if (!free_.Reserve(1)) return Status::kOutOfMemory;
  quarantined_[index] = quarantined_.back();
  quarantined_.PopBack();
  Segment& segment = *SegmentOf(pos);
  const Granules size = bounds_.NextStart(pos + 1, segment.top) - pos;
  --live_chunks_;
  ++frees_;
  live_granules_ -= size;
  ReleaseChunk(segment, pos, size);
  return Status::kOk;
}

}  // namespace ma
