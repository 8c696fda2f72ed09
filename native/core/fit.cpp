// Where each strategy looks. Best fit and worst fit ask the table's indexes; the rest scan the
// table slot by slot, as a list allocator would walk its list.
#include "fit.h"

namespace ma {
namespace {

uint32_t BestFitLinear(const FreeTable& table, Granules size, uint64_t* steps) {
  uint32_t best = kNoRecord;
  Granules best_size = 0;
  const uint32_t slots = table.slots();
  for (uint32_t record = 0; record < slots; ++record) {
    const Granules candidate = table[record].size;
    if (candidate == 0) continue;  // vacant slot
    ++*steps;
    if (candidate == size) return record;
    if (candidate > size && (best == kNoRecord || candidate < best_size)) {
      best = record;
      best_size = candidate;
    }
  }
  return best;
}

// Lowest-addressed fitting record at or after `from`; with `from` == 0 that is plain first fit.
uint32_t LowestFitFrom(const FreeTable& table, Granules size, Granules from, uint64_t* steps) {
  uint32_t after = kNoRecord, anywhere = kNoRecord;
  const uint32_t slots = table.slots();
  for (uint32_t record = 0; record < slots; ++record) {
    const FreeRecord& candidate = table[record];
    if (candidate.size == 0) continue;
    ++*steps;
    if (candidate.size < size) continue;
    if (anywhere == kNoRecord || candidate.pos < table[anywhere].pos) anywhere = record;
    if (candidate.pos >= from && (after == kNoRecord || candidate.pos < table[after].pos)) after = record;
  }
  return after != kNoRecord ? after : anywhere;
}

}  // namespace

uint32_t FindFreeChunk(Strategy strategy, const FreeTable& table, Granules size, Granules rover, uint64_t* steps) {
  if (table.count() == 0) return kNoRecord;
  switch (strategy) {
    case Strategy::kBestFit:
      return table.BestFit(size, steps);
    case Strategy::kBestFitLinear:
      return BestFitLinear(table, size, steps);
    case Strategy::kFirstFit:
      return LowestFitFrom(table, size, 0, steps);
    case Strategy::kNextFit:
      return LowestFitFrom(table, size, rover, steps);
    case Strategy::kWorstFit: {
      const uint32_t largest = table.Largest(steps);
      return largest != kNoRecord && table[largest].size >= size ? largest : kNoRecord;
    }
    case Strategy::kBump:
      return kNoRecord;
  }
  return kNoRecord;
}

}  // namespace ma
