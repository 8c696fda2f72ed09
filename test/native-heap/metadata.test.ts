/**
 * The out-of-band tables after their peak (native/core/metadata_array.h, free_table.h "Shrinking
 * after the peak"): stats().metadataBytes falls again when most free records are gone and on
 * trim(), stats().peakMetadataBytes keeps the most it has been, and the heap stays whole (check())
 * while the free table is compacted under every strategy.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { closeHeaps, coreStats, lowEndHeap, prng, type StrategyName } from './helpers'

afterEach(closeHeaps)

// Separators of 64 granules: never deferred, so that freeing one merges its neighbours at once.
const SEP = 1024

describe('metadata after its peak', () => {
  const strategies: StrategyName[] = ['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit']
  for (const strategy of strategies) {
    it(`${strategy}: shrinks when most free records are gone and on trim(); the peak stays`, () => {
      const heap = lowEndHeap({ source: 'mmap', strategy, trimThreshold: Infinity })
      let peak = coreStats(heap).metadataBytes
      const note = () => {
        const stats = coreStats(heap)
        peak = Math.max(peak, stats.metadataBytes)
        expect(stats.peakMetadataBytes).toBe(peak)
      }
      // 6,000 holes of mixed sizes kept apart by live separators: thousands of free records.
      const random = prng(7)
      const holes: number[] = []
      const sizes: number[] = []
      const separators: number[] = []
      for (let i = 0; i < 6000; i++) {
        sizes.push(16 * (1 + Math.floor(random() * 200)))
        holes.push(heap.raw.alloc(sizes[i]))
        separators.push(heap.raw.alloc(SEP))
      }
      note()
      for (const address of holes) heap.raw.free(address)
      note()
      heap.check()
      const atPeak = coreStats(heap)
      expect(atPeak.freeChunks).toBe(6000)
      // Every other hole taken back (the records of those taken whole go: vacant slots all over the
      // table) and freed again, then every separator but the last freed: each merges its
      // neighbours, the records fall to a handful, and the table is compacted and shrunk on the
      // way, the heap whole at every step.
      const retaken: number[] = []
      for (let i = 0; i < 3000; i++) {
        retaken.push(heap.raw.alloc(sizes[i * 2]))
        if (i % 500 === 0) heap.check()
        note()
      }
      for (const address of retaken) heap.raw.free(address)
      heap.check()
      for (let i = 0; i < separators.length - 1; i++) {
        heap.raw.free(separators[i])
        if (i % 400 === 0) heap.check()
        note()
      }
      heap.check()
      const afterFrees = coreStats(heap)
      expect(afterFrees.metadataBytes).toBeLessThan(atPeak.metadataBytes)
      expect(afterFrees.peakMetadataBytes).toBe(peak)

      // Everything freed and trimmed: the tables are back to (about) their empty size.
      heap.raw.free(separators[separators.length - 1])
      note()
      heap.trim()
      heap.check()
      const trimmed = coreStats(heap)
      expect(trimmed).toMatchObject({ liveChunks: 0, heapBytes: 0, peakMetadataBytes: peak })
      expect(trimmed.metadataBytes).toBeLessThan(atPeak.metadataBytes / 4)
      // The heap works as before after all that.
      const again = Array.from({ length: 100 }, (_, i) => heap.raw.alloc(32 + i))
      for (const address of again) heap.raw.free(address)
      heap.check()
    })
  }
})
