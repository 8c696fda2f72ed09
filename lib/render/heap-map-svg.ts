/**
 * The heap map as a standalone SVG (no scripts, images or web fonts): rows of address space, a
 * legend, the break, and each row's share of free bytes. Few regions get a rectangle and a
 * tooltip each; many are drawn compactly, so a heap of 20,000 chunks stays a small file.
 */
import { formatInteger, humanBytes } from './format'
import { escapeXml } from './bench-svg'
import {
  KINDS,
  LABELS,
  defaultTitle,
  endName,
  hex,
  layoutHeapMap,
  legendEntry,
  legendKinds,
  regionPieces,
  rowStartOffsets,
  summaryLine,
  type HeapSnapshot,
  type MapRegion,
  type Piece,
  type RegionKind,
} from './heap-map-layout'

const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif"
const MONO = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace"

const FILLS: Record<RegionKind, [string, string]> = {
  live: ['#2f6fbf', '#5b93d6'],
  free: ['#f08c2e', '#f5aa62'],
  deferred: ['#e3c92f', '#eed866'],
  held: ['#a05cc0', '#b97fd4'],
  top: ['#cfe8c8', '#cfe8c8'],
  padding: ['#f2f2f2', '#f2f2f2'],
  foreign: ['url(#foreign)', 'url(#foreign)'],
}

/** Regions narrower than this many pixels get no outline: at that size outlines would be all there is. */
const MIN_OUTLINED_WIDTH = 4
/** Up to this many regions each is drawn with its own tooltip; beyond, compactly (no tooltips). */
const MAX_DETAILED_REGIONS = 400

export function renderSvgMap(snapshot: HeapSnapshot, options: { width: number; title: string | undefined }): string {
  const margin = 16
  const labelWidth = 92
  const shareWidth = 64
  const plotWidth = options.width - 2 * margin - labelWidth - shareWidth
  const layout = layoutHeapMap(snapshot, plotWidth, 10)
  const rows = layout.rows
  // Many rows (a heap of thousands of chunks) get thinner, so the picture stays on a screen or two.
  const rowHeight = rows > 12 ? 14 : 24
  const rowGap = rows > 12 ? 4 : 8
  const n = (value: number): string => String(Math.round(value * 10) / 10)
  const out: string[] = []
  const title = options.title ?? defaultTitle(snapshot)
  out.push(
    `<text x="${margin}" y="26" font-size="16" font-weight="600" fill="#222">${escapeXml(title)}</text>`,
    `<text x="${margin}" y="46" font-size="12" fill="#555">${escapeXml(`${summaryLine(snapshot)} · 1 px = ${humanBytes(layout.scale)}; every chunk at least 1 px wide`)}</text>`,
  )
  const top = 64
  const rowY = (row: number): number => top + row * (rowHeight + rowGap)
  const plotX = margin + labelWidth

  // Row labels: the byte offset from heapStart where the row begins.
  const labels = rowStartOffsets(layout).map(
    (offset, row) => `<text x="${plotX - 8}" y="${n(rowY(row) + rowHeight / 2 + 4)}">+${hex(offset)}</text>`,
  )
  out.push(`<g font-size="11" font-family="${escapeXml(MONO)}" fill="#555" text-anchor="end">`, ...labels, '</g>')
  const pieces = (region: MapRegion): Piece[] => regionPieces(region, plotWidth)

  if (layout.regions.length <= MAX_DETAILED_REGIONS) {
    // Few regions: each its own rectangle with a tooltip, outlined where it is wide enough.
    for (const region of layout.regions) {
      const tip = `<title>${escapeXml(regionTooltip(snapshot, region))}</title>`
      for (const piece of pieces(region)) {
        const stroke = piece.width >= MIN_OUTLINED_WIDTH ? ' stroke="#ffffff" stroke-width="1"' : ''
        out.push(`<rect x="${plotX + piece.column}" y="${rowY(piece.row)}" width="${piece.width}" height="${rowHeight}" fill="${FILLS[region.kind][region.shade]}"${stroke}>${tip}</rect>`)
      }
    }
  } else {
    // Many regions: live chunks lie under everything as one bar per row, and each other kind is one
    // path of row-high strokes, so 20,000 chunks cost a few kilobytes rather than a megabyte.
    for (let row = 0; row < rows; row++) {
      const width = Math.min(plotWidth, layout.units - row * plotWidth)
      out.push(`<rect x="${plotX}" y="${rowY(row)}" width="${width}" height="${rowHeight}" fill="${FILLS.live[0]}"/>`)
    }
    for (const kind of KINDS) {
      if (kind === 'live' || layout.totals[kind].count === 0) continue
      let d = ''
      let at: { x: number; y: number } | undefined
      for (const region of layout.regions) {
        if (region.kind !== kind) continue
        for (const piece of pieces(region)) {
          const x = plotX + piece.column
          const y = rowY(piece.row) + rowHeight / 2
          d += at !== undefined && at.y === y ? `m${x - at.x} 0h${piece.width}` : `M${x} ${y}h${piece.width}`
          at = { x: x + piece.width, y }
        }
      }
      out.push(`<path d="${d}" fill="none" stroke="${FILLS[kind][0]}" stroke-width="${rowHeight}"/>`)
    }
  }
  // Each row's share of free bytes, on the right: the barcode of a fragmented heap, in figures.
  const rowBytes = new Float64Array(rows)
  const rowFree = new Float64Array(rows)
  for (const region of layout.regions) {
    if (region.kind === 'foreign' || region.kind === 'padding') continue
    for (const piece of pieces(region)) {
      const bytes = (region.bytes * piece.width) / region.units
      rowBytes[piece.row] += bytes
      if (region.kind === 'free' || region.kind === 'deferred') rowFree[piece.row] += bytes
    }
  }
  const shares: string[] = []
  for (let row = 0; row < rows; row++) {
    if (rowBytes[row] === 0) continue
    const percent = (100 * rowFree[row]) / rowBytes[row]
    const text = percent === 0 ? '0%' : percent < 1 ? '<1%' : `${Math.round(percent)}%`
    shares.push(`<text x="${plotX + plotWidth + 8}" y="${n(rowY(row) + rowHeight / 2 + 4)}">${escapeXml(text)}</text>`)
  }
  out.push(
    `<text x="${plotX + plotWidth + 8}" y="${top - 6}" font-size="10" fill="#777">free</text>`,
    `<g font-size="11" fill="${FILLS.free[0]}">`,
    ...shares,
    '</g>',
  )

  for (const region of layout.regions) {
    if (!region.shortened) continue
    const [piece] = pieces(region)
    out.push(`<text x="${n(plotX + piece.column + piece.width / 2)}" y="${n(rowY(piece.row) + rowHeight / 2 + 4)}" font-size="11" fill="#8a1c1c" text-anchor="middle">≈</text>`)
  }

  // The break (or the end of the used region), after the last unit.
  const lastRow = rows - 1
  const endX = plotX + (layout.units - lastRow * plotWidth)
  out.push(
    `<line x1="${endX}" y1="${rowY(lastRow) - 4}" x2="${endX}" y2="${rowY(lastRow) + rowHeight + 4}" stroke="#c62828" stroke-width="2"/>`,
    `<text x="${endX + 4}" y="${rowY(lastRow) + rowHeight + 14}" font-size="11" fill="#c62828"${endX > options.width - 140 ? ' text-anchor="end"' : ''}>${escapeXml(endName(snapshot))}</text>`,
  )

  // Legend.
  let y = rowY(rows) + 24
  let x = margin
  for (const kind of legendKinds(layout)) {
    const text = legendEntry(layout, kind)
    const itemWidth = 22 + text.length * 6.4 + 18
    if (x + itemWidth > options.width - margin) {
      x = margin
      y += 20
    }
    out.push(
      `<rect x="${x}" y="${y - 10}" width="14" height="14" fill="${FILLS[kind][0]}" stroke="#999" stroke-width="0.5"/>`,
      `<text x="${x + 20}" y="${y + 1}" font-size="12" fill="#333">${escapeXml(text)}</text>`,
    )
    x += itemWidth
  }
  y += 22
  const notes = [
    `Addresses rise left to right, row by row; offsets are from the heap's start (${hex(snapshot.stats.heapStart)}).`,
    'The column on the right: the share of each row\'s bytes in free chunks (the top is not counted).',
  ]
  if (layout.regions.some((r) => r.shortened)) notes.push('≈ marks a gap drawn shorter than it is (someone else\'s memory, larger than the whole heap).')
  for (const note of notes) {
    out.push(`<text x="${margin}" y="${y}" font-size="11" fill="#555">${escapeXml(note)}</text>`)
    y += 16
  }
  const height = Math.ceil(y + margin - 10)
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${options.width}" height="${height}" viewBox="0 0 ${options.width} ${height}" font-family="${escapeXml(FONT)}" shape-rendering="crispEdges">\n` +
    `<title>${escapeXml(`${title}: ${summaryLine(snapshot)}`)}</title>\n` +
    `<defs><pattern id="foreign" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f6dede"/><rect width="2" height="6" fill="#c98c8c"/></pattern></defs>\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n` +
    out.join('\n') +
    '\n</svg>\n'
  )
}

function regionTooltip(snapshot: HeapSnapshot, region: MapRegion): string {
  const address = hex(snapshot.stats.heapStart + region.offset)
  return `${LABELS[region.kind]} ${humanBytes(region.bytes)} at ${address}${region.bytes >= 1024 ? ` (${formatInteger(region.bytes)} B)` : ''}`
}
