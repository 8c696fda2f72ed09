// The report `run` reads: at exit (an ELF destructor, so also in forked children that exit
// normally), <MEMORY_ALLOCATOR_REPORT_DIR>/<pid>.json, written to a temporary name and renamed.
// The JSON is formatted by hand into mapped pages: nothing here calls malloc. The object's shape
// is the contract in BRIEF/DESIGN ("Running a program on this allocator").
//
// While the program runs, the main heap is watched after each of its requests when asked for:
// - the timeline (MEMORY_ALLOCATOR_TIMELINE=1): (request, heapBytes, liveBytes) every `every`
//   requests, at most kMaxSamples; when full, every other sample goes and `every` doubles.
// - the snapshot at the peak (MEMORY_ALLOCATOR_SNAPSHOT=peak): the chunk list, taken again at
//   each new peak of live bytes (within 1/64, or when the heap grew). A walk costs a few ns per
//   chunk, so it stops when a heap has more than kMaxPeakChunks chunks or when the walks
//   together passed kPeakWalkBudget chunks; the snapshot is then taken at exit and the report
//   says why (snapshot.reason).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>  // rename
#include <cstring>
#include <vector>

#include "malloc_library.h"

namespace ma {
namespace malloc_library {
namespace {

constexpr size_t kMaxSamples = 4096;
constexpr uint64_t kMaxPeakChunks = 200000;
constexpr uint64_t kPeakWalkBudget = 20000000;

// ---- watching the main heap (under its lock)
uint64_t requests = 0;
uint64_t every = 1;  // a power of two
uint64_t until_sample = 1;  // requests to the next multiple of `every`: a countdown, not a division
size_t sample_count = 0;
uint64_t samples[kMaxSamples][3];

uint64_t snapshot_heap_bytes = 0;  // the heap's size and live bytes at the last snapshot
uint64_t snapshot_live_bytes = 0;
uint64_t walked = 0;
const char* peak_given_up = nullptr;  // why the snapshot moved to exit
std::vector<ChunkInfo>* snapshot = nullptr;
uint64_t snapshot_start = 0, snapshot_end = 0;

void TakeSnapshot(const Heap* heap, const HeapStats& stats) {
  if (snapshot == nullptr) snapshot = new std::vector<ChunkInfo>();
  heap->Chunks(snapshot);
  snapshot_start = stats.heap_start;
  snapshot_end = stats.heap_end;
}

}  // namespace

void ObserveMain(Heap* heap, bool allocated) {
  ++requests;
  if (settings.timeline && --until_sample == 0) {
    const HeapStats stats = heap->Stats();
    if (sample_count == kMaxSamples) {
      size_t kept = 0;
      for (size_t i = 0; i < sample_count; ++i) {
        if (samples[i][0] % (every * 2) == 0) std::memcpy(samples[kept++], samples[i], sizeof samples[i]);
      }
      sample_count = kept;
      every *= 2;
    }
    if ((requests & (every - 1)) == 0) {
      samples[sample_count][0] = requests;
      samples[sample_count][1] = stats.heap_bytes;
      samples[sample_count][2] = stats.live_bytes;
      ++sample_count;
    }
    until_sample = every - (requests & (every - 1));
  }
  if (allocated && settings.snapshot == SnapshotMode::kPeak && peak_given_up == nullptr) {
    // Only at a new peak of live bytes: a larger heap, or 1/64 more live bytes than the last
    // snapshot held (so that a heap filling its last growth is not listed at every request).
    const HeapStats stats = heap->Stats();
    if (stats.live_bytes != stats.peak_live_bytes) return;
    if (stats.heap_bytes <= snapshot_heap_bytes && stats.live_bytes <= snapshot_live_bytes + snapshot_live_bytes / 64) return;
    const uint64_t chunks = stats.live_chunks + stats.free_chunks;
    if (chunks > kMaxPeakChunks) {
      peak_given_up = "more than 200000 chunks at the peak";
    } else if (walked + chunks > kPeakWalkBudget) {
      peak_given_up = "the heap reached new peaks too often to list its chunks at each";
    } else {
      walked += chunks;
      snapshot_heap_bytes = stats.heap_bytes;
      snapshot_live_bytes = stats.live_bytes;
      TakeSnapshot(heap, stats);
    }
  }
}

namespace {

// ---- the report

struct Totals {
  uint64_t heap_bytes = 0, peak_heap_bytes = 0, live_bytes = 0, peak_live_bytes = 0, metadata_bytes = 0;
  uint64_t allocs = 0, frees = 0, reallocs = 0, brk_calls = 0;
  HeapStats main{};
  bool exit_snapshot = false;
};

void Visit(HeapSlot* slot, void* context) {
  Totals* totals = static_cast<Totals*>(context);
  const HeapStats stats = slot->heap->Stats();
  totals->heap_bytes += stats.heap_bytes;
  totals->peak_heap_bytes += stats.peak_heap_bytes;
  totals->live_bytes += stats.live_bytes;
  totals->peak_live_bytes += stats.peak_live_bytes;
  totals->metadata_bytes += stats.metadata_bytes;
  totals->allocs += stats.allocs;
  totals->frees += stats.frees;
  totals->reallocs += stats.reallocs;
  totals->brk_calls += stats.brk_calls;
  if (slot->is_main) {
    totals->main = stats;
    if (totals->exit_snapshot) TakeSnapshot(slot->heap, stats);
  }
}

void Field(Text* out, const char* name, uint64_t value, bool comma = true) {
  out->Add("\"");
  out->Add(name);
  out->Add("\":");
  out->Unsigned(value);
  if (comma) out->Add(",");
}

void String(Text* out, const char* text, size_t length) {
  out->Add("\"");
  for (size_t i = 0; i < length; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      const char escaped[2] = {'\\', static_cast<char>(c)};
      out->Add(escaped, 2);
    } else if (c < 0x20) {
      const char escaped[6] = {'\\', 'u', '0', '0', "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
      out->Add(escaped, 6);
    } else {
      out->Add(text + i, 1);
    }
  }
  out->Add("\"");
}

// Bytes that are not valid UTF-8 would make the JSON unreadable: they become '?'.
void SanitizeUtf8(char* text, size_t length) {
  for (size_t i = 0; i < length;) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = n != 0 && i + n <= length;
    for (size_t k = 1; valid && k < n; ++k) valid = (static_cast<unsigned char>(text[i + k]) >> 6) == 2;
    if (!valid) {
      text[i++] = '?';
      continue;
    }
    i += n;
  }
}

void HeapStatsObject(Text* out, const HeapStats& s) {
  out->Add("{");
  Field(out, "heapStart", s.heap_start);
  Field(out, "heapEnd", s.heap_end);
  Field(out, "heapBytes", s.heap_bytes);
  Field(out, "peakHeapBytes", s.peak_heap_bytes);
  Field(out, "liveBytes", s.live_bytes);
  Field(out, "liveChunks", s.live_chunks);
  Field(out, "peakLiveBytes", s.peak_live_bytes);
  Field(out, "freeBytes", s.free_bytes);
  Field(out, "freeChunks", s.free_chunks);
  Field(out, "largestFreeChunk", s.largest_free_chunk);
  Field(out, "topBytes", s.top_bytes);
  Field(out, "metadataBytes", s.metadata_bytes);
  Field(out, "peakMetadataBytes", s.peak_metadata_bytes);
  Field(out, "allocs", s.allocs);
  Field(out, "frees", s.frees);
  Field(out, "reallocs", s.reallocs);
  Field(out, "brkCalls", s.brk_calls);
  Field(out, "bytesReleased", s.bytes_released);
  Field(out, "segments", s.segments);
  Field(out, "searchSteps", s.search_steps);
  Field(out, "deferredChunks", s.deferred_chunks, false);
  out->Add("}");
}

void WriteReport() {
  if (settings.report_dir[0] == '\0' || MainHeap() == nullptr) return;
  Totals totals;
  totals.exit_snapshot = settings.snapshot == SnapshotMode::kExit ||
                         (settings.snapshot == SnapshotMode::kPeak && (peak_given_up != nullptr || snapshot == nullptr));
  ForEachHeap(Visit, &totals);

  static char command[65536];
  size_t command_length = 0;
  const int cmdline = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (cmdline >= 0) {
    ssize_t n;
    while (command_length < sizeof command && (n = read(cmdline, command + command_length, sizeof command - command_length)) > 0) {
      command_length += static_cast<size_t>(n);
    }
    close(cmdline);
  }
  SanitizeUtf8(command, command_length);

  const size_t chunk_count = snapshot != nullptr ? snapshot->size() : 0;
  const size_t capacity = 65536 + command_length * 6 + chunk_count * 64 + sample_count * 72;
  char* buffer = static_cast<char*>(MapBytes(capacity));
  if (buffer == nullptr) return;
  Text out{buffer, capacity};
  out.Add("{");
  Field(&out, "pid", static_cast<uint64_t>(getpid()));
  Field(&out, "ppid", static_cast<uint64_t>(getppid()));
  out.Add("\"command\":[");
  for (size_t start = 0, i = 0; i < command_length; ++i) {
    if (command[i] != '\0') continue;
    if (start > 0) out.Add(",");
    String(&out, command + start, i - start);
    start = i + 1;
  }
  out.Add("],\"strategy\":");
  String(&out, settings.strategy_name, std::strlen(settings.strategy_name));
  out.Add(",\"exitStatus\":null,");
  Field(&out, "heaps", heaps_created.load(std::memory_order_relaxed));
  Field(&out, "threads", threads_allocating.load(std::memory_order_relaxed));
  out.Add("\"main\":");
  HeapStatsObject(&out, totals.main);
  out.Add(",\"total\":{");
  Field(&out, "heapBytes", totals.heap_bytes);
  Field(&out, "peakHeapBytes", totals.peak_heap_bytes);
  Field(&out, "liveBytes", totals.live_bytes);
  Field(&out, "peakLiveBytes", totals.peak_live_bytes);
  Field(&out, "metadataBytes", totals.metadata_bytes);
  Field(&out, "allocs", totals.allocs);
  Field(&out, "frees", totals.frees);
  Field(&out, "reallocs", totals.reallocs);
  Field(&out, "brkCalls", totals.brk_calls);
  out.Add("\"peaksAreSumsOfHeapPeaks\":true},");
  Field(&out, "badFrees", bad_frees.load(std::memory_order_relaxed));
  out.Add("\"snapshot\":");
  if (snapshot == nullptr) {
    out.Add("null");
  } else {
    out.Add(totals.exit_snapshot ? "{\"at\":\"exit\"," : "{\"at\":\"peak\",");
    if (totals.exit_snapshot && peak_given_up != nullptr) {
      out.Add("\"reason\":");
      String(&out, peak_given_up, std::strlen(peak_given_up));
      out.Add(",");
    }
    Field(&out, "heapStart", snapshot_start);
    Field(&out, "heapEnd", snapshot_end);
    out.Add("\"chunks\":[");
    for (size_t i = 0; i < chunk_count; ++i) {
      const ChunkInfo& chunk = (*snapshot)[i];
      out.Add(i == 0 ? "[" : ",[");
      out.Unsigned(chunk.address);
      out.Add(",");
      out.Unsigned(chunk.size);
      out.Add(chunk.live ? ",\"live\"]" : chunk.deferred ? ",\"deferred\"]" : ",\"free\"]");
    }
    out.Add("]}");
  }
  out.Add(",\"timeline\":");
  if (!settings.timeline) {
    out.Add("null");
  } else {
    out.Add("{");
    Field(&out, "every", every);
    out.Add("\"samples\":[");
    for (size_t i = 0; i < sample_count; ++i) {
      out.Add(i == 0 ? "[" : ",[");
      out.Unsigned(samples[i][0]);
      out.Add(",");
      out.Unsigned(samples[i][1]);
      out.Add(",");
      out.Unsigned(samples[i][2]);
      out.Add("]");
    }
    out.Add("]}");
  }
  out.Add("}\n");

  char path[4200], temporary[4200];
  Text final_path{path, sizeof path - 1};
  final_path.Add(settings.report_dir);
  final_path.Add("/");
  final_path.Unsigned(static_cast<uint64_t>(getpid()));
  final_path.Add(".json");
  path[final_path.length] = '\0';
  Text temp_path{temporary, sizeof temporary - 1};
  temp_path.Add(settings.report_dir);
  temp_path.Add("/.");
  temp_path.Unsigned(static_cast<uint64_t>(getpid()));
  temp_path.Add(".json.tmp");
  temporary[temp_path.length] = '\0';
  const int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    bool ok = true;
    for (size_t done = 0; done < out.length;) {
      const ssize_t n = write(fd, buffer + done, out.length - done);
      if (n <= 0) {
        ok = false;
        break;
      }
      done += static_cast<size_t>(n);
    }
    close(fd);
    if (ok) {
      rename(temporary, path);
    } else {
      unlink(temporary);
    }
  }
  UnmapBytes(buffer);
}

__attribute__((destructor)) void WriteReportAtExit() { WriteReport(); }

}  // namespace
}  // namespace malloc_library
}  // namespace ma
