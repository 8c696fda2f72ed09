// The freed-chunk table: one (position, size) record per free chunk, in a growable array that
// lives outside the heap, plus the indexes over it that best fit uses.
//
// Records are never moved: a removed record leaves a vacant slot that the next insert reuses, so
// the address index can keep a record's slot number without being told about moves. The table in
// slot order is what the linear strategies scan, as the original note scanned its array.
//
// Best fit goes through two indexes. The size index finds the smallest size >= n: exact-size bins
// for sizes below kSmallSizes granules behind a two-level occupancy bitmap (two bit scans), and a
// SizeIndex trie above. A bin is a 4-ary min-heap of items ordered by position, so its top is the
// lowest-addressed chunk of that size.
//
// Bins delete lazily: removing a record (a merge takes a neighbour out of the table) only counts
// it out of its bin; its heap item turns stale (its generation no longer matches) and is dropped
// when it reaches the top, or when stale items outnumber live ones. That keeps merges O(1) and
// spares the heap a back pointer per record.
#pragma once

#include <cstdint>

#include "chunk_map.h"
#include "metadata_allocator.h"
#include "size_index.h"

namespace ma {

constexpr uint32_t kNoRecord = 0xFFFFFFFFu;

struct FreeRecord {
  Granules pos;
  Granules size;        // > 0 in use; 0 marks a vacant slot
  uint32_t generation;  // bumped by every insert into this slot; a bin item matches one generation
  uint32_t next_vacant; // vacant slots only
};

class FreeTable {
 public:
  // Sizes below this many granules have directly indexed bins (64 words of bitmap).
  static constexpr uint32_t kSmallSizes = 4096;

  FreeTable() { Clear(); }

  uint32_t Insert(Granules pos, Granules size);
  void Remove(uint32_t record);
  void Clear();

  // The exact size if present, else the smallest larger one; lowest position among equals.
  // Adds the bitmap words, trie nodes and bin items it examined to *steps.
  uint32_t BestFit(Granules size, uint64_t* steps);
  // The largest chunk; lowest position among equals.
  uint32_t Largest(uint64_t* steps);
  Granules LargestSize() const;

  const FreeRecord& operator[](uint32_t record) const { return records_[record]; }
  uint32_t slots() const { return static_cast<uint32_t>(records_.size()); }  // in use + vacant
  uint32_t count() const { return count_; }
  uint64_t bytes_in_granules() const { return granules_; }
  uint64_t metadata_bytes() const;

  // For Heap::Check: the first inconsistency between records, bins and size indexes, or nullptr.
  const char* CheckIndexes() const;

 private:
  struct BinItem {
    Granules pos;
    uint32_t record;
    uint32_t generation;
  };
  struct Bin {
    MetadataVector<BinItem> heap;  // 4-ary min-heap by pos; may hold stale items
    uint32_t live = 0;          // records of this size in the table
  };

  Bin& BinFor(Granules size);
  bool IsCurrent(const BinItem& item, Granules size) const;
  // The top of a non-empty bin after dropping stale items; counts items seen into *steps.
  uint32_t Top(Bin& bin, Granules size, uint64_t* steps);
  void Push(Bin& bin, BinItem item);
  void PopTop(Bin& bin);
  void Compact(Bin& bin, Granules size);
  void MarkOccupied(Granules size);
  void MarkEmpty(Granules size);
  Granules SmallSuccessor(Granules size, uint64_t* steps) const;  // kNoRecord when none

  MetadataVector<FreeRecord> records_;
  uint32_t first_vacant_;
  uint32_t count_;
  uint64_t granules_;  // sum of sizes of records in use

  MetadataVector<Bin> small_bins_;        // indexed by size; grown up to the largest small size seen
  uint64_t small_words_[kSmallSizes / 64] = {};
  uint64_t small_summary_ = 0;         // bit w set <=> small_words_[w] != 0
  MetadataVector<Bin> large_bins_;        // indexed through large_sizes_
  MetadataVector<uint32_t> spare_large_bins_;
  SizeIndex large_sizes_;
};

}  // namespace ma
