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
import { humanBytes } from './format'
import { AllocatorError, describeValue } from '../errors'
import { renderSvgMap } from './heap-map-svg'
import {
  defaultTitle,
  endName,
  layoutHeapMap,
  legendEntry,
  legendKinds,
  regionPieces,
  rowStartOffsets,
  snapshotHeap,
  summaryLine,
  type HeapSnapshot,
  type RegionKind,
} from './heap-map-layout'
import type { Heap } from '../types'

export { layoutHeapMap, snapshotHeap, type HeapMapLayout, type HeapSnapshot, type MapRegion, type RegionKind } from './heap-map-layout'

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
// The text map.

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
  const rows = rowStartOffsets(layout).map((offset) => `+${offset.toString(16).padStart(offsetDigits, '0')} `)
  for (const region of layout.regions) {
    for (const piece of regionPieces(region, options.width)) {
      let cells = GLYPHS[region.kind][region.shade].repeat(piece.width)
      if (region.shortened && piece.first) cells = SHORTENED_GLYPH + cells.slice(1)
      rows[piece.row] += paint(region.kind, region.shade, cells)
    }
  }
  rows[rows.length - 1] += paint('end', 0, END_GLYPH)

  const legend = legendKinds(layout).map((kind) => `${paint(kind, 0, GLYPHS[kind][0])} ${legendEntry(layout, kind)}`)
  legend.push(`${paint('end', 0, END_GLYPH)} ${endName(snapshot)}`)
  if (layout.regions.some((r) => r.shortened)) legend.push(`${SHORTENED_GLYPH} gap shortened`)
  return `${header}\n${rows.join('\n')}\n${legend.join('   ')}\n`
}

