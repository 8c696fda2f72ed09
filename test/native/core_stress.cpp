// Standalone randomized stress of ma::Heap, for sanitizers and valgrind:
//
//   cmake -S . -B build-native -DMA_NATIVE_TESTS=ON
//         -DCMAKE_CXX_FLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer'
//   cmake --build build-native && ./build-native/core_stress [--ops N] [--seed S]
//
// Every case runs random allocs (random sizes, some aligned, some 0), frees and reallocs against
// a model of the live chunks (address -> requested size, usable size, pattern seed). Chunk bytes
// are written with a pattern and verified before every free and realloc; every kCheckEvery
// operations Heap::Check() runs and Chunks()/Stats() are compared with the model. Failed calls
// (maxHeapBytes, bad pointers) must leave Stats() and Chunks() exactly as they were.
//
// Prints one line per case and a final "stress: N passed, M failed"; exits 1 on any failure.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "heap.h"
#include "memory_source.h"

namespace {

using ma::ChunkInfo;
using ma::Heap;
using ma::HeapOptions;
using ma::HeapStats;
using ma::Status;

constexpr int kCheckEvery = 1000;

struct Rng {
  uint64_t state;
  uint64_t Next() {  // splitmix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  double Unit() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
};

uint8_t PatternByte(uint64_t seed, uint64_t i) { return static_cast<uint8_t>(seed + i * 131 + (i >> 8) * 7); }

struct Live {
  uint64_t size;    // requested
  uint64_t usable;  // UsableSize when handed out
  uint64_t seed;
  size_t index;     // in Model::order
};

struct Model {
  std::unordered_map<uintptr_t, Live> chunks;
  std::vector<uintptr_t> order;

  void Add(uintptr_t address, uint64_t size, uint64_t usable, uint64_t seed) {
    chunks[address] = Live{size, usable, seed, order.size()};
    order.push_back(address);
  }
  void Remove(uintptr_t address) {
    const size_t index = chunks[address].index;
    const uintptr_t last = order.back();
    order.pop_back();
    if (last != address) {
      order[index] = last;
      chunks[last].index = index;
    }
    chunks.erase(address);
  }
};

bool SameStats(const HeapStats& a, const HeapStats& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool SameChunks(const std::vector<ChunkInfo>& a, const std::vector<ChunkInfo>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].address != b[i].address || a[i].size != b[i].size || a[i].live != b[i].live || a[i].pinned != b[i].pinned) return false;
  }
  return true;
}

struct CaseConfig {
  const char* name;
  HeapOptions options;
  uint64_t ops;
  bool exact_sizes = true;       // split on: usable == request rounded up
  bool out_of_memory_ok = false; // maxHeapBytes set
  uint64_t reset_every = 0;      // 0: never
  bool foreign_breaks = false;   // brk: move the break behind the heap's back now and then
};

class Stress {
 public:
  Stress(const CaseConfig& config, uint64_t seed) : config_(config), rng_{seed} {}
  ~Stress() { delete heap_; }

  bool Run() {
    const Status created = Heap::Create(config_.options, &heap_);
    if (created != Status::kOk) return Fail("Heap::Create failed: %s", ma::StatusCode(created));
    for (ops_ = 1; ops_ <= config_.ops && ok_; ++ops_) {
      Step();
      if (ok_ && ops_ % kCheckEvery == 0) Checkpoint();
      if (ok_ && config_.reset_every != 0 && ops_ % config_.reset_every == 0) Reset();
      if (ok_ && config_.foreign_breaks) ForeignBreak();
    }
    if (ok_) Checkpoint();
    if (ok_) BadCalls();
    // Everything back: free all, trim, then the foreign memory.
    while (ok_ && !model_.order.empty()) Free(model_.order.back());
    if (ok_) Checkpoint();
    delete heap_;
    heap_ = nullptr;
    while (!foreign_.empty() && ma::CurrentBreak() == foreign_.back().second) {
      uintptr_t ignored;
      ma::MoveBreakForTesting(-static_cast<intptr_t>(foreign_.back().second - foreign_.back().first), &ignored);
      foreign_.pop_back();
    }
    return ok_;
  }

  std::string Summary() const {
    char buffer[200];
    std::snprintf(buffer, sizeof buffer, "%" PRIu64 " allocs, %" PRIu64 " frees, %" PRIu64 " reallocs (%" PRIu64 " moved), %" PRIu64
                  " out of memory, peak %" PRIu64 " segments",
                  allocs_, frees_, reallocs_, moved_, out_of_memory_, max_segments_);
    return buffer;
  }

  const std::string& problem() const { return problem_; }

 private:
  template <typename... Args>
  bool Fail(const char* format, Args... args) {
    if (!ok_) return false;
    char buffer[400];
    std::snprintf(buffer, sizeof buffer, format, args...);
    problem_ = "op " + std::to_string(ops_) + ": " + buffer;
    ok_ = false;
    return false;
  }

  uint64_t Granule() const { return config_.options.alignment; }
  uint64_t Rounded(uint64_t size) const {
    const uint64_t g = Granule();
    return size == 0 ? g : (size + g - 1) / g * g;
  }

  uint64_t RandomSize() {
    const double r = rng_.Unit();
    if (r < 0.02) return 0;
    if (r < 0.60) return 1 + rng_.Below(128);
    if (r < 0.85) return 129 + rng_.Below(896);
    if (r < 0.97) return 1025 + rng_.Below(7168);
    return 8193 + rng_.Below(65536 - 8192);
  }

  void Write(uintptr_t address, uint64_t from, uint64_t to, uint64_t seed) {
    uint8_t* bytes = reinterpret_cast<uint8_t*>(address);
    for (uint64_t i = from; i < to; ++i) bytes[i] = PatternByte(seed, i);
  }

  bool Verify(uintptr_t address, uint64_t length, uint64_t seed) {
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(address);
    for (uint64_t i = 0; i < length; ++i) {
      if (bytes[i] != PatternByte(seed, i)) {
        return Fail("chunk 0x%" PRIxPTR " lost its contents at byte %" PRIu64 " of %" PRIu64, address, i, length);
      }
    }
    return true;
  }

  bool CheckNew(uintptr_t address, uint64_t size, uint64_t align, uint64_t* usable) {
    if (address % (align > Granule() ? align : Granule()) != 0) return Fail("0x%" PRIxPTR " is not aligned to %" PRIu64, address, align);
    if (model_.chunks.count(address) != 0) return Fail("0x%" PRIxPTR " was handed out while live", address);
    if (heap_->UsableSize(address, usable) != Status::kOk) return Fail("UsableSize of a new chunk failed");
    const uint64_t expected = Rounded(size);
    if (config_.exact_sizes ? *usable != expected : (*usable < expected || *usable % Granule() != 0)) {
      return Fail("usable size %" PRIu64 " for a request of %" PRIu64, *usable, size);
    }
    return true;
  }

  // Calls `call`; an allowed kOutOfMemory must leave Stats() and Chunks() as they were.
  template <typename Call>
  Status Attempt(Call call) {
    HeapStats before_stats{};
    std::vector<ChunkInfo> before_chunks;
    const bool snapshot = config_.out_of_memory_ok && ops_ % 16 == 0;
    if (snapshot) {
      before_stats = heap_->Stats();
      heap_->Chunks(&before_chunks);
    }
    const Status status = call();
    if (status == Status::kOk) return status;
    if (status != Status::kOutOfMemory || !config_.out_of_memory_ok) {
      Fail("unexpected status %s", ma::StatusCode(status));
      return status;
    }
    ++out_of_memory_;
    if (snapshot) {
      std::vector<ChunkInfo> after_chunks;
      heap_->Chunks(&after_chunks);
      if (!SameStats(before_stats, heap_->Stats()) || !SameChunks(before_chunks, after_chunks)) Fail("a failed call changed the heap");
    }
    return status;
  }

  void Alloc() {
    const uint64_t size = RandomSize();
    const uint64_t aligns[] = {32, 64, 256, 4096, 65536};
    const uint64_t align = rng_.Unit() < 0.05 ? aligns[rng_.Below(5)] : 0;
    uintptr_t address = 0;
    if (Attempt([&] { return heap_->Alloc(size, align, &address); }) != Status::kOk) return;
    uint64_t usable;
    if (!CheckNew(address, size, align, &usable)) return;
    const uint64_t seed = rng_.Next();
    Write(address, 0, size, seed);
    model_.Add(address, size, usable, seed);
    ++allocs_;
  }

  void Free(uintptr_t address) {
    const Live live = model_.chunks[address];
    if (!Verify(address, live.size, live.seed)) return;
    const Status status = heap_->Free(address);
    if (status != Status::kOk) {
      Fail("Free(0x%" PRIxPTR ") failed: %s", address, ma::StatusCode(status));
      return;
    }
    model_.Remove(address);
    ++frees_;
  }

  void Realloc(uintptr_t address) {
    const Live live = model_.chunks[address];
    if (!Verify(address, live.size, live.seed)) return;
    const uint64_t size = RandomSize();
    uintptr_t moved = 0;
    if (Attempt([&] { return heap_->Realloc(address, size, &moved); }) != Status::kOk) {
      Verify(address, live.size, live.seed);  // a failed realloc keeps the chunk as it was
      return;
    }
    model_.Remove(address);
    uint64_t usable;
    if (!CheckNew(moved, size, 0, &usable)) return;
    if (!Verify(moved, size < live.size ? size : live.size, live.seed)) return;
    if (size > live.size) Write(moved, live.size, size, live.seed);
    model_.Add(moved, size, usable, live.seed);
    ++reallocs_;
    if (moved != address) ++moved_;
  }

  void Step() {
    const double r = rng_.Unit();
    const double alloc_share = model_.order.size() < 500 ? 0.55 : 0.40;
    if (model_.order.empty() || r < alloc_share) {
      Alloc();
    } else {
      const uintptr_t address = model_.order[rng_.Below(model_.order.size())];
      if (r < alloc_share + 0.15) Realloc(address);
      else Free(address);
    }
  }

  void Reset() {
    Checkpoint();
    heap_->Reset();
    model_ = Model{};
    const HeapStats stats = heap_->Stats();
    if (stats.live_chunks != 0 || stats.live_bytes != 0) Fail("Reset left live chunks");
  }

  void ForeignBreak() {
    if (ops_ % 1000 == 500) {
      const intptr_t bytes = static_cast<intptr_t>(4096 * (1 + rng_.Below(16)));
      uintptr_t old_break;
      if (ma::MoveBreakForTesting(bytes, &old_break) == Status::kOk) foreign_.push_back({old_break, old_break + static_cast<uintptr_t>(bytes)});
    } else if (ops_ % 1000 == 900 && !foreign_.empty() && ma::CurrentBreak() == foreign_.back().second) {
      uintptr_t ignored;
      ma::MoveBreakForTesting(-static_cast<intptr_t>(foreign_.back().second - foreign_.back().first), &ignored);
      foreign_.pop_back();
    }
  }

  void Checkpoint() {
    std::string problem;
    if (!heap_->Check(&problem)) {
      Fail("Check: %s", problem.c_str());
      return;
    }
    std::vector<ChunkInfo> chunks;
    heap_->Chunks(&chunks);
    uint64_t live_chunks = 0, live_bytes = 0;
    uintptr_t previous_end = 0;
    for (const ChunkInfo& chunk : chunks) {
      if (chunk.address < previous_end) {
        Fail("chunks overlap at 0x%" PRIxPTR, chunk.address);
        return;
      }
      previous_end = chunk.address + chunk.size;
      if (!chunk.live) continue;
      ++live_chunks;
      live_bytes += chunk.size;
      const auto found = model_.chunks.find(chunk.address);
      if (found == model_.chunks.end()) {
        Fail("a live chunk at 0x%" PRIxPTR " that the model does not have", chunk.address);
        return;
      }
      if (found->second.usable != chunk.size) {
        Fail("chunk 0x%" PRIxPTR " has size %" PRIu64 ", UsableSize said %" PRIu64, chunk.address, chunk.size, found->second.usable);
        return;
      }
      if (!Verify(chunk.address, found->second.size, found->second.seed)) return;
    }
    const HeapStats stats = heap_->Stats();
    if (live_chunks != model_.chunks.size() || stats.live_chunks != live_chunks || stats.live_bytes != live_bytes) {
      Fail("live chunks: model %zu, Chunks %" PRIu64 ", Stats %" PRIu64, model_.chunks.size(), live_chunks, stats.live_chunks);
      return;
    }
    if (stats.segments > max_segments_) max_segments_ = stats.segments;
    if (config_.options.max_heap_bytes != 0 && stats.peak_heap_bytes > config_.options.max_heap_bytes) {
      Fail("peak heap bytes %" PRIu64 " above maxHeapBytes", stats.peak_heap_bytes);
    }
  }

  // Calls that must fail with `expected` and leave the heap exactly as it was.
  void ExpectFailure(const char* what, Status expected, Status got, const HeapStats& before, const std::vector<ChunkInfo>& before_chunks) {
    if (got != expected) {
      Fail("%s: expected %s, got %s", what, ma::StatusCode(expected), ma::StatusCode(got));
      return;
    }
    std::vector<ChunkInfo> after;
    heap_->Chunks(&after);
    if (!SameStats(before, heap_->Stats()) || !SameChunks(before_chunks, after)) Fail("%s changed the heap", what);
  }

  void BadCalls() {
    // A live chunk of more than one granule, so that live + granule is inside it.
    uintptr_t live = 0;
    for (int tries = 0; ok_ && live == 0 && tries < 100; ++tries) {
      for (const uintptr_t candidate : model_.order) {
        if (model_.chunks[candidate].usable > Granule()) {
          live = candidate;
          break;
        }
      }
      if (live == 0) Alloc();
    }
    if (!ok_ || live == 0) return;
    uintptr_t address = 0;
    uint64_t usable = 0;
    // A free chunk: allocate two, free the first.
    const Status made = heap_->Alloc(48, 0, &address);
    uintptr_t guard = 0;
    if (made != Status::kOk || heap_->Alloc(16, 0, &guard) != Status::kOk) return;  // out of memory: skip
    Write(guard, 0, 16, 0);
    model_.Add(guard, 16, Rounded(16), 0);
    if (heap_->Free(address) != Status::kOk) {
      Fail("Free of a fresh chunk failed");
      return;
    }
    const uintptr_t freed = address;
    const HeapStats stats = heap_->Stats();
    std::vector<ChunkInfo> chunks;
    heap_->Chunks(&chunks);
    ExpectFailure("double free", Status::kDoubleFree, heap_->Free(freed), stats, chunks);
    ExpectFailure("realloc of a free chunk", Status::kDoubleFree, heap_->Realloc(freed, 8, &address), stats, chunks);
    ExpectFailure("free inside a chunk", Status::kInvalidPointer, heap_->Free(live + Granule()), stats, chunks);
    ExpectFailure("free of a misaligned address", Status::kInvalidPointer, heap_->Free(live + 1), stats, chunks);
    ExpectFailure("free of 0", Status::kInvalidPointer, heap_->Free(0), stats, chunks);
    ExpectFailure("free past the heap", Status::kInvalidPointer, heap_->Free(stats.heap_end + 4096), stats, chunks);
    ExpectFailure("usable size inside a chunk", Status::kInvalidPointer, heap_->UsableSize(live + Granule(), &usable), stats, chunks);
    ExpectFailure("alignment 3", Status::kInvalidAlignment, heap_->Alloc(16, 3, &address), stats, chunks);
    ExpectFailure("alignment 2 MiB", Status::kInvalidAlignment, heap_->Alloc(16, 2u << 20, &address), stats, chunks);
    ExpectFailure("a size beyond any chunk", Status::kOutOfMemory, heap_->Alloc(uint64_t{1} << 50, 0, &address), stats, chunks);
    ExpectFailure("realloc beyond any chunk", Status::kOutOfMemory, heap_->Realloc(live, uint64_t{1} << 50, &address), stats, chunks);
  }

  const CaseConfig& config_;
  Rng rng_;
  Heap* heap_ = nullptr;
  Model model_;
  std::vector<std::pair<uintptr_t, uintptr_t>> foreign_;
  uint64_t ops_ = 0;
  bool ok_ = true;
  std::string problem_;
  uint64_t allocs_ = 0, frees_ = 0, reallocs_ = 0, moved_ = 0, out_of_memory_ = 0, max_segments_ = 0;
};

HeapOptions Options(ma::SourceKind source, ma::Strategy strategy) {
  HeapOptions options;
  options.source = source;
  options.strategy = strategy;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t ops = 100000;
  uint64_t seed = 0x5EED;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--ops") == 0) ops = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--seed") == 0) seed = std::strtoull(argv[i + 1], nullptr, 0);
  }
  using ma::SourceKind;
  using ma::Strategy;

  std::vector<CaseConfig> cases;
  const std::pair<const char*, Strategy> strategies[] = {
      {"best-fit", Strategy::kBestFit},   {"best-fit-linear", Strategy::kBestFitLinear}, {"first-fit", Strategy::kFirstFit},
      {"next-fit", Strategy::kNextFit},   {"worst-fit", Strategy::kWorstFit},            {"bump", Strategy::kBump},
  };
  static std::string names[32];
  size_t named = 0;
  for (const auto& [name, strategy] : strategies) {
    names[named] = std::string("mmap ") + name;
    CaseConfig config{names[named++].c_str(), Options(SourceKind::kMmap, strategy), ops};
    if (strategy == Strategy::kBump) config.reset_every = 5000;
    cases.push_back(config);
  }
  {
    CaseConfig config{"mmap best-fit, split off", Options(SourceKind::kMmap, Strategy::kBestFit), ops / 4};
    config.options.split = false;
    config.exact_sizes = false;
    cases.push_back(config);
  }
  {
    CaseConfig config{"mmap first-fit, coalesce off", Options(SourceKind::kMmap, Strategy::kFirstFit), ops / 4};
    config.options.coalesce = false;
    cases.push_back(config);
  }
  {
    CaseConfig config{"mmap next-fit, alignment 8", Options(SourceKind::kMmap, Strategy::kNextFit), ops / 4};
    config.options.alignment = 8;
    cases.push_back(config);
  }
  {
    CaseConfig config{"mmap worst-fit, alignment 4096", Options(SourceKind::kMmap, Strategy::kWorstFit), ops / 4};
    config.options.alignment = 4096;
    cases.push_back(config);
  }
  {
    CaseConfig config{"mmap best-fit, growth 0, trim threshold 0", Options(SourceKind::kMmap, Strategy::kBestFit), ops / 4};
    config.options.growth = 0;
    config.options.trim_threshold = 0;
    config.reset_every = 10000;
    cases.push_back(config);
  }
  {
    CaseConfig config{"mmap best-fit, maxHeapBytes 1 MiB", Options(SourceKind::kMmap, Strategy::kBestFit), ops / 4};
    config.options.max_heap_bytes = 1 << 20;
    config.options.growth = 0;
    config.out_of_memory_ok = true;
    cases.push_back(config);
  }
  {
    CaseConfig config{"mmap first-fit, maxHeapBytes 1 MiB, coalesce off", Options(SourceKind::kMmap, Strategy::kFirstFit), ops / 4};
    config.options.max_heap_bytes = 1 << 20;
    config.options.coalesce = false;
    config.out_of_memory_ok = true;
    cases.push_back(config);
  }
  {
    CaseConfig config{"brk best-fit", Options(SourceKind::kBrk, Strategy::kBestFit), ops};
    config.reset_every = 25000;
    cases.push_back(config);
  }
  {
    CaseConfig config{"brk next-fit, foreign break moves", Options(SourceKind::kBrk, Strategy::kNextFit), ops / 2};
    config.foreign_breaks = true;
    config.reset_every = 10000;
    cases.push_back(config);
  }
  {
    CaseConfig config{"brk best-fit, foreign break moves, growth 0, trim threshold 0", Options(SourceKind::kBrk, Strategy::kBestFit), ops / 2};
    config.foreign_breaks = true;
    config.options.growth = 0;
    config.options.trim_threshold = 0;
    cases.push_back(config);
  }

  int passed = 0, failed = 0;
  uint64_t case_seed = seed;
  for (const CaseConfig& config : cases) {
    Stress stress(config, case_seed);
    const bool ok = stress.Run();
    std::printf("%s %-55s seed %#" PRIx64 ", %" PRIu64 " ops: %s\n", ok ? "ok  " : "FAIL", config.name, case_seed, config.ops,
                ok ? stress.Summary().c_str() : stress.problem().c_str());
    std::fflush(stdout);
    (ok ? passed : failed)++;
    ++case_seed;
  }
  std::printf("stress: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
