/**
 * replay(): runs a whole trace inside native code against one allocator, our heap's strategies or
 * the process's own malloc ('libc'), so that their times per operation compare.
 */
import { nativeBinding, nativeUnavailableReason } from './binding'
import { AllocatorError, describeValue } from './errors'
import { DEFAULT_ALIGNMENT, DEFAULT_GROWTH, DEFAULT_TRIM_THRESHOLD, STRATEGIES } from './options'
import { replayInChild } from './replay-child'
import type { Trace } from './trace'
import type { Strategy } from './types'

export type ReplayAllocator = Strategy | 'libc'
export const REPLAY_ALLOCATORS: readonly ReplayAllocator[] = [...STRATEGIES, 'libc']

export interface ReplayOptions {
  allocator: ReplayAllocator
  /** Write every allocated byte once (default true), as a program would. */
  touch?: boolean
  /** Timed runs, after one untimed warm-up run; the result reports the median (default 1). */
  repeat?: number
  /** Heap options for our strategies (ignored for 'libc'); defaults as createHeap's. */
  growth?: number
  alignment?: number
  trimThreshold?: number
  /** As HeapOptions.segregateSmall (default 0: off). */
  segregateSmall?: number
  source?: 'brk' | 'mmap'
  /**
   * With allocator 'libc': a malloc shared library (jemalloc, mimalloc, tcmalloc, ...) that a
   * child process preloads to run the same 'libc' loop; peakHeapBytes is then the child's peak
   * resident set growth during the replay (null with touch: false). See lib/replay-child.ts.
   */
  library?: string
}

export interface ReplayResult {
  allocator: string
  trace: string
  ops: number
  /** Median over the runs. */
  nsPerOp: number
  runsNsPerOp: number[]
  /** Payload bytes by the malloc-lab rule. */
  peakLiveBytes: number
  /** Most memory held from the OS during the run; null for 'libc'; for a library, peak RSS growth. */
  peakHeapBytes: number | null
  /** peakLiveBytes / peakHeapBytes; null for 'libc'. */
  utilization: number | null
  metadataBytes: number | null
  brkCalls: number | null
  searchSteps: number | null
}

function wholeNumber(name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new AllocatorError('ERR_INVALID_OPTION', `replay option ${name} must be an integer from ${min} to ${max}, got ${describeValue(value)}`)
  }
  return value
}

export function replay(trace: Trace, options: ReplayOptions): ReplayResult {
  const binding = nativeBinding()
  if (binding === undefined) throw new AllocatorError('ERR_UNSUPPORTED', `replay needs the native addon: ${nativeUnavailableReason()}`)
  if (options === null || typeof options !== 'object' || !REPLAY_ALLOCATORS.includes(options.allocator)) {
    throw new AllocatorError(
      'ERR_INVALID_OPTION',
      `replay option allocator must be one of ${REPLAY_ALLOCATORS.join(', ')}, got ${describeValue(options?.allocator)}`,
    )
  }
  if (options.touch !== undefined && typeof options.touch !== 'boolean') {
    throw new AllocatorError('ERR_INVALID_OPTION', `replay option touch must be a boolean, got ${describeValue(options.touch)}`)
  }
  if (options.library !== undefined) return replayLibrary(trace, options)
  const trimThreshold = options.trimThreshold === Infinity ? Infinity : wholeNumber('trimThreshold', options.trimThreshold, DEFAULT_TRIM_THRESHOLD, 0)
  const alignment = wholeNumber('alignment', options.alignment, DEFAULT_ALIGNMENT, 8)
  if (alignment > 4096 || (alignment & (alignment - 1)) !== 0) {
    throw new AllocatorError('ERR_INVALID_OPTION', `replay option alignment must be a power of two from 8 to 4096, got ${alignment}`)
  }
  const result = binding.replay(trace.kinds, trace.ids, trace.sizes, trace.numIds, options.allocator, {
    source: options.source ?? (binding.onMainThread() ? 'brk' : 'mmap'),
    alignment,
    growth: wholeNumber('growth', options.growth, DEFAULT_GROWTH, 0),
    trimThreshold,
    segregateSmall: wholeNumber('segregateSmall', options.segregateSmall, 0, 0, 1 << 20),
    touch: options.touch ?? true,
    repeat: wholeNumber('repeat', options.repeat, 1, 1),
  })
  return {
    allocator: options.allocator,
    trace: trace.name,
    ops: trace.opCount,
    nsPerOp: result.nsPerOp,
    runsNsPerOp: result.runsNsPerOp,
    peakLiveBytes: result.peakLiveBytes,
    peakHeapBytes: result.peakHeapBytes,
    utilization: result.peakHeapBytes === null || result.peakHeapBytes === 0 ? null : result.peakLiveBytes / result.peakHeapBytes,
    metadataBytes: result.metadataBytes,
    brkCalls: result.brkCalls,
    searchSteps: result.searchSteps,
  }
}

function replayLibrary(trace: Trace, options: ReplayOptions): ReplayResult {
  if (options.allocator !== 'libc') {
    throw new AllocatorError('ERR_INVALID_OPTION', `replay option library goes with allocator 'libc' (the library replaces libc's malloc), got allocator ${describeValue(options.allocator)}`)
  }
  if (typeof options.library !== 'string' || options.library === '') {
    throw new AllocatorError('ERR_INVALID_OPTION', `replay option library must be the path of a malloc shared library, got ${describeValue(options.library)}`)
  }
  const touch = options.touch ?? true
  const figures = replayInChild(trace, { touch, repeat: wholeNumber('repeat', options.repeat, 1, 1) }, options.library)
  return childResult(options.library, trace, figures, touch)
}

/** A ReplayResult from a child replay: memory is the child's peak RSS growth, and only when the bytes were touched. */
export function childResult(allocator: string, trace: Trace, figures: ReturnType<typeof replayInChild>, touch: boolean): ReplayResult {
  const peakHeapBytes = touch ? figures.peakRssGrowthBytes : null
  return {
    allocator,
    trace: trace.name,
    ops: trace.opCount,
    nsPerOp: figures.nsPerOp,
    runsNsPerOp: figures.runsNsPerOp,
    peakLiveBytes: figures.peakLiveBytes,
    peakHeapBytes,
    utilization: peakHeapBytes === null || peakHeapBytes === 0 ? null : figures.peakLiveBytes / peakHeapBytes,
    metadataBytes: null,
    brkCalls: null,
    searchSteps: null,
  }
}
