// Where a heap's bytes come from: the real program break (brk) or a reserved mmap region whose
// committed end moves like a break. A source only moves an end, and (mmap only) moves whole pages
// from one place in its memory to another; it knows nothing of chunks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "status.h"

namespace ma {

enum class SourceKind : uint8_t { kBrk, kMmap };

// The memory an extension added. When `contiguous`, it starts at the end the caller expected;
// otherwise other code moved the end in between and the heap must open a new segment at `start`.
struct Extension {
  uintptr_t base;   // the end as found (for a new segment: where it would be lowered back to)
  uintptr_t start;  // first usable byte, aligned as asked
  uintptr_t end;    // the new end
  bool contiguous;
};

// What MovePages did. Each outcome says where the bytes are and which ranges are still mapped.
enum class PageMove : uint8_t {
  kMoved,     // the piece's pages are at `to`; where they were holds fresh zero pages
  kNotMoved,  // nothing moved; both ranges are mapped and writable (`to` may read as zeros now)
  kFromLost,  // the piece's pages are at `to`, but where they were is no longer mapped
  kToLost,    // nothing moved, but part of `to` is no longer mapped
};

// The pages MovePages moved: [from + offset, from + offset + bytes) to the same offsets from `to`.
struct PagePiece {
  size_t offset, bytes;
};

class MemorySource {
 public:
  virtual ~MemorySource() = default;
  virtual SourceKind kind() const = 0;

  // Adds usable bytes after `expected_end` (0 = no segment yet): `contiguous_bytes` if the end is
  // still there, else `fresh_bytes` for a new segment whose start is aligned to `align`. Fails
  // without moving anything.
  virtual Status Extend(uintptr_t expected_end, size_t contiguous_bytes, size_t fresh_bytes, size_t align,
                        Extension* out) = 0;

  // Lowers the end from `expected_end` to `new_end`, but only while the end is still exactly
  // `expected_end`: memory that other code placed above us is never given back for it.
  virtual bool Release(uintptr_t expected_end, uintptr_t new_end) = 0;

  // Whether MovePages may move pages at all. Never for the break: it is one mapping that other
  // code extends, and pages moved inside it would split it.
  virtual bool CanMovePages() const { return false; }
  // Moves whole pages of [from, from + from_bytes) to the same offsets from `to`: the largest
  // piece of the range that one mapping holds (mremap moves within one mapping), when it has
  // least_bytes or more, and only into fresh pages (never touched: a move would throw pages in
  // memory away); `carved` says the destination came from the wilderness, where fresh pages are
  // likely; *piece says which pages moved (offsets from `from`), the rest the caller copies. The
  // moved pages reach to + to_bytes (to_bytes >= from_bytes; the pages past the piece read as
  // zeros) and fresh pages are mapped where they were. Both ranges are page aligned, disjoint, and
  // inside memory this source gave and still holds.
  virtual PageMove MovePages(uintptr_t from, size_t from_bytes, uintptr_t to, size_t to_bytes, size_t least_bytes,
                             bool carved, PagePiece* piece) {
    static_cast<void>(from), static_cast<void>(from_bytes), static_cast<void>(to), static_cast<void>(to_bytes);
    static_cast<void>(least_bytes), static_cast<void>(carved), static_cast<void>(piece);
    return PageMove::kNotMoved;
  }
};

constexpr uintptr_t kSourcePageBytes = 4096;

// True on the process's main thread, the only thread allowed to move the real break (glibc's
// sbrk has no lock, and its main arena grows the break from the main thread too).
bool OnMainThread();

// `reserve_bytes` is the mmap source's address-space reservation (PROT_NONE, MAP_NORESERVE).
Status CreateMemorySource(SourceKind kind, size_t reserve_bytes, MemorySource** out);

// ---- For the malloc library (native/malloc) only: each copy of the core has these settings of
// its own, so the addon's copy never sees them.
// Lets the brk source move the break from any thread: in a process that runs the malloc library
// the library is the only mover of the break, and every move is under the one break lock.
void AllowBrkOffMainThread();
// Aligns every later mmap reservation of this copy of the core to `align` bytes (a power of two):
// the library finds the thread heap that owns an address from its high bits, with no search.
void SetRegionAlignment(size_t align);

// The break lock is shared: a process that runs the malloc library (which exports
// kBreakLockSymbol, returning its pthread_mutex_t*) and also loads the addon has one lock for
// every move of the break; without the library each copy of the core has its own.
constexpr const char* kBreakLockSymbol = "memory_allocator_break_lock";

}  // namespace ma
