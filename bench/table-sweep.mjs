// How the fit search scales with the size of the freed-chunk table: best-fit (indexed) against
// best-fit-linear (the original note's scan) with 1k, 10k, 100k and 1M free chunks. Prints ns per
// allocation and table records + index nodes examined per allocation (stats().searchSteps).
// Run after `npm run build`:  node bench/table-sweep.mjs
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createHeap } = require('../dist/cjs/index.js')

const GRANULE = 16
const TABLE_SIZES = [1_000, 10_000, 100_000, 1_000_000]

function random(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function sweep(strategy, freeChunks) {
  // The heap's memory is never touched (its metadata is out of band), so a large table costs
  // address space only.
  // segregateSmall 0: every hole and its separator in address order, so that no two holes touch.
  const heap = createHeap({ backend: 'native', source: 'mmap', strategy, trackLeaks: false, trimThreshold: Infinity, segregateSmall: 0 })
  const next = random(7)
  const holes = []
  for (let i = 0; i < freeChunks; i++) {
    holes.push(heap.raw.alloc(GRANULE * 2 * (1 + Math.floor(next() * 64))))  // even granule counts
    heap.raw.alloc(GRANULE)  // a live separator keeps the holes from merging
  }
  for (const hole of holes) heap.raw.free(hole)
  if (heap.stats().freeChunks !== freeChunks) throw new Error('the holes merged')
  // Odd granule counts never fit exactly: every search must find the next larger size. Each
  // allocation is freed at once, so the table keeps its size.
  const requests = Array.from({ length: strategy === 'best-fit' ? 200_000 : Math.max(200, 2e7 / freeChunks) }, () =>
    GRANULE * (2 * Math.floor(next() * 64) + 1),
  )
  const stepsBefore = heap.stats().searchSteps
  const start = process.hrtime.bigint()
  for (const size of requests) heap.raw.free(heap.raw.alloc(size))
  const nsPerAlloc = Number(process.hrtime.bigint() - start) / requests.length
  const stepsPerAlloc = (heap.stats().searchSteps - stepsBefore) / requests.length
  heap.check()
  heap.close()
  return { strategy, freeChunks, nsPerAlloc, stepsPerAlloc }
}

const rows = []
for (const strategy of ['best-fit', 'best-fit-linear']) {
  for (const freeChunks of TABLE_SIZES) rows.push(sweep(strategy, freeChunks))
}
console.log('strategy          free chunks   ns per alloc+free   search steps per alloc')
for (const row of rows) {
  console.log(
    `${row.strategy.padEnd(17)} ${String(row.freeChunks).padStart(11)}   ${row.nsPerAlloc.toFixed(1).padStart(17)}   ${row.stepsPerAlloc.toFixed(1).padStart(22)}`,
  )
}
if (process.argv.includes('--json')) console.log(JSON.stringify(rows, null, 2))
