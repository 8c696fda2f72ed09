/**
 * The leak nursery (lib/heap/leaks.ts): handles are registered for leak tracking only if still live
 * when the nursery is flushed. Whatever the moment of the flush (a microtask later, a full
 * nursery in the middle of a synchronous burst, or leaks() itself), a handle dropped while live
 * is reported definitely lost and a freed one never is.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Heap } from '../../lib/index'
import { closeHeaps, collectUntil, newHeap } from './helpers'

afterEach(closeHeaps)

const lost = (heap: Heap) => heap.leaks().definitelyLost.map((record) => record.address)

/** A synchronous burst (in its own function: an async test's suspended frame would keep the last
 * handle alive) that frees every handle but those at `drop`; returns their addresses. */
function burst(heap: Heap, count: number, drop: number[]): number[] {
  const dropped: number[] = []
  for (let i = 0; i < count; i++) {
    const h = heap.alloc(32)
    if (drop.includes(i)) dropped.push(h.address)
    else h.free()
  }
  return dropped
}

describe('leak nursery', () => {
  it('in a synchronous burst of 20,000 handles, the three dropped while live are reported', async () => {
    const heap = newHeap()
    const dropped = burst(heap, 20_000, [5, 4100, 19_999])
    expect(await collectUntil(() => lost(heap).length === 3)).toBe(true)
    expect(lost(heap)).toEqual(dropped.sort((a, b) => a - b))
  })

  it('leaks() flushes: a handle dropped before any microtask ran is still tracked', async () => {
    const heap = newHeap()
    let address = 0
    ;(() => {
      address = heap.alloc(48).address
    })()
    expect(heap.leaks().definitelyLost).toEqual([]) // still referenced by the nursery until now
    expect(await collectUntil(() => lost(heap).length === 1)).toBe(true)
    expect(lost(heap)).toEqual([address])
  })

  it('a handle freed right away, or by reset, is never reported', async () => {
    const heap = newHeap()
    for (let i = 0; i < 100; i++) heap.alloc(16).free()
    for (let i = 0; i < 100; i++) heap.alloc(16)
    heap.reset()
    await collectUntil(() => false, 10)
    expect(heap.leaks()).toEqual({ definitelyLost: [], stillReachable: [] })
  })
})
