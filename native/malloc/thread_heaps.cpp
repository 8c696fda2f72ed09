// Which heap serves a thread, which heap owns an address, and the locks around them.
//
// - The main heap grows by moving the real program break. It serves the process's main thread
//   (and any thread for which no heap of its own could be made).
// - Every other thread gets a heap on an mmap region of its own, 64 GiB reserved and aligned to
//   64 GiB, so that the owner of any address is owner_table[address >> 36]: one load, no search.
//   Addresses outside every thread region belong to the main heap.
// - A thread works on its own heap without a lock; another thread's free of its chunk goes into
//   its remote-free queue (the chunk goes back to its owner); the rare foreign access (a realloc
//   or size of another thread's chunk, the report, fork) uses membarrier (see HeapSlot).
// - When a thread exits its heap, chunks and all, is handed on to the next thread that needs
//   one, so thread heaps never outnumber the peak of live threads.
// - fork: prepare takes the registry lock, foreign access to every heap, every queue lock and the
//   break lock; parent and child drop them; in the child, the heaps of the threads that did not
//   survive the fork are handed on.
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "malloc_library.h"

namespace ma {
namespace malloc_library {

Settings settings;
bool observe_main = false;
std::atomic<uint64_t> bad_frees{0};
std::atomic<uint32_t> heaps_created{0};
std::atomic<uint32_t> threads_allocating{0};

std::atomic<HeapSlot*> owner_table[kOwnerSlots];
__thread ThreadState thread_state __attribute__((tls_model("initial-exec")));

namespace {

constexpr size_t kMaxHeaps = 1024;                       // beyond: the main heap serves the thread

HeapSlot slots[kMaxHeaps];
std::atomic<uint32_t> slot_count{0};       // slots[0] is the main heap
HeapSlot* orphans = nullptr;               // under registry_lock
pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t break_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_key_t thread_key;

// 0: not set up; 1: being set up (by `setting_up_tid`); 2: ready.
std::atomic<int> state{0};
std::atomic<pid_t> setting_up_tid{0};

// Owners go without a lock only where membarrier(PRIVATE_EXPEDITED) works (Linux 4.14+).
bool asymmetric = false;

// ThreadState::fast for a thread's heap (see there).
HeapSlot* FastFor(HeapSlot* slot, bool owns) {
  if (slot == nullptr || !owns || !asymmetric) return nullptr;
  if (slot->is_main) return observe_main ? nullptr : slot;
  return slot->registered.load(std::memory_order_relaxed) ? slot : nullptr;
}

// A queue longer than this is drained by the thread that frees into it: an owner that stopped
// calling (a thread blocked for a long time, an exited one) must not hold memory without bound.
constexpr uint32_t kDrainAt = 4096;
// Owner calls without a foreign access before a heap in shared mode goes back to lock-free calls.
constexpr uint32_t kQuietCalls = 10000;

void Membarrier() { syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0); }

void WaitForOwner(HeapSlot* slot) {
  for (unsigned spins = 0; slot->in_use_by_owner.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 64) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
}

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

bool Named(const char* value, const char* name) { return std::strcmp(value, name) == 0; }

void Say(const char* a, const char* b, const char* c) {
  const char* parts[] = {"memory-allocator: ", a, b, c, "\n"};
  for (const char* part : parts) {
    if (write(STDERR_FILENO, part, std::strlen(part)) < 0) return;
  }
}

void ReadSettings() {
  // getenv does not allocate; the values are copied, since a program may change its environment.
  if (const char* strategy = getenv("MEMORY_ALLOCATOR_STRATEGY")) {
    const bool known = StrategyFromName(strategy, &settings.strategy);
    if (known) settings.strategy_name = StrategyName(settings.strategy);
    if (!known && strategy[0] != '\0') Say("unknown MEMORY_ALLOCATOR_STRATEGY '", strategy, "'; using best-fit");
  }
  if (const char* on_bad_free = getenv("MEMORY_ALLOCATOR_ON_BAD_FREE")) {
    if (Named(on_bad_free, "report")) {
      settings.abort_on_bad_free = false;
    } else if (!Named(on_bad_free, "abort") && on_bad_free[0] != '\0') {
      Say("unknown MEMORY_ALLOCATOR_ON_BAD_FREE '", on_bad_free, "'; using abort");
    }
  }
  if (const char* dir = getenv("MEMORY_ALLOCATOR_REPORT_DIR")) {
    const size_t length = std::strlen(dir);
    if (length > 0 && length < sizeof settings.report_dir - 32) std::memcpy(settings.report_dir, dir, length + 1);
  }
  if (settings.report_dir[0] != '\0') {
    if (const char* snapshot = getenv("MEMORY_ALLOCATOR_SNAPSHOT")) {
      if (Named(snapshot, "peak")) settings.snapshot = SnapshotMode::kPeak;
      if (Named(snapshot, "exit")) settings.snapshot = SnapshotMode::kExit;
    }
    if (const char* timeline = getenv("MEMORY_ALLOCATOR_TIMELINE")) settings.timeline = Named(timeline, "1");
  }
  observe_main = settings.timeline || settings.snapshot == SnapshotMode::kPeak;
}

HeapOptions OptionsFor(SourceKind source) {
  HeapOptions options;
  options.source = source;
  options.strategy = settings.strategy;
  return options;
}

// ---- fork

void BeforeFork() {
  if (state.load(std::memory_order_acquire) != 2) return;
  pthread_mutex_lock(&registry_lock);
  const uint32_t count = slot_count.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < count; ++i) {
    slots[i].lock.Lock();
    slots[i].foreign_wants.store(1, std::memory_order_relaxed);
  }
  if (asymmetric) Membarrier();  // one for all heaps
  for (uint32_t i = 0; i < count; ++i) {
    WaitForOwner(&slots[i]);
    slots[i].queue_lock.Lock();
  }
  pthread_mutex_lock(&break_lock);  // last: heaps take it while in a call
}

void AfterForkInParent() {
  if (state.load(std::memory_order_acquire) != 2) return;
  pthread_mutex_unlock(&break_lock);
  const uint32_t count = slot_count.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < count; ++i) {
    slots[i].queue_lock.Unlock();
    slots[i].foreign_wants.store(0, std::memory_order_release);
    slots[i].lock.Unlock();
  }
  pthread_mutex_unlock(&registry_lock);
}

void AfterForkInChild() {
  if (state.load(std::memory_order_acquire) != 2) return;
  // The child's only thread is the one that forked: every other thread's heap is handed on, and
  // the main heap has no owner unless the main thread forked.
  pthread_mutex_init(&break_lock, nullptr);
  pthread_mutex_init(&registry_lock, nullptr);
  // The registration is the process's memory's; register the child's own, or go back to locks.
  if (asymmetric) asymmetric = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  const uint32_t count = slot_count.load(std::memory_order_acquire);
  HeapSlot* mine = thread_state.heap;
  if (mine == &slots[0] && !thread_state.exited) thread_state.owns = true;  // now the main thread
  thread_state.fast = FastFor(mine, thread_state.owns);
  orphans = nullptr;
  for (uint32_t i = 0; i < count; ++i) {
    slots[i].queue_lock.Reset();
    slots[i].foreign_wants.store(0, std::memory_order_relaxed);
    slots[i].in_use_by_owner.store(0, std::memory_order_relaxed);
    slots[i].shared_mode.store(0, std::memory_order_relaxed);
    slots[i].lock.Reset();
    if (slots[i].is_main || &slots[i] == mine || slots[i].heap == nullptr) continue;
    slots[i].in_use = false;
    slots[i].next_orphan = orphans;
    orphans = &slots[i];
  }
  threads_allocating.store(mine != nullptr ? 1 : 0, std::memory_order_relaxed);
}

// ---- thread exit

void ThreadExit(void* value) {
  HeapSlot* slot = static_cast<HeapSlot*>(value);
  // Destructors of other keys that run after this one may still allocate: the main heap serves them.
  thread_state.exited = true;
  thread_state.fast = nullptr;
  thread_state.heap = &slots[0];
  thread_state.owns = false;
  if (slot == nullptr || slot->is_main) return;
  pthread_mutex_lock(&registry_lock);
  slot->in_use = false;
  slot->next_orphan = orphans;
  orphans = slot;
  pthread_mutex_unlock(&registry_lock);
}

// Sets the library up once per process; false while it is being set up by this very thread.
bool Initialize() {
  int expected = 0;
  if (state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    setting_up_tid.store(Tid(), std::memory_order_relaxed);
    ReadSettings();
    AllowBrkOffMainThread();
    SetRegionAlignment(size_t{1} << kRegionShift);
    pthread_key_create(&thread_key, ThreadExit);
    asymmetric = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    if (const char* locked = getenv("MEMORY_ALLOCATOR_LOCKED_HEAPS")) asymmetric = asymmetric && locked[0] != '1';
    HeapSlot& main = slots[0];
    main.is_main = true;
    main.in_use = true;
    Heap* heap = nullptr;
    if (Heap::Create(OptionsFor(SourceKind::kBrk), &heap) != Status::kOk) {
      Say("cannot create the main heap", "", "");
      abort();
    }
    main.heap = heap;
    heaps_created.store(1, std::memory_order_relaxed);
    slot_count.store(1, std::memory_order_release);
    state.store(2, std::memory_order_release);
    // After `state` is 2: pthread_atfork may allocate, and those calls must find a ready library.
    pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild);
    return true;
  }
  if (expected == 1 && setting_up_tid.load(std::memory_order_relaxed) == Tid()) return false;
  while (state.load(std::memory_order_acquire) != 2) sched_yield();
  return true;
}

// A heap for a new thread: one handed on by an exited thread, else a new one.
HeapSlot* AdoptOrCreate() {
  pthread_mutex_lock(&registry_lock);
  HeapSlot* slot = orphans;
  if (slot != nullptr) {
    orphans = slot->next_orphan;
    slot->in_use = true;
    pthread_mutex_unlock(&registry_lock);
    return slot;
  }
  const uint32_t index = slot_count.load(std::memory_order_relaxed);
  Heap* heap = nullptr;
  if (index >= kMaxHeaps || Heap::Create(OptionsFor(SourceKind::kMmap), &heap) != Status::kOk) {
    pthread_mutex_unlock(&registry_lock);
    return &slots[0];
  }
  slot = &slots[index];
  slot->heap = heap;
  slot->in_use = true;
  slot_count.store(index + 1, std::memory_order_release);
  heaps_created.fetch_add(1, std::memory_order_relaxed);
  pthread_mutex_unlock(&registry_lock);
  return slot;
}

}  // namespace

void SpinLock::LockSlow() {
  for (unsigned spins = 0;; ++spins) {
    if (word_.load(std::memory_order_relaxed) == 0 && word_.exchange(1, std::memory_order_acquire) == 0) return;
    // Two cores and often more threads: spin briefly, then let the holder run.
    if (spins < 64) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
}

HeapSlot* CurrentHeap(bool* owned) {
  HeapSlot* slot = thread_state.heap;
  if (__builtin_expect(slot != nullptr, 1)) {
    *owned = thread_state.owns;
    return slot;
  }
  if (state.load(std::memory_order_acquire) != 2 && !Initialize()) return nullptr;
  *owned = false;
  if (thread_state.exited) return &slots[0];
  if (Tid() == getpid()) {
    slot = &slots[0];
    thread_state.owns = true;
  } else {
    slot = AdoptOrCreate();
    thread_state.owns = slot != &slots[0];
    if (thread_state.owns) pthread_setspecific(thread_key, slot);
  }
  thread_state.heap = slot;
  thread_state.fast = FastFor(slot, thread_state.owns);
  *owned = thread_state.owns;
  threads_allocating.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

Access EnterOwn(HeapSlot* slot) {
  if (asymmetric) {
    slot->in_use_by_owner.store(1, std::memory_order_relaxed);
    // Only the compiler must keep the store before the loads: membarrier orders them for us.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (__builtin_expect((slot->foreign_wants.load(std::memory_order_acquire) | slot->shared_mode.load(std::memory_order_relaxed)) == 0, 1)) {
      if (__builtin_expect(slot->pending.load(std::memory_order_relaxed) != 0, 0)) Drain(slot);
      return Access::kOwner;
    }
    slot->in_use_by_owner.store(0, std::memory_order_release);
  }
  slot->lock.Lock();
  if (slot->shared_mode.load(std::memory_order_relaxed) != 0) {
    if (slot->foreign_since) {
      slot->foreign_since = false;
      slot->quiet_calls = 0;
    } else if (++slot->quiet_calls >= kQuietCalls) {
      slot->shared_mode.store(0, std::memory_order_relaxed);  // the next call is lock-free again
      slot->quiet_calls = 0;
    }
  }
  if (slot->pending.load(std::memory_order_relaxed) != 0) Drain(slot);
  return Access::kLocked;
}

void LeaveOwn(HeapSlot* slot, Access access) {
  if (access == Access::kOwner) {
    slot->in_use_by_owner.store(0, std::memory_order_release);
  } else {
    slot->lock.Unlock();
  }
}

void EnterForeign(HeapSlot* slot) {
  slot->lock.Lock();
  if (asymmetric) {
    slot->foreign_since = true;
    // In shared mode the owner takes the lock for every call: holding it is enough.
    if (slot->shared_mode.load(std::memory_order_relaxed) != 0) return;
    slot->foreign_wants.store(1, std::memory_order_relaxed);
    slot->shared_mode.store(1, std::memory_order_relaxed);
    Membarrier();
    WaitForOwner(slot);
  }
}

void LeaveForeign(HeapSlot* slot) {
  if (asymmetric) slot->foreign_wants.store(0, std::memory_order_release);
  slot->lock.Unlock();
}

namespace {

// A free under the lock (lock mode, or a heap in shared mode).
void FreeLocked(HeapSlot* owner, uintptr_t address) {
  const Status status = owner->heap->Free(address);
  if (status != Status::kOk) {
    BadFreeLine line;
    DescribeBadFree(&line, "free", address, status, owner->heap);
    LeaveForeign(owner);
    ReportBadFree(line);
    return;
  }
  LeaveForeign(owner);
}

}  // namespace

void RemoteFree(HeapSlot* owner, uintptr_t address) {
  if (!asymmetric) {
    owner->lock.Lock();
    FreeLocked(owner, address);
    return;
  }
  if (owner->shared_mode.load(std::memory_order_relaxed) != 0) {
    owner->lock.Lock();
    if (owner->shared_mode.load(std::memory_order_relaxed) != 0) {
      owner->foreign_since = true;
      FreeLocked(owner, address);
      return;
    }
    owner->lock.Unlock();
  }
  owner->queue_lock.Lock();
  const uint32_t queued = owner->queued.load(std::memory_order_relaxed);
  if (queued == owner->queue_capacity) {
    // Pages of addresses beside the heap, grown by mremap: never the heap itself.
    const size_t capacity = owner->queue_capacity == 0 ? 512 : owner->queue_capacity * 2;
    void* grown = owner->queue == nullptr
                      ? mmap(nullptr, capacity * sizeof(uintptr_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                      : mremap(owner->queue, owner->queue_capacity * sizeof(uintptr_t), capacity * sizeof(uintptr_t), MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) {
      // No room to queue it: free it with foreign access instead.
      owner->queue_lock.Unlock();
      EnterForeign(owner);
      const Status status = owner->heap->Free(address);
      BadFreeLine line;
      if (status != Status::kOk) DescribeBadFree(&line, "free", address, status, owner->heap);
      LeaveForeign(owner);
      if (status != Status::kOk) ReportBadFree(line);
      return;
    }
    owner->queue = static_cast<uintptr_t*>(grown);
    owner->queue_capacity = capacity;
  }
  owner->queue[queued] = address;
  owner->queued.store(queued + 1, std::memory_order_relaxed);
  if (queued == 0) owner->pending.store(1, std::memory_order_relaxed);
  owner->queue_lock.Unlock();
  if (queued + 1 >= kDrainAt) {
    EnterForeign(owner);
    Drain(owner);
    LeaveForeign(owner);
  }
}

void Drain(HeapSlot* slot) {
  slot->queue_lock.Lock();
  uintptr_t* taken = slot->queue;
  const size_t taken_capacity = slot->queue_capacity;
  const uint32_t count = slot->queued.load(std::memory_order_relaxed);
  slot->queue = slot->spare;
  slot->queue_capacity = slot->spare_capacity;
  slot->spare = nullptr;
  slot->spare_capacity = 0;
  slot->queued.store(0, std::memory_order_relaxed);
  if (count != 0) slot->pending.store(0, std::memory_order_relaxed);
  slot->queue_lock.Unlock();
  for (uint32_t i = 0; i < count; ++i) {
    const Status status = slot->heap->Free(taken[i]);
    if (__builtin_expect(status != Status::kOk, 0)) {
      // Found late, by the owner: still named, still stopped.
      BadFreeLine line;
      DescribeBadFree(&line, "free", taken[i], status, slot->heap);
      ReportBadFree(line);
    }
  }
  slot->queue_lock.Lock();
  if (slot->spare == nullptr) {
    slot->spare = taken;
    slot->spare_capacity = taken_capacity;
  } else if (taken != nullptr) {
    munmap(taken, taken_capacity * sizeof(uintptr_t));
  }
  slot->queue_lock.Unlock();
}

HeapSlot* MainHeap() { return state.load(std::memory_order_acquire) == 2 ? &slots[0] : nullptr; }

HeapSlot* OwnerOf(uintptr_t address) {
  const uintptr_t index = address >> kRegionShift;
  if (index < kOwnerSlots) {
    HeapSlot* owner = owner_table[index].load(std::memory_order_acquire);
    if (owner != nullptr) return owner;
  }
  return MainHeap();
}

void Register(HeapSlot* slot, uintptr_t address) {
  const uintptr_t index = address >> kRegionShift;
  if (index < kOwnerSlots) {
    owner_table[index].store(slot, std::memory_order_release);
    slot->region.store(index, std::memory_order_relaxed);
    // The main heap's brk memory left this region (a trim) before the thread's region came:
    // the main heap gives it up, or the main thread's fast free would take this heap's chunks.
    if (slots[0].region.load(std::memory_order_relaxed) == index) slots[0].region.store(kNoRegion, std::memory_order_relaxed);
  }
  slot->registered.store(true, std::memory_order_release);
  if (thread_state.heap == slot && thread_state.owns) thread_state.fast = FastFor(slot, true);
}

void ClaimMainRegion(uintptr_t address) {
  const uintptr_t index = address >> kRegionShift;
  uintptr_t low, high;
  ArenaBounds(&low, &high);
  // Refused once, refused for good: the general path must not pay for the attempt at each call.
  const bool refused = index >= kOwnerSlots || owner_table[index].load(std::memory_order_acquire) != nullptr ||
                       (low >> kRegionShift) == index || ((high - 1) >> kRegionShift) == index;
  slots[0].region.store(refused ? kRegionRefused : index, std::memory_order_relaxed);
}

void ForEachHeap(void (*visit)(HeapSlot* slot, void* context), void* context) {
  pthread_mutex_lock(&registry_lock);
  const uint32_t count = slot_count.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < count; ++i) {
    EnterForeign(&slots[i]);
    Drain(&slots[i]);
    visit(&slots[i], context);
    LeaveForeign(&slots[i]);
  }
  pthread_mutex_unlock(&registry_lock);
}

}  // namespace malloc_library
}  // namespace ma

// The one lock for every move of the break in this process: the core's copy in this library uses
// it, and the addon's copy finds it by name (memory_source.cpp), so Node under `run` has one.
MA_EXPORT pthread_mutex_t* memory_allocator_break_lock(void) { return &ma::malloc_library::break_lock; }
