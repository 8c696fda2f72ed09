// Heap::Check, proven: each case builds a small heap, breaks one invariant that Check verifies
// by reaching into the heap's tables (HeapInspector is the friend class the core declares for
// this), and expects Check to name exactly that invariant. A checker whose failure branches were
// never taken could not be trusted to find real corruption.
//
//   build-sanitize/check_catches_corruption      (built with -DMA_NATIVE_TESTS=ON; .ci/run runs it)
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "heap.h"

namespace ma {

class HeapInspector {
 public:
  static BoundaryMap& bounds(Heap& heap) { return heap.bounds_; }
  static FreeTable& table(Heap& heap) { return heap.free_; }
  static MetadataArray<Heap::Segment>& segments(Heap& heap) { return heap.segments_; }
  static uint64_t& live_granules(Heap& heap) { return heap.live_granules_; }
  static uint64_t& live_chunks(Heap& heap) { return heap.live_chunks_; }
  static uint64_t& heap_bytes(Heap& heap) { return heap.heap_bytes_; }
  static uint64_t& bump_free_chunks(Heap& heap) { return heap.bump_free_chunks_; }
  static MetadataArray<Granules>& quarantined(Heap& heap) { return heap.quarantined_; }
  static Granules PositionOf(Heap& heap, uintptr_t address) { return static_cast<Granules>((address - heap.base_address_) >> heap.granule_shift_); }
  static FreeRecord& record(Heap& heap, uint32_t index) { return heap.free_.records_[index]; }
  static uint32_t small_head(Heap& heap, Granules size) { return heap.free_.small_heads_[size]; }
  static uint64_t& small_summary(Heap& heap) { return heap.free_.small_summary_; }
  static uint32_t& page_first(Heap& heap, Granules pos) { return heap.free_.by_page_[pos >> 6]; }
  static FrontEnd& front(Heap& heap) { return heap.front_; }
  // The position held by the top entry of the front end's stack of `size`.
  static Granules& front_top(Heap& heap, Granules size) { return heap.front_.entries_[heap.front_.heads_[size]].pos; }
  static uint32_t& front_top_next(Heap& heap, Granules size) { return heap.front_.entries_[heap.front_.heads_[size]].next; }
  static uint32_t front_head(Heap& heap, Granules size) { return heap.front_.heads_[size]; }
  static uint32_t& front_count(Heap& heap, Granules size) { return heap.front_.counts_[size]; }
  static uint64_t& front_occupied(Heap& heap) { return heap.front_.occupied_; }
  static MetadataGauge& gauge(Heap& heap) { return heap.gauge_; }
  static MetadataArray<FreeRecord>& records(Heap& heap) { return heap.free_.records_; }
  static MetadataArray<Granules>& scan_sizes(Heap& heap) { return heap.free_.scan_sizes_; }
};

}  // namespace ma

namespace {

using ma::Granules;
using ma::Heap;
using ma::HeapInspector;
using Inspect = HeapInspector;

struct Case {
  const char* name;
  ma::Strategy strategy;
  // Allocates, frees, then breaks one thing; the addresses it made are passed in.
  std::function<void(Heap&, std::vector<uintptr_t>&)> corrupt;
  const char* expected;  // Check's message, before the " (at 0x...)" it may add
  uint32_t alignment = 16;
};

uintptr_t Alloc(Heap& heap, uint64_t bytes) {
  uintptr_t address = 0;
  if (heap.Alloc(bytes, 0, &address) != ma::Status::kOk) std::abort();
  return address;
}

// live a (48) | free b (64: merged with best-fit-linear, which never defers; deferred with best-fit)
// | live c (32) | free d (16: deferred with best-fit) | live e
void Layout(Heap& heap, std::vector<uintptr_t>& at) {
  for (const uint64_t bytes : {48, 64, 32, 16, 2048}) at.push_back(Alloc(heap, bytes));
  heap.Free(at[1]);
  heap.Free(at[3]);
}

int Run(const Case& test) {
  ma::HeapOptions options;
  options.source = ma::SourceKind::kMmap;
  options.strategy = test.strategy;
  options.segregate_small = 0;
  options.alignment = test.alignment;
  Heap* heap = nullptr;
  if (Heap::Create(options, &heap) != ma::Status::kOk) std::abort();
  std::vector<uintptr_t> at;
  Layout(*heap, at);
  std::string problem;
  if (!heap->Check(&problem)) {
    std::printf("FAIL %-60s the heap was broken before the corruption: %s\n", test.name, problem.c_str());
    return 1;
  }
  test.corrupt(*heap, at);
  problem.clear();
  const bool passed = !heap->Check(&problem);
  const std::string reported = problem.substr(0, problem.find(" (at 0x"));
  const bool exact = passed && reported == test.expected;
  std::printf("%s %-60s %s\n", exact ? "ok  " : "FAIL", test.name, exact ? "" : (passed ? ("reported: " + problem).c_str() : "Check() passed"));
  // The heap is corrupt on purpose: it is leaked rather than destroyed.
  return exact ? 0 : 1;
}

const ma::Strategy kLinear = ma::Strategy::kBestFitLinear;
const ma::Strategy kBest = ma::Strategy::kBestFit;
const ma::Strategy kBump = ma::Strategy::kBump;

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  const std::vector<Case> cases = {
      {"a free bit where no chunk starts", kLinear,
       [](Heap& h, auto& at) { Inspect::bounds(h).WordOf(Inspect::PositionOf(h, at[0]) + 1).frees |= uint64_t{1} << ((Inspect::PositionOf(h, at[0]) + 1) & 63); },
       "a free bit is set where no chunk starts"},
      {"a stale summary bit", kLinear,
       [](Heap& h, auto&) {
         // A start bit set behind the summary's back, in an empty word of the wilderness.
         const Granules far = Inspect::segments(h)[0].top + 128;
         Inspect::bounds(h).WordOf(far).starts |= uint64_t{1} << (far & 63);
       },
       "a summary bit of the boundary map is stale"},
      {"a segment whose top is past its end", kLinear,
       [](Heap& h, auto&) { Inspect::segments(h)[0].top = Inspect::segments(h)[0].end + 1; },
       "a segment's start, top and end are out of order"},
      {"a segment starting below its base", kLinear,
       [](Heap& h, auto&) { Inspect::segments(h)[0].base += 4096; },
       "a segment starts below its base"},
      {"a chunk start missing: two chunks run together", kLinear,
       [](Heap& h, auto& at) { Inspect::bounds(h).RemoveStart(Inspect::PositionOf(h, at[0])); },
       "a segment's first granule starts no chunk"},
      {"a free chunk without its record", kLinear,
       [](Heap& h, auto& at) { Inspect::bounds(h).SetFree(Inspect::PositionOf(h, at[2])); },
       "a free chunk has no record in the free table"},
      {"a record in the bin of another size", kLinear,
       [](Heap& h, auto& at) {
         // A start bit inside the free chunk: its run of granules no longer matches its bin.
         Inspect::bounds(h).AddStart(Inspect::PositionOf(h, at[1]) + 1, false);
       },
       "a size bin holds a record of another size"},
      {"two adjacent free chunks, neither deferred", kLinear,
       [](Heap& h, auto& at) {
         // c's start becomes free with a record, right above the free b.
         const Granules c = Inspect::PositionOf(h, at[2]);
         if (!Inspect::table(h).Reserve(1)) std::abort();
         Inspect::bounds(h).SetFree(c);
         Inspect::table(h).Insert(c, 2);
         Inspect::live_chunks(h) -= 1;
         Inspect::live_granules(h) -= 2;
       },
       "two adjacent free chunks, neither deferred, while merging is on"},
      {"a deferred chunk too large to defer", kBest,
       [](Heap& h, auto&) {
         // With 32-byte granules best fit defers chunks below 32 granules (1024 bytes): mark a
         // live 40-granule chunk deferred.
         const uintptr_t x = Alloc(h, 40 * 32);
         Alloc(h, 32);
         const Granules pos = Inspect::PositionOf(h, x);
         if (!Inspect::front(h).Reserve()) std::abort();
         Inspect::bounds(h).SetFree(pos);
         Inspect::front(h).Push(pos, 40);
         Inspect::live_chunks(h) -= 1;
         Inspect::live_granules(h) -= 40;
       },
       "a deferred chunk is larger than deferral allows", 32},
      {"a chunk start above the top", kLinear,
       [](Heap& h, auto&) {
         const Granules top = Inspect::segments(h)[0].top;
         Inspect::bounds(h).AddStart(top + 3, false);
       },
       "a chunk starts above the heap's top"},
      {"live counts that disagree with the chunks", kLinear,
       [](Heap& h, auto&) { Inspect::live_chunks(h) += 1; },
       "live bytes or chunks disagree with the chunks in the heap"},
      {"a quarantine entry of no live chunk", kLinear,
       [](Heap& h, auto& at) {
         if (!Inspect::quarantined(h).Reserve(1)) std::abort();
         Inspect::quarantined(h).PushBack(Inspect::PositionOf(h, at[1]));
       },
       "a quarantined chunk is not a live chunk of the heap"},
      {"a bump heap's free count off by one", kBump,
       [](Heap& h, auto&) { Inspect::bump_free_chunks(h) += 1; },
       "a bump heap's free chunks disagree with its counts"},
      {"a front-end entry pointing at a live chunk", kBest,
       [](Heap& h, auto& at) { Inspect::front_top(h, 1) = Inspect::PositionOf(h, at[2]); },
       "a deferred entry is not a free chunk of its stack's size"},
      {"a front-end entry in the stack of another size", kBest,
       [](Heap& h, auto& at) {
         // d (one granule) is held a second time in the stack of two granules.
         if (!Inspect::front(h).Reserve()) std::abort();
         Inspect::front(h).Push(Inspect::PositionOf(h, at[3]), 2);
       },
       "a deferred entry is not a free chunk of its stack's size"},
      {"the metadata gauge off by a page", kBest,
       [](Heap& h, auto&) { Inspect::gauge(h).bytes += ma::kMetadataPage; },
       "the metadata gauge disagrees with the tables' mappings"},
      {"a metadata peak below the metadata in use", kBest,
       [](Heap& h, auto&) { Inspect::gauge(h).peak = Inspect::gauge(h).bytes - 1; },
       "the metadata gauge disagrees with the tables' mappings"},
      {"an array's growth not reported to the gauge", kLinear,
       [](Heap& h, auto&) {
         Inspect::records(h).Attach(nullptr);
         if (!Inspect::records(h).Reserve(Inspect::records(h).capacity() + 1)) std::abort();
       },
       "the metadata gauge disagrees with the tables' mappings"},
      {"more deferred chunks than records in reserve", kBest,
       [](Heap& h, auto& at) {
         // d pushed again until the front end holds more chunks than the table has spare room.
         const size_t spare = Inspect::table(h).spare();
         for (size_t i = 0; i < spare; ++i) {
           if (!Inspect::front(h).Reserve()) std::abort();
           Inspect::front(h).Push(Inspect::PositionOf(h, at[3]), 1);
         }
       },
       "the free table lacks room for the deferred chunks' records"},
      {"a chunk deferred twice", kBest,
       [](Heap& h, auto& at) {
         if (!Inspect::front(h).Reserve()) std::abort();
         Inspect::front(h).Push(Inspect::PositionOf(h, at[3]), 1);
       },
       "a chunk is deferred twice"},
      {"a deferred chunk that also has a record", kBest,
       [](Heap& h, auto& at) {
         if (!Inspect::table(h).Reserve(1)) std::abort();
         Inspect::table(h).Insert(Inspect::PositionOf(h, at[3]), 1);
       },
       "a deferred chunk also has a record"},
      {"a front-end stack that loops", kBest,
       [](Heap& h, auto&) { Inspect::front_top_next(h, 1) = Inspect::front_head(h, 1); },
       "a front-end stack loops"},
      {"the front end's size bitmap cleared", kBest,
       [](Heap& h, auto&) { Inspect::front_occupied(h) = 0; },
       "the front end's size bitmap is stale"},
      {"a bin head that carries another size", kLinear,
       [](Heap& h, auto& at) {
         // b's record heads its bin; its back link names the size of the bin above.
         const uint32_t record = Inspect::table(h).Lookup(Inspect::PositionOf(h, at[1]));
         if (record == ma::kNoRecord || !ma::FreeTable::IsHead(Inspect::record(h, record))) std::abort();
         Inspect::record(h, record).bin_prev += 1;
       },
       "a size bin's head carries another size"},
      {"a scan size off by one", kLinear,
       [](Heap& h, auto& at) {
         const uint32_t record = Inspect::table(h).Lookup(Inspect::PositionOf(h, at[1]));
         if (record == ma::kNoRecord) std::abort();
         Inspect::scan_sizes(h)[record] += 1;
       },
       "a record's scan size disagrees with its chunk"},
      {"a small-size summary bit cleared", kLinear,
       [](Heap& h, auto&) { Inspect::small_summary(h) = 0; },
       "the small-size summary bitmap is stale"},
      {"a record dropped from its page's chain", kLinear,
       [](Heap& h, auto& at) { Inspect::page_first(h, Inspect::PositionOf(h, at[1])) = ma::kNoRecord; },
       "a free chunk has no record in the free table"},
      {"a front-end count that disagrees with its stack", kBest,
       [](Heap& h, auto&) { Inspect::front_count(h, 1) += 1; },
       "a front-end stack's count disagrees with its entries"},
      {"a bin's back link broken", kBest,
       [](Heap& h, auto& at) {
         // Two free 2048-byte chunks (too large to defer) in one bin; the second's back link is cut.
         // (Separators no free chunk can hold: they come from the top, right above each.)
         const uintptr_t f = Alloc(h, 2048);
         Alloc(h, 4096);
         const uintptr_t g = Alloc(h, 2048);
         Alloc(h, 4096);
         h.Free(f);
         h.Free(g);
         const uint32_t head = Inspect::small_head(h, 128);
         const uint32_t next = Inspect::record(h, head).bin_next;
         if (next == ma::kNoRecord) std::abort();
         Inspect::record(h, next).bin_prev = ma::kNoRecord;
         (void)at;
       },
       "a size bin's back link is wrong"},
      {"heap bytes that do not add up", kLinear,
       [](Heap& h, auto&) { Inspect::heap_bytes(h) += 16; },
       "live, free, wilderness and padding bytes do not add up to the heap's bytes"},
  };
  int failed = 0;
  for (const Case& test : cases) failed += Run(test);
  std::printf("check_catches_corruption: %zu passed, %d failed\n", cases.size() - failed, failed);
  return failed == 0 ? 0 : 1;
}
