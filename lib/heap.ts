/**
 * createHeap and the Heap facade over either backend: handles and their lifetimes, leak
 * tracking, and the checks that turn misuse into AllocatorErrors. No allocation logic lives here.
 */
import type { NativeBinding } from '../binding'
import type { HeapBackend } from './backend'
import { forcedJsReason, nativeBinding, nativeUnavailableReason } from './binding'
import { AllocatorError, describeValue } from './errors'
import { ArrayHandleImpl, type ChunkState, type HandleOwner, HandleImpl } from './handle'
import { JsBumpHeap } from './js-heap'
import { LeakTracker, leakError, toRecord } from './leaks'
import { NativeBackend } from './native-heap'
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
  RawHeap,
  Source,
  Strategy,
  TypedArray,
  TypedArrayConstructor,
} from './types'

let warnedAboutFallback = false

export function createHeap(options?: HeapOptions): Heap {
  const resolved = resolveOptions(options)
  if (resolved.backend === 'js') return new HeapImpl(createJsBackend(resolved, undefined), resolved.trackLeaks, undefined)
  const binding = nativeBinding()
  const unavailable = binding === undefined ? nativeUnavailableReason() : undefined
  if (binding !== undefined && (resolved.backend === 'native' || forcedJsReason() === undefined)) {
    return new HeapImpl(createNativeBackend(binding, resolved), resolved.trackLeaks, undefined)
  }
  if (resolved.backend === 'native') {
    throw new AllocatorError('ERR_UNSUPPORTED', `backend 'native' is not available: ${unavailable}`)
  }
  const reason = unavailable ?? forcedJsReason()
  if (unavailable !== undefined && !warnedAboutFallback) {
    warnedAboutFallback = true
    process.emitWarning(`memory-allocator uses its js heap: ${reason}`, { code: 'MEMORY_ALLOCATOR_FALLBACK' })
  }
  return new HeapImpl(createJsBackend(resolved, reason), resolved.trackLeaks, reason)
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

function isTypedArrayConstructor(value: unknown): value is TypedArrayConstructor<TypedArray> {
  return typeof value === 'function' && Object.getPrototypeOf(value.prototype) === Object.getPrototypeOf(Uint8Array.prototype)
}

class HeapImpl implements Heap, HandleOwner {
  readonly backend: 'native' | 'js'
  readonly source: Source
  readonly strategy: Strategy
  readonly fallbackReason: string | undefined
  readonly raw: RawHeap
  readonly #impl: HeapBackend
  /** Chunks owned by live handles, by address; a raw free of one of them kills its handle. */
  readonly #handleChunks = new Map<number, ChunkState>()
  readonly #leaks: LeakTracker | undefined
  /** Mirrors the backend's state: only close() closes it while this object is reachable, and
   * reading it here saves handles an addon call on every bytes()/as()/array/live. */
  #closed = false

  constructor(impl: HeapBackend, trackLeaks: boolean | 'stacks', fallbackReason: string | undefined) {
    this.#impl = impl
    this.backend = impl.kind
    this.source = impl.source
    this.strategy = impl.strategy
    this.fallbackReason = fallbackReason
    this.#leaks = trackLeaks === false ? undefined : new LeakTracker(trackLeaks === 'stacks')
    const raw = impl.raw
    const handleChunks = this.#handleChunks
    this.raw = {
      alloc: raw.alloc,
      free: (address) => {
        raw.free(address)
        if (handleChunks.size !== 0) this.#forget(handleChunks.get(address))
      },
      realloc: (address, size) => {
        const moved = raw.realloc(address, size)
        if (handleChunks.size !== 0) this.#forget(handleChunks.get(address))
        return moved
      },
      sizeOf: raw.sizeOf,
    }
  }

  get closed(): boolean {
    return this.#closed
  }

  alloc(size: number, options?: AllocOptions): Handle {
    let address: number
    if (options === undefined) {
      address = this.#impl.raw.alloc(size)
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
      // The backends read 0 as "the heap's alignment" (the binding's convention); DESIGN makes it an error here.
      if (options.align === 0) throw new AllocatorError('ERR_INVALID_ALIGNMENT', 'align must be a power of two up to 1 MiB (1048576), got 0')
      address = options.zero === true ? this.#impl.allocZeroed(size, options.align) : this.#impl.raw.alloc(size, options.align)
    }
    return this.#adopt(new HandleImpl(this, this.#newState(address, size)))
  }

  allocArray<T extends TypedArray>(type: TypedArrayConstructor<T>, length: number): ArrayHandle<T> {
    if (!isTypedArrayConstructor(type)) {
      const got = typeof type === 'function' ? `function ${(type as { name?: string }).name || '(anonymous)'}` : describeValue(type)
      throw new AllocatorError('ERR_UNSUPPORTED', `allocArray expects a typed array constructor such as Float64Array, got ${got}`)
    }
    if (!Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(length * type.BYTES_PER_ELEMENT)) {
      throw new AllocatorError('ERR_INVALID_SIZE', `length must be a non-negative integer, got ${describeValue(length)}`)
    }
    const size = length * type.BYTES_PER_ELEMENT
    const address = this.#impl.raw.alloc(size)
    return this.#adopt(new ArrayHandleImpl(this, this.#newState(address, size), type))
  }

  realloc(handle: Handle, size: number): Handle {
    const old = this.#own(handle)
    old.assertUsable()
    const moved = this.#impl.raw.realloc(old.state.address, size)
    this.#forget(old.state)
    const state = this.#newState(moved, size)
    return this.#adopt(old instanceof ArrayHandleImpl ? new ArrayHandleImpl(this, state, old.elementType) : new HandleImpl(this, state))
  }

  free(handle: Handle): void {
    this.freeHandle(this.#own(handle))
  }

  /** @internal HandleOwner */
  freeHandle(handle: HandleImpl): void {
    if (this.closed) throw new AllocatorError('ERR_HEAP_CLOSED', 'the heap is closed')
    if (handle.state.freed) {
      throw new AllocatorError('ERR_DOUBLE_FREE', `the chunk at 0x${handle.state.address.toString(16)} was already freed through this handle`)
    }
    this.#impl.raw.free(handle.state.address)
    this.#forget(handle.state)
  }

  /** @internal HandleOwner */
  bytesOf(state: ChunkState): Uint8Array {
    return this.#impl.bytes(state.address, state.size)
  }

  reset(): void {
    this.#impl.reset()
    this.#forgetAll()
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
    for (const state of this.#leaks.lost()) definitelyLost.push(toRecord(state, 'handle'))
    const stillReachable: LeakRecord[] = []
    for (const chunk of this.#impl.chunks()) {
      if (chunk.state !== 'live' || chunk.quarantined === true) continue
      const state = this.#handleChunks.get(chunk.address)
      if (state === undefined) stillReachable.push({ address: chunk.address, size: chunk.size, kind: 'raw' })
      else if (!this.#leaks.isLost(state)) stillReachable.push(toRecord(state, 'handle'))
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
    this.#impl.close()
    this.#closed = true
    this.#forgetAll()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  #own(handle: Handle): HandleImpl {
    if (!(handle instanceof HandleImpl)) {
      throw new AllocatorError('ERR_INVALID_POINTER', `expected a Handle, got ${describeValue(handle)}`)
    }
    if (handle.owner !== this) throw new AllocatorError('ERR_FOREIGN_HANDLE', `the handle at 0x${handle.address.toString(16)} belongs to another heap`)
    return handle
  }

  #newState(address: number, size: number): ChunkState {
    const state: ChunkState = { address, size, freed: false }
    this.#handleChunks.set(address, state)
    return state
  }

  #adopt<H extends HandleImpl>(handle: H): H {
    this.#leaks?.track(handle, handle.state)
    return handle
  }

  #forget(state: ChunkState | undefined): void {
    if (state === undefined) return
    state.freed = true
    this.#handleChunks.delete(state.address)
    this.#leaks?.untrack(state)
  }

  #forgetAll(): void {
    for (const state of this.#handleChunks.values()) state.freed = true
    this.#handleChunks.clear()
    this.#leaks?.clear()
  }
}
