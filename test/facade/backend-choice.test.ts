/**
 * Choosing the backend: 'auto' (the default) is native where the addon loads, unless
 * MEMORY_ALLOCATOR_BACKEND=js forces the js heap (and says so in fallbackReason). Explicit
 * 'js' and 'native' are what they say. The variable is read at createHeap time, so each test
 * sets it as it needs (vi.stubEnv) and both passes of npm test cover both cases.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createHeap, type Heap } from '../../lib/index'
import { closeHeaps, expectAllocatorError, nativeAvailable, newHeap } from './helpers'

const ENV = 'MEMORY_ALLOCATOR_BACKEND'

afterEach(() => {
  vi.unstubAllEnvs()
  closeHeaps()
})

function works(heap: Heap): void {
  const h = heap.allocArray(Float64Array, 4)
  h.array.set([1, 2, 3, 4])
  expect(Array.from(h.array)).toEqual([1, 2, 3, 4])
  h.free()
  heap.check()
}

describe('this pass', () => {
  it('createHeap() follows the environment of this pass', () => {
    const heap = newHeap()
    if (process.env[ENV] === 'js') {
      expect(heap.backend).toBe('js')
      expect(heap.fallbackReason).toContain(ENV)
    } else if (nativeAvailable) {
      expect(heap.backend).toBe('native')
      expect(heap.fallbackReason).toBeUndefined()
    } else {
      expect(heap.backend).toBe('js')
      expect(heap.fallbackReason).toEqual(expect.any(String))
    }
    works(heap)
  })
})

describe.runIf(nativeAvailable)("'auto' where the addon loads", () => {
  it('is native, on the real break (brk) on the main thread, best fit, with no fallback reason', () => {
    vi.stubEnv(ENV, undefined)
    for (const heap of [newHeap(), newHeap({ backend: 'auto' })]) {
      expect(heap.backend).toBe('native')
      expect(heap.source).toBe('brk')
      expect(heap.strategy).toBe('best-fit')
      expect(heap.fallbackReason).toBeUndefined()
      works(heap)
    }
  })

  it(`is js when ${ENV}=js, and fallbackReason names the variable`, () => {
    vi.stubEnv(ENV, 'js')
    const heap = newHeap()
    expect(heap.backend).toBe('js')
    expect(heap.source).toBe('arraybuffer')
    expect(heap.strategy).toBe('bump')
    expect(heap.fallbackReason).toContain(`${ENV}=js`)
    works(heap)
  })

  it(`ignores other values of ${ENV}`, () => {
    vi.stubEnv(ENV, 'native')
    expect(newHeap().backend).toBe('native')
    vi.stubEnv(ENV, '')
    expect(newHeap().backend).toBe('native')
  })

  it(`with ${ENV}=js, native-only options are ERR_UNSUPPORTED and say why the js heap was chosen`, () => {
    vi.stubEnv(ENV, 'js')
    expectAllocatorError(() => createHeap({ strategy: 'first-fit' }), 'ERR_UNSUPPORTED', "'first-fit'", `${ENV}=js`)
    expectAllocatorError(() => createHeap({ source: 'mmap' }), 'ERR_UNSUPPORTED', "'mmap'", `${ENV}=js`)
  })
})

describe("explicit 'js'", () => {
  it.each([undefined, 'js'])(`has no fallback reason (${ENV}=%s)`, (value) => {
    vi.stubEnv(ENV, value)
    const heap = newHeap({ backend: 'js' })
    expect(heap.backend).toBe('js')
    expect(heap.source).toBe('arraybuffer')
    expect(heap.fallbackReason).toBeUndefined()
    works(heap)
  })
})

describe.runIf(nativeAvailable)("explicit 'native'", () => {
  it.each([undefined, 'js'])(`works whatever the variable says (${ENV}=%s)`, (value) => {
    vi.stubEnv(ENV, value)
    const heap = newHeap({ backend: 'native' })
    expect(heap.backend).toBe('native')
    expect(heap.fallbackReason).toBeUndefined()
    works(heap)
  })

  it.each(['brk', 'mmap'] as const)("takes source '%s'", (source) => {
    const heap = newHeap({ backend: 'native', source })
    expect(heap.source).toBe(source)
    works(heap)
  })

  it.each(['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit', 'bump'] as const)(
    "takes strategy '%s'",
    (strategy) => {
      const heap = newHeap({ backend: 'native', strategy })
      expect(heap.strategy).toBe(strategy)
      works(heap)
    },
  )
})

describe.skipIf(nativeAvailable)("without the addon", () => {
  it("'native' is ERR_UNSUPPORTED with the reason, 'auto' falls back with it", () => {
    expectAllocatorError(() => createHeap({ backend: 'native' }), 'ERR_UNSUPPORTED', 'native')
    const heap = newHeap()
    expect(heap.backend).toBe('js')
    expect(heap.fallbackReason).toEqual(expect.any(String))
  })
})
