/**
 * Checking and completing HeapOptions. Every problem is an ERR_INVALID_OPTION that names the
 * option and the value; ERR_UNSUPPORTED is for valid options the chosen backend cannot honour.
 */
import { AllocatorError, describeValue } from '../errors'
import type { Backend, HeapOptions, Strategy } from '../types'

export const STRATEGIES: readonly Strategy[] = ['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit', 'bump']

export const DEFAULT_ALIGNMENT = 16
/** HeapOptions.alignment, the heap's granule: createHeap, replay and the command line say it so. */
export const ALIGNMENT_RULE = 'a power of two from 8 to 4096'

/** Whether `value` may be a heap's alignment (ALIGNMENT_RULE). Per-call `align` has its own rule. */
export function isHeapAlignment(value: number): boolean {
  return Number.isInteger(value) && value >= 8 && value <= 4096 && (value & (value - 1)) === 0
}
/** Requests up to this many bytes take the high end of the free space they split (README, "Space"). */
export const DEFAULT_SEGREGATE_SMALL = 64
export const DEFAULT_GROWTH = 65536
export const DEFAULT_TRIM_THRESHOLD = 131072
/** The js heap's resizable ArrayBuffer reserves its maximum up front; 1 GiB is address space only. */
export const DEFAULT_JS_MAX_HEAP_BYTES = 1 << 30
/** A growth step beyond 1 TiB is surely a unit mistake. */
export const MAX_GROWTH = 2 ** 40
/** Beyond this, "small" requests would be most requests. */
export const MAX_SEGREGATE_SMALL = 1 << 20

export interface ResolvedOptions {
  backend: 'auto' | Backend
  source: 'brk' | 'mmap' | undefined
  strategy: Strategy | undefined
  alignment: number
  growth: number
  split: boolean
  coalesce: boolean
  trimThreshold: number
  maxHeapBytes: number | undefined
  segregateSmall: number
  trackLeaks: boolean | 'stacks'
  views: 'revocable' | 'shared' | undefined
  /** Options set explicitly that a bump heap (the js heap, or strategy 'bump') cannot honour. */
  beyondBump: string[]
}

function invalid(name: string, value: unknown, expected: string): never {
  throw new AllocatorError('ERR_INVALID_OPTION', `option ${name} must be ${expected}, got ${describeValue(value)}`)
}

function byteCount(name: string, value: unknown, fallback: number, allowInfinity = false): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) invalid(name, value, 'a non-negative number of bytes')
  if (value === Infinity) return allowInfinity ? value : invalid(name, value, 'finite')
  if (!Number.isSafeInteger(value)) invalid(name, value, 'a whole number of bytes no larger than Number.MAX_SAFE_INTEGER')
  return value
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') invalid(name, value, 'a boolean')
  return value
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined
  if (!allowed.includes(value as T)) invalid(name, value, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
  return value as T
}

export function resolveOptions(options: HeapOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) invalid('options', options, 'an object')
  const known = new Set(['backend', 'source', 'strategy', 'alignment', 'growth', 'split', 'coalesce', 'trimThreshold', 'maxHeapBytes', 'segregateSmall', 'trackLeaks', 'views'])
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new AllocatorError('ERR_INVALID_OPTION', `unknown option ${JSON.stringify(key)}`)
  }
  const alignment = byteCount('alignment', options.alignment, DEFAULT_ALIGNMENT)
  if (!isHeapAlignment(alignment)) invalid('alignment', options.alignment, ALIGNMENT_RULE)
  const maxHeapBytes = options.maxHeapBytes === undefined ? undefined : byteCount('maxHeapBytes', options.maxHeapBytes, 0, true)
  if (maxHeapBytes === 0) invalid('maxHeapBytes', 0, 'positive')
  const growth = byteCount('growth', options.growth, DEFAULT_GROWTH)
  if (growth > MAX_GROWTH) invalid('growth', growth, 'at most 1 TiB')
  const segregateSmall = byteCount('segregateSmall', options.segregateSmall, DEFAULT_SEGREGATE_SMALL)
  if (segregateSmall > MAX_SEGREGATE_SMALL) invalid('segregateSmall', segregateSmall, 'at most 1 MiB')
  const trackLeaks = options.trackLeaks
  if (trackLeaks !== undefined && typeof trackLeaks !== 'boolean' && trackLeaks !== 'stacks') invalid('trackLeaks', trackLeaks, "a boolean or 'stacks'")
  const strategy = oneOf('strategy', options.strategy, STRATEGIES)
  const split = flag('split', options.split, true)
  const coalesce = flag('coalesce', options.coalesce, true)
  // Only what the caller asked for counts: the defaults (split and coalesce on) describe the
  // free-table strategies, and false/0 ("never split, never merge, no segregation") is what a
  // bump heap does anyway.
  const beyondBump: string[] = []
  if (options.split === true) beyondBump.push('split: true')
  if (options.coalesce === true) beyondBump.push('coalesce: true')
  if (options.segregateSmall !== undefined && segregateSmall > 0) beyondBump.push(`segregateSmall: ${segregateSmall}`)
  if (strategy === 'bump' && beyondBump.length > 0) throw bumpCannotHonour(beyondBump, "strategy 'bump'", '')
  return {
    backend: oneOf('backend', options.backend, ['auto', 'native', 'js'] as const) ?? 'auto',
    source: oneOf('source', options.source, ['brk', 'mmap'] as const),
    strategy,
    alignment,
    growth,
    split,
    coalesce,
    trimThreshold: byteCount('trimThreshold', options.trimThreshold, DEFAULT_TRIM_THRESHOLD, true),
    maxHeapBytes,
    segregateSmall,
    trackLeaks: trackLeaks ?? true,
    views: oneOf('views', options.views, ['revocable', 'shared'] as const),
    beyondBump,
  }
}

/**
 * ERR_UNSUPPORTED for options a bump heap would otherwise ignore in silence: it has no free
 * table, so it never splits, merges or segregates chunks. `heap` says which heap refuses
 * ("strategy 'bump'", "the js heap"); `why` may add why that heap was chosen.
 */
export function bumpCannotHonour(options: readonly string[], heap: string, why: string): AllocatorError {
  const list = options.join(', ')
  return new AllocatorError(
    'ERR_UNSUPPORTED',
    `option${options.length > 1 ? 's' : ''} ${list} cannot be honoured by ${heap}: a bump heap never splits, merges or segregates chunks (leave ${options.length > 1 ? 'them' : 'it'} unset, or choose a free-table strategy on the native backend)${why}`,
  )
}
