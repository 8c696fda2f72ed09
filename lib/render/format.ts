/**
 * Numbers and tables in words: number and byte formatting (every picture and command uses it),
 * the bench report's aggregation (geometric means, ratios, the per-allocator summary), its text
 * tables, CSV, and the progress line. Nothing here does I/O or loads the addon, so every function
 * can be tested on its own.
 */
import type { AllocatorSummary, BenchReport, BenchResult, ProgressEvent } from '../bench/types'

export const LIBC = 'libc'
/** Shown where a value does not apply (libc has no heap statistics; no libc run to compare with). */
export const NOT_APPLICABLE = '—'

// ---------------------------------------------------------------------------------------------
// Aggregation

/**
 * exp(mean(log x)). Null for no values. Every value must be finite and > 0 (a geometric mean of a
 * zero is zero whatever the rest are, which is never what a benchmark summary means).
 */
export function geometricMean(values: readonly number[]): number | null {
  if (values.length === 0) return null
  let sum = 0
  for (const value of values) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new RangeError(`geometricMean needs finite values > 0, got ${value}`)
    }
    sum += Math.log(value)
  }
  return Math.exp(sum / values.length)
}

/** value / base, or null when either is missing or the quotient is meaningless (base <= 0). */
export function ratio(value: number | null | undefined, base: number | null | undefined): number | null {
  if (value === null || value === undefined || base === null || base === undefined) return null
  if (!Number.isFinite(value) || !Number.isFinite(base) || base <= 0) return null
  return value / base
}

/** Sets each result's ratioToLibc from the libc result of the same trace (in place; returns them). */
export function attachLibcRatios(results: BenchResult[]): BenchResult[] {
  const libcByTrace = new Map<string, number | null>()
  for (const result of results) {
    if (result.allocator === LIBC) libcByTrace.set(result.trace, result.failed === null ? result.nsPerOp : null)
  }
  for (const result of results) {
    result.ratioToLibc = result.failed === null ? ratio(result.nsPerOp, libcByTrace.get(result.trace)) : null
  }
  return results
}

function positive(values: readonly (number | null)[]): number[] {
  return values.filter((value): value is number => value !== null && Number.isFinite(value) && value > 0)
}

/**
 * Per allocator (in the given order), geometric means over the traces it completed. Failed cells
 * are listed and left out of the means; so are values that cannot enter a geometric mean (a
 * utilization of 0 on a trace that never holds live bytes).
 */
export function summarize(results: readonly BenchResult[], allocators: readonly string[]): AllocatorSummary[] {
  return allocators.map((allocator) => {
    const mine = results.filter((result) => result.allocator === allocator)
    const ok = mine.filter((result) => result.failed === null)
    return {
      allocator,
      traces: ok.length,
      failed: mine.filter((result) => result.failed !== null).map((result) => ({ trace: result.trace, code: result.failed! })),
      geomeanNsPerOp: geometricMean(positive(ok.map((result) => result.nsPerOp))),
      geomeanRatioToLibc: geometricMean(positive(ok.map((result) => result.ratioToLibc))),
      geomeanUtilization: geometricMean(positive(ok.map((result) => result.utilization))),
      geomeanHeapToLive: geometricMean(positive(ok.map((result) => heapToLive(result)))),
    }
  })
}

export function heapToLive(result: Pick<BenchResult, 'peakHeapBytes' | 'peakLiveBytes'>): number | null {
  return ratio(result.peakHeapBytes, result.peakLiveBytes)
}

/** The short word a table shows for a failed cell. */
export function failureLabel(code: string): string {
  return code === 'ERR_OUT_OF_MEMORY' ? 'oom' : 'failed'
}

// ---------------------------------------------------------------------------------------------
// Numbers

/** 1234567 -> "1,234,567" (independent of the locale). */
export function formatInteger(value: number): string {
  const rounded = Math.round(value)
  const sign = rounded < 0 ? '-' : ''
  return sign + String(Math.abs(rounded)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

/** Three significant digits for small values, whole numbers with separators from 1000 up. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return NOT_APPLICABLE
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞'
  const magnitude = Math.abs(value)
  if (magnitude >= 999.5) return formatInteger(value)
  if (magnitude >= 99.95) return value.toFixed(0)
  if (magnitude >= 9.995) return value.toFixed(1)
  if (magnitude >= 0.9995 || magnitude === 0) return value.toFixed(2)
  return value.toPrecision(3)
}

/**
 * A fraction as a percentage with one decimal, 0.9667 -> "96.7%"; below 1% with two significant
 * digits, 0.00043 -> "0.043%", so that a tiny utilization does not read as zero.
 */
export function formatPercent(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return NOT_APPLICABLE
  const percent = fraction * 100
  if (percent !== 0 && Math.abs(percent) < 0.95) return `${Number(percent.toPrecision(2))}%`
  return `${percent.toFixed(1)}%`
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** Binary units, three significant digits: 512 -> "512 B", 1590426 -> "1.52 MiB". */
export function humanBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return NOT_APPLICABLE
  if (Math.abs(bytes) < 1024) return `${Math.round(bytes)} B`
  let value = bytes
  let unit = -1
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024
    unit++
  }
  // 1023.9 KiB would print as "1024 KiB"; step up instead.
  if (Math.abs(value) >= 999.5 && unit < BYTE_UNITS.length - 1) {
    value /= 1024
    unit++
  }
  const digits = Math.abs(value) >= 99.95 ? 0 : Math.abs(value) >= 9.995 ? 1 : 2
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`
}

const BYTE_SUFFIXES: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }

/**
 * A byte count from the command line: digits with an optional K, M, G or T suffix (powers of
 * 1024; "KiB", "KB" and "k" all mean the same) and `_` or `,` separators. Undefined when the text
 * is not one.
 */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text.replace(/[_,]/g, ''))
  if (match === null) return undefined
  const multiplier = BYTE_SUFFIXES[match[2].toLowerCase()]
  const value = Number(match[1]) * multiplier
  return Number.isSafeInteger(value) ? value : undefined
}

/** 950 -> "950 ms", 12345 -> "12.3 s", 125000 -> "2m05s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const totalSeconds = Math.round(ms / 1000)
  const hours = Math.floor(totalSeconds / 3600)
  const minutes = Math.floor((totalSeconds % 3600) / 60)
  const seconds = String(totalSeconds % 60).padStart(2, '0')
  return hours > 0 ? `${hours}h${String(minutes).padStart(2, '0')}m${seconds}s` : `${minutes}m${seconds}s`
}

// ---------------------------------------------------------------------------------------------
// Tables

export interface Column {
  header: string
  align: 'left' | 'right'
}

/**
 * Lays out a text table: columns padded to their widest cell and separated by two spaces, a rule
 * under the header, no trailing spaces.
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  for (const row of rows) {
    if (row.length !== columns.length) throw new RangeError(`table row has ${row.length} cells for ${columns.length} columns`)
  }
  const widths = columns.map((column, i) => Math.max(column.header.length, ...rows.map((row) => row[i].length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (columns[i].align === 'right' ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
  return [line(columns.map((column) => column.header)), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n')
}

const TRACE_COLUMNS: Column[] = [
  { header: 'allocator', align: 'left' },
  { header: 'ns/op', align: 'right' },
  { header: '×libc', align: 'right' },
  { header: 'peak heap', align: 'right' },
  { header: 'peak live', align: 'right' },
  { header: 'heap/live', align: 'right' },
  { header: 'util', align: 'right' },
  { header: 'metadata', align: 'right' },
  { header: 'meta/live', align: 'right' },
  { header: 'brk calls', align: 'right' },
  { header: 'steps/op', align: 'right' },
]

/** The row of one cell in a trace's table. */
export function traceRow(result: BenchResult): string[] {
  if (result.failed !== null) {
    const row = [result.allocator, failureLabel(result.failed), ...Array<string>(TRACE_COLUMNS.length - 2).fill(NOT_APPLICABLE)]
    row[4] = humanBytes(result.peakLiveBytes)
    return row
  }
  return [
    result.allocator,
    formatNumber(result.nsPerOp),
    formatNumber(result.ratioToLibc),
    humanBytes(result.peakHeapBytes),
    humanBytes(result.peakLiveBytes),
    formatNumber(heapToLive(result)),
    formatPercent(result.utilization),
    humanBytes(result.metadataBytes),
    formatPercent(ratio(result.metadataBytes, result.peakLiveBytes)),
    result.brkCalls === null ? NOT_APPLICABLE : formatInteger(result.brkCalls),
    formatNumber(ratio(result.searchSteps, result.ops)),
  ]
}

export function formatTraceTable(results: readonly BenchResult[]): string {
  return formatTable(TRACE_COLUMNS, results.map(traceRow))
}

const SUMMARY_COLUMNS: Column[] = [
  { header: 'allocator', align: 'left' },
  { header: 'traces', align: 'right' },
  { header: 'ns/op', align: 'right' },
  { header: '×libc', align: 'right' },
  { header: 'util', align: 'right' },
  { header: 'heap/live', align: 'right' },
  { header: 'failed', align: 'right' },
]

export function formatSummaryTable(summary: readonly AllocatorSummary[]): string {
  const rows = summary.map((entry) => [
    entry.allocator,
    String(entry.traces),
    formatNumber(entry.geomeanNsPerOp),
    formatNumber(entry.geomeanRatioToLibc),
    formatPercent(entry.geomeanUtilization),
    formatNumber(entry.geomeanHeapToLive),
    entry.failed.length === 0 ? NOT_APPLICABLE : `${entry.failed.length}*`,
  ])
  return formatTable(SUMMARY_COLUMNS, rows)
}

/** The whole text report: a titled table per trace, skipped traces, the summary and its footnotes. */
export function formatReportTables(report: BenchReport, summary: readonly AllocatorSummary[]): string {
  const { options } = report
  const out: string[] = []
  const traceCount = report.traces.length
  out.push(
    `memory-allocator bench: ${traceCount} trace${traceCount === 1 ? '' : 's'}` +
      `${report.skipped.length > 0 ? ` (${report.skipped.length} skipped)` : ''} × ` +
      `${options.allocators.length} allocator${options.allocators.length === 1 ? '' : 's'}, ` +
      `repeat ${options.repeat} (median), touch ${options.touch ? 'on' : 'off'}, growth ${formatInteger(options.growth)} B` +
      `${options.alignment !== 16 ? `, alignment ${options.alignment}` : ''}` +
      `${options.segregateSmall > 0 ? `, small requests (<= ${formatInteger(options.segregateSmall)} B) segregated` : ''}`,
    '',
  )
  for (const trace of report.traces) {
    const results = report.results.filter((result) => result.trace === trace.name)
    out.push(
      `${trace.name}  (${formatInteger(trace.ops)} ops, peak live ${humanBytes(trace.peakLiveBytes)} in ${formatInteger(trace.peakLiveChunks)} blocks; ${trace.source})`,
      formatTraceTable(results),
      '',
    )
  }
  for (const skipped of report.skipped) out.push(`${skipped.name}  (${skipped.source}): skipped: ${skipped.reason}`)
  if (report.skipped.length > 0) out.push('')
  if (traceCount === 0) {
    out.push('No traces were run.')
    return out.join('\n') + '\n'
  }

  out.push(`Summary: geometric means over ${traceCount} trace${traceCount === 1 ? '' : 's'}`, formatSummaryTable(summary))
  const notes: string[] = []
  const failures = summary.filter((entry) => entry.failed.length > 0)
  if (failures.length > 0) {
    notes.push('* failed traces are excluded from that allocator\'s means (so its means cover fewer traces):')
    for (const entry of failures) {
      notes.push(`    ${entry.allocator}: ${entry.failed.map((failure) => `${failure.trace} (${failureLabel(failure.code)})`).join(', ')}`)
    }
  }
  notes.push(
    'ns/op: median time per trace request, in native code.  ×libc: ns/op ÷ libc ns/op on the same trace.',
    'util: peak live / peak heap (malloc-lab); heap/live is its inverse.  meta/live: out-of-band metadata',
    'bytes ÷ peak live.  steps/op: free-table records examined by fit searches per request.',
  )
  if (options.growth !== 0) notes.push(`Heap growth is ${formatInteger(options.growth)} B per break move; the malloc-lab accounting wants --growth 0.`)
  out.push('', ...notes)
  return out.join('\n') + '\n'
}

// ---------------------------------------------------------------------------------------------
// CSV

/** One CSV field (RFC 4180): null -> empty; quoted when it holds a comma, quote or line break. */
export function csvEscape(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return ''
  const text = typeof value === 'number' && !Number.isFinite(value) ? '' : String(value)
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

export function toCsv(rows: readonly (readonly (string | number | boolean | null | undefined)[])[]): string {
  return rows.map((row) => row.map(csvEscape).join(',')).join('\n') + '\n'
}

export const CSV_HEADER = [
  'trace',
  'allocator',
  'ops',
  'ns_per_op',
  'ratio_to_libc',
  'peak_heap_bytes',
  'peak_live_bytes',
  'heap_to_live',
  'utilization',
  'metadata_bytes',
  'metadata_to_live',
  'brk_calls',
  'search_steps',
  'search_steps_per_op',
  'failed',
] as const

/** One header row and one row per trace × allocator; raw numbers, empty where not applicable. */
export function formatReportCsv(report: BenchReport): string {
  const rows = report.results.map((result) => [
    result.trace,
    result.allocator,
    result.ops,
    result.nsPerOp,
    result.ratioToLibc,
    result.peakHeapBytes,
    result.peakLiveBytes,
    heapToLive(result),
    result.utilization,
    result.metadataBytes,
    ratio(result.metadataBytes, result.peakLiveBytes),
    result.brkCalls,
    result.searchSteps,
    ratio(result.searchSteps, result.ops),
    result.failed,
  ])
  return toCsv([CSV_HEADER, ...rows])
}

// ---------------------------------------------------------------------------------------------
// Progress

export interface ProgressState extends ProgressEvent {
  elapsedMs: number
}

/**
 * One progress line (no line break), at most `width` characters so that a terminal never wraps it:
 * `[#####.....]  12/49  trace 3/7 fragmentation  best-fit-linear  4.2 s`.
 */
export function formatProgress(state: ProgressState, width = 80): string {
  const barWidth = 20
  const filled = state.total === 0 ? barWidth : Math.round((barWidth * state.done) / state.total)
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`
  const line =
    `${bar} ${String(state.done).padStart(String(state.total).length)}/${state.total}` +
    `  trace ${state.traceIndex + 1}/${state.traceCount} ${state.trace}  ${state.allocator}  ${formatDuration(state.elapsedMs)}`
  return line.length <= width ? line : line.slice(0, Math.max(0, width - 1)) + '…'
}
