/**
 * Worker threads, through the built package (dist/): several workers churn their own heaps (mmap,
 * the default off the main thread) while this thread churns a brk heap. No two heaps' chunks
 * overlap, no bytes are lost, nothing crashes; `source: 'brk'` in a worker is
 * ERR_BRK_MAIN_THREAD_ONLY; and a heap still open when its worker ends (or is terminated) is
 * released: its mapping leaves /proc/self/maps.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { createHeap, type Handle, type Heap } from '../../lib/index'
import { mappings } from '../native-heap/helpers'
import { prng } from './op-generator'
import { nativeAvailable, warnIfDistIsStale } from './support'

const WORKER = join(__dirname, 'worker-churn.cjs')
const DIST = join(__dirname, '..', '..', 'dist', 'cjs', 'index.js')
const MiB = 1 << 20

warnIfDistIsStale()

interface Snapshot {
  kind: 'snapshot'
  source: string
  heapStart: number
  heapEnd: number
  chunks: [number, number][]
}
interface Done {
  kind: 'done'
  ops: number
  verifiedBytes: number
  problems: string[]
  liveChunksAtEnd: number
}

/** A worker, its messages in order, and how it ended. */
function start(workerData: Record<string, unknown>): { worker: Worker; next: () => Promise<unknown>; exited: Promise<number> } {
  const worker = new Worker(WORKER, { workerData })
  const queue: unknown[] = []
  const waiting: ((message: unknown) => void)[] = []
  let failure: Error | undefined
  worker.on('message', (message) => {
    const resolve = waiting.shift()
    if (resolve === undefined) queue.push(message)
    else resolve(message)
  })
  const exited = new Promise<number>((resolve, reject) => {
    worker.on('error', (error) => {
      failure = error
      reject(error)
    })
    worker.on('exit', resolve)
  })
  const next = (): Promise<unknown> => {
    if (failure !== undefined) return Promise.reject(failure)
    if (queue.length > 0) return Promise.resolve(queue.shift())
    return Promise.race([new Promise<unknown>((resolve) => waiting.push(resolve)), exited.then((code) => Promise.reject(new Error(`the worker exited (${code}) before its message`)))])
  }
  return { worker, next, exited }
}

function holds(bytes: Uint8Array, fill: number): boolean {
  return bytes.length === 0 || (bytes[0] === fill && Buffer.compare(bytes.subarray(1), bytes.subarray(0, bytes.length - 1)) === 0)
}

const heaps: Heap[] = []
afterEach(() => {
  while (heaps.length > 0) heaps.pop()!.close()
})

describe.runIf(nativeAvailable && existsSync(DIST))('worker threads', () => {
  it('four workers churn their own mmap heaps while this thread churns a brk heap: no overlap, no lost bytes, no crash', async () => {
    const workers = [1, 2, 3, 4].map((n) => start({ mode: 'churn', seed: 1000 + n, ops: 20_000 }))
    // This thread's churn runs while the workers run theirs.
    const heap = createHeap({ backend: 'native', source: 'brk', trackLeaks: false })
    heaps.push(heap)
    const random = prng(5)
    const live: { handle: Handle; fill: number }[] = []
    let lost = 0
    for (let i = 0; i < 20_000; i++) {
      if (random() < 0.55 || live.length === 0) {
        const handle = heap.alloc(1 + Math.floor(random() * (random() < 0.05 ? 262144 : 4096)))
        const fill = 1 + (i % 254)
        handle.bytes().fill(fill)
        live.push({ handle, fill })
      } else {
        const [entry] = live.splice(Math.floor(random() * live.length), 1)
        if (!holds(entry.handle.bytes(), entry.fill)) lost++
        entry.handle.free()
      }
      if (i % 5000 === 4999) heap.check()
    }

    const snapshots = (await Promise.all(workers.map((w) => w.next()))) as Snapshot[]
    for (const snapshot of snapshots) expect(snapshot.source).toBe('mmap')
    // Every live chunk of every heap, this thread's included, at one moment: none overlaps another.
    const all = [
      ...heap.chunks().map((c) => [c.address, c.size, -1] as const),
      ...snapshots.flatMap((s, n) => s.chunks.map(([address, size]) => [address, size, n] as const)),
    ].sort((a, b) => a[0] - b[0])
    const overlaps: string[] = []
    for (let i = 1; i < all.length; i++) {
      const [address, , owner] = all[i]
      const [previous, previousSize, previousOwner] = all[i - 1]
      if (previous + previousSize > address) overlaps.push(`0x${previous.toString(16)}+${previousSize} (heap ${previousOwner}) overlaps 0x${address.toString(16)} (heap ${owner})`)
    }
    expect(overlaps).toEqual([])
    // The workers' regions are apart from each other and from the break.
    const regions = snapshots.map((s) => [s.heapStart, s.heapEnd]).sort((a, b) => a[0] - b[0])
    for (let i = 1; i < regions.length; i++) expect(regions[i][0]).toBeGreaterThanOrEqual(regions[i - 1][1])

    for (const w of workers) w.worker.postMessage('release')
    const done = (await Promise.all(workers.map((w) => w.next()))) as Done[]
    for (const report of done) {
      expect(report.problems).toEqual([])
      expect(report.liveChunksAtEnd).toBe(0)
      expect(report.verifiedBytes).toBeGreaterThan(0)
    }
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0, 0, 0])
    for (const entry of live) if (!holds(entry.handle.bytes(), entry.fill)) lost++
    expect(lost, 'chunks of this thread that lost their bytes').toBe(0)
    heap.check()
    const verified = done.reduce((sum, report) => sum + report.verifiedBytes, 0)
    console.log(`workers: 4 workers x ${done[0].ops} operations on mmap heaps + 20000 on this thread's brk heap, ${all.length} live chunks checked for overlap, ${(verified / MiB).toFixed(0)} MiB verified in the workers, nothing lost`)
  })

  it("source 'brk' in a worker is ERR_BRK_MAIN_THREAD_ONLY; the default there is mmap", async () => {
    const w = start({ mode: 'brk' })
    const report = (await w.next()) as Record<string, string>
    expect(report).toMatchObject({
      defaultSource: 'mmap',
      createHeap: 'ERR_BRK_MAIN_THREAD_ONLY',
      createNativeHeap: 'ERR_BRK_MAIN_THREAD_ONLY',
      replay: 'ERR_BRK_MAIN_THREAD_ONLY',
      replayMmap: 'no error',
    })
    expect(await w.exited).toBe(0)
  })

  it.each([
    ['ends on its own', false],
    ['is terminated', true],
  ])('a heap left open when its worker %s releases its memory', async (_, terminate) => {
    const w = start({ mode: 'leave-open', bytes: 32 * MiB, stay: terminate })
    const open = (await w.next()) as { source: string; address: number; heapStart: number; heapEnd: number }
    expect(open.source).toBe('mmap')
    const mapped = mappings().find((m) => m.start <= open.address && open.address < m.end)
    expect(mapped?.perms.startsWith('rw')).toBe(true)
    // The rest of the source's reservation (PROT_NONE, tens of GiB) sits right above the committed part.
    const reservation = mappings().find((m) => m.start === open.heapEnd && m.perms === '---p')
    expect(reservation, 'the mmap source reserves address space above its committed end').toBeDefined()
    if (terminate) await w.worker.terminate()
    else w.worker.postMessage('end')
    expect(await w.exited).toBe(terminate ? 1 : 0)
    // The teardown runs as the worker's environment goes away; give it a moment.
    const held = (): string[] =>
      mappings()
        .filter((m) => (m.start < open.heapEnd && open.heapStart < m.end && m.perms.startsWith('rw')) || (m.start === reservation!.start && m.end === reservation!.end))
        .map((m) => `[0x${m.start.toString(16)}, 0x${m.end.toString(16)}) ${m.perms}`)
    let still = held()
    for (let i = 0; i < 50 && still.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      still = held()
    }
    expect(still, `the worker's heap [0x${open.heapStart.toString(16)}, 0x${open.heapEnd.toString(16)}) and its reservation are released`).toEqual([])
  })
})
