/**
 * The per-process reports the malloc library writes at exit (`<dir>/<pid>.json`, written by
 * native/malloc/exit_report.cpp): their shape, and a reader that checks every field it will
 * use, so that a report from a different build of the library is named as such instead of
 * drawing a wrong picture.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { HeapStats } from '../types'

/** The main (brk) heap's statistics: the public HeapStats but for quarantine, which only views of
 *  the addon's heaps use. */
export type ReportHeapStats = Omit<HeapStats, 'quarantinedChunks'>

/** Summed over every heap of the process; the peaks are sums of per-heap peaks. */
export interface ReportTotals {
  heapBytes: number
  peakHeapBytes: number
  liveBytes: number
  peakLiveBytes: number
  metadataBytes: number
  allocs: number
  frees: number
  reallocs: number
  brkCalls: number
}

export type ReportChunkState = 'live' | 'free' | 'deferred'

export interface ReportSnapshot {
  /** When it was taken: at the main heap's peak, or at exit where the peak would cost too much. */
  at: 'peak' | 'exit'
  /** With `at: 'exit'` where a peak was asked for: why the library gave the peak up. */
  reason?: string
  heapStart: number
  heapEnd: number
  /** [address, size, state], in address order. */
  chunks: [number, number, ReportChunkState][]
}

export interface ReportTimeline {
  /** Requests per sample. */
  every: number
  /** [request, heapBytes, liveBytes]. */
  samples: [number, number, number][]
}

export interface ProcessReport {
  pid: number
  ppid: number
  command: string[]
  strategy: string
  /** Unknown inside the process; `run` fills it in for the process it started. */
  exitStatus: number | null
  heaps: number
  threads: number
  main: ReportHeapStats
  total: ReportTotals
  badFrees: number
  snapshot: ReportSnapshot | null
  timeline: ReportTimeline | null
}

const MAIN_FIELDS = [
  'heapStart', 'heapEnd', 'heapBytes', 'peakHeapBytes', 'liveBytes', 'liveChunks', 'peakLiveBytes', 'freeBytes', 'freeChunks',
  'largestFreeChunk', 'topBytes', 'metadataBytes', 'peakMetadataBytes', 'allocs', 'frees', 'reallocs', 'brkCalls', 'bytesReleased', 'segments',
  'searchSteps', 'deferredChunks',
] as const
const TOTAL_FIELDS = ['heapBytes', 'peakHeapBytes', 'liveBytes', 'peakLiveBytes', 'metadataBytes', 'allocs', 'frees', 'reallocs', 'brkCalls'] as const
const CHUNK_STATES: readonly string[] = ['live', 'free', 'deferred']

class ReportShapeError extends Error {}

function fail(message: string): never {
  throw new ReportShapeError(message)
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function count(object: Record<string, unknown>, key: string, where: string): number {
  const value = object[key]
  if (!isCount(value)) fail(`${where}${key} is ${JSON.stringify(value) ?? 'missing'}, not a whole number`)
  return value
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`${where} is not an object`)
  return value as Record<string, unknown>
}

function checkSnapshot(value: unknown): ReportSnapshot | null {
  if (value === null || value === undefined) return null
  const snapshot = record(value, 'snapshot')
  if (snapshot.at !== 'peak' && snapshot.at !== 'exit') fail(`snapshot.at is ${JSON.stringify(snapshot.at)}, not "peak" or "exit"`)
  const heapStart = count(snapshot, 'heapStart', 'snapshot.')
  const heapEnd = count(snapshot, 'heapEnd', 'snapshot.')
  if (heapEnd < heapStart) fail('snapshot.heapEnd is below its heapStart')
  if (!Array.isArray(snapshot.chunks)) fail('snapshot.chunks is not an array')
  let previousEnd = heapStart
  snapshot.chunks.forEach((chunk: unknown, i) => {
    if (!Array.isArray(chunk) || chunk.length !== 3 || !isCount(chunk[0]) || !isCount(chunk[1]) || !CHUNK_STATES.includes(chunk[2] as string)) {
      fail(`snapshot.chunks[${i}] is not [address, size, "live"|"free"|"deferred"]`)
    }
    if (chunk[0] < previousEnd || chunk[0] + chunk[1] > heapEnd) fail(`snapshot.chunks[${i}] overlaps its neighbour or lies outside heapStart..heapEnd`)
    previousEnd = chunk[0] + chunk[1]
  })
  if (snapshot.reason !== undefined && typeof snapshot.reason !== 'string') fail('snapshot.reason is not a string')
  return {
    at: snapshot.at,
    ...(typeof snapshot.reason === 'string' ? { reason: snapshot.reason } : {}),
    heapStart,
    heapEnd,
    chunks: snapshot.chunks as ReportSnapshot['chunks'],
  }
}

function checkTimeline(value: unknown): ReportTimeline | null {
  if (value === null || value === undefined) return null
  const timeline = record(value, 'timeline')
  const every = count(timeline, 'every', 'timeline.')
  if (!Array.isArray(timeline.samples)) fail('timeline.samples is not an array')
  timeline.samples.forEach((sample: unknown, i) => {
    if (!Array.isArray(sample) || sample.length !== 3 || !sample.every(isCount)) fail(`timeline.samples[${i}] is not [request, heapBytes, liveBytes]`)
  })
  return { every, samples: timeline.samples as ReportTimeline['samples'] }
}

/** Checks one parsed report; throws with what is wrong. */
export function checkReport(value: unknown): ProcessReport {
  const report = record(value, 'the report')
  const main = record(report.main, 'main')
  const total = record(report.total, 'total')
  for (const key of MAIN_FIELDS) count(main, key, 'main.')
  for (const key of TOTAL_FIELDS) count(total, key, 'total.')
  if (!Array.isArray(report.command) || !report.command.every((part) => typeof part === 'string')) fail('command is not an array of strings')
  if (typeof report.strategy !== 'string') fail('strategy is not a string')
  const exitStatus = report.exitStatus ?? null
  if (exitStatus !== null && !isCount(exitStatus)) fail('exitStatus is neither null nor a whole number')
  return {
    pid: count(report, 'pid', ''),
    ppid: count(report, 'ppid', ''),
    command: report.command as string[],
    strategy: report.strategy,
    exitStatus: exitStatus as number | null,
    heaps: count(report, 'heaps', ''),
    threads: count(report, 'threads', ''),
    main: main as ReportHeapStats,
    total: total as unknown as ReportTotals,
    badFrees: count(report, 'badFrees', ''),
    snapshot: checkSnapshot(report.snapshot),
    timeline: checkTimeline(report.timeline),
  }
}

export interface ReadReports {
  /** `first` (when given and found) first, then by pid. */
  reports: ProcessReport[]
  /** One line per file that could not be used: "<file>: <what is wrong>". */
  problems: string[]
}

/**
 * Every `<pid>.json` in `dir` (the library's temporary names are skipped), checked. `first` is the
 * pid of the process `run` started: its report leads.
 */
export function readReports(dir: string, first?: number): ReadReports {
  const reports: ProcessReport[] = []
  const problems: string[] = []
  for (const name of readdirSync(dir).sort()) {
    if (!/^\d+\.json$/.test(name)) continue
    try {
      const report = checkReport(JSON.parse(readFileSync(join(dir, name), 'utf8')))
      if (`${report.pid}.json` !== name) fail(`it says pid ${report.pid}`)
      reports.push(report)
    } catch (error) {
      if (!(error instanceof ReportShapeError) && !(error instanceof SyntaxError)) throw error
      problems.push(`${name}: ${error.message}`)
    }
  }
  const rank = (report: ProcessReport): number => (report.pid === first ? 0 : 1)
  reports.sort((a, b) => rank(a) - rank(b) || a.pid - b.pid)
  return { reports, problems }
}
