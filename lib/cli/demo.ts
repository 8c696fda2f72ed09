/**
 * `memory-allocator demo`: the original design note's story told live on this Node process's
 * own heap, with the public API only: the program break moving up as the heap grows (the
 * `[heap]` line of /proc/self/maps as the kernel's witness), freed chunks going into the table,
 * best fit taking the smallest chunk that fits and an exact fit at once, a split, a merge, the
 * break trimmed back down, and the bump heap freeing everything at once.
 *
 * It runs best-fit-linear, the note's own algorithm (scan the table, stop at an exact fit): it
 * merges a freed chunk at once, so the merge step shows on the map. Where the break cannot move
 * (a mapping right above it) or the addon does not load, the demo says so and goes on with what
 * this process has.
 */
import { readFileSync } from 'node:fs'
import { humanBytes } from '../render/format'
import { PROGRAM, UsageError, parseCommandArgs, type CliIo, type Command } from './support'
import { renderHeapMap } from '../render/heap-map'
import { createHeap } from '../heap/heap'
import type { ChunkInfo, Heap } from '../types'

export const DEMO_HELP = `Usage: ${PROGRAM} demo [--width N]

A short guided run on this process's own heap: the program break before and
after the heap grows (the [heap] line of /proc/self/maps), freed chunks in the
table, best fit choosing the smallest chunk that fits and an exact fit taken
at once, a split, a merge, the break trimmed back down, and the bump heap's
all-at-once reset. Each step draws the heap: colours on a terminal (unless
NO_COLOR is set), plain text otherwise.

Options:
  --width N          cells per line of the heap maps (default 64)
  -h, --help         show this help
`

const GROWTH = 16 * 1024

interface BreakMapping {
  start: number
  end: number
  line: string
}

/** The kernel's [heap] mapping: [start_brk, brk) rounded up to pages. Undefined without one. */
function heapMapping(): BreakMapping | undefined {
  let maps: string
  try {
    maps = readFileSync('/proc/self/maps', 'utf8')
  } catch {
    return undefined
  }
  const line = maps.split('\n').find((l) => l.endsWith('[heap]'))
  if (line === undefined) return undefined
  const [start, end] = line.split(' ')[0].split('-').map((hex) => parseInt(hex, 16))
  return { start, end, line: line.replace(/\s+/g, ' ') }
}

function hex(value: number): string {
  return `0x${value.toString(16)}`
}

class Story {
  private step = 0

  constructor(
    private readonly io: CliIo,
    private readonly width: number,
  ) {}

  heading(title: string): void {
    this.step++
    const text = `${this.step}. ${title}`
    this.io.stdout.write(`\n${this.io.color ? `\x1b[1m${text}\x1b[0m` : text}\n`)
  }

  say(text: string): void {
    this.io.stdout.write(`   ${text}\n`)
  }

  map(heap: Heap, offsets: Map<string, number> = new Map()): void {
    const text = renderHeapMap(heap, { width: this.width, color: this.io.color === true, title: `${heap.strategy} heap` })
    this.io.stdout.write(text.trimEnd().replace(/^/gm, '   ') + '\n')
    if (offsets.size > 0) {
      const start = heap.stats().heapStart
      this.say(`(${[...offsets].map(([name, address]) => `${name} at +${(address - start).toString(16)}`).join(', ')})`)
    }
  }
}

function freeTable(heap: Heap): ChunkInfo[] {
  return heap.chunks().filter((chunk) => chunk.state === 'free')
}

function describeTable(heap: Heap): string {
  const start = heap.stats().heapStart
  const records = freeTable(heap).map((chunk) => `(+${(chunk.address - start).toString(16)}, ${chunk.size})`)
  return records.length === 0 ? 'The table is empty.' : `The table holds ${records.length} record${records.length === 1 ? '' : 's'} (offset, size): ${records.join(' ')}`
}

function sizeAt(heap: Heap, address: number): number {
  return heap.chunks().find((chunk) => chunk.address === address)?.size ?? 0
}

function breakStory(story: Story, heap: Heap, before: BreakMapping | undefined): void {
  const after = heapMapping()
  const { heapStart, heapEnd } = heap.stats()
  if (before === undefined && after === undefined) {
    story.say('This system has no [heap] line in /proc/self/maps to watch.')
    return
  }
  story.say(`[heap] before: ${before?.line ?? '(none yet)'}`)
  story.say(`[heap] after:  ${after?.line ?? '(none)'}`)
  const onBreak = after !== undefined && heapStart >= after.start && heapEnd <= after.end
  if (onBreak) {
    const moved = after.end - (before?.end ?? after.start)
    story.say(`The break moved up by ${humanBytes(moved)}: the heap is ${hex(heapStart)}..${hex(heapEnd)}, the top of [heap].`)
  } else {
    story.say(`The break could not move in this process (another mapping sits right above [heap]), so the`)
    story.say(`heap grows in a region it reserved near the break instead, at ${hex(heapStart)}; the story goes on there.`)
  }
}

function bestFitStory(story: Story, heap: Heap): void {
  // Separators keep the freed chunks apart, so that each stays its own record.
  const a = heap.raw.alloc(512)
  const b = heap.raw.alloc(2048)
  const c = heap.raw.alloc(512)
  const d = heap.raw.alloc(1024)
  const e = heap.raw.alloc(512)
  const f = heap.raw.alloc(3072)
  const g = heap.raw.alloc(512)
  story.say('Seven chunks: a 512, b 2048, c 512, d 1024, e 512, f 3072, g 512 bytes; the rest of the growth is the top.')
  story.map(heap)

  story.heading('Freed chunks go into the table')
  heap.raw.free(b)
  heap.raw.free(d)
  heap.raw.free(f)
  story.say('free(b), free(d), free(f): each chunk\'s (address, size) becomes a record in the table.')
  story.say(describeTable(heap))
  story.map(heap)

  story.heading('Best fit: the smallest chunk that fits')
  const steps = heap.stats().searchSteps
  const x = heap.raw.alloc(900)
  const chosen = x === d ? 'd' : x === b ? 'b' : x === f ? 'f' : 'the top'
  story.say(`alloc(900): b (2048) and f (3072) fit too, but best fit took ${chosen}, the smallest chunk that fits`)
  story.say(`(${heap.stats().searchSteps - steps} records examined).`)
  const rest = freeTable(heap).find((chunk) => chunk.address === x + heap.raw.sizeOf(x))
  story.heading('A split')
  story.say(
    rest === undefined
      ? `The chunk was used whole: what was left (${sizeAt(heap, x) - 900} bytes) was too small to keep.`
      : `The 1024-byte chunk was split: ${heap.raw.sizeOf(x)} bytes for the request, and the other ${rest.size} bytes stay in the table as a free chunk.`,
  )
  story.map(heap)

  story.heading('An exact fit is taken at once')
  const before = heap.stats().searchSteps
  const y = heap.raw.alloc(2048)
  story.say(
    `alloc(2048): b is exactly 2048 bytes, so the search stopped there${y === b ? '' : ` (it took ${hex(y)})`}; ` +
      `${heap.stats().searchSteps - before} record${heap.stats().searchSteps - before === 1 ? '' : 's'} examined.`,
  )
  story.say(describeTable(heap))

  story.heading('A merge')
  const freeBefore = freeTable(heap).length
  heap.raw.free(e)
  const merged = freeTable(heap).find((chunk) => chunk.address <= e && e < chunk.address + chunk.size)
  story.say(
    `free(e): e sits between the rest of d and the free f, so the three became one free chunk of ${merged?.size ?? 0} bytes ` +
      `(${freeBefore} records before, ${freeTable(heap).length} after).`,
  )
  story.map(heap)

  story.heading('The break trimmed back down')
  const held = heap.stats().heapBytes
  const breakBefore = heapMapping()
  for (const address of [a, c, x, y, g]) heap.raw.free(address)
  const released = heap.trim()
  const breakAfter = heapMapping()
  story.say(`Everything freed, then trim(): ${humanBytes(released)} of the ${humanBytes(held)} held went back to the OS.`)
  if (heap.source === 'brk' && breakBefore !== undefined && breakAfter !== undefined && released > 0 && breakAfter.end < breakBefore.end) {
    story.say(`[heap] now:   ${breakAfter.line}  (the break moved down by ${humanBytes(breakBefore.end - breakAfter.end)})`)
  } else if (released < held) {
    story.say(`Not all of it: someone else's memory (Node's own malloc) sits above part of the heap, and the break`)
    story.say(`is only lowered while it is still where this heap left it.`)
  }
  story.map(heap)
}

function bumpStory(story: Story, heap: Heap): void {
  story.heading('The bump heap: one pointer, freed all at once')
  const addresses = [300, 1200, 64, 2500, 700].map((size) => heap.raw.alloc(size))
  story.say(`Five chunks, one after another: the next pointer only moves up (${heap.backend} ${heap.source} heap).`)
  heap.raw.free(addresses[1])
  story.say('free() of a chunk in the middle gives nothing back: the bump heap only frees all at once.')
  story.map(heap)
  const { liveChunks: live, heapBytes: held } = heap.stats()
  heap.reset()
  story.say(`reset(): all ${live} live chunks freed at once; the next pointer is back at the start,`)
  story.say(`and the ${humanBytes(held)} the heap held went back to the OS (${humanBytes(heap.stats().heapBytes)} held now).`)
  story.map(heap)
}

export async function runDemoCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs('demo', args, { width: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const, {
    width: 'a number of cells',
  })
  if (values.help) {
    io.stdout.write(DEMO_HELP)
    return 0
  }
  if (positionals.length > 0) throw new UsageError(`takes no arguments (got ${JSON.stringify(positionals[0])})`, 'demo')
  const width = values.width === undefined ? 64 : Number(values.width)
  if (!Number.isSafeInteger(width) || width < 16 || width > 1000) {
    throw new UsageError(`--width must be an integer from 16 to 1000, got ${JSON.stringify(values.width)}`, 'demo')
  }
  const story = new Story(io, width)
  io.stdout.write(`${PROGRAM} demo: the original note's heap, live on this Node process (pid ${process.pid}).\n`)

  const before = heapMapping()
  let heap: Heap
  try {
    heap = createHeap({ backend: 'native', strategy: 'best-fit-linear', growth: GROWTH, trimThreshold: Infinity, trackLeaks: false })
  } catch (error) {
    story.heading('No native heap here')
    story.say(`The native addon is not available (${(error as Error).message}),`)
    story.say('so there is no program break to move; the pure-JS bump heap still shows its half of the story.')
    using jsHeap = createHeap({ backend: 'js', trackLeaks: false })
    bumpStory(story, jsHeap)
    return 0
  }
  try {
    story.heading('The program break')
    story.say(`A ${heap.strategy} heap on the ${heap.source === 'brk' ? 'program break' : `${heap.source} source`} holds nothing yet. The first allocation moves`)
    story.say(`the break up by the growth step (${humanBytes(GROWTH)}) and takes its chunk from the bottom.`)
    heap.raw.alloc(16) // the first chunk moves the break; freed below so the story's chunks start clean
    breakStory(story, heap, before)
    heap.reset()
    bestFitStory(story, heap)
  } finally {
    heap.close()
  }
  using bump = createHeap({ backend: 'native', strategy: 'bump', growth: GROWTH, trackLeaks: false })
  bumpStory(story, bump)
  io.stdout.write('\nThe same heaps are yours to experiment with: createHeap(), renderHeapMap(), and `memory-allocator replay --map`.\n')
  return 0
}

export const DEMO_COMMAND: Command = {
  name: 'demo',
  usage: '',
  summary: "the original note's story, live on this process's heap",
  help: DEMO_HELP,
  run: runDemoCommand,
}
