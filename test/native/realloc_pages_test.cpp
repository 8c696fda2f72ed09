// Realloc's page moves (native/core/realloc.cpp, MovePagesTo; MemorySource::MovePages), proven
// on heaps of the mmap source whose source is wrapped to count, or to fail, each page move:
//
//   - bytes: chunks of many sizes at many offsets in a page grow past a neighbour (so that they
//     must move); every byte reads back, Check() holds after each step, and the move was a page
//     move (the wrapper saw it succeed);
//   - into pages in use (reused free space) bytes are copied, pages move only into fresh memory;
//   - reuse: the old range is allocated again and written over;
//   - growth: one buffer grows by half from 64 KiB to 64 MiB, moving pages on each move, while
//     the process's mapping count stays bounded (moved pages are mappings of their own);
//   - pieces: a chunk that moved and then grew in place spans two mappings; its larger part moves;
//   - budget: more moved chunks live at once than the source tracks: moves turn into copies;
//   - each failure the kernel can return (nothing moved; the destination or the source lost its
//     pages), injected through the wrapper: the bytes stay intact, Check() holds, a chunk without
//     pages is never touched again (it is PROT_NONE here: a touch would crash the test);
//   - never on a brk source, never with move_pages_from 0, never below the threshold.
//
//   build/realloc_pages_test   (built with -DMA_NATIVE_TESTS=ON; .ci/run runs its sanitizer build)
// Exit code 1 on any failure; the last line is "realloc_pages_test: N passed, M failed".
#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "heap.h"

namespace ma {

class HeapInspector {
 public:
  static MemorySource*& source(Heap& heap) { return heap.source_; }
  static size_t quarantined(Heap& heap) { return heap.quarantined_.size(); }
};

}  // namespace ma

namespace {

using ma::Heap;
using ma::MemorySource;
using ma::PageMove;
using ma::Status;

constexpr uintptr_t kPage = 4096;

// What the wrapper does with a page move: pass it on, or fail it as the kernel may.
enum class Inject { kNone, kNotMoved, kToLost, kFromLost };

// Forwards everything to the heap's own source; counts page moves and their outcomes.
class WrappedSource final : public MemorySource {
 public:
  explicit WrappedSource(MemorySource* inner) : inner_(inner) {}
  ~WrappedSource() override { delete inner_; }
  ma::SourceKind kind() const override { return inner_->kind(); }
  Status Extend(uintptr_t expected_end, size_t contiguous_bytes, size_t fresh_bytes, size_t align, ma::Extension* out) override {
    return inner_->Extend(expected_end, contiguous_bytes, fresh_bytes, align, out);
  }
  bool Release(uintptr_t expected_end, uintptr_t new_end) override { return inner_->Release(expected_end, new_end); }
  bool CanMovePages() const override { return inner_->CanMovePages(); }
  PageMove MovePages(uintptr_t from, size_t from_bytes, uintptr_t to, size_t to_bytes, size_t least_bytes, bool carved, ma::PagePiece* piece) override {
    ++calls;
    last_from = from, last_to = to, last_from_bytes = from_bytes, last_to_bytes = to_bytes;
    PageMove outcome;
    switch (inject) {
      case Inject::kNone:
        outcome = inner_->MovePages(from, from_bytes, to, to_bytes, least_bytes, carved, piece);
        break;
      case Inject::kNotMoved:
        // As the kernel after a failed mremap: the destination's pages were mapped again, fresh.
        Remap(to, to_bytes, PROT_READ | PROT_WRITE);
        outcome = PageMove::kNotMoved;
        break;
      case Inject::kToLost:
        Remap(to, to_bytes, PROT_NONE);
        outcome = PageMove::kToLost;
        break;
      case Inject::kFromLost:
        outcome = inner_->MovePages(from, from_bytes, to, to_bytes, least_bytes, carved, piece);
        if (outcome == PageMove::kMoved) {
          Remap(from + piece->offset, piece->bytes, PROT_NONE);
          outcome = PageMove::kFromLost;
        }
        break;
    }
    ++outcomes[static_cast<int>(outcome)];
    if (outcome == PageMove::kMoved) moved_bytes += piece->bytes, whole_bytes += from_bytes;
    return outcome;
  }

  static void Remap(uintptr_t at, size_t bytes, int protection) {
    void* mapped = mmap(reinterpret_cast<void*>(at), bytes, protection, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (mapped == MAP_FAILED) std::abort();
  }

  Inject inject = Inject::kNone;
  uint64_t calls = 0;
  uint64_t moved_bytes = 0, whole_bytes = 0;  // of the moves: pages moved, and whole pages there were
  uint64_t outcomes[4] = {0, 0, 0, 0};
  uintptr_t last_from = 0, last_to = 0;
  size_t last_from_bytes = 0, last_to_bytes = 0;

 private:
  MemorySource* inner_;
};

// A heap (deleted with the fixture, also when a test returns early) and its wrapped source.
struct Fixture {
  std::unique_ptr<Heap> heap;
  WrappedSource* source = nullptr;
};

Fixture Make(ma::HeapOptions options) {
  Fixture f;
  Heap* heap = nullptr;
  if (Heap::Create(options, &heap) != Status::kOk) std::abort();
  f.heap.reset(heap);
  MemorySource*& slot = ma::HeapInspector::source(*f.heap);
  f.source = new WrappedSource(slot);
  slot = f.source;
  return f;
}

ma::HeapOptions MmapOptions() {
  ma::HeapOptions options;
  options.source = ma::SourceKind::kMmap;
  options.max_heap_bytes = uint64_t{1} << 30;  // a reservation valgrind can map
  return options;
}

std::string failure;  // the current test's first problem

bool Expect(bool condition, const char* what) {
  if (!condition && failure.empty()) failure = what;
  return condition;
}

bool Checked(Heap& heap, const char* when) {
  std::string problem;
  if (heap.Check(&problem)) return true;
  if (failure.empty()) failure = std::string("Check() after ") + when + ": " + problem;
  return false;
}

uint8_t PatternByte(uint64_t seed, uint64_t i) {
  uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
  z ^= z >> 29;
  return static_cast<uint8_t>(z * 0xBF58476D1CE4E5B9ull >> 56);
}

void Fill(uintptr_t address, uint64_t bytes, uint64_t seed) {
  auto* p = reinterpret_cast<uint8_t*>(address);
  for (uint64_t i = 0; i < bytes; ++i) p[i] = PatternByte(seed, i);
}

bool Intact(uintptr_t address, uint64_t bytes, uint64_t seed) {
  const auto* p = reinterpret_cast<const uint8_t*>(address);
  for (uint64_t i = 0; i < bytes; ++i) {
    if (p[i] != PatternByte(seed, i)) {
      if (failure.empty()) failure = "byte " + std::to_string(i) + " of " + std::to_string(bytes) + " changed";
      return false;
    }
  }
  return true;
}

uintptr_t Alloc(Heap& heap, uint64_t bytes) {
  uintptr_t address = 0;
  if (heap.Alloc(bytes, 0, &address) != Status::kOk) std::abort();
  return address;
}

// The process's mappings within the heap's memory (other code, a sanitizer's runtime, maps its own
// meanwhile).
size_t MappingCount(Heap& heap) {
  const ma::HeapStats stats = heap.Stats();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  size_t count = 0;
  while (std::getline(maps, line)) {
    const uintptr_t low = std::strtoull(line.c_str(), nullptr, 16);
    const uintptr_t high = std::strtoull(line.c_str() + line.find('-') + 1, nullptr, 16);
    if (high > stats.heap_start && low < stats.heap_end) ++count;
  }
  return count;
}

// A chunk of `bytes` after a chunk of `lead` bytes (which shifts its offset in a page), a
// neighbour above it so that it cannot grow in place, then a realloc to `grown`.
struct Moved {
  uintptr_t before, after;
};
bool GrowPastNeighbour(Fixture& f, uint64_t lead, uint64_t bytes, uint64_t grown, uint64_t seed, Moved* moved) {
  const uintptr_t leading = Alloc(*f.heap, lead);
  const uintptr_t chunk = Alloc(*f.heap, bytes);
  const uintptr_t neighbour = Alloc(*f.heap, 4096);  // above the small-request size: placed right above
  Fill(chunk, bytes, seed);
  uintptr_t now = 0;
  if (!Expect(f.heap->Realloc(chunk, grown, &now) == Status::kOk, "the realloc failed")) return false;
  if (!Expect(now != chunk, "the chunk grew in place past its neighbour")) return false;
  if (!Intact(now, bytes, seed) || !Checked(*f.heap, "the move")) return false;
  moved->before = chunk;
  moved->after = now;
  f.heap->Free(leading);
  f.heap->Free(neighbour);
  return Checked(*f.heap, "the frees");
}

// Allocates whatever free chunk (or wilderness) lies right above the live chunk at `address`.
void BlockAbove(Heap& heap, uintptr_t address) {
  uint64_t usable = 0;
  heap.UsableSize(address, &usable);
  for (int tries = 0; tries < 16; ++tries) {
    std::vector<ma::ChunkInfo> chunks;
    heap.Chunks(&chunks);
    const ma::ChunkInfo* above = nullptr;
    for (const ma::ChunkInfo& chunk : chunks) {
      if (chunk.address == address + usable) above = &chunk;
    }
    if (above != nullptr && above->live) return;
    // A free chunk of that size (best fit takes one of exactly its size), or the wilderness's low
    // end (a request larger than every free chunk takes it).
    Alloc(heap, above != nullptr ? above->size : heap.Stats().largest_free_chunk + 4096);
  }
}

// ---- the tests -------------------------------------------------------------------------------

void BytesAcrossOffsetsAndSizes() {
  for (const uint32_t alignment : {8u, 16u, 64u, 4096u}) {
    ma::HeapOptions options = MmapOptions();
    options.alignment = alignment;
    uint64_t seed = alignment;
    const uint64_t sizes[] = {128 << 10, (128 << 10) + 8, 200000, 1 << 20, (3 << 20) + 4088, 9 << 20};
    for (const uint64_t bytes : sizes) {
      // Leads that put the chunk at every granule-multiple class of offsets in a page. A heap of
      // its own for each, so that the destination is fresh memory (MovePages copies into pages
      // in use: see ResidentDestinationIsCopied).
      for (uint64_t lead = 72; lead <= 4096 + 72; lead += alignment >= 256 ? 4096 : 504) {
        Fixture f = Make(options);
        Moved moved;
        if (!GrowPastNeighbour(f, lead, bytes, bytes + bytes / 2 + lead, ++seed, &moved)) return;
        if (f.source->outcomes[static_cast<int>(PageMove::kMoved)] != 1) {
          failure = "alignment " + std::to_string(alignment) + ", " + std::to_string(bytes) + " bytes after " + std::to_string(lead) +
                    ": the move copied bytes instead of moving pages (" + std::to_string(f.source->calls) + " tries)";
          return;
        }
        if (!Expect(((moved.before ^ moved.after) & (kPage - 1)) == 0, "the destination's offset in a page differs")) return;
        f.heap->Free(moved.after);
        if (!Checked(*f.heap, "freeing the moved chunk")) return;
      }
    }
  }
}

// A destination whose pages are in memory already gets a copy: a move would throw those pages
// away and leave fresh ones to fault in where the chunk was: free space that held bytes, and
// wilderness in use before (FreeAll keeps the memory), where the source asks the kernel.
void ResidentDestinationIsCopied() {
  {
    Fixture f = Make(MmapOptions());
    const uint64_t bytes = 1 << 20;
    const uintptr_t lead = Alloc(*f.heap, 4096);
    const uintptr_t warm = Alloc(*f.heap, 4 * bytes);
    Fill(warm, 4 * bytes, 1);  // its pages are in memory now
    const uintptr_t fence = Alloc(*f.heap, 4096);
    f.heap->Free(warm);
    Moved moved;
    if (!GrowPastNeighbour(f, 200, bytes, 2 * bytes, 21, &moved)) return;
    if (!Expect(moved.after >= warm && moved.after < warm + 4 * bytes, "the chunk did not move into the warm free space")) return;
    if (!Expect(f.source->calls == 1 && f.source->outcomes[static_cast<int>(PageMove::kMoved)] == 0, "pages moved into free space")) return;
    static_cast<void>(lead), static_cast<void>(fence);
  }
  {
    ma::HeapOptions options = MmapOptions();
    options.trim_threshold = ma::kNeverTrim;
    Fixture f = Make(options);
    const uint64_t bytes = 1 << 20;
    Fill(Alloc(*f.heap, 8 * bytes), 8 * bytes, 2);
    f.heap->FreeAll();  // the wilderness again, its pages in memory
    Moved moved;
    if (!GrowPastNeighbour(f, 200, bytes, 2 * bytes, 22, &moved)) return;
    if (!Expect(f.source->calls == 1, "the source was not asked")) return;
    Expect(f.source->outcomes[static_cast<int>(PageMove::kNotMoved)] == 1, "pages moved into memory in use");
  }
}

// Free space where pages moved away from is fresh: a later move into it moves pages too.
void FreshFreeSpaceTakesPages() {
  Fixture f = Make(MmapOptions());
  const uint64_t bytes = 1 << 20;
  Moved first;
  const uintptr_t chunk = Alloc(*f.heap, bytes);
  Fill(chunk, bytes, 32);
  const uintptr_t keep = Alloc(*f.heap, 4096);
  if (!GrowPastNeighbour(f, 200, 2 * bytes, 3 * bytes, 31, &first)) return;  // leaves ~2 MiB of fresh free space
  const uint64_t moves = f.source->outcomes[static_cast<int>(PageMove::kMoved)];
  // The chunk must move: the best fit for it is that free space.
  uintptr_t now = 0;
  if (!Expect(f.heap->Realloc(chunk, bytes + bytes / 4, &now) == Status::kOk && now != chunk, "the chunk did not move")) return;
  if (!Intact(now, bytes, 32) || !Checked(*f.heap, "the move")) return;
  Expect(now < first.before + 2 * bytes && now + bytes > first.before, "the chunk did not move into the fresh free space");
  Expect(f.source->outcomes[static_cast<int>(PageMove::kMoved)] == moves + 1, "no page move into fresh free space");
  static_cast<void>(keep);
}

void OldRangeIsUsableAgain() {
  Fixture f = Make(MmapOptions());
  Moved moved;
  const uint64_t bytes = 1 << 20;
  if (!GrowPastNeighbour(f, 88, bytes, bytes * 2, 7, &moved)) return;
  Expect(f.source->outcomes[static_cast<int>(PageMove::kMoved)] == 1, "no page move");
  // Allocate over the old range (it is free, maybe merged with its neighbours) and write all of it.
  std::vector<uintptr_t> chunks;
  bool covered = false;
  for (int i = 0; i < 64 && !covered; ++i) {
    const uintptr_t chunk = Alloc(*f.heap, 64 << 10);
    Fill(chunk, 64 << 10, 100 + i);
    chunks.push_back(chunk);
    covered = chunk <= f.source->last_from && chunk + (64 << 10) > f.source->last_from;
  }
  if (!Expect(covered, "no allocation landed on the old range")) return;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!Intact(chunks[i], 64 << 10, 100 + i)) return;
  }
  if (!Intact(moved.after, bytes, 7) || !Checked(*f.heap, "reusing the old range")) return;
}

void GrowthByHalfKeepsMappingsBounded() {
  Fixture f = Make(MmapOptions());
  size_t mappings_before = MappingCount(*f.heap);
  uint64_t bytes = 64 << 10;
  uintptr_t buffer = Alloc(*f.heap, bytes);
  Fill(buffer, bytes, 1);
  BlockAbove(*f.heap, buffer);
  size_t most_mappings = 0;
  int steps = 0;
  while (bytes * 3 / 2 <= (uint64_t{64} << 20)) {
    const uint64_t grown = bytes * 3 / 2;
    uintptr_t now = 0;
    if (!Expect(f.heap->Realloc(buffer, grown, &now) == Status::kOk, "a growth failed")) return;
    if (!Intact(now, bytes, 1)) return;
    Fill(now + bytes, grown - bytes, 1 + bytes);  // the new part, then the whole re-checked below
    if (!Intact(now + bytes, grown - bytes, 1 + bytes) || !Checked(*f.heap, "a growth")) return;
    Fill(now, grown, 1);
    // Something else takes the room above it, as in a program that allocates while a buffer
    // grows: the next growth must move.
    BlockAbove(*f.heap, now);
    buffer = now;
    bytes = grown;
    const size_t mappings = MappingCount(*f.heap);
    // Counted from the second page move on: the first ones split the heap's mapping once.
    if (f.source->outcomes[static_cast<int>(PageMove::kMoved)] == 2) mappings_before = mappings;
    if (mappings > most_mappings) most_mappings = mappings;
    ++steps;
  }
  const uint64_t moves = f.source->outcomes[static_cast<int>(PageMove::kMoved)];
  if (moves < 5) {
    failure = "too few page moves in a growth from 64 KiB to 64 MiB: " + std::to_string(moves) + " in " + std::to_string(steps) +
              " steps, " + std::to_string(f.source->calls) + " tries";
    return;
  }
  // Moved pages are mappings of their own; the fresh pages mapped behind them merge back. (A few
  // more come from the heap's own growth.)
  if (!Expect(most_mappings <= mappings_before + 4, "page moves left the process more and more mappings")) return;
  // The buffer is one mapping each time it moves: all of its whole pages move.
  if (!Expect(f.source->moved_bytes == f.source->whole_bytes, "a move left whole pages to copy")) return;
  std::printf("     growth: %d steps, %" PRIu64 " page moves, mappings %zu -> at most %zu\n", steps, moves, mappings_before, most_mappings);
}

// Move, grow in place, move: the second move finds moved pages and fresh pages in the chunk (two
// mappings); it moves the larger part and copies the rest.
void GrownInPlaceMovesItsLargestPiece() {
  Fixture f = Make(MmapOptions());
  const uint64_t bytes = 1 << 20;
  uintptr_t chunk = Alloc(*f.heap, bytes);
  Fill(chunk, bytes, 11);
  BlockAbove(*f.heap, chunk);
  uintptr_t now = 0;
  if (!Expect(f.heap->Realloc(chunk, 2 * bytes, &now) == Status::kOk && now != chunk, "the first growth did not move")) return;
  if (!Intact(now, bytes, 11)) return;
  Fill(now, 2 * bytes, 12);
  // Room above it, so that it grows in place by half.
  uint64_t usable = 0;
  f.heap->UsableSize(now, &usable);
  std::vector<ma::ChunkInfo> chunks;
  f.heap->Chunks(&chunks);
  for (const ma::ChunkInfo& above : chunks) {
    if (above.address == now + usable && above.live) f.heap->Free(above.address);
  }
  uintptr_t same = 0;
  if (!Expect(f.heap->Realloc(now, 3 * bytes, &same) == Status::kOk && same == now, "the chunk did not grow in place")) return;
  Fill(now, 3 * bytes, 13);
  BlockAbove(*f.heap, now);
  const uint64_t moved_before = f.source->moved_bytes;
  if (!Expect(f.heap->Realloc(now, 5 * bytes, &same) == Status::kOk && same != now, "the second growth did not move")) return;
  if (!Intact(same, 3 * bytes, 13) || !Checked(*f.heap, "the second move")) return;
  const uint64_t piece = f.source->moved_bytes - moved_before;
  Expect(piece >= 2 * bytes - kPage && piece < 3 * bytes - kPage, "the move did not take the moved pages' piece alone");
}

void BudgetTurnsMovesIntoCopies() {
  Fixture f = Make(MmapOptions());
  const size_t mappings_before = MappingCount(*f.heap);
  // Many moved chunks live at once: each holds a mapping, so the source stops moving pages.
  std::vector<uintptr_t> chunks;
  for (int i = 0; i < 200; ++i) {
    Moved moved;
    const uintptr_t keep = Alloc(*f.heap, 100);
    if (!GrowPastNeighbour(f, 80, 128 << 10, 160 << 10, 1000 + i, &moved)) return;
    chunks.push_back(moved.after);
    static_cast<void>(keep);
  }
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!Intact(chunks[i], 128 << 10, 1000 + i)) return;
  }
  const uint64_t moved = f.source->outcomes[static_cast<int>(PageMove::kMoved)];
  const uint64_t copied = f.source->outcomes[static_cast<int>(PageMove::kNotMoved)];
  Expect(moved > 0 && copied > 0 && moved + copied == 200, "the budget did not turn moves into copies");
  Expect(MappingCount(*f.heap) <= mappings_before + 2 * 128 + 8, "more mappings than the budget allows");
  std::printf("     budget: %" PRIu64 " page moves, %" PRIu64 " copies, mappings %zu -> %zu\n", moved, copied, mappings_before, MappingCount(*f.heap));
}

void InjectedNotMoved() {
  Fixture f = Make(MmapOptions());
  f.source->inject = Inject::kNotMoved;
  Moved moved;
  if (!GrowPastNeighbour(f, 72, 300000, 500000, 3, &moved)) return;
  Expect(f.source->outcomes[static_cast<int>(PageMove::kNotMoved)] == 1, "the failed move was not tried");
  Expect(ma::HeapInspector::quarantined(*f.heap) == 0, "a chunk was put away");
}

void InjectedToLost() {
  Fixture f = Make(MmapOptions());
  f.source->inject = Inject::kToLost;
  Moved moved;
  if (!GrowPastNeighbour(f, 72, 300000, 500000, 4, &moved)) return;
  // The destination lost its pages: put away, and the bytes were copied into another chunk.
  Expect(f.source->outcomes[static_cast<int>(PageMove::kToLost)] == 1, "the failed move was not tried");
  Expect(ma::HeapInspector::quarantined(*f.heap) == 1, "the chunk without pages is not put away");
  Expect(moved.after + 500000 <= f.source->last_to || moved.after >= f.source->last_to + f.source->last_to_bytes,
         "the bytes went to the chunk without pages");
  // Nothing may touch it: the heap is used, emptied and used again (PROT_NONE would crash a touch).
  f.source->inject = Inject::kNone;
  f.heap->FreeAll();
  if (!Checked(*f.heap, "FreeAll")) return;
  for (int i = 0; i < 40; ++i) Fill(Alloc(*f.heap, 64 << 10), 64 << 10, i);
  if (!Checked(*f.heap, "allocations after FreeAll")) return;
}

void InjectedFromLost() {
  Fixture f = Make(MmapOptions());
  f.source->inject = Inject::kFromLost;
  Moved moved;
  if (!GrowPastNeighbour(f, 72, 300000, 500000, 5, &moved)) return;
  Expect(f.source->outcomes[static_cast<int>(PageMove::kFromLost)] == 1, "the move was not tried");
  Expect(ma::HeapInspector::quarantined(*f.heap) == 1, "the old chunk without pages is not put away");
  f.source->inject = Inject::kNone;
  std::vector<ma::ChunkInfo> chunks;
  f.heap->Chunks(&chunks);
  bool old_kept = false;
  for (const ma::ChunkInfo& chunk : chunks) old_kept |= chunk.address == moved.before && chunk.quarantined;
  Expect(old_kept, "the old chunk is not quarantined");
  uint64_t usable = 0;
  Expect(f.heap->Free(moved.before) == Status::kDoubleFree, "the old chunk can be freed again");
  Expect(f.heap->UsableSize(moved.after, &usable) == Status::kOk && usable >= 500000, "the new chunk is not the user's");
  f.heap->FreeAll();
  if (!Checked(*f.heap, "FreeAll")) return;
  for (int i = 0; i < 40; ++i) Fill(Alloc(*f.heap, 64 << 10), 64 << 10, i);
  if (!Checked(*f.heap, "allocations after FreeAll")) return;
}

void NeverWhereItMustNot() {
  // The break: its source cannot move pages, so the wrapper never sees a move.
  {
    ma::HeapOptions options;
    options.source = ma::SourceKind::kBrk;
    Fixture f = Make(options);
    Expect(!f.source->CanMovePages(), "the brk source says it can move pages");
    Moved moved;
    if (!GrowPastNeighbour(f, 72, 1 << 20, 2 << 20, 6, &moved)) return;
    Expect(f.source->calls == 0, "a page move on a brk heap");
  }
  // move_pages_from 0: off.
  {
    ma::HeapOptions options = MmapOptions();
    options.move_pages_from = 0;
    Fixture f = Make(options);
    Moved moved;
    if (!GrowPastNeighbour(f, 72, 1 << 20, 2 << 20, 8, &moved)) return;
    Expect(f.source->calls == 0, "a page move with move_pages_from 0");
  }
  // Below the threshold.
  {
    Fixture f = Make(MmapOptions());
    Moved moved;
    if (!GrowPastNeighbour(f, 72, (128 << 10) - 16, 200 << 10, 9, &moved)) return;
    Expect(f.source->calls == 0, "a page move below the threshold");
  }
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  const std::pair<const char*, std::function<void()>> tests[] = {
      {"bytes across offsets and sizes", BytesAcrossOffsetsAndSizes},
      {"a resident destination gets a copy", ResidentDestinationIsCopied},
      {"fresh free space takes pages", FreshFreeSpaceTakesPages},
      {"the old range is usable again", OldRangeIsUsableAgain},
      {"growth by half keeps mappings bounded", GrowthByHalfKeepsMappingsBounded},
      {"a chunk grown in place moves its largest piece", GrownInPlaceMovesItsLargestPiece},
      {"the budget turns moves into copies", BudgetTurnsMovesIntoCopies},
      {"injected: nothing moved", InjectedNotMoved},
      {"injected: the destination lost its pages", InjectedToLost},
      {"injected: the source lost its pages", InjectedFromLost},
      {"never on brk, off, or below the threshold", NeverWhereItMustNot},
  };
  int passed = 0, failed = 0;
  for (const auto& [name, run] : tests) {
    failure.clear();
    run();
    std::printf("%s %-50s %s\n", failure.empty() ? "ok  " : "FAIL", name, failure.c_str());
    (failure.empty() ? passed : failed)++;
  }
  std::printf("realloc_pages_test: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
