/**
 * `bench -- COMMAND`: one command under several allocators (our strategies through the preloaded
 * malloc library, as `run` does; `libc`, the plain process; every `--malloc` library preloaded),
 * each `repeat` times, interleaved round-robin so that a slow drift of the machine (another job,
 * the CPU's clock) falls on every allocator alike instead of on whichever ran last. Reports per
 * allocator the medians of wall time, CPU time and the command's peak RSS, their ratios to libc,
 * and whether its output was libc's.
 */
import { existsSync } from 'node:fs'
import { LIBC, ratio } from '../render/format'
import { checkMallocLibrary } from '../replay/elf'
import type { MallocSpec } from '../replay/malloc-rows'
import { STRATEGIES } from '../heap/options'
import type { Strategy } from '../types'
import { preloadFirst, runEnvironment } from './environment'
import { requireMallocLibrary } from './library'
import { measureRun, type MeasuredRun } from './measure'

export interface CommandBenchOptions {
  /** Row order: strategies, `libc`, and the names of `mallocs`. */
  allocators: string[]
  mallocs: MallocSpec[]
  repeat: number
  cwd?: string
}

/**
 * Whether a row's stdout was libc's: 'same', 'differs', or 'unknown' (libc not run, failed, or its
 * own runs disagreed, so that there is nothing to compare with).
 */
export type OutputMatch = 'same' | 'differs' | 'unknown'

export interface CommandBenchRow {
  allocator: string
  /** Every run, in the order they ran. */
  runs: MeasuredRun[]
  /** Medians over the runs; null when the row failed. */
  wallNs: number | null
  cpuNs: number | null
  maxRssBytes: number | null
  wallRatioToLibc: number | null
  cpuRatioToLibc: number | null
  rssRatioToLibc: number | null
  output: OutputMatch
  /** Why the row failed ("exit status 3", "signal 11 (SIGSEGV)", "command not found: ..."), or null. */
  failed: string | null
  /** The end of the failing run's stderr. */
  failureStderr?: string
}

export interface CommandBenchReport {
  command: string[]
  repeat: number
  rows: CommandBenchRow[]
  /** libc's own runs wrote different stdout (the output is not deterministic): nothing was compared. */
  libcOutputVaries: boolean
}

export interface CommandBenchHooks {
  /** Before each run: how many ran, of how many, and which one is next. */
  onProgress?: (done: number, total: number, allocator: string, round: number) => void
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** A malloc library that cannot stand in for malloc, or null when it can. */
export function mallocLibraryProblem(spec: MallocSpec): string | null {
  if (!existsSync(spec.library)) return `--malloc ${spec.name}=${spec.library}: no such file`
  const check = checkMallocLibrary(spec.library)
  return check.ok ? null : `--malloc ${spec.name}=${spec.library}: ${check.reason}`
}

/** The variables one allocator's runs add to the command's environment. */
function allocatorEnv(allocator: string, mallocs: readonly MallocSpec[], ourLibrary: () => string): Record<string, string> {
  if (allocator === LIBC) return {}
  const spec = mallocs.find((candidate) => candidate.name === allocator)
  if (spec !== undefined) return { LD_PRELOAD: preloadFirst(spec.library, process.env.LD_PRELOAD) }
  if (!(STRATEGIES as readonly string[]).includes(allocator)) throw new RangeError(`unknown allocator ${allocator}`)
  const env = runEnvironment(ourLibrary(), { strategy: allocator as Strategy }, {})
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined))
}

const SIGNAL_NAMES: Record<number, string> = { 4: 'SIGILL', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' }

function runFailure(run: MeasuredRun): string | null {
  if (run.error !== null) return run.error
  if (run.signal !== null) return `signal ${run.signal}${SIGNAL_NAMES[run.signal] ? ` (${SIGNAL_NAMES[run.signal]})` : ''}`
  return run.exitStatus === 0 ? null : `exit status ${run.exitStatus}`
}

/** Runs the bench; a failing allocator's row says why and the others still run. */
export async function runCommandBench(command: readonly string[], options: CommandBenchOptions, hooks: CommandBenchHooks = {}): Promise<CommandBenchReport> {
  let library: string | undefined
  const ourLibrary = (): string => (library ??= requireMallocLibrary())
  const envs = new Map(options.allocators.map((allocator) => [allocator, allocatorEnv(allocator, options.mallocs, ourLibrary)]))
  const rows: CommandBenchRow[] = options.allocators.map((allocator) => ({
    allocator,
    runs: [],
    wallNs: null,
    cpuNs: null,
    maxRssBytes: null,
    wallRatioToLibc: null,
    cpuRatioToLibc: null,
    rssRatioToLibc: null,
    output: 'unknown',
    failed: null,
  }))
  const total = options.repeat * rows.length
  let done = 0
  for (let round = 0; round < options.repeat; round++) {
    for (const row of rows) {
      if (row.failed !== null) {
        done++
        continue  // one failure says enough; its remaining runs are skipped
      }
      hooks.onProgress?.(done, total, row.allocator, round)
      const run = await measureRun(command[0], command.slice(1), envs.get(row.allocator), { cwd: options.cwd })
      done++
      row.runs.push(run)
      const failure = runFailure(run)
      if (failure !== null) {
        row.failed = failure
        row.failureStderr = run.stderrTail
      }
    }
  }
  hooks.onProgress?.(total, total, '', options.repeat)

  const libc = rows.find((row) => row.allocator === LIBC)
  const libcHashes = new Set(libc?.runs.map((run) => run.stdoutHash))
  const libcOutputVaries = libcHashes.size > 1
  for (const row of rows) {
    if (row.failed === null) {
      row.wallNs = median(row.runs.map((run) => run.wallNs))
      row.cpuNs = median(row.runs.map((run) => run.cpuNs))
      row.maxRssBytes = median(row.runs.map((run) => run.maxRssBytes))
    }
    if (libc !== undefined && libc.failed === null && !libcOutputVaries && row.runs.length > 0) {
      row.output = row.runs.every((run) => libcHashes.has(run.stdoutHash)) ? 'same' : 'differs'
    }
  }
  for (const row of rows) {
    if (libc === undefined || row.failed !== null) continue
    row.wallRatioToLibc = ratio(row.wallNs, libc.wallNs)
    row.cpuRatioToLibc = ratio(row.cpuNs, libc.cpuNs)
    row.rssRatioToLibc = ratio(row.maxRssBytes, libc.maxRssBytes)
  }
  return { command: [...command], repeat: options.repeat, rows, libcOutputVaries }
}
