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
// A record is 16 bytes and keeps no size: the boundary map has it (a free chunk runs to the next
// chunk start), and the head of each bin carries its bin's size in its back link, which is all
// the table itself needs (unlinking the head sets its bin's head, and best fit takes heads). The
// heap passes sizes in; Check asks it (FreeSizes). A size in every record cost python3-json's
// tables 17% more bytes at their peak (1,485 KiB against 1,273; 46,147 free chunks). The linear
// strategies read every record's size on every search, as a list allocator reads its headers: for
// them alone the table keeps the sizes in an array beside the records (KeepScanSizes), since
// asking the boundary map for each took 2-2.6x their instructions per request (perl-modules,
// callgrind).
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
// A bin head's back link: this bit and the bin's size (sizes stay below 2^31 granules, record
// indexes below 2^31: a record per free chunk, a live chunk between any two).
constexpr uint32_t kBinHead = 0x80000000u;
// The position of a vacant slot (no chunk starts there: positions stay below kMaxPosition).
constexpr Granules kVacant = 0xFFFFFFFFu;

struct FreeRecord {
  Granules pos;        // the chunk's first granule; kVacant marks a vacant slot
  uint32_t bin_prev;   // previous record of the same size; at the bin's head kBinHead | the size
  uint32_t bin_next;   // next record of the same size (vacant slots: the next vacant slot)
  uint32_t page_next;  // next record whose chunk starts in the same 64-granule page
};
static_assert(sizeof(FreeRecord) == 16, "a free record is 16 bytes");

// The size of the free chunk that starts at `pos`, for Check (CheckIndexes): the heap answers from
// its boundary map (the chunk runs to the next start, or to the top of its segment).
struct FreeSizes {
  const void* heap;
  Granules (*size_at)(const void* heap, Granules pos);
  Granules SizeAt(Granules pos) const { return size_at(heap, pos); }
};

class FreeTable {
 public:
  // Sizes below this many granules have directly indexed list heads (16 KiB, fixed).
  static constexpr uint32_t kSmallSizes = 4096;

  FreeTable() { Clear(); }

  // Keeps every record's size beside it, for the strategies that scan the table (before the first
  // Insert).
  void KeepScanSizes() {
    MA_ASSERT(records_.empty());
    keeps_scan_sizes_ = true;
  }
  // The size of a record's chunk, when the table keeps scan sizes; 0 for a vacant slot (a scan
  // then reads this array alone).
  Granules ScanSize(uint32_t record) const {
    MA_ASSERT(keeps_scan_sizes_);
    return scan_sizes_[record];
  }

  // Extends the page map to positions [0, limit); false (nothing changed) without memory.
  bool Cover(Granules limit);
  // Room for `inserts` more records (and their sizes in the trie), so that the next that many
  // Insert/Resize calls cannot fail, and for `held` records beyond them (the heap keeps one for
  // each deferred chunk); false (nothing changed) otherwise.
  bool Reserve(uint32_t inserts, uint32_t held = 0) {
    // (A deferral reserves no insert: the trie is not asked, even when it has no nodes yet.)
    if (records_.capacity() - count_ >= size_t{inserts} + held && (inserts == 0 || large_heads_.HasRoom(inserts))) return true;
    return ReserveMore(inserts, held);
  }

  uint32_t Insert(Granules pos, Granules size);
  void Remove(uint32_t record);
  // Best fit's exact hit: unlinks the head of small size `size` (not empty) and returns its start.
  Granules TakeSmallHead(Granules size);
  // The same chunk start, a new size (another than its own: the record moves to the head of the
  // new size's bin).
  void Resize(uint32_t record, Granules size);
  // A new start and size for the record's chunk (a split that keeps the upper part free).
  void Move(uint32_t record, Granules pos, Granules size);
  // A bin's head knows its size (what best fit and worst fit return is always a head).
  static bool IsHead(const FreeRecord& record) { return (record.bin_prev & kBinHead) != 0; }
  static Granules HeadSize(const FreeRecord& head) {
    MA_ASSERT(IsHead(head));
    return head.bin_prev & ~kBinHead;
  }
  Granules HeadSize(uint32_t record) const { return HeadSize(records_[record]); }
  // The record of the free chunk starting at `pos`, or kNoRecord when it has none (a deferred
  // chunk, held by the heap's front end). The chain ends, so the walk cannot loop.
  uint32_t Find(Granules pos) const {
    uint32_t record = by_page_[pos >> 6];
    while (record != kNoRecord && records_[record].pos != pos) record = records_[record].page_next;
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
  uint64_t metadata_bytes() const;
  // Reports the mapped bytes of every array to `gauge` (Heap's constructor).
  void Attach(MetadataGauge* gauge) {
    records_.Attach(gauge);
    scan_sizes_.Attach(gauge);
    by_page_.Attach(gauge);
    large_heads_.Attach(gauge);
  }
  // The bytes of the tables inside the object (no mapping of their own): the small bins.
  static constexpr uint64_t kFixedBytes = sizeof(uint32_t) * kSmallSizes + sizeof(uint64_t) * (kSmallSizes / 64);

  // For Heap::Check: the first inconsistency between records, bins, page map and indexes, or
  // nullptr. `bounds` is the heap's boundary map: every record must be a free start there, of its
  // bin's size (`sizes`).
  const char* CheckIndexes(const BoundaryMap& bounds, const FreeSizes& sizes) const;

 private:
  friend class HeapInspector;  // test/native/check_catches_corruption.cpp

  static constexpr size_t kShrinkFloor = 4 * kMetadataPage / sizeof(FreeRecord);

  bool ReserveMore(uint32_t inserts, uint32_t held);
  void SetScanSize(uint32_t record, Granules size) {
    if (keeps_scan_sizes_) scan_sizes_[record] = size;
  }
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
  void LinkIntoBin(uint32_t record, Granules size);
  void UnlinkFromBin(uint32_t record);
  void LinkIntoPage(uint32_t record);
  void UnlinkFromPage(uint32_t record);

  MetadataArray<FreeRecord> records_;
  // With KeepScanSizes: each record's size by slot (0: vacant), with at least the records' room.
  MetadataArray<Granules> scan_sizes_;
  bool keeps_scan_sizes_ = false;
  uint32_t first_vacant_ = kNoRecord;
  uint32_t count_ = 0;

  uint32_t small_heads_[kSmallSizes];     // list head per small size, kNoRecord when empty
  uint64_t small_words_[kSmallSizes / 64];  // bit s: small_heads_[s] is a list
  uint64_t small_summary_ = 0;            // bit w set <=> small_words_[w] != 0
  SizeIndex large_heads_;                 // large size -> its list head

  MetadataArray<uint32_t> by_page_;       // first record of each 64-granule page, kNoRecord
};

}  // namespace ma
