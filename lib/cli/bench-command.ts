/**
 * `memory-allocator bench [options] -- COMMAND [ARGS...]`: COMMAND under each allocator, measured
 * by native/measure (lib/run/command-bench.ts), reported as the trace bench reports: a table with
 * ratios to libc, or --json, --csv, and an --svg chart. The trace bench hands its arguments here
 * when they hold `--`.
 */
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { LIBC, formatDuration } from '../render/format'
import { PROGRAM, Progress, UsageError, checkOutputFile, parseCommandArgs, progressBar, wholeNumberOption, type CliIo } from './support'
import { AllocatorError } from '../errors'
import { parseMallocSpecs, type MallocSpec } from '../replay/malloc-rows'
import { STRATEGIES } from '../heap/options'
import { formatCommandBenchCsv, formatCommandBenchTable, renderCommandBenchSvg } from '../run/command-bench-format'
import { mallocLibraryProblem, runCommandBench, type CommandBenchReport } from '../run/command-bench'

const DEFAULT_REPEAT = 3
/** bump never reuses memory: a real program's heap only grows under it, so it runs when named. */
export const DEFAULT_COMMAND_ALLOCATORS: readonly string[] = [...STRATEGIES.filter((strategy) => strategy !== 'bump'), LIBC]
const COMMAND_ALLOCATORS: readonly string[] = [...STRATEGIES, LIBC]

export const BENCH_COMMAND_HELP = `Usage: ${PROGRAM} bench [options] -- COMMAND [ARGS...]

Runs COMMAND under each allocator, --repeat times each, interleaved (one run
of every allocator, then the next round), and prints per allocator the median
wall time, CPU time (user + system) and the command's peak resident set, each
with its ratio to libc, and whether its output was libc's.

Options:
  --allocators LIST  comma-separated: ${COMMAND_ALLOCATORS.join(', ')}
                     (default: all but bump, which never reuses memory). Our
                     strategies run COMMAND as 'run' does; libc is COMMAND as
                     it is
  --malloc NAME=LIBRARY
                     also run COMMAND with a malloc library (jemalloc,
                     mimalloc, ...) preloaded, as row NAME; repeatable
  --repeat N         runs per allocator; the median is reported (default ${DEFAULT_REPEAT})
  --json             print one JSON document instead of the table
  --csv              print CSV, one row per allocator, instead
  --svg FILE         also write an SVG chart (wall, CPU, peak RSS ÷ libc)
  -h, --help         show this help

COMMAND's stdout is captured and compared with libc's (a row whose output
differs says DIFFERS); its stdin is /dev/null. A run that exits non-zero or is
killed fails its row (the end of its stderr is shown) and the other rows still
run. Peak RSS comes from wait4: the command's largest resident set, or that of
a process it waited for. While it runs, a progress bar is drawn on stderr when
stderr is a terminal.

Exit status: 0 done; 1 a row failed, its output differed from libc's, or a
--malloc library cannot be used (the other rows still ran); 2 usage error.

Examples:
  ${PROGRAM} bench -- python3 -c 'print(sum(i * i for i in range(10**6)))'
  ${PROGRAM} bench --allocators best-fit,libc --malloc jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 -- gcc -c big.c
`

const OPTIONS = {
  allocators: { type: 'string' },
  malloc: { type: 'string', multiple: true },
  repeat: { type: 'string' },
  json: { type: 'boolean' },
  csv: { type: 'boolean' },
  svg: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const usage = (message: string): UsageError => new UsageError(message, 'bench')

function parseAllocators(text: string | undefined): string[] {
  if (text === undefined) return [...DEFAULT_COMMAND_ALLOCATORS]
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '')
  if (names.length === 0) throw usage('--allocators needs at least one allocator')
  for (const name of names) {
    if (!COMMAND_ALLOCATORS.includes(name)) throw usage(`unknown allocator ${JSON.stringify(name)} (expected ${COMMAND_ALLOCATORS.join(', ')})`)
  }
  return [...new Set(names)]
}

/** Whether `bench`'s arguments ask for a command (`--` among them) rather than traces. */
export function benchesCommand(args: readonly string[]): boolean {
  return args.includes('--')
}

export async function runBenchOfCommand(args: readonly string[], io: CliIo): Promise<number> {
  // Only `--` starts COMMAND here: a word before it is a TRACE, which cannot be combined.
  const dashes = args.indexOf('--')
  const [ours, command] = dashes < 0 ? [args, []] : [args.slice(0, dashes), args.slice(dashes + 1)]
  const { values, positionals } = parseCommandArgs('bench', ours, OPTIONS, { svg: 'a file name', allocators: 'a list of allocators', malloc: 'NAME=LIBRARY', repeat: 'a number' })
  if (values.help) {
    io.stdout.write(BENCH_COMMAND_HELP)
    return 0
  }
  if (positionals.length > 0) throw usage(`TRACE files and -- COMMAND cannot be combined (got ${JSON.stringify(positionals[0])} before --)`)
  if (command.length === 0) throw usage('no COMMAND after -- (bench [options] -- COMMAND [ARGS...])')
  if (values.json && values.csv) throw usage('--json and --csv cannot be combined (each replaces the table)')
  if (values.svg !== undefined) checkOutputFile('bench', 'svg', values.svg)
  const allocators = parseAllocators(values.allocators)
  const repeat = wholeNumberOption('bench', 'repeat', values.repeat, DEFAULT_REPEAT, 1)
  let specs: MallocSpec[]
  try {
    specs = parseMallocSpecs(values.malloc)
  } catch (error) {
    if (error instanceof AllocatorError) throw usage(error.message)
    throw error
  }

  const progress = new Progress(io)
  const usable = specs.filter((spec) => {
    const problem = mallocLibraryProblem(spec)
    if (problem !== null) progress.message(`${PROGRAM}: bench: ${problem}; its row is left out\n`)
    return problem === null
  })
  allocators.push(...usable.map((spec) => spec.name))
  if (allocators.length === 0) {
    io.stderr.write(`${PROGRAM}: bench: no allocator left to run\n`)
    return 1
  }

  let report: CommandBenchReport
  try {
    report = await runCommandBench(command, { allocators, mallocs: usable, repeat }, {
      onProgress: (done, total, allocator, round) => {
        if (done < total) progress.draw(progressBar(done / total, `run ${done + 1}/${total}: ${allocator} (round ${round + 1} of ${repeat}), ${formatDuration(progress.elapsed())}`, progress.width()))
      },
    })
  } catch (error) {
    progress.finish('')
    if (!(error instanceof AllocatorError)) throw error
    io.stderr.write(`${PROGRAM}: bench: ${error.code}: ${error.message}\n`)
    return 1
  }
  progress.finish(`${report.rows.reduce((sum, row) => sum + row.runs.length, 0)} runs in ${formatDuration(progress.elapsed())}\n`)

  if (values.json) {
    const cpus = os.cpus()
    const document = {
      command: report.command,
      node: process.version,
      machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, platform: process.platform, arch: process.arch, osRelease: os.release() },
      date: new Date().toISOString(),
      options: { allocators, repeat, mallocs: usable },
      libcOutputVaries: report.libcOutputVaries,
      rows: report.rows,
    }
    io.stdout.write(JSON.stringify(document, null, 2) + '\n')
  } else if (values.csv) {
    io.stdout.write(formatCommandBenchCsv(report))
  } else {
    io.stdout.write(formatCommandBenchTable(report))
  }
  let ok = usable.length === specs.length
  if (values.svg !== undefined) {
    const cpus = os.cpus()
    const subtitle = `Node ${process.version} · ${cpus[0]?.model ?? 'unknown'} (${cpus.length} cores) · ${new Date().toISOString().slice(0, 10)}`
    try {
      writeFileSync(values.svg, renderCommandBenchSvg(report, { subtitle }))
    } catch (error) {
      io.stderr.write(`${PROGRAM}: bench: cannot write ${values.svg}: ${(error as Error).message}\n`)
      ok = false
    }
  }
  for (const row of report.rows) {
    if (row.failed !== null) {
      ok = false
      if (values.json || values.csv) io.stderr.write(`${PROGRAM}: bench: ${row.allocator} failed: ${row.failed}\n`)
    } else if (row.output === 'differs') {
      ok = false
      io.stderr.write(`${PROGRAM}: bench: ${row.allocator}: COMMAND's output differs from libc's\n`)
    }
  }
  return ok ? 0 : 1
}
