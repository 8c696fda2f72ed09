/**
 * A brk heap's own bookkeeping must never move the program break: if it does right after the
 * heap moved it, the heap's memory lies under glibc's and can never be given back (trim() returns
 * 0, close() leaves it mapped), and the next growth opens a needless segment.
 *
 * The core of commit 519ab47 fails this: Heap::GrowTop moves the break first and then grows its
 * metadata (the page map through FreeTable::Cover, the size trie through SizeIndex::Reserve),
 * whose arrays below 64 KiB come from malloc, which moves the break whenever glibc's top chunk
 * is short (strace -k: brk from BrkSource::Extend, then brk from MetadataArray<unsigned>::Reserve
 * and SizeIndex::Reserve, all in one GrowTop). About one growth in six here; the random buffers
 * between heaps leave glibc's top at random sizes, so 100 growths show it in practice always.
 *
 * Off by default until the core is fixed (it would make `npm test` red, and each failure leaves
 * 8 MiB of break space behind in this process): MEMORY_ALLOCATOR_REPRO_BRK_METADATA=1 runs it.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { closeHeaps, nativeHeap, prng, skipUnlessBreakCanRise, testing } from './helpers'

afterEach(closeHeaps)

const MiB = 1024 * 1024

describe.skipIf(process.env.MEMORY_ALLOCATOR_REPRO_BRK_METADATA !== '1')('the brk heap and glibc share the break', () => {
  it('growing a brk heap never lets its own metadata move the break above it', (ctx) => {
    skipUnlessBreakCanRise(ctx, 16 * MiB)
    const { currentBreak } = testing()
    const random = prng(2026)
    const glibcBuffers: Buffer[] = []
    const buried: number[] = []
    for (let i = 0; i < 100; i++) {
      const heap = nativeHeap({ source: 'brk' })
      const address = heap.raw.alloc(8 * MiB) // the call returns a number: no JS allocation in between
      const aboveHeap = currentBreak() - heap.stats().heapEnd
      if (aboveHeap !== 0) buried.push(aboveHeap)
      heap.raw.free(address)
      heap.close()
      // glibc's main arena serves these from its top, so the next heap meets a different top.
      glibcBuffers.push(Buffer.allocUnsafeSlow(1024 + Math.floor(random() * 100 * 1024)))
    }
    expect(buried, 'bytes the break stood above a heap right after its growth').toEqual([])
  })
})
