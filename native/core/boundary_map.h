// The address index: two bits per granule, kept outside the heap. A chunk of the heap is the run
// of granules from one set start bit to the next; the free bit (set only on a start) says whether
// that chunk is free. So "is this a live chunk's start?", "how long is it?" and "is my neighbour
// free?" are answered from the bits around an address, with the heap's own locality: the
// neighbours of a small chunk sit in the same 64-bit word.
//
// Large chunks would make "the next start after this one" a long walk over empty words, so the
// start bits carry a 64-ary summary: bit i of summary level 1 says whether start word i has a bit
// set, and so on up to a single word. A next- or previous-start query climbs at most until a
// level has a set bit nearby and descends again: six levels cover 2^32 granules.
#pragma once

#include <cstdint>

#include "debug.h"
#include "metadata_array.h"

namespace ma {

using Granules = uint32_t;  // a position or a size in units of the heap's alignment

class BoundaryMap {
 public:
  // Extends the covered positions to [0, limit), new positions without chunks; false (nothing
  // changed) when the system has no memory for the bits.
  bool Cover(Granules limit);
  // Gives back the bits of positions at and above `limit` (no chunk may start there); they are
  // covered again by the next Cover.
  void Uncover(Granules limit);
  Granules covered() const { return covered_; }
  // Reports the mapped bytes of every array to `gauge` (Heap's constructor).
  void Attach(MetadataGauge* gauge) {
    words_.Attach(gauge);
    for (MetadataArray<uint64_t>& summary : summaries_) summary.Attach(gauge);
  }
  // Forgets every chunk; keeps the memory.
  void Clear();

  bool IsStart(Granules pos) const { return (words_[pos >> 6].starts >> (pos & 63) & 1) != 0; }
  bool IsFree(Granules pos) const { return (words_[pos >> 6].frees >> (pos & 63) & 1) != 0; }

  // A chunk now starts at `pos` (free or live).
  void AddStart(Granules pos, bool free) {
    MA_ASSERT(pos < covered_);
    Word& word = words_[pos >> 6];
    const uint64_t bit = uint64_t{1} << (pos & 63);
    if (free) word.frees |= bit;
    if (word.starts == 0) MarkWordOccupied(pos >> 6);
    word.starts |= bit;
  }
  // No chunk starts at `pos` any more (it merged into the one below, or into the wilderness).
  void RemoveStart(Granules pos) {
    MA_ASSERT(IsStart(pos));
    Word& word = words_[pos >> 6];
    const uint64_t bit = uint64_t{1} << (pos & 63);
    word.frees &= ~bit;
    word.starts &= ~bit;
    if (word.starts == 0) MarkWordEmpty(pos >> 6);
  }
  // The free bit is set only where a chunk starts.
  void SetFree(Granules pos) {
    MA_ASSERT(IsStart(pos));
    words_[pos >> 6].frees |= uint64_t{1} << (pos & 63);
  }
  void SetLive(Granules pos) {
    MA_ASSERT(IsStart(pos));
    words_[pos >> 6].frees &= ~(uint64_t{1} << (pos & 63));
  }

  // The end of the chunk that starts at `pos`: the next start, or `limit` when none is below it.
  Granules EndOf(Granules pos, Granules limit) const {
    const uint64_t above = words_[pos >> 6].starts & (~uint64_t{1} << (pos & 63));
    if (above != 0) {
      const Granules found = (pos & ~63u) | static_cast<Granules>(__builtin_ctzll(above));
      return found < limit ? found : limit;
    }
    // The last chunk of its word, and its word reaches `limit`: the chunk at a heap's top, which
    // bump frees and reallocates over and over (NextStartFar's climb cost cmake-help's bump replay
    // ~10 instructions per request; callgrind).
    if ((uint64_t{pos} | 63) + 1 >= limit) return limit;
    return NextStartFar(pos >> 6, limit);
  }

  // The first start at or after `from`, or `limit` when there is none below it.
  Granules NextStart(Granules from, Granules limit) const {
    if (from >= limit) return limit;
    const uint64_t here = words_[from >> 6].starts & (~uint64_t{0} << (from & 63));
    if (here != 0) {
      const Granules found = (from & ~63u) | static_cast<Granules>(__builtin_ctzll(here));
      return found < limit ? found : limit;
    }
    return NextStartFar(from >> 6, limit);
  }
  // The last start before `before`; one must exist at or above `floor`.
  Granules PrevStart(Granules before, Granules floor) const {
    const Granules last = before - 1;
    const uint64_t here = words_[last >> 6].starts & (~uint64_t{0} >> (63 - (last & 63)));
    if (here != 0) return (last & ~63u) | (63u - static_cast<Granules>(__builtin_clzll(here)));
    return PrevStartFar(last >> 6, floor);
  }

  uint64_t metadata_bytes() const;

  // For Heap::Check: the first summary bit that disagrees with the words below it, or nullptr.
  const char* CheckSummaries() const;

  struct Word {
    uint64_t starts;  // bit b: a chunk starts at granule 64 * index + b
    uint64_t frees;   // bit b: ...and it is free (a subset of `starts`)
  };
  // The word holding `pos`, for a fast path that reads and sets its bits directly.
  Word& WordOf(Granules pos) { return words_[pos >> 6]; }

 private:
  static constexpr int kMaxSummaryLevels = 5;  // 2^26 words -> 2^20 -> 2^14 -> 2^8 -> 4 -> 1

  void MarkWordOccupied(uint32_t word);
  void MarkWordEmpty(uint32_t word);
  Granules NextStartFar(uint32_t word, Granules limit) const;
  Granules PrevStartFar(uint32_t word, Granules floor) const;

  MetadataArray<Word> words_;
  // summaries_[k] holds level k + 1: bit i set <=> word i of the level below is not zero.
  MetadataArray<uint64_t> summaries_[kMaxSummaryLevels];
  int levels_ = 0;        // summary levels in use; the last one has a single word
  Granules covered_ = 0;
};

}  // namespace ma
