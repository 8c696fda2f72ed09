// Records, their bins and their pages. Insert, Remove and Resize run on nearly every allocation
// and free; each is a handful of loads and stores.
#include "free_table.h"

#include <cstring>
#include <vector>

namespace ma {

void FreeTable::Clear() {
  // Records, the page map and the trie keep their memory: a heap emptied between replay runs
  // would otherwise grow them again on every run.
  records_.Clear();
  scan_sizes_.Clear();
  first_vacant_ = kNoRecord;
  count_ = 0;
  for (uint32_t& head : small_heads_) head = kNoRecord;
  std::memset(small_words_, 0, sizeof small_words_);
  small_summary_ = 0;
  large_heads_.Clear();
  by_page_.Fill(kNoRecord);
}

bool FreeTable::Cover(Granules limit) {
  const size_t pages = (static_cast<size_t>(limit) + 63) / 64;
  return pages <= by_page_.size() || by_page_.Resize(pages, kNoRecord);
}

bool FreeTable::ReserveMore(uint32_t inserts, uint32_t held) {
  // Vacant slots are taken first, so the records in use bound what the inserts need.
  const size_t room = records_.capacity();
  if (!records_.Reserve(size_t{count_} + inserts + held)) return false;
  if (keeps_scan_sizes_ && !scan_sizes_.Reserve(records_.capacity())) {
    records_.ShrinkTo(room);  // nothing changed
    return false;
  }
  return large_heads_.Reserve(inserts);
}



void FreeTable::Compact() {
  uint32_t to = 0;
  for (uint32_t from = 0; from < records_.size(); ++from) {
    if (records_[from].pos == kVacant) continue;
    if (to != from) {
      // Every link to `from` points to where its neighbours are now (each moved record fixed the
      // links to itself), so the links can be fixed one move at a time.
      const FreeRecord moved = records_[from];
      records_[to] = moved;
      if (keeps_scan_sizes_) scan_sizes_[to] = scan_sizes_[from];
      if (moved.bin_next != kNoRecord) records_[moved.bin_next].bin_prev = to;
      if (!IsHead(moved)) {
        records_[moved.bin_prev].bin_next = to;
      } else {
        const Granules size = HeadSize(moved);
        if (size < kSmallSizes) small_heads_[size] = to;
        else large_heads_.Update(size, to);
      }
      uint32_t* link = &by_page_[moved.pos >> 6];
      while (*link != from) {
        MA_ASSERT(*link != kNoRecord);
        link = &records_[*link].page_next;
      }
      *link = to;
    }
    ++to;
  }
  MA_ASSERT(to == count_);
  records_.Truncate(to);
  if (keeps_scan_sizes_) scan_sizes_.Truncate(to);
  first_vacant_ = kNoRecord;
}

void FreeTable::Shrink(uint32_t room) {
  Compact();
  records_.ShrinkTo(room);
  scan_sizes_.ShrinkTo(records_.capacity());
  if (count_ == 0 && room == 0) large_heads_.Release();
}

void FreeTable::Uncover(Granules limit) {
  const size_t pages = (static_cast<size_t>(limit) + 63) / 64;
  if (pages >= by_page_.size()) return;
  for (size_t page = pages; page < by_page_.size(); ++page) MA_ASSERT(by_page_[page] == kNoRecord);
  by_page_.Truncate(pages);
  by_page_.ShrinkTo(pages);
}

uint64_t FreeTable::metadata_bytes() const {
  static_assert(kFixedBytes == sizeof small_heads_ + sizeof small_words_, "kFixedBytes counts the small bins");
  return records_.bytes() + scan_sizes_.bytes() + kFixedBytes + large_heads_.metadata_bytes() +
         by_page_.bytes();
}

// ---- bins ------------------------------------------------------------------------------------

void FreeTable::SetLargeHead(Granules size, uint32_t record) {
  const uint32_t head = large_heads_.Find(size);
  if (record == kNoRecord) large_heads_.Remove(size);
  else if (head == SizeIndex::kNone) large_heads_.Insert(size, record);
  else large_heads_.Update(size, record);
}

void FreeTable::LinkIntoBin(uint32_t record, Granules size) {
  MA_ASSERT(size > 0 && size < kBinHead);
  FreeRecord& linked = records_[record];
  const uint32_t head = Head(size);
  linked.bin_prev = kBinHead | size;
  linked.bin_next = head == SizeIndex::kNone ? kNoRecord : head;
  if (linked.bin_next != kNoRecord) records_[linked.bin_next].bin_prev = record;
  SetHead(size, record);
}

void FreeTable::UnlinkFromBin(uint32_t record) {
  // The next record inherits the back link: a record, or at the head the bin's size.
  const FreeRecord& unlinked = records_[record];
  if (unlinked.bin_next != kNoRecord) records_[unlinked.bin_next].bin_prev = unlinked.bin_prev;
  if (!IsHead(unlinked)) records_[unlinked.bin_prev].bin_next = unlinked.bin_next;
  else SetHead(HeadSize(unlinked), unlinked.bin_next);
}

// ---- pages -----------------------------------------------------------------------------------

void FreeTable::LinkIntoPage(uint32_t record) {
  uint32_t& first = by_page_[records_[record].pos >> 6];
  records_[record].page_next = first;
  first = record;
}

void FreeTable::UnlinkFromPage(uint32_t record) {
  uint32_t* link = &by_page_[records_[record].pos >> 6];
  while (*link != record) {
    MA_ASSERT(*link != kNoRecord);  // the record is on its page's chain
    link = &records_[*link].page_next;
  }
  *link = records_[record].page_next;
}

// ---- records ---------------------------------------------------------------------------------

uint32_t FreeTable::Insert(Granules pos, Granules size) {
  MA_ASSERT(size > 0 && (pos >> 6) < by_page_.size());
  uint32_t record;
  if (first_vacant_ != kNoRecord) {
    record = first_vacant_;
    first_vacant_ = records_[record].bin_next;
  } else {
    record = static_cast<uint32_t>(records_.size());
    records_.PushBack(FreeRecord{});
    if (keeps_scan_sizes_) scan_sizes_.PushBack(0);
  }
  records_[record] = FreeRecord{pos, kNoRecord, kNoRecord, kNoRecord};
  SetScanSize(record, size);
  LinkIntoBin(record, size);
  LinkIntoPage(record);
  ++count_;
  return record;
}

void FreeTable::Remove(uint32_t record) {
  MA_ASSERT(records_[record].pos != kVacant);
  UnlinkFromBin(record);
  UnlinkFromPage(record);
  FreeRecord& removed = records_[record];
  --count_;
  removed.pos = kVacant;
  SetScanSize(record, 0);
  removed.bin_next = first_vacant_;
  first_vacant_ = record;
}

Granules FreeTable::TakeSmallHead(Granules size) {
  const uint32_t record = small_heads_[size];
  FreeRecord& taken = records_[record];
  MA_ASSERT(taken.bin_prev == (kBinHead | size));
  small_heads_[size] = taken.bin_next;
  if (taken.bin_next != kNoRecord) records_[taken.bin_next].bin_prev = kBinHead | size;
  else MarkSmallEmpty(size);
  UnlinkFromPage(record);
  --count_;
  const Granules pos = taken.pos;
  taken.pos = kVacant;
  SetScanSize(record, 0);
  taken.bin_next = first_vacant_;
  first_vacant_ = record;
  return pos;
}

void FreeTable::Resize(uint32_t record, Granules size) {
  FreeRecord& resized = records_[record];
  MA_ASSERT(resized.pos != kVacant && size > 0 && (!IsHead(resized) || HeadSize(record) != size));
  if (IsHead(resized) && resized.bin_next == kNoRecord && HeadSize(record) >= kSmallSizes && size >= kSmallSizes &&
      large_heads_.Find(size) == SizeIndex::kNone) {
    // Alone in its bin and moving to an empty one: the trie relabels its key.
    large_heads_.Rekey(HeadSize(record), size, record);
    resized.bin_prev = kBinHead | size;
    SetScanSize(record, size);
    return;
  }
  UnlinkFromBin(record);
  LinkIntoBin(record, size);
  SetScanSize(record, size);
}

void FreeTable::Move(uint32_t record, Granules pos, Granules size) {
  if ((records_[record].pos >> 6) != (pos >> 6)) {
    UnlinkFromPage(record);
    records_[record].pos = pos;
    LinkIntoPage(record);
  } else {
    records_[record].pos = pos;
  }
  Resize(record, size);
}

uint32_t FreeTable::Lookup(Granules pos) const {
  if ((pos >> 6) >= by_page_.size()) return kNoRecord;
  uint32_t record = by_page_[pos >> 6];
  for (uint32_t hops = 0; record != kNoRecord && hops <= count_; ++hops) {
    if (record >= records_.size()) return kNoRecord;
    if (records_[record].pos == pos) return record;
    record = records_[record].page_next;
  }
  return kNoRecord;
}

// ---- searches --------------------------------------------------------------------------------

uint32_t FreeTable::BestFitLarger(Granules size, uint64_t* steps) const {
  if (size < kSmallSizes) {
    const uint32_t word = size >> 6;
    ++*steps;
    const uint64_t here = small_words_[word] & (~uint64_t{0} << (size & 63));
    if (here != 0) return small_heads_[(word << 6) | static_cast<uint32_t>(__builtin_ctzll(here))];
    const uint64_t later = word == 63 ? 0 : small_summary_ & (~uint64_t{0} << (word + 1));
    if (later != 0) {
      ++*steps;
      const uint32_t next = static_cast<uint32_t>(__builtin_ctzll(later));
      return small_heads_[(next << 6) | static_cast<uint32_t>(__builtin_ctzll(small_words_[next]))];
    }
  }
  Granules found;
  const uint32_t head = large_heads_.Successor(size < kSmallSizes ? kSmallSizes : size, &found, steps);
  return head == SizeIndex::kNone ? kNoRecord : head;
}

Granules FreeTable::LargestSize() const {
  uint32_t size;
  uint64_t steps = 0;
  if (large_heads_.Largest(&size, &steps) != SizeIndex::kNone) return size;
  if (small_summary_ == 0) return 0;
  const uint32_t word = 63u - static_cast<uint32_t>(__builtin_clzll(small_summary_));
  return (word << 6) | (63u - static_cast<uint32_t>(__builtin_clzll(small_words_[word])));
}

uint32_t FreeTable::Largest(uint64_t* steps) const {
  const Granules size = LargestSize();
  ++*steps;
  return size == 0 ? kNoRecord : Head(size);
}

// ---- check -----------------------------------------------------------------------------------

const char* FreeTable::CheckIndexes(const BoundaryMap& bounds, const FreeSizes& sizes) const {
  uint32_t in_use = 0, vacant = 0;
  for (const FreeRecord& record : records_) {
    if (record.pos == kVacant) ++vacant;
    else ++in_use;
  }
  if (in_use != count_) return "the free table's record count disagrees with its records";
  uint32_t chained = 0;
  for (uint32_t record = first_vacant_; record != kNoRecord; record = records_[record].bin_next) {
    if (record >= records_.size() || records_[record].pos != kVacant || ++chained > vacant) return "the vacant-slot chain is broken";
  }
  if (chained != vacant) return "a vacant record slot is not on the vacant chain";
  if (keeps_scan_sizes_) {
    if (scan_sizes_.size() != records_.size() || scan_sizes_.capacity() < records_.capacity()) {
      return "the scan sizes do not cover the records";
    }
    for (uint32_t record = 0; record < records_.size(); ++record) {
      if (records_[record].pos == kVacant && scan_sizes_[record] != 0) return "a vacant record slot has a scan size";
    }
  }

  // Each record in use: a free start in the boundary map, reachable from its page and its bin.
  // Sizes are asked of the boundary map only for records that are free starts there.
  for (const FreeRecord& record : records_) {
    if (record.pos == kVacant) continue;
    if (record.pos >= bounds.covered() || !bounds.IsStart(record.pos) || !bounds.IsFree(record.pos)) {
      return "a free record's chunk is not free in the boundary map";
    }
  }
  std::vector<uint8_t> in_bin(records_.size(), 0);
  auto walk_bin = [&](Granules size, uint32_t head) -> const char* {
    uint32_t prev = kBinHead | size;
    for (uint32_t record = head; record != kNoRecord; record = records_[record].bin_next) {
      if (record >= records_.size() || records_[record].pos == kVacant) return "a size bin links to no record";
      const FreeRecord& linked = records_[record];
      if (linked.bin_prev != prev) {
        return record == head ? "a size bin's head carries another size" : "a size bin's back link is wrong";
      }
      if (sizes.SizeAt(linked.pos) != size) return "a size bin holds a record of another size";
      if (in_bin[record]++ != 0) return "a size bin links a record twice";
      prev = record;
    }
    return nullptr;
  };
  for (uint32_t word = 0; word < kSmallSizes / 64; ++word) {
    if (((small_summary_ >> word) & 1) != (small_words_[word] != 0 ? 1u : 0u)) return "the small-size summary bitmap is stale";
  }
  for (Granules size = 0; size < kSmallSizes; ++size) {
    const bool marked = (small_words_[size >> 6] >> (size & 63) & 1) != 0;
    if (marked != (small_heads_[size] != kNoRecord)) return "the small-size bitmap disagrees with its bins";
    if (const char* problem = walk_bin(size, small_heads_[size])) return problem;
  }
  for (uint32_t record = 0; record < records_.size(); ++record) {
    const FreeRecord& checked = records_[record];
    if (checked.pos == kVacant || in_bin[record] != 0) continue;
    const Granules size = sizes.SizeAt(checked.pos);
    if (size < kSmallSizes) continue;  // in no small bin: found below
    const uint32_t head = large_heads_.Find(size);
    if (head == SizeIndex::kNone) return "a large free chunk's size is not in the size index";
    if (const char* problem = walk_bin(size, head)) return problem;
  }
  for (uint32_t record = 0; record < records_.size(); ++record) {
    const FreeRecord& checked = records_[record];
    if (checked.pos == kVacant) continue;
    if (in_bin[record] == 0) return "a free record is in no size bin";
    if ((checked.pos >> 6) >= by_page_.size()) return "a free record lies beyond the page map";
    if (keeps_scan_sizes_ && (record >= scan_sizes_.size() || scan_sizes_[record] != sizes.SizeAt(checked.pos))) {
      return "a record's scan size disagrees with its chunk";
    }
    uint32_t found = by_page_[checked.pos >> 6];
    for (uint32_t hops = 0; found != kNoRecord && found != record && hops <= count_; ++hops) found = records_[found].page_next;
    if (found != record) return "a free record is not on its page's chain";
  }
  return nullptr;
}

}  // namespace ma
