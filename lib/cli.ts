/**
 * The `memory-allocator` command line. bin/memory-allocator.js calls main(argv), which resolves to
 * the exit code (DESIGN.md): 0 done, 1 a run failed (the others still ran), 2 a usage error
 * (nothing ran). main takes its output streams as an argument so that tests run it in-process.
 * Each subcommand is one entry of COMMANDS; bench lives here, the others in files of their own.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { basename, join } from 'node:path'
import { AllocatorError } from './errors'
import { DEFAULT_ALIGNMENT, DEFAULT_GROWTH, DEFAULT_SEGREGATE_SMALL } from './options'
import { packageRoot } from './package-root'
import { REPLAY_ALLOCATORS } from './replay'
import { WORKLOAD_KINDS } from './workloads'
import {
  formatDuration,
  formatInteger,
  formatProgress,
  formatReportCsv,
  formatReportTables,
  summarize,
} from './bench/format'
import { expandTracePaths, loadTraces, runBench, type TraceSource } from './bench/run'
import { renderSvg } from './bench/svg'
import type { BenchOptions, BenchReport } from './bench/types'
import {
  PROGRAM,
  Progress,
  UsageError,
  byteOption as commandByteOption,
  checkOutputFile,
  colorWanted,
  parseCommandArgs,
  wholeNumberOption,
  type CliIo,
  type Command,
} from './cli-support'
import { DEMO_COMMAND } from './demo'
import { REPLAY_COMMAND } from './replay-command'
import { RECORD_HELP, recordCommand } from './cli-record'
import { mallocReplay, parseMallocSpecs, usableMallocs } from './malloc-rows'

export type { CliIo, Command } from './cli-support'

const DEFAULT_REPEAT = 5
const DEFAULT_MAX_LIVE = 4 * 2 ** 30
const DEFAULT_WORKLOAD_OPS = 100_000

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** Wraps words to `width` columns, every line indented by `indent` spaces. */
function wrapWords(text: string, indent: number, width: number): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(line)
  return lines.map((l) => ' '.repeat(indent) + l).join('\n')
}

export const BENCH_HELP = `Usage: ${PROGRAM} bench [TRACE...] [options]

Replays malloc-lab traces inside native code against each allocator and prints,
per trace, one row per allocator: ns/op, ratio to libc, peak heap, peak live,
heap/live, utilization, metadata, brk calls and search steps per request; then
a summary of geometric means over the traces.

TRACE is a .rep or .rep.gz file, or a directory (its *.rep and *.rep.gz files,
sorted; not its subdirectories). Without TRACE, the built-in workloads run:
${WORKLOAD_KINDS.join(', ')}
(seed 1, ${formatInteger(DEFAULT_WORKLOAD_OPS)} requests each).

Options:
  --allocators LIST  comma-separated (default: all of them):
${wrapWords(`${REPLAY_ALLOCATORS.join(', ')}. libc is the process's own malloc`, 21, 80)}
  --repeat N         runs per trace and allocator; the median is reported
                     (default ${DEFAULT_REPEAT})
  --no-touch         do not write the allocated bytes (by default every
                     allocated byte is written once, as a program would)
  --growth BYTES     least bytes per break move of our heap (default ${DEFAULT_GROWTH}).
                     Peak heap and utilization depend on it: the malloc-lab
                     accounting wants --growth 0 (or page steps, 4096)
  --alignment BYTES  our heap's alignment, a power of two 8..4096 (default 16)
  --segregate-small BYTES
                     our heap places requests up to BYTES at the high end of
                     the free space they split, apart from larger ones
                     (HeapOptions.segregateSmall; default 64; 0: off)
  --max-live BYTES   skip traces whose peak live payload is larger (default 4G)
  --malloc NAME=LIBRARY
                     also replay with a malloc library (jemalloc, mimalloc, ...)
                     preloaded in a child process, as row NAME; repeatable.
                     libc then runs in a child too; their peak heap is the
                     child's peak RSS growth. A library that fails: exit 1
  --seed N           seed of the built-in workloads (default 1)
  --ops N            requests per built-in workload (default ${DEFAULT_WORKLOAD_OPS})
  --json             print one JSON document instead of the tables
  --csv              print CSV, one row per trace and allocator, instead
  --svg FILE         also write an SVG chart (time ÷ libc, utilization) to FILE
  -h, --help         show this help

BYTES takes K, M, G suffixes (powers of 1024): 64K, 4G.
An allocator that fails a trace (e.g. bump running out of memory) shows as
"oom" and is left out of that allocator's means; the run goes on.
While it runs, a progress bar is drawn on stderr when stderr is a terminal.

Exit status: 0 done; 1 a trace could not be read or parsed (the message names
the file and line; the other traces still run); 2 usage error (nothing ran).

Examples:
  ${PROGRAM} bench --repeat 3
  ${PROGRAM} bench traces/ --allocators best-fit,libc --growth 0
  ${PROGRAM} bench traces/a.rep traces/b.rep.gz --json > results.json
  ${PROGRAM} bench traces/ --repeat 1 --svg bench.svg
`

function processIo(): CliIo {
  // `memory-allocator bench --json | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error
    process.exit(process.exitCode ?? 0)
  })
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns,
    color: colorWanted(process.stdout.isTTY === true),
  }
}

const BENCH_COMMAND: Command = {
  name: 'bench',
  usage: '[TRACE...]',
  summary: "replay allocation traces against the heap's strategies and the process's malloc; report speed, memory use, utilization",
  help: BENCH_HELP,
  run: (args, io) => bench(args, io),
}

/** The subcommands, in the order the main help lists them. */
const RECORD_COMMAND: Command = {
  name: 'record',
  usage: '[-o FILE.rep] -- COMMAND [ARGS...]',
  summary: 'run COMMAND and record its malloc calls into a trace',
  help: RECORD_HELP,
  run: recordCommand,
}

export const COMMANDS: readonly Command[] = [BENCH_COMMAND, REPLAY_COMMAND, RECORD_COMMAND, DEMO_COMMAND]

function findCommand(name: string | undefined): Command | undefined {
  return COMMANDS.find((command) => command.name === name)
}

/** "  bench [TRACE...]   replay ...", the summary wrapped beside the usage (or under a long one). */
function commandLine(command: Command): string {
  const usage = `  ${command.name} ${command.usage}`.trimEnd()
  const summary = wrapWords(command.summary, 21, 80)
  return usage.length <= 19 ? usage.padEnd(21) + summary.slice(21) : `${usage}\n${summary}`
}

export const MAIN_HELP = `Usage: ${PROGRAM} <command> [options]

Commands:
${COMMANDS.map(commandLine).join('\n')}

Options:
  -h, --help         show this help
  -v, --version      print the version

Run '${PROGRAM} help COMMAND' or '${PROGRAM} COMMAND --help' for details.
Exit status: 0 done; 1 a run failed (the others still ran); 2 usage error
(nothing ran).
`

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    const [first, ...rest] = argv
    if (first === undefined) {
      io.stderr.write(MAIN_HELP)
      return 2
    }
    if (first === '-h' || first === '--help' || first === 'help') {
      if (rest.length === 0) {
        io.stdout.write(MAIN_HELP)
        return 0
      }
      const command = findCommand(rest[0])
      if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(rest[0])}`)
      io.stdout.write(command.help)
      return 0
    }
    if (first === '-v' || first === '--version') {
      io.stdout.write(`${packageVersion()}\n`)
      return 0
    }
    const command = findCommand(first)
    if (command !== undefined) return await command.run(rest, io)
    if (first.startsWith('-')) throw new UsageError(`unknown option ${first}`)
    throw new UsageError(`unknown command ${JSON.stringify(first)} (the commands are ${COMMANDS.map((c) => c.name).join(', ')})`)
  } catch (error) {
    if (error instanceof UsageError) {
      const help = error.command === undefined ? `${PROGRAM} --help` : `${PROGRAM} ${error.command} --help`
      io.stderr.write(`${PROGRAM}: ${error.message}\nRun '${help}' for usage.\n`)
      return 2
    }
    if (error instanceof AllocatorError) {
      io.stderr.write(`${PROGRAM}: ${error.code}: ${error.message}\n`)
      return error.code === 'ERR_INVALID_OPTION' ? 2 : 1
    }
    throw error
  }
}

const BENCH_OPTIONS = {
  allocators: { type: 'string' },
  repeat: { type: 'string' },
  'no-touch': { type: 'boolean' },
  growth: { type: 'string' },
  'segregate-small': { type: 'string' },
  alignment: { type: 'string' },
  'max-live': { type: 'string' },
  seed: { type: 'string' },
  ops: { type: 'string' },
  json: { type: 'boolean' },
  csv: { type: 'boolean' },
  svg: { type: 'string' },
  malloc: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const

function parseBenchArgs(args: readonly string[]) {
  return parseCommandArgs('bench', args, BENCH_OPTIONS, { svg: 'a file name', allocators: 'a list of allocators' })
}

const benchUsage = (message: string): UsageError => new UsageError(message, 'bench')
function wholeNumber(name: string, text: string | undefined, fallback: number, min: number): number {
  return wholeNumberOption('bench', name, text, fallback, min)
}

function byteOption(name: string, text: string | undefined, fallback: number): number {
  return commandByteOption('bench', name, text, fallback)
}

function parseAllocators(text: string | undefined): string[] {
  if (text === undefined) return [...REPLAY_ALLOCATORS]
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '')
  if (names.length === 0) throw benchUsage('--allocators needs at least one allocator')
  for (const name of names) {
    if (!(REPLAY_ALLOCATORS as readonly string[]).includes(name)) {
      throw benchUsage(`unknown allocator ${JSON.stringify(name)} (expected ${REPLAY_ALLOCATORS.join(', ')})`)
    }
  }
  return [...new Set(names)]
}

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus()
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    platform: process.platform,
    arch: process.arch,
    osRelease: os.release(),
    totalMemoryBytes: os.totalmem(),
    libc: header?.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : null,
  }
}

async function bench(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseBenchArgs(args)
  if (values.help) {
    io.stdout.write(BENCH_HELP)
    return 0
  }
  if (values.json && values.csv) throw benchUsage('--json and --csv cannot be combined (each replaces the tables)')
  if (values.svg !== undefined) checkOutputFile('bench', 'svg', values.svg)
  const options: BenchOptions = {
    allocators: parseAllocators(values.allocators),
    repeat: wholeNumber('repeat', values.repeat, DEFAULT_REPEAT, 1),
    touch: values['no-touch'] !== true,
    growth: byteOption('growth', values.growth, DEFAULT_GROWTH),
    segregateSmall: byteOption('segregate-small', values['segregate-small'], DEFAULT_SEGREGATE_SMALL),
    alignment: byteOption('alignment', values.alignment, DEFAULT_ALIGNMENT),
    maxLiveBytes: byteOption('max-live', values['max-live'], DEFAULT_MAX_LIVE),
  }
  if (options.growth > 2 ** 40) throw benchUsage(`--growth ${values.growth} is more than 1 TiB`)
  if (options.alignment < 8 || options.alignment > 4096 || (options.alignment & (options.alignment - 1)) !== 0) {
    throw benchUsage(`--alignment ${values.alignment} is not a power of two from 8 to 4096`)
  }
  if (options.segregateSmall > 2 ** 20) throw benchUsage(`--segregate-small ${values['segregate-small']} is more than 1 MiB`)
  const seed = wholeNumber('seed', values.seed, 1, 0)
  const ops = wholeNumber('ops', values.ops, DEFAULT_WORKLOAD_OPS, 1)
  if (positionals.length > 0 && (values.seed !== undefined || values.ops !== undefined)) {
    throw benchUsage('--seed and --ops apply to the built-in workloads, not to TRACE files')
  }

  const expanded = positionals.length === 0 ? { files: [], errors: [] } : expandTracePaths(positionals)
  const sources: TraceSource[] =
    positionals.length === 0
      ? WORKLOAD_KINDS.map((workload) => ({ kind: 'workload', workload, seed, ...(values.ops === undefined ? {} : { ops }) }))
      : expanded.files.map((path) => ({ kind: 'file', path }))

  const progress = new Progress(io)
  const warn = (message: string): void => progress.message(`${PROGRAM}: warning: ${message}\n`)
  const mallocSpecs = parseMallocSpecs(values.malloc)
  const mallocs = usableMallocs(mallocSpecs, (message) => progress.message(`${PROGRAM}: ${message}\n`))
  options.allocators.push(...mallocs.map((spec) => spec.name))
  const loaded = loadTraces(sources, (index, source) =>
    progress.draw(`loading ${index + 1}/${sources.length} ${source.kind === 'file' ? basename(source.path) : source.workload}`),
  )
  loaded.errors.unshift(...expanded.errors)
  for (const error of loaded.errors) progress.message(`${PROGRAM}: ${error.code}: ${error.message}\n`)

  let report: BenchReport
  try {
    report = runBench(loaded.traces, options, {
      onProgress: (event) => progress.draw(formatProgress({ ...event, elapsedMs: progress.elapsed() }, progress.width())),
      onWarning: warn,
      ...(mallocSpecs.length > 0 ? { replay: mallocReplay(mallocs) } : {}),
    })
  } catch (error) {
    progress.finish('')
    throw error
  }
  report.errors = loaded.errors
  progress.finish(
    report.results.length > 0 ? `${report.results.length} replays of ${report.traces.length} traces in ${formatDuration(progress.elapsed())}\n` : '',
  )
  const summary = summarize(report.results, options.allocators)

  if (values.json || values.csv) {
    // Skips are part of the tables; with machine-readable output they go to stderr.
    for (const skipped of report.skipped) warn(`skipped ${skipped.name} (${skipped.source}): ${skipped.reason}`)
  }
  if (values.json) {
    const document = {
      version: packageVersion(),
      node: process.version,
      machine: machineInfo(),
      date: new Date().toISOString(),
      options: { ...options, traces: report.traces },
      results: report.results,
      summary,
      skipped: report.skipped,
      errors: report.errors,
    }
    io.stdout.write(JSON.stringify(document, null, 2) + '\n')
  } else if (values.csv) {
    io.stdout.write(formatReportCsv(report))
  } else {
    io.stdout.write(formatReportTables(report, summary))
  }

  if (values.svg !== undefined) {
    const machine = machineInfo()
    const subtitle = `Node ${process.version} · ${machine.cpu} (${machine.cores} cores) · ${machine.platform}-${machine.arch} · ${new Date().toISOString().slice(0, 10)}`
    try {
      writeFileSync(values.svg, renderSvg(report, summary, { subtitle }))
    } catch (error) {
      io.stderr.write(`${PROGRAM}: cannot write ${values.svg}: ${(error as Error).message}\n`)
      return 1
    }
  }
  return report.errors.length > 0 || mallocs.length < mallocSpecs.length ? 1 : 0
}
