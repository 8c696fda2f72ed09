// Records, exact-size bins and their upkeep. BestFit and Insert run on nearly every allocation
// and free; keep them short.
#include "free_table.h"

#include <algorithm>
#include <cstring>

namespace ma {

void FreeTable::Clear() {
  records_.clear();
  first_vacant_ = kNoRecord;
  count_ = 0;
  granules_ = 0;
  // Bins and their item arrays keep their memory: a heap emptied between replay runs would
  // otherwise rebuild thousands of bins per run. Only occupied bins hold items (a bin empties its
  // heap when its last record leaves), and the bitmap names the occupied small ones.
  for (uint32_t word = 0; word < kSmallSizes / 64; ++word) {
    for (uint64_t bits = small_words_[word]; bits != 0; bits &= bits - 1) {
      Bin& bin = small_bins_[(word << 6) | static_cast<uint32_t>(__builtin_ctzll(bits))];
      bin.heap.clear();
      bin.live = 0;
    }
  }
  std::memset(small_words_, 0, sizeof small_words_);
  small_summary_ = 0;
  spare_large_bins_.clear();
  for (uint32_t index = 0; index < large_bins_.size(); ++index) {
    large_bins_[index].heap.clear();
    large_bins_[index].live = 0;
    spare_large_bins_.push_back(index);
  }
  large_sizes_.Clear();
}

uint64_t FreeTable::metadata_bytes() const {
  uint64_t bytes = records_.capacity() * sizeof(FreeRecord) + sizeof small_words_ +
                   (small_bins_.capacity() + large_bins_.capacity()) * sizeof(Bin) +
                   spare_large_bins_.capacity() * sizeof(uint32_t) + large_sizes_.metadata_bytes();
  for (const Bin& bin : small_bins_) bytes += bin.heap.capacity() * sizeof(BinItem);
  for (const Bin& bin : large_bins_) bytes += bin.heap.capacity() * sizeof(BinItem);
  return bytes;
}

// ---- bins and the size indexes -------------------------------------------------------------

FreeTable::Bin& FreeTable::BinFor(Granules size) {
  if (size < kSmallSizes) {
    if (size >= small_bins_.size()) small_bins_.resize(size + 1);
    return small_bins_[size];
  }
  uint32_t index = large_sizes_.Find(size);
  if (index == SizeIndex::kNone) {
    if (!spare_large_bins_.empty()) {
      index = spare_large_bins_.back();
      spare_large_bins_.pop_back();
    } else {
      index = static_cast<uint32_t>(large_bins_.size());
      large_bins_.emplace_back();
    }
    large_sizes_.Insert(size, index);
  }
  return large_bins_[index];
}

void FreeTable::MarkOccupied(Granules size) {
  if (size >= kSmallSizes) return;  // BinFor indexed it already
  small_words_[size >> 6] |= uint64_t{1} << (size & 63);
  small_summary_ |= uint64_t{1} << (size >> 6);
}

void FreeTable::MarkEmpty(Granules size) {
  if (size < kSmallSizes) {
    uint64_t& word = small_words_[size >> 6];
    word &= ~(uint64_t{1} << (size & 63));
    if (word == 0) small_summary_ &= ~(uint64_t{1} << (size >> 6));
    return;
  }
  const uint32_t index = large_sizes_.Find(size);
  large_sizes_.Remove(size);
  spare_large_bins_.push_back(index);
}

Granules FreeTable::SmallSuccessor(Granules size, uint64_t* steps) const {
  if (size >= kSmallSizes) return kNoRecord;
  const uint32_t word = size >> 6;
  ++*steps;
  const uint64_t here = small_words_[word] & (~uint64_t{0} << (size & 63));
  if (here != 0) return (word << 6) | static_cast<uint32_t>(__builtin_ctzll(here));
  const uint64_t later = word == 63 ? 0 : small_summary_ & (~uint64_t{0} << (word + 1));
  if (later == 0) return kNoRecord;
  ++*steps;
  const uint32_t next = static_cast<uint32_t>(__builtin_ctzll(later));
  return (next << 6) | static_cast<uint32_t>(__builtin_ctzll(small_words_[next]));
}

bool FreeTable::IsCurrent(const BinItem& item, Granules size) const {
  const FreeRecord& record = records_[item.record];
  return record.generation == item.generation && record.size == size;
}

uint32_t FreeTable::Top(Bin& bin, Granules size, uint64_t* steps) {
  for (;;) {
    ++*steps;
    const BinItem& top = bin.heap.front();
    if (IsCurrent(top, size)) return top.record;
    PopTop(bin);
  }
}

// ---- the 4-ary heap of a bin ---------------------------------------------------------------

void FreeTable::Push(Bin& bin, BinItem item) {
  MetadataVector<BinItem>& heap = bin.heap;
  size_t slot = heap.size();
  heap.push_back(item);
  while (slot > 0) {
    const size_t parent = (slot - 1) / 4;
    if (heap[parent].pos <= item.pos) break;
    heap[slot] = heap[parent];
    slot = parent;
  }
  heap[slot] = item;
}

void FreeTable::PopTop(Bin& bin) {
  MetadataVector<BinItem>& heap = bin.heap;
  const BinItem item = heap.back();
  heap.pop_back();
  const size_t n = heap.size();
  if (n == 0) return;
  size_t slot = 0;
  for (;;) {
    const size_t first = 4 * slot + 1;
    if (first >= n) break;
    size_t least = first;
    const size_t last = std::min(first + 4, n);
    for (size_t child = first + 1; child < last; ++child) {
      if (heap[child].pos < heap[least].pos) least = child;
    }
    if (item.pos <= heap[least].pos) break;
    heap[slot] = heap[least];
    slot = least;
  }
  heap[slot] = item;
}

void FreeTable::Compact(Bin& bin, Granules size) {
  MetadataVector<BinItem>& heap = bin.heap;
  heap.erase(std::remove_if(heap.begin(), heap.end(), [&](const BinItem& item) { return !IsCurrent(item, size); }), heap.end());
  // Restore the 4-ary heap order bottom-up (Floyd), O(n).
  const size_t n = heap.size();
  for (size_t start = n / 4 + 1; start-- > 0;) {
    const BinItem item = heap[start];
    size_t slot = start;
    for (;;) {
      const size_t first = 4 * slot + 1;
      if (first >= n) break;
      size_t least = first;
      for (size_t child = first + 1; child < std::min(first + 4, n); ++child) {
        if (heap[child].pos < heap[least].pos) least = child;
      }
      if (item.pos <= heap[least].pos) break;
      heap[slot] = heap[least];
      slot = least;
    }
    heap[slot] = item;
  }
}

// ---- records -------------------------------------------------------------------------------

uint32_t FreeTable::Insert(Granules pos, Granules size) {
  uint32_t record;
  if (first_vacant_ != kNoRecord) {
    record = first_vacant_;
    first_vacant_ = records_[record].next_vacant;
  } else {
    record = static_cast<uint32_t>(records_.size());
    records_.push_back(FreeRecord{0, 0, 0, kNoRecord});
  }
  FreeRecord& slot = records_[record];
  slot.pos = pos;
  slot.size = size;
  ++slot.generation;
  Bin& bin = BinFor(size);
  if (bin.live++ == 0) MarkOccupied(size);
  Push(bin, BinItem{pos, record, slot.generation});
  ++count_;
  granules_ += size;
  return record;
}

void FreeTable::Remove(uint32_t record) {
  FreeRecord& removed = records_[record];
  const Granules size = removed.size;
  Bin& bin = size < kSmallSizes ? small_bins_[size] : large_bins_[large_sizes_.Find(size)];
  removed.size = 0;  // every item of this record is stale from here on
  removed.next_vacant = first_vacant_;
  first_vacant_ = record;
  --count_;
  granules_ -= size;
  if (--bin.live == 0) {
    bin.heap.clear();
    MarkEmpty(size);
  } else if (bin.heap.front().record == record) {
    PopTop(bin);  // the common case: best fit just took the top
  } else if (bin.heap.size() > 2 * static_cast<size_t>(bin.live) + 16) {
    Compact(bin, size);
  }
}

uint32_t FreeTable::BestFit(Granules size, uint64_t* steps) {
  Granules found = SmallSuccessor(size, steps);
  if (found == kNoRecord) {
    const uint32_t index = large_sizes_.Successor(std::max(size, kSmallSizes), &found, steps);
    if (index == SizeIndex::kNone) return kNoRecord;
    return Top(large_bins_[index], found, steps);
  }
  return Top(small_bins_[found], found, steps);
}

Granules FreeTable::LargestSize() const {
  uint32_t size;
  uint64_t steps = 0;
  if (large_sizes_.Largest(&size, &steps) != SizeIndex::kNone) return size;
  if (small_summary_ == 0) return 0;
  const uint32_t word = 63u - static_cast<uint32_t>(__builtin_clzll(small_summary_));
  return (word << 6) | (63u - static_cast<uint32_t>(__builtin_clzll(small_words_[word])));
}

uint32_t FreeTable::Largest(uint64_t* steps) {
  const Granules size = LargestSize();
  if (size == 0) return kNoRecord;
  ++*steps;
  return Top(BinFor(size), size, steps);
}

const char* FreeTable::CheckIndexes() const {
  uint32_t in_use = 0;
  uint64_t granules = 0;
  std::vector<Granules> large_sizes;
  for (const FreeRecord& record : records_) {
    if (record.size == 0) continue;
    ++in_use;
    granules += record.size;
    if (record.size >= kSmallSizes) large_sizes.push_back(record.size);
  }
  if (in_use != count_) return "the free table's record count disagrees with its records";
  if (granules != granules_) return "the free table's byte total disagrees with its records";

  // Every record in use has exactly one current item, in the bin of its size.
  std::vector<uint8_t> seen(records_.size(), 0);
  uint32_t live_total = 0;
  auto check_bin = [&](const Bin& bin, Granules size, bool indexed) -> const char* {
    if ((bin.live != 0) != indexed) return "a size index disagrees with its bin's occupancy";
    uint32_t current = 0;
    for (size_t slot = 0; slot < bin.heap.size(); ++slot) {
      const BinItem& item = bin.heap[slot];
      if (slot > 0 && bin.heap[(slot - 1) / 4].pos > item.pos) return "a size bin is out of address order";
      if (item.record >= records_.size()) return "a size bin holds an item of no record";
      if (!IsCurrent(item, size)) continue;
      if (records_[item.record].pos != item.pos) return "a bin item's position disagrees with its record";
      if (seen[item.record]++ != 0) return "a free record has two current bin items";
      ++current;
    }
    if (current != bin.live) return "a size bin's live count disagrees with its items";
    live_total += current;
    return nullptr;
  };
  for (uint32_t word = 0; word < kSmallSizes / 64; ++word) {
    if (((small_summary_ >> word) & 1) != (small_words_[word] != 0 ? 1u : 0u)) return "the small-size summary bitmap is stale";
    for (uint64_t bits = small_words_[word]; bits != 0; bits &= bits - 1) {
      const uint32_t size = (word << 6) | static_cast<uint32_t>(__builtin_ctzll(bits));
      if (size >= small_bins_.size()) return "the small-size bitmap marks a size that has no bin";
    }
  }
  for (Granules size = 0; size < small_bins_.size(); ++size) {
    const bool indexed = (small_words_[size >> 6] >> (size & 63) & 1) != 0;
    if (const char* problem = check_bin(small_bins_[size], size, indexed)) return problem;
  }
  std::sort(large_sizes.begin(), large_sizes.end());
  large_sizes.erase(std::unique(large_sizes.begin(), large_sizes.end()), large_sizes.end());
  for (const Granules size : large_sizes) {
    const uint32_t index = large_sizes_.Find(size);
    if (index == SizeIndex::kNone) return "a large free chunk's size is not in the size index";
    if (const char* problem = check_bin(large_bins_[index], size, true)) return problem;
  }
  if (live_total != count_) return "the size bins hold a different number of records than the table";
  return nullptr;
}

}  // namespace ma
