// Creating a heap, turning addresses and byte counts into granules, and its statistics.
#include "heap.h"

#include <algorithm>
#include <new>

#include "heap_limits.h"

namespace ma {

Status Heap::Create(const HeapOptions& options, Heap** out) {
  const uint32_t alignment = options.alignment;
  if (alignment < 8 || alignment > 4096 || (alignment & (alignment - 1)) != 0) return Status::kInvalidOption;
  if (options.growth > kMaxGrowth || options.segregate_small > kMaxAlign) return Status::kInvalidOption;
  const uint64_t position_limit = kMaxPosition * alignment;
  uint64_t reserve = options.max_heap_bytes != 0 ? options.max_heap_bytes + alignment : kDefaultMmapReserve;
  reserve = std::min(reserve, position_limit);
  MemorySource* source = nullptr;
  const Status status = CreateMemorySource(options.source, reserve, &source);
  if (status != Status::kOk) return status;
  Heap* heap = new (std::nothrow) Heap(options, source);
  if (heap == nullptr || !heap->segments_.Reserve(4)) {
    delete heap;
    return Status::kOutOfMemory;
  }
  *out = heap;
  return Status::kOk;
}

Heap::Heap(const HeapOptions& options, MemorySource* source)
    : options_(options),
      source_(source),
      granule_shift_(static_cast<uint32_t>(__builtin_ctz(options.alignment))),
      bump_(options.strategy == Strategy::kBump),
      defer_below_(options.strategy == Strategy::kBestFit && options.coalesce
                       ? std::min<Granules>(kDeferredSizes, kDeferredBytes >> granule_shift_)
                       : 0),
      trim_threshold_(options.trim_threshold),
      small_granules_(options.split && options.strategy != Strategy::kBump
                          ? static_cast<Granules>(std::min<uint64_t>(options.segregate_small >> granule_shift_, kMaxChunkGranules))
                          : 0) {
  segments_.Attach(&gauge_);
  bounds_.Attach(&gauge_);
  free_.Attach(&gauge_);
  if (ScansFreeTable(options.strategy)) free_.KeepScanSizes();
  front_.Attach(&gauge_);
  quarantined_.Attach(&gauge_);
}

Heap::~Heap() {
  if (source_ == nullptr) return;
  quarantined_.Clear();
  FreeAll();
  Trim();
  // Segments still here sit below foreign memory; they stay mapped but unused (see README).
  delete source_;
}

// ---- addresses and sizes -------------------------------------------------------------------

bool Heap::PositionOf(uintptr_t address, Granules* pos) const {
  if (segments_.empty() || address < base_address_) return false;
  const uintptr_t offset = address - base_address_;
  if ((offset & (granule() - 1)) != 0 || (offset >> granule_shift_) >= kMaxPosition) return false;
  *pos = static_cast<Granules>(offset >> granule_shift_);
  return true;
}

Status Heap::ToGranules(uint64_t bytes, Granules* granules) const {
  const uint64_t count = bytes == 0 ? 1 : (bytes >> granule_shift_) + ((bytes & (granule() - 1)) != 0);
  if (count > kMaxChunkGranules) return Status::kOutOfMemory;
  *granules = static_cast<Granules>(count);
  return Status::kOk;
}

Heap::Segment* Heap::SegmentOf(Granules pos) {
  if (segments_.empty()) return nullptr;
  Segment& last = segments_.back();
  if (pos >= last.start) return pos < last.top ? &last : nullptr;
  // Several segments only when other code moved the break between ours: rare, and few.
  Segment* found = std::upper_bound(segments_.data(), &last, pos,
                                    [](Granules p, const Segment& segment) { return p < segment.start; });
  if (found == segments_.data()) return nullptr;
  --found;
  return pos < found->top ? found : nullptr;
}

bool Heap::SegmentBounds(uintptr_t address, uintptr_t* low, uintptr_t* high) const {
  Granules pos;
  if (!PositionOf(address, &pos)) return false;
  const Segment* segment = SegmentOf(pos);
  if (segment == nullptr) return false;
  *low = AddressOf(segment->start);
  *high = AddressOf(IsLast(*segment) ? segment->end : segment->top);
  return true;
}

bool Heap::IsQuarantined(Granules pos) const {
  for (size_t i = 0; i < quarantined_.size(); ++i) {
    if (quarantined_[i] == pos) return true;
  }
  return false;
}

Granules Heap::AlignmentPad(Granules pos, uint64_t align) const {
  if (align == 0) return 0;
  // The placement phase (a page move's destination shares its source's offset in a page) shifts
  // the boundaries; it is below `align`, so the pad stays below `align` too.
  const uintptr_t address = AddressOf(pos) - placement_phase_;
  return static_cast<Granules>((((address + align - 1) & ~(align - 1)) - address) >> granule_shift_);
}

void Heap::NoteHeapBytes(int64_t bytes) {
  heap_bytes_ += static_cast<uint64_t>(bytes);
  if (heap_bytes_ > peak_heap_bytes_) peak_heap_bytes_ = heap_bytes_;
  deferred_total_ = static_cast<uint32_t>(std::min<uint64_t>(kDeferredTotal, std::max<uint64_t>(kDeferredLeast, heap_bytes_ / kHeapBytesPerDeferred)));
}

Status Heap::UsableSize(uintptr_t address, uint64_t* bytes) const {
  Segment* segment;
  Granules pos, size;
  const Status status = const_cast<Heap*>(this)->FindLive(address, &segment, &pos, &size);
  if (status != Status::kOk) return status;
  *bytes = static_cast<uint64_t>(size) << granule_shift_;
  return Status::kOk;
}

// ---- table memory --------------------------------------------------------------------------

void Heap::ShrinkMetadata(bool all) {
  // The records held in reserve for the deferred chunks stay (CanDefer): settling never grows.
  // MaybeShrinkMetadata asked WantsShrink already; Trim shrinks to exactly what is in use.
  const uint32_t needed = free_.count() + front_.count();
  free_.Shrink(all ? needed : 2 * needed);
  if (all && front_.empty()) front_.Release();
  // Positions above the heap's end have no chunk: their bits and pages go back with the memory.
  const Granules end = segments_.empty() ? 0 : segments_.back().end;
  bounds_.Uncover(end);
  free_.Uncover(end);
}

// ---- statistics ----------------------------------------------------------------------------

Granules Heap::LargestBumpFree() const {
  Granules largest = 0;
  for (const Segment& segment : segments_) {
    for (Granules pos = segment.start; pos < segment.top;) {
      const Granules next = bounds_.NextStart(pos + 1, segment.top);
      if (bounds_.IsFree(pos) && next - pos > largest) largest = next - pos;
      pos = next;
    }
  }
  return largest;
}

HeapStats Heap::Stats() const {
  HeapStats stats{};
  if (!segments_.empty()) {
    stats.heap_start = AddressOf(segments_[0].start);
    stats.heap_end = AddressOf(segments_.back().end);
  }
  stats.heap_bytes = heap_bytes_;
  stats.peak_heap_bytes = peak_heap_bytes_;
  stats.live_bytes = live_granules_ << granule_shift_;
  stats.live_chunks = live_chunks_;
  stats.peak_live_bytes = peak_live_granules_ << granule_shift_;
  // Chunks tile each segment's [start, top): what is not live there is free.
  uint64_t chunk_granules = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    chunk_granules += segments_[i].top - segments_[i].start;
    stats.top_bytes += static_cast<uint64_t>(segments_[i].end - segments_[i].top) << granule_shift_;
  }
  stats.free_bytes = (chunk_granules - live_granules_) << granule_shift_;
  stats.free_chunks = bump_ ? bump_free_chunks_ : free_.count() + front_.count();
  stats.largest_free_chunk = static_cast<uint64_t>(bump_ ? LargestBumpFree() : std::max(free_.LargestSize(), front_.Largest())) << granule_shift_;
  stats.deferred_chunks = front_.count();
  // The tables inside the heap object count too: they are the heap's bookkeeping as much.
  stats.metadata_bytes = gauge_.bytes + FreeTable::kFixedBytes + FrontEnd::kFixedBytes;
  stats.peak_metadata_bytes = gauge_.peak + FreeTable::kFixedBytes + FrontEnd::kFixedBytes;
  stats.allocs = allocs_;
  stats.frees = frees_;
  stats.reallocs = reallocs_;
  stats.brk_calls = brk_calls_;
  stats.bytes_released = bytes_released_;
  stats.segments = segments_.size();
  stats.search_steps = search_steps_;
  return stats;
}

}  // namespace ma
