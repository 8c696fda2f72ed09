// Realloc in three paths: Shrink (in place, the tail freed), GrowInPlace (into the free chunks
// above, deferred ones included, and into the wilderness when they reach it), and MoveTo (a new
// chunk placed where it can grow again, the bytes copied, the old chunk freed). A large chunk on a
// source that moves pages (mmap) moves its whole pages instead of copying them (MovePagesTo). And
// MoveAndQuarantine, the move the addon needs when a view of the old chunk escaped it.
#include <algorithm>
#include <cstring>

#include "heap.h"

namespace ma {
namespace {

// Pages move only for chunks of this many bytes or more, whatever the options: the placement
// below relies on it.
constexpr uint64_t kLeastPageMoveBytes = 8 * kSourcePageBytes;

uintptr_t PageDown(uintptr_t address) { return address & ~(kSourcePageBytes - 1); }
uintptr_t PageUp(uintptr_t address) { return PageDown(address + kSourcePageBytes - 1); }

}  // namespace

Status Heap::Realloc(uintptr_t address, uint64_t bytes, uintptr_t* new_address) {
  Segment* segment;
  Granules pos, old;
  Status status = FindLive(address, &segment, &pos, &old);
  if (status != Status::kOk) return status;
  Granules size;
  status = ToGranules(bytes, &size);
  if (status != Status::kOk) return status;
  *new_address = address;
  // Every path may leave one piece free: each reserves its record before changing anything.
  if (size <= old) {
    status = Shrink(*segment, pos, old, size);
  } else if (GrowInPlace(&segment, pos, old, size, &status)) {
    // grown, or failed for lack of a record: status says which
  } else {
    Granules moved_to;
    status = MoveTo(pos, old, size, &moved_to);
    if (status == Status::kOk) *new_address = AddressOf(moved_to);
  }
  if (status == Status::kOk) ++reallocs_;
  return status;
}

Status Heap::Shrink(Segment& segment, Granules pos, Granules old, Granules size) {
  if (!options_.split || size == old) return Status::kOk;
  bool defer;
  if (!ReserveRelease(old - size, &defer)) return Status::kOutOfMemory;
  // The tail becomes a chunk of its own and is released as any free would.
  bounds_.AddStart(pos + size, false);
  live_granules_ -= old - size;
  ReleaseChunk(segment, pos + size, old - size, defer);
  return Status::kOk;
}

bool Heap::GrowInPlace(Segment** segment_io, Granules pos, Granules old, Granules size, Status* status) {
  Segment* segment = *segment_io;
  const Granules end = pos + old;
  // The free chunks right above. With merging on they form a run (deferred chunks may border free
  // ones) that the chunk may take whole; with merging off only the first is its neighbour to take.
  Granules run_end = end;
  while (run_end < segment->top && bounds_.IsFree(run_end) && run_end - pos < size && CanDropFree(run_end, segment->top)) {
    run_end = bounds_.NextStart(run_end + 1, segment->top);
    if (!options_.coalesce) break;
  }
  const bool reaches_top = IsLast(*segment) && run_end == segment->top && (run_end == end || options_.coalesce);
  if (run_end - pos < size && !reaches_top) return false;
  // Only a run that holds the chunk may leave a piece to record; growing into the wilderness needs
  // none (GrowTop reserves its own once the source has given memory), so a growth the source
  // refuses has not grown the tables either (core_fuzz found it once Trim() shrank them to nothing).
  if (run_end - pos >= size && !bump_ && !ReserveRecords(1)) {
    *status = Status::kOutOfMemory;
    return true;
  }
  // Take the run: its chunks stop being free chunks of their own.
  for (Granules chunk = end; chunk < run_end;) {
    const Granules next = bounds_.NextStart(chunk + 1, run_end);
    Granules dropped;
    const bool taken = DropFree(chunk, segment->top, &dropped);
    MA_ASSERT(taken);
    static_cast<void>(taken);
    bounds_.RemoveStart(chunk);
    chunk = next;
  }
  if (run_end - pos >= size) {
    const Granules joined = run_end - pos;
    const Granules taken = options_.split && joined > size ? size : joined;
    NoteLive(taken - old);
    if (taken < joined) {
      // What is left above stays free; it borders what the run bordered.
      bounds_.AddStart(pos + taken, false);
      if (options_.coalesce && !bump_) {
        Merge(*segment, pos + taken, joined - taken);
      } else {
        bounds_.SetFree(pos + taken);
        AddFree(pos + taken, joined - taken);
      }
    }
    *status = Status::kOk;
    return true;
  }
  // The run reached the wilderness: it is wilderness now (as a settle would have made it), and the
  // chunk grows into it, moving the source's end when it is short.
  segment->top = end;
  const Granules extra = size - old;
  if (segment->end - segment->top < extra) {
    const size_t index = static_cast<size_t>(segment - segments_.data());
    GrowTop(extra);  // on failure the move says why
    segment = &segments_[index];  // growth may have moved the segment table
    *segment_io = segment;
    if (!IsLast(*segment) || segment->end - segment->top < extra) return false;
  }
  segment->top += extra;
  NoteLive(extra);
  *status = Status::kOk;
  return true;
}

Status Heap::MoveTo(Granules pos, Granules old, Granules size, Granules* moved_to) {
  Status status = Status::kOk;
  // HeapOptions::move_pages_from: below it a copy is cheaper (bench/results/realloc-pages.txt).
  const uint64_t old_bytes = static_cast<uint64_t>(old) << granule_shift_;
  if (options_.move_pages_from != 0 && old_bytes >= options_.move_pages_from && old_bytes >= kLeastPageMoveBytes && source_->CanMovePages() &&
      MovePagesTo(pos, old, size, moved_to, &status)) {
    return status;
  }
  // A chunk that grew once grows again (strbuf-style buffers grow by half, many times): it is
  // placed at the low end of the free space it takes, so that the rest stays above it for its
  // next growth, never segregated to the high end as a small request would be.
  status = AllocGranules(size, 0, /*grows=*/true, moved_to);
  if (status != Status::kOk) return status;
  // Freeing the old chunk may need a record: reserved only now, so that a realloc the source
  // refused has not grown the tables. If even a page for the record cannot be mapped, the move
  // cannot finish: the old chunk stays the user's, and the new one stays allocated (giving it back
  // could need a record too) — a leak of one chunk, only when the system has no page left.
  bool defer;
  if (!ReserveRelease(old, &defer)) return Status::kOutOfMemory;
  std::memcpy(reinterpret_cast<void*>(AddressOf(*moved_to)), reinterpret_cast<const void*>(AddressOf(pos)),
              static_cast<size_t>(old) << granule_shift_);
  NoteFreed(old);
  --frees_;  // a realloc, not a free
  ReleaseChunk(*SegmentOf(pos), pos, old, defer);
  return Status::kOk;
}

bool Heap::MovePagesTo(Granules pos, Granules old, Granules size, Granules* moved_to, Status* status) {
  const uintptr_t from = AddressOf(pos);
  const uint64_t old_bytes = static_cast<uint64_t>(old) << granule_shift_;
  // The destination starts at the source's offset in a page, so that whole pages line up: an
  // aligned placement (best fit for size plus the pad, as any aligned request) shifted by that
  // offset. MoveTo's rule of room to grow by half holds as for a copy: the chunk it picks for
  // size * 3/2 has room for the pad too (size / 2 is 4 pages or more, the pad below a page).
  MA_ASSERT(size / 2 >= (kSourcePageBytes >> granule_shift_));
  const size_t segments_before = segments_.size();
  const Granules top_before = segments_before != 0 ? segments_.back().top : 0;
  placement_phase_ = from & (kSourcePageBytes - 1);
  const Status placed = AllocGranules(size, granule() < kSourcePageBytes ? kSourcePageBytes : 0, /*grows=*/true, moved_to);
  placement_phase_ = 0;
  // Without room for the pad a plain copy may still fit (a capped heap).
  if (placed != Status::kOk) return false;
  // Pages move only into fresh memory: likely in the wilderness, the source knows where else.
  const bool carved = segments_.size() != segments_before || *moved_to >= top_before;
  bool defer;
  if (!ReserveRelease(old, &defer)) {
    *status = Status::kOutOfMemory;  // as MoveTo: the new chunk stays allocated
    return true;
  }
  const uintptr_t to = AddressOf(*moved_to);
  MA_ASSERT(((to ^ from) & (kSourcePageBytes - 1)) == 0);
  // Whole pages move; the partial pages at the ends are shared with the neighbours and copied, and
  // so is what lies outside the piece the source moved.
  const uintptr_t from_low = PageUp(from), from_high = PageDown(from + old_bytes);
  const uintptr_t to_low = to + (from_low - from);
  const uintptr_t to_high = PageDown(to + (static_cast<uint64_t>(size) << granule_shift_));
  PageMove outcome = PageMove::kNotMoved;
  PagePiece piece{0, 0};
  // A chunk the kernel could not map again is quarantined for good, never handed out: without room
  // for it in the quarantine (reserved only now, so that a realloc that failed has not grown it),
  // the bytes are copied.
  if (from_high > from_low && quarantined_.Reserve(quarantined_.size() + 1)) {
    // A piece (one mapping's part of the chunk: MemorySource::MovePages) of less than half the
    // threshold is copied with the rest.
    outcome = source_->MovePages(from_low, from_high - from_low, to_low, to_high - to_low, options_.move_pages_from / 2, carved, &piece);
  }
  void* const target = reinterpret_cast<void*>(to);
  const void* const source = reinterpret_cast<const void*>(from);
  switch (outcome) {
    case PageMove::kMoved:
    case PageMove::kFromLost: {
      const uint64_t piece_low = (from_low - from) + piece.offset, piece_high = piece_low + piece.bytes;
      MA_ASSERT(piece.bytes != 0 && piece_high <= from_high - from);
      std::memcpy(target, source, static_cast<size_t>(piece_low));
      std::memcpy(reinterpret_cast<void*>(to + piece_high), reinterpret_cast<const void*>(from + piece_high),
                  static_cast<size_t>(old_bytes - piece_high));
      break;
    }
    case PageMove::kNotMoved:
      std::memcpy(target, source, static_cast<size_t>(old_bytes));
      break;
    case PageMove::kToLost:
      // The bytes never left, but the new chunk lost its pages: it is put away for good, and the
      // move starts again as a copy into another chunk.
      quarantined_.PushBack(*moved_to);
      return false;
  }
  if (outcome == PageMove::kFromLost) {
    // The bytes are the user's in the new chunk; the old one lost its pages and is put away.
    quarantined_.PushBack(pos);
    *status = Status::kOk;
    return true;
  }
  NoteFreed(old);
  --frees_;  // a realloc, not a free
  ReleaseChunk(*SegmentOf(pos), pos, old, defer);
  *status = Status::kOk;
  return true;
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
