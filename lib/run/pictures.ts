/**
 * The pictures of `run --map` and `run --timeline`, drawn by the existing renderers
 * (renderHeapMap's SVG, renderTimeline) from what the malloc library wrote at exit: the chunk
 * snapshot of the main heap becomes a HeapSnapshot, the samples a timeline. One file per process
 * where several ran: FILE.svg for the one `run` started, FILE-<pid>.svg for each other.
 */
import { basename, dirname, extname, join } from 'node:path'
import { formatInteger } from '../render/format'
import type { HeapSnapshot } from '../render/heap-map'
import type { TracePictures } from '../replay/replay-pictures'
import type { Strategy } from '../types'
import type { ProcessReport, ReportSnapshot } from './report'

/** `map.svg` for COMMAND's process (no pid), `map-<pid>.svg` for another. */
export function pictureFile(file: string, pid?: number | string): string {
  if (pid === undefined) return file
  const extension = extname(file)
  return join(dirname(file), `${basename(file, extension)}-${pid}${extension}`)
}

/** "python3 -c …", shortened for a title. */
export function commandText(command: readonly string[], max = 60): string {
  const text = command.map((part) => (/^[\w@%+=:,./-]+$/.test(part) ? part : JSON.stringify(part))).join(' ')
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/**
 * The snapshot as renderHeapMap wants it. The space from the last chunk's end to the break is the
 * top; a space between chunks is address space the heap does not own (another user moved the
 * break), which the map draws as such, one segment per such gap.
 */
export function heapSnapshot(report: ProcessReport, snapshot: ReportSnapshot): HeapSnapshot {
  let end = snapshot.heapStart
  let gaps = 0
  let chunkBytes = 0
  for (const [address, size] of snapshot.chunks) {
    if (address > end) gaps++
    chunkBytes += size
    end = address + size
  }
  const topBytes = snapshot.heapEnd - end
  return {
    backend: 'native',
    source: 'brk',
    strategy: report.strategy as Strategy,
    stats: { heapStart: snapshot.heapStart, heapEnd: snapshot.heapEnd, heapBytes: chunkBytes + topBytes, topBytes, segments: 1 + gaps },
    chunks: snapshot.chunks.map(([address, size, state]) =>
      state === 'deferred' ? { address, size, state: 'free' as const, deferred: true as const } : { address, size, state },
    ),
  }
}

export function mapTitle(report: ProcessReport, snapshot: ReportSnapshot): string {
  const when = snapshot.at === 'peak' ? 'at its peak' : 'at exit'
  return `${report.strategy} main heap of ${commandText(report.command)} (pid ${report.pid}) ${when}`
}

/**
 * The samples as renderTimeline wants them. Its "peak" is the largest sample; when the library
 * kept the chunks at that peak they come along (renderTimeline says how much of the peak is live).
 */
export function timelinePictures(report: ProcessReport): TracePictures | undefined {
  const timeline = report.timeline
  if (timeline === null || timeline.samples.length === 0) return undefined
  const samples = timeline.samples.map(([op, heapBytes, liveBytes]) => ({ op, heapBytes, liveBytes }))
  let peakIndex = 0
  samples.forEach((sample, i) => {
    if (sample.heapBytes > samples[peakIndex].heapBytes) peakIndex = i
  })
  const peakSample = samples[peakIndex]
  const atPeak = report.snapshot !== null && report.snapshot.at === 'peak' ? heapSnapshot(report, report.snapshot) : undefined
  const peak: HeapSnapshot = atPeak ?? {
    backend: 'native',
    source: 'brk',
    strategy: report.strategy as Strategy,
    stats: { heapStart: report.main.heapStart, heapEnd: report.main.heapStart + peakSample.heapBytes, heapBytes: peakSample.heapBytes, topBytes: 0, segments: 1 },
    chunks: [],
  }
  return {
    trace: commandText(report.command),
    strategy: report.strategy as Strategy,
    ops: samples.at(-1)!.op,
    samples,
    peak,
    peakOp: peakSample.op,
  }
}

export function timelineTitle(report: ProcessReport, pictures: TracePictures): string {
  return `${report.strategy} main heap of ${commandText(report.command)} (pid ${report.pid}): held and live over ${formatInteger(pictures.ops)} requests`
}
