/**
 * The command line's rough edges as a new user meets them (issue 8, item 6), and DESIGN's exit
 * codes: 0 done, 1 a run failed (the others still ran), 2 a usage error (nothing ran).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { attachLibcRatios, summarize } from '../../lib/render/format'
import { renderSvg } from '../../lib/render/bench-svg'
import type { BenchReport, BenchResult } from '../../lib/bench/types'
import { BENCH_HELP } from '../../lib/cli/bench'
import { colorWanted } from '../../lib/cli/support'
import { formatTrace } from '../../lib/trace/trace'
import { generateTrace } from '../../lib/trace/workloads'
import { run } from './helpers'

let dir: string
let good: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'memory-allocator-edges-'))
  good = join(dir, 'good.rep')
  writeFileSync(good, formatTrace(generateTrace('lifo', { seed: 2, ops: 300 })))
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('bench option values', () => {
  it.each([
    [['--repeat', '-1'], /--repeat must be an integer >= 1, got "-1"/],
    [['--growth', '-5'], /--growth must be a byte count like 65536, 64K or 4G, got "-5"/],
    [['--seed', '-1'], /--seed must be an integer >= 0, got "-1"/],
    [['--ops', '-100'], /--ops must be an integer >= 1, got "-100"/],
    [['--svg', '--ops', '100'], /option --svg needs a file name/],
    [['--allocators', '--json'], /option --allocators needs a list of allocators/],
    [['--repeat'], /option --repeat needs a value/],
  ])('bench %j is a usage error that says what is wrong', async (args, message) => {
    const result = await run(['bench', ...args])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
    expect(result.stderr).not.toMatch(/takes no value/)
    expect(result.stdout).toBe('')
  })

  it('--svg naming a directory fails before anything runs', async () => {
    const started = performance.now()
    const result = await run(['bench', '--svg', tmpdir(), '--repeat', '1'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--svg .* is a directory; give a file name/)
    expect(result.stdout).toBe('')
    // Nothing was replayed: the built-in workloads take seconds.
    expect(performance.now() - started).toBeLessThan(1500)
  })
})

describe('bench trace arguments', () => {
  it('a missing trace is reported, the others still run, exit 1', async () => {
    const missing = join(dir, 'nonexistent.rep')
    const result = await run(['bench', good, missing, '--repeat', '1', '--allocators', 'best-fit'])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`no such file or directory: ${missing}`)
    expect(result.stdout).toMatch(/^good {2}\(\d+ ops/m)
    expect(BENCH_HELP).toMatch(/1 a trace could not be read or parsed/)
  })

  it('a directory without traces is reported the same way', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'))
    const result = await run(['bench', empty, good, '--repeat', '1', '--allocators', 'libc'])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`no .rep or .rep.gz files in directory ${empty}`)
    expect(result.stdout).toMatch(/^good {2}\(/m)
  })
})

function cell(trace: string, allocator: string, nsPerOp: number | null): BenchResult {
  const ours = allocator !== 'libc' && nsPerOp !== null
  return {
    allocator,
    trace,
    ops: 100,
    nsPerOp,
    runsNsPerOp: nsPerOp === null ? [] : [nsPerOp],
    peakLiveBytes: 100,
    peakHeapBytes: ours ? 200 : null,
    utilization: ours ? 0.5 : null,
    metadataBytes: ours ? 10 : null,
    brkCalls: ours ? 1 : null,
    searchSteps: ours ? 100 : null,
    ratioToLibc: null,
    failed: nsPerOp === null ? 'ERR_OUT_OF_MEMORY' : null,
  }
}

function report(results: BenchResult[], traces: string[]): BenchReport {
  return {
    options: { allocators: ['best-fit', 'bump', 'libc'], repeat: 1, touch: true, growth: 0, segregateSmall: 0, alignment: 16, maxLiveBytes: 2 ** 32 },
    traces: traces.map((name) => ({ name, source: 'built-in', ops: 100, peakLiveBytes: 100, peakLiveChunks: 1 })),
    skipped: [],
    errors: [],
    results: attachLibcRatios(results),
  }
}

describe('the bench chart footnote', () => {
  it('explains the (done/all) suffix only when a mean leaves traces out, with its real figures', () => {
    const allRan = report(['a', 'b', 'c'].flatMap((t) => [cell(t, 'best-fit', 40), cell(t, 'bump', 20), cell(t, 'libc', 20)]), ['a', 'b', 'c'])
    const clean = renderSvg(allRan, summarize(allRan.results, allRan.options.allocators))
    expect(clean).not.toContain('10/13')
    expect(clean).not.toContain('failed traces are left out')

    const bumpFailsOne = report(
      ['a', 'b', 'c'].flatMap((t) => [cell(t, 'best-fit', 40), cell(t, 'bump', t === 'b' ? null : 20), cell(t, 'libc', 20)]),
      ['a', 'b', 'c'],
    )
    const partial = renderSvg(bumpFailsOne, summarize(bumpFailsOne.results, bumpFailsOne.options.allocators))
    expect(partial).toContain('(&quot;(2/3)&quot;: 2 of 3 traces)')
    expect(partial).not.toContain('10/13')
  })
})

describe('the README synopsis', () => {
  it('lists every option of bench --help', () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8')
    const synopsis = readme.split('\n').find((line) => line.startsWith('`memory-allocator bench '))
    expect(synopsis).toBeDefined()
    const options = [...BENCH_HELP.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1])
    expect(options).toEqual(expect.arrayContaining(['--alignment', '--max-live', '--seed', '--ops']))
    for (const option of options) expect(synopsis, option).toContain(option)
  })
})

describe('exit codes', () => {
  it('usage errors of every command exit 2 and name the command\'s help', async () => {
    const cases: [string[], RegExp][] = [
      [['frob'], /unknown command "frob" \(the commands are bench, replay, record, run, demo/],
      [['help', 'frob'], /unknown command "frob"/],
      [['replay'], /replay: give the TRACE to replay[\s\S]*memory-allocator replay --help/],
      [['replay', good, good], /one TRACE at a time/],
      [['replay', good, '--allocator', 'tlsf'], /unknown allocator "tlsf"/],
      [['replay', good, '--allocator', 'libc', '--map', join(dir, 'm.svg')], /libc has no heap to draw/],
      [['replay', good, '--timeline', tmpdir()], /--timeline .* is a directory/],
      [['replay', good, '--map', '--json'], /option --map needs a file name/],
      [['replay', good, '--repeat', '-2'], /--repeat must be an integer >= 1, got "-2"/],
      [['demo', '--width', '3'], /demo: --width must be an integer from 16 to 1000/],
      [['demo', 'extra', '--frob'], /demo: unknown option --frob/],
    ]
    for (const [argv, message] of cases) {
      const result = await run(argv)
      expect(result.code, argv.join(' ')).toBe(2)
      expect(result.stderr, argv.join(' ')).toMatch(message)
      expect(result.stdout, argv.join(' ')).toBe('')
    }
  })

  it('a trace that cannot be read exits 1', async () => {
    const result = await run(['replay', join(dir, 'nope.rep')])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/ENOENT: .*nope\.rep/)
  })
})

describe('colours', () => {
  it('on a terminal unless NO_COLOR is set (to anything but empty)', () => {
    expect(colorWanted(true, {})).toBe(true)
    expect(colorWanted(true, { NO_COLOR: '1' })).toBe(false)
    expect(colorWanted(true, { NO_COLOR: '' })).toBe(true)
    expect(colorWanted(false, {})).toBe(false)
  })
})
