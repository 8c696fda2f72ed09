/**
 * Leak tracking in the spirit of LeakSanitizer. Every live handle's ChunkState is registered with
 * a FinalizationRegistry; a handle collected while its chunk is still allocated is "definitely
 * lost". Chunks still allocated whose handle is alive, and raw allocations (by address), are
 * "still reachable". Nothing here runs on the alloc path when tracking is off: the heap then
 * never creates a LeakTracker.
 */
import { AllocatorError } from './errors'
import type { ChunkState } from './handle'
import type { LeakRecord, LeakReport } from './types'

export class LeakTracker {
  readonly #registry = new FinalizationRegistry<ChunkState>((state) => {
    if (!state.freed) this.#lost.add(state)
  })
  readonly #lost = new Set<ChunkState>()
  readonly stacks: boolean

  constructor(stacks: boolean) {
    this.stacks = stacks
  }

  track(handle: object, state: ChunkState): void {
    if (this.stacks) state.stack = allocationStack()
    // No unregister token: unregistering on every free cost more than the registration itself,
    // and the callback of a freed chunk's handle finds `state.freed` and does nothing.
    this.#registry.register(handle, state)
  }

  untrack(state: ChunkState): void {
    this.#lost.delete(state)
  }

  /** Forgets every record (reset and close free every chunk). */
  clear(): void {
    this.#lost.clear()
  }

  isLost(state: ChunkState): boolean {
    return this.#lost.has(state)
  }

  lost(): Iterable<ChunkState> {
    return this.#lost
  }
}

function allocationStack(): string {
  const stack = new Error().stack ?? ''
  // Drop "Error" and the library's own frames, so the first line is the caller's.
  return stack
    .split('\n')
    .slice(1)
    .filter((line) => !/[/\\]lib[/\\](heap|leaks|handle)\.[tj]s|[/\\]dist[/\\]cjs[/\\]/.test(line))
    .join('\n')
}

export function toRecord(state: ChunkState, kind: LeakRecord['kind']): LeakRecord {
  const record: LeakRecord = { address: state.address, size: state.size, kind }
  if (state.stack !== undefined) record.stack = state.stack
  return record
}

/** The LeakSanitizer-style text that assertNoLeaks() throws. */
export function leakError(report: LeakReport): AllocatorError {
  const bytes = report.definitelyLost.reduce((sum, record) => sum + record.size, 0)
  const lines = [`${bytes} bytes in ${report.definitelyLost.length} chunks definitely lost`]
  for (const record of report.definitelyLost) {
    lines.push(`  ${record.size} bytes at 0x${record.address.toString(16)} allocated at:`)
    lines.push(record.stack === undefined ? "    (no stack: create the heap with trackLeaks: 'stacks')" : record.stack.replace(/^\s*/gm, '    '))
  }
  const reachable = report.stillReachable.reduce((sum, record) => sum + record.size, 0)
  lines.push(`${reachable} bytes in ${report.stillReachable.length} chunks still reachable`)
  return new AllocatorError('ERR_LEAK', lines.join('\n'))
}
