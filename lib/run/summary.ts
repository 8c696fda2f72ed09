/**
 * What `run --stats` prints on stderr after the command ends: a few lines per process, read from
 * the reports the malloc library wrote at exit.
 */
import { formatInteger, formatPercent, humanBytes, ratio } from '../render/format'
import { commandText } from './pictures'
import type { ProcessReport } from './report'

const plural = (n: number, word: string): string => `${formatInteger(n)} ${word}${n === 1 ? '' : 's'}`

/** How a process ended, as the line after the pid says it. */
export function endedText(status: number | null, signal: string | null): string {
  if (signal !== null) return `ended by ${signal}`
  return status === null ? 'exit status unknown' : `exit status ${status}`
}

/**
 * One process: the main heap (the program break) first, since that is the heap the map draws, and
 * every heap together where there were several (thread heaps). Utilization is peak live ÷ peak
 * heap, as bench has it.
 */
export function formatProcessStats(report: ProcessReport, ended: string): string {
  const { main, total } = report
  const lines = [`pid ${report.pid}  ${commandText(report.command, 70)}  (${report.strategy}, ${ended})`]
  const heapLine = (name: string, peakHeap: number, peakLive: number, metadata: number): string =>
    `  ${name.padEnd(11)}peak heap ${humanBytes(peakHeap)}, peak live ${humanBytes(peakLive)}, utilization ${formatPercent(ratio(peakLive, peakHeap))}, metadata ${humanBytes(metadata)}`
  lines.push(heapLine('main heap', main.peakHeapBytes, main.peakLiveBytes, main.peakMetadataBytes))
  if (report.heaps > 1) lines.push(heapLine(`${report.heaps} heaps`, total.peakHeapBytes, total.peakLiveBytes, total.metadataBytes) + ' (peaks summed per heap)')
  lines.push(
    `  ${''.padEnd(11)}chunks at exit: ${formatInteger(main.liveChunks)} live (${humanBytes(main.liveBytes)}), ${formatInteger(main.freeChunks)} free (${humanBytes(main.freeBytes)}), top ${humanBytes(main.topBytes)}`,
    `  ${''.padEnd(11)}${plural(total.allocs, 'alloc')}, ${plural(total.frees, 'free')}, ${plural(total.reallocs, 'realloc')}; ${plural(total.brkCalls, 'break move')}, ${plural(report.heaps, 'heap')}, ${plural(report.threads, 'thread')}, ${plural(report.badFrees, 'bad free')}`,
  )
  return lines.join('\n') + '\n'
}
