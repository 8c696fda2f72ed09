// A bad free, realloc or malloc_usable_size: an address that is not a live chunk's start. The core
// has refused it without touching anything (its tables are out of band, so it can tell); this
// file says what the address is, in one line written with write(2) (no stdio, no malloc), then
// stops the process with SIGABRT, or, in report mode, counts it and lets the call do nothing.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "malloc_library.h"

namespace ma {
namespace malloc_library {

void Text::Add(const char* text, size_t n) {
  if (length + n > capacity) n = capacity - length;
  std::memcpy(data + length, text, n);
  length += n;
}

void Text::Add(const char* text) { Add(text, std::strlen(text)); }

void Text::Unsigned(uint64_t value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  char ordered[24];
  for (int i = 0; i < n; ++i) ordered[i] = digits[n - 1 - i];
  Add(ordered, static_cast<size_t>(n));
}

void Text::Hex(uint64_t value) {
  char digits[16];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[value & 15];
    value >>= 4;
  } while (value != 0);
  char ordered[18] = {'0', 'x'};
  for (int i = 0; i < n; ++i) ordered[2 + i] = digits[n - 1 - i];
  Add(ordered, static_cast<size_t>(n) + 2);
}

namespace {

// What the heap knows of `address`: a walk of its chunks (Chunks() allocates through this
// library's operator new, i.e. mmap, never malloc). A bad free is rare, so the walk is affordable.
void Describe(Text* text, uintptr_t address, Status status, const Heap* heap) {
  if (heap == nullptr) {
    text->Add("not in any heap of this allocator");
    return;
  }
  std::vector<ChunkInfo> chunks;
  heap->Chunks(&chunks);
  // Chunks are in address order: the last one that starts at or below the address.
  size_t low = 0, high = chunks.size();
  while (low < high) {
    const size_t middle = (low + high) / 2;
    if (chunks[middle].address <= address) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  if (low > 0) {
    const ChunkInfo& chunk = chunks[low - 1];
    if (address < chunk.address + chunk.size) {
      if (chunk.address == address && status == Status::kDoubleFree) {
        text->Add("a ");
        text->Unsigned(chunk.size);
        text->Add("-byte chunk already freed");
        return;
      }
      if (chunk.address == address) {
        text->Add("a ");
        text->Unsigned(chunk.size);
        text->Add(chunk.live ? "-byte chunk held back (quarantined)" : "-byte free chunk");
        return;
      }
      text->Add("inside a ");
      text->Unsigned(chunk.size);
      text->Add(chunk.live ? "-byte live chunk at " : "-byte free chunk at ");
      text->Hex(chunk.address);
      text->Add(" (");
      text->Unsigned(address - chunk.address);
      text->Add(" bytes past its start)");
      return;
    }
  }
  const HeapStats stats = heap->Stats();
  if (stats.heap_end > stats.heap_start && address >= stats.heap_start && address < stats.heap_end) {
    text->Add("in a part of the heap never handed out");
    return;
  }
  text->Add("not in any heap of this allocator");
}

}  // namespace

void DescribeBadFree(BadFreeLine* line, const char* function, uintptr_t address, Status status, const Heap* heap) {
  Text text{line->text, sizeof line->text - 1};
  text.Add("memory-allocator: ");
  text.Add(function);
  text.Add("(");
  text.Hex(address);
  text.Add("): ");
  text.Add(StatusCode(status));
  text.Add(": ");
  Describe(&text, address, status, heap);
  text.Add("\n", 1);
  line->length = text.length;
}

void ReportBadFree(const BadFreeLine& line) {
  if (write(STDERR_FILENO, line.text, line.length) < 0) {
  }
  if (settings.abort_on_bad_free) abort();
  bad_frees.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace malloc_library
}  // namespace ma
