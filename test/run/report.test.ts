/**
 * The pure parts of `run`: the report reader's checks of the library's report format, the conversion of
 * a snapshot and samples into what the renderers draw, file names per process, the environment,
 * and splitting our options from COMMAND's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { renderHeapMap } from '../../lib/render/heap-map'
import { renderTimeline } from '../../lib/render/timeline'
import { splitCommand } from '../../lib/cli/run'
import { median } from '../../lib/run/command-bench'
import { preloadFirst, runEnvironment } from '../../lib/run/environment'
import { commandText, heapSnapshot, mapTitle, pictureFile, timelinePictures } from '../../lib/run/pictures'
import { checkReport, readReports, type ProcessReport } from '../../lib/run/report'
import { formatProcessStats } from '../../lib/run/summary'
import { wellFormedSvg } from '../cli/helpers'

const BASE = 0x5555_5555_0000

/** A report as native/malloc/exit_report.cpp writes it, with a snapshot and a timeline. */
function sampleReport(pid = 4242): Record<string, unknown> {
  const main = {
    heapStart: BASE, heapEnd: BASE + 8192, heapBytes: 8192, peakHeapBytes: 8192, liveBytes: 2048, liveChunks: 2, peakLiveBytes: 4096,
    freeBytes: 1024, freeChunks: 1, largestFreeChunk: 1024, topBytes: 4096, metadataBytes: 512, peakMetadataBytes: 640, allocs: 5, frees: 3, reallocs: 1,
    brkCalls: 2, bytesReleased: 0, segments: 1, searchSteps: 9, deferredChunks: 1,
  }
  return {
    pid, ppid: 1, command: ['python3', '-c', 'print(1)'], strategy: 'best-fit', exitStatus: null, heaps: 3, threads: 2, main,
    total: { heapBytes: 9000, peakHeapBytes: 12288, liveBytes: 2100, peakLiveBytes: 6000, metadataBytes: 700, allocs: 50, frees: 30, reallocs: 2, brkCalls: 2 },
    badFrees: 1,
    snapshot: { at: 'peak', heapStart: BASE, heapEnd: BASE + 8192, chunks: [[BASE, 1024, 'live'], [BASE + 1024, 1024, 'free'], [BASE + 2048, 1024, 'deferred'], [BASE + 3072, 1024, 'live']] },
    timeline: { every: 2, samples: [[0, 0, 0], [2, 4096, 1024], [4, 8192, 4096], [6, 8192, 2048]] },
  }
}

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('checkReport', () => {
  it('accepts the contract', () => {
    const report = checkReport(sampleReport())
    expect(report.pid).toBe(4242)
    expect(report.snapshot?.chunks).toHaveLength(4)
    expect(report.timeline?.samples).toHaveLength(4)
    expect(checkReport({ ...sampleReport(), snapshot: null, timeline: null }).snapshot).toBeNull()
  })

  const broken: [string, (r: Record<string, unknown>) => void, RegExp][] = [
    ['a missing main field', (r) => delete (r.main as Record<string, unknown>).peakHeapBytes, /main\.peakHeapBytes is missing/],
    ['a negative count', (r) => ((r.total as Record<string, unknown>).allocs = -1), /total\.allocs is -1/],
    ['a command that is a string', (r) => (r.command = 'python3'), /command is not an array/],
    ['a snapshot taken at noon', (r) => ((r.snapshot as Record<string, unknown>).at = 'noon'), /snapshot\.at/],
    ['an unknown chunk state', (r) => (((r.snapshot as Record<string, unknown>).chunks as unknown[][])[1][2] = 'lost'), /snapshot\.chunks\[1\]/],
    ['overlapping chunks', (r) => (((r.snapshot as Record<string, unknown>).chunks as unknown[][])[1][0] = BASE + 512), /overlaps/],
    ['a chunk past the end', (r) => (((r.snapshot as Record<string, unknown>).chunks as unknown[][])[3][1] = 8192), /outside/],
    ['a short sample', (r) => (((r.timeline as Record<string, unknown>).samples as unknown[][])[2] = [4, 8192]), /timeline\.samples\[2\]/],
    ['a fractional exit status', (r) => (r.exitStatus = 1.5), /exitStatus/],
  ]
  for (const [name, breakIt, message] of broken) {
    it(`names ${name}`, () => {
      const report = sampleReport()
      breakIt(report)
      expect(() => checkReport(report)).toThrow(message)
    })
  }

  it('reads a directory: the started process first, bad files named, temporary names skipped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ma-reports-'))
    dirs.push(dir)
    writeFileSync(join(dir, '10.json'), JSON.stringify(sampleReport(10)))
    writeFileSync(join(dir, '30.json'), JSON.stringify(sampleReport(30)))
    writeFileSync(join(dir, '20.json'), JSON.stringify(sampleReport(20)))
    writeFileSync(join(dir, '40.json'), '{"pid": 40')
    writeFileSync(join(dir, '50.json'), JSON.stringify(sampleReport(51)))
    writeFileSync(join(dir, '.60.json.tmp'), 'partial')
    const { reports, problems } = readReports(dir, 30)
    expect(reports.map((r) => r.pid)).toEqual([30, 10, 20])
    expect(problems).toHaveLength(2)
    expect(problems[0]).toMatch(/^40\.json: /)
    expect(problems[1]).toBe('50.json: it says pid 51')
  })
})

describe('pictures from a report', () => {
  const report = checkReport(sampleReport()) as ProcessReport

  it('turns the snapshot into a heap map with its chunks, the top and the title', () => {
    const snapshot = heapSnapshot(report, report.snapshot!)
    expect(snapshot.stats).toEqual({ heapStart: BASE, heapEnd: BASE + 8192, heapBytes: 8192, topBytes: 4096, segments: 1 })
    expect(snapshot.chunks[2]).toEqual({ address: BASE + 2048, size: 1024, state: 'free', deferred: true })
    const title = mapTitle(report, report.snapshot!)
    expect(title).toBe('best-fit main heap of python3 -c "print(1)" (pid 4242) at its peak')
    const svg = renderHeapMap(snapshot, { format: 'svg', title })
    expect(wellFormedSvg(svg)).toBe(true)
    expect(svg).toContain('at its peak')
    expect(mapTitle(report, { ...report.snapshot!, at: 'exit' })).toMatch(/at exit$/)
  })

  it('counts a gap between chunks as another segment', () => {
    const gapped = heapSnapshot(report, { at: 'exit', heapStart: BASE, heapEnd: BASE + 8192, chunks: [[BASE, 1024, 'live'], [BASE + 4096, 1024, 'live']] })
    expect(gapped.stats.segments).toBe(2)
    expect(gapped.stats.topBytes).toBe(3072)
  })

  it('turns the samples into a timeline whose peak is the largest sample', () => {
    const pictures = timelinePictures(report)!
    expect(pictures.peakOp).toBe(4)
    expect(pictures.ops).toBe(6)
    expect(pictures.peak.chunks).toHaveLength(4)
    expect(wellFormedSvg(renderTimeline(pictures))).toBe(true)
    expect(timelinePictures({ ...report, timeline: null })).toBeUndefined()
    const noSnapshot = timelinePictures({ ...report, snapshot: null })!
    expect(noSnapshot.peak.stats.heapBytes).toBe(8192)
    // Without the chunks at the peak the timeline says nothing of how much of it was live.
    expect(renderTimeline(pictures)).toContain('at the peak 25.0% of what is held is live')
    expect(renderTimeline(noSnapshot)).not.toContain('of what is held is live')
  })

  it('names one file per process', () => {
    expect(pictureFile('out/map.svg')).toBe('out/map.svg')
    expect(pictureFile('out/map.svg', 77)).toBe('out/map-77.svg')
    expect(pictureFile('map', 77)).toBe('map-77')
  })

  it('prints the stats of a process with several heaps', () => {
    const text = formatProcessStats(report, 'exit status 0')
    expect(text).toContain('pid 4242  python3 -c "print(1)"  (best-fit, exit status 0)')
    expect(text).toMatch(/main heap +peak heap 8\.00 KiB, peak live 4\.00 KiB, utilization 50\.0%, metadata 640 B/) // the peak, as the other figures of the line
    expect(text).toContain('3 heaps    peak heap 12.0 KiB')
    expect(text).toContain('2 live (2.00 KiB), 1 free (1.00 KiB), top 4.00 KiB')
    expect(text).toContain('50 allocs, 30 frees, 2 reallocs; 2 break moves, 3 heaps, 2 threads, 1 bad free')
  })

  it('quotes and shortens commands', () => {
    expect(commandText(['sh', '-c', 'echo hi'])).toBe('sh -c "echo hi"')
    expect(commandText(['x'.repeat(100)], 10)).toBe('xxxxxxxxx…')
  })
})

describe('the environment and the command line', () => {
  it('preloads the library first and keeps the user’s', () => {
    expect(preloadFirst('/lib/ma.so', undefined)).toBe('/lib/ma.so')
    expect(preloadFirst('/lib/ma.so', '/a.so:/b.so /lib/ma.so')).toBe('/lib/ma.so /a.so /b.so')
    const env = runEnvironment('/lib/ma.so', { strategy: 'bump', reportDir: '/tmp/r', timeline: true }, { LD_PRELOAD: '/x.so', MEMORY_ALLOCATOR_SNAPSHOT: 'peak', HOME: '/h' })
    expect(env).toEqual({
      LD_PRELOAD: '/lib/ma.so /x.so',
      HOME: '/h',
      MEMORY_ALLOCATOR_STRATEGY: 'bump',
      MEMORY_ALLOCATOR_ON_BAD_FREE: 'abort',
      MEMORY_ALLOCATOR_REPORT_DIR: '/tmp/r',
      MEMORY_ALLOCATOR_TIMELINE: '1',
    })
  })

  it('splits our options from COMMAND', () => {
    const options = { allocator: { type: 'string' }, stats: { type: 'boolean' } }
    expect(splitCommand(['--stats', '--', 'ls', '-l'], options)).toEqual({ ours: ['--stats'], command: ['ls', '-l'] })
    expect(splitCommand(['--allocator', 'bump', 'python3', '-c', 'x'], options)).toEqual({ ours: ['--allocator', 'bump'], command: ['python3', '-c', 'x'] })
    expect(splitCommand(['--allocator=bump', 'ls', '--', 'x'], options)).toEqual({ ours: ['--allocator=bump'], command: ['ls', '--', 'x'] })
    expect(splitCommand(['--stats'], options)).toEqual({ ours: ['--stats'], command: [] })
  })

  it('takes medians', () => {
    expect(median([])).toBeNull()
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })
})
