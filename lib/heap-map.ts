/**
 * renderHeapMap(): a picture of a heap by address, as terminal text or a standalone SVG. Every
 * chunk (live, free, deferred), the free top below the break and every gap the heap does not own
 * (another user of the break moved it between our moves) is drawn to one scale, and a region never
 * vanishes: it gets at least one cell or pixel, so a thousand tiny chunks push the map longer
 * rather than disappear. A gap larger than the heap's own bytes is drawn shortened and marked so.
 *
 * The layout is computed once (layoutHeapMap) and drawn by either renderer, which keeps the text
 * and the SVG in agreement.
 */
import { humanBytes, formatInteger } from './bench/format'
import { escapeXml } from './bench/svg'
import { AllocatorError, describeValue } from './errors'
import type { ChunkInfo, Heap, HeapStats } from './types'

export type HeapMapFormat = 'text' | 'svg'

export interface HeapMapOptions {
  /** Default 'text'. */
  format?: HeapMapFormat
  /** Text: cells per line (default 64). SVG: the picture's width in pixels (default 960). */
  width?: number
  /** Text only: ANSI colours (default false; the CLI turns them on for a terminal without NO_COLOR). */
  color?: boolean
  /** A heading; default names the backend, source and strategy. */
  title?: string
}

/** What a map needs of a heap; the replay command keeps one from the heap's peak. */
export interface HeapSnapshot {
  backend: Heap['backend']
  source: Heap['source']
  strategy: Heap['strategy']
  stats: Pick<HeapStats, 'heapStart' | 'heapEnd' | 'heapBytes' | 'topBytes' | 'segments'>
  chunks: readonly (ChunkInfo & { deferred?: boolean })[]
}

export function snapshotHeap(heap: Heap): HeapSnapshot {
  return { backend: heap.backend, source: heap.source, strategy: heap.strategy, stats: heap.stats(), chunks: heap.chunks() }
}

/**
 * live, free and deferred are chunks; held is a freed chunk the heap keeps back until a
 * transferred view is gone (ChunkInfo.quarantined); top is the free space below the break that is
 * in no chunk; padding is alignment space of the js bump heap; foreign is address space between
 * our segments that someone else owns.
 */
export type RegionKind = 'live' | 'free' | 'deferred' | 'held' | 'top' | 'padding' | 'foreign'

export interface MapRegion {
  kind: RegionKind
  /** Offset from heapStart. */
  offset: number
  bytes: number
  /** Drawn shorter than its bytes (a foreign gap larger than the heap itself). */
  shortened: boolean
  /** Alternates between neighbouring regions of one kind, so that chunk boundaries show. */
  shade: 0 | 1
  /** First unit (cell or pixel) and how many. */
  start: number
  units: number
}

export interface HeapMapLayout {
  regions: MapRegion[]
  /** Bytes per unit: a power of two. */
  scale: number
  /** Units in all. */
  units: number
  unitsPerRow: number
  rows: number
  totals: Record<RegionKind, { count: number; bytes: number }>
}

const KINDS: readonly RegionKind[] = ['live', 'free', 'deferred', 'held', 'top', 'padding', 'foreign']

function classifyChunk(chunk: HeapSnapshot['chunks'][number]): RegionKind {
  if (chunk.state === 'live') return chunk.quarantined ? 'held' : 'live'
  return chunk.deferred ? 'deferred' : 'free'
}

/** The heap's address range cut into regions, in address order, tiling heapStart..heapEnd. */
function heapRegions(snapshot: HeapSnapshot): Omit<MapRegion, 'shortened' | 'shade' | 'start' | 'units'>[] {
  const { heapStart, heapEnd, topBytes } = snapshot.stats
  // Between chunks the native heap owns nothing (its segments are tiled by chunks and the top);
  // the js bump heap leaves alignment padding there.
  const gapKind: RegionKind = snapshot.backend === 'js' ? 'padding' : 'foreign'
  const regions: Omit<MapRegion, 'shortened' | 'shade' | 'start' | 'units'>[] = []
  let cursor = heapStart
  const topStart = heapEnd - topBytes
  for (const chunk of snapshot.chunks) {
    if (chunk.address > cursor) regions.push({ kind: gapKind, offset: cursor - heapStart, bytes: chunk.address - cursor })
    regions.push({ kind: classifyChunk(chunk), offset: chunk.address - heapStart, bytes: chunk.size })
    cursor = Math.max(cursor, chunk.address + chunk.size)
  }
  if (topStart > cursor) regions.push({ kind: gapKind, offset: cursor - heapStart, bytes: topStart - cursor })
  if (topBytes > 0) regions.push({ kind: 'top', offset: Math.max(cursor, topStart) - heapStart, bytes: topBytes })
  return regions
}

function nextPowerOfTwo(value: number): number {
  return value <= 1 ? 1 : 2 ** Math.ceil(Math.log2(value))
}

/**
 * Places the regions on units of `scale` bytes, rows of `unitsPerRow`: the scale is the smallest
 * power of two at which the heap fits in `targetRows` rows, and every region takes at least one
 * unit (so the map may run longer). A region's units are its rounded end less its rounded start,
 * so a chunk that gets one unit more than its bytes takes nothing from its neighbours.
 */
export function layoutHeapMap(snapshot: HeapSnapshot, unitsPerRow: number, targetRows: number): HeapMapLayout {
  const raw = heapRegions(snapshot)
  const ownBytes = raw.reduce((sum, r) => (r.kind === 'foreign' ? sum : sum + r.bytes), 0)
  const shortGap = Math.max(1, Math.ceil(ownBytes / 16))
  // Offsets along the drawn line, where long foreign gaps count as shortGap bytes.
  let drawnOffset = 0
  const drawn = raw.map((region) => {
    const shortened = region.kind === 'foreign' && region.bytes > Math.max(ownBytes, 1)
    const length = shortened ? shortGap : region.bytes
    const from = drawnOffset
    drawnOffset += length
    return { ...region, shortened, from, to: drawnOffset }
  })
  const unitsFor = (region: { from: number; to: number }, scale: number): number =>
    Math.max(1, Math.round(region.to / scale) - Math.round(region.from / scale))
  const totalUnits = (scale: number): number => drawn.reduce((sum, region) => sum + unitsFor(region, scale), 0)
  // The smallest power of two that fits the budget; where the regions' count alone overruns it,
  // coarser scales stop helping, and the first one that no longer shortens the map much is taken.
  const budget = unitsPerRow * targetRows
  let scale = nextPowerOfTwo(drawnOffset / budget)
  for (let total = totalUnits(scale); total > budget && scale < 2 ** 40; ) {
    const coarser = totalUnits(scale * 2)
    if (coarser > total * 0.9) break
    scale *= 2
    total = coarser
  }
  const regions: MapRegion[] = []
  const totals = Object.fromEntries(KINDS.map((kind) => [kind, { count: 0, bytes: 0 }])) as HeapMapLayout['totals']
  let unit = 0
  for (const region of drawn) {
    const units = unitsFor(region, scale)
    const previous = regions.at(-1)
    const shade = previous !== undefined && previous.kind === region.kind ? ((1 - previous.shade) as 0 | 1) : 0
    regions.push({ kind: region.kind, offset: region.offset, bytes: region.bytes, shortened: region.shortened, shade, start: unit, units })
    totals[region.kind].count++
    totals[region.kind].bytes += region.bytes
    unit += units
  }
  return { regions, scale, units: unit, unitsPerRow, rows: Math.max(1, Math.ceil(unit / unitsPerRow)), totals }
}

function checkOptions(options: unknown): Required<Omit<HeapMapOptions, 'title'>> & { title: string | undefined } {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object') throw new AllocatorError('ERR_INVALID_OPTION', `renderHeapMap options must be an object, got ${describeValue(options)}`)
  const { format = 'text', width, color = false, title } = options as HeapMapOptions
  if (format !== 'text' && format !== 'svg') {
    throw new AllocatorError('ERR_INVALID_OPTION', `renderHeapMap option format must be 'text' or 'svg', got ${describeValue(format)}`)
  }
  const [minWidth, defaultWidth] = format === 'text' ? [8, 64] : [320, 960]
  if (width !== undefined && (!Number.isSafeInteger(width) || width < minWidth || width > 100_000)) {
    throw new AllocatorError('ERR_INVALID_OPTION', `renderHeapMap option width must be an integer from ${minWidth} to 100000 for ${format}, got ${describeValue(width)}`)
  }
  if (typeof color !== 'boolean') throw new AllocatorError('ERR_INVALID_OPTION', `renderHeapMap option color must be a boolean, got ${describeValue(color)}`)
  if (title !== undefined && typeof title !== 'string') throw new AllocatorError('ERR_INVALID_OPTION', `renderHeapMap option title must be a string, got ${describeValue(title)}`)
  return { format, width: width ?? defaultWidth, color, title }
}

/** Draws a heap (or a snapshot of one) by address; see HeapMapOptions. */
export function renderHeapMap(heap: Heap | HeapSnapshot, options?: HeapMapOptions): string {
  const checked = checkOptions(options)
  const snapshot = 'raw' in heap ? snapshotHeap(heap) : heap
  return checked.format === 'svg' ? renderSvgMap(snapshot, checked) : renderTextMap(snapshot, checked)
}

/** What ends the heap: the program break, or the used end of an mmap region or ArrayBuffer. */
function endName(snapshot: HeapSnapshot): string {
  return snapshot.source === 'brk' ? 'break' : snapshot.source === 'mmap' ? 'end of the used region' : 'end of the buffer'
}

function sourceName(snapshot: HeapSnapshot): string {
  return snapshot.source === 'brk' ? 'on the program break' : snapshot.source === 'mmap' ? 'in an mmap region' : 'in an ArrayBuffer'
}

function defaultTitle(snapshot: HeapSnapshot): string {
  return `${snapshot.backend} ${snapshot.strategy} heap ${sourceName(snapshot)}`
}

function hex(value: number): string {
  return `0x${value.toString(16)}`
}

function summaryLine(snapshot: HeapSnapshot): string {
  const { heapStart, heapEnd, heapBytes, segments } = snapshot.stats
  if (heapEnd <= heapStart) return 'empty: nothing held from the OS'
  return `${hex(heapStart)}..${hex(heapEnd)}, ${humanBytes(heapBytes)} held, ${segments} segment${segments === 1 ? '' : 's'}`
}

const LABELS: Record<RegionKind, string> = {
  live: 'live',
  free: 'free',
  deferred: 'deferred',
  held: 'held back',
  top: 'top',
  padding: 'padding',
  foreign: 'not ours',
}

function legendEntry(layout: HeapMapLayout, kind: RegionKind): string {
  const { count, bytes } = layout.totals[kind]
  if (kind === 'top') return `${LABELS[kind]} ${humanBytes(bytes)}`
  if (kind === 'foreign' || kind === 'padding') return `${LABELS[kind]} ${humanBytes(bytes)} in ${formatInteger(count)} gap${count === 1 ? '' : 's'}`
  return `${LABELS[kind]} ${formatInteger(count)} (${humanBytes(bytes)})`
}

/** Kinds always in the legend, and the others only where they occur. */
function legendKinds(layout: HeapMapLayout): RegionKind[] {
  return KINDS.filter((kind) => kind === 'live' || kind === 'free' || layout.totals[kind].count > 0)
}

// ---- text ----

const GLYPHS: Record<RegionKind, [string, string]> = {
  live: ['#', '%'],
  free: ['.', ','],
  deferred: [':', ';'],
  held: ['!', '!'],
  top: ['_', '_'],
  padding: [' ', ' '],
  foreign: ['~', '~'],
}
const SHORTENED_GLYPH = '≈'
const END_GLYPH = '|'

// Background colours, two shades per kind so neighbouring chunks of one kind stay apart.
const ANSI: Record<RegionKind, [string, string]> = {
  live: ['\x1b[30;42m', '\x1b[30;102m'],
  free: ['\x1b[30;47m', '\x1b[30;107m'],
  deferred: ['\x1b[30;43m', '\x1b[30;103m'],
  held: ['\x1b[30;45m', '\x1b[30;105m'],
  top: ['\x1b[2m', '\x1b[2m'],
  padding: ['\x1b[2m', '\x1b[2m'],
  foreign: ['\x1b[31m', '\x1b[31m'],
}
const ANSI_END = '\x1b[1;31m'
const ANSI_RESET = '\x1b[0m'

function renderTextMap(snapshot: HeapSnapshot, options: { width: number; color: boolean; title: string | undefined }): string {
  const layout = layoutHeapMap(snapshot, options.width, 4)
  const paint = (kind: RegionKind | 'end', shade: 0 | 1, text: string): string => {
    if (!options.color) return text
    return `${kind === 'end' ? ANSI_END : ANSI[kind][shade]}${text}${ANSI_RESET}`
  }
  const title = options.title ?? defaultTitle(snapshot)
  if (layout.regions.length === 0) return `${title}: ${summaryLine(snapshot)}\n`
  const header = `${title}: ${summaryLine(snapshot)}; 1 cell = ${humanBytes(layout.scale)}`

  const offsetDigits = Math.max(4, (snapshot.stats.heapEnd - snapshot.stats.heapStart).toString(16).length)
  const lines: string[] = []
  let line = ''
  let lineStart = 0
  const flush = (): void => {
    lines.push(line)
    line = ''
  }
  let rowOffset = 0
  for (const region of layout.regions) {
    let drawnInRegion = 0
    while (drawnInRegion < region.units) {
      const column = (region.start + drawnInRegion) % options.width
      if (column === 0) {
        if (lineStart > 0 || line !== '') flush()
        // The byte offset where this row starts: into the region, at the map's scale.
        rowOffset = region.offset + Math.min(region.bytes, drawnInRegion * layout.scale)
        line = `+${rowOffset.toString(16).padStart(offsetDigits, '0')} `
        lineStart++
      }
      const count = Math.min(region.units - drawnInRegion, options.width - column)
      let cells = GLYPHS[region.kind][region.shade].repeat(count)
      if (region.shortened) cells = SHORTENED_GLYPH + cells.slice(1)
      line += paint(region.kind, region.shade, cells)
      drawnInRegion += count
    }
  }
  line += paint('end', 0, END_GLYPH)
  flush()

  const legend = legendKinds(layout).map((kind) => `${paint(kind, 0, GLYPHS[kind][0])} ${legendEntry(layout, kind)}`)
  legend.push(`${paint('end', 0, END_GLYPH)} ${endName(snapshot)}`)
  if (layout.regions.some((r) => r.shortened)) legend.push(`${SHORTENED_GLYPH} gap shortened`)
  return `${header}\n${lines.join('\n')}\n${legend.join('   ')}\n`
}

// ---- SVG ----

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

function renderSvgMap(snapshot: HeapSnapshot, options: { width: number; title: string | undefined }): string {
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
  const labels: string[] = []
  for (const region of layout.regions) {
    const first = Math.ceil(region.start / plotWidth) * plotWidth
    for (let unit = first; unit < region.start + region.units; unit += plotWidth) {
      const offset = region.offset + Math.min(region.bytes, (unit - region.start) * layout.scale)
      labels.push(`<text x="${plotX - 8}" y="${n(rowY(unit / plotWidth) + rowHeight / 2 + 4)}">+${hex(offset)}</text>`)
    }
  }
  out.push(`<g font-size="11" font-family="${escapeXml(MONO)}" fill="#555" text-anchor="end">`, ...labels, '</g>')

  // Pieces of regions cut at row ends.
  const pieces = (region: MapRegion): { row: number; column: number; width: number }[] => {
    const result: { row: number; column: number; width: number }[] = []
    for (let unit = region.start; unit < region.start + region.units; ) {
      const column = unit % plotWidth
      const width = Math.min(region.start + region.units - unit, plotWidth - column)
      result.push({ row: Math.floor(unit / plotWidth), column, width })
      unit += width
    }
    return result
  }

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
  const notes = [`Addresses rise left to right, row by row; offsets are from the heap's start (${hex(snapshot.stats.heapStart)}).`]
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
