/**
 * Large reallocs on an mmap heap through the facade: the core moves such a chunk by its pages
 * (native/core/realloc.cpp MovePagesTo; its own proofs, with the source wrapped to count and to
 * fail each move, are test/native/realloc_pages_test.cpp). Here: every byte survives growth past a
 * neighbour at many sizes and offsets in a page, the old memory is allocated and written again,
 * and check() holds after each step.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { closeHeaps, nativeAvailable, newHeap } from '../facade/helpers'

afterEach(closeHeaps)

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length)
  let x = seed >>> 0
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    bytes[i] = x >>> 24
  }
  return bytes
}

function sameBytes(actual: Uint8Array, expected: Uint8Array): boolean {
  if (actual.length !== expected.length) return false
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) return false
  return true
}

describe.skipIf(!nativeAvailable)('realloc of large chunks on an mmap heap', () => {
  it('keeps every byte across moves of many sizes and offsets, and the old memory is usable again', () => {
    let seed = 1
    for (const size of [128 << 10, (128 << 10) + 16, 300_000, 1 << 20, (5 << 20) + 4080]) {
      for (const lead of [80, 592, 2000, 4016]) {
        // A heap of its own for each case: the move's destination is fresh memory, where pages move.
        const heap = newHeap({ source: 'mmap', trackLeaks: false })
        const raw = heap.raw
        raw.alloc(lead)
        const chunk = raw.alloc(size)
        const bytes = pattern(size, ++seed)
        raw.write(chunk, bytes)
        raw.alloc(4096) // right above it: the chunk must move to grow
        const grown = raw.realloc(chunk, size + (size >> 1))
        expect(grown).not.toBe(chunk)
        expect(grown % 4096).toBe(chunk % 4096) // a page move's placement
        if (!sameBytes(raw.read(grown, 0, size), bytes)) expect.fail(`bytes changed: ${size} bytes after ${lead}`)
        heap.check()
        // The old memory, allocated and written again.
        const again = Array.from({ length: 4 }, () => raw.alloc(size >> 2))
        again.forEach((address, i) => raw.write(address, pattern(size >> 2, 1000 + i)))
        again.forEach((address, i) => expect(sameBytes(raw.read(address, 0, size >> 2), pattern(size >> 2, 1000 + i))).toBe(true))
        expect(sameBytes(raw.read(grown, 0, size), bytes)).toBe(true)
        heap.check()
        heap.close()
      }
    }
  })

  it('keeps every byte of a buffer that grows by half from 64 KiB to 16 MiB between other allocations', () => {
    const heap = newHeap({ source: 'mmap', trackLeaks: false })
    const raw = heap.raw
    let size = 64 << 10
    let buffer = raw.alloc(size)
    raw.write(buffer, pattern(size, 7))
    while (size * 1.5 <= 16 << 20) {
      const next = Math.floor(size * 1.5)
      buffer = raw.realloc(buffer, next)
      raw.write(buffer, pattern(next - size, next), size)
      raw.alloc(64 + (next % 4000))
      heap.check()
      size = next
    }
    // Rebuild the expected bytes: 64 KiB of the first pattern, then each growth's own pattern.
    const expected = new Uint8Array(size)
    let filled = 64 << 10
    expected.set(pattern(filled, 7))
    while (filled < size) {
      const next = Math.floor(filled * 1.5)
      expected.set(pattern(next - filled, next), filled)
      filled = next
    }
    expect(sameBytes(raw.read(buffer, 0, size), expected)).toBe(true)
  })
})
