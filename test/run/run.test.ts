/**
 * `memory-allocator run`, end to end as a user runs it (bin/memory-allocator.js in a child
 * process, the malloc library preloaded into real programs): the reports, pictures and stats, exit
 * statuses passed through, bad frees in both modes. Skipped, with the reason, only where the
 * malloc library is not built; usage errors are checked everywhere.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { packageRoot } from '../../lib/backends/package-root'
import { mallocLibraryPath, MALLOC_LIBRARY_FILE } from '../../lib/run/library'
import { run as runInProcess, wellFormedSvg } from '../cli/helpers'
import { CC, PYTHON, cli } from './programs'

const library = mallocLibraryPath()
const noLibrary = library === undefined ? `${MALLOC_LIBRARY_FILE} is not built (npm run build:native)` : undefined
if (noLibrary !== undefined) console.warn(`run tests: ${noLibrary}; the tests that run programs are skipped`)
const withLibrary = describe.skipIf(noLibrary !== undefined)

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ma-run-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

interface Report {
  pid: number
  command: string[]
  strategy: string
  exitStatus: number | null
  heaps: number
  threads: number
  badFrees: number
  main: Record<string, number>
  total: Record<string, number>
  snapshot: { at: string; chunks: [number, number, string][] } | null
  timeline: { samples: number[][] } | null
}

const readJson = (path: string): Report[] => JSON.parse(readFileSync(path, 'utf8')) as Report[]

describe('run: usage errors (nothing runs)', () => {
  const cases: [string, string[], RegExp][] = [
    ['no command', ['run', '--stats'], /run: no COMMAND to run/],
    ['no command after --', ['run', '--stats', '--'], /run: no COMMAND to run/],
    ['an unknown allocator', ['run', '--allocator', 'quick-fit', '--', 'true'], /run: unknown allocator "quick-fit" \(expected best-fit, .*bump/],
    ['libc as the allocator', ['run', '--allocator', 'libc', '--', 'true'], /run: unknown allocator "libc"/],
    ['a bad --on-bad-free', ['run', '--on-bad-free', 'ignore', '--', 'true'], /run: --on-bad-free must be abort or report, got "ignore"/],
    ['--json without a file', ['run', '--json', '--', 'true'], /run: option --json needs a file name/],
    ['--map into a directory', ['run', '--map', '.', '--', 'true'], /run: --map \. is a directory/],
    ['--timeline in a missing directory', ['run', '--timeline', '/nonexistent-dir/t.svg', '--', 'true'], /run: --timeline \/nonexistent-dir\/t\.svg: the directory does not exist/],
    ['one file for two pictures', ['run', '--map', 'x.svg', '--timeline', 'x.svg', '--', 'true'], /run: --map and --timeline name the same file x\.svg/],
    ['an unknown option', ['run', '--verbose', '--', 'true'], /run: unknown option --verbose/],
    ['a value for a switch', ['run', '--stats=yes', '--', 'true'], /run: option --stats takes no value/],
  ]
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const result = await runInProcess(args)
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(message)
      expect(result.stderr).toMatch(/^memory-allocator: run: /)
      expect(result.stderr).toContain("Run 'memory-allocator run --help' for usage.")
      expect(result.stdout).toBe('')
    })
  }

  it('--help lists every option and the file per process', () => {
    const result = cli(['run', '--help'])
    expect(result.status).toBe(0)
    for (const option of ['--allocator', '--stats', '--json FILE', '--map FILE.svg', '--timeline FILE.svg', '--on-bad-free abort|report', 'FILE-PID.svg']) {
      expect(result.stdout).toContain(option)
    }
    expect(cli(['--help']).stdout).toMatch(/\n {2}run \[options\] -- COMMAND/)
  })
})

describe('run: without its native parts', () => {
  it('a package with no malloc library (and no runner) says how to build them, exit 1', () => {
    // The built CLI alone, as an install whose native build failed: no build/, no prebuilds/.
    const bare = join(dir, 'bare-package')
    mkdirSync(bare)
    for (const part of ['dist', 'bin', 'package.json']) cpSync(join(packageRoot(), part), join(bare, part), { recursive: true })
    const cliIn = (args: string[]) => spawnSync(process.execPath, [join(bare, 'bin', 'memory-allocator.js'), ...args], { encoding: 'utf8' })
    const run = cliIn(['run', '--stats', '--', 'true'])
    expect(run.status).toBe(1)
    expect(run.stderr).toBe(`memory-allocator: run: ERR_UNSUPPORTED: the malloc library ${MALLOC_LIBRARY_FILE} is not built (npm run build:native builds it; it needs Linux and a C compiler)\n`)
    const bench = cliIn(['bench', '--allocators', 'libc', '--', 'true'])
    expect(bench.status).toBe(1)
    expect(bench.stderr).toMatch(/^memory-allocator: bench: ERR_UNSUPPORTED: the measuring runner memory-allocator-measure is not built \(npm run build:native/)
  })
})

withLibrary('run: real programs on the allocator', () => {
  it.skipIf(PYTHON === undefined)('python3: --stats, --json, --map at the peak and --timeline', () => {
    const json = join(dir, 'py.json')
    const map = join(dir, 'py-map.svg')
    const timeline = join(dir, 'py-timeline.svg')
    const script = 'x = [str(i) * 3 for i in range(100000)]; del x[::2]; print(len(x))'
    const reportDirs = (): string[] => readdirSync(tmpdir()).filter((name) => name.startsWith('memory-allocator-run-'))
    const before = reportDirs()
    const result = cli(['run', '--stats', '--json', json, '--map', map, '--timeline', timeline, '--', PYTHON!, '-c', script], {
      env: { ...process.env, PYTHONMALLOC: 'malloc' },
    })
    expect(result.stderr).not.toMatch(/ERR_|cannot be used/)
    expect(result.status).toBe(0)
    expect(result.stdout).toBe('50000\n')
    // The reports' temporary directory is gone.
    expect(reportDirs()).toEqual(before)
    const [top, ...others] = readJson(json)
    expect(others).toEqual([])
    expect(top.command).toEqual([PYTHON, '-c', script])
    expect(top.strategy).toBe('best-fit')
    expect(top.exitStatus).toBe(0)
    expect(top.badFrees).toBe(0)
    // 100,000 strings of 15-18 bytes, each a malloc with PYTHONMALLOC=malloc.
    expect(top.total.allocs).toBeGreaterThan(100_000)
    expect(top.main.peakLiveBytes).toBeGreaterThan(100_000 * 32)
    expect(top.main.peakHeapBytes).toBeGreaterThanOrEqual(top.main.peakLiveBytes)
    expect(top.main.brkCalls).toBeGreaterThan(0)
    expect(top.snapshot).not.toBeNull()
    expect(top.snapshot!.chunks.length).toBeGreaterThan(1000)
    expect(top.timeline!.samples.length).toBeGreaterThan(10)
    expect(result.stderr).toContain(`pid ${top.pid}  ${PYTHON} -c`)
    expect(result.stderr).toMatch(/main heap +peak heap [\d.]+ MiB, peak live [\d.]+ MiB, utilization [\d.]+%, metadata/)
    expect(result.stderr).toMatch(/[\d,]+ allocs, [\d,]+ frees, [\d,]+ reallocs?; [\d,]+ break moves?, \d+ heaps?, \d+ threads?, 0 bad frees/)

    const svg = readFileSync(map, 'utf8')
    expect(wellFormedSvg(svg)).toBe(true)
    expect(svg).toMatch(new RegExp(`<title>best-fit main heap of .*python3 -c .* \\(pid ${top.pid}\\) at (its peak|exit): 0x[0-9a-f]+\\.\\.0x[0-9a-f]+, `))
    // The legend counts the chunks drawn: the snapshot's live ones, every one of them.
    const live = top.snapshot!.chunks.filter((chunk) => chunk[2] === 'live').length
    expect(svg).toContain(`>live ${live.toLocaleString('en-US')} (`)
    expect(live).toBeGreaterThan(1000)
    const plot = readFileSync(timeline, 'utf8')
    expect(wellFormedSvg(plot)).toBe(true)
    expect(plot).toMatch(new RegExp(`<title>best-fit main heap of .*python3 .* \\(pid ${top.pid}\\): held and live over [\\d,]+ requests</title>`))
  })

  it('node, on every strategy including bump', () => {
    for (const strategy of ['best-fit', 'bump']) {
      const json = join(dir, `node-${strategy}.json`)
      const result = cli(['run', '--allocator', strategy, '--json', json, '--', process.execPath, '-e', 'console.log(JSON.stringify(Array.from({length: 1000}, (_, i) => i)).length)'])
      expect(result.status, result.stderr).toBe(0)
      expect(result.stdout).toBe('3891\n')
      const [top] = readJson(json)
      expect(top.strategy).toBe(strategy)
      expect(top.threads).toBeGreaterThan(1)  // V8's platform threads allocate too
      expect(top.heaps).toBeGreaterThan(1)
    }
  })

  it('sh: a process per command of a pipeline, one map file each', () => {
    const json = join(dir, 'sh.json')
    mkdirSync(join(dir, 'maps'))
    const result = cli(['run', '--json', json, '--map', join(dir, 'maps', 'sh.svg'), '--', 'sh', '-c', 'ls / | sort | head -n 3 >/dev/null; echo done'])
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toBe('done\n')
    const reports = readJson(json)
    const names = reports.map((report) => report.command[0])
    expect(names).toEqual(expect.arrayContaining(['ls', 'sort', 'head']))
    // sh.svg is COMMAND's (or, where sh itself left by _exit, the first reporting process's).
    const drawn = reports.filter((r) => r.snapshot !== null)
    const expected = drawn.map((report, i) => (i === 0 ? 'sh.svg' : `sh-${report.pid}.svg`))
    expect(readdirSync(join(dir, 'maps')).sort()).toEqual(expected.sort())
    expect(result.stderr).toMatch(/--map of \d+ other process(es)?: .*sh-PID\.svg for PID/)
  })

  it('passes the exit status through: a code, a signal, a missing command', () => {
    expect(cli(['run', '--', 'sh', '-c', 'exit 3']).status).toBe(3)
    expect(cli(['run', '--stats', '--', 'sh', '-c', 'kill -TERM $$']).status).toBe(128 + 15)
    const missing = cli(['run', '--stats', '--', 'no-such-command-here', 'x'])
    expect(missing.status).toBe(127)
    expect(missing.stderr).toBe('memory-allocator: run: no-such-command-here: command not found (ENOENT)\n')
  })

  describe.skipIf(CC === undefined)('a bad free (a C program compiled here)', () => {
    let program: string
    beforeAll(() => {
      const source = join(dir, 'double-free.c')
      writeFileSync(
        source,
        [
          '#include <stdio.h>',
          '#include <stdlib.h>',
          'int main(void) {',
          '  char *volatile p = malloc(48);',
          '  free(p);',
          '  free(p);',
          '  puts("after the double free");',
          '  return 0;',
          '}',
        ].join('\n'),
      )
      program = join(dir, 'double-free')
      execFileSync(CC!, ['-O0', '-w', '-o', program, source])
    })

    it('abort (the default): one line naming it, then SIGABRT', () => {
      const result = cli(['run', '--', program])
      expect(result.status).toBe(128 + 6)
      expect(result.stdout).toBe('')
      expect(result.stderr).toMatch(/^memory-allocator: free\(0x[0-9a-f]+\): ERR_DOUBLE_FREE: .*\n/m)
      expect(result.stderr.match(/ERR_DOUBLE_FREE/g)).toHaveLength(1)
    })

    it('report: the line, then the program goes on; the report counts it', () => {
      const json = join(dir, 'bad-free.json')
      const result = cli(['run', '--on-bad-free', 'report', '--stats', '--json', json, '--', program])
      expect(result.status).toBe(0)
      expect(result.stdout).toBe('after the double free\n')
      expect(result.stderr).toMatch(/memory-allocator: free\(0x[0-9a-f]+\): ERR_DOUBLE_FREE/)
      expect(result.stderr).toMatch(/, 1 bad free\n/)
      expect(readJson(json)[0].badFrees).toBe(1)
    })
  })

  it('a command that ends by a signal leaves no report, and --stats says why', () => {
    const json = join(dir, 'killed.json')
    const result = cli(['run', '--stats', '--json', json, '--', 'sh', '-c', 'kill -KILL $$'])
    expect(result.status).toBe(128 + 9)
    expect(result.stderr).toMatch(/\(pid \d+, ended by SIGKILL\) wrote no report/)
    expect(existsSync(json)).toBe(true)
  })
})
