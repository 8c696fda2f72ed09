/**
 * A hash map from chunk addresses to values, for the facade's per-handle bookkeeping. A Map with
 * addresses as keys costs a heap-number key and, as handles come and go, rehashes of its
 * insertion-ordered table (tombstones fill it even at one live entry): a visible share of a
 * handle pair. This one is open addressing with linear probing over a Float64Array of keys and
 * backward-shift deletion, so nothing is allocated per entry and deleted entries leave no
 * tombstones. Addresses are positive multiples of 8 below 2^53; 0 marks an empty slot.
 */
const MIN_CAPACITY = 16

export class AddressMap<V> {
  #keys = new Float64Array(MIN_CAPACITY)
  #values: Array<V | undefined> = new Array<V | undefined>(MIN_CAPACITY).fill(undefined)
  #mask = MIN_CAPACITY - 1
  #size = 0

  get size(): number {
    return this.#size
  }

  #slotOf(address: number): number {
    // Addresses are multiples of the alignment: drop the low bits, fold the high word in, mix.
    const low = (address / 16) >>> 0
    const high = (address / 68719476736) >>> 0 // 2^36: the bits above those in `low`
    return Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> 0
  }

  get(address: number): V | undefined {
    // Callers pass what users pass: anything but a number is no key (and must not reach the math).
    if (typeof address !== 'number') return undefined
    const keys = this.#keys
    const mask = this.#mask
    for (let slot = this.#slotOf(address) & mask; ; slot = (slot + 1) & mask) {
      const key = keys[slot]
      if (key === address) return this.#values[slot]
      if (key === 0) return undefined
    }
  }

  has(address: number): boolean {
    return this.get(address) !== undefined
  }

  /** `value` must not be undefined. */
  set(address: number, value: V): void {
    if ((this.#size + 1) * 2 > this.#keys.length) this.#resize(this.#keys.length * 2)
    const keys = this.#keys
    const mask = this.#mask
    let slot = this.#slotOf(address) & mask
    while (keys[slot] !== 0 && keys[slot] !== address) slot = (slot + 1) & mask
    if (keys[slot] === 0) this.#size++
    keys[slot] = address
    this.#values[slot] = value
  }

  delete(address: number): boolean {
    const keys = this.#keys
    const values = this.#values
    const mask = this.#mask
    let slot = this.#slotOf(address) & mask
    while (keys[slot] !== address) {
      if (keys[slot] === 0) return false
      slot = (slot + 1) & mask
    }
    // Backward-shift: move later entries of the probe run into the hole, so no tombstone is left.
    let hole = slot
    for (let next = (hole + 1) & mask; keys[next] !== 0; next = (next + 1) & mask) {
      const home = this.#slotOf(keys[next]) & mask
      // The entry at `next` may move to `hole` only if its home is not in (hole, next].
      if ((next > hole && (home <= hole || home > next)) || (next < hole && home <= hole && home > next)) {
        keys[hole] = keys[next]
        values[hole] = values[next]
        hole = next
      }
    }
    keys[hole] = 0
    values[hole] = undefined
    this.#size--
    return true
  }

  clear(): void {
    if (this.#keys.length > MIN_CAPACITY) {
      this.#keys = new Float64Array(MIN_CAPACITY)
      this.#values = new Array<V | undefined>(MIN_CAPACITY).fill(undefined)
      this.#mask = MIN_CAPACITY - 1
    } else {
      this.#keys.fill(0)
      this.#values.fill(undefined)
    }
    this.#size = 0
  }

  *values(): IterableIterator<V> {
    const keys = this.#keys
    for (let slot = 0; slot < keys.length; slot++) if (keys[slot] !== 0) yield this.#values[slot]!
  }

  #resize(capacity: number): void {
    const oldKeys = this.#keys
    const oldValues = this.#values
    this.#keys = new Float64Array(capacity)
    this.#values = new Array<V | undefined>(capacity).fill(undefined)
    this.#mask = capacity - 1
    this.#size = 0
    for (let slot = 0; slot < oldKeys.length; slot++) if (oldKeys[slot] !== 0) this.set(oldKeys[slot], oldValues[slot]!)
  }
}
