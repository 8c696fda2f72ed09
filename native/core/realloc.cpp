// Realloc: shrink in place, grow into the free chunk above or the wilderness, else move. And
// MoveAndQuarantine, the move the addon needs when a view of the old chunk escaped it.
#include <algorithm>
#include <cstring>

#include "heap.h"

namespace ma {

Status Heap::Realloc(uintptr_t address, uint64_t bytes, uintptr_t* new_address) {
  Segment* segment;
  Granules pos, old;
  Status status = FindLive(address, &segment, &pos, &old);
  if (status != Status::kOk) return status;
  Granules size;
  status = ToGranules(bytes, &size);
  if (status != Status::kOk) return status;
  *new_address = address;
  // Every branch below may leave one piece free: each reserves its record before changing anything.

  if (size <= old) {
    if (options_.split && size < old) {
      if (!free_.Reserve(1)) return Status::kOutOfMemory;
      // Cut the tail off as a chunk of its own and free it as any free would.
      bounds_.AddStart(pos + size, false);
      live_granules_ -= old - size;
      ReleaseChunk(*segment, pos + size, old - size);
    }
    ++reallocs_;
    return Status::kOk;
  }

  const Granules extra = size - old;
  const Granules end = pos + old;
  if (IsLast(*segment) && end == segment->top) {
    const size_t index = static_cast<size_t>(segment - segments_.data());
    if (segment->end - segment->top < extra) GrowTop(extra);  // on failure, the move below says why
    segment = &segments_[index];  // growth may have moved the segment table
    if (IsLast(*segment) && segment->end - segment->top >= extra) {
      segment->top += extra;
      NoteLive(extra);
      ++reallocs_;
      return Status::kOk;
    }
  } else if (end < segment->top && bounds_.IsFree(end)) {
    const Granules upper_size = bounds_.NextStart(end + 1, segment->top) - end;
    const Granules joined = old + upper_size;
    if (joined >= size) {
      if (!free_.Reserve(1)) return Status::kOutOfMemory;
      DropFree(end, segment->top);
      bounds_.RemoveStart(end);
      const Granules taken = options_.split && joined > size ? size : joined;
      NoteLive(taken - old);
      if (taken < joined) {
        // What is left above stays free; it borders what the free chunk bordered.
        bounds_.AddStart(pos + taken, false);
        if (options_.coalesce && !bump_) {
          Merge(*segment, pos + taken, joined - taken);
        } else {
          bounds_.SetFree(pos + taken);
          AddFree(pos + taken, joined - taken);
        }
      }
      ++reallocs_;
      return Status::kOk;
    }
  }

  Granules moved_to;
  status = AllocGranules(size, 0, &moved_to);
  if (status != Status::kOk) return status;
  // Freeing the old chunk may need a record: reserved only now, so that a realloc the source
  // refused has not grown the tables. If even a page for the record cannot be mapped, the move
  // cannot finish: the old chunk stays the user's, and the new one stays allocated (giving it back
  // could need a record too) — a leak of one chunk, only when the system has no page left.
  if (!free_.Reserve(1)) return Status::kOutOfMemory;
  std::memcpy(reinterpret_cast<void*>(AddressOf(moved_to)), reinterpret_cast<const void*>(address),
              static_cast<size_t>(old) << granule_shift_);
  --live_chunks_;
  live_granules_ -= old;
  ReleaseChunk(*SegmentOf(pos), pos, old);
  ++reallocs_;
  *new_address = AddressOf(moved_to);
  return Status::kOk;
}

Status Heap::MoveAndQuarantine(uintptr_t address, uint64_t bytes, uintptr_t* new_address) {
  Segment* segment;
  Granules pos, old;
  Status status = FindLive(address, &segment, &pos, &old);
  if (status != Status::kOk) return status;
  status = Alloc(bytes, 0, new_address);
  if (status != Status::kOk) return status;
  // Room in the quarantine only now, so that a move that failed has not grown it.
  if (!quarantined_.Reserve(quarantined_.size() + 1)) {
    Free(*new_address);
    return Status::kOutOfMemory;
  }
  std::memcpy(reinterpret_cast<void*>(*new_address), reinterpret_cast<const void*>(address),
              std::min(static_cast<size_t>(bytes), static_cast<size_t>(old) << granule_shift_));
  quarantined_.PushBack(pos);
  --allocs_;  // a realloc, not an allocation
  ++reallocs_;
  return Status::kOk;
}

}  // namespace ma
