/**
 * Leak tracking in the spirit of LeakSanitizer. A live handle's ChunkState is registered with a
 * FinalizationRegistry; a handle collected while its chunk is still allocated is "definitely
 * lost". Chunks still allocated whose handle is alive, and raw allocations (by address), are
 * "still reachable". Nothing here runs on the alloc path when tracking is off: the heap then
 * never creates a LeakTracker.
 *
 * Registration costs about 250 ns, more than the rest of a handle pair, and most handles are
 * short-lived. So a new handle waits in a nursery (an array, holding it strongly) and is
 * registered only if its chunk is still allocated when the nursery is flushed: in a microtask
 * after the current job, when it fills up, or when leaks() runs. A handle dropped while live is
 * still registered at the flush (the nursery kept it alive until then) and reported once
 * collected; a handle freed before the flush never costs a registration.
 */
import { dirname, sep } from 'node:path'
import { AllocatorError } from '../errors'
import { type ChunkState, hex } from './handle'
import type { LeakRecord, LeakReport } from '../types'

/** What the tracker needs of a handle: the state it shares with the heap. */
export interface Tracked {
  readonly state: ChunkState
}

/** Handles at most in the nursery before it is flushed synchronously. */
const NURSERY_LIMIT = 4096

export class LeakTracker {
  readonly #registry = new FinalizationRegistry<ChunkState>((state) => {
    if (!state.freed) this.#lost.add(state)
  })
  readonly #lost = new Set<ChunkState>()
  /** Handles not registered yet: the first #nurseryLength slots. Kept at its full size, since an
   * array emptied by `length = 0` would grow again on every cycle. */
  readonly #nursery: Array<Tracked | undefined> = new Array<Tracked | undefined>(NURSERY_LIMIT).fill(undefined)
  #nurseryLength = 0
  #flushQueued = false
  readonly #flushCallback = (): void => this.flush()
  readonly stacks: boolean

  constructor(stacks: boolean) {
    this.stacks = stacks
  }

  track(handle: Tracked): void {
    if (this.stacks) handle.state.stack = allocationStack()
    const nursery = this.#nursery
    const length = this.#nurseryLength
    nursery[length] = handle
    this.#nurseryLength = length + 1
    if (length + 1 === nursery.length) this.flush()
    else if (!this.#flushQueued) {
      this.#flushQueued = true
      queueMicrotask(this.#flushCallback)
    }
  }

  /** Registers every nursery handle whose chunk is still allocated. */
  flush(): void {
    this.#flushQueued = false
    const nursery = this.#nursery
    for (let i = 0; i < this.#nurseryLength; i++) {
      const handle = nursery[i]!
      const state = handle.state
      // No unregister token: unregistering on every free cost more than the registration itself,
      // and the callback of a freed chunk's handle finds `state.freed` and does nothing.
      if (!state.freed) this.#registry.register(handle, state)
      nursery[i] = undefined
    }
    this.#nurseryLength = 0
  }

  untrack(state: ChunkState): void {
    if (this.#lost.size !== 0) this.#lost.delete(state)
  }

  /** Forgets every record (reset and close free every chunk). */
  clear(): void {
    this.#lost.clear()
    this.#nursery.fill(undefined, 0, this.#nurseryLength)
    this.#nurseryLength = 0
  }

  isLost(state: ChunkState): boolean {
    return this.#lost.has(state)
  }

  lost(): Iterable<ChunkState> {
    return this.#lost
  }
}

/** The library's own folder: lib/ in the source tree, dist/cjs/ when built (this file is in heap/). */
const LIBRARY_DIR = dirname(__dirname) + sep

function allocationStack(): string {
  const stack = new Error().stack ?? ''
  // Drop "Error" and the library's own frames, so the first line is the caller's.
  return stack
    .split('\n')
    .slice(1)
    .filter((line) => !line.includes(LIBRARY_DIR))
    .join('\n')
}

/** A handle's record: `size` is the chunk's usable size, as for raw chunks; `requested` what alloc was asked. */
export function toRecord(state: ChunkState, usableSize: number): LeakRecord {
  const record: LeakRecord = { address: state.address, size: usableSize, kind: 'handle', requested: state.size }
  if (state.stack !== undefined) record.stack = state.stack
  return record
}

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

/** The LeakSanitizer-style text that assertNoLeaks() throws. */
export function leakError(report: LeakReport): AllocatorError {
  const bytes = report.definitelyLost.reduce((sum, record) => sum + record.size, 0)
  const lines = [`${count(bytes, 'byte', 'bytes')} in ${count(report.definitelyLost.length, 'chunk', 'chunks')} definitely lost`]
  for (const record of report.definitelyLost) {
    lines.push(`  ${count(record.size, 'byte', 'bytes')} at ${hex(record.address)} allocated at:`)
    lines.push(record.stack === undefined ? "    (no stack: create the heap with trackLeaks: 'stacks')" : record.stack.replace(/^\s*/gm, '    '))
  }
  const reachable = report.stillReachable.reduce((sum, record) => sum + record.size, 0)
  lines.push(`${count(reachable, 'byte', 'bytes')} in ${count(report.stillReachable.length, 'chunk', 'chunks')} still reachable`)
  return new AllocatorError('ERR_LEAK', lines.join('\n'))
}
