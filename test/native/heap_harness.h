// A ma::Heap under test beside a plain model of what it must hold, for the stress runner
// (core_stress.cpp) and the fuzzer (core_fuzz.cpp). It uses only Heap's public API.
//
// The model is the live set: address -> requested size, usable size and a fill-pattern seed.
// Every live chunk's bytes carry its pattern, verified before the chunk is freed or moved and at
// every checkpoint. Each new chunk must be aligned, report a usable size that covers the
// request, lie inside the heap and overlap no live chunk. A call that fails (out of memory, a
// bad pointer or alignment) must fail with its exact status and leave Stats() as it was (bad
// calls: Chunks() too). Checkpoint() runs Heap::Check() and compares Chunks() and Stats() with
// the model.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "heap.h"

namespace ma_test {

struct HarnessCounters {
  uint64_t ops = 0, allocs = 0, frees = 0, reallocs = 0, moved = 0, out_of_memory = 0;
  uint64_t quarantines = 0, releases = 0;
  uint64_t bad_calls = 0, resets = 0, free_alls = 0, trims = 0, checkpoints = 0, bytes_verified = 0;
};

// Requests at least this large must fail with kOutOfMemory: no heap holds them.
constexpr uint64_t kHugeRequest = uint64_t{1} << 40;

class HeapHarness {
 public:
  explicit HeapHarness(const ma::HeapOptions& options) : options_(options) {}
  ~HeapHarness();
  HeapHarness(const HeapHarness&) = delete;
  HeapHarness& operator=(const HeapHarness&) = delete;

  // False (with problem()) when Heap::Create refuses the options.
  bool Create();

  // Each operation returns false once the heap and the model disagree; the first problem stays.
  // `pick` chooses a live chunk (pick % live count); with none live, those ops do nothing.
  // `zeroed`: through AllocZeroed, whose whole usable size must read as zeros.
  bool Alloc(uint64_t bytes, uint64_t align, uint64_t seed, bool zeroed = false);
  bool Free(uint64_t pick);
  bool Realloc(uint64_t pick, uint64_t bytes);
  // The escaped-view path: a quarantined chunk stays live (Chunks() says so) but is no longer
  // the user's: Free and Realloc refuse it, FreeAll and Reset keep it, and its bytes must stay
  // as they were until ReleaseQuarantined frees it.
  bool Quarantine(uint64_t pick);
  bool MoveAndQuarantine(uint64_t pick, uint64_t bytes);
  bool ReleaseQuarantined(uint64_t pick);  // the quarantined chunk at pick % their count
  size_t quarantined_count() const { return quarantined_.size(); }
  bool Reset();
  bool FreeAll();
  bool Trim();
  // One of kBadCallKinds invalid calls, each with its exact expected status.
  bool BadCall(uint64_t kind, uint64_t pick);
  // `verify_contents` false skips re-reading every live chunk's bytes (they are still verified
  // before each free, realloc and move): for callers that checkpoint after every operation.
  bool Checkpoint(bool verify_contents = true);
  // For the runners' self-tests only: flips one byte of a live chunk, as a heap bug would.
  void CorruptOneByteForSelfTest(uint64_t pick);

  static constexpr uint64_t kBadCallKinds = 11;

  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }
  size_t live_count() const { return order_.size(); }
  const HarnessCounters& counters() const { return counters_; }
  const ma::HeapOptions& options() const { return options_; }

 private:
  struct Live {
    uint64_t size;    // requested
    uint64_t usable;  // UsableSize when handed out
    uint64_t seed;    // of its fill pattern
    size_t index;     // in order_
  };

  bool Fail(const char* format, ...) __attribute__((format(printf, 2, 3)));
  uint64_t Granule() const { return options_.alignment; }
  uint64_t Rounded(uint64_t bytes) const;
  bool OutOfMemoryAllowed(uint64_t bytes) const { return options_.max_heap_bytes != 0 || bytes >= kHugeRequest; }
  bool Verify(uintptr_t address, uint64_t length, uint64_t seed);
  bool CheckNewChunk(uintptr_t address, uint64_t bytes, uint64_t align, uint64_t* usable);
  bool CheckFailedCall(const char* what, ma::Status status, uint64_t bytes, const ma::HeapStats& before);
  bool CheckNoLongerLive(uintptr_t address, const char* after);
  void AddLive(uintptr_t address, uint64_t size, uint64_t usable, uint64_t seed);
  void RemoveLive(uintptr_t address);  // freed: remembered for double frees
  Live TakeLive(uintptr_t address);    // no longer the user's
  uint64_t QuarantinedBytes() const;
  bool Overlaps(const std::map<uintptr_t, Live>& chunks, uintptr_t address, uint64_t usable);
  void DropModel();
  uintptr_t Pick(uint64_t pick) const { return order_[pick % order_.size()]; }

  ma::HeapOptions options_;
  ma::Heap* heap_ = nullptr;
  std::map<uintptr_t, Live> live_;
  std::vector<uintptr_t> order_;         // live addresses, for picking in O(1)
  std::vector<uintptr_t> freed_;         // recently freed addresses, for double frees
  std::map<uintptr_t, Live> quarantined_;  // index unused
  HarnessCounters counters_;
  std::string problem_;
};

// Writes bytes [from, to) of the pattern stream `seed` at `address`.
void FillPattern(uintptr_t address, uint64_t from, uint64_t to, uint64_t seed);

// "best-fit, split off, ..." for reports.
std::string DescribeOptions(const ma::HeapOptions& options);

}  // namespace ma_test
