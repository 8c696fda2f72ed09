/**
 * Run by out-of-memory.test.ts under `prlimit --data=...`: allocates `chunkBytes` chunks from a
 * heap on `source` until ERR_OUT_OF_MEMORY, then checks that the heap is consistent and works
 * again after frees. Prints one JSON line; exits non-zero on any other failure. It requires the
 * built package (dist/), as a user's program would.
 *   prlimit --data=BYTES node --single-threaded out-of-memory-child.cjs <brk|mmap> <chunkBytes>
 */
'use strict'
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { createHeap } = require(join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'))

const [source, chunkText] = process.argv.slice(2)
const chunkBytes = Number(chunkText)

function dataLimitAndUse() {
  const limit = /Max data size\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'))[1]
  const used = Number(/VmData:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024
  return { limit: limit === 'unlimited' ? Infinity : Number(limit), used }
}

const { limit, used } = dataLimitAndUse()
// Room for every chunk the limit could allow, reserved before the limit is near: the loop below
// must allocate nothing on the JS heap.
const addresses = new Float64Array(Math.ceil((limit - used) / chunkBytes) + 16)
// trimThreshold Infinity: the freed half stays with the heap, so "works again" depends on the heap
// alone and not on whether other code took the memory back from the OS in the meantime.
const heap = createHeap({ source, trackLeaks: false, trimThreshold: Infinity })
let count = 0
let refusal
for (;;) {
  try {
    addresses[count] = heap.raw.alloc(chunkBytes)
    count++
  } catch (error) {
    refusal = error
    break
  }
}
// Give memory back first, so that what follows has room to run.
const kept = Math.floor(count / 2)
for (let i = kept; i < count; i++) heap.raw.free(addresses[i])
const statsAfterRefusal = heap.stats()
heap.check()
// Works again: the freed half can be allocated once more, then everything is freed.
let again = 0
let againRefusal = null
for (let i = kept; i < count; i++) {
  try {
    addresses[i] = heap.raw.alloc(chunkBytes)
    again++
  } catch (error) {
    againRefusal = `${error.code ?? error.name}: ${error.message}`
    count = i
    break
  }
}
heap.check()
for (let i = 0; i < count; i++) heap.raw.free(addresses[i])
heap.check()
const end = heap.stats()
heap.close()
process.stdout.write(
  JSON.stringify({
    source: heap.source,
    limit,
    usedAtStart: used,
    chunks: count,
    refusal: { code: refusal.code ?? null, name: refusal.name, message: refusal.message },
    heapBytesAtRefusal: statsAfterRefusal.peakHeapBytes,
    metadataBytes: statsAfterRefusal.metadataBytes,
    reallocatedAfterFrees: again,
    refusalAfterFrees: againRefusal,
    liveChunksAtEnd: end.liveChunks,
  }) + '\n',
)
