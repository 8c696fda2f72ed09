/**
 * Shared by the reliability suites: the backends to run on, heaps closed after each test, and
 * the one assertion they all make about a bad call (its exact code, the heap unchanged, check()).
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import { AllocatorError, createHeap, type ErrorCode, type Heap, type HeapOptions, type HeapStats } from '../../lib/index'
import { nativeBinding } from '../../lib/backends/binding'

export const nativeAvailable = nativeBinding() !== undefined

/** Every backend this machine has: both where the addon loads, the js heap only otherwise. */
export const BACKENDS: readonly ('native' | 'js')[] = nativeAvailable ? ['native', 'js'] : ['js']

const open: Heap[] = []

export function heapOn(backend: 'native' | 'js', options: HeapOptions = {}): Heap {
  const heap = createHeap({ backend, trackLeaks: false, ...options })
  open.push(heap)
  return heap
}

/** For afterEach: closes every heap a test made, newest first (brk heaps release top-down). */
export function closeHeaps(): void {
  while (open.length > 0) open.pop()!.close()
}

/** The AllocatorError `run` throws; fails the test when it throws something else or nothing. */
export function errorOf(run: () => unknown): AllocatorError {
  let thrown: unknown
  try {
    run()
  } catch (error) {
    thrown = error
  }
  if (thrown === undefined) throw new Error('expected an AllocatorError, but the call returned')
  if (!(thrown instanceof AllocatorError)) throw new Error(`expected an AllocatorError, got ${String(thrown)}`)
  return thrown
}

/** `run` must throw AllocatorError `code` with a message naming every `mentions`. */
export function expectCode(run: () => unknown, code: ErrorCode, ...mentions: string[]): AllocatorError {
  const error = errorOf(run)
  expect(error.code, error.message).toBe(code)
  for (const text of mentions) expect(error.message).toContain(text)
  return error
}

/** What a heap shows of itself; searchSteps is left out (a failed fit search may count steps). */
export function observable(heap: Heap): { stats: Omit<HeapStats, 'searchSteps'>; chunks: ReturnType<Heap['chunks']> } {
  const { searchSteps: _steps, ...stats } = heap.stats()
  return { stats, chunks: heap.chunks() }
}

/** `run` fails with `code`, leaves stats() and chunks() as they were, and check() passes. */
export function expectRefusal(heap: Heap, run: () => unknown, code: ErrorCode, ...mentions: string[]): AllocatorError {
  const before = observable(heap)
  const error = expectCode(run, code, ...mentions)
  expect(observable(heap), `${code} changed the heap: ${error.message}`).toEqual(before)
  heap.check()
  return error
}

/**
 * The child-process and worker suites run the built package (dist/), as users do; after an edit
 * of lib/ it must be rebuilt (npm run build:ts; npm ci does it) or they test the old code. Says so.
 */
export function warnIfDistIsStale(): void {
  const root = join(__dirname, '..', '..')
  let built: number
  try {
    built = statSync(join(root, 'dist', 'cjs', 'index.js')).mtimeMs
  } catch {
    return
  }
  const newer = readdirSync(join(root, 'lib'), { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.ts') && statSync(join(root, 'lib', file)).mtimeMs > built)
  if (newer.length > 0) console.warn(`dist/ is older than lib/${newer[0]}${newer.length > 1 ? ` and ${newer.length - 1} more` : ''}: run npm run build:ts, or this suite tests the old build`)
}
