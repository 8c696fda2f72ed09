import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CSV_HEADER } from '../../lib/render/format'
import { REPLAY_ALLOCATORS } from '../../lib/replay/replay'
import { formatTrace } from '../../lib/trace/trace'
import { generateTrace } from '../../lib/trace/workloads'
import { run } from './helpers'

let dir: string
let churn: string
let frag: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'memory-allocator-cli-'))
  churn = join(dir, 'small-churn.rep')
  frag = join(dir, 'small-frag.rep.gz')
  writeFileSync(churn, formatTrace(generateTrace('random-churn', { seed: 7, ops: 400 })))
  writeFileSync(frag, gzipSync(formatTrace(generateTrace('fragmentation', { seed: 7, ops: 400 }))))
  writeFileSync(join(dir, 'bad.rep'), '0\n2\n3\n0\na 0 16\nf 0\nq 1 8\n')
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('memory-allocator CLI', () => {
  it('prints help and version', async () => {
    const help = await run(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: memory-allocator <command>')
    expect(help.stdout).toContain('bench [TRACE...]')

    const benchHelp = await run(['bench', '--help'])
    expect(benchHelp.code).toBe(0)
    for (const option of ['--allocators', '--repeat', '--no-touch', '--growth', '--max-live', '--json', '--csv', '--svg']) {
      expect(benchHelp.stdout).toContain(option)
    }
    expect(benchHelp.stdout).toContain('the malloc-lab\n                     accounting wants --growth 0')
    expect((await run(['help', 'bench'])).stdout).toBe(benchHelp.stdout)

    const version = await run(['--version'])
    expect(version.code).toBe(0)
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).version)
  })

  it('rejects bad usage with exit 2 and a message on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: memory-allocator/],
      [['frob'], /unknown command "frob"/],
      [['--frob'], /unknown option --frob/],
      [['bench', '--frob'], /bench: unknown option --frob/],
      [['bench', '--repeat'], /option --repeat needs a value/],
      [['bench', '--repeat', '0'], /--repeat must be an integer >= 1, got "0"/],
      [['bench', '--repeat', 'many'], /--repeat must be an integer/],
      [['bench', '--growth', 'big'], /--growth must be a byte count/],
      [['bench', '--alignment', '24'], /--alignment 24 is not a power of two from 8 to 4096/],
      [['bench', '--segregate-small', '2M'], /--segregate-small 2M is more than 1 MiB/],
      [['bench', '--allocators', 'best-fit,tlsf'], /unknown allocator "tlsf"/],
      [['bench', '--json', '--csv'], /cannot be combined/],
      [['bench', '--json=yes'], /--json takes no value/],
      [['bench', '--svg', join(tmpdir(), 'no-such-dir', 'x.svg')], /--svg .*not writable/],
    ]
    for (const [argv, message] of cases) {
      const result = await run(argv)
      expect(result.code, argv.join(' ')).toBe(2)
      expect(result.stderr, argv.join(' ')).toMatch(message)
      expect(result.stdout, argv.join(' ')).toBe('')
    }
  })

  it('prints a table per trace with every allocator, and a summary', async () => {
    const result = await run(['bench', churn, frag, '--repeat', '1'])
    expect(result.stderr).toBe('') // not a TTY: no progress bar
    expect(result.code).toBe(0)
    const lines = result.stdout.split('\n')
    for (const trace of ['small-churn', 'small-frag']) {
      const start = lines.findIndex((line) => line.startsWith(`${trace}  (`))
      expect(start, trace).toBeGreaterThanOrEqual(0)
      expect(lines[start + 1]).toMatch(/^allocator\s+ns\/op\s+×libc\s+peak heap\s+peak live\s+heap\/live\s+util\s+metadata\s+meta\/live\s+brk calls\s+steps\/op$/)
      const rows = lines.slice(start + 3, start + 3 + REPLAY_ALLOCATORS.length)
      expect(rows.map((row) => row.split(/\s+/)[0])).toEqual([...REPLAY_ALLOCATORS])
      // Each row has a number or 'oom' for ns/op; libc's ratio is 1.
      for (const row of rows) expect(row).toMatch(/^\S+\s+(\d[\d,.]*|oom)\s/)
      expect(rows.at(-1)).toMatch(/^libc\s+[\d,.]+\s+1\.00\s+—/)
    }
    const summary = lines.findIndex((line) => line.startsWith('Summary: geometric means over 2 traces'))
    expect(summary).toBeGreaterThan(0)
    expect(lines.slice(summary + 3, summary + 3 + REPLAY_ALLOCATORS.length).map((row) => row.split(/\s+/)[0])).toEqual([
      ...REPLAY_ALLOCATORS,
    ])
  })

  it('--json prints one document with the results and summary', async () => {
    const result = await run(['bench', churn, '--repeat', '1', '--allocators', 'best-fit,libc', '--json', '--growth', '0', '--no-touch'])
    expect(result.code).toBe(0)
    const doc = JSON.parse(result.stdout)
    expect(doc.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(doc.node).toBe(process.version)
    expect(doc.machine).toMatchObject({ cpu: expect.any(String), cores: expect.any(Number) })
    expect(doc.options).toMatchObject({ allocators: ['best-fit', 'libc'], repeat: 1, touch: false, growth: 0 })
    expect(doc.results).toHaveLength(2)
    const [bestFit, libc] = doc.results
    expect(bestFit).toMatchObject({ allocator: 'best-fit', trace: 'small-churn', failed: null })
    for (const key of ['ops', 'nsPerOp', 'peakLiveBytes', 'peakHeapBytes', 'utilization', 'metadataBytes', 'brkCalls', 'searchSteps', 'ratioToLibc']) {
      expect(typeof bestFit[key], key).toBe('number')
    }
    expect(bestFit.utilization).toBeCloseTo(bestFit.peakLiveBytes / bestFit.peakHeapBytes, 12)
    expect(libc).toMatchObject({ allocator: 'libc', peakHeapBytes: null, utilization: null, ratioToLibc: 1 })
    expect(doc.summary.map((s: { allocator: string }) => s.allocator)).toEqual(['best-fit', 'libc'])
    expect(doc.summary[0]).toMatchObject({ traces: 1, failed: [] })
  })

  it('passes --alignment and --segregate-small to our heap', async () => {
    const args = ['bench', churn, '--repeat', '1', '--allocators', 'best-fit', '--json', '--no-touch']
    const plain = JSON.parse((await run(args)).stdout)
    const tuned = JSON.parse((await run([...args, '--alignment', '4096', '--segregate-small', '64'])).stdout)
    expect(tuned.options).toMatchObject({ alignment: 4096, segregateSmall: 64 })
    // Every chunk rounds up to 4 KiB: the heap outgrows the 16-byte-aligned one.
    expect(tuned.results[0].peakHeapBytes).toBeGreaterThan(1.5 * plain.results[0].peakHeapBytes)
  })

  it('--csv prints a header and a row per trace × allocator', async () => {
    const result = await run(['bench', churn, frag, '--repeat', '1', '--allocators', 'first-fit,bump,libc', '--csv'])
    expect(result.code).toBe(0)
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines[0]).toBe(CSV_HEADER.join(','))
    expect(lines).toHaveLength(1 + 2 * 3)
    expect(lines.slice(1).map((line) => line.split(',').slice(0, 2).join(','))).toEqual([
      'small-churn,first-fit',
      'small-churn,bump',
      'small-churn,libc',
      'small-frag,first-fit',
      'small-frag,bump',
      'small-frag,libc',
    ])
  })

  it('--svg writes a self-contained chart; a directory expands to its traces', async () => {
    const set = join(dir, 'set')
    mkdirSync(set)
    writeFileSync(join(set, 'b-lifo.rep'), formatTrace(generateTrace('lifo', { ops: 300 })))
    writeFileSync(join(set, 'a-fifo.rep'), formatTrace(generateTrace('fifo', { ops: 300 })))
    writeFileSync(join(set, 'notes.txt'), 'not a trace')
    const svgFile = join(dir, 'chart.svg')
    const result = await run(['bench', set, '--repeat', '1', '--allocators', 'best-fit,worst-fit,libc', '--csv', '--svg', svgFile])
    expect(result.code).toBe(0)
    expect(result.stdout.split('\n').slice(1, 3).map((line) => line.split(',')[0])).toEqual(['a-fifo', 'a-fifo'])
    const svg = readFileSync(svgFile, 'utf8')
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
    expect(svg).toContain('a-fifo')
    expect(svg).toContain('b-lifo')
    expect(svg).toContain('worst-fit')
    expect(svg).not.toContain('<script')
  })

  it('skips traces above --max-live with a note', async () => {
    const result = await run(['bench', churn, frag, '--repeat', '1', '--allocators', 'libc', '--max-live', '200K'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/small-churn {2}\(.*\): skipped: needs [\d.]+ (KiB|MiB) live at its peak, more than --max-live 200 KiB/)
    expect(result.stdout).toMatch(/^small-frag {2}\(/m)
    const json = await run(['bench', churn, '--repeat', '1', '--allocators', 'libc', '--max-live', '200K', '--json'])
    expect(JSON.parse(json.stdout).skipped).toEqual([expect.objectContaining({ name: 'small-churn' })])
    expect(json.stderr).toMatch(/warning: skipped small-churn/)
  })

  it('a trace that does not parse: exit 1, file and line on stderr, the others still run', async () => {
    const bad = join(dir, 'bad.rep')
    const result = await run(['bench', bad, churn, '--repeat', '1', '--allocators', 'best-fit'])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('ERR_TRACE_FORMAT')
    expect(result.stderr).toContain(bad)
    expect(result.stderr).toMatch(/line 7/)
    expect(result.stdout).toMatch(/^small-churn {2}\(/m)
  })

  it('draws a progress bar on stderr only when it is a TTY', async () => {
    const result = await run(['bench', churn, '--repeat', '1', '--allocators', 'best-fit,libc'], { isTTY: true })
    expect(result.code).toBe(0)
    expect(result.stderr).toContain('\r')
    expect(result.stderr).toMatch(/\[[#.]{20}\] 0\/2 {2}trace 1\/1 small-churn {2}best-fit/)
    expect(result.stderr).toMatch(/2 replays of 1 traces in /)
    expect(result.stdout).not.toContain('\r')
  })

  it('runs the built-in workloads when no TRACE is given', async () => {
    const result = await run(['bench', '--repeat', '1', '--ops', '300', '--allocators', 'best-fit,libc', '--csv'])
    expect(result.code).toBe(0)
    const traces = new Set(result.stdout.trimEnd().split('\n').slice(1).map((line) => line.split(',')[0]))
    expect([...traces]).toEqual(['random-churn', 'fragmentation', 'realloc-growth', 'coalescing', 'lifo', 'fifo', 'program-mix'])
  })
})
