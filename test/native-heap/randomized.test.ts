/**
 * Randomized runs against a simple model of the heap: a Map from address to the chunk's requested
 * size and the offset of its contents in a fixed pseudo-random byte pattern.
 *
 * Per operation: alloc (random sizes, occasionally aligned or 0), free (through the handle or the
 * raw address), realloc (through the handle). Every chunk's address is checked against its
 * alignment and against the live set, its usable size against the request, and its bytes against
 * the pattern before it is freed or reallocated (a realloc must keep the common prefix). Every
 * CHECK_EVERY operations: check(), chunks() against the model, no two live chunks overlapping,
 * every live chunk's bytes, and the live figures of stats().
 *
 * Seeds are fixed (and in the test names) so that a failure reproduces; MA_RANDOM_SEED=<n>
 * replaces them all.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { AllocatorError, Handle, Heap, HeapStats } from '../../lib/index'
import { closeHeaps, DEFERRED_PER_SIZE, DEFERRED_TOTAL, deferredBelowGranules, coreChunks, coreStats, nativeHeap, prng, STRATEGIES, testing, type CoreChunk, type CoreStats, type StrategyName } from './helpers'

afterEach(closeHeaps)

const OPS = 100_000
const CHECK_EVERY = 2_000
const TARGET_LIVE = 500
const GRANULE = 16
const MAX_SIZE = 65_536
const ALIGNS = [32, 64, 256, 4096, 65536]

/** Contents of every chunk: PATTERN[pat .. pat + size) for the chunk's own `pat`. */
const PATTERN = Buffer.alloc(MAX_SIZE + 65_536)
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = (i * 131 + (i >>> 8) * 7 + 17) & 255

const roundUp = (size: number, granule = GRANULE) => Math.max(granule, Math.ceil(size / granule) * granule)

interface Entry {
  handle: Handle
  size: number
  pat: number
  index: number // in `order`
}

class Model {
  readonly byAddress = new Map<number, Entry>()
  readonly order: number[] = [] // live addresses, for picking one at random
  readonly usable = new Map<number, number>() // sizeOf of each live chunk when it was handed out

  add(address: number, entry: Omit<Entry, 'index'>): void {
    if (this.byAddress.has(address)) throw new Error(`0x${address.toString(16)} was handed out while it is live`)
    this.byAddress.set(address, { ...entry, index: this.order.length })
    this.order.push(address)
  }

  remove(address: number): Entry {
    const entry = this.byAddress.get(address)!
    const last = this.order.pop()!
    if (last !== address) {
      this.order[entry.index] = last
      this.byAddress.get(last)!.index = entry.index
    }
    this.byAddress.delete(address)
    this.usable.delete(address)
    return entry
  }

  clear(): void {
    this.byAddress.clear()
    this.usable.clear()
    this.order.length = 0
  }
}

interface RunOptions {
  /** The heap's alignment. */
  granule?: number
  /** With split: usable sizes are exactly the request rounded up; without, they may be larger. */
  exact?: boolean
  /**
   * maxHeapBytes is set: ERR_OUT_OF_MEMORY is an expected answer, that must change nothing but
   * merge the deferred chunks (see Run.checkFailure).
   */
  mayRunOut?: boolean
  /** The heap was made with coalesce: false. */
  coalesce?: boolean
}

class Run {
  readonly heap: Heap
  readonly model = new Model()
  readonly random: () => number
  readonly problems: string[] = []
  readonly granule: number
  readonly exact: boolean
  readonly mayRunOut: boolean
  /** Best fit with merging on keeps small freed chunks deferred; every other heap never does. */
  readonly defers: boolean
  /** The most deferred chunks any checkpoint saw. */
  maxDeferred = 0
  targetLive = TARGET_LIVE
  ops = 0
  counts = { alloc: 0, free: 0, realloc: 0, aligned: 0, zero: 0, resets: 0, moved: 0, outOfMemory: 0 }

  constructor(heap: Heap, seed: number, options: RunOptions = {}) {
    this.heap = heap
    this.random = prng(seed)
    this.granule = options.granule ?? GRANULE
    this.exact = options.exact ?? true
    this.mayRunOut = options.mayRunOut ?? false
    this.defers = heap.strategy === 'best-fit' && options.coalesce !== false
  }

  /** Runs `operation`; an allowed ERR_OUT_OF_MEMORY returns false. */
  attempt(operation: () => void): boolean {
    if (!this.mayRunOut) {
      operation()
      return true
    }
    const before = coreStats(this.heap)
    try {
      operation()
      return true
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_OUT_OF_MEMORY') throw error
      this.checkFailure(before)
      this.counts.outOfMemory++
      return false
    }
  }

  /**
   * A heap fails for lack of a fitting chunk only after merging every deferred chunk (README,
   * "Deferred merging"); nothing else may change. The live chunks are the model's, and with no
   * deferred chunk left check() admits no two adjacent free chunks and no free chunk below the
   * wilderness: so the free chunks are exactly what merging the old ones gives.
   */
  checkFailure(before: CoreStats): void {
    const after = coreStats(this.heap)
    const mergeable = new Set(['freeChunks', 'freeBytes', 'largestFreeChunk', 'topBytes', 'deferredChunks'])
    const changed = Object.keys(before).filter((key) => !mergeable.has(key) && before[key as keyof CoreStats] !== after[key as keyof CoreStats])
    if (changed.length > 0) this.fail(`a failed call changed ${changed.join(', ')}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`)
    if (after.deferredChunks !== 0) this.fail(`a failed call left ${after.deferredChunks} deferred chunks unmerged`)
    if (after.freeBytes + after.topBytes !== before.freeBytes + before.topBytes || after.freeChunks > before.freeChunks) {
      this.fail(`a failed call did more than merge free chunks: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`)
    }
    if (before.deferredChunks === 0 && JSON.stringify(after) !== JSON.stringify(before)) {
      this.fail(`a failed call changed stats() with nothing to merge: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`)
    }
    try {
      this.heap.check()
    } catch (error) {
      this.fail(String(error))
    }
    const live = this.heap.chunks().filter((c) => c.state === 'live')
    if (live.length !== this.model.byAddress.size || live.some((c) => this.model.usable.get(c.address) !== c.size)) {
      this.fail('a failed call changed the live chunks')
    }
  }

  int(below: number): number {
    return Math.floor(this.random() * below)
  }

  size(): number {
    const r = this.random()
    if (r < 0.02) return 0
    if (r < 0.6) return 1 + this.int(128)
    if (r < 0.85) return 129 + this.int(896)
    if (r < 0.97) return 1025 + this.int(7168)
    return 8193 + this.int(MAX_SIZE - 8192)
  }

  fail(what: string): void {
    // Collected, and thrown at once: expect() per operation would dominate the run time.
    this.problems.push(`op ${this.ops}: ${what}`)
    throw new Error(this.problems.join('\n'))
  }

  write(handle: Handle, size: number, pat: number): void {
    if (size > 0) handle.bytes().set(PATTERN.subarray(pat, pat + size))
  }

  verify(address: number, entry: Entry, length = entry.size): void {
    if (length === 0) return
    const bytes = entry.handle.bytes()
    if (bytes.length < length) this.fail(`the view of 0x${address.toString(16)} has ${bytes.length} bytes, expected ${length}`)
    const actual = Buffer.from(bytes.buffer, bytes.byteOffset, length)
    if (!actual.equals(PATTERN.subarray(entry.pat, entry.pat + length))) {
      let at = 0
      while (actual[at] === PATTERN[entry.pat + at]) at++
      this.fail(`the chunk at 0x${address.toString(16)} (${entry.size} bytes) lost its contents at byte ${at}`)
    }
  }

  usable(size: number): number {
    return roundUp(size, this.granule)
  }

  checkNew(address: number, size: number, align: number): void {
    if (address % Math.max(align, this.granule) !== 0) this.fail(`0x${address.toString(16)} is not aligned to ${align}`)
    const usable = this.heap.raw.sizeOf(address)
    const expected = this.usable(size)
    if (this.exact ? usable !== expected : usable < expected || usable % this.granule !== 0) {
      this.fail(`sizeOf 0x${address.toString(16)} is ${usable} for a request of ${size}`)
    }
    this.model.usable.set(address, usable)
  }

  alloc(): void {
    const size = this.size()
    const align = this.random() < 0.05 ? ALIGNS[this.int(ALIGNS.length)] : undefined
    let handle: Handle | undefined
    if (!this.attempt(() => (handle = this.heap.alloc(size, align === undefined ? undefined : { align })))) return
    if (handle === undefined) return
    const address = handle.address
    if (this.model.byAddress.has(address)) this.fail(`0x${address.toString(16)} was handed out while it is live`)
    this.checkNew(address, size, align ?? this.granule)
    const pat = this.int(65_536)
    this.write(handle, size, pat)
    this.model.add(address, { handle, size, pat })
    this.counts.alloc++
    if (align !== undefined) this.counts.aligned++
    if (size === 0) this.counts.zero++
  }

  pick(): [number, Entry] {
    const address = this.model.order[this.int(this.model.order.length)]
    return [address, this.model.byAddress.get(address)!]
  }

  free(): void {
    const [address, entry] = this.pick()
    this.verify(address, entry)
    if (this.random() < 0.5) this.heap.free(entry.handle)
    else this.heap.raw.free(address)
    if (entry.handle.live) this.fail(`the handle of 0x${address.toString(16)} is still live after its free`)
    this.model.remove(address)
    this.counts.free++
  }

  realloc(): void {
    const [address, entry] = this.pick()
    this.verify(address, entry)
    const size = this.size()
    let handle: Handle | undefined
    if (!this.attempt(() => (handle = this.heap.realloc(entry.handle, size)))) {
      // A failed realloc keeps the chunk, its handle and its contents.
      if (!entry.handle.live) this.fail(`a failed realloc killed the handle of 0x${address.toString(16)}`)
      this.verify(address, entry)
      return
    }
    if (handle === undefined) return
    this.model.remove(address)
    const moved = handle.address
    if (this.model.byAddress.has(moved)) this.fail(`realloc moved 0x${address.toString(16)} onto live 0x${moved.toString(16)}`)
    this.checkNew(moved, size, this.granule)
    const kept = { handle, size, pat: entry.pat, index: 0 }
    this.verify(moved, kept, Math.min(entry.size, size))
    this.write(handle, size, entry.pat)
    this.model.add(moved, { handle, size, pat: entry.pat })
    this.counts.realloc++
    if (moved !== address) this.counts.moved++
  }

  reset(): void {
    this.checkpoint()
    this.heap.reset()
    for (const entry of this.model.byAddress.values()) if (entry.handle.live) this.fail('a handle survived reset()')
    this.model.clear()
    this.counts.resets++
    // Nothing is live. A segment below foreign memory cannot be given back: it stays as one free
    // chunk (only the last segment has a wilderness).
    const stats = this.heap.stats()
    const chunks = this.heap.chunks()
    if (stats.liveChunks !== 0 || stats.liveBytes !== 0 || chunks.some((c) => c.state !== 'free')) this.fail('reset() left live chunks')
    if (chunks.length !== stats.freeChunks || stats.freeChunks > Math.max(0, stats.segments - 1)) {
      this.fail(`reset() left ${stats.freeChunks} free chunks in ${stats.segments} segments`)
    }
  }

  checkpoint(): void {
    try {
      this.heap.check()
    } catch (error) {
      this.fail(String(error))
    }
    const chunks = coreChunks(this.heap)
    const live = chunks.filter((c) => c.state === 'live')
    const free = chunks.filter((c) => c.state === 'free')
    if (live.length !== this.model.byAddress.size) this.fail(`chunks() lists ${live.length} live chunks, the model ${this.model.byAddress.size}`)
    let liveBytes = 0
    for (const chunk of live) {
      const entry = this.model.byAddress.get(chunk.address)
      if (entry === undefined) this.fail(`chunks() lists a live chunk at 0x${chunk.address.toString(16)} that the model does not have`)
      else if (chunk.size !== this.model.usable.get(chunk.address)) {
        this.fail(`chunk 0x${chunk.address.toString(16)} has size ${chunk.size}; sizeOf said ${this.model.usable.get(chunk.address)}`)
      }
      liveBytes += chunk.size
    }
    // No two live chunks overlap, by the model's own addresses and usable sizes.
    const addresses = [...this.model.byAddress.keys()].sort((a, b) => a - b)
    for (let i = 1; i < addresses.length; i++) {
      const previous = addresses[i - 1]
      if (previous + this.model.usable.get(previous)! > addresses[i]) {
        this.fail(`live chunks 0x${previous.toString(16)} and 0x${addresses[i].toString(16)} overlap`)
      }
    }
    for (const [address, entry] of this.model.byAddress) this.verify(address, entry)
    const stats = this.heap.stats()
    if (stats.liveChunks !== live.length || stats.liveBytes !== liveBytes) {
      this.fail(`stats() says ${stats.liveChunks} live chunks of ${stats.liveBytes} bytes, chunks() ${live.length} of ${liveBytes}`)
    }
    const freeBytes = free.reduce((sum, c) => sum + c.size, 0)
    const largest = free.reduce((max, c) => Math.max(max, c.size), 0)
    if (stats.freeChunks !== free.length || stats.freeBytes !== freeBytes || stats.largestFreeChunk !== largest) {
      this.fail(`stats() says ${stats.freeChunks} free chunks of ${stats.freeBytes} bytes (largest ${stats.largestFreeChunk}), chunks() ${free.length} of ${freeBytes} (largest ${largest})`)
    }
    this.checkDeferred(chunks, stats)
    // heapBytes = live + free + top + the alignment pads of segments (none on mmap).
    const accounted = stats.liveBytes + stats.freeBytes + stats.topBytes
    if (this.heap.source === 'mmap' ? stats.heapBytes !== accounted : stats.heapBytes < accounted) {
      this.fail(`heapBytes ${stats.heapBytes}, but live + free + top = ${accounted}`)
    }
    if (stats.peakLiveBytes < stats.liveBytes || stats.peakHeapBytes < stats.heapBytes) this.fail('a peak is below the current figure')
    if (chunks.length > 0 && (chunks[0].address < stats.heapStart || chunks[chunks.length - 1].address >= stats.heapEnd)) {
      this.fail('a chunk lies outside [heapStart, heapEnd)')
    }
  }

  /** Deferred chunks: only where the heap defers, small, within their bounds, and counted. */
  checkDeferred(chunks: CoreChunk[], stats: HeapStats): void {
    const deferred = chunks.filter((c) => c.deferred === true)
    const counted = (stats as CoreStats).deferredChunks
    this.maxDeferred = Math.max(this.maxDeferred, counted)
    if (counted !== deferred.length) this.fail(`stats() counts ${counted} deferred chunks, chunks() lists ${deferred.length}`)
    if (!this.defers && deferred.length > 0) this.fail(`a heap that never defers lists ${deferred.length} deferred chunks`)
    if (deferred.length > DEFERRED_TOTAL) this.fail(`${deferred.length} deferred chunks, more than ${DEFERRED_TOTAL}`)
    const perSize = new Map<number, number>()
    for (const chunk of deferred) {
      if (chunk.state !== 'free') this.fail(`a ${chunk.state} chunk at 0x${chunk.address.toString(16)} is marked deferred`)
      if (chunk.size >= deferredBelowGranules(this.granule) * this.granule) this.fail(`a deferred chunk of ${chunk.size} bytes: deferral is for fewer than ${deferredBelowGranules(this.granule)} granules`)
      perSize.set(chunk.size, (perSize.get(chunk.size) ?? 0) + 1)
    }
    for (const [size, count] of perSize) if (count > DEFERRED_PER_SIZE) this.fail(`${count} deferred chunks of ${size} bytes, more than ${DEFERRED_PER_SIZE}`)
  }

  step(resetEvery: number): void {
    this.ops++
    const live = this.model.order.length
    const r = this.random()
    const allocShare = live < this.targetLive ? 0.55 : 0.4
    if (live === 0 || r < allocShare) this.alloc()
    else if (r < allocShare + 0.15) this.realloc()
    else this.free()
    if (this.ops % CHECK_EVERY === 0) this.checkpoint()
    if (this.ops % resetEvery === 0) this.reset()
  }
}

function seedFor(index: number): number {
  const fixed = process.env.MA_RANDOM_SEED
  return fixed !== undefined ? Number(fixed) : 0x5eed0 + index
}

describe('randomized runs against a model', () => {
  STRATEGIES.forEach((strategy: StrategyName, index) => {
    const seed = seedFor(index)
    it(`${strategy}: ${OPS} operations (seed ${seed})`, () => {
      const heap = nativeHeap({ source: 'mmap', strategy })
      const run = new Run(heap, seed)
      // bump reuses memory only through reset(); the others get one now and then too.
      const resetEvery = strategy === 'bump' ? 5_000 : 25_000
      for (let i = 0; i < OPS; i++) run.step(resetEvery)
      run.checkpoint()
      console.log(`${strategy} (seed ${seed}): ${JSON.stringify(run.counts)}, searchSteps ${heap.stats().searchSteps}`)
      expect(run.problems).toEqual([])
      const stats = heap.stats()
      expect(run.counts.alloc).toBeGreaterThan(OPS / 3)
      expect(run.counts.free).toBeGreaterThan(OPS / 4)
      expect(run.counts.realloc).toBeGreaterThan(OPS / 10)
      expect(run.counts.aligned).toBeGreaterThan(1000)
      expect(run.counts.zero).toBeGreaterThan(500)
      expect(run.counts.moved).toBeGreaterThan(1000)
      expect(stats.reallocs).toBe(run.counts.realloc)
      expect(stats.allocs).toBe(run.counts.alloc)
      expect(stats.frees).toBe(run.counts.free)
      // Only best fit defers, and it does defer: the bound checks above ran on real deferred chunks.
      if (strategy === 'best-fit') expect(run.maxDeferred).toBeGreaterThan(0)
      else expect(run.maxDeferred).toBe(0)
      if (strategy !== 'bump') expect(stats.searchSteps).toBeGreaterThan(0)
      else expect(stats.searchSteps).toBe(0)
    })
  })

  const VARIANT_OPS = 20_000
  const variants: Array<[string, Parameters<typeof nativeHeap>[0], RunOptions]> = [
    ['best-fit, split: false', { strategy: 'best-fit', split: false }, { exact: false }],
    ['first-fit, coalesce: false', { strategy: 'first-fit', coalesce: false }, { coalesce: false }],
    ['best-fit-linear, split and coalesce off', { strategy: 'best-fit-linear', split: false, coalesce: false }, { exact: false, coalesce: false }],
    ['next-fit, alignment 8', { strategy: 'next-fit', alignment: 8 }, { granule: 8 }],
    ['worst-fit, alignment 4096', { strategy: 'worst-fit', alignment: 4096 }, { granule: 4096 }],
    ['best-fit, growth 0 and trimThreshold 0 (the end moves on nearly every call)', { growth: 0, trimThreshold: 0 }, {}],
    ['best-fit, segregateSmall 64 (small requests at the high end)', { segregateSmall: 64, growth: 4096 }, {}],
    ['first-fit, segregateSmall 256 with split: false (segregation off)', { strategy: 'first-fit', segregateSmall: 256, split: false }, { exact: false }],
    ['best-fit, maxHeapBytes 1 MiB (allocations fail now and then)', { maxHeapBytes: 1 << 20, growth: 0 }, { mayRunOut: true }],
    ['first-fit, maxHeapBytes 1 MiB, coalesce: false', { strategy: 'first-fit', maxHeapBytes: 1 << 20, coalesce: false }, { mayRunOut: true, coalesce: false }],
    ['best-fit, coalesce: false (never defers)', { strategy: 'best-fit', coalesce: false }, { coalesce: false }],
  ]
  variants.forEach(([name, options, runOptions], index) => {
    const seed = seedFor(10 + index)
    it(`${name}: ${VARIANT_OPS} operations (seed ${seed})`, () => {
      const heap = nativeHeap({ source: 'mmap', ...options })
      const run = new Run(heap, seed, runOptions)
      for (let i = 0; i < VARIANT_OPS; i++) run.step(10_000)
      run.checkpoint()
      console.log(`${name} (seed ${seed}): ${JSON.stringify(run.counts)}`)
      expect(run.problems).toEqual([])
      expect(run.counts.free).toBeGreaterThan(VARIANT_OPS / 5)
      if (runOptions.mayRunOut) {
        expect(run.counts.outOfMemory).toBeGreaterThan(0)
        expect(heap.stats().peakHeapBytes).toBeLessThanOrEqual(1 << 20)
      }
    })
  })

  it(`best-fit on brk, with foreign code moving the break now and then (seed ${seedFor(6)})`, () => {
    const { currentBreak, moveBreak } = testing()
    const heap = nativeHeap({ source: 'brk', growth: 65536 })
    const run = new Run(heap, seedFor(6))
    const foreign: Array<{ start: number; end: number }> = []
    let maxSegments = 0
    let refused = 0
    try {
      for (let i = 0; i < 30_000; i++) {
        run.step(10_000)
        if (i % 1_000 === 500) {
          // Foreign code takes some memory above whatever is there now, as sbrk gives it: in a
          // process with a mapping right above the break it gets none, and copes.
          const bytes = 4096 * (1 + run.int(16))
          try {
            const start = moveBreak(bytes)
            foreign.push({ start, end: start + bytes })
          } catch (error) {
            expect((error as AllocatorError).code).toBe('ERR_OUT_OF_MEMORY')
            refused++
          }
        } else if (i % 1_000 === 900 && foreign.length > 0 && currentBreak() === foreign[foreign.length - 1].end) {
          // ... and gives it back, if nothing was put above it since.
          const last = foreign.pop()!
          moveBreak(last.start - last.end)
        }
        if (i % 1_000 === 0) maxSegments = Math.max(maxSegments, heap.stats().segments)
      }
      run.checkpoint()
      expect(run.problems).toEqual([])
      if (refused === 0) {
        expect(maxSegments).toBeGreaterThan(1)
      } else {
        console.warn(`the break could not rise for ${refused} of 30 foreign moves in this process (a mapping sits above it)`)
      }
    } finally {
      heap.close()
      while (foreign.length > 0 && currentBreak() === foreign[foreign.length - 1].end) {
        const last = foreign.pop()!
        moveBreak(last.start - last.end)
      }
    }
  })
})
