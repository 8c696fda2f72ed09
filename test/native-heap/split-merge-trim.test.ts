/**
 * Splitting free chunks, merging freed chunks with their neighbours and with the top, giving the
 * top back to the memory source (by itself above trimThreshold, and on trim()), and reset().
 *
 * mmap heaps: their addresses and break moves are deterministic, and nothing else moves their end.
 * Every step is checked against the exact chunk list and the exact figures of stats().
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { HeapOptions } from '../../lib/index'
import { closeHeaps, lowEndHeap, coreStats, expectError, layout, MiB } from './helpers'

afterEach(closeHeaps)

const KiB = 1024
const GROWTH = 64 * KiB

function heapWith(options: HeapOptions = {}) {
  return lowEndHeap({ source: 'mmap', growth: GROWTH, trimThreshold: Infinity, ...options })
}

describe('split', () => {
  it('a larger free chunk is split: the allocation takes the front, the rest stays in the table', () => {
    const heap = heapWith()
    const a = heap.raw.alloc(256)
    heap.raw.alloc(16)
    heap.raw.free(a)
    expect(layout(heap, a)).toEqual([
      [0, 256, 'deferred'], // best fit keeps a small freed chunk unmerged
      [256, 16, 'live'],
    ])
    expect(heap.raw.alloc(64)).toBe(a)
    expect(heap.raw.sizeOf(a)).toBe(64)
    expect(layout(heap, a)).toEqual([
      [0, 64, 'live'],
      [64, 192, 'free'],
      [256, 16, 'live'],
    ])
    expect(heap.stats()).toMatchObject({
      liveBytes: 80,
      liveChunks: 2,
      freeBytes: 192,
      freeChunks: 1,
      largestFreeChunk: 192,
      topBytes: GROWTH - 272,
      heapBytes: GROWTH,
      allocs: 3,
      frees: 1,
    })
    // The remainder is a chunk like any other: an exact fit for the next request of its size.
    expect(heap.raw.alloc(192)).toBe(a + 64)
    expect(heap.stats()).toMatchObject({ freeBytes: 0, freeChunks: 0, largestFreeChunk: 0, liveBytes: 272 })
    heap.check()
  })

  it('split: false hands out the whole free chunk, and sizeOf shows it', () => {
    const heap = heapWith({ split: false })
    const a = heap.raw.alloc(256)
    heap.raw.alloc(16)
    heap.raw.free(a)
    expect(heap.raw.alloc(64)).toBe(a)
    expect(heap.raw.sizeOf(a)).toBe(256)
    expect(layout(heap, a)).toEqual([
      [0, 256, 'live'],
      [256, 16, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ liveBytes: 272, freeBytes: 0, freeChunks: 0 })
    // The top is not a free chunk: carving it is exact even without splitting.
    const b = heap.raw.alloc(100)
    expect(b).toBe(a + 272)
    expect(heap.raw.sizeOf(b)).toBe(112)
    heap.check()
  })

  it('usable sizes are the request rounded up to the alignment; size 0 is one granule', () => {
    for (const alignment of [8, 16, 64, 4096]) {
      const heap = heapWith({ alignment })
      for (const request of [0, 1, alignment - 1, alignment, alignment + 1, 1000]) {
        const address = heap.raw.alloc(request)
        expect(address % alignment).toBe(0)
        expect(heap.raw.sizeOf(address), `alignment ${alignment}, request ${request}`).toBe(
          Math.max(alignment, Math.ceil(request / alignment) * alignment),
        )
      }
      heap.check()
    }
  })
})

describe('segregateSmall', () => {
  it('a small request takes the high end of the free chunk it splits, a large one the low end', () => {
    const heap = heapWith({ segregateSmall: 64 })
    const hole = heap.raw.alloc(1024)
    heap.raw.alloc(128)  // a live neighbour (large: it comes from the top's low end)
    heap.raw.free(hole)
    const small = heap.raw.alloc(48)
    expect(small).toBe(hole + 1024 - 48)
    const large = heap.raw.alloc(256)
    expect(large).toBe(hole)
    expect(layout(heap, hole)).toEqual([
      [0, 256, 'live'],
      [256, 720, 'free'],
      [976, 48, 'live'],
      [1024, 128, 'live'],
    ])
    heap.check()
  })

  it('in a wilderness larger than a growth step, a small request takes the high end of its first step only', () => {
    // A freed 1 MiB chunk merges into the wilderness (first fit merges at once; trimThreshold is
    // Infinity here). Had the small chunk taken the top of the whole wilderness, as it did before,
    // it would pin the heap's end there: trim() could give nothing back while it lives.
    const heap = heapWith({ strategy: 'first-fit', segregateSmall: 64 })
    const start = heap.raw.alloc(MiB)
    expect(start).toBe(heap.stats().heapStart)
    heap.raw.free(start)
    expect(heap.stats()).toMatchObject({ liveChunks: 0, freeChunks: 0, topBytes: heap.stats().heapEnd - start })
    const small = heap.raw.alloc(16)
    expect(small).toBe(start + GROWTH - 16)
    expect(heap.stats()).toMatchObject({ freeChunks: 1, freeBytes: GROWTH - 16, topBytes: heap.stats().heapEnd - start - GROWTH })
    const before = heap.stats().heapEnd
    expect(heap.trim()).toBe(before - start - GROWTH)
    expect(heap.stats().heapEnd).toBe(start + GROWTH)
    expect(heap.raw.sizeOf(small)).toBe(16)
    heap.check()
  })

  // first-fit merges the large chunks as they are freed; best fit defers them (see below).
  it('from the top, a small request takes the high end and the rest of the top becomes a free chunk', () => {
    const heap = heapWith({ strategy: 'first-fit', segregateSmall: 64 })
    const small = heap.raw.alloc(16)
    const start = heap.stats().heapStart
    expect(small).toBe(start + GROWTH - 16)
    expect(heap.stats()).toMatchObject({ topBytes: 0, freeChunks: 1, freeBytes: GROWTH - 16 })
    // Interleaved small and large requests end up apart: freeing the large ones leaves one hole.
    const large = [heap.raw.alloc(448), heap.raw.alloc(448)]
    heap.raw.alloc(16)
    large.push(heap.raw.alloc(448))
    expect(large).toEqual([start, start + 448, start + 896])
    for (const address of large) heap.raw.free(address)
    expect(heap.stats().largestFreeChunk).toBe(GROWTH - 32)
    heap.check()
  })

  it('best fit: the freed large chunks stay deferred, and make the one hole once merged', () => {
    const heap = heapWith({ segregateSmall: 64 })
    const small = heap.raw.alloc(16)
    const start = heap.stats().heapStart
    expect(small).toBe(start + GROWTH - 16)
    const large = [heap.raw.alloc(448), heap.raw.alloc(448)]
    const middle = heap.raw.alloc(16)
    large.push(heap.raw.alloc(448))
    expect(large).toEqual([start, start + 448, start + 896])
    for (const address of large) heap.raw.free(address)
    // 448 bytes are 28 granules: each stays a deferred chunk of its own.
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 3, largestFreeChunk: GROWTH - 1376 })
    heap.check()
    expect(heap.trim()).toBe(0) // the top is a live chunk: nothing to give back, but all merged
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 1, largestFreeChunk: GROWTH - 32 })
    expect(layout(heap, start)).toEqual([
      [0, GROWTH - 32, 'free'],
      [middle - start, 16, 'live'],
      [small - start, 16, 'live'],
    ])
    heap.check()
  })

  it('is off by default, and aligned requests keep the low end', () => {
    const plain = heapWith()
    expect(plain.raw.alloc(16)).toBe(plain.stats().heapStart)
    const heap = heapWith({ segregateSmall: 64 })
    const aligned = heap.raw.alloc(16, 4096)
    expect(aligned % 4096).toBe(0)
    expect(aligned - heap.stats().heapStart).toBeLessThan(4096)
    expect(heap.stats().topBytes).toBeGreaterThan(0)
    heap.check()
  })
})

describe('merge', () => {
  /** [s0 16][x 32][y 48][z 64][s1 16], offsets from s0. */
  function fiveChunks(options: HeapOptions = {}) {
    const heap = heapWith(options)
    const s0 = heap.raw.alloc(16)
    const x = heap.raw.alloc(32)
    const y = heap.raw.alloc(48)
    const z = heap.raw.alloc(64)
    const s1 = heap.raw.alloc(16)
    expect([x - s0, y - s0, z - s0, s1 - s0]).toEqual([16, 48, 96, 160])
    return { heap, s0, x, y, z, s1 }
  }

  // first-fit merges at once; best fit defers these small chunks (the best-fit tests below).
  it('a freed chunk merges with free neighbours on both sides', () => {
    const { heap, s0, x, y, z } = fiveChunks({ strategy: 'first-fit' })
    heap.raw.free(x)
    heap.raw.free(z)
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 32, 'free'],
      [48, 48, 'live'],
      [96, 64, 'free'],
      [160, 16, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ freeChunks: 2, freeBytes: 96, largestFreeChunk: 64 })
    heap.raw.free(y)
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 144, 'free'],
      [160, 16, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ freeChunks: 1, freeBytes: 144, largestFreeChunk: 144, liveChunks: 2, liveBytes: 32, frees: 3 })
    heap.check()
    // x is still a free chunk's start; y and z no longer start a chunk at all.
    expectError(() => heap.raw.free(x), 'ERR_DOUBLE_FREE')
    expectError(() => heap.raw.free(y), 'ERR_INVALID_POINTER')
    expectError(() => heap.raw.free(z), 'ERR_INVALID_POINTER')
    // The merged chunk is one exact fit.
    expect(heap.raw.alloc(144)).toBe(x)
    expect(heap.stats()).toMatchObject({ freeChunks: 0, freeBytes: 0 })
  })

  it('merges with the chunk below, then the one above', () => {
    const { heap, s0, x, y, z } = fiveChunks({ strategy: 'best-fit-linear' })
    heap.raw.free(x)
    heap.raw.free(y) // joins x below it
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 80, 'free'],
      [96, 64, 'live'],
      [160, 16, 'live'],
    ])
    heap.check()
    heap.raw.free(z) // joins the free chunk below it
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 144, 'free'],
      [160, 16, 'live'],
    ])
    heap.check()
  })

  it('merges with the chunk above', () => {
    const { heap, s0, y, z } = fiveChunks({ strategy: 'first-fit' })
    heap.raw.free(z)
    heap.raw.free(y) // joins z above it
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 32, 'live'],
      [48, 112, 'free'],
      [160, 16, 'live'],
    ])
    heap.check()
  })

  it('best fit: small freed neighbours stay deferred, side by side, until a request needs them merged', () => {
    const { heap, s0, x, y, z } = fiveChunks()
    heap.raw.free(x)
    heap.raw.free(z)
    heap.raw.free(y)
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 32, 'deferred'],
      [48, 48, 'deferred'],
      [96, 64, 'deferred'],
      [160, 16, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ freeChunks: 3, freeBytes: 144, largestFreeChunk: 64, deferredChunks: 3 })
    heap.check()
    // Each is still a chunk: freeing any again is a double free.
    for (const address of [x, y, z]) expectError(() => heap.raw.free(address), 'ERR_DOUBLE_FREE')
    // No single one holds 144 bytes: they are merged first, and the merged chunk is an exact fit
    // (the wilderness had room, but a free chunk is taken before the top).
    expect(heap.raw.alloc(144)).toBe(x)
    expect(coreStats(heap)).toMatchObject({ freeChunks: 0, freeBytes: 0, deferredChunks: 0, heapBytes: GROWTH })
    heap.check()
  })

  it('best fit: a freed chunk of 64 granules or more merges at once, taking its deferred neighbours with it', () => {
    const heap = heapWith()
    const s0 = heap.raw.alloc(16)
    const x = heap.raw.alloc(32)
    const big = heap.raw.alloc(1024)
    const z = heap.raw.alloc(64)
    heap.raw.alloc(16)
    heap.raw.free(x)
    heap.raw.free(z)
    expect(coreStats(heap).deferredChunks).toBe(2)
    heap.raw.free(big)
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 32 + 1024 + 64, 'free'],
      [1136, 16, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ freeChunks: 1, deferredChunks: 0 })
    for (const address of [big, z]) expectError(() => heap.raw.free(address), 'ERR_INVALID_POINTER')
    expectError(() => heap.raw.free(x), 'ERR_DOUBLE_FREE')
    heap.check()
  })

  it('coalesce: false keeps free neighbours apart', () => {
    const { heap, s0, x, y, z } = fiveChunks({ coalesce: false })
    heap.raw.free(x)
    heap.raw.free(z)
    heap.raw.free(y)
    expect(layout(heap, s0)).toEqual([
      [0, 16, 'live'],
      [16, 32, 'free'],
      [48, 48, 'free'],
      [96, 64, 'free'],
      [160, 16, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ freeChunks: 3, freeBytes: 144, largestFreeChunk: 64 })
    heap.check()
    // Every one of them is still a chunk, so freeing any again is a double free ...
    for (const address of [x, y, z]) expectError(() => heap.raw.free(address), 'ERR_DOUBLE_FREE')
    // ... and no single one holds 144 bytes: the request goes to the top.
    expect(heap.raw.alloc(144)).toBe(s0 + 176)
    expect(heap.raw.alloc(48)).toBe(y)
  })

  it('the last chunk merges into the top, together with a free chunk below it', () => {
    const heap = heapWith({ strategy: 'first-fit' })
    const a = heap.raw.alloc(64)
    const b = heap.raw.alloc(64)
    const c = heap.raw.alloc(64)
    expect(heap.stats().topBytes).toBe(GROWTH - 192)
    heap.raw.free(c)
    expect(layout(heap, a)).toEqual([
      [0, 64, 'live'],
      [64, 64, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ topBytes: GROWTH - 128, freeChunks: 0, freeBytes: 0, heapBytes: GROWTH })
    const c2 = heap.raw.alloc(64)
    expect(c2).toBe(c) // carved from the top again
    heap.raw.free(b)
    expect(heap.stats()).toMatchObject({ freeChunks: 1, freeBytes: 64 })
    heap.raw.free(c2) // merges with b below it, and both go into the top
    expect(layout(heap, a)).toEqual([[0, 64, 'live']])
    expect(heap.stats()).toMatchObject({ topBytes: GROWTH - 64, freeChunks: 0, freeBytes: 0 })
    expectError(() => heap.raw.free(b), 'ERR_INVALID_POINTER')
    heap.raw.free(a)
    expect(heap.chunks()).toEqual([])
    expect(heap.stats()).toMatchObject({ topBytes: GROWTH, heapBytes: GROWTH, liveBytes: 0, liveChunks: 0, segments: 1 })
    heap.check()
  })

  it('coalesce: false never merges into the top either', () => {
    const heap = heapWith({ coalesce: false })
    const a = heap.raw.alloc(64)
    const b = heap.raw.alloc(64)
    heap.raw.free(b)
    expect(layout(heap, a)).toEqual([
      [0, 64, 'live'],
      [64, 64, 'free'],
    ])
    expect(heap.stats()).toMatchObject({ topBytes: GROWTH - 128, freeChunks: 1 })
    heap.check()
  })
})

describe('giving memory back', () => {
  it('the top is trimmed above trimThreshold, keeping `growth` bytes of slack; trim() gives back the rest', () => {
    const heap = lowEndHeap({ source: 'mmap' }) // growth 65536, trimThreshold 131072
    const a = heap.raw.alloc(16)
    expect(heap.stats()).toMatchObject({ heapBytes: GROWTH, brkCalls: 1 })
    const big = heap.raw.alloc(MiB)
    expect(big).toBe(a + 16)
    // The break moved by exactly what the 1 MiB request still needed beyond the wilderness.
    expect(heap.stats()).toMatchObject({ heapBytes: MiB + 16, topBytes: 0, brkCalls: 2, bytesReleased: 0, peakHeapBytes: MiB + 16 })
    heap.raw.free(big)
    expect(heap.chunks()).toEqual([{ address: a, size: 16, state: 'live' }])
    expect(heap.stats()).toMatchObject({
      heapBytes: 16 + GROWTH,
      topBytes: GROWTH,
      heapEnd: a + 16 + GROWTH,
      brkCalls: 3,
      bytesReleased: MiB - GROWTH,
      peakHeapBytes: MiB + 16,
    })
    heap.check()
    expect(heap.trim()).toBe(GROWTH)
    expect(heap.stats()).toMatchObject({ heapBytes: 16, topBytes: 0, heapEnd: a + 16, brkCalls: 4, bytesReleased: MiB })
    expect(heap.trim()).toBe(0)
    expect(heap.stats().brkCalls).toBe(4)
    heap.raw.free(a)
    // A 16-byte chunk: best fit defers it, so it stays a free chunk below an empty top ...
    expect(coreStats(heap)).toMatchObject({ heapBytes: 16, topBytes: 0, freeChunks: 1, deferredChunks: 1, segments: 1 })
    heap.check()
    // ... until trim() merges it: an empty heap gives everything back, and starts again at the same place.
    expect(heap.trim()).toBe(16)
    expect(heap.stats()).toMatchObject({ heapBytes: 0, topBytes: 0, segments: 0, liveChunks: 0, bytesReleased: MiB + 16 })
    heap.check()
    expect(heap.raw.alloc(32)).toBe(a)
    expect(heap.stats()).toMatchObject({ heapBytes: GROWTH, segments: 1 })
    heap.check()
  })

  it('a heap that grows right back after trimming raises its trim threshold past what it gave back', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 4096, trimThreshold: 65536 })
    const moves: number[] = []
    for (let cycle = 0; cycle < 6; cycle++) {
      heap.raw.free(heap.raw.alloc(200 * 1024))
      moves.push(heap.stats().brkCalls)
    }
    // Threshold 64 KiB: grow + trim (about 196 KiB given back); grown right back, so the threshold
    // rises past twice that and the top is kept from then on.
    expect(moves).toEqual([2, 3, 3, 3, 3, 3])
    expect(heap.stats().topBytes).toBeGreaterThanOrEqual(200 * 1024)
    expect(heap.trim()).toBeGreaterThanOrEqual(200 * 1024)  // an explicit trim still gives all back
    expect(heap.stats().heapBytes).toBe(0)
    heap.check()
  })

  it('the threshold rises past everything a teardown gave back in many small trims', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 4096, trimThreshold: 65536 })
    const cycle = () => {
      const before = heap.stats()
      const chunks = Array.from({ length: 10 }, () => heap.raw.alloc(100 * 1024))
      for (const chunk of chunks.reverse()) heap.raw.free(chunk) // top-down: each free may trim
      const after = heap.stats()
      return { moves: after.brkCalls - before.brkCalls, released: after.bytesReleased - before.bytesReleased }
    }
    const first = cycle()
    // Ten growths, and nearly every free lets the top pass 64 KiB: the memory goes back in steps.
    expect(first.moves).toBeGreaterThan(15)
    expect(first.released).toBeGreaterThan(900 * 1024)
    // Growing back raises the threshold past all of it, not just past the last step: the second
    // teardown keeps the memory, and the third cycle needs no break move at all.
    expect(cycle()).toEqual({ moves: 10, released: 0 })
    expect(cycle()).toEqual({ moves: 0, released: 0 })
    heap.check()
  })

  it('trimThreshold is a strict bound: a top of exactly the threshold stays', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, trimThreshold: 4096 })
    const a = heap.raw.alloc(16)
    const b = heap.raw.alloc(4096)
    expect(heap.stats()).toMatchObject({ heapBytes: 4112, topBytes: 0 })
    heap.raw.free(b)
    expect(heap.stats()).toMatchObject({ heapBytes: 4112, topBytes: 4096, bytesReleased: 0 })
    expect(heap.raw.alloc(4096)).toBe(b)
    const c = heap.raw.alloc(16)
    expect(heap.stats()).toMatchObject({ heapBytes: 4128, topBytes: 0 })
    heap.raw.free(c) // deferred (best fit): it stays a free chunk below the top
    expect(coreStats(heap)).toMatchObject({ heapBytes: 4128, topBytes: 0, freeChunks: 1, deferredChunks: 1 })
    // b is too large to defer: it merges with c above it, and both go into the top, which becomes
    // 4112 > 4096: with growth 0 it all goes back.
    heap.raw.free(b)
    expect(heap.stats()).toMatchObject({ heapBytes: 16, topBytes: 0, bytesReleased: 4112 })
    expect(heap.chunks()).toEqual([{ address: a, size: 16, state: 'live' }])
    heap.check()
  })

  it('trimThreshold: Infinity never trims by itself; trim() still does', () => {
    const heap = heapWith()
    const a = heap.raw.alloc(4 * MiB)
    heap.raw.free(a)
    expect(heap.stats()).toMatchObject({ heapBytes: 4 * MiB, topBytes: 4 * MiB, bytesReleased: 0 })
    expect(heap.trim()).toBe(4 * MiB)
    expect(heap.stats()).toMatchObject({ heapBytes: 0, segments: 0 })
  })

  it('a free chunk below the top is given back by trim() only once it borders the top', () => {
    const heap = heapWith({ coalesce: false })
    const a = heap.raw.alloc(64)
    const b = heap.raw.alloc(64)
    heap.raw.free(b)
    // Without merging the free chunk stays a chunk, so only the wilderness above it goes back.
    expect(heap.trim()).toBe(GROWTH - 128)
    expect(layout(heap, a)).toEqual([
      [0, 64, 'live'],
      [64, 64, 'free'],
    ])
    expect(heap.stats()).toMatchObject({ heapBytes: 128, topBytes: 0 })
    heap.check()
  })

  it('reset() frees every chunk at once and gives the memory back', () => {
    const heap = heapWith()
    const a = heap.raw.alloc(100)
    const handle = heap.alloc(200)
    const view = handle.bytes()
    expect(view.length).toBe(200)
    const c = heap.raw.alloc(2 * MiB)
    heap.raw.free(a)
    const before = heap.stats()
    expect(before).toMatchObject({ liveChunks: 2, freeChunks: 1, allocs: 3, frees: 1 })
    heap.reset()
    expect(heap.chunks()).toEqual([])
    expect(heap.stats()).toMatchObject({
      liveBytes: 0,
      liveChunks: 0,
      freeBytes: 0,
      freeChunks: 0,
      largestFreeChunk: 0,
      topBytes: 0,
      heapBytes: 0,
      segments: 0,
      allocs: 3,
      peakLiveBytes: before.peakLiveBytes,
      peakHeapBytes: before.peakHeapBytes,
      bytesReleased: before.heapBytes,
    })
    // Every chunk and view is gone.
    expect(handle.live).toBe(false)
    expect(view.length).toBe(0)
    expectError(() => heap.raw.free(c), 'ERR_INVALID_POINTER')
    expectError(() => heap.raw.sizeOf(a), 'ERR_INVALID_POINTER')
    heap.check()
    // The heap starts over from the beginning.
    expect(heap.raw.alloc(16)).toBe(a)
    expect(heap.stats()).toMatchObject({ liveChunks: 1, heapBytes: GROWTH, segments: 1 })
    heap.check()
  })
})
