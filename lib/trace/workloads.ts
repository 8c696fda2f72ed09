/**
 * Built-in synthetic workloads: seeded, deterministic generators of balanced traces that stress
 * one allocator behaviour each, complementing the malloc-lab traces. The same kind, seed and op
 * count always give the same trace.
 */
import { AllocatorError } from '../errors'
import { TraceOp, traceFromOps, type Trace } from './trace'

export type WorkloadKind =
  | 'random-churn'
  | 'fragmentation'
  | 'realloc-growth'
  | 'coalescing'
  | 'lifo'
  | 'fifo'
  | 'program-mix'

export const WORKLOAD_KINDS: readonly WorkloadKind[] = Object.freeze([
  'random-churn',
  'fragmentation',
  'realloc-growth',
  'coalescing',
  'lifo',
  'fifo',
  'program-mix',
])

export interface WorkloadOptions {
  /** Default 1. Taken modulo 2^32. */
  seed?: number
  /** Approximate number of requests; the final frees that empty the heap come on top. Default 100,000. */
  ops?: number
}

const DEFAULT_OPS = 100_000

/** mulberry32: a tiny, fast generator, plenty for shaping workloads (never Math.random: runs must repeat). */
class Random {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Uniform integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.below(high - low + 1)
  }

  chance(probability: number): boolean {
    return this.next() < probability
  }

  /** Integer in [low, high] with density ~1/x: as many sizes in 16..32 as in 1024..2048. */
  logUniform(low: number, high: number): number {
    return Math.min(high, Math.floor(low * Math.pow((high + 1) / low, this.next())))
  }

  /** Removes and returns a random element (order is not kept). */
  takeFrom(items: number[]): number {
    const index = this.below(items.length)
    const item = items[index]
    items[index] = items[items.length - 1]
    items.pop()
    return item
  }

  shuffle(items: number[]): void {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.below(i + 1)
      const swap = items[i]
      items[i] = items[j]
      items[j] = swap
    }
  }
}

/**
 * Records requests into growing typed arrays. Freed ids are reused (malloc-lab allows `a` of an id
 * after its `f`), so numIds stays at the peak number of live blocks.
 */
class TraceBuilder {
  private kinds = new Uint8Array(1024)
  private ids = new Int32Array(1024)
  private sizes = new Float64Array(1024)
  private currentSizes = new Float64Array(1024)
  private readonly spareIds: number[] = []
  private idCount = 0
  opCount = 0
  liveCount = 0

  alloc(size: number): number {
    const id = this.spareIds.length > 0 ? this.spareIds.pop()! : this.newId()
    this.push(TraceOp.Alloc, id, size)
    this.currentSizes[id] = size
    this.liveCount++
    return id
  }

  free(id: number): void {
    this.push(TraceOp.Free, id, 0)
    this.spareIds.push(id)
    this.liveCount--
  }

  realloc(id: number, size: number): void {
    this.push(TraceOp.Realloc, id, size)
    this.currentSizes[id] = size
  }

  sizeOf(id: number): number {
    return this.currentSizes[id]
  }

  finish(name: string): Trace {
    if (this.liveCount !== 0) throw new Error(`workload ${name} left ${this.liveCount} blocks live`)
    const n = this.opCount
    return traceFromOps(name, this.idCount, this.kinds.slice(0, n), this.ids.slice(0, n), this.sizes.slice(0, n))
  }

  private newId(): number {
    if (this.idCount === this.currentSizes.length) {
      this.currentSizes = grown(this.currentSizes, new Float64Array(this.idCount * 2))
    }
    return this.idCount++
  }

  private push(kind: number, id: number, size: number): void {
    const n = this.opCount
    if (n === this.kinds.length) {
      this.kinds = grown(this.kinds, new Uint8Array(n * 2))
      this.ids = grown(this.ids, new Int32Array(n * 2))
      this.sizes = grown(this.sizes, new Float64Array(n * 2))
    }
    this.kinds[n] = kind
    this.ids[n] = id
    this.sizes[n] = size
    this.opCount = n + 1
  }
}

function grown<T extends Uint8Array | Int32Array | Float64Array>(old: T, larger: T): T {
  larger.set(old)
  return larger
}

/** Mostly small, some medium, rare large: the usual shape of heap requests. */
function mixedSize(random: Random): number {
  const roll = random.next()
  if (roll < 0.6) return random.logUniform(8, 128)
  if (roll < 0.9) return random.logUniform(129, 2048)
  if (roll < 0.99) return random.logUniform(2049, 32768)
  return random.logUniform(32769, 262144)
}

/** Probability of growing a population so that it drifts back towards `target` as it wanders off. */
function growthProbability(population: number, target: number): number {
  return Math.min(1, Math.max(0.05, 0.5 + (0.25 * (target - population)) / target))
}

// Stresses general-purpose search: random sizes and random lifetimes around a steady live set.
function randomChurn(random: Random, builder: TraceBuilder, ops: number): void {
  const targetLive = 2000
  const live: number[] = []
  while (builder.opCount < ops) {
    if (live.length === 0 || random.chance(growthProbability(live.length, targetLive))) {
      const size = random.chance(0.96) ? random.logUniform(8, 4096) : random.logUniform(4097, 131072)
      live.push(builder.alloc(size))
    } else {
      builder.free(random.takeFrom(live))
    }
  }
  while (live.length > 0) builder.free(random.takeFrom(live))
}

// Stresses external fragmentation: holes left by freed blocks are always slightly too small for
// the next requests (binary-bal's pattern), and a few pinned blocks keep old holes from merging.
function fragmentation(random: Random, builder: TraceBuilder, ops: number): void {
  const sizeFamilies = [
    [64, 448, 512],
    [16, 112, 128],
    [32, 224, 256],
    [128, 896, 1024],
  ]
  const maxPinned = 1000
  const pinned: number[] = []
  while (builder.opCount < ops) {
    const [small, large, larger] = sizeFamilies[random.below(sizeFamilies.length)]
    // A round costs about six requests per pair; keep the last round within the budget.
    const pairs = Math.min(random.between(500, 2000), Math.max(1, Math.ceil((ops - builder.opCount) / 6)))
    const smalls: number[] = []
    const larges: number[] = []
    for (let i = 0; i < pairs; i++) {
      smalls.push(builder.alloc(small))
      larges.push(builder.alloc(large))
    }
    for (const id of larges) builder.free(id)
    const largers: number[] = []
    for (let i = 0; i < pairs; i++) largers.push(builder.alloc(larger))
    for (const id of smalls) {
      if (random.chance(0.05)) {
        if (pinned.length === maxPinned) builder.free(random.takeFrom(pinned))
        pinned.push(id)
      } else {
        builder.free(id)
      }
    }
    for (const id of largers) builder.free(id)
  }
  while (pinned.length > 0) builder.free(random.takeFrom(pinned))
}

interface GrowingBuffer {
  id: number
  /** Next size from the current one. */
  readonly step: (size: number) => number
  readonly initialSize: () => number
  readonly maxSize: number
}

// Stresses realloc: buffers that grow in place when the allocator can extend them (vector
// doubling, +128 steps like realloc-bal, small odd steps like realloc2-bal), with short-lived
// small blocks interleaved that get in the way of in-place growth.
function reallocGrowth(random: Random, builder: TraceBuilder, ops: number): void {
  const buffers: GrowingBuffer[] = [
    { id: -1, step: (size) => size * 2, initialSize: () => random.between(16, 64), maxSize: 1 << 20 },
    { id: -1, step: (size) => size + 128, initialSize: () => 512, maxSize: 256 << 10 },
    { id: -1, step: (size) => size + random.between(1, 16), initialSize: () => random.between(1024, 4096), maxSize: 32 << 10 },
    { id: -1, step: (size) => size + random.between(64, 512), initialSize: () => random.between(64, 256), maxSize: 128 << 10 },
  ]
  for (const buffer of buffers) buffer.id = builder.alloc(buffer.initialSize())
  const temporaries: number[] = []
  while (builder.opCount < ops) {
    const buffer = buffers[random.below(buffers.length)]
    const nextSize = buffer.step(builder.sizeOf(buffer.id))
    if (nextSize > buffer.maxSize) {
      builder.free(buffer.id)
      buffer.id = builder.alloc(buffer.initialSize())
    } else {
      builder.realloc(buffer.id, nextSize)
    }
    temporaries.push(builder.alloc(random.logUniform(16, 256)))
    if (temporaries.length > 2) builder.free(temporaries.shift()!)
  }
  for (const id of temporaries) builder.free(id)
  for (const buffer of buffers) builder.free(buffer.id)
}

// Stresses merging: neighbours are freed and then asked for again as one block of their combined
// size (coalescing-bal's pattern), with varied sizes, free orders and long-lived blocks in between.
function coalescing(random: Random, builder: TraceBuilder, ops: number): void {
  const maxBackground = 64
  const background: number[] = []
  while (builder.opCount < ops) {
    if (random.chance(0.1)) {
      if (background.length === maxBackground) builder.free(random.takeFrom(background))
      background.push(builder.alloc(random.logUniform(16, 1024)))
    }
    const parts = random.chance(0.25) ? 3 : 2
    const sameSize = random.chance(0.5) ? random.logUniform(16, 8192) : 0
    const neighbours: number[] = []
    let combinedSize = 0
    for (let i = 0; i < parts; i++) {
      const size = sameSize || random.logUniform(16, 8192)
      combinedSize += size
      neighbours.push(builder.alloc(size))
    }
    random.shuffle(neighbours)
    for (const id of neighbours) builder.free(id)
    builder.free(builder.alloc(combinedSize))
  }
  while (background.length > 0) builder.free(random.takeFrom(background))
}

// Stresses stack-like lifetimes: the most recent block is always freed first, in bursts like
// call frames.
function lifo(random: Random, builder: TraceBuilder, ops: number): void {
  const targetDepth = 1000
  const stack: number[] = []
  while (builder.opCount < ops) {
    const burst = random.between(1, 8)
    if (stack.length === 0 || random.chance(growthProbability(stack.length, targetDepth))) {
      for (let i = 0; i < burst; i++) stack.push(builder.alloc(mixedSize(random)))
    } else {
      for (let i = 0; i < burst && stack.length > 0; i++) builder.free(stack.pop()!)
    }
  }
  while (stack.length > 0) builder.free(stack.pop()!)
}

// Stresses queue-like lifetimes: the oldest block is always freed first, so frees chase
// allocations through the heap.
function fifo(random: Random, builder: TraceBuilder, ops: number): void {
  const targetLength = 1000
  let queue: number[] = []
  let head = 0
  while (builder.opCount < ops) {
    const length = queue.length - head
    if (length === 0 || random.chance(growthProbability(length, targetLength))) {
      queue.push(builder.alloc(mixedSize(random)))
    } else {
      builder.free(queue[head++])
      if (head > targetLength * 4) {
        queue = queue.slice(head)
        head = 0
      }
    }
  }
  for (let i = head; i < queue.length; i++) builder.free(queue[i])
}

/** Min-heap of (time, payload) events, ordered by time. */
class EventQueue {
  private times = new Float64Array(256)
  private payloads = new Int32Array(256)
  size = 0

  push(time: number, payload: number): void {
    if (this.size === this.times.length) {
      this.times = grown(this.times, new Float64Array(this.size * 2))
      this.payloads = grown(this.payloads, new Int32Array(this.size * 2))
    }
    let i = this.size++
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.times[parent] <= time) break
      this.times[i] = this.times[parent]
      this.payloads[i] = this.payloads[parent]
      i = parent
    }
    this.times[i] = time
    this.payloads[i] = payload
  }

  peekTime(): number {
    return this.times[0]
  }

  /** Removes the earliest event and returns its payload. */
  pop(): number {
    const top = this.payloads[0]
    const lastTime = this.times[--this.size]
    const lastPayload = this.payloads[this.size]
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= this.size) break
      if (child + 1 < this.size && this.times[child + 1] < this.times[child]) child++
      if (this.times[child] >= lastTime) break
      this.times[i] = this.times[child]
      this.payloads[i] = this.payloads[child]
      i = child
    }
    this.times[i] = lastTime
    this.payloads[i] = lastPayload
    return top
  }
}

// Event payloads carry the block id and what happens to it.
const EVENT_FREE = 0
const EVENT_GROW = 1

// Stresses everything at once like a real program: many short-lived small objects, longer-lived
// medium ones, rare large buffers, and strings/arrays that grow by realloc; sizes and lifetimes
// both roughly power-law distributed.
function programMix(random: Random, builder: TraceBuilder, ops: number): void {
  const events = new EventQueue()
  let now = 0
  const runEvent = (payload: number): void => {
    const id = payload >> 1
    if ((payload & 1) === EVENT_FREE) {
      builder.free(id)
      return
    }
    const size = builder.sizeOf(id)
    // Mostly appends; sometimes a shrink-to-fit.
    const newSize = random.chance(0.9)
      ? Math.min(65536, size + random.between(1, size))
      : random.between(Math.ceil(size / 2), size)
    builder.realloc(id, newSize)
  }
  while (builder.opCount < ops) {
    if (events.size > 0 && events.peekTime() <= now) {
      runEvent(events.pop())
      continue
    }
    now++
    const roll = random.next()
    let size: number
    let lifetime: number
    if (roll < 0.8) {
      size = random.logUniform(16, 128)
      lifetime = random.logUniform(1, 200)
    } else if (roll < 0.99) {
      size = random.logUniform(256, 4096)
      lifetime = random.logUniform(100, 20000)
    } else {
      size = random.logUniform(16384, 262144)
      lifetime = random.logUniform(10, 2000)
    }
    const id = builder.alloc(size)
    events.push(now + lifetime, id * 2 + EVENT_FREE)
    if (size <= 4096 && random.chance(0.05)) {
      // Growth events come strictly before the free, so they always find the block live.
      const growths = random.between(1, 3)
      for (let i = 0; i < growths; i++) events.push(now + random.below(lifetime), id * 2 + EVENT_GROW)
    }
  }
  while (events.size > 0) runEvent(events.pop())
}

const GENERATORS: Record<WorkloadKind, (random: Random, builder: TraceBuilder, ops: number) => void> = {
  'random-churn': randomChurn,
  fragmentation,
  'realloc-growth': reallocGrowth,
  coalescing,
  lifo,
  fifo,
  'program-mix': programMix,
}

/** Generates a balanced, valid trace of the given workload kind, named after the kind. */
export function generateTrace(kind: WorkloadKind, options: WorkloadOptions = {}): Trace {
  if (!Object.hasOwn(GENERATORS, kind)) {
    throw new AllocatorError(
      'ERR_INVALID_OPTION',
      `unknown workload kind ${JSON.stringify(kind)} (expected one of ${WORKLOAD_KINDS.join(', ')})`,
    )
  }
  const { seed = 1, ops = DEFAULT_OPS } = options
  if (!Number.isSafeInteger(seed)) {
    throw new AllocatorError('ERR_INVALID_OPTION', `seed must be an integer (got ${String(seed)})`)
  }
  if (!Number.isSafeInteger(ops) || ops < 1) {
    throw new AllocatorError('ERR_INVALID_OPTION', `ops must be a positive integer (got ${String(ops)})`)
  }
  const builder = new TraceBuilder()
  GENERATORS[kind](new Random(seed), builder, ops)
  return builder.finish(kind)
}
