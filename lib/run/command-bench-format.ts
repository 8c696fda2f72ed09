/**
 * How `bench -- COMMAND` shows its report: the text table (the trace bench's table layout and
 * number formats), CSV, and an SVG chart of each allocator's wall time, CPU time and peak RSS
 * relative to libc. Pure functions: no I/O.
 */
import { LIBC, NOT_APPLICABLE, formatNumber, formatTable, humanBytes, toCsv, type Column } from '../render/format'
import { allocatorColour, escapeXml } from '../render/bench-svg'
import type { CommandBenchReport, CommandBenchRow } from './command-bench'
import { commandText } from './pictures'

const COLUMNS: Column[] = [
  { header: 'allocator', align: 'left' },
  { header: 'wall', align: 'right' },
  { header: '×libc', align: 'right' },
  { header: 'cpu', align: 'right' },
  { header: '×libc', align: 'right' },
  { header: 'peak RSS', align: 'right' },
  { header: '×libc', align: 'right' },
  { header: 'output', align: 'left' },
]

/** 0.0123 s -> "12.3 ms"; 1.5 s -> "1.50 s". */
export function formatSeconds(ns: number | null): string {
  if (ns === null) return NOT_APPLICABLE
  return ns >= 1e9 ? `${formatNumber(ns / 1e9)} s` : `${formatNumber(ns / 1e6)} ms`
}

function outputCell(row: CommandBenchRow, report: CommandBenchReport): string {
  if (row.allocator === LIBC) return report.libcOutputVaries ? 'varies' : row.failed === null ? 'reference' : NOT_APPLICABLE
  return row.output === 'same' ? 'same' : row.output === 'differs' ? 'DIFFERS' : NOT_APPLICABLE
}

export function commandBenchRow(row: CommandBenchRow, report: CommandBenchReport): string[] {
  if (row.failed !== null) return [row.allocator, `failed: ${row.failed}`, ...Array<string>(COLUMNS.length - 3).fill(''), outputCell(row, report)]
  return [
    row.allocator,
    formatSeconds(row.wallNs),
    formatNumber(row.wallRatioToLibc),
    formatSeconds(row.cpuNs),
    formatNumber(row.cpuRatioToLibc),
    humanBytes(row.maxRssBytes),
    formatNumber(row.rssRatioToLibc),
    outputCell(row, report),
  ]
}

export function formatCommandBenchTable(report: CommandBenchReport): string {
  const count = report.rows.length
  const out = [
    `memory-allocator bench: ${commandText(report.command, 70)}`,
    `${count} allocator${count === 1 ? '' : 's'}, ${report.repeat} run${report.repeat === 1 ? '' : 's'} each, interleaved; medians`,
    '',
    formatTable(COLUMNS, report.rows.map((row) => commandBenchRow(row, report))),
    '',
    'wall: from fork to exit.  cpu: user + system time.  peak RSS: the largest resident set of',
    'the command (or of a process it waited for).  ×libc: ÷ the libc row.  output: stdout',
    'compared with libc\'s.',
  ]
  if (report.libcOutputVaries) out.push("libc's own runs wrote different output, so no row's output could be compared.")
  for (const row of report.rows) {
    if (row.failed !== null && row.failureStderr) out.push('', `${row.allocator} failed (${row.failed}); the end of its stderr:`, row.failureStderr.trimEnd())
  }
  return out.join('\n') + '\n'
}

export const COMMAND_CSV_HEADER = [
  'allocator',
  'runs',
  'wall_ns',
  'wall_ratio_to_libc',
  'cpu_ns',
  'cpu_ratio_to_libc',
  'peak_rss_bytes',
  'rss_ratio_to_libc',
  'output',
  'failed',
] as const

export function formatCommandBenchCsv(report: CommandBenchReport): string {
  return toCsv([
    COMMAND_CSV_HEADER,
    ...report.rows.map((row) => [
      row.allocator,
      row.runs.length,
      row.wallNs,
      row.wallRatioToLibc,
      row.cpuNs,
      row.cpuRatioToLibc,
      row.maxRssBytes,
      row.rssRatioToLibc,
      row.output,
      row.failed,
    ]),
  ])
}

const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif"

/**
 * Three panels side by side (wall, CPU, peak RSS), one bar per allocator, each the allocator's
 * median ÷ libc's on a linear axis from 0 with the 1× line marked; without a libc row, the
 * medians themselves. A failed row is named and has no bar.
 */
export function renderCommandBenchSvg(report: CommandBenchReport, context: { subtitle?: string } = {}): string {
  const hasLibc = report.rows.some((row) => row.allocator === LIBC && row.failed === null)
  const panels: { name: string; value: (row: CommandBenchRow) => number | null; label: (row: CommandBenchRow) => string }[] = [
    { name: 'wall time', value: (row) => (hasLibc ? row.wallRatioToLibc : row.wallNs), label: (row) => formatSeconds(row.wallNs) },
    { name: 'CPU time', value: (row) => (hasLibc ? row.cpuRatioToLibc : row.cpuNs), label: (row) => formatSeconds(row.cpuNs) },
    { name: 'peak RSS', value: (row) => (hasLibc ? row.rssRatioToLibc : row.maxRssBytes), label: (row) => humanBytes(row.maxRssBytes) },
  ]
  const labelWidth = 130
  const panelWidth = 250
  const gap = 30
  const barHeight = 18
  const rowHeight = 26
  const top = 78
  const width = labelWidth + panels.length * (panelWidth + gap) + 10
  const height = top + report.rows.length * rowHeight + 40
  const n = (value: number): string => String(Math.round(value * 10) / 10)
  const out: string[] = []
  out.push(
    `<text x="10" y="24" font-size="16" font-weight="600" fill="#222">${escapeXml(`bench: ${commandText(report.command, 80)}`)}</text>`,
    `<text x="10" y="44" font-size="12" fill="#555">${escapeXml(
      `${hasLibc ? 'median ÷ libc' : 'medians'} of ${report.repeat} interleaved run${report.repeat === 1 ? '' : 's'}${context.subtitle ? ` · ${context.subtitle}` : ''}`,
    )}</text>`,
  )
  report.rows.forEach((row, i) => {
    const y = top + i * rowHeight
    out.push(`<text x="${labelWidth - 8}" y="${n(y + barHeight / 2 + 4)}" font-size="12" fill="#222" text-anchor="end">${escapeXml(row.allocator)}</text>`)
  })
  panels.forEach((panel, p) => {
    const left = labelWidth + p * (panelWidth + gap)
    const values = report.rows.map(panel.value).filter((value): value is number => value !== null)
    const max = Math.max(hasLibc ? 1 : 0, ...values) * 1.15 || 1
    const x = (value: number): number => left + (value / max) * panelWidth
    out.push(`<text x="${left}" y="${top - 14}" font-size="13" font-weight="600" fill="#333">${escapeXml(panel.name)}</text>`)
    out.push(`<line x1="${left}" y1="${top - 4}" x2="${left}" y2="${top + report.rows.length * rowHeight}" stroke="#333"/>`)
    if (hasLibc) {
      out.push(
        `<line x1="${n(x(1))}" y1="${top - 4}" x2="${n(x(1))}" y2="${top + report.rows.length * rowHeight}" stroke="#999" stroke-dasharray="4 3"/>`,
        `<text x="${n(x(1))}" y="${top + report.rows.length * rowHeight + 14}" font-size="11" fill="#555" text-anchor="middle">1× libc</text>`,
      )
    }
    report.rows.forEach((row, i) => {
      const y = top + i * rowHeight
      const value = panel.value(row)
      if (value === null) {
        out.push(`<text x="${left + 4}" y="${n(y + barHeight / 2 + 4)}" font-size="11" fill="#b00020">${escapeXml(row.failed === null ? '—' : 'failed')}</text>`)
        return
      }
      const text = hasLibc ? `${formatNumber(value)}× (${panel.label(row)})` : panel.label(row)
      const barWidth = Math.max(1, x(value) - left)
      // The figure inside a bar long enough to hold it (white on the colour), else just past it.
      const inside = barWidth > text.length * 6.2 + 8
      out.push(
        `<rect x="${left}" y="${y}" width="${n(barWidth)}" height="${barHeight}" fill="${allocatorColour(row.allocator, i)}"><title>${escapeXml(`${row.allocator}: ${text}`)}</title></rect>`,
        `<text x="${n(inside ? left + barWidth - 4 : left + barWidth + 4)}" y="${n(y + barHeight / 2 + 4)}" font-size="11" fill="${inside ? '#ffffff' : '#222'}"${inside ? ' text-anchor="end"' : ''}>${escapeXml(text)}</text>`,
      )
    })
  })
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}">\n` +
    `<title>${escapeXml(`bench: ${commandText(report.command, 80)}`)}</title>\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n` +
    out.join('\n') +
    '\n</svg>\n'
  )
}
