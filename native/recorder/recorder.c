// The malloc-family recorder behind `memory-allocator record`: preloaded (LD_PRELOAD) into any
// dynamically linked program, it passes every malloc, calloc, realloc, reallocarray, free,
// posix_memalign, aligned_alloc, memalign, valloc and pvalloc on to the next malloc in the link
// order and writes the request to a malloc-lab .rep trace, in the conventions of
// ../shared/traces/programs/README.md (see the README's "Recording a program").
//
// Configuration, by environment (nothing is recorded without MA_RECORD_FILE):
//   MA_RECORD_FILE    absolute path of the trace of the launched process
//   MA_RECORD_PARENT  pid of the launcher. A process whose parent it is writes MA_RECORD_FILE;
//                     any other (a forked child, a program it runs) writes STEM.PID.rep, where
//                     STEM is MA_RECORD_FILE without its ".rep". An image that exec replaces
//                     writes STEM.PID.exec-K.rep (K = 1, 2, ...: the first free name).
//   MA_RECORD_RUN     a token copied into each sidecar so that the launcher finds this run's files
//   MA_RECORD_TOP_ONLY  "1": record only the launched process's last image (`record --top-only`):
//                     nothing in forked children or the programs they run, and an image that exec
//                     replaces (a version manager's shim) drops what it recorded. Under pyenv's
//                     python3 shim, recording everything wrote 79 traces, all but one of bash.
// Each trace gets a sidecar TRACE.json: pid, program, counts, and the frees and reallocs of
// pointers the recorder never saw (counted, never written as ops: the format has no comments).
//
// Rules that keep the trace valid (every f/r names a live id, no a of a live id):
// - One lock around the real call and its record, so the trace is one sequential order that
//   really happened: a free is written before the memory is released, an allocation after it is
//   obtained, so no other thread can be handed the address in between.
// - Every allocation gets a fresh id; realloc keeps its block's id.
// - Calls made while the recorder itself runs (dlsym's own calloc, pthread_atfork) are not
//   recorded; before the real functions are known they are served from a static arena.
// - After fork the child starts a trace of its own with only what it allocates itself; freeing
//   or reallocating an inherited block counts as unknown.
// - The trace is written at exit (an ELF destructor: also on exit() from any thread). Ops are
//   buffered in an unlinked temporary file, since the header (peak live, ids, ops) comes first.
//   exec (the execve, execv, execvp, execvpe, fexecve and execl family) first writes the trace
//   of the image it replaces. A process ended by _exit or a signal leaves no trace.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef void* (*malloc_fn)(size_t);
typedef void* (*calloc_fn)(size_t, size_t);
typedef void* (*realloc_fn)(void*, size_t);
typedef void (*free_fn)(void*);
typedef int (*posix_memalign_fn)(void**, size_t, size_t);
typedef void* (*aligned_fn)(size_t, size_t);

static struct {
  free_fn free;
  malloc_fn malloc;
  calloc_fn calloc;
  realloc_fn realloc;
  posix_memalign_fn posix_memalign;
  aligned_fn aligned_alloc;
  aligned_fn memalign;
  malloc_fn valloc;
  malloc_fn pvalloc;
} real;

// ---- bootstrap arena: allocations made before the real functions are known ----

enum { kArenaBytes = 1 << 16, kArenaHeader = 16 };
static _Alignas(4096) unsigned char arena[kArenaBytes];
static size_t arena_used;

static void* arena_alloc(size_t size, size_t align) {
  if (align < kArenaHeader) align = kArenaHeader;
  size_t start, end;
  size_t used = __atomic_load_n(&arena_used, __ATOMIC_RELAXED);
  do {
    start = (used + kArenaHeader + align - 1) & ~(align - 1);
    end = start + size;
    if (size > kArenaBytes || end > kArenaBytes) return NULL;
  } while (!__atomic_compare_exchange_n(&arena_used, &used, end, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  memcpy(arena + start - sizeof(size_t), &size, sizeof(size_t));
  return arena + start;  // static storage: already zero, as calloc wants
}

static int in_arena(const void* p) {
  return (const unsigned char*)p >= arena && (const unsigned char*)p < arena + kArenaBytes;
}

static size_t arena_size(const void* p) {
  size_t size;
  memcpy(&size, (const unsigned char*)p - sizeof(size_t), sizeof(size_t));
  return size;
}

// Set while this thread runs recorder code or dlsym: its allocations are not recorded.
static __thread int busy __attribute__((tls_model("initial-exec")));

static void resolve(void) {
  ++busy;
  // free first: a block that dlsym allocates from the real malloc can then be freed by it.
  real.free = (free_fn)dlsym(RTLD_NEXT, "free");
  real.calloc = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
  real.realloc = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
  real.posix_memalign = (posix_memalign_fn)dlsym(RTLD_NEXT, "posix_memalign");
  real.aligned_alloc = (aligned_fn)dlsym(RTLD_NEXT, "aligned_alloc");
  real.memalign = (aligned_fn)dlsym(RTLD_NEXT, "memalign");
  real.valloc = (malloc_fn)dlsym(RTLD_NEXT, "valloc");
  real.pvalloc = (malloc_fn)dlsym(RTLD_NEXT, "pvalloc");
  real.malloc = (malloc_fn)dlsym(RTLD_NEXT, "malloc");  // last: it marks the set as complete
  --busy;
}

// ---- recording state (all under `lock`) ----

enum State { kUninitialized, kRecording, kOff };
static volatile int state = kUninitialized;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static char trace_path[4096];
static char main_path[4096];  // MA_RECORD_FILE as it was at start (a program may change its environment)
static char stem[4096];       // main_path without ".rep"
static char run_token[128];
static pid_t launcher_pid;
static pid_t forked_from;  // 0 unless this process began as a fork of a recorded one
static pid_t recording_pid;  // getpid() differs in a vfork child, which shares this memory
static int replaced_by_exec;  // while writing the trace of an image that exec is replacing
static int top_only;  // MA_RECORD_TOP_ONLY

struct Slot {
  uintptr_t address;  // 0: empty
  uint64_t size;
  uint32_t id;
};
static struct Slot* table;
static size_t table_capacity;  // a power of two, or 0
static size_t table_count;

static uint32_t next_id;
static uint64_t op_count;
static uint64_t live_bytes, peak_live_bytes;
static uint64_t unknown_frees, unknown_reallocs, unseen_frees, inherited_blocks;

static int ops_fd = -1;
static dev_t ops_device;  // which file ops_fd must still be: a program may close our descriptor
static ino_t ops_inode;   // and open one of its own files under the same number
static char out[1 << 16];
static size_t out_length;
static int write_failed;

static void say(const char* a, const char* b, const char* c) {
  const char* parts[] = {"memory-allocator recorder: ", a, b, c, "\n"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; ++i) {
    if (parts[i] != NULL && write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0) return;
  }
}

static int write_all(int fd, const char* data, size_t length) {
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    data += n;
    length -= (size_t)n;
  }
  return 0;
}

static char* format_unsigned(char* at, uint64_t value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) *at++ = digits[--n];
  return at;
}

static const char* dir_end(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash == NULL ? path : slash;
}

// Path text helpers that never allocate: append to a fixed buffer, truncating safely.
static void append(char* buffer, size_t capacity, const char* text) {
  size_t length = strlen(buffer);
  size_t n = strlen(text);
  if (length + n >= capacity) n = capacity - 1 - length;
  memcpy(buffer + length, text, n);
  buffer[length + n] = '\0';
}

static void append_unsigned(char* buffer, size_t capacity, uint64_t value) {
  char digits[24];
  *format_unsigned(digits, value) = '\0';
  append(buffer, capacity, digits);
}

static void choose_trace_path(void) {
  trace_path[0] = '\0';
  if (getppid() == launcher_pid) {
    append(trace_path, sizeof trace_path, main_path);
  } else {
    append(trace_path, sizeof trace_path, stem);
    append(trace_path, sizeof trace_path, ".");
    append_unsigned(trace_path, sizeof trace_path, (uint64_t)getpid());
    append(trace_path, sizeof trace_path, ".rep");
  }
}

static int open_ops_file(void) {
  char path[4200] = "";
  size_t dir_length = (size_t)(dir_end(trace_path) - trace_path);
  memcpy(path, trace_path, dir_length);
  path[dir_length] = '\0';
  append(path, sizeof path, "/.ma-record-ops.");
  append_unsigned(path, sizeof path, (uint64_t)getpid());
  append(path, sizeof path, ".tmp");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    say("cannot create ", path, "; not recording this process");
    return -1;
  }
  unlink(path);  // exec, _exit or a crash leave nothing behind
  // Far above the descriptors a program usually uses, so that it is not closed by mistake.
  int high = fcntl(fd, F_DUPFD_CLOEXEC, 700);
  if (high >= 0) {
    close(fd);
    fd = high;
  }
  struct stat info;
  if (fstat(fd, &info) != 0) {
    close(fd);
    return -1;
  }
  ops_device = info.st_dev;
  ops_inode = info.st_ino;
  return fd;
}

static int ops_file_intact(void) {
  struct stat info;
  return fstat(ops_fd, &info) == 0 && info.st_dev == ops_device && info.st_ino == ops_inode;
}

static void flush_ops(void) {
  if (out_length == 0 || write_failed) {
    out_length = 0;
    return;
  }
  if (ops_fd < 0) ops_fd = open_ops_file();
  if (ops_fd >= 0 && !ops_file_intact()) {
    say("the program closed the ops file of ", trace_path, "; this trace is dropped");
    ops_fd = -1;  // the number is the program's now: never write or close it
    write_failed = 1;
  } else if (ops_fd < 0 || write_all(ops_fd, out, out_length) != 0) {
    if (ops_fd >= 0) say("cannot write the ops of ", trace_path, " (disk full?); this trace is dropped");
    write_failed = 1;
  }
  out_length = 0;
}

static void emit(char kind, uint32_t id, int with_size, uint64_t size) {
  if (out_length + 48 > sizeof out) flush_ops();
  char* at = out + out_length;
  *at++ = kind;
  *at++ = ' ';
  at = format_unsigned(at, id);
  if (with_size) {
    *at++ = ' ';
    at = format_unsigned(at, size);
  }
  *at++ = '\n';
  out_length = (size_t)(at - out);
  ++op_count;
}

// ---- address -> (id, size): open addressing, linear probing, memory from mmap ----

static size_t slot_of(uintptr_t address, size_t capacity) {
  return (size_t)(((uint64_t)(address >> 4) * 0x9E3779B97F4A7C15ull) >> 17) & (capacity - 1);
}

static struct Slot* map_slots(size_t capacity) {
  void* memory = mmap(NULL, capacity * sizeof(struct Slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return memory == MAP_FAILED ? NULL : (struct Slot*)memory;
}

static int grow_table(void) {
  size_t capacity = table_capacity == 0 ? 1 << 14 : table_capacity * 2;
  struct Slot* slots = map_slots(capacity);
  if (slots == NULL) return -1;
  for (size_t i = 0; i < table_capacity; ++i) {
    if (table[i].address == 0) continue;
    size_t j = slot_of(table[i].address, capacity);
    while (slots[j].address != 0) j = (j + 1) & (capacity - 1);
    slots[j] = table[i];
  }
  if (table != NULL) munmap(table, table_capacity * sizeof(struct Slot));
  table = slots;
  table_capacity = capacity;
  return 0;
}

static struct Slot* find(uintptr_t address) {
  if (table_capacity == 0) return NULL;
  for (size_t i = slot_of(address, table_capacity);; i = (i + 1) & (table_capacity - 1)) {
    if (table[i].address == address) return &table[i];
    if (table[i].address == 0) return NULL;
  }
}

static int insert(uintptr_t address, uint32_t id, uint64_t size) {
  if ((table_count + 1) * 2 > table_capacity && grow_table() != 0) return -1;
  size_t i = slot_of(address, table_capacity);
  while (table[i].address != 0) i = (i + 1) & (table_capacity - 1);
  table[i].address = address;
  table[i].id = id;
  table[i].size = size;
  ++table_count;
  return 0;
}

// Backward-shift deletion keeps every probe chain unbroken without tombstones.
static void erase(struct Slot* slot) {
  size_t hole = (size_t)(slot - table);
  size_t mask = table_capacity - 1;
  for (size_t i = (hole + 1) & mask; table[i].address != 0; i = (i + 1) & mask) {
    size_t home = slot_of(table[i].address, table_capacity);
    // Move the entry back when its home is not cyclically within (hole, i].
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      table[hole] = table[i];
      hole = i;
    }
  }
  table[hole].address = 0;
  --table_count;
}

static void stop_recording(const char* why) {
  say(why, trace_path, "; recording stops");
  state = kOff;
}

// ---- the records ----

static void record_free(void* p) {
  struct Slot* slot = find((uintptr_t)p);
  if (slot == NULL) {
    ++unknown_frees;
    return;
  }
  emit('f', slot->id, 0, 0);
  live_bytes -= slot->size;
  erase(slot);
}

static void record_alloc(void* p, uint64_t size) {
  struct Slot* stale = find((uintptr_t)p);
  if (stale != NULL) {
    // The block was released by a path the recorder cannot see (a libc-internal free).
    ++unseen_frees;
    record_free(p);
  }
  uint32_t id = next_id++;
  if (insert((uintptr_t)p, id, size) != 0) {
    stop_recording("out of memory for the block table of ");
    return;
  }
  emit('a', id, 1, size);
  live_bytes += size;
  if (live_bytes > peak_live_bytes) peak_live_bytes = live_bytes;
}

// `q` is what realloc(p, size) returned; p is not NULL.
static void record_realloc(void* p, void* q, uint64_t size) {
  if (q == NULL) {
    if (size == 0) record_free(p);  // glibc's realloc(p, 0) frees p and returns NULL
    return;                         // otherwise it failed and p is untouched
  }
  struct Slot* slot = find((uintptr_t)p);
  if (slot == NULL) {
    ++unknown_reallocs;
    record_alloc(q, size);
    return;
  }
  if (size == 0) {  // a malloc that returns a minimal block for realloc(p, 0)
    record_free(p);
    record_alloc(q, 0);
    return;
  }
  uint32_t id = slot->id;
  uint64_t old_size = slot->size;
  if (q == p) {
    slot->size = size;
  } else {
    erase(slot);
    struct Slot* stale = find((uintptr_t)q);
    if (stale != NULL) {
      ++unseen_frees;
      record_free(q);
    }
    if (insert((uintptr_t)q, id, size) != 0) {
      stop_recording("out of memory for the block table of ");
      return;
    }
  }
  emit('r', id, 1, size);
  live_bytes = live_bytes - old_size + size;
  if (live_bytes > peak_live_bytes) peak_live_bytes = live_bytes;
}

// ---- set-up, fork, exit ----

static void before_fork(void) { pthread_mutex_lock(&lock); }
static void after_fork_in_parent(void) { pthread_mutex_unlock(&lock); }

static void after_fork_in_child(void) {
  pthread_mutex_init(&lock, NULL);  // the child's only thread holds the inherited one
  if (state != kRecording) return;
  if (top_only) {
    // Not the top process: nothing more is recorded or written here. The ops file is the
    // parent's (one shared offset); closing the child's descriptor leaves the parent's open.
    if (ops_fd >= 0 && ops_file_intact()) close(ops_fd);
    ops_fd = -1;
    state = kOff;
    return;
  }
  forked_from = getppid();
  recording_pid = getpid();
  inherited_blocks = table_count;
  if (table != NULL) munmap(table, table_capacity * sizeof(struct Slot));
  table = NULL;
  table_capacity = table_count = 0;
  next_id = 0;
  op_count = live_bytes = peak_live_bytes = 0;
  unknown_frees = unknown_reallocs = unseen_frees = 0;
  out_length = 0;  // the parent writes its own buffered ops
  write_failed = 0;
  if (ops_fd >= 0 && ops_file_intact()) close(ops_fd);  // shared with the parent (one file offset): not ours
  ops_fd = -1;
  choose_trace_path();
}

// Called with `lock` held, on the first recorded call or from the constructor.
static void initialize(void) {
  if (state != kUninitialized) return;
  ++busy;
  state = kOff;
  const char* file = getenv("MA_RECORD_FILE");
  const char* parent = getenv("MA_RECORD_PARENT");
  const char* run = getenv("MA_RECORD_RUN");
  const char* top = getenv("MA_RECORD_TOP_ONLY");
  top_only = top != NULL && strcmp(top, "1") == 0;
  if (file != NULL && file[0] == '/' && strlen(file) < sizeof stem - 32) {
    main_path[0] = stem[0] = '\0';
    append(main_path, sizeof main_path, file);
    append(stem, sizeof stem, file);
    size_t length = strlen(stem);
    if (length > 4 && strcmp(stem + length - 4, ".rep") == 0) stem[length - 4] = '\0';
    launcher_pid = parent == NULL ? 0 : (pid_t)strtol(parent, NULL, 10);
    if (top_only && getppid() != launcher_pid) {
      --busy;
      return;  // stays kOff: a program the top process started
    }
    run_token[0] = '\0';
    if (run != NULL) append(run_token, sizeof run_token, run);
    choose_trace_path();
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    recording_pid = getpid();
    state = kRecording;
  }
  --busy;
}

static void append_json_string(char* buffer, size_t capacity, const char* text) {
  append(buffer, capacity, "\"");
  for (const unsigned char* c = (const unsigned char*)text; *c != '\0'; ++c) {
    char one[8] = {(char)*c, 0};
    if (*c == '"' || *c == '\\') {
      one[0] = '\\';
      one[1] = (char)*c;
    } else if (*c < 0x20) {
      memcpy(one, "\\u00", 4);
      one[4] = "0123456789abcdef"[*c >> 4];
      one[5] = "0123456789abcdef"[*c & 15];
    }
    append(buffer, capacity, one);
  }
  append(buffer, capacity, "\"");
}

static void json_number(char* buffer, size_t capacity, const char* name, uint64_t value) {
  append(buffer, capacity, ",\n  \"");
  append(buffer, capacity, name);
  append(buffer, capacity, "\": ");
  append_unsigned(buffer, capacity, value);
}

static void write_sidecar(void) {
  static char text[12288];
  static char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  text[0] = '\0';
  append(text, sizeof text, "{\n  \"run\": ");
  append_json_string(text, sizeof text, run_token);
  append(text, sizeof text, ",\n  \"trace\": ");
  append_json_string(text, sizeof text, trace_path);
  append(text, sizeof text, ",\n  \"program\": ");
  append_json_string(text, sizeof text, exe);
  json_number(text, sizeof text, "pid", (uint64_t)getpid());
  json_number(text, sizeof text, "ppid", (uint64_t)getppid());
  json_number(text, sizeof text, "forkedFrom", (uint64_t)forked_from);
  json_number(text, sizeof text, "ops", op_count);
  json_number(text, sizeof text, "ids", next_id);
  json_number(text, sizeof text, "peakLiveBytes", peak_live_bytes);
  json_number(text, sizeof text, "liveBlocksAtExit", table_count);
  json_number(text, sizeof text, "liveBytesAtExit", live_bytes);
  json_number(text, sizeof text, "unknownFrees", unknown_frees);
  json_number(text, sizeof text, "unknownReallocs", unknown_reallocs);
  json_number(text, sizeof text, "unseenFrees", unseen_frees);
  json_number(text, sizeof text, "inheritedBlocks", inherited_blocks);
  json_number(text, sizeof text, "replacedByExec", (uint64_t)replaced_by_exec);
  append(text, sizeof text, "\n}\n");

  char path[4200] = "";
  append(path, sizeof path, trace_path);
  append(path, sizeof path, ".json");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write_all(fd, text, strlen(text)) != 0) say("cannot write ", path, "");
  if (fd >= 0) close(fd);
}

// The header first (peak live, ids, ops, weight 1), then the buffered ops; renamed into place
// when complete so that a reader never sees half a trace.
static void write_trace(void) {
  char part[4200] = "";
  append(part, sizeof part, trace_path);
  append(part, sizeof part, ".part");
  int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    say("cannot create ", part, "");
    return;
  }
  char header[96];
  char* at = header;
  at = format_unsigned(at, peak_live_bytes);
  *at++ = '\n';
  at = format_unsigned(at, next_id);
  *at++ = '\n';
  at = format_unsigned(at, op_count);
  *at++ = '\n';
  *at++ = '1';
  *at++ = '\n';
  int failed = write_all(fd, header, (size_t)(at - header));
  if (ops_fd >= 0 && lseek(ops_fd, 0, SEEK_SET) == 0) {
    for (;;) {
      ssize_t n = read(ops_fd, out, sizeof out);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      failed |= write_all(fd, out, (size_t)n);
    }
  }
  failed |= close(fd);
  if (failed != 0 || rename(part, trace_path) != 0) {
    say("cannot write ", trace_path, "");
    unlink(part);
    return;
  }
  write_sidecar();
}

static void finish(void) {
  if (state == kUninitialized) return;
  pthread_mutex_lock(&lock);
  ++busy;
  if (state == kRecording) {
    state = kOff;  // later calls (other threads, later destructors) pass straight through
    flush_ops();
    if (op_count > 0 && !write_failed) write_trace();
    if (ops_fd >= 0 && ops_file_intact()) close(ops_fd);
    ops_fd = -1;
  }
  --busy;
  pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void recorder_start(void) {
  if (real.malloc == NULL) resolve();
  pthread_mutex_lock(&lock);
  initialize();
  pthread_mutex_unlock(&lock);
}

__attribute__((destructor)) static void recorder_stop(void) { finish(); }

// ---- exec: the image being replaced writes what it recorded ----

// The trace of an image that exec replaces: STEM.PID.exec-K.rep, K the first free number, since
// the next image of the same pid writes the usual name. Removed again if exec fails.
static char exec_trace_path[4200];

static void write_trace_before_exec(void) {
  if (busy || state != kRecording || getpid() != recording_pid) return;  // not in a vfork child
  pthread_mutex_lock(&lock);
  ++busy;
  if (state == kRecording && !top_only) {
    flush_ops();
    if (op_count > 0 && !write_failed) {
      static char usual_path[4096];
      memcpy(usual_path, trace_path, sizeof trace_path);
      for (int k = 1; k < 1000; ++k) {
        trace_path[0] = '\0';
        append(trace_path, sizeof trace_path, stem);
        append(trace_path, sizeof trace_path, ".");
        append_unsigned(trace_path, sizeof trace_path, (uint64_t)getpid());
        append(trace_path, sizeof trace_path, ".exec-");
        append_unsigned(trace_path, sizeof trace_path, (uint64_t)k);
        append(trace_path, sizeof trace_path, ".rep");
        int fd = open(trace_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);  // claims the name
        if (fd < 0) continue;
        close(fd);
        replaced_by_exec = 1;
        write_trace();
        replaced_by_exec = 0;
        exec_trace_path[0] = '\0';
        append(exec_trace_path, sizeof exec_trace_path, trace_path);
        break;
      }
      memcpy(trace_path, usual_path, sizeof trace_path);
    }
  }
  --busy;
  pthread_mutex_unlock(&lock);
}

// exec returned: it failed, this image goes on and will write its whole trace at exit.
static void exec_failed(void) {
  if (exec_trace_path[0] == '\0' || getpid() != recording_pid) return;
  int saved = errno;
  unlink(exec_trace_path);
  append(exec_trace_path, sizeof exec_trace_path, ".json");
  unlink(exec_trace_path);
  exec_trace_path[0] = '\0';
  errno = saved;
}

typedef int (*execve_fn)(const char*, char* const[], char* const[]);
typedef int (*execv_fn)(const char*, char* const[]);
typedef int (*fexecve_fn)(int, char* const[], char* const[]);

#define NEXT(type, name) ((type)dlsym(RTLD_NEXT, name))

EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  write_trace_before_exec();
  int result = NEXT(execve_fn, "execve")(path, argv, envp);
  exec_failed();
  return result;
}

EXPORT int execv(const char* path, char* const argv[]) {
  write_trace_before_exec();
  int result = NEXT(execv_fn, "execv")(path, argv);
  exec_failed();
  return result;
}

EXPORT int execvp(const char* file, char* const argv[]) {
  write_trace_before_exec();
  int result = NEXT(execv_fn, "execvp")(file, argv);
  exec_failed();
  return result;
}

EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  write_trace_before_exec();
  int result = NEXT(execve_fn, "execvpe")(file, argv, envp);
  exec_failed();
  return result;
}

EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
  write_trace_before_exec();
  int result = NEXT(fexecve_fn, "fexecve")(fd, argv, envp);
  exec_failed();
  return result;
}

// The execl family collects its arguments into an argv and goes through the entries above.
#define COLLECT_ARGS(first, list, argv)                             \
  size_t count = 1; /* glibc declares the first argument nonnull */ \
  va_list counting;                                                 \
  va_copy(counting, list);                                          \
  while (va_arg(counting, char*) != NULL) ++count;                  \
  va_end(counting);                                                 \
  char* argv[count + 1];                                            \
  argv[0] = (char*)(first);                                         \
  for (size_t i = 1; i <= count; ++i) argv[i] = va_arg(list, char*);

EXPORT int execl(const char* path, const char* arg, ...) {
  va_list list;
  va_start(list, arg);
  COLLECT_ARGS(arg, list, argv)
  va_end(list);
  return execv(path, argv);
}

EXPORT int execlp(const char* file, const char* arg, ...) {
  va_list list;
  va_start(list, arg);
  COLLECT_ARGS(arg, list, argv)
  va_end(list);
  return execvp(file, argv);
}

EXPORT int execle(const char* path, const char* arg, ...) {
  va_list list;
  va_start(list, arg);
  COLLECT_ARGS(arg, list, argv)
  char* const* envp = va_arg(list, char* const*);
  va_end(list);
  return execve(path, argv, envp);
}

// ---- the interposed functions ----

// Takes the lock when this call is to be recorded; then the caller must call leave().
static int enter(void) {
  if (busy || state == kOff) return 0;
  pthread_mutex_lock(&lock);
  initialize();
  if (state != kRecording) {
    pthread_mutex_unlock(&lock);
    return 0;
  }
  ++busy;
  return 1;
}

static void leave(void) {
  --busy;
  pthread_mutex_unlock(&lock);
}

// Before the real functions are known (only while dlsym runs), requests go to the arena.
#define NEED_REAL(name, bootstrap) \
  do {                             \
    if (real.malloc == NULL) {     \
      if (!busy) resolve();        \
      if (real.name == NULL) {     \
        bootstrap;                 \
      }                            \
    }                              \
  } while (0)

EXPORT void* malloc(size_t size) {
  NEED_REAL(malloc, return arena_alloc(size, 16));
  if (!enter()) return real.malloc(size);
  void* p = real.malloc(size);
  if (p != NULL) record_alloc(p, size);
  leave();
  return p;
}

EXPORT void* calloc(size_t count, size_t size) {
  NEED_REAL(calloc, size_t bytes; return __builtin_mul_overflow(count, size, &bytes) ? NULL : arena_alloc(bytes, 16));
  if (!enter()) return real.calloc(count, size);
  void* p = real.calloc(count, size);
  if (p != NULL) record_alloc(p, (uint64_t)count * size);
  leave();
  return p;
}

EXPORT void free(void* p) {
  if (p == NULL || in_arena(p)) return;  // free(NULL) is dropped; arena blocks stay
  NEED_REAL(free, return);
  if (!enter()) {
    real.free(p);
    return;
  }
  record_free(p);
  real.free(p);
  leave();
}

static void* realloc_from_arena(void* p, size_t size) {
  void* q = malloc(size);
  if (q != NULL) {
    size_t old_size = arena_size(p);
    memcpy(q, p, old_size < size ? old_size : size);
  }
  return q;
}

EXPORT void* realloc(void* p, size_t size) {
  if (p == NULL) return malloc(size);
  if (in_arena(p)) return realloc_from_arena(p, size);
  NEED_REAL(realloc, return NULL);
  if (!enter()) return real.realloc(p, size);
  void* q = real.realloc(p, size);
  record_realloc(p, q, size);
  leave();
  return q;
}

EXPORT void* reallocarray(void* p, size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, bytes);
}

EXPORT int posix_memalign(void** result, size_t alignment, size_t size) {
  NEED_REAL(posix_memalign, *result = arena_alloc(size, alignment); return *result == NULL ? ENOMEM : 0);
  if (!enter()) return real.posix_memalign(result, alignment, size);
  int status = real.posix_memalign(result, alignment, size);
  if (status == 0 && *result != NULL) record_alloc(*result, size);
  leave();
  return status;
}

#define ALIGNED_ENTRY(name)                                     \
  EXPORT void* name(size_t alignment, size_t size) {            \
    NEED_REAL(name, return arena_alloc(size, alignment));       \
    if (!enter()) return real.name(alignment, size);            \
    void* p = real.name(alignment, size);                       \
    if (p != NULL) record_alloc(p, size);                       \
    leave();                                                    \
    return p;                                                   \
  }
ALIGNED_ENTRY(aligned_alloc)
ALIGNED_ENTRY(memalign)

#define PAGE_ENTRY(name)                                        \
  EXPORT void* name(size_t size) {                              \
    NEED_REAL(name, return arena_alloc(size, 4096));            \
    if (!enter()) return real.name(size);                       \
    void* p = real.name(size);                                  \
    if (p != NULL) record_alloc(p, size);                       \
    leave();                                                    \
    return p;                                                   \
  }
PAGE_ENTRY(valloc)
PAGE_ENTRY(pvalloc)
