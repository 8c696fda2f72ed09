/**
 * Address-indexed lookups: free, sizeOf and realloc find a chunk from its address through the
 * core's boundary bitmaps and page map (native/core/boundary_map.h, free_table.h). Anything but
 * a chunk's start is ERR_INVALID_POINTER, a free chunk's start (deferred or merged) is
 * ERR_DOUBLE_FREE, and no failed lookup changes chunks() or stats(). The interior offsets cross
 * the structures' own boundaries: the next granule, the end of a 64-granule bitmap word and page,
 * a summary word (4096 granules), a chunk's last granule.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Heap } from '../../lib/index'
import { closeHeaps, lowEndHeap, deferredBelowGranules, type Layout, coreChunks, expectFailureLeavesHeap, layout, skipUnlessBreakCanRise, testing } from './helpers'

afterEach(closeHeaps)

const LARGE_GRANULES = 5000

function expectNotAChunk(heap: Heap, address: number, why: string): void {
  for (const [name, run] of [
    ['free', () => heap.raw.free(address)],
    ['realloc', () => heap.raw.realloc(address, 16)],
    ['sizeOf', () => heap.raw.sizeOf(address)],
  ] as const) {
    const error = expectFailureLeavesHeap(heap, run, 'ERR_INVALID_POINTER')
    expect(error.message, `${name} of ${why}`).toContain(address.toString(16))
  }
}

function expectFreedAlready(heap: Heap, address: number): void {
  expectFailureLeavesHeap(heap, () => heap.raw.free(address), 'ERR_DOUBLE_FREE')
  expectFailureLeavesHeap(heap, () => heap.raw.realloc(address, 16), 'ERR_DOUBLE_FREE')
  expectFailureLeavesHeap(heap, () => heap.raw.sizeOf(address), 'ERR_DOUBLE_FREE')
}

describe('addresses that are not a chunk start', () => {
  for (const granule of [8, 16, 4096]) {
    it(`alignment ${granule}: interiors, misaligned addresses and the space past the top`, () => {
      const g = granule
      const heap = lowEndHeap({ source: 'mmap', alignment: g, growth: 0, trimThreshold: Infinity })
      const small = heap.raw.alloc(3 * g)
      const deferred = heap.raw.alloc(5 * g)
      const large = heap.raw.alloc(LARGE_GRANULES * g)
      const freed = heap.raw.alloc(100 * g)
      const last = heap.raw.alloc(g)
      const atTop = heap.raw.alloc(g)
      // Best fit defers chunks below 1024 bytes: with 4096-byte granules, none.
      const defers = deferredBelowGranules(g) > 5
      heap.raw.free(deferred) // 5 granules: best fit defers it (when 5 granules are below 1024 bytes)
      heap.raw.free(freed) // 100 granules: merged at once (its neighbours are live)
      heap.raw.free(atTop) // deferred at the top (growth 0 leaves no wilderness above it), or merged into it
      expect(layout(heap, small)).toEqual([
        [0, 3 * g, 'live'],
        [3 * g, 5 * g, defers ? 'deferred' : 'free'],
        [8 * g, LARGE_GRANULES * g, 'live'],
        [(8 + LARGE_GRANULES) * g, 100 * g, 'free'],
        [(108 + LARGE_GRANULES) * g, g, 'live'],
        ...(defers ? ([[(109 + LARGE_GRANULES) * g, g, 'deferred']] as Layout) : []),
      ])
      expect(heap.stats().topBytes).toBe(defers ? 0 : g)
      heap.check()
      const stats = heap.stats()
      const chunks = coreChunks(heap)

      const misaligned = [1, g / 2, g - 1].filter((offset) => offset > 0 && offset < g)
      for (const chunk of chunks) {
        for (const offset of misaligned) expectNotAChunk(heap, chunk.address + offset, `${chunk.address} + ${offset}`)
        expectNotAChunk(heap, chunk.address - 1, `${chunk.address} - 1`)
        if (chunk.size > g) {
          expectNotAChunk(heap, chunk.address + g, `the second granule of ${chunk.address}`)
          expectNotAChunk(heap, chunk.address + chunk.size - g, `the last granule of ${chunk.address}`)
        }
      }
      // Across the bitmap's words and pages and its first summary level.
      for (const granules of [63, 64, 65, 127, 128, 4095, 4096, 4097, LARGE_GRANULES - 1]) {
        expectNotAChunk(heap, large + granules * g, `granule ${granules} of the large chunk`)
      }
      for (const granules of [63, 64, 99]) expectNotAChunk(heap, freed + granules * g, `granule ${granules} of the free chunk`)
      // Below, at and past the top, and in the reservation beyond it.
      for (const address of [stats.heapStart - g, stats.heapStart - 4096, stats.heapEnd, stats.heapEnd + g, stats.heapEnd + (1 << 20), 0, g]) {
        expectNotAChunk(heap, address, `0x${address.toString(16)} outside the heap`)
      }

      // Free chunks' starts, deferred or merged, were freed already.
      for (const address of [deferred, freed, ...(defers ? [atTop] : [])]) expectFreedAlready(heap, address)
      if (!defers) expectNotAChunk(heap, atTop, 'a chunk merged into the wilderness')
      // And the live ones are found, with their sizes.
      expect([small, large, last].map((address) => heap.raw.sizeOf(address))).toEqual([3 * g, LARGE_GRANULES * g, g])
      expect(heap.raw.realloc(small, 2 * g)).toBe(small)
      heap.check()
    })
  }

  it('past the top with a wilderness: its start and interior are no chunk', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 65536, trimThreshold: Infinity })
    const a = heap.raw.alloc(100)
    const stats = heap.stats()
    const top = stats.heapEnd - stats.topBytes
    expect(top).toBe(a + 112)
    for (const address of [top, top + 16, top + 1024, stats.heapEnd - 16, stats.heapEnd]) expectNotAChunk(heap, address, 'the wilderness')
    heap.check()
  })
})

describe('addresses between segments', () => {
  it('foreign memory between two segments, and the old segment free tail, are no chunk start', (ctx) => {
    skipUnlessBreakCanRise(ctx, 4 << 20)
    const { currentBreak, moveBreak } = testing()
    const G = 65536
    const heap = lowEndHeap({ source: 'brk', growth: G, trimThreshold: Infinity })
    // A foreign move that is not a multiple of the granule: the new segment's start needs a pad.
    const FOREIGN = G + 8
    let foreign: { start: number; end: number } | undefined
    try {
      const a = heap.raw.alloc(1000)
      const firstEnd = heap.stats().heapEnd
      const start = moveBreak(FOREIGN)
      foreign = { start, end: start + FOREIGN }
      const b = heap.raw.alloc(2 * G) // does not fit the wilderness: a new segment
      expect(b).toBeGreaterThanOrEqual(foreign.end)
      expect(b % 16).toBe(0)
      const stats = heap.stats()
      expect(stats.segments).toBeGreaterThanOrEqual(2)
      heap.check()
      // The old wilderness became a free chunk up to the old segment's end.
      const tail = coreChunks(heap).find((c) => c.address === a + 1008)
      expect(tail).toMatchObject({ state: 'free', size: firstEnd - (a + 1008) })
      expectFreedAlready(heap, a + 1008)
      // The old segment's interior and end, the foreign memory, and the new segment's pad.
      for (const address of [a + 1024, firstEnd - 16, firstEnd, foreign.start, foreign.start + 16, foreign.start + G / 2, foreign.end - 8, b - 8, b - 16]) {
        expectNotAChunk(heap, address, `0x${address.toString(16)} between the segments`)
      }
      expect(heap.raw.sizeOf(b)).toBe(2 * G)
      expect(heap.raw.sizeOf(a)).toBe(1008)
      heap.check()
    } finally {
      heap.close()
      if (foreign !== undefined && currentBreak() === foreign.end) moveBreak(-FOREIGN)
    }
  })
})
