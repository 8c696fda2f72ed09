/**
 * Traces that used to kill the process inside the native replay loop. Each risky replay runs in
 * a child process first, so that a regression shows up as this test's failure (with the child's
 * signal and stderr) rather than as a dead test worker; then the same call runs here.
 */
import { spawnSync } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { NativeReplayOptions } from '../../binding'
import { nativeBinding } from '../../lib/backends/binding'
import { parseTrace, replay, REPLAY_ALLOCATORS } from '../../lib/index'
import { expectError } from '../native-heap/helpers'

const root = resolve(dirname(__filename), '../..')
const options: NativeReplayOptions = {
  source: 'mmap', alignment: 16, growth: 65536, split: true, coalesce: true, trimThreshold: 131072, maxHeapBytes: 0, segregateSmall: 0, touch: true, repeat: 1,
}

interface RawTrace {
  kinds: number[]
  ids: number[]
  sizes: number[]
  numIds: number
}

/** The binding's replay in a fresh Node process: its exit status, signal and result or error code. */
function replayInChild(trace: RawTrace, allocator: string) {
  const code = `
    const binding = require('node-gyp-build')(${JSON.stringify(root)})
    binding.setErrorFactory((code, message) => Object.assign(new Error(message), { code }))
    const t = ${JSON.stringify(trace)}
    let out
    try {
      const r = binding.replay(Uint8Array.from(t.kinds), Int32Array.from(t.ids), Float64Array.from(t.sizes), t.numIds,
                               ${JSON.stringify(allocator)}, ${JSON.stringify(options)})
      out = { peakLiveBytes: r.peakLiveBytes }
    } catch (e) { out = { code: e.code, message: e.message } }
    process.stdout.write(JSON.stringify(out))
  `
  const child = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30_000 })
  const summary = { status: child.status, signal: child.signal, stderr: child.stderr.slice(0, 500) }
  expect(summary, `replaying against ${allocator} killed the process`).toEqual({ status: 0, signal: null, stderr: '' })
  return JSON.parse(child.stdout) as { peakLiveBytes?: number; code?: string; message?: string }
}

function raw(text: string): RawTrace {
  const trace = parseTrace(text)
  return { kinds: [...trace.kinds], ids: [...trace.ids], sizes: [...trace.sizes], numIds: trace.numIds }
}

describe('realloc to 0 bytes in a replay', () => {
  // glibc's realloc(p, 0) frees p and returns NULL; the loop used to free p again at cleanup.
  it.each(REPLAY_ALLOCATORS)('%s survives a trace that reallocs an id to 0 bytes and leaves it live', (allocator) => {
    const text = '0\n1\n2\n1\na 0 8\nr 0 0\n'
    expect(replayInChild(raw(text), allocator)).toEqual({ peakLiveBytes: 8 })
    expect(replay(parseTrace(text), { allocator, source: 'mmap' }).peakLiveBytes).toBe(8)
  })

  it.each(REPLAY_ALLOCATORS)('%s keeps an id reallocated to 0 live: it grows again, is freed once, and 0-byte allocs work', (allocator) => {
    const text = '0\n3\n9\n1\na 0 8\nr 0 0\nr 0 24\nr 0 0\nf 0\na 1 0\nr 1 0\na 2 40\nr 1 100\n'
    expect(replayInChild(raw(text), allocator)).toEqual({ peakLiveBytes: 140 })
    expect(replay(parseTrace(text), { allocator, source: 'mmap', repeat: 3 }).peakLiveBytes).toBe(140)
  })
})

describe('a hostile id count in the header', () => {
  const binding = nativeBinding()!
  const replayRaw = (trace: RawTrace, allocator: string) =>
    binding.replay(Uint8Array.from(trace.kinds), Int32Array.from(trace.ids), Float64Array.from(trace.sizes), trace.numIds, allocator as 'libc', options)

  // The per-id tables are sized by the ids the ops use, so 2**31 declared ids cost nothing.
  it.each(['best-fit', 'libc'])('2**31 declared ids, a few used: %s replays it', (allocator) => {
    const trace = { kinds: [0, 0, 1, 2, 1], ids: [0, 5, 0, 5, 5], sizes: [8, 16, 0, 32, 0], numIds: 2 ** 31 }
    expect(replayInChild(trace, allocator)).toEqual({ peakLiveBytes: 32 })
    expect(replayRaw(trace, allocator).peakLiveBytes).toBe(32)
  })

  // The largest possible id makes the tables 2**31 entries long: either the memory is there
  // (calloc's untouched pages cost nothing) or the replay says ERR_OUT_OF_MEMORY; never an abort.
  it('the largest id an int32 can name: replayed, or ERR_OUT_OF_MEMORY, in a process that lives', () => {
    const trace = { kinds: [0, 0, 1], ids: [2 ** 31 - 1, 0, 2 ** 31 - 1], sizes: [8, 8, 0], numIds: 2 ** 31 }
    const result = replayInChild(trace, 'best-fit')
    if (result.code === undefined) expect(result).toEqual({ peakLiveBytes: 16 })
    else expect(result.code, result.message).toBe('ERR_OUT_OF_MEMORY')
  })

  it.each([-1, 2 ** 31 + 1, 2 ** 32, 1.5, NaN, Infinity])('an id count of %s is ERR_TRACE_FORMAT', (numIds) => {
    const trace = { kinds: [0], ids: [0], sizes: [8], numIds }
    expectError(() => replayRaw(trace, 'best-fit'), 'ERR_TRACE_FORMAT')
  })

  it('an id at or above the declared count is still ERR_TRACE_FORMAT, naming the op', () => {
    const trace = { kinds: [0, 0], ids: [0, 3], sizes: [8, 8], numIds: 3 }
    expect(expectError(() => replayRaw(trace, 'libc'), 'ERR_TRACE_FORMAT').message).toMatch(/op 2\b/)
  })
})
