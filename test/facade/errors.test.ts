/**
 * Bad arguments: each one is an AllocatorError with the contract's code and a message that names
 * the offending value, and the heap is exactly as it was (stats() and chunks() deep-equal).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AllocatorError, createHeap, type Handle, type Heap, type HeapOptions } from '../../lib/index'
import { expectAllocatorError, snapshot } from './helpers'

/** Values that are not usable byte counts, with how the message must show them. */
const BAD_NUMBERS: Array<[unknown, string]> = [
  [-1, '-1'],
  [1.5, '1.5'],
  [NaN, 'NaN'],
  [Infinity, 'Infinity'],
  [-Infinity, '-Infinity'],
  ['16', '"16"'],
  [undefined, 'undefined'],
  [null, 'null'],
  [true, 'true'],
  [2 ** 53, '9007199254740992'],
]
/** Not numbers at all; the message says what kind of value it got. */
const BAD_KINDS: unknown[] = [{}, [], 16n, Symbol('size'), () => 16]

let heap: Heap
let live: Handle
let before: ReturnType<typeof snapshot>
beforeEach(() => {
  heap = createHeap()
  heap.alloc(40)
  live = heap.allocArray(Float64Array, 4)
  live.as(Float64Array).set([1, 2, 3, 4])
  heap.raw.alloc(24)
  heap.alloc(16).free()
  before = snapshot(heap)
})
afterEach(() => {
  // Every failed call left the heap exactly as it was, and consistent.
  expect(snapshot(heap)).toEqual(before)
  heap.check()
  expect(live.live).toBe(true)
  expect(Array.from(live.as(Float64Array))).toEqual([1, 2, 3, 4])
  heap.close()
})

describe('alloc', () => {
  it.each(BAD_NUMBERS)('size %o is ERR_INVALID_SIZE naming it', (size, shown) => {
    expectAllocatorError(() => heap.alloc(size as number), 'ERR_INVALID_SIZE', 'size', `got ${shown}`)
    expectAllocatorError(() => heap.alloc(size as number, { zero: true }), 'ERR_INVALID_SIZE', `got ${shown}`)
    expectAllocatorError(() => heap.raw.alloc(size as number), 'ERR_INVALID_SIZE', `got ${shown}`)
  })

  it.each(BAD_KINDS)('size %o is ERR_INVALID_SIZE', (size) => {
    expectAllocatorError(() => heap.alloc(size as number), 'ERR_INVALID_SIZE', 'size must be a number, got ')
  })

  it.each([
    [3, '3', 'power of two'],
    [6, '6', 'power of two'],
    [24, '24', 'power of two'],
    [2 ** 21, '2097152', '1 MiB'],
    [2 ** 30, '1073741824', '1 MiB'],
    [-8, '-8', 'negative'],
    [1.5, '1.5', 'integer'],
    [NaN, 'NaN', 'NaN'],
    [Infinity, 'Infinity', 'finite'],
    ['16', '"16"', 'number'],
    [null, 'null', 'number'],
    [true, 'true', 'number'],
  ])('align %o is ERR_INVALID_ALIGNMENT naming it', (align, shown, problem) => {
    expectAllocatorError(() => heap.alloc(8, { align: align as number }), 'ERR_INVALID_ALIGNMENT', 'align', problem, `got ${shown}`)
    expectAllocatorError(() => heap.alloc(8, { align: align as number, zero: true }), 'ERR_INVALID_ALIGNMENT', `got ${shown}`)
    expectAllocatorError(() => heap.raw.alloc(8, align as number), 'ERR_INVALID_ALIGNMENT', `got ${shown}`)
  })

  it.each([Symbol('align'), 8n, {}])('align %o is ERR_INVALID_ALIGNMENT (not a TypeError)', (align) => {
    expectAllocatorError(() => heap.alloc(8, { align: align as number }), 'ERR_INVALID_ALIGNMENT', 'must be a number')
  })

  it('a bad size is reported before a bad align', () => {
    expectAllocatorError(() => heap.alloc(-1, { align: 3 }), 'ERR_INVALID_SIZE')
  })

  it.each([
    [null, 'null'],
    [5, '5'],
    ['zero', '"zero"'],
  ])('options %o are ERR_INVALID_OPTION naming them', (options, shown) => {
    expectAllocatorError(() => heap.alloc(8, options as never), 'ERR_INVALID_OPTION', 'alloc options', `got ${shown}`)
  })

  it.each([
    [1, '1'],
    ['yes', '"yes"'],
    [null, 'null'],
  ])('zero: %o is ERR_INVALID_OPTION naming it', (zero, shown) => {
    expectAllocatorError(() => heap.alloc(8, { zero: zero as unknown as boolean }), 'ERR_INVALID_OPTION', 'zero', `got ${shown}`)
  })

  it('an unknown alloc option (a typo) is ERR_INVALID_OPTION naming it', () => {
    expectAllocatorError(() => heap.alloc(8, { zeroed: true } as never), 'ERR_INVALID_OPTION', '"zeroed"')
    expectAllocatorError(() => heap.alloc(8, { alignment: 64 } as never), 'ERR_INVALID_OPTION', '"alignment"')
  })
})

describe('allocArray', () => {
  it.each([
    [Object, 'Object'],
    [Array, 'Array'],
    [DataView, 'DataView'],
    [ArrayBuffer, 'ArrayBuffer'],
    [class Float64Array {}, 'Float64Array'], // a look-alike
    ['Float64Array', '"Float64Array"'],
    [undefined, 'undefined'],
    [null, 'null'],
    [{ BYTES_PER_ELEMENT: 8 }, 'an object'],
  ])('type %o is ERR_UNSUPPORTED naming it', (type, shown) => {
    expectAllocatorError(() => heap.allocArray(type as never, 4), 'ERR_UNSUPPORTED', 'typed array constructor', shown)
  })

  it.each([...BAD_NUMBERS, [2 ** 50, String(2 ** 50)] as [unknown, string], [0.5, '0.5'] as [unknown, string]])(
    'length %o is ERR_INVALID_SIZE naming it',
    (length, shown) => {
      expectAllocatorError(() => heap.allocArray(Float64Array, length as number), 'ERR_INVALID_SIZE', 'length', `got ${shown}`)
    },
  )

  it.each(BAD_KINDS)('length %o is ERR_INVALID_SIZE', (length) => {
    expectAllocatorError(() => heap.allocArray(Int8Array, length as number), 'ERR_INVALID_SIZE', 'length')
  })
})

describe('realloc', () => {
  it.each(BAD_NUMBERS)('size %o is ERR_INVALID_SIZE naming it; the handle lives on', (size, shown) => {
    expectAllocatorError(() => heap.realloc(live, size as number), 'ERR_INVALID_SIZE', 'size', `got ${shown}`)
    expectAllocatorError(() => heap.raw.realloc(live.address, size as number), 'ERR_INVALID_SIZE', `got ${shown}`)
  })

  it.each([
    [undefined, 'undefined'],
    [null, 'null'],
    [42, '42'],
    ['handle', '"handle"'],
    [{}, 'an object'],
  ])('handle %o is ERR_INVALID_POINTER naming it', (handle, shown) => {
    expectAllocatorError(() => heap.realloc(handle as never, 8), 'ERR_INVALID_POINTER', 'expected a Handle', `got ${shown}`)
  })

  it('a look-alike handle object is ERR_INVALID_POINTER', () => {
    const fake = { address: live.address, size: 32, live: true, bytes: () => new Uint8Array(32), as: () => null, free: () => {} }
    expectAllocatorError(() => heap.realloc(fake as never, 8), 'ERR_INVALID_POINTER')
    expectAllocatorError(() => heap.free(fake as never), 'ERR_INVALID_POINTER')
  })

  it("another heap's handle is ERR_FOREIGN_HANDLE naming its address", () => {
    const other = createHeap({ backend: 'js' })
    const foreign = other.alloc(8)
    expectAllocatorError(() => heap.realloc(foreign, 16), 'ERR_FOREIGN_HANDLE', `0x${foreign.address.toString(16)}`)
    expect(foreign.live).toBe(true)
    other.close()
  })

  it.each([
    [-1, '-1'],
    [1.5, '1.5'],
    ['1', '"1"'],
  ])('raw.realloc of address %o is ERR_INVALID_POINTER naming it', (address, shown) => {
    expectAllocatorError(() => heap.raw.realloc(address as number, 8), 'ERR_INVALID_POINTER', 'address', `got ${shown}`)
  })
})

describe('free', () => {
  it.each([
    [undefined, 'undefined'],
    [null, 'null'],
    [42, '42'],
    [{}, 'an object'],
  ])('heap.free(%o) is ERR_INVALID_POINTER naming it', (handle, shown) => {
    expectAllocatorError(() => heap.free(handle as never), 'ERR_INVALID_POINTER', `got ${shown}`)
  })

  it("another heap's handle is ERR_FOREIGN_HANDLE", () => {
    const other = createHeap()
    const foreign = other.alloc(8)
    expectAllocatorError(() => heap.free(foreign), 'ERR_FOREIGN_HANDLE', `0x${foreign.address.toString(16)}`)
    expect(foreign.live).toBe(true)
    other.close()
  })

  it('a dead handle is ERR_DOUBLE_FREE naming its address', () => {
    // The dead handle is made (and freed) before the snapshot.
    const dead = heap.alloc(8)
    dead.free()
    before = snapshot(heap)
    expectAllocatorError(() => heap.free(dead), 'ERR_DOUBLE_FREE', `0x${dead.address.toString(16)}`)
    expectAllocatorError(() => dead.free(), 'ERR_DOUBLE_FREE')
    expectAllocatorError(() => dead.bytes(), 'ERR_USE_AFTER_FREE', `0x${dead.address.toString(16)}`)
  })

  it.each([
    [-1, '-1'],
    [1.5, '1.5'],
    [NaN, 'NaN'],
    ['1', '"1"'],
    [undefined, 'undefined'],
  ])('raw.free(%o) and raw.sizeOf(%o) are ERR_INVALID_POINTER naming it', (address, shown) => {
    expectAllocatorError(() => heap.raw.free(address as number), 'ERR_INVALID_POINTER', 'address', `got ${shown}`)
    expectAllocatorError(() => heap.raw.sizeOf(address as number), 'ERR_INVALID_POINTER', `got ${shown}`)
  })

  it('raw.free of an address that is not a chunk start is ERR_INVALID_POINTER naming it', () => {
    for (const address of [live.address + 8, live.address + 1, 16, 2 ** 52]) {
      expectAllocatorError(() => heap.raw.free(address), 'ERR_INVALID_POINTER', `0x${address.toString(16)}`)
    }
  })
})

describe('as()', () => {
  it.each([
    [Object, 'Object'],
    [DataView, 'DataView'],
    ['Float64Array', '"Float64Array"'],
    [undefined, 'undefined'],
  ])('as(%o) is ERR_UNSUPPORTED naming it', (type, shown) => {
    expectAllocatorError(() => live.as(type as never), 'ERR_UNSUPPORTED', 'typed array constructor', shown)
  })
})

describe('out of memory', () => {
  it('beyond maxHeapBytes: ERR_OUT_OF_MEMORY naming the request and the cap; nothing changes', () => {
    const capped = createHeap({ maxHeapBytes: 1 << 20 })
    const h = capped.alloc(100)
    const cappedBefore = snapshot(capped)
    expectAllocatorError(() => capped.alloc(2 << 20), 'ERR_OUT_OF_MEMORY', String(2 << 20), 'maxHeapBytes 1048576')
    expectAllocatorError(() => capped.realloc(h, 2 << 20), 'ERR_OUT_OF_MEMORY', String(2 << 20))
    expectAllocatorError(() => capped.allocArray(Float64Array, 1 << 20), 'ERR_OUT_OF_MEMORY')
    expect(snapshot(capped)).toEqual(cappedBefore)
    expect(h.live).toBe(true)
    capped.close()
  })
})

describe('createHeap options', () => {
  const cases: Array<[HeapOptions | unknown, string[]]> = [
    ['fast', ['options', '"fast"']],
    [null, ['options', 'null']],
    [42, ['options', '42']],
    [{ backend: 'wasm' }, ['backend', '"wasm"', "'native'"]],
    [{ source: 'sbrk' }, ['source', '"sbrk"', "'brk'"]],
    [{ strategy: 'good-fit' }, ['strategy', '"good-fit"', "'best-fit'"]],
    [{ alignment: 3 }, ['alignment', '3', 'power of two']],
    [{ alignment: 4 }, ['alignment', '4', '8 to 4096']],
    [{ alignment: 8192 }, ['alignment', '8192']],
    [{ alignment: '16' }, ['alignment', '"16"']],
    [{ growth: -1 }, ['growth', '-1']],
    [{ growth: 1.5 }, ['growth', '1.5']],
    [{ growth: Infinity }, ['growth', 'Infinity']],
    [{ growth: 2 ** 41 }, ['growth', String(2 ** 41)]],
    [{ split: 1 }, ['split', '1', 'boolean']],
    [{ coalesce: 'no' }, ['coalesce', '"no"', 'boolean']],
    [{ trimThreshold: NaN }, ['trimThreshold', 'NaN']],
    [{ trimThreshold: -5 }, ['trimThreshold', '-5']],
    [{ maxHeapBytes: 0 }, ['maxHeapBytes', '0']],
    [{ maxHeapBytes: -1 }, ['maxHeapBytes', '-1']],
    [{ maxHeapBytes: 1.5 }, ['maxHeapBytes', '1.5']],
    [{ trackLeaks: 'yes' }, ['trackLeaks', '"yes"']],
    [{ trackLeaks: 1 }, ['trackLeaks', '1']],
    [{ trackleaks: true }, ['"trackleaks"']],
    [{ alignement: 16 }, ['"alignement"']],
  ]
  it.each(cases)('%o is ERR_INVALID_OPTION naming the option and value', (options, mentions) => {
    expectAllocatorError(() => createHeap(options as HeapOptions), 'ERR_INVALID_OPTION', ...mentions)
  })

  it('undefined values mean the defaults', () => {
    const h = createHeap({ backend: undefined, alignment: undefined, trackLeaks: undefined })
    expect(h.alloc(8).address % 16).toBe(0)
    h.close()
  })

  it('Infinity is allowed where it means "never" or "no cap"', () => {
    const h = createHeap({ trimThreshold: Infinity, maxHeapBytes: Infinity })
    h.alloc(8)
    h.close()
  })

  it('every error is an AllocatorError, an Error with a code', () => {
    const error = expectAllocatorError(() => createHeap({ alignment: 3 }), 'ERR_INVALID_OPTION')
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(AllocatorError)
    expect(error.stack).toContain('errors.test.ts')
  })
})
