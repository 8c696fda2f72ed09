// A heap on one memory source: chunks carved from segments of the source's memory, freed chunks
// kept in the FreeTable, every chunk in the ChunkMap. The heap's own memory holds user bytes
// only; all of this bookkeeping lives in ordinary process memory beside it.
//
// Layout of a segment (positions in granules from base_address_):
//
//   base   start                                   top           end
//   | pad  | chunk | chunk | free | chunk | ...    | wilderness  |
//
// Chunks tile [start, top) without gaps. Only the last segment has a wilderness; when other code
// moves the break between two of our moves, the old wilderness becomes a free chunk and a new
// segment starts above the foreign memory. Chunks never merge across segments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chunk_map.h"
#include "fit.h"
#include "free_table.h"
#include "memory_source.h"
#include "metadata_allocator.h"
#include "status.h"

namespace ma {

constexpr uint64_t kNeverTrim = UINT64_MAX;
constexpr uint64_t kMaxAlign = uint64_t{1} << 20;

struct HeapOptions {
  SourceKind source = SourceKind::kBrk;
  Strategy strategy = Strategy::kBestFit;
  uint32_t alignment = 16;              // the granule: a power of two, 8..4096
  uint64_t growth = 65536;              // least bytes per move of the source's end
  bool split = true;
  bool coalesce = true;
  uint64_t trim_threshold = 131072;     // kNeverTrim: only trim() and reset() give memory back.
                                        // Adapts upward (to 32 MiB) when the heap grows right
                                        // back after an automatic trim: past twice what it gave.
  uint64_t max_heap_bytes = 0;          // 0: no cap but the source's
  uint64_t segregate_small = 0;         // requests up to this many bytes take the high end of
                                        // the free space they split; 0: every request the low end
};

struct HeapStats {
  uint64_t heap_start, heap_end, heap_bytes, peak_heap_bytes;
  uint64_t live_bytes, live_chunks, peak_live_bytes;
  uint64_t free_bytes, free_chunks, largest_free_chunk, top_bytes;
  uint64_t metadata_bytes;
  uint64_t allocs, frees, reallocs;
  uint64_t brk_calls, bytes_released;
  uint64_t segments;
  uint64_t search_steps;
};

struct ChunkInfo {
  uintptr_t address;
  uint64_t size;
  bool live;
  bool pinned;  // live, but held back for a finalizer (see Pin)
};

class Heap {
 public:
  // Checks the options (kInvalidOption, kBrkMainThreadOnly off the main thread) and creates the
  // source. No memory is taken until the first allocation.
  static Status Create(const HeapOptions& options, Heap** out);
  ~Heap();  // gives every segment back that can be given back

  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;

  // `align` 0 means the heap's alignment. Size 0 gets a minimum chunk, as malloc does.
  Status Alloc(uint64_t bytes, uint64_t align, uintptr_t* address);
  Status Free(uintptr_t address);
  // Shrinks in place, grows into a following free chunk or the wilderness, else moves.
  Status Realloc(uintptr_t address, uint64_t bytes, uintptr_t* new_address);
  Status UsableSize(uintptr_t address, uint64_t* bytes) const;

  // A pinned chunk is live but no longer the user's: reset() keeps it until Unpin frees it.
  Status Pin(uintptr_t address);
  Status UnpinAndFree(uintptr_t address);

  void Reset();
  // Frees every chunk but keeps the memory as wilderness (replay empties its heap between runs).
  // Only without pinned chunks.
  void Empty() { DropAllChunks(); }
  uint64_t Trim();  // bytes given back now

  HeapStats Stats() const;
  void Chunks(std::vector<ChunkInfo>* out) const;
  // True when every invariant holds; otherwise names the first broken one in *problem.
  bool Check(std::string* problem) const;

  const HeapOptions& options() const { return options_; }
  uint64_t bytes_released() const { return bytes_released_; }  // Stats().bytes_released, cheaply
  uint32_t granule() const { return options_.alignment; }

 private:
  struct Segment {
    uintptr_t base;            // the source's end when the segment opened; released back to it
    Granules start;            // first chunk; start >= position of base
    Granules top;              // start <= top <= end; [top, end) is wilderness (last segment only)
    Granules end;
    Granules top_prev_size;    // size of the chunk ending at top, 0 when top == start
  };

  explicit Heap(const HeapOptions& options, MemorySource* source);

  uintptr_t AddressOf(Granules pos) const { return base_address_ + (static_cast<uintptr_t>(pos) << granule_shift_); }
  bool PositionOf(uintptr_t address, Granules* pos) const;
  Status ToGranules(uint64_t bytes, Granules* granules) const;
  Status FindLive(uintptr_t address, ChunkEntry** entry);

  Status AllocGranules(Granules size, uint64_t align, Granules* pos);
  Granules TakeFreeChunk(uint32_t record, Granules size, uint64_t align);
  Status TakeFromTop(Granules size, uint64_t align, Granules* pos);
  // Segregation splits free space, so it needs splitting on.
  bool IsSmall(Granules size, uint64_t align) const { return size <= small_granules_ && align == 0 && options_.split; }
  Status GrowTop(Granules needed);
  void ReleaseChunk(ChunkEntry* self);
  void AddFreeChunk(Granules pos, Granules size, Granules prev_size);
  void SetPrevSize(Granules pos, Granules prev_size);
  void AbsorbFreeTailIntoTop(Segment* segment);
  void MaybeTrim();
  uint64_t ReleaseTop(Granules keep);
  void DropAllChunks();
  Granules AlignmentPad(Granules pos, uint64_t align) const;
  void NoteLive(int64_t granules);
  void NoteHeapBytes(int64_t bytes);

  HeapOptions options_;
  MemorySource* source_;
  uint32_t granule_shift_;
  uintptr_t base_address_ = 0;     // position 0; set when the first segment opens
  MetadataVector<Segment> segments_;  // in address order
  ChunkMap chunks_;
  FreeTable free_;
  Granules rover_ = 0;             // next fit's roving position
  uint64_t trim_threshold_;        // options_.trim_threshold, raised after each trim-then-grow
  Granules small_granules_;        // options_.segregate_small in granules (0: off)
  uint64_t trimmed_since_growth_ = 0;  // given back by automatic trims since the heap last grew
  uint32_t pinned_chunks_ = 0;

  uint64_t heap_bytes_ = 0, peak_heap_bytes_ = 0;
  uint64_t live_granules_ = 0, live_chunks_ = 0, peak_live_granules_ = 0;
  uint64_t allocs_ = 0, frees_ = 0, reallocs_ = 0;
  uint64_t brk_calls_ = 0, bytes_released_ = 0, search_steps_ = 0;
};

}  // namespace ma
