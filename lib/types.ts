/**
 * The public types (README, "API"): options, the Heap and Handle interfaces, and the
 * shapes that stats(), chunks() and leaks() return.
 */

export type Strategy = 'best-fit' | 'best-fit-linear' | 'first-fit' | 'next-fit' | 'worst-fit' | 'bump'
export type Backend = 'native' | 'js'
export type Source = 'brk' | 'mmap' | 'arraybuffer'

export interface HeapOptions {
  /** 'auto' (default): native where the addon loads and the platform has a break, else js. */
  backend?: 'auto' | Backend
  /** Native only. Default: brk on the main thread, mmap in worker threads. */
  source?: 'brk' | 'mmap'
  /** Default 'best-fit' on native, 'bump' on js (the only strategy js has). */
  strategy?: Strategy
  /** A power of two, 8..4096; default 16. */
  alignment?: number
  /** Least bytes per break move; default 65536; 0 = exactly what the request needs. */
  growth?: number
  /** Default true: split a larger free chunk, keep the rest free. */
  split?: boolean
  /** Default true: merge a freed chunk with free neighbours. */
  coalesce?: boolean
  /** Default 131072: give the top free space back when it exceeds this; Infinity never. */
  trimThreshold?: number
  /** Cap on bytes held from the OS (ERR_OUT_OF_MEMORY beyond). Default: none on native, 1 GiB on js. */
  maxHeapBytes?: number
  /**
   * Native only. Requests up to this many bytes take the high end of the free chunk (or top) they
   * split, larger ones the low end, so that small and large chunks do not interleave. Default 0:
   * every request takes the low end.
   */
  segregateSmall?: number
  /** Default true; 'stacks' also records allocation stacks. */
  trackLeaks?: boolean | 'stacks'
  /**
   * How views (bytes(), as(), array) are made. 'revocable' (the default on native): each chunk's
   * views are emptied (length 0) when it is freed; a first view costs an external ArrayBuffer
   * (about 1 us). 'shared': views on one buffer per segment, as cheap as a typed array; a freed
   * chunk's old views are not emptied and may alias a later chunk (the handle itself refuses use
   * after free), but no view ever reaches memory that is no longer mapped: buffers over memory
   * given back (trim, reset, close) are emptied first. The js heap's views are always 'shared'
   * (one ArrayBuffer, emptied by reset and close); 'revocable' there is ERR_UNSUPPORTED.
   */
  views?: 'revocable' | 'shared'
}

export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array

export interface TypedArrayConstructor<T extends TypedArray> {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): T
  readonly BYTES_PER_ELEMENT: number
}

export interface Handle extends Disposable {
  readonly address: number
  /** As requested. */
  readonly size: number
  readonly live: boolean
  /**
   * A view of the chunk, made once per handle. With views 'revocable' (native's default) it is
   * revoked (length 0) once the chunk is freed; with 'shared' only once its memory is given back.
   * A view larger than buffer.constants.MAX_LENGTH is ERR_UNSUPPORTED.
   */
  bytes(): Uint8Array
  as<T extends TypedArray>(type: TypedArrayConstructor<T>): T
  free(): void
}

export interface ArrayHandle<T extends TypedArray> extends Handle {
  readonly array: T
}

export interface AllocOptions {
  /** A power of two up to 1 MiB; default the heap's alignment. */
  align?: number
  /** Fill the chunk with zeros. */
  zero?: boolean
}

export interface RawHeap {
  /** Returns the chunk's address. */
  alloc(size: number, align?: number): number
  free(address: number): void
  realloc(address: number, size: number): number
  /** Usable size: the request rounded up. */
  sizeOf(address: number): number
}

/**
 * Reading and writing a raw chunk (heap.raw.alloc) from JS, with the rules of handles: the
 * address must be the start of a live chunk of this heap (else the code raw.sizeOf would give,
 * ERR_INVALID_POINTER), and offsets stay within its usable size (else ERR_INVALID_SIZE).
 */
export interface RawBytes {
  /**
   * A view of the chunk's usable bytes (raw.sizeOf), the same one until it is revoked. Follows the
   * heap's `views` mode: revocable views are emptied by raw.free/raw.realloc of the address.
   * For a chunk allocated through a handle, the handle's bytes() (its requested size).
   */
  bytes(address: number): Uint8Array
  /** A copy of `length` bytes (default: to the end of the chunk) from `offset` (default 0). */
  read(address: number, offset?: number, length?: number): Uint8Array
  /** Copies `data` into the chunk at `offset` (default 0). */
  write(address: number, data: ArrayBufferView | ArrayLike<number>, offset?: number): void
}

export interface HeapStats {
  heapStart: number
  heapEnd: number
  /** Bytes held from the OS now. */
  heapBytes: number
  peakHeapBytes: number
  /** Usable bytes of live chunks. */
  liveBytes: number
  liveChunks: number
  peakLiveBytes: number
  /** Bytes of free chunks in the table (the wilderness is topBytes). */
  freeBytes: number
  freeChunks: number
  largestFreeChunk: number
  /** Free space at the top of the heap, not in the table. */
  topBytes: number
  /** Bytes of the out-of-band tables. */
  metadataBytes: number
  /** The most metadataBytes has been: the tables shrink after a peak (trim(), reset(), frees). */
  peakMetadataBytes: number
  allocs: number
  frees: number
  reallocs: number
  brkCalls: number
  bytesReleased: number
  /** More than 1 when other code moved the break between our moves. */
  segments: number
  /** Table records and index nodes examined by fit searches, cumulative. */
  searchSteps: number
  /** Freed chunks held back until a transferred view's memory is finalized. */
  quarantinedChunks: number
  /** Free chunks not merged yet on purpose (best-fit's deferred merging; README, "How it works"). */
  deferredChunks: number
}

export interface ChunkInfo {
  address: number
  size: number
  state: 'live' | 'free'
  /** Native only: a freed chunk held back (still 'live') until a transferred view is finalized. */
  quarantined?: true
  /** Native best-fit only: a free chunk kept unmerged for its size's next request. */
  deferred?: true
}

export interface LeakRecord {
  address: number
  /** The chunk's usable size (what raw.sizeOf says), for handles and raw chunks alike. */
  size: number
  /** Handles only: the size alloc/allocArray/realloc was asked for. */
  requested?: number
  /** The allocation stack, with trackLeaks: 'stacks'. */
  stack?: string
  /** 'handle' for chunks allocated through alloc/allocArray, 'raw' for raw.alloc. */
  kind: 'handle' | 'raw'
}

export interface LeakReport {
  /** Chunks whose handle was garbage-collected while they were still allocated. */
  definitelyLost: LeakRecord[]
  /** Chunks still allocated and still reachable: live handles, and raw allocations by address. */
  stillReachable: LeakRecord[]
}

export interface Heap extends Disposable {
  readonly backend: Backend
  readonly source: Source
  readonly strategy: Strategy
  readonly fallbackReason: string | undefined
  /** The heap's view mode (HeapOptions.views); always 'shared' on the js backend. */
  readonly views: 'revocable' | 'shared'
  readonly raw: RawHeap & RawBytes
  alloc(size: number, options?: AllocOptions): Handle
  allocArray<T extends TypedArray>(type: TypedArrayConstructor<T>, length: number): ArrayHandle<T>
  /** Contents kept; the old handle is dead. An ArrayHandle's result is an ArrayHandle of the same type. */
  realloc<T extends TypedArray>(handle: ArrayHandle<T>, size: number): ArrayHandle<T>
  realloc(handle: Handle, size: number): Handle
  free(handle: Handle): void
  reset(): void
  trim(): number
  stats(): HeapStats
  chunks(): ChunkInfo[]
  check(): void
  leaks(): LeakReport
  assertNoLeaks(): void
  close(): void
}
