// JS-side costs of allocating from JavaScript, against the npm allocators @thi.ng/malloc and
// malloc (codemix) on the same seeded churn. Prints ns per operation (one alloc or one free),
// the median of several runs. Run after `npm run build`:  node bench/js-costs.mjs [--quick]
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { MemPool } from '@thi.ng/malloc'

const require = createRequire(import.meta.url)
const { createHeap } = require('../dist/cjs/index.js')
const CodemixAllocator = require('malloc')

const quick = process.argv.includes('--quick')
const OPS = quick ? 200_000 : 2_000_000
const SLOTS = 1024
const RUNS = quick ? 3 : 7

// The churn: slot i alternates between allocated and free; sizes are log-uniform 16..1024 bytes.
function churn(seed) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const slots = new Uint16Array(OPS)
  const sizes = new Uint32Array(OPS)
  for (let i = 0; i < OPS; i++) {
    slots[i] = Math.floor(next() * SLOTS)
    sizes[i] = Math.floor(16 * 64 ** next())
  }
  return { slots, sizes }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

// Runs `step(slot, size)` over the churn; it allocates into an empty slot and frees a full one.
function measure(label, setup) {
  const { slots, sizes } = churn(42)
  const times = []
  for (let run = 0; run < RUNS; run++) {
    const { step, drain, close } = setup()
    const start = process.hrtime.bigint()
    for (let i = 0; i < OPS; i++) step(slots[i], sizes[i])
    const ns = Number(process.hrtime.bigint() - start)
    drain()
    close?.()
    times.push(ns / OPS)
  }
  const result = { label, nsPerOp: median(times) }
  console.log(`${label.padEnd(44)} ${result.nsPerOp.toFixed(1).padStart(8)} ns/op`)
  return result
}

function slotsOf(allocate, release) {
  const held = new Array(SLOTS).fill(undefined)
  return {
    step(slot, size) {
      const value = held[slot]
      if (value === undefined) held[slot] = allocate(size)
      else {
        release(value)
        held[slot] = undefined
      }
    },
    drain() {
      for (const value of held) if (value !== undefined) release(value)
    },
  }
}

// The raw pair on its own: one alloc and one free of 64 bytes, back to back, median of batches.
// Each backend is measured in a process of its own: sharing the call site with the other
// backend's functions would make it polymorphic and measure V8's deoptimization instead.
function pairAndFirstView(backend) {
  const heap = createHeap({ backend, trackLeaks: false })
  const { alloc, free } = heap.raw
  const batches = []
  for (let batch = 0; batch < 50; batch++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < 20_000; i++) free(alloc(64))
    batches.push(Number(process.hrtime.bigint() - start) / 20_000)
  }
  // One crossing into the addon with an argument and a result, for scale.
  const probe = alloc(64)
  const crossings = []
  for (let batch = 0; batch < 50; batch++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < 20_000; i++) heap.raw.sizeOf(probe)
    crossings.push(Number(process.hrtime.bigint() - start) / 20_000)
  }
  free(probe)
  // The first bytes() of a fresh handle: where the view is made.
  const handles = Array.from({ length: 10_000 }, () => heap.alloc(64))
  const start = process.hrtime.bigint()
  for (const handle of handles) handle.bytes()
  const first = Number(process.hrtime.bigint() - start) / handles.length
  const again = process.hrtime.bigint()
  for (const handle of handles) handle.bytes()
  const later = Number(process.hrtime.bigint() - again) / handles.length
  heap.close()
  return { pair: median(batches), crossing: median(crossings), first, later }
}

const pairOnly = process.argv.find((arg) => arg.startsWith('--pair-only='))
if (pairOnly !== undefined) {
  console.log(JSON.stringify(pairAndFirstView(pairOnly.slice('--pair-only='.length))))
  process.exit(0)
}
const results = []
for (const backend of ['native', 'js']) {
  results.push(
    measure(`${backend}: raw.alloc + raw.free`, () => {
      const heap = createHeap({ backend, trackLeaks: false })
      return { ...slotsOf((size) => heap.raw.alloc(size), (address) => heap.raw.free(address)), close: () => heap.close() }
    }),
  )
  for (const trackLeaks of [false, true]) {
    results.push(
      measure(`${backend}: alloc + free (handles, trackLeaks ${trackLeaks})`, () => {
        const heap = createHeap({ backend, trackLeaks })
        return { ...slotsOf((size) => heap.alloc(size), (handle) => handle.free()), close: () => heap.close() }
      }),
    )
  }
  results.push(
    measure(`${backend}: allocArray(Float64Array) + free`, () => {
      const heap = createHeap({ backend, trackLeaks: false })
      return { ...slotsOf((size) => heap.allocArray(Float64Array, size >> 3), (handle) => handle.free()), close: () => heap.close() }
    }),
  )
  results.push(
    measure(`${backend}: allocArray + first .array + free`, () => {
      const heap = createHeap({ backend, trackLeaks: false })
      return {
        ...slotsOf(
          (size) => {
            const handle = heap.allocArray(Float64Array, size >> 3)
            handle.array[0] = 1
            return handle
          },
          (handle) => handle.free(),
        ),
        close: () => heap.close(),
      }
    }),
  )
}
results.push(
  measure('@thi.ng/malloc: malloc + free', () => {
    const pool = new MemPool({ size: 64 << 20 })
    return slotsOf((size) => pool.malloc(size), (pointer) => pool.free(pointer))
  }),
)
results.push(
  measure('@thi.ng/malloc: mallocAs(f64) + free', () => {
    const pool = new MemPool({ size: 64 << 20 })
    return slotsOf((size) => pool.mallocAs('f64', size >> 3), (array) => pool.free(array))
  }),
)
results.push(
  measure('malloc (codemix): alloc + free', () => {
    const allocator = new CodemixAllocator(new ArrayBuffer(64 << 20))
    return slotsOf((size) => allocator.alloc(size), (offset) => allocator.free(offset))
  }),
)

// A process now and then runs a third slower throughout (where its heap and tables landed):
// the figures are the median over five processes.
const PAIR_PROCESSES = 5
for (const backend of ['native', 'js']) {
  const runs = []
  for (let run = 0; run < PAIR_PROCESSES; run++) {
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--pair-only=${backend}`], { encoding: 'utf8' })
    if (child.status !== 0) throw new Error(`the ${backend} pair measurement failed: ${child.stderr}`)
    runs.push(JSON.parse(child.stdout))
  }
  const [pair, crossing, first, later] = ['pair', 'crossing', 'first', 'later'].map((key) => median(runs.map((run) => run[key])))
  console.log(`${`${backend}: raw.alloc + raw.free pair (64 B), median`.padEnd(44)} ${pair.toFixed(1).padStart(8)} ns/pair`)
  console.log(`${`${backend}: one raw.sizeOf call, median`.padEnd(44)} ${crossing.toFixed(1).padStart(8)} ns`)
  console.log(`${`${backend}: first bytes() / later bytes()`.padEnd(44)} ${first.toFixed(1).padStart(8)} / ${later.toFixed(1)} ns`)
  results.push({ label: `${backend}: raw pair`, nsPerPair: pair })
  results.push({ label: `${backend}: first bytes()`, ns: first, laterNs: later })
}

if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2))
