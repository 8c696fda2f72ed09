// The freed-chunk table, and best fit: one record per free chunk in a growable array outside the
// heap, the exact-size bins over those records, and a page map that finds a record from its
// chunk's address.
//
// A bin is a doubly linked list of the records of one size, linked through the records, so that
// insert and unlink are O(1). Sizes below kSmallSizes granules have a list head each behind a
// two-level occupancy bitmap (the smallest non-empty size >= n is two bit scans away); larger
// sizes are keys of a SizeIndex trie whose leaves hold their list heads. Best fit asks the bitmap,
// then the trie, for the smallest size >= n and takes the head of that list.
//
// Tie rule: lists are LIFO, so among chunks of the best size the most recently freed one is
// taken. It is still in cache, and a push or a pop is two stores; keeping each bin in address
// order (the classic rule) cost a heap push per free and a sift per reuse for no measured gain
// in space (README, "Best fit's tie rule").
//
// The page map links the records of chunks that start in the same 64-granule page; a merge finds
// its free neighbour's record by walking that short chain, never by hashing.
//
// Records never move: a removed one leaves a vacant slot, reused by the next insert. The table in
// slot order is what the linear strategies scan, as the original note scanned its array.
#pragma once

#include <cstdint>

#include "boundary_map.h"
#include "debug.h"
#include "metadata_array.h"
#include "size_index.h"

namespace ma {

constexpr uint32_t kNoRecord = 0xFFFFFFFFu;

struct FreeRecord {
  Granules pos;        // the chunk's first granule
  Granules size;       // granules, > 0; 0 marks a vacant slot
  uint32_t bin_prev;   // previous record of the same size, kNoRecord at the list head
  uint32_t bin_next;   // next record of the same size (vacant slots: the next vacant slot)
  uint32_t page_next;  // next record whose chunk starts in the same 64-granule page
};

class FreeTable {
 public:
  // Sizes below this many granules have directly indexed list heads (16 KiB, fixed).
  static constexpr uint32_t kSmallSizes = 4096;

  FreeTable() { Clear(); }

  // Extends the page map to positions [0, limit); false (nothing changed) without memory.
  bool Cover(Granules limit);
  // Room for `inserts` more records (and their sizes in the trie), so that the next that many
  // Insert/Resize calls cannot fail, and for `held` records beyond them (the heap keeps one for
  // each deferred chunk); false (nothing changed) otherwise.
  bool Reserve(uint32_t inserts, uint32_t held = 0) {
    if (records_.capacity() - count_ >= size_t{inserts} + held && large_heads_.HasRoom(inserts)) return true;
    return ReserveMore(inserts, held);
  }

  uint32_t Insert(Granules pos, Granules size);
  void Remove(uint32_t record);
  // Best fit's exact hit: unlinks the head of small size `size` (not empty) and returns its start.
  Granules TakeSmallHead(Granules size);
  // The same chunk start, a new size.
  void Resize(uint32_t record, Granules size);
  // A new start and size for the record's chunk (a split that keeps the upper part free).
  void Move(uint32_t record, Granules pos, Granules size);
  // The record of the free chunk starting at `pos`, or kNoRecord when it has none (a deferred
  // chunk, held by the heap's front end). The chain ends, so the walk cannot loop.
  uint32_t Find(Granules pos) const {
    uint32_t record = by_page_[pos >> 6];
    while (record != kNoRecord && records_[record].pos != pos) record = records_[record].page_next;
    MA_ASSERT(record == kNoRecord || records_[record].size != 0);
    return record;
  }
  // The same, for Check and Chunks: kNoRecord when no record starts at `pos`.
  uint32_t Lookup(Granules pos) const;
  void Clear();

  // Shrinking after the peak. Records never move while the heap works (callers hold their
  // indexes), so the heap shrinks the table between calls: Compact slides the records in use down
  // over the vacant slots, in slot order (the linear strategies' scan order is kept), and fixes
  // every link to them; then the room beyond them is given back.
  // Whether the records in use (and `held` kept in reserve) fill less than a quarter of a table
  // of more than kShrinkFloor slots: shrinking then to twice that leaves room for growth again, so
  // each shrink is paid for by the removals before it.
  bool WantsShrink(uint32_t held) const {
    return records_.capacity() > kShrinkFloor && (size_t{count_} + held) * 4 < records_.capacity();
  }
  // Compacts and keeps room for `room` records (at least those in use).
  void Shrink(uint32_t room);
  // Gives back the page map beyond position `limit` (no record lies there).
  void Uncover(Granules limit);

  uint32_t SmallHead(Granules size) const { return small_heads_[size]; }
  // The head of the smallest non-empty bin of size >= `size`, or kNoRecord. Adds the bitmap words
  // and trie nodes it read to *steps.
  uint32_t BestFit(Granules size, uint64_t* steps) const {
    if (size < kSmallSizes) {
      const uint32_t exact = small_heads_[size];
      ++*steps;
      if (exact != kNoRecord) return exact;
    }
    return BestFitLarger(size, steps);
  }
  // The head of the largest bin, or kNoRecord.
  uint32_t Largest(uint64_t* steps) const;
  Granules LargestSize() const;

  const FreeRecord& operator[](uint32_t record) const { return records_[record]; }
  uint32_t slots() const { return static_cast<uint32_t>(records_.size()); }  // in use + vacant
  uint32_t count() const { return count_; }
  // Records that can be inserted without growing the table.
  size_t spare() const { return records_.capacity() - count_; }
  uint64_t bytes_in_granules() const { return granules_; }
  uint64_t metadata_bytes() const;
  // Reports the mapped bytes of every array to `gauge` (Heap's constructor).
  void Attach(MetadataGauge* gauge) {
    records_.Attach(gauge);
    by_page_.Attach(gauge);
    large_heads_.Attach(gauge);
  }
  // The bytes of the tables inside the object (no mapping of their own): the small bins.
  static constexpr uint64_t kFixedBytes = sizeof(uint32_t) * kSmallSizes + sizeof(uint64_t) * (kSmallSizes / 64);

  // For Heap::Check: the first inconsistency between records, bins, page map and indexes, or
  // nullptr. `bounds` is the heap's boundary map: every record must be a free start there.
  const char* CheckIndexes(const BoundaryMap& bounds) const;

 private:
  friend class HeapInspector;  // test/native/check_catches_corruption.cpp

  static constexpr size_t kShrinkFloor = 4 * kMetadataPage / sizeof(FreeRecord);

  bool ReserveMore(uint32_t inserts, uint32_t held);
  void Compact();
  uint32_t BestFitLarger(Granules size, uint64_t* steps) const;
  uint32_t Head(Granules size) const { return size < kSmallSizes ? small_heads_[size] : large_heads_.Find(size); }
  void SetHead(Granules size, uint32_t record) {
    if (size >= kSmallSizes) return SetLargeHead(size, record);
    const bool was_empty = small_heads_[size] == kNoRecord;
    small_heads_[size] = record;
    if (record == kNoRecord) MarkSmallEmpty(size);
    else if (was_empty) MarkSmallOccupied(size);
  }
  void SetLargeHead(Granules size, uint32_t record);
  void MarkSmallOccupied(Granules size) {
    small_words_[size >> 6] |= uint64_t{1} << (size & 63);
    small_summary_ |= uint64_t{1} << (size >> 6);
  }
  void MarkSmallEmpty(Granules size) {
    uint64_t& word = small_words_[size >> 6];
    word &= ~(uint64_t{1} << (size & 63));
    if (word == 0) small_summary_ &= ~(uint64_t{1} << (size >> 6));
  }
  void LinkIntoBin(uint32_t record);
  void UnlinkFromBin(uint32_t record);
  void LinkIntoPage(uint32_t record);
  void UnlinkFromPage(uint32_t record);

  MetadataArray<FreeRecord> records_;
  uint32_t first_vacant_ = kNoRecord;
  uint32_t count_ = 0;
  uint64_t granules_ = 0;  // sum of sizes of records in use

  uint32_t small_heads_[kSmallSizes];     // list head per small size, kNoRecord when empty
  uint64_t small_words_[kSmallSizes / 64];  // bit s: small_heads_[s] is a list
  uint64_t small_summary_ = 0;            // bit w set <=> small_words_[w] != 0
  SizeIndex large_heads_;                 // large size -> its list head

  MetadataArray<uint32_t> by_page_;       // first record of each 64-granule page, kNoRecord
};

}  // namespace ma
