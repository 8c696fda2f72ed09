import { describe, it, expect } from 'vitest'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { AllocatorError } from '../../lib/errors'
import { TraceOp, formatTrace, loadTrace, parseTrace, traceFromOps, type Trace } from '../../lib/trace/trace'

const { Alloc, Free, Realloc } = TraceOp

function traceErrorOf(run: () => unknown): AllocatorError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(AllocatorError)
    expect((error as AllocatorError).code).toBe('ERR_TRACE_FORMAT')
    return error as AllocatorError
  }
  throw new Error('expected ERR_TRACE_FORMAT, but nothing was thrown')
}

function opsOf(trace: Trace): { kinds: number[]; ids: number[]; sizes: number[] } {
  return { kinds: [...trace.kinds], ids: [...trace.ids], sizes: [...trace.sizes] }
}

describe('parseTrace', () => {
  it('reads the classic header (heap size, ids, ops, weight)', () => {
    const trace = parseTrace('20000\n2\n4\n1\na 0 2040\na 1 48\nf 1\nf 0\n', 'classic')
    expect(trace.name).toBe('classic')
    expect(trace.header).toEqual([20000, 2, 4, 1])
    expect(trace.numIds).toBe(2)
    expect(trace.opCount).toBe(4)
    expect(opsOf(trace)).toEqual({
      kinds: [Alloc, Alloc, Free, Free],
      ids: [0, 1, 1, 0],
      sizes: [2040, 48, 0, 0],
    })
    expect(trace.peakLiveBytes).toBe(2088)
    expect(trace.peakLiveChunks).toBe(2)
  })

  it('reads the 2016 header (weight, ids, ops, max_alloc) with \\r\\n line ends', () => {
    const trace = parseTrace('1\r\n3\r\n6\r\n656\r\na 0 568\r\na 1 4\r\nf 0\r\na 2 24\r\nf 1\r\nf 2\r\n')
    expect(trace.name).toBe('trace')
    expect(trace.header).toEqual([1, 3, 6, 656])
    expect(trace.opCount).toBe(6)
    expect(trace.peakLiveBytes).toBe(572)
    expect(trace.ids[5]).toBe(2)
  })

  it('computes peak live bytes with the malloc-lab rule (+a, new-old on r, -current size on f)', () => {
    const text = [
      '0', '3', '10', '0',
      'a 0 100', // 100
      'a 1 50', // 150
      'r 0 300', // 350: the peak
      'f 1', // 300
      'a 2 10', // 310
      'r 0 20', // 30: shrinking lowers the live payload
      'a 1 7', // 37: an id may be allocated again after its free; 3 blocks live
      'f 0', // 17: frees the reallocated size, not the original one
      'f 2', // 7
      'f 1', // 0
    ].join('\n')
    const trace = parseTrace(text)
    expect(trace.peakLiveBytes).toBe(350)
    expect(trace.peakLiveChunks).toBe(3)
  })

  it('accepts f -1 as free(NULL) and r of a dead id as realloc(NULL)', () => {
    const trace = parseTrace('0\n2\n6\n0\nf -1\nr 0 64\nr 0 128\nf 0\nr 0 16\nf 0\n')
    expect(opsOf(trace)).toEqual({
      kinds: [Free, Realloc, Realloc, Free, Realloc, Free],
      ids: [-1, 0, 0, 0, 0, 0],
      sizes: [0, 64, 128, 0, 16, 0],
    })
    expect(trace.peakLiveBytes).toBe(128)
    expect(trace.peakLiveChunks).toBe(1)
  })

  it('tolerates tabs, repeated and trailing whitespace, leading spaces and trailing blank lines', () => {
    const trace = parseTrace(' 0 \n\t2\t\n2  \n0\na\t0   8 \t\n  f 0\t\r\n\n \n\r\n')
    expect(opsOf(trace)).toEqual({ kinds: [Alloc, Free], ids: [0, 0], sizes: [8, 0] })
  })

  it('accepts a last line without a line break', () => {
    expect(parseTrace('0\n1\n2\n0\na 0 8\nf 0').opCount).toBe(2)
  })

  it('keeps sizes beyond 32 bits exact', () => {
    const trace = parseTrace('0\n1\n2\n0\na 0 36507238400\nf 0\n')
    expect(trace.sizes[0]).toBe(36_507_238_400)
    expect(trace.peakLiveBytes).toBe(36_507_238_400)
  })

  it('accepts an empty trace', () => {
    const trace = parseTrace('0\n0\n0\n0\n')
    expect(trace.opCount).toBe(0)
    expect(trace.peakLiveBytes).toBe(0)
  })

  const errorCases: [string, string, number, RegExp][] = [
    ['non-integer header', '20000\nsix\n2\n1\n', 2, /header line 2 \(number of ids\) "six" is not an integer/],
    ['negative header', '-20000\n1\n2\n1\n', 1, /header line 1 .* is negative/],
    ['fractional header', '20000\n1\n2.5\n1\n', 3, /"2\.5" is not an integer/],
    ['header with two numbers on a line', '20000 1\n2\n1\n', 1, /extra field "1"/],
    ['header shorter than 4 lines', '20000\n1\n', 3, /header ends after 2 of its 4 lines/],
    ['empty text', '', 1, /header ends after 0 of its 4 lines/],
    ['empty header line', '20000\n\n2\n1\n', 2, /header line 2 .* is empty/],
    ['too many ids for 32 bits', '0\n4294967296\n0\n0\n', 2, /more than 2147483647/],
    ['unknown request', '0\n1\n1\n0\nx 0 8\n', 5, /unknown request "x"/],
    ['request word that only starts with a', '0\n1\n1\n0\nalloc 0 8\n', 5, /unknown request "alloc"/],
    ['missing id', '0\n1\n1\n0\nf\n', 5, /missing id/],
    ['missing size', '0\n1\n1\n0\na 0\n', 5, /missing size/],
    ['missing size on realloc', '0\n1\n1\n0\nr 0 \n', 5, /missing size/],
    ['extra field on free', '0\n1\n2\n0\na 0 8\nf 0 8\n', 6, /extra field "8"/],
    ['extra field on alloc', '0\n1\n1\n0\na 0 8 9\n', 5, /extra field "9"/],
    ['non-integer id', '0\n1\n1\n0\na zero 8\n', 5, /id "zero" is not an integer/],
    ['non-integer size', '0\n1\n1\n0\na 0 1.5\n', 5, /size "1\.5" is not an integer/],
    ['negative size', '0\n1\n1\n0\na 0 -8\n', 5, /size -8 is negative/],
    ['size beyond 2^53', '0\n1\n1\n0\na 0 90071992547409930\n', 5, /size 90071992547409930 is too large/],
    ['id equal to numIds', '0\n2\n1\n0\na 2 8\n', 5, /id 2 is out of range \(ids run 0\.\.1\)/],
    ['negative id other than f -1', '0\n2\n1\n0\nf -2\n', 5, /id -2 is out of range/],
    ['r -1', '0\n2\n1\n0\nr -1 8\n', 5, /id -1 is out of range/],
    ['a of a live id', '0\n2\n2\n0\na 1 8\na 1 16\n', 6, /allocation of id 1, which is still live/],
    ['free of a never-allocated id', '0\n4\n1\n0\nf 3\n', 5, /free of id 3, which is not live/],
    ['double free', '0\n1\n3\n0\na 0 8\nf 0\nf 0\n', 7, /free of id 0, which is not live/],
    ['fewer requests than the header', '0\n1\n3\n0\na 0 8\nf 0\n', 3, /is 3, but the trace has 2 requests/],
    ['more requests than the header', '0\n1\n1\n0\na 0 8\nf 0\na 0 8\n', 3, /is 1, but the trace has 3 requests/],
    ['empty line between requests', '0\n1\n2\n0\na 0 8\n\nf 0\n', 6, /empty line between requests/],
  ]

  it.each(errorCases)('rejects %s with ERR_TRACE_FORMAT naming the line', (_, text, line, what) => {
    const error = traceErrorOf(() => parseTrace(text, 'x'))
    expect(error.message).toMatch(new RegExp(`^trace "x" line ${line}: `))
    expect(error.message).toMatch(what)
  })

  it('parses a 1,000,000-request trace', () => {
    const numIds = 4096
    const liveWindow = 1000
    const steadyPairs = 499_000
    const lines = ['0', String(numIds), '1000000', '0']
    const sizeOf = (n: number) => 8 + ((n * 2654435761) % 4089)
    let live = 0
    let expectedPeak = 0
    const alloc = (n: number) => {
      lines.push(`a ${n % numIds} ${sizeOf(n)}`)
      live += sizeOf(n)
      expectedPeak = Math.max(expectedPeak, live)
    }
    const free = (n: number) => {
      lines.push(`f ${n % numIds}`)
      live -= sizeOf(n)
    }
    for (let n = 0; n < liveWindow; n++) alloc(n)
    for (let n = 0; n < steadyPairs; n++) {
      free(n)
      alloc(n + liveWindow)
    }
    for (let n = steadyPairs; n < steadyPairs + liveWindow; n++) free(n)

    const trace = parseTrace(lines.join('\n') + '\n', 'million')
    expect(trace.opCount).toBe(1_000_000)
    expect(trace.kinds.length).toBe(1_000_000)
    expect(trace.kinds.filter((kind) => kind === Alloc).length).toBe(500_000)
    expect(trace.ids[999_999]).toBe((steadyPairs + liveWindow - 1) % numIds)
    expect(trace.peakLiveChunks).toBe(liveWindow)
    expect(trace.peakLiveBytes).toBe(expectedPeak)
  })
})

describe('loadTrace', () => {
  const text = '20000\n2\n4\n1\na 0 2040\na 1 48\nf 1\nf 0\n'

  it('loads .rep and .rep.gz files and names the trace after the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'memory-allocator-trace-'))
    try {
      writeFileSync(path.join(dir, 'short-bal.rep'), text)
      writeFileSync(path.join(dir, 'short-gz.rep.gz'), gzipSync(text))
      const plain = loadTrace(path.join(dir, 'short-bal.rep'))
      const gzipped = loadTrace(path.join(dir, 'short-gz.rep.gz'))
      expect(plain.name).toBe('short-bal')
      expect(gzipped.name).toBe('short-gz')
      expect(opsOf(gzipped)).toEqual(opsOf(plain))
      expect(gzipped.peakLiveBytes).toBe(2088)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('names the file in its errors and reports corrupt gzip data as ERR_TRACE_FORMAT', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'memory-allocator-trace-'))
    try {
      writeFileSync(path.join(dir, 'broken.rep'), '0\n1\n1\n0\nq 0\n')
      expect(traceErrorOf(() => loadTrace(path.join(dir, 'broken.rep'))).message).toMatch(/^trace "broken" line 5: /)
      writeFileSync(path.join(dir, 'cut.rep.gz'), gzipSync(text).subarray(0, 20))
      expect(traceErrorOf(() => loadTrace(path.join(dir, 'cut.rep.gz'))).message).toMatch(/not valid gzip data/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('traceFromOps', () => {
  it('computes the statistics and the generated header', () => {
    const trace = traceFromOps(
      'built',
      2,
      Uint8Array.of(Alloc, Alloc, Realloc, Free, Free),
      Int32Array.of(0, 1, 0, 0, 1),
      Float64Array.of(10, 20, 50, 0, 0),
    )
    expect(trace.header).toEqual([0, 2, 5, 70])
    expect(trace.peakLiveBytes).toBe(70)
    expect(trace.peakLiveChunks).toBe(2)
  })

  it('validates like parseTrace, naming the line the request would have in .rep form', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => traceFromOps('t', 1, Uint8Array.of(Free), Int32Array.of(0), Float64Array.of(0)), /line 5: free of id 0, which is not live/],
      [() => traceFromOps('t', 1, Uint8Array.of(Alloc, Alloc), Int32Array.of(0, 0), Float64Array.of(1, 1)), /line 6: allocation of id 0/],
      [() => traceFromOps('t', 1, Uint8Array.of(Alloc), Int32Array.of(1), Float64Array.of(1)), /line 5: id 1 is out of range/],
      [() => traceFromOps('t', 1, Uint8Array.of(7), Int32Array.of(0), Float64Array.of(1)), /line 5: unknown request kind 7/],
      [() => traceFromOps('t', 1, Uint8Array.of(Alloc), Int32Array.of(0), Float64Array.of(1.5)), /size 1\.5 is not a non-negative integer/],
      [() => traceFromOps('t', 1, Uint8Array.of(Free), Int32Array.of(-1), Float64Array.of(3)), /free carries size 3/],
      [() => traceFromOps('t', 1, Uint8Array.of(Alloc), Int32Array.of(0, 0), Float64Array.of(1)), /same length/],
      [() => traceFromOps('t', -1, new Uint8Array(0), new Int32Array(0), new Float64Array(0)), /numIds must be/],
      [() => traceFromOps('t', 1, Uint8Array.of(Alloc), Int32Array.of(0), Float64Array.of(1), [0, 1, 2, 0]), /declares 1 ids and 2 requests/],
    ]
    for (const [run, what] of cases) expect(traceErrorOf(run).message).toMatch(what)
  })
})

describe('formatTrace', () => {
  it('writes text that parses back to the same trace', () => {
    const text = '1\n3\n7\n36507238464\nf -1\na 0 36507238400\nr 1 64\nr 1 32\nf 0\na 2 8\nf 2\n'
    const trace = parseTrace(text, 'x')
    expect(formatTrace(trace)).toBe(text)
    const again = parseTrace(formatTrace(trace), 'x')
    expect(opsOf(again)).toEqual(opsOf(trace))
    expect(again.header).toEqual(trace.header)
  })
})

const malloclabDir = path.resolve(__dirname, '../../../shared/traces/malloclab')
const haveMalloclab = existsSync(malloclabDir)
// A fresh clone has no ../shared: say so, rather than skip in silence.
const malloclabSkipReason = `skipped: ${malloclabDir} does not exist (the malloc-lab traces are read from ../shared/traces/malloclab beside the repository, never copied into it)`
if (!haveMalloclab) console.warn(`malloc-lab trace tests ${malloclabSkipReason}`)

describe.skipIf(!haveMalloclab)(haveMalloclab ? 'malloc-lab traces' : `malloc-lab traces (${malloclabSkipReason})`, () => {
  const classic = haveMalloclab ? readdirSync(malloclabDir).filter((file) => file.endsWith('.rep')) : []
  const cmu2016Dir = path.join(malloclabDir, 'cmu-15213-2016')
  const cmu2016 = haveMalloclab && existsSync(cmu2016Dir) ? readdirSync(cmu2016Dir).filter((file) => file.endsWith('.rep')) : []

  it('finds both sets', () => {
    expect(classic.length).toBeGreaterThanOrEqual(11)
    expect(cmu2016.length).toBeGreaterThanOrEqual(20)
  })

  it.each(classic)('parses %s with as many requests as its header says', (file) => {
    const trace = loadTrace(path.join(malloclabDir, file))
    expect(trace.opCount).toBe(trace.header[2])
    expect(trace.name).toBe(file.replace(/\.rep$/, ''))
  })

  it.each(cmu2016)('parses cmu-15213-2016/%s and computes its header max_alloc as peak live bytes', (file) => {
    const trace = loadTrace(path.join(cmu2016Dir, file))
    expect(trace.opCount).toBe(trace.header[2])
    expect(trace.peakLiveBytes).toBe(trace.header[3])
  })

  it.each([
    ['amptjp-bal', 2_012_279, 932],
    ['binary-bal', 1_152_000, 4000],
    ['binary2-bal', 576_000, 8000],
    ['coalescing-bal', 8190, 2],
    ['realloc-bal', 615_040, 3],
    ['realloc2-bal', 28_119, 3],
    ['random-bal', 15_612_491, 927],
  ])('%s has the README peak live payload %d in %d blocks', (name, peakBytes, peakChunks) => {
    const trace = loadTrace(path.join(malloclabDir, `${name}.rep`))
    expect(trace.peakLiveBytes).toBe(peakBytes)
    expect(trace.peakLiveChunks).toBe(peakChunks)
  })

  it('keeps the 36 GB request of syn-largemem-short exact', () => {
    const trace = loadTrace(path.join(cmu2016Dir, 'syn-largemem-short.rep'))
    expect(Math.max(...trace.sizes)).toBe(36_507_238_400)
    expect(trace.peakLiveBytes).toBe(38_654_727_413)
  })
})
