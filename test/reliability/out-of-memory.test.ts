/**
 * Out of memory, for real and by cap. In a child process under `prlimit --data` (RLIMIT_DATA
 * counts the break and private writable mappings, so both sources meet it), a heap allocates
 * 1 MiB chunks until ERR_OUT_OF_MEMORY, stays consistent, and works again after frees. In this
 * process, maxHeapBytes does the same on every backend and source, with contents checked.
 * (The out-of-band tables meeting the limit: out-of-memory-metadata.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Handle, HeapOptions } from '../../lib/index'
import { canLimitData, runUnderDataLimit } from './data-limit'
import { prng } from './op-generator'
import { closeHeaps, errorOf, heapOn, nativeAvailable } from './support'

afterEach(closeHeaps)

const MiB = 1 << 20

describe.runIf(nativeAvailable && canLimitData)('under prlimit --data', () => {
  it.each(['brk', 'mmap'] as const)('%s: 1 MiB chunks until ERR_OUT_OF_MEMORY; consistent; works again after frees', (source) => {
    const limit = 256 * MiB
    const { report, failure } = runUnderDataLimit(source, MiB, limit)
    expect(failure).toBeUndefined()
    expect(report!.source).toBe(source)
    expect(report!.refusal.code, report!.refusal.message).toBe('ERR_OUT_OF_MEMORY')
    // What the limit left after Node's own ~50 MB went to the heap, not much less.
    expect(report!.chunks).toBeGreaterThan((limit - report!.usedAtStart) / MiB / 2)
    expect(report!.heapBytesAtRefusal).toBeLessThanOrEqual(limit - report!.usedAtStart)
    expect(report!.refusalAfterFrees).toBeNull()
    expect(report!.reallocatedAfterFrees).toBe(report!.chunks - Math.floor(report!.chunks / 2))
    expect(report!.liveChunksAtEnd).toBe(0)
    console.log(`out-of-memory: ${source} under prlimit --data=${limit}: ${report!.chunks} MiB allocated before ERR_OUT_OF_MEMORY, ${report!.reallocatedAfterFrees} again after frees, check() passed`)
  })
})

const CAPPED: [string, HeapOptions][] = [
  ...(nativeAvailable
    ? ([
        ['native brk best-fit', { backend: 'native', source: 'brk' }],
        ['native mmap best-fit', { backend: 'native', source: 'mmap' }],
        ['native mmap first-fit, growth 0', { backend: 'native', source: 'mmap', strategy: 'first-fit', growth: 0 }],
        ['native brk bump', { backend: 'native', source: 'brk', strategy: 'bump' }],
      ] as [string, HeapOptions][])
    : []),
  ['js', { backend: 'js' }],
]

describe('maxHeapBytes in this process', () => {
  it.each(CAPPED)('%s: fills to the cap, refuses cleanly, keeps every byte, works again after frees', (name, options) => {
    const cap = 4 * MiB
    const heap = heapOn(options.backend as 'native' | 'js', { ...options, maxHeapBytes: cap })
    const random = prng(99)
    const live: { handle: Handle; fill: number }[] = []
    // Every byte equals its neighbour and the first is the fill: memcmp speed.
    const holds = (entry: { handle: Handle; fill: number }): boolean => {
      const bytes = entry.handle.bytes()
      return bytes.length === 0 || (bytes[0] === entry.fill && Buffer.compare(bytes.subarray(1), bytes.subarray(0, bytes.length - 1)) === 0)
    }
    let refusals = 0
    for (let round = 0; round < 3; round++) {
      for (;;) {
        const size = 1 + Math.floor(random() * (random() < 0.1 ? 256 * 1024 : 4096))
        const before = heap.stats()
        try {
          const handle = heap.alloc(size)
          const fill = live.length % 251
          handle.bytes().fill(fill)
          live.push({ handle, fill })
        } catch (error) {
          expect((error as { code?: string }).code).toBe('ERR_OUT_OF_MEMORY')
          const after = heap.stats()
          expect([after.liveChunks, after.liveBytes, after.heapBytes]).toEqual([before.liveChunks, before.liveBytes, before.heapBytes])
          refusals++
          if (size < 4096) break
        }
      }
      expect(heap.stats().heapBytes).toBeLessThanOrEqual(cap)
      heap.check()
      // A realloc that cannot grow keeps the old chunk and its bytes.
      const victim = live[Math.floor(random() * live.length)]
      expect(errorOf(() => heap.realloc(victim.handle, cap)).code).toBe('ERR_OUT_OF_MEMORY')
      expect(victim.handle.live).toBe(true)
      expect(live.filter((entry) => !holds(entry)).length, 'chunks that lost their bytes').toBe(0)
      // Free half (every other one), then the heap must take new requests again.
      for (let i = live.length - 1; i >= 0; i -= 2) {
        if (!holds(live[i])) expect.fail(`the chunk at 0x${live[i].handle.address.toString(16)} lost its bytes`)
        live[i].handle.free()
        live.splice(i, 1)
      }
      heap.check()
      const again = heap.alloc(64)
      again.bytes().fill(7)
      live.push({ handle: again, fill: 7 })
    }
    expect(refusals).toBeGreaterThanOrEqual(3)
    console.log(`out-of-memory: ${name} with maxHeapBytes ${cap}: ${refusals} ERR_OUT_OF_MEMORY refusals survived, every byte kept`)
    expect(live.filter((entry) => !holds(entry)).length, 'chunks that lost their bytes').toBe(0)
    heap.reset()
    heap.check()
    expect(heap.stats().liveChunks).toBe(0)
  })
})
