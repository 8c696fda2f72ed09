// The C entry points of the malloc family, with the C contract: NULL and errno = ENOMEM when
// memory runs out or a size overflows; EINVAL for a bad alignment; 16-byte alignment by default;
// malloc(0) a unique pointer (the core's minimum chunk). Choices where C leaves room, as glibc
// makes them: realloc(p, 0) frees p and returns NULL; memalign rounds an alignment that is not
// a power of two up to one, aligned_alloc refuses it (EINVAL, as glibc 2.38 does); alignments
// above the core's kMaxAlign (1 MiB) fail with EINVAL; pvalloc(0) is one page.
//
// Each call takes one heap's lock: the caller's own for allocations, the owner's for frees,
// reallocs and sizes (so a chunk freed by another thread goes back to the heap it came from).
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "malloc_library.h"

using ma::Heap;
using ma::Status;
using ma::malloc_library::HeapSlot;

namespace {

namespace lib = ma::malloc_library;

constexpr size_t kPageSize = 4096;

void* Fail(int error) {
  errno = error;
  return nullptr;
}

void Observe(HeapSlot* slot) {
  if (__builtin_expect(lib::observe_main, 0) && slot->is_main) lib::ObserveMain(slot->heap);
}

// `align` 0: the heap's 16. Falls back to the main heap when a thread heap is out of room.
void* Allocate(size_t bytes, size_t align, bool zeroed) {
  HeapSlot* slot = lib::CurrentHeap();
  if (__builtin_expect(slot == nullptr, 0)) {
    if (align > 4096) return Fail(ENOMEM);
    void* p = lib::ArenaAlloc(bytes, align);
    return p != nullptr ? p : Fail(ENOMEM);
  }
  for (;;) {
    uintptr_t address;
    slot->lock.Lock();
    const Status status = zeroed ? slot->heap->AllocZeroed(bytes, align, &address) : slot->heap->Alloc(bytes, align, &address);
    Observe(slot);
    slot->lock.Unlock();
    if (__builtin_expect(status == Status::kOk, 1)) {
      if (__builtin_expect(!slot->registered.load(std::memory_order_relaxed), 0) && !slot->is_main) {
        lib::Register(slot, address);
      }
      return reinterpret_cast<void*>(address);
    }
    if (status == Status::kInvalidAlignment) return Fail(EINVAL);
    if (slot->is_main) return Fail(ENOMEM);
    slot = lib::MainHeap();
  }
}

bool IsPowerOfTwo(size_t value) { return value != 0 && (value & (value - 1)) == 0; }

// The aligned entries: `align` a power of two. Up to 16 is the default alignment.
void* AllocateAligned(size_t align, size_t bytes) {
  if (align > ma::kMaxAlign) return Fail(EINVAL);
  return Allocate(bytes, align <= 16 ? 0 : align, false);
}

void FreeAddress(void* p, const char* function) {
  if (p == nullptr || lib::InArena(p)) return;  // bootstrap blocks stay where they are
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  HeapSlot* owner = lib::OwnerOf(address);
  if (owner == nullptr) {
    lib::BadFree(function, address, Status::kInvalidPointer, nullptr);
    return;
  }
  owner->lock.Lock();
  const Status status = owner->heap->Free(address);
  if (__builtin_expect(status != Status::kOk, 0)) {
    lib::BadFree(function, address, status, owner);  // drops the lock
    return;
  }
  Observe(owner);
  owner->lock.Unlock();
}

}  // namespace

MA_EXPORT void* MA_ENTRY(malloc)(size_t bytes) { return Allocate(bytes, 0, false); }

MA_EXPORT void MA_ENTRY(free)(void* p) { FreeAddress(p, "free"); }

MA_EXPORT void MA_ENTRY(cfree)(void* p) { FreeAddress(p, "cfree"); }

MA_EXPORT void* MA_ENTRY(calloc)(size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) return Fail(ENOMEM);
  return Allocate(bytes, 0, true);
}

MA_EXPORT void* MA_ENTRY(realloc)(void* p, size_t bytes) {
  if (p == nullptr) return Allocate(bytes, 0, false);
  if (bytes == 0) {  // glibc's choice: free, and no minimum chunk back
    FreeAddress(p, "realloc");
    return nullptr;
  }
  if (lib::InArena(p)) {
    void* moved = Allocate(bytes, 0, false);
    if (moved != nullptr) {
      const size_t old_bytes = lib::ArenaSize(p);
      std::memcpy(moved, p, old_bytes < bytes ? old_bytes : bytes);
    }
    return moved;
  }
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  HeapSlot* owner = lib::OwnerOf(address);
  if (owner == nullptr) {
    lib::BadFree("realloc", address, Status::kInvalidPointer, nullptr);
    return nullptr;
  }
  uintptr_t moved;
  owner->lock.Lock();
  Status status = owner->heap->Realloc(address, bytes, &moved);
  if (__builtin_expect(status == Status::kOk, 1)) {
    Observe(owner);
    owner->lock.Unlock();
    return reinterpret_cast<void*>(moved);
  }
  if (status != Status::kOutOfMemory) {
    lib::BadFree("realloc", address, status, owner);
    return nullptr;
  }
  // The owner's heap is full (a thread heap's region, say): move the bytes to another heap.
  uint64_t old_bytes = 0;
  owner->heap->UsableSize(address, &old_bytes);
  owner->lock.Unlock();
  HeapSlot* mine = lib::CurrentHeap();
  if (mine == owner && owner->is_main) return Fail(ENOMEM);
  void* fresh = Allocate(bytes, 0, false);
  if (fresh == nullptr) return nullptr;
  std::memcpy(fresh, p, old_bytes < bytes ? old_bytes : bytes);
  FreeAddress(p, "realloc");
  return fresh;
}

MA_EXPORT void* MA_ENTRY(reallocarray)(void* p, size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) return Fail(ENOMEM);
  return MA_ENTRY(realloc)(p, bytes);
}

MA_EXPORT int MA_ENTRY(posix_memalign)(void** result, size_t align, size_t bytes) {
  if (!IsPowerOfTwo(align) || align % sizeof(void*) != 0 || align > ma::kMaxAlign) return EINVAL;
  const int saved = errno;  // posix_memalign reports through its result, never errno
  void* p = AllocateAligned(align, bytes);
  if (p == nullptr) {
    const int error = errno;
    errno = saved;
    return error;
  }
  *result = p;
  return 0;
}

MA_EXPORT void* MA_ENTRY(aligned_alloc)(size_t align, size_t bytes) {
  if (align != 0 && !IsPowerOfTwo(align)) return Fail(EINVAL);
  return AllocateAligned(align, bytes);
}

MA_EXPORT void* MA_ENTRY(memalign)(size_t align, size_t bytes) {
  if (align > ma::kMaxAlign) return Fail(EINVAL);
  size_t rounded = 1;
  while (rounded < align) rounded <<= 1;
  return AllocateAligned(rounded, bytes);
}

MA_EXPORT void* MA_ENTRY(valloc)(size_t bytes) { return AllocateAligned(kPageSize, bytes); }

MA_EXPORT void* MA_ENTRY(pvalloc)(size_t bytes) {
  if (bytes > SIZE_MAX - kPageSize) return Fail(ENOMEM);
  const size_t rounded = bytes == 0 ? kPageSize : (bytes + kPageSize - 1) & ~(kPageSize - 1);
  return AllocateAligned(kPageSize, rounded);
}

MA_EXPORT size_t MA_ENTRY(malloc_usable_size)(void* p) {
  if (p == nullptr) return 0;
  if (lib::InArena(p)) return lib::ArenaSize(p);
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  HeapSlot* owner = lib::OwnerOf(address);
  if (owner == nullptr) {
    lib::BadFree("malloc_usable_size", address, Status::kInvalidPointer, nullptr);
    return 0;
  }
  uint64_t bytes = 0;
  owner->lock.Lock();
  const Status status = owner->heap->UsableSize(address, &bytes);
  if (status != Status::kOk) {
    lib::BadFree("malloc_usable_size", address, status, owner);
    return 0;
  }
  owner->lock.Unlock();
  return bytes;
}

// glibc's malloc_trim would look at glibc's own (unused) arenas; here it trims this thread's heap
// and the main heap.
MA_EXPORT int MA_ENTRY(malloc_trim)(size_t) {
  HeapSlot* mine = lib::CurrentHeap();
  HeapSlot* main = lib::MainHeap();
  uint64_t released = 0;
  for (HeapSlot* slot : {mine, main}) {
    if (slot == nullptr || (slot == main && slot == mine && released != 0)) continue;
    slot->lock.Lock();
    released += slot->heap->Trim();
    slot->lock.Unlock();
    if (mine == main) break;
  }
  return released != 0 ? 1 : 0;
}
