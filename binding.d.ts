/**
 * The typed shape of the native binding: exactly what `memory_allocator.node` exports.
 * Only lib/binding.ts loads it; the facade in lib/ is its only user.
 */
import type { ChunkInfo, HeapStats, Strategy } from './lib/types'

export type NativeStrategy = Strategy

/** Options as the facade normalizes them: every field present and already validated. */
export interface NativeHeapOptions {
  source: 'brk' | 'mmap'
  strategy: NativeStrategy
  alignment: number
  growth: number
  split: boolean
  coalesce: boolean
  /** Infinity: never trims by itself. */
  trimThreshold: number
  /** 0 or Infinity: no cap. */
  maxHeapBytes: number
  /** 0 or absent: off. */
  segregateSmall?: number
}

/** stats() and chunks() return the public shapes directly (lib/types.ts documents them). */
export type NativeHeapStats = HeapStats

export type NativeChunk = ChunkInfo

/** Functions bound to one core heap. Every one throws ERR_HEAP_CLOSED after close(). */
export interface NativeHeap {
  /** align: undefined or 0 = the heap's alignment. zero: fill the chunk with zeros. */
  alloc(size: number, align?: number, zero?: boolean): number
  free(address: number): void
  realloc(address: number, size: number): number
  sizeOf(address: number): number
  /** An external ArrayBuffer over the chunk's usable bytes; detached when the chunk is freed. */
  view(address: number): ArrayBuffer
  reset(): void
  trim(): number
  stats(): NativeHeapStats
  chunks(): NativeChunk[]
  check(): void
  /** Idempotent. */
  close(): void
  isClosed(): boolean
}

export interface NativeReplayOptions {
  source: 'brk' | 'mmap'
  alignment: number
  growth: number
  trimThreshold: number
  segregateSmall: number
  touch: boolean
  repeat: number
}

export interface NativeReplayResult {
  nsPerOp: number
  runsNsPerOp: number[]
  peakLiveBytes: number
  peakHeapBytes: number | null
  metadataBytes: number | null
  brkCalls: number | null
  searchSteps: number | null
}

export interface NativeBinding {
  setErrorFactory(factory: (code: string, message: string) => Error): void
  externalBuffersAllowed(): boolean
  onMainThread(): boolean
  createHeap(options: NativeHeapOptions): NativeHeap
  replay(
    kinds: Uint8Array,
    ids: Int32Array,
    sizes: Float64Array,
    numIds: number,
    allocator: NativeStrategy | 'libc',
    options: NativeReplayOptions,
  ): NativeReplayResult
}
