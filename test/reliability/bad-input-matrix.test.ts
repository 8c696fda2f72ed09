/**
 * The bad-input matrix: every public function, option and CLI flag against each class of bad
 * value (bad-values.ts), on both backends. Each case expects its exact AllocatorError code (the
 * CLI: exit code 2 and nothing run), stats() and chunks() of the heap unchanged by the call, and
 * check() passing afterwards. One `it` per function collects every mismatch, so a failure lists
 * them all.
 *
 * KNOWN_OUTSIDE lists the cases that still fail in files this suite's author does not own, with
 * what they do now; they are reported (console.warn) instead of failing, and a listed case that
 * starts passing fails the suite until it is taken off the list.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  AllocatorError,
  createHeap,
  formatTrace,
  generateTrace,
  loadTrace,
  parseTrace,
  replay,
  traceFromOps,
  type ErrorCode,
  type Handle,
  type Heap,
  type Trace,
} from '../../lib/index'
import { BAD_ALIGNMENTS, BAD_NUMBERS, HUGE_SIZES, WILD_ADDRESSES, WRONG_TYPES, type Labelled } from './bad-values'
import { BACKENDS, nativeAvailable, observable } from './support'
import { run as cli } from '../cli/helpers'

interface Case {
  what: string
  run: () => unknown
  code: ErrorCode
}

/** Failing today in files outside test/reliability's owner's; key: `${group}: ${what}`. */
const KNOWN_OUTSIDE: Record<string, string> = {
  'free: a look-alike made with Object.create(Handle.prototype)': 'lib/heap/heap.ts #own (views): TypeError reading state.address',
  'realloc: a look-alike made with Object.create(Handle.prototype)': 'lib/heap/heap.ts #own (views): TypeError reading state.address',
  'allocArray: as() of undefined': 'lib/heap/handle.ts as() (views): returns undefined while no typed view is cached (undefined?.constructor === undefined)',
  'generateTrace: options null': 'lib/trace/workloads.ts: TypeError destructuring null',
  'generateTrace: options "x"': 'lib/trace/workloads.ts: accepted (a string has no seed/ops)',
  'generateTrace: options []': 'lib/trace/workloads.ts: accepted',
  'generateTrace: unknown option { opps: 5 }': 'lib/trace/workloads.ts: accepted and ignored',
}

const counts = { cases: 0, known: 0 }
const knownSeen = new Map<string, string>()
const open: Heap[] = []

afterEach(() => {
  while (open.length > 0) open.pop()!.close()
})

afterAll(() => {
  console.log(`bad-input matrix: ${counts.cases} cases ran (${counts.known} known failures outside this suite's files)`)
  if (knownSeen.size > 0) console.warn(`bad-input matrix: still failing outside test/reliability:\n  ${[...knownSeen.values()].join('\n  ')}`)
})

function describeThrown(thrown: unknown): string {
  if (thrown === undefined) return 'returned normally'
  if (thrown instanceof AllocatorError) return `${thrown.code}: ${thrown.message}`
  return `${(thrown as Error)?.constructor?.name ?? typeof thrown}: ${(thrown as Error)?.message ?? String(thrown)}`
}

/** Runs every case against `heap` (unchanged, check() passing); returns the mismatches. */
function runCases(group: string, heap: Heap | undefined, cases: readonly Case[]): string[] {
  const problems: string[] = []
  for (const c of cases) {
    counts.cases++
    const key = `${group}: ${c.what}`
    const before = heap === undefined ? undefined : observable(heap)
    let thrown: unknown
    try {
      c.run()
    } catch (error) {
      thrown = error
    }
    let problem: string | undefined
    if (!(thrown instanceof AllocatorError) || thrown.code !== c.code) problem = `expected ${c.code}, got ${describeThrown(thrown)}`
    else if (thrown.message.length === 0) problem = 'the message is empty'
    else if (heap !== undefined) {
      const after = observable(heap)
      if (JSON.stringify(after) !== JSON.stringify(before)) problem = `the heap changed: ${JSON.stringify(before!.stats)} -> ${JSON.stringify(after.stats)}`
      else {
        try {
          heap.check()
        } catch (error) {
          problem = `check() failed afterwards: ${describeThrown(error)}`
        }
      }
    }
    const known = KNOWN_OUTSIDE[key]
    if (known !== undefined) {
      counts.known++
      if (problem === undefined) problems.push(`${key}: passes now; take it off KNOWN_OUTSIDE`)
      else knownSeen.set(key, `${key} -- ${problem} (${known})`)
    } else if (problem !== undefined) {
      problems.push(`${key}: ${problem}`)
    }
  }
  return problems
}

function cases(prefix: string, values: readonly Labelled[], code: ErrorCode, run: (value: unknown) => unknown): Case[] {
  return values.map(([what, value]) => ({ what: `${prefix} ${what}`, code, run: () => run(value) }))
}

interface Fixture {
  heap: Heap
  live: Handle
  big: Handle
  rawLive: number
  /** Freed through its handle, between live neighbours (so it is not merged away). */
  dead: Handle
  /** Freed by address, between live neighbours. */
  deadRaw: number
  other: Heap
  otherHandle: Handle
  otherRaw: number
  closed: Heap
  closedHandle: Handle
  closedRaw: number
}

function heapFor(backend: 'native' | 'js', trackLeaks = true): Heap {
  const heap = createHeap({ backend, trackLeaks })
  open.push(heap)
  return heap
}

function fixture(backend: 'native' | 'js'): Fixture {
  const closed = heapFor(backend)
  const closedHandle = closed.alloc(32)
  const closedRaw = closed.raw.alloc(32)
  closed.close()
  const other = heapFor(backend)
  const otherHandle = other.alloc(64)
  const otherRaw = other.raw.alloc(64)
  const heap = heapFor(backend)
  heap.alloc(64)
  const dead = heap.alloc(64)
  heap.alloc(64)
  const deadRaw = heap.raw.alloc(64)
  heap.raw.alloc(64)
  const live = heap.alloc(64)
  const big = heap.alloc(256)
  const rawLive = heap.raw.alloc(64)
  heap.alloc(64)
  dead.free()
  heap.raw.free(deadRaw)
  return { heap, live, big, rawLive, dead, deadRaw, other, otherHandle, otherRaw, closed, closedHandle, closedRaw }
}

const NOT_SIZES: readonly Labelled[] = [...WRONG_TYPES, ...BAD_NUMBERS, ['undefined (missing)', undefined]]
const NOT_ALIGNMENTS: readonly Labelled[] = [...WRONG_TYPES, ...BAD_NUMBERS, ...BAD_ALIGNMENTS]
const NOT_ADDRESSES: readonly Labelled[] = [...WRONG_TYPES, ...BAD_NUMBERS, ['undefined (missing)', undefined], ...WILD_ADDRESSES]

/** Addresses of this heap that are not the start of a live chunk, and the code each must get. */
function badAddresses(f: Fixture, backend: 'native' | 'js'): [what: string, address: number, code: ErrorCode][] {
  const list: [string, number, ErrorCode][] = [
    ['a live chunk + 1 (misaligned)', f.live.address + 1, 'ERR_INVALID_POINTER'],
    ['a live chunk + 8 (misaligned)', f.live.address + 8, 'ERR_INVALID_POINTER'],
    ['inside a live 256-byte chunk (+16)', f.big.address + 16, 'ERR_INVALID_POINTER'],
    ['inside a live 256-byte chunk (+128)', f.big.address + 128, 'ERR_INVALID_POINTER'],
    ['a chunk freed by address', f.deadRaw, 'ERR_DOUBLE_FREE'],
    ['a chunk freed through its handle', f.dead.address, 'ERR_DOUBLE_FREE'],
  ]
  // js heaps all number their chunks from the same base, so another js heap's address can be a
  // live chunk of this one: only native addresses are unique across heaps.
  if (backend === 'native') list.push(['a live chunk of another heap', f.otherRaw, 'ERR_INVALID_POINTER'], ['a chunk of a closed heap', f.closedRaw, 'ERR_INVALID_POINTER'])
  return list
}

function notHandles(f: Fixture): Labelled[] {
  return [
    ['null', null],
    ['undefined', undefined],
    ['its address as a number', f.live.address],
    ['a plain object with its fields', { address: f.live.address, size: 64, live: true }],
    ['its bytes() view', f.live.bytes()],
    ['a look-alike made with Object.create(Handle.prototype)', Object.create(Object.getPrototypeOf(f.live))],
  ]
}

function closedHeapCases(f: Fixture): Case[] {
  const heap = f.closed
  const h = f.closedHandle
  const closed = (what: string, run: () => unknown): Case => ({ what, run, code: 'ERR_HEAP_CLOSED' })
  return [
    closed('alloc', () => heap.alloc(8)),
    closed('alloc with options', () => heap.alloc(8, { align: 64, zero: true })),
    closed('allocArray', () => heap.allocArray(Float64Array, 4)),
    closed('realloc of its own handle', () => heap.realloc(h, 64)),
    closed('free of its own handle', () => heap.free(h)),
    closed('reset', () => heap.reset()),
    closed('trim', () => heap.trim()),
    closed('stats', () => heap.stats()),
    closed('chunks', () => heap.chunks()),
    closed('check', () => heap.check()),
    closed('leaks', () => heap.leaks()),
    closed('assertNoLeaks', () => heap.assertNoLeaks()),
    closed('raw.alloc', () => heap.raw.alloc(8)),
    closed('raw.free', () => heap.raw.free(f.closedRaw)),
    closed('raw.realloc', () => heap.raw.realloc(f.closedRaw, 64)),
    closed('raw.sizeOf', () => heap.raw.sizeOf(f.closedRaw)),
    closed('handle.bytes()', () => h.bytes()),
    closed('handle.as(Float64Array)', () => h.as(Float64Array)),
    closed('handle.free()', () => h.free()),
  ]
}

describe.each(BACKENDS)('bad input on the %s backend', (backend) => {
  it('alloc', () => {
    const f = fixture(backend)
    const { heap } = f
    const problems = runCases('alloc', heap, [
      ...cases('size', NOT_SIZES, 'ERR_INVALID_SIZE', (v) => heap.alloc(v as number)),
      ...cases('size', HUGE_SIZES, 'ERR_OUT_OF_MEMORY', (v) => heap.alloc(v as number)),
      ...cases('size with zero: true', HUGE_SIZES, 'ERR_OUT_OF_MEMORY', (v) => heap.alloc(v as number, { zero: true })),
      ...cases('size with align 4096', HUGE_SIZES, 'ERR_OUT_OF_MEMORY', (v) => heap.alloc(v as number, { align: 4096 })),
      ...cases('align', [...NOT_ALIGNMENTS, ['0', 0]], 'ERR_INVALID_ALIGNMENT', (v) => heap.alloc(8, { align: v as number })),
      ...cases('options', [['"x"', 'x'], ['8', 8], ['true', true], ['null', null], ['[]', []], ['a function', () => 0]], 'ERR_INVALID_OPTION', (v) => heap.alloc(8, v as never)),
      ...cases('zero', [['"yes"', 'yes'], ['1', 1], ['null', null], ['{}', {}]], 'ERR_INVALID_OPTION', (v) => heap.alloc(8, { zero: v as boolean })),
      ...cases('unknown option', [['{ aling: 16 }', { aling: 16 }], ['{ __proto__ as own key }', JSON.parse('{"__proto__": 1}')]], 'ERR_INVALID_OPTION', (v) => heap.alloc(8, v as never)),
    ])
    expect(problems).toEqual([])
  })

  it('allocArray and Handle.as', () => {
    const f = fixture(backend)
    const { heap } = f
    class NotTyped {}
    const notTypes: Labelled[] = [
      ['null', null], ['undefined', undefined], ['42', 42], ['"Float64Array"', 'Float64Array'], ['Array', Array], ['Object', Object],
      ['DataView', DataView], ['ArrayBuffer', ArrayBuffer], ['a class', NotTyped], ['an object with BYTES_PER_ELEMENT', { BYTES_PER_ELEMENT: 8 }],
    ]
    const problems = runCases('allocArray', heap, [
      ...cases('type', notTypes, 'ERR_UNSUPPORTED', (v) => heap.allocArray(v as Float64ArrayConstructor, 4)),
      ...cases('length', [...NOT_SIZES, ['2**50 of Float64 (2**53 bytes)', 2 ** 50]], 'ERR_INVALID_SIZE', (v) => heap.allocArray(Float64Array, v as number)),
      ...cases('length', [['2**45 of Float64', 2 ** 45]], 'ERR_OUT_OF_MEMORY', (v) => heap.allocArray(Float64Array, v as number)),
      ...cases('as() of', notTypes, 'ERR_UNSUPPORTED', (v) => f.live.as(v as Float64ArrayConstructor)),
    ])
    expect(problems).toEqual([])
  })

  it('free and realloc of handles', () => {
    const f = fixture(backend)
    const { heap } = f
    const array = heap.allocArray(Float64Array, 4)
    heap.alloc(8)
    array.free()
    const problems = runCases('free', heap, [
      ...cases('', notHandles(f), 'ERR_INVALID_POINTER', (v) => heap.free(v as Handle)).map((c) => ({ ...c, what: c.what.trim() })),
      { what: 'a freed handle', code: 'ERR_DOUBLE_FREE', run: () => heap.free(f.dead) },
      { what: 'a freed handle, through handle.free()', code: 'ERR_DOUBLE_FREE', run: () => f.dead.free() },
      { what: 'a freed array handle', code: 'ERR_DOUBLE_FREE', run: () => heap.free(array) },
      { what: 'a handle of another heap', code: 'ERR_FOREIGN_HANDLE', run: () => heap.free(f.otherHandle) },
      { what: 'a handle of a closed heap', code: 'ERR_FOREIGN_HANDLE', run: () => heap.free(f.closedHandle) },
    ])
    problems.push(
      ...runCases('realloc', heap, [
        ...cases('', notHandles(f), 'ERR_INVALID_POINTER', (v) => heap.realloc(v as Handle, 32)).map((c) => ({ ...c, what: c.what.trim() })),
        { what: 'a freed handle', code: 'ERR_USE_AFTER_FREE', run: () => heap.realloc(f.dead, 32) },
        { what: 'a handle of another heap', code: 'ERR_FOREIGN_HANDLE', run: () => heap.realloc(f.otherHandle, 32) },
        { what: 'a handle of a closed heap', code: 'ERR_FOREIGN_HANDLE', run: () => heap.realloc(f.closedHandle, 32) },
        ...cases('size', NOT_SIZES, 'ERR_INVALID_SIZE', (v) => heap.realloc(f.live, v as number)),
        ...cases('size', HUGE_SIZES, 'ERR_OUT_OF_MEMORY', (v) => heap.realloc(f.live, v as number)),
        ...cases('a freed handle to size', NOT_SIZES.slice(0, 3), 'ERR_USE_AFTER_FREE', (v) => heap.realloc(f.dead, v as number)),
      ]),
      ...runCases('handle', heap, [
        { what: 'bytes() of a freed handle', code: 'ERR_USE_AFTER_FREE', run: () => f.dead.bytes() },
        { what: 'as() of a freed handle', code: 'ERR_USE_AFTER_FREE', run: () => f.dead.as(Uint8Array) },
        { what: 'array of a freed array handle', code: 'ERR_USE_AFTER_FREE', run: () => array.array },
      ]),
    )
    // Handles killed another way: a raw free of their address, and reset().
    const killedByRaw = heap.alloc(48)
    heap.alloc(8)
    heap.raw.free(killedByRaw.address)
    problems.push(
      ...runCases('killed handle', heap, [
        { what: 'free of a handle whose chunk was freed by address', code: 'ERR_DOUBLE_FREE', run: () => heap.free(killedByRaw) },
        { what: 'realloc of a handle whose chunk was freed by address', code: 'ERR_USE_AFTER_FREE', run: () => heap.realloc(killedByRaw, 8) },
        { what: 'bytes() of a handle whose chunk was freed by address', code: 'ERR_USE_AFTER_FREE', run: () => killedByRaw.bytes() },
      ]),
    )
    const resetHeap = heapFor(backend)
    const beforeReset = resetHeap.alloc(32)
    const rawBeforeReset = resetHeap.raw.alloc(32)
    resetHeap.reset()
    // The first chunk after reset() takes the first address again, not the raw one's.
    expect(resetHeap.alloc(16).address).not.toBe(rawBeforeReset)
    problems.push(
      ...runCases('after reset', resetHeap, [
        { what: 'free of a handle from before reset()', code: 'ERR_DOUBLE_FREE', run: () => resetHeap.free(beforeReset) },
        { what: 'realloc of a handle from before reset()', code: 'ERR_USE_AFTER_FREE', run: () => resetHeap.realloc(beforeReset, 64) },
        { what: 'bytes() of a handle from before reset()', code: 'ERR_USE_AFTER_FREE', run: () => beforeReset.bytes() },
        { what: 'raw.free of an address from before reset()', code: 'ERR_INVALID_POINTER', run: () => resetHeap.raw.free(rawBeforeReset) },
      ]),
    )
    expect(f.live.live).toBe(true)
    expect(problems).toEqual([])
  })

  it('raw', () => {
    const f = fixture(backend)
    const { heap } = f
    const { raw } = heap
    const addressCases = (name: string, run: (address: unknown) => unknown): Case[] => [
      ...cases(`${name} of`, NOT_ADDRESSES, 'ERR_INVALID_POINTER', run),
      ...badAddresses(f, backend).map(([what, address, code]): Case => ({ what: `${name} of ${what}`, code, run: () => run(address) })),
    ]
    const problems = runCases('raw', heap, [
      ...cases('alloc size', NOT_SIZES, 'ERR_INVALID_SIZE', (v) => raw.alloc(v as number)),
      ...cases('alloc size', HUGE_SIZES, 'ERR_OUT_OF_MEMORY', (v) => raw.alloc(v as number)),
      // raw.alloc keeps the binding's convention that align 0 means the heap's own alignment.
      ...cases('alloc align', NOT_ALIGNMENTS, 'ERR_INVALID_ALIGNMENT', (v) => raw.alloc(8, v as number)),
      ...addressCases('free', (a) => raw.free(a as number)),
      ...addressCases('sizeOf', (a) => raw.sizeOf(a as number)),
      ...addressCases('realloc', (a) => raw.realloc(a as number, 32)),
      ...cases('realloc size', NOT_SIZES, 'ERR_INVALID_SIZE', (v) => raw.realloc(f.rawLive, v as number)),
      ...cases('realloc size', HUGE_SIZES, 'ERR_OUT_OF_MEMORY', (v) => raw.realloc(f.rawLive, v as number)),
    ])
    expect(raw.sizeOf(f.rawLive)).toBe(64)
    expect(problems).toEqual([])
  })

  it('a closed heap and its handles', () => {
    const f = fixture(backend)
    const problems = runCases('closed heap', undefined, closedHeapCases(f))
    f.closed.close()
    expect(f.closed.backend).toBe(backend)
    expect(problems).toEqual([])
  })

  it('leak reports with tracking off', () => {
    const heap = heapFor(backend, false)
    heap.alloc(16)
    const problems = runCases('leaks', heap, [
      { what: 'leaks() with trackLeaks false', code: 'ERR_UNSUPPORTED', run: () => heap.leaks() },
      { what: 'assertNoLeaks() with trackLeaks false', code: 'ERR_UNSUPPORTED', run: () => heap.assertNoLeaks() },
    ])
    expect(problems).toEqual([])
  })

  it('createHeap options', () => {
    const sentinel = heapFor(backend)
    sentinel.alloc(48)
    const option = (name: string, values: readonly Labelled[], code: ErrorCode = 'ERR_INVALID_OPTION'): Case[] =>
      cases(name, values, code, (v) => createHeap({ backend, [name]: v }).close())
    const notBooleans: Labelled[] = [['"yes"', 'yes'], ['1', 1], ['null', null], ['{}', {}]]
    const notByteCounts: Labelled[] = [...WRONG_TYPES, ...BAD_NUMBERS.filter(([, v]) => v !== Infinity)]
    const problems = runCases('createHeap', sentinel, [
      ...cases('options', [['"x"', 'x'], ['8', 8], ['true', true], ['null', null], ['[]', []], ['a function', () => 0]], 'ERR_INVALID_OPTION', (v) => createHeap(v as never)),
      ...cases('unknown option', [['{ strategies }', { strategies: 'bump' }], ['{ __proto__ as own key }', JSON.parse('{"__proto__": 1}')]], 'ERR_INVALID_OPTION', (v) => createHeap({ backend, ...(v as object) })),
      ...cases('backend', [['"foo"', 'foo'], ['"NATIVE"', 'NATIVE'], ['1', 1], ['null', null], ['true', true]], 'ERR_INVALID_OPTION', (v) => createHeap({ backend: v as 'js' })),
      ...option('source', [['"foo"', 'foo'], ['"BRK"', 'BRK'], ['1', 1], ['null', null]]),
      ...option('strategy', [['"foo"', 'foo'], ['"BEST-FIT"', 'BEST-FIT'], ['1', 1], ['null', null]]),
      ...option('alignment', [...WRONG_TYPES, ...BAD_NUMBERS, ['0', 0], ['4', 4], ['24', 24], ['8192', 8192]]),
      ...option('growth', [...notByteCounts, ['Infinity', Infinity], ['2**41 (above 1 TiB)', 2 ** 41]]),
      ...option('split', notBooleans),
      ...option('coalesce', notBooleans),
      ...option('trimThreshold', notByteCounts),
      ...option('maxHeapBytes', [...notByteCounts, ['0', 0]]),
      ...option('segregateSmall', [...WRONG_TYPES, ...BAD_NUMBERS, ['2**20 + 1', 2 ** 20 + 1]]),
      ...option('trackLeaks', [['"yes"', 'yes'], ['"stack"', 'stack'], ['1', 1], ['null', null]]),
      ...(backend === 'js'
        ? [
            ...option('source', [['"brk"', 'brk'], ['"mmap"', 'mmap']], 'ERR_UNSUPPORTED'),
            ...option('strategy', [['"best-fit"', 'best-fit'], ['"first-fit"', 'first-fit']], 'ERR_UNSUPPORTED'),
            ...option('split', [['true', true]], 'ERR_UNSUPPORTED'),
            ...option('coalesce', [['true', true]], 'ERR_UNSUPPORTED'),
            ...option('segregateSmall', [['64', 64]], 'ERR_UNSUPPORTED'),
            ...cases('maxHeapBytes', [['2**52 (more than a resizable ArrayBuffer can reserve)', 2 ** 52]], 'ERR_OUT_OF_MEMORY', (v) => createHeap({ backend, maxHeapBytes: v as number }).close()),
          ]
        : cases("strategy 'bump' with", [['split: true', { split: true }], ['coalesce: true', { coalesce: true }], ['segregateSmall: 64', { segregateSmall: 64 }]], 'ERR_UNSUPPORTED', (v) =>
            createHeap({ backend, strategy: 'bump', ...(v as object) }).close(),
          )),
    ])
    expect(problems).toEqual([])
  })
})

describe('bad traces', () => {
  const good = parseTrace('0\n2\n4\n0\na 0 8\na 1 16\nf 0\nf 1\n', 'good')
  let sentinel: Heap

  function withSentinel(group: string, list: Case[]): string[] {
    sentinel = heapFor(BACKENDS[0])
    sentinel.alloc(40)
    return runCases(group, sentinel, list)
  }

  it('parseTrace: malformed and hostile texts', () => {
    const texts: [string, string][] = [
      ['an empty text', ''],
      ['a header of three lines', '0\n1\n0\n'],
      ['a binary header', '\u0000\u0001\u0002\u0003\n'],
      ['NUL inside a request', '0\n1\n1\n0\na 0\u00008\n'],
      ['a non-ASCII digit', '0\n1\n1\n0\na 0 \u0668\n'],
      ['a header of 2147483647 ids', '0\n2147483647\n1\n0\na 0 8\n'],
      ['a header of 2**53 ids', '0\n9007199254740992\n1\n0\na 0 8\n'],
      ['a header claiming 2**53 - 1 requests', '0\n1\n9007199254740991\n0\na 0 8\n'],
      ['ids declared far beyond the requests', '0\n1000000\n1\n0\na 999999 8\n'],
      ['an id beyond 32 bits', '0\n1\n1\n0\na 4294967296 8\n'],
      ['a size beyond 2**53', '0\n1\n1\n0\na 0 18014398509481984\n'],
      ['a size in exponent notation', '0\n1\n1\n0\na 0 1e3\n'],
      ['a hex size', '0\n1\n1\n0\na 0 0x10\n'],
      ['a negative size', '0\n1\n1\n0\na 0 -8\n'],
      ['a free of a never-allocated id', '0\n2\n1\n0\nf 1\n'],
      ['a double free', '0\n1\n3\n0\na 0 8\nf 0\nf 0\n'],
      ['a realloc of id -1', '0\n1\n1\n0\nr -1 8\n'],
      ['an unknown request', '0\n1\n1\n0\nm 0 8\n'],
      ['a 100,000-character token', `0\n1\n1\n0\na 0 ${'9'.repeat(100_000)}\n`],
      ['more requests than declared', '0\n1\n1\n0\na 0 8\nf 0\n'],
      ['a blank line between requests', '0\n1\n2\n0\na 0 8\n\nf 0\n'],
    ]
    const problems = withSentinel('parseTrace', [
      ...texts.map(([what, text]): Case => ({ what, code: 'ERR_TRACE_FORMAT', run: () => parseTrace(text, 'hostile') })),
      ...cases('text', [...WRONG_TYPES, ['undefined', undefined], ['a Buffer', Buffer.from('0\n0\n0\n0\n')]], 'ERR_TRACE_FORMAT', (v) => parseTrace(v as string)),
      ...cases('name', [['5', 5], ['null', null], ['{}', {}]], 'ERR_INVALID_OPTION', (v) => parseTrace('0\n0\n0\n0\n', v as string)),
    ])
    expect(problems).toEqual([])
  })

  it('loadTrace: unreadable, corrupt and hostile files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rel-js-matrix-'))
    try {
      const file = (name: string, content: string | Buffer): string => {
        const path = join(dir, name)
        writeFileSync(path, content)
        return path
      }
      const files: [string, string][] = [
        ['a missing file', join(dir, 'missing.rep')],
        ['a directory', dir],
        ['an empty file', file('empty.rep', '')],
        ['truncated gzip', file('cut.rep.gz', gzipSync('0\n1\n2\n0\na 0 8\nf 0\n').subarray(0, 12))],
        ['gzip of a hostile header', file('hostile.rep.gz', gzipSync('0\n2147483647\n1\n0\na 0 8\n'))],
        ['binary noise', file('noise.rep', Buffer.from([0xff, 0xfe, 0, 1, 2, 3, 10, 10]))],
      ]
      const problems = withSentinel('loadTrace', [
        ...files.map(([what, path]): Case => ({ what, code: 'ERR_TRACE_FORMAT', run: () => loadTrace(path) })),
        ...cases('path', [...WRONG_TYPES.filter(([, v]) => typeof v !== 'string'), ['undefined', undefined], ['""', ''], ['a path with NUL', 'a\u0000b']], 'ERR_INVALID_OPTION', (v) => loadTrace(v as string)),
      ])
      expect(problems).toEqual([])
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  it('traceFromOps, formatTrace and generateTrace', () => {
    const one = [Uint8Array.of(0), Int32Array.of(0), Float64Array.of(8)] as const
    const problems = withSentinel('traceFromOps', [
      ...cases('numIds', [...WRONG_TYPES, ...BAD_NUMBERS, ['2**31', 2 ** 31], ['2**31 - 1 for one request', 2 ** 31 - 1]], 'ERR_TRACE_FORMAT', (v) => traceFromOps('t', v as number, ...one)),
      ...cases('kinds', [['[0]', [0]], ['null', null], ['an Int8Array', Int8Array.of(0)]], 'ERR_TRACE_FORMAT', (v) => traceFromOps('t', 1, v as Uint8Array, one[1], one[2])),
      ...cases('ids', [['[0]', [0]], ['a Uint32Array', Uint32Array.of(0)]], 'ERR_TRACE_FORMAT', (v) => traceFromOps('t', 1, one[0], v as Int32Array, one[2])),
      ...cases('sizes', [['[8]', [8]], ['a Float32Array', Float32Array.of(8)], ['NaN', Float64Array.of(NaN)], ['-8', Float64Array.of(-8)], ['2**53', Float64Array.of(2 ** 53)]], 'ERR_TRACE_FORMAT', (v) =>
        traceFromOps('t', 1, one[0], one[1], v as Float64Array),
      ),
      ...cases('kind', [['3', 3], ['255', 255]], 'ERR_TRACE_FORMAT', (v) => traceFromOps('t', 1, Uint8Array.of(v as number), one[1], one[2])),
      ...cases('name', [['5', 5], ['null', null]], 'ERR_INVALID_OPTION', (v) => traceFromOps(v as string, 1, ...one)),
    ])
    problems.push(
      ...runCases('formatTrace', sentinel, cases('of', [['null', null], ['{}', {}], ['a trace without header', { ...good, header: undefined }], ['a trace with opCount 99', { ...good, opCount: 99 }]], 'ERR_TRACE_FORMAT', (v) => formatTrace(v as Trace))),
      ...runCases('generateTrace', sentinel, [
        ...cases('kind', [['"foo"', 'foo'], ['null', null], ['42', 42], ['"__proto__"', '__proto__'], ['"toString"', 'toString']], 'ERR_INVALID_OPTION', (v) => generateTrace(v as 'fifo')),
        ...cases('options', [['null', null], ['"x"', 'x'], ['[]', []]], 'ERR_INVALID_OPTION', (v) => generateTrace('fifo', v as never)),
        ...cases('seed', [...WRONG_TYPES.slice(0, 4), ['NaN', NaN], ['1.5', 1.5], ['2**53', 2 ** 53]], 'ERR_INVALID_OPTION', (v) => generateTrace('fifo', { seed: v as number, ops: 10 })),
        ...cases('ops', [['0', 0], ['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['"10"', '10']], 'ERR_INVALID_OPTION', (v) => generateTrace('fifo', { ops: v as number })),
        { what: 'unknown option { opps: 5 }', code: 'ERR_INVALID_OPTION', run: () => generateTrace('fifo', { opps: 5 } as never) },
      ]),
    )
    expect(problems).toEqual([])
  })

  it.runIf(nativeAvailable)('replay: bad traces and options', () => {
    const notTraces: Labelled[] = [
      ['null', null], ['undefined', undefined], ['a string', 'a 0 8'], ['{}', {}], ['[]', []],
      ['a trace with plain arrays', { ...good, kinds: [0, 0, 1, 1] }],
      ['a trace with opCount 99', { ...good, opCount: 99 }],
      ['a trace with numIds 2**31', { ...good, numIds: 2 ** 31 }],
      ['a trace with numIds 2**31 - 1', { ...good, numIds: 2 ** 31 - 1 }],
      ['a trace with numIds -1', { ...good, numIds: -1 }],
      ['a trace with numIds NaN', { ...good, numIds: NaN }],
      ['a trace with numIds "2"', { ...good, numIds: '2' }],
      ['a trace with an id out of range', { ...good, ids: Int32Array.of(0, 5, 0, 1) }],
      ['a trace with a double free', { ...good, kinds: Uint8Array.of(0, 0, 1, 1), ids: Int32Array.of(0, 1, 0, 0) }],
      ['a trace with kind 7', { ...good, kinds: Uint8Array.of(0, 7, 1, 1) }],
      ['a trace with a negative size', { ...good, sizes: Float64Array.of(8, -16, 0, 0) }],
      ['a trace with a NaN size', { ...good, sizes: Float64Array.of(8, NaN, 0, 0) }],
    ]
    const option = (name: string, values: readonly Labelled[]): Case[] =>
      cases(name, values, 'ERR_INVALID_OPTION', (v) => replay(good, { allocator: 'best-fit', [name]: v }))
    const problems = withSentinel('replay', [
      ...cases('trace', notTraces, 'ERR_TRACE_FORMAT', (v) => replay(v as Trace, { allocator: 'libc' })),
      ...cases('trace (best-fit)', notTraces.slice(5), 'ERR_TRACE_FORMAT', (v) => replay(v as Trace, { allocator: 'best-fit' })),
      ...cases('options', [['null', null], ['undefined', undefined], ['"best-fit"', 'best-fit'], ['[]', []]], 'ERR_INVALID_OPTION', (v) => replay(good, v as never)),
      ...option('allocator', [['"tlsf"', 'tlsf'], ['undefined', undefined], ['null', null], ['1', 1], ['"LIBC"', 'LIBC']]),
      ...option('touch', [['"yes"', 'yes'], ['1', 1], ['null', null]]),
      ...option('repeat', [...WRONG_TYPES, ...BAD_NUMBERS, ['0', 0]]),
      ...option('growth', [...WRONG_TYPES, ...BAD_NUMBERS]),
      ...option('alignment', [...WRONG_TYPES, ...BAD_NUMBERS, ['0', 0], ['4', 4], ['24', 24], ['8192', 8192]]),
      ...option('trimThreshold', [...WRONG_TYPES, ...BAD_NUMBERS.filter(([, v]) => v !== Infinity)]),
      ...option('segregateSmall', [...WRONG_TYPES, ...BAD_NUMBERS, ['2**20 + 1', 2 ** 20 + 1]]),
      ...option('source', [['"foo"', 'foo'], ['1', 1], ['null', null]]),
      ...option('unknown', [['1', 1]]),
    ])
    expect(problems).toEqual([])
  })
})

describe('bad CLI flags', () => {
  it('every bad flag value is exit code 2 naming the flag, and nothing runs', async () => {
    // Small settings, so that a flag wrongly accepted costs a moment, not a full bench run.
    const base: Record<string, string> = { '--allocators': 'bump', '--repeat': '1', '--ops': '50' }
    const flagCases: [string, string[]][] = [
      ['--allocators', ['foo', '', ',', 'best-fit,foo', 'BEST-FIT']],
      ['--repeat', ['0', '-1', 'x', '1.5', '1e3', '', 'Infinity', 'NaN', '9007199254740993']],
      ['--growth', ['-1', 'x', '1.5', '', 'Infinity', '2T']],
      ['--alignment', ['3', '0', '8192', 'x', '']],
      ['--segregate-small', ['-1', '2M', 'x']],
      ['--max-live', ['-1', 'x', '']],
      ['--seed', ['x', '-1', '1.5', '']],
      ['--ops', ['0', '-5', 'x', '']],
      ['--svg', ['', '/nonexistent-dir-of-rel-js/x.svg']],
    ]
    const runs: [string, string[], string][] = []
    for (const [flag, values] of flagCases) {
      for (const value of values) {
        const args = { ...base, [flag]: value }
        // An unknown allocator is named by its own name ("unknown allocator \"foo\""), not by the flag.
        runs.push([`${flag} ${JSON.stringify(value)}`, ['bench', ...Object.entries(args).flat()], flag === '--allocators' ? 'allocator' : flag])
      }
    }
    const baseArgs = Object.entries(base).flat()
    runs.push(
      ['--json with --csv', ['bench', ...baseArgs, '--json', '--csv'], '--json'],
      ['an unknown flag', ['bench', ...baseArgs, '--bogus'], '--bogus'],
      ['a flag without its value', ['bench', '--allocators', 'bump', '--repeat'], '--repeat'],
      ['a value for a flag that takes none', ['bench', ...baseArgs, '--no-touch=yes'], '--no-touch'],
      ['--seed with a trace file', ['bench', '--seed', '3', join(tmpdir(), 'x.rep')], '--seed'],
      ['an unknown command', ['benchh'], 'benchh'],
      ['an unknown top-level flag', ['--bogus'], '--bogus'],
    )
    const problems: string[] = []
    for (const [what, argv, mentions] of runs) {
      counts.cases++
      const result = await cli(argv)
      if (result.code !== 2 || result.stdout !== '' || !result.stderr.includes(mentions)) {
        problems.push(`${what}: exit ${result.code}, stdout ${JSON.stringify(result.stdout.slice(0, 80))}, stderr ${JSON.stringify(result.stderr.slice(0, 160))}`)
      }
    }
    // An unreadable trace is a run that failed, not a usage error (DESIGN: exit 1, the others
    // still run): bench names it and goes on.
    counts.cases++
    const missing = await cli(['bench', '--allocators', 'bump', join(tmpdir(), `rel-js-missing-${process.pid}.rep`)])
    if (missing.code !== 1 || !missing.stderr.includes('no such file')) {
      problems.push(`a missing trace file: exit ${missing.code}, stderr ${JSON.stringify(missing.stderr.slice(0, 160))}`)
    }
    expect(problems).toEqual([])
  })
})
