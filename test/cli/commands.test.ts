/**
 * The replay and demo commands: what they print, the pictures replay draws, and the demo's story
 * on this process's real break (and on a blocked one, where the test build can block it).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nativeBinding } from '../../lib/backends/binding'
import { REPLAY_HELP } from '../../lib/cli/replay'
import { traceThroughHeap } from '../../lib/replay/replay-pictures'
import { renderTimeline } from '../../lib/render/timeline'
import { formatTrace, parseTrace } from '../../lib/trace/trace'
import { generateTrace } from '../../lib/trace/workloads'
import { run, wellFormedSvg } from './helpers'
import { loadTestHooks } from '../native/test-hooks'

const hasNative = nativeBinding() !== undefined
let dir: string
let frag: string
let fragOps: number

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'memory-allocator-commands-'))
  frag = join(dir, 'frag.rep')
  const trace = generateTrace('fragmentation', { seed: 5, ops: 3000 })
  fragOps = trace.opCount
  writeFileSync(frag, formatTrace(trace))
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('help', () => {
  it('lists every command, and each has its own help', async () => {
    const main = await run(['--help'])
    for (const command of ['bench [TRACE...]', 'replay TRACE', 'demo ']) expect(main.stdout).toContain(`  ${command}`)
    expect((await run(['help', 'replay'])).stdout).toBe(REPLAY_HELP)
    expect((await run(['replay', '--help'])).stdout).toBe(REPLAY_HELP)
    expect((await run(['demo', '--help'])).stdout).toMatch(/^Usage: memory-allocator demo/)
  })
})

describe.skipIf(!hasNative)('replay', () => {
  it('prints the timed row of one allocator', async () => {
    const result = await run(['replay', frag, '--allocator', 'first-fit', '--repeat', '1'])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    const lines = result.stdout.split('\n')
    expect(lines[0]).toMatch(new RegExp(`^frag {2}\\(${fragOps.toLocaleString('en-US')} ops, peak live .* blocks; .*frag\\.rep\\)$`))
    expect(lines[1]).toMatch(/^allocator\s+ns\/op/)
    expect(lines[3]).toMatch(/^first-fit\s+[\d.,]+\s+—\s+[\d.]+ KiB/)
  })

  it('--json, --map and --timeline', async () => {
    const map = join(dir, 'map.svg')
    const timeline = join(dir, 'timeline.svg')
    const result = await run(['replay', frag, '--repeat', '1', '--json', '--map', map, '--timeline', timeline])
    expect(result.code).toBe(0)
    const doc = JSON.parse(result.stdout)
    expect(doc.result).toMatchObject({ allocator: 'best-fit', trace: 'frag', ops: fragOps, failed: null })
    expect(doc.map).toMatchObject({ file: map, peakOp: expect.any(Number), peakHeapBytes: doc.result.peakHeapBytes })
    expect(doc.timeline).toMatchObject({ file: timeline })
    expect(doc.timeline.samples).toBeGreaterThan(300)
    const mapSvg = readFileSync(map, 'utf8')
    expect(wellFormedSvg(mapSvg)).toBe(true)
    expect(mapSvg).toContain('best-fit heap at its peak replaying frag')
    expect(mapSvg).not.toMatch(/<script|<image|href=/)
    const timelineSvg = readFileSync(timeline, 'utf8')
    expect(wellFormedSvg(timelineSvg)).toBe(true)
    expect(timelineSvg).toContain('held from the OS')
    expect(timelineSvg).toContain('live ÷ held')
  })

  it('a heap that runs out of memory: the pictures stop there and say so', () => {
    const trace = generateTrace('random-churn', { seed: 1, ops: 4000 })
    const pictures = traceThroughHeap(trace, { strategy: 'bump', heap: { source: 'mmap', maxHeapBytes: 256 * 1024 } })
    expect(pictures.stopped).toMatchObject({ code: 'ERR_OUT_OF_MEMORY' })
    expect(pictures.stopped!.op).toBeGreaterThan(0)
    expect(pictures.stopped!.op).toBeLessThan(trace.opCount)
    expect(pictures.samples.at(-1)!.op).toBe(pictures.stopped!.op)
    const svg = renderTimeline(pictures)
    expect(wellFormedSvg(svg)).toBe(true)
    expect(svg).toContain(`stopped at request ${pictures.stopped!.op.toLocaleString('en-US')}: ERR_OUT_OF_MEMORY`)
  })

  it('pictures: samples follow the heap, and the peak snapshot is the largest heap', () => {
    const trace = generateTrace('fragmentation', { seed: 9, ops: 5000 })
    const fractions: number[] = []
    const pictures = traceThroughHeap(trace, { strategy: 'best-fit', heap: { source: 'mmap' }, samples: 50, onProgress: (f) => fractions.push(f) })
    expect(pictures.samples.length).toBeGreaterThanOrEqual(50)
    expect(pictures.samples[0]).toEqual({ op: 0, heapBytes: 0, liveBytes: 0 })
    expect(pictures.samples.at(-1)!.op).toBe(trace.opCount)
    const largestSampled = Math.max(...pictures.samples.map((s) => s.heapBytes))
    expect(pictures.peak.stats.heapBytes).toBeGreaterThanOrEqual(largestSampled)
    expect(pictures.peakOp).toBeGreaterThan(0)
    const live = pictures.peak.chunks.filter((c) => c.state === 'live').length
    expect(live).toBeGreaterThan(0)
    expect(fractions.at(-1)).toBe(1)
  })

  it('a trace with realloc and free(NULL) runs through the picture heap', () => {
    const trace = parseTrace('0\n3\n7\n0\na 0 100\nr 0 5000\nf -1\nr 1 64\na 2 16\nf 0\nf 2\n', 'mixed')
    const pictures = traceThroughHeap(trace, { strategy: 'first-fit', heap: { source: 'mmap' } })
    expect(pictures.stopped).toBeUndefined()
    expect(pictures.samples.at(-1)).toMatchObject({ op: 7 })
    expect(pictures.samples.at(-1)!.liveBytes).toBe(64)
  })
})

const STORY = [
  /^memory-allocator demo: the original note's heap, live on this Node process/m,
  /^1\. The program break$/m,
  /\[heap\] before: /,
  /^2\. Freed chunks go into the table$/m,
  /The table holds 3 records \(offset, size\): \(\+200, 2048\) \(\+c00, 1024\) \(\+1200, 3072\)/,
  /alloc\(900\): b \(2048\) and f \(3072\) fit too, but best fit took d, the smallest chunk that fits/,
  /The 1024-byte chunk was split: 912 bytes for the request, and the other 112 bytes stay in the table/,
  /alloc\(2048\): b is exactly 2048 bytes, so the search stopped there; \d+ records? examined\./,
  /free\(e\): e sits between the rest of d and the free f, so the three became one free chunk of 3696 bytes \(2 records before, 1 after\)/,
  /Everything freed, then trim\(\): /,
  /reset\(\): all 4 live chunks freed at once/,
]

describe.skipIf(!hasNative)('demo', () => {
  it('tells the story on the real break, plain when colours are off', async () => {
    const result = await run(['demo'])
    expect(result.code).toBe(0)
    expect(result.stderr).toBe('')
    for (const line of STORY) expect(result.stdout).toMatch(line)
    expect(result.stdout).toMatch(/The break moved up by 16\.0 KiB|The break could not move in this process/)
    expect(result.stdout).toMatch(/^ {3}\+0000 #{8}%+#{8}/m) // a 512, b 2048, c 512 on the first map
    expect(result.stdout).not.toContain('\x1b')
  })

  it('colours its maps when asked to', async () => {
    const result = await run(['demo', '--width', '32'], { color: true })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('\x1b[30;42m')
    for (const line of STORY) expect(result.stdout.replace(/\x1b\[[\d;]*m/g, '')).toMatch(line)
  })

  // The hooks addon is test-only (test/native/test-hooks.ts); it exists wherever the native addon built.
  const blockBreak = nativeBinding() === undefined ? undefined : loadTestHooks().blockBreak
  it.skipIf(blockBreak === undefined)('says so where the break cannot move, and goes on', async () => {
    blockBreak!(true)
    try {
      const result = await run(['demo'])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain('The break could not move in this process')
      for (const line of STORY) expect(result.stdout).toMatch(line)
    } finally {
      blockBreak!(false)
    }
  })
})
