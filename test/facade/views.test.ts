/**
 * Views: bytes()/as() share one view per handle; on the native backend every view of a chunk is
 * revoked (detached: length 0) when the chunk is freed, reallocated, reset or closed, and a view
 * that someone else detached first (a transfer) quarantines the chunk until its memory is
 * finalized. The js heap cannot revoke a single chunk's views; what it does is pinned here too.
 */
import { setFlagsFromString } from 'node:v8'
import { afterEach, describe, expect, it } from 'vitest'
import { createHeap, type Handle, type Heap } from '../../lib/index'
import { closeHeaps, collectUntil, defaultBackend, expectAllocatorError, nativeAvailable, newHeap } from './helpers'

afterEach(closeHeaps)

function expectRevoked(...views: ArrayBufferView[]): void {
  for (const view of views) {
    expect(view.byteLength).toBe(0)
    expect((view as Uint8Array).length).toBe(0)
    expect(view.buffer.byteLength).toBe(0)
  }
}

describe('one view per handle', () => {
  it('bytes() returns the same object on every call, and as(T) caches its view', () => {
    const heap = newHeap()
    const h = heap.alloc(64)
    expect(h.bytes()).toBe(h.bytes())
    expect(h.as(Float64Array)).toBe(h.as(Float64Array))
    const arr = heap.allocArray(Int16Array, 4)
    expect(arr.array).toBe(arr.array)
    expect(arr.bytes()).toBe(arr.bytes())
  })

  it('two handles never share a view, and their views do not overlap', () => {
    const heap = newHeap()
    const a = heap.alloc(16)
    const b = heap.alloc(16)
    a.bytes().fill(1)
    b.bytes().fill(2)
    expect(a.bytes().every((x) => x === 1)).toBe(true)
    expect(b.bytes().every((x) => x === 2)).toBe(true)
  })

  it('a failed realloc leaves the handle and its views as they were', () => {
    const heap = newHeap({ maxHeapBytes: 1 << 20, growth: 0 })
    const h = heap.allocArray(Float64Array, 4)
    const array = h.array
    const bytes = h.bytes()
    array.set([1, 2, 3, 4])
    const before = { stats: heap.stats(), chunks: heap.chunks() }
    expectAllocatorError(() => heap.realloc(h, 2 << 20), 'ERR_OUT_OF_MEMORY', String(2 << 20))
    expect({ stats: heap.stats(), chunks: heap.chunks() }).toEqual(before)
    expect(h.live).toBe(true)
    expect(array.length).toBe(4) // not revoked: the chunk was never freed
    expect(h.bytes()).toBe(bytes)
    expect(h.array).toBe(array)
    expect(Array.from(h.array)).toEqual([1, 2, 3, 4])
  })
})

describe.runIf(nativeAvailable)('native: views are revoked', () => {
  const native = () => newHeap({ backend: 'native' })

  it('on free: bytes() and as() views read length 0', () => {
    const heap = native()
    const h = heap.alloc(64)
    const bytes = h.bytes()
    const f64 = h.as(Float64Array)
    const u32 = h.as(Uint32Array)
    bytes.fill(9)
    h.free()
    expectRevoked(bytes, f64, u32)
    expect(bytes[0]).toBeUndefined()
  })

  it('on heap.free and raw.free of the handle address', () => {
    const heap = native()
    const a = heap.alloc(32)
    const b = heap.allocArray(Float32Array, 8)
    const aBytes = a.bytes()
    const bArray = b.array
    heap.free(a)
    heap.raw.free(b.address)
    expectRevoked(aBytes, bArray)
  })

  it("on realloc: the old handle's views are revoked, the new handle has its own", () => {
    const heap = native()
    const h = heap.alloc(16)
    const bytes = h.bytes()
    const f64 = h.as(Float64Array)
    f64[0] = 3.25
    const grown = heap.realloc(h, 1024)
    expectRevoked(bytes, f64)
    expect(grown.as(Float64Array)[0]).toBe(3.25)
    // Also when the chunk stays where it was (shrinking in place).
    const grownBytes = grown.bytes()
    const shrunk = heap.realloc(grown, 8)
    expect(shrunk.address).toBe(grown.address)
    expectRevoked(grownBytes)
    expect(shrunk.bytes().length).toBe(8)
    expect(shrunk.bytes() === grownBytes).toBe(false)
  })

  it('on reset and on close', () => {
    const heap = native()
    const a = heap.alloc(64)
    const b = heap.allocArray(BigInt64Array, 2)
    const views = [a.bytes(), a.as(Int32Array), b.array]
    heap.reset()
    expectRevoked(...views)
    const c = heap.alloc(64)
    const cViews = [c.bytes(), c.as(Float32Array)]
    heap.close()
    expectRevoked(...cViews)
  })

  it('a new chunk at the same address is not reachable through old views', () => {
    const heap = native()
    heap.alloc(16)
    const old = heap.alloc(48)
    const oldBytes = old.bytes()
    const oldF64 = old.as(Float64Array)
    old.free()
    const fresh = heap.alloc(48, { zero: true })
    expect(fresh.address).toBe(old.address)
    fresh.bytes().fill(5)
    expectRevoked(oldBytes, oldF64)
    expect(oldBytes[0]).toBeUndefined()
    oldBytes[0] = 77 // writes to a detached view go nowhere
    oldF64[0] = 1
    expect(fresh.bytes().every((x) => x === 5)).toBe(true)
    // A view made for the new handle is a new buffer, not the old one brought back.
    expect(fresh.bytes().buffer).not.toBe(oldBytes.buffer)
  })
})

describe.runIf(defaultBackend === 'js')('js: views are not revoked on free (the documented limit of one shared buffer)', () => {
  it('a freed middle chunk keeps its view readable; reset() is what revokes', () => {
    const heap = newHeap()
    const a = heap.alloc(16)
    heap.alloc(16)
    const view = a.bytes()
    a.free()
    expect(view.length).toBe(16)
    heap.reset()
    expect(view.length).toBe(0)
  })
})

// ---- transfer and quarantine (native) -------------------------------------------------------

/**
 * Moves `buffer`'s memory into a new ArrayBuffer the way a transfer does, or returns undefined
 * when this runtime copies instead. Node 20 has no ArrayBuffer.prototype.transfer, and its
 * structuredClone copies external ArrayBuffers (Node marks them untransferable) rather than
 * moving them.
 */
function transferAway(buffer: ArrayBuffer): ArrayBuffer | undefined {
  const transfer = (buffer as { transfer?: () => ArrayBuffer }).transfer
  let moved: ArrayBuffer
  try {
    moved = typeof transfer === 'function' ? transfer.call(buffer) : structuredClone(buffer, { transfer: [buffer] })
  } catch {
    return undefined
  }
  return buffer.byteLength === 0 ? moved : undefined
}

/**
 * Detaches `buffer` behind the addon's back, as any transfer does first, through V8's
 * %ArrayBufferDetach. This reaches the addon's quarantine path on a runtime where no JS transfer
 * can move an external buffer (see transferAway).
 */
let nativesDetach: ((buffer: ArrayBuffer) => void) | undefined
function detachBehindTheAddon(buffer: ArrayBuffer): void {
  if (nativesDetach === undefined) {
    setFlagsFromString('--allow-natives-syntax')
    nativesDetach = new Function('buffer', '%ArrayBufferDetach(buffer)') as (buffer: ArrayBuffer) => void
  }
  nativesDetach(buffer)
}

const transferMoves: boolean = (() => {
  if (!nativeAvailable) return false
  const heap = createHeap({ backend: 'native', source: 'mmap', trackLeaks: false })
  try {
    const h = heap.alloc(16)
    const moved = transferAway(h.bytes().buffer as ArrayBuffer)
    return moved !== undefined
  } finally {
    // A moved probe buffer quarantines its chunk until collected; the closed heap keeps it safe.
    heap.close()
  }
})()
const noTransferReason =
  `${process.version} cannot move an external ArrayBuffer's memory from JS: ` +
  (typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function'
    ? 'ArrayBuffer.prototype.transfer copied it'
    : 'there is no ArrayBuffer.prototype.transfer and structuredClone(buf, { transfer: [buf] }) copies external buffers')

function chunkAt(heap: Heap, address: number) {
  return heap.chunks().find((chunk) => chunk.address === address)
}

describe.runIf(nativeAvailable)('native: a view detached by someone else quarantines its chunk', () => {
  it('structuredClone/transfer of a view: quarantined while the moved memory lives', async (ctx) => {
    if (!transferMoves) ctx.skip(noTransferReason)
    const heap = newHeap({ backend: 'native' })
    heap.alloc(32)
    const h = heap.alloc(32)
    heap.alloc(32)
    h.bytes().fill(0x5a)
    const address = h.address
    let moved: ArrayBuffer | undefined = transferAway(h.bytes().buffer as ArrayBuffer)!
    expect(moved.byteLength).toBeGreaterThanOrEqual(32)
    h.free()
    expect(h.live).toBe(false)
    expect(heap.stats().quarantinedChunks).toBe(1)
    expect(chunkAt(heap, address)).toMatchObject({ state: 'live', quarantined: true })
    for (let i = 0; i < 20; i++) expect(heap.alloc(32).address).not.toBe(address)
    expect(new Uint8Array(moved).subarray(0, 32).every((x) => x === 0x5a)).toBe(true)
    heap.check()
    moved = undefined
    expect(await collectUntil(() => heap.stats().quarantinedChunks === 0)).toBe(true)
    expect(chunkAt(heap, address)?.state).toBe('free')
    heap.check()
  })

  it('structuredClone that copies (this runtime) leaves the chunk to be freed normally', (ctx) => {
    if (transferMoves) ctx.skip('this runtime moves external buffers; the quarantine test covers it')
    const heap = newHeap({ backend: 'native' })
    const h = heap.alloc(32)
    const bytes = h.bytes()
    bytes.fill(0x33)
    const buffer = bytes.buffer as ArrayBuffer
    const copy = structuredClone(buffer, { transfer: [buffer] })
    expect(buffer.byteLength).toBe(32) // still ours: it was copied, not moved
    bytes[0] = 1
    expect(new Uint8Array(copy)[0]).toBe(0x33) // an independent copy
    h.free()
    expectRevoked(bytes)
    expect(heap.stats().quarantinedChunks).toBe(0)
    expect(new Uint8Array(copy).every((x) => x === 0x33)).toBe(true)
  })

  it('free: the chunk stays out of use until the detached memory is finalized', async () => {
    const heap = newHeap({ backend: 'native' })
    heap.alloc(32)
    const h = heap.alloc(32)
    const above = heap.alloc(32)
    const address = h.address
    detachBehindTheAddon(h.bytes().buffer as ArrayBuffer)
    expect(h.bytes().length).toBe(32) // the handle makes itself a new view of its live chunk
    h.free()
    expect(h.live).toBe(false)
    expectAllocatorError(() => h.free(), 'ERR_DOUBLE_FREE')
    expect(heap.stats().quarantinedChunks).toBe(1)
    expect(chunkAt(heap, address)).toEqual({ address, size: 32, state: 'live', quarantined: true })
    // Quarantined chunks are neither the user's leaks nor reachable allocations.
    expect(heap.leaks().stillReachable.map((r) => r.address)).not.toContain(address)
    heap.check()
    const others: Handle[] = []
    for (let i = 0; i < 20; i++) {
      const other = heap.alloc(32)
      expect(other.address).not.toBe(address)
      others.push(other)
    }
    for (const other of others) other.free()
    expect(await collectUntil(() => heap.stats().quarantinedChunks === 0)).toBe(true)
    // Best fit defers a small freed chunk (README, "Deferred merging"): free, not merged yet.
    expect(chunkAt(heap, address)).toEqual({ address, size: 32, state: 'free', deferred: true })
    heap.check()
    // Free again: best fit hands the exact-size chunk out.
    expect(heap.alloc(32).address).toBe(address)
    expect(above.live).toBe(true)
  })

  it('realloc: the contents move, the old chunk is quarantined', async () => {
    const heap = newHeap({ backend: 'native' })
    const h = heap.alloc(16)
    heap.alloc(16)
    h.bytes().set([1, 2, 3, 4])
    const address = h.address
    detachBehindTheAddon(h.bytes().buffer as ArrayBuffer)
    h.bytes() // a second, attached view on the same chunk
    const moved = heap.realloc(h, 64)
    expect(moved.address).not.toBe(address)
    expect(Array.from(moved.bytes().subarray(0, 4))).toEqual([1, 2, 3, 4])
    expect(heap.stats().quarantinedChunks).toBe(1)
    expect(chunkAt(heap, address)).toMatchObject({ quarantined: true })
    heap.check()
    expect(await collectUntil(() => heap.stats().quarantinedChunks === 0)).toBe(true)
    expect(chunkAt(heap, address)?.state).not.toBe('live')
    heap.check()
  })

  it('a failed realloc with a detached view quarantines nothing and keeps the handle', () => {
    const heap = newHeap({ backend: 'native', maxHeapBytes: 1 << 20, growth: 0 })
    const h = heap.alloc(16)
    h.bytes()[0] = 8
    detachBehindTheAddon(h.bytes().buffer as ArrayBuffer)
    expectAllocatorError(() => heap.realloc(h, 4 << 20), 'ERR_OUT_OF_MEMORY')
    expect(heap.stats().quarantinedChunks).toBe(0)
    expect(h.live).toBe(true)
    expect(h.bytes()[0]).toBe(8)
    h.free()
  })

  it('reset: a live chunk with a detached view is quarantined, then freed by its finalizer', async () => {
    const heap = newHeap({ backend: 'native' })
    const h = heap.alloc(64)
    const address = h.address
    detachBehindTheAddon(h.bytes().buffer as ArrayBuffer)
    heap.reset()
    expect(h.live).toBe(false)
    expect(heap.stats().quarantinedChunks).toBe(1)
    expect(chunkAt(heap, address)).toMatchObject({ state: 'live', quarantined: true })
    expect(heap.alloc(64).address).not.toBe(address)
    heap.check()
    expect(await collectUntil(() => heap.stats().quarantinedChunks === 0)).toBe(true)
    heap.check()
  })

  it('close() with a quarantined chunk does not crash, and later finalization is safe', async () => {
    for (const source of ['brk', 'mmap'] as const) {
      const heap = createHeap({ backend: 'native', source })
      const freed = heap.alloc(32)
      const kept = heap.alloc(32)
      detachBehindTheAddon(freed.bytes().buffer as ArrayBuffer)
      detachBehindTheAddon(kept.bytes().buffer as ArrayBuffer)
      freed.free() // quarantined by free
      expect(heap.stats().quarantinedChunks).toBe(1)
      heap.close() // `kept` is quarantined by close
      heap.close()
      expect(kept.live).toBe(false)
      expectAllocatorError(() => heap.stats(), 'ERR_HEAP_CLOSED')
    }
    // Let the detached buffers' finalizers run against the closed heaps (and the heaps' own
    // finalizers, once nothing references them).
    for (let i = 0; i < 30; i++) {
      ;(globalThis as { gc?: () => void }).gc?.()
      await new Promise((resolve) => setImmediate(resolve))
    }
    // The process is fine and the allocator still works.
    const heap = newHeap({ backend: 'native' })
    const h = heap.alloc(128, { zero: true })
    expect(h.bytes().every((x) => x === 0)).toBe(true)
    heap.check()
  })
})
