// Realloc's page moves, timed (bench/realloc-pages.sh builds and runs this; figures in
// bench/results/realloc-pages.txt). Not part of the package build.
//
//   realloc_pages growth [runs]            buffers growing by half, 64 KiB -> 64 MiB
//   realloc_pages move [runs]              one move of a chunk of each size, copy against pages
//   realloc_pages replay TRACE.rep [runs]  a trace through Replay (touching), per threshold
//
// Each compares our heap (mmap source) moving pages from 128 KiB (the default), from other
// thresholds, and never (copies only), with glibc's realloc, whose chunks from its mmap threshold
// up (128 KiB, rising dynamically) are mappings of their own that mremap moves.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "heap.h"
#include "replay.h"
#include "trace_file.h"

namespace {

// The process's CPU time (user and system), not the wall clock: on a machine shared with other
// jobs the wall clock counts their time slices too. A page fault's time is system time.
double Now() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

long MinorFaults() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// The allocator under test: glibc, or a heap with a page-move threshold (0: never).
struct Allocator {
  const char* name;
  bool libc;
  uint64_t move_pages_from;
};

const Allocator kAllocators[] = {
    {"glibc", true, 0},
    {"heap, copies only", false, 0},
    {"heap, pages from 32 KiB", false, 32 << 10},
    {"heap, pages from 64 KiB", false, 64 << 10},
    {"heap, pages from 128 KiB", false, 128 << 10},
    {"heap, pages from 256 KiB", false, 256 << 10},
    {"heap, pages from 1 MiB", false, 1 << 20},
};

ma::HeapOptions OptionsFor(const Allocator& allocator) {
  ma::HeapOptions options;
  options.source = ma::SourceKind::kMmap;
  options.move_pages_from = allocator.move_pages_from;
  return options;
}

class Client {
 public:
  explicit Client(const Allocator& allocator) : libc_(allocator.libc) {
    if (!libc_ && ma::Heap::Create(OptionsFor(allocator), &heap_) != ma::Status::kOk) std::abort();
  }
  ~Client() { delete heap_; }
  void* Malloc(size_t bytes) {
    if (libc_) return std::malloc(bytes);
    uintptr_t address = 0;
    if (heap_->Alloc(bytes, 0, &address) != ma::Status::kOk) std::abort();
    return reinterpret_cast<void*>(address);
  }
  void* Realloc(void* p, size_t bytes) {
    if (libc_) return std::realloc(p, bytes);
    uintptr_t address = 0;
    if (heap_->Realloc(reinterpret_cast<uintptr_t>(p), bytes, &address) != ma::Status::kOk) std::abort();
    return reinterpret_cast<void*>(address);
  }
  void Free(void* p) {
    if (libc_) return std::free(p);
    heap_->Free(reinterpret_cast<uintptr_t>(p));
  }

 private:
  bool libc_;
  ma::Heap* heap_ = nullptr;
};

// `buffers` buffers grow by half in turn from 64 KiB to 64 MiB, each growth writing its new bytes
// (as a string builder does), while a 64-byte..4 KiB allocation lands after each growth. One run
// per heap, the heap kept warm across runs as a long-running program keeps its arena.
void Growth(int runs) {
  std::printf("growth: buffers growing by half from 64 KiB to 64 MiB in turn, the new bytes written, a small allocation after each;\n"
              "        CPU ns and minor page faults per realloc (median of %d runs after a warm-up, one warm heap), and how many moved\n", runs);
  for (const int buffers : {1, 4}) {
    for (const Allocator& allocator : kAllocators) {
      Client client(allocator);
      std::vector<double> ns, faults;
      uint64_t reallocs = 0, moves = 0;
      for (int run = 0; run <= runs; ++run) {
        std::vector<void*> held;
        std::vector<char*> buffer(buffers);
        std::vector<size_t> size(buffers, 64 << 10);
        for (int b = 0; b < buffers; ++b) {
          buffer[b] = static_cast<char*>(client.Malloc(size[b]));
          std::memset(buffer[b], b + 1, size[b]);
        }
        uint64_t run_reallocs = 0, run_moves = 0;
        const long faults_before = MinorFaults();
        const double start = Now();
        for (bool growing = true; growing;) {
          growing = false;
          for (int b = 0; b < buffers; ++b) {
            const size_t grown = size[b] * 3 / 2;
            if (grown > (size_t{64} << 20)) continue;
            growing = true;
            char* now = static_cast<char*>(client.Realloc(buffer[b], grown));
            run_moves += now != buffer[b];
            std::memset(now + size[b], b + 1, grown - size[b]);
            buffer[b] = now;
            size[b] = grown;
            ++run_reallocs;
            held.push_back(client.Malloc(64 + (run_reallocs * 997) % 4032));
          }
        }
        const double elapsed = Now() - start;
        const long run_faults = MinorFaults() - faults_before;
        for (int b = 0; b < buffers; ++b) client.Free(buffer[b]);
        for (void* p : held) client.Free(p);
        if (run == 0) continue;  // the warm-up
        ns.push_back(elapsed / static_cast<double>(run_reallocs));
        faults.push_back(static_cast<double>(run_faults) / static_cast<double>(run_reallocs));
        reallocs = run_reallocs;
        moves = run_moves;
      }
      std::printf("  %d buffer%s  %-26s %10.0f ns/realloc %8.0f faults/realloc  (%llu reallocs, %llu moved)\n", buffers,
                  buffers == 1 ? " " : "s", allocator.name, Median(ns), Median(faults), static_cast<unsigned long long>(reallocs),
                  static_cast<unsigned long long>(moves));
    }
  }
}

// One move of a chunk of each size, past a neighbour, then the old range allocated again and
// written (the faults that moved pages leave behind are paid there): the threshold's trade.
void Move(int runs) {
  std::printf("move: one realloc of a chunk past its neighbour to 1.5x (into warm wilderness: pages stay), its bytes written before;\n"
              "      then the old range reused (allocated and written); CPU ns (median)\n");
  std::printf("  %-10s %-26s %12s %12s %12s\n", "bytes", "allocator", "realloc", "reuse", "sum");
  for (const size_t bytes : {size_t{32} << 10, size_t{64} << 10, size_t{128} << 10, size_t{256} << 10, size_t{1} << 20, size_t{8} << 20}) {
    for (const Allocator& allocator : kAllocators) {
      if (allocator.libc) continue;  // glibc's placement differs: the growth runs compare it
      if (allocator.move_pages_from != 0 && allocator.move_pages_from != (128 << 10) && allocator.move_pages_from != (32 << 10)) continue;
      Client client(allocator);
      std::vector<double> realloc_ns, reuse_ns;
      for (int run = 0; run <= runs; ++run) {
        char* chunk = static_cast<char*>(client.Malloc(bytes));
        void* neighbour = client.Malloc(8192);
        std::memset(chunk, 1, bytes);
        const double start = Now();
        char* moved = static_cast<char*>(client.Realloc(chunk, bytes * 3 / 2));
        const double middle = Now();
        char* again = static_cast<char*>(client.Malloc(bytes));
        std::memset(again, 2, bytes);
        const double end = Now();
        if (moved == chunk) std::abort();
        client.Free(again);
        client.Free(moved);
        client.Free(neighbour);
        if (run == 0) continue;
        realloc_ns.push_back(middle - start);
        reuse_ns.push_back(end - middle);
      }
      const double r = Median(realloc_ns), u = Median(reuse_ns);
      std::printf("  %-10zu %-26s %12.0f %12.0f %12.0f\n", bytes, allocator.name, r, u, r + u);
    }
  }
}

void ReplayTrace(const char* path, int runs) {
  TraceFile file;
  if (!ReadTraceFile(path, &file)) {
    std::fprintf(stderr, "realloc_pages: cannot read %s\n", path);
    std::exit(2);
  }
  const ma::TraceView trace{file.kinds.data(), file.ids.data(), file.sizes.data(), file.kinds.size(), file.num_ids};
  std::printf("replay %s (touching; CPU ns and minor faults per op over a warm-up and %d runs; Replay's own wall-clock median)\n", path, runs);
  for (const Allocator& allocator : kAllocators) {
    std::vector<double> run_ns;
    ma::ReplayResult result;
    size_t failed = 0;
    const double start = Now();
    const long faults_before = MinorFaults();
    if (ma::Replay(trace, allocator.libc, OptionsFor(allocator), /*touch=*/true, static_cast<uint32_t>(runs), &run_ns, &result, &failed) !=
        ma::Status::kOk) {
      std::printf("  %-26s failed at op %zu\n", allocator.name, failed);
      continue;
    }
    const double ops = static_cast<double>(trace.ops) * (runs + 1);
    std::printf("  %-26s %8.1f CPU ns/op %8.3f faults/op   (wall %8.1f ns/op)\n", allocator.name, (Now() - start) / ops,
                static_cast<double>(MinorFaults() - faults_before) / ops, Median(run_ns));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "growth") {
    Growth(argc > 2 ? std::atoi(argv[2]) : 5);
  } else if (mode == "move") {
    Move(argc > 2 ? std::atoi(argv[2]) : 21);
  } else if (mode == "replay" && argc > 2) {
    ReplayTrace(argv[2], argc > 3 ? std::atoi(argv[3]) : 5);
  } else {
    std::fprintf(stderr, "usage: realloc_pages growth [runs] | move [runs] | replay TRACE.rep [runs]\n");
    return 2;
  }
  return 0;
}
