/**
 * The mmap source: a private reserved region whose committed end moves like a break. Placement
 * works as on brk, trimming really gives pages back (they turn PROT_NONE and lose their
 * contents), maxHeapBytes turns into ERR_OUT_OF_MEMORY that leaves the heap exactly as it was, and
 * worker threads (where brk is refused) get a working heap.
 */
import { dirname, resolve } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { closeHeaps, lowEndHeap, expectFailureLeavesHeap, layout, mappingOf, MiB } from './helpers'
import { testHooksAddon } from '../native/test-hooks'

afterEach(closeHeaps)

const KiB = 1024
const PAGE = 4096
const pageUp = (value: number) => Math.ceil(value / PAGE) * PAGE

describe('the mmap source', () => {
  it('starts at its page-aligned reservation; only what the heap holds is readable and writable', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, trimThreshold: Infinity })
    expect(heap.source).toBe('mmap')
    expect(heap.stats()).toMatchObject({ heapBytes: 0, segments: 0, brkCalls: 0 })
    const a = heap.alloc(10_000)
    const stats = heap.stats()
    expect(a.address).toBe(stats.heapStart)
    expect(a.address % PAGE).toBe(0)
    expect(stats).toMatchObject({ heapBytes: 10_000, heapEnd: a.address + 10_000, segments: 1, brkCalls: 1 })
    expect(mappingOf(a.address)?.perms).toBe('rw-p')
    expect(mappingOf(pageUp(stats.heapEnd) - 1)?.perms).toBe('rw-p')
    // The rest of the reservation is address space only.
    expect(mappingOf(pageUp(stats.heapEnd))?.perms).toBe('---p')
    a.bytes().fill(1)
  })

  it('places chunks as the brk source does', () => {
    const heap = lowEndHeap({ source: 'mmap', strategy: 'best-fit', growth: 0 })
    const [h0, s0, h1, s1, h2] = [96, 16, 64, 16, 80].map((size) => heap.raw.alloc(size))
    heap.raw.alloc(16)
    for (const hole of [h0, h1, h2]) heap.raw.free(hole)
    expect(heap.raw.alloc(80)).toBe(h2)
    expect(heap.raw.alloc(50)).toBe(h1)
    expect(layout(heap, h0)).toEqual([
      [0, 96, 'deferred'], // best fit keeps a small freed chunk unmerged
      [s0 - h0, 16, 'live'],
      [h1 - h0, 64, 'live'],
      [s1 - h0, 16, 'live'],
      [h2 - h0, 80, 'live'],
      [h2 - h0 + 80, 16, 'live'],
    ])
    heap.check()
  })

  it('trim gives the pages back: they turn PROT_NONE, and come back zeroed', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, trimThreshold: Infinity })
    const keep = heap.raw.alloc(PAGE)
    const big = heap.alloc(MiB)
    big.bytes().fill(0xab)
    const end = heap.stats().heapEnd
    expect(mappingOf(end - 1)?.perms).toBe('rw-p')
    big.free()
    expect(heap.stats()).toMatchObject({ heapBytes: PAGE + MiB, topBytes: MiB })
    expect(heap.trim()).toBe(MiB)
    expect(heap.stats()).toMatchObject({ heapBytes: PAGE, topBytes: 0, heapEnd: keep + PAGE, bytesReleased: MiB })
    expect(mappingOf(keep)?.perms).toBe('rw-p')
    expect(mappingOf(keep + PAGE)?.perms).toBe('---p')
    expect(mappingOf(end - 1)?.perms).toBe('---p')
    // The same addresses again: fresh pages, the old contents are gone.
    const again = heap.alloc(MiB)
    expect(again.address).toBe(keep + PAGE)
    const bytes = again.bytes()
    expect(bytes[0]).toBe(0)
    expect(bytes[MiB - 1]).toBe(0)
    expect(bytes.some((b) => b !== 0)).toBe(false)
    heap.check()
  })

  it('trimming above trimThreshold by itself gives the pages back too', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, trimThreshold: 0 })
    const keep = heap.raw.alloc(PAGE)
    const big = heap.raw.alloc(MiB)
    heap.raw.free(big)
    expect(heap.stats()).toMatchObject({ heapBytes: PAGE, topBytes: 0, bytesReleased: MiB, brkCalls: 3 })
    expect(mappingOf(keep + PAGE)?.perms).toBe('---p')
    heap.raw.free(keep)
    expect(heap.stats()).toMatchObject({ heapBytes: 0, segments: 0, bytesReleased: MiB + PAGE })
    expect(mappingOf(keep)?.perms).toBe('---p')
    heap.check()
  })
})

describe('growth the source cannot give', () => {
  it('a growth step larger than the reservation falls back to what the request needs', () => {
    // growth 1 TiB is a valid option; the mmap reservation is 64 GiB at most.
    const heap = lowEndHeap({ source: 'mmap', growth: 2 ** 40 })
    const a = heap.raw.alloc(100)
    expect(heap.stats()).toMatchObject({ heapBytes: 112, brkCalls: 1 })
    const b = heap.raw.alloc(100)
    expect(b).toBe(a + 112)
    expect(heap.stats()).toMatchObject({ heapBytes: 224, brkCalls: 2 })
    heap.check()
  })
})

describe('maxHeapBytes on the mmap source', () => {
  const CAP = 256 * KiB
  const CHUNK = 16 * KiB

  /** A heap filled to its cap: a 100 KiB chunk, nine 16 KiB chunks, 12 KiB of wilderness; chunks 2, 4, 6 freed. */
  function fullHeap() {
    const heap = lowEndHeap({ source: 'mmap', growth: 64 * KiB, trimThreshold: Infinity, maxHeapBytes: CAP })
    const first = heap.raw.alloc(100 * KiB)
    const chunks: number[] = []
    for (let i = 0; i < 9; i++) chunks.push(heap.raw.alloc(CHUNK))
    // Growth steps were cut down to what the cap allowed: the heap holds exactly the cap.
    expect(heap.stats()).toMatchObject({ heapBytes: CAP, topBytes: CAP - 100 * KiB - 9 * CHUNK, peakHeapBytes: CAP })
    for (const i of [2, 4, 6]) heap.raw.free(chunks[i])
    expect(heap.stats()).toMatchObject({ freeChunks: 3, freeBytes: 3 * CHUNK, liveChunks: 7 })
    heap.check()
    return { heap, first, chunks }
  }

  it('an allocation beyond the cap is ERR_OUT_OF_MEMORY and leaves chunks() and stats() as they were', () => {
    const { heap, chunks } = fullHeap()
    const error = expectFailureLeavesHeap(heap, () => heap.raw.alloc(20 * KiB), 'ERR_OUT_OF_MEMORY')
    expect(error.message).toContain(String(CAP))
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(CAP + 1), 'ERR_OUT_OF_MEMORY')
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(2 ** 40), 'ERR_OUT_OF_MEMORY')
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(Number.MAX_SAFE_INTEGER), 'ERR_OUT_OF_MEMORY')
    // Fits a free chunk's size, but not once the start is slid up to a 64 KiB boundary.
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(CHUNK, 64 * KiB), 'ERR_OUT_OF_MEMORY')
    expectFailureLeavesHeap(heap, () => heap.alloc(MiB), 'ERR_OUT_OF_MEMORY')
    // realloc that can neither grow in place nor move.
    expectFailureLeavesHeap(heap, () => heap.raw.realloc(chunks[0], 40 * KiB), 'ERR_OUT_OF_MEMORY')
    expectFailureLeavesHeap(heap, () => heap.raw.realloc(chunks[8], 40 * KiB), 'ERR_OUT_OF_MEMORY')
    expect(heap.raw.sizeOf(chunks[0])).toBe(CHUNK)
    // What does fit still works: exact fits in the free chunks, the most recently freed first
    // (best fit's bins are LIFO), then exactly the rest of the top.
    expect([heap.raw.alloc(CHUNK), heap.raw.alloc(CHUNK), heap.raw.alloc(CHUNK)]).toEqual([chunks[6], chunks[4], chunks[2]])
    const last = heap.raw.alloc(12 * KiB)
    expect(last).toBe(chunks[8] + CHUNK)
    expect(heap.stats()).toMatchObject({ heapBytes: CAP, topBytes: 0 })
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(1), 'ERR_OUT_OF_MEMORY')
    heap.check()
  })

  it('a realloc that fails keeps the chunk and its contents', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: 0, maxHeapBytes: 64 * KiB })
    const a = heap.alloc(1000)
    const bytes = a.bytes()
    for (let i = 0; i < 1000; i++) bytes[i] = i & 255
    heap.raw.alloc(16)
    expectFailureLeavesHeap(heap, () => heap.realloc(a, 64 * KiB), 'ERR_OUT_OF_MEMORY')
    expect(a.live).toBe(true)
    const after = a.bytes()
    expect(after.length).toBe(1000)
    expect(after.every((b, i) => b === (i & 255))).toBe(true)
    // A realloc that fits still works and keeps them.
    const b = heap.realloc(a, 8000)
    expect(b.bytes().subarray(0, 1000).every((v, i) => v === (i & 255))).toBe(true)
    heap.check()
  })

  it('growth is cut to the cap, and a heap that gave memory back can take it again', () => {
    const heap = lowEndHeap({ source: 'mmap', growth: MiB, maxHeapBytes: 100 * KiB })
    const a = heap.raw.alloc(10)
    expect(heap.stats().heapBytes).toBe(100 * KiB)
    expectFailureLeavesHeap(heap, () => heap.raw.alloc(100 * KiB), 'ERR_OUT_OF_MEMORY')
    heap.raw.free(a)
    expect(heap.trim()).toBe(100 * KiB)
    expect(heap.raw.alloc(100 * KiB)).toBe(a)
    expect(heap.stats()).toMatchObject({ heapBytes: 100 * KiB, liveBytes: 100 * KiB, topBytes: 0 })
  })
})

describe('worker threads', () => {
  it('a worker cannot use brk, but gets a working mmap heap', async () => {
    const root = resolve(dirname(__filename), '../..')
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const binding = require('node-gyp-build')(workerData.root)
      const options = { source: 'brk', strategy: 'best-fit', alignment: 16, growth: 65536, split: true,
                        coalesce: true, trimThreshold: 131072, maxHeapBytes: 0 }
      const out = { onMainThread: binding.onMainThread() }
      try { binding.createHeap(options); out.brk = 'created' } catch (e) { out.brk = e.code }
      try { require(workerData.testHooksAddon).moveBreak(4096); out.moveBreak = 'moved' } catch (e) { out.moveBreak = e.code }
      const heap = binding.createHeap({ ...options, source: 'mmap' })
      const a = heap.alloc(100)
      const b = heap.alloc(100)
      heap.free(a)
      out.reused = heap.alloc(100) === a
      out.size = heap.sizeOf(b)
      heap.check()
      heap.close()
      parentPort.postMessage(out)
    `
    const worker = new Worker(code, { eval: true, workerData: { root, testHooksAddon } })
    const result = await new Promise((resolveResult, reject) => {
      worker.once('message', resolveResult)
      worker.once('error', reject)
    })
    await worker.terminate()
    expect(result).toEqual({
      onMainThread: false,
      brk: 'ERR_BRK_MAIN_THREAD_ONLY',
      moveBreak: 'ERR_BRK_MAIN_THREAD_ONLY',
      reused: true,
      size: 112,
    })
  })
})
