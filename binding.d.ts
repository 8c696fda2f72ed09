/**
 * The typed shape of the native binding: exactly what `memory_allocator.node` exports.
 * Only lib/backends/binding.ts loads it; the facade in lib/ is its only user.
 */
import type { ChunkInfo, HeapStats, Strategy } from './lib/types'

export type NativeStrategy = Strategy

/**
 * The core heap's options as the facade normalizes them (every field present and validated).
 * createHeap and replay both take them; one function in the addon maps them to the core's.
 */
export interface NativeCoreOptions {
  source: 'brk' | 'mmap'
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

export interface NativeHeapOptions extends NativeCoreOptions {
  strategy: NativeStrategy
  /** HeapOptions.views. */
  views: 'revocable' | 'shared'
  /** The runtime's largest ArrayBuffer (buffer.constants.MAX_LENGTH): larger views are ERR_UNSUPPORTED. */
  maxViewBytes: number
}

/** stats() and chunks() return the public shapes directly (lib/types.ts documents them). */
export type NativeHeapStats = HeapStats

export type NativeChunk = ChunkInfo

/** Functions bound to one core heap. Every one throws ERR_HEAP_CLOSED after close(). */
export interface NativeHeap {
  /** align: undefined or 0 = the heap's alignment. zero: fill the chunk with zeros. */
  alloc(size: number, align?: number, zero?: boolean): number
  free(address: number): void
  /** buffer, token: the chunk's revocable view, revoked once the realloc succeeded. */
  realloc(address: number, size: number, buffer?: ArrayBuffer, token?: number): number
  sizeOf(address: number): number
  /**
   * An ArrayBuffer for a view of `size` (default: usable) bytes of the live chunk. revocable: a
   * new buffer of exactly `size` bytes over the chunk, its token in viewInfo[0]; the caller keeps
   * both and hands them to freeViewed/realloc/revokeView. shared: a window over the chunk's
   * segment, its base address in viewInfo[0]; detached once memory under it is given back.
   */
  view(address: number, size?: number): ArrayBuffer
  /** Where view() leaves the token or window base. */
  readonly viewInfo: Float64Array
  /** Frees a chunk with a revocable view, detaching the view (or quarantining an escaped one). */
  freeViewed(address: number, buffer: ArrayBuffer, token: number): void
  /** Detaches a revocable view of a chunk that stays live (before reset and close). */
  revokeView(address: number, buffer: ArrayBuffer, token: number): void
  /** The view with `token` was found detached by someone else (a transfer). */
  noteEscaped(token: number): void
  reset(): void
  trim(): number
  stats(): NativeHeapStats
  chunks(): NativeChunk[]
  check(): void
  /** Idempotent. */
  close(): void
  isClosed(): boolean
}

/** With allocator 'libc' the core options are not read. */
export interface NativeReplayOptions extends NativeCoreOptions {
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
