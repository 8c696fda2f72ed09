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
