/**
 * Address ranges for js heaps. Each js heap numbers its bytes from a base of its own, so that an
 * address of one heap is never the address of a chunk of another: heapA.raw.free(addressOfHeapB)
 * is ERR_INVALID_POINTER, as it is between native heaps, instead of freeing an unrelated chunk.
 *
 * Bases are multiples of RANGE_ALIGN (2^32, which every alignment up to 1 MiB divides, so an
 * offset's alignment is its address's), start above 0 (no chunk is ever at a small address) and
 * stay below 2^53 (every address is a safe integer). A range is handed out once; the ranges of
 * closed or collected heaps are reused only after the fresh ones run out, so a stale address
 * stays foreign for as long as possible.
 */
import { AllocatorError } from '../../errors'

export const RANGE_ALIGN = 2 ** 32
export const ADDRESS_LIMIT = 2 ** 53

export interface AddressRange {
  readonly base: number
  readonly span: number
}

export class AddressRanges {
  readonly #limit: number
  #nextBase = RANGE_ALIGN
  /** Ranges given back, oldest first. */
  readonly #released: AddressRange[] = []

  constructor(limit = ADDRESS_LIMIT) {
    this.#limit = limit
  }

  /** A range of at least `bytes` bytes (a multiple of RANGE_ALIGN, at least one). */
  take(bytes: number): AddressRange {
    const span = Math.max(RANGE_ALIGN, Math.ceil(bytes / RANGE_ALIGN) * RANGE_ALIGN)
    if (this.#nextBase + span <= this.#limit) {
      const range = { base: this.#nextBase, span }
      this.#nextBase += span
      return range
    }
    const reusable = this.#released.findIndex((range) => range.span >= span)
    if (reusable < 0) {
      throw new AllocatorError(
        'ERR_OUT_OF_MEMORY',
        `no address range of ${span} bytes is left for another js heap: the open js heaps hold all ${this.#limit - RANGE_ALIGN} bytes below 2^53; close some`,
      )
    }
    return this.#released.splice(reusable, 1)[0]
  }

  release(range: AddressRange): void {
    this.#released.push(range)
  }
}

/** The ranges of this process's js heaps (one per module instance: ESM and CJS share it). */
export const processAddressRanges = new AddressRanges()
