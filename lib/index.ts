/**
 * memory-allocator: a real allocator on the process heap, with typed safe handles for JavaScript
 * and native trace replay against the system malloc. See README.md for a tour.
 */
export { createHeap } from './heap/heap'
export { AllocatorError, type ErrorCode } from './errors'
export { STRATEGIES } from './heap/options'
export { replay, REPLAY_ALLOCATORS, type ReplayAllocator, type ReplayOptions, type ReplayResult } from './replay/replay'
export { formatTrace, loadTrace, parseTrace, traceFromOps, TraceOp, type Trace } from './trace/trace'
export { generateTrace, WORKLOAD_KINDS, type WorkloadKind, type WorkloadOptions } from './trace/workloads'
export type {
  AllocOptions,
  ArrayHandle,
  Backend,
  ChunkInfo,
  Handle,
  Heap,
  HeapOptions,
  HeapStats,
  LeakRecord,
  LeakReport,
  RawBytes,
  RawHeap,
  Source,
  Strategy,
  TypedArray,
  TypedArrayConstructor,
} from './types'
export { renderHeapMap, type HeapMapOptions, type HeapSnapshot } from './render/heap-map'

import { AllocatorError } from './errors'
import { createHeap } from './heap/heap'
import { STRATEGIES } from './heap/options'
import { renderHeapMap } from './render/heap-map'
import { replay, REPLAY_ALLOCATORS } from './replay/replay'
import { formatTrace, loadTrace, parseTrace, traceFromOps, TraceOp } from './trace/trace'
import { generateTrace, WORKLOAD_KINDS } from './trace/workloads'

/**
 * `import ma from 'memory-allocator'` (and `require('memory-allocator').default`): every value
 * export on one object, for users who write the default import out of habit (issue 13, defect 11).
 */
const memoryAllocator = Object.freeze({
  AllocatorError,
  createHeap,
  formatTrace,
  generateTrace,
  loadTrace,
  parseTrace,
  renderHeapMap,
  replay,
  REPLAY_ALLOCATORS,
  STRATEGIES,
  traceFromOps,
  TraceOp,
  WORKLOAD_KINDS,
})
export default memoryAllocator
