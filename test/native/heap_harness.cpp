#include "heap_harness.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <iterator>

namespace ma_test {
namespace {

using ma::ChunkInfo;
using ma::HeapStats;
using ma::Status;

uint64_t PatternWord(uint64_t seed, uint64_t word) {
  uint64_t z = seed + (word + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
  return z ^ (z >> 29);
}

uint8_t PatternByte(uint64_t seed, uint64_t i) { return static_cast<uint8_t>(PatternWord(seed, i / 8) >> (8 * (i % 8))); }

bool SameStats(const HeapStats& a, const HeapStats& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// A call that fails for lack of room first merges every deferred chunk (DESIGN.md, "Deferred
// merging"): it may settle free chunks and nothing else. Their bytes stay free (or wilderness).
bool OnlySettledDeferred(const HeapStats& before, const HeapStats& after) {
  if (before.deferred_chunks == 0 || after.deferred_chunks >= before.deferred_chunks) return false;
  HeapStats settled = after;
  settled.deferred_chunks = before.deferred_chunks;
  settled.free_chunks = before.free_chunks;
  settled.free_bytes = before.free_bytes;
  settled.largest_free_chunk = before.largest_free_chunk;
  settled.top_bytes = before.top_bytes;
  return SameStats(before, settled) && after.free_bytes + after.top_bytes == before.free_bytes + before.top_bytes &&
         after.free_chunks <= before.free_chunks;
}

// "free_chunks 3 -> 2, ..." for the fields that differ.
std::string StatsChange(const HeapStats& a, const HeapStats& b) {
  std::string out;
#define MA_FIELD(name)                                                                                          \
  if (a.name != b.name) {                                                                                       \
    out += (out.empty() ? "" : ", ") + std::string(#name " ") + std::to_string(a.name) + " -> " + std::to_string(b.name); \
  }
  MA_FIELD(heap_start) MA_FIELD(heap_end) MA_FIELD(heap_bytes) MA_FIELD(peak_heap_bytes) MA_FIELD(live_bytes) MA_FIELD(live_chunks)
  MA_FIELD(peak_live_bytes) MA_FIELD(free_bytes) MA_FIELD(free_chunks) MA_FIELD(largest_free_chunk) MA_FIELD(top_bytes)
  MA_FIELD(deferred_chunks) MA_FIELD(metadata_bytes) MA_FIELD(peak_metadata_bytes) MA_FIELD(allocs) MA_FIELD(frees) MA_FIELD(reallocs) MA_FIELD(brk_calls)
  MA_FIELD(bytes_released) MA_FIELD(segments) MA_FIELD(search_steps)
#undef MA_FIELD
  return out;
}

bool SameChunks(const std::vector<ChunkInfo>& a, const std::vector<ChunkInfo>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].address != b[i].address || a[i].size != b[i].size || a[i].live != b[i].live) return false;
  }
  return true;
}

const char* const kStrategyNames[] = {"best-fit", "best-fit-linear", "first-fit", "next-fit", "worst-fit", "bump"};

}  // namespace

void FillPattern(uintptr_t address, uint64_t from, uint64_t to, uint64_t seed) {
  uint8_t* bytes = reinterpret_cast<uint8_t*>(address);
  uint64_t i = from;
  for (; i < to && i % 8 != 0; ++i) bytes[i] = PatternByte(seed, i);
  for (; i + 8 <= to; i += 8) {
    const uint64_t word = PatternWord(seed, i / 8);
    std::memcpy(bytes + i, &word, 8);
  }
  for (; i < to; ++i) bytes[i] = PatternByte(seed, i);
}

std::string DescribeOptions(const ma::HeapOptions& o) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, "%s %s, align %u, growth %" PRIu64 ", split %s, coalesce %s, trim %s, max %" PRIu64 ", small %" PRIu64,
                o.source == ma::SourceKind::kMmap ? "mmap" : "brk", kStrategyNames[static_cast<int>(o.strategy)], o.alignment, o.growth,
                o.split ? "on" : "off", o.coalesce ? "on" : "off",
                o.trim_threshold == ma::kNeverTrim ? "never" : std::to_string(o.trim_threshold).c_str(), o.max_heap_bytes, o.segregate_small);
  return buffer;
}

HeapHarness::~HeapHarness() { delete heap_; }

bool HeapHarness::Create() {
  const Status status = ma::Heap::Create(options_, &heap_);
  if (status != Status::kOk) return Fail("Heap::Create(%s) failed: %s", DescribeOptions(options_).c_str(), ma::StatusCode(status));
  return true;
}

bool HeapHarness::Fail(const char* format, ...) {
  if (!problem_.empty()) return false;
  char buffer[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  problem_ = "op " + std::to_string(counters_.ops) + ": " + buffer;
  return false;
}

uint64_t HeapHarness::Rounded(uint64_t bytes) const {
  const uint64_t g = Granule();
  return bytes == 0 ? g : (bytes + g - 1) / g * g;
}

bool HeapHarness::Verify(uintptr_t address, uint64_t length, uint64_t seed) {
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(address);
  uint64_t i = 0;
  for (; i + 8 <= length; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    if (word != PatternWord(seed, i / 8)) break;
  }
  for (; i < length; ++i) {
    if (bytes[i] != PatternByte(seed, i)) {
      return Fail("chunk 0x%" PRIxPTR " lost its contents at byte %" PRIu64 " of %" PRIu64, address, i, length);
    }
  }
  counters_.bytes_verified += length;
  return true;
}

void HeapHarness::AddLive(uintptr_t address, uint64_t size, uint64_t usable, uint64_t seed) {
  live_[address] = Live{size, usable, seed, order_.size()};
  order_.push_back(address);
}

HeapHarness::Live HeapHarness::TakeLive(uintptr_t address) {
  const auto found = live_.find(address);
  const Live live = found->second;
  const uintptr_t last = order_.back();
  order_.pop_back();
  if (last != address) {
    order_[live.index] = last;
    live_[last].index = live.index;
  }
  live_.erase(found);
  return live;
}

void HeapHarness::RemoveLive(uintptr_t address) {
  TakeLive(address);
  if (freed_.size() == 16) freed_.erase(freed_.begin());
  freed_.push_back(address);
}

uint64_t HeapHarness::QuarantinedBytes() const {
  uint64_t bytes = 0;
  for (const auto& [address, chunk] : quarantined_) bytes += chunk.usable;
  return bytes;
}

// FreeAll and Reset keep quarantined chunks.
void HeapHarness::DropModel() {
  live_.clear();
  order_.clear();
  freed_.clear();
}

bool HeapHarness::Overlaps(const std::map<uintptr_t, Live>& chunks, uintptr_t address, uint64_t usable) {
  const auto next = chunks.lower_bound(address);
  if (next != chunks.end() && next->first < address + usable) {
    return !Fail("new chunk [0x%" PRIxPTR ", +%" PRIu64 ") overlaps the chunk at 0x%" PRIxPTR "%s", address, usable, next->first,
                 &chunks == &quarantined_ ? " (quarantined)" : "");
  }
  if (next != chunks.begin()) {
    const auto previous = std::prev(next);
    if (previous->first + previous->second.usable > address) {
      return !Fail("new chunk 0x%" PRIxPTR " overlaps the chunk [0x%" PRIxPTR ", +%" PRIu64 ")%s", address, previous->first, previous->second.usable,
                   &chunks == &quarantined_ ? " (quarantined)" : "");
    }
  }
  return false;
}

bool HeapHarness::CheckNewChunk(uintptr_t address, uint64_t bytes, uint64_t align, uint64_t* usable) {
  const uint64_t alignment = align > Granule() ? align : Granule();
  if (address % alignment != 0) return Fail("0x%" PRIxPTR " (request %" PRIu64 ") is not aligned to %" PRIu64, address, bytes, alignment);
  const Status status = heap_->UsableSize(address, usable);
  if (status != Status::kOk) return Fail("UsableSize of the new chunk 0x%" PRIxPTR " failed: %s", address, ma::StatusCode(status));
  const uint64_t expected = Rounded(bytes);
  // With split on, the chunk is exactly the request rounded up; without, it may be a larger hole.
  if (options_.split ? *usable != expected : (*usable < expected || *usable % Granule() != 0)) {
    return Fail("usable size %" PRIu64 " for a request of %" PRIu64 " (split %s)", *usable, bytes, options_.split ? "on" : "off");
  }
  if (Overlaps(live_, address, *usable) || Overlaps(quarantined_, address, *usable)) return false;
  const HeapStats stats = heap_->Stats();
  if (address < stats.heap_start || address + *usable > stats.heap_end) {
    return Fail("new chunk [0x%" PRIxPTR ", +%" PRIu64 ") is outside the heap [0x%" PRIx64 ", 0x%" PRIx64 ")", address, *usable, stats.heap_start,
                stats.heap_end);
  }
  return true;
}

bool HeapHarness::CheckFailedCall(const char* what, Status status, uint64_t bytes, const HeapStats& before) {
  if (status != Status::kOutOfMemory || !OutOfMemoryAllowed(bytes)) {
    return Fail("%s of %" PRIu64 " bytes failed: %s", what, bytes, ma::StatusCode(status));
  }
  const HeapStats after = heap_->Stats();
  if (!SameStats(before, after) && !OnlySettledDeferred(before, after)) {
    return Fail("%s of %" PRIu64 " bytes failed (out of memory) but changed Stats(): %s", what, bytes, StatsChange(before, after).c_str());
  }
  ++counters_.out_of_memory;
  return true;
}

bool HeapHarness::CheckNoLongerLive(uintptr_t address, const char* after) {
  uint64_t usable = 0;
  const Status status = heap_->UsableSize(address, &usable);
  if (status == Status::kOk && live_.count(address) == 0 && quarantined_.count(address) == 0) {
    return Fail("0x%" PRIxPTR " still has a usable size (%" PRIu64 ") after %s", address, usable, after);
  }
  return true;
}

bool HeapHarness::Alloc(uint64_t bytes, uint64_t align, uint64_t seed, bool zeroed) {
  if (!ok()) return false;
  ++counters_.ops;
  const HeapStats before = heap_->Stats();
  uintptr_t address = 0;
  const char* what = zeroed ? "AllocZeroed" : "Alloc";
  const Status status = zeroed ? heap_->AllocZeroed(bytes, align, &address) : heap_->Alloc(bytes, align, &address);
  if (status != Status::kOk) return CheckFailedCall(what, status, bytes, before);
  if (bytes >= kHugeRequest) return Fail("%s of %" PRIu64 " bytes succeeded", what, bytes);
  uint64_t usable = 0;
  if (!CheckNewChunk(address, bytes, align, &usable)) return false;
  if (zeroed) {
    const uint8_t* chunk = reinterpret_cast<const uint8_t*>(address);
    for (uint64_t i = 0; i < usable; ++i) {
      if (chunk[i] != 0) return Fail("AllocZeroed chunk 0x%" PRIxPTR " has byte %" PRIu64 " of %" PRIu64 " nonzero", address, i, usable);
    }
  }
  FillPattern(address, 0, bytes, seed);
  AddLive(address, bytes, usable, seed);
  ++counters_.allocs;
  return true;
}

bool HeapHarness::Free(uint64_t pick) {
  if (!ok() || order_.empty()) return ok();
  ++counters_.ops;
  const uintptr_t address = Pick(pick);
  const Live live = live_[address];
  if (!Verify(address, live.size, live.seed)) return false;
  const Status status = heap_->Free(address);
  if (status != Status::kOk) return Fail("Free(0x%" PRIxPTR ") of a live chunk failed: %s", address, ma::StatusCode(status));
  RemoveLive(address);
  ++counters_.frees;
  return CheckNoLongerLive(address, "Free");
}

bool HeapHarness::Realloc(uint64_t pick, uint64_t bytes) {
  if (!ok() || order_.empty()) return ok();
  ++counters_.ops;
  const uintptr_t address = Pick(pick);
  const Live live = live_[address];
  if (!Verify(address, live.size, live.seed)) return false;
  const HeapStats before = heap_->Stats();
  uintptr_t moved = 0;
  const Status status = heap_->Realloc(address, bytes, &moved);
  if (status != Status::kOk) {
    // A failed realloc keeps the chunk as it was.
    return CheckFailedCall("Realloc", status, bytes, before) && Verify(address, live.size, live.seed);
  }
  if (bytes >= kHugeRequest) return Fail("Realloc to %" PRIu64 " bytes succeeded", bytes);
  RemoveLive(address);
  uint64_t usable = 0;
  if (!CheckNewChunk(moved, bytes, 0, &usable)) return false;
  if (!Verify(moved, bytes < live.size ? bytes : live.size, live.seed)) return false;
  if (bytes > live.size) FillPattern(moved, live.size, bytes, live.seed);
  AddLive(moved, bytes, usable, live.seed);
  ++counters_.reallocs;
  if (moved != address) {
    ++counters_.moved;
    return CheckNoLongerLive(address, "Realloc moved the chunk");
  }
  return true;
}

bool HeapHarness::Quarantine(uint64_t pick) {
  if (!ok() || order_.empty()) return ok();
  ++counters_.ops;
  const uintptr_t address = Pick(pick);
  const Status status = heap_->Quarantine(address);
  if (status != Status::kOk) return Fail("Quarantine(0x%" PRIxPTR ") of a live chunk failed: %s", address, ma::StatusCode(status));
  quarantined_[address] = TakeLive(address);
  ++counters_.quarantines;
  return true;
}

bool HeapHarness::MoveAndQuarantine(uint64_t pick, uint64_t bytes) {
  if (!ok() || order_.empty()) return ok();
  ++counters_.ops;
  const uintptr_t address = Pick(pick);
  const Live live = live_[address];
  if (!Verify(address, live.size, live.seed)) return false;
  const HeapStats before = heap_->Stats();
  uintptr_t moved = 0;
  const Status status = heap_->MoveAndQuarantine(address, bytes, &moved);
  if (status != Status::kOk) return CheckFailedCall("MoveAndQuarantine", status, bytes, before) && Verify(address, live.size, live.seed);
  if (bytes >= kHugeRequest) return Fail("MoveAndQuarantine to %" PRIu64 " bytes succeeded", bytes);
  if (moved == address) return Fail("MoveAndQuarantine did not move 0x%" PRIxPTR, address);
  quarantined_[address] = TakeLive(address);
  uint64_t usable = 0;
  if (!CheckNewChunk(moved, bytes, 0, &usable)) return false;
  if (!Verify(moved, bytes < live.size ? bytes : live.size, live.seed)) return false;
  if (bytes > live.size) FillPattern(moved, live.size, bytes, live.seed);
  AddLive(moved, bytes, usable, live.seed);
  ++counters_.quarantines;
  ++counters_.moved;
  return true;
}

bool HeapHarness::ReleaseQuarantined(uint64_t pick) {
  if (!ok() || quarantined_.empty()) return ok();
  ++counters_.ops;
  auto chosen = quarantined_.begin();
  std::advance(chosen, static_cast<long>(pick % quarantined_.size()));
  const uintptr_t address = chosen->first;
  // Nothing may have touched a quarantined chunk: something outside the heap still reads it.
  if (!Verify(address, chosen->second.size, chosen->second.seed)) return false;
  const Status status = heap_->ReleaseQuarantined(address);
  if (status != Status::kOk) return Fail("ReleaseQuarantined(0x%" PRIxPTR ") failed: %s", address, ma::StatusCode(status));
  quarantined_.erase(chosen);
  ++counters_.releases;
  return CheckNoLongerLive(address, "ReleaseQuarantined");
}

bool HeapHarness::Reset() {
  if (!ok()) return false;
  ++counters_.ops;
  heap_->Reset();
  DropModel();
  ++counters_.resets;
  const HeapStats stats = heap_->Stats();
  if (stats.live_chunks != quarantined_.size() || stats.live_bytes != QuarantinedBytes()) {
    return Fail("Reset left %" PRIu64 " live chunks (%" PRIu64 " bytes); %zu are quarantined", stats.live_chunks, stats.live_bytes, quarantined_.size());
  }
  return true;
}

bool HeapHarness::FreeAll() {
  if (!ok()) return false;
  ++counters_.ops;
  const HeapStats before = heap_->Stats();
  heap_->FreeAll();
  DropModel();
  ++counters_.free_alls;
  const HeapStats stats = heap_->Stats();
  if (stats.live_chunks != quarantined_.size() || stats.live_bytes != QuarantinedBytes()) {
    return Fail("FreeAll left %" PRIu64 " live chunks (%" PRIu64 " bytes); %zu are quarantined", stats.live_chunks, stats.live_bytes, quarantined_.size());
  }
  if (stats.heap_bytes != before.heap_bytes) return Fail("FreeAll changed heap bytes from %" PRIu64 " to %" PRIu64, before.heap_bytes, stats.heap_bytes);
  return true;
}

bool HeapHarness::Trim() {
  if (!ok()) return false;
  ++counters_.ops;
  const HeapStats before = heap_->Stats();
  const uint64_t released = heap_->Trim();
  const HeapStats after = heap_->Stats();
  ++counters_.trims;
  if (after.heap_bytes + released != before.heap_bytes) {
    return Fail("Trim said %" PRIu64 " bytes, but heap bytes went from %" PRIu64 " to %" PRIu64, released, before.heap_bytes, after.heap_bytes);
  }
  if (after.bytes_released != before.bytes_released + released) return Fail("Trim of %" PRIu64 " bytes is not in bytes_released", released);
  if (after.live_chunks != before.live_chunks || after.live_bytes != before.live_bytes) return Fail("Trim changed the live chunks");
  return true;
}

bool HeapHarness::BadCall(uint64_t kind, uint64_t pick) {
  if (!ok()) return false;
  const HeapStats before = heap_->Stats();
  std::vector<ChunkInfo> before_chunks;
  heap_->Chunks(&before_chunks);
  const uintptr_t live = order_.empty() ? 0 : Pick(pick);
  const uint64_t live_usable = live == 0 ? 0 : live_[live].usable;
  uintptr_t address = 0;
  uint64_t usable = 0;
  Status got = Status::kOk, expected = Status::kOk, also = Status::kOk;
  const char* what = nullptr;
  switch (kind % kBadCallKinds) {
    case 0:
      if (live_usable <= Granule()) return true;
      what = "Free inside a chunk";
      expected = Status::kInvalidPointer;
      got = heap_->Free(live + Granule());
      break;
    case 1:
      if (live == 0) return true;
      what = "Free of a misaligned address";
      expected = Status::kInvalidPointer;
      got = heap_->Free(live + 1 + pick % (Granule() - 1));
      break;
    case 2:
      what = "Free of 0";
      expected = Status::kInvalidPointer;
      got = heap_->Free(0);
      break;
    case 3:
      what = "Free past the heap";
      expected = Status::kInvalidPointer;
      got = heap_->Free(before.heap_end + 4096 * (1 + pick % 64));
      break;
    case 4: {
      const uint64_t bad_aligns[] = {3, 24, ma::kMaxAlign << 1, uint64_t{1} << 63, 0x1001};
      what = "Alloc with a bad alignment";
      expected = Status::kInvalidAlignment;
      got = heap_->Alloc(16, bad_aligns[pick % 5], &address);
      break;
    }
    case 5:
      what = "Alloc of a huge size";
      expected = Status::kOutOfMemory;
      got = heap_->Alloc(kHugeRequest << (pick % 20), 0, &address);
      break;
    case 6:
      if (live == 0) return true;
      what = "Realloc to a huge size";
      expected = Status::kOutOfMemory;
      got = heap_->Realloc(live, kHugeRequest << (pick % 20), &address);
      break;
    case 7: {
      // A dead address: the start of a free chunk (double free) or, once merged, inside one.
      if (freed_.empty()) return true;
      const uintptr_t dead = freed_[pick % freed_.size()];
      if (live_.count(dead) != 0) return true;  // handed out again since
      what = pick % 2 == 0 ? "Free of a freed chunk" : "Realloc of a freed chunk";
      expected = Status::kDoubleFree;
      also = Status::kInvalidPointer;
      got = pick % 2 == 0 ? heap_->Free(dead) : heap_->Realloc(dead, 8, &address);
      break;
    }
    case 9: {
      if (quarantined_.empty()) return true;
      auto chosen = quarantined_.begin();
      std::advance(chosen, static_cast<long>(pick % quarantined_.size()));
      what = pick % 2 == 0 ? "Free of a quarantined chunk" : "Realloc of a quarantined chunk";
      expected = Status::kDoubleFree;
      got = pick % 2 == 0 ? heap_->Free(chosen->first) : heap_->Realloc(chosen->first, 8, &address);
      break;
    }
    case 10:
      if (live == 0) return true;
      what = "ReleaseQuarantined of a chunk that is not quarantined";
      expected = Status::kInvalidPointer;
      got = heap_->ReleaseQuarantined(live);
      break;
    case 8:
      if (live_usable <= Granule()) return true;
      what = "UsableSize inside a chunk";
      expected = Status::kInvalidPointer;
      got = heap_->UsableSize(live + Granule() * (1 + pick % (live_usable / Granule() - 1)), &usable);
      break;
  }
  ++counters_.ops;
  ++counters_.bad_calls;
  if (got != expected && (also == Status::kOk || got != also)) {
    return Fail("%s: expected %s, got %s", what, ma::StatusCode(expected), ma::StatusCode(got));
  }
  std::vector<ChunkInfo> after_chunks;
  heap_->Chunks(&after_chunks);
  const HeapStats after = heap_->Stats();
  if (!SameStats(before, after) || !SameChunks(before_chunks, after_chunks)) return Fail("%s changed the heap: %s", what, StatsChange(before, after).c_str());
  return true;
}

bool HeapHarness::Checkpoint(bool verify_contents) {
  if (!ok()) return false;
  ++counters_.checkpoints;
  std::string problem;
  if (!heap_->Check(&problem)) return Fail("Check: %s", problem.c_str());
  std::vector<ChunkInfo> chunks;
  heap_->Chunks(&chunks);
  const HeapStats stats = heap_->Stats();
  uint64_t live_chunks = 0, live_bytes = 0, free_chunks = 0, free_bytes = 0, largest_free = 0;
  uintptr_t previous_end = 0;
  for (const ChunkInfo& chunk : chunks) {
    if (chunk.address < previous_end) return Fail("Chunks() overlap or are out of order at 0x%" PRIxPTR, chunk.address);
    if (chunk.size == 0 || chunk.size % Granule() != 0) return Fail("chunk 0x%" PRIxPTR " has size %" PRIu64, chunk.address, chunk.size);
    if (chunk.address < stats.heap_start || chunk.address + chunk.size > stats.heap_end) {
      return Fail("chunk 0x%" PRIxPTR " lies outside the heap [0x%" PRIx64 ", 0x%" PRIx64 ")", chunk.address, stats.heap_start, stats.heap_end);
    }
    previous_end = chunk.address + chunk.size;
    if (!chunk.live) {
      ++free_chunks;
      free_bytes += chunk.size;
      if (chunk.size > largest_free) largest_free = chunk.size;
      continue;
    }
    ++live_chunks;
    live_bytes += chunk.size;
    const bool quarantined = quarantined_.count(chunk.address) != 0;
    if (chunk.quarantined != quarantined) {
      return Fail("chunk 0x%" PRIxPTR " is %squarantined, the model says otherwise", chunk.address, chunk.quarantined ? "" : "not ");
    }
    const auto found = quarantined ? quarantined_.find(chunk.address) : live_.find(chunk.address);
    if (found == (quarantined ? quarantined_.end() : live_.end())) {
      return Fail("a live chunk at 0x%" PRIxPTR " that the model does not have", chunk.address);
    }
    if (found->second.usable != chunk.size) {
      return Fail("chunk 0x%" PRIxPTR " has size %" PRIu64 ", UsableSize said %" PRIu64, chunk.address, chunk.size, found->second.usable);
    }
    if (verify_contents && !Verify(chunk.address, found->second.size, found->second.seed)) return false;
  }
  const size_t model_chunks = live_.size() + quarantined_.size();
  if (live_chunks != model_chunks || stats.live_chunks != live_chunks || stats.live_bytes != live_bytes) {
    return Fail("live chunks: model %zu, Chunks() %" PRIu64 " (%" PRIu64 " bytes), Stats() %" PRIu64 " (%" PRIu64 " bytes)", model_chunks, live_chunks,
                live_bytes, stats.live_chunks, stats.live_bytes);
  }
  if (stats.free_chunks != free_chunks || stats.free_bytes != free_bytes || stats.largest_free_chunk != largest_free) {
    return Fail("free chunks: Chunks() %" PRIu64 " (%" PRIu64 " bytes, largest %" PRIu64 "), Stats() %" PRIu64 " (%" PRIu64 " bytes, largest %" PRIu64 ")",
                free_chunks, free_bytes, largest_free, stats.free_chunks, stats.free_bytes, stats.largest_free_chunk);
  }
  if (live_bytes + free_bytes + stats.top_bytes > stats.heap_bytes) {
    return Fail("live %" PRIu64 " + free %" PRIu64 " + top %" PRIu64 " bytes exceed the heap's %" PRIu64, live_bytes, free_bytes, stats.top_bytes,
                stats.heap_bytes);
  }
  if (stats.peak_heap_bytes < stats.heap_bytes || stats.peak_live_bytes < stats.live_bytes) return Fail("a peak below its current value");
  if (options_.max_heap_bytes != 0 && stats.peak_heap_bytes > options_.max_heap_bytes) {
    return Fail("peak heap bytes %" PRIu64 " above maxHeapBytes %" PRIu64, stats.peak_heap_bytes, options_.max_heap_bytes);
  }
  return true;
}

void HeapHarness::CorruptOneByteForSelfTest(uint64_t pick) {
  if (order_.empty()) return;
  const uintptr_t address = Pick(pick);
  const Live& live = live_[address];
  if (live.size != 0) reinterpret_cast<uint8_t*>(address)[pick % live.size] ^= 0x5A;
}

}  // namespace ma_test
