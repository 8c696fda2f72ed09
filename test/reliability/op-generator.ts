/**
 * A seeded stream of heap operations for differential runs. The stream depends on the seed
 * alone, never on what a heap answered: an operation names the chunk it acts on by a fraction
 * (`pick`) of the live set, resolved when it runs. So the first n operations of a seed are the
 * same whatever the run's length, and a failing run shrinks to a prefix. The generator counts
 * live chunks itself (every operation's effect on the count is known in advance) to keep the live
 * set near its target.
 */

/** How a chunk is reached: a Handle (contents checked through bytes()), or heap.raw by address. */
import { prng } from '../native-heap/helpers'

export type Via = 'handle' | 'raw'

export type Op =
  | { kind: 'alloc'; size: number; align: number | undefined; zero: boolean; via: Via | 'array' }
  | { kind: 'free'; pick: number; via: Via }
  | { kind: 'realloc'; pick: number; size: number; via: Via }
  | { kind: 'reset' }
  | { kind: 'trim' }

export interface GeneratorProfile {
  /** The live set hovers around this many chunks. */
  targetLive: number
  /** A request no heap of this machine can satisfy: 1 TiB, beyond every source's reservation. */
  hugeSize: number
}

export const DEFAULT_PROFILE: GeneratorProfile = { targetLive: 300, hugeSize: 2 ** 40 }

/** The largest size the generator asks for that can succeed; patterns must cover it. */
export const MAX_GENERATED_SIZE = 1 << 20

/** mulberry32, the same seeded stream the native-heap suites use. */
export { prng }

/** A 32-bit seed from a base seed and a name, so that each configuration gets its own stream. */
export function deriveSeed(base: number, name: string): number {
  let h = (base ^ 0x811c9dc5) >>> 0
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0
  return h
}

function between(random: () => number, low: number, high: number): number {
  return low + Math.floor(random() * (high - low + 1))
}

/**
 * Sizes: zero, mostly small, some page-sized and larger, a few up to 1 MiB, exact multiples of
 * 16 (exact-fit paths), and rarely one that cannot be had (ERR_OUT_OF_MEMORY).
 */
function size(random: () => number, profile: GeneratorProfile): number {
  const r = random()
  if (r < 0.03) return 0
  if (r < 0.6) return between(random, 1, 128)
  if (r < 0.7) return 16 * between(random, 1, 32)
  if (r < 0.9) return between(random, 129, 4096)
  if (r < 0.983) return between(random, 4097, 65536)
  if (r < 0.998) return between(random, 65537, MAX_GENERATED_SIZE)
  return profile.hugeSize + between(random, 0, 4096)
}

/** Mostly the heap's own; otherwise a power of two from 1 to 4096, rarely 64 KiB or 1 MiB. */
function align(random: () => number): number | undefined {
  const r = random()
  if (r < 0.75) return undefined
  if (r < 0.995) return 2 ** between(random, 0, 12)
  return random() < 0.7 ? 1 << 16 : 1 << 20
}

export function* generateOps(seed: number, count: number, profile: GeneratorProfile = DEFAULT_PROFILE): Generator<Op> {
  const random = prng(seed)
  let live = 0
  for (let i = 0; i < count; i++) {
    const r = random()
    if (r < 0.0004) {
      live = 0
      yield { kind: 'reset' }
      continue
    }
    if (r < 0.005) {
      yield { kind: 'trim' }
      continue
    }
    const allocShare = live < profile.targetLive ? 0.55 : 0.35
    const choice = live === 0 ? 0 : random()
    if (choice < allocShare) {
      const s = size(random, profile)
      const via: Via | 'array' = random() < 0.12 ? 'raw' : random() < 0.1 ? 'array' : 'handle'
      const op: Op = { kind: 'alloc', size: s, align: via === 'array' ? undefined : align(random), zero: via !== 'array' && random() < 0.05, via }
      if (s < profile.hugeSize) live++
      yield op
    } else if (choice < 0.8) {
      live--
      yield { kind: 'free', pick: random(), via: random() < 0.1 ? 'raw' : 'handle' }
    } else {
      yield { kind: 'realloc', pick: random(), size: size(random, profile), via: random() < 0.05 ? 'raw' : 'handle' }
    }
  }
}

export function describeOp(op: Op): string {
  switch (op.kind) {
    case 'alloc':
      return `alloc(${op.size}${op.align === undefined ? '' : `, align ${op.align}`}${op.zero ? ', zero' : ''}) via ${op.via}`
    case 'free':
      return `free(live[${op.pick.toFixed(6)}]) via ${op.via}`
    case 'realloc':
      return `realloc(live[${op.pick.toFixed(6)}], ${op.size}) via ${op.via}`
    default:
      return `${op.kind}()`
  }
}
