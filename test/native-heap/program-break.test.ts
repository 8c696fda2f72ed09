/**
 * The brk source moves the real program break, and shares it with foreign code.
 *
 * The kernel's `[heap]` mapping in /proc/self/maps is [start_brk, brk) rounded to pages, so it is
 * an outside witness that the break really moved. testing.moveBreak() plays foreign code (glibc's
 * main arena, say) moving the break between two of the heap's own moves.
 *
 * vitest runs this file in a child process ('forks' pool), so the test runs on a main thread.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHeap } from '../../lib/index'
import { brkMapping, closeHeaps, lowEndHeap, expectFailureLeavesHeap, layout, MiB, skipUnlessBreakCanRise, testing } from './helpers'

afterEach(closeHeaps)

const PAGE = 4096
const GROWTH = 65536

const pageUp = (value: number) => Math.ceil(value / PAGE) * PAGE
const roundUp16 = (value: number) => Math.ceil(value / 16) * 16

describe('the brk source moves the real break', () => {
  it.skipIf(process.env.MEMORY_ALLOCATOR_BACKEND === 'js')('on the main thread createHeap() is native on brk', () => {
    const heap = createHeap({ trackLeaks: false })
    try {
      expect(heap.backend).toBe('native')
      expect(heap.source).toBe('brk')
      expect(heap.strategy).toBe('best-fit')
      expect(heap.fallbackReason).toBeUndefined()
    } finally {
      heap.close()
    }
  })

  it('done-when: an 8 MiB allocation moves the end of [heap] by 8 MiB and lies inside it; free + trim moves it back', (ctx) => {
    skipUnlessBreakCanRise(ctx, 16 * MiB)
    const { currentBreak } = testing()
    const breakBefore = currentBreak()
    const endBefore = brkMapping()?.end ?? pageUp(breakBefore)
    const heap = lowEndHeap({ source: 'brk' })
    expect(heap.source).toBe('brk')
    const chunk = heap.alloc(8 * MiB)
    const address = chunk.address
    const grown = brkMapping()
    expect(grown, 'a [heap] mapping exists once the break moved').toBeDefined()
    expect(grown!.end - endBefore).toBeGreaterThanOrEqual(8 * MiB)
    expect(address).toBeGreaterThanOrEqual(grown!.start)
    expect(address + 8 * MiB).toBeLessThanOrEqual(grown!.end)
    expect(grown!.perms).toBe('rw-p')
    // The heap starts where the break was, and the break is the heap's end.
    const stats = heap.stats()
    expect(stats.heapStart).toBe(roundUp16(breakBefore))
    expect(address).toBe(stats.heapStart)
    expect(currentBreak()).toBe(stats.heapEnd)
    expect(currentBreak() - breakBefore).toBe(stats.heapBytes)
    expect(stats.heapBytes).toBeGreaterThanOrEqual(8 * MiB)
    expect(stats.segments).toBe(1)
    // It is real memory: write all of it.
    const bytes = chunk.bytes()
    bytes.fill(0xa5)
    expect(bytes[0] + bytes[8 * MiB - 1]).toBe(2 * 0xa5)

    chunk.free()
    // Above trimThreshold: the heap gave all but `growth` bytes back by itself ...
    expect(currentBreak()).toBe(stats.heapStart + GROWTH)
    expect(heap.trim()).toBe(GROWTH + (stats.heapStart - breakBefore))
    // ... and trim() the rest: the break is back where it was.
    expect(currentBreak()).toBe(breakBefore)
    const shrunk = brkMapping()
    expect(grown!.end - (shrunk?.end ?? pageUp(breakBefore))).toBeGreaterThanOrEqual(8 * MiB)
    expect(heap.stats()).toMatchObject({ heapBytes: 0, segments: 0, bytesReleased: stats.heapBytes })
    heap.check()
  })

  it('heaps on the break grow one above the other, and each trims only while it is on top', (ctx) => {
    skipUnlessBreakCanRise(ctx, MiB)
    const { currentBreak } = testing()
    const breakBefore = currentBreak()
    const low = lowEndHeap({ source: 'brk', growth: GROWTH, trimThreshold: Infinity })
    const high = lowEndHeap({ source: 'brk', growth: GROWTH, trimThreshold: Infinity })
    const a = low.raw.alloc(100)
    const b = high.raw.alloc(100)
    expect(b).toBeGreaterThanOrEqual(low.stats().heapEnd)
    expect(currentBreak()).toBe(high.stats().heapEnd)
    low.raw.free(a)
    expect(low.trim()).toBe(0) // the other heap sits above it
    expect(low.stats().heapBytes).toBeGreaterThan(0)
    high.raw.free(b)
    // All of the high heap, down to the low heap's end: its growth and the padding below its start.
    const highHeld = high.stats().heapEnd - low.stats().heapEnd
    expect(highHeld).toBe(GROWTH + (high.stats().heapStart - low.stats().heapEnd))
    expect(high.trim()).toBe(highHeld)
    expect(currentBreak()).toBe(low.stats().heapEnd)
    const lowBytes = low.stats().heapBytes
    expect(low.trim()).toBe(lowBytes) // now it can
    expect(low.stats().heapBytes).toBe(0)
    expect(currentBreak()).toBe(breakBefore)
    low.check()
    high.check()
  })
})

describe('foreign code moves the break', () => {
  it('the heap opens a new segment above foreign memory, never merges across it, and never lowers the break under it', (ctx) => {
    skipUnlessBreakCanRise(ctx, 8 * MiB)
    const { currentBreak, moveBreak } = testing()
    // A growth of 1 MiB keeps every free chunk of this test out of the small-size bins, whose
    // first resize is a ~127 KiB malloc: glibc would serve it by moving the break itself, and a
    // third segment would open (correctly, but not the two this test counts).
    const G = MiB
    const heap = lowEndHeap({ source: 'brk', growth: G, trimThreshold: Infinity })
    const breakBefore = currentBreak()
    let foreign: { start: number; end: number } | undefined
    try {
      const a = heap.raw.alloc(1000)
      const base = heap.stats().heapStart
      expect(a).toBe(base)
      expect(heap.stats()).toMatchObject({ segments: 1, heapEnd: base + G, heapBytes: base - breakBefore + G })
      heap.check()

      // Foreign code takes 64 KiB right above the heap.
      const start = moveBreak(65536)
      foreign = { start, end: start + 65536 }
      expect(start).toBe(base + G)
      expect(currentBreak()).toBe(foreign.end)

      // What fits in the wilderness needs no break move.
      const b = heap.raw.alloc(1024)
      expect(b).toBe(a + 1008)
      expect(heap.stats()).toMatchObject({ segments: 1, brkCalls: 1 })

      // What does not fit: the break is not where the heap left it, so a new segment opens above
      // the foreign memory, and the old wilderness becomes a free chunk. d is too big for that
      // chunk, so it grows the new segment in place: the break is where the heap left it now.
      const c = heap.raw.alloc(2 * MiB)
      expect(c).toBe(roundUp16(foreign.end))
      const d = heap.raw.alloc(G)
      expect(d).toBe(c + 2 * MiB)
      let stats = heap.stats()
      expect(stats).toMatchObject({ segments: 2, brkCalls: 3, liveChunks: 4, freeChunks: 1, freeBytes: G - 2032, topBytes: 0 })
      expect(stats.heapEnd).toBe(currentBreak())
      expect(stats.heapEnd).toBe(d + G)
      expect(layout(heap, base)).toEqual([
        [0, 1008, 'live'],
        [1008, 1024, 'live'],
        [2032, G - 2032, 'free'], // the old wilderness, up to the foreign memory
        [c - base, 2 * MiB, 'live'],
        [d - base, G, 'live'],
      ])
      heap.check()

      // Chunks never merge across segments: b merges with the free chunk in its own segment,
      // c stays a chunk of its own in the next segment.
      heap.raw.free(b)
      heap.raw.free(c)
      expect(layout(heap, base)).toEqual([
        [0, 1008, 'live'],
        [1008, G - 1008, 'free'],
        [c - base, 2 * MiB, 'free'],
        [d - base, G, 'live'],
      ])
      expect(heap.stats()).toMatchObject({ segments: 2, freeChunks: 2, freeBytes: G - 1008 + 2 * MiB })
      heap.check()

      // An exact fit for the first segment's free chunk lands there.
      expect(heap.raw.alloc(G - 1008)).toBe(b)
      heap.raw.free(b)

      // Emptying the second segment and trimming gives it back down to the foreign memory, and no
      // further: the first segment's end is under foreign memory, so the break stays above it.
      heap.raw.free(d)
      expect(heap.stats()).toMatchObject({ segments: 2, freeChunks: 1 })
      const secondSegment = stats.heapEnd - foreign.end
      expect(heap.trim()).toBe(secondSegment)
      expect(currentBreak()).toBe(foreign.end)
      stats = heap.stats()
      expect(stats).toMatchObject({ segments: 1, heapEnd: foreign.start, bytesReleased: secondSegment })
      // The first segment's free tail is its wilderness again, but it cannot be given back.
      expect(stats.topBytes).toBe(G - 1008)
      expect(heap.trim()).toBe(0)
      expect(currentBreak()).toBe(foreign.end)
      heap.check()

      // Allocating again reuses the first segment's wilderness, then needs a new segment.
      expect(heap.raw.alloc(32)).toBe(b)
      const e = heap.raw.alloc(G)
      expect(e).toBe(roundUp16(foreign.end))
      expect(heap.stats().segments).toBe(2)
      heap.raw.free(e)
      // The whole new segment goes back, down to the foreign memory (the padding below e included).
      const newSegment = heap.stats().heapEnd - foreign.end
      expect(newSegment).toBeGreaterThanOrEqual(G)
      expect(heap.trim()).toBe(newSegment)
      expect(currentBreak()).toBe(foreign.end)
      heap.check()

      // The foreign code gives its memory back: the break is where the heap left it again, so
      // the heap can lower it.
      expect(moveBreak(-65536)).toBe(foreign.end)
      foreign = undefined
      expect(currentBreak()).toBe(base + G)
      expect(heap.trim()).toBe(G - 1040)
      expect(currentBreak()).toBe(base + 1040)
      heap.raw.free(a)
      heap.raw.free(b)
      expect(heap.trim()).toBe(1040 + (base - breakBefore))
      expect(currentBreak()).toBe(breakBefore)
      expect(heap.stats()).toMatchObject({ segments: 0, heapBytes: 0, liveChunks: 0 })
      heap.check()
    } finally {
      // Leave the process as it was: our segments first, then the foreign memory, and only
      // while nothing else sits above it.
      heap.close()
      if (foreign !== undefined && currentBreak() === foreign.end) moveBreak(-65536)
    }
  })

  it('a heap never lowers the break under foreign memory, not even when trimming by itself', (ctx) => {
    skipUnlessBreakCanRise(ctx, MiB)
    const { currentBreak, moveBreak } = testing()
    const heap = lowEndHeap({ source: 'brk', growth: 0, trimThreshold: 0 })
    const breakBefore = currentBreak()
    let foreignEnd: number | undefined
    try {
      const a = heap.raw.alloc(4096)
      const b = heap.raw.alloc(4096)
      expect(currentBreak()).toBe(b + 4096)
      foreignEnd = moveBreak(4096) + 4096
      heap.raw.free(b) // into the top: trimThreshold 0 would give it back at once, but cannot
      expect(currentBreak()).toBe(foreignEnd)
      expect(heap.stats()).toMatchObject({ topBytes: 4096, bytesReleased: 0, segments: 1 })
      heap.raw.free(a)
      expect(heap.trim()).toBe(0)
      expect(currentBreak()).toBe(foreignEnd)
      heap.check()
      moveBreak(-4096)
      foreignEnd = undefined
      expect(heap.trim()).toBe(8192 + (a - breakBefore))
      expect(currentBreak()).toBe(breakBefore)
    } finally {
      heap.close()
      if (foreignEnd !== undefined && currentBreak() === foreignEnd) moveBreak(-4096)
    }
  })

  it('foreign code that lowers the break into the heap makes growing ERR_HEAP_CORRUPT, and changes nothing', (ctx) => {
    skipUnlessBreakCanRise(ctx, MiB)
    const { currentBreak, moveBreak } = testing()
    const heap = lowEndHeap({ source: 'brk', growth: 65536, trimThreshold: Infinity })
    const a = heap.raw.alloc(1000)
    const end = heap.stats().heapEnd
    expect(currentBreak()).toBe(end)
    // Foreign code takes back the last page of our wilderness (nothing lives there).
    moveBreak(-4096)
    try {
      expectFailureLeavesHeap(heap, () => heap.raw.alloc(128 * 1024), 'ERR_HEAP_CORRUPT')
      expect(heap.trim()).toBe(0) // the break is not where the heap left it
      expect(currentBreak()).toBe(end - 4096)
      // What fits below the lowered break still works.
      expect(heap.raw.alloc(1000)).toBe(a + 1008)
      heap.check()
    } finally {
      if (currentBreak() === end - 4096) moveBreak(4096)
    }
    expect(heap.trim()).toBe(65536 - 2016)
  })

  it('maxHeapBytes caps what a brk heap holds: ERR_OUT_OF_MEMORY leaves it unchanged', () => {
    const heap = lowEndHeap({ source: 'brk', growth: 0, maxHeapBytes: 64 * 1024 })
    const a = heap.raw.alloc(32 * 1024)
    heap.raw.alloc(16)
    heap.raw.free(a)
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(64 * 1024), 'ERR_OUT_OF_MEMORY')
    expect(heap.stats().heapBytes).toBeLessThanOrEqual(64 * 1024)
    heap.check()
  })

  it('a break move that would overshoot maxHeapBytes by its alignment pad is undone and leaves no trace', (ctx) => {
    skipUnlessBreakCanRise(ctx, MiB)
    const { currentBreak, moveBreak } = testing()
    // Foreign code leaves the break 8 bytes past a 16-byte boundary: a new segment needs a pad.
    const original = moveBreak(roundUp16(currentBreak()) - currentBreak() + 8)
    const at = currentBreak()
    expect(at % 16).toBe(8)
    const heap = lowEndHeap({ source: 'brk', growth: 0, maxHeapBytes: 4096 })
    try {
      // 4096 bytes fit the cap, but not with the 8-byte pad in front of them.
      expectFailureLeavesHeap(heap, () => heap.raw.alloc(4096), 'ERR_OUT_OF_MEMORY')
      expect(heap.stats()).toMatchObject({ brkCalls: 0, heapBytes: 0, segments: 0 })
      expect(currentBreak()).toBe(at)
      const a = heap.raw.alloc(4080)
      expect(a).toBe(at + 8)
      expect(heap.stats()).toMatchObject({ brkCalls: 1, heapBytes: 4088, segments: 1 })
      heap.raw.free(a)
      heap.trim()
      expect(currentBreak()).toBe(at)
    } finally {
      heap.close()
      if (currentBreak() === at) moveBreak(original - at)
    }
  })
})

describe('a break that cannot move', () => {
  // Some processes have another mapping (V8's code space, say) right above the break; the brk
  // source then continues in a reserved region near it, as glibc's main arena does.
  afterEach(() => testing().blockBreak(false))

  it('an empty brk heap grows in a reserved region instead of failing', () => {
    const { blockBreak, currentBreak } = testing()
    blockBreak(true)
    const breakBefore = currentBreak()
    const heap = lowEndHeap({ source: 'brk' })
    const chunk = heap.alloc(MiB)
    expect(currentBreak()).toBe(breakBefore)
    expect(brkMapping() === undefined || chunk.address >= brkMapping()!.end).toBe(true)
    chunk.bytes().fill(1)
    expect(heap.stats().segments).toBe(1)
    heap.check()
    chunk.free()
    // The automatic trim after the free kept `growth` bytes; trim() gives back exactly those.
    expect(heap.stats().heapBytes).toBe(GROWTH)
    expect(heap.trim()).toBe(GROWTH)
    expect(heap.stats().heapBytes).toBe(0)
    heap.check()
  })

  it('a brk heap with brk memory continues in a new segment when the break is blocked', (ctx) => {
    skipUnlessBreakCanRise(ctx, MiB)
    const { blockBreak } = testing()
    const heap = lowEndHeap({ source: 'brk', growth: 0 })
    const first = heap.alloc(4096)
    blockBreak(true)
    const second = heap.alloc(4 * MiB)
    expect(heap.stats().segments).toBe(2)
    expect(second.address).toBeGreaterThan(first.address + 4096)
    second.bytes().fill(2)
    heap.check()
    second.free()
    first.free()
    heap.trim()
    heap.check()
  })
})
