// The malloc library's cases, one per command-line argument, run by malloc-library.test.ts with
// the library preloaded (and by the sanitizer build with the glue linked in under renamed entry
// points: see malloc_glue_test in CMakeLists.txt). Each case exits 0 when every check holds; a failed
// check prints the line and exits 1. Cases that must die (a bad free in abort mode) print the
// address first so that the driver can check the exact stderr line.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef MA_TEST_PREFIX  // the sanitizer build: the glue's entry points, renamed
void* ma_test_malloc(size_t);
void ma_test_free(void*);
void* ma_test_calloc(size_t, size_t);
void* ma_test_realloc(void*, size_t);
void* ma_test_reallocarray(void*, size_t, size_t);
int ma_test_posix_memalign(void**, size_t, size_t);
void* ma_test_aligned_alloc(size_t, size_t);
void* ma_test_memalign(size_t, size_t);
void* ma_test_valloc(size_t);
void* ma_test_pvalloc(size_t);
size_t ma_test_malloc_usable_size(void*);
#define malloc ma_test_malloc
#define free ma_test_free
#define calloc ma_test_calloc
#define realloc ma_test_realloc
#define reallocarray ma_test_reallocarray
#define posix_memalign ma_test_posix_memalign
#define aligned_alloc ma_test_aligned_alloc
#define memalign ma_test_memalign
#define valloc ma_test_valloc
#define pvalloc ma_test_pvalloc
#define malloc_usable_size ma_test_malloc_usable_size
#endif

static int failures;
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                            \
    }                                                                        \
  } while (0)

static int aligned(const void* p, size_t align) { return ((uintptr_t)p & (align - 1)) == 0; }

// Keeps the compiler from proving a pointer unused and dropping the call (or the overflow).
static void* volatile sink;

static int contract(void) {
  // malloc(0): a unique pointer, freeable.
  void* a = malloc(0);
  void* b = malloc(0);
  CHECK(a != NULL && b != NULL && a != b);
  free(a);
  free(b);
  // 16-byte alignment, usable size at least the request.
  for (size_t n = 1; n < 5000; n = n * 3 + 1) {
    char* p = malloc(n);
    CHECK(p != NULL && aligned(p, 16));
    CHECK(malloc_usable_size(p) >= n);
    memset(p, 0x5a, malloc_usable_size(p));
    free(p);
  }
  CHECK(malloc_usable_size(NULL) == 0);
  // Out of memory and overflow: NULL and ENOMEM.
  errno = 0;
  CHECK(malloc(SIZE_MAX - 8) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(malloc((size_t)1 << 62) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(reallocarray(NULL, SIZE_MAX / 4, 8) == NULL && errno == ENOMEM);
  // posix_memalign: EINVAL for 0, 3, 24 (not powers of two or below sizeof(void*)), and beyond
  // the core's 1 MiB; the result is untouched on failure.
  void* q = (void*)0x1;
  CHECK(posix_memalign(&q, 0, 16) == EINVAL && q == (void*)0x1);
  CHECK(posix_memalign(&q, 3, 16) == EINVAL);
  CHECK(posix_memalign(&q, 24, 16) == EINVAL);
  CHECK(posix_memalign(&q, 4, 16) == EINVAL);  // a power of two, but not a multiple of sizeof(void*)
  CHECK(posix_memalign(&q, (size_t)2 << 20, 16) == EINVAL);
  errno = 0;
  CHECK(posix_memalign(&q, 64, SIZE_MAX - 100) == ENOMEM && errno == 0);
  for (size_t align = 8; align <= ((size_t)1 << 20); align *= 2) {
    void* p = NULL;
    CHECK(posix_memalign(&p, align, 100) == 0 && p != NULL && aligned(p, align));
    free(p);
    p = aligned_alloc(align, align * 2);
    CHECK(p != NULL && aligned(p, align));
    free(p);
    p = memalign(align, 10);
    CHECK(p != NULL && aligned(p, align));
    free(p);
  }
  errno = 0;
  CHECK(aligned_alloc((size_t)2 << 20, 64) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(aligned_alloc(24, 64) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(memalign((size_t)4 << 20, 64) == NULL && errno == EINVAL);
  void* rounded = memalign(48, 10);  // glibc rounds the alignment up to 64
  CHECK(rounded != NULL && aligned(rounded, 64));
  free(rounded);
  void* page = valloc(10);
  CHECK(page != NULL && aligned(page, 4096));
  free(page);
  page = pvalloc(1);
  CHECK(page != NULL && aligned(page, 4096) && malloc_usable_size(page) >= 4096);
  free(page);
  // realloc: NULL is malloc, growth and shrinking keep the bytes, 0 frees and returns NULL.
  unsigned char* r = realloc(NULL, 10);
  CHECK(r != NULL);
  for (int i = 0; i < 10; ++i) r[i] = (unsigned char)i;
  for (size_t n = 20; n < 200000; n *= 3) {
    r = realloc(r, n);
    CHECK(r != NULL && aligned(r, 16));
    for (int i = 0; i < 10; ++i) CHECK(r[i] == i);
    memset(r + 10, 0xee, n - 10);
  }
  r = realloc(r, 5);
  CHECK(r != NULL);
  for (int i = 0; i < 5; ++i) CHECK(r[i] == i);
  errno = 0;
  CHECK(realloc(r, 0) == NULL);
  unsigned char* s = malloc(64);
  errno = 0;
  CHECK(realloc(s, SIZE_MAX - 64) == NULL && errno == ENOMEM);
  CHECK(s[0] == s[0]);  // still the caller's: freeing it must work
  free(s);
  // calloc zeroes reused memory.
  for (int round = 0; round < 50; ++round) {
    unsigned char* dirty = malloc(256);
    memset(dirty, 0xff, 256);
    free(dirty);
    unsigned char* clean = calloc(16, 16);
    CHECK(clean != NULL);
    for (int i = 0; i < 256; ++i) {
      if (clean[i] != 0) {
        CHECK(clean[i] == 0);
        break;
      }
    }
    free(clean);
  }
  CHECK(calloc(0, 10) != NULL);
  return failures;
}

// A write of 16 bytes past the end of every chunk: the user's neighbouring bytes suffer (as with
// any allocator), the allocator's bookkeeping (out of band) does not.
static int overflow(void) {
  enum { kCount = 4000 };
  static char* chunks[kCount];
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kCount; ++i) {
      size_t n = 16 + (size_t)(i % 13) * 16;
      chunks[i] = malloc(n);
      CHECK(chunks[i] != NULL);
    }
    // Not past the highest chunk: it may end at the break, where the next page is unmapped.
    int highest = 0;
    for (int i = 1; i < kCount; ++i) {
      if ((uintptr_t)chunks[i] > (uintptr_t)chunks[highest]) highest = i;
    }
    for (int i = 0; i < kCount; ++i) {
      size_t n = malloc_usable_size(chunks[i]);
      memset(chunks[i], 'x', i == highest ? n : n + 16);
    }
    for (int i = 0; i < kCount; i += 2) free(chunks[i]);
    for (int i = 0; i < kCount; i += 2) chunks[i] = realloc(malloc(24), 300);
    for (int i = 0; i < kCount; ++i) free(chunks[i]);
  }
  char* after = malloc(100);
  memset(after, 1, 100);
  free(after);
  return failures;
}

static void* free_twice(void* p) {
  free(p);
  free(p);
  return NULL;
}

static void bad_free(const char* which) {
  static char* chunk;
  chunk = malloc(48);
  char* other = malloc(64);
  if (strcmp(which, "double") == 0) {
    free(chunk);
    printf("%p\n", (void*)chunk);
    fflush(stdout);
    free(chunk);
  } else if (strcmp(which, "inside") == 0) {
    printf("%p %p\n", (void*)(other + 16), (void*)other);
    fflush(stdout);
    free(other + 16);
  } else if (strcmp(which, "foreign") == 0) {
    static char not_ours[64];
    printf("%p\n", (void*)(not_ours + 16));
    fflush(stdout);
    free(not_ours + 16);
  } else if (strcmp(which, "realloc") == 0) {
    free(chunk);
    printf("%p\n", (void*)chunk);
    fflush(stdout);
    sink = realloc(chunk, 100);
    CHECK(sink == NULL);
  } else if (strcmp(which, "remote") == 0) {
    // Freed twice by another thread: found when the owner takes its queued frees back, at its
    // next call.
    printf("%p\n", (void*)chunk);
    fflush(stdout);
    pthread_t thread;
    pthread_create(&thread, NULL, free_twice, chunk);
    pthread_join(thread, NULL);
  } else if (strcmp(which, "usable") == 0) {
    printf("%p %p\n", (void*)(other + 32), (void*)other);
    fflush(stdout);
    CHECK(malloc_usable_size(other + 32) == 0);
  }
  // Report mode goes on: the heap still works, and the chunks are still the caller's.
  char* after = malloc(32);
  CHECK(after != NULL);
  free(after);
  free(other);
}

// ---- threads

enum { kQueue = 1024 };
static void* queue[kQueue];
static size_t head, tail;
static int producers_done;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;

static void* producer(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int i = 0; i < 20000; ++i) {
    seed = seed * 1103515245u + 12345u;
    size_t n = 8 + (seed >> 16) % 500;
    unsigned char* p = malloc(n);
    p[0] = (unsigned char)n;
    p[n - 1] = (unsigned char)(n >> 1);
    pthread_mutex_lock(&queue_lock);
    while (tail - head == kQueue) pthread_cond_wait(&queue_cond, &queue_lock);
    queue[tail++ % kQueue] = p;
    // Keep some of our own too, freed by us: the owner and the remote frees mix.
    pthread_cond_broadcast(&queue_cond);
    pthread_mutex_unlock(&queue_lock);
    void* own = malloc(n);
    free(own);
  }
  return NULL;
}

static void* consumer(void* arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&queue_lock);
    while (tail == head && !producers_done) pthread_cond_wait(&queue_cond, &queue_lock);
    if (tail == head && producers_done) {
      pthread_mutex_unlock(&queue_lock);
      return NULL;
    }
    unsigned char* p = queue[head++ % kQueue];
    pthread_cond_broadcast(&queue_cond);
    pthread_mutex_unlock(&queue_lock);
    size_t n = malloc_usable_size(p);
    CHECK(n >= 8);
    free(p);
  }
}

static int remote_frees(void) {
  pthread_t producers[3], consumers[2];
  for (int i = 0; i < 3; ++i) pthread_create(&producers[i], NULL, producer, (void*)(uintptr_t)(i + 1));
  for (int i = 0; i < 2; ++i) pthread_create(&consumers[i], NULL, consumer, NULL);
  for (int i = 0; i < 3; ++i) pthread_join(producers[i], NULL);
  pthread_mutex_lock(&queue_lock);
  producers_done = 1;
  pthread_cond_broadcast(&queue_cond);
  pthread_mutex_unlock(&queue_lock);
  for (int i = 0; i < 2; ++i) pthread_join(consumers[i], NULL);
  return failures;
}

// Frees across the main heap and a thread heap both ways while both keep allocating: the fast
// free's "is it mine" (one compare of the address's region) must send each chunk to its owner,
// and reallocs of one's own chunks keep their bytes.
static void* from_main[1000];
static void* from_thread[1000];
static void* cross_thread(void* arg) {
  (void)arg;
  for (int i = 0; i < 1000; ++i) {
    char* p = malloc(24 + (size_t)(i % 200));
    memset(p, 0x5a, 24);
    from_thread[i] = p;
  }
  for (int round = 0; round < 50; ++round) {
    void* own = malloc(64 + (size_t)round);
    memset(own, round, 64);
    own = realloc(own, 4000);
    CHECK(((unsigned char*)own)[63] == (unsigned char)round);
    free(own);
  }
  for (int i = 0; i < 1000; ++i) {
    CHECK(((unsigned char*)from_main[i])[0] == 0xa5);
    free(from_main[i]);
  }
  return NULL;
}

static int cross_frees(void) {
  for (int i = 0; i < 1000; ++i) {
    char* p = malloc(24 + (size_t)(i % 300));
    memset(p, 0xa5, 24);
    from_main[i] = p;
  }
  pthread_t thread;
  pthread_create(&thread, NULL, cross_thread, NULL);
  pthread_join(thread, NULL);
  for (int i = 0; i < 1000; ++i) {
    CHECK(((unsigned char*)from_thread[i])[23] == 0x5a);
    free(from_thread[i]);
    char* mine = realloc(malloc(16), 100 + (size_t)i);
    CHECK(mine != NULL);
    free(mine);
  }
  return failures;
}

// Threads come and go, at most 4 alive at once: their heaps are handed on, so the process ends
// with at most 1 + 4 heaps (the report's "heaps", checked by the driver). Each leaves a chunk
// behind that the main thread frees later (a free into a heap whose thread has exited).
static void* left[200];
static void* churner(void* arg) {
  size_t index = (size_t)(uintptr_t)arg;
  void* keep[64];
  for (int i = 0; i < 64; ++i) keep[i] = malloc(16 + (size_t)i * 8);
  for (int i = 0; i < 64; ++i) free(keep[i]);
  left[index] = malloc(100);
  return NULL;
}

static int churn(void) {
  for (size_t wave = 0; wave < 50; ++wave) {
    pthread_t threads[4];
    for (size_t i = 0; i < 4; ++i) pthread_create(&threads[i], NULL, churner, (void*)(uintptr_t)(wave * 4 + i));
    for (size_t i = 0; i < 4; ++i) pthread_join(threads[i], NULL);
  }
  for (size_t i = 0; i < 200; ++i) {
    CHECK(malloc_usable_size(left[i]) >= 100);
    free(left[i]);
  }
  return failures;
}

static volatile int stop_allocating;
static volatile int started_allocating;
static void* allocate_forever(void* arg) {
  (void)arg;
  void* held[16] = {0};
  for (unsigned i = 0; !stop_allocating; ++i) {
    free(held[i % 16]);
    held[i % 16] = malloc(16 + (i % 4000));
    if (i == 0) __atomic_add_fetch(&started_allocating, 1, __ATOMIC_RELEASE);
  }
  for (int i = 0; i < 16; ++i) free(held[i]);
  return NULL;
}

// fork while other threads allocate (on their heaps and on the main heap): the child must be able
// to allocate, and exits 0. The first fork waits until both threads allocate: a thread that is
// still starting can hold a lock of the sanitizer runtime's own allocator, which clang 14's
// runtime does not take at fork, and the child then hangs in pthread_create (seen in CI).
static int fork_while_allocating(int rounds) {
  pthread_t threads[2];
  for (int i = 0; i < 2; ++i) pthread_create(&threads[i], NULL, allocate_forever, NULL);
  while (__atomic_load_n(&started_allocating, __ATOMIC_ACQUIRE) < 2) sched_yield();
  for (int round = 0; round < rounds; ++round) {
    void* mine = malloc(1000);
    pid_t child = fork();
    if (child == 0) {
      alarm(10);  // a deadlock ends as SIGALRM, not as a hung test
      for (int i = 0; i < 1000; ++i) free(malloc(16 + (size_t)i));
      free(mine);
      pthread_t helper;  // the child can make threads, and they get heaps
      pthread_create(&helper, NULL, (void* (*)(void*))churner, (void*)(uintptr_t)0);
      pthread_join(helper, NULL);
      free(left[0]);
      exit(0);
    }
    free(mine);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      // SIGALRM (14) is a deadlock in the child.
      fprintf(stderr, "fork round %d: the child %s %d\n", round, WIFEXITED(status) ? "exited with" : "died of signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      break;
    }
  }
  stop_allocating = 1;
  for (int i = 0; i < 2; ++i) pthread_join(threads[i], NULL);
  return failures;
}

// The report: a known pattern on the main heap (checked by the driver against the JSON).
static int report(void) {
  void* kept[1000];
  for (int i = 0; i < 1000; ++i) kept[i] = malloc(100);
  for (int i = 0; i < 1000; i += 2) free(kept[i]);
  pthread_t thread;
  pthread_create(&thread, NULL, churner, (void*)(uintptr_t)0);
  pthread_join(thread, NULL);
  return failures;
}

// One break lock in the process: the library exports it, and every copy of the core (the addon's
// in a Node process) finds the same one by name.
static int break_lock(void) {
  typedef pthread_mutex_t* (*LockFn)(void);
  LockFn first = (LockFn)dlsym(RTLD_DEFAULT, "memory_allocator_break_lock");
  CHECK(first != NULL);
  if (first == NULL) return failures;
  pthread_mutex_t* lock = first();
  CHECK(lock != NULL && lock == first());
  // Held by us, it stops the library's break moves: a growth of the main heap waits for it.
  CHECK(pthread_mutex_trylock(lock) == 0);
  pthread_mutex_unlock(lock);
  return failures;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* which = argv[1];
  if (strcmp(which, "contract") == 0) return contract() != 0;
  if (strcmp(which, "overflow") == 0) return overflow() != 0;
  if (strcmp(which, "bad-free") == 0 && argc > 2) {
    bad_free(argv[2]);
    return failures != 0;
  }
  if (strcmp(which, "remote-frees") == 0) return remote_frees() != 0;
  if (strcmp(which, "churn") == 0) return churn() != 0;
  if (strcmp(which, "cross-frees") == 0) return cross_frees() != 0;
  if (strcmp(which, "fork") == 0) return fork_while_allocating(argc > 2 ? atoi(argv[2]) : 20) != 0;
  if (strcmp(which, "report") == 0) return report() != 0;
  if (strcmp(which, "break-lock") == 0) return break_lock() != 0;
  return 2;
}
