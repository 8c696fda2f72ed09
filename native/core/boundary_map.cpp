// Growth of the boundary bits and the far cases of the start queries (the near cases, one word
// away, are inline in boundary_map.h).
#include "boundary_map.h"

namespace ma {
namespace {

uint64_t Bit(uint64_t index) { return uint64_t{1} << (index & 63); }
uint32_t Lowest(uint64_t bits) { return static_cast<uint32_t>(__builtin_ctzll(bits)); }
uint32_t Highest(uint64_t bits) { return 63u - static_cast<uint32_t>(__builtin_clzll(bits)); }

}  // namespace

bool BoundaryMap::Cover(Granules limit) {
  if (limit <= covered_) return true;
  const size_t words = (static_cast<size_t>(limit) + 63) / 64;
  if (!words_.Resize(words, Word{0, 0})) return false;
  size_t below = words;
  int levels = 0;
  while (below > 1) {
    below = (below + 63) / 64;
    if (!summaries_[levels].Resize(below, 0)) return false;  // the words grown so far stay zero
    ++levels;
  }
  // A level that did not exist before summarizes words that may already be in use.
  for (int level = levels_; level < levels; ++level) {
    MetadataArray<uint64_t>& summary = summaries_[level];
    summary.Fill(0);
    const size_t count = level == 0 ? words_.size() : summaries_[level - 1].size();
    for (size_t i = 0; i < count; ++i) {
      const bool occupied = level == 0 ? words_[i].starts != 0 : summaries_[level - 1][i] != 0;
      if (occupied) summary[i >> 6] |= Bit(i);
    }
  }
  levels_ = levels;
  covered_ = limit;
  return true;
}

void BoundaryMap::Uncover(Granules limit) {
  if (limit >= covered_) return;
  const size_t words = (static_cast<size_t>(limit) + 63) / 64;
  MA_ASSERT(NextStart(limit, covered_) == covered_);  // nothing starts in what is given back
  words_.Truncate(words);
  words_.ShrinkTo(words);
  // The levels that remain summarize fewer words; the bits of the words given back were zero.
  size_t below = words;
  int levels = 0;
  while (below > 1) {
    below = (below + 63) / 64;
    summaries_[levels].Truncate(below);
    summaries_[levels].ShrinkTo(below);
    ++levels;
  }
  for (int level = levels; level < levels_; ++level) summaries_[level].Release();
  levels_ = levels;
  covered_ = limit;
}

void BoundaryMap::Clear() {
  words_.Fill(Word{0, 0});
  for (int level = 0; level < levels_; ++level) summaries_[level].Fill(0);
}

uint64_t BoundaryMap::metadata_bytes() const {
  uint64_t bytes = words_.bytes();
  for (const MetadataArray<uint64_t>& summary : summaries_) bytes += summary.bytes();
  return bytes;
}

void BoundaryMap::MarkWordOccupied(uint32_t word) {
  uint64_t index = word;
  for (int level = 0; level < levels_; ++level) {
    uint64_t& summary = summaries_[level][index >> 6];
    const bool was_empty = summary == 0;
    summary |= Bit(index);
    if (!was_empty) return;
    index >>= 6;
  }
}

void BoundaryMap::MarkWordEmpty(uint32_t word) {
  uint64_t index = word;
  for (int level = 0; level < levels_; ++level) {
    uint64_t& summary = summaries_[level][index >> 6];
    summary &= ~Bit(index);
    if (summary != 0) return;
    index >>= 6;
  }
}

Granules BoundaryMap::NextStartFar(uint32_t word, Granules limit) const {
  uint64_t index = word;
  for (int level = 0; level < levels_; ++level) {
    const uint64_t summary_word = index >> 6;
    const uint64_t above = (index & 63) == 63 ? 0 : summaries_[level][summary_word] & (~uint64_t{0} << ((index & 63) + 1));
    if (above != 0) {
      index = (summary_word << 6) | Lowest(above);
      for (int down = level - 1; down >= 0; --down) index = (index << 6) | Lowest(summaries_[down][index]);
      const uint64_t found = (index << 6) | Lowest(words_[index].starts);
      return found < limit ? static_cast<Granules>(found) : limit;
    }
    // Whatever the next level finds starts past this summary word's reach.
    if (((summary_word + 1) << (6 * level + 12)) >= limit) return limit;
    index = summary_word;
  }
  return limit;
}

Granules BoundaryMap::PrevStartFar(uint32_t word, Granules floor) const {
  uint64_t index = word;
  for (int level = 0; level < levels_; ++level) {
    const uint64_t summary_word = index >> 6;
    const uint64_t below = summaries_[level][summary_word] & (Bit(index) - 1);
    if (below != 0) {
      index = (summary_word << 6) | Highest(below);
      for (int down = level - 1; down >= 0; --down) index = (index << 6) | Highest(summaries_[down][index]);
      return static_cast<Granules>((index << 6) | Highest(words_[index].starts));
    }
    index = summary_word;
  }
  return floor;  // unreachable while the caller's promise holds
}

const char* BoundaryMap::CheckSummaries() const {
  for (size_t i = 0; i < words_.size(); ++i) {
    if ((words_[i].frees & ~words_[i].starts) != 0) return "a free bit is set where no chunk starts";
  }
  for (int level = 0; level < levels_; ++level) {
    const size_t count = level == 0 ? words_.size() : summaries_[level - 1].size();
    for (size_t i = 0; i < count; ++i) {
      const bool occupied = level == 0 ? words_[i].starts != 0 : summaries_[level - 1][i] != 0;
      if (occupied != ((summaries_[level][i >> 6] & Bit(i)) != 0)) return "a summary bit of the boundary map is stale";
    }
  }
  return nullptr;
}

}  // namespace ma
