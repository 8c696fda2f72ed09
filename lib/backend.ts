/**
 * What the facade (lib/heap.ts) needs from a backend: the numeric heap operations, views, and
 * inspection. The native backend forwards to the addon; the js backend is the bump heap.
 */
import type { ChunkInfo, HeapStats, RawHeap, Source, Strategy } from './types'

export interface HeapBackend {
  readonly kind: 'native' | 'js'
  readonly source: Source
  readonly strategy: Strategy
  /** Throw ERR_HEAP_CLOSED after close(). */
  readonly raw: RawHeap
  allocZeroed(size: number, align: number | undefined): number
  /** A Uint8Array of `size` bytes over the live chunk at `address`. */
  bytes(address: number, size: number): Uint8Array
  reset(): void
  trim(): number
  stats(): HeapStats
  chunks(): ChunkInfo[]
  check(): void
  close(): void
  readonly closed: boolean
}
