/**
 * replay(trace, { allocator: 'libc', library }) and `bench --malloc NAME=LIBRARY`: the 'libc' loop
 * in a child process that preloads another malloc. jemalloc's test is skipped (with the reason
 * printed) where libjemalloc2 is not installed.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { nativeBinding } from '../../lib/backends/binding'
import { AllocatorError } from '../../lib/errors'
import { recorderPath } from '../../lib/trace/record'
import { replay } from '../../lib/replay/replay'
import { formatTrace } from '../../lib/trace/trace'
import { generateTrace } from '../../lib/trace/workloads'
import { run as cli } from '../cli/helpers'

const JEMALLOC = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2', '/usr/lib64/libjemalloc.so.2'].find((path) => existsSync(path))
if (JEMALLOC === undefined) console.warn('replay-library tests: libjemalloc.so.2 is not installed (Debian: apt-get install libjemalloc2); its tests are skipped')

const trace = generateTrace('program-mix', { ops: 20_000, seed: 5 })
const dir = mkdtempSync(join(tmpdir(), 'memory-allocator-replay-library-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function codeOf(run: () => unknown): string | undefined {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(AllocatorError)
    return (error as AllocatorError).code
  }
  return undefined
}

describe.skipIf(nativeBinding() === undefined)('replay with a malloc library', () => {
  it.skipIf(recorderPath() === undefined)('runs the whole loop through the preloaded library (the recorder sees every request)', () => {
    // The recorder is a malloc library too: preloaded in the child, it records what the loop asks of malloc.
    const previous = { file: process.env.MA_RECORD_FILE, run: process.env.MA_RECORD_RUN }
    process.env.MA_RECORD_FILE = join(dir, 'child.rep')
    process.env.MA_RECORD_RUN = 'replay-library-test'
    let result
    try {
      result = replay(trace, { allocator: 'libc', library: recorderPath()!, repeat: 2 })
    } finally {
      if (previous.file === undefined) delete process.env.MA_RECORD_FILE
      else process.env.MA_RECORD_FILE = previous.file
      if (previous.run === undefined) delete process.env.MA_RECORD_RUN
      else process.env.MA_RECORD_RUN = previous.run
    }
    expect(result).toMatchObject({ allocator: recorderPath(), ops: trace.opCount, peakLiveBytes: trace.peakLiveBytes, metadataBytes: null, brkCalls: null })
    expect(result.runsNsPerOp).toHaveLength(2)
    const recorded = readdirSync(dir).filter((name) => /^child\.\d+\.rep$/.test(name))
    expect(recorded).toHaveLength(1)
    const ops = Number(readFileSync(join(dir, recorded[0]), 'latin1').split('\n')[2])
    // One warm-up and two timed runs of the trace, plus Node's own allocations.
    expect(ops).toBeGreaterThan(3 * trace.opCount)
  })

  it.skipIf(JEMALLOC === undefined)('measures jemalloc: time by the same loop, memory as the child\'s peak RSS growth', () => {
    const result = replay(trace, { allocator: 'libc', library: JEMALLOC!, repeat: 1 })
    expect(result.nsPerOp).toBeGreaterThan(0)
    expect(result.peakHeapBytes).toBeGreaterThan(trace.peakLiveBytes / 2)
    expect(result.utilization).toBeCloseTo(trace.peakLiveBytes / result.peakHeapBytes!, 12)
    // Untouched bytes need not be resident: no memory figure then, rather than a wrong one.
    expect(replay(trace, { allocator: 'libc', library: JEMALLOC!, touch: false })).toMatchObject({ peakHeapBytes: null, utilization: null })
  })

  it('refuses a library that does not exist or does not preload, and a library with one of our strategies', () => {
    expect(codeOf(() => replay(trace, { allocator: 'libc', library: join(dir, 'no-such.so') }))).toBe('ERR_INVALID_OPTION')
    expect(codeOf(() => replay(trace, { allocator: 'libc', library: 'libno-such-malloc.so.9' }))).toBe('ERR_INVALID_OPTION')
    expect(codeOf(() => replay(trace, { allocator: 'libc', library: '' }))).toBe('ERR_INVALID_OPTION')
    writeFileSync(join(dir, 'not-a-library.so'), 'text')
    expect(codeOf(() => replay(trace, { allocator: 'libc', library: join(dir, 'not-a-library.so') }))).toBe('ERR_UNSUPPORTED')
    expect(codeOf(() => replay(trace, { allocator: 'best-fit', library: JEMALLOC ?? '/lib/libc.so.6' }))).toBe('ERR_INVALID_OPTION')
    // A library that loads but defines no malloc would time glibc under another name.
    const zlib = ['/usr/lib/x86_64-linux-gnu/libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib/aarch64-linux-gnu/libz.so.1'].find((path) => existsSync(path))
    if (zlib !== undefined) expect(() => replay(trace, { allocator: 'libc', library: zlib })).toThrow(/does not define malloc/)
  })
})

describe.skipIf(nativeBinding() === undefined)('bench --malloc', () => {
  const file = join(dir, 'mix.rep')
  writeFileSync(file, formatTrace(generateTrace('program-mix', { ops: 3_000, seed: 2 })))

  it.skipIf(JEMALLOC === undefined)('replay --malloc: one row, the library\'s, by the same loop', async () => {
    const result = await cli(['replay', file, '--malloc', `jemalloc=${JEMALLOC}`, '--repeat', '1', '--json'])
    expect(result.code, result.stderr).toBe(0)
    const doc = JSON.parse(result.stdout) as { result: { allocator: string; nsPerOp: number; metadataBytes: number | null } }
    expect(doc.result).toMatchObject({ allocator: 'jemalloc', metadataBytes: null })
    expect(doc.result.nsPerOp).toBeGreaterThan(0)
    expect((await cli(['replay', file, '--malloc', 'jemalloc'])).code).toBe(2)
    expect((await cli(['replay', file, '--malloc', `jemalloc=${JEMALLOC}`, '--allocator', 'best-fit'])).code).toBe(2)
  })

  it.skipIf(JEMALLOC === undefined)('adds a jemalloc row beside libc, with its ratio to libc and its peak RSS growth', async () => {
    const result = await cli(['bench', file, '--allocators', 'best-fit,libc', '--malloc', `jemalloc=${JEMALLOC}`, '--repeat', '1', '--json'])
    expect(result.code).toBe(0)
    const rows = (JSON.parse(result.stdout) as { results: { allocator: string; ratioToLibc: number | null; peakHeapBytes: number | null; nsPerOp: number }[] }).results
    expect(rows.map((row) => row.allocator)).toEqual(['best-fit', 'libc', 'jemalloc'])
    const [, libc, jemalloc] = rows
    expect(jemalloc.ratioToLibc).toBeCloseTo(jemalloc.nsPerOp / libc.nsPerOp, 9)
    expect(libc.peakHeapBytes).toBeGreaterThan(0)  // libc in a child of its own, measured alike
    expect(jemalloc.peakHeapBytes).toBeGreaterThan(0)
  })

  it('a library that fails is reported and exits 1 while the other rows still run', async () => {
    const result = await cli(['bench', file, '--allocators', 'libc', '--malloc', `gone=${join(dir, 'gone.so')}`, '--repeat', '1', '--csv'])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`--malloc gone=${join(dir, 'gone.so')}: ERR_INVALID_OPTION`)
    expect(result.stdout).toMatch(/\nmix,libc,/)
    expect(result.stdout).not.toMatch(/,gone,/)
  })

  it('a malformed --malloc is a usage error (2) and nothing runs', async () => {
    for (const value of ['jemalloc', '=x.so', 'libc=/x.so', 'best-fit=/x.so', 'a b=/x.so']) {
      const result = await cli(['bench', file, '--malloc', value])
      expect(result.code, value).toBe(2)
      expect(result.stdout).toBe('')
    }
  })
})
