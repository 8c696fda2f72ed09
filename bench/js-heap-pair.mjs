// The js heap's raw alloc + free pair against the npm `malloc` package's (codemix, best fit over
// an ArrayBuffer) in the same process, and the js heap on frees that miss the top of its stack.
// Each figure is the median of batches in one process, then the median over five processes.
// Times are the process's CPU time (process.cpuUsage), not wall time: on a shared machine a
// process that is descheduled mid-batch would otherwise be charged for other people's work.
// Run after `npm run build:ts`:  node bench/js-heap-pair.mjs
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const PROCESSES = 5
const BATCHES = 50
const PAIRS = 20_000

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function cpuNs(run) {
  const start = process.cpuUsage()
  run()
  const used = process.cpuUsage(start)
  return (used.user + used.system) * 1000
}

function batchMedian(run) {
  const batches = []
  for (let batch = 0; batch < BATCHES; batch++) batches.push(cpuNs(run) / PAIRS)
  return median(batches)
}

// Separate functions, so that each allocator's calls stay monomorphic at their own call sites.
function jsPair() {
  const { createHeap } = require('../dist/cjs/index.js')
  const heap = createHeap({ backend: 'js', trackLeaks: false })
  const { alloc, free } = heap.raw
  const ns = batchMedian(() => {
    for (let i = 0; i < PAIRS; i++) free(alloc(64))
  })
  heap.close()
  return ns
}

// Four chunks, freed oldest first: three of every four frees look a chunk up below the top.
function jsFifo() {
  const { createHeap } = require('../dist/cjs/index.js')
  const heap = createHeap({ backend: 'js', trackLeaks: false })
  const { alloc, free } = heap.raw
  const base = alloc(64) // keeps the heap from rolling back to empty between rounds
  const ns = batchMedian(() => {
    for (let i = 0; i < PAIRS; i += 4) {
      const a = alloc(64)
      const b = alloc(64)
      const c = alloc(64)
      const d = alloc(64)
      free(a)
      free(b)
      free(c)
      free(d)
    }
  })
  free(base)
  heap.close()
  return ns
}

// 100,000 live chunks freed in a shuffled order: every free looks its chunk up below the top.
function jsRandomFree() {
  const { createHeap } = require('../dist/cjs/index.js')
  const CHUNKS = 100_000
  const order = new Uint32Array(CHUNKS).map((_, i) => i)
  let seed = 7
  for (let i = CHUNKS - 1; i > 0; i--) {
    seed = (seed * 1664525 + 1013904223) >>> 0
    const j = seed % (i + 1)
    ;[order[i], order[j]] = [order[j], order[i]]
  }
  const addresses = new Float64Array(CHUNKS)
  const runs = []
  for (let run = 0; run < 7; run++) {
    const heap = createHeap({ backend: 'js', trackLeaks: false })
    const { alloc, free } = heap.raw
    for (let i = 0; i < CHUNKS; i++) addresses[i] = alloc(16 + (i % 13) * 16)
    runs.push(cpuNs(() => {
      for (let i = 0; i < CHUNKS; i++) free(addresses[order[i]])
    }) / CHUNKS)
    heap.close()
  }
  return median(runs)
}

function peerPair() {
  const CodemixAllocator = require('malloc')
  const allocator = new CodemixAllocator(new ArrayBuffer(64 << 20))
  return batchMedian(() => {
    for (let i = 0; i < PAIRS; i++) allocator.free(allocator.alloc(64))
  })
}

const MEASUREMENTS = { jsPair, jsFifo, jsRandomFree, peerPair }

const child = process.argv.find((arg) => arg.startsWith('--child='))
if (child !== undefined) {
  const result = {}
  for (const [name, measure] of Object.entries(MEASUREMENTS)) result[name] = measure()
  console.log(JSON.stringify(result))
  process.exit(0)
}

const runs = []
for (let run = 0; run < PROCESSES; run++) {
  const out = spawnSync(process.execPath, [fileURLToPath(import.meta.url), `--child=${run}`], { encoding: 'utf8' })
  if (out.status !== 0) throw new Error(`measurement process ${run} failed: ${out.stderr}`)
  runs.push(JSON.parse(out.stdout))
}
const figure = (name) => median(runs.map((run) => run[name]))
const js = figure('jsPair')
const peer = figure('peerPair')
const fifo = figure('jsFifo')
const randomFree = figure('jsRandomFree')
const line = (label, value, unit) => console.log(`${label.padEnd(52)} ${value.toFixed(1).padStart(8)} ${unit}`)
console.log(`CPU time; median of ${PROCESSES} processes, each the median of ${BATCHES} batches of ${PAIRS} pairs (64 B)`)
line('js heap: raw.alloc + raw.free pair', js, 'ns/pair')
line('malloc (codemix): alloc + free pair', peer, 'ns/pair')
line('js heap: 4 allocs, freed oldest first, per pair', fifo, 'ns/pair')
line('js heap: one free among 100,000 chunks, shuffled', randomFree, 'ns/free')
console.log(`${'js heap pair / malloc (codemix) pair'.padEnd(52)} ${(js / peer).toFixed(2).padStart(8)}x   (target <= 0.30x)`)
