import { describe, it, expect } from 'vitest'
import { AllocatorError } from '../../lib/errors'
import { TraceOp, formatTrace, parseTrace, type Trace } from '../../lib/trace/trace'
import { WORKLOAD_KINDS, generateTrace, type WorkloadKind } from '../../lib/trace/workloads'

const { Alloc, Free, Realloc } = TraceOp
const OPS = 20_000

/** Where two traces' requests first differ, or undefined when they are the same. */
function firstDifference(a: Trace, b: Trace): string | undefined {
  if (a.opCount !== b.opCount) return `opCount ${a.opCount} vs ${b.opCount}`
  for (let i = 0; i < a.opCount; i++) {
    if (a.kinds[i] !== b.kinds[i] || a.ids[i] !== b.ids[i] || a.sizes[i] !== b.sizes[i]) {
      return `request ${i}: ${a.kinds[i]} ${a.ids[i]} ${a.sizes[i]} vs ${b.kinds[i]} ${b.ids[i]} ${b.sizes[i]}`
    }
  }
  return undefined
}

/**
 * Replays the requests independently of lib/trace. Per-request expect() calls would dominate the
 * run time, so problems are collected and asserted once.
 */
function replay(trace: Trace) {
  const live = new Map<number, number>()
  const problems: string[] = []
  let liveBytes = 0
  let peakLiveBytes = 0
  const allocSizes: number[] = []
  let reallocs = 0
  for (let i = 0; i < trace.opCount; i++) {
    const id = trace.ids[i]
    const size = trace.sizes[i]
    if (id < 0 || id >= trace.numIds) problems.push(`request ${i}: id ${id} out of range`)
    if (trace.kinds[i] === Alloc) {
      if (live.has(id)) problems.push(`request ${i}: alloc of live id ${id}`)
      live.set(id, size)
      liveBytes += size
      allocSizes.push(size)
    } else if (trace.kinds[i] === Free) {
      if (!live.has(id)) problems.push(`request ${i}: free of dead id ${id}`)
      liveBytes -= live.get(id) ?? 0
      live.delete(id)
    } else {
      // Generated reallocs always resize a live block.
      if (!live.has(id)) problems.push(`request ${i}: realloc of dead id ${id}`)
      liveBytes += size - (live.get(id) ?? 0)
      live.set(id, size)
      reallocs++
    }
    peakLiveBytes = Math.max(peakLiveBytes, liveBytes)
  }
  expect(problems.slice(0, 5)).toEqual([])
  return { liveAtEnd: live.size, peakLiveBytes, allocSizes, reallocs }
}

describe.each(WORKLOAD_KINDS.map((kind) => [kind]))('%s', (kind: WorkloadKind) => {
  const trace = generateTrace(kind, { seed: 7, ops: OPS })

  it('is named after its kind and has the generated header', () => {
    expect(trace.name).toBe(kind)
    expect(trace.header).toEqual([0, trace.numIds, trace.opCount, trace.peakLiveBytes])
  })

  it('is deterministic for a seed', () => {
    expect(firstDifference(generateTrace(kind, { seed: 7, ops: OPS }), trace)).toBeUndefined()
  })

  it('differs across seeds', () => {
    expect(firstDifference(generateTrace(kind, { seed: 8, ops: OPS }), trace)).toBeDefined()
  })

  it('is balanced and consistent with its statistics', () => {
    const result = replay(trace)
    expect(result.liveAtEnd).toBe(0)
    expect(result.peakLiveBytes).toBe(trace.peakLiveBytes)
  })

  it('has about the requested number of requests, plus the final frees', () => {
    expect(trace.opCount).toBeGreaterThanOrEqual(OPS)
    expect(trace.opCount).toBeLessThan(OPS + 4 * trace.peakLiveChunks + 16)
    expect(trace.numIds).toBeLessThan(1_000_000)
  })

  it('round-trips through .rep text', () => {
    const parsed = parseTrace(formatTrace(trace), kind)
    expect(firstDifference(parsed, trace)).toBeUndefined()
    expect(parsed.header).toEqual(trace.header)
    expect(parsed.numIds).toBe(trace.numIds)
    expect(parsed.peakLiveBytes).toBe(trace.peakLiveBytes)
    expect(parsed.peakLiveChunks).toBe(trace.peakLiveChunks)
  })
})

describe('workload shapes', () => {
  it('random-churn: mostly small sizes around a live set of about 2000 blocks', () => {
    const trace = generateTrace('random-churn')
    const { allocSizes } = replay(trace)
    const small = allocSizes.filter((size) => size >= 8 && size <= 4096).length
    expect(small / allocSizes.length).toBeGreaterThan(0.9)
    expect(Math.max(...allocSizes)).toBeGreaterThan(4096)
    expect(trace.peakLiveChunks).toBeGreaterThan(1800)
    expect(trace.peakLiveChunks).toBeLessThan(2600)
  })

  it('fragmentation: freed holes are followed by requests larger than the holes', () => {
    const trace = generateTrace('fragmentation')
    const holes = new Map([[448, 512], [112, 128], [224, 256], [896, 1024]])
    let checkedRounds = 0
    for (let i = 1; i < trace.opCount; i++) {
      // The first allocation after a run of frees is the round's "larger" request.
      if (trace.kinds[i] !== Alloc || trace.kinds[i - 1] !== Free) continue
      const freedSize = trace.sizes[lastAllocOf(trace, trace.ids[i - 1], i - 1)]
      if (!holes.has(freedSize)) continue
      expect(trace.sizes[i]).toBe(holes.get(freedSize))
      checkedRounds++
    }
    expect(checkedRounds).toBeGreaterThan(5)
  })

  it('realloc-growth: many reallocs that grow buffers up to hundreds of KiB', () => {
    const trace = generateTrace('realloc-growth')
    const { reallocs } = replay(trace)
    expect(reallocs / trace.opCount).toBeGreaterThan(0.25)
    const largest = Math.max(...trace.sizes)
    expect(largest).toBeGreaterThanOrEqual(256 << 10)
    expect(largest).toBeLessThanOrEqual(1 << 20)
  })

  it('coalescing: each merged request asks for exactly the neighbours just freed', () => {
    const trace = generateTrace('coalescing')
    let merges = 0
    for (let i = 0; i + 1 < trace.opCount; i++) {
      // A merged request comes right after frees and is freed right away itself.
      const isMerged =
        i > 0 && trace.kinds[i - 1] === Free && trace.kinds[i] === Alloc && trace.kinds[i + 1] === Free && trace.ids[i + 1] === trace.ids[i]
      if (!isMerged) continue
      let freedBytes = 0
      for (let j = i - 1; j >= 0 && trace.kinds[j] === Free; j--) freedBytes += trace.sizes[lastAllocOf(trace, trace.ids[j], j)]
      expect(trace.sizes[i]).toBe(freedBytes)
      merges++
    }
    expect(merges).toBeGreaterThan(10_000)
  })

  it('lifo frees the most recent block first; fifo frees the oldest first', () => {
    const outOfOrderFrees = (trace: Trace, takeNext: (live: number[]) => number) => {
      const live: number[] = []
      let outOfOrder = 0
      for (let i = 0; i < trace.opCount; i++) {
        if (trace.kinds[i] === Alloc) live.push(trace.ids[i])
        else if (trace.ids[i] !== takeNext(live)) outOfOrder++
      }
      return outOfOrder
    }
    expect(outOfOrderFrees(generateTrace('lifo'), (live) => live.pop()!)).toBe(0)
    expect(outOfOrderFrees(generateTrace('fifo'), (live) => live.shift()!)).toBe(0)
  })

  it('program-mix: mostly small objects, rare large ones, occasional reallocs', () => {
    const trace = generateTrace('program-mix')
    const { allocSizes, reallocs } = replay(trace)
    const small = allocSizes.filter((size) => size >= 16 && size <= 128).length
    const large = allocSizes.filter((size) => size >= 16384).length
    expect(small / allocSizes.length).toBeGreaterThan(0.7)
    expect(large).toBeGreaterThan(0)
    expect(large / allocSizes.length).toBeLessThan(0.05)
    expect(reallocs).toBeGreaterThan(0)
    expect(reallocs / allocSizes.length).toBeLessThan(0.2)
    expect(trace.kinds.includes(Realloc)).toBe(true)
  })
})

/** Index of the alloc that gave `id` its current block, searching backwards from `before`. */
function lastAllocOf(trace: Trace, id: number, before: number): number {
  for (let i = before; i >= 0; i--) if (trace.kinds[i] === Alloc && trace.ids[i] === id) return i
  throw new Error(`id ${id} was never allocated before request ${before}`)
}

describe('generateTrace options', () => {
  it('defaults to about 100,000 requests and seed 1', () => {
    const trace = generateTrace('lifo')
    expect(trace.opCount).toBeGreaterThanOrEqual(100_000)
    expect(trace.opCount).toBeLessThan(110_000)
    expect(firstDifference(generateTrace('lifo', { seed: 1 }), trace)).toBeUndefined()
  })

  it('rejects unknown kinds and bad options with ERR_INVALID_OPTION', () => {
    const bad: [() => unknown, RegExp][] = [
      [() => generateTrace('stack' as WorkloadKind), /unknown workload kind "stack"/],
      [() => generateTrace('lifo', { seed: 1.5 }), /seed must be an integer/],
      [() => generateTrace('lifo', { ops: 0 }), /ops must be a positive integer/],
      [() => generateTrace('lifo', { ops: Number.NaN }), /ops must be a positive integer/],
    ]
    for (const [run, message] of bad) {
      let caught: unknown
      try {
        run()
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(AllocatorError)
      expect((caught as AllocatorError).code).toBe('ERR_INVALID_OPTION')
      expect((caught as AllocatorError).message).toMatch(message)
    }
  })

  it('works for tiny op counts', () => {
    for (const kind of WORKLOAD_KINDS) {
      const trace = generateTrace(kind, { ops: 1 })
      expect(trace.opCount).toBeGreaterThanOrEqual(1)
      expect(replay(trace).liveAtEnd).toBe(0)
    }
  })
})
