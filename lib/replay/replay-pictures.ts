/**
 * What `replay --map` and `--timeline` draw: the trace run again through a heap made with the
 * public API (createHeap and heap.raw, JS per request: the timed replay stays untouched),
 * sampling stats() every few hundred requests, and the heap's chunks at its peak.
 *
 * The peak is found in two passes, because stats() per request would cost more than the
 * requests: the first pass samples and finds between which two samples the heap first reached
 * its peak; the second pass replays on a fresh heap, reads stats() at every request of that
 * stretch only, and keeps the chunks at the largest heap it sees there.
 */
import { AllocatorError } from '../errors'
import { snapshotHeap, type HeapSnapshot } from '../render/heap-map'
import { createHeap } from '../heap/heap'
import { TraceOp, type Trace } from '../trace/trace'
import type { Heap, HeapOptions, Strategy } from '../types'

export interface HeapSample {
  /** Requests done when the sample was taken. */
  op: number
  heapBytes: number
  liveBytes: number
}

export interface TracePictures {
  trace: string
  strategy: Strategy
  ops: number
  samples: HeapSample[]
  /** The heap when it held the most memory from the OS. */
  peak: HeapSnapshot
  /** Requests done at the peak. */
  peakOp: number
  /** Set when the run stopped early (ERR_OUT_OF_MEMORY, typically bump): the request that failed. */
  stopped?: { op: number; code: 'ERR_OUT_OF_MEMORY' }
}

export interface PictureOptions {
  strategy: Strategy
  heap?: Pick<HeapOptions, 'growth' | 'alignment' | 'segregateSmall' | 'source' | 'maxHeapBytes'>
  /** About how many samples for the timeline (default 400). */
  samples?: number
  /** Called now and then with the fraction done of both passes. */
  onProgress?: (fraction: number) => void
}

const PROGRESS_EVERY = 1 << 14

/**
 * Applies requests [from, to) of the trace to the heap; `addresses` holds each id's chunk (0:
 * none). Returns `to`, or the request that failed with ERR_OUT_OF_MEMORY; other errors propagate.
 */
function applyRequests(heap: Heap, trace: Trace, addresses: Float64Array, from: number, to: number): number {
  const { kinds, ids, sizes } = trace
  const raw = heap.raw
  let op = from
  try {
    for (; op < to; op++) {
      const id = ids[op]
      const kind = kinds[op]
      if (kind === TraceOp.Alloc) {
        addresses[id] = raw.alloc(sizes[op])
      } else if (kind === TraceOp.Free) {
        if (id >= 0 && addresses[id] !== 0) {
          raw.free(addresses[id])
          addresses[id] = 0
        }
      } else {
        addresses[id] = addresses[id] === 0 ? raw.alloc(sizes[op]) : raw.realloc(addresses[id], sizes[op])
      }
    }
  } catch (error) {
    if (!(error instanceof AllocatorError) || error.code !== 'ERR_OUT_OF_MEMORY') throw error
  }
  return op
}

/**
 * Runs the trace through a heap of the strategy; an allocation that fails with
 * ERR_OUT_OF_MEMORY ends the run there (reported in `stopped`), any other error propagates.
 */
export function traceThroughHeap(trace: Trace, options: PictureOptions): TracePictures {
  const step = Math.max(1, Math.ceil(trace.opCount / (options.samples ?? 400)))
  const open = (): Heap => createHeap({ backend: 'native', strategy: options.strategy, trackLeaks: false, ...options.heap })
  const report = (done: number): void => options.onProgress?.(done / (2 * Math.max(1, trace.opCount)))

  // Pass 1: samples, and the stretch where the peak was first reached.
  const samples: HeapSample[] = []
  let stopped: TracePictures['stopped']
  let peakHeapBytes = 0
  let peakStretch = { from: 0, to: 0 }
  {
    using heap = open()
    const addresses = new Float64Array(trace.numIds)
    samples.push({ op: 0, heapBytes: heap.stats().heapBytes, liveBytes: 0 })
    for (let from = 0; from < trace.opCount; from += step) {
      const to = Math.min(trace.opCount, from + step)
      const reached = applyRequests(heap, trace, addresses, from, to)
      if (reached < to) stopped = { op: reached, code: 'ERR_OUT_OF_MEMORY' }
      const stats = heap.stats()
      if (stats.peakHeapBytes > peakHeapBytes) {
        peakHeapBytes = stats.peakHeapBytes
        peakStretch = { from, to }
      }
      samples.push({ op: reached, heapBytes: stats.heapBytes, liveBytes: stats.liveBytes })
      if (stopped !== undefined) break
      if (to % PROGRESS_EVERY < step) report(to)
    }
  }

  // Pass 2: request by request through the peak's stretch.
  using heap = open()
  const addresses = new Float64Array(trace.numIds)
  let peak = snapshotHeap(heap)
  let peakOp = 0
  let largest = -1
  for (let from = 0; from < peakStretch.from; from += PROGRESS_EVERY) {
    const to = Math.min(peakStretch.from, from + PROGRESS_EVERY)
    applyRequests(heap, trace, addresses, from, to)
    report(trace.opCount + to)
  }
  for (let op = peakStretch.from; op < peakStretch.to; op++) {
    if (applyRequests(heap, trace, addresses, op, op + 1) === op) break
    const { heapBytes } = heap.stats()
    if (heapBytes > largest) {
      largest = heapBytes
      peak = snapshotHeap(heap)
      peakOp = op + 1
    }
  }
  report(2 * trace.opCount)
  return { trace: trace.name, strategy: options.strategy, ops: trace.opCount, samples, peak, peakOp, ...(stopped ? { stopped } : {}) }
}
