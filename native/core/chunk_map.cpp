// Growth and deletion of the address index (lookups are inline in chunk_map.h).
#include "chunk_map.h"

#include <algorithm>

namespace ma {
namespace {
constexpr uint32_t kInitialSlots = 64;
constexpr ChunkEntry kEmptyEntry{ChunkMap::kEmptyKey, 0, 0, 0};
}  // namespace

ChunkMap::ChunkMap() {
  slots_.assign(kInitialSlots, kEmptyEntry);
  mask_ = kInitialSlots - 1;
  shift_ = 64 - 6;
  count_ = 0;
}

void ChunkMap::Clear() {
  // Keeps the capacity: a heap that was this busy once will likely be again.
  std::fill(slots_.begin(), slots_.end(), kEmptyEntry);
  count_ = 0;
}

ChunkEntry* ChunkMap::Insert(Granules pos, Granules size, Granules prev_size, uint32_t state) {
  // Half full at most: linear probing stays at ~1.5 probes per hit.
  if ((count_ + 1) * 2 > slots_.size()) Grow();
  uint32_t i = Slot(pos);
  while (slots_[i].pos != kEmptyKey) i = (i + 1) & mask_;
  slots_[i] = ChunkEntry{pos, size, prev_size, state};
  ++count_;
  return &slots_[i];
}

void ChunkMap::Erase(ChunkEntry* entry) {
  // Backward-shift deletion: pull later members of the probe run into the hole so that every
  // remaining key is still reachable from its home slot without tombstones.
  uint32_t hole = static_cast<uint32_t>(entry - slots_.data());
  for (uint32_t i = (hole + 1) & mask_;; i = (i + 1) & mask_) {
    const Granules pos = slots_[i].pos;
    if (pos == kEmptyKey) break;
    const uint32_t home = Slot(pos);
    // Move the entry if its home is not within (hole, i] on the ring.
    if (((i - home) & mask_) >= ((i - hole) & mask_)) {
      slots_[hole] = slots_[i];
      hole = i;
    }
  }
  slots_[hole] = kEmptyEntry;
  --count_;
}

void ChunkMap::Grow() {
  MetadataVector<ChunkEntry> old;
  old.swap(slots_);
  slots_.assign(old.size() * 2, kEmptyEntry);
  mask_ = static_cast<uint32_t>(slots_.size() - 1);
  --shift_;
  for (const ChunkEntry& entry : old) {
    if (entry.pos == kEmptyKey) continue;
    uint32_t i = Slot(entry.pos);
    while (slots_[i].pos != kEmptyKey) i = (i + 1) & mask_;
    slots_[i] = entry;
  }
}

}  // namespace ma
