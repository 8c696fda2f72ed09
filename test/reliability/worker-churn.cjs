/**
 * Worker side of workers.test.ts. It requires the built package (dist/), as a user's program
 * would. Modes (workerData.mode):
 *   churn       seeded alloc/free/realloc on its own heap (the thread's default source), every
 *               chunk filled and verified; posts a snapshot of its live chunks, waits for
 *               'release', frees everything (verifying), closes, posts the totals
 *   brk         tries createHeap({ source: 'brk' }) and replay with source 'brk'; posts the codes
 *   leave-open  allocates and touches workerData.bytes, posts where, then ends at the next
 *               message (or, with `stay`, when terminated) without closing its heap
 */
'use strict'
const { parentPort, workerData } = require('node:worker_threads')
const { join } = require('node:path')
const { createHeap, parseTrace, replay } = require(join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'))

function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function holds(bytes, fill) {
  return bytes.length === 0 || (bytes[0] === fill && Buffer.compare(bytes.subarray(1), bytes.subarray(0, bytes.length - 1)) === 0)
}

function codeOf(run) {
  try {
    run()
    return 'no error'
  } catch (error) {
    return error.code ?? `${error.name}: ${error.message}`
  }
}

function churn({ seed, ops }) {
  const random = prng(seed)
  const heap = createHeap({ trackLeaks: false })
  const live = []
  const problems = []
  let verifiedBytes = 0
  const verify = (entry, what) => {
    const bytes = entry.handle.bytes()
    if (!holds(bytes, entry.fill)) problems.push(`${what}: 0x${entry.handle.address.toString(16)} lost its bytes`)
    verifiedBytes += bytes.length
  }
  for (let i = 0; i < ops; i++) {
    const r = random()
    if (r < 0.5 || live.length === 0) {
      const size = random() < 0.05 ? 65536 + Math.floor(random() * 262144) : 1 + Math.floor(random() * 4096)
      const handle = heap.alloc(size, random() < 0.1 ? { align: 4096 } : undefined)
      const fill = 1 + (i % 254)
      handle.bytes().fill(fill)
      live.push({ handle, fill })
    } else if (r < 0.85) {
      const [entry] = live.splice(Math.floor(random() * live.length), 1)
      verify(entry, 'free')
      entry.handle.free()
    } else {
      const entry = live[Math.floor(random() * live.length)]
      verify(entry, 'realloc')
      const oldSize = entry.handle.size
      entry.handle = heap.realloc(entry.handle, 1 + Math.floor(random() * 8192))
      const kept = entry.handle.bytes().subarray(0, Math.min(oldSize, entry.handle.size))
      if (!holds(kept, entry.fill)) problems.push('realloc lost the bytes it had to keep')
      entry.handle.bytes().fill(entry.fill)
    }
    if (i % 2000 === 1999) heap.check()
  }
  heap.check()
  const stats = heap.stats()
  parentPort.postMessage({
    kind: 'snapshot',
    source: heap.source,
    heapStart: stats.heapStart,
    heapEnd: stats.heapEnd,
    chunks: heap.chunks().map((c) => [c.address, c.size]),
  })
  parentPort.once('message', () => {
    for (const entry of live) {
      verify(entry, 'release')
      entry.handle.free()
    }
    heap.check()
    const end = heap.stats()
    heap.close()
    parentPort.postMessage({ kind: 'done', ops, verifiedBytes, problems, liveChunksAtEnd: end.liveChunks })
  })
}

function brk() {
  const defaultHeap = createHeap({ trackLeaks: false })
  const defaultSource = defaultHeap.source
  defaultHeap.close()
  const trace = parseTrace('0\n1\n2\n0\na 0 64\nf 0\n', 'tiny')
  parentPort.postMessage({
    kind: 'brk',
    defaultSource,
    createHeap: codeOf(() => createHeap({ source: 'brk' })),
    createNativeHeap: codeOf(() => createHeap({ backend: 'native', source: 'brk', strategy: 'first-fit' })),
    replay: codeOf(() => replay(trace, { allocator: 'best-fit', source: 'brk' })),
    replayMmap: codeOf(() => replay(trace, { allocator: 'best-fit', source: 'mmap' })),
  })
}

function leaveOpen({ bytes, stay }) {
  const heap = createHeap({ trackLeaks: false })
  const handle = heap.alloc(bytes)
  handle.bytes().fill(0x5a)
  const stats = heap.stats()
  parentPort.postMessage({ kind: 'open', source: heap.source, address: handle.address, heapStart: stats.heapStart, heapEnd: stats.heapEnd })
  // Keep the thread (and the heap) alive until terminated, or end with the heap still open once
  // told to (so that the test can look at the mapping first).
  if (stay) setInterval(() => handle.bytes()[0]++, 1000)
  else parentPort.once('message', () => {})
}

if (workerData.mode === 'churn') churn(workerData)
else if (workerData.mode === 'brk') brk()
else leaveOpen(workerData)
