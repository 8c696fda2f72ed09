/**
 * Shared helpers of the native heap suites: heaps that are closed after each test, exact
 * snapshots of chunks() and stats(), error assertions, the test-only break hooks and
 * /proc/self/maps.
 */
import { readFileSync } from 'node:fs'
import { expect } from 'vitest'
import { AllocatorError, createHeap, type ChunkInfo, type ErrorCode, type Heap, type HeapOptions, type HeapStats } from '../../lib/index'
import { loadTestHooks, type TestHooks } from '../native/test-hooks'

export const STRATEGIES = ['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit', 'bump'] as const
export type StrategyName = (typeof STRATEGIES)[number]

const KiB = 1024
export const MiB = 1024 * KiB

const open: Heap[] = []

/** A native heap with leak tracking off (tests free by address); closed by closeHeaps(). */
export function nativeHeap(options: HeapOptions = {}): Heap {
  const heap = createHeap({ backend: 'native', trackLeaks: false, ...options })
  open.push(heap)
  return heap
}

/**
 * Deferred merging's bounds, as native/core/heap.h sets them: chunks below 1024 bytes and below
 * 64 granules, at most DEFERRED_PER_SIZE of one size and DEFERRED_TOTAL in all, and in all no more
 * than one per HEAP_BYTES_PER_DEFERRED bytes of the heap (but DEFERRED_LEAST at least).
 */
export const DEFERRED_PER_SIZE = 1024
export const DEFERRED_TOTAL = 4096
export const HEAP_BYTES_PER_DEFERRED = 2048
export const DEFERRED_LEAST = 1024
/** The total bound of a heap of `heapBytes` (stats().heapBytes when the chunk is freed). */
export function deferredTotal(heapBytes: number): number {
  return Math.min(DEFERRED_TOTAL, Math.max(DEFERRED_LEAST, Math.floor(heapBytes / HEAP_BYTES_PER_DEFERRED)))
}
export function deferredBelowGranules(granule: number): number {
  return Math.min(64, Math.floor(1024 / granule))
}

/**
 * A native heap that places every request at the low end of the space it splits (segregateSmall
 * 0): the layouts the placement, merging and realloc tests spell out assume it. The default
 * (small requests at the high end) has tests of its own.
 */
export function lowEndHeap(options: HeapOptions = {}): Heap {
  return nativeHeap({ segregateSmall: 0, ...options })
}

/** For afterEach: closes every heap a test made, newest first (brk heaps release top-down). */
export function closeHeaps(): void {
  while (open.length > 0) open.pop()!.close()
}

/**
 * What the addon reports about deferred merging (README, "Deferred merging"). lib/types.ts
 * does not declare these fields yet, so the suites read them through these types.
 */
export type CoreStats = HeapStats & { deferredChunks: number }
export type CoreChunk = ChunkInfo & { deferred?: true }

export function coreStats(heap: Heap): CoreStats {
  return heap.stats() as CoreStats
}

export function coreChunks(heap: Heap): CoreChunk[] {
  return heap.chunks() as CoreChunk[]
}

export interface Snapshot {
  chunks: CoreChunk[]
  stats: CoreStats
}

export function snapshot(heap: Heap): Snapshot {
  return { chunks: coreChunks(heap), stats: coreStats(heap) }
}

/**
 * The snapshot a heap must show once every deferred chunk in `before` is merged (what the core
 * does before it grows or fails for lack of a fitting chunk): each run of adjacent free chunks
 * becomes one free chunk, and a run that ends at the wilderness becomes part of it. Nothing else
 * changes. Chunks of different segments are never adjacent (foreign memory lies between them).
 */
export function settled(before: Snapshot): Snapshot {
  const wilderness = before.stats.heapEnd - before.stats.topBytes
  const chunks: CoreChunk[] = []
  let topBytes = before.stats.topBytes
  for (const chunk of before.chunks) {
    const last = chunks[chunks.length - 1]
    if (chunk.state === 'free' && last?.state === 'free' && last.address + last.size === chunk.address) {
      last.size += chunk.size
    } else {
      const { deferred: _, ...plain } = chunk
      chunks.push({ ...plain })
    }
  }
  const last = chunks[chunks.length - 1]
  if (last?.state === 'free' && last.address + last.size === wilderness) {
    chunks.pop()
    topBytes += last.size
  }
  const free = chunks.filter((c) => c.state === 'free')
  return {
    chunks,
    stats: {
      ...before.stats,
      freeChunks: free.length,
      freeBytes: free.reduce((sum, c) => sum + c.size, 0),
      largestFreeChunk: free.reduce((max, c) => Math.max(max, c.size), 0),
      topBytes,
      deferredChunks: 0,
    },
  }
}

/** 'deferred' is a free chunk kept unmerged on purpose (listed with `deferred: true`). */
export type ChunkState = 'live' | 'free' | 'deferred'
export type Layout = Array<[offset: number, size: number, state: ChunkState]>

/** chunks() as [offset from `base`, size, state] rows: concrete and readable in a diff. */
export function layout(heap: Heap, base: number): Layout {
  return coreChunks(heap).map((c) => {
    expect(c.quarantined).toBeUndefined()
    if (c.deferred !== undefined) {
      expect(c.deferred).toBe(true)
      expect(c.state).toBe('free')
    }
    return [c.address - base, c.size, c.deferred === true ? 'deferred' : c.state]
  })
}

/** Runs `run`, which must throw an AllocatorError with `code`; returns the error. */
export function expectError(run: () => unknown, code: ErrorCode): AllocatorError {
  let thrown: unknown
  try {
    run()
  } catch (error) {
    thrown = error
  }
  if (thrown === undefined) throw new Error(`expected ${code}, but nothing was thrown`)
  expect(thrown).toBeInstanceOf(AllocatorError)
  expect((thrown as AllocatorError).code, (thrown as Error).message).toBe(code)
  expect((thrown as Error).message.length).toBeGreaterThan(0)
  return thrown as AllocatorError
}

/** `run` must fail with `code` and leave chunks() and stats() exactly as they were. */
export function expectFailureLeavesHeap(heap: Heap, run: () => unknown, code: ErrorCode): AllocatorError {
  const before = snapshot(heap)
  const error = expectError(run, code)
  expect(snapshot(heap), `${code} changed the heap: ${error.message}`).toEqual(before)
  heap.check()
  return error
}

/**
 * `run` must fail with ERR_OUT_OF_MEMORY after merging every deferred chunk, as the contract
 * requires before a heap fails for lack of a fitting chunk: chunks() and stats() must be exactly
 * settled(before), so no live chunk moved and nothing but the merge changed.
 */
export function expectOutOfMemorySettlesHeap(heap: Heap, run: () => unknown): AllocatorError {
  const before = snapshot(heap)
  const error = expectError(run, 'ERR_OUT_OF_MEMORY')
  expect(snapshot(heap), `ERR_OUT_OF_MEMORY did more than merge the deferred chunks: ${error.message}`).toEqual(settled(before))
  heap.check()
  return error
}

/** The test-only break hooks (a separate addon, never shipped: test/native/test-hooks.ts). */
export function testing(): TestHooks {
  return loadTestHooks()
}

export interface Mapping {
  start: number
  end: number
  perms: string
  name: string
}

export function mappings(): Mapping[] {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [range, perms, , , , ...name] = line.split(/\s+/)
      const [start, end] = range.split('-').map((hex) => parseInt(hex, 16))
      return { start, end, perms, name: name.join(' ') }
    })
}

/** The `[heap]` mapping: the kernel's view of [start_brk, brk). */
export function brkMapping(): Mapping | undefined {
  return mappings().find((m) => m.name === '[heap]')
}

/**
 * Bytes the break can still rise before it meets the next mapping (Infinity when none is above).
 * In about one Node process in a hundred V8 maps its code space right above `[heap]`, so the
 * break cannot move at all there; the brk source then grows in a reserved region instead.
 */
export function roomAboveBreak(): number {
  const pageEnd = Math.ceil(testing().currentBreak() / 4096) * 4096
  const above = mappings().find((m) => m.start >= pageEnd && m.name !== '[heap]')
  // The kernel keeps one page between a new break and the next mapping.
  return above === undefined ? Infinity : Math.max(0, above.start - pageEnd - 4096)
}

/**
 * For tests that watch the break itself move: skips the test, saying why, in a process whose
 * break has less than `bytes` of room above it. Nothing a test can do makes room there.
 */
export function skipUnlessBreakCanRise(context: { skip: (condition: boolean, note?: string) => void }, bytes: number): void {
  const room = roomAboveBreak()
  const note = `the break has ${room} bytes of room in this process (a mapping sits above it); this test needs ${bytes}`
  if (room < bytes) console.warn(`skipped: ${note}`)
  context.skip(room < bytes, note)
}

/** The mapping that holds `address`, or undefined. */
export function mappingOf(address: number): Mapping | undefined {
  return mappings().find((m) => m.start <= address && address < m.end)
}

/** mulberry32: a tiny seeded PRNG, enough for reproducible random runs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
