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

// A heap and the lock every call on it takes. Slots live in a static array and are never
// destroyed: a thread heap whose thread exited waits, with its chunks, for the next new thread.
struct alignas(64) HeapSlot {
  SpinLock lock;
  Heap* heap = nullptr;
  bool is_main = false;
  std::atomic<bool> registered{false};  // its region is in the owner table (thread heaps)
  bool in_use = false;                  // a live thread owns it (under the registry lock)
  HeapSlot* next_orphan = nullptr;
};

// The calling thread's heap (made or adopted on first use); nullptr only while the library is
// setting itself up on this thread, when the caller must use the bootstrap arena.
HeapSlot* CurrentHeap();
// The heap whose memory holds `address`: a thread heap found from the address's region in O(1),
// else the main heap (nullptr before the library is set up).
HeapSlot* OwnerOf(uintptr_t address);
HeapSlot* MainHeap();
// Enters a thread heap's region in the owner table, after its first allocation at `address`.
void Register(HeapSlot* slot, uintptr_t address);

// Called under the main heap's lock after each of its requests, when a timeline or a peak
// snapshot is wanted (exit_report.cpp).
extern bool observe_main;
void ObserveMain(Heap* heap);

// Counters for the report.
extern std::atomic<uint64_t> bad_frees;
extern std::atomic<uint32_t> heaps_created;
extern std::atomic<uint32_t> threads_allocating;
// Calls `visit` on every heap ever created, each under its lock (exit_report.cpp).
void ForEachHeap(void (*visit)(HeapSlot* slot, void* context), void* context);

// ---- internal_memory.cpp: allocations made while the library sets itself up
void* ArenaAlloc(size_t bytes, size_t align);
bool InArena(const void* p);
size_t ArenaSize(const void* p);
// Pages from mmap with their size in front: the core's own objects (operator new in this
// library) and the report's buffers. Never the process's malloc.
void* MapBytes(size_t bytes);
void UnmapBytes(void* p);

// ---- bad_free.cpp: the one line on stderr, then SIGABRT or (report mode) nothing. `slot` is
// the owner heap, its lock held by the caller; BadFree drops it before writing.
void BadFree(const char* function, uintptr_t address, Status status, HeapSlot* slot);

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
