/**
 * The `views` option (README, "Views and their revocation"): 'revocable' (the default on native) and 'shared', their
 * validation, views larger than the runtime's largest ArrayBuffer (issue 7, crash 1), and the rule
 * both modes keep: no view ever reaches memory that is no longer mapped.
 */
import { constants as bufferConstants } from 'node:buffer'
import { afterEach, describe, expect, it } from 'vitest'
import { createHeap, type Handle, type Heap } from '../../lib/index'
import { skipUnlessBreakCanRise, testing } from '../native-heap/helpers'
import { closeHeaps, collectUntil, defaultBackend, expectAllocatorError, nativeAvailable, newHeap, snapshot } from './helpers'

afterEach(closeHeaps)

const MAX_VIEW = bufferConstants.MAX_LENGTH
const MiB = 1 << 20

describe('the views option', () => {
  it.each([['x'], [''], [true], [1], [null], [{}]])('views %o is ERR_INVALID_OPTION naming the choices', (views) => {
    expectAllocatorError(() => createHeap({ views } as never), 'ERR_INVALID_OPTION', 'views', "'revocable', 'shared'")
  })

  it("the js heap's views are 'shared'; asking it for 'revocable' is ERR_UNSUPPORTED", () => {
    expect(newHeap({ backend: 'js' }).views).toBe('shared')
    expect(newHeap({ backend: 'js', views: 'shared' }).views).toBe('shared')
    expectAllocatorError(() => createHeap({ backend: 'js', views: 'revocable' }), 'ERR_UNSUPPORTED', "views 'revocable'", 'native')
  })

  it.runIf(nativeAvailable)("native: 'revocable' by default, 'shared' on request", () => {
    expect(newHeap({ backend: 'native' }).views).toBe('revocable')
    expect(newHeap({ backend: 'native', views: 'shared' }).views).toBe('shared')
  })

  it('the default backend of this pass says its mode', () => {
    expect(newHeap().views).toBe(defaultBackend === 'native' ? 'revocable' : 'shared')
  })
})

// ---- views beyond the runtime's largest ArrayBuffer ------------------------------------------

describe.runIf(nativeAvailable)('native: a view larger than buffer.constants.MAX_LENGTH is an error, not a crash', () => {
  for (const source of ['brk', 'mmap'] as const) {
    for (const views of ['revocable', 'shared'] as const) {
      it(`${source}, ${views}: alloc(MAX_LENGTH + 1).bytes() is ERR_UNSUPPORTED naming the limit; MAX_LENGTH works`, () => {
        const heap = newHeap({ backend: 'native', source, views, trackLeaks: false })
        const big = heap.alloc(MAX_VIEW + 1)
        const before = snapshot(heap)
        expectAllocatorError(() => big.bytes(), 'ERR_UNSUPPORTED', String(MAX_VIEW + 1), String(MAX_VIEW), 'MAX_LENGTH')
        expectAllocatorError(() => big.as(Float64Array), 'ERR_UNSUPPORTED', String(MAX_VIEW))
        expect(snapshot(heap)).toEqual(before)
        expect(big.live).toBe(true)
        big.free()
        const exact = heap.alloc(MAX_VIEW)
        expect(exact.bytes().length).toBe(MAX_VIEW)
        // A small chunk next to the huge one still gets a view; in shared mode its window is
        // at most MAX_LENGTH bytes too.
        const small = heap.alloc(64)
        small.bytes()[63] = 7
        expect(small.bytes()[63]).toBe(7)
        expect(small.bytes().buffer.byteLength).toBeLessThanOrEqual(MAX_VIEW)
        exact.free()
        small.free()
        heap.check()
      })
    }
  }

  it('allocArray(Float64Array, 2 ** 29 + 1).array on the mmap source is ERR_UNSUPPORTED', () => {
    const heap = newHeap({ backend: 'native', source: 'mmap', trackLeaks: false })
    const xs = heap.allocArray(Float64Array, 2 ** 29 + 1)
    expectAllocatorError(() => xs.array, 'ERR_UNSUPPORTED', String(MAX_VIEW))
    xs.free()
    const fits = heap.allocArray(Float64Array, 2 ** 29)
    expect(fits.array.length).toBe(2 ** 29)
    fits.free()
  })
})

// ---- shared views ----------------------------------------------------------------------------

const sharedBackends = [...(nativeAvailable ? (['native'] as const) : []), 'js'] as const

describe.each(sharedBackends)("%s: views: 'shared'", (backend) => {
  const shared = (options: Parameters<typeof createHeap>[0] = {}) => newHeap({ backend, views: 'shared', trackLeaks: false, ...options })

  it('views of different chunks share one buffer and do not overlap', () => {
    const heap = shared()
    const a = heap.alloc(24)
    const b = heap.allocArray(Float64Array, 3)
    expect(a.bytes().buffer).toBe(b.bytes().buffer)
    a.bytes().fill(0xaa)
    b.array.set([1.5, 2.5, 3.5])
    expect(a.bytes().every((x) => x === 0xaa)).toBe(true)
    expect(Array.from(b.array)).toEqual([1.5, 2.5, 3.5])
    expect(a.bytes().length).toBe(24)
    expect(b.array.byteOffset % 8).toBe(0)
  })

  it("a freed chunk's old view is not emptied, but its handle refuses use after free", () => {
    const heap = shared()
    const h = heap.alloc(32)
    heap.alloc(32) // keeps h's memory away from the top, so nothing is given back
    const view = h.bytes()
    h.free()
    expect(view.length).toBe(32)
    expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE')
    expectAllocatorError(() => h.free(), 'ERR_DOUBLE_FREE', 'already freed through this handle')
  })

  it('a stale shared view after trim reads length 0, and reading or writing it does not crash', () => {
    const heap = shared({ growth: 0, trimThreshold: Infinity })
    const kept = heap.alloc(64)
    const top = heap.alloc(4 * MiB)
    const stale = top.bytes()
    stale.fill(1)
    const keptView = kept.bytes()
    top.free()
    expect(heap.trim()).toBeGreaterThan(0)
    expect(stale.length).toBe(0)
    expect(stale[MiB]).toBeUndefined()
    stale[MiB] = 5 // goes nowhere
    // The live handle's view may have gone with its window (native windows span the segment);
    // if so its handle makes it again on the next bytes().
    expect(keptView.length === 0 || keptView.length === 64).toBe(true)
    kept.bytes()[0] = 9
    expect(kept.bytes().length).toBe(64)
    expect(kept.bytes()[0]).toBe(9)
  })

  it('an automatic trim after free empties the views over the memory it gave back', () => {
    const heap = shared({ growth: 0, trimThreshold: 65536 })
    const kept = heap.alloc(64)
    const top = heap.alloc(MiB)
    const stale = top.bytes()
    top.free() // more than trimThreshold free at the top: given back now
    expect(heap.stats().bytesReleased).toBeGreaterThan(0)
    expect(stale.length).toBe(0)
    expect(kept.bytes().length).toBe(64)
  })

  it('reset and close empty every view', () => {
    const heap = shared()
    const a = heap.alloc(64)
    const before = a.bytes()
    heap.reset()
    expect(before.length).toBe(0)
    const b = heap.alloc(64)
    const after = b.bytes()
    heap.close()
    expect(after.length).toBe(0)
  })

  it('realloc keeps the contents; raw.free of a handle address kills the handle', () => {
    const heap = shared()
    const h = heap.allocArray(Int32Array, 4)
    h.array.set([1, 2, 3, 4])
    const grown = heap.realloc(h, 4096)
    expect(Array.from(grown.array.subarray(0, 4))).toEqual([1, 2, 3, 4])
    heap.raw.free(grown.address)
    expectAllocatorError(() => grown.array, 'ERR_USE_AFTER_FREE', 'raw.free')
  })
})

describe.runIf(nativeAvailable)("native, views: 'shared': segments", () => {
  it('a window never covers foreign memory between segments; releasing a segment empties its views', (ctx) => {
    skipUnlessBreakCanRise(ctx, 8 * MiB)
    const { currentBreak, moveBreak } = testing()
    const heap = createHeap({ backend: 'native', source: 'brk', views: 'shared', growth: MiB, trimThreshold: Infinity, trackLeaks: false })
    let foreign: { start: number; end: number } | undefined
    try {
      const low = heap.alloc(1000)
      const lowView = low.bytes()
      const start = moveBreak(65536)
      foreign = { start, end: start + 65536 }
      const high = heap.alloc(2 * MiB) // does not fit the wilderness: a new segment above the foreign pages
      expect(heap.stats().segments).toBe(2)
      expect(high.address).toBeGreaterThanOrEqual(foreign.end)
      const highView = high.bytes()
      highView.fill(3)
      const windowOf = (h: Handle) => {
        const bytes = h.bytes()
        const base = h.address - bytes.byteOffset
        return { base, end: base + bytes.buffer.byteLength }
      }
      const lowWindow = windowOf(low)
      const highWindow = windowOf(high)
      expect(lowWindow.end).toBeLessThanOrEqual(foreign.start)
      expect(highWindow.base).toBeGreaterThanOrEqual(foreign.end)
      expect(lowView.buffer).not.toBe(highView.buffer)
      high.free()
      expect(heap.trim()).toBeGreaterThan(0) // the upper segment is empty: given back
      expect(heap.stats().segments).toBe(1)
      expect(highView.length).toBe(0)
      low.bytes()[0] = 1
      expect(low.bytes()[0]).toBe(1)
      heap.check()
    } finally {
      heap.close()
      if (foreign !== undefined && currentBreak() === foreign.end) moveBreak(-65536)
    }
  })
})

// ---- revocable views and a heap that is dropped without close --------------------------------

describe.runIf(nativeAvailable)("native, views: 'revocable'", () => {
  it('a view has exactly the requested size (not the usable size)', () => {
    const heap = newHeap({ backend: 'native' })
    const h = heap.alloc(20)
    expect(heap.raw.sizeOf(h.address)).toBeGreaterThan(20)
    expect(h.bytes().buffer.byteLength).toBe(20)
  })

  it('a view kept after its heap was collected (never closed) stays readable: the memory waits for it', async () => {
    const make = (): Uint8Array => {
      const heap: Heap = createHeap({ backend: 'native', source: 'mmap', trackLeaks: false })
      const h = heap.alloc(4096)
      h.bytes().fill(0x42)
      return h.bytes()
    }
    const view = make()
    const gc = (globalThis as { gc?: () => void }).gc!
    await collectUntil(() => false, 20)
    gc()
    expect(view.length).toBe(4096)
    expect(view.every((x) => x === 0x42)).toBe(true)
    view.fill(1) // the memory is still mapped and still the heap's
  })
})
