// Release: a freed chunk is deferred (kept unmerged for its size's next request) or merged with
// its free neighbours at once; quarantined chunks wait for a finalizer. The hot path is
// Free -> ReleaseChunk, and for most small frees it ends in the deferred branch.
#include "heap.h"

namespace ma {

Status Heap::Free(uintptr_t address) {
  // The common cases in one pass over one word of bits: a live chunk of the last segment that
  // ends in the same word, and is deferred (best fit) or marked free (bump).
  if (!segments_.empty() && quarantined_.empty()) {
    Segment& last = segments_.back();
    const uintptr_t offset = address - base_address_;
    const uint64_t position = offset >> granule_shift_;
    if ((offset & (granule() - 1)) == 0 && position - last.start < static_cast<uint64_t>(last.top - last.start)) {
      const Granules pos = static_cast<Granules>(position);
      BoundaryMap::Word& word = bounds_.WordOf(pos);
      const uint64_t bit = uint64_t{1} << (pos & 63);
      const uint64_t above = word.starts & (~uint64_t{1} << (pos & 63));
      if ((word.starts & ~word.frees & bit) != 0 && above != 0) {
        const Granules size = static_cast<Granules>(__builtin_ctzll(above)) - (pos & 63);
        if (bump_) {
          word.frees |= bit;  // not the last chunk: bump only marks it
          ++bump_free_chunks_;
          bump_free_granules_ += size;
          --live_chunks_;
          ++frees_;
          live_granules_ -= size;
          return Status::kOk;
        }
        if (size < defer_below_ && free_.deferred_of_size(size) < kDeferredPerSize &&
            free_.deferred_count() < kDeferredTotal && free_.HasRoomToDefer()) {
          word.frees |= bit;
          free_.InsertDeferred(pos, size);
          --live_chunks_;
          ++frees_;
          live_granules_ -= size;
          return Status::kOk;
        }
      }
    }
  }
  return FreeChunk(address);
}

Status Heap::FreeChunk(uintptr_t address) {
  Segment* segment;
  Granules pos, size;
  const Status status = FindLive(address, &segment, &pos, &size);
  if (status != Status::kOk) return status;
  // The chunk may need a record of its own; reserved first, so that a failed free changes nothing.
  if (!bump_ && !free_.Reserve(1)) return Status::kOutOfMemory;
  --live_chunks_;
  ++frees_;
  live_granules_ -= size;
  ReleaseChunk(*segment, pos, size);
  return Status::kOk;
}

void Heap::ReleaseChunk(Segment& segment, Granules pos, Granules size) {
  if (bump_) {
    ReleaseBump(segment, pos, size);
  } else if (CanDefer(size)) {
    bounds_.SetFree(pos);
    free_.MarkDeferred(free_.Insert(pos, size));
    return;
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
