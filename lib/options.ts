/**
 * Checking and completing HeapOptions. Every problem is an ERR_INVALID_OPTION that names the
 * option and the value; ERR_UNSUPPORTED is for valid options the chosen backend cannot honour.
 */
import { AllocatorError, describeValue } from './errors'
import type { Backend, HeapOptions, Strategy } from './types'

export const STRATEGIES: readonly Strategy[] = ['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit', 'bump']

export const DEFAULT_ALIGNMENT = 16
export const DEFAULT_GROWTH = 65536
export const DEFAULT_TRIM_THRESHOLD = 131072
/** The js heap's resizable ArrayBuffer reserves its maximum up front; 1 GiB is address space only. */
export const DEFAULT_JS_MAX_HEAP_BYTES = 1 << 30
/** A growth step beyond 1 TiB is surely a unit mistake. */
const MAX_GROWTH = 2 ** 40
/** Beyond this, "small" requests would be most requests. */
const MAX_SEGREGATE_SMALL = 1 << 20

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
  if (options === null || typeof options !== 'object') invalid('options', options, 'an object')
  const known = new Set(['backend', 'source', 'strategy', 'alignment', 'growth', 'split', 'coalesce', 'trimThreshold', 'maxHeapBytes', 'segregateSmall', 'trackLeaks', 'views'])
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new AllocatorError('ERR_INVALID_OPTION', `unknown option ${JSON.stringify(key)}`)
  }
  const alignment = byteCount('alignment', options.alignment, DEFAULT_ALIGNMENT)
  if (alignment < 8 || alignment > 4096 || (alignment & (alignment - 1)) !== 0) invalid('alignment', options.alignment, 'a power of two from 8 to 4096')
  const maxHeapBytes = options.maxHeapBytes === undefined ? undefined : byteCount('maxHeapBytes', options.maxHeapBytes, 0, true)
  if (maxHeapBytes === 0) invalid('maxHeapBytes', 0, 'positive')
  const growth = byteCount('growth', options.growth, DEFAULT_GROWTH)
  if (growth > MAX_GROWTH) invalid('growth', growth, 'at most 1 TiB')
  const segregateSmall = byteCount('segregateSmall', options.segregateSmall, 0)
  if (segregateSmall > MAX_SEGREGATE_SMALL) invalid('segregateSmall', segregateSmall, 'at most 1 MiB')
  const trackLeaks = options.trackLeaks
  if (trackLeaks !== undefined && typeof trackLeaks !== 'boolean' && trackLeaks !== 'stacks') invalid('trackLeaks', trackLeaks, "a boolean or 'stacks'")
  return {
    backend: oneOf('backend', options.backend, ['auto', 'native', 'js'] as const) ?? 'auto',
    source: oneOf('source', options.source, ['brk', 'mmap'] as const),
    strategy: oneOf('strategy', options.strategy, STRATEGIES),
    alignment,
    growth,
    split: flag('split', options.split, true),
    coalesce: flag('coalesce', options.coalesce, true),
    trimThreshold: byteCount('trimThreshold', options.trimThreshold, DEFAULT_TRIM_THRESHOLD, true),
    maxHeapBytes,
    segregateSmall,
    trackLeaks: trackLeaks ?? true,
    views: oneOf('views', options.views, ['revocable', 'shared'] as const),
  }
}
