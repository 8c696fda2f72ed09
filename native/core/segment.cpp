// Segments and the wilderness: growing the heap through its memory source, giving the top back
// (trimming), and emptying the heap.
#include <algorithm>

#include "heap.h"
#include "heap_limits.h"

namespace ma {
namespace {
uint64_t RoundUp(uint64_t value, uint64_t multiple) { return (value + multiple - 1) / multiple * multiple; }
}  // namespace

Status Heap::GrowTop(Granules needed) {
  // The contract: no deferred chunk is left unmerged when the heap grows.
  SettleDeferred();
  const uint64_t granule_bytes = granule();
  Segment* last = segments_.empty() ? nullptr : &segments_.back();
  const Granules available = last != nullptr ? last->end - last->top : 0;
  const uint64_t contiguous_need = static_cast<uint64_t>(needed - std::min(needed, available)) << granule_shift_;
  const uint64_t fresh_need = static_cast<uint64_t>(needed) << granule_shift_;
  // Grow by `growth` at least, but never past maxHeapBytes when the exact need still fits.
  uint64_t contiguous = RoundUp(std::max(contiguous_need, options_.growth), granule_bytes);
  uint64_t fresh = RoundUp(std::max(fresh_need, options_.growth), granule_bytes);
  if (options_.max_heap_bytes != 0) {
    const uint64_t room = options_.max_heap_bytes > heap_bytes_ ? options_.max_heap_bytes - heap_bytes_ : 0;
    if (contiguous > room) contiguous = std::max(contiguous_need, room / granule_bytes * granule_bytes);
    if (fresh > room) fresh = std::max(fresh_need, room / granule_bytes * granule_bytes);
    if (contiguous_need > room && fresh_need > room) return Status::kOutOfMemory;
  }
  const uintptr_t expected_end = last != nullptr ? AddressOf(last->end) : 0;
  Extension extension;
  Status status = source_->Extend(expected_end, contiguous, fresh, granule_bytes, &extension);
  if (status == Status::kOutOfMemory && (contiguous > contiguous_need || fresh > fresh_need)) {
    // `growth` is a least step, not a need: when the source cannot give that much (growth 1 TiB
    // on a 64 GiB reservation), take only what the request needs.
    status = source_->Extend(expected_end, contiguous_need, fresh_need, granule_bytes, &extension);
  }
  if (status != Status::kOk) return status;
  const uintptr_t lowered_to = extension.contiguous ? expected_end : extension.base;
  const uint64_t added = extension.end - lowered_to;
  // A move that is given back at once is not counted: a failed call leaves stats() as it was.
  auto give_back = [&]() {
    source_->Release(extension.end, lowered_to);
    return Status::kOutOfMemory;
  };
  if (options_.max_heap_bytes != 0 && heap_bytes_ + added > options_.max_heap_bytes) return give_back();
  const uintptr_t base = last == nullptr ? extension.start : base_address_;
  if (extension.start < base) return give_back();
  const uint64_t end = (extension.end - base) >> granule_shift_;
  if (end > kMaxPosition || !CoverPositions(static_cast<Granules>(end))) return give_back();
  // A new segment needs a slot in the table, and turns the old wilderness into a free chunk.
  if (!extension.contiguous && (!segments_.Reserve(segments_.size() + 1) || !ReserveRecords(1))) return give_back();
  last = segments_.empty() ? nullptr : &segments_.back();

  if (extension.contiguous) {
    last->end = static_cast<Granules>(end);
    // The last segment may be an older one whose free tail was a chunk while it could not grow.
    AbsorbFreeTailIntoTop(last);
  } else {
    base_address_ = base;
    if (last != nullptr && last->top < last->end) {
      // Other code moved the break: our old wilderness can no longer grow, so it becomes a chunk.
      bounds_.AddStart(last->top, true);
      AddFree(last->top, last->end - last->top);
      last->top = last->end;
    }
    const Granules start = static_cast<Granules>((extension.start - base) >> granule_shift_);
    segments_.PushBack(Segment{extension.base, start, start, static_cast<Granules>(end)});
  }
  ++brk_calls_;
  NoteHeapBytes(static_cast<int64_t>(added));
  if (trimmed_since_growth_ != 0) {
    // The heap grew right back after giving memory away: trimming at this threshold only churns
    // the break (and page faults). Raise it past all that the trims gave back since the heap last
    // grew (a teardown trims in many small steps), as glibc raises its dynamic trim threshold
    // past the size of a chunk it had to map again.
    if (trim_threshold_ < kMaxAdaptiveTrimThreshold) {
      trim_threshold_ = std::min(std::max(trim_threshold_ * 2, trimmed_since_growth_ * 2), kMaxAdaptiveTrimThreshold);
    }
    trimmed_since_growth_ = 0;
  }
  return Status::kOk;
}

void Heap::AbsorbFreeTailIntoTop(Segment* segment) {
  if (!options_.coalesce || segment->top == segment->start) return;
  const Granules tail = bounds_.PrevStart(segment->top, segment->start);
  Granules size;
  // (A deferred tail left by a settle that ran out of memory stays a chunk.)
  if (!bounds_.IsFree(tail) || !DropFree(tail, segment->top, &size)) return;
  bounds_.RemoveStart(tail);
  segment->top = tail;
}

void Heap::MaybeTrim() {
  if (trim_threshold_ == kNeverTrim) return;
  const Segment& last = segments_.back();
  if ((static_cast<uint64_t>(last.end - last.top) << granule_shift_) <= trim_threshold_) return;
  // Keep one growth step of wilderness so that a heap hovering at its top does not move the
  // break on every allocation.
  const uint64_t released = ReleaseTop(static_cast<Granules>(std::min<uint64_t>(options_.growth >> granule_shift_, kMaxChunkGranules)));
  trimmed_since_growth_ += released;
}

uint64_t Heap::ReleaseTop(Granules keep) {
  Segment& last = segments_.back();
  const uint64_t target = static_cast<uint64_t>(last.top) + keep;
  if (target >= last.end) return 0;
  const uintptr_t end_address = AddressOf(last.end);
  uint64_t released;
  if (keep == 0 && last.top == last.start) {
    // The segment is empty: give all of it back, alignment pad included.
    if (!source_->Release(end_address, last.base)) return 0;
    released = end_address - last.base;
    segments_.PopBack();
    if (segments_.empty()) {
      base_address_ = 0;
      rover_ = 0;
    }
  } else {
    if (!source_->Release(end_address, AddressOf(static_cast<Granules>(target)))) return 0;
    released = static_cast<uint64_t>(last.end - target) << granule_shift_;
    last.end = static_cast<Granules>(target);
  }
  ++brk_calls_;
  bytes_released_ += released;
  NoteHeapBytes(-static_cast<int64_t>(released));
  return released;
}

uint64_t Heap::Trim() {
  SettleDeferred();
  uint64_t released = 0;
  while (!segments_.empty()) {
    AbsorbFreeTailIntoTop(&segments_.back());
    const size_t segments = segments_.size();
    released += ReleaseTop(0);
    if (segments_.size() == segments) break;  // it holds chunks, or foreign memory sits above it
  }
  ShrinkMetadata(/*all=*/true);
  return released;
}

void Heap::FreeAll() {
  if (!quarantined_.empty()) {
    // Quarantined chunks are still reached from outside: free everything around them.
    SettleDeferred();
    for (size_t i = 0; i < segments_.size(); ++i) {
      Segment& segment = segments_[i];
      for (Granules pos = segment.start; pos < segment.top; pos = bounds_.NextStart(pos + 1, segment.top)) {
        if (bounds_.IsFree(pos) || IsQuarantined(pos) || !ReserveRecords(1)) continue;
        const Granules size = bounds_.NextStart(pos + 1, segment.top) - pos;
        --live_chunks_;
        live_granules_ -= size;
        if (bump_) ReleaseBump(segment, pos, size);
        else Merge(segment, pos, size);
      }
    }
    return;
  }
  bounds_.Clear();
  free_.Clear();
  front_.Clear();
  bump_free_chunks_ = 0;
  bump_free_granules_ = 0;
  live_granules_ = 0;
  live_chunks_ = 0;
  rover_ = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    Segment& segment = segments_[i];
    segment.top = segment.start;
    // Only the last segment has wilderness; an older one becomes one free chunk. (The records
    // kept their capacity through Clear, and an older segment had its free chunk before.)
    if (i + 1 < segments_.size() && segment.end > segment.start && ReserveRecords(1)) {
      bounds_.AddStart(segment.start, true);
      AddFree(segment.start, segment.end - segment.start);
      segment.top = segment.end;
    }
  }
}

void Heap::Reset() {
  FreeAll();
  Trim();
}

}  // namespace ma
