/**
 * Defects a new user hit (issue 10), each pinned: realloc keeps an ArrayHandle's type, errors say
 * how a chunk was freed, leak reports count in the singular and use one size rule, and
 * console.log of a handle or a heap prints a short summary.
 */
import { inspect } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import type { ArrayHandle } from '../../lib/index'
import { closeHeaps, collectUntil, expectAllocatorError, newHeap } from './helpers'

afterEach(closeHeaps)

describe('realloc keeps the handle type', () => {
  it('realloc of an ArrayHandle is an ArrayHandle of the same element type (typed and at run time)', () => {
    const heap = newHeap()
    const xs = heap.allocArray(Float64Array, 4)
    xs.array.set([1, 2, 3, 4])
    const ys = heap.realloc(xs, 16_000) // `.array` below is what TS2339 refused before
    const array: Float64Array = ys.array
    expect(array).toBeInstanceOf(Float64Array)
    expect(array.length).toBe(2000)
    expect(Array.from(array.subarray(0, 4))).toEqual([1, 2, 3, 4])
    const typed: ArrayHandle<Float64Array> = ys
    expect(typed.live).toBe(true)
  })
})

describe('errors say how the chunk was freed', () => {
  it('after raw.free of its address, h.free() says raw.free, not "through this handle"', () => {
    const heap = newHeap()
    const h = heap.alloc(32)
    heap.raw.free(h.address)
    const error = expectAllocatorError(() => h.free(), 'ERR_DOUBLE_FREE', 'raw.free')
    expect(error.message).not.toContain('through this handle')
    expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE', 'raw.free')
  })

  it('after reset and after realloc, the message names them', () => {
    const heap = newHeap()
    const a = heap.alloc(16)
    heap.reset()
    expectAllocatorError(() => a.free(), 'ERR_DOUBLE_FREE', 'heap.reset()')
    const b = heap.alloc(16)
    heap.realloc(b, 64)
    expectAllocatorError(() => b.free(), 'ERR_DOUBLE_FREE', 'heap.realloc')
    const c = heap.alloc(16)
    c.free()
    expectAllocatorError(() => c.free(), 'ERR_DOUBLE_FREE', 'already freed through this handle')
  })
})

describe('leak reports', () => {
  it('count chunks and bytes in the singular when there is one', async () => {
    const heap = newHeap()
    ;(() => heap.alloc(1))()
    expect(await collectUntil(() => heap.leaks().definitelyLost.length === 1)).toBe(true)
    const usable = heap.leaks().definitelyLost[0].size
    const error = expectAllocatorError(() => heap.assertNoLeaks(), 'ERR_LEAK', `${usable} bytes in 1 chunk definitely lost`)
    expect(error.message).toContain('0 bytes in 0 chunks still reachable')
    expect(error.message).not.toMatch(/\b1 chunks\b/)
  })

  it('size is the usable size for handles and raw chunks alike; handles also say what was requested', () => {
    const heap = newHeap()
    const h = heap.alloc(20)
    const raw = heap.raw.alloc(20)
    const records = heap.leaks().stillReachable
    expect(records).toEqual([
      { address: h.address, size: heap.raw.sizeOf(h.address), requested: 20, kind: 'handle' },
      { address: raw, size: heap.raw.sizeOf(raw), kind: 'raw' },
    ])
  })
})

describe('util.inspect', () => {
  it('a handle prints its kind, address, size and state, not the heap behind it', () => {
    const heap = newHeap()
    const h = heap.alloc(64)
    const xs = heap.allocArray(Float64Array, 2)
    const address = `0x${h.address.toString(16)}`
    expect(inspect(h)).toBe(`Handle { address: ${address}, size: 64, live }`)
    expect(inspect(xs)).toBe(`ArrayHandle<Float64Array> { address: 0x${xs.address.toString(16)}, size: 16, live }`)
    h.free()
    expect(inspect(h)).toBe(`Handle { address: ${address}, size: 64, freed }`)
    heap.close()
    expect(inspect(xs)).toContain('heap closed')
  })

  it('a heap prints its backend, mode and a few figures, in one short line', () => {
    const heap = newHeap()
    heap.alloc(64)
    const text = inspect(heap)
    expect(text).toMatch(new RegExp(`^Heap \\{ backend: '${heap.backend}', source: '${heap.source}', strategy: '${heap.strategy}', views: '${heap.views}', liveChunks: 1, liveBytes: \\d+, heapBytes: \\d+ \\}$`))
    expect(inspect({ heap }).length).toBeLessThan(300)
    heap.close()
    expect(inspect(heap)).toContain('closed')
  })
})

describe('allocArray of an impossible length', () => {
  it('2 ** 50 Float64 elements: too large, with the limit', () => {
    const heap = newHeap()
    const limit = Math.floor(Number.MAX_SAFE_INTEGER / 8)
    expectAllocatorError(() => heap.allocArray(Float64Array, 2 ** 50), 'ERR_INVALID_SIZE', 'too large', String(limit), String(2 ** 50))
    expectAllocatorError(() => heap.allocArray(Float64Array, -1), 'ERR_INVALID_SIZE', 'non-negative integer')
  })
})
