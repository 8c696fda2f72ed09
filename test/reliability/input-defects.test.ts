/**
 * The JS-side input defects of issue 7, one test each: inputs that were accepted, ignored, or
 * answered with a raw TypeError / ENOENT instead of an AllocatorError with its code.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHeap, loadTrace, parseTrace, replay, traceFromOps, type Trace } from '../../lib/index'
import { ID_ALLOWANCE } from '../../lib/trace/trace'
import { BACKENDS, closeHeaps, errorOf, expectCode, expectRefusal, heapOn, nativeAvailable } from './support'

afterEach(closeHeaps)

describe.each(BACKENDS)('%s backend', (backend) => {
  it('alloc refuses align 0 with ERR_INVALID_ALIGNMENT, leaving the heap as it was', () => {
    const heap = heapOn(backend)
    heap.alloc(24)
    expectRefusal(heap, () => heap.alloc(8, { align: 0 }), 'ERR_INVALID_ALIGNMENT', 'got 0')
    expectRefusal(heap, () => heap.alloc(8, { align: 0, zero: true }), 'ERR_INVALID_ALIGNMENT')
    expect(heap.alloc(8, { align: 1 }).live).toBe(true)
  })

  it('createHeap refuses an array as options', () => {
    expectCode(() => createHeap([] as never), 'ERR_INVALID_OPTION', 'options must be an object', 'an array')
    expectCode(() => createHeap({ backend, extra: 1 } as never), 'ERR_INVALID_OPTION', '"extra"')
  })

  it('alloc refuses an array as options', () => {
    const heap = heapOn(backend)
    expectRefusal(heap, () => heap.alloc(8, [] as never), 'ERR_INVALID_OPTION', 'an array')
  })
})

describe('options a bump heap cannot honour are refused the same way on both backends', () => {
  const beyondBump = [
    [{ split: true }, 'split: true'],
    [{ coalesce: true }, 'coalesce: true'],
    [{ segregateSmall: 64 }, 'segregateSmall: 64'],
  ] as const

  it.each(beyondBump)('js heap: %o is ERR_UNSUPPORTED naming the option', (option, named) => {
    expectCode(() => createHeap({ backend: 'js', ...option }), 'ERR_UNSUPPORTED', named, 'the js heap')
  })

  it.runIf(nativeAvailable).each(beyondBump)("native strategy 'bump': %o is ERR_UNSUPPORTED naming the option", (option, named) => {
    expectCode(() => createHeap({ backend: 'native', strategy: 'bump', ...option }), 'ERR_UNSUPPORTED', named, "strategy 'bump'")
  })

  it('names every such option at once', () => {
    expectCode(() => createHeap({ backend: 'js', split: true, coalesce: true }), 'ERR_UNSUPPORTED', 'split: true, coalesce: true')
  })

  it('accepts what a bump heap does anyway: split and coalesce false, segregateSmall 0', () => {
    for (const backend of BACKENDS) {
      const heap = heapOn(backend, { strategy: 'bump', split: false, coalesce: false, segregateSmall: 0 })
      expect(heap.strategy).toBe('bump')
      heap.alloc(8).free()
    }
  })

  it.runIf(nativeAvailable)('free-table strategies still take them', () => {
    const heap = heapOn('native', { strategy: 'first-fit', split: true, coalesce: true, segregateSmall: 64 })
    heap.alloc(8).free()
    heap.check()
  })
})

describe('replay input', () => {
  const trace = parseTrace('0\n1\n2\n0\na 0 8\nf 0\n', 'tiny')

  it("refuses source 'foo'", () => {
    expectCode(() => replay(trace, { allocator: 'best-fit', source: 'foo' as 'brk' }), 'ERR_INVALID_OPTION', 'source', '"foo"')
  })

  it('refuses unknown option keys, naming the key', () => {
    expectCode(() => replay(trace, { allocator: 'best-fit', repeats: 3 } as never), 'ERR_INVALID_OPTION', '"repeats"')
  })

  it('refuses options that are not an object', () => {
    for (const options of [null, undefined, 'best-fit', [], 7]) {
      expectCode(() => replay(trace, options as never), 'ERR_INVALID_OPTION', 'replay options must be an object')
    }
  })

  it('answers replay(null, ...) and other non-traces with ERR_TRACE_FORMAT, not a TypeError', () => {
    for (const notATrace of [null, undefined, 42, 'a 0 8', {}, []]) {
      expectCode(() => replay(notATrace as never, { allocator: 'libc' }), 'ERR_TRACE_FORMAT')
    }
  })

  it('refuses a hand-built trace whose arrays disagree', () => {
    const bad: Trace[] = [
      { ...trace, kinds: [0, 1] as never },
      { ...trace, ids: new Int32Array(3) },
      { ...trace, opCount: 5 },
      { ...trace, numIds: -1 },
      { ...trace, numIds: 1.5 },
      { ...trace, numIds: NaN },
    ]
    for (const hostile of bad) expectCode(() => replay(hostile, { allocator: 'libc' }), 'ERR_TRACE_FORMAT')
  })
})

describe('loadTrace', () => {
  it('reports a missing file as ERR_TRACE_FORMAT naming the path, with the system error as cause', () => {
    const path = join(tmpdir(), `no-such-trace-${process.pid}.rep`)
    const error = expectCode(() => loadTrace(path), 'ERR_TRACE_FORMAT', path, 'ENOENT')
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOENT')
  })

  it('reports a directory as ERR_TRACE_FORMAT', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rel-js-'))
    try {
      expectCode(() => loadTrace(dir), 'ERR_TRACE_FORMAT', 'EISDIR')
    } finally {
      rmSync(dir, { recursive: true })
    }
  })

  it('refuses a path that is not a non-empty string with ERR_INVALID_OPTION', () => {
    for (const path of [undefined, null, 42, '', 'a\0b', {}]) expectCode(() => loadTrace(path as never), 'ERR_INVALID_OPTION')
  })
})

describe('hostile id counts are ERR_TRACE_FORMAT before anything is allocated', () => {
  it('parseTrace: a header with 2147483647 ids and a two-request body', () => {
    const error = expectCode(() => parseTrace('0\n2147483647\n2\n0\na 0 8\nf 0\n', 'hostile'), 'ERR_TRACE_FORMAT', 'line 2', '2147483647')
    expect(error.message).toContain('more than the trace can use')
  })

  it('parseTrace: a header that also claims 2147483647 requests is bounded by the text', () => {
    expectCode(() => parseTrace('0\n2147483647\n2147483647\n0\na 2147483646 8\n', 'hostile'), 'ERR_TRACE_FORMAT', 'line 2')
  })

  it('parseTrace: an id far beyond what the body could use in a short text', () => {
    const before = process.memoryUsage().arrayBuffers
    expectCode(() => parseTrace('0\n100000000\n100000000\n0\na 99999999 8\n', 'sparse'), 'ERR_TRACE_FORMAT', 'line 2')
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20)
  })

  it(`parseTrace still takes up to ${ID_ALLOWANCE} declared ids, or one per request`, () => {
    expect(parseTrace(`0\n${ID_ALLOWANCE}\n2\n0\na ${ID_ALLOWANCE - 1} 8\nf ${ID_ALLOWANCE - 1}\n`).numIds).toBe(ID_ALLOWANCE)
    expectCode(() => parseTrace(`0\n${ID_ALLOWANCE + 1}\n2\n0\na 0 8\nf 0\n`), 'ERR_TRACE_FORMAT', 'line 2')
  })

  it('traceFromOps: numIds 2**31 and 2**31 - 1 with a few requests', () => {
    const ops = [Uint8Array.of(0, 1), Int32Array.of(0, 0), Float64Array.of(8, 0)] as const
    expectCode(() => traceFromOps('t', 2 ** 31, ...ops), 'ERR_TRACE_FORMAT', 'numIds')
    expectCode(() => traceFromOps('t', 2 ** 31 - 1, ...ops), 'ERR_TRACE_FORMAT', 'numIds 2147483647')
  })

  it.runIf(nativeAvailable)('replay: a hand-built Trace with numIds 2**31 or 2**31 - 1', () => {
    const trace = parseTrace('0\n1\n2\n0\na 0 8\nf 0\n', 'tiny')
    for (const numIds of [2 ** 31, 2 ** 31 - 1, 2 ** 40]) {
      const error = errorOf(() => replay({ ...trace, numIds }, { allocator: 'libc' }))
      expect(error.code, error.message).toBe('ERR_TRACE_FORMAT')
      expect(error.message).toContain('numIds')
    }
  })
})

describe('trace arguments of the wrong type', () => {
  it('parseTrace of a non-string is ERR_TRACE_FORMAT; a non-string name is ERR_INVALID_OPTION', () => {
    for (const text of [undefined, null, 42, Buffer.from('0\n0\n0\n0\n')]) expectCode(() => parseTrace(text as never), 'ERR_TRACE_FORMAT', 'must be a string')
    expectCode(() => parseTrace('0\n0\n0\n0\n', 5 as never), 'ERR_INVALID_OPTION', 'name')
  })

  it('traceFromOps of plain arrays is ERR_TRACE_FORMAT', () => {
    expectCode(() => traceFromOps('t', 1, [0] as never, Int32Array.of(0), Float64Array.of(8)), 'ERR_TRACE_FORMAT', 'kinds must be a Uint8Array')
    expectCode(() => traceFromOps('t', 1, Uint8Array.of(0), null as never, Float64Array.of(8)), 'ERR_TRACE_FORMAT', 'ids must be an Int32Array')
    expectCode(() => traceFromOps('t', 1, Uint8Array.of(0), Int32Array.of(0), Float64Array.of(8), 'x' as never), 'ERR_TRACE_FORMAT', 'header')
  })

  it('loadTrace of a readable file with a hostile header is ERR_TRACE_FORMAT naming the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rel-js-'))
    try {
      const path = join(dir, 'hostile.rep')
      writeFileSync(path, '0\n2147483647\n1\n0\na 0 8\n')
      expectCode(() => loadTrace(path), 'ERR_TRACE_FORMAT', 'line 2')
    } finally {
      rmSync(dir, { recursive: true })
    }
  })
})
