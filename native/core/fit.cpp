// Where each strategy looks. Best fit and worst fit ask the table's indexes; the rest scan the
// table slot by slot, as a list allocator would walk its list.
#include "fit.h"

#include <cstddef>
#include <cstring>

namespace ma {
namespace {

struct NamedStrategy {
  Strategy strategy;
  const char* name;
};

constexpr NamedStrategy kStrategyNames[] = {
    {Strategy::kBestFit, "best-fit"},   {Strategy::kBestFitLinear, "best-fit-linear"},
    {Strategy::kFirstFit, "first-fit"}, {Strategy::kNextFit, "next-fit"},
    {Strategy::kWorstFit, "worst-fit"}, {Strategy::kBump, "bump"},
};
constexpr size_t kStrategyCount = sizeof kStrategyNames / sizeof kStrategyNames[0];

// Entry i names enumerator i, and kBump is the last: a strategy added to the enum without a name
// (or names out of order) fails the build instead of mapping a name to the wrong strategy.
constexpr bool NamesFollowTheEnum() {
  if (kStrategyCount != static_cast<size_t>(Strategy::kBump) + 1) return false;
  for (size_t i = 0; i < kStrategyCount; ++i) {
    if (static_cast<size_t>(kStrategyNames[i].strategy) != i) return false;
  }
  return true;
}
static_assert(NamesFollowTheEnum(), "kStrategyNames must name every ma::Strategy once, in the enum's order");

uint32_t BestFitLinear(const FreeTable& table, Granules size, uint64_t* steps, Granules* found) {
  uint32_t best = kNoRecord;
  Granules best_size = 0;
  const uint32_t slots = table.slots();
  for (uint32_t record = 0; record < slots; ++record) {
    const Granules candidate = table.ScanSize(record);
    if (candidate == 0) continue;  // vacant slot
    ++*steps;
    if (candidate == size) {
      *found = candidate;
      return record;
    }
    if (candidate > size && (best == kNoRecord || candidate < best_size)) {
      best = record;
      best_size = candidate;
    }
  }
  *found = best_size;
  return best;
}

// Lowest-addressed fitting record at or after `from`; with `from` == 0 that is plain first fit.
uint32_t LowestFitFrom(const FreeTable& table, Granules size, Granules from, uint64_t* steps, Granules* found) {
  uint32_t after = kNoRecord, anywhere = kNoRecord;
  Granules after_size = 0, anywhere_size = 0;
  const uint32_t slots = table.slots();
  *steps += table.count();  // every record in use is examined
  for (uint32_t record = 0; record < slots; ++record) {
    const Granules candidate_size = table.ScanSize(record);
    if (candidate_size < size) continue;  // vacant slots too: their size is 0
    const FreeRecord& candidate = table[record];
    const bool lower_anywhere = anywhere == kNoRecord || candidate.pos < table[anywhere].pos;
    const bool lower_after = candidate.pos >= from && (after == kNoRecord || candidate.pos < table[after].pos);
    if (lower_anywhere) {
      anywhere = record;
      anywhere_size = candidate_size;
    }
    if (lower_after) {
      after = record;
      after_size = candidate_size;
    }
  }
  *found = after != kNoRecord ? after_size : anywhere_size;
  return after != kNoRecord ? after : anywhere;
}

}  // namespace

const char* StrategyName(Strategy strategy) {
  const size_t index = static_cast<size_t>(strategy);
  return index < kStrategyCount ? kStrategyNames[index].name : "unknown";
}

bool StrategyFromName(const char* name, Strategy* out) {
  for (const NamedStrategy& entry : kStrategyNames) {
    if (std::strcmp(name, entry.name) == 0) {
      *out = entry.strategy;
      return true;
    }
  }
  return false;
}

uint32_t FindFreeChunkOther(Strategy strategy, const FreeTable& table, Granules size, Granules rover, uint64_t* steps,
                            Granules* found) {
  *found = 0;
  if (table.count() == 0) return kNoRecord;
  switch (strategy) {
    case Strategy::kBestFit:
      return FindFreeChunk(strategy, table, size, rover, steps, found);
    case Strategy::kBestFitLinear:
      return BestFitLinear(table, size, steps, found);
    case Strategy::kFirstFit:
      return LowestFitFrom(table, size, 0, steps, found);
    case Strategy::kNextFit:
      return LowestFitFrom(table, size, rover, steps, found);
    case Strategy::kWorstFit: {
      const uint32_t largest = table.Largest(steps);
      if (largest == kNoRecord || table.HeadSize(largest) < size) return kNoRecord;
      *found = table.HeadSize(largest);
      return largest;
    }
    case Strategy::kBump:
      return kNoRecord;
  }
  return kNoRecord;
}

}  // namespace ma
