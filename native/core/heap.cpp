// Allocation, release, realloc and upkeep of a Heap. The hot paths are Alloc -> AllocGranules
// -> TakeFreeChunk/TakeFromTop and Free -> ReleaseChunk; everything else runs rarely.
#include "heap.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

namespace ma {
namespace {

// Chunk sizes stay below 2^31 granules and positions below 2^32 - 16, so that a position plus a
// size plus an alignment pad never overflows 32 bits (ChunkMap reserves 0xFFFFFFFF).
constexpr uint64_t kMaxChunkGranules = 0x7FFFFFFFu;
constexpr uint64_t kMaxPosition = 0xFFFFFFF0u;
constexpr uint64_t kDefaultMmapReserve = uint64_t{64} << 30;
constexpr uint64_t kMaxGrowth = uint64_t{1} << 40;
// Automatic trims adapt the threshold upward, at most this far (an explicit Trim() takes all).
constexpr uint64_t kMaxAdaptiveTrimThreshold = uint64_t{32} << 20;

uint64_t RoundUp(uint64_t value, uint64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

std::string Describe(const char* what, uintptr_t address) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "%s (at 0x%lx)", what, static_cast<unsigned long>(address));
  return buffer;
}

}  // namespace

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
  *out = new (std::nothrow) Heap(options, source);
  if (*out == nullptr) {
    delete source;
    return Status::kOutOfMemory;
  }
  return Status::kOk;
}

Heap::Heap(const HeapOptions& options, MemorySource* source)
    : options_(options),
      source_(source),
      granule_shift_(static_cast<uint32_t>(__builtin_ctz(options.alignment))),
      trim_threshold_(options.trim_threshold),
      small_granules_(static_cast<Granules>(std::min<uint64_t>(options.segregate_small >> granule_shift_, kMaxChunkGranules))) {}

Heap::~Heap() {
  DropAllChunks();
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

Status Heap::FindLive(uintptr_t address, ChunkEntry** entry) {
  Granules pos;
  if (!PositionOf(address, &pos)) return Status::kInvalidPointer;
  ChunkEntry* found = chunks_.Find(pos);
  if (found == nullptr) return Status::kInvalidPointer;
  // A pinned chunk was freed by its owner already; only UnpinAndFree may touch it.
  if (found->state != kLiveChunk) return Status::kDoubleFree;
  *entry = found;
  return Status::kOk;
}

Granules Heap::AlignmentPad(Granules pos, uint64_t align) const {
  if (align == 0) return 0;
  const uintptr_t address = AddressOf(pos);
  return static_cast<Granules>((((address + align - 1) & ~(align - 1)) - address) >> granule_shift_);
}

void Heap::NoteLive(int64_t granules) {
  live_granules_ += static_cast<uint64_t>(granules);
  if (live_granules_ > peak_live_granules_) peak_live_granules_ = live_granules_;
}

void Heap::NoteHeapBytes(int64_t bytes) {
  heap_bytes_ += static_cast<uint64_t>(bytes);
  if (heap_bytes_ > peak_heap_bytes_) peak_heap_bytes_ = heap_bytes_;
}

// ---- allocation ----------------------------------------------------------------------------

Status Heap::Alloc(uint64_t bytes, uint64_t align, uintptr_t* address) {
  if ((align & (align - 1)) != 0 || align > kMaxAlign) return Status::kInvalidAlignment;
  Granules size;
  Status status = ToGranules(bytes, &size);
  if (status != Status::kOk) return status;
  Granules pos;
  status = AllocGranules(size, align > granule() ? align : 0, &pos);
  if (status != Status::kOk) return status;
  ++allocs_;
  *address = AddressOf(pos);
  return Status::kOk;
}

Status Heap::AllocGranules(Granules size, uint64_t align, Granules* pos) {
  // An aligned request searches for room to slide its start up to the boundary.
  const Granules worst_pad = align == 0 ? 0 : static_cast<Granules>((align >> granule_shift_) - 1);
  // The search's steps count once the allocation succeeds: a failed call leaves stats() as it was.
  uint64_t steps = 0;
  const uint32_t record = FindFreeChunk(options_.strategy, free_, size + worst_pad, rover_, &steps);
  if (record != kNoRecord) {
    *pos = TakeFreeChunk(record, size, align);
  } else {
    const Status status = TakeFromTop(size, align, pos);
    if (status != Status::kOk) return status;
  }
  search_steps_ += steps;
  ++live_chunks_;
  rover_ = *pos + size;
  return Status::kOk;
}

Granules Heap::TakeFreeChunk(uint32_t record, Granules size, uint64_t align) {
  const FreeRecord chunk = free_[record];
  free_.Remove(record);
  const Granules chunk_end = chunk.pos + chunk.size;
  const Granules pad = AlignmentPad(chunk.pos, align);
  const Granules pos = chunk.pos + pad;
  const Granules room = chunk.size - pad;
  const Granules taken = options_.split && room > size ? size : room;

  ChunkEntry* entry = chunks_.Find(chunk.pos);
  if (IsSmall(size, align) && room > size) {
    // A small request takes the high end, so that small chunks gather apart from large ones and
    // large ones, freed together, merge into holes a larger request can use.
    const Granules rest = room - size;
    entry->size = rest;
    entry->state = free_.Insert(chunk.pos, rest);
    chunks_.Insert(chunk_end - size, size, rest, kLiveChunk);
    SetPrevSize(chunk_end, size);
    NoteLive(size);
    return chunk_end - size;
  }
  if (pad != 0) {
    // The pad stays free in place; the allocation becomes a chunk of its own above it.
    entry->size = pad;
    entry->state = free_.Insert(chunk.pos, pad);
    chunks_.Insert(pos, taken, pad, kLiveChunk);
  } else {
    entry->size = taken;
    entry->state = kLiveChunk;
  }
  if (taken < room) {
    AddFreeChunk(pos + taken, room - taken, taken);
    SetPrevSize(chunk_end, room - taken);
  } else if (pad != 0) {
    SetPrevSize(chunk_end, taken);
  }
  NoteLive(taken);
  return pos;
}

Status Heap::TakeFromTop(Granules size, uint64_t align, Granules* pos) {
  const Granules worst_pad = align == 0 ? 0 : static_cast<Granules>((align >> granule_shift_) - 1);
  if (segments_.empty() ||
      segments_.back().end - segments_.back().top < AlignmentPad(segments_.back().top, align) + size) {
    const Status status = GrowTop(size + worst_pad);
    if (status != Status::kOk) return status;
  }
  Segment& last = segments_.back();
  if (IsSmall(size, align) && last.end - last.top > size) {
    // The same for the wilderness: the small chunk takes its high end and the rest of it becomes
    // a free chunk that larger requests split from the bottom.
    const Granules rest = last.end - last.top - size;
    AddFreeChunk(last.top, rest, last.top_prev_size);
    *pos = last.end - size;
    chunks_.Insert(*pos, size, rest, kLiveChunk);
    last.top = last.end;
    last.top_prev_size = size;
    NoteLive(size);
    return Status::kOk;
  }
  const Granules pad = AlignmentPad(last.top, align);
  Granules prev_size = last.top_prev_size;
  if (pad != 0) {
    AddFreeChunk(last.top, pad, prev_size);
    prev_size = pad;
    last.top += pad;
  }
  *pos = last.top;
  chunks_.Insert(last.top, size, prev_size, kLiveChunk);
  last.top += size;
  last.top_prev_size = size;
  NoteLive(size);
  return Status::kOk;
}

Status Heap::GrowTop(Granules needed) {
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

  if (extension.contiguous) {
    const uint64_t end = last->end + ((extension.end - expected_end) >> granule_shift_);
    if (end > kMaxPosition) return give_back();
    last->end = static_cast<Granules>(end);
    // The last segment may be an older one whose free tail was a chunk while it could not grow.
    AbsorbFreeTailIntoTop(last);
  } else {
    if (last == nullptr) base_address_ = extension.start;
    if (extension.start < base_address_) return give_back();
    const uint64_t start = (extension.start - base_address_) >> granule_shift_;
    const uint64_t end = (extension.end - base_address_) >> granule_shift_;
    if (end > kMaxPosition) return give_back();
    if (last != nullptr && last->top < last->end) {
      // Other code moved the break: our old wilderness can no longer grow, so it becomes a chunk.
      const Granules rest = last->end - last->top;
      AddFreeChunk(last->top, rest, last->top_prev_size);
      last->top_prev_size = rest;
      last->top = last->end;
    }
    segments_.push_back(Segment{extension.base, static_cast<Granules>(start), static_cast<Granules>(start),
                                static_cast<Granules>(end), 0});
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

void Heap::AddFreeChunk(Granules pos, Granules size, Granules prev_size) {
  chunks_.Insert(pos, size, prev_size, free_.Insert(pos, size));
}

void Heap::SetPrevSize(Granules pos, Granules prev_size) {
  if (ChunkEntry* next = chunks_.Find(pos)) {
    next->prev_size = prev_size;
    return;
  }
  // No chunk starts there: `pos` is the top of a segment.
  for (auto segment = segments_.rbegin(); segment != segments_.rend(); ++segment) {
    if (segment->top == pos) {
      segment->top_prev_size = prev_size;
      return;
    }
  }
}

// ---- release -------------------------------------------------------------------------------

Status Heap::Free(uintptr_t address) {
  ChunkEntry* entry;
  const Status status = FindLive(address, &entry);
  if (status != Status::kOk) return status;
  --live_chunks_;
  ++frees_;
  ReleaseChunk(entry);
  return Status::kOk;
}

void Heap::ReleaseChunk(ChunkEntry* self) {
  const Granules pos = self->pos;
  const Granules size = self->size;
  NoteLive(-static_cast<int64_t>(size));
  Segment& last = segments_.back();
  const bool merge = options_.coalesce;

  ChunkEntry* after = nullptr;
  if (merge && pos + size != last.top) {
    after = chunks_.Find(pos + size);
    if (after != nullptr && !after->is_free()) after = nullptr;
  }
  ChunkEntry* before = nullptr;
  if (merge && self->prev_size != 0) {
    before = chunks_.Find(pos - self->prev_size);
    if (!before->is_free()) before = nullptr;
  }
  // Every erase may move other entries, so erases come last and re-find what they need.
  if (pos + size == last.top && (merge || options_.strategy == Strategy::kBump)) {
    // Into the wilderness (the bump strategy rolls its pointer back this way even without merging).
    Granules top = pos, top_prev_size = self->prev_size;
    if (before != nullptr) {
      free_.Remove(before->state);
      top = before->pos;
      top_prev_size = before->prev_size;
    }
    chunks_.Erase(self);
    if (before != nullptr) chunks_.Erase(chunks_.Find(top));
    last.top = top;
    last.top_prev_size = top_prev_size;
    MaybeTrim();
    return;
  }
  if (after == nullptr && before == nullptr) {
    self->state = free_.Insert(pos, size);  // neighbours keep their prev_size: nothing moved
    return;
  }
  Granules merged_size = size;
  Granules end = pos + size;
  if (after != nullptr) {
    free_.Remove(after->state);
    merged_size += after->size;
    end += after->size;
  }
  ChunkEntry* survivor = self;
  if (before != nullptr) {
    free_.Remove(before->state);
    merged_size += before->size;
    survivor = before;
  }
  survivor->size = merged_size;
  survivor->state = free_.Insert(survivor->pos, merged_size);
  SetPrevSize(end, merged_size);
  const Granules after_pos = pos + size;
  if (before != nullptr) chunks_.Erase(self);
  if (after != nullptr) chunks_.Erase(chunks_.Find(after_pos));
}

Status Heap::Realloc(uintptr_t address, uint64_t bytes, uintptr_t* new_address) {
  ChunkEntry* entry;
  Status status = FindLive(address, &entry);
  if (status != Status::kOk) return status;
  Granules size;
  status = ToGranules(bytes, &size);
  if (status != Status::kOk) return status;
  const Granules pos = entry->pos;
  const Granules old = entry->size;

  if (size <= old) {
    if (options_.split && size < old) {
      // Cut the tail off as a chunk of its own and free it, merging as any free would.
      entry->size = size;
      SetPrevSize(pos + old, old - size);
      ReleaseChunk(chunks_.Insert(pos + size, old - size, size, kLiveChunk));
    }
    ++reallocs_;
    *new_address = address;
    return Status::kOk;
  }

  const Granules extra = size - old;
  if (pos + old == segments_.back().top) {
    Segment* last = &segments_.back();
    if (last->end - last->top < extra && GrowTop(extra) == Status::kOk) last = &segments_.back();
    if (pos + old == last->top && last->end - last->top >= extra) {
      chunks_.Find(pos)->size = size;
      last->top += extra;
      last->top_prev_size = size;
      NoteLive(extra);
      ++reallocs_;
      *new_address = address;
      return Status::kOk;
    }
  } else if (ChunkEntry* after = chunks_.Find(pos + old); after != nullptr && after->is_free() && old + after->size >= size) {
    const Granules joined = old + after->size;
    free_.Remove(after->state);
    chunks_.Erase(after);
    const Granules taken = options_.split && joined > size ? size : joined;
    chunks_.Find(pos)->size = taken;
    if (taken < joined) {
      AddFreeChunk(pos + taken, joined - taken, taken);
      SetPrevSize(pos + joined, joined - taken);
    } else {
      SetPrevSize(pos + joined, taken);
    }
    NoteLive(taken - old);
    ++reallocs_;
    *new_address = address;
    return Status::kOk;
  }

  Granules moved_to;
  status = AllocGranules(size, 0, &moved_to);
  if (status != Status::kOk) return status;
  std::memcpy(reinterpret_cast<void*>(AddressOf(moved_to)), reinterpret_cast<const void*>(address),
              static_cast<size_t>(old) << granule_shift_);
  --live_chunks_;
  ReleaseChunk(chunks_.Find(pos));
  ++reallocs_;
  *new_address = AddressOf(moved_to);
  return Status::kOk;
}

Status Heap::UsableSize(uintptr_t address, uint64_t* bytes) const {
  ChunkEntry* entry;
  const Status status = const_cast<Heap*>(this)->FindLive(address, &entry);
  if (status != Status::kOk) return status;
  *bytes = static_cast<uint64_t>(entry->size) << granule_shift_;
  return Status::kOk;
}

Status Heap::Pin(uintptr_t address) {
  ChunkEntry* entry;
  const Status status = FindLive(address, &entry);
  if (status != Status::kOk) return status;
  entry->state = kPinnedChunk;
  ++pinned_chunks_;
  return Status::kOk;
}

Status Heap::UnpinAndFree(uintptr_t address) {
  Granules pos;
  if (!PositionOf(address, &pos)) return Status::kInvalidPointer;
  ChunkEntry* entry = chunks_.Find(pos);
  if (entry == nullptr || entry->state != kPinnedChunk) return Status::kInvalidPointer;
  entry->state = kLiveChunk;
  --pinned_chunks_;
  --live_chunks_;
  ++frees_;
  ReleaseChunk(entry);
  return Status::kOk;
}

// ---- giving memory back --------------------------------------------------------------------

void Heap::AbsorbFreeTailIntoTop(Segment* segment) {
  if (!options_.coalesce || segment->top_prev_size == 0) return;
  ChunkEntry* tail = chunks_.Find(segment->top - segment->top_prev_size);
  if (tail == nullptr || !tail->is_free()) return;
  free_.Remove(tail->state);
  segment->top = tail->pos;
  segment->top_prev_size = tail->prev_size;
  chunks_.Erase(tail);
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
    segments_.pop_back();
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
  uint64_t released = 0;
  while (!segments_.empty()) {
    AbsorbFreeTailIntoTop(&segments_.back());
    const size_t segments = segments_.size();
    released += ReleaseTop(0);
    if (segments_.size() == segments) break;  // it holds chunks, or foreign memory sits above it
  }
  return released;
}

void Heap::DropAllChunks() {
  chunks_.Clear();
  free_.Clear();
  live_granules_ = 0;
  live_chunks_ = 0;
  pinned_chunks_ = 0;
  rover_ = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    Segment& segment = segments_[i];
    segment.top = segment.start;
    segment.top_prev_size = 0;
    if (i + 1 < segments_.size() && segment.end > segment.start) {
      // Only the last segment has wilderness; an older one becomes one free chunk.
      AddFreeChunk(segment.start, segment.end - segment.start, 0);
      segment.top = segment.end;
      segment.top_prev_size = segment.end - segment.start;
    }
  }
}

void Heap::Reset() {
  if (pinned_chunks_ == 0) {
    DropAllChunks();
  } else {
    // Pinned chunks are still referenced by a transferred buffer: free everything around them.
    std::vector<Granules> live;
    chunks_.ForEach([&](const ChunkEntry& entry) {
      if (entry.state == kLiveChunk) live.push_back(entry.pos);
    });
    for (const Granules pos : live) {
      --live_chunks_;
      ReleaseChunk(chunks_.Find(pos));
    }
  }
  Trim();
}

// ---- inspection ----------------------------------------------------------------------------

HeapStats Heap::Stats() const {
  HeapStats stats{};
  if (!segments_.empty()) {
    stats.heap_start = AddressOf(segments_.front().start);
    stats.heap_end = AddressOf(segments_.back().end);
  }
  stats.heap_bytes = heap_bytes_;
  stats.peak_heap_bytes = peak_heap_bytes_;
  stats.live_bytes = live_granules_ << granule_shift_;
  stats.live_chunks = live_chunks_;
  stats.peak_live_bytes = peak_live_granules_ << granule_shift_;
  stats.free_bytes = free_.bytes_in_granules() << granule_shift_;
  stats.free_chunks = free_.count();
  stats.largest_free_chunk = static_cast<uint64_t>(free_.LargestSize()) << granule_shift_;
  for (const Segment& segment : segments_) stats.top_bytes += static_cast<uint64_t>(segment.end - segment.top) << granule_shift_;
  stats.metadata_bytes = chunks_.metadata_bytes() + free_.metadata_bytes() + segments_.capacity() * sizeof(Segment);
  stats.allocs = allocs_;
  stats.frees = frees_;
  stats.reallocs = reallocs_;
  stats.brk_calls = brk_calls_;
  stats.bytes_released = bytes_released_;
  stats.segments = segments_.size();
  stats.search_steps = search_steps_;
  return stats;
}

void Heap::Chunks(std::vector<ChunkInfo>* out) const {
  out->clear();
  out->reserve(chunks_.size());
  chunks_.ForEach([&](const ChunkEntry& entry) {
    out->push_back(ChunkInfo{AddressOf(entry.pos), static_cast<uint64_t>(entry.size) << granule_shift_, !entry.is_free(),
                             entry.state == kPinnedChunk});
  });
  std::sort(out->begin(), out->end(), [](const ChunkInfo& a, const ChunkInfo& b) { return a.address < b.address; });
}

bool Heap::Check(std::string* problem) const {
  auto fail = [&](const char* what, Granules pos) {
    *problem = Describe(what, AddressOf(pos));
    return false;
  };
  uint64_t chunks = 0, free_chunks = 0, live_granules = 0, live_chunks = 0, pinned = 0, accounted = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& segment = segments_[i];
    if (!(segment.start <= segment.top && segment.top <= segment.end)) return fail("a segment's start, top and end are out of order", segment.start);
    if (AddressOf(segment.start) < segment.base) return fail("a segment starts below its base", segment.start);
    if (i > 0 && segment.base < AddressOf(segments_[i - 1].end)) return fail("two segments overlap", segment.start);
    if (i + 1 < segments_.size() && segment.top != segment.end) return fail("an older segment still has wilderness", segment.top);
    accounted += AddressOf(segment.end) - segment.base - (static_cast<uint64_t>(segment.top - segment.start) << granule_shift_);

    Granules pos = segment.start, prev_size = 0;
    bool prev_free = false;
    while (pos < segment.top) {
      const ChunkEntry* entry = chunks_.Find(pos);
      if (entry == nullptr) return fail("the chunks of a segment do not tile it: no chunk starts here", pos);
      if (entry->size == 0) return fail("a chunk has size 0", pos);
      if (entry->prev_size != prev_size) return fail("a chunk's prev_size is not its lower neighbour's size", pos);
      if (static_cast<uint64_t>(pos) + entry->size > segment.top) return fail("a chunk runs past its segment's top", pos);
      if (entry->is_free()) {
        if (entry->state >= free_.slots() || free_[entry->state].pos != pos || free_[entry->state].size != entry->size) {
          return fail("a free chunk's table record disagrees with it", pos);
        }
        if (options_.coalesce && prev_free) return fail("two adjacent free chunks while merging is on", pos);
        ++free_chunks;
      } else {
        live_granules += entry->size;
        ++live_chunks;
        if (entry->state == kPinnedChunk) ++pinned;
      }
      prev_free = entry->is_free();
      prev_size = entry->size;
      pos += entry->size;
      ++chunks;
    }
    if (segment.top_prev_size != prev_size) return fail("a segment's top does not know the chunk below it", segment.top);
    if (options_.coalesce && prev_free && i + 1 == segments_.size() && segment.top < segment.end) {
      return fail("a free chunk borders the wilderness while merging is on", segment.top);
    }
  }
  if (chunks != chunks_.size()) {
    *problem = "the address index holds chunks outside every segment";
    return false;
  }
  if (free_chunks != free_.count()) {
    *problem = "the free table holds records of no free chunk";
    return false;
  }
  if (live_granules != live_granules_ || live_chunks != live_chunks_ || pinned != pinned_chunks_) {
    *problem = "live bytes or chunks disagree with the chunks in the heap";
    return false;
  }
  if (const char* index_problem = free_.CheckIndexes()) {
    *problem = index_problem;
    return false;
  }
  accounted += (live_granules + free_.bytes_in_granules()) << granule_shift_;
  if (accounted != heap_bytes_) {
    *problem = "live, free, wilderness and padding bytes do not add up to the heap's bytes";
    return false;
  }
  return true;
}

}  // namespace ma
