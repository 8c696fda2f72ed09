/**
 * replay(): a whole trace run inside native code against one allocator. These tests check what
 * it reports and refuses; the bench command's tests (cli.test.ts) check how it is presented.
 */
import { describe, expect, it } from 'vitest'
import { nativeBinding } from '../../lib/backends/binding'
import { AllocatorError, generateTrace, parseTrace, replay, REPLAY_ALLOCATORS, type Trace } from '../../lib/index'
import { loadTestHooks } from '../native/test-hooks'

const churn = generateTrace('random-churn', { ops: 5_000, seed: 3 })

function expectCode(run: () => unknown, code: string, mentions: string): void {
  let thrown: unknown
  try {
    run()
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(AllocatorError)
  expect((thrown as AllocatorError).code).toBe(code)
  expect((thrown as Error).message).toContain(mentions)
}

describe.skipIf(nativeBinding() === undefined)('replay', () => {
  it.each(REPLAY_ALLOCATORS)('%s reports every ReplayResult field', (allocator) => {
    const result = replay(churn, { allocator, repeat: 3, touch: true })
    expect(result).toMatchObject({ allocator, trace: 'random-churn', ops: churn.opCount, peakLiveBytes: churn.peakLiveBytes })
    expect(result.runsNsPerOp).toHaveLength(3)
    expect(result.nsPerOp).toBeGreaterThan(0)
    expect([...result.runsNsPerOp].sort((a, b) => a - b)[1]).toBe(result.nsPerOp)
    if (allocator === 'libc') {
      // libc keeps its bookkeeping to itself: nothing of it is reported as if it were measured.
      expect(result).toMatchObject({ peakHeapBytes: null, utilization: null, metadataBytes: null, brkCalls: null, searchSteps: null })
    } else {
      expect(result.peakHeapBytes).toBeGreaterThanOrEqual(result.peakLiveBytes)
      expect(result.utilization).toBeCloseTo(result.peakLiveBytes / result.peakHeapBytes!, 12)
      expect(result.metadataBytes).toBeGreaterThan(0)
      expect(result.brkCalls).toBeGreaterThan(0)
      expect(result.searchSteps).toBeGreaterThanOrEqual(0)
    }
  })

  it('leaves the program break where it found it', () => {
    const { currentBreak } = loadTestHooks()
    const before = currentBreak()
    replay(churn, { allocator: 'best-fit', source: 'brk', repeat: 2 })
    expect(currentBreak()).toBe(before)
  })

  it('best-fit searches through its indexes; the note\'s linear scan examines far more records', () => {
    const indexed = replay(churn, { allocator: 'best-fit', touch: false })
    const linear = replay(churn, { allocator: 'best-fit-linear', touch: false })
    expect(indexed.searchSteps! / churn.opCount).toBeLessThan(8)
    expect(linear.searchSteps!).toBeGreaterThan(10 * indexed.searchSteps!)
  })

  it('segregateSmall (on by default) keeps small chunks apart, so freed large ones merge into usable holes', () => {
    // binary-bal's pattern: 64-byte and 448-byte chunks alternate, the 448s are freed, then 512s
    // come. Interleaved, no freed hole fits a 512; apart, the freed 448s merge into holes that do.
    const pairs = 500
    const lines: string[] = []
    for (let i = 0; i < pairs; i++) lines.push(`a ${2 * i} 64`, `a ${2 * i + 1} 448`)
    for (let i = 0; i < pairs; i++) lines.push(`f ${2 * i + 1}`)
    for (let i = 0; i < pairs; i++) lines.push(`a ${2 * pairs + i} 512`)
    const binary = parseTrace(`0\n${3 * pairs}\n${lines.length}\n1\n${lines.join('\n')}\n`, 'binary')
    const mixed = replay(binary, { allocator: 'best-fit', touch: false, growth: 0, segregateSmall: 0 })
    const apart = replay(binary, { allocator: 'best-fit', touch: false, growth: 0, segregateSmall: 64 })
    expect(mixed.utilization!).toBeLessThan(0.7)
    expect(apart.utilization!).toBeGreaterThan(0.95)
    const byDefault = replay(binary, { allocator: 'best-fit', touch: false, growth: 0 })
    expect(byDefault.peakHeapBytes).toBe(apart.peakHeapBytes)
  })

  it('growth 0 moves the break by exactly what each request needs', () => {
    const exact = replay(parseTrace('0\n2\n4\n0\na 0 4095\na 1 4095\nf 0\nf 1\n', 'two'), { allocator: 'best-fit', growth: 0 })
    expect(exact.peakHeapBytes).toBe(8192)
    expect(exact.utilization).toBeCloseTo(8190 / 8192, 12)
  })

  it('refuses bad options with ERR_INVALID_OPTION', () => {
    expectCode(() => replay(churn, { allocator: 'tlsf' as 'libc' }), 'ERR_INVALID_OPTION', '"tlsf"')
    expectCode(() => replay(churn, { allocator: 'best-fit', repeat: 0 }), 'ERR_INVALID_OPTION', 'repeat')
    expectCode(() => replay(churn, { allocator: 'best-fit', touch: 'yes' as unknown as boolean }), 'ERR_INVALID_OPTION', 'touch')
    expectCode(() => replay(churn, { allocator: 'best-fit', alignment: 24 }), 'ERR_INVALID_OPTION', 'alignment')
    expectCode(() => replay(churn, { allocator: 'best-fit', growth: -1 }), 'ERR_INVALID_OPTION', 'growth')
    expectCode(() => replay(churn, { allocator: 'best-fit', segregateSmall: 2 ** 21 }), 'ERR_INVALID_OPTION', 'segregateSmall')
  })

  // One mapping of the options to the core's (native/addon/heap_options.cpp) for createHeap and
  // replay: each option changes the replay as it changes a heap.
  it('honours split, coalesce and maxHeapBytes as createHeap does', () => {
    const base = { allocator: 'best-fit', growth: 0, source: 'mmap', segregateSmall: 0 } as const
    // A 4096-byte hole below a live chunk, then two 16-byte requests: split carves both from the
    // hole; without split the first takes the whole hole and the second grows the heap.
    const hole = parseTrace('0\n4\n5\n1\na 0 4096\na 3 16\nf 0\na 1 16\na 2 16\n', 'hole')
    expect(replay(hole, base).peakHeapBytes).toBe(4096 + 16)
    expect(replay(hole, { ...base, split: false }).peakHeapBytes).toBe(4096 + 16 + 16)
    // Two freed 1 KiB neighbours, then 2 KiB: merged they hold it; unmerged the heap grows.
    const pair = parseTrace('0\n4\n6\n1\na 0 1024\na 1 1024\na 3 16\nf 0\nf 1\na 2 2048\n', 'pair')
    expect(replay(pair, base).peakHeapBytes).toBe(2048 + 16)
    expect(replay(pair, { ...base, coalesce: false }).peakHeapBytes).toBe(2048 + 16 + 2048)
    // The cap holds in a replay as in a heap: the request that would pass it fails.
    expect(replay(pair, { ...base, maxHeapBytes: 4096 + 16 }).peakHeapBytes).toBe(2048 + 16)
    expectCode(() => replay(pair, { ...base, coalesce: false, maxHeapBytes: 4096 }), 'ERR_OUT_OF_MEMORY', 'op 6')
  })

  it('checks split, coalesce and maxHeapBytes by createHeap\'s rules', () => {
    expectCode(() => replay(churn, { allocator: 'best-fit', split: 'no' as unknown as boolean }), 'ERR_INVALID_OPTION', 'replay option split must be a boolean')
    expectCode(() => replay(churn, { allocator: 'best-fit', coalesce: 1 as unknown as boolean }), 'ERR_INVALID_OPTION', 'replay option coalesce must be a boolean')
    expectCode(() => replay(churn, { allocator: 'best-fit', maxHeapBytes: 0 }), 'ERR_INVALID_OPTION', 'replay option maxHeapBytes must be positive')
    expectCode(() => replay(churn, { allocator: 'best-fit', alignment: 24 }), 'ERR_INVALID_OPTION', 'replay option alignment must be a power of two from 8 to 4096, got 24')
  })

  it('refuses an inconsistent trace with ERR_TRACE_FORMAT naming the op, before running anything', () => {
    const freeOfDeadId: Trace = { ...churn, kinds: new Uint8Array([0, 1, 1]), ids: new Int32Array([0, 0, 0]), sizes: new Float64Array([8, 0, 0]), opCount: 3 }
    expectCode(() => replay(freeOfDeadId, { allocator: 'libc' }), 'ERR_TRACE_FORMAT', 'op 3')
    const idOutOfRange: Trace = { ...churn, kinds: new Uint8Array([0]), ids: new Int32Array([churn.numIds]), sizes: new Float64Array([8]), opCount: 1 }
    expectCode(() => replay(idOutOfRange, { allocator: 'best-fit' }), 'ERR_TRACE_FORMAT', 'op 1')
  })

  it('an allocation no heap can satisfy is ERR_OUT_OF_MEMORY naming the op', () => {
    const huge = parseTrace('0\n2\n4\n0\na 0 16\na 1 36507238400\nf 1\nf 0\n', 'huge')
    expectCode(() => replay(huge, { allocator: 'best-fit' }), 'ERR_OUT_OF_MEMORY', 'op 2')
  })
})
