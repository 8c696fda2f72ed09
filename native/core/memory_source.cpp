// The two memory sources. The brk source calls glibc's sbrk/brk (never the raw syscall: glibc
// caches the break and would be misled), always under one process-wide lock. The mmap source also
// moves pages (mremap), for the heap's large reallocs.
#include "memory_source.h"

#include "debug.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <new>

namespace ma {
namespace {

constexpr uintptr_t kPageSize = kSourcePageBytes;

uintptr_t AlignUp(uintptr_t value, uintptr_t align) { return (value + align - 1) & ~(align - 1); }

#ifdef MA_MALLOC_LIBRARY
}  // namespace
}  // namespace ma
// Defined by the malloc library itself (native/malloc): its copy of the core never needs dlsym,
// which may call malloc, and BreakLock is reached from inside malloc.
extern "C" pthread_mutex_t* memory_allocator_break_lock(void);
namespace ma {
namespace {
#endif

// Serializes every break move across all heaps and threads of the process: the malloc library's
// lock when it is loaded (Node under `run`: the addon and the library move the same break),
// else this copy's own.
pthread_mutex_t& BreakLock() {
#ifdef MA_MALLOC_LIBRARY
  return *memory_allocator_break_lock();
#else
  static pthread_mutex_t own = PTHREAD_MUTEX_INITIALIZER;
  // Looked up once, outside any lock: dlsym may allocate (through the library's malloc).
  static pthread_mutex_t* const lock = [] {
    using LockFn = pthread_mutex_t* (*)();
    auto shared = reinterpret_cast<LockFn>(dlsym(RTLD_DEFAULT, kBreakLockSymbol));
    return shared != nullptr ? shared() : &own;
  }();
  return *lock;
#endif
}

class BreakGuard {
 public:
  BreakGuard() { pthread_mutex_lock(&BreakLock()); }
  ~BreakGuard() { pthread_mutex_unlock(&BreakLock()); }
  BreakGuard(const BreakGuard&) = delete;
  BreakGuard& operator=(const BreakGuard&) = delete;
};

bool brk_off_main_thread = false;
size_t region_alignment = 0;

// A private region reserved up front; only [region_, committed_) is readable and writable.
// `end_` is the exact end the heap asked for; commits are whole pages.
class MmapSource final : public MemorySource {
 public:
  MmapSource(uintptr_t region, size_t reserved) : region_(region), reserved_(reserved), end_(region), committed_(region) {}
  ~MmapSource() override { munmap(reinterpret_cast<void*>(region_), reserved_); }

  SourceKind kind() const override { return SourceKind::kMmap; }

  bool Owns(uintptr_t address) const { return address >= region_ && address <= region_ + reserved_; }
  bool IsEmpty() const { return end_ == region_; }

  Status Extend(uintptr_t expected_end, size_t contiguous_bytes, size_t fresh_bytes, size_t align,
                Extension* out) override {
    // Nobody else maps into our reservation, so the only valid expectation is our own end.
    if ((expected_end == 0 ? region_ : expected_end) != end_) return Status::kHeapCorrupt;
    const size_t bytes = expected_end == 0 ? fresh_bytes : contiguous_bytes;
    const uintptr_t start = AlignUp(end_, align);
    const uintptr_t limit = region_ + reserved_;
    if (start > limit || bytes > limit - start) return Status::kOutOfMemory;
    const uintptr_t new_end = start + bytes;
    const uintptr_t new_committed = AlignUp(new_end, kPageSize);
    if (new_committed > committed_ &&
        mprotect(reinterpret_cast<void*>(committed_), new_committed - committed_, PROT_READ | PROT_WRITE) != 0) {
      return Status::kOutOfMemory;
    }
    *out = Extension{end_, start, new_end, expected_end != 0};
    end_ = new_end;
    if (new_committed > committed_) committed_ = new_committed;
    return Status::kOk;
  }

  bool Release(uintptr_t expected_end, uintptr_t new_end) override {
    if (expected_end != end_ || new_end < region_ || new_end > end_) return false;
    const uintptr_t new_committed = AlignUp(new_end, kPageSize);
    if (new_committed < committed_) {
      // Mapping fresh PROT_NONE pages over the tail drops its contents and its commit charge at once.
      void* replaced = mmap(reinterpret_cast<void*>(new_committed), committed_ - new_committed, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
      if (replaced == MAP_FAILED) return false;
      Forget(new_committed, committed_);
      committed_ = new_committed;
      resident_below_ = std::min(resident_below_, new_committed);
    }
    end_ = new_end;
    return true;
  }

  bool CanMovePages() const override { return !moves_refused_; }

  // One mremap moves the piece and widens it to reach to + to_bytes (so that a chunk that moved
  // is one mapping, and its next move is one piece again), then one mmap maps fresh pages behind
  // it. The fresh pages merge back into the mapping around them, so a buffer that moves on every
  // growth leaves one mapping of foreign pages behind, not one per move.
  PageMove MovePages(uintptr_t from, size_t from_bytes, uintptr_t to, size_t to_bytes, size_t least_bytes, bool carved,
                     PagePiece* piece) override {
    if (moves_refused_ || from_bytes == 0 || to_bytes < from_bytes || moved_count_ + 3 > kMaxMoved) return PageMove::kNotMoved;
    if (from < region_ || from + from_bytes > committed_ || to < region_ || to + to_bytes > committed_ ||
        (from < to + to_bytes && to < from + from_bytes) || ((from | to | from_bytes | to_bytes) & (kPageSize - 1)) != 0) {
      return PageMove::kNotMoved;
    }
    // mremap that widens moves within one mapping: the largest piece of the range that one
    // mapping holds moves, the rest is the caller's to copy.
    const Range chosen = LargestPiece(from, from + from_bytes);
    if (chosen.high - chosen.low < least_bytes || chosen.high == chosen.low) return PageMove::kNotMoved;
    const uintptr_t target = to + (chosen.low - from);
    const size_t target_bytes = to + to_bytes - target;
    // Fresh pages are in the wilderness, or where pages moved away from (kept for a while): only
    // there the kernel is asked (a mincore call costs about a copy of 256 KiB on the VM measured).
    // Wilderness below memory found in use before (the heap was emptied and is filled again) is
    // taken to be in use too, without asking again.
    const bool refreshed = RecentlyRefreshed(target, target + target_bytes);
    if (!refreshed && (!carved || target < resident_below_)) return PageMove::kNotMoved;
    if (MostlyResident(target, target_bytes)) {
      resident_below_ = std::max(resident_below_, target + std::min<size_t>(target_bytes, kResidentSample * kPageSize));
      return PageMove::kNotMoved;
    }
    void* moved = mremap(reinterpret_cast<void*>(chosen.low), chosen.high - chosen.low, target_bytes, MREMAP_MAYMOVE | MREMAP_FIXED,
                         reinterpret_cast<void*>(target));
    if (moved == MAP_FAILED) {
      // EINVAL: this kernel (or valgrind) does not move pages this way; it will not start to.
      // EFAULT: the piece spans mappings after all; ENOMEM: the mapping limit. Those may pass
      // next time.
      if (errno == EINVAL) moves_refused_ = true;
      // The kernel unmaps the target before it moves, and may fail after that: map it again.
      return MapFresh(target, target_bytes) ? PageMove::kNotMoved : PageMove::kToLost;
    }
    Forget(target, target + target_bytes);
    Remember(target, target + target_bytes);
    piece->offset = chosen.low - from;
    piece->bytes = chosen.high - chosen.low;
    if (!MapFresh(chosen.low, chosen.high - chosen.low)) return PageMove::kFromLost;
    refreshed_[refreshed_next_++ % kRefreshed] = chosen;
    return PageMove::kMoved;
  }

 private:
  // Moved pages keep the file offset of where they came from, so the kernel never merges them with
  // their new neighbours: each moved range is a mapping of its own, and splits the one it lands
  // in. These are the ranges of moved pages still in place, so that their mappings stay bounded
  // (the process has 65530 by default): at most 2 * kMaxMoved + 2 of this region's. A range
  // leaves when its pages move on or fresh pages are mapped over it.
  static constexpr uint32_t kMaxMoved = 128;
  struct Range {
    uintptr_t low, high;
  };

  static constexpr size_t kResidentSample = 64;  // pages
  // The last ranges MovePages left fresh pages in: a growing buffer's next move often lands there.
  // (They stay listed when reused; mincore then says so.)
  static constexpr uint32_t kRefreshed = 16;
  bool RecentlyRefreshed(uintptr_t low, uintptr_t high) const {
    for (const Range& range : refreshed_) {
      if (range.low < high && low < range.high) return true;
    }
    return false;
  }

  bool MapFresh(uintptr_t at, size_t bytes) {
    void* mapped = mmap(reinterpret_cast<void*>(at), bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (mapped == MAP_FAILED) return false;
    Forget(at, at + bytes);
    return true;
  }
  // Whether the pages at [low, low + bytes) are mostly in memory, from a sample: its first 64
  // pages (a chunk is placed whole, in free memory or in the wilderness, so its pages tend to be
  // all in memory or all fresh). A move throws such pages away and leaves fresh ones where the
  // chunk was, to be faulted in again when that memory is reused: on the machine measured (a VM),
  // a fresh page's first touch cost about 25 us, the time of copying 1 MiB
  // (bench/results/realloc-pages.txt). Into fresh pages (a heap that grows) a move saves the copy
  // and the faults a copy's destination takes. One mincore call: about 2 us on that VM.
  static bool MostlyResident(uintptr_t low, size_t bytes) {
    unsigned char resident[kResidentSample];
    const size_t pages = std::min(kResidentSample, bytes / kPageSize);
    if (mincore(reinterpret_cast<void*>(low), pages * kPageSize, resident) != 0) return true;
    size_t in_memory = 0;
    for (size_t i = 0; i < pages; ++i) in_memory += resident[i] & 1;
    return in_memory * 4 > pages;
  }

  // The largest part of [low, high) inside one mapping: a moved range's part, or a run of pages
  // between moved ranges. (Fresh pages side by side nearly always share one mapping; when not,
  // mremap says so: EFAULT.)
  Range LargestPiece(uintptr_t low, uintptr_t high) const {
    Range best{low, low};
    uintptr_t fresh_from = low;  // the start of the fresh run below the next moved range
    while (fresh_from < high) {
      // The lowest moved range that reaches past fresh_from (ranges are unordered, and few).
      const Range* next = nullptr;
      for (uint32_t i = 0; i < moved_count_; ++i) {
        const Range& range = moved_[i];
        if (range.high > fresh_from && range.low < high && (next == nullptr || range.low < next->low)) next = &range;
      }
      const uintptr_t fresh_to = next == nullptr ? high : std::max(next->low, fresh_from);
      if (fresh_to - fresh_from > best.high - best.low) best = Range{fresh_from, fresh_to};
      if (next == nullptr) return best;
      const Range part{std::max(next->low, low), std::min(next->high, high)};
      if (part.high - part.low > best.high - best.low) best = part;
      fresh_from = part.high;
    }
    return best;
  }
  void Remember(uintptr_t low, uintptr_t high) {
    MA_ASSERT(moved_count_ < kMaxMoved && low < high && low >= region_ && high <= committed_);
    moved_[moved_count_++] = Range{low, high};
  }
  // [low, high) holds no moved pages any more: ranges are cut, and one cut in the middle splits in
  // two (as its mapping does).
  void Forget(uintptr_t low, uintptr_t high) {
    for (uint32_t i = 0; i < moved_count_;) {
      Range& range = moved_[i];
      if (range.high <= low || range.low >= high) {
        ++i;
      } else if (range.low < low && range.high > high) {
        MA_ASSERT(moved_count_ < kMaxMoved);
        const Range upper{high, range.high};
        range.high = low;
        moved_[moved_count_++] = upper;  // MovePages keeps room for the splits of its two Forgets
        ++i;
      } else if (range.low < low) {
        range.high = low;
        ++i;
      } else if (range.high > high) {
        range.low = high;
        ++i;
      } else {
        moved_[i] = moved_[--moved_count_];
      }
    }
  }

  const uintptr_t region_;
  const size_t reserved_;
  uintptr_t end_;        // region_ <= end_ <= committed_
  uintptr_t committed_;  // page aligned; everything above is PROT_NONE
  bool moves_refused_ = false;
  uint32_t moved_count_ = 0;
  Range moved_[kMaxMoved];
  Range refreshed_[kRefreshed] = {};
  uintptr_t resident_below_ = 0;  // the end of the highest sample mincore found in memory
  uint32_t refreshed_next_ = 0;
};

// Reserves `bytes` of address space (PROT_NONE, MAP_NORESERVE), near `hint` if the kernel can.
// Address space may be limited (ulimit -v, valgrind refuses 64 GiB): the reservation halves until
// it fits, down to 16 MiB; the heap then runs out of memory at that size instead of not starting.
MmapSource* ReserveRegion(size_t bytes, uintptr_t hint) {
  constexpr size_t kLeastReserve = size_t{16} << 20;
  size_t reserved = AlignUp(bytes, kPageSize);
  if (region_alignment > kPageSize && hint == 0) {
    // Reserve one alignment more and unmap the ragged ends. When that much address space is not
    // there, no aligned region at all: the malloc library then serves the thread from its main heap.
    const size_t wide = reserved + region_alignment;
    void* region = mmap(nullptr, wide, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return nullptr;
    const uintptr_t low = reinterpret_cast<uintptr_t>(region);
    const uintptr_t aligned = AlignUp(low, region_alignment);
    if (aligned > low) munmap(region, aligned - low);
    if (low + wide > aligned + reserved) munmap(reinterpret_cast<void*>(aligned + reserved), low + wide - aligned - reserved);
    MmapSource* source = new (std::nothrow) MmapSource(aligned, reserved);
    if (source == nullptr) munmap(reinterpret_cast<void*>(aligned), reserved);
    return source;
  }
  for (;;) {
    void* region = mmap(reinterpret_cast<void*>(hint), reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region != MAP_FAILED) {
      MmapSource* source = new (std::nothrow) MmapSource(reinterpret_cast<uintptr_t>(region), reserved);
      if (source == nullptr) munmap(region, reserved);
      return source;
    }
    if (reserved <= kLeastReserve) return nullptr;
    reserved = AlignUp(reserved / 2 > kLeastReserve ? reserved / 2 : kLeastReserve, kPageSize);
  }
}

// The real program break. When the break cannot move at all (a mapping sits right above it:
// some processes have V8's code space there), growth continues in a reserved region placed near
// the break, as glibc's main arena falls back to mmap. Heap positions are 32-bit granule offsets
// from the first segment, so the region must land within reach of a heap that already has
// brk segments; otherwise the allocation fails with kOutOfMemory.
class BrkSource final : public MemorySource {
 public:
  SourceKind kind() const override { return SourceKind::kBrk; }

  Status Extend(uintptr_t expected_end, size_t contiguous_bytes, size_t fresh_bytes, size_t align,
                Extension* out) override {
    if (fallback_ != nullptr && expected_end != 0 && fallback_->Owns(expected_end)) {
      return fallback_->Extend(expected_end, contiguous_bytes, fresh_bytes, align, out);
    }
    uintptr_t found;
    {
      BreakGuard guard;
      found = reinterpret_cast<uintptr_t>(sbrk(0));
      // Our memory sits below the break; a break under it means someone unmapped our chunks.
      if (expected_end != 0 && found < expected_end && (fallback_ == nullptr || !fallback_->Owns(expected_end))) {
        return Status::kHeapCorrupt;
      }
      const bool contiguous = expected_end != 0 && found == expected_end;
      const size_t bytes = contiguous ? contiguous_bytes : fresh_bytes;
      const uintptr_t start = contiguous ? found : AlignUp(found, align);
      const uintptr_t increment = (start - found) + bytes;
      if (bytes > static_cast<uintptr_t>(INTPTR_MAX) / 2 || increment > static_cast<uintptr_t>(INTPTR_MAX) / 2) {
        return Status::kOutOfMemory;
      }
      void* previous = sbrk(static_cast<intptr_t>(increment));
      if (previous != reinterpret_cast<void*>(-1)) {
        // previous == found: we hold the lock and only the main thread moves the break.
        *out = Extension{found, start, found + increment, contiguous};
            return Status::kOk;
      }
    }
    return ExtendFallback(found, fresh_bytes, align, out);
  }

  bool Release(uintptr_t expected_end, uintptr_t new_end) override {
    if (fallback_ != nullptr && fallback_->Owns(expected_end)) return fallback_->Release(expected_end, new_end);
    BreakGuard guard;
    if (reinterpret_cast<uintptr_t>(sbrk(0)) != expected_end) return false;
    return brk(reinterpret_cast<void*>(new_end)) == 0;
  }

 private:
  static constexpr size_t kFallbackReserve = size_t{64} << 30;
  static constexpr uintptr_t kFallbackDistance = uintptr_t{1} << 30;

  Status ExtendFallback(uintptr_t blocked_break, size_t bytes, size_t align, Extension* out) {
    if (fallback_ == nullptr) {
      fallback_.reset(ReserveNear(AlignUp(blocked_break, kFallbackDistance) + kFallbackDistance));
      if (fallback_ == nullptr) fallback_.reset(ReserveRegion(kFallbackReserve, 0));
      if (fallback_ == nullptr) return Status::kOutOfMemory;
    }
    // One segment at most lives in the region; a second would touch the first.
    if (!fallback_->IsEmpty()) return Status::kOutOfMemory;
    return fallback_->Extend(0, bytes, bytes, align, out);
  }

  // The kernel takes an address only as a hint and may map far away, beyond the reach of the
  // heap's positions; so ask for exact placement, stepping up from `hint`, before shrinking.
  static MmapSource* ReserveNear(uintptr_t hint) {
    for (size_t reserve = kFallbackReserve; reserve >= (size_t{256} << 20); reserve /= 4) {
      for (uintptr_t step = 0; step < 16; ++step) {
        void* wanted = reinterpret_cast<void*>(hint + step * kFallbackDistance);
        void* region = mmap(wanted, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (region == MAP_FAILED) continue;
        if (region == wanted) {
          MmapSource* source = new (std::nothrow) MmapSource(reinterpret_cast<uintptr_t>(region), reserve);
          if (source == nullptr) munmap(region, reserve);
          return source;
        }
        munmap(region, reserve);  // a kernel before 4.17 took the flag as a hint
      }
    }
    return nullptr;
  }

  std::unique_ptr<MmapSource> fallback_;
};

}  // namespace

bool OnMainThread() { return syscall(SYS_gettid) == getpid(); }

Status CreateMemorySource(SourceKind kind, size_t reserve_bytes, MemorySource** out) {
  if (kind == SourceKind::kBrk) {
    if (!OnMainThread() && !brk_off_main_thread) return Status::kBrkMainThreadOnly;
    *out = new (std::nothrow) BrkSource();
    return *out ? Status::kOk : Status::kOutOfMemory;
  }
  *out = ReserveRegion(reserve_bytes, 0);
  return *out != nullptr ? Status::kOk : Status::kOutOfMemory;
}

void AllowBrkOffMainThread() { brk_off_main_thread = true; }
void SetRegionAlignment(size_t align) { region_alignment = align; }

}  // namespace ma
