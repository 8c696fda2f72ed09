/**
 * The pure-TS bump heap (backend 'js', source 'arraybuffer', strategy 'bump'): the original
 * note's simple counterpart, for where the addon cannot load. A resizable ArrayBuffer's length
 * plays the program break; one `next` pointer hands out chunks; freeing the last chunk rolls the
 * pointer back, and reset() frees everything and shrinks the buffer to nothing, so every
 * fixed-length view on it goes out of bounds and reads length 0.
 *
 * Addresses are byte offsets plus ADDRESS_BASE, so that no chunk is at address 0.
 */
import { AllocatorError, describeValue } from './errors'
import type { HeapBackend } from './backend'
import type { ChunkInfo, HeapStats, RawHeap } from './types'

export const ADDRESS_BASE = 0x10000
const MAX_ALIGN = 1 << 20
/** A rough per-chunk cost of the JS bookkeeping (one entry object and its Map slot). */
const METADATA_BYTES_PER_CHUNK = 64

interface JsChunk {
  /** Where the bump pointer was before this chunk (alignment padding starts here). */
  readonly padStart: number
  readonly offset: number
  size: number
  live: boolean
}

export interface JsHeapOptions {
  alignment: number
  growth: number
  trimThreshold: number
  maxHeapBytes: number
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple
}

export class JsBumpHeap implements HeapBackend {
  readonly kind = 'js' as const
  readonly source = 'arraybuffer' as const
  readonly strategy = 'bump' as const
  readonly raw: RawHeap

  readonly #options: JsHeapOptions
  #buffer: ArrayBuffer
  /** Chunks in address order; the last one always ends at #next. */
  readonly #stack: JsChunk[] = []
  readonly #byOffset = new Map<number, JsChunk>()
  #next = 0
  #closed = false
  #liveBytes = 0
  #liveChunks = 0
  #peakLiveBytes = 0
  #peakHeapBytes = 0
  #allocs = 0
  #frees = 0
  #reallocs = 0
  #resizes = 0
  #bytesReleased = 0

  constructor(options: JsHeapOptions) {
    this.#options = options
    this.#buffer = new ArrayBuffer(0, { maxByteLength: options.maxHeapBytes })
    this.raw = {
      alloc: (size, align) => this.#alloc(size, align),
      free: (address) => this.#free(address),
      realloc: (address, size) => this.#realloc(address, size),
      sizeOf: (address) => this.#live(address).size,
    }
  }

  get closed(): boolean {
    return this.#closed
  }

  allocZeroed(size: number, align: number | undefined): number {
    const address = this.#alloc(size, align)
    // Bytes below the break may hold an old chunk's contents; fresh buffer bytes are zero already.
    new Uint8Array(this.#buffer, address - ADDRESS_BASE, size).fill(0)
    return address
  }

  bytes(address: number, size: number): Uint8Array {
    this.#live(address)
    return new Uint8Array(this.#buffer, address - ADDRESS_BASE, size)
  }

  reset(): void {
    this.#open()
    this.#empty()
    this.#buffer = new ArrayBuffer(0, { maxByteLength: this.#options.maxHeapBytes })
  }

  /** Frees every chunk and detaches the buffer for good (reset() then continues on a fresh one). */
  #empty(): void {
    for (const chunk of this.#stack) chunk.live = false
    this.#stack.length = 0
    this.#byOffset.clear()
    this.#next = 0
    this.#liveBytes = 0
    this.#liveChunks = 0
    this.#resize(0)
    // A shrunk resizable buffer would bring old views back in bounds when it grows again:
    // detach it for good.
    detach(this.#buffer)
  }

  trim(): number {
    this.#open()
    return this.#resize(this.#next)
  }

  stats(): HeapStats {
    this.#open()
    let freeBytes = 0
    let freeChunks = 0
    let largestFreeChunk = 0
    for (const chunk of this.#stack) {
      if (chunk.live) continue
      freeBytes += chunk.size
      freeChunks++
      largestFreeChunk = Math.max(largestFreeChunk, chunk.size)
    }
    const heapBytes = this.#buffer.byteLength
    return {
      heapStart: ADDRESS_BASE,
      heapEnd: ADDRESS_BASE + heapBytes,
      heapBytes,
      peakHeapBytes: this.#peakHeapBytes,
      liveBytes: this.#liveBytes,
      liveChunks: this.#liveChunks,
      peakLiveBytes: this.#peakLiveBytes,
      freeBytes,
      freeChunks,
      largestFreeChunk,
      topBytes: heapBytes - this.#next,
      metadataBytes: this.#stack.length * METADATA_BYTES_PER_CHUNK,
      allocs: this.#allocs,
      frees: this.#frees,
      reallocs: this.#reallocs,
      brkCalls: this.#resizes,
      bytesReleased: this.#bytesReleased,
      segments: heapBytes > 0 ? 1 : 0,
      searchSteps: 0,
      quarantinedChunks: 0,
    }
  }

  chunks(): ChunkInfo[] {
    this.#open()
    return this.#stack.map((chunk) => ({ address: ADDRESS_BASE + chunk.offset, size: chunk.size, state: chunk.live ? 'live' : 'free' }))
  }

  check(): void {
    this.#open()
    const corrupt = (what: string): never => {
      throw new AllocatorError('ERR_HEAP_CORRUPT', `heap check failed: ${what}`)
    }
    let end = 0
    let live = 0
    let liveChunks = 0
    for (const chunk of this.#stack) {
      if (chunk.padStart !== end || chunk.offset < chunk.padStart) corrupt(`chunks do not tile the buffer at ${ADDRESS_BASE + end}`)
      if (chunk.offset % this.#options.alignment !== 0) corrupt(`a chunk is misaligned at ${ADDRESS_BASE + chunk.offset}`)
      if (this.#byOffset.get(chunk.offset) !== chunk) corrupt(`the chunk index disagrees at ${ADDRESS_BASE + chunk.offset}`)
      if (chunk.live) {
        live += chunk.size
        liveChunks++
      }
      end = chunk.offset + chunk.size
    }
    if (this.#stack.length > 0 && !this.#stack[this.#stack.length - 1].live) corrupt('a dead chunk sits at the top instead of being rolled back')
    if (end !== this.#next) corrupt('the bump pointer is not at the end of the last chunk')
    if (this.#byOffset.size !== this.#stack.length) corrupt('the chunk index holds chunks that are not in the heap')
    if (live !== this.#liveBytes || liveChunks !== this.#liveChunks) corrupt('live bytes or chunks disagree with the chunks')
    if (this.#next > this.#buffer.byteLength) corrupt('the bump pointer is past the end of the buffer')
  }

  close(): void {
    if (this.#closed) return
    // No fresh buffer: a closed heap keeps no address space reserved.
    this.#empty()
    this.#closed = true
  }

  #open(): void {
    if (this.#closed) throw new AllocatorError('ERR_HEAP_CLOSED', 'the heap is closed')
  }

  #live(address: number): JsChunk {
    this.#open()
    const chunk = typeof address === 'number' ? this.#byOffset.get(address - ADDRESS_BASE) : undefined
    if (chunk === undefined || !chunk.live) {
      const problem = numberProblem(address)
      if (problem !== undefined) throw new AllocatorError('ERR_INVALID_POINTER', `address ${problem}, got ${describeValue(address)}`)
      if (chunk !== undefined) throw new AllocatorError('ERR_DOUBLE_FREE', `the chunk at 0x${address.toString(16)} was already freed`)
      throw new AllocatorError('ERR_INVALID_POINTER', `0x${address.toString(16)} is not the start of a live chunk of this heap`)
    }
    return chunk
  }

  #alloc(size: number, align: number | undefined): number {
    this.#open()
    checkSize(size)
    const alignment = checkAlign(align, this.#options.alignment)
    const usable = Math.max(roundUp(size, this.#options.alignment), this.#options.alignment)
    // Aligned as an address: ADDRESS_BASE is a multiple of 64 KiB only, and align goes to 1 MiB.
    const offset = roundUp(ADDRESS_BASE + this.#next, alignment) - ADDRESS_BASE
    this.#ensureCapacity(offset + usable, size)
    const chunk: JsChunk = { padStart: this.#next, offset, size: usable, live: true }
    this.#stack.push(chunk)
    this.#byOffset.set(offset, chunk)
    this.#next = offset + usable
    this.#allocs++
    this.#noteLive(usable, 1)
    return ADDRESS_BASE + offset
  }

  #free(address: number): void {
    const chunk = this.#live(address)
    chunk.live = false
    this.#frees++
    this.#noteLive(-chunk.size, -1)
    this.#rollBack()
  }

  #realloc(address: number, size: number): number {
    const chunk = this.#live(address)
    checkSize(size)
    const usable = Math.max(roundUp(size, this.#options.alignment), this.#options.alignment)
    if (usable <= chunk.size || chunk === this.#stack[this.#stack.length - 1]) {
      // The last chunk grows or shrinks in place by moving the pointer; others only shrink in place.
      if (usable > chunk.size) this.#ensureCapacity(chunk.offset + usable, size)
      if (chunk === this.#stack[this.#stack.length - 1]) {
        this.#noteLive(usable - chunk.size, 0)
        chunk.size = usable
        this.#next = chunk.offset + usable
      }
      this.#reallocs++
      return address
    }
    const moved = this.#alloc(size, undefined)
    new Uint8Array(this.#buffer).copyWithin(moved - ADDRESS_BASE, chunk.offset, chunk.offset + chunk.size)
    this.#allocs--
    this.#free(address)
    this.#frees--
    this.#reallocs++
    return moved
  }

  /** Pops dead chunks off the top: the bump pointer returns to where the first of them began. */
  #rollBack(): void {
    let top = this.#stack[this.#stack.length - 1]
    while (top !== undefined && !top.live) {
      this.#stack.pop()
      this.#byOffset.delete(top.offset)
      this.#next = top.padStart
      top = this.#stack[this.#stack.length - 1]
    }
    const slack = this.#buffer.byteLength - this.#next
    if (slack > this.#options.trimThreshold) this.#resize(this.#next + Math.min(this.#options.growth, slack))
  }

  #ensureCapacity(end: number, requested: number): void {
    const length = this.#buffer.byteLength
    if (end <= length) return
    const max = this.#options.maxHeapBytes
    if (end > max) {
      throw new AllocatorError('ERR_OUT_OF_MEMORY', `cannot allocate ${requested} bytes within maxHeapBytes ${max}`)
    }
    this.#resize(Math.min(max, Math.max(end, length + this.#options.growth)))
  }

  /** Moves the "break"; returns the bytes given back. */
  #resize(length: number): number {
    const before = this.#buffer.byteLength
    if (length === before) return 0
    this.#buffer.resize(length)
    this.#resizes++
    this.#peakHeapBytes = Math.max(this.#peakHeapBytes, length)
    const released = Math.max(0, before - length)
    this.#bytesReleased += released
    return released
  }

  #noteLive(bytes: number, chunks: number): void {
    this.#liveBytes += bytes
    this.#liveChunks += chunks
    if (this.#liveBytes > this.#peakLiveBytes) this.#peakLiveBytes = this.#liveBytes
  }
}

function detach(buffer: ArrayBuffer): void {
  const transfer = (buffer as { transfer?: (length: number) => ArrayBuffer }).transfer
  if (typeof transfer === 'function') transfer.call(buffer, 0)
  else structuredClone(buffer, { transfer: [buffer] })  // Node 20 has no ArrayBuffer.prototype.transfer
}

/** What is wrong with `value` as a byte count, address or alignment, in the native addon's words; undefined when nothing is. */
function numberProblem(value: unknown): string | undefined {
  if (typeof value !== 'number') return 'must be a number'
  if (Number.isNaN(value)) return 'must not be NaN'
  if (!Number.isFinite(value)) return 'must be finite'
  if (value < 0) return 'must not be negative'
  if (!Number.isInteger(value)) return 'must be an integer'
  if (!Number.isSafeInteger(value)) return 'must not exceed Number.MAX_SAFE_INTEGER'
  return undefined
}

function checkSize(size: number): void {
  const problem = numberProblem(size)
  if (problem !== undefined) throw new AllocatorError('ERR_INVALID_SIZE', `size ${problem}, got ${describeValue(size)}`)
}

function checkAlign(align: number | undefined, heapAlignment: number): number {
  if (align === undefined || align === 0) return heapAlignment
  const problem =
    numberProblem(align) ??
    ((align & (align - 1)) !== 0 ? 'must be a power of two' : align > MAX_ALIGN ? 'must be at most 1 MiB (1048576)' : undefined)
  if (problem !== undefined) throw new AllocatorError('ERR_INVALID_ALIGNMENT', `align ${problem}, got ${describeValue(align)}`)
  return Math.max(align, heapAlignment)
}
