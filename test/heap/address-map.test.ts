/**
 * AddressMap (lib/heap/address-map.ts) against a Map on seeded random operations: colliding
 * addresses, deletions in the middle of probe runs, growth, clear.
 */
import { describe, expect, it } from 'vitest'
import { AddressMap } from '../../lib/heap/address-map'

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('AddressMap', () => {
  it.each([1, 2, 3])('agrees with a Map over 100,000 random set/get/delete (seed %i)', (seed) => {
    const random = prng(seed)
    const map = new AddressMap<number>()
    const model = new Map<number, number>()
    // Few distinct addresses, brk-like and mmap-like, multiples of 16: long probe runs.
    const addresses = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? 0x5555_5555_0000 : 0x7f00_0000_0000) + Math.floor(random() * 4096) * 16)
    for (let op = 0; op < 100_000; op++) {
      const address = addresses[Math.floor(random() * addresses.length)]
      const r = random()
      if (r < 0.45) {
        map.set(address, op)
        model.set(address, op)
      } else if (r < 0.9) {
        if (map.delete(address) !== model.delete(address)) expect.fail(`delete ${address} disagrees at op ${op}`)
      } else if (r < 0.9995) {
        if (map.get(address) !== model.get(address)) expect.fail(`get ${address} disagrees at op ${op}`)
      } else {
        map.clear()
        model.clear()
      }
      if (op % 10_000 === 0) {
        expect(map.size).toBe(model.size)
        expect([...map.values()].sort((a, b) => a - b)).toEqual([...model.values()].sort((a, b) => a - b))
      }
    }
    for (const [address, value] of model) expect(map.get(address)).toBe(value)
    expect(map.size).toBe(model.size)
  })
})
