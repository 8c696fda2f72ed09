// The malloc library's internals, shared by its files: its settings (read once from the
// environment), the heaps it runs (the main heap on the program break, one mmap heap per thread),
// and the owner lookup. Every placement decision is the core's (native/core); this library only
// decides which heap a request goes to, under which lock, and what to say when a call is wrong.
//
// Files: entry_points.cpp (the C functions and their contract), thread_heaps.cpp (heaps, locks,
// owners, thread exit, fork), internal_memory.cpp (the bootstrap arena and the core's own
// objects), bad_free.cpp (the one-line reports), exit_report.cpp (the JSON report, snapshot and
// timeline).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "heap.h"

// MA_ENTRY(malloc) is `malloc` in the preloaded library; the sanitizer test build (which links
// this code into an ordinary executable, beside the sanitizer's own malloc) renames the entry
// points to ma_test_malloc... so that both can exist.
#ifdef MA_ENTRY_PREFIX
#define MA_CONCAT2(a, b) a##b
#define MA_CONCAT(a, b) MA_CONCAT2(a, b)
#define MA_ENTRY(name) MA_CONCAT(MA_ENTRY_PREFIX, name)
#else
#define MA_ENTRY(name) name
#endif
#define MA_EXPORT extern "C" __attribute__((visibility("default")))

namespace ma {
namespace malloc_library {

enum class SnapshotMode : uint8_t { kNone, kPeak, kExit };

struct Settings {
  Strategy strategy = Strategy::kBestFit;
  const char* strategy_name = "best-fit";
  bool abort_on_bad_free = true;
  SnapshotMode snapshot = SnapshotMode::kNone;
  bool timeline = false;
  char report_dir[4096] = "";  // empty: no report
};
extern Settings settings;

// One atomic exchange to take, a release store to drop: the cheapest lock there is when, as
// here, a heap is nearly always taken by its own thread.
class SpinLock {
 public:
  void Lock() {
    if (word_.exchange(1, std::memory_order_acquire) != 0) LockSlow();
  }
  void Unlock() { word_.store(0, std::memory_order_release); }
  void Reset() { word_.store(0, std::memory_order_relaxed); }

 private:
  void LockSlow();
  std::atomic<uint32_t> word_{0};
};

// A heap and how threads share it. Its owner (the thread it serves) works on it without a lock
// or an atomic read-modify-write: it announces itself in `in_use_by_owner` with a plain store and
// then checks `foreign_wants`. A foreign thread (a realloc or size of another thread's chunk, the
// exit report, fork) takes `lock`, sets `foreign_wants`, forces a memory barrier on every thread
// of the process (membarrier: the owner's store and its check are then ordered without a fence
// on its side) and waits until the owner is out. The owner that finds `foreign_wants` set takes
// `lock` too. A free of another thread's chunk does not enter the heap at all: the address goes
// into the owner's out-of-band queue, drained by the owner at its next call (or, when the queue
// is long, by the freeing thread with foreign access). A heap that foreign threads keep using
// (a producer/consumer pair) goes into shared mode, where the owner takes the lock as well and
// foreign calls cost a lock instead of a membarrier; it leaves that mode when they stop. Where membarrier is missing, every access
// takes `lock` (Access::kLocked), as it does with MEMORY_ALLOCATOR_LOCKED_HEAPS=1 (for tests and
// measurements of both ways). Slots live in a static array and are never destroyed: a thread
// heap whose thread exited waits, with its chunks, for the next new thread.
struct alignas(64) HeapSlot {
  // Written by the owner.
  std::atomic<uint32_t> in_use_by_owner{0};
  Heap* heap = nullptr;
  bool is_main = false;
  // address >> kRegionShift of its region, once registered; for the main heap the region of its
  // first chunk when no thread region and not the bootstrap arena is there (ClaimMainRegion), so
  // that the fast free's "is it mine" is one compare for every heap. kNoRegion: none.
  std::atomic<uintptr_t> region{~uintptr_t{0}};
  std::atomic<bool> registered{false};  // its region is in the owner table (thread heaps)
  bool in_use = false;                  // a live thread owns it (under the registry lock)
  HeapSlot* next_orphan = nullptr;
  uint32_t quiet_calls = 0;  // owner calls under the lock with no foreign access between them
  // Written by foreign threads.
  alignas(64) SpinLock lock;
  std::atomic<uint32_t> foreign_wants{0};
  // Shared mode: the owner takes `lock` too, so foreign access needs no membarrier and remote
  // frees are done at once. Entered by a foreign access, left by the owner after kQuietCalls
  // calls without one (under `lock`).
  std::atomic<uint32_t> shared_mode{0};
  bool foreign_since = false;  // under `lock`: a foreign access since the owner last looked
  // 1 while the remote-free queue holds addresses (written under queue_lock, only when the queue
  // goes from empty to not empty and back): the owner tests this line at each call, never the
  // queue's line, which every remote free writes (larson-style traffic would bounce it into
  // each of the owner's calls).
  std::atomic<uint32_t> pending{0};
  // The remote-free queue (under queue_lock): addresses in mapped pages, never in the heap.
  alignas(64) SpinLock queue_lock;
  std::atomic<uint32_t> queued{0};
  uintptr_t* queue = nullptr;
  size_t queue_capacity = 0;
  uintptr_t* spare = nullptr;  // the drained buffer, kept for the next swap
  size_t spare_capacity = 0;
};

enum class Access : uint8_t { kOwner, kLocked };

// The owner table: a thread heap's region is 64 GiB, aligned to 64 GiB, so the heap owning an
// address is owner_table[address >> kRegionShift]; addresses outside every region are the main
// heap's.
constexpr unsigned kRegionShift = 36;                              // the core's largest mmap heap
constexpr size_t kOwnerSlots = size_t{1} << (47 - kRegionShift);  // the user half of a 47-bit space
extern std::atomic<HeapSlot*> owner_table[kOwnerSlots];

// What a thread knows of its heap. `fast` is the one thing the entry points' fast path reads: the
// thread's own heap when it may be used without a lock and with nothing to do around the core's
// call (membarrier works, the heap is registered, and it is not the main heap while a timeline or
// peak snapshot watches it); else nullptr and every call takes the general path, which sets it
// again when it can. One initial-exec TLS load reaches it (no __tls_get_addr).
struct ThreadState {
  HeapSlot* fast;
  HeapSlot* heap;
  bool owns;    // heap is this thread's own (else: foreign access, each call)
  bool exited;  // the key's destructor ran: later calls of this thread use the main heap
};
extern __thread ThreadState thread_state __attribute__((tls_model("initial-exec")));

// The owner's lock-free entry, inlined into the entry points: a plain store, a compiler fence and
// one test of what foreign threads may have asked for (membarrier orders the store before the
// loads for them; see above). false: something wants the general path (foreign access pending,
// shared mode, queued remote frees), and the owner is out again.
inline bool EnterFast(HeapSlot* slot) {
  slot->in_use_by_owner.store(1, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (__builtin_expect((slot->foreign_wants.load(std::memory_order_acquire) | slot->shared_mode.load(std::memory_order_relaxed) |
                        slot->pending.load(std::memory_order_relaxed)) == 0,
                       1)) {
    return true;
  }
  slot->in_use_by_owner.store(0, std::memory_order_release);
  return false;
}
inline void LeaveFast(HeapSlot* slot) { slot->in_use_by_owner.store(0, std::memory_order_release); }

// The calling thread's heap (made or adopted on first use); nullptr only while the library is
// setting itself up on this thread, when the caller must use the bootstrap arena. *owned tells
// whether the caller is its owner (else it must use foreign access: a thread that the main heap
// serves for lack of a heap of its own).
HeapSlot* CurrentHeap(bool* owned);
// The heap whose memory holds `address`: a thread heap found from the address's region in O(1),
// else the main heap (nullptr before the library is set up).
HeapSlot* OwnerOf(uintptr_t address);
HeapSlot* MainHeap();
// Enters a thread heap's region in the owner table, after its first allocation at `address`.
void Register(HeapSlot* slot, uintptr_t address);
constexpr uintptr_t kNoRegion = ~uintptr_t{0};
constexpr uintptr_t kRegionRefused = ~uintptr_t{1};  // the main heap's claim failed: no fast compare
// Gives the main heap the region of its chunk at `address` (see HeapSlot::region).
void ClaimMainRegion(uintptr_t address);

// Exclusive access to a heap: by its owner (cheap), or by any thread (foreign).
Access EnterOwn(HeapSlot* slot);
void LeaveOwn(HeapSlot* slot, Access access);
void EnterForeign(HeapSlot* slot);
void LeaveForeign(HeapSlot* slot);
// A free of a chunk of a heap this thread does not own: queued for the owner, or (without
// membarrier) done under the lock.
void RemoteFree(HeapSlot* owner, uintptr_t address);
// Frees the queued addresses; the caller has exclusive access.
void Drain(HeapSlot* slot);

// Called with exclusive access to the main heap after each of its requests, when a timeline or a
// peak snapshot is wanted (exit_report.cpp); `allocated`: the request may have raised live bytes
// (a free cannot reach a new peak, so it skips the snapshot's Stats()).
extern bool observe_main;
void ObserveMain(Heap* heap, bool allocated);

// Counters for the report.
extern std::atomic<uint64_t> bad_frees;
extern std::atomic<uint32_t> heaps_created;
extern std::atomic<uint32_t> threads_allocating;
// Calls `visit` on every heap ever created, each under its lock (exit_report.cpp).
void ForEachHeap(void (*visit)(HeapSlot* slot, void* context), void* context);

// ---- internal_memory.cpp: allocations made while the library sets itself up
void* ArenaAlloc(size_t bytes, size_t align);
bool InArena(const void* p);
void ArenaBounds(uintptr_t* low, uintptr_t* high);  // [low, high)
size_t ArenaSize(const void* p);
// Pages from mmap with their size in front: the core's own objects (operator new in this
// library) and the report's buffers. Never the process's malloc.
void* MapBytes(size_t bytes);
void UnmapBytes(void* p);

// ---- bad_free.cpp: the one line on stderr, then SIGABRT or (report mode) nothing.
// DescribeBadFree needs exclusive access to `heap` (nullptr: no heap) and fills `line`;
// ReportBadFree, called after the access is given up, writes it and aborts or counts.
struct BadFreeLine {
  char text[512];
  size_t length = 0;
};
void DescribeBadFree(BadFreeLine* line, const char* function, uintptr_t address, Status status, const Heap* heap);
void ReportBadFree(const BadFreeLine& line);

// Text without malloc: appends to a fixed buffer, truncating.
struct Text {
  char* data;
  size_t capacity;
  size_t length = 0;
  void Add(const char* text);
  void Add(const char* text, size_t n);
  void Unsigned(uint64_t value);
  void Hex(uint64_t value);
};

}  // namespace malloc_library
}  // namespace ma
