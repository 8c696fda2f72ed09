/**
 * Shared helpers of the facade suite. Every test file in test/facade runs twice (npm test): once
 * with backend 'auto' = native, once with MEMORY_ALLOCATOR_BACKEND=js, so `createHeap()` is
 * whichever backend this pass chose; tests that need one backend create it explicitly.
 */
import { expect } from 'vitest'
import { AllocatorError, createHeap, type ErrorCode, type Heap, type HeapOptions } from '../../lib/index'

/** True where the native addon loads (backend 'native' can be created explicitly). */
export const nativeAvailable: boolean = (() => {
  try {
    createHeap({ backend: 'native', trackLeaks: false }).close()
    return true
  } catch {
    return false
  }
})()

/** Which backend `createHeap()` gives in this pass. */
export const defaultBackend: 'native' | 'js' = (() => {
  const heap = createHeap({ trackLeaks: false })
  const backend = heap.backend
  heap.close()
  return backend
})()

const openHeaps: Heap[] = []

/** createHeap, remembered so that closeHeaps() closes the heap after the test. */
export function newHeap(options?: HeapOptions): Heap {
  const heap = createHeap(options)
  openHeaps.push(heap)
  return heap
}

/** For afterEach: checks every heap the test made (a closed one cannot be checked), then closes it. */
export function closeHeaps(): void {
  for (const heap of openHeaps.splice(0)) {
    try {
      heap.check()
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_HEAP_CLOSED') throw error
    } finally {
      heap.close()
    }
  }
}

/** Runs `fn`, expects an AllocatorError with `code`, and that its message names every `mentions`. */
export function expectAllocatorError(fn: () => unknown, code: ErrorCode, ...mentions: string[]): AllocatorError {
  let thrown: unknown
  try {
    fn()
  } catch (error) {
    thrown = error
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(AllocatorError)
  const error = thrown as AllocatorError
  expect(error.code).toBe(code)
  expect(error.name).toBe('AllocatorError')
  for (const text of mentions) expect(error.message).toContain(text)
  return error
}

/** Everything a heap shows about itself, for "the heap is unchanged" checks. */
export function snapshot(heap: Heap): { stats: ReturnType<Heap['stats']>; chunks: ReturnType<Heap['chunks']> } {
  return { stats: heap.stats(), chunks: heap.chunks() }
}

/** One event-loop turn. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * Collects garbage and lets finalizers run (FinalizationRegistry callbacks and Node-API buffer
 * finalizers are asynchronous) until `done()` holds, for at most `turns` rounds. Returns done().
 */
export async function collectUntil(done: () => boolean, turns = 100): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with --expose-gc (vitest.config.mts sets it)')
  for (let i = 0; i < turns && !done(); i++) {
    gc()
    await turn()
    await new Promise((resolve) => setTimeout(resolve, i < 10 ? 0 : 5))
  }
  return done()
}

/** The line number of the first frame of `error` that is in `file` (an allocation site in a test). */
export function lineOf(error: Error, file: string): number {
  const line = (error.stack ?? '').split('\n').find((frame) => frame.includes(file))
  const match = line === undefined ? null : /:(\d+):\d+\)?$/.exec(line)
  if (match === null) throw new Error(`no frame of ${file} in ${error.stack}`)
  return Number(match[1])
}
