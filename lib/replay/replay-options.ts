/**
 * Checking replay()'s options: every problem is an ERR_INVALID_OPTION naming the option and the
 * value, as createHeap's are; an option replay does not know is refused rather than ignored. The
 * heap's options (alignment, growth, split, ...) are checked by createHeap's own rules
 * (lib/heap/options.ts), so a replay runs the heap createHeap would make.
 */
import { AllocatorError, describeValue } from '../errors'
import { resolveOptions, STRATEGIES } from '../heap/options'
import type { HeapOptions, Strategy } from '../types'

export type ReplayAllocator = Strategy | 'libc'
export const REPLAY_ALLOCATORS: readonly ReplayAllocator[] = [...STRATEGIES, 'libc']

/** The HeapOptions a replay of our heap takes; the others (backend, views, ...) mean nothing here. */
const HEAP_OPTION_KEYS = ['source', 'alignment', 'growth', 'split', 'coalesce', 'trimThreshold', 'maxHeapBytes', 'segregateSmall'] as const
const REPLAY_OPTION_KEYS: ReadonlySet<string> = new Set(['allocator', 'touch', 'repeat', 'library', ...HEAP_OPTION_KEYS])

export interface ResolvedReplayOptions {
  allocator: ReplayAllocator
  /** undefined: the default for this thread (brk on the main thread, mmap in a worker). */
  source: 'brk' | 'mmap' | undefined
  alignment: number
  growth: number
  split: boolean
  coalesce: boolean
  trimThreshold: number
  /** Infinity: no cap. */
  maxHeapBytes: number
  segregateSmall: number
  touch: boolean
  repeat: number
  /** A malloc shared library for a child replay (allocator 'libc' only). */
  library: string | undefined
}

function invalid(what: string): never {
  throw new AllocatorError('ERR_INVALID_OPTION', what)
}

function wholeNumber(name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(`replay option ${name} must be an integer from ${min} to ${max}, got ${describeValue(value)}`)
  }
  return value
}

export function resolveReplayOptions(options: unknown): ResolvedReplayOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    invalid(`replay options must be an object such as { allocator: 'best-fit' }, got ${describeValue(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!REPLAY_OPTION_KEYS.has(key)) invalid(`unknown replay option ${JSON.stringify(key)} (known: ${[...REPLAY_OPTION_KEYS].join(', ')})`)
  }
  const given = options as Record<string, unknown>
  if (!REPLAY_ALLOCATORS.includes(given.allocator as ReplayAllocator)) {
    invalid(`replay option allocator must be one of ${REPLAY_ALLOCATORS.join(', ')}, got ${describeValue(given.allocator)}`)
  }
  if (given.touch !== undefined && typeof given.touch !== 'boolean') {
    invalid(`replay option touch must be a boolean, got ${describeValue(given.touch)}`)
  }
  if (given.library !== undefined) {
    if (given.allocator !== 'libc') {
      invalid(`replay option library goes with allocator 'libc' (the library replaces libc's malloc), got allocator ${describeValue(given.allocator)}`)
    }
    if (typeof given.library !== 'string' || given.library === '') {
      invalid(`replay option library must be the path of a malloc shared library, got ${describeValue(given.library)}`)
    }
  }
  const heap = resolveHeapOptions(given)
  return {
    allocator: given.allocator as ReplayAllocator,
    source: heap.source,
    alignment: heap.alignment,
    growth: heap.growth,
    split: heap.split,
    coalesce: heap.coalesce,
    trimThreshold: heap.trimThreshold,
    maxHeapBytes: heap.maxHeapBytes ?? Infinity,
    segregateSmall: heap.segregateSmall,
    touch: (given.touch as boolean | undefined) ?? true,
    repeat: wholeNumber('repeat', given.repeat, 1, 1),
    library: given.library as string | undefined,
  }
}

/** createHeap's checks and defaults for the heap options given, its messages prefixed "replay". */
function resolveHeapOptions(given: Record<string, unknown>): ReturnType<typeof resolveOptions> {
  const heapOptions: Record<string, unknown> = {}
  for (const key of HEAP_OPTION_KEYS) if (given[key] !== undefined) heapOptions[key] = given[key]
  try {
    return resolveOptions(heapOptions as HeapOptions)
  } catch (error) {
    if (error instanceof AllocatorError && error.code === 'ERR_INVALID_OPTION') invalid(`replay ${error.message}`)
    throw error
  }
}
