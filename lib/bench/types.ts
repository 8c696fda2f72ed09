/**
 * The data the bench command passes between running (run.ts) and presenting
 * (lib/render/format.ts, lib/render/bench-svg.ts).
 * Presenting never touches the native addon, so these are plain data shapes.
 */
import type { ReplayResult } from '../replay/replay'

export interface BenchOptions {
  /** In the order the tables, CSV and chart show them. */
  allocators: string[]
  /** replay's repeat: runs per trace and allocator, the median is reported. */
  repeat: number
  touch: boolean
  /** Least bytes per break move of our heap; 0 = exactly what a request needs. */
  growth: number
  /** HeapOptions.segregateSmall of our heap: 0 = off. */
  segregateSmall: number
  /** HeapOptions.alignment of our heap (default 16). */
  alignment: number
  /** Traces whose peak live payload exceeds this are skipped. */
  maxLiveBytes: number
}

/** A trace that was run: where it came from and what it asks for. */
export interface BenchTrace {
  /** Unique within a report (a file's name without .rep/.rep.gz, or the workload kind). */
  name: string
  /** The file path, or `built-in` for a generated workload. */
  source: string
  ops: number
  peakLiveBytes: number
  peakLiveChunks: number
}

export interface SkippedTrace {
  name: string
  source: string
  peakLiveBytes: number
  reason: string
}

/** A file that could not be read or parsed (ERR_TRACE_FORMAT and the like). */
export interface TraceError {
  file: string
  code: string
  message: string
}

/**
 * One trace x allocator cell: replay()'s ReplayResult plus `ratioToLibc` and `failed`. A failed cell
 * (e.g. ERR_OUT_OF_MEMORY) has `failed` set to the error code, its message in `failureMessage`, and
 * null measurements.
 */
export interface BenchResult extends Omit<ReplayResult, 'nsPerOp'> {
  /** null when the replay failed. */
  nsPerOp: number | null
  /** nsPerOp / libc's nsPerOp on the same trace; null when libc was not run or either failed. */
  ratioToLibc: number | null
  failed: string | null
  failureMessage?: string
}

export interface BenchReport {
  options: BenchOptions
  traces: BenchTrace[]
  skipped: SkippedTrace[]
  errors: TraceError[]
  /** Trace-major: every allocator of the first trace, then the next trace. */
  results: BenchResult[]
}

/** Per allocator, geometric means over the traces it completed. */
export interface AllocatorSummary {
  allocator: string
  /** Traces this allocator completed (the means are over these). */
  traces: number
  /** Traces it failed, with the reason code. */
  failed: { trace: string; code: string }[]
  geomeanNsPerOp: number | null
  geomeanRatioToLibc: number | null
  geomeanUtilization: number | null
  /** Geometric mean of peak heap / peak live (the inverse view of utilization). */
  geomeanHeapToLive: number | null
}

/** Where a bench run is: what the runner tells its onProgress hook before every replay. */
export interface ProgressEvent {
  /** Replays finished so far. */
  done: number
  total: number
  traceIndex: number
  traceCount: number
  trace: string
  allocator: string
}
