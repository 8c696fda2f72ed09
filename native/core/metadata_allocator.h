// Where the heap's own bookkeeping lives. Large tables are mapped directly with mmap, never taken
// from the process's malloc: glibc grows its main arena by moving the program break, and a brk
// heap whose metadata moved the break would keep splitting itself into segments. Small arrays
// (most bins) stay on malloc, where they cost no page each.
//
// The core is built without exceptions: when the system has no memory for bookkeeping, the
// process aborts with a message, as glibc does when its own structures cannot grow.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace ma {

constexpr size_t kMetadataMmapThreshold = size_t{64} << 10;

[[noreturn]] inline void MetadataExhausted(size_t bytes) {
  std::fprintf(stderr, "memory-allocator: out of memory for %zu bytes of heap metadata\n", bytes);
  std::abort();
}

template <typename T>
struct MetadataAllocator {
  using value_type = T;

  MetadataAllocator() = default;
  template <typename U>
  MetadataAllocator(const MetadataAllocator<U>&) {}  // NOLINT: rebinding is implicit by design

  T* allocate(size_t count) {
    const size_t bytes = count * sizeof(T);
    void* memory;
    if (bytes >= kMetadataMmapThreshold) {
      memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (memory == MAP_FAILED) MetadataExhausted(bytes);
    } else {
      memory = std::malloc(bytes);
      if (memory == nullptr) MetadataExhausted(bytes);
    }
    return static_cast<T*>(memory);
  }

  void deallocate(T* memory, size_t count) {
    const size_t bytes = count * sizeof(T);
    if (bytes >= kMetadataMmapThreshold) munmap(memory, bytes);
    else std::free(memory);
  }

  template <typename U>
  bool operator==(const MetadataAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const MetadataAllocator<U>&) const { return false; }
};

template <typename T>
using MetadataVector = std::vector<T, MetadataAllocator<T>>;

}  // namespace ma
