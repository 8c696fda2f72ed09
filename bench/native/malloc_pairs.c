/* malloc/free pairs for counting the malloc library's instructions under callgrind: run it with
 * two counts and divide the difference by the difference of pairs, so that start-up (loader,
 * library set-up, the first heap growth) cancels out. bench/malloc-glue.sh runs it.
 * Usage: malloc_pairs PAIRS [threads]. A ring of 64 live blocks of 8..519 bytes: each step frees
 * the oldest and allocates a new one, so the heap stays small and the core works on reused
 * chunks, as most programs' steady state does. With `threads` > 1 each thread runs its own ring
 * (PAIRS each). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static long pairs;

static void* Ring(void* arg) {
  void* ring[64] = {0};
  unsigned size = 8;
  size_t sum = 0;
  for (long i = 0; i < pairs; ++i) {
    free(ring[i & 63]);
    size = size * 1103515245u + 12345u;
    char* p = malloc(8 + ((size >> 16) & 511));
    p[0] = (char)i;
    sum += (size_t)p[0];
    ring[i & 63] = p;
  }
  for (int i = 0; i < 64; ++i) free(ring[i]);
  return (void*)sum;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: malloc_pairs PAIRS [threads]\n");
    return 2;
  }
  pairs = atol(argv[1]);
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (threads <= 1) {
    Ring(NULL);
    return 0;
  }
  pthread_t ids[64];
  if (threads > 64) threads = 64;
  for (int t = 0; t < threads; ++t) pthread_create(&ids[t], NULL, Ring, NULL);
  for (int t = 0; t < threads; ++t) pthread_join(ids[t], NULL);
  return 0;
}
