/**
 * Bugs the reliability suites found, each pinned by the smallest input that showed it.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { closeHeaps, heapOn } from './support'

afterEach(closeHeaps)

describe('found by the differential runs', () => {
  it('js heap: an alignment above 64 KiB gives an aligned address (addresses start at 0x10000, not 0)', () => {
    const heap = heapOn('js')
    heap.alloc(100)
    for (const align of [1 << 17, 1 << 20]) {
      const handle = heap.alloc(110, { align })
      expect(handle.address % align).toBe(0)
      expect(heap.raw.alloc(8, align) % align).toBe(0)
    }
    heap.check()
  })
})
