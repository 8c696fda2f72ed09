/**
 * Leak tracking (trackLeaks, default true): a handle collected while its chunk is allocated is
 * "definitely lost"; live handles and raw allocations are "still reachable". Finalization is
 * asynchronous, so tests collect and turn the event loop until the report settles (bounded).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { AllocatorError, type Heap } from '../../lib/index'
import { closeHeaps, collectUntil, expectAllocatorError, lineOf, newHeap } from './helpers'

const THIS_FILE = 'leaks.test.ts'

afterEach(closeHeaps)

/** Allocates and drops the handle; returns the address and the line that allocated. */
function dropHandle(heap: Heap, size: number): { address: number; line: number } {
  const h = heap.alloc(size); const line = lineOf(new Error(), THIS_FILE) // same line: the allocation site
  return { address: h.address, line }
}

function dropArrayHandle(heap: Heap): number {
  return heap.allocArray(Float64Array, 3).address
}

const lostCount = (heap: Heap) => () => heap.leaks().definitelyLost.length

describe("README's leak report example", () => {
  it('is what assertNoLeaks() prints for a dropped 48-byte handle with stacks (addresses and frames aside)', async () => {
    const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8')
    const block = readme.slice(readme.indexOf("createHeap({ trackLeaks: 'stacks' })"))
    const lines = block.slice(0, block.indexOf('```')).split('\n')
    const start = lines.findIndex((line) => line.includes('AllocatorError ERR_LEAK:'))
    expect(start).toBeGreaterThan(0)
    const shown = [lines[start].split('AllocatorError ERR_LEAK: ')[1], ...lines.slice(start + 1).map((line) => line.replace(/^\s*\/\/ ?/, '')).filter((line) => line !== '')]
    const heap = newHeap({ trackLeaks: 'stacks' })
    dropHandle(heap, 48)
    expect(await collectUntil(() => lostCount(heap)() === 1)).toBe(true)
    const error = expectAllocatorError(() => heap.assertNoLeaks(), 'ERR_LEAK')
    // A run of stack frames becomes one "at …", an address 0x…: the rest must be the very text.
    const normalize = (text: string[]): string[] =>
      text.map((line) => line.replace(/0x[0-9a-f]+/g, '0x…').replace(/^(\s*)at .*$/, '$1at …')).filter((line, i, all) => !(line.trim() === 'at …' && all[i - 1]?.trim() === 'at …'))
    expect(normalize(shown)).toEqual(normalize(error.message.split('\n')))
    // The record's fields, as the README's leaks() line names them.
    const named = /definitelyLost: \[\{ ([^}]*) \}\]/.exec(block)![1].split(', ')
    expect(Object.keys(heap.leaks().definitelyLost[0]).sort()).toEqual(named.sort())
  })
})

describe('definitely lost', () => {
  it('a dropped handle is reported once it is collected, and assertNoLeaks() throws ERR_LEAK', async () => {
    const heap = newHeap()
    const kept = heap.alloc(16)
    const { address } = dropHandle(heap, 48)
    expect(await collectUntil(() => lostCount(heap)() === 1)).toBe(true)
    const report = heap.leaks()
    // size: the usable size, as for raw chunks (48 and 16 are multiples of the alignment).
    expect(report.definitelyLost).toEqual([{ address, size: 48, requested: 48, kind: 'handle' }])
    expect(report.stillReachable).toEqual([{ address: kept.address, size: 16, requested: 16, kind: 'handle' }])
    const error = expectAllocatorError(() => heap.assertNoLeaks(), 'ERR_LEAK')
    expect(error).toBeInstanceOf(AllocatorError)
    expect(error.message.startsWith('48 bytes in 1 chunk definitely lost')).toBe(true)
    expect(error.message).toContain(`48 bytes at 0x${address.toString(16)}`)
    expect(error.message).toContain("trackLeaks: 'stacks'") // the hint when there is no stack
    expect(error.message).toContain('16 bytes in 1 chunk still reachable')
    // The lost chunk is still allocated: the heap says so too.
    expect(heap.chunks().find((c) => c.address === address)?.state).toBe('live')
    kept.free()
  })

  it('sums several lost chunks, sorted by address', async () => {
    // Low-end placement (segregateSmall 0): the expected order is the allocation order.
    const heap = newHeap({ segregateSmall: 0 })
    const a = dropHandle(heap, 8).address
    const b = dropArrayHandle(heap)
    const c = dropHandle(heap, 100).address
    expect(await collectUntil(() => lostCount(heap)() === 3)).toBe(true)
    const lost = heap.leaks().definitelyLost
    expect(lost.map((r) => r.address)).toEqual([a, b, c].sort((x, y) => x - y))
    // Sorted by address, which is allocation order here.
    expect(lost.map((r) => r.requested)).toEqual([8, 24, 100])
    const usable = lost.map((r) => heap.raw.sizeOf(r.address))
    expect(lost.map((r) => r.size)).toEqual(usable)
    const total = usable.reduce((sum, size) => sum + size, 0)
    expect(() => heap.assertNoLeaks()).toThrow(new RegExp(`^${total} bytes in 3 chunks definitely lost`))
  })

  it("records the allocation stack with trackLeaks: 'stacks', pointing at the allocating line", async () => {
    const heap = newHeap({ trackLeaks: 'stacks' })
    const { address, line } = dropHandle(heap, 40)
    expect(await collectUntil(() => lostCount(heap)() === 1)).toBe(true)
    const [record] = heap.leaks().definitelyLost
    expect(record).toMatchObject({ address, size: heap.raw.sizeOf(address), requested: 40, kind: 'handle' })
    expect(typeof record.stack).toBe('string')
    const firstFrame = record.stack!.split('\n')[0]
    expect(firstFrame).toContain(THIS_FILE)
    expect(firstFrame).toMatch(new RegExp(`${THIS_FILE.replace('.', '\\.')}:${line}:`))
    // No frame of the library itself.
    expect(record.stack).not.toMatch(/lib[/\\](heap|handle|leaks)\.ts/)
    const error = expectAllocatorError(() => heap.assertNoLeaks(), 'ERR_LEAK')
    expect(error.message).toMatch(new RegExp(`^${heap.raw.sizeOf(address)} bytes in 1 chunk definitely lost\n`))
    expect(error.message).toContain(`${THIS_FILE}:${line}:`)
  })

  it('without stacks there is no stack property', async () => {
    const heap = newHeap({ trackLeaks: true })
    dropHandle(heap, 8)
    expect(await collectUntil(() => lostCount(heap)() === 1)).toBe(true)
    expect(heap.leaks().definitelyLost[0]).not.toHaveProperty('stack')
  })

  it('freeing a lost chunk (raw.free by address) or reset() removes its record', async () => {
    const heap = newHeap()
    const { address } = dropHandle(heap, 24)
    dropHandle(heap, 24)
    expect(await collectUntil(() => lostCount(heap)() === 2)).toBe(true)
    heap.raw.free(address)
    expect(heap.leaks().definitelyLost.map((r) => r.address)).not.toContain(address)
    expect(heap.leaks().definitelyLost).toHaveLength(1)
    heap.reset()
    expect(heap.leaks()).toEqual({ definitelyLost: [], stillReachable: [] })
    expect(() => heap.assertNoLeaks()).not.toThrow()
  })

  it('a handle freed before it is collected is never reported', async () => {
    const heap = newHeap()
    ;(() => {
      heap.alloc(32).free()
      const h = heap.alloc(32)
      heap.realloc(h, 64).free()
    })()
    // Give finalizers every chance to run.
    await collectUntil(() => false, 10)
    expect(heap.leaks()).toEqual({ definitelyLost: [], stillReachable: [] })
    heap.assertNoLeaks()
  })
})

describe('still reachable', () => {
  it('a referenced handle is still reachable, not lost, across collections', async () => {
    const heap = newHeap({ trackLeaks: 'stacks' })
    const h = heap.alloc(72)
    await collectUntil(() => false, 5)
    const report = heap.leaks()
    expect(report.definitelyLost).toEqual([])
    expect(report.stillReachable).toHaveLength(1)
    expect(report.stillReachable[0]).toMatchObject({ address: h.address, size: heap.raw.sizeOf(h.address), requested: 72, kind: 'handle' })
    expect(report.stillReachable[0].stack).toContain(THIS_FILE)
    heap.assertNoLeaks() // reachable chunks are not an error
    h.free()
    expect(heap.leaks().stillReachable).toEqual([])
  })

  it('raw allocations are still reachable by address (kind raw, usable size)', () => {
    const heap = newHeap()
    const address = heap.raw.alloc(20)
    const report = heap.leaks()
    expect(report.definitelyLost).toEqual([])
    expect(report.stillReachable).toEqual([{ address, size: heap.raw.sizeOf(address), kind: 'raw' }])
    heap.raw.free(address)
    expect(heap.leaks().stillReachable).toEqual([])
  })

  it('lists handles and raw chunks in address order, and realloc moves the record', () => {
    // Low-end placement (segregateSmall 0): the expected order is the allocation order.
    const heap = newHeap({ segregateSmall: 0 })
    const a = heap.alloc(16)
    const raw = heap.raw.alloc(16)
    const b = heap.alloc(16)
    expect(heap.leaks().stillReachable.map((r) => [r.address, r.kind])).toEqual([
      [a.address, 'handle'],
      [raw, 'raw'],
      [b.address, 'handle'],
    ])
    const moved = heap.realloc(a, 4000)
    const reachable = heap.leaks().stillReachable
    expect(reachable.find((r) => r.address === moved.address)).toMatchObject({ size: heap.raw.sizeOf(moved.address), requested: 4000, kind: 'handle' })
    expect(reachable).toHaveLength(3)
  })
})

describe('trackLeaks: false', () => {
  it('leaks() and assertNoLeaks() throw ERR_UNSUPPORTED naming the option; allocation works', async () => {
    const heap = newHeap({ trackLeaks: false })
    dropHandle(heap, 8)
    await collectUntil(() => false, 3)
    expectAllocatorError(() => heap.leaks(), 'ERR_UNSUPPORTED', 'trackLeaks: false')
    expectAllocatorError(() => heap.assertNoLeaks(), 'ERR_UNSUPPORTED', 'trackLeaks')
    const h = heap.alloc(8)
    h.free()
  })
})
