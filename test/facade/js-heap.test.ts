/**
 * The pure-TS bump heap (backend 'js', always created explicitly here, so these run the same in
 * both passes): the bump pointer and its roll-back, reset() and its views, growth and
 * maxHeapBytes, what it refuses, and that it reports in the same shapes as the native heap.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHeap, STRATEGIES, type Heap, type HeapOptions } from '../../lib/index'
import { expectAllocatorError, nativeAvailable, snapshot } from './helpers'

const heaps: Heap[] = []
function jsHeap(options?: Omit<HeapOptions, 'backend'>): Heap {
  const heap = createHeap({ backend: 'js', ...options })
  heaps.push(heap)
  return heap
}
afterEach(() => {
  for (const heap of heaps.splice(0)) {
    if (!isClosed(heap)) heap.check()
    heap.close()
  }
})
function isClosed(heap: Heap): boolean {
  try {
    heap.stats()
    return false
  } catch {
    return true
  }
}

describe('identity', () => {
  it("is backend 'js', source 'arraybuffer', strategy 'bump', with no fallback reason", () => {
    const heap = jsHeap()
    expect(heap.backend).toBe('js')
    expect(heap.source).toBe('arraybuffer')
    expect(heap.strategy).toBe('bump')
    expect(heap.fallbackReason).toBeUndefined()
    expect(jsHeap({ strategy: 'bump' }).strategy).toBe('bump')
  })
})

describe('the bump pointer', () => {
  it('hands out ascending addresses, each after the last', () => {
    const heap = jsHeap()
    const a = heap.alloc(16)
    const b = heap.alloc(10)
    const c = heap.alloc(1)
    expect(b.address).toBe(a.address + 16)
    expect(c.address).toBe(b.address + 16) // 10 rounded up to the 16-byte alignment
    expect(heap.stats().topBytes).toBe(heap.stats().heapBytes - 48)
  })

  it('rolls back when the last chunk is freed: the next alloc reuses its address', () => {
    const heap = jsHeap()
    heap.alloc(16)
    const last = heap.alloc(32)
    const next = heap.stats().topBytes
    last.free()
    expect(heap.stats().topBytes).toBe(next + 32)
    expect(heap.chunks()).toHaveLength(1)
    expect(heap.alloc(32).address).toBe(last.address)
  })

  it('does not roll back for a middle chunk, until the chunks above it are gone', () => {
    const heap = jsHeap()
    const a = heap.alloc(16)
    const middle = heap.alloc(16)
    const top = heap.alloc(16)
    middle.free()
    expect(heap.chunks().map((c) => c.state)).toEqual(['live', 'free', 'live'])
    expect(heap.stats()).toMatchObject({ liveChunks: 2, freeChunks: 1, freeBytes: 16, largestFreeChunk: 16 })
    const d = heap.alloc(16)
    expect(d.address).toBe(top.address + 16) // the hole is not reused
    d.free()
    top.free() // now the free middle chunk is at the top too: both roll back
    expect(heap.chunks()).toEqual([{ address: a.address, size: 16, state: 'live' }])
    expect(heap.alloc(16).address).toBe(middle.address)
  })

  it('rolls back alignment padding with the chunk', () => {
    const heap = jsHeap()
    const a = heap.alloc(16)
    const aligned = heap.alloc(16, { align: 256 })
    expect(aligned.address % 256).toBe(0)
    aligned.free()
    expect(heap.alloc(16).address).toBe(a.address + 16)
  })

  it('realloc grows and shrinks the last chunk in place, and moves a middle one', () => {
    const heap = jsHeap()
    const a = heap.alloc(16)
    a.bytes().fill(1)
    const b = heap.realloc(a, 64)
    expect(b.address).toBe(a.address)
    expect(b.bytes().subarray(0, 16).every((x) => x === 1)).toBe(true)
    expect(a.live).toBe(false)
    const c = heap.realloc(b, 8)
    expect(c.address).toBe(a.address)
    expect(heap.stats().topBytes).toBe(heap.stats().heapBytes - 16)
    heap.alloc(16) // c is no longer last
    c.bytes().set([1, 2, 3, 4, 5, 6, 7, 8])
    const moved = heap.realloc(c, 100)
    expect(moved.address).toBeGreaterThan(c.address)
    expect(Array.from(moved.bytes().subarray(0, 8))).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(heap.chunks().find((ch) => ch.address === c.address)?.state).toBe('free')
  })
})

describe('reset', () => {
  it('empties the buffer; old views read length 0 and stay 0 after the buffer grows again', () => {
    const heap = jsHeap({ growth: 4096 })
    const a = heap.alloc(100)
    const b = heap.allocArray(Float64Array, 16)
    const views = [a.bytes(), a.as(Int32Array), b.array]
    a.bytes().fill(7)
    heap.reset()
    expect(heap.stats()).toMatchObject({ heapBytes: 0, liveBytes: 0, liveChunks: 0, topBytes: 0 })
    expect(heap.chunks()).toEqual([])
    for (const view of views) expect(view.length).toBe(0)
    const fresh = heap.alloc(100)
    expect(fresh.address).toBe(a.address) // the same address again
    for (let i = 0; i < 8; i++) heap.alloc(4096) // grow well past the old length
    expect(heap.stats().heapBytes).toBeGreaterThan(8 * 4096)
    for (const view of views) {
      expect(view.length).toBe(0)
      expect(view[0]).toBeUndefined()
    }
    expect(fresh.bytes().length).toBe(100)
    expect(fresh.bytes().every((x) => x === 0)).toBe(true) // a fresh buffer, not the old bytes
  })

  it('close() after allocations revokes views the same way', () => {
    const heap = jsHeap()
    const view = heap.alloc(32).bytes()
    heap.close()
    expect(view.length).toBe(0)
  })
})

describe('growth and maxHeapBytes', () => {
  it('grows the buffer by at least `growth` bytes per step', () => {
    const heap = jsHeap({ growth: 4096 })
    expect(heap.stats().heapBytes).toBe(0)
    heap.alloc(16)
    expect(heap.stats()).toMatchObject({ heapBytes: 4096, brkCalls: 1, peakHeapBytes: 4096 })
    heap.alloc(4000) // 16 + 4000 fits in 4096
    expect(heap.stats().heapBytes).toBe(4096)
    heap.alloc(100) // one more step
    expect(heap.stats()).toMatchObject({ heapBytes: 8192, brkCalls: 2 })
    heap.alloc(20000) // a request beyond one step takes what it needs
    expect(heap.stats().heapBytes).toBe(16 + 4000 + 112 + 20000)
    expect(heap.stats().heapEnd - heap.stats().heapStart).toBe(heap.stats().heapBytes)
  })

  it('growth: 0 moves the end exactly as far as each request needs', () => {
    const heap = jsHeap({ growth: 0 })
    heap.alloc(10)
    expect(heap.stats().heapBytes).toBe(16)
    heap.alloc(17)
    expect(heap.stats().heapBytes).toBe(48)
  })

  it('caps growth steps at maxHeapBytes', () => {
    const heap = jsHeap({ growth: 65536, maxHeapBytes: 10000 })
    heap.alloc(16)
    expect(heap.stats().heapBytes).toBe(10000)
  })

  it('beyond maxHeapBytes: ERR_OUT_OF_MEMORY naming the request and the cap; the heap is unchanged', () => {
    const heap = jsHeap({ growth: 4096, maxHeapBytes: 8192 })
    const h = heap.alloc(4096)
    h.bytes().fill(3)
    const before = snapshot(heap)
    expectAllocatorError(() => heap.alloc(8192), 'ERR_OUT_OF_MEMORY', '8192 bytes', 'maxHeapBytes 8192')
    expectAllocatorError(() => heap.alloc(16, { align: 8192 }), 'ERR_OUT_OF_MEMORY')
    expectAllocatorError(() => heap.allocArray(Float64Array, 1024), 'ERR_OUT_OF_MEMORY')
    expectAllocatorError(() => heap.realloc(h, 9000), 'ERR_OUT_OF_MEMORY', '9000')
    expectAllocatorError(() => heap.raw.alloc(5000), 'ERR_OUT_OF_MEMORY')
    expect(snapshot(heap)).toEqual(before)
    expect(h.live).toBe(true)
    expect(h.bytes().every((x) => x === 3)).toBe(true)
    // What still fits is still given.
    expect(heap.alloc(4096).address).toBe(h.address + 4096)
  })

  it('an unreservable maxHeapBytes is ERR_OUT_OF_MEMORY at createHeap', () => {
    expectAllocatorError(() => createHeap({ backend: 'js', maxHeapBytes: 2 ** 52 }), 'ERR_OUT_OF_MEMORY', String(2 ** 52))
  })

  it('trim() gives back the space above the bump pointer', () => {
    const heap = jsHeap({ growth: 65536 })
    heap.alloc(100)
    expect(heap.trim()).toBe(65536 - 112)
    expect(heap.stats()).toMatchObject({ heapBytes: 112, topBytes: 0, bytesReleased: 65536 - 112 })
    expect(heap.trim()).toBe(0)
  })

  it('rolling back past trimThreshold gives memory back by itself', () => {
    const heap = jsHeap({ growth: 4096, trimThreshold: 8192 })
    heap.alloc(16)
    const big = heap.alloc(100000)
    const held = heap.stats().heapBytes
    big.free()
    expect(heap.stats().heapBytes).toBeLessThan(held)
    expect(heap.stats().heapBytes).toBeLessThanOrEqual(16 + 4096)
    expect(heap.stats().bytesReleased).toBeGreaterThan(0)
  })
})

describe('what the js heap refuses', () => {
  it.each(STRATEGIES.filter((s) => s !== 'bump'))("strategy '%s' is ERR_UNSUPPORTED", (strategy) => {
    expectAllocatorError(() => createHeap({ backend: 'js', strategy }), 'ERR_UNSUPPORTED', `'${strategy}'`, "'bump'")
  })

  it.each(['brk', 'mmap'] as const)("source '%s' is ERR_UNSUPPORTED", (source) => {
    expectAllocatorError(() => createHeap({ backend: 'js', source }), 'ERR_UNSUPPORTED', `'${source}'`, 'arraybuffer')
  })

  it('a raw double free of a middle chunk is ERR_DOUBLE_FREE; of a rolled-back chunk ERR_INVALID_POINTER', () => {
    const heap = jsHeap()
    const a = heap.raw.alloc(16)
    const b = heap.raw.alloc(16)
    heap.raw.free(a)
    expectAllocatorError(() => heap.raw.free(a), 'ERR_DOUBLE_FREE', `0x${a.toString(16)}`)
    heap.raw.free(b) // rolls both back: nothing is left at either address
    expectAllocatorError(() => heap.raw.free(b), 'ERR_INVALID_POINTER', `0x${b.toString(16)}`)
  })
})

describe('the same shapes as the native heap', () => {
  it('stats() has every field of the contract as a number', () => {
    const stats = jsHeap().stats()
    for (const key of [
      'heapStart', 'heapEnd', 'heapBytes', 'peakHeapBytes', 'liveBytes', 'liveChunks', 'peakLiveBytes',
      'freeBytes', 'freeChunks', 'largestFreeChunk', 'topBytes', 'metadataBytes', 'peakMetadataBytes', 'allocs',
      'frees', 'reallocs', 'brkCalls', 'bytesReleased', 'segments', 'searchSteps', 'quarantinedChunks',
    ]) {
      expect(typeof (stats as unknown as Record<string, unknown>)[key], key).toBe('number')
    }
  })

  it('counts allocs, frees and reallocs like the native heap does', () => {
    const heap = jsHeap()
    const a = heap.alloc(8)
    const b = heap.realloc(a, 16)
    heap.alloc(8)
    const c = heap.realloc(b, 400) // moves: still one realloc, not an alloc and a free
    c.free()
    expect(heap.stats()).toMatchObject({ allocs: 2, reallocs: 2, frees: 1, liveChunks: 1 })
  })

  it.runIf(nativeAvailable)('stats(), chunks() and check() match a native heap key for key', () => {
    const js = jsHeap()
    const native = createHeap({ backend: 'native', source: 'mmap' })
    heaps.push(native)
    for (const heap of [js, native]) {
      const a = heap.alloc(16)
      const b = heap.alloc(32)
      a.free()
      heap.alloc(8)
      heap.realloc(b, 400).free()
    }
    const counters = (heap: Heap) => {
      const { allocs, frees, reallocs, liveChunks, liveBytes } = heap.stats()
      return { allocs, frees, reallocs, liveChunks, liveBytes }
    }
    expect(counters(js)).toEqual(counters(native))
    expect(Object.keys(js.stats()).sort()).toEqual(Object.keys(native.stats()).sort())
    // The layouts differ (a bump heap keeps holes, best fit merges them): compare the entry shapes.
    // Native best fit also marks the chunks it keeps unmerged `deferred: true`; the js heap never defers.
    const shapes = (heap: Heap) =>
      [...new Set(heap.chunks().map((c) => JSON.stringify(Object.entries(c).filter(([k]) => k !== 'deferred').map(([k, v]) => [k, typeof v]).sort())))].sort()
    expect(shapes(js)).toEqual(shapes(native))
    expect(js.chunks().some((c) => c.state === 'free')).toBe(true)
    expect(js.check()).toBeUndefined()
    expect(native.check()).toBeUndefined()
    // The leak report too.
    expect(Object.keys(js.leaks()).sort()).toEqual(Object.keys(native.leaks()).sort())
  })
})
