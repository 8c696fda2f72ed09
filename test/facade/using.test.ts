/**
 * Explicit resource management: handles and heaps are Disposable. `using` is real syntax here:
 * vitest's transformer (oxc, through Vite) lowers it for Node 20, and the project's tsconfig has
 * lib ESNext.Disposable for the types.
 */
import { describe, expect, it } from 'vitest'
import { createHeap, type Handle, type Heap } from '../../lib/index'
import { expectAllocatorError } from './helpers'

const isLive = (heap: Heap, address: number) => heap.chunks().some((c) => c.address === address && c.state === 'live')

describe('using a handle', () => {
  it('frees the chunk at the end of the block', () => {
    using heap = createHeap()
    let h: Handle
    {
      using inner = heap.alloc(16)
      h = inner
      expect(isLive(heap, h.address)).toBe(true)
      inner.bytes().fill(1)
    }
    expect(h.live).toBe(false)
    expect(isLive(heap, h.address)).toBe(false)
    expect(heap.stats().liveChunks).toBe(0)
    expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE')
  })

  it('works for ArrayHandles and in reverse order of declaration', () => {
    using heap = createHeap()
    {
      using a = heap.allocArray(Float64Array, 2)
      using b = heap.alloc(8)
      a.array[0] = 1
      b.bytes()[0] = 1
    }
    expect(heap.stats().liveChunks).toBe(0)
    expect(heap.stats().frees).toBe(2)
  })

  it('frees on an exception too', () => {
    using heap = createHeap()
    let address = 0
    expect(() => {
      using h = heap.alloc(32)
      address = h.address
      throw new Error('boom')
    }).toThrow('boom')
    expect(isLive(heap, address)).toBe(false)
  })

  it('is quiet when the handle was freed, reallocated or reset inside the block', () => {
    using heap = createHeap()
    {
      using h = heap.alloc(8)
      h.free()
    }
    {
      using h = heap.alloc(8)
      using moved = heap.realloc(h, 64)
      expect(moved.live).toBe(true)
    }
    {
      using h = heap.alloc(8)
      heap.reset()
      expect(h.live).toBe(false)
    }
    expect(heap.stats().liveChunks).toBe(0)
  })

  it('[Symbol.dispose]() is the same as free() on a live handle and a no-op after', () => {
    using heap = createHeap()
    const h = heap.alloc(8)
    h[Symbol.dispose]()
    expect(h.live).toBe(false)
    expect(() => h[Symbol.dispose]()).not.toThrow()
  })
})

describe('using a heap', () => {
  it('closes the heap at the end of the block', () => {
    let outer: Heap
    let h: Handle
    {
      using heap = createHeap()
      outer = heap
      h = heap.alloc(8)
    }
    expect(h.live).toBe(false)
    expectAllocatorError(() => outer.alloc(8), 'ERR_HEAP_CLOSED')
    expectAllocatorError(() => h.bytes(), 'ERR_HEAP_CLOSED')
    expect(() => outer.close()).not.toThrow()
  })

  it('disposes handles before their heap when both are `using`', () => {
    let heapRef: Heap
    let liveAtProbe = -1
    {
      using heap = createHeap()
      heapRef = heap
      // Disposed after the handles below and before the heap.
      using _probe = { [Symbol.dispose]: () => void (liveAtProbe = heap.stats().liveChunks) }
      using a = heap.alloc(8)
      using b = heap.allocArray(Int32Array, 4)
      expect(a.live && b.live).toBe(true)
    }
    expect(liveAtProbe).toBe(0)
    expectAllocatorError(() => heapRef.stats(), 'ERR_HEAP_CLOSED')
  })

  it('a handle that outlives its heap disposes quietly', () => {
    let h: Handle | undefined
    {
      using outer = createHeap()
      {
        h = outer.alloc(8)
      }
    }
    expect(() => h![Symbol.dispose]()).not.toThrow()
  })

  it('works with the explicit [Symbol.dispose]()', () => {
    const heap = createHeap({ backend: 'js' })
    heap[Symbol.dispose]()
    expectAllocatorError(() => heap.stats(), 'ERR_HEAP_CLOSED')
    heap[Symbol.dispose]()
  })
})
