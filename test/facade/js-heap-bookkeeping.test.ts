/**
 * The js heap's bookkeeping: address ranges of their own per heap (a foreign address is
 * ERR_INVALID_POINTER), the same error codes as native for the same misuse, and the slot tables
 * against a reference model over many chunks freed in any order.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHeap, type Heap, type HeapOptions } from '../../lib/index'
import { ADDRESS_LIMIT, AddressRanges, RANGE_ALIGN } from '../../lib/backends/js/js-heap-addresses'
import { expectAllocatorError, nativeAvailable, snapshot } from './helpers'

const heaps: Heap[] = []
function track(heap: Heap): Heap {
  heaps.push(heap)
  return heap
}
function jsHeap(options?: Omit<HeapOptions, 'backend'>): Heap {
  return track(createHeap({ backend: 'js', ...options }))
}
afterEach(() => {
  for (const heap of heaps.splice(0)) heap.close()
})

describe('address ranges', () => {
  it('gives every js heap a 2^32-aligned base of its own, above 0 and below 2^53', () => {
    const bases = Array.from({ length: 4 }, () => {
      const heap = jsHeap()
      const address = heap.raw.alloc(16)
      expect(address).toBe(heap.stats().heapStart)
      return address
    })
    expect(new Set(bases).size).toBe(4)
    for (const base of bases) {
      expect(base % RANGE_ALIGN).toBe(0)
      expect(base).toBeGreaterThan(0)
      expect(base + 2 ** 30).toBeLessThan(ADDRESS_LIMIT)
    }
  })

  it("another heap's address is ERR_INVALID_POINTER for free, sizeOf and realloc; neither heap changes", () => {
    const a = jsHeap()
    const b = jsHeap()
    const mine = a.raw.alloc(64)
    const theirs = b.raw.alloc(64)
    const before = [snapshot(a), snapshot(b)]
    const where = `0x${theirs.toString(16)}`
    expectAllocatorError(() => a.raw.free(theirs), 'ERR_INVALID_POINTER', where)
    expectAllocatorError(() => a.raw.sizeOf(theirs), 'ERR_INVALID_POINTER', where)
    expectAllocatorError(() => a.raw.realloc(theirs, 128), 'ERR_INVALID_POINTER', where)
    expect([snapshot(a), snapshot(b)]).toEqual(before)
    a.raw.free(mine)
    b.raw.free(theirs)
  })

  it('a heap with a large maxHeapBytes gets a range that holds all of it', () => {
    const ranges = new AddressRanges()
    const small = ranges.take(1 << 30)
    const large = ranges.take(RANGE_ALIGN * 3 + 1)
    const after = ranges.take(16)
    expect(small.span).toBe(RANGE_ALIGN)
    expect(large.span).toBe(RANGE_ALIGN * 4)
    expect(large.base).toBe(small.base + small.span)
    expect(after.base).toBe(large.base + large.span)
  })

  it('hands out fresh ranges first, reuses released ones only when the fresh ones run out, then refuses', () => {
    const ranges = new AddressRanges(RANGE_ALIGN * 4) // room for three ranges above 0
    const first = ranges.take(16)
    const second = ranges.take(16)
    ranges.release(first)
    expect(ranges.take(16).base).toBe(second.base + RANGE_ALIGN) // fresh, though one was released
    expect(ranges.take(16)).toBe(first) // the fresh ones are gone: the released one comes back
    const error = expectAllocatorError(() => ranges.take(16), 'ERR_OUT_OF_MEMORY', 'js heap', 'close')
    expect(error.message).toContain(String(RANGE_ALIGN))
    ranges.release(second)
    expectAllocatorError(() => ranges.take(RANGE_ALIGN + 1), 'ERR_OUT_OF_MEMORY') // too small to reuse
    expect(ranges.take(RANGE_ALIGN)).toBe(second)
  })
})

describe('the same error codes as native', () => {
  // Native's rule (native/core): the start of a chunk that is free is ERR_DOUBLE_FREE; an address
  // that starts no chunk (never did, or its chunk was merged away) is ERR_INVALID_POINTER. Which
  // freed chunks are still chunks depends on the layout (native merges, js rolls back), so each
  // heap is checked against the rule applied to its own chunks().
  interface Addresses {
    hole: number
    gone: number
    live: number
  }
  const probes: [string, (at: Addresses) => unknown, 'free' | 'sizeOf' | 'realloc'][] = [
    ['a freed chunk below a live one', (at) => at.hole, 'free'],
    ['a freed chunk below a live one', (at) => at.hole, 'sizeOf'],
    ['a freed chunk below a live one', (at) => at.hole, 'realloc'],
    ['the freed top chunk', (at) => at.gone, 'free'],
    ['the freed top chunk', (at) => at.gone, 'sizeOf'],
    ['the freed top chunk', (at) => at.gone, 'realloc'],
    ['inside a live chunk', (at) => at.live + 8, 'free'],
    ['inside a live chunk', (at) => at.live + 8, 'sizeOf'],
    ['address 0', () => 0, 'free'],
    ['-16', () => -16, 'free'],
    ['1.5', () => 1.5, 'free'],
    ['NaN', () => NaN, 'free'],
    ['a string', () => '16', 'free'],
    ['2^60', () => 2 ** 60, 'realloc'],
    ['undefined', () => undefined, 'sizeOf'],
  ]

  // Three live chunks with a freed one between the first two, and a freed one on top.
  function setUp(heap: Heap): Addresses {
    const live = heap.raw.alloc(16)
    const hole = heap.raw.alloc(16)
    heap.raw.alloc(16) // keeps the hole below a live chunk
    const gone = heap.raw.alloc(16)
    heap.raw.free(hole)
    heap.raw.free(gone)
    return { hole, gone, live }
  }

  function codeOf(heap: Heap, op: 'free' | 'sizeOf' | 'realloc', address: unknown): string {
    try {
      if (op === 'realloc') heap.raw.realloc(address as number, 32)
      else heap.raw[op](address as number)
      return 'no error'
    } catch (error) {
      return (error as { code?: string }).code ?? String(error)
    }
  }

  function nativeRule(heap: Heap, address: unknown): string {
    const freeChunk = heap.chunks().some((chunk) => chunk.address === address && chunk.state === 'free')
    return freeChunk ? 'ERR_DOUBLE_FREE' : 'ERR_INVALID_POINTER'
  }

  it.each(probes)("js: %s (%s) gives native's code, and the heap is unchanged", (_label, target, op) => {
    const heap = jsHeap()
    const address = target(setUp(heap))
    const before = snapshot(heap)
    expect(codeOf(heap, op, address)).toBe(nativeRule(heap, address))
    expect(snapshot(heap)).toEqual(before)
  })

  it('js: a freed chunk below a live one is still a chunk (ERR_DOUBLE_FREE); the freed top one is rolled back (ERR_INVALID_POINTER)', () => {
    const heap = jsHeap()
    const at = setUp(heap)
    for (const op of ['free', 'sizeOf', 'realloc'] as const) {
      expect(codeOf(heap, op, at.hole)).toBe('ERR_DOUBLE_FREE')
      expect(codeOf(heap, op, at.gone)).toBe('ERR_INVALID_POINTER')
    }
  })

  it.runIf(nativeAvailable).each(probes)('native: %s (%s) follows the same rule', (_label, target, op) => {
    const heap = track(createHeap({ backend: 'native', source: 'mmap' }))
    const address = target(setUp(heap))
    expect(codeOf(heap, op, address)).toBe(nativeRule(heap, address))
  })
})

describe('the slot tables', () => {
  // A tiny generator with a fixed seed, so a failure replays the same way.
  function random(seed: number): () => number {
    let state = seed >>> 0
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0
      return state / 2 ** 32
    }
  }

  // Mostly small chunks (many per page of the page index), some spanning pages, some page-aligned.
  function sizeFrom(next: () => number): number {
    const kind = next()
    return Math.floor(next() * (kind < 0.8 ? 300 : kind < 0.95 ? 5000 : 40_000))
  }

  it('agree with a reference model over thousands of chunks allocated and freed in any order', () => {
    const heap = jsHeap({ growth: 4096, trimThreshold: 65536 })
    const next = random(7)
    const model = new Map<number, number>() // address -> usable size of live chunks
    for (let step = 0; step < 6000; step++) {
      const live = [...model.keys()]
      const choice = next()
      if (live.length === 0 || choice < 0.55) {
        const size = sizeFrom(next)
        const align = next() < 0.05 ? 4096 : undefined
        const address = heap.raw.alloc(size, align)
        expect(model.has(address)).toBe(false)
        if (align !== undefined) expect(address % align).toBe(0)
        model.set(address, Math.max(16, Math.ceil(size / 16) * 16))
      } else if (choice < 0.9) {
        const address = live[Math.floor(next() * live.length)]
        heap.raw.free(address)
        model.delete(address)
        // A hole below a live chunk stays a (freed) chunk; the top one is rolled back.
        const hole = [...model.keys()].some((other) => other > address)
        expectAllocatorError(() => heap.raw.sizeOf(address), hole ? 'ERR_DOUBLE_FREE' : 'ERR_INVALID_POINTER')
      } else {
        const address = live[Math.floor(next() * live.length)]
        expect(heap.raw.sizeOf(address)).toBe(model.get(address))
        const size = sizeFrom(next)
        const usable = Math.max(16, Math.ceil(size / 16) * 16)
        const old = model.get(address) as number
        const top = live.every((other) => other <= address)
        // The top chunk resizes in place; one below it shrinks in place keeping its size, or moves.
        const inPlace = top || usable <= old
        const moved = heap.raw.realloc(address, size)
        if (inPlace) expect(moved).toBe(address)
        else expect(moved).toBeGreaterThan(Math.max(...live))
        model.delete(address)
        model.set(moved, top || !inPlace ? usable : old)
        expect(heap.raw.sizeOf(moved)).toBe(model.get(moved))
      }
      if (step % 100 === 0) heap.check()
    }
    heap.check()
    const chunks = heap.chunks()
    const liveChunks = chunks.filter((c) => c.state === 'live')
    expect(new Map(liveChunks.map((c) => [c.address, c.size]))).toEqual(model)
    expect(heap.stats()).toMatchObject({ liveChunks: model.size, liveBytes: [...model.values()].reduce((a, b) => a + b, 0) })
    expect(chunks.at(-1)?.state).toBe('live') // dead chunks at the top are always rolled back
    for (const address of model.keys()) heap.raw.free(address)
    expect(heap.stats()).toMatchObject({ liveChunks: 0, liveBytes: 0, freeChunks: 0, topBytes: heap.stats().heapBytes })
    expect(heap.chunks()).toEqual([])
  })

  it('grow with the chunks and shrink back on reset(); metadataBytes says how big they are', () => {
    const heap = jsHeap()
    const empty = heap.stats().metadataBytes
    // 17 bytes a slot (an address, a size and a state), 4 bytes a page: 64 slots and 16 pages to start.
    expect(empty).toBe(64 * 17 + 16 * 4)
    for (let i = 0; i < 10_000; i++) heap.raw.alloc(16)
    const full = heap.stats().metadataBytes
    expect(full).toBeGreaterThanOrEqual(10_000 * 17) // an address, a size and a state per chunk
    expect(full).toBeLessThan(10_000 * 17 * 2.1) // doubling: at most about twice what is used
    // Doubled to 16,384 slots for 10,000 chunks, and to 64 page entries for their 40 pages of 4 KiB.
    expect(full).toBe(16_384 * 17 + 64 * 4)
    heap.reset()
    expect(heap.stats().metadataBytes).toBe(empty)
    expect(heap.stats().peakMetadataBytes).toBe(full) // the peak stays
  })

  it('free the top chunk and every dead chunk under it in one roll-back, down to a live one', () => {
    const heap = jsHeap()
    const keep = heap.raw.alloc(16)
    const chunks = Array.from({ length: 200 }, () => heap.raw.alloc(32))
    for (const address of chunks.slice(0, -1)) heap.raw.free(address) // holes below the top
    expect(heap.stats()).toMatchObject({ freeChunks: 199, liveChunks: 2 })
    heap.raw.free(chunks[chunks.length - 1])
    expect(heap.chunks()).toEqual([{ address: keep, size: 16, state: 'live' }])
    expect(heap.raw.alloc(32)).toBe(keep + 16)
  })
})
