/**
 * raw.bytes / raw.read / raw.write: a raw.alloc chunk seen and copied from JS with the rules of
 * handles (lib/types.ts RawBytes). Runs on the backend of this pass (npm test runs both) and, where
 * the addon loads, in both view modes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { HeapOptions } from '../../lib/index'
import { closeHeaps, defaultBackend, expectAllocatorError, nativeAvailable, newHeap, snapshot } from './helpers'

afterEach(closeHeaps)

const configurations: Array<[string, HeapOptions]> = [[`${defaultBackend} (default views)`, {}]]
if (defaultBackend === 'native') configurations.push(['native, views: shared', { views: 'shared' }])

describe.each(configurations)('%s', (_name, options) => {
  const heap = () => newHeap({ ...options, trackLeaks: false })

  it('bytes() views the usable size; write and read copy in and out', () => {
    const h = heap()
    const address = h.raw.alloc(20)
    const usable = h.raw.sizeOf(address)
    const bytes = h.raw.bytes(address)
    expect(bytes.length).toBe(usable)
    h.raw.write(address, [1, 2, 3], 4)
    h.raw.write(address, new Uint16Array([0x0605]), 7)
    expect(Array.from(bytes.subarray(4, 9))).toEqual([1, 2, 3, 5, 6])
    const copy = h.raw.read(address, 4, 3)
    expect(Array.from(copy)).toEqual([1, 2, 3])
    copy[0] = 99 // a copy: the chunk keeps its byte
    expect(h.raw.bytes(address)[4]).toBe(1)
    expect(h.raw.read(address).length).toBe(usable)
    expect(h.raw.read(address, usable).length).toBe(0)
    h.raw.free(address)
  })

  it('a handle chunk: raw.bytes is the handle view, its requested size', () => {
    const h = heap()
    const handle = h.alloc(10)
    handle.bytes()[0] = 42
    expect(h.raw.bytes(handle.address).length).toBe(10)
    expect(h.raw.read(handle.address)[0]).toBe(42)
    h.raw.write(handle.address, [7], 9)
    expect(handle.bytes()[9]).toBe(7)
    expectAllocatorError(() => h.raw.write(handle.address, [1, 2], 9), 'ERR_INVALID_SIZE', 'offset 9 + length 2', '10 usable bytes')
  })

  it('raw.bytes is the same Uint8Array on every call until the chunk is freed; for a handle, the very array of handle.bytes()', () => {
    const h = heap()
    const handle = h.alloc(10)
    const view = handle.bytes()
    expect(h.raw.bytes(handle.address)).toBe(view)
    expect(handle.bytes()).toBe(view)
    expect(view.length).toBe(10) // the handle's requested size, not raw.sizeOf's 16
    // The last chunk, so that its address comes back on every backend after the free (the js
    // heap rolls its pointer back; native takes the just-freed chunk of the same size).
    const address = h.raw.alloc(20)
    const first = h.raw.bytes(address)
    expect(h.raw.bytes(address)).toBe(first)
    expect(first.length).toBe(h.raw.sizeOf(address))
    h.raw.read(address, 0, 4)
    expect(h.raw.bytes(address)).toBe(first)
    h.raw.free(address)
    const again = h.raw.alloc(20)
    expect(again).toBe(address) // the same chunk again, with a view of its own
    expect(h.raw.bytes(again) === first).toBe(false) // (not.toBe would iterate a revoked view)
    expect(h.raw.bytes(again)).toBe(h.raw.bytes(again))
  })

  it('bounds: offsets and lengths past the usable size, negative or fractional, are ERR_INVALID_SIZE', () => {
    const h = heap()
    const address = h.raw.alloc(16)
    const usable = h.raw.sizeOf(address)
    const before = snapshot(h)
    expectAllocatorError(() => h.raw.read(address, usable + 1), 'ERR_INVALID_SIZE', `offset ${usable + 1}`, `${usable} usable bytes`)
    expectAllocatorError(() => h.raw.read(address, 0, usable + 1), 'ERR_INVALID_SIZE', `length ${usable + 1}`)
    expectAllocatorError(() => h.raw.read(address, -1), 'ERR_INVALID_SIZE', 'offset', '-1')
    expectAllocatorError(() => h.raw.read(address, 0.5), 'ERR_INVALID_SIZE', '0.5')
    expectAllocatorError(() => h.raw.write(address, new Uint8Array(usable + 1)), 'ERR_INVALID_SIZE', `length ${usable + 1}`)
    expectAllocatorError(() => h.raw.write(address, 'abc' as never), 'ERR_INVALID_SIZE', 'data must be', '"abc"')
    expect(snapshot(h)).toEqual(before)
  })

  it('liveness: interior, wild and freed addresses are refused with the code raw.sizeOf gives', () => {
    const h = heap()
    const address = h.raw.alloc(64)
    const codeOf = (fn: () => unknown): string | undefined => {
      try {
        fn()
      } catch (error) {
        return (error as { code?: string }).code
      }
      return undefined
    }
    for (const bad of [address + 16, 12345, -1]) {
      const expected = codeOf(() => h.raw.sizeOf(bad))
      expect(expected).toBeDefined()
      expectAllocatorError(() => h.raw.bytes(bad), expected as never)
      expectAllocatorError(() => h.raw.read(bad), expected as never)
      expectAllocatorError(() => h.raw.write(bad, [1]), expected as never)
    }
    h.raw.alloc(64) // keeps the freed chunk below the top
    h.raw.free(address)
    const freedCode = codeOf(() => h.raw.sizeOf(address))
    expect(freedCode).toBeDefined()
    expectAllocatorError(() => h.raw.read(address), freedCode as never)
  })

  it('after close every raw access is ERR_HEAP_CLOSED', () => {
    const h = heap()
    const address = h.raw.alloc(8)
    h.close()
    expectAllocatorError(() => h.raw.bytes(address), 'ERR_HEAP_CLOSED')
    expectAllocatorError(() => h.raw.read(address), 'ERR_HEAP_CLOSED')
    expectAllocatorError(() => h.raw.write(address, [1]), 'ERR_HEAP_CLOSED')
  })
})

describe.runIf(nativeAvailable)('native, revocable: raw views are revoked like handle views', () => {
  it('by raw.free, raw.realloc, reset and close', () => {
    const heap = newHeap({ backend: 'native' })
    const a = heap.raw.alloc(32)
    const b = heap.raw.alloc(32)
    const c = heap.raw.alloc(32)
    const views = [heap.raw.bytes(a), heap.raw.bytes(b), heap.raw.bytes(c)]
    expect(heap.raw.bytes(a).buffer).toBe(views[0].buffer) // the same buffer until revoked
    heap.raw.free(a)
    expect(views[0].length).toBe(0)
    heap.raw.bytes(b).fill(5)
    const moved = heap.raw.realloc(b, 4096)
    expect(views[1].length).toBe(0)
    expect(heap.raw.read(moved, 0, 32).every((x) => x === 5)).toBe(true)
    heap.reset()
    expect(views[2].length).toBe(0)
    const d = heap.raw.alloc(16)
    const last = heap.raw.bytes(d)
    heap.close()
    expect(last.length).toBe(0)
  })
})
