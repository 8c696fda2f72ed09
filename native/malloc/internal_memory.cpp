// Memory the library needs for itself, never taken from the process's malloc (which is this
// library: a call into it from inside it would take a heap lock twice):
// - the bootstrap arena: a static bump arena for the few allocations made while the library
//   sets itself up on a thread (pthread_atfork's bookkeeping, for one). Freeing such a block
//   does nothing; realloc copies it out.
// - mapped bytes: whole pages from mmap, for the core's own objects (Heap, its memory source,
//   the vectors of Chunks()) through this library's operator new, and for the report's buffers.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "malloc_library.h"

namespace ma {
namespace malloc_library {
namespace {

constexpr size_t kArenaBytes = size_t{1} << 20;
constexpr size_t kArenaHeader = 16;
alignas(4096) unsigned char arena[kArenaBytes];
std::atomic<size_t> arena_used{0};

constexpr size_t kPage = 4096;
constexpr size_t kMapHeader = 16;  // keeps the 16-byte alignment operator new promises

}  // namespace

void* ArenaAlloc(size_t bytes, size_t align) {
  if (align < kArenaHeader) align = kArenaHeader;
  size_t used = arena_used.load(std::memory_order_relaxed);
  size_t start, end;
  do {
    if (bytes > kArenaBytes || align > kArenaBytes) return nullptr;
    start = (used + kArenaHeader + align - 1) & ~(align - 1);
    end = start + bytes;
    if (end > kArenaBytes) return nullptr;
  } while (!arena_used.compare_exchange_weak(used, end, std::memory_order_relaxed));
  std::memcpy(arena + start - sizeof(size_t), &bytes, sizeof(size_t));
  return arena + start;  // static storage, never reused: already zero, as calloc wants
}

void ArenaBounds(uintptr_t* low, uintptr_t* high) {
  *low = reinterpret_cast<uintptr_t>(arena);
  *high = *low + kArenaBytes;
}

bool InArena(const void* p) {
  const unsigned char* byte = static_cast<const unsigned char*>(p);
  return byte >= arena && byte < arena + kArenaBytes;
}

size_t ArenaSize(const void* p) {
  size_t bytes;
  std::memcpy(&bytes, static_cast<const unsigned char*>(p) - sizeof(size_t), sizeof(size_t));
  return bytes;
}

void* MapBytes(size_t bytes) {
  if (bytes > (size_t{1} << 46)) return nullptr;
  const size_t total = (bytes + kMapHeader + kPage - 1) & ~(kPage - 1);
  void* memory = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  std::memcpy(memory, &total, sizeof total);
  return static_cast<unsigned char*>(memory) + kMapHeader;
}

void UnmapBytes(void* p) {
  if (p == nullptr) return;
  unsigned char* memory = static_cast<unsigned char*>(p) - kMapHeader;
  size_t total;
  std::memcpy(&total, memory, sizeof total);
  munmap(memory, total);
}

}  // namespace malloc_library
}  // namespace ma

// The core's `new` and `delete` in this library (its version script keeps them local, so the
// process's own operator new is untouched): mapped bytes. The core allocates only a few objects
// per heap and the vectors of Chunks(), so a page each costs nothing that matters.
#ifndef MA_ENTRY_PREFIX
namespace {
void* NewOrDie(size_t bytes) {
  void* p = ma::malloc_library::MapBytes(bytes);
  if (p == nullptr) {
    // Built without exceptions: there is nothing to throw, and returning null would crash later.
    static const char message[] = "memory-allocator: out of memory for the allocator's own bookkeeping\n";
    if (write(STDERR_FILENO, message, sizeof message - 1) < 0) {
    }
    abort();
  }
  return p;
}
}  // namespace

void* operator new(size_t bytes) { return NewOrDie(bytes); }
void* operator new[](size_t bytes) { return NewOrDie(bytes); }
void* operator new(size_t bytes, const std::nothrow_t&) noexcept { return ma::malloc_library::MapBytes(bytes); }
void* operator new[](size_t bytes, const std::nothrow_t&) noexcept { return ma::malloc_library::MapBytes(bytes); }
void operator delete(void* p) noexcept { ma::malloc_library::UnmapBytes(p); }
void operator delete[](void* p) noexcept { ma::malloc_library::UnmapBytes(p); }
void operator delete(void* p, size_t) noexcept { ma::malloc_library::UnmapBytes(p); }
void operator delete[](void* p, size_t) noexcept { ma::malloc_library::UnmapBytes(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { ma::malloc_library::UnmapBytes(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { ma::malloc_library::UnmapBytes(p); }
#endif
