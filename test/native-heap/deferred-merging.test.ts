/**
 * Deferred merging (README, "Deferred merging"; native/core/heap.h): best fit keeps a freed
 * chunk of fewer than 64 granules (and 1024 bytes) unmerged, at most DEFERRED_PER_SIZE of one size and DEFERRED_TOTAL in all
 * (fewer on a small heap: deferredTotal(heapBytes)), and merges
 * every deferred chunk before the heap grows or fails for lack of a fitting chunk, and on trim()
 * and reset(). Pinned here through the public API only: chunks() (`deferred: true`),
 * stats().deferredChunks, addresses and break moves. check() runs after every step.
 *
 * mmap heaps, 16-byte granules: a chunk of fewer than 64 granules is one under 1024 bytes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Heap, HeapOptions } from '../../lib/index'
import { closeHeaps, lowEndHeap, DEFERRED_PER_SIZE, DEFERRED_TOTAL, DEFERRED_LEAST, HEAP_BYTES_PER_DEFERRED, deferredTotal, coreChunks, coreStats, expectError, expectOutOfMemorySettlesHeap, layout, prng, type StrategyName } from './helpers'

afterEach(closeHeaps)

const SEP = 16
// 8 MiB: a heap this large may defer DEFERRED_TOTAL chunks (deferredTotal(8 MiB) = 4096).
const GROWTH = 8 << 20

function heapWith(options: HeapOptions = {}): Heap {
  return lowEndHeap({ source: 'mmap', growth: GROWTH, trimThreshold: Infinity, ...options })
}

/** `count` chunks of `size` bytes, each followed by a live separator that keeps it from merging. */
function row(heap: Heap, size: number, count: number): number[] {
  return Array.from({ length: count }, () => {
    const address = heap.raw.alloc(size)
    heap.raw.alloc(SEP)
    return address
  })
}

function freeAll(heap: Heap, addresses: number[]): void {
  for (const address of addresses) {
    heap.raw.free(address)
    heap.check()
  }
}

function deferredAt(heap: Heap): Set<number> {
  return new Set(coreChunks(heap).filter((c) => c.deferred === true).map((c) => c.address))
}

describe('the bounds of deferral', () => {
  it('per size: the 33rd free of one small size is merged, not deferred', () => {
    const heap = heapWith()
    const y = heap.raw.alloc(48)
    const x = heap.raw.alloc(32)
    heap.raw.alloc(SEP)
    const chunks = row(heap, 32, DEFERRED_PER_SIZE)
    heap.raw.free(y) // 3 granules: a size of its own
    freeAll(heap, chunks)
    expect(coreStats(heap)).toMatchObject({ deferredChunks: DEFERRED_PER_SIZE + 1, freeChunks: DEFERRED_PER_SIZE + 1 })
    expect(deferredAt(heap)).toEqual(new Set([y, ...chunks]))

    // The bound for 32-byte chunks is reached: x is merged at once, and takes y along.
    heap.raw.free(x)
    heap.check()
    expect(layout(heap, y).slice(0, 2)).toEqual([
      [0, 80, 'free'],
      [80, SEP, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: DEFERRED_PER_SIZE, freeChunks: DEFERRED_PER_SIZE + 1 })
    expect(deferredAt(heap)).toEqual(new Set(chunks))
    expectError(() => heap.raw.free(x), 'ERR_INVALID_POINTER') // merged into y's chunk

    // Another size is not bounded by this one's count.
    const other = heap.raw.alloc(64)
    heap.raw.alloc(SEP)
    heap.raw.free(other)
    expect(deferredAt(heap).has(other)).toBe(true)

    // Reusing a deferred 32 makes room: the next free of that size is deferred again.
    const reused = heap.raw.alloc(32)
    expect(reused).toBe(chunks[chunks.length - 1]) // LIFO, and an exact fit before the 80
    expect(coreStats(heap).deferredChunks).toBe(DEFERRED_PER_SIZE) // all but one of 32 bytes, and `other`
    heap.raw.free(reused)
    expect(deferredAt(heap).has(reused)).toBe(true)
    expect(coreStats(heap).deferredChunks).toBe(DEFERRED_PER_SIZE + 1)
    heap.check()
  })

  it('in total: the 513th deferrable free is merged, not deferred', () => {
    const heap = heapWith()
    // DEFERRED_TOTAL / DEFERRED_PER_SIZE sizes of DEFERRED_PER_SIZE chunks each: DEFERRED_TOTAL
    // deferred chunks, no size over its bound.
    const sizes = Array.from({ length: DEFERRED_TOTAL / DEFERRED_PER_SIZE }, (_, i) => (i + 1) * 16)
    const rows = sizes.map((size) => row(heap, size, DEFERRED_PER_SIZE))
    const extra = row(heap, 17 * 16, 2)
    for (const chunks of rows) for (const address of chunks) heap.raw.free(address)
    heap.check()
    expect(coreStats(heap)).toMatchObject({ deferredChunks: DEFERRED_TOTAL, freeChunks: DEFERRED_TOTAL })
    expect(deferredAt(heap).size).toBe(DEFERRED_TOTAL)

    // A size with no deferred chunk yet, but the total is reached.
    heap.raw.free(extra[0])
    heap.check()
    expect(coreStats(heap)).toMatchObject({ deferredChunks: DEFERRED_TOTAL, freeChunks: DEFERRED_TOTAL + 1 })
    expect(coreChunks(heap).find((c) => c.address === extra[0])).toEqual({ address: extra[0], size: 17 * 16, state: 'free' })

    // One deferred chunk reused: the total has room for one more.
    expect(heap.raw.alloc(16)).toBe(rows[0][DEFERRED_PER_SIZE - 1])
    heap.raw.free(extra[1])
    heap.check()
    expect(deferredAt(heap).has(extra[1])).toBe(true)
    expect(coreStats(heap).deferredChunks).toBe(DEFERRED_TOTAL)
  })

  it('in total on a small heap: one deferred chunk per HEAP_BYTES_PER_DEFERRED bytes of the heap, DEFERRED_LEAST at least', () => {
    for (const growth of [64 << 10, 1 << 20, 4 << 20]) {
      const heap = heapWith({ growth })
      const heapBytes = growth
      const bound = deferredTotal(heapBytes)
      expect(bound).toBe(Math.max(DEFERRED_LEAST, heapBytes / HEAP_BYTES_PER_DEFERRED)) // 1024, 1024 and 2048
      // Four sizes in turn, so that no size reaches its own bound first.
      const chunks = Array.from({ length: bound + 1 }, (_, i) => row(heap, 16 * (1 + (i % 4)), 1)[0])
      expect(coreStats(heap).heapBytes).toBe(heapBytes)
      freeAll(heap, chunks)
      // The last free found the bound reached: it merged (with nothing: a separator on each side).
      expect(coreStats(heap)).toMatchObject({ deferredChunks: bound, freeChunks: bound + 1, heapBytes })
      expect(deferredAt(heap).has(chunks[bound])).toBe(false)
      expect(deferredAt(heap).has(chunks[bound - 1])).toBe(true)
    }
  })

  it('a chunk of 64 granules or more is never deferred', () => {
    const heap = heapWith()
    const [below, at] = [heap.raw.alloc(1008), heap.raw.alloc(SEP), heap.raw.alloc(1024), heap.raw.alloc(SEP)].filter((_, i) => i % 2 === 0)
    heap.raw.free(below)
    heap.raw.free(at)
    heap.check()
    expect(deferredAt(heap)).toEqual(new Set([below]))
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 1, freeChunks: 2 })
  })
})

describe('when deferred chunks are merged', () => {
  it('before the heap grows: a deferred chunk at the top joins the wilderness, and the break moves only by the rest', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, trimThreshold: Infinity })
    const s = heap.raw.alloc(SEP)
    const d = heap.raw.alloc(32)
    heap.raw.free(d)
    expect(layout(heap, s)).toEqual([
      [0, SEP, 'live'],
      [SEP, 32, 'deferred'],
    ])
    expect(coreStats(heap)).toMatchObject({ heapBytes: 48, topBytes: 0, brkCalls: 2 })
    heap.check()
    // 64 bytes: nothing fits, so d is merged into the wilderness first; the heap grows by 32.
    const e = heap.raw.alloc(64)
    expect(e).toBe(d)
    expect(layout(heap, s)).toEqual([
      [0, SEP, 'live'],
      [SEP, 64, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ heapBytes: 80, topBytes: 0, brkCalls: 3, deferredChunks: 0, freeChunks: 0 })
    heap.check()
  })

  it('before the heap grows: adjacent deferred chunks are merged into the free chunk a request fits, and the heap does not grow', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, trimThreshold: Infinity })
    const [a, b, c] = [heap.raw.alloc(32), heap.raw.alloc(32), heap.raw.alloc(32)]
    heap.raw.alloc(SEP)
    freeAll(heap, [a, c, b])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 3, freeChunks: 3, largestFreeChunk: 32, heapBytes: 112 })
    const before = coreStats(heap)
    expect(heap.raw.alloc(96)).toBe(a)
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 0, heapBytes: 112, brkCalls: before.brkCalls })
    heap.check()
  })

  it('before the heap grows: chunks that stay apart are merged (undeferred) all the same', () => {
    const heap = heapWith()
    const chunks = row(heap, 48, 4)
    freeAll(heap, chunks)
    const start = coreStats(heap).heapStart
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 4, heapBytes: GROWTH })
    const big = heap.raw.alloc(2 * GROWTH)
    expect(big).toBe(start + 4 * (48 + SEP))
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 4 })
    expect(coreStats(heap).heapBytes).toBeGreaterThan(GROWTH)
    expect(deferredAt(heap).size).toBe(0)
    heap.check()
  })

  it('before failing for lack of a fitting chunk: ERR_OUT_OF_MEMORY leaves the heap merged and otherwise unchanged', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, trimThreshold: Infinity, maxHeapBytes: 4096 })
    const [p, q, s] = [heap.raw.alloc(32), heap.raw.alloc(32), heap.raw.alloc(SEP)]
    heap.raw.alloc(4096 - 112)
    const r = heap.raw.alloc(32)
    freeAll(heap, [p, q, r])
    expect(coreStats(heap)).toMatchObject({ heapBytes: 4096, topBytes: 0, deferredChunks: 3, freeChunks: 3 })
    // 200 bytes fit nowhere, even merged, and the cap forbids growth.
    expectOutOfMemorySettlesHeap(heap, () => heap.raw.alloc(200))
    expect(layout(heap, p)).toEqual([
      [0, 64, 'free'],
      [64, SEP, 'live'],
      [80, 4096 - 112, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ heapBytes: 4096, topBytes: 32, deferredChunks: 0, freeChunks: 1 })
    // What fits the merged space still works, without growing.
    expect(heap.raw.alloc(64)).toBe(p)
    expect(heap.raw.alloc(32)).toBe(r)
    expect(coreStats(heap)).toMatchObject({ heapBytes: 4096, topBytes: 0, freeChunks: 0 })
    expect(s).toBe(p + 64)
    heap.check()
  })

  it('on trim(): every deferred chunk is merged, and those that border the top are given back', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 65536, trimThreshold: Infinity })
    const [a, b, s, c, d] = [32, 32, SEP, 32, 32].map((size) => heap.raw.alloc(size))
    freeAll(heap, [a, b, c, d])
    expect(layout(heap, a)).toEqual([
      [0, 32, 'deferred'],
      [32, 32, 'deferred'],
      [64, SEP, 'live'],
      [80, 32, 'deferred'],
      [112, 32, 'deferred'],
    ])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 4, topBytes: 65536 - 144 })
    expect(heap.trim()).toBe(65536 - 80)
    expect(layout(heap, a)).toEqual([
      [0, 64, 'free'],
      [64, SEP, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 1, topBytes: 0, heapBytes: 80 })
    expect(s).toBe(a + 64)
    heap.check()
  })

  it('on reset(): nothing is deferred any more, and the bounds count from zero again', () => {
    const heap = heapWith()
    const first = row(heap, 32, DEFERRED_PER_SIZE)
    freeAll(heap, first)
    expect(coreStats(heap).deferredChunks).toBe(DEFERRED_PER_SIZE)
    heap.reset()
    expect(heap.chunks()).toEqual([])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 0, heapBytes: 0 })
    heap.check()
    for (const address of first) expectError(() => heap.raw.free(address), 'ERR_INVALID_POINTER')
    // Had reset() kept the old count, none of these would be deferred.
    const again = row(heap, 32, DEFERRED_PER_SIZE + 1)
    freeAll(heap, again)
    expect(coreStats(heap).deferredChunks).toBe(DEFERRED_PER_SIZE)
    expect(deferredAt(heap)).toEqual(new Set(again.slice(0, DEFERRED_PER_SIZE)))
  })
})

describe('reuse', () => {
  it('a deferred chunk is handed out again LIFO by the next request of its size, whole', () => {
    const heap = heapWith()
    const chunks = row(heap, 80, 3)
    freeAll(heap, chunks)
    const before = coreStats(heap)
    const picks = [heap.raw.alloc(80), heap.raw.alloc(65), heap.raw.alloc(80)]
    heap.check()
    expect(picks).toEqual([chunks[2], chunks[1], chunks[0]])
    for (const address of picks) expect(heap.raw.sizeOf(address)).toBe(80)
    // Exact fits: no split, no merge, no growth; one search step each.
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 0, heapBytes: before.heapBytes, topBytes: before.topBytes })
    expect(coreStats(heap).searchSteps - before.searchSteps).toBe(3)
  })

  it('a deferred chunk split for a smaller request leaves a remainder merged with its free neighbours', () => {
    const heap = heapWith()
    const [x, c] = [heap.raw.alloc(48), heap.raw.alloc(64)]
    heap.raw.alloc(SEP)
    freeAll(heap, [c, x]) // both deferred, side by side
    expect(layout(heap, x).slice(0, 2)).toEqual([
      [0, 48, 'deferred'],
      [48, 64, 'deferred'],
    ])
    // The smallest that fits is x's 48 bytes; what is left of it joins c at once.
    expect(heap.raw.alloc(16)).toBe(x)
    heap.check()
    expect(layout(heap, x)).toEqual([
      [0, 16, 'live'],
      [16, 32 + 64, 'free'],
      [112, SEP, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 1 })
    expectError(() => heap.raw.free(c), 'ERR_INVALID_POINTER')
  })
})

describe('only best fit with merging on defers', () => {
  const never: Array<[string, HeapOptions]> = [
    ...(['best-fit-linear', 'first-fit', 'next-fit', 'worst-fit'] as StrategyName[]).map((strategy): [string, HeapOptions] => [strategy, { strategy }]),
    ['best-fit, coalesce: false', { strategy: 'best-fit', coalesce: false }],
  ]
  for (const [name, options] of never) {
    it(`${name}: small frees are never deferred`, () => {
      const heap = heapWith(options)
      const [a, b] = [heap.raw.alloc(32), heap.raw.alloc(32)]
      heap.raw.alloc(SEP)
      freeAll(heap, [a, b])
      expect(coreStats(heap).deferredChunks).toBe(0)
      expect(deferredAt(heap).size).toBe(0)
      expect(layout(heap, a).slice(0, 2)).toEqual(
        options.coalesce === false
          ? [
              [0, 32, 'free'],
              [32, 32, 'free'],
            ]
          : [
              [0, 64, 'free'],
              [64, SEP, 'live'],
            ],
      )
    })
  }
})

describe('randomized phases of bulk allocation and bulk freeing', () => {
  // Runs of many small frees drive deferral to its total bound, which the mixed randomized runs
  // (randomized.test.ts) seldom reach; with a cap, failures must merge and change nothing else.
  const runs: Array<[string, HeapOptions, number]> = [
    ['best-fit', {}, 1],
    ['best-fit, alignment 8, growth 0', { alignment: 8, growth: 0 }, 2],
    ['best-fit, maxHeapBytes 512 KiB', { maxHeapBytes: 512 << 10 }, 3],
  ]
  for (const [name, options, seed] of runs) {
    it(`${name} (seed ${seed})`, () => {
      const heap = lowEndHeap({ source: 'mmap', ...options })
      const granule = options.alignment ?? 16
      const random = prng(seed * 104729)
      const live = new Map<number, number>() // address -> usable size
      let maxDeferred = 0
      let reachedBound = false
      let outOfMemory = 0
      const checkpoint = () => {
        heap.check()
        const stats = coreStats(heap)
        maxDeferred = Math.max(maxDeferred, stats.deferredChunks)
        const listed = coreChunks(heap).filter((c) => c.state === 'live')
        expect(listed.length).toBe(live.size)
        for (const chunk of listed) expect(live.get(chunk.address), `live chunk 0x${chunk.address.toString(16)}`).toBe(chunk.size)
      }
      const attempt = (run: () => number): number | undefined => {
        const before = coreStats(heap)
        try {
          return run()
        } catch (error) {
          expect((error as { code?: string }).code).toBe('ERR_OUT_OF_MEMORY')
          const after = coreStats(heap)
          expect(after).toMatchObject({ ...before, freeChunks: after.freeChunks, freeBytes: after.freeBytes, largestFreeChunk: after.largestFreeChunk, topBytes: after.topBytes, deferredChunks: 0 })
          expect(after.freeBytes + after.topBytes).toBe(before.freeBytes + before.topBytes)
          outOfMemory++
          return undefined
        }
      }
      const take = (address: number | undefined) => {
        if (address === undefined) return
        expect(live.has(address), `0x${address.toString(16)} handed out while live`).toBe(false)
        live.set(address, heap.raw.sizeOf(address))
      }
      for (let phase = 0; phase < 6; phase++) {
        // Enough live chunks that freeing 90% of them can reach the total bound (uncapped heaps).
        const count = (options.maxHeapBytes === undefined ? Math.ceil(DEFERRED_TOTAL * 1.25) : 1000) + Math.floor(random() * 1500)
        for (let i = 0; i < count; i++) {
          const size = random() < 0.95 ? 1 + Math.floor(random() * 63 * granule) : Math.floor(random() * 300 * granule)
          take(attempt(() => heap.raw.alloc(size)))
          if (i % 2500 === 0) checkpoint()
        }
        const addresses = [...live.keys()]
        for (let i = addresses.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1))
          ;[addresses[i], addresses[j]] = [addresses[j], addresses[i]]
        }
        for (const address of addresses.slice(Math.floor(addresses.length / 10))) {
          heap.raw.free(address)
          live.delete(address)
          const stats = coreStats(heap)
          maxDeferred = Math.max(maxDeferred, stats.deferredChunks)
          // Never past the bound of the largest the heap has been; exactly at the bound of its size now.
          expect(stats.deferredChunks).toBeLessThanOrEqual(deferredTotal(stats.peakHeapBytes))
          if (stats.deferredChunks === deferredTotal(stats.heapBytes)) reachedBound = true
        }
        checkpoint()
        for (const address of [...live.keys()]) {
          const moved = attempt(() => heap.raw.realloc(address, Math.floor(random() * 80 * granule)))
          if (moved === undefined) continue
          live.delete(address)
          take(moved)
        }
        checkpoint()
        if (phase === 3) {
          heap.trim()
          expect(coreStats(heap).deferredChunks).toBe(0)
          checkpoint()
        }
      }
      // A capped heap holds too few small chunks to reach the total bound; it must still defer.
      if (options.maxHeapBytes === undefined) expect(reachedBound).toBe(true)
      else expect(maxDeferred).toBeGreaterThan(0)
      if (options.maxHeapBytes !== undefined) expect(outOfMemory).toBeGreaterThan(0)
    })
  }
})
