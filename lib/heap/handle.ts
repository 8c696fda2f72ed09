/**
 * Handles: typed, safe references to one chunk. A handle shares a small ChunkState with its heap;
 * the heap marks it freed (free, realloc, reset, close, or a raw free of the same address) and
 * every later use of the handle throws instead of touching memory that may belong to someone else.
 */
import type { ViewSlot } from '../backends/backend'
import { AllocatorError, describeValue } from '../errors'
import type { ArrayHandle, Handle, TypedArray, TypedArrayConstructor } from '../types'

/** What the heap and its handles share about one chunk; also the chunk's view slot. */
export class ChunkState implements ViewSlot {
  freed = false
  /** How it was freed, for the errors of later uses: "through this handle", "by heap.reset()", ... */
  freedBy = ''

  /** Set with trackLeaks: 'stacks'. */
  stack: string | undefined = undefined
  viewBuffer: ArrayBuffer | undefined = undefined
  viewToken = 0

  constructor(
    readonly address: number,
    readonly size: number,
  ) {}
}

/** The heap side of a handle: lib/heap/heap.ts implements it. */
export interface HandleOwner {
  readonly closed: boolean
  freeHandle(handle: HandleImpl): void
  bytesOf(state: ChunkState): Uint8Array
}

/** util.inspect's hook, by its registered name so that the declarations need no @types/node. */
export const inspectCustom: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never

export function hex(address: number): string {
  return `0x${address.toString(16)}`
}

export class HandleImpl implements Handle {
  /** @internal */ readonly state: ChunkState
  /** @internal */ readonly owner: HandleOwner
  #bytes: Uint8Array | undefined = undefined
  #typed: TypedArray | undefined = undefined

  constructor(owner: HandleOwner, state: ChunkState) {
    this.owner = owner
    this.state = state
  }

  get address(): number {
    return this.state.address
  }

  get size(): number {
    return this.state.size
  }

  get live(): boolean {
    return !this.state.freed && !this.owner.closed
  }

  bytes(): Uint8Array {
    this.assertUsable()
    // One view per handle; made again only if something detached it while the chunk lived on
    // (its buffer was transferred away, or a shared window was given up after a trim).
    if (this.#bytes === undefined || (this.#bytes.length === 0 && this.state.size > 0)) {
      this.#bytes = this.owner.bytesOf(this.state)
      this.#typed = undefined
    }
    return this.#bytes
  }

  as<T extends TypedArray>(type: TypedArrayConstructor<T>): T {
    const bytes = this.bytes()
    if (this.#typed?.constructor === type) return this.#typed as T
    if (typeof type !== 'function' || typeof type.BYTES_PER_ELEMENT !== 'number') {
      const got = typeof type === 'function' ? `function ${(type as { name?: string }).name || '(anonymous)'}` : describeValue(type)
      throw new AllocatorError('ERR_UNSUPPORTED', `as() expects a typed array constructor such as Float64Array, got ${got}`)
    }
    const typed = new type(bytes.buffer, bytes.byteOffset, Math.floor(this.state.size / type.BYTES_PER_ELEMENT))
    this.#typed = typed
    return typed
  }

  free(): void {
    this.owner.freeHandle(this)
    // A dead handle's views are of no use to it, and the leak nursery may hold the handle a while:
    // letting go of them lets a young collection take their buffers.
    this.#bytes = undefined
    this.#typed = undefined
  }

  [Symbol.dispose](): void {
    if (this.live) this.free()
  }

  /** A one-line summary for console.log and util.inspect, instead of the heap behind it. */
  [inspectCustom](): string {
    const state = this.live ? 'live' : this.owner.closed ? 'heap closed' : 'freed'
    const type = this instanceof ArrayHandleImpl ? `ArrayHandle<${(this.elementType as { name?: string }).name}>` : 'Handle'
    return `${type} { address: ${hex(this.state.address)}, size: ${this.state.size}, ${state} }`
  }

  /** @internal */
  assertUsable(): void {
    if (this.owner.closed) throw new AllocatorError('ERR_HEAP_CLOSED', 'the heap of this handle is closed')
    if (this.state.freed) {
      throw new AllocatorError('ERR_USE_AFTER_FREE', `the chunk at ${hex(this.state.address)} was freed ${this.state.freedBy}; this handle is dead`)
    }
  }
}

export class ArrayHandleImpl<T extends TypedArray> extends HandleImpl implements ArrayHandle<T> {
  /** @internal */ readonly elementType: TypedArrayConstructor<T>

  constructor(owner: HandleOwner, state: ChunkState, elementType: TypedArrayConstructor<T>) {
    super(owner, state)
    this.elementType = elementType
  }

  get array(): T {
    return this.as(this.elementType)
  }
}
