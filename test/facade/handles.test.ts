/**
 * Handles on the default backend of this pass (native, or js under MEMORY_ALLOCATOR_BACKEND=js):
 * alloc/allocArray, views through bytes()/as(), realloc, and every way a handle dies.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { closeHeaps, expectAllocatorError, newHeap } from './helpers'

afterEach(closeHeaps)

describe('alloc', () => {
  it('returns a live handle with the requested size and an aligned address', () => {
    const heap = newHeap()
    const h = heap.alloc(24)
    expect(typeof h.address).toBe('number')
    expect(h.address).toBeGreaterThan(0)
    expect(h.address % 16).toBe(0) // the default alignment
    expect(h.size).toBe(24)
    expect(h.live).toBe(true)
    expect(h.bytes()).toBeInstanceOf(Uint8Array)
    expect(h.bytes().length).toBe(24)
    expect(heap.raw.sizeOf(h.address)).toBeGreaterThanOrEqual(24)
    expect(heap.chunks()).toContainEqual({ address: h.address, size: heap.raw.sizeOf(h.address), state: 'live' })
    expect(heap.stats().liveChunks).toBe(1)
  })

  it.each([8, 16, 32, 64, 256, 4096, 65536])('aligns to align: %i', (align) => {
    const heap = newHeap()
    heap.alloc(8) // so that the next chunk does not start at the heap's start by chance
    const h = heap.alloc(40, { align })
    expect(h.address % align).toBe(0)
    expect(h.size).toBe(40)
    expect(h.bytes().length).toBe(40)
  })

  it('aligns a smaller align to the heap alignment, and the heap alignment option applies', () => {
    const heap = newHeap({ alignment: 64 })
    heap.alloc(1)
    const small = heap.alloc(3, { align: 8 })
    expect(small.address % 64).toBe(0)
    expect(heap.alloc(5).address % 64).toBe(0)
  })

  it('allocates size 0 as a live handle with an empty view', () => {
    const heap = newHeap()
    const h = heap.alloc(0)
    expect(h.size).toBe(0)
    expect(h.live).toBe(true)
    expect(h.bytes().length).toBe(0)
    expect(h.as(Float64Array).length).toBe(0)
    h.free()
    expect(h.live).toBe(false)
  })

  it('as(type) views the same bytes as bytes()', () => {
    const heap = newHeap()
    const h = heap.alloc(24)
    const bytes = h.bytes()
    const f64 = h.as(Float64Array)
    expect(f64).toBeInstanceOf(Float64Array)
    expect(f64.length).toBe(3)
    expect(f64.buffer).toBe(bytes.buffer)
    expect(f64.byteOffset).toBe(bytes.byteOffset)
    f64[1] = 1.5
    expect(Array.from(bytes.subarray(8, 16))).toEqual(Array.from(new Uint8Array(new Float64Array([1.5]).buffer)))
    bytes.fill(0)
    expect(f64[1]).toBe(0)
    expect(h.as(Uint16Array).length).toBe(12)
    expect(h.as(BigInt64Array).length).toBe(3)
    // A size that is not a multiple of the element size gets the whole elements only.
    expect(heap.alloc(13).as(Int32Array).length).toBe(3)
  })

  it('zero: true gives zeros, even in a dirty chunk that is handed out again', () => {
    // Low-end placement (segregateSmall 0): the expected order is the allocation order.
    const heap = newHeap({ segregateSmall: 0 })
    heap.alloc(32) // a neighbour below
    const first = heap.alloc(64)
    const address = first.address
    first.bytes().fill(0xab)
    first.free()
    // Control: without zero the reused chunk shows the last owner's bytes, so the next check means something.
    const dirty = heap.alloc(64)
    expect(dirty.address).toBe(address)
    expect(dirty.bytes().every((b) => b === 0xab)).toBe(true)
    dirty.free()
    const zeroed = heap.alloc(64, { zero: true })
    expect(zeroed.address).toBe(address)
    expect(zeroed.bytes().every((b) => b === 0)).toBe(true)
    // With an align, and for a smaller request in the same dirty chunk.
    zeroed.bytes().fill(0xcd)
    zeroed.free()
    const again = heap.alloc(40, { zero: true, align: 16 })
    expect(again.address).toBe(address)
    expect(again.bytes().every((b) => b === 0)).toBe(true)
  })

  it('zero: false and zero: undefined are accepted', () => {
    const heap = newHeap()
    expect(heap.alloc(8, { zero: false }).live).toBe(true)
    expect(heap.alloc(8, { zero: undefined, align: undefined }).live).toBe(true)
    expect(heap.alloc(8, {}).live).toBe(true)
  })
})

describe('allocArray', () => {
  it('gives an ArrayHandle whose array is typed, of the requested length, over the chunk', () => {
    const heap = newHeap()
    const h = heap.allocArray(Float64Array, 5)
    expect(h.array).toBeInstanceOf(Float64Array)
    expect(h.array.length).toBe(5)
    expect(h.size).toBe(40)
    expect(h.address % 16).toBe(0)
    expect(h.array).toBe(h.array) // made once
    h.array.set([1, 2, 3, 4, 5])
    expect(h.as(Float64Array)).toBe(h.array)
    expect(Array.from(new Float64Array(h.bytes().buffer, h.bytes().byteOffset, 5))).toEqual([1, 2, 3, 4, 5])
  })

  it.each([
    [Int8Array, 7],
    [Uint8Array, 3],
    [Uint8ClampedArray, 9],
    [Int16Array, 4],
    [Uint16Array, 4],
    [Int32Array, 6],
    [Uint32Array, 2],
    [Float32Array, 10],
    [Float64Array, 1],
    [BigInt64Array, 3],
    [BigUint64Array, 2],
  ] as const)('works for %o', (type, length) => {
    const heap = newHeap()
    const h = heap.allocArray(type as Float64ArrayConstructor, length)
    expect(h.array).toBeInstanceOf(type)
    expect(h.array.length).toBe(length)
    expect(h.size).toBe(length * type.BYTES_PER_ELEMENT)
  })

  it('allows length 0', () => {
    const heap = newHeap()
    const h = heap.allocArray(Float32Array, 0)
    expect(h.array.length).toBe(0)
    expect(h.size).toBe(0)
    h.free()
  })
})

describe('realloc', () => {
  it('grows into a new live handle with the contents kept; the old handle is dead', () => {
    const heap = newHeap()
    const h = heap.alloc(16)
    h.bytes().set(Array.from({ length: 16 }, (_, i) => i + 1))
    heap.alloc(16) // a live neighbour above, so that growing has to move
    const grown = heap.realloc(h, 4096)
    expect(grown).not.toBe(h)
    expect(grown.live).toBe(true)
    expect(grown.size).toBe(4096)
    expect(grown.bytes().length).toBe(4096)
    expect(Array.from(grown.bytes().subarray(0, 16))).toEqual(Array.from({ length: 16 }, (_, i) => i + 1))
    expect(h.live).toBe(false)
    heap.check()
  })

  it('shrinks with the contents kept', () => {
    const heap = newHeap()
    const h = heap.alloc(256)
    h.bytes().forEach((_, i, bytes) => (bytes[i] = i))
    const small = heap.realloc(h, 10)
    expect(small.size).toBe(10)
    expect(Array.from(small.bytes())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(h.live).toBe(false)
  })

  it('to the same size still gives a new handle and kills the old one', () => {
    const heap = newHeap()
    const h = heap.alloc(32)
    h.bytes()[31] = 7
    const same = heap.realloc(h, 32)
    expect(same).not.toBe(h)
    expect(same.bytes()[31]).toBe(7)
    expect(h.live).toBe(false)
  })

  it('keeps an ArrayHandle an ArrayHandle of the same type (size in bytes)', () => {
    const heap = newHeap()
    const h = heap.allocArray(Int32Array, 4)
    h.array.set([10, 20, 30, 40])
    const grown = heap.realloc(h, 32) as typeof h
    expect(grown.array).toBeInstanceOf(Int32Array)
    expect(grown.array.length).toBe(8)
    expect(Array.from(grown.array.subarray(0, 4))).toEqual([10, 20, 30, 40])
    const shrunk = heap.realloc(grown, 8) as typeof h
    expect(Array.from(shrunk.array)).toEqual([10, 20])
  })

  it('every use of the old handle after realloc is ERR_USE_AFTER_FREE, freeing it ERR_DOUBLE_FREE', () => {
    const heap = newHeap()
    const h = heap.allocArray(Float64Array, 2)
    const moved = heap.realloc(h, 64)
    expect(h.live).toBe(false)
    expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE', `0x${h.address.toString(16)}`)
    expectAllocatorError(() => h.as(Uint8Array), 'ERR_USE_AFTER_FREE')
    expectAllocatorError(() => h.array, 'ERR_USE_AFTER_FREE')
    expectAllocatorError(() => heap.realloc(h, 8), 'ERR_USE_AFTER_FREE')
    expectAllocatorError(() => h.free(), 'ERR_DOUBLE_FREE', `0x${h.address.toString(16)}`)
    expectAllocatorError(() => heap.free(h), 'ERR_DOUBLE_FREE')
    // The new handle is untouched by all that.
    expect(moved.live).toBe(true)
    moved.free()
    heap.check()
  })
})

describe('free and dead handles', () => {
  it('free() and heap.free() kill the handle; a second free is ERR_DOUBLE_FREE', () => {
    const heap = newHeap()
    const a = heap.alloc(8)
    const b = heap.alloc(8)
    a.free()
    heap.free(b)
    for (const h of [a, b]) {
      expect(h.live).toBe(false)
      expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE')
      expectAllocatorError(() => h.free(), 'ERR_DOUBLE_FREE')
      expectAllocatorError(() => heap.free(h), 'ERR_DOUBLE_FREE')
    }
    expect(heap.stats().liveChunks).toBe(0)
  })

  it('a dead handle stays dead when a new chunk takes its address', () => {
    const heap = newHeap()
    heap.alloc(16)
    const old = heap.alloc(16)
    old.free()
    const fresh = heap.alloc(16)
    expect(fresh.address).toBe(old.address)
    expect(old.live).toBe(false)
    expectAllocatorError(() => old.bytes(), 'ERR_USE_AFTER_FREE')
    expectAllocatorError(() => old.free(), 'ERR_DOUBLE_FREE')
    expect(fresh.live).toBe(true)
  })

  it('a handle of another heap is ERR_FOREIGN_HANDLE in free and realloc, and stays live', () => {
    const heapA = newHeap()
    const heapB = newHeap()
    const h = heapA.alloc(16)
    const before = heapB.chunks()
    expectAllocatorError(() => heapB.free(h), 'ERR_FOREIGN_HANDLE', `0x${h.address.toString(16)}`)
    expectAllocatorError(() => heapB.realloc(h, 32), 'ERR_FOREIGN_HANDLE')
    expect(h.live).toBe(true)
    expect(heapB.chunks()).toEqual(before)
    h.free()
  })

  it('raw.free(handle.address) kills the handle', () => {
    const heap = newHeap()
    const h = heap.alloc(16)
    heap.raw.free(h.address)
    expect(h.live).toBe(false)
    expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE')
    expectAllocatorError(() => h.free(), 'ERR_DOUBLE_FREE')
    expect(heap.stats().liveChunks).toBe(0)
  })

  it('raw.realloc(handle.address) kills the handle too', () => {
    const heap = newHeap()
    const h = heap.alloc(16)
    h.bytes()[0] = 42
    const moved = heap.raw.realloc(h.address, 1024)
    expect(h.live).toBe(false)
    expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE')
    expect(heap.raw.sizeOf(moved)).toBeGreaterThanOrEqual(1024)
    heap.raw.free(moved)
  })

  it('raw allocations live beside handles without touching them', () => {
    const heap = newHeap()
    const h = heap.alloc(16)
    const address = heap.raw.alloc(100, 64)
    expect(address % 64).toBe(0)
    expect(heap.raw.sizeOf(address)).toBeGreaterThanOrEqual(100)
    heap.raw.free(address)
    expect(h.live).toBe(true)
  })
})

describe('trim', () => {
  it('gives back free space at the top and reports the bytes', () => {
    const heap = newHeap({ trimThreshold: Infinity })
    const keep = heap.alloc(64)
    const big = heap.alloc(1 << 20)
    big.free()
    const held = heap.stats().heapBytes
    const released = heap.trim()
    expect(released).toBeGreaterThan(0)
    expect(heap.stats().heapBytes).toBe(held - released)
    expect(heap.trim()).toBe(0)
    expect(keep.live).toBe(true)
    expect(keep.bytes().length).toBe(64)
    heap.check()
  })
})

describe('reset and close', () => {
  it('reset() kills every handle and frees every chunk', () => {
    const heap = newHeap()
    const handles = [heap.alloc(8), heap.allocArray(Float64Array, 4), heap.alloc(100, { zero: true })]
    const raw = heap.raw.alloc(24)
    heap.reset()
    for (const h of handles) {
      expect(h.live).toBe(false)
      expectAllocatorError(() => h.bytes(), 'ERR_USE_AFTER_FREE')
      expectAllocatorError(() => h.free(), 'ERR_DOUBLE_FREE')
    }
    expect(heap.stats().liveChunks).toBe(0)
    expect(heap.chunks().filter((c) => c.state === 'live')).toEqual([])
    expectAllocatorError(() => heap.raw.free(raw), 'ERR_INVALID_POINTER', `0x${raw.toString(16)}`)
    // The heap works on after a reset.
    const h = heap.alloc(8)
    expect(h.live).toBe(true)
    heap.check()
  })

  it('close() makes everything throw ERR_HEAP_CLOSED and is idempotent', () => {
    const heap = newHeap()
    const h = heap.alloc(8)
    const arr = heap.allocArray(Uint32Array, 2)
    const raw = heap.raw.alloc(8)
    heap.close()
    heap.close()
    heap[Symbol.dispose]()
    expect(h.live).toBe(false)
    expect(arr.live).toBe(false)
    const calls: Array<[string, () => unknown]> = [
      ['alloc', () => heap.alloc(8)],
      ['allocArray', () => heap.allocArray(Float64Array, 1)],
      ['realloc', () => heap.realloc(h, 16)],
      ['free', () => heap.free(h)],
      ['reset', () => heap.reset()],
      ['trim', () => heap.trim()],
      ['stats', () => heap.stats()],
      ['chunks', () => heap.chunks()],
      ['check', () => heap.check()],
      ['leaks', () => heap.leaks()],
      ['assertNoLeaks', () => heap.assertNoLeaks()],
      ['raw.alloc', () => heap.raw.alloc(8)],
      ['raw.free', () => heap.raw.free(raw)],
      ['raw.realloc', () => heap.raw.realloc(raw, 16)],
      ['raw.sizeOf', () => heap.raw.sizeOf(raw)],
      ['handle.bytes', () => h.bytes()],
      ['handle.as', () => h.as(Float64Array)],
      ['handle.free', () => h.free()],
      ['arrayHandle.array', () => arr.array],
    ]
    for (const [name, call] of calls) {
      expect(() => call(), name).toThrow(expect.objectContaining({ code: 'ERR_HEAP_CLOSED' }))
    }
    // Disposing a handle of a closed heap is quiet (the chunk is gone already).
    expect(() => h[Symbol.dispose]()).not.toThrow()
    // The descriptive properties still read.
    expect(heap.backend).toMatch(/^(native|js)$/)
    expect(h.size).toBe(8)
  })

  it('close() after reset() and reset() on an empty heap are fine', () => {
    const heap = newHeap()
    heap.reset()
    heap.alloc(8)
    heap.reset()
    heap.reset()
    heap.close()
    expect(() => heap.close()).not.toThrow()
  })
})
