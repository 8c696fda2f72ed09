// Inspection: the chunk listing and Check, which verifies every invariant the other files keep
// and changes nothing.
#include <algorithm>
#include <cstdio>

#include "heap.h"

namespace ma {
namespace {

std::string Describe(const char* what, uintptr_t address) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "%s (at 0x%lx)", what, static_cast<unsigned long>(address));
  return buffer;
}

}  // namespace

void Heap::Chunks(std::vector<ChunkInfo>* out) const {
  out->clear();
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& segment = segments_[i];
    for (Granules pos = segment.start; pos < segment.top;) {
      const Granules next = bounds_.NextStart(pos + 1, segment.top);
      const bool free = bounds_.IsFree(pos);
      // A free chunk without a record is one the front end holds (Check verifies that).
      const bool deferred = free && !bump_ && free_.Lookup(pos) == kNoRecord;
      out->push_back(ChunkInfo{AddressOf(pos), static_cast<uint64_t>(next - pos) << granule_shift_, !free,
                               !free && IsQuarantined(pos), deferred});
      pos = next;
    }
  }
}

bool Heap::Check(std::string* problem) const {
  auto fail = [&](const char* what, Granules pos) {
    *problem = Describe(what, AddressOf(pos));
    return false;
  };
  auto fail_plain = [&](const char* what) {
    *problem = what;
    return false;
  };
  if (const char* summary_problem = bounds_.CheckSummaries()) return fail_plain(summary_problem);
  if (gauge_.bytes + FreeTable::kFixedBytes + FrontEnd::kFixedBytes != TableBytes() || gauge_.peak < gauge_.bytes) {
    return fail_plain("the metadata gauge disagrees with the tables' mappings");
  }
  // Settling must never grow the free table (a call that fails must not have): CanDefer keeps a
  // record's room for every deferred chunk.
  if (!bump_ && free_.spare() < front_.count()) return fail_plain("the free table lacks room for the deferred chunks' records");
  // The front end by itself, then each chunk it holds: a free chunk of its stack's size, held once,
  // without a record.
  if (const char* front_problem = front_.CheckStacks()) return fail_plain(front_problem);
  if (bump_ && !front_.empty()) return fail_plain("a bump heap holds deferred chunks");
  std::vector<Granules> deferred_starts;
  const char* deferred_problem = nullptr;
  Granules deferred_problem_at = 0;
  front_.ForEach([&](Granules pos, Granules size) {
    deferred_starts.push_back(pos);
    if (deferred_problem != nullptr) return;
    const Segment* segment = pos < bounds_.covered() ? SegmentOf(pos) : nullptr;
    if (segment == nullptr || !bounds_.IsStart(pos) || !bounds_.IsFree(pos) || bounds_.EndOf(pos, segment->top) - pos != size) {
      deferred_problem = "a deferred entry is not a free chunk of its stack's size";
    } else if (free_.Lookup(pos) != kNoRecord) {
      deferred_problem = "a deferred chunk also has a record";
    } else if (size >= defer_below_) {
      deferred_problem = "a deferred chunk is larger than deferral allows";
    }
    if (deferred_problem != nullptr) deferred_problem_at = pos;
  });
  if (deferred_problem != nullptr) return fail(deferred_problem, deferred_problem_at);
  std::sort(deferred_starts.begin(), deferred_starts.end());
  const auto twice = std::adjacent_find(deferred_starts.begin(), deferred_starts.end());
  if (twice != deferred_starts.end()) return fail("a chunk is deferred twice", *twice);
  if (front_.count() > kDeferredTotal) return fail_plain("the deferred chunks exceed their bound or disagree with the deferred list");
  for (Granules size = 0; size < kDeferredSizes; ++size) {
    if (front_.count_of(size) > kDeferredPerSize) return fail_plain("the deferred chunks of one size exceed their bound or disagree with their count");
  }
  uint64_t free_chunks = 0, recorded_chunks = 0, live_granules = 0, live_chunks = 0, quarantined = 0, accounted = 0;
  uint64_t bump_granules = 0, free_granules = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const Segment& segment = segments_[i];
    if (!(segment.start <= segment.top && segment.top <= segment.end)) return fail("a segment's start, top and end are out of order", segment.start);
    if (AddressOf(segment.start) < segment.base) return fail("a segment starts below its base", segment.start);
    if (i > 0 && segment.base < AddressOf(segments_[i - 1].end)) return fail("two segments overlap", segment.start);
    if (i + 1 < segments_.size() && segment.top != segment.end) return fail("an older segment still has wilderness", segment.top);
    if (segment.end > bounds_.covered()) return fail("a segment lies beyond the boundary map", segment.end);
    const Granules below = i == 0 ? 0 : segments_[i - 1].top;
    if (bounds_.NextStart(below, segment.start) != segment.start) return fail("a chunk starts outside every segment", below);
    if (segment.top > segment.start && !bounds_.IsStart(segment.start)) return fail("a segment's first granule starts no chunk", segment.start);
    accounted += AddressOf(segment.end) - segment.base - (static_cast<uint64_t>(segment.top - segment.start) << granule_shift_);

    bool prev_free = false, prev_deferred = false;
    for (Granules pos = segment.start; pos < segment.top;) {
      const Granules next = bounds_.NextStart(pos + 1, segment.top);
      const Granules size = next - pos;
      const bool free = bounds_.IsFree(pos);
      bool is_deferred = false;
      if (free && bump_) {
        if (free_.Lookup(pos) != kNoRecord) return fail("a free chunk of a bump heap has a record", pos);
        ++free_chunks;
        bump_granules += size;
        free_granules += size;
      } else if (free) {
        const uint32_t record = free_.Lookup(pos);
        if (record == kNoRecord) {
          is_deferred = std::binary_search(deferred_starts.begin(), deferred_starts.end(), pos);
          if (!is_deferred) return fail("a free chunk has no record in the free table", pos);
        } else {
          ++recorded_chunks;
        }
        if (options_.coalesce && !bump_ && prev_free && !prev_deferred && !is_deferred) {
          return fail("two adjacent free chunks, neither deferred, while merging is on", pos);
        }
        ++free_chunks;
        free_granules += size;
      } else {
        live_granules += size;
        ++live_chunks;
        if (IsQuarantined(pos)) ++quarantined;
      }
      prev_free = free;
      prev_deferred = is_deferred;
      pos = next;
    }
    if (options_.coalesce && prev_free && !prev_deferred && i + 1 == segments_.size() && segment.top < segment.end) {
      return fail("a free chunk borders the wilderness while merging is on", segment.top);
    }
  }
  const Granules last_top = segments_.empty() ? 0 : segments_.back().top;
  if (bounds_.NextStart(last_top, bounds_.covered()) != bounds_.covered()) return fail("a chunk starts above the heap's top", last_top);
  if (bump_ && (free_chunks != bump_free_chunks_ || bump_granules != bump_free_granules_ || free_.count() != 0)) {
    return fail_plain("a bump heap's free chunks disagree with its counts");
  }
  if (!bump_ && recorded_chunks != free_.count()) return fail_plain("the free table holds records of no free chunk");
  // The indexes before the live count: a start bit lost or added inside a free chunk shows first as
  // a record in the bin of another size.
  if (const char* index_problem = free_.CheckIndexes(bounds_, Sizes())) return fail_plain(index_problem);
  if (live_granules != live_granules_ || live_chunks != live_chunks_) return fail_plain("live bytes or chunks disagree with the chunks in the heap");
  if (quarantined != quarantined_.size()) return fail_plain("a quarantined chunk is not a live chunk of the heap");
  accounted += (live_granules + free_granules) << granule_shift_;
  if (accounted != heap_bytes_) return fail_plain("live, free, wilderness and padding bytes do not add up to the heap's bytes");
  return true;
}

}  // namespace ma
