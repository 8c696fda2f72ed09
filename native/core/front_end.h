// Best fit's front end: per-size stacks of recently freed small chunks, kept unmerged (the
// deferred chunks of DESIGN's "Deferred merging"), in one compact array of 8-byte entries (the
// chunk's start and the next entry of its stack). No record in the free table, no page link: a
// free pushes, the next request of that size pops, as glibc's tcache does, but out of band.
//
// A chunk taken from a stack of its exact size is an exact fit, so best fit's rule (one of the
// smallest free chunks that fit) holds; for a larger request the heap compares the smallest
// occupied stack size >= n (one bit scan of `occupied_`) with the bins' best.
//
// The front end belongs to one heap and is used by one thread at a time, like the rest of the
// heap: it needs no lock and no static state. Its entries are found by size, never by address: a
// caller that would take one particular chunk (a merge or a realloc that meets it) looks only at
// the few most recent entries of its size (Remove's `most`), and leaves it deferred otherwise.
#pragma once

#include <cstdint>

#include "boundary_map.h"
#include "debug.h"
#include "metadata_array.h"

namespace ma {

class FrontEnd {
 public:
  // Sizes below this many granules have a stack.
  static constexpr uint32_t kSizes = 64;
  static constexpr uint32_t kNone = 0xFFFFFFFFu;

  FrontEnd() { Clear(); }

  // Room for one more Push (checked inline, grown out of line); false (nothing changed) without
  // memory.
  bool Reserve() { return first_vacant_ != kNone || entries_.size() < entries_.capacity() || entries_.Reserve(entries_.size() + 1); }

  void Push(Granules pos, Granules size) {
    MA_ASSERT(size > 0 && size < kSizes);
    uint32_t entry = first_vacant_;
    if (entry != kNone) {
      first_vacant_ = entries_[entry].next;
    } else {
      MA_ASSERT(entries_.size() < entries_.capacity());
      entry = static_cast<uint32_t>(entries_.size());
      entries_.PushBack(Entry{});
    }
    entries_[entry] = Entry{pos, heads_[size]};
    heads_[size] = entry;
    occupied_ |= uint64_t{1} << size;
    ++counts_[size];
    ++count_;
  }
  bool Has(Granules size) const { return heads_[size] != kNone; }
  // The most recently freed chunk of `size` (a stack that is not empty), taken off.
  Granules Pop(Granules size) {
    MA_ASSERT(size < kSizes && heads_[size] != kNone);
    const uint32_t entry = heads_[size];
    Entry& popped = entries_[entry];
    heads_[size] = popped.next;
    if (popped.next == kNone) occupied_ &= ~(uint64_t{1} << size);
    popped.next = first_vacant_;
    first_vacant_ = entry;
    --counts_[size];
    --count_;
    return popped.pos;
  }
  // Takes the chunk at `pos` off the stack of `size` when it is among the `most` most recent
  // entries of that stack; false (nothing changed) otherwise.
  bool Remove(Granules pos, Granules size, uint32_t most);
  // Whether the chunk at `pos` is among the `most` most recent entries of the stack of `size`.
  bool IsNear(Granules pos, Granules size, uint32_t most) const {
    if (size >= kSizes) return false;
    uint32_t entry = heads_[size];
    for (uint32_t hops = 0; entry != kNone && hops < most; ++hops, entry = entries_[entry].next) {
      if (entries_[entry].pos == pos) return true;
    }
    return false;
  }
  // The smallest size >= `size` with a chunk, or 0.
  Granules SmallestAtLeast(Granules size) const {
    if (size >= kSizes) return 0;
    const uint64_t candidates = occupied_ & (~uint64_t{0} << size);
    return candidates == 0 ? 0 : static_cast<Granules>(__builtin_ctzll(candidates));
  }
  Granules Largest() const { return occupied_ == 0 ? 0 : 63u - static_cast<Granules>(__builtin_clzll(occupied_)); }

  uint32_t count() const { return count_; }
  uint32_t count_of(Granules size) const { return counts_[size]; }
  bool empty() const { return count_ == 0; }
  // Forgets every chunk; keeps the memory.
  void Clear();
  // Gives the entries' memory back; the front end must be empty.
  void Release() {
    MA_ASSERT(count_ == 0);
    Clear();
    entries_.Release();
  }
  uint64_t metadata_bytes() const { return entries_.bytes() + kFixedBytes; }
  void Attach(MetadataGauge* gauge) { entries_.Attach(gauge); }
  // The bytes of the tables inside the object: the stacks' heads and counts.
  static constexpr uint64_t kFixedBytes = sizeof(uint32_t) * 2 * kSizes;

  // Calls visit(pos, size) for every chunk held (Check and Chunks).
  template <typename Visit>
  void ForEach(Visit visit) const {
    for (Granules size = 0; size < kSizes; ++size) {
      uint32_t hops = 0;
      for (uint32_t entry = heads_[size]; entry != kNone && entry < entries_.size() && hops++ <= count_; entry = entries_[entry].next) {
        visit(entries_[entry].pos, size);
      }
    }
  }
  // Takes off every chunk for which drop(pos, size) is true.
  template <typename Drop>
  void Filter(Drop drop) {
    for (Granules size = 0; size < kSizes; ++size) {
      uint32_t* link = &heads_[size];
      while (*link != kNone) {
        const uint32_t entry = *link;
        if (!drop(entries_[entry].pos, size)) {
          link = &entries_[entry].next;
          continue;
        }
        *link = entries_[entry].next;
        entries_[entry].next = first_vacant_;
        first_vacant_ = entry;
        --counts_[size];
        --count_;
      }
      if (heads_[size] == kNone) occupied_ &= ~(uint64_t{1} << size);
    }
  }
  // For Heap::Check: the first inconsistency between the stacks, their counts, the size bitmap
  // and the vacant chain, or nullptr.
  const char* CheckStacks() const;

 private:
  friend class HeapInspector;  // test/native/check_catches_corruption.cpp

  struct Entry {
    Granules pos;   // the chunk's first granule
    uint32_t next;  // the next entry of the same stack (vacant entries: the next vacant one)
  };

  MetadataArray<Entry> entries_;
  uint32_t first_vacant_ = kNone;
  uint32_t heads_[kSizes];   // top entry of each size's stack, kNone when empty
  uint32_t counts_[kSizes];  // chunks in each stack
  uint64_t occupied_ = 0;    // bit s: the stack of size s is not empty
  uint32_t count_ = 0;
};
static_assert(FrontEnd::kFixedBytes == sizeof(uint32_t) * FrontEnd::kSizes * 2, "kFixedBytes counts heads_ and counts_");

}  // namespace ma
