/**
 * Runs an operation stream (op-generator.ts) against a real heap through its public API and
 * against a plain model of what must be true: the live set, every chunk's bytes, alignment,
 * usable sizes (sizeOf), no overlap, and the heap's own check(). A divergence is thrown as a
 * Divergence naming the operation; shortestFailingPrefix() shrinks a failing stream by bisection
 * on its length.
 *
 * Contents: every chunk reached through a Handle holds PATTERN[tag .. tag + size) for its own tag,
 * written through bytes() and compared with memcmp speed (Buffer.compare) before it is freed or
 * moved, after a realloc (the kept prefix), and at every full verification. Chunks allocated
 * through heap.raw have no public view, so only their placement and sizes are checked.
 */
import { AllocatorError, createHeap, type Handle, type Heap, type HeapOptions } from '../../lib/index'
import { describeOp, MAX_GENERATED_SIZE, type Op } from './op-generator'

export interface DifferentialConfig {
  name: string
  options: HeapOptions
  /** Every usable size is exactly the request rounded up (false where split is off). */
  exactSizes: boolean
  /** For the runner's own test: called after every operation, to break the heap on purpose. */
  sabotage?: (opIndex: number, liveHandles: () => Handle[]) => void
}

const TAGS = 256
const PATTERN = Buffer.alloc(MAX_GENERATED_SIZE + TAGS)
{
  let x = 0x9e3779b9
  for (let i = 0; i < PATTERN.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    PATTERN[i] = x & 255
  }
}
const ZEROS = Buffer.alloc(MAX_GENERATED_SIZE)
const ARRAY_TYPES = [Uint8Array, Int16Array, Float32Array, Float64Array, BigInt64Array] as const

interface LiveChunk {
  address: number
  /** As requested. */
  size: number
  /** raw.sizeOf when it was handed out; it must not change while the chunk lives. */
  usable: number
  handle: Handle | undefined
  /** Offset of the chunk's bytes in PATTERN, or -1 for a raw chunk (contents unknown). */
  tag: number
  /** Position in the live list. */
  index: number
}

export class Divergence extends Error {
  constructor(
    readonly opIndex: number,
    readonly op: Op | undefined,
    what: string,
  ) {
    super(`op #${opIndex}${op === undefined ? ' (final verification)' : ` ${describeOp(op)}`}: ${what}`)
  }
}

const roundUp = (value: number, multiple: number): number => Math.ceil(value / multiple) * multiple

export class DifferentialRun {
  readonly heap: Heap
  readonly #alignment: number
  readonly #exact: boolean
  readonly #sabotage: DifferentialConfig['sabotage']
  readonly #live: LiveChunk[] = []
  readonly #byAddress = new Map<number, LiveChunk>()
  #tags = 0
  #index = 0
  #op: Op | undefined
  /** Failed calls that were expected to fail (ERR_OUT_OF_MEMORY on huge requests). */
  refusals = 0
  fullChecks = 0
  bytesVerified = 0

  constructor(config: DifferentialConfig) {
    this.heap = createHeap({ trackLeaks: false, ...config.options })
    this.#alignment = config.options.alignment ?? 16
    this.#exact = config.exactSizes
    this.#sabotage = config.sabotage
  }

  close(): void {
    this.heap.close()
  }

  /** Runs `ops`, verifying everything every `checkEvery` operations and after the last. */
  run(ops: Iterable<Op>, checkEvery: number): number {
    for (const op of ops) {
      this.#op = op
      try {
        this.#apply(op)
        this.#sabotage?.(this.#index, () => this.#live.flatMap((chunk) => (chunk.handle === undefined || chunk.tag < 0 || chunk.size === 0 ? [] : [chunk.handle])))
        if ((this.#index + 1) % checkEvery === 0) this.verifyAll()
      } catch (error) {
        throw this.#divergence(error)
      }
      this.#index++
    }
    this.#op = undefined
    try {
      this.verifyAll()
    } catch (error) {
      throw this.#divergence(error)
    }
    return this.#index
  }

  #divergence(error: unknown): Divergence {
    if (error instanceof Divergence) return error
    const what = error instanceof AllocatorError ? `${error.code}: ${error.message}` : String((error as Error)?.stack ?? error)
    return new Divergence(this.#index, this.#op, `unexpected ${what}`)
  }

  #fail(what: string): never {
    throw new Divergence(this.#index, this.#op, what)
  }

  #apply(op: Op): void {
    switch (op.kind) {
      case 'alloc':
        return this.#alloc(op.size, op.align, op.zero, op.via)
      case 'free':
        return this.#free(this.#pick(op.pick), op.via)
      case 'realloc':
        return this.#realloc(this.#pick(op.pick), op.size, op.via)
      case 'reset':
        return this.#reset()
      case 'trim':
        return this.#trim()
    }
  }

  #pick(fraction: number): LiveChunk {
    return this.#live[Math.floor(fraction * this.#live.length)]
  }

  #fits(size: number): boolean {
    return size <= MAX_GENERATED_SIZE
  }

  #alloc(size: number, align: number | undefined, zero: boolean, via: 'handle' | 'raw' | 'array'): void {
    const heap = this.heap
    if (!this.#fits(size)) {
      this.#expectOutOfMemory(() => {
        if (via === 'raw') heap.raw.alloc(size, align)
        else if (via === 'array') heap.allocArray(Float64Array, Math.floor(size / 8))
        else heap.alloc(size, { align, zero })
      })
      return
    }
    let address: number
    let handle: Handle | undefined
    let requested = size
    if (via === 'raw') {
      address = heap.raw.alloc(size, align)
    } else if (via === 'array') {
      const type = ARRAY_TYPES[this.#tags % ARRAY_TYPES.length]
      const length = Math.floor(size / type.BYTES_PER_ELEMENT)
      const arrayHandle = heap.allocArray(type as Float64ArrayConstructor, length)
      if (arrayHandle.array.length !== length || !(arrayHandle.array instanceof type)) this.#fail(`allocArray gave ${arrayHandle.array.length} elements of ${arrayHandle.array.constructor.name}`)
      handle = arrayHandle
      requested = length * type.BYTES_PER_ELEMENT
      address = handle.address
    } else {
      handle = heap.alloc(size, align === undefined && !zero ? undefined : { align, zero })
      address = handle.address
    }
    const alignment = Math.max(align ?? this.#alignment, this.#alignment)
    if (address % alignment !== 0) this.#fail(`0x${address.toString(16)} is not aligned to ${alignment}`)
    if (this.#byAddress.has(address)) this.#fail(`0x${address.toString(16)} was handed out while it is live`)
    const usable = this.#checkUsable(address, requested, this.#exact)
    const chunk: LiveChunk = { address, size: requested, usable, handle, tag: -1, index: -1 }
    if (handle !== undefined) {
      if (handle.size !== requested) this.#fail(`handle.size is ${handle.size}, requested ${requested}`)
      const bytes = handle.bytes()
      if (bytes.length !== requested) this.#fail(`bytes() has ${bytes.length} bytes, requested ${requested}`)
      if (zero && Buffer.compare(bytes, ZEROS.subarray(0, requested)) !== 0) this.#fail('alloc with zero: true gave non-zero bytes')
      chunk.tag = this.#tags++ % TAGS
      bytes.set(PATTERN.subarray(chunk.tag, chunk.tag + requested))
    }
    this.#add(chunk)
  }

  #free(chunk: LiveChunk, via: 'handle' | 'raw'): void {
    this.#verify(chunk)
    if (via === 'handle' && chunk.handle !== undefined) chunk.handle.free()
    else this.heap.raw.free(chunk.address)
    if (chunk.handle?.live === true) this.#fail('the handle is still live after its chunk was freed')
    this.#remove(chunk)
  }

  #realloc(chunk: LiveChunk, size: number, via: 'handle' | 'raw'): void {
    this.#verify(chunk)
    const throughHandle = via === 'handle' && chunk.handle !== undefined
    if (!this.#fits(size)) {
      this.#expectOutOfMemory(() => (throughHandle ? this.heap.realloc(chunk.handle!, size) : this.heap.raw.realloc(chunk.address, size)))
      if (chunk.handle !== undefined && !chunk.handle.live) this.#fail('a failed realloc killed the handle')
      this.#verify(chunk)
      return
    }
    let address: number
    let handle: Handle | undefined
    if (throughHandle) {
      handle = this.heap.realloc(chunk.handle!, size)
      address = handle.address
      if (handle.size !== size) this.#fail(`the new handle's size is ${handle.size}, requested ${size}`)
    } else {
      address = this.heap.raw.realloc(chunk.address, size)
    }
    if (chunk.handle?.live === true) this.#fail('the old handle is still live after realloc')
    if (address % this.#alignment !== 0) this.#fail(`realloc gave 0x${address.toString(16)}, not aligned to ${this.#alignment}`)
    this.#remove(chunk)
    if (this.#byAddress.has(address)) this.#fail(`realloc gave 0x${address.toString(16)}, which is live`)
    // A chunk that shrinks, or grows within its usable size, may stay as large as it was; one
    // that grows beyond it must fit exactly where split is on.
    const usable = this.#checkUsable(address, size, this.#exact && size > chunk.usable)
    const moved: LiveChunk = { address, size, usable, handle, tag: -1, index: -1 }
    if (handle !== undefined && chunk.tag >= 0) {
      const bytes = handle.bytes()
      const kept = Math.min(chunk.size, size)
      if (Buffer.compare(bytes.subarray(0, kept), PATTERN.subarray(chunk.tag, chunk.tag + kept)) !== 0) {
        this.#fail(`realloc from ${chunk.size} to ${size} bytes (0x${chunk.address.toString(16)} -> 0x${address.toString(16)}) lost the contents`)
      }
      this.bytesVerified += kept
      bytes.set(PATTERN.subarray(chunk.tag + kept, chunk.tag + size), kept)
      moved.tag = chunk.tag
    } else if (handle !== undefined) {
      moved.tag = this.#tags++ % TAGS
      handle.bytes().set(PATTERN.subarray(moved.tag, moved.tag + size))
    }
    this.#add(moved)
  }

  #reset(): void {
    for (const chunk of this.#live) this.#verify(chunk)
    const handles = this.#live.flatMap((chunk) => (chunk.handle === undefined ? [] : [chunk.handle]))
    this.heap.reset()
    if (handles.some((handle) => handle.live)) this.#fail('a handle is still live after reset()')
    this.#live.length = 0
    this.#byAddress.clear()
    const stats = this.heap.stats()
    if (stats.liveChunks !== 0 || stats.liveBytes !== 0) this.#fail(`after reset(), stats() shows ${stats.liveChunks} live chunks, ${stats.liveBytes} bytes`)
  }

  #trim(): void {
    const released = this.heap.trim()
    if (!Number.isSafeInteger(released) || released < 0) this.#fail(`trim() returned ${released}`)
  }

  #expectOutOfMemory(run: () => unknown): void {
    const before = this.#liveFigures()
    let thrown: unknown
    try {
      run()
    } catch (error) {
      thrown = error
    }
    if (!(thrown instanceof AllocatorError) || thrown.code !== 'ERR_OUT_OF_MEMORY') {
      this.#fail(`expected ERR_OUT_OF_MEMORY, got ${thrown === undefined ? 'success' : String(thrown)}`)
    }
    // A failed fit may merge deferred free chunks first (README, "Deferred merging"), so the free
    // layout may change; nothing that is live or held may.
    const after = this.#liveFigures()
    if (after !== before) this.#fail(`a refused request changed the heap: ${before} -> ${after}`)
    this.refusals++
  }

  #liveFigures(): string {
    const s = this.heap.stats()
    return `live ${s.liveChunks}/${s.liveBytes} held ${s.heapBytes} allocs ${s.allocs} frees ${s.frees} reallocs ${s.reallocs}`
  }

  #checkUsable(address: number, size: number, exact: boolean): number {
    const usable = this.heap.raw.sizeOf(address)
    const least = Math.max(roundUp(size, this.#alignment), this.#alignment)
    if (usable < least || usable % this.#alignment !== 0 || (exact && usable !== least)) {
      this.#fail(`sizeOf(0x${address.toString(16)}) is ${usable} for a request of ${size} bytes (expected ${exact ? '' : 'at least '}${least})`)
    }
    return usable
  }

  #verify(chunk: LiveChunk): void {
    const usable = this.heap.raw.sizeOf(chunk.address)
    if (usable !== chunk.usable) this.#fail(`sizeOf(0x${chunk.address.toString(16)}) changed from ${chunk.usable} to ${usable} while the chunk was live`)
    if (chunk.handle === undefined || chunk.tag < 0) return
    if (!chunk.handle.live) this.#fail(`the handle of the live chunk at 0x${chunk.address.toString(16)} is dead`)
    const bytes = chunk.handle.bytes()
    if (bytes.length !== chunk.size || Buffer.compare(bytes, PATTERN.subarray(chunk.tag, chunk.tag + chunk.size)) !== 0) {
      const at = bytes.findIndex((byte, i) => byte !== PATTERN[chunk.tag + i])
      this.#fail(`the ${chunk.size} bytes at 0x${chunk.address.toString(16)} changed (first at offset ${at}, view length ${bytes.length})`)
    }
    this.bytesVerified += chunk.size
  }

  /** check(), stats() and chunks() against the model, no overlap, and every chunk's bytes. */
  verifyAll(): void {
    this.fullChecks++
    this.heap.check()
    const stats = this.heap.stats()
    let usableBytes = 0
    for (const chunk of this.#live) usableBytes += chunk.usable
    if (stats.liveChunks !== this.#live.length || stats.liveBytes !== usableBytes) {
      this.#fail(`stats() shows ${stats.liveChunks} live chunks of ${stats.liveBytes} bytes; the model has ${this.#live.length} of ${usableBytes}`)
    }
    const expected = [...this.#live].sort((a, b) => a.address - b.address)
    let next = 0
    let previousEnd = -Infinity
    for (const info of this.heap.chunks()) {
      if (info.address < previousEnd) this.#fail(`chunks() overlap at 0x${info.address.toString(16)}`)
      previousEnd = info.address + info.size
      if (info.address < stats.heapStart || previousEnd > stats.heapEnd) {
        this.#fail(`chunk 0x${info.address.toString(16)}+${info.size} lies outside [0x${stats.heapStart.toString(16)}, 0x${stats.heapEnd.toString(16)})`)
      }
      if (info.state !== 'live') continue
      if (info.quarantined === true) this.#fail(`0x${info.address.toString(16)} is quarantined, though no view was transferred`)
      const model = expected[next++]
      if (model === undefined || model.address !== info.address || model.usable !== info.size) {
        this.#fail(`chunks() lists live 0x${info.address.toString(16)}+${info.size}; the model expects ${model === undefined ? 'nothing' : `0x${model.address.toString(16)}+${model.usable}`}`)
      }
    }
    if (next !== expected.length) this.#fail(`chunks() lists ${next} live chunks; the model has ${expected.length}`)
    for (const chunk of this.#live) this.#verify(chunk)
  }

  #add(chunk: LiveChunk): void {
    this.#byAddress.set(chunk.address, chunk)
    chunk.index = this.#live.length
    this.#live.push(chunk)
  }

  #remove(chunk: LiveChunk): void {
    const last = this.#live.pop()!
    if (last !== chunk) {
      this.#live[chunk.index] = last
      last.index = chunk.index
    }
    this.#byAddress.delete(chunk.address)
  }
}

/** Runs the first `count` operations on a fresh heap; the Divergence, or undefined when all held. */
export function runPrefix(config: DifferentialConfig, ops: readonly Op[], count: number, checkEvery: number): Divergence | undefined {
  const run = new DifferentialRun(config)
  try {
    run.run(ops.slice(0, count), checkEvery)
    return undefined
  } catch (error) {
    if (error instanceof Divergence) return error
    throw error
  } finally {
    run.close()
  }
}

/**
 * The shortest prefix of `ops` (at most `failingLength` long) that still fails with every
 * operation followed by nothing but a final full verification: bisection on the length, which
 * finds the first operation after which the heap and the model disagree.
 */
export function shortestFailingPrefix(config: DifferentialConfig, ops: readonly Op[], failingLength: number): { length: number; divergence: Divergence } {
  let good = 0
  let bad = failingLength
  let divergence = runPrefix(config, ops, bad, Infinity)
  if (divergence === undefined) {
    // Only the periodic checks saw it; fall back to the full failing length with them on.
    return { length: failingLength, divergence: runPrefix(config, ops, failingLength, 1) ?? new Divergence(failingLength, undefined, 'did not reproduce') }
  }
  while (bad - good > 1) {
    const middle = good + Math.floor((bad - good) / 2)
    const found = runPrefix(config, ops, middle, Infinity)
    if (found === undefined) good = middle
    else {
      bad = middle
      divergence = found
    }
  }
  return { length: bad, divergence }
}
