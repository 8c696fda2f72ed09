/**
 * realloc: shrink in place, grow in place into a following free chunk or into the top, and move
 * when neither is possible, always keeping the contents. Contents are checked through Handles
 * (heap.alloc / heap.realloc and bytes()), which read the chunk's real memory.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Handle, Heap, HeapOptions } from '../../lib/index'
import { closeHeaps, lowEndHeap, coreStats, expectError, layout, MiB } from './helpers'

afterEach(closeHeaps)

const GROWTH = 65536

function heapWith(options: HeapOptions = {}): Heap {
  return lowEndHeap({ source: 'mmap', growth: GROWTH, trimThreshold: Infinity, ...options })
}

/** Fills the first `length` bytes of the chunk with a pattern that depends on the position and `seed`. */
function fill(handle: Handle, seed: number, length = handle.size): void {
  const bytes = handle.bytes()
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + seed) & 255
}

function expectPattern(handle: Handle, seed: number, length: number): void {
  const bytes = handle.bytes()
  expect(bytes.length).toBeGreaterThanOrEqual(length)
  let bad = -1
  for (let i = 0; i < length && bad < 0; i++) if (bytes[i] !== ((i * 7 + seed) & 255)) bad = i
  expect(bad, `the first byte that lost its contents (of ${length})`).toBe(-1)
}

describe('realloc in place', () => {
  it('shrinks in place: the tail goes back to the table', () => {
    const heap = heapWith()
    const a = heap.alloc(256)
    fill(a, 1)
    heap.raw.alloc(16)
    const b = heap.realloc(a, 64)
    expect(b.address).toBe(a.address)
    expect(a.live).toBe(false)
    expect(b.size).toBe(64)
    expect(heap.raw.sizeOf(b.address)).toBe(64)
    expectPattern(b, 1, 64)
    expect(layout(heap, b.address)).toEqual([
      [0, 64, 'live'],
      [64, 192, 'deferred'], // best fit keeps a small freed piece unmerged: still a free chunk
      [256, 16, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ reallocs: 1, liveBytes: 80, liveChunks: 2, freeBytes: 192, freeChunks: 1 })
    heap.check()
  })

  // first-fit merges every freed piece at once; best fit defers pieces under 64 granules.
  it('shrinks in place next to a free chunk: the tail merges with it', () => {
    const heap = heapWith({ strategy: 'first-fit' })
    const a = heap.alloc(256)
    fill(a, 2)
    const b = heap.raw.alloc(64)
    heap.raw.alloc(16)
    heap.raw.free(b)
    const c = heap.realloc(a, 100)
    expect(c.address).toBe(a.address)
    expectPattern(c, 2, 100)
    expect(layout(heap, c.address)).toEqual([
      [0, 112, 'live'],
      [112, 208, 'free'],
      [320, 16, 'live'],
    ])
    heap.check()
  })

  it('best fit: a small shrunk-off tail is deferred beside the free chunk, and merges with it on trim()', () => {
    const heap = heapWith()
    const a = heap.alloc(256)
    fill(a, 2)
    const b = heap.raw.alloc(64)
    heap.raw.alloc(16)
    heap.raw.free(b)
    const c = heap.realloc(a, 100)
    expect(c.address).toBe(a.address)
    expectPattern(c, 2, 100)
    expect(layout(heap, c.address)).toEqual([
      [0, 112, 'live'],
      [112, 144, 'deferred'],
      [256, 64, 'deferred'],
      [320, 16, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ freeChunks: 2, deferredChunks: 2, freeBytes: 208 })
    heap.check()
    heap.trim()
    expect(layout(heap, c.address)).toEqual([
      [0, 112, 'live'],
      [112, 208, 'free'],
      [320, 16, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ freeChunks: 1, deferredChunks: 0, freeBytes: 208 })
    expectPattern(c, 2, 100)
    heap.check()
  })

  it('shrinks in place at the top: the tail goes into the wilderness', () => {
    const heap = heapWith({ strategy: 'first-fit' })
    const a = heap.alloc(1000)
    fill(a, 3)
    const c = heap.realloc(a, 10)
    expect(c.address).toBe(a.address)
    expectPattern(c, 3, 10)
    expect(layout(heap, c.address)).toEqual([[0, 16, 'live']])
    expect(heap.stats()).toMatchObject({ topBytes: GROWTH - 16, freeChunks: 0 })
    heap.check()
  })

  it('best fit: a tail under 64 granules stays deferred at the top until trim(); a larger one goes into the wilderness at once', () => {
    const heap = heapWith()
    const a = heap.alloc(1024)
    fill(a, 3)
    const c = heap.realloc(a, 10) // a 1008-byte tail: 63 granules
    expect(c.address).toBe(a.address)
    expectPattern(c, 3, 10)
    expect(layout(heap, c.address)).toEqual([
      [0, 16, 'live'],
      [16, 1008, 'deferred'],
    ])
    expect(coreStats(heap)).toMatchObject({ topBytes: GROWTH - 1024, freeChunks: 1, deferredChunks: 1 })
    heap.check()
    expect(heap.trim()).toBe(GROWTH - 16) // merged into the wilderness, which goes back
    expect(layout(heap, c.address)).toEqual([[0, 16, 'live']])
    expect(coreStats(heap)).toMatchObject({ topBytes: 0, heapBytes: 16, freeChunks: 0, deferredChunks: 0 })
    heap.check()

    const big = heapWith()
    const d = big.alloc(1040)
    fill(d, 4)
    const e = big.realloc(d, 10) // a 1024-byte tail: 64 granules
    expect(e.address).toBe(d.address)
    expectPattern(e, 4, 10)
    expect(layout(big, e.address)).toEqual([[0, 16, 'live']])
    expect(coreStats(big)).toMatchObject({ topBytes: GROWTH - 16, freeChunks: 0, deferredChunks: 0 })
    big.check()
  })

  it('split: false keeps the whole chunk on a shrink', () => {
    const heap = heapWith({ split: false })
    const a = heap.alloc(256)
    fill(a, 4)
    heap.raw.alloc(16)
    const b = heap.realloc(a, 64)
    expect(b.address).toBe(a.address)
    expect(heap.raw.sizeOf(b.address)).toBe(256)
    expectPattern(b, 4, 64)
    expect(layout(heap, b.address)).toEqual([
      [0, 256, 'live'],
      [256, 16, 'live'],
    ])
    heap.check()
  })

  it('a shrink to 0 keeps a minimum chunk', () => {
    const heap = heapWith()
    const a = heap.raw.alloc(64)
    heap.raw.alloc(16)
    expect(heap.raw.realloc(a, 0)).toBe(a)
    expect(heap.raw.sizeOf(a)).toBe(16)
    expect(layout(heap, a)).toEqual([
      [0, 16, 'live'],
      [16, 48, 'deferred'],
      [64, 16, 'live'],
    ])
  })

  it('a realloc to the same size (or within the same granule) changes nothing', () => {
    const heap = heapWith()
    const a = heap.raw.alloc(100)
    heap.raw.alloc(16)
    const before = heap.chunks()
    expect(heap.raw.realloc(a, 100)).toBe(a)
    expect(heap.raw.realloc(a, 112)).toBe(a)
    expect(heap.raw.realloc(a, 97)).toBe(a)
    expect(heap.chunks()).toEqual(before)
    expect(heap.stats().reallocs).toBe(3)
  })

  it('grows in place into a following free chunk, splitting off what it does not need', () => {
    const heap = heapWith()
    const a = heap.alloc(64)
    fill(a, 5)
    const b = heap.raw.alloc(128)
    heap.raw.alloc(16)
    heap.raw.free(b)
    const c = heap.realloc(a, 128)
    expect(c.address).toBe(a.address)
    expectPattern(c, 5, 64)
    expect(layout(heap, c.address)).toEqual([
      [0, 128, 'live'],
      [128, 64, 'free'],
      [192, 16, 'live'],
    ])
    heap.check()
    // Exactly the rest: the free chunk disappears.
    fill(c, 6)
    const d = heap.realloc(c, 192)
    expect(d.address).toBe(a.address)
    expectPattern(d, 6, 128)
    expect(layout(heap, d.address)).toEqual([
      [0, 192, 'live'],
      [192, 16, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ freeChunks: 0, freeBytes: 0, reallocs: 2 })
    heap.check()
  })

  it('split: false takes all of the following free chunk', () => {
    const heap = heapWith({ split: false })
    const a = heap.raw.alloc(64)
    const b = heap.raw.alloc(128)
    heap.raw.alloc(16)
    heap.raw.free(b)
    expect(heap.raw.realloc(a, 100)).toBe(a)
    expect(heap.raw.sizeOf(a)).toBe(192)
    heap.check()
  })

  it('grows in place into the top, moving the break when the wilderness is short', () => {
    const heap = heapWith()
    const a = heap.alloc(64)
    fill(a, 7)
    const b = heap.realloc(a, 1024)
    expect(b.address).toBe(a.address)
    expectPattern(b, 7, 64)
    expect(layout(heap, b.address)).toEqual([[0, 1024, 'live']])
    expect(heap.stats()).toMatchObject({ topBytes: GROWTH - 1024, heapBytes: GROWTH, brkCalls: 1 })
    fill(b, 8)
    const c = heap.realloc(b, 4 * MiB)
    expect(c.address).toBe(a.address)
    expectPattern(c, 8, 1024)
    expect(layout(heap, c.address)).toEqual([[0, 4 * MiB, 'live']])
    // The break moved once more, by what the chunk needed beyond the wilderness.
    expect(heap.stats()).toMatchObject({ topBytes: 0, heapBytes: 4 * MiB, brkCalls: 2 })
    // The new bytes are real memory.
    c.bytes()[4 * MiB - 1] = 0x5a
    expect(c.bytes()[4 * MiB - 1]).toBe(0x5a)
    heap.check()
  })
})

describe('realloc that moves', () => {
  it('moves to the top when the chunk cannot grow where it is; the old chunk is freed', () => {
    const heap = heapWith()
    const a = heap.alloc(64)
    fill(a, 9)
    const s = heap.raw.alloc(16)
    const b = heap.realloc(a, 256)
    expect(b.address).toBe(s + 16)
    expectPattern(b, 9, 64)
    expect(a.live).toBe(false)
    expect(layout(heap, a.address)).toEqual([
      [0, 64, 'deferred'],
      [64, 16, 'live'],
      [80, 256, 'live'],
    ])
    expect(heap.stats()).toMatchObject({ liveChunks: 2, liveBytes: 272, freeChunks: 1, freeBytes: 64, reallocs: 1, allocs: 2, frees: 0 })
    expectError(() => heap.raw.sizeOf(a.address), 'ERR_DOUBLE_FREE')
    heap.check()
  })

  it('moves into a free chunk that fits, by the heap strategy', () => {
    const heap = heapWith()
    const a = heap.alloc(64)
    fill(a, 10)
    heap.raw.alloc(16)
    const hole = heap.raw.alloc(256)
    heap.raw.alloc(16)
    heap.raw.free(hole)
    const b = heap.realloc(a, 256)
    expect(b.address).toBe(hole)
    expectPattern(b, 10, 64)
    expect(layout(heap, a.address)).toEqual([
      [0, 64, 'deferred'],
      [64, 16, 'live'],
      [80, 256, 'live'],
      [336, 16, 'live'],
    ])
    heap.check()
  })

  it('a following free chunk that is too small is not enough; the freed chunk then merges with it', () => {
    const heap = heapWith({ strategy: 'first-fit' })
    const a = heap.alloc(64)
    fill(a, 11)
    const b = heap.raw.alloc(32)
    const s = heap.raw.alloc(16)
    heap.raw.free(b)
    const c = heap.realloc(a, 128)
    expect(c.address).toBe(s + 16)
    expectPattern(c, 11, 64)
    expect(layout(heap, a.address)).toEqual([
      [0, 96, 'free'],
      [96, 16, 'live'],
      [112, 128, 'live'],
    ])
    heap.check()
  })

  it('keeps every byte of a large chunk that moves', () => {
    const heap = heapWith()
    const a = heap.alloc(300_000)
    fill(a, 12)
    heap.raw.alloc(16)
    const b = heap.realloc(a, 700_000)
    expect(b.address).not.toBe(a.address)
    expectPattern(b, 12, 300_000)
    heap.check()
  })

  it('the old address is dead after a move: free, realloc and sizeOf of it fail', () => {
    const heap = heapWith({ strategy: 'first-fit' })
    const a = heap.raw.alloc(64)
    heap.raw.alloc(16)
    const b = heap.raw.realloc(a, 256)
    expect(b).not.toBe(a)
    expectError(() => heap.raw.free(a), 'ERR_DOUBLE_FREE')
    expectError(() => heap.raw.realloc(a, 8), 'ERR_DOUBLE_FREE')
    expectError(() => heap.raw.sizeOf(a), 'ERR_DOUBLE_FREE')
    heap.raw.free(b) // merges into the top
    expectError(() => heap.raw.free(b), 'ERR_INVALID_POINTER')
    heap.check()
  })

  it('best fit: the moved-from chunk and a small freed last chunk stay deferred (ERR_DOUBLE_FREE) until trim()', () => {
    const heap = heapWith()
    const a = heap.raw.alloc(64)
    const s = heap.raw.alloc(16)
    const b = heap.raw.realloc(a, 256)
    expect(b).toBe(s + 16)
    heap.raw.free(b) // 16 granules: deferred, though it borders the wilderness
    expect(layout(heap, a)).toEqual([
      [0, 64, 'deferred'],
      [64, 16, 'live'],
      [80, 256, 'deferred'],
    ])
    for (const address of [a, b]) {
      expectError(() => heap.raw.free(address), 'ERR_DOUBLE_FREE')
      expectError(() => heap.raw.realloc(address, 8), 'ERR_DOUBLE_FREE')
      expectError(() => heap.raw.sizeOf(address), 'ERR_DOUBLE_FREE')
    }
    expect(heap.trim()).toBe(GROWTH - 80)
    expect(layout(heap, a)).toEqual([
      [0, 64, 'free'],
      [64, 16, 'live'],
    ])
    expectError(() => heap.raw.free(b), 'ERR_INVALID_POINTER')
    expectError(() => heap.raw.free(a), 'ERR_DOUBLE_FREE')
    heap.check()
  })
})

describe('realloc that grows where it can grow again (best fit)', () => {
  it('grows through a deferred chunk and the free chunk it borders', () => {
    const heap = heapWith()
    const a = heap.alloc(64)
    fill(a, 13)
    const d = heap.raw.alloc(48)
    const f = heap.raw.alloc(2048)
    heap.raw.alloc(16)
    heap.raw.free(f) // merged at once (too large to defer)
    heap.raw.free(d) // deferred beside it
    expect(layout(heap, a.address).slice(0, 3)).toEqual([
      [0, 64, 'live'],
      [64, 48, 'deferred'],
      [112, 2048, 'free'],
    ])
    const b = heap.realloc(a, 1024)
    expect(b.address).toBe(a.address)
    expectPattern(b, 13, 64)
    expect(layout(heap, a.address)).toEqual([
      [0, 1024, 'live'],
      [1024, 64 + 48 + 2048 - 1024, 'free'],
      [2160, 16, 'live'],
    ])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, reallocs: 1 })
    heap.check()
  })

  it('grows through deferred chunks that reach the wilderness, and into it', () => {
    const heap = heapWith()
    const a = heap.alloc(64)
    fill(a, 14)
    const d1 = heap.raw.alloc(32)
    const d2 = heap.raw.alloc(48)
    heap.raw.free(d1)
    heap.raw.free(d2) // both deferred; d2 borders the wilderness
    expect(layout(heap, a.address)).toEqual([
      [0, 64, 'live'],
      [64, 32, 'deferred'],
      [96, 48, 'deferred'],
    ])
    const b = heap.realloc(a, 4096)
    expect(b.address).toBe(a.address)
    expectPattern(b, 14, 64)
    expect(layout(heap, a.address)).toEqual([[0, 4096, 'live']])
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, freeChunks: 0, topBytes: GROWTH - 4096, brkCalls: 1 })
    heap.check()
  })

  it('a move takes the smallest free chunk with room for one more growth by half, and grows into that room next', () => {
    const heap = heapWith()
    const a = heap.alloc(1024)
    fill(a, 15)
    heap.raw.alloc(16)
    const exact = heap.raw.alloc(2048)
    heap.raw.alloc(16)
    const roomy = heap.raw.alloc(4096)
    heap.raw.alloc(16)
    heap.raw.free(exact)
    heap.raw.free(roomy)
    // 2048 fits exactly, but leaves no room: the 4096 chunk has room for 2048 * 3/2.
    const b = heap.realloc(a, 2048)
    expect(b.address).toBe(roomy)
    expectPattern(b, 15, 1024)
    fill(b, 16)
    const c = heap.realloc(b, 3072)
    expect(c.address).toBe(roomy)
    expectPattern(c, 16, 2048)
    heap.check()
  })

  it('other strategies move by their own rule: first fit takes the lowest chunk that fits', () => {
    const heap = heapWith({ strategy: 'first-fit' })
    const a = heap.raw.alloc(1024)
    heap.raw.alloc(16)
    const exact = heap.raw.alloc(2048)
    heap.raw.alloc(16)
    const roomy = heap.raw.alloc(4096)
    heap.raw.alloc(16)
    heap.raw.free(exact)
    heap.raw.free(roomy)
    expect(heap.raw.realloc(a, 2048)).toBe(exact)
    heap.check()
  })
})
