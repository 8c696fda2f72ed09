/**
 * README's trace examples and figures against the code as it is: every command runs on a trace a
 * user of the repository has (issue 13 defect 6: they named ../shared/traces, which only this
 * project's machine has), and the memory columns of the perl-modules table are what replay()
 * prints today (defect 5: they had gone stale). Times are not compared: they vary by run.
 */
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { nativeBinding } from '../../lib/backends/binding'
import { loadTrace, replay, type Strategy } from '../../lib/index'
import { formatInteger, formatNumber, formatPercent, humanBytes, ratio } from '../../lib/render/format'
import { traceThroughHeap } from '../../lib/replay/replay-pictures'

const root = path.resolve(__dirname, '../..')
const readme = readFileSync(path.join(root, 'README.md'), 'utf8')

/** The `memory-allocator ...` command lines of README's sh blocks. */
function commands(): string[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1].replace(/\\\n\s*/g, ' '))
  return blocks.flatMap((block) => block.split('\n')).filter((line) => /^\s*memory-allocator (bench|replay)\b/.test(line))
}

describe("README's trace commands", () => {
  it('name only traces a clone of the repository has', () => {
    const lines = commands()
    expect(lines.length).toBeGreaterThanOrEqual(4)
    const traces = lines.flatMap((line) => [...line.matchAll(/(\S+\.rep(?:\.gz)?)\b/g)].map((match) => match[1]))
    expect(traces.length).toBeGreaterThanOrEqual(4)
    expect(traces.filter((trace) => trace.includes('../') || !existsSync(path.join(root, trace)))).toEqual([])
  })
})

describe.skipIf(nativeBinding() === undefined)("README's perl-modules table", () => {
  it('has the memory columns that bench prints today (peak heap, util, metadata, steps/op)', () => {
    const start = readme.indexOf('memory-allocator bench bench/traces/perl-modules.rep.gz --repeat 5\n')
    expect(start).toBeGreaterThan(0)
    const table = readme.slice(start).split('\n').filter((line) => line.startsWith('| ')).slice(0, 8)
    const rows = table.slice(1).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()))
    const trace = loadTrace(path.join(root, 'bench/traces/perl-modules.rep.gz'))
    const strategies = rows.map((row) => row[0]).filter((name) => !name.startsWith('libc'))
    expect(strategies).toEqual(['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit', 'bump'])
    const shown = rows.filter((row) => !row[0].startsWith('libc')).map((row) => [row[0], row[3], row[4], row[5], row[6]])
    // bench's defaults: touch on, growth 65536, segregateSmall and alignment as createHeap's.
    const today = strategies.map((allocator) => {
      const result = replay(trace, { allocator: allocator as Strategy, repeat: 1, touch: true })
      return [allocator, humanBytes(result.peakHeapBytes), formatPercent(result.utilization), humanBytes(result.metadataBytes), formatNumber(ratio(result.searchSteps, result.ops))]
    })
    expect(shown).toEqual(today)
  })
})

describe.skipIf(nativeBinding() === undefined)("README's pictures", () => {
  it("state the map's and the timeline's peaks as replay --map and --timeline find them", () => {
    const map = traceThroughHeap(loadTrace(path.join(root, 'bench/traces/perl-modules.rep.gz')), { strategy: 'worst-fit' })
    expect(readme).toContain(`(request ${formatInteger(map.peakOp)} of ${formatInteger(map.ops)},\n${humanBytes(map.peak.stats.heapBytes)} held)`)
    const timeline = traceThroughHeap(loadTrace(path.join(root, 'bench/traces/python3-ast.rep.gz')), { strategy: 'best-fit' })
    expect(readme).toContain(`The heap peaks at ${humanBytes(timeline.peak.stats.heapBytes)} held at request ${formatInteger(timeline.peakOp)}`)
  })
})
