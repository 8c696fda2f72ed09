/**
 * What the facade (lib/heap/heap.ts) needs from a backend: the numeric heap operations, views, and
 * inspection. The native backend forwards to the addon; the js backend is the bump heap.
 */
import type { ChunkInfo, HeapStats, RawHeap, Source, Strategy } from '../types'

/**
 * Where a backend with revocable views keeps what it needs to revoke one chunk's view. The facade
 * stores one per chunk that has views (lib/heap/handle.ts ChunkState) and passes it back; a backend
 * whose views are not revocable per chunk never fills it.
 */
export interface ViewSlot {
  viewBuffer: ArrayBuffer | undefined
  viewToken: number
}

export interface HeapBackend {
  readonly backend: 'native' | 'js'
  readonly source: Source
  readonly strategy: Strategy
  /** Throw ERR_HEAP_CLOSED after close(). */
  readonly raw: RawHeap
  allocZeroed(size: number, align: number | undefined): number
  /**
   * A Uint8Array of `size` bytes over the live chunk at `address`. With `slot`, a backend with
   * revocable views records the view there, to be revoked by freeViewed/reallocViewed/revokeView.
   */
  bytes(address: number, size: number, slot?: ViewSlot): Uint8Array
  /** Frees a chunk whose slot holds a view, revoking the view. Only backends that fill slots. */
  freeViewed?(address: number, slot: ViewSlot): void
  /** Reallocates a chunk whose slot holds a view; the view is revoked once the chunk moved or changed. */
  reallocViewed?(address: number, size: number, slot: ViewSlot): number
  /** Revokes the slot's view, the chunk staying live (before reset and close). */
  revokeView?(address: number, slot: ViewSlot): void
  reset(): void
  trim(): number
  stats(): HeapStats
  chunks(): ChunkInfo[]
  check(): void
  close(): void
  readonly closed: boolean
}
