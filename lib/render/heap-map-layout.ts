/**
 * The layout shared by both heap map renderers: a heap (or a snapshot of one) cut into regions by
 * address (live, free, deferred and held-back chunks, the top, and gaps the heap does not own),
 * placed on units of one scale, a region never less than one unit, plus the names and legend
 * text both renderers print.
 */
import { formatInteger, humanBytes } from './format'
import type { ChunkInfo, Heap, HeapStats } from '../types'

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

export const KINDS: readonly RegionKind[] = ['live', 'free', 'deferred', 'held', 'top', 'padding', 'foreign']

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
  // The smallest power of two that fits the budget (a quarter more, for the units small regions
  // gain); where the regions' count alone overruns it, coarser scales stop helping, and the first
  // one that no longer shortens the map much is taken.
  const budget = unitsPerRow * targetRows
  let scale = nextPowerOfTwo(drawnOffset / budget)
  for (let total = totalUnits(scale); total > budget * 1.25 && scale < 2 ** 40; ) {
    const coarser = totalUnits(scale * 2)
    if (coarser > total * 0.9) break
    scale *= 2
    total = coarser
  }
  const unitCounts = drawn.map((region) => unitsFor(region, scale))
  // The units small regions gained push a map that fitted its rows a few cells into one more; the
  // largest region gives them back when that costs it under a tenth of its length.
  const total = unitCounts.reduce((sum, units) => sum + units, 0)
  const overflow = total % unitsPerRow
  if (total > budget && overflow > 0) {
    const largest = unitCounts.indexOf(Math.max(...unitCounts))
    if (unitCounts[largest] >= 10 * overflow) unitCounts[largest] -= overflow
  }
  const regions: MapRegion[] = []
  const totals = Object.fromEntries(KINDS.map((kind) => [kind, { count: 0, bytes: 0 }])) as HeapMapLayout['totals']
  let unit = 0
  for (const [index, region] of drawn.entries()) {
    const units = unitCounts[index]
    const previous = regions.at(-1)
    const shade = previous !== undefined && previous.kind === region.kind ? ((1 - previous.shade) as 0 | 1) : 0
    regions.push({ kind: region.kind, offset: region.offset, bytes: region.bytes, shortened: region.shortened, shade, start: unit, units })
    totals[region.kind].count++
    totals[region.kind].bytes += region.bytes
    unit += units
  }
  return { regions, scale, units: unit, unitsPerRow, rows: Math.max(1, Math.ceil(unit / unitsPerRow)), totals }
}

export function endName(snapshot: HeapSnapshot): string {
  return snapshot.source === 'brk' ? 'break' : snapshot.source === 'mmap' ? 'end of the used region' : 'end of the buffer'
}

export function sourceName(snapshot: HeapSnapshot): string {
  return snapshot.source === 'brk' ? 'on the program break' : snapshot.source === 'mmap' ? 'in an mmap region' : 'in an ArrayBuffer'
}

export function defaultTitle(snapshot: HeapSnapshot): string {
  return `${snapshot.backend} ${snapshot.strategy} heap ${sourceName(snapshot)}`
}

export function hex(value: number): string {
  return `0x${value.toString(16)}`
}

export function summaryLine(snapshot: HeapSnapshot): string {
  const { heapStart, heapEnd, heapBytes, segments } = snapshot.stats
  if (heapEnd <= heapStart) return 'empty: nothing held from the OS'
  return `${hex(heapStart)}..${hex(heapEnd)}, ${humanBytes(heapBytes)} held, ${segments} segment${segments === 1 ? '' : 's'}`
}

export const LABELS: Record<RegionKind, string> = {
  live: 'live',
  free: 'free',
  deferred: 'deferred',
  held: 'held back',
  top: 'top',
  padding: 'padding',
  foreign: 'not ours',
}

export function legendEntry(layout: HeapMapLayout, kind: RegionKind): string {
  const { count, bytes } = layout.totals[kind]
  if (kind === 'top') return `${LABELS[kind]} ${humanBytes(bytes)}`
  if (kind === 'foreign' || kind === 'padding') return `${LABELS[kind]} ${humanBytes(bytes)} in ${formatInteger(count)} gap${count === 1 ? '' : 's'}`
  return `${LABELS[kind]} ${formatInteger(count)} (${humanBytes(bytes)})`
}

/** Kinds always in the legend, and the others only where they occur. */
export function legendKinds(layout: HeapMapLayout): RegionKind[] {
  return KINDS.filter((kind) => kind === 'live' || kind === 'free' || layout.totals[kind].count > 0)
}

export interface Piece {
  row: number
  column: number
  width: number
  /** The region's first piece. */
  first: boolean
}

/** A region cut at row ends. */
export function regionPieces(region: MapRegion, unitsPerRow: number): Piece[] {
  const pieces: Piece[] = []
  for (let unit = region.start; unit < region.start + region.units; ) {
    const column = unit % unitsPerRow
    const width = Math.min(region.start + region.units - unit, unitsPerRow - column)
    pieces.push({ row: Math.floor(unit / unitsPerRow), column, width, first: unit === region.start })
    unit += width
  }
  return pieces
}

/** Per row, the byte offset (from heapStart) where it begins: into its first region, at the map's scale. */
export function rowStartOffsets(layout: HeapMapLayout): number[] {
  const offsets: number[] = []
  for (const region of layout.regions) {
    const first = Math.ceil(region.start / layout.unitsPerRow) * layout.unitsPerRow
    for (let unit = first; unit < region.start + region.units; unit += layout.unitsPerRow) {
      offsets[unit / layout.unitsPerRow] = region.offset + Math.min(region.bytes, (unit - region.start) * layout.scale)
    }
  }
  return offsets
}

