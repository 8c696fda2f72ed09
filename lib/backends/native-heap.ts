/**
 * The native backend: a thin shell over the addon's heap object. All allocation logic is in
 * native/core; the functions of `raw` are the addon's own, so the numeric path adds no JS layer.
 *
 * Views (HeapOptions.views; README, "Views and their revocation"): 'revocable' makes one external buffer per chunk view and keeps it in
 * the facade's ViewSlot, handing it back on free so the addon needs no registry; 'shared' cuts
 * views out of one buffer per segment (a window), the last window cached here so that a view
 * costs a typed array and no addon call.
 */
import type { NativeBinding, NativeHeap, NativeHeapOptions } from '../../binding'
import type { HeapBackend, ViewSlot } from './backend'
import type { ChunkInfo, HeapStats, RawHeap, Strategy } from '../types'

export class NativeBackend implements HeapBackend {
  readonly backend = 'native' as const
  readonly source: 'brk' | 'mmap'
  readonly strategy: Strategy
  readonly views: 'revocable' | 'shared'
  readonly raw: RawHeap
  readonly #heap: NativeHeap
  readonly #viewInfo: Float64Array
  /** Shared mode: the last window, [windowLow, windowLow + window.byteLength). */
  #window: ArrayBuffer | undefined
  #windowLow = 0

  constructor(binding: NativeBinding, options: NativeHeapOptions) {
    this.#heap = binding.createHeap(options)
    this.#viewInfo = this.#heap.viewInfo
    this.source = options.source
    this.strategy = options.strategy
    this.views = options.views
    const { alloc, free, realloc, sizeOf } = this.#heap
    this.raw = { alloc, free, realloc, sizeOf }
  }

  get closed(): boolean {
    return this.#heap.isClosed()
  }

  allocZeroed(size: number, align: number | undefined): number {
    return this.#heap.alloc(size, align, true)
  }

  bytes(address: number, size: number, slot?: ViewSlot): Uint8Array {
    // Shared views never fill the slot, so the facade frees their chunks through raw.free.
    if (this.views === 'shared') return this.#sharedBytes(address, size)
    if (slot === undefined) return new Uint8Array(this.#heap.view(address, size))
    const current = slot.viewBuffer
    if (current !== undefined) {
      if (current.byteLength !== 0 || size === 0) return new Uint8Array(current)
      // Someone else detached it (a transfer): it escaped.
      this.#heap.noteEscaped(slot.viewToken)
    }
    const buffer = this.#heap.view(address, size)
    slot.viewBuffer = buffer
    slot.viewToken = this.#viewInfo[0]
    return new Uint8Array(buffer)
  }

  #sharedBytes(address: number, size: number): Uint8Array {
    const window = this.#window
    const offset = address - this.#windowLow
    // A detached window reads byteLength 0, so the bounds check also catches revocation.
    if (window !== undefined && offset >= 0 && offset + size <= window.byteLength) return new Uint8Array(window, offset, size)
    const fresh = this.#heap.view(address, size)
    this.#window = fresh
    this.#windowLow = this.#viewInfo[0]
    return new Uint8Array(fresh, address - this.#windowLow, size)
  }

  freeViewed(address: number, slot: ViewSlot): void {
    this.#heap.freeViewed(address, slot.viewBuffer!, slot.viewToken)
    slot.viewBuffer = undefined
  }

  reallocViewed(address: number, size: number, slot: ViewSlot): number {
    const moved = this.#heap.realloc(address, size, slot.viewBuffer, slot.viewToken)
    slot.viewBuffer = undefined
    return moved
  }

  revokeView(address: number, slot: ViewSlot): void {
    this.#heap.revokeView(address, slot.viewBuffer!, slot.viewToken)
    slot.viewBuffer = undefined
  }

  reset(): void {
    this.#heap.reset()
  }

  trim(): number {
    return this.#heap.trim()
  }

  stats(): HeapStats {
    return this.#heap.stats()
  }

  chunks(): ChunkInfo[] {
    return this.#heap.chunks()
  }

  check(): void {
    this.#heap.check()
  }

  close(): void {
    this.#window = undefined
    this.#heap.close()
  }
}
