// The placement strategies: which free chunk an allocation takes. Best fit is the one to read
// first; the others exist to be measured against it.
#pragma once

#include <cstdint>

#include "free_table.h"

namespace ma {

enum class Strategy : uint8_t {
  kBestFit,        // exact size, else the smallest that fits; most recently freed among equals; indexed
  kBestFitLinear,  // the original note: scan the table in order, stop at an exact fit, else smallest
  kFirstFit,       // the lowest address that fits (scans the table)
  kNextFit,        // the lowest address at or after the rover that fits, wrapping (scans the table)
  kWorstFit,       // the largest chunk (indexed)
  kBump,           // never reuses a free chunk: every allocation comes from the top
};

// The public name of each strategy, the one table every caller maps names with (the addon's
// options, the malloc library's MEMORY_ALLOCATOR_STRATEGY, the bench driver); lib/heap/options.ts
// STRATEGIES lists the same names in the same order.
const char* StrategyName(Strategy strategy);
// The strategy called `name`; false (and *out unchanged) for any other string.
bool StrategyFromName(const char* name, Strategy* out);

// The strategies that read every record's size on every search (the free table keeps the sizes
// beside the records for them: FreeTable::KeepScanSizes).
inline bool ScansFreeTable(Strategy strategy) {
  return strategy == Strategy::kBestFitLinear || strategy == Strategy::kFirstFit || strategy == Strategy::kNextFit;
}

// The record of the free chunk an allocation of `size` granules should take, or kNoRecord when
// none fits (the heap then carves the top). Adds the table records and index nodes it examined
// to *steps.
// Sets *found to that chunk's size (records keep none: a bin's head knows it, and the table keeps
// scan sizes for the strategies that scan).
uint32_t FindFreeChunkOther(Strategy strategy, const FreeTable& table, Granules size, Granules rover, uint64_t* steps,
                            Granules* found);
// Best fit inline, the rest out of line: one call for all of them made every best-fit search save
// registers for the scans (11 instructions per request on python3-json, callgrind, measured while
// the scans still took the boundary map to read sizes from).
inline uint32_t FindFreeChunk(Strategy strategy, const FreeTable& table, Granules size, Granules rover, uint64_t* steps,
                              Granules* found) {
  if (strategy != Strategy::kBestFit) return FindFreeChunkOther(strategy, table, size, rover, steps, found);
  const uint32_t head = table.count() == 0 ? kNoRecord : table.BestFit(size, steps);
  *found = head == kNoRecord ? 0 : table.HeadSize(head);
  return head;
}

}  // namespace ma
