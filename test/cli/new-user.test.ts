/**
 * The command line's rough edges a new user met (issue 13, item 3: defects 1, 3, 4, 9, 10, 12,
 * 18, 19, 20), one describe each, in the numbering. Each test failed before its fix.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nativeBinding } from '../../lib/backends/binding'
import { BENCH_HELP } from '../../lib/cli/bench'
import { describeTrace, RECORD_HELP } from '../../lib/cli/record'
import { REPLAY_HELP } from '../../lib/cli/replay'
import { MAX_REPEAT } from '../../lib/cli/support'
import { renderSvg } from '../../lib/render/bench-svg'
import { attachLibcRatios, formatPercent, summarize } from '../../lib/render/format'
import type { BenchReport, BenchResult } from '../../lib/bench/types'
import { recorderPath, type RecordedTrace } from '../../lib/trace/record'
import { formatTrace } from '../../lib/trace/trace'
import { generateTrace } from '../../lib/trace/workloads'
import { run, wellFormedSvg } from './helpers'

const hasNative = nativeBinding() !== undefined
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'
let dir: string
let good: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'memory-allocator-new-user-'))
  good = join(dir, 'good.rep')
  writeFileSync(good, formatTrace(generateTrace('fragmentation', { seed: 3, ops: 600 })))
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** The one shape of a usage error: program and command prefix, then the help to run. */
function usageShape(command: string): RegExp {
  return new RegExp(`^memory-allocator: ${command}: [^\\n]+\\nRun 'memory-allocator ${command} --help' for usage\\.\\n$`)
}

describe.skipIf(!hasNative)('1. replay --allocator bump draws its pictures', () => {
  it('--map and --timeline work on bump (segregateSmall is not forced on it)', async () => {
    const map = join(dir, 'bump-map.svg')
    const timeline = join(dir, 'bump-timeline.svg')
    const result = await run(['replay', good, '--allocator', 'bump', '--repeat', '1', '--map', map, '--timeline', timeline])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(wellFormedSvg(readFileSync(map, 'utf8'))).toBe(true)
    expect(readFileSync(map, 'utf8')).toContain('bump heap at its peak replaying good')
    expect(wellFormedSvg(readFileSync(timeline, 'utf8'))).toBe(true)
  })
})

describe.skipIf(!hasNative)('3. a --malloc library that cannot be preloaded is in the JSON', () => {
  it('bench --malloc je=/nope.so --json: exit 1, an error entry naming the library and why', async () => {
    const result = await run(['bench', good, '--malloc', 'je=/nope.so', '--allocators', 'libc', '--repeat', '1', '--json'])
    expect(result.code).toBe(1)
    const doc = JSON.parse(result.stdout)
    expect(doc.errors).toEqual([
      {
        file: '/nope.so',
        allocator: 'je',
        code: 'ERR_INVALID_OPTION',
        message: '--malloc je=/nope.so: ERR_INVALID_OPTION: replay option library "/nope.so": no such file',
      },
    ])
    expect(doc.results.map((r: { allocator: string }) => r.allocator)).toEqual(['libc'])
    expect(result.stderr).toBe('memory-allocator: --malloc je=/nope.so: ERR_INVALID_OPTION: replay option library "/nope.so": no such file\n')
  })
})

describe('4. --repeat has a documented maximum', () => {
  it.each(['bench', 'replay'])('%s --repeat beyond %s is a usage error (exit 2), and its help says so', async (command) => {
    const args = command === 'replay' ? ['replay', good] : ['bench']
    for (const repeat of ['101', '100000000']) {
      const result = await run([...args, '--repeat', repeat])
      expect(result.code).toBe(2)
      expect(result.stdout).toBe('')
      expect(result.stderr).toBe(
        `memory-allocator: ${command}: --repeat ${repeat} is more than ${MAX_REPEAT}, the most runs a median needs\nRun 'memory-allocator ${command} --help' for usage.\n`,
      )
    }
    expect(command === 'bench' ? BENCH_HELP : REPLAY_HELP).toMatch(/\(default 5,\s+at most 100\)/)
  })

  it.skipIf(!hasNative)('--repeat 100 itself is accepted', async () => {
    const result = await run(['replay', good, '--repeat', '100', '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout).result.runsNsPerOp).toHaveLength(100)
  })
})

describe('9. bench of a trace that cannot be read: ERR_TRACE_FORMAT, as replay', () => {
  it('names the file and the cause, prints nothing on stdout, exits 1 as replay does', async () => {
    const missing = join(dir, 'missing.rep')
    const bench = await run(['bench', missing, '--repeat', '1'])
    expect(bench.code).toBe(1)
    expect(bench.stdout).toBe('')
    expect(bench.stderr).toBe(`memory-allocator: ERR_TRACE_FORMAT: ${missing}: cannot read it: no such file or directory: ${missing}\n`)
    const csv = await run(['bench', missing, '--repeat', '1', '--csv'])
    expect([csv.code, csv.stdout]).toEqual([1, ''])
    const replay = await run(['replay', missing])
    expect(replay.code).toBe(1)
    expect(replay.stdout).toBe('')
    expect(replay.stderr).toMatch(/^memory-allocator: ERR_TRACE_FORMAT: .*missing\.rep: .*cannot read it: ENOENT/)
  })

  it('a directory without traces, the same code; --json still carries the errors', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'))
    const result = await run(['bench', empty, '--repeat', '1', '--json'])
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stdout).errors).toEqual([
      { file: empty, code: 'ERR_TRACE_FORMAT', message: `${empty}: no .rep or .rep.gz files in directory ${empty}` },
    ])
  })
})

describe('10. every usage error of every command has the command prefix and the help line', () => {
  it.each([
    ['bench', ['bench', '--malloc', 'x']],
    ['bench', ['bench', '--malloc', 'libc=/x.so']],
    ['bench', ['bench', '--repeat', '0']],
    ['bench', ['bench', '--frob']],
    ['bench', ['bench', '--max-heap', 'lots']],
    ['replay', ['replay']],
    ['replay', ['replay', 'x.rep', '--malloc', 'x']],
    ['replay', ['replay', 'x.rep', '--segregate-small', '2M']],
    ['record', ['record']],
    ['record', ['record', '-o', '/no-such-directory/x.rep', '--', 'true']],
    ['record', ['record', '-o', 'out.txt', '--', 'true']],
    ['demo', ['demo', '--width', '3']],
    ['demo', ['demo', 'extra']],
  ])('%s: %j', async (command, argv) => {
    const result = await run(argv)
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(usageShape(command))
  })

  it('errors of the program itself name the main help', async () => {
    for (const argv of [['frob'], ['--frob'], ['help', 'frob']]) {
      const result = await run(argv)
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/^memory-allocator: [^\n]+\nRun 'memory-allocator --help' for usage\.\n$/)
    }
  })
})

describe.skipIf(recorderPath() === undefined)('12. record', () => {
  it('--top-only records only the program COMMAND ends up running', async () => {
    const sub = mkdtempSync(join(dir, 'top-'))
    const output = join(sub, 'top.rep')
    // sh runs two children, then execs the program of interest (as a version manager's shim does).
    const script = 'ls / > /dev/null; ls / > /dev/null; exec ls / > /dev/null'
    const all = await run(['record', '-o', join(sub, 'all.rep'), '--', 'sh', '-c', script])
    expect(all.code).toBe(0)
    expect(all.stderr).toMatch(/recorded [3-9] traces of sh/)
    const top = await run(['record', '-o', output, '--top-only', '--', 'sh', '-c', script])
    expect(top.code).toBe(0)
    expect(top.stderr).toMatch(/^memory-allocator: recorded 1 trace of sh \(exit status 0\):\n {2}\S*top\.rep {2}\/usr\/bin\/ls \(pid \d+\)\n/)
    expect(readdirSync(sub).filter((name) => name.startsWith('top')).sort()).toEqual(['top.rep', 'top.rep.json'])
    expect(RECORD_HELP).toContain('--top-only')
  })

  it('lists at most 8 traces, then counts the rest', async () => {
    const output = join(dir, 'many.rep')
    const result = await run(['record', '-o', output, '--', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11; do ls / > /dev/null; done'])
    expect(result.code).toBe(0)
    const total = Number(/recorded (\d+) traces/.exec(result.stderr)![1])
    expect(total).toBeGreaterThanOrEqual(11)
    const lines = result.stderr.trimEnd().split('\n')
    expect(lines).toHaveLength(1 + 8 * 2 + 1)
    expect(lines.at(-1)).toMatch(new RegExp(`^ {2}and ${total - 8} more traces \\([\\d,]+ ops in all\\) beside them`))
  })

  it('refuses to overwrite an existing trace without --force', async () => {
    const output = join(dir, 'kept.rep')
    writeFileSync(output, 'an earlier trace')
    const refused = await run(['record', '-o', output, '--', 'true'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toBe(`memory-allocator: record: ${output} exists; give --force to overwrite it, or -o another name\nRun 'memory-allocator record --help' for usage.\n`)
    expect(readFileSync(output, 'utf8')).toBe('an earlier trace')
    // FILE.rep.gz is recorded as FILE.rep first: that one is protected too.
    expect((await run(['record', '-o', `${output}.gz`, '--', 'true'])).code).toBe(2)
    const forced = await run(['record', '-o', output, '--force', '--', 'sh', '-c', 'exec ls / > /dev/null'])
    expect(forced.code).toBe(0)
    expect(readFileSync(output, 'latin1')).not.toBe('an earlier trace')
  })

  it('names every trace after FILE.rep or FILE.rep.gz, and refuses other names', async () => {
    for (const name of ['foo.gz', 'out.txt', 'trace']) {
      const result = await run(['record', '-o', join(dir, name), '--', 'true'])
      expect(result.code).toBe(2)
      expect(result.stderr).toContain(`the trace must be named FILE.rep or FILE.rep.gz (the other traces are named after it), got "${join(dir, name)}"`)
    }
    const sub = mkdtempSync(join(dir, 'gz-'))
    const result = await run(['record', '-o', join(sub, 'foo.rep.gz'), '--', 'sh', '-c', 'ls / > /dev/null; exec ls / > /dev/null'])
    expect(result.code).toBe(0)
    const pid = /foo\.(\d+)\.rep\.gz/.exec(result.stderr)![1]
    const names = readdirSync(sub)
    expect(names).toEqual(expect.arrayContaining(['foo.rep.gz', 'foo.rep.json', `foo.${pid}.rep.gz`, `foo.${pid}.rep.json`]))
    // sh's own image, replaced by exec, may have a trace too: STEM.PID.exec-K.rep.gz.
    for (const name of names) expect(name).toMatch(/^foo(\.\d+(\.exec-\d+)?)?\.rep(\.gz|\.json)$/)
    for (const name of names.filter((n) => n.endsWith('.gz'))) expect(names).toContain(name.replace(/\.gz$/, '.json'))
  })

  it('a command that is not found: one line, exit 127', async () => {
    const missing = join(dir, 'no-such-program')
    const result = await run(['record', '-o', join(dir, 'nf.rep'), '--', missing])
    expect(result.code).toBe(127)
    expect(result.stderr).toBe(`memory-allocator: record: command not found: ${missing}\n`)
    expect(existsSync(join(dir, 'nf.rep'))).toBe(false)
  })

  it('says "1 op" and "1 block"', () => {
    const trace: RecordedTrace = {
      path: '/t/one.rep', summaryPath: '/t/one.rep.json', program: '/bin/one', pid: 7, ppid: 1, forkedFrom: null,
      ops: 1, ids: 1, peakLiveBytes: 16, liveBlocksAtExit: 1, liveBytesAtExit: 16, unknownFrees: 0, unknownReallocs: 0,
      unseenFrees: 0, inheritedBlocks: 0, replacedByExec: false,
    }
    expect(describeTrace(trace)).toBe('  /t/one.rep  /bin/one (pid 7)\n    1 op, peak live 16 B, 1 block live at exit, unknown frees 0\n')
    expect(describeTrace({ ...trace, ops: 2, liveBlocksAtExit: 0 })).toContain('2 ops, peak live 16 B, 0 blocks live at exit')
  })
})

describe.skipIf(!hasNative)('18. bench of the built-in workloads is bounded', () => {
  it('our heap is capped at 256 MiB on the built-in workloads, not on TRACE files', async () => {
    const builtIn = JSON.parse((await run(['bench', '--ops', '300', '--allocators', 'bump', '--repeat', '1', '--json'])).stdout)
    expect(builtIn.options.maxHeapBytes).toBe(256 * 2 ** 20)
    const traces = JSON.parse((await run(['bench', good, '--allocators', 'bump', '--repeat', '1', '--json'])).stdout)
    expect(traces.options.maxHeapBytes).toBe(null)
    const table = await run(['bench', '--ops', '300', '--allocators', 'bump', '--repeat', '1'])
    expect(table.stdout.split('\n')[0]).toMatch(/, our heap capped at 256 MiB \(--max-heap\)$/)
  })

  it('a replay that would hold more than --max-heap is "oom", and replay takes the same cap', async () => {
    const doc = JSON.parse((await run(['bench', good, '--allocators', 'bump,best-fit', '--repeat', '1', '--json', '--max-heap', '16K'])).stdout)
    expect(doc.results.map((r: BenchResult) => [r.allocator, r.failed])).toEqual([
      ['bump', 'ERR_OUT_OF_MEMORY'],
      ['best-fit', 'ERR_OUT_OF_MEMORY'],
    ])
    expect(doc.results[0].failureMessage).toMatch(/^replay: bump could not satisfy op \d+ \(the heap is capped at 16\.0 KiB, --max-heap\)$/)
    const replay = await run(['replay', good, '--allocator', 'bump', '--repeat', '1', '--max-heap', '16K'])
    expect(replay.code).toBe(1)
    expect(replay.stderr).toMatch(/^memory-allocator: bump failed on good: ERR_OUT_OF_MEMORY/)
    expect(BENCH_HELP).toContain('--max-heap BYTES')
  })
})

describe('19. bench --svg', () => {
  it.skipIf(!hasNative)('says where the chart went, and gives libc a row that says why it has no utilization figure', async () => {
    const svgFile = join(dir, 'chart.svg')
    const result = await run(['bench', good, '--allocators', 'best-fit,libc', '--repeat', '1', '--csv', '--svg', svgFile])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe(`memory-allocator: wrote ${svgFile}\n`)
    const svg = readFileSync(svgFile, 'utf8')
    expect(wellFormedSvg(svg)).toBe(true)
    expect(svg).toContain('no figure in-process (see below)')
    expect(svg).toContain('libc has no utilization figure where it runs in this process')
  })

  it('draws libc\'s utilization where it has one (a child replay, beside --malloc)', () => {
    const cell = (allocator: string, utilization: number): BenchResult => ({
      allocator, trace: 't', ops: 100, nsPerOp: 50, runsNsPerOp: [50], peakLiveBytes: 100, peakHeapBytes: 100 / utilization,
      utilization, metadataBytes: null, brkCalls: null, searchSteps: null, ratioToLibc: null, failed: null,
    })
    const report: BenchReport = {
      options: { allocators: ['best-fit', 'libc'], repeat: 1, touch: true, growth: 0, segregateSmall: 0, alignment: 16, maxLiveBytes: 2 ** 32 },
      traces: [{ name: 't', source: 'built-in', ops: 100, peakLiveBytes: 100, peakLiveChunks: 1 }],
      skipped: [],
      errors: [],
      results: attachLibcRatios([cell('best-fit', 0.9), cell('libc', 0.375)]),
    }
    const svg = renderSvg(report, summarize(report.results, report.options.allocators))
    expect(svg).toContain('>37.5%</text>')
    expect(svg).toContain('>90.0%</text>')
    expect(svg).toContain('1× (the reference)')
    expect(svg).not.toContain('no figure in-process')
  })

  it.skipIf(!hasNative || !existsSync(JEMALLOC))('with a --malloc library, libc\'s bar is in the utilization panel', async () => {
    const svgFile = join(dir, 'chart-je.svg')
    const result = await run(['bench', good, '--allocators', 'libc', '--malloc', `je=${JEMALLOC}`, '--repeat', '1', '--json', '--svg', svgFile])
    expect(result.code).toBe(0)
    const libc = JSON.parse(result.stdout).results.find((r: BenchResult) => r.allocator === 'libc')
    expect(libc.utilization).not.toBeNull()
    const svg = readFileSync(svgFile, 'utf8')
    expect(svg).toContain(`>${formatPercent(libc.utilization)}</text>`)
    expect(svg).not.toContain('no figure in-process')
  })
})

describe.skipIf(!hasNative)('20. replay reproduces a bench row', () => {
  it('--segregate-small (and the other heap options) give bench\'s figures', async () => {
    const options = ['--repeat', '1', '--growth', '0', '--alignment', '32', '--segregate-small', '0', '--json']
    const bench = JSON.parse((await run(['bench', good, '--allocators', 'first-fit', ...options])).stdout).results[0]
    const replay = JSON.parse((await run(['replay', good, '--allocator', 'first-fit', ...options])).stdout).result
    const memory = (r: BenchResult): unknown[] => [r.peakHeapBytes, r.metadataBytes, r.brkCalls, r.searchSteps]
    expect(memory(replay)).toEqual(memory(bench))
    // And segregation changes the row, so the option reached the heap.
    const segregated = JSON.parse((await run(['replay', good, '--allocator', 'first-fit', ...options.slice(0, -3), '--segregate-small', '256', '--json'])).stdout).result
    expect(memory(segregated)).not.toEqual(memory(bench))
    expect(REPLAY_HELP).toContain('--segregate-small BYTES')
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8')
    expect(readme).toMatch(/memory-allocator replay TRACE [^`]*--segregate-small BYTES\] \[--max-heap BYTES\]/)
  })
})
