/**
 * Which free chunk each strategy picks, on free tables crafted chunk by chunk.
 *
 * Every scenario builds a fresh mmap heap (so that addresses are deterministic: the heap starts
 * at its page-aligned reservation and nothing else moves its end), allocates a row of chunks with
 * a live 16-byte separator after each one, and frees some of them in a chosen order. The
 * separators keep the holes from merging; the free order decides the table's slot order, which
 * is what the linear strategies scan.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Heap, HeapOptions } from '../../lib/index'
import { closeHeaps, lowEndHeap, layout, prng, type Layout, type StrategyName } from './helpers'

afterEach(closeHeaps)

const SEP = 16
/** The most search steps an indexed search may take: down, up and down the six trie levels, and the record. */
const INDEXED_STEP_LIMIT = 19

interface Row {
  heap: Heap
  base: number
  /** Offsets (from base) of the row's chunks; the separator of hole i is at holes[i] + sizes[i]. */
  holes: number[]
  sizes: number[]
  /** Offset of the top (the wilderness) after the row. */
  top: number
  /** Best fit with merging on: a freed hole of fewer than 64 granules stays a deferred chunk. */
  defers: boolean
}

/** The state chunks() gives a freed, untouched hole of `size` bytes (16-byte granules). */
function holeState(row: Row, size: number): 'free' | 'deferred' {
  return row.defers && size < 64 * 16 ? 'deferred' : 'free'
}

/**
 * A heap with chunks of `sizes`, each followed by a live separator, then the chunks at the
 * indexes of `freeOrder` freed in that order.
 */
function craft(strategy: StrategyName, sizes: number[], freeOrder: number[], options: HeapOptions = {}): Row {
  const heap = lowEndHeap({ source: 'mmap', strategy, growth: 1 << 20, trimThreshold: Infinity, ...options })
  const addresses: number[] = []
  for (const size of sizes) {
    addresses.push(heap.raw.alloc(size))
    heap.raw.alloc(SEP)
  }
  const base = addresses[0]
  expect(base).toBe(heap.stats().heapStart)
  const holes = addresses.map((a) => a - base)
  let offset = 0
  for (let i = 0; i < sizes.length; i++) {
    expect(holes[i], 'the row is contiguous').toBe(offset)
    offset += sizes[i] + SEP
  }
  for (const i of freeOrder) heap.raw.free(base + holes[i])
  heap.check()
  return { heap, base, holes, sizes, top: offset, defers: strategy === 'best-fit' && options.coalesce !== false }
}

/** The row's layout with the chunks at `taken` (index -> size taken) cut out of their holes. */
function rowLayout(row: Row, free: Set<number>): Layout {
  const out: Layout = []
  row.sizes.forEach((size, i) => {
    out.push([row.holes[i], size, free.has(i) ? holeState(row, size) : 'live'])
    out.push([row.holes[i] + size, SEP, 'live'])
  })
  return out
}

/** Allocates `size` and returns [offset, searchSteps taken]. */
function allocAt(row: Row, size: number, align?: number): [number, number] {
  const steps = row.heap.stats().searchSteps
  const address = row.heap.raw.alloc(size, align)
  row.heap.check()
  return [address - row.base, row.heap.stats().searchSteps - steps]
}

/**
 * Replaces row entry `hole` of `expected` by a live chunk of `taken` bytes and, when the hole was
 * larger, the free remainder behind it (what splitting leaves).
 */
function cut(expected: Layout, row: Row, hole: number, taken: number): Layout {
  const at = expected.findIndex(([offset]) => offset === row.holes[hole])
  const size = row.sizes[hole]
  const replacement: Layout = [[row.holes[hole], taken, 'live']]
  if (taken < size) replacement.push([row.holes[hole] + taken, size - taken, 'free'])
  return [...expected.slice(0, at), ...replacement, ...expected.slice(at + 1)]
}

describe('placement on a crafted free table', () => {
  // Holes (address order):     H0   H1   H2  H3   H4  H5
  const sizes = [64, 128, 48, 128, 48, 256]
  // Table slot order: H3, H4, H0, H1, H2, H5. H3 (a 128 that is not the lowest 128) and H4 (a
  // 48 that is not the lowest 48) come first, so table order and address order disagree.
  const freeOrder = [3, 4, 0, 1, 2, 5]
  const allFree = new Set(freeOrder)

  it('the crafted row is exactly what was asked for', () => {
    const row = craft('best-fit', sizes, freeOrder)
    expect(layout(row.heap, row.base)).toEqual(rowLayout(row, allFree))
    const stats = row.heap.stats()
    expect(stats).toMatchObject({
      freeChunks: 6,
      freeBytes: 64 + 128 + 48 + 128 + 48 + 256,
      liveChunks: 6,
      liveBytes: 6 * SEP,
      largestFreeChunk: 256,
      heapBytes: 1 << 20,
      topBytes: (1 << 20) - row.top,
      segments: 1,
      searchSteps: 0,
    })
  })

  // [strategy, request, hole taken or 'top', exact search steps or undefined for an indexed bound]
  const cases: Array<[StrategyName, number, number | 'top', number | undefined]> = [
    // An exact fit: best fit takes the most recently freed exact hole (H2, freed after H4)
    // through the index ...
    ['best-fit', 48, 2, undefined],
    // ... the original note's scan stops at the first exact fit in table order (slot 1), even
    // though a fitting 128 came before it in the table.
    ['best-fit-linear', 48, 4, 2],
    ['first-fit', 48, 0, 6],
    // The rover is at the top after the row: nothing at or after it fits, so next fit wraps.
    ['next-fit', 48, 0, 6],
    ['worst-fit', 48, 5, undefined],
    ['bump', 48, 'top', 0],
    // No exact fit: the smallest that fits. Ties: best fit takes the most recently freed (H1,
    // freed after H3), the linear scan keeps the first one in table order (H3) and scans all six
    // records.
    ['best-fit', 100, 1, undefined],
    ['best-fit-linear', 100, 3, 6],
    ['first-fit', 100, 1, 6],
    ['next-fit', 100, 1, 6],
    ['worst-fit', 100, 5, undefined],
    ['bump', 100, 'top', 0],
    // Nothing fits: every strategy carves the top.
    ['best-fit', 300, 'top', undefined],
    ['best-fit-linear', 300, 'top', 6],
    ['first-fit', 300, 'top', 6],
    ['next-fit', 300, 'top', 6],
    ['worst-fit', 300, 'top', undefined],
    ['bump', 300, 'top', 0],
    // Size 0 is a minimum chunk (one granule): the smallest hole that fits is a 48, no exact fit.
    ['best-fit', 0, 2, undefined],
    ['best-fit-linear', 0, 4, 6],
    ['first-fit', 0, 0, 6],
    ['worst-fit', 0, 5, undefined],
  ]

  for (const [strategy, request, hole, steps] of cases) {
    it(`${strategy}: alloc(${request}) takes ${hole === 'top' ? 'the top' : `hole H${hole}`}`, () => {
      const row = craft(strategy, sizes, freeOrder)
      const [offset, taken] = allocAt(row, request)
      const granules = Math.max(16, Math.ceil(request / 16) * 16)
      expect(row.heap.raw.sizeOf(row.base + offset)).toBe(granules)
      let expected = rowLayout(row, allFree)
      if (hole === 'top') {
        expect(offset).toBe(row.top)
        // No free chunk fits: the deferred ones are merged (each between live separators, so
        // each stays its own free chunk) before the top is carved.
        expected = expected.map(([at, size, state]) => [at, size, state === 'deferred' ? 'free' : state])
        expected.push([row.top, granules, 'live'])
      } else {
        expect(offset).toBe(row.holes[hole])
        expected = cut(expected, row, hole, granules)
      }
      expect(layout(row.heap, row.base)).toEqual(expected)
      if (steps === undefined) {
        expect(taken).toBeGreaterThan(0)
        expect(taken).toBeLessThanOrEqual(INDEXED_STEP_LIMIT)
      } else {
        expect(taken).toBe(steps)
      }
      const stats = row.heap.stats()
      expect(stats.liveChunks).toBe(7)
      expect(stats.liveBytes).toBe(6 * SEP + granules)
      expect(stats.searchSteps).toBe(taken)
    })
  }

  // Best fit's bins are LIFO (native/core/free_table.h, "Tie rule"): among equal sizes the most
  // recently freed chunk is taken, whatever the addresses. 32-byte holes are deferred chunks,
  // 2 KiB ones merged at once (a directly indexed bin), 80 KiB ones in the size trie's bins; all
  // follow the rule.
  for (const size of [32, 2048, 80 * 1024]) {
    it(`best-fit: equal exact holes of ${size} bytes go most recently freed first, whatever their addresses`, () => {
      const row = craft('best-fit', [size, size, size, size], [3, 1, 2, 0])
      const picks = [0, 1, 2, 3].map(() => allocAt(row, size)[0])
      expect(picks).toEqual([row.holes[0], row.holes[2], row.holes[1], row.holes[3]])
      expect(allocAt(row, size)[0]).toBe(row.top)
    })
  }

  it('best-fit-linear: equal exact holes go in table order (the order they were freed)', () => {
    const row = craft('best-fit-linear', [32, 32, 32, 32], [3, 1, 2, 0])
    const picks = [0, 1, 2, 3].map(() => allocAt(row, 32))
    // Each one is the first in-use slot of the table, so every search stops at its first record.
    expect(picks).toEqual([
      [row.holes[3], 1],
      [row.holes[1], 1],
      [row.holes[2], 1],
      [row.holes[0], 1],
    ])
  })

  it('best-fit-linear: vacant slots are reused, so a chunk freed later can come first', () => {
    const run = (strategy: StrategyName): number[] => {
      const row = craft(strategy, [32, 32, 32], [0, 1]) // slots: H0, H1
      const first = allocAt(row, 32) // the linear scans: H0, and the table's slot 0 becomes vacant
      row.heap.raw.free(row.base + row.holes[2]) // H2 takes the vacant slot 0
      const second = allocAt(row, 32)
      return [first[0], second[0], second[1]].map((v, i) => (i < 2 ? row.holes.indexOf(v) : v))
    }
    // The scan meets H2 in slot 0 first and stops there (one record read); first fit takes the
    // lower H1. Best fit's bins are LIFO: it takes H1 first (freed after H0), then H2.
    expect(run('best-fit-linear')).toEqual([0, 2, 1])
    expect(run('first-fit').slice(0, 2)).toEqual([0, 1])
    expect(run('best-fit').slice(0, 2)).toEqual([1, 2])
  })

  it('best-fit: an exact fit beats a smaller-address larger hole, and splitting keeps the rest', () => {
    const row = craft('best-fit', [96, 64, 80], [0, 1, 2])
    expect(allocAt(row, 80)[0]).toBe(row.holes[2])
    expect(allocAt(row, 40)[0]).toBe(row.holes[1]) // 48 bytes from the 64: the smallest that fits
    expect(layout(row.heap, row.base)).toEqual([
      [row.holes[0], 96, 'deferred'], // freed and untouched: best fit has not merged it
      [row.holes[0] + 96, SEP, 'live'],
      [row.holes[1], 48, 'live'],
      [row.holes[1] + 48, 16, 'free'],
      [row.holes[1] + 64, SEP, 'live'],
      [row.holes[2], 80, 'live'],
      [row.holes[2] + 80, SEP, 'live'],
    ])
    // The 16-byte remainder is now the exact fit for a 1..16 byte request.
    expect(allocAt(row, 1)[0]).toBe(row.holes[1] + 48)
  })

  it('first-fit and next-fit part ways once the rover has moved on', () => {
    const sequence = (strategy: StrategyName): number[] => {
      const row = craft(strategy, [64, 64, 64], [0, 1, 2])
      const out: number[] = []
      out.push(allocAt(row, 64)[0]) // both: H0 (next fit wraps from the top)
      out.push(allocAt(row, 64)[0]) // both: H1
      row.heap.raw.free(row.base + row.holes[0])
      out.push(allocAt(row, 64)[0]) // first fit: H0 again; next fit: H2, after the rover
      out.push(allocAt(row, 64)[0]) // first fit: H2; next fit: wraps to H0
      out.push(allocAt(row, 64)[0]) // both: the top
      return out.map((offset) => (offset === row.top ? -1 : row.holes.indexOf(offset)))
    }
    expect(sequence('first-fit')).toEqual([0, 1, 0, 2, -1])
    expect(sequence('next-fit')).toEqual([0, 1, 2, 0, -1])
  })

  it('next-fit takes the rest of a split chunk next, first-fit goes back to the lowest address', () => {
    const run = (strategy: StrategyName): number[] => {
      const row = craft(strategy, [32, 128], [0, 1])
      const a = allocAt(row, 32)[0] // H0 (exact, lowest; next fit wraps)
      const b = allocAt(row, 32)[0] // H1, split: rover lands at H1 + 32
      row.heap.raw.free(row.base + a) // H0 is free again, below the rover
      const c = allocAt(row, 32)[0]
      return [a, b, c].map((offset) => offset - row.holes[1])
    }
    expect(run('first-fit')).toEqual([-48, 0, -48])
    expect(run('next-fit')).toEqual([-48, 0, 32])
  })

  it('worst-fit: the largest chunk, ties to the most recently binned; the top when the largest is too small', () => {
    const row = craft('worst-fit', [256, 32, 256], [2, 1, 0])
    expect(allocAt(row, 16)[0]).toBe(row.holes[0]) // two 256s: H0, freed last
    expect(allocAt(row, 16)[0]).toBe(row.holes[2]) // 256 beats the 240 left in H0
    // Two 240s left: H2's, the remainder put into the bin last (H0's went in before it).
    expect(allocAt(row, 16)[0]).toBe(row.holes[2] + 16)
    expect(allocAt(row, 16)[0]).toBe(row.holes[0] + 16)
    expect(allocAt(row, 512)[0]).toBe(row.top)
  })

  it('bump never reuses a free chunk; freeing the last chunks rolls the pointer back', () => {
    const row = craft('bump', [64, 64], [0])
    const a = allocAt(row, 64)[0]
    expect(a).toBe(row.top)
    const topBytes = row.heap.stats().topBytes
    row.heap.raw.free(row.base + a)
    expect(row.heap.stats().topBytes).toBe(topBytes + 64)
    expect(allocAt(row, 64)[0]).toBe(row.top) // the same place again
    row.heap.raw.free(row.base + row.top)
    // Free H1 and its separator: the separator is the last chunk, so everything from H1 up
    // rolls back into the top, and the next allocation lands at H1.
    row.heap.raw.free(row.base + row.holes[1])
    row.heap.raw.free(row.base + row.holes[1] + 64)
    row.heap.check()
    expect(layout(row.heap, row.base)).toEqual([
      [0, 64, 'free'],
      [64, SEP, 'live'],
    ])
    expect(allocAt(row, 64)[0]).toBe(row.holes[1])
    // The free 64 at H0 is never reused, even for an exact fit.
    expect(allocAt(row, 64)[0]).toBe(row.holes[1] + 64)
  })

  it('an aligned request slides into a hole: the pad stays free below it, the rest above', () => {
    for (const strategy of ['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit'] as const) {
      const row = craft(strategy, [48, 512], [0, 1])
      expect(row.base % 4096).toBe(0)
      // 64 bytes at a 256 boundary: only H1 (offset 64) has room for the worst-case pad.
      const [offset] = allocAt(row, 64, 256)
      expect(offset, strategy).toBe(256)
      expect(layout(row.heap, row.base), strategy).toEqual([
        [0, 48, holeState(row, 48)], // best fit: deferred
        [48, SEP, 'live'],
        [64, 192, 'free'], // the pad
        [256, 64, 'live'],
        [320, 256, 'free'], // the remainder
        [576, SEP, 'live'],
      ])
    }
  })

  it('an aligned request from the top leaves its pad as a free chunk', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 1 << 20, trimThreshold: Infinity })
    const base = heap.raw.alloc(16)
    const address = heap.raw.alloc(100, 4096)
    expect(address - base).toBe(4096)
    expect(layout(heap, base)).toEqual([
      [0, 16, 'live'],
      [16, 4096 - 16, 'free'],
      [4096, 112, 'live'],
    ])
    heap.check()
  })
})

describe('search steps', () => {
  it('best-fit stays flat while best-fit-linear grows with the number of free chunks', () => {
    const perAlloc = (strategy: StrategyName, holes: number): number => {
      // `holes` free 32s, then ask for 48s: no exact fit anywhere, so the scan reads every record.
      const sizes = Array.from({ length: holes }, () => 32)
      // An 8 MiB heap may defer all 1,000 holes (deferral's total bound grows with the heap).
      const row = craft(strategy, [...sizes, 64], sizes.map((_, i) => i).concat(holes), { growth: 8 << 20 })
      const [, steps] = allocAt(row, 48)
      return steps
    }
    expect(perAlloc('best-fit-linear', 10)).toBe(11)
    expect(perAlloc('best-fit-linear', 100)).toBe(101)
    expect(perAlloc('best-fit-linear', 1000)).toBe(1001)
    expect(perAlloc('first-fit', 1000)).toBe(1001)
    const small = perAlloc('best-fit', 10)
    expect(small).toBeLessThanOrEqual(INDEXED_STEP_LIMIT)
    expect(perAlloc('best-fit', 1000)).toBe(small)
    expect(perAlloc('worst-fit', 1000)).toBeLessThanOrEqual(INDEXED_STEP_LIMIT)
  })

  it('done-when: with 4,000 free chunks of distinct sizes, best fit examines at most 64 records per allocation on average', () => {
    const COUNT = 4000
    const ALLOCS = 1000
    const measure = (strategy: StrategyName): number => {
      const heap = lowEndHeap({ source: 'mmap', strategy, alignment: 8, growth: 80 << 20, trimThreshold: Infinity })
      const chunks: number[] = []
      // Sizes 1..4000 granules in a scrambled address order, each behind a live separator.
      for (let i = 0; i < COUNT; i++) {
        chunks.push(heap.raw.alloc(8 * (((i * 2654435761) % COUNT) + 1)))
        heap.raw.alloc(8)
      }
      for (const address of chunks) heap.raw.free(address)
      let stats = heap.stats()
      expect(stats.freeChunks).toBe(COUNT)
      expect(stats.segments).toBe(1)
      const before = stats.searchSteps
      // Requests of every kind: exact fits, sizes between free sizes, sizes already taken.
      const random = prng(4000)
      for (let i = 0; i < ALLOCS; i++) heap.raw.alloc(1 + Math.floor(random() * 8 * COUNT))
      stats = heap.stats()
      expect(stats.allocs).toBe(2 * COUNT + ALLOCS)
      heap.check()
      return (stats.searchSteps - before) / ALLOCS
    }
    const bestFit = measure('best-fit')
    const linear = measure('best-fit-linear')
    console.log(`search steps per allocation over 4,000 free chunks: best-fit ${bestFit}, best-fit-linear ${linear}`)
    expect(bestFit).toBeGreaterThan(0)
    expect(bestFit).toBeLessThanOrEqual(64)
    // The linear scan reads on average hundreds of records per allocation.
    expect(linear).toBeGreaterThan(500)
    expect(linear).toBeGreaterThan(20 * bestFit)
  })
})
