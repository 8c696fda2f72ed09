import { describe, expect, it } from 'vitest'
import { AllocatorError } from '../../lib/errors'
import {
  CSV_HEADER,
  attachLibcRatios,
  csvEscape,
  formatDuration,
  formatInteger,
  formatNumber,
  formatPercent,
  formatProgress,
  formatReportCsv,
  formatReportTables,
  formatTable,
  geometricMean,
  humanBytes,
  parseByteSize,
  ratio,
  summarize,
  toCsv,
} from '../../lib/render/format'
import { runBench, type LoadedTrace } from '../../lib/bench/run'
import { axisCap, escapeXml, logTicks, renderSvg } from '../../lib/render/bench-svg'
import type { BenchOptions, BenchReport, BenchResult } from '../../lib/bench/types'
import type { ReplayOptions, ReplayResult } from '../../lib/replay/replay'
import type { Trace } from '../../lib/trace/trace'
import { generateTrace } from '../../lib/trace/workloads'

function result(trace: string, allocator: string, nsPerOp: number | null, extra: Partial<BenchResult> = {}): BenchResult {
  const libc = allocator === 'libc'
  return {
    allocator,
    trace,
    ops: 1000,
    nsPerOp,
    runsNsPerOp: nsPerOp === null ? [] : [nsPerOp],
    peakLiveBytes: 1000,
    peakHeapBytes: libc || nsPerOp === null ? null : 2000,
    utilization: libc || nsPerOp === null ? null : 0.5,
    metadataBytes: libc || nsPerOp === null ? null : 100,
    brkCalls: libc || nsPerOp === null ? null : 3,
    searchSteps: libc || nsPerOp === null ? null : 1500,
    ratioToLibc: null,
    failed: null,
    ...extra,
  }
}

const OPTIONS: BenchOptions = { allocators: ['best-fit', 'bump', 'libc'], repeat: 1, touch: true, growth: 65536, segregateSmall: 0, alignment: 16, maxLiveBytes: 2 ** 32 }

/** Two traces; bump runs out of memory on the second. */
function sampleReport(): BenchReport {
  const results = attachLibcRatios([
    result('t1', 'best-fit', 40),
    result('t1', 'bump', 20),
    result('t1', 'libc', 20),
    result('t2', 'best-fit', 90),
    result('t2', 'bump', null, { failed: 'ERR_OUT_OF_MEMORY', failureMessage: 'out of memory' }),
    result('t2', 'libc', 30),
  ])
  return {
    options: OPTIONS,
    traces: [
      { name: 't1', source: 'built-in', ops: 1000, peakLiveBytes: 1000, peakLiveChunks: 10 },
      { name: 't2', source: '/tmp/t2.rep', ops: 1000, peakLiveBytes: 1000, peakLiveChunks: 10 },
    ],
    skipped: [{ name: 'huge', source: '/tmp/huge.rep', peakLiveBytes: 2 ** 35, reason: 'needs 32.0 GiB live at its peak, more than --max-live 4.00 GiB' }],
    errors: [],
    results,
  }
}

describe('aggregation', () => {
  it('geometricMean', () => {
    expect(geometricMean([])).toBeNull()
    expect(geometricMean([4])).toBe(4)
    expect(geometricMean([1, 100])).toBeCloseTo(10, 12)
    expect(geometricMean([2, 8, 4])).toBeCloseTo(4, 12)
    expect(() => geometricMean([1, 0])).toThrow(RangeError)
    expect(() => geometricMean([1, -1])).toThrow(RangeError)
    expect(() => geometricMean([1, NaN])).toThrow(RangeError)
  })

  it('ratio', () => {
    expect(ratio(30, 10)).toBe(3)
    expect(ratio(null, 10)).toBeNull()
    expect(ratio(10, null)).toBeNull()
    expect(ratio(10, undefined)).toBeNull()
    expect(ratio(10, 0)).toBeNull()
    expect(ratio(0, 10)).toBe(0)
  })

  it('attachLibcRatios uses the libc cell of the same trace', () => {
    const report = sampleReport()
    const get = (trace: string, allocator: string) => report.results.find((r) => r.trace === trace && r.allocator === allocator)!
    expect(get('t1', 'best-fit').ratioToLibc).toBe(2)
    expect(get('t1', 'libc').ratioToLibc).toBe(1)
    expect(get('t2', 'best-fit').ratioToLibc).toBe(3)
    expect(get('t2', 'bump').ratioToLibc).toBeNull()
    // No libc run: no ratios.
    const withoutLibc = attachLibcRatios([result('t', 'best-fit', 10)])
    expect(withoutLibc[0].ratioToLibc).toBeNull()
  })

  it('summarize leaves failed traces out of the means and lists them', () => {
    const summary = summarize(sampleReport().results, OPTIONS.allocators)
    expect(summary.map((s) => s.allocator)).toEqual(['best-fit', 'bump', 'libc'])
    const [bestFit, bump, libc] = summary
    expect(bestFit.traces).toBe(2)
    expect(bestFit.failed).toEqual([])
    expect(bestFit.geomeanNsPerOp).toBeCloseTo(60, 10) // sqrt(40 * 90)
    expect(bestFit.geomeanRatioToLibc).toBeCloseTo(Math.sqrt(6), 10)
    expect(bestFit.geomeanUtilization).toBeCloseTo(0.5, 12)
    expect(bestFit.geomeanHeapToLive).toBeCloseTo(2, 12)
    expect(bump.traces).toBe(1)
    expect(bump.failed).toEqual([{ trace: 't2', code: 'ERR_OUT_OF_MEMORY' }])
    expect(bump.geomeanNsPerOp).toBeCloseTo(20, 10)
    expect(libc.geomeanUtilization).toBeNull()
    expect(libc.geomeanRatioToLibc).toBeCloseTo(1, 12)
  })
})

describe('numbers', () => {
  it('humanBytes', () => {
    expect(humanBytes(0)).toBe('0 B')
    expect(humanBytes(512)).toBe('512 B')
    expect(humanBytes(1023)).toBe('1023 B')
    expect(humanBytes(1024)).toBe('1.00 KiB')
    expect(humanBytes(1536)).toBe('1.50 KiB')
    expect(humanBytes(65536)).toBe('64.0 KiB')
    expect(humanBytes(1_590_426)).toBe('1.52 MiB')
    expect(humanBytes(1023.9 * 1024)).toBe('1.00 MiB')
    expect(humanBytes(38_654_727_413)).toBe('36.0 GiB')
    expect(humanBytes(null)).toBe('—')
  })

  it('formatNumber, formatInteger, formatPercent', () => {
    expect(formatInteger(1234567)).toBe('1,234,567')
    expect(formatInteger(-1234.4)).toBe('-1,234')
    expect(formatInteger(12)).toBe('12')
    expect(formatNumber(0)).toBe('0.00')
    expect(formatNumber(0.1234)).toBe('0.123')
    expect(formatNumber(5.714)).toBe('5.71')
    expect(formatNumber(57.14)).toBe('57.1')
    expect(formatNumber(571.4)).toBe('571')
    expect(formatNumber(5714.4)).toBe('5,714')
    expect(formatNumber(null)).toBe('—')
    expect(formatPercent(0.96671)).toBe('96.7%')
    expect(formatPercent(1)).toBe('100.0%')
    expect(formatPercent(0)).toBe('0.0%')
    expect(formatPercent(0.00043)).toBe('0.043%')
    expect(formatPercent(null)).toBe('—')
  })

  it('parseByteSize', () => {
    expect(parseByteSize('0')).toBe(0)
    expect(parseByteSize('65536')).toBe(65536)
    expect(parseByteSize('64K')).toBe(65536)
    expect(parseByteSize('64KiB')).toBe(65536)
    expect(parseByteSize('64kb')).toBe(65536)
    expect(parseByteSize('4G')).toBe(4 * 2 ** 30)
    expect(parseByteSize('1.5M')).toBe(1.5 * 2 ** 20)
    expect(parseByteSize('1_000_000')).toBe(1_000_000)
    expect(parseByteSize('-1')).toBeUndefined()
    expect(parseByteSize('lots')).toBeUndefined()
    expect(parseByteSize('1.5')).toBeUndefined()
    expect(parseByteSize('')).toBeUndefined()
  })

  it('formatDuration', () => {
    expect(formatDuration(950)).toBe('950 ms')
    expect(formatDuration(12_345)).toBe('12.3 s')
    expect(formatDuration(125_000)).toBe('2m05s')
    expect(formatDuration(3_725_000)).toBe('1h02m05s')
  })
})

describe('tables', () => {
  it('formatTable pads, right-aligns numbers and trims line ends', () => {
    const text = formatTable(
      [
        { header: 'name', align: 'left' },
        { header: 'n', align: 'right' },
      ],
      [
        ['a', '1'],
        ['long name', '1,234'],
      ],
    )
    expect(text.split('\n')).toEqual(['name           n', '---------  -----', 'a              1', 'long name  1,234'])
    expect(() => formatTable([{ header: 'x', align: 'left' }], [['a', 'b']])).toThrow(RangeError)
  })

  it('formatReportTables has a row per allocator, failures, skips and footnotes', () => {
    const report = sampleReport()
    const text = formatReportTables(report, summarize(report.results, OPTIONS.allocators))
    const lines = text.split('\n')
    expect(lines.filter((line) => /^best-fit\s/.test(line))).toHaveLength(3) // two traces + summary
    expect(lines.filter((line) => /^libc\s/.test(line))).toHaveLength(3)
    const t1BestFit = lines.find((line) => line.startsWith('best-fit '))!
    expect(t1BestFit).toMatch(/^best-fit\s+40\.0\s+2\.00\s+1\.95 KiB\s+1000 B\s+2\.00\s+50\.0%\s+100 B\s+10\.0%\s+3\s+1\.50$/)
    expect(lines.find((line) => /^libc\s/.test(line))).toMatch(/^libc\s+20\.0\s+1\.00\s+—\s+1000 B(\s+—){6}$/)
    expect(lines.some((line) => /^bump\s+oom\s+—\s+—\s+1000 B(\s+—){6}$/.test(line))).toBe(true)
    expect(text).toContain('huge  (/tmp/huge.rep): skipped: needs 32.0 GiB')
    expect(text).toMatch(/^bump\s+1\s+20\.0\s+1\.00\s+50\.0%\s+2\.00\s+1\*$/m)
    expect(text).toContain('bump: t2 (oom)')
    expect(text).toContain('--growth 0')
  })
})

describe('csv', () => {
  it('csvEscape and toCsv', () => {
    expect(csvEscape('plain')).toBe('plain')
    expect(csvEscape('a,b')).toBe('"a,b"')
    expect(csvEscape('say "hi"')).toBe('"say ""hi"""')
    expect(csvEscape('two\nlines')).toBe('"two\nlines"')
    expect(csvEscape(null)).toBe('')
    expect(csvEscape(undefined)).toBe('')
    expect(csvEscape(1.5)).toBe('1.5')
    expect(csvEscape(NaN)).toBe('')
    expect(toCsv([['a', 'b'], [1, null]])).toBe('a,b\n1,\n')
  })

  it('formatReportCsv: a header and one row per trace × allocator', () => {
    const lines = formatReportCsv(sampleReport()).trimEnd().split('\n')
    expect(lines[0]).toBe(CSV_HEADER.join(','))
    expect(lines).toHaveLength(7)
    const rows = lines.slice(1).map((line) => line.split(','))
    expect(rows.every((row) => row.length === CSV_HEADER.length)).toBe(true)
    const bestFit = Object.fromEntries(CSV_HEADER.map((key, i) => [key, rows[0][i]]))
    expect(bestFit).toMatchObject({ trace: 't1', allocator: 'best-fit', ns_per_op: '40', ratio_to_libc: '2', utilization: '0.5', search_steps_per_op: '1.5', failed: '' })
    expect(rows[4]).toContain('ERR_OUT_OF_MEMORY')
  })
})

describe('progress', () => {
  it('formatProgress fits the width', () => {
    const state = { done: 3, total: 12, traceIndex: 1, traceCount: 4, trace: 'random-churn', allocator: 'best-fit-linear', elapsedMs: 4200 }
    const line = formatProgress(state, 200)
    expect(line).toBe('[#####...............]  3/12  trace 2/4 random-churn  best-fit-linear  4.2 s')
    expect(formatProgress(state, 40).length).toBeLessThanOrEqual(40)
    expect(formatProgress({ ...state, done: 12 }, 200)).toMatch(/^\[#{20}\]/)
  })
})

/** Checks that every tag is closed in order (a well-formedness check without an XML parser). */
function assertBalancedTags(svg: string): void {
  const stack: string[] = []
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z]+)\b[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match
    if (selfClosing) continue
    if (closing) expect(stack.pop(), `closing </${name}>`).toBe(name)
    else stack.push(name)
  }
  expect(stack).toEqual([])
  expect(svg).not.toMatch(/&(?!(amp|lt|gt|quot|#39);)/)
}

describe('svg', () => {
  it('escapeXml', () => {
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&#39;')
  })

  it('logTicks covers the values with 1-2-5 steps, or decades for wide ranges', () => {
    expect(logTicks(1, 4.2)).toEqual([1, 2, 5])
    expect(logTicks(0.77, 19.9)).toEqual([0.5, 1, 2, 5, 10, 20])
    const wide = logTicks(0.8, 2013)
    expect(wide[0]).toBe(0.5)
    expect(wide.at(-1)).toBe(5000)
    expect(wide).toContain(1)
    expect(wide).toContain(1000)
    expect(wide.length).toBeLessThanOrEqual(8)
  })

  it('axisCap cuts only far outliers', () => {
    const even = Array.from({ length: 100 }, (_, i) => 1 + i / 10)
    expect(axisCap(even)).toBe(Infinity)
    expect(axisCap([...even.slice(1), 2000])).toBeCloseTo(10.8, 12)
    expect(axisCap([1, 2, 2000])).toBe(Infinity) // too few values to call anything an outlier
  })

  it('renderSvg: a self-contained chart with every trace, allocator and failure', () => {
    const report = sampleReport()
    report.traces[0].name = 'a<b>&c'
    for (const r of report.results) if (r.trace === 't1') r.trace = 'a<b>&c'
    const svg = renderSvg(report, summarize(report.results, OPTIONS.allocators), { subtitle: 'Node test · CPU' })
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
    assertBalancedTags(svg)
    expect(svg).toContain('a&lt;b&gt;&amp;c')
    expect(svg).toContain('>t2<')
    expect(svg).toContain('geometric mean')
    expect(svg).toContain('1.00× (1/2)') // bump's mean covers one of the two traces
    expect(svg).toContain('>best-fit<')
    expect(svg).toContain('>bump<')
    expect(svg).toContain('>oom<title>')
    expect(svg).toContain('libc (1×')
    expect(svg).toContain('Node test · CPU')
    expect(svg).toContain('Skipped huge')
    expect(svg).not.toMatch(/<script|href=|@import|url\(/)
  })

  it('renderSvg without libc plots ns/op; with no traces it still renders', () => {
    const report = sampleReport()
    report.options = { ...OPTIONS, allocators: ['best-fit', 'bump'] }
    report.results = attachLibcRatios(report.results.filter((r) => r.allocator !== 'libc'))
    const svg = renderSvg(report, summarize(report.results, report.options.allocators))
    assertBalancedTags(svg)
    expect(svg).toContain('Time per request, ns')
    expect(svg).toContain('40.0 ns')
    const empty = renderSvg({ ...report, traces: [], results: [], skipped: [] }, [])
    assertBalancedTags(empty)
    expect(empty).toContain('No traces were run.')
  })
})

describe('runBench with a stand-in replay', () => {
  const small = generateTrace('lifo', { ops: 200 })
  const loaded: LoadedTrace[] = [
    { name: 'lifo', source: 'built-in', trace: small },
    { name: 'big', source: '/x/big.rep', trace: { ...small, name: 'big', peakLiveBytes: 2 ** 40 } },
  ]
  const fake = (trace: Trace, options: ReplayOptions): ReplayResult => {
    if (options.allocator === 'bump') throw new AllocatorError('ERR_OUT_OF_MEMORY', 'bump: out of memory')
    if (options.allocator === 'worst-fit') throw new AllocatorError('ERR_HEAP_CORRUPT', 'broken')
    const libc = options.allocator === 'libc'
    return {
      allocator: options.allocator,
      trace: trace.name,
      ops: trace.opCount,
      nsPerOp: libc ? 10 : 25,
      runsNsPerOp: [libc ? 10 : 25],
      peakLiveBytes: trace.peakLiveBytes,
      peakHeapBytes: libc ? null : trace.peakLiveBytes * 2,
      utilization: libc ? null : 0.5,
      metadataBytes: libc ? null : 64,
      brkCalls: libc ? null : 1,
      searchSteps: libc ? null : 0,
    }
  }

  it('records failures, warns about unexpected ones, skips traces over --max-live', () => {
    const warnings: string[] = []
    const events: number[] = []
    const options: BenchOptions = { ...OPTIONS, allocators: ['best-fit', 'bump', 'worst-fit', 'libc'], maxLiveBytes: 2 ** 32 }
    const report = runBench(loaded, options, { replay: fake, warmUp: false, onWarning: (m) => warnings.push(m), onProgress: (e) => events.push(e.done) })
    expect(report.skipped).toEqual([expect.objectContaining({ name: 'big', reason: expect.stringMatching(/^needs 1.00 TiB/) })])
    expect(report.traces.map((t) => t.name)).toEqual(['lifo'])
    expect(report.results.map((r) => [r.allocator, r.failed])).toEqual([
      ['best-fit', null],
      ['bump', 'ERR_OUT_OF_MEMORY'],
      ['worst-fit', 'ERR_HEAP_CORRUPT'],
      ['libc', null],
    ])
    expect(report.results[0].ratioToLibc).toBe(2.5)
    expect(warnings).toEqual([expect.stringContaining('worst-fit failed on lifo: ERR_HEAP_CORRUPT')])
    expect(events).toEqual([0, 1, 2, 3, 4])
  })

  it('stops on errors that end the run', () => {
    const unsupported = () => {
      throw new AllocatorError('ERR_UNSUPPORTED', 'no addon')
    }
    expect(() => runBench(loaded.slice(0, 1), OPTIONS, { replay: unsupported, warmUp: false })).toThrow(/no addon/)
  })
})
