/**
 * The native backend: a thin shell over the addon's heap object. All allocation logic is in
 * native/core; the functions of `raw` are the addon's own, so the numeric path adds no JS layer.
 */
import type { NativeBinding, NativeHeap, NativeHeapOptions } from '../binding'
import type { HeapBackend } from './backend'
import type { ChunkInfo, HeapStats, RawHeap, Strategy } from './types'

export class NativeBackend implements HeapBackend {
  readonly kind = 'native' as const
  readonly source: 'brk' | 'mmap'
  readonly strategy: Strategy
  readonly raw: RawHeap
  readonly #heap: NativeHeap

  constructor(binding: NativeBinding, options: NativeHeapOptions) {
    this.#heap = binding.createHeap(options)
    this.source = options.source
    this.strategy = options.strategy
    const { alloc, free, realloc, sizeOf } = this.#heap
    this.raw = { alloc, free, realloc, sizeOf }
  }

  get closed(): boolean {
    return this.#heap.isClosed()
  }

  allocZeroed(size: number, align: number | undefined): number {
    return this.#heap.alloc(size, align, true)
  }

  bytes(address: number, size: number): Uint8Array {
    return new Uint8Array(this.#heap.view(address), 0, size)
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
    this.#heap.close()
  }
}
