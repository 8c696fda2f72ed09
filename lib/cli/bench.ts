/**
 * `memory-allocator bench [TRACE...]`: replays traces (or the built-in workloads) against every
 * allocator asked for, through the bench runner (lib/bench/run.ts), and prints the tables, JSON,
 * CSV or an SVG chart.
 */
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { basename } from 'node:path'
import { runBench, expandTracePaths, loadTraces, type TraceSource } from '../bench/run'
import type { BenchOptions, BenchReport, TraceError } from '../bench/types'
import { DEFAULT_GROWTH, DEFAULT_SEGREGATE_SMALL, MAX_GROWTH, MAX_SEGREGATE_SMALL } from '../heap/options'
import { renderSvg } from '../render/bench-svg'
import { formatDuration, formatInteger, formatProgress, formatReportCsv, formatReportTables, summarize } from '../render/format'
import { mallocReplay, parseMallocSpecs, usableMallocs } from '../replay/malloc-rows'
import { REPLAY_ALLOCATORS } from '../replay/replay'
import { WORKLOAD_KINDS } from '../trace/workloads'
import { BENCH_COMMAND_HELP, benchesCommand, runBenchOfCommand } from './bench-command'
import {
  MAX_REPEAT,
  PROGRAM,
  Progress,
  UsageError,
  alignmentOption,
  byteOption as commandByteOption,
  checkOutputFile,
  packageVersion,
  parseCommandArgs,
  repeatOption,
  wholeNumberOption,
  wrapWords,
  type CliIo,
  type Command,
} from './support'

const DEFAULT_REPEAT = 5
const DEFAULT_MAX_LIVE = 4 * 2 ** 30
const DEFAULT_WORKLOAD_OPS = 100_000
/**
 * Our heap's cap on the built-in workloads. Uncapped, bump on realloc-growth holds 1.27 GiB (it
 * never reuses a chunk, and every realloc that grows moves), and `bench`, the README's first
 * command, peaked at 1.44 GB of RSS; every other cell holds at most 113 MiB (bump on fifo), so
 * 256 MiB leaves them alone and turns that one into "oom".
 */
const DEFAULT_WORKLOAD_MAX_HEAP = 256 * 2 ** 20

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
                     (default ${DEFAULT_REPEAT}, at most ${MAX_REPEAT})
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
  --max-heap BYTES   our heap may hold at most BYTES from the OS; a replay
                     that needs more shows as "oom" (HeapOptions.maxHeapBytes;
                     default 256M for the built-in workloads, where bump on
                     realloc-growth would hold 1.27 GiB; none for TRACE
                     files; 0: none)
  --malloc NAME=LIBRARY
                     also replay with a malloc library (jemalloc, mimalloc, ...)
                     preloaded in a child process, as row NAME; repeatable.
                     libc then runs in a child too; their peak heap is the
                     child's peak RSS growth. A library that cannot be
                     preloaded is left out, named in --json's "errors"; exit 1
  --seed N           seed of the built-in workloads (default 1)
  --ops N            requests per built-in workload (default ${DEFAULT_WORKLOAD_OPS})
  --json             print one JSON document instead of the tables
  --csv              print CSV, one row per trace and allocator, instead
  --svg FILE         also write an SVG chart (time ÷ libc, utilization) to FILE;
                     "wrote FILE" on stderr
  -h, --help         show this help

BYTES takes K, M, G suffixes (powers of 1024): 64K, 4G.
An allocator that fails a trace (e.g. bump running out of memory) shows as
"oom" and is left out of that allocator's means; the run goes on.
While it runs, a progress bar is drawn on stderr when stderr is a terminal.

Exit status: 0 done; 1 a trace could not be read or parsed (ERR_TRACE_FORMAT;
the message names the file and line; the other traces still run) or a --malloc
library could not be preloaded; 2 usage error (nothing ran). When no trace
could be run, nothing is printed on stdout but --json's document (its "errors"
say why).

Examples:
  ${PROGRAM} bench --repeat 3
  ${PROGRAM} bench traces/ --allocators best-fit,libc --growth 0
  ${PROGRAM} bench traces/a.rep traces/b.rep.gz --json > results.json
  ${PROGRAM} bench traces/ --repeat 1 --svg bench.svg
`

const BENCH_OPTIONS = {
  allocators: { type: 'string' },
  repeat: { type: 'string' },
  'no-touch': { type: 'boolean' },
  growth: { type: 'string' },
  'segregate-small': { type: 'string' },
  alignment: { type: 'string' },
  'max-live': { type: 'string' },
  'max-heap': { type: 'string' },
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

export async function runBenchCommand(args: readonly string[], io: CliIo): Promise<number> {
  // `bench [options] -- COMMAND` times a program instead of traces (lib/cli/bench-command.ts).
  if (benchesCommand(args)) return runBenchOfCommand(args, io)
  const { values, positionals } = parseBenchArgs(args)
  if (values.help) {
    io.stdout.write(`${BENCH_HELP}\n${BENCH_COMMAND_HELP}`)
    return 0
  }
  if (values.json && values.csv) throw benchUsage('--json and --csv cannot be combined (each replaces the tables)')
  if (values.svg !== undefined) checkOutputFile('bench', 'svg', values.svg)
  const options: BenchOptions = {
    allocators: parseAllocators(values.allocators),
    repeat: repeatOption('bench', values.repeat, DEFAULT_REPEAT),
    touch: values['no-touch'] !== true,
    growth: byteOption('growth', values.growth, DEFAULT_GROWTH),
    segregateSmall: byteOption('segregate-small', values['segregate-small'], DEFAULT_SEGREGATE_SMALL),
    alignment: alignmentOption('bench', values.alignment),
    maxLiveBytes: byteOption('max-live', values['max-live'], DEFAULT_MAX_LIVE),
    maxHeapBytes: byteOption('max-heap', values['max-heap'], positionals.length === 0 ? DEFAULT_WORKLOAD_MAX_HEAP : 0) || null,
  }
  if (options.growth > MAX_GROWTH) throw benchUsage(`--growth ${values.growth} is more than 1 TiB`)
  if (options.segregateSmall > MAX_SEGREGATE_SMALL) throw benchUsage(`--segregate-small ${values['segregate-small']} is more than 1 MiB`)
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
  const mallocErrors: TraceError[] = []
  const mallocs = usableMallocs(mallocSpecs, (message, spec, code) => {
    progress.message(`${PROGRAM}: ${message}\n`)
    mallocErrors.push({ file: spec.library, allocator: spec.name, code, message })
  })
  options.allocators.push(...mallocs.map((spec) => spec.name))
  const loaded = loadTraces(sources, (index, source) =>
    progress.draw(`loading ${index + 1}/${sources.length} ${source.kind === 'file' ? basename(source.path) : source.workload}`),
  )
  loaded.errors.unshift(...expanded.errors)
  loaded.errors.push(...mallocErrors)
  for (const error of loaded.errors) if (error.allocator === undefined) progress.message(`${PROGRAM}: ${error.code}: ${error.message}\n`)

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
  } else if (report.traces.length === 0 && report.skipped.length === 0 && report.errors.length > 0) {
    // Nothing ran and stderr said why: an empty table or a CSV header would only look like a result.
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
    io.stderr.write(`${PROGRAM}: wrote ${values.svg}\n`)
  }
  return report.errors.length > 0 ? 1 : 0
}

export const BENCH_COMMAND: Command = {
  name: 'bench',
  usage: '[TRACE...] | -- COMMAND',
  summary: "replay allocation traces (or run a program) against the heap's strategies and the process's malloc; report speed, memory use, utilization",
  help: `${BENCH_HELP}\n${BENCH_COMMAND_HELP}`,
  run: runBenchCommand,
}

