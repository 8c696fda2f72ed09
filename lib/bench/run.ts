/**
 * Running the bench: finding trace files, loading them (or generating the built-in workloads),
 * skipping traces that ask for too much memory, and replaying every trace against every allocator.
 * A failed cell (ERR_OUT_OF_MEMORY, typically the bump allocator) is recorded, not fatal.
 */
import { readdirSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { AllocatorError } from '../errors'
import { replay, type ReplayOptions, type ReplayResult } from '../replay/replay'
import { loadTrace, type Trace } from '../trace/trace'
import { generateTrace, type WorkloadKind } from '../trace/workloads'
import { attachLibcRatios, humanBytes } from '../render/format'
import type { BenchOptions, BenchReport, BenchResult, BenchTrace, ProgressEvent, SkippedTrace, TraceError } from './types'

const TRACE_FILE = /\.rep(\.gz)?$/

export interface ExpandedPaths {
  files: string[]
  /** Arguments that name nothing readable, or a directory without traces; the others still run. */
  errors: TraceError[]
}

/**
 * Files in command-line order; a directory stands for its own *.rep and *.rep.gz files (not
 * those of subdirectories), sorted by name.
 */
export function expandTracePaths(paths: readonly string[]): ExpandedPaths {
  const files: string[] = []
  const errors: TraceError[] = []
  for (const path of paths) {
    let isDirectory: boolean
    try {
      isDirectory = statSync(path).isDirectory()
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'ERR_TRACE_READ'
      errors.push({ file: path, code, message: code === 'ENOENT' ? `no such file or directory: ${path}` : `cannot read ${path}: ${(error as Error).message}` })
      continue
    }
    if (!isDirectory) {
      files.push(path)
      continue
    }
    const names = readdirSync(path, { withFileTypes: true })
      .filter((entry) => !entry.isDirectory() && TRACE_FILE.test(entry.name))
      .map((entry) => entry.name)
      .sort()
    if (names.length === 0) errors.push({ file: path, code: 'ERR_NO_TRACES', message: `no .rep or .rep.gz files in directory ${path}` })
    for (const name of names) files.push(join(path, name))
  }
  return { files, errors }
}

export type TraceSource =
  | { kind: 'file'; path: string }
  | { kind: 'workload'; workload: WorkloadKind; seed: number; ops?: number }

export interface LoadedTrace {
  /** Unique among the loaded traces; results and tables use it. */
  name: string
  source: string
  trace: Trace
}

export interface LoadResult {
  traces: LoadedTrace[]
  errors: TraceError[]
}

function describeSource(source: TraceSource): string {
  if (source.kind === 'file') return source.path
  return `built-in, seed ${source.seed}${source.ops === undefined ? '' : `, ${source.ops} ops`}`
}

/**
 * Loads or generates every trace. A file that cannot be read or parsed becomes an entry in
 * `errors` (the message names the file and, for ERR_TRACE_FORMAT, the line) and the rest still
 * load. Two traces with the same name are told apart by their directory.
 */
export function loadTraces(sources: readonly TraceSource[], onLoad?: (index: number, source: TraceSource) => void): LoadResult {
  const traces: LoadedTrace[] = []
  const errors: TraceError[] = []
  const used = new Set<string>()
  sources.forEach((source, index) => {
    onLoad?.(index, source)
    let trace: Trace
    try {
      trace =
        source.kind === 'file'
          ? loadTrace(source.path)
          : generateTrace(source.workload, { seed: source.seed, ...(source.ops === undefined ? {} : { ops: source.ops }) })
    } catch (error) {
      if (source.kind !== 'file') throw error
      const code = error instanceof AllocatorError ? error.code : ((error as NodeJS.ErrnoException).code ?? 'ERR_TRACE_READ')
      errors.push({ file: source.path, code, message: `${source.path}: ${(error as Error).message}` })
      return
    }
    let name = trace.name
    if (used.has(name) && source.kind === 'file') name = `${basename(dirname(source.path))}/${name}`
    for (let n = 2; used.has(name); n++) name = `${trace.name}#${n}`
    used.add(name)
    traces.push({ name, source: describeSource(source), trace })
  })
  return { traces, errors }
}

export interface RunHooks {
  /** Before every replay, and once more at the end (done === total). */
  onProgress?: (event: ProgressEvent) => void
  /** A cell failed for a reason other than running out of memory. */
  onWarning?: (message: string) => void
  /** For tests: replaces replay(). */
  replay?: (trace: Trace, options: ReplayOptions) => ReplayResult
  /**
   * Replay a small generated trace once per allocator, untimed, before measuring (default true).
   * Without it the first replay of the process (cold code, fresh pages) lands on the first
   * allocator of the first trace: several times its steady ns/op on short traces.
   */
  warmUp?: boolean
}

const WARM_UP_OPS = 2000

/** Codes that mean the whole run cannot go on (no addon, options replay rejects). */
const FATAL_CODES = new Set(['ERR_UNSUPPORTED', 'ERR_INVALID_OPTION', 'ERR_BRK_MAIN_THREAD_ONLY'])

export function runBench(loaded: readonly LoadedTrace[], options: BenchOptions, hooks: RunHooks = {}): BenchReport {
  const replayTrace = hooks.replay ?? replay
  const skipped: SkippedTrace[] = []
  const runnable: LoadedTrace[] = []
  for (const item of loaded) {
    if (item.trace.peakLiveBytes > options.maxLiveBytes) {
      skipped.push({
        name: item.name,
        source: item.source,
        peakLiveBytes: item.trace.peakLiveBytes,
        reason: `needs ${humanBytes(item.trace.peakLiveBytes)} live at its peak, more than --max-live ${humanBytes(options.maxLiveBytes)}`,
      })
    } else {
      runnable.push(item)
    }
  }

  const traces: BenchTrace[] = runnable.map(({ name, source, trace }) => ({
    name,
    source,
    ops: trace.opCount,
    peakLiveBytes: trace.peakLiveBytes,
    peakLiveChunks: trace.peakLiveChunks,
  }))
  if (hooks.warmUp !== false && runnable.length > 0) {
    const warmUpTrace = generateTrace('program-mix', { ops: WARM_UP_OPS })
    for (const allocator of options.allocators) {
      try {
        replayTrace(warmUpTrace, {
          allocator: allocator as ReplayOptions['allocator'],
          repeat: 1,
          touch: options.touch,
          growth: options.growth,
          segregateSmall: options.segregateSmall,
          alignment: options.alignment,
        })
      } catch (error) {
        // The measured runs report failures; only errors that end the run matter here.
        if (!(error instanceof AllocatorError) || FATAL_CODES.has(error.code)) throw error
      }
    }
  }

  const results: BenchResult[] = []
  const total = runnable.length * options.allocators.length
  let done = 0
  runnable.forEach(({ name, trace }, traceIndex) => {
    for (const allocator of options.allocators) {
      hooks.onProgress?.({ done, total, traceIndex, traceCount: runnable.length, trace: name, allocator })
      results.push(runCell(replayTrace, trace, name, allocator, options, hooks))
      done++
    }
  })
  if (total > 0) {
    const last = runnable.length - 1
    hooks.onProgress?.({ done, total, traceIndex: last, traceCount: runnable.length, trace: runnable[last].name, allocator: options.allocators.at(-1)! })
  }
  return { options, traces, skipped, errors: [], results: attachLibcRatios(results) }
}

function runCell(
  replayTrace: NonNullable<RunHooks['replay']>,
  trace: Trace,
  name: string,
  allocator: string,
  options: BenchOptions,
  hooks: RunHooks,
): BenchResult {
  try {
    const result = replayTrace(trace, {
      allocator: allocator as ReplayOptions['allocator'],
      repeat: options.repeat,
      touch: options.touch,
      growth: options.growth,
      segregateSmall: options.segregateSmall,
      alignment: options.alignment,
    })
    return { ...result, trace: name, ratioToLibc: null, failed: null }
  } catch (error) {
    if (!(error instanceof AllocatorError) || FATAL_CODES.has(error.code)) throw error
    if (error.code !== 'ERR_OUT_OF_MEMORY') hooks.onWarning?.(`${allocator} failed on ${name}: ${error.code}: ${error.message}`)
    return {
      allocator,
      trace: name,
      ops: trace.opCount,
      nsPerOp: null,
      runsNsPerOp: [],
      peakLiveBytes: trace.peakLiveBytes,
      peakHeapBytes: null,
      utilization: null,
      metadataBytes: null,
      brkCalls: null,
      searchSteps: null,
      ratioToLibc: null,
      failed: error.code,
      failureMessage: error.message,
    }
  }
}
