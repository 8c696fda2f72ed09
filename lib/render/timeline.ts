/**
 * The timeline of a replay as a standalone SVG: bytes held from the OS and bytes live over the
 * requests, so that the space between the two (free chunks and the top: fragmentation, and what
 * the heap has not given back) shows where it opens up; under it, live ÷ held as a percentage.
 */
import { formatInteger, formatPercent, humanBytes } from './format'
import { escapeXml } from './bench-svg'
import type { TracePictures } from '../replay/replay-pictures'

const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif"
const HEAP_COLOUR = '#f2c48d'
const HEAP_LINE = '#c47a1f'
const LIVE_COLOUR = '#2f6fbf'
const RATIO_COLOUR = '#6a3d9a'
const PEAK_COLOUR = '#c62828'

/** A 1-2-5 step that cuts `range` into about `target` parts. */
function niceStep(range: number, target: number): number {
  if (!(range > 0)) return 1
  const raw = range / target
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const normal = raw / magnitude
  return (normal < 1.5 ? 1 : normal < 3 ? 2 : normal < 7 ? 5 : 10) * magnitude
}

/** Byte ticks at a 1-2-5 step of the binary unit the maximum is best read in (0, 2 MiB, 4 MiB, ...). */
function byteTicks(max: number): { ticks: number[]; label: (value: number) => string } {
  const units: [string, number][] = [['B', 1], ['KiB', 1024], ['MiB', 1024 ** 2], ['GiB', 1024 ** 3]]
  const [unit, size] = units.filter(([, s]) => max >= s).at(-1) ?? units[0]
  const step = Math.max(unit === 'B' ? 1 : 0, niceStep(max / size, 5)) * size
  const ticks: number[] = []
  for (let value = 0; ticks.length < 2 || ticks.at(-1)! < max; value += step) ticks.push(value)
  const label = (value: number): string => (value === 0 ? '0' : `${Number((value / size).toPrecision(4))} ${unit}`)
  return { ticks, label }
}

function opTicks(ops: number): number[] {
  const step = niceStep(ops, 6)
  const ticks: number[] = []
  for (let value = 0; value <= ops; value += step) ticks.push(value)
  return ticks
}

export interface TimelineOptions {
  /** Pixels (default 960). */
  width?: number
  title?: string
}

export function renderTimeline(pictures: TracePictures, options: TimelineOptions = {}): string {
  const width = options.width ?? 960
  const margin = { left: 84, right: 24, top: 64 }
  const plotWidth = width - margin.left - margin.right
  const bytesHeight = 300
  const ratioTop = margin.top + bytesHeight + 52
  const ratioHeight = 90
  const { samples } = pictures
  const lastOp = Math.max(1, samples.at(-1)?.op ?? 1)
  const maxBytes = Math.max(1, ...samples.map((s) => s.heapBytes))
  const yTicks = byteTicks(maxBytes)
  const yMax = yTicks.ticks.at(-1)!
  const x = (op: number): number => margin.left + (op / lastOp) * plotWidth
  const y = (bytes: number): number => margin.top + bytesHeight - (bytes / yMax) * bytesHeight
  const yRatio = (fraction: number): number => ratioTop + ratioHeight - fraction * ratioHeight
  const n = (value: number): string => String(Math.round(value * 10) / 10)
  const out: string[] = []

  const peakLive = samples.reduce((best, s) => Math.max(best, s.liveBytes), 0)
  const title = options.title ?? `${pictures.strategy} replaying ${pictures.trace}: memory held and live over ${formatInteger(pictures.ops)} requests`
  const subtitle =
    `peak held ${humanBytes(pictures.peak.stats.heapBytes)} at request ${formatInteger(pictures.peakOp)}, peak live ${humanBytes(peakLive)} (usable bytes)` +
    `; sampled every ${formatInteger(samples.length > 1 ? samples[1].op - samples[0].op : 1)} requests` +
    (pictures.stopped ? `; stopped at request ${formatInteger(pictures.stopped.op)}: ${pictures.stopped.code}` : '')
  out.push(
    `<text x="${margin.left - 68}" y="26" font-size="16" font-weight="600" fill="#222">${escapeXml(title)}</text>`,
    `<text x="${margin.left - 68}" y="46" font-size="12" fill="#555">${escapeXml(subtitle)}</text>`,
  )

  // Grid and axes.
  for (const tick of yTicks.ticks) {
    out.push(
      `<line x1="${margin.left}" y1="${n(y(tick))}" x2="${margin.left + plotWidth}" y2="${n(y(tick))}" stroke="#e6e6e6"/>`,
      `<text x="${margin.left - 6}" y="${n(y(tick) + 4)}" font-size="11" fill="#555" text-anchor="end">${escapeXml(yTicks.label(tick))}</text>`,
    )
  }
  for (const fraction of [0, 0.5, 1]) {
    out.push(
      `<line x1="${margin.left}" y1="${n(yRatio(fraction))}" x2="${margin.left + plotWidth}" y2="${n(yRatio(fraction))}" stroke="#e6e6e6"/>`,
      `<text x="${margin.left - 6}" y="${n(yRatio(fraction) + 4)}" font-size="11" fill="#555" text-anchor="end">${fraction * 100}%</text>`,
    )
  }
  const bottom = ratioTop + ratioHeight
  for (const tick of opTicks(lastOp)) {
    out.push(
      `<line x1="${n(x(tick))}" y1="${margin.top}" x2="${n(x(tick))}" y2="${margin.top + bytesHeight}" stroke="#f0f0f0"/>`,
      `<line x1="${n(x(tick))}" y1="${ratioTop}" x2="${n(x(tick))}" y2="${bottom}" stroke="#f0f0f0"/>`,
      `<text x="${n(x(tick))}" y="${bottom + 16}" font-size="11" fill="#555" text-anchor="middle">${formatInteger(tick)}</text>`,
    )
  }
  out.push(`<text x="${margin.left + plotWidth / 2}" y="${bottom + 34}" font-size="12" fill="#333" text-anchor="middle">requests done</text>`)

  // The two areas: held (light, with its outline) and live (dark) in front of it.
  const line = (values: (s: (typeof samples)[number]) => number): string =>
    samples.map((s, i) => `${i === 0 ? 'M' : 'L'}${n(x(s.op))},${n(y(values(s)))}`).join('')
  const area = (values: (s: (typeof samples)[number]) => number): string =>
    `${line(values)}L${n(x(lastOp))},${n(y(0))}L${n(x(0))},${n(y(0))}Z`
  out.push(
    `<path d="${area((s) => s.heapBytes)}" fill="${HEAP_COLOUR}" fill-opacity="0.55"/>`,
    `<path d="${line((s) => s.heapBytes)}" fill="none" stroke="${HEAP_LINE}" stroke-width="1.5"/>`,
    `<path d="${area((s) => s.liveBytes)}" fill="${LIVE_COLOUR}" fill-opacity="0.85"/>`,
    `<line x1="${margin.left}" y1="${margin.top + bytesHeight}" x2="${margin.left + plotWidth}" y2="${margin.top + bytesHeight}" stroke="#333"/>`,
  )
  // live ÷ held.
  const ratioPath = samples
    .filter((s) => s.heapBytes > 0)
    .map((s, i) => `${i === 0 ? 'M' : 'L'}${n(x(s.op))},${n(yRatio(Math.min(1, s.liveBytes / s.heapBytes)))}`)
    .join('')
  out.push(
    `<path d="${ratioPath}" fill="none" stroke="${RATIO_COLOUR}" stroke-width="1.5"/>`,
    `<line x1="${margin.left}" y1="${bottom}" x2="${margin.left + plotWidth}" y2="${bottom}" stroke="#333"/>`,
    `<text x="${margin.left}" y="${ratioTop - 8}" font-size="12" fill="${RATIO_COLOUR}">live ÷ held</text>`,
  )

  // The peak the heap map shows, labelled below the plot's top edge, on the side with room.
  const peakX = x(pictures.peakOp)
  const leftOfLine = peakX > margin.left + plotWidth / 2
  out.push(
    `<line x1="${n(peakX)}" y1="${margin.top}" x2="${n(peakX)}" y2="${bottom}" stroke="${PEAK_COLOUR}" stroke-width="1" stroke-dasharray="4 3"/>`,
    `<text x="${n(peakX + (leftOfLine ? -6 : 6))}" y="${margin.top + bytesHeight + 16}" font-size="11" fill="${PEAK_COLOUR}"${leftOfLine ? ' text-anchor="end"' : ''}>${escapeXml(`peak: ${humanBytes(pictures.peak.stats.heapBytes)} held (the moment --map draws)`)}</text>`,
  )

  // Legend, top right inside the plot.
  const legendX = margin.left + 12
  const legendY = margin.top + 30
  // A peak without its chunks (`run --timeline` without a snapshot) says nothing of them.
  const atPeak = pictures.peak.stats.heapBytes > 0 && pictures.peak.chunks.length > 0 ? pictures.peak.chunks.reduce((sum, c) => (c.state === 'live' ? sum + c.size : sum), 0) / pictures.peak.stats.heapBytes : null
  const entries: [string, string][] = [
    [HEAP_COLOUR, 'held from the OS (heap bytes)'],
    [LIVE_COLOUR, 'live (usable bytes of chunks in use)'],
  ]
  entries.forEach(([colour, text], i) => {
    out.push(
      `<rect x="${legendX}" y="${legendY + i * 18 - 10}" width="14" height="12" fill="${colour}"/>`,
      `<text x="${legendX + 20}" y="${legendY + i * 18}" font-size="12" fill="#333">${escapeXml(text)}</text>`,
    )
  })
  out.push(
    `<text x="${legendX}" y="${legendY + 2 * 18}" font-size="11" fill="#555">${escapeXml(`between them: free chunks and the top${atPeak === null ? '' : `; at the peak ${formatPercent(atPeak)} of what is held is live`}`)}</text>`,
  )
  const height = bottom + 48
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}">\n` +
    `<title>${escapeXml(title)}</title>\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n` +
    out.join('\n') +
    '\n</svg>\n'
  )
}
