/**
 * `memory-allocator bench -- COMMAND` and its runner native/measure, end to end: medians, ratios
 * to libc, output compared with libc's, a failing row, a --malloc library that cannot be used,
 * and the usage errors. The rows of our strategies need the malloc library and are skipped, with
 * the reason, only where it is not built; libc and --malloc rows need only the runner.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mallocLibraryPath, measurePath } from '../../lib/run/library'
import { run as runInProcess, wellFormedSvg } from '../cli/helpers'
import { PYTHON, cli } from './programs'

const measure = measurePath()
const noLibrary = mallocLibraryPath() === undefined
if (measure === undefined) console.warn('bench -- COMMAND tests: memory-allocator-measure is not built (npm run build:native); they are skipped')
const LIBC_SO = ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/aarch64-linux-gnu/libc.so.6', '/usr/lib64/libc.so.6'].find((path) => existsSync(path))

/** Enough allocation to measure (tens of ms), and a deterministic line of output. */
const WORK = PYTHON === undefined ? undefined : [PYTHON, '-c', 'x = [str(i) * 4 for i in range(200000)]; print(len(x), sum(map(len, x)))']

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ma-bench-command-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

interface Row {
  allocator: string
  runs: { wallNs: number; cpuNs: number; maxRssBytes: number; exitStatus: number | null; stdoutHash: string }[]
  wallNs: number | null
  cpuNs: number | null
  maxRssBytes: number | null
  wallRatioToLibc: number | null
  rssRatioToLibc: number | null
  output: string
  failed: string | null
}

describe('bench -- COMMAND: usage errors (nothing runs)', () => {
  const cases: [string, string[], RegExp][] = [
    ['no command after --', ['bench', '--repeat', '1', '--'], /bench: no COMMAND after --/],
    ['traces and a command', ['bench', 'a.rep', '--', 'true'], /bench: TRACE files and -- COMMAND cannot be combined/],
    ['--json with --csv', ['bench', '--json', '--csv', '--', 'true'], /bench: --json and --csv cannot be combined/],
    ['an unknown allocator', ['bench', '--allocators', 'best-fit,tcmalloc', '--', 'true'], /bench: unknown allocator "tcmalloc" \(expected best-fit, .*libc\)/],
    ['--repeat 0', ['bench', '--repeat', '0', '--', 'true'], /bench: --repeat must be an integer >= 1, got "0"/],
    ['a malformed --malloc', ['bench', '--malloc', 'jemalloc', '--', 'true'], /bench: --malloc takes NAME=LIBRARY/],
    ['a trace-only option', ['bench', '--growth', '0', '--', 'true'], /bench: unknown option --growth/],
    ['--svg into a directory', ['bench', '--svg', '.', '--', 'true'], /bench: --svg \. is a directory/],
  ]
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const result = await runInProcess(args)
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(message)
      expect(result.stderr).toContain("Run 'memory-allocator bench --help' for usage.")
    })
  }

  it('bench --help tells both forms', () => {
    const result = cli(['bench', '--help'])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^Usage: memory-allocator bench \[TRACE\.\.\.\] \[options\]/)
    expect(result.stdout).toContain('Usage: memory-allocator bench [options] -- COMMAND [ARGS...]')
    expect(result.stdout).toContain('--malloc NAME=LIBRARY')
  })
})

describe.skipIf(measure === undefined)('the measuring runner', () => {
  it('reports wall, CPU, peak RSS and the status, and exits with the command’s status', () => {
    const file = join(dir, 'measure.json')
    const result = spawnSync(measure!, ['--output', file, '--env', 'MA_TEST_VALUE=seen', '--', 'sh', '-c', 'echo $MA_TEST_VALUE; exit 3'], { encoding: 'utf8' })
    expect(result.status).toBe(3)
    expect(result.stdout).toBe('seen\n')
    const line = JSON.parse(readFileSync(file, 'utf8'))
    expect(line).toMatchObject({ exitStatus: 3, signal: null, error: null })
    expect(line.wallNs).toBeGreaterThan(0)
    expect(line.maxRssKiB).toBeGreaterThan(100)
    const killed = spawnSync(measure!, ['--fd', '1', '--', 'sh', '-c', 'kill -KILL $$'], { encoding: 'utf8' })
    expect(killed.status).toBe(128 + 9)
    expect(JSON.parse(killed.stdout)).toMatchObject({ exitStatus: null, signal: 9 })
    const missing = spawnSync(measure!, ['--fd', '1', '--', 'no-such-command-here'], { encoding: 'utf8' })
    expect(missing.status).toBe(127)
    expect(JSON.parse(missing.stdout).error).toMatch(/^command not found: /)
    expect(spawnSync(measure!, ['--', 'true']).status).toBe(125)
  })
})

describe.skipIf(measure === undefined || WORK === undefined)('bench -- COMMAND', () => {
  it.skipIf(noLibrary)('best-fit beside libc: medians, ratios, the same output, JSON and SVG', () => {
    const svg = join(dir, 'bench.svg')
    const result = cli(['bench', '--allocators', 'best-fit,libc', '--repeat', '2', '--json', '--svg', svg, '--', ...WORK!], { timeout: 60_000 })
    expect(result.status, result.stderr).toBe(0)
    const document = JSON.parse(result.stdout) as { command: string[]; rows: Row[]; libcOutputVaries: boolean }
    expect(document.command).toEqual(WORK)
    expect(document.rows.map((row) => row.allocator)).toEqual(['best-fit', 'libc'])
    for (const row of document.rows) {
      expect(row.failed).toBeNull()
      expect(row.runs).toHaveLength(2)
      expect(row.wallNs).toBeGreaterThan(1e6)
      expect(row.cpuNs).toBeGreaterThan(0)
      // The command's own RSS: python3 with 200,000 strings, far above the runner's.
      expect(row.maxRssBytes).toBeGreaterThan(10 * 2 ** 20)
    }
    const [ours, libc] = document.rows
    expect(libc.wallRatioToLibc).toBe(1)
    expect(ours.wallRatioToLibc).toBeCloseTo(ours.wallNs! / libc.wallNs!, 10)
    expect(ours.rssRatioToLibc).toBeCloseTo(ours.maxRssBytes! / libc.maxRssBytes!, 10)
    expect(ours.output).toBe('same')
    expect(document.libcOutputVaries).toBe(false)
    const chart = readFileSync(svg, 'utf8')
    expect(wellFormedSvg(chart)).toBe(true)
    expect(chart).toContain('wall time')
    expect(chart).toContain('peak RSS')
  })

  it('the table, one row per allocator, interleaved runs', () => {
    const allocators = noLibrary ? 'libc' : 'libc,first-fit'
    const result = cli(['bench', '--allocators', allocators, '--repeat', '1', '--', ...WORK!])
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^memory-allocator bench: .*python3 -c/)
    expect(result.stdout).toMatch(/allocator +wall +×libc +cpu +×libc +peak RSS +×libc +output/)
    expect(result.stdout).toMatch(/\nlibc +[\d.]+ m?s +1\.00 +[\d.]+ m?s +1\.00 +[\d.]+ MiB +1\.00 +reference\n/)
    if (!noLibrary) expect(result.stdout).toMatch(/\nfirst-fit +[\d.]+ m?s +[\d.]+ .* same\n/)
  })

  it('draws progress on a terminal only', async () => {
    const args = ['bench', '--allocators', 'libc', '--repeat', '2', '--', ...WORK!]
    const terminal = await runInProcess(args, { isTTY: true })
    expect(terminal.code).toBe(0)
    expect(terminal.stderr).toMatch(/\r\[#*\.*\] run 1\/2: libc \(round 1 of 2\)/)
    expect(terminal.stderr).toMatch(/\r\[##########\.+\] run 2\/2: libc \(round 2 of 2\)/)
    expect(terminal.stderr).toMatch(/2 runs in [\d.]+ m?s\n$/)
    const pipe = await runInProcess(args)
    expect(pipe.code).toBe(0)
    expect(pipe.stderr).toBe('')
    expect(pipe.stdout).toMatch(/\nlibc +[\d.]+ m?s +1\.00 /)
  })

  it('a failing command fails its row and exits 1; CSV', () => {
    const result = cli(['bench', '--allocators', 'libc', '--repeat', '2', '--csv', '--', 'sh', '-c', 'echo oops >&2; exit 3'])
    expect(result.status).toBe(1)
    expect(result.stdout).toMatch(/^allocator,runs,wall_ns,/)
    expect(result.stdout).toContain('\nlibc,1,,,,,,,unknown,exit status 3\n')
    expect(result.stderr).toContain('memory-allocator: bench: libc failed: exit status 3')
  })

  it('--malloc: a missing library is named and left out, the other rows run, exit 1', () => {
    const result = cli(['bench', '--allocators', 'libc', '--malloc', 'gone=/nonexistent/libgone.so', '--repeat', '1', '--json', '--', ...WORK!])
    expect(result.status).toBe(1)
    expect(result.stderr).toContain('memory-allocator: bench: --malloc gone=/nonexistent/libgone.so: no such file; its row is left out')
    expect((JSON.parse(result.stdout) as { rows: Row[] }).rows.map((row) => row.allocator)).toEqual(['libc'])
  })

  it.skipIf(LIBC_SO === undefined)('--malloc: a row whose output differs from libc’s is flagged', () => {
    // glibc itself preloaded is a valid malloc library; the command prints its LD_PRELOAD.
    const result = cli(['bench', '--allocators', 'libc', '--malloc', `glibc=${LIBC_SO}`, '--repeat', '1', '--', 'sh', '-c', 'echo "[$LD_PRELOAD]"'])
    expect(result.status).toBe(1)
    expect(result.stdout).toMatch(/\nglibc +.* DIFFERS\n/)
    expect(result.stderr).toContain("memory-allocator: bench: glibc: COMMAND's output differs from libc's")
  })
})
