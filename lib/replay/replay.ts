/**
 * replay(): runs a whole trace inside native code against one allocator, our heap's strategies or
 * the process's own malloc ('libc'), so that their times per operation compare.
 */
import { nativeBinding, nativeUnavailableReason } from '../backends/binding'
import { AllocatorError } from '../errors'
import { replayInChild } from './replay-child'
import { REPLAY_ALLOCATORS, type ReplayAllocator, resolveReplayOptions } from './replay-options'
import { checkTraceShape, type Trace } from '../trace/trace'

export { REPLAY_ALLOCATORS, type ReplayAllocator }

export interface ReplayOptions {
  allocator: ReplayAllocator
  /** Write every allocated byte once (default true), as a program would. */
  touch?: boolean
  /** Timed runs, after one untimed warm-up run; the result reports the median (default 1). */
  repeat?: number
  /**
   * Heap options for our strategies (ignored for 'libc'): the HeapOptions of the same names,
   * checked and defaulted as createHeap's.
   */
  growth?: number
  alignment?: number
  split?: boolean
  coalesce?: boolean
  trimThreshold?: number
  maxHeapBytes?: number
  segregateSmall?: number
  source?: 'brk' | 'mmap'
  /**
   * With allocator 'libc': a malloc shared library (jemalloc, mimalloc, tcmalloc, ...) that a
   * child process preloads to run the same 'libc' loop; peakHeapBytes is then the child's peak
   * resident set growth during the replay (null with touch: false). See lib/replay/replay-child.ts.
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

export function replay(trace: Trace, options: ReplayOptions): ReplayResult {
  checkTraceShape(trace)
  const resolved = resolveReplayOptions(options)
  if (resolved.library !== undefined) {
    const figures = replayInChild(trace, { touch: resolved.touch, repeat: resolved.repeat }, resolved.library)
    return childResult(resolved.library, trace, figures, resolved.touch)
  }
  const binding = nativeBinding()
  if (binding === undefined) throw new AllocatorError('ERR_UNSUPPORTED', `replay needs the native addon: ${nativeUnavailableReason()}`)
  const result = binding.replay(trace.kinds, trace.ids, trace.sizes, trace.numIds, resolved.allocator, {
    source: resolved.source ?? (binding.onMainThread() ? 'brk' : 'mmap'),
    alignment: resolved.alignment,
    growth: resolved.growth,
    split: resolved.split,
    coalesce: resolved.coalesce,
    trimThreshold: resolved.trimThreshold,
    maxHeapBytes: resolved.maxHeapBytes,
    segregateSmall: resolved.segregateSmall,
    touch: resolved.touch,
    repeat: resolved.repeat,
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
