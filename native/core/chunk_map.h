// The address index: every chunk of the heap, live or free, keyed by its start. It answers "is
// this a live chunk's start?" for free/realloc/sizeOf and "is my neighbour free?" for merging,
// without a byte of metadata inside the heap.
//
// Open addressing with linear probing and backward-shift deletion (no tombstones, so lookups stay
// short under churn). Positions are granule offsets from the heap's base; consecutive chunks have
// nearby keys, and Fibonacci hashing spreads them over the table.
#pragma once

#include <cstdint>

#include "metadata_allocator.h"

namespace ma {

using Granules = uint32_t;  // a position or a size in units of the heap's alignment

// What `state` holds besides a free-table slot.
constexpr uint32_t kLiveChunk = 0xFFFFFFFFu;
// Live but waiting for a JS finalizer: a view of it escaped a detach (ArrayBuffer transfer), so
// reset() must not reuse it. Only the addon pins.
constexpr uint32_t kPinnedChunk = 0xFFFFFFFEu;

struct ChunkEntry {
  Granules pos;        // kEmptyKey marks an empty slot
  Granules size;       // > 0; the chunk is [pos, pos + size)
  Granules prev_size;  // size of the chunk just below, 0 when this one starts its segment
  uint32_t state;      // kLiveChunk, kPinnedChunk, or the index of its record in the free table

  bool is_free() const { return state < kPinnedChunk; }
};

class ChunkMap {
 public:
  static constexpr Granules kEmptyKey = 0xFFFFFFFFu;

  ChunkMap();

  // nullptr when no chunk starts at `pos`. Pointers stay valid until the next Insert.
  ChunkEntry* Find(Granules pos) {
    const uint32_t mask = mask_;
    for (uint32_t i = Slot(pos);; i = (i + 1) & mask) {
      ChunkEntry& entry = slots_[i];
      if (entry.pos == pos) return &entry;
      if (entry.pos == kEmptyKey) return nullptr;
    }
  }
  const ChunkEntry* Find(Granules pos) const { return const_cast<ChunkMap*>(this)->Find(pos); }

  // `pos` must not be present. May grow the table, which moves every entry.
  ChunkEntry* Insert(Granules pos, Granules size, Granules prev_size, uint32_t state);
  void Erase(ChunkEntry* entry);
  void Clear();

  uint32_t size() const { return count_; }
  uint64_t metadata_bytes() const { return slots_.capacity() * sizeof(ChunkEntry); }

  template <typename Visit>
  void ForEach(Visit visit) const {
    for (const ChunkEntry& entry : slots_) {
      if (entry.pos != kEmptyKey) visit(entry);
    }
  }

 private:
  uint32_t Slot(Granules pos) const {
    return static_cast<uint32_t>((static_cast<uint64_t>(pos) * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void Grow();

  MetadataVector<ChunkEntry> slots_;  // size is a power of two, at most half full
  uint32_t mask_;
  uint32_t shift_;                 // 64 - log2(slots_.size())
  uint32_t count_;
};

}  // namespace ma
