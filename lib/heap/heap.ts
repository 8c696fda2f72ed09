/**
 * createHeap and the Heap facade over either backend: handles and their lifetimes, leak
 * tracking, and the checks that turn misuse into AllocatorErrors. No allocation logic lives here.
 */
import { constants as bufferConstants } from 'node:buffer'
import type { NativeBinding } from '../../binding'
import { AddressMap } from './address-map'
import type { HeapBackend } from '../backends/backend'
import { BACKEND_ENV, backendFromEnv, forcedJsReason, nativeBinding, nativeUnavailableReason } from '../backends/binding'
import { AllocatorError, describeValue } from '../errors'
import { ArrayHandleImpl, ChunkState, type HandleOwner, HandleImpl, hex, inspectCustom } from './handle'
import { JsBumpHeap } from '../backends/js/js-heap'
import { LeakTracker, leakError, toRecord } from './leaks'
import { NativeBackend } from '../backends/native-heap'
import { readRange, writeOffset, writeSource } from './raw-bytes'
import { bumpCannotHonour, DEFAULT_JS_MAX_HEAP_BYTES, type ResolvedOptions, resolveOptions } from './options'
import type {
  AllocOptions,
  ArrayHandle,
  ChunkInfo,
  Handle,
  Heap,
  HeapOptions,
  HeapStats,
  LeakRecord,
  LeakReport,
  RawBytes,
  RawHeap,
  Source,
  Strategy,
  TypedArray,
  TypedArrayConstructor,
} from '../types'

let warnedAboutFallback = false

const FREED_BY_HANDLE = 'through this handle'

/**
 * The backends read align 0 as "the heap's alignment" (the binding's convention); DESIGN makes it
 * an error, for alloc's { align } and raw.alloc's align alike (undefined keeps the heap's).
 */
function refuseZeroAlign(align: number | undefined): void {
  if (align === 0) throw new AllocatorError('ERR_INVALID_ALIGNMENT', 'align must be a power of two up to 1 MiB (1048576), got 0')
}


export function createHeap(options?: HeapOptions): Heap {
  const resolved = resolveOptions(options)
  if (resolved.backend === 'js') return new HeapImpl(createJsBackend(resolved, undefined), resolved.trackLeaks, undefined)
  const wanted = resolved.backend === 'native' ? 'native' : backendFromEnv()
  // MEMORY_ALLOCATOR_BACKEND=js: the js heap on purpose, so no warning, and the addon is not loaded.
  if (wanted === 'js') return new HeapImpl(createJsBackend(resolved, forcedJsReason()), resolved.trackLeaks, forcedJsReason())
  const binding = nativeBinding()
  if (binding !== undefined) return new HeapImpl(createNativeBackend(binding, resolved), resolved.trackLeaks, undefined)
  const unavailable = nativeUnavailableReason()
  if (wanted === 'native') {
    const how = resolved.backend === 'native' ? "backend 'native'" : `${BACKEND_ENV}=native`
    throw new AllocatorError('ERR_UNSUPPORTED', `${how} is not available: ${unavailable}`)
  }
  if (!warnedAboutFallback) {
    warnedAboutFallback = true
    process.emitWarning(`memory-allocator uses its js heap: ${unavailable}`, { code: 'MEMORY_ALLOCATOR_FALLBACK' })
  }
  return new HeapImpl(createJsBackend(resolved, unavailable), resolved.trackLeaks, unavailable)
}

function createNativeBackend(binding: NativeBinding, options: ResolvedOptions): HeapBackend {
  return new NativeBackend(binding, {
    source: options.source ?? (binding.onMainThread() ? 'brk' : 'mmap'),
    strategy: options.strategy ?? 'best-fit',
    alignment: options.alignment,
    growth: options.growth,
    split: options.split,
    coalesce: options.coalesce,
    trimThreshold: options.trimThreshold,
    maxHeapBytes: options.maxHeapBytes ?? 0,
    segregateSmall: options.segregateSmall,
    views: options.views ?? 'revocable',
    maxViewBytes: bufferConstants.MAX_LENGTH,
  })
}

function createJsBackend(options: ResolvedOptions, fallbackReason: string | undefined): HeapBackend {
  const why = fallbackReason === undefined ? '' : ` (the js heap was chosen because ${fallbackReason})`
  if (options.source !== undefined) {
    throw new AllocatorError('ERR_UNSUPPORTED', `source '${options.source}' needs the native backend; the js heap's source is 'arraybuffer'${why}`)
  }
  if (options.strategy !== undefined && options.strategy !== 'bump') {
    throw new AllocatorError('ERR_UNSUPPORTED', `strategy '${options.strategy}' needs the native backend; the js heap supports 'bump' only${why}`)
  }
  if (options.views === 'revocable') {
    throw new AllocatorError(
      'ERR_UNSUPPORTED',
      `views 'revocable' needs the native backend; the js heap's views are 'shared' (one buffer: a freed chunk's views stay readable until reset)${why}`,
    )
  }
  if (options.beyondBump.length > 0) throw bumpCannotHonour(options.beyondBump, 'the js heap', why)
  const max = options.maxHeapBytes
  const maxHeapBytes = max === undefined || max === Infinity ? DEFAULT_JS_MAX_HEAP_BYTES : max
  try {
    return new JsBumpHeap({ alignment: options.alignment, growth: options.growth, trimThreshold: options.trimThreshold, maxHeapBytes })
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    throw new AllocatorError('ERR_OUT_OF_MEMORY', `cannot reserve a js heap of maxHeapBytes ${maxHeapBytes}: ${error.message}`)
  }
}

/** The largest element count whose byte size is still exact in a JS number. */
function maxLength(type: TypedArrayConstructor<TypedArray>): number {
  return Math.floor(Number.MAX_SAFE_INTEGER / type.BYTES_PER_ELEMENT)
}

function isTypedArrayConstructor(value: unknown): value is TypedArrayConstructor<TypedArray> {
  return typeof value === 'function' && Object.getPrototypeOf(value.prototype) === Object.getPrototypeOf(Uint8Array.prototype)
}

class HeapImpl implements Heap, HandleOwner {
  readonly backend: 'native' | 'js'
  readonly source: Source
  readonly strategy: Strategy
  readonly fallbackReason: string | undefined
  readonly views: 'revocable' | 'shared'
  readonly raw: RawHeap & RawBytes
  readonly #impl: HeapBackend
  /** The backend's raw alloc and free, one load away on the handle path. */
  readonly #rawAlloc: RawHeap['alloc']
  readonly #rawFree: RawHeap['free']
  /** Chunks owned by live handles, by address; a raw free of one of them kills its handle. */
  readonly #handleChunks = new AddressMap<ChunkState>()
  /** Raw chunks with a revocable view (raw.bytes), by address: raw.free revokes it. */
  readonly #rawViews = new AddressMap<ChunkState>()
  readonly #leaks: LeakTracker | undefined
  /** Mirrors the backend's state: only close() closes it while this object is reachable, and
   * reading it here saves handles an addon call on every bytes()/as()/array/live. */
  #closed = false

  constructor(impl: HeapBackend, trackLeaks: boolean | 'stacks', fallbackReason: string | undefined) {
    this.#impl = impl
    this.backend = impl.backend
    this.source = impl.source
    this.strategy = impl.strategy
    this.fallbackReason = fallbackReason
    this.views = impl instanceof NativeBackend ? impl.views : 'shared'
    this.#leaks = trackLeaks === false ? undefined : new LeakTracker(trackLeaks === 'stacks')
    const raw = impl.raw
    this.#rawAlloc = raw.alloc
    this.#rawFree = raw.free
    const handleChunks = this.#handleChunks
    const rawViews = this.#rawViews
    const byRaw = 'by raw.free or raw.realloc of its address'
    const rawAlloc = raw.alloc
    this.raw = {
      alloc: (size, align) => {
        refuseZeroAlign(align)
        return rawAlloc(size, align)
      },
      free: (address) => {
        const state = handleChunks.size === 0 ? undefined : handleChunks.get(address)
        if (state !== undefined) {
          this.#free(state)
          this.#forget(state, byRaw)
        } else if (rawViews.size !== 0 && rawViews.has(address)) {
          this.#free(rawViews.get(address)!)
          rawViews.delete(address)
        } else {
          raw.free(address)
        }
      },
      realloc: (address, size) => {
        const state = handleChunks.size === 0 ? undefined : handleChunks.get(address)
        if (state !== undefined) {
          const moved = this.#realloc(state, size)
          this.#forget(state, byRaw)
          return moved
        }
        if (rawViews.size === 0 || !rawViews.has(address)) return raw.realloc(address, size)
        const moved = this.#realloc(rawViews.get(address)!, size)
        rawViews.delete(address)
        return moved
      },
      sizeOf: raw.sizeOf,
      bytes: (address) => this.#rawBytes(address),
      read: (address, offset, length) => {
        const bytes = this.#rawBytes(address)
        const [start, end] = readRange(address, bytes.length, offset, length)
        return bytes.slice(start, end)
      },
      write: (address, data, offset) => {
        const source = writeSource(data)
        const bytes = this.#rawBytes(address)
        bytes.set(source, writeOffset(address, bytes.length, offset, source.length))
      },
    }
  }

  get closed(): boolean {
    return this.#closed
  }

  alloc(size: number, options?: AllocOptions): Handle {
    let address: number
    if (options === undefined) {
      address = this.#rawAlloc(size)
    } else {
      if (options === null || typeof options !== 'object' || Array.isArray(options)) {
        throw new AllocatorError('ERR_INVALID_OPTION', `alloc options must be an object, got ${describeValue(options)}`)
      }
      for (const key of Object.keys(options)) {
        if (key !== 'align' && key !== 'zero') throw new AllocatorError('ERR_INVALID_OPTION', `unknown alloc option ${JSON.stringify(key)}`)
      }
      if (options.zero !== undefined && typeof options.zero !== 'boolean') {
        throw new AllocatorError('ERR_INVALID_OPTION', `option zero must be a boolean, got ${describeValue(options.zero)}`)
      }
      refuseZeroAlign(options.align)
      address = options.zero === true ? this.#impl.allocZeroed(size, options.align) : this.#impl.raw.alloc(size, options.align)
    }
    return this.#adopt(new HandleImpl(this, this.#newState(address, size)))
  }

  allocArray<T extends TypedArray>(type: TypedArrayConstructor<T>, length: number): ArrayHandle<T> {
    if (!isTypedArrayConstructor(type)) {
      const got = typeof type === 'function' ? `function ${(type as { name?: string }).name || '(anonymous)'}` : describeValue(type)
      throw new AllocatorError('ERR_UNSUPPORTED', `allocArray expects a typed array constructor such as Float64Array, got ${got}`)
    }
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
      throw new AllocatorError('ERR_INVALID_SIZE', `length must be a non-negative integer, got ${describeValue(length)}`)
    }
    if (length > maxLength(type)) {
      throw new AllocatorError(
        'ERR_INVALID_SIZE',
        `length is too large: a ${type.name} here holds at most ${maxLength(type)} elements (Number.MAX_SAFE_INTEGER bytes), got ${length}`,
      )
    }
    const size = length * type.BYTES_PER_ELEMENT
    const address = this.#rawAlloc(size)
    return this.#adopt(new ArrayHandleImpl(this, this.#newState(address, size), type))
  }

  realloc<T extends TypedArray>(handle: ArrayHandle<T>, size: number): ArrayHandle<T>
  realloc(handle: Handle, size: number): Handle
  realloc(handle: Handle, size: number): Handle {
    const old = this.#own(handle)
    old.assertUsable()
    const moved = this.#realloc(old.state, size)
    this.#forget(old.state, 'by heap.realloc (the handle it returned owns the chunk now)')
    const state = this.#newState(moved, size)
    return this.#adopt(old instanceof ArrayHandleImpl ? new ArrayHandleImpl(this, state, old.elementType) : new HandleImpl(this, state))
  }

  free(handle: Handle): void {
    this.freeHandle(this.#own(handle))
  }

  /** @internal HandleOwner */
  freeHandle(handle: HandleImpl): void {
    if (this.closed) throw new AllocatorError('ERR_HEAP_CLOSED', 'the heap is closed')
    const state = handle.state
    if (state.freed) {
      const already = state.freedBy === FREED_BY_HANDLE ? 'already freed through this handle' : `freed ${state.freedBy}`
      throw new AllocatorError('ERR_DOUBLE_FREE', `the chunk at ${hex(state.address)} was ${already}`)
    }
    this.#free(state)
    this.#forget(state, FREED_BY_HANDLE)
  }

  /** @internal HandleOwner */
  bytesOf(state: ChunkState): Uint8Array {
    const cached = state.bytes
    if (cached !== undefined && (cached.length !== 0 || state.size === 0)) return cached
    return (state.bytes = this.#impl.bytes(state.address, state.size, state))
  }

  reset(): void {
    this.#revokeAllViews()
    this.#impl.reset()
    this.#forgetAll('by heap.reset()')
  }

  trim(): number {
    return this.#impl.trim()
  }

  stats(): HeapStats {
    return this.#impl.stats()
  }

  chunks(): ChunkInfo[] {
    return this.#impl.chunks()
  }

  check(): void {
    this.#impl.check()
  }

  leaks(): LeakReport {
    if (this.#leaks === undefined) throw new AllocatorError('ERR_UNSUPPORTED', 'leak tracking is off for this heap (trackLeaks: false)')
    const definitelyLost: LeakRecord[] = []
    this.#leaks.flush()
    const stillReachable: LeakRecord[] = []
    for (const chunk of this.#impl.chunks()) {
      if (chunk.state !== 'live' || chunk.quarantined === true) continue
      const state = this.#handleChunks.get(chunk.address)
      if (state === undefined) stillReachable.push({ address: chunk.address, size: chunk.size, kind: 'raw' })
      else if (this.#leaks.isLost(state)) definitelyLost.push(toRecord(state, chunk.size))
      else stillReachable.push(toRecord(state, chunk.size))
    }
    definitelyLost.sort((a, b) => a.address - b.address)
    return { definitelyLost, stillReachable }
  }

  assertNoLeaks(): void {
    const report = this.leaks()
    if (report.definitelyLost.length > 0) throw leakError(report)
  }

  close(): void {
    if (this.#closed) return
    this.#revokeAllViews()
    this.#impl.close()
    this.#closed = true
    this.#forgetAll('by heap.close()')
  }

  [Symbol.dispose](): void {
    this.close()
  }

  /** A one-line summary for console.log and util.inspect. */
  [inspectCustom](): string {
    const head = `Heap { backend: '${this.backend}', source: '${this.source}', strategy: '${this.strategy}', views: '${this.views}'`
    if (this.#closed) return `${head}, closed }`
    const stats = this.#impl.stats()
    return `${head}, liveChunks: ${stats.liveChunks}, liveBytes: ${stats.liveBytes}, heapBytes: ${stats.heapBytes} }`
  }

  #own(handle: Handle): HandleImpl {
    if (!(handle instanceof HandleImpl) || !HandleImpl.isHandle(handle)) {
      throw new AllocatorError('ERR_INVALID_POINTER', `expected a Handle, got ${describeValue(handle)}`)
    }
    if (handle.owner !== this) throw new AllocatorError('ERR_FOREIGN_HANDLE', `the handle at 0x${handle.address.toString(16)} belongs to another heap`)
    return handle
  }

  #newState(address: number, size: number): ChunkState {
    const state = new ChunkState(address, size)
    this.#handleChunks.set(address, state)
    return state
  }

  /** Frees a handle's chunk in the backend, revoking its view if it has one. */
  #free(state: ChunkState): void {
    if (state.viewBuffer === undefined) this.#rawFree(state.address)
    else this.#impl.freeViewed!(state.address, state)
  }

  #realloc(state: ChunkState, size: number): number {
    if (state.viewBuffer === undefined) return this.#impl.raw.realloc(state.address, size)
    return this.#impl.reallocViewed!(state.address, size, state)
  }

  /** Before reset and close: every revocable view of a live chunk is detached. */
  #revokeAllViews(): void {
    const impl = this.#impl
    if (impl.revokeView !== undefined) {
      for (const state of this.#handleChunks.values()) if (state.viewBuffer !== undefined) impl.revokeView(state.address, state)
      for (const state of this.#rawViews.values()) if (state.viewBuffer !== undefined) impl.revokeView(state.address, state)
    }
    this.#rawViews.clear()
  }

  /**
   * raw.bytes: the chunk's one view, the same Uint8Array on every call until it is revoked. A
   * handle's chunk answers with the handle's bytes() (its requested size: the handle and raw code
   * see one view); a raw chunk with a view of its usable size, kept until raw.free or raw.realloc.
   */
  #rawBytes(address: number): Uint8Array {
    if (this.#closed) throw new AllocatorError('ERR_HEAP_CLOSED', 'the heap is closed')
    const state = this.#handleChunks.get(address) ?? this.#rawViews.get(address)
    if (state !== undefined) return this.bytesOf(state)
    const slot = new ChunkState(address, this.#impl.raw.sizeOf(address)) // sizeOf checks the address
    const bytes = this.bytesOf(slot)
    this.#rawViews.set(address, slot)
    return bytes
  }

  #adopt<H extends HandleImpl>(handle: H): H {
    this.#leaks?.track(handle)
    return handle
  }

  #forget(state: ChunkState, how: string): void {
    state.freed = true
    state.freedBy = how
    this.#handleChunks.delete(state.address)
    this.#leaks?.untrack(state)
  }

  #forgetAll(how: string): void {
    for (const state of this.#handleChunks.values()) {
      state.freed = true
      state.freedBy = how
    }
    this.#handleChunks.clear()
    this.#leaks?.clear()
  }
}
