// Differential stress of ma::Heap on the mmap source, built for AddressSanitizer and
// UndefinedBehaviorSanitizer (see CMakeLists.txt, MA_NATIVE_TESTS / MA_SANITIZE; .ci/run runs it):
//
//   cmake -S . -B build-sanitize -DMA_NATIVE_TESTS=ON -DMA_SANITIZE=ON -DCMAKE_CXX_COMPILER=clang++
//   cmake --build build-sanitize --target core_stress
//   ./build-sanitize/core_stress [--ops N] [--seed S] [--case TEXT] [--check-every N] [--list]
//
// Every strategy runs against every options mix (split and coalesce on and off, segregated small
// requests at 64 (the default), 256 and off, growth 0, alignments 8 and 4096, a maxHeapBytes cap, never trimming). A case is a
// seeded stream of random operations on a HeapHarness (heap_harness.h: the model, fill
// patterns, alignment, overlap, UsableSize and Stats checks): allocs of sizes from 0 to 1 MiB and
// huge ones, with alignments up to 1 MiB, some zeroed; frees; reallocs; quarantines (the
// escaped-view path: Quarantine, MoveAndQuarantine, ReleaseQuarantined); reset, free-all and trim
// now and then;
// invalid calls that must change nothing; Check() and a full comparison every --check-every ops.
//
// A failing case is rerun to find the shortest prefix of its operations that still fails, and
// its seed, that prefix (its last operations) and the command that replays it are printed.
// --inject-fault OP changes one byte of a live chunk after operation OP of every case: the
// runner's self-test (every case must fail, and shrink to a prefix ending at OP).
// The last line is "stress: N passed, M failed, K operations"; the exit code is 1 on any failure.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "heap_harness.h"

namespace {

using ma::HeapOptions;
using ma::Strategy;
using ma_test::HeapHarness;

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

struct Case {
  std::string name;
  HeapOptions options;
};

std::vector<Case> AllCases() {
  const std::pair<const char*, Strategy> strategies[] = {
      {"best-fit", Strategy::kBestFit},   {"best-fit-linear", Strategy::kBestFitLinear}, {"first-fit", Strategy::kFirstFit},
      {"next-fit", Strategy::kNextFit},   {"worst-fit", Strategy::kWorstFit},            {"bump", Strategy::kBump},
  };
  struct Mix {
    const char* name;
    void (*apply)(HeapOptions*);
  };
  const Mix mixes[] = {
      {"defaults", [](HeapOptions*) {}},
      {"split off", [](HeapOptions* o) { o->split = false; }},
      {"coalesce off", [](HeapOptions* o) { o->coalesce = false; }},
      {"split off, coalesce off", [](HeapOptions* o) { o->split = false, o->coalesce = false; }},
      {"segregate small 256", [](HeapOptions* o) { o->segregate_small = 256; }},
      {"segregate small off", [](HeapOptions* o) { o->segregate_small = 0; }},
      {"growth 0, trim threshold 0", [](HeapOptions* o) { o->growth = 0, o->trim_threshold = 0; }},
      {"alignment 8, never trim", [](HeapOptions* o) { o->alignment = 8, o->trim_threshold = ma::kNeverTrim; }},
      {"alignment 4096, coalesce off", [](HeapOptions* o) { o->alignment = 4096, o->coalesce = false; }},
      {"maxHeapBytes 1 MiB, growth 0", [](HeapOptions* o) { o->max_heap_bytes = 1 << 20, o->growth = 0; }},
      {"maxHeapBytes 4 MiB, segregate small 64, split off", [](HeapOptions* o) { o->max_heap_bytes = 4 << 20, o->segregate_small = 64, o->split = false; }},
  };
  std::vector<Case> cases;
  for (const auto& [strategy_name, strategy] : strategies) {
    for (const Mix& mix : mixes) {
      Case c{std::string(strategy_name) + ", " + mix.name, HeapOptions{}};
      c.options.source = ma::SourceKind::kMmap;
      c.options.strategy = strategy;
      mix.apply(&c.options);
      cases.push_back(c);
    }
  }
  return cases;
}

uint64_t RandomSize(Rng& rng) {
  const double r = rng.Unit();
  if (r < 0.02) return 0;
  if (r < 0.50) return 1 + rng.Below(128);
  if (r < 0.75) return 129 + rng.Below(896);
  if (r < 0.90) return 1025 + rng.Below(7168);
  if (r < 0.97) return 8193 + rng.Below(57344);
  if (r < 0.995) return 65537 + rng.Below(1 << 20);
  return ma_test::kHugeRequest << rng.Below(20);
}

uint64_t RandomAlign(Rng& rng) {
  const double r = rng.Unit();
  if (r < 0.85) return 0;
  if (r < 0.95) return uint64_t{8} << rng.Below(6);    // 8 .. 256
  if (r < 0.99) return uint64_t{512} << rng.Below(8);  // 512 .. 64 KiB
  return uint64_t{128 << 10} << rng.Below(4);          // 128 KiB .. 1 MiB
}

struct Outcome {
  bool ok;
  uint64_t ops;  // operations run (the failing one included)
  std::string problem;
  ma_test::HarnessCounters counters;
};

// Runs `max_ops` operations of the stream `seed` on a fresh heap, a checkpoint every
// `check_every` and at the end. `log`, when given, gets one line per operation.
// `inject_fault_at` (0: never) corrupts a live chunk after that operation (--inject-fault).
Outcome RunCase(const Case& c, uint64_t seed, uint64_t max_ops, uint64_t check_every, uint64_t inject_fault_at, std::vector<std::string>* log) {
  HeapHarness harness(c.options);
  Rng rng{seed};
  if (!harness.Create()) return {false, 0, harness.problem(), harness.counters()};
  const bool bump = c.options.strategy == Strategy::kBump;
  char line[160];
  uint64_t op = 0;
  for (op = 1; op <= max_ops && harness.ok(); ++op) {
    const double r = rng.Unit();
    const size_t live = harness.live_count();
    const double alloc_share = live < 200 ? 0.60 : live < 1500 ? 0.45 : 0.30;
    if (live == 0 || r < alloc_share) {
      const uint64_t size = RandomSize(rng), align = RandomAlign(rng), pattern = rng.Next();
      const bool zeroed = pattern % 16 == 0;
      if (log) std::snprintf(line, sizeof line, "alloc%s(%" PRIu64 ", align %" PRIu64 ")", zeroed ? " zeroed" : "", size, align);
      harness.Alloc(size, align, pattern, zeroed);
    } else if (r < alloc_share + 0.14) {
      const uint64_t pick = rng.Next(), size = RandomSize(rng);
      if (log) std::snprintf(line, sizeof line, "realloc(live #%" PRIu64 " of %zu, %" PRIu64 ")", pick % live, live, size);
      harness.Realloc(pick, size);
    } else if (r < 0.9925) {
      const uint64_t pick = rng.Next();
      if (harness.quarantined_count() > 8 || pick % 3 == 0) {
        if (log) std::snprintf(line, sizeof line, "release quarantined(#%" PRIu64 " of %zu)", pick % (harness.quarantined_count() | 1), harness.quarantined_count());
        harness.ReleaseQuarantined(pick);
      } else if (pick % 3 == 1) {
        if (log) std::snprintf(line, sizeof line, "quarantine(live #%" PRIu64 " of %zu)", pick % live, live);
        harness.Quarantine(pick);
      } else {
        const uint64_t size = RandomSize(rng);
        if (log) std::snprintf(line, sizeof line, "move and quarantine(live #%" PRIu64 " of %zu, %" PRIu64 ")", pick % live, live, size);
        harness.MoveAndQuarantine(pick, size);
      }
    } else if (r < 0.9965) {
      const uint64_t pick = rng.Next();
      if (log) std::snprintf(line, sizeof line, "free(live #%" PRIu64 " of %zu)", pick % live, live);
      harness.Free(pick);
    } else if (r < 0.9985) {
      const uint64_t kind = rng.Next(), pick = rng.Next();
      if (log) std::snprintf(line, sizeof line, "bad call %" PRIu64, kind % HeapHarness::kBadCallKinds);
      harness.BadCall(kind, pick);
    } else if (r < 0.9993) {
      if (log) std::snprintf(line, sizeof line, "trim()");
      harness.Trim();
    } else if (r < (bump ? 0.9998 : 0.99965)) {
      if (log) std::snprintf(line, sizeof line, "reset()");
      harness.Reset();
    } else {
      if (log) std::snprintf(line, sizeof line, "free all()");
      harness.FreeAll();
    }
    if (op == inject_fault_at && harness.live_count() != 0) {
      // The self-test: one byte of a live chunk changes behind the heap's back, as a heap bug
      // that hands out overlapping memory would; the run must catch it and shrink to this op.
      harness.CorruptOneByteForSelfTest(rng.Next());
      if (log) std::snprintf(line + std::strlen(line), sizeof line - std::strlen(line), "  [fault injected here]");
    }
    if (log) log->push_back(line);
    if (harness.ok() && op % check_every == 0) harness.Checkpoint();
  }
  if (harness.ok()) harness.Checkpoint();
  return {harness.ok(), op - 1, harness.problem(), harness.counters()};
}

// The fewest operations of the stream that still fail (a checkpoint closes every run).
uint64_t ShortestFailingPrefix(const Case& c, uint64_t seed, uint64_t failed_at, uint64_t check_every, uint64_t inject_fault_at) {
  uint64_t low = 1, high = failed_at;  // RunCase(high) fails
  while (low < high) {
    const uint64_t middle = low + (high - low) / 2;
    if (RunCase(c, seed, middle, check_every, inject_fault_at, nullptr).ok) low = middle + 1;
    else high = middle;
  }
  return high;
}

std::string Quote(const std::string& text) { return "'" + text + "'"; }

}  // namespace

int main(int argc, char** argv) {
  uint64_t ops = 20000, seed = 0x5EED, check_every = 1000, inject_fault_at = 0;
  std::string only;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--ops") == 0 && has_value) ops = std::strtoull(argv[++i], nullptr, 0);
    else if (std::strcmp(argv[i], "--seed") == 0 && has_value) seed = std::strtoull(argv[++i], nullptr, 0);
    else if (std::strcmp(argv[i], "--check-every") == 0 && has_value) check_every = std::strtoull(argv[++i], nullptr, 0);
    else if (std::strcmp(argv[i], "--case") == 0 && has_value) only = argv[++i];
    else if (std::strcmp(argv[i], "--inject-fault") == 0 && has_value) inject_fault_at = std::strtoull(argv[++i], nullptr, 0);
    else if (std::strcmp(argv[i], "--list") == 0) list = true;
    else {
      std::fprintf(stderr, "usage: core_stress [--ops N] [--seed S] [--case TEXT] [--check-every N] [--inject-fault OP] [--list]\n");
      return 2;
    }
  }
  if (check_every == 0) check_every = 1;

  int passed = 0, failed = 0;
  uint64_t total_ops = 0, total_verified = 0;
  const std::vector<Case> cases = AllCases();
  for (size_t index = 0; index < cases.size(); ++index) {
    const Case& c = cases[index];
    // Each case has its own stream, so that --case reruns exactly what the full run did.
    const uint64_t case_seed = seed + index;
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    if (list) {
      std::printf("%s  (%s)\n", c.name.c_str(), ma_test::DescribeOptions(c.options).c_str());
      continue;
    }
    const Outcome outcome = RunCase(c, case_seed, ops, check_every, inject_fault_at, nullptr);
    total_ops += outcome.counters.ops;
    total_verified += outcome.counters.bytes_verified;
    if (outcome.ok) {
      ++passed;
      const ma_test::HarnessCounters& n = outcome.counters;
      std::printf("ok   %-55s seed %#" PRIx64 ": %" PRIu64 " ops (%" PRIu64 " allocs, %" PRIu64 " frees, %" PRIu64 " reallocs, %" PRIu64
                  " out of memory, %" PRIu64 " bad calls, %" PRIu64 " resets/free-alls/trims), %" PRIu64 " checkpoints\n",
                  c.name.c_str(), case_seed, n.ops, n.allocs, n.frees, n.reallocs, n.out_of_memory, n.bad_calls, n.resets + n.free_alls + n.trims,
                  n.checkpoints);
      std::fflush(stdout);
      continue;
    }
    ++failed;
    std::printf("FAIL %-55s seed %#" PRIx64 ": %s\n", c.name.c_str(), case_seed, outcome.problem.c_str());
    const uint64_t shortest = ShortestFailingPrefix(c, case_seed, outcome.ops, check_every, inject_fault_at);
    std::vector<std::string> log;
    const Outcome again = RunCase(c, case_seed, shortest, check_every, inject_fault_at, &log);
    std::printf("     shortest failing prefix: %" PRIu64 " operations, failing with: %s\n", shortest, again.problem.c_str());
    const size_t shown = log.size() < 40 ? log.size() : 40;
    if (shown < log.size()) std::printf("     ... %zu operations before these\n", log.size() - shown);
    for (size_t i = log.size() - shown; i < log.size(); ++i) std::printf("     %6zu  %s\n", i + 1, log[i].c_str());
    std::printf("     replay: core_stress --case %s --seed %#" PRIx64 " --ops %" PRIu64 " --check-every %" PRIu64 "%s\n", Quote(c.name).c_str(),
                seed, shortest, check_every, inject_fault_at == 0 ? "" : (" --inject-fault " + std::to_string(inject_fault_at)).c_str());
    std::fflush(stdout);
  }
  if (!list) {
    std::printf("stress: %d passed, %d failed, %" PRIu64 " operations, %" PRIu64 " MiB verified\n", passed, failed, total_ops, total_verified >> 20);
  }
  return failed == 0 ? 0 : 1;
}
