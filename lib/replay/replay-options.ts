/**
 * Checking replay()'s options: every problem is an ERR_INVALID_OPTION naming the option and the
 * value, as createHeap's are; an option replay does not know is refused rather than ignored.
 */
import { AllocatorError, describeValue } from '../errors'
import { DEFAULT_ALIGNMENT, DEFAULT_GROWTH, DEFAULT_SEGREGATE_SMALL, DEFAULT_TRIM_THRESHOLD, STRATEGIES } from '../heap/options'
import type { Strategy } from '../types'

export type ReplayAllocator = Strategy | 'libc'
export const REPLAY_ALLOCATORS: readonly ReplayAllocator[] = [...STRATEGIES, 'libc']

const REPLAY_OPTION_KEYS: ReadonlySet<string> = new Set(['allocator', 'touch', 'repeat', 'growth', 'alignment', 'trimThreshold', 'segregateSmall', 'source', 'library'])
const REPLAY_SOURCES = ['brk', 'mmap'] as const

export interface ResolvedReplayOptions {
  allocator: ReplayAllocator
  /** undefined: the default for this thread (brk on the main thread, mmap in a worker). */
  source: 'brk' | 'mmap' | undefined
  alignment: number
  growth: number
  trimThreshold: number
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
  if (given.source !== undefined && !REPLAY_SOURCES.includes(given.source as 'brk')) {
    invalid(`replay option source must be 'brk' or 'mmap', got ${describeValue(given.source)}`)
  }
  if (given.library !== undefined) {
    if (given.allocator !== 'libc') {
      invalid(`replay option library goes with allocator 'libc' (the library replaces libc's malloc), got allocator ${describeValue(given.allocator)}`)
    }
    if (typeof given.library !== 'string' || given.library === '') {
      invalid(`replay option library must be the path of a malloc shared library, got ${describeValue(given.library)}`)
    }
  }
  const trimThreshold = given.trimThreshold === Infinity ? Infinity : wholeNumber('trimThreshold', given.trimThreshold, DEFAULT_TRIM_THRESHOLD, 0)
  const alignment = wholeNumber('alignment', given.alignment, DEFAULT_ALIGNMENT, 8)
  if (alignment > 4096 || (alignment & (alignment - 1)) !== 0) {
    invalid(`replay option alignment must be a power of two from 8 to 4096, got ${alignment}`)
  }
  return {
    allocator: given.allocator as ReplayAllocator,
    source: given.source as 'brk' | 'mmap' | undefined,
    alignment,
    growth: wholeNumber('growth', given.growth, DEFAULT_GROWTH, 0),
    trimThreshold,
    segregateSmall: wholeNumber('segregateSmall', given.segregateSmall, DEFAULT_SEGREGATE_SMALL, 0, 1 << 20),
    touch: (given.touch as boolean | undefined) ?? true,
    repeat: wholeNumber('repeat', given.repeat, 1, 1),
    library: given.library as string | undefined,
  }
}
