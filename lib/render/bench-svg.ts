/**
 * A self-contained SVG chart of a bench report (no scripts, no external fonts or images): one row
 * group per trace plus a geometric-mean group, with two panels that share the rows.
 *   left:  time per request relative to libc on a log scale, bars growing from the 1× line (or
 *          ns/op on a log scale when libc was not run);
 *   right: utilization (peak live / peak heap), 0-100%.
 * Every bar carries a <title> tooltip with the exact figures.
 */
import { LIBC, failureLabel, formatInteger, formatNumber, formatPercent, humanBytes } from './format'
import type { AllocatorSummary, BenchReport, BenchResult } from '../bench/types'

const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif"

/** Okabe-Ito colours, fixed per allocator so that charts of different runs agree. */
const ALLOCATOR_COLOURS: Record<string, string> = {
  'best-fit': '#0072B2',
  'best-fit-linear': '#56B4E9',
  'first-fit': '#009E73',
  'next-fit': '#E69F00',
  'worst-fit': '#D55E00',
  bump: '#CC79A7',
  libc: '#666666',
}
const SPARE_COLOURS = ['#332288', '#117733', '#882255', '#999933', '#44AA99', '#AA4499']

export function allocatorColour(allocator: string, index: number): string {
  return ALLOCATOR_COLOURS[allocator] ?? SPARE_COLOURS[index % SPARE_COLOURS.length]
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

/** Rough advance width of `text` at `size` px in a sans-serif face; enough for layout. */
function textWidth(text: string, size: number): number {
  return text.length * size * 0.6
}

function n(value: number): string {
  return String(Math.round(value * 10) / 10)
}

/** A log axis on 1-2-5 steps (or decades when that would be too many ticks) covering [min, max]. */
export function logTicks(min: number, max: number): number[] {
  const low = Math.min(min, max)
  const high = Math.max(min, max)
  const candidates = (steps: number[]): number[] => {
    const list: number[] = []
    for (let e = Math.floor(Math.log10(low)) - 1; e <= Math.ceil(Math.log10(high)) + 1; e++) {
      for (const step of steps) list.push(Number((step * 10 ** e).toPrecision(12)))
    }
    return list
  }
  const cover = (list: number[]): number[] => {
    const lo = Math.max(...list.filter((value) => value <= low * (1 + 1e-9)))
    const hi = Math.min(...list.filter((value) => value >= high * (1 - 1e-9)))
    const ticks = list.filter((value) => value >= lo && value <= hi)
    return ticks.length >= 2 ? ticks : [lo, list[list.indexOf(lo) + 1]]
  }
  const fine = cover(candidates([1, 2, 5]))
  if (fine.length <= 9) return fine
  // Too many 1-2-5 steps: keep the tight 1-2-5 ends, label only the decades between them.
  const lo = fine[0]
  const hi = fine[fine.length - 1]
  const decades = candidates([1]).filter((value) => value > lo && value < hi)
  const ticks = [lo, ...decades, hi]
  // Drop a decade that would crowd an end label (closer than a third of a decade).
  return ticks.filter((value, i) => i === 0 || i === ticks.length - 1 || (Math.log10(value / lo) > 0.34 && Math.log10(hi / value) > 0.34) || value === 1)
}

/**
 * Where the time axis may stop: a few extreme values (bump copying on every realloc runs
 * thousands of times slower than libc) would otherwise squeeze every other bar into a corner.
 * Infinity when nothing stands out: the top 2% of values is cut only when it reaches beyond three
 * times the rest.
 */
export function axisCap(values: readonly number[]): number {
  if (values.length < 10) return Infinity
  const sorted = [...values].sort((a, b) => a - b)
  const typical = sorted[Math.floor(0.98 * (sorted.length - 1))]
  return sorted[sorted.length - 1] > 3 * typical ? typical : Infinity
}

interface ScaleLabels {
  tick(value: number): string
  value(value: number): string
}

interface Scale extends ScaleLabels {
  ticks: number[]
  x(value: number): number
}

function logScale(ticks: number[], x0: number, width: number, labels: ScaleLabels): Scale {
  const lo = Math.log(ticks[0])
  const span = Math.log(ticks[ticks.length - 1]) - lo
  return { ticks, x: (value) => x0 + ((Math.log(value) - lo) / span) * width, ...labels }
}

function linearScale(ticks: number[], x0: number, width: number, labels: ScaleLabels): Scale {
  const lo = ticks[0]
  const span = ticks[ticks.length - 1] - lo
  return { ticks, x: (value) => x0 + ((value - lo) / span) * width, ...labels }
}

/** Tick labels: the shortest spelling of a 1-2-5 value ("0.5×", "10×", "2,000 ns"). */
function tickNumber(value: number): string {
  return value >= 1000 ? formatInteger(value) : String(Number(value.toPrecision(3)))
}

const ratioScaleLabels = { tick: (v: number) => `${tickNumber(v)}×`, value: (v: number) => `${formatNumber(v)}×` }
const nsScaleLabels = { tick: (v: number) => `${tickNumber(v)} ns`, value: (v: number) => `${formatNumber(v)} ns` }

export interface SvgContext {
  /** Shown under the title, after the options (e.g. Node version and CPU). */
  subtitle?: string
}

/** One bar of a row group: a value or a failure for one allocator. */
interface Cell {
  allocator: string
  /** Appended to the value labels (the summary group's "(10/13)" when traces failed). */
  suffix?: string
  colour: string
  time: number | null
  utilization: number | null
  failed: string | null
  tooltip: string
}

interface Group {
  label: string
  isSummary: boolean
  cells: Cell[]
}

function tooltipFor(result: BenchResult): string {
  if (result.failed !== null) return `${result.allocator} on ${result.trace}: failed (${result.failed})`
  const parts = [`${result.allocator} on ${result.trace}: ${formatNumber(result.nsPerOp)} ns/op`]
  if (result.ratioToLibc !== null) parts.push(`${formatNumber(result.ratioToLibc)}× libc`)
  if (result.utilization !== null) parts.push(`utilization ${formatPercent(result.utilization)}`)
  if (result.peakHeapBytes !== null) parts.push(`peak heap ${humanBytes(result.peakHeapBytes)}`)
  parts.push(`peak live ${humanBytes(result.peakLiveBytes)}`)
  return parts.join(', ')
}

/** Renders the chart. `summary` supplies the geometric-mean group. */
export function renderSvg(report: BenchReport, summary: readonly AllocatorSummary[], context: SvgContext = {}): string {
  const { options } = report
  const hasLibc = options.allocators.includes(LIBC) && report.results.some((r) => r.allocator === LIBC && r.failed === null)
  const ratioMode = hasLibc && options.allocators.some((a) => a !== LIBC)
  const plotted = ratioMode ? options.allocators.filter((a) => a !== LIBC) : [...options.allocators]
  const colours = new Map(plotted.map((allocator, index) => [allocator, allocatorColour(allocator, index)]))

  const groups: Group[] = report.traces.map((trace) => ({
    label: trace.name,
    isSummary: false,
    cells: plotted.map((allocator) => {
      const result = report.results.find((r) => r.trace === trace.name && r.allocator === allocator)
      return {
        allocator,
        colour: colours.get(allocator)!,
        time: result === undefined || result.failed !== null ? null : ratioMode ? result.ratioToLibc : result.nsPerOp,
        utilization: result?.utilization ?? null,
        failed: result?.failed ?? (result === undefined ? 'missing' : null),
        tooltip: result === undefined ? `${allocator} on ${trace.name}: not run` : tooltipFor(result),
      }
    }),
  }))
  if (report.traces.length > 1) {
    groups.push({
      label: 'geometric mean',
      isSummary: true,
      cells: plotted.map((allocator) => {
        const entry = summary.find((s) => s.allocator === allocator)
        const time = (ratioMode ? entry?.geomeanRatioToLibc : entry?.geomeanNsPerOp) ?? null
        const excluded = entry && entry.failed.length > 0 ? ` (excludes ${entry.failed.length} failed)` : ''
        return {
          allocator,
          suffix: entry && entry.failed.length > 0 ? ` (${entry.traces}/${entry.traces + entry.failed.length})` : '',
          colour: colours.get(allocator)!,
          time,
          utilization: entry?.geomeanUtilization ?? null,
          failed: null,
          tooltip:
            `${allocator}, geometric mean over ${entry?.traces ?? 0} traces${excluded}: ` +
            `${ratioMode ? `${formatNumber(time)}× libc` : `${formatNumber(time)} ns/op`}, utilization ${formatPercent(entry?.geomeanUtilization)}`,
        }
      }),
    })
  }

  // Layout.
  const margin = 20
  const barCount = Math.max(1, groups.length * plotted.length)
  const barHeight = barCount <= 60 ? 12 : barCount <= 140 ? 10 : 8
  const barGap = 1
  const groupPad = 7
  const valueFont = Math.min(9, barHeight - 1)
  const groupHeight = plotted.length * (barHeight + barGap) - barGap + 2 * groupPad
  const labelWidth = Math.min(240, Math.max(100, ...groups.map((g) => textWidth(g.label, 11) + 24)))
  const valuePad = 40
  const timeX = margin + labelWidth + valuePad
  const timeWidth = 500
  const utilX = timeX + timeWidth + valuePad + 48
  const utilWidth = 280
  const width = Math.ceil(utilX + utilWidth + valuePad + margin)

  const out: string[] = []
  const title = 'memory-allocator bench'
  const optionText =
    `${report.traces.length} trace${report.traces.length === 1 ? '' : 's'} · repeat ${options.repeat} (median) · ` +
    `touch ${options.touch ? 'on' : 'off'} · growth ${formatInteger(options.growth)} B`
  let y = margin + 14
  out.push(`<text x="${margin}" y="${y}" font-size="17" font-weight="bold">${escapeXml(title)}</text>`)
  y += 18
  out.push(`<text x="${margin}" y="${y}" font-size="11" fill="#444">${escapeXml(optionText)}</text>`)
  if (context.subtitle) {
    y += 15
    out.push(`<text x="${margin}" y="${y}" font-size="11" fill="#444">${escapeXml(context.subtitle)}</text>`)
  }

  // Legend, wrapped to the chart width.
  y += 24
  let legendX = margin
  const legendItem = (widthNeeded: number): void => {
    if (legendX + widthNeeded > width - margin && legendX > margin) {
      legendX = margin
      y += 18
    }
  }
  for (const allocator of plotted) {
    const itemWidth = 18 + textWidth(allocator, 11) + 18
    legendItem(itemWidth)
    out.push(
      `<rect x="${n(legendX)}" y="${n(y - 10)}" width="12" height="12" rx="2" fill="${colours.get(allocator)}"/>`,
      `<text x="${n(legendX + 17)}" y="${n(y)}" font-size="11">${escapeXml(allocator)}</text>`,
    )
    legendX += itemWidth
  }
  if (ratioMode) {
    const text = 'libc (1×, the process malloc)'
    legendItem(28 + textWidth(text, 11))
    out.push(
      `<line x1="${n(legendX + 6)}" y1="${n(y - 11)}" x2="${n(legendX + 6)}" y2="${n(y + 2)}" stroke="#222" stroke-width="1.3" stroke-dasharray="3 2"/>`,
      `<text x="${n(legendX + 17)}" y="${n(y)}" font-size="11">${escapeXml(text)}</text>`,
    )
  }

  // Panel titles and scales.
  y += 30
  const timeValues = groups.flatMap((g) => g.cells.map((c) => c.time)).filter((v): v is number => v !== null && v > 0)
  const timeCap = axisCap(timeValues)
  const timeScale = ratioMode
    ? logScale(logTicks(Math.min(1, ...timeValues), Math.max(1, Math.min(timeCap, Math.max(...timeValues)))), timeX, timeWidth, ratioScaleLabels)
    : logScale(logTicks(Math.min(...timeValues, 1e9), Math.max(1, Math.min(timeCap, Math.max(...timeValues)))), timeX, timeWidth, nsScaleLabels)
  const timeMax = timeScale.ticks[timeScale.ticks.length - 1]
  const anyCut = timeValues.some((v) => v > timeMax)
  const utilScale = linearScale([0, 0.25, 0.5, 0.75, 1], utilX, utilWidth, {
    tick: (v) => `${Math.round(v * 100)}%`,
    value: (v) => formatPercent(v),
  })
  const timeTitle = ratioMode
    ? 'Time per request ÷ libc (log scale; left of 1× = faster than libc)'
    : 'Time per request, ns (log scale; shorter = faster)'
  out.push(
    `<text x="${timeX}" y="${y}" font-size="12" font-weight="bold">${escapeXml(timeTitle)}</text>`,
    `<text x="${utilX}" y="${y}" font-size="12" font-weight="bold">${escapeXml('Utilization: peak live ÷ peak heap')}</text>`,
  )
  y += 20
  const axisLabelsTop = y
  const plotTop = y + 6
  const plotBottom = plotTop + groups.length * groupHeight
  const plotLeft = margin
  const plotRight = width - margin

  // Row bands, behind everything else.
  const bands: string[] = []
  groups.forEach((group, index) => {
    const top = plotTop + index * groupHeight
    if (group.isSummary) {
      bands.push(`<rect x="${plotLeft}" y="${n(top)}" width="${n(plotRight - plotLeft)}" height="${n(groupHeight)}" fill="#e8eef8"/>`)
      bands.push(`<line x1="${plotLeft}" y1="${n(top)}" x2="${plotRight}" y2="${n(top)}" stroke="#8899bb" stroke-width="1"/>`)
    } else if (index % 2 === 1) {
      bands.push(`<rect x="${plotLeft}" y="${n(top)}" width="${n(plotRight - plotLeft)}" height="${n(groupHeight)}" fill="#f4f5f7"/>`)
    }
  })
  out.push(...bands)

  // Grid and tick labels, top and bottom.
  const axis = (scale: Scale): void => {
    for (const tick of scale.ticks) {
      const x = scale.x(tick)
      out.push(`<line x1="${n(x)}" y1="${n(plotTop)}" x2="${n(x)}" y2="${n(plotBottom)}" stroke="#d9d9d9" stroke-width="1"/>`)
      for (const labelY of [axisLabelsTop, plotBottom + 14]) {
        out.push(`<text x="${n(x)}" y="${n(labelY)}" font-size="10" fill="#555" text-anchor="middle">${escapeXml(scale.tick(tick))}</text>`)
      }
    }
  }
  axis(timeScale)
  axis(utilScale)

  // Bars.
  const base = ratioMode ? timeScale.x(1) : timeScale.x(timeScale.ticks[0])
  groups.forEach((group, groupIndex) => {
    const top = plotTop + groupIndex * groupHeight
    const labelY = top + groupHeight / 2 + 4
    out.push(
      `<text x="${n(margin + labelWidth - 12)}" y="${n(labelY)}" font-size="11" text-anchor="end"${group.isSummary ? ' font-weight="bold"' : ''}>${escapeXml(group.label)}</text>`,
    )
    group.cells.forEach((cell, cellIndex) => {
      const barY = top + groupPad + cellIndex * (barHeight + barGap)
      const textY = barY + barHeight / 2 + valueFont * 0.35
      const tooltip = `<title>${escapeXml(cell.tooltip)}</title>`
      if (cell.failed !== null) {
        const label = cell.failed === 'missing' ? 'not run' : failureLabel(cell.failed)
        for (const x of [base, utilScale.x(0)]) {
          out.push(
            `<text x="${n(x + 3)}" y="${n(textY)}" font-size="${valueFont}" font-style="italic" fill="#b00020">${escapeXml(label)}${tooltip}</text>`,
          )
        }
        return
      }
      if (cell.time !== null && cell.time > 0) {
        const cut = cell.time > timeMax
        const end = timeScale.x(Math.min(cell.time, timeMax))
        const x = Math.min(base, end)
        const w = Math.max(1, Math.abs(end - base))
        const text = timeScale.value(cell.time) + (cell.suffix ?? '')
        const right = end >= base
        out.push(
          `<rect x="${n(x)}" y="${n(barY)}" width="${n(w)}" height="${barHeight}" fill="${cell.colour}">${tooltip}</rect>`,
          `<text x="${n(right ? x + w + 3 : x - 3)}" y="${n(textY)}" font-size="${valueFont}" fill="#333"${right ? '' : ' text-anchor="end"'}${cut ? ' font-weight="bold"' : ''}>${escapeXml(text)}</text>`,
        )
        if (cut) {
          // A break mark: the bar is longer than the axis.
          for (const dx of [-14, -10]) {
            out.push(`<line x1="${n(x + w + dx - 2)}" y1="${n(barY + barHeight + 1)}" x2="${n(x + w + dx + 2)}" y2="${n(barY - 1)}" stroke="#ffffff" stroke-width="2"/>`)
          }
        }
      }
      if (cell.utilization !== null) {
        const u = Math.min(1, Math.max(0, cell.utilization))
        const w = Math.max(1, utilScale.x(u) - utilScale.x(0))
        out.push(
          `<rect x="${n(utilScale.x(0))}" y="${n(barY)}" width="${n(w)}" height="${barHeight}" fill="${cell.colour}">${tooltip}</rect>`,
          `<text x="${n(utilScale.x(0) + w + 3)}" y="${n(textY)}" font-size="${valueFont}" fill="#333">${escapeXml(utilScale.value(cell.utilization) + (cell.suffix ?? ''))}</text>`,
        )
      }
    })
  })
  if (ratioMode) {
    out.push(`<line x1="${n(base)}" y1="${n(plotTop - 4)}" x2="${n(base)}" y2="${n(plotBottom)}" stroke="#222" stroke-width="1.3" stroke-dasharray="4 3"/>`)
  }
  if (groups.length === 0) {
    out.push(`<text x="${timeX}" y="${n(plotTop + 20)}" font-size="12" fill="#555">No traces were run.</text>`)
  }

  // Notes.
  y = plotBottom + 36
  const notes: string[] = []
  const partial = summary.find((entry) => entry.failed.length > 0 && plotted.includes(entry.allocator))
  if (groups.some((g) => g.isSummary) && partial !== undefined) {
    // Explain the suffix with a figure the chart really shows.
    const of = partial.traces + partial.failed.length
    notes.push(`Geometric means are over the traces each allocator completed; failed traces are left out of them ("(${partial.traces}/${of})": ${partial.traces} of ${of} traces).`)
  }
  for (const entry of summary) {
    if (entry.failed.length > 0 && plotted.includes(entry.allocator)) {
      notes.push(`${entry.allocator} failed on: ${entry.failed.map((f) => `${f.trace} (${failureLabel(f.code)})`).join(', ')}`)
    }
  }
  if (anyCut) notes.push(`Bars with a break mark go beyond the axis (${timeScale.tick(timeMax)}); their labels give the value.`)
  if (options.growth !== 0) notes.push(`Heap growth ${formatInteger(options.growth)} B per break move; the malloc-lab accounting wants --growth 0.`)
  for (const skipped of report.skipped) notes.push(`Skipped ${skipped.name}: ${skipped.reason}.`)
  for (const note of notes) {
    out.push(`<text x="${margin}" y="${n(y)}" font-size="10" fill="#555">${escapeXml(note)}</text>`)
    y += 14
  }
  const height = Math.ceil(y + margin - 8)

  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT)}">\n` +
    `<title>${escapeXml(`${title}: ${optionText}`)}</title>\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n` +
    out.join('\n') +
    '\n</svg>\n'
  )
}
