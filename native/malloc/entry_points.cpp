// The C entry points of the malloc family, with the C contract: NULL and errno = ENOMEM when
// memory runs out or a size overflows; EINVAL for a bad alignment; 16-byte alignment by default;
// malloc(0) a unique pointer (the core's minimum chunk). Choices where C leaves room, as glibc
// makes them: realloc(p, 0) frees p and returns NULL; memalign rounds an alignment that is not
// a power of two up to one, aligned_alloc refuses it (EINVAL, as glibc 2.38 does); alignments
// above the core's kMaxAlign (1 MiB) fail with EINVAL; pvalloc(0) is one page.
//
// Allocations go to the caller's own heap, with no lock (thread_heaps.cpp); a chunk freed by
// another thread goes back to the heap it came from through that heap's remote-free queue;
// reallocs and sizes of another thread's chunks take foreign access to its heap.
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

void Observe(HeapSlot* slot, bool allocated) {
  if (__builtin_expect(lib::observe_main, 0) && slot->is_main) lib::ObserveMain(slot->heap, allocated);
}

// Exclusive access to `slot`: as its owner when `owned`, else foreign.
struct HeapAccess {
  HeapSlot* slot;
  bool owned;
  lib::Access access = lib::Access::kLocked;
  HeapAccess(HeapSlot* s, bool o) : slot(s), owned(o) {
    if (owned) {
      access = lib::EnterOwn(slot);
    } else {
      lib::EnterForeign(slot);
    }
  }
  void Leave() {
    if (owned) {
      lib::LeaveOwn(slot, access);
    } else {
      lib::LeaveForeign(slot);
    }
  }
};

// `align` 0: the heap's 16. Falls back to the main heap when a thread heap is out of room.
inline void* Allocate(size_t bytes, size_t align, bool zeroed) {
  bool owned;
  HeapSlot* slot = lib::CurrentHeap(&owned);
  if (__builtin_expect(slot == nullptr, 0)) {
    if (align > 4096) return Fail(ENOMEM);
    void* p = lib::ArenaAlloc(bytes, align);
    return p != nullptr ? p : Fail(ENOMEM);
  }
  for (;;) {
    uintptr_t address;
    HeapAccess access(slot, owned);
    const Status status = zeroed ? slot->heap->AllocZeroed(bytes, align, &address) : slot->heap->Alloc(bytes, align, &address);
    Observe(slot, true);
    access.Leave();
    if (__builtin_expect(status == Status::kOk, 1)) {
      if (__builtin_expect(!slot->registered.load(std::memory_order_relaxed), 0) && !slot->is_main) {
        lib::Register(slot, address);
      }
      if (__builtin_expect(slot->is_main && slot->region.load(std::memory_order_relaxed) == lib::kNoRegion, 0)) {
        lib::ClaimMainRegion(address);
      }
      return reinterpret_cast<void*>(address);
    }
    if (status == Status::kInvalidAlignment) return Fail(EINVAL);
    if (slot->is_main) return Fail(ENOMEM);
    slot = lib::MainHeap();
    owned = false;
  }
}

bool IsPowerOfTwo(size_t value) { return value != 0 && (value & (value - 1)) == 0; }


// Whether the caller owns `owner` (its own heap), finding its heap first if it has none yet.
bool Owns(HeapSlot* owner) {
  bool owned;
  return lib::CurrentHeap(&owned) == owner && owned;
}

__attribute__((noinline)) void FreeAddress(void* p, const char* function) {
  if (p == nullptr || lib::InArena(p)) return;  // bootstrap blocks stay where they are
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  HeapSlot* owner = lib::OwnerOf(address);
  if (owner == nullptr) {
    lib::BadFreeLine line;
    lib::DescribeBadFree(&line, function, address, Status::kInvalidPointer, nullptr);
    lib::ReportBadFree(line);
    return;
  }
  if (!Owns(owner)) {
    lib::RemoteFree(owner, address);
    return;
  }
  HeapAccess access(owner, true);
  const Status status = owner->heap->Free(address);
  if (__builtin_expect(status != Status::kOk, 0)) {
    lib::BadFreeLine line;
    lib::DescribeBadFree(&line, function, address, status, owner->heap);
    access.Leave();
    lib::ReportBadFree(line);
    return;
  }
  Observe(owner, false);
  access.Leave();
}

// Whether the calling thread's fast heap `slot` holds `address`: its own region for a thread
// heap (one compare, no table load), no thread's region for the main heap. The bootstrap arena
// is outside every region, so only the main heap has to rule it out.
inline bool Holds(const HeapSlot* slot, uintptr_t address) {
  const uintptr_t region = address >> lib::kRegionShift;
  if (__builtin_expect(region == slot->region.load(std::memory_order_relaxed), 1)) return true;
  if (!slot->is_main) return false;
  if (region < lib::kOwnerSlots && lib::owner_table[region].load(std::memory_order_relaxed) != nullptr) return false;
  return !lib::InArena(reinterpret_cast<void*>(address));
}

// A bad free found on the fast path, the owner still in: named with the heap as it is, then the
// owner leaves before the report (which may abort).
__attribute__((noinline, cold)) void FastBadFree(HeapSlot* slot, uintptr_t address, Status status, const char* function) {
  lib::BadFreeLine line;
  lib::DescribeBadFree(&line, function, address, status, slot->heap);
  lib::LeaveFast(slot);
  lib::ReportBadFree(line);
}

// The fast paths below serve the calling thread's own heap when ThreadState::fast allows it: one
// TLS load, EnterFast's store and test, the core's call, a store. Everything else (set-up, a
// heap of another thread, queued remote frees, foreign access, shared or locked mode, the main
// heap watched by a timeline or peak snapshot, a failed call) takes the general path, which
// does all of it as before. Measured with bench/malloc-glue.sh (bench/results/malloc-glue.txt).
inline void FreeEntry(void* p, const char* function) {
  HeapSlot* slot = lib::thread_state.fast;
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  if (__builtin_expect(slot != nullptr && address != 0, 1) && Holds(slot, address) && lib::EnterFast(slot)) {
    const Status status = slot->heap->Free(address);
    if (__builtin_expect(status != Status::kOk, 0)) return FastBadFree(slot, address, status, function);
    lib::LeaveFast(slot);
    return;
  }
  FreeAddress(p, function);
}

// The general path of malloc and calloc, out of line (the fast path stays small) and with
// `zeroed` a constant (a runtime flag cost the general path ~20 instructions per call).
template <bool zeroed>
__attribute__((noinline)) void* AllocateGeneral(size_t bytes) {
  return Allocate(bytes, 0, zeroed);
}

inline void* AllocEntry(size_t bytes, bool zeroed) {
  HeapSlot* slot = lib::thread_state.fast;
  if (__builtin_expect(slot != nullptr, 1) && lib::EnterFast(slot)) {
    uintptr_t address;
    const Status status = zeroed ? slot->heap->AllocZeroed(bytes, 0, &address) : slot->heap->Alloc(bytes, 0, &address);
    lib::LeaveFast(slot);
    if (__builtin_expect(status == Status::kOk, 1)) return reinterpret_cast<void*>(address);
    // A failed call left the heap unchanged: the general path tries again and falls back.
  }
  return zeroed ? AllocateGeneral<true>(bytes) : AllocateGeneral<false>(bytes);
}

// The aligned entries: `align` a power of two. Up to 16 is the default alignment.
void* AllocateAligned(size_t align, size_t bytes) {
  if (align > ma::kMaxAlign) return Fail(EINVAL);
  return align <= 16 ? AllocEntry(bytes, false) : Allocate(bytes, align, false);
}

}  // namespace

MA_EXPORT void* MA_ENTRY(malloc)(size_t bytes) { return AllocEntry(bytes, false); }

MA_EXPORT void MA_ENTRY(free)(void* p) { FreeEntry(p, "free"); }

MA_EXPORT void MA_ENTRY(cfree)(void* p) { FreeEntry(p, "cfree"); }

MA_EXPORT void* MA_ENTRY(calloc)(size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) return Fail(ENOMEM);
  return AllocEntry(bytes, true);
}

MA_EXPORT void* MA_ENTRY(realloc)(void* p, size_t bytes) {
  if (p == nullptr) return AllocEntry(bytes, false);
  HeapSlot* slot = lib::thread_state.fast;
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  if (__builtin_expect(slot != nullptr && bytes != 0, 1) && Holds(slot, address) && lib::EnterFast(slot)) {
    uintptr_t moved;
    const Status status = slot->heap->Realloc(address, bytes, &moved);
    lib::LeaveFast(slot);
    if (__builtin_expect(status == Status::kOk, 1)) return reinterpret_cast<void*>(moved);
    // A failed call left the heap unchanged: the general path below names it or moves the bytes.
  }
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
  HeapSlot* owner = lib::OwnerOf(address);
  if (owner == nullptr) {
    lib::BadFreeLine line;
    lib::DescribeBadFree(&line, "realloc", address, Status::kInvalidPointer, nullptr);
    lib::ReportBadFree(line);
    return nullptr;
  }
  uintptr_t moved;
  HeapAccess access(owner, Owns(owner));
  const Status status = owner->heap->Realloc(address, bytes, &moved);
  if (__builtin_expect(status == Status::kOk, 1)) {
    Observe(owner, true);
    access.Leave();
    return reinterpret_cast<void*>(moved);
  }
  if (status != Status::kOutOfMemory) {
    lib::BadFreeLine line;
    lib::DescribeBadFree(&line, "realloc", address, status, owner->heap);
    access.Leave();
    lib::ReportBadFree(line);
    return nullptr;
  }
  // The owner's heap is full (a thread heap's region, say): move the bytes to another heap.
  uint64_t old_bytes = 0;
  owner->heap->UsableSize(address, &old_bytes);
  access.Leave();
  if (owner->is_main && access.owned) return Fail(ENOMEM);
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
  lib::BadFreeLine line;
  if (owner == nullptr) {
    lib::DescribeBadFree(&line, "malloc_usable_size", address, Status::kInvalidPointer, nullptr);
    lib::ReportBadFree(line);
    return 0;
  }
  uint64_t bytes = 0;
  HeapAccess access(owner, Owns(owner));
  const Status status = owner->heap->UsableSize(address, &bytes);
  if (status != Status::kOk) lib::DescribeBadFree(&line, "malloc_usable_size", address, status, owner->heap);
  access.Leave();
  if (status != Status::kOk) {
    lib::ReportBadFree(line);
    return 0;
  }
  return bytes;
}

// glibc's malloc_trim would look at glibc's own (unused) arenas; here it trims this thread's heap
// and the main heap.
MA_EXPORT int MA_ENTRY(malloc_trim)(size_t) {
  bool owned;
  HeapSlot* mine = lib::CurrentHeap(&owned);
  HeapSlot* main = lib::MainHeap();
  if (mine == nullptr || main == nullptr) return 0;
  uint64_t released = 0;
  {
    HeapAccess access(mine, owned);
    released += mine->heap->Trim();
    access.Leave();
  }
  if (main != mine) {
    HeapAccess access(main, false);
    released += main->heap->Trim();
    access.Leave();
  }
  return released != 0 ? 1 : 0;
}
