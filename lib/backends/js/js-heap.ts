/**
 * The pure-TS bump heap (backend 'js', source 'arraybuffer', strategy 'bump'): the original
 * note's simple counterpart, for where the addon cannot load. A resizable ArrayBuffer's length
 * plays the program break; one `next` pointer hands out chunks; freeing the last chunk rolls the
 * pointer back, and reset() frees everything and shrinks the buffer to nothing, so every
 * fixed-length view on it goes out of bounds and reads length 0.
 *
 * Bookkeeping is struct-of-arrays: the chunks form a stack in address order (a bump heap only
 * ever adds at the top and rolls back from the top), so a chunk's stack index is its slot in
 * three typed arrays (address, usable size, state) and the slots above the top are the free
 * ones. No object or Map entry per chunk. A free of the top chunk, the common case, is one
 * comparison. Any other address is found through a page index: per 4 KiB of the buffer, the slot
 * of the first chunk that starts in or after it, so that a binary search only spans the chunks
 * that start in one page (appending a chunk writes the entries of the pages it reaches).
 *
 * Addresses are offsets into the buffer plus a base that no other js heap of the process shares
 * (lib/backends/js/js-heap-addresses.ts). Error codes follow native/core: an address that is not the start
 * of a chunk is ERR_INVALID_POINTER, the start of a freed chunk still in the heap (a hole below
 * the top) ERR_DOUBLE_FREE, for free, realloc and sizeOf alike.
 */
import { AllocatorError, describeValue } from '../../errors'
import type { HeapBackend } from '../backend'
import { type AddressRange, processAddressRanges, RANGE_ALIGN } from './js-heap-addresses'
import type { ChunkInfo, HeapStats, RawHeap } from '../../types'

const MAX_ALIGN = 1 << 20
const FREE = 0
const LIVE = 1
/** Slots of a fresh heap's tables; they double when full and shrink back on reset(). */
const INITIAL_SLOTS = 64
/** Bytes per slot: an address and a size (Float64Array) and a state (Uint8Array). */
const BYTES_PER_SLOT = 8 + 8 + 1
/** Buffer bytes per entry of the page index (an Int32Array slot number). */
const PAGE = 4096
const INITIAL_PAGES = 16
/** Below this a size takes the bitwise fast path (no overflow past 2^31 when rounded up). */
const SMALL_SIZE_MASK = 0x3fffffff

export interface JsHeapOptions {
  alignment: number
  growth: number
  trimThreshold: number
  maxHeapBytes: number
}

/** Gives a collected heap's address range back (a closed heap gives it back in close()). */
const rangeReturner = new FinalizationRegistry<AddressRange>((range) => processAddressRanges.release(range))

export class JsBumpHeap implements HeapBackend {
  readonly backend = 'js' as const
  readonly source = 'arraybuffer' as const
  readonly strategy = 'bump' as const
  readonly raw: RawHeap

  readonly #alignment: number
  readonly #growth: number
  readonly #trimThreshold: number
  readonly #maxHeapBytes: number
  readonly #range: AddressRange
  readonly #base: number
  #buffer: ArrayBuffer
  /** The buffer's byteLength, kept here: the getter costs more than the field on the hot path. */
  #length = 0
  /** Per slot, in address order: the chunk's address, usable size and FREE/LIVE. */
  #addresses = new Float64Array(INITIAL_SLOTS)
  #sizes = new Float64Array(INITIAL_SLOTS)
  #states = new Uint8Array(INITIAL_SLOTS)
  /** Chunks on the stack; the top one (count - 1) is always live and ends at #next. */
  #count = 0
  /** Per page p of the buffer: the slot of the first chunk whose offset is >= p * PAGE. */
  #pageFirst = new Int32Array(INITIAL_PAGES)
  /**
   * Where the valid entries of #pageFirst end, in bytes: after the page the top chunk starts in,
   * and never before the end of page 0, whose first chunk is slot 0 whenever there is one (it
   * starts at offset 0). Kept in bytes so that an alloc compares its offset without dividing.
   */
  #indexedEnd = PAGE
  /** The bump pointer, as an offset into the buffer. */
  #next = 0
  #closed = false
  #liveBytes = 0
  #liveChunks = 0
  #peakLiveBytes = 0
  #peakHeapBytes = 0
  /** The most #metadataBytes() has been: reset() shrinks the tables again. */
  #peakMetadataBytes = INITIAL_SLOTS * BYTES_PER_SLOT + INITIAL_PAGES * 4
  #allocs = 0
  #frees = 0
  #reallocs = 0
  #resizes = 0
  #bytesReleased = 0

  constructor(options: JsHeapOptions) {
    this.#alignment = options.alignment
    this.#growth = options.growth
    this.#trimThreshold = options.trimThreshold
    this.#maxHeapBytes = options.maxHeapBytes
    this.#buffer = new ArrayBuffer(0, { maxByteLength: options.maxHeapBytes })
    this.#range = processAddressRanges.take(options.maxHeapBytes)
    this.#base = this.#range.base
    rangeReturner.register(this, this.#range, this)
    this.raw = {
      alloc: (size, align) => this.#alloc(size, align),
      free: (address) => this.#free(address),
      realloc: (address, size) => this.#realloc(address, size),
      sizeOf: (address) => this.#sizes[this.#find(address)],
    }
  }

  get closed(): boolean {
    return this.#closed
  }

  allocZeroed(size: number, align: number | undefined): number {
    const address = this.#alloc(size, align)
    // Bytes below the break may hold an old chunk's contents; fresh buffer bytes are zero already.
    new Uint8Array(this.#buffer, address - this.#base, size).fill(0)
    return address
  }

  bytes(address: number, size: number): Uint8Array {
    this.#find(address)
    return new Uint8Array(this.#buffer, address - this.#base, size)
  }

  reset(): void {
    this.#open()
    this.#empty()
    this.#buffer = new ArrayBuffer(0, { maxByteLength: this.#maxHeapBytes })
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
    const sizes = this.#sizes
    const states = this.#states
    for (let i = 0; i < this.#count; i++) {
      if (states[i] === LIVE) continue
      freeBytes += sizes[i]
      freeChunks++
      if (sizes[i] > largestFreeChunk) largestFreeChunk = sizes[i]
    }
    const heapBytes = this.#length
    return {
      heapStart: this.#base,
      heapEnd: this.#base + heapBytes,
      heapBytes,
      peakHeapBytes: this.#peakHeapBytes,
      liveBytes: this.#liveBytes,
      liveChunks: this.#liveChunks,
      peakLiveBytes: this.#peakLiveBytes,
      freeBytes,
      freeChunks,
      largestFreeChunk,
      topBytes: heapBytes - this.#next,
      metadataBytes: this.#metadataBytes(),
      peakMetadataBytes: this.#peakMetadataBytes,
      allocs: this.#allocs,
      frees: this.#frees,
      reallocs: this.#reallocs,
      brkCalls: this.#resizes,
      bytesReleased: this.#bytesReleased,
      segments: heapBytes > 0 ? 1 : 0,
      searchSteps: 0,
      quarantinedChunks: 0,
      deferredChunks: 0,
    }
  }

  chunks(): ChunkInfo[] {
    this.#open()
    const chunks: ChunkInfo[] = new Array(this.#count)
    for (let i = 0; i < this.#count; i++) {
      chunks[i] = { address: this.#addresses[i], size: this.#sizes[i], state: this.#states[i] === LIVE ? 'live' : 'free' }
    }
    return chunks
  }

  check(): void {
    this.#open()
    const corrupt = (what: string): never => {
      throw new AllocatorError('ERR_HEAP_CORRUPT', `heap check failed: ${what}`)
    }
    const alignment = this.#alignment
    const count = this.#count
    if (count > this.#addresses.length || this.#sizes.length !== this.#addresses.length || this.#states.length !== this.#addresses.length) {
      corrupt(`the chunk tables hold ${this.#addresses.length}/${this.#sizes.length}/${this.#states.length} slots for ${count} chunks`)
    }
    if (this.#base % RANGE_ALIGN !== 0) corrupt(`the heap's base 0x${this.#base.toString(16)} is not 2^32-aligned`)
    let end = this.#base
    let live = 0
    let liveChunks = 0
    for (let i = 0; i < count; i++) {
      const address = this.#addresses[i]
      const size = this.#sizes[i]
      const state = this.#states[i]
      const where = `0x${address.toString(16)}`
      if (address < end) corrupt(`the chunk at ${where} overlaps the one below it, which ends at 0x${end.toString(16)}`)
      if ((address - this.#base) % alignment !== 0) corrupt(`the chunk at ${where} is not ${alignment}-aligned`)
      if (size < alignment || size % alignment !== 0) corrupt(`the chunk at ${where} has usable size ${size}, not a positive multiple of ${alignment}`)
      if (state !== LIVE && state !== FREE) corrupt(`the chunk at ${where} has state ${state}`)
      if (state === LIVE) {
        live += size
        liveChunks++
      }
      end = address + size
    }
    if (count > 0 && this.#states[count - 1] !== LIVE) corrupt('a dead chunk sits at the top instead of being rolled back')
    if (end - this.#base !== this.#next) corrupt(`the bump pointer is at offset ${this.#next}, the last chunk ends at ${end - this.#base}`)
    if (live !== this.#liveBytes || liveChunks !== this.#liveChunks) {
      corrupt(`the chunks hold ${live} live bytes in ${liveChunks} chunks, the counters say ${this.#liveBytes} in ${this.#liveChunks}`)
    }
    if (this.#length !== this.#buffer.byteLength) corrupt(`the buffer is ${this.#buffer.byteLength} bytes, the heap thinks ${this.#length}`)
    const pages = count === 0 ? 1 : Math.floor((this.#addresses[count - 1] - this.#base) / PAGE) + 1
    if (this.#indexedEnd !== pages * PAGE) corrupt(`the page index covers ${this.#indexedEnd / PAGE} pages, the chunks reach ${pages}`)
    if (count > 0 && this.#addresses[0] !== this.#base) corrupt(`the first chunk is at 0x${this.#addresses[0].toString(16)}, not at the heap's base`)
    for (let page = 0, slot = 0; page < pages && count > 0; page++) {
      while (this.#addresses[slot] - this.#base < page * PAGE) slot++
      if (this.#pageFirst[page] !== slot) corrupt(`the page index sends page ${page} to slot ${this.#pageFirst[page]}, its first chunk is in slot ${slot}`)
    }
    if (this.#next > this.#length) corrupt('the bump pointer is past the end of the buffer')
  }

  close(): void {
    if (this.#closed) return
    // No fresh buffer: a closed heap keeps no address space reserved.
    this.#empty()
    this.#closed = true
    rangeReturner.unregister(this)
    processAddressRanges.release(this.#range)
  }

  /** Frees every chunk and detaches the buffer for good (reset() then continues on a fresh one). */
  #empty(): void {
    this.#count = 0
    this.#indexedEnd = PAGE
    this.#next = 0
    this.#liveBytes = 0
    this.#liveChunks = 0
    if (this.#addresses.length > INITIAL_SLOTS) {
      this.#addresses = new Float64Array(INITIAL_SLOTS)
      this.#sizes = new Float64Array(INITIAL_SLOTS)
      this.#states = new Uint8Array(INITIAL_SLOTS)
    }
    if (this.#pageFirst.length > INITIAL_PAGES) this.#pageFirst = new Int32Array(INITIAL_PAGES)
    this.#resize(0)
    // A shrunk resizable buffer would bring old views back in bounds when it grows again:
    // detach it for good.
    detach(this.#buffer)
  }

  #open(): void {
    if (this.#closed) throw closedError()
  }

  /** The slot of the live chunk that starts at `address`; the error native gives otherwise. */
  #find(address: number): number {
    if (this.#closed) throw closedError()
    const top = this.#count - 1
    const addresses = this.#addresses
    if (top >= 0 && addresses[top] === address) return top
    const problem = numberProblem(address)
    if (problem !== undefined) throw new AllocatorError('ERR_INVALID_POINTER', `address ${problem}, got ${describeValue(address)}`)
    const offset = address - this.#base
    // Below the top chunk and inside this heap's range, or no chunk starts there.
    if (top > 0 && offset >= 0 && address < addresses[top]) {
      const page = Math.floor(offset / PAGE)
      let low = this.#pageFirst[page]
      let high = ((page + 1) * PAGE < this.#indexedEnd ? this.#pageFirst[page + 1] : top) - 1
      while (low <= high) {
        const middle = (low + high) >>> 1
        const found = addresses[middle]
        if (found < address) low = middle + 1
        else if (found > address) high = middle - 1
        else if (this.#states[middle] === LIVE) return middle
        else throw new AllocatorError('ERR_DOUBLE_FREE', `the chunk at 0x${address.toString(16)} was already freed`)
      }
    }
    throw new AllocatorError('ERR_INVALID_POINTER', `0x${address.toString(16)} is not the start of a live chunk of this heap`)
  }

  #alloc(size: number, align: number | undefined): number {
    if (this.#closed) throw closedError()
    const alignment = this.#alignment
    let usable: number
    if (typeof size === 'number' && (size & SMALL_SIZE_MASK) === size) usable = size <= alignment ? alignment : (size + alignment - 1) & -alignment
    else usable = usableSize(size, alignment)
    let offset = this.#next
    if (align !== undefined && align !== 0 && align !== alignment) {
      const chunkAlign = checkAlign(align, alignment)
      offset = Math.ceil(offset / chunkAlign) * chunkAlign
    }
    const end = offset + usable
    if (end > this.#length) this.#ensureCapacity(end, size)
    const slot = this.#count
    if (slot === this.#addresses.length) this.#growTables()
    if (offset >= this.#indexedEnd) this.#indexPages(offset, slot)
    const address = this.#base + offset
    this.#addresses[slot] = address
    this.#sizes[slot] = usable
    this.#states[slot] = LIVE
    this.#count = slot + 1
    this.#next = end
    this.#allocs++
    this.#liveChunks++
    if ((this.#liveBytes += usable) > this.#peakLiveBytes) this.#peakLiveBytes = this.#liveBytes
    return address
  }

  #free(address: number): void {
    const slot = this.#find(address)
    this.#states[slot] = FREE
    this.#frees++
    this.#liveChunks--
    this.#liveBytes -= this.#sizes[slot]
    if (slot === this.#count - 1) this.#rollBack()
  }

  #realloc(address: number, size: number): number {
    const slot = this.#find(address)
    const alignment = this.#alignment
    const usable = usableSize(size, alignment)
    const old = this.#sizes[slot]
    if (slot === this.#count - 1) {
      // The top chunk grows or shrinks in place by moving the pointer.
      const offset = address - this.#base
      if (offset + usable > this.#length) this.#ensureCapacity(offset + usable, size)
      this.#sizes[slot] = usable
      this.#next = offset + usable
      this.#reallocs++
      if ((this.#liveBytes += usable - old) > this.#peakLiveBytes) this.#peakLiveBytes = this.#liveBytes
      return address
    }
    // A chunk below the top only shrinks in place (it keeps its size: its neighbour is fixed).
    if (usable <= old) {
      this.#reallocs++
      return address
    }
    const moved = this.#alloc(size, undefined)
    new Uint8Array(this.#buffer).copyWithin(moved - this.#base, address - this.#base, address - this.#base + old)
    // One realloc, not an alloc and a free, as native counts it.
    this.#allocs--
    this.#states[slot] = FREE
    this.#liveChunks--
    this.#liveBytes -= old
    this.#reallocs++
    return moved
  }

  /** Pops dead chunks off the top: the bump pointer returns to the end of the highest live one. */
  #rollBack(): void {
    const states = this.#states
    let count = this.#count - 1
    while (count > 0 && states[count - 1] === FREE) count--
    this.#count = count
    if (count === 0) {
      this.#next = 0
      this.#indexedEnd = PAGE
    } else {
      const offset = this.#addresses[count - 1] - this.#base
      this.#next = offset + this.#sizes[count - 1]
      this.#indexedEnd = (Math.floor(offset / PAGE) + 1) * PAGE
    }
    const slack = this.#length - this.#next
    if (slack > this.#trimThreshold) this.#resize(this.#next + Math.min(this.#growth, slack))
  }

  /** The chunk in `slot` starts at `offset`, past the indexed pages: it is the first of each page up to its own. */
  #indexPages(offset: number, slot: number): void {
    const page = Math.floor(offset / PAGE)
    const indexed = this.#indexedEnd / PAGE
    if (page >= this.#pageFirst.length) {
      const grown = new Int32Array(Math.max(page + 1, this.#pageFirst.length * 2))
      grown.set(this.#pageFirst.subarray(0, indexed))
      this.#pageFirst = grown
      this.#notePeakMetadata()
    }
    for (let p = indexed; p <= page; p++) this.#pageFirst[p] = slot
    this.#indexedEnd = (page + 1) * PAGE
  }

  #growTables(): void {
    const slots = this.#addresses.length * 2
    const addresses = new Float64Array(slots)
    const sizes = new Float64Array(slots)
    const states = new Uint8Array(slots)
    addresses.set(this.#addresses)
    sizes.set(this.#sizes)
    states.set(this.#states)
    this.#addresses = addresses
    this.#sizes = sizes
    this.#states = states
    this.#notePeakMetadata()
  }

  #metadataBytes(): number {
    return this.#addresses.length * BYTES_PER_SLOT + this.#pageFirst.byteLength
  }

  /** The tables only grow in #growTables and #indexPages: the peak is kept there. */
  #notePeakMetadata(): void {
    const bytes = this.#metadataBytes()
    if (bytes > this.#peakMetadataBytes) this.#peakMetadataBytes = bytes
  }

  #ensureCapacity(end: number, requested: number): void {
    const max = this.#maxHeapBytes
    if (end > max) {
      throw new AllocatorError('ERR_OUT_OF_MEMORY', `cannot allocate ${requested} bytes within maxHeapBytes ${max}`)
    }
    this.#resize(Math.min(max, Math.max(end, this.#length + this.#growth)))
  }

  /** Moves the "break"; returns the bytes given back. */
  #resize(length: number): number {
    const before = this.#length
    if (length === before) return 0
    this.#buffer.resize(length)
    this.#length = length
    this.#resizes++
    if (length > this.#peakHeapBytes) this.#peakHeapBytes = length
    const released = Math.max(0, before - length)
    this.#bytesReleased += released
    return released
  }
}

function closedError(): AllocatorError {
  return new AllocatorError('ERR_HEAP_CLOSED', 'the heap is closed')
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

/** The request rounded up to the heap's alignment (at least one unit); ERR_INVALID_SIZE for a bad size. */
function usableSize(size: number, alignment: number): number {
  const problem = numberProblem(size)
  if (problem !== undefined) throw new AllocatorError('ERR_INVALID_SIZE', `size ${problem}, got ${describeValue(size)}`)
  return Math.max(Math.ceil(size / alignment) * alignment, alignment)
}

function checkAlign(align: number, heapAlignment: number): number {
  const problem =
    numberProblem(align) ??
    ((align & (align - 1)) !== 0 ? 'must be a power of two' : align > MAX_ALIGN ? 'must be at most 1 MiB (1048576)' : undefined)
  if (problem !== undefined) throw new AllocatorError('ERR_INVALID_ALIGNMENT', `align ${problem}, got ${describeValue(align)}`)
  return Math.max(align, heapAlignment)
}
