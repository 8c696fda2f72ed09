/**
 * Every bad input of the raw API and of the options: the right AllocatorError code, a message,
 * and a heap left exactly as it was (chunks() and stats() deep-equal, nothing excluded).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { AllocatorError, createHeap, type HeapOptions } from '../../lib/index'
import { closeHeaps, lowEndHeap, coreStats, expectError, expectFailureLeavesHeap, layout, skipUnlessBreakCanRise, testing } from './helpers'

afterEach(closeHeaps)

/**
 * A heap with live chunks, free chunks (one of them just freed) and a top; brk or mmap. Best fit
 * defers small frees: two of the free chunks are deferred, one of them bordering a merged free
 * chunk, so a failed call that merged anything would show in chunks() and stats().
 */
function busyHeap(options: HeapOptions = {}) {
  const heap = lowEndHeap({ source: 'mmap', growth: 65536, trimThreshold: Infinity, ...options })
  const live = heap.raw.alloc(100)
  const freed = heap.raw.alloc(200)
  const other = heap.raw.alloc(300)
  const spare = heap.raw.alloc(64)
  heap.raw.alloc(16)
  heap.raw.free(spare)
  heap.raw.free(freed)
  // A search has run, so that a failed one would show in searchSteps.
  heap.raw.free(heap.raw.alloc(8))
  expect(coreStats(heap)).toMatchObject({ liveChunks: 3, freeChunks: 3, deferredChunks: 2 })
  heap.check()
  return { heap, live, freed, other }
}

const NOT_NUMBERS: unknown[] = ['16', '', null, undefined, true, false, {}, [], [16], 16n, Symbol('size'), () => 16]
const BAD_NUMBERS = [-1, -16, -0.5, NaN, Infinity, -Infinity, 0.5, 16.25, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, Number.MAX_VALUE]

describe('sizes', () => {
  it('wrong types, negative, NaN, Infinity, fractional and unsafe sizes are ERR_INVALID_SIZE', () => {
    const { heap, live } = busyHeap()
    const alloc = heap.raw.alloc as (size: unknown, align?: unknown) => number
    const realloc = heap.raw.realloc as (address: number, size: unknown) => number
    for (const size of [...NOT_NUMBERS, ...BAD_NUMBERS]) {
      expectFailureLeavesHeap(heap, () => alloc(size), 'ERR_INVALID_SIZE')
      expectFailureLeavesHeap(heap, () => alloc(size, 64), 'ERR_INVALID_SIZE')
      expectFailureLeavesHeap(heap, () => realloc(live, size), 'ERR_INVALID_SIZE')
      expectFailureLeavesHeap(heap, () => heap.alloc(size as number), 'ERR_INVALID_SIZE')
    }
  })

  it('the message names the value', () => {
    const { heap } = busyHeap()
    expect(expectError(() => heap.raw.alloc(-5), 'ERR_INVALID_SIZE').message).toContain('-5')
    expect(expectError(() => heap.raw.alloc(NaN), 'ERR_INVALID_SIZE').message).toContain('NaN')
    expect(expectError(() => heap.raw.alloc(1.5), 'ERR_INVALID_SIZE').message).toContain('1.5')
    expect(expectError(() => heap.raw.alloc('12' as unknown as number), 'ERR_INVALID_SIZE').message).toContain('"12"')
  })

  it('valid but unsatisfiable sizes are ERR_OUT_OF_MEMORY, as malloc says ENOMEM', () => {
    const { heap, live } = busyHeap()
    for (const size of [2 ** 36 * 16, 2 ** 50, Number.MAX_SAFE_INTEGER]) {
      expectFailureLeavesHeap(heap, () => heap.raw.alloc(size), 'ERR_OUT_OF_MEMORY')
      expectFailureLeavesHeap(heap, () => heap.raw.realloc(live, size), 'ERR_OUT_OF_MEMORY')
    }
  })

  it('size 0 (and -0) allocates a minimum chunk of its own', () => {
    const { heap } = busyHeap()
    const a = heap.raw.alloc(0)
    const b = heap.raw.alloc(-0)
    expect(a).not.toBe(b)
    expect(heap.raw.sizeOf(a)).toBe(16)
    expect(heap.raw.sizeOf(b)).toBe(16)
    const small = lowEndHeap({ source: 'mmap', alignment: 8 })
    expect(small.raw.sizeOf(small.raw.alloc(0))).toBe(8)
    heap.check()
  })

  it('the largest safe integer and a float that is a whole number are sizes like any other', () => {
    const { heap } = busyHeap()
    expect(heap.raw.sizeOf(heap.raw.alloc(1e3))).toBe(1008)
    expect(heap.raw.sizeOf(heap.raw.alloc(64.0))).toBe(64)
  })
})

describe('alignments', () => {
  const BAD_ALIGNMENTS: unknown[] = [3, 5, 6, 12, 24, 48, 100, 4097, 2 ** 20 + 16, 2 ** 21, 2 ** 30, 2 ** 52, -16, -1, 0.5, 16.5, NaN, Infinity, -Infinity, '16', null, true, {}, 16n]

  it('not a power of two, above 1 MiB, or not a number is ERR_INVALID_ALIGNMENT', () => {
    const { heap } = busyHeap()
    const alloc = heap.raw.alloc as (size: number, align?: unknown) => number
    for (const align of BAD_ALIGNMENTS) {
      expectFailureLeavesHeap(heap, () => alloc(64, align), 'ERR_INVALID_ALIGNMENT')
      expectFailureLeavesHeap(heap, () => heap.alloc(64, { align: align as number }), 'ERR_INVALID_ALIGNMENT')
    }
    expect(expectError(() => alloc(64, 24), 'ERR_INVALID_ALIGNMENT').message).toContain('24')
  })

  it('every power of two up to 1 MiB is honoured; below the heap alignment it is the heap alignment', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0 })
    for (let align = 1; align <= 2 ** 20; align *= 2) {
      const address = heap.raw.alloc(24, align)
      expect(address % Math.max(align, 16), `align ${align}`).toBe(0)
      expect(heap.raw.sizeOf(address)).toBe(32)
    }
    // undefined means the heap alignment; 0 is refused, as alloc's { align: 0 } is (DESIGN; issue 13
    // defect 16: the raw path had taken 0 as the heap alignment).
    expect(heap.raw.alloc(1, undefined) % 16).toBe(0)
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(1, 0), 'ERR_INVALID_ALIGNMENT')
    heap.check()
  })
})

describe('addresses', () => {
  it('non-numbers and impossible numbers are ERR_INVALID_POINTER', () => {
    const { heap, live } = busyHeap()
    const free = heap.raw.free as (address: unknown) => void
    const realloc = heap.raw.realloc as (address: unknown, size: number) => number
    const sizeOf = heap.raw.sizeOf as (address: unknown) => number
    for (const address of [...NOT_NUMBERS, ...BAD_NUMBERS, live + 0.5, -live]) {
      expectFailureLeavesHeap(heap, () => free(address), 'ERR_INVALID_POINTER')
      expectFailureLeavesHeap(heap, () => realloc(address, 16), 'ERR_INVALID_POINTER')
      expectFailureLeavesHeap(heap, () => sizeOf(address), 'ERR_INVALID_POINTER')
    }
  })

  it('anything but the start of a chunk of this heap is ERR_INVALID_POINTER', () => {
    const { heap, live, other } = busyHeap()
    const stats = heap.stats()
    const wilderness = stats.heapEnd - stats.topBytes
    const foreignHeap = lowEndHeap({ source: 'mmap' })
    const foreign = foreignHeap.raw.alloc(100)
    const brkHeap = lowEndHeap({ source: 'brk' })
    const onBrk = brkHeap.raw.alloc(100)
    const addresses = [
      0,
      16,
      live + 1, // misaligned
      live + 8, // misaligned for a 16-byte granule
      live + 16, // inside the chunk, on a granule
      other + 160, // inside another chunk
      live - 16, // below the heap
      stats.heapStart - 4096,
      wilderness, // the top is not a chunk
      wilderness + 64,
      stats.heapEnd, // just past the heap
      stats.heapEnd + (1 << 20),
      foreign, // a live chunk of another heap
      onBrk, // a live chunk of a brk heap
      2 ** 47,
      Number.MAX_SAFE_INTEGER,
    ]
    for (const address of addresses) {
      expectFailureLeavesHeap(heap, () => heap.raw.free(address), 'ERR_INVALID_POINTER')
      expectFailureLeavesHeap(heap, () => heap.raw.realloc(address, 16), 'ERR_INVALID_POINTER')
      expectFailureLeavesHeap(heap, () => heap.raw.sizeOf(address), 'ERR_INVALID_POINTER')
    }
    // The other heaps never noticed.
    expect(foreignHeap.raw.sizeOf(foreign)).toBe(112)
    expect(brkHeap.raw.sizeOf(onBrk)).toBe(112)
    expect(heap.raw.sizeOf(live)).toBe(112)
    heap.check()
    foreignHeap.check()
    brkHeap.check()
  })

  it('the message names the address', () => {
    const { heap, live } = busyHeap()
    expect(expectError(() => heap.raw.free(live + 16), 'ERR_INVALID_POINTER').message).toContain((live + 16).toString(16))
  })

  it('a second free of a chunk that is still a free chunk start is ERR_DOUBLE_FREE; realloc and sizeOf of it too', () => {
    const { heap, freed } = busyHeap()
    const error = expectFailureLeavesHeap(heap, () => heap.raw.free(freed), 'ERR_DOUBLE_FREE')
    expect(error.message).toContain(freed.toString(16))
    expectFailureLeavesHeap(heap, () => heap.raw.realloc(freed, 16), 'ERR_DOUBLE_FREE')
    expectFailureLeavesHeap(heap, () => heap.raw.sizeOf(freed), 'ERR_DOUBLE_FREE')
    // A freshly freed chunk, free-listed between two live ones.
    const a = heap.raw.alloc(48)
    heap.raw.alloc(16)
    heap.raw.free(a)
    expectFailureLeavesHeap(heap, () => heap.raw.free(a), 'ERR_DOUBLE_FREE')
  })

  it('a chunk that merged away no longer exists: freeing its address again is ERR_INVALID_POINTER', () => {
    // first-fit merges every free at once (best fit defers small ones: see the next test).
    const heap = lowEndHeap({ source: 'mmap', strategy: 'first-fit', trimThreshold: Infinity })
    const a = heap.raw.alloc(32)
    const b = heap.raw.alloc(32)
    heap.raw.alloc(16)
    heap.raw.free(a)
    heap.raw.free(b) // merges into a
    expectFailureLeavesHeap(heap, () => heap.raw.free(b), 'ERR_INVALID_POINTER')
    expectFailureLeavesHeap(heap, () => heap.raw.free(a), 'ERR_DOUBLE_FREE')
    const c = heap.raw.alloc(4096) // the last chunk: freeing it merges it into the top
    heap.raw.free(c)
    expectFailureLeavesHeap(heap, () => heap.raw.free(c), 'ERR_INVALID_POINTER')
  })

  it('best fit: a deferred chunk is still a free chunk start (ERR_DOUBLE_FREE) until it merges away', () => {
    const heap = lowEndHeap({ source: 'mmap', trimThreshold: Infinity })
    const a = heap.raw.alloc(32)
    const b = heap.raw.alloc(32)
    const s = heap.raw.alloc(16)
    heap.raw.free(a)
    heap.raw.free(b) // deferred: not merged into a
    expect(layout(heap, a)).toEqual([
      [0, 32, 'deferred'],
      [32, 32, 'deferred'],
      [64, 16, 'live'],
    ])
    for (const address of [a, b]) {
      expectFailureLeavesHeap(heap, () => heap.raw.free(address), 'ERR_DOUBLE_FREE')
      expectFailureLeavesHeap(heap, () => heap.raw.realloc(address, 16), 'ERR_DOUBLE_FREE')
      expectFailureLeavesHeap(heap, () => heap.raw.sizeOf(address), 'ERR_DOUBLE_FREE')
    }
    // trim() merges the deferred chunks, and gives back the wilderness above the live separator.
    expect(heap.trim()).toBe(65536 - 80)
    expect(layout(heap, a)).toEqual([
      [0, 64, 'free'],
      [64, 16, 'live'],
    ])
    expectFailureLeavesHeap(heap, () => heap.raw.free(b), 'ERR_INVALID_POINTER')
    expectFailureLeavesHeap(heap, () => heap.raw.sizeOf(b), 'ERR_INVALID_POINTER')
    expectFailureLeavesHeap(heap, () => heap.raw.free(a), 'ERR_DOUBLE_FREE')
    // A chunk of 64 granules or more is never deferred: the last one merges into the top at once.
    const c = heap.raw.alloc(1024)
    expect(c).toBe(s + 16)
    heap.raw.free(c)
    expect(coreStats(heap)).toMatchObject({ deferredChunks: 0, topBytes: 65536, heapBytes: 80 + 65536 })
    expectFailureLeavesHeap(heap, () => heap.raw.free(c), 'ERR_INVALID_POINTER')
  })

  it('after reset(), no old address is a chunk any more', () => {
    const { heap, live, freed, other } = busyHeap()
    heap.reset()
    for (const address of [live, freed, other]) {
      expectFailureLeavesHeap(heap, () => heap.raw.free(address), 'ERR_INVALID_POINTER')
      expectFailureLeavesHeap(heap, () => heap.raw.sizeOf(address), 'ERR_INVALID_POINTER')
    }
  })
})

describe('options', () => {
  const BAD_OPTIONS: Array<Record<string, unknown>> = [
    { alignment: 0 },
    { alignment: 4 },
    { alignment: 12 },
    { alignment: 24 },
    { alignment: 8192 },
    { alignment: -16 },
    { alignment: 16.5 },
    { alignment: NaN },
    { alignment: Infinity },
    { alignment: '16' },
    { alignment: null },
    { growth: -1 },
    { growth: 1.5 },
    { growth: NaN },
    { growth: Infinity },
    { growth: 2 ** 40 + 1 },
    { growth: 2 ** 53 },
    { growth: '65536' },
    { trimThreshold: -1 },
    { trimThreshold: NaN },
    { trimThreshold: -Infinity },
    { trimThreshold: 0.5 },
    { trimThreshold: '0' },
    { maxHeapBytes: 0 },
    { maxHeapBytes: -1 },
    { maxHeapBytes: NaN },
    { maxHeapBytes: 1.5 },
    { maxHeapBytes: -Infinity },
    { maxHeapBytes: '1' },
    { segregateSmall: -1 },
    { segregateSmall: 1.5 },
    { segregateSmall: Infinity },
    { segregateSmall: 2 ** 20 + 1 },
    { segregateSmall: '64' },
    { strategy: 'best' },
    { strategy: 'BEST-FIT' },
    { strategy: 'buddy' },
    { strategy: 1 },
    { strategy: null },
    { source: 'sbrk' },
    { source: 'heap' },
    { source: 1 },
    { backend: 'c' },
    { backend: true },
    { split: 'yes' },
    { split: 1 },
    { split: null },
    { coalesce: 0 },
    { coalesce: 'false' },
    { trackLeaks: 'yes' },
    { trackLeaks: 1 },
    { growht: 1 }, // a misspelt option
    { alignmentBytes: 16 },
  ]

  for (const options of BAD_OPTIONS) {
    it(`createHeap(${JSON.stringify(options, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}) is ERR_INVALID_OPTION`, () => {
      expectError(() => createHeap({ backend: 'native', ...options } as HeapOptions), 'ERR_INVALID_OPTION')
    })
  }

  it('options that are not an object are ERR_INVALID_OPTION', () => {
    for (const options of [null, 5, 'best-fit', true]) {
      expectError(() => createHeap(options as unknown as HeapOptions), 'ERR_INVALID_OPTION')
    }
  })

  it('the message names the option and the value', () => {
    const error = expectError(() => createHeap({ backend: 'native', alignment: 24 }), 'ERR_INVALID_OPTION')
    expect(error.message).toContain('alignment')
    expect(error.message).toContain('24')
  })

  it('the edges of every range are accepted', () => {
    const edges: HeapOptions[] = [
      { alignment: 8 },
      { alignment: 4096 },
      { growth: 0 },
      { growth: 2 ** 40 },
      { trimThreshold: 0 },
      { trimThreshold: Infinity },
      { maxHeapBytes: 1 },
      { maxHeapBytes: Infinity },
      { split: false, coalesce: false },
    ]
    for (const options of edges) {
      const heap = lowEndHeap({ source: 'mmap', ...options })
      expect(heap.backend).toBe('native')
      if (options.maxHeapBytes === 1) {
        expectFailureLeavesHeap(heap, () => heap.raw.alloc(1), 'ERR_OUT_OF_MEMORY')
      } else {
        const a = heap.raw.alloc(100)
        expect(a % (options.alignment ?? 16)).toBe(0)
        heap.raw.free(a)
      }
      heap.check()
    }
  })
})

describe('a closed heap', () => {
  it('everything after close is ERR_HEAP_CLOSED; close itself is idempotent', () => {
    const heap = lowEndHeap({ source: 'mmap' })
    const live = heap.raw.alloc(64)
    const handle = heap.alloc(64)
    const { alloc, free, realloc, sizeOf } = heap.raw
    heap.close()
    heap.close()
    heap[Symbol.dispose]()
    const calls: Array<() => unknown> = [
      () => heap.raw.alloc(16),
      () => heap.raw.alloc(-1), // closed comes first, whatever the arguments
      () => heap.raw.alloc(16, 3),
      () => heap.raw.free(live),
      () => heap.raw.free(12345),
      () => heap.raw.realloc(live, 128),
      () => heap.raw.sizeOf(live),
      () => alloc(16),
      () => free(live),
      () => realloc(live, 16),
      () => sizeOf(live),
      () => heap.alloc(16),
      () => heap.allocArray(Float64Array, 4),
      () => heap.realloc(handle, 128),
      () => heap.free(handle),
      () => handle.free(),
      () => handle.bytes(),
      () => heap.reset(),
      () => heap.trim(),
      () => heap.stats(),
      () => heap.chunks(),
      () => heap.check(),
    ]
    for (const call of calls) expectError(call, 'ERR_HEAP_CLOSED')
    expect(handle.live).toBe(false)
  })

  it('a brk heap gives its memory back on close', (ctx) => {
    skipUnlessBreakCanRise(ctx, 2 << 20)
    const before = testing().currentBreak()
    const heap = lowEndHeap({ source: 'brk' })
    heap.raw.alloc(1 << 20)
    expect(testing().currentBreak()).toBeGreaterThan(before)
    heap.close()
    expect(testing().currentBreak()).toBe(before)
  })
})

describe('errors', () => {
  it('are AllocatorError instances with a code, from every layer', () => {
    const { heap } = busyHeap()
    const errors = [
      expectError(() => heap.raw.alloc(-1), 'ERR_INVALID_SIZE'),
      expectError(() => heap.raw.free(1), 'ERR_INVALID_POINTER'),
      expectError(() => createHeap({ backend: 'native', growth: -1 }), 'ERR_INVALID_OPTION'),
    ]
    for (const error of errors) {
      expect(error).toBeInstanceOf(AllocatorError)
      expect(error).toBeInstanceOf(Error)
      expect(error.name).toBe('AllocatorError')
    }
  })

  it('a heap stays fully usable after any number of failures', () => {
    const { heap, live } = busyHeap()
    for (let i = 0; i < 100; i++) {
      expect(() => heap.raw.free(live + 16)).toThrow(AllocatorError)
      expect(() => heap.raw.alloc(-i - 1)).toThrow(AllocatorError)
    }
    const a = heap.raw.alloc(1000)
    expect(heap.raw.realloc(a, 2000)).toBeGreaterThan(0)
    heap.check()
  })
})

