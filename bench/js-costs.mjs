// JS-side costs of allocating from JavaScript, against the npm allocators @thi.ng/malloc and
// malloc (codemix) on the same seeded churn, then the pair costs of issue 10 with their targets
// (ratios against malloc measured in the same run). Prints ns per operation (one alloc or one
// free), the median of several runs. Run after `npm run build`:
//   node bench/js-costs.mjs [--quick] [--pairs-only]
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

// Pair costs, one case per process: sharing a call site with another case's functions would
// make it polymorphic and measure V8's deoptimization instead. Each case is the median of 40
// batches of 20,000 steps, after one untimed batch; the figure is the median over PROCESSES.
const PAIR_CASES = {
  'malloc (codemix): alloc + free (64 B)': () => {
    const allocator = new CodemixAllocator(new ArrayBuffer(64 << 20))
    return () => allocator.free(allocator.alloc(64))
  },
  'malloc (codemix): alloc + view + write + free': () => {
    const buffer = new ArrayBuffer(64 << 20)
    const allocator = new CodemixAllocator(buffer)
    return () => {
      const offset = allocator.alloc(64)
      new Uint8Array(buffer, offset, 64)[0] = 1
      allocator.free(offset)
    }
  },
  'native: raw.alloc + raw.free': () => {
    const { alloc, free } = createHeap({ backend: 'native', trackLeaks: false }).raw
    return () => free(alloc(64))
  },
  'native: handle pair, trackLeaks on': () => {
    const heap = createHeap({ backend: 'native' })
    return () => heap.alloc(64).free()
  },
  'native: handle pair, trackLeaks off': () => {
    const heap = createHeap({ backend: 'native', trackLeaks: false })
    return () => heap.alloc(64).free()
  },
  "native: handle + bytes() + write + free, 'shared'": () => {
    const heap = createHeap({ backend: 'native', views: 'shared' })
    return () => {
      const handle = heap.alloc(64)
      handle.bytes()[0] = 1
      handle.free()
    }
  },
  "native: handle + bytes() + write + free, 'revocable'": () => {
    const heap = createHeap({ backend: 'native' })
    return () => {
      const handle = heap.alloc(64)
      handle.bytes()[0] = 1
      handle.free()
    }
  },
  // The floor of a revocable view: the addon alone making an external buffer, one write through
  // a Uint8Array on it, and the detach in freeViewed (with the raw alloc and free around them).
  'floor: addon view() + write + freeViewed, no handle': () => {
    const { nativeBinding } = require('../dist/cjs/backends/binding.js')
    const heap = nativeBinding().createHeap({
      ...{ source: 'brk', strategy: 'best-fit', alignment: 16, growth: 65536, split: true, coalesce: true },
      ...{ trimThreshold: 131072, maxHeapBytes: 0, views: 'revocable', maxViewBytes: 2 ** 32 },
    })
    return () => {
      const address = heap.alloc(64)
      const buffer = heap.view(address, 64)
      new Uint8Array(buffer)[0] = 1
      heap.freeViewed(address, buffer, heap.viewInfo[0])
    }
  },
  'js: raw.alloc + raw.free': () => {
    const { alloc, free } = createHeap({ backend: 'js', trackLeaks: false }).raw
    return () => free(alloc(64))
  },
}

// Between batches the event loop turns, as in a real program: Node runs the finalizers of
// external buffers from the loop, and a loop that never yields piles them up.
async function measurePair(name) {
  const step = PAIR_CASES[name]()
  const batch = () => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < 20_000; i++) step()
    return Number(process.hrtime.bigint() - start) / 20_000
  }
  const turn = () => new Promise((resolve) => setImmediate(resolve))
  batch()
  await turn()
  const batches = []
  for (let i = 0; i < 40; i++) {
    batches.push(batch())
    await turn()
  }
  return median(batches)
}

const pairCase = process.argv.find((arg) => arg.startsWith('--pair-case='))
if (pairCase !== undefined) {
  console.log(JSON.stringify(await measurePair(pairCase.slice('--pair-case='.length))))
  process.exit(0)
}

const PROCESSES = 5
function pairFigures() {
  const figures = {}
  for (const name of Object.keys(PAIR_CASES)) {
    const runs = []
    for (let run = 0; run < PROCESSES; run++) {
      const child = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), `--pair-case=${name}`], { encoding: 'utf8' })
      if (child.status !== 0) throw new Error(`${name} failed: ${child.stderr}`)
      runs.push(JSON.parse(child.stdout))
    }
    figures[name] = { ns: median(runs), runs }
  }
  return figures
}

function printPairs(figures) {
  const peerPair = figures['malloc (codemix): alloc + free (64 B)'].ns
  const peerView = figures['malloc (codemix): alloc + view + write + free'].ns
  const targets = {
    'native: raw.alloc + raw.free': { base: peerPair, ratio: 0.4, ns: 60 },
    'native: handle pair, trackLeaks on': { base: peerPair, ratio: 1.0 },
    'native: handle pair, trackLeaks off': { base: peerPair },
    "native: handle + bytes() + write + free, 'shared'": { base: peerView, ratio: 1.0 },
    "native: handle + bytes() + write + free, 'revocable'": { base: peerView, ratio: 8.0 },
    'floor: addon view() + write + freeViewed, no handle': { base: peerView },
    'js: raw.alloc + raw.free': { base: peerPair, ratio: 0.3 },
  }
  console.log(`\nPair costs (64 B), ns, median of ${PROCESSES} processes (each the median of 40 batches of 20,000):`)
  for (const [name, { ns, runs }] of Object.entries(figures)) {
    const target = targets[name]
    let note = ''
    if (target !== undefined) {
      const ratio = ns / target.base
      const against = target.base === peerPair ? 'peer pair' : 'peer alloc+view+write+free'
      note = `${ratio.toFixed(2)}x ${against}`
      if (target.ratio !== undefined) {
        const met = ratio <= target.ratio && (target.ns === undefined || ns <= target.ns)
        note += `; target <= ${target.ratio}x${target.ns === undefined ? '' : ` and <= ${target.ns} ns`}: ${met ? 'met' : 'MISSED'}`
      }
    }
    console.log(`${name.padEnd(52)} ${ns.toFixed(1).padStart(8)}   ${note}`)
    console.log(`${''.padEnd(52)} runs: ${runs.map((r) => r.toFixed(1)).join(' ')}`)
  }
}

if (process.argv.includes('--pairs-only')) {
  printPairs(pairFigures())
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

printPairs(pairFigures())

if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 2))
