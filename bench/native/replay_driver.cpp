// A standalone replay of one malloc-lab trace through the core, for profilers that cannot run
// under Node (valgrind's cachegrind/callgrind, perf). Not part of the package build:
//   g++ -O2 -std=c++17 -I native/core native/core/*.cpp bench/native/replay_driver.cpp -o /tmp/replay_driver
//   /tmp/replay_driver TRACE.rep [best-fit|libc|...] [runs] [touch 0|1] [growth]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "replay.h"
#include "trace_file.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TRACE.rep [allocator] [runs] [touch]\n", argv[0]);
    return 2;
  }
  TraceFile file;
  if (!ReadTraceFile(argv[1], &file)) {
    std::fprintf(stderr, "replay_driver: cannot read %s\n", argv[1]);
    return 2;
  }
  const std::string allocator = argc > 2 ? argv[2] : "best-fit";
  ma::HeapOptions options;
  options.source = ma::SourceKind::kMmap;
  options.max_heap_bytes = uint64_t{1} << 30;  // a small reservation, so that valgrind can map it
  if (allocator != "libc" && !ma::StrategyFromName(allocator.c_str(), &options.strategy)) {
    std::fprintf(stderr, "replay_driver: no strategy is called %s\n", allocator.c_str());
    return 2;
  }
  const int runs = argc > 3 ? std::atoi(argv[3]) : 10;
  const bool touch = argc > 4 && std::atoi(argv[4]) != 0;
  if (argc > 5) options.growth = static_cast<uint64_t>(std::atoll(argv[5]));
  ma::TraceView trace{file.kinds.data(), file.ids.data(), file.sizes.data(), file.kinds.size(), file.num_ids};
  std::vector<double> run_ns;
  ma::ReplayResult result;
  size_t failed = 0;
  if (ma::Replay(trace, allocator == "libc", options, touch, static_cast<uint32_t>(runs), &run_ns, &result, &failed) !=
      ma::Status::kOk) {
    std::fprintf(stderr, "failed at op %zu\n", failed);
    return 1;
  }
  double best = 1e300;
  for (const double ns : run_ns) best = ns < best ? ns : best;
  size_t bad_op = 0;
  uint64_t peak_live = 0;
  ma::ValidateTrace(trace, &bad_op, &peak_live);
  std::printf("%s %s best %.1f ns/op over %d runs, peak heap %llu, peak live %llu, utilization %.4f, metadata %llu\n", argv[1],
              allocator.c_str(), best, runs, static_cast<unsigned long long>(result.peak_heap_bytes),
              static_cast<unsigned long long>(peak_live),
              result.peak_heap_bytes ? static_cast<double>(peak_live) / static_cast<double>(result.peak_heap_bytes) : 0.0,
              static_cast<unsigned long long>(result.metadata_bytes));
  return 0;
}
