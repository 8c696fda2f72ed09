/**
 * renderHeapMap(): the layout (every region in address order, to one scale, never less than one
 * unit), the text map (plain and coloured) and the standalone SVG, on snapshots with known
 * contents and on real heaps of both backends.
 */
import { describe, expect, it } from 'vitest'
import { nativeBinding } from '../../lib/backends/binding'
import { layoutHeapMap, type HeapSnapshot } from '../../lib/render/heap-map'
import { AllocatorError, createHeap, renderHeapMap } from '../../lib/index'

const BASE = 0x5000_0000

/** Two segments: [a live 4K][b free 1K][c deferred 64][d live 16] | foreign 1 MiB | [e live 8K][top 51K]. */
function twoSegments(): HeapSnapshot {
  const second = BASE + 0x1000 + 0x400 + 64 + 16 + 0x10_0000
  return {
    backend: 'native',
    source: 'brk',
    strategy: 'best-fit',
    stats: { heapStart: BASE, heapEnd: second + 0xe000, heapBytes: 0x1000 + 0x400 + 80 + 0xe000, topBytes: 0xe000 - 0x2000, segments: 2 },
    chunks: [
      { address: BASE, size: 0x1000, state: 'live' },
      { address: BASE + 0x1000, size: 0x400, state: 'free' },
      { address: BASE + 0x1400, size: 64, state: 'free', deferred: true },
      { address: BASE + 0x1440, size: 16, state: 'live' },
      { address: second, size: 0x2000, state: 'live' },
    ],
  }
}

/** A small tag-balance check: every element closes, in order, and the root is one <svg>. */
function expectWellFormed(svg: string): void {
  const stack: string[] = []
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match
    if (selfClosing) continue
    if (closing) expect(stack.pop(), `closing </${name}>`).toBe(name)
    else stack.push(name)
  }
  expect(stack).toEqual([])
  // A bare < or & in text breaks the whole document in a browser.
  expect(svg).not.toMatch(/<(?![a-zA-Z/!?])|&(?!(amp|lt|gt|quot|#\d+|#39);)/)
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
}

describe('layoutHeapMap', () => {
  it('lays regions out in address order, contiguous, each at least one unit', () => {
    const layout = layoutHeapMap(twoSegments(), 64, 4)
    expect(layout.regions.map((r) => r.kind)).toEqual(['live', 'free', 'deferred', 'live', 'foreign', 'live', 'top'])
    let unit = 0
    for (const region of layout.regions) {
      expect(region.start).toBe(unit)
      expect(region.units).toBeGreaterThanOrEqual(1)
      unit += region.units
    }
    expect(layout.units).toBe(unit)
    // The 16-byte chunk is far below one unit of the scale, and still drawn.
    expect(layout.scale).toBeGreaterThan(16)
    // The 1 MiB foreign gap is more than the heap's own bytes: drawn shortened.
    const gap = layout.regions[4]
    expect(gap).toMatchObject({ kind: 'foreign', bytes: 0x10_0000, shortened: true })
    expect(gap.units * layout.scale).toBeLessThan(0x10_0000 / 4)
    // Otherwise to scale: the 8 KiB chunk takes about twice the 4 KiB chunk's units.
    expect(layout.regions[5].units / layout.regions[0].units).toBeCloseTo(2, 0)
    expect(layout.totals.live).toEqual({ count: 3, bytes: 0x1000 + 16 + 0x2000 })
    expect(layout.totals.deferred).toEqual({ count: 1, bytes: 64 })
  })

  it('ends on whole rows when small chunks gained a few units, taking them from the largest region', () => {
    const sizes: [number, 'live' | 'free'][] = [[304, 'live'], [5008, 'free'], [64, 'live'], [2000, 'live']]
    let address = BASE
    const chunks = sizes.map(([size, state]) => {
      const chunk = { address, size, state }
      address += size
      return chunk
    })
    const snapshot: HeapSnapshot = {
      backend: 'native',
      source: 'brk',
      strategy: 'best-fit',
      stats: { heapStart: BASE, heapEnd: BASE + 65536, heapBytes: 65536, topBytes: 65536 - (address - BASE), segments: 1 },
      chunks,
    }
    const layout = layoutHeapMap(snapshot, 64, 4)
    expect(layout.scale).toBe(256)
    expect(layout.units).toBe(256)
    expect(layout.rows).toBe(4)
    expect(layout.regions.map((r) => r.units)).toEqual([1, 20, 1, 8, 226])
  })

  it('makes the map longer rather than lose chunks', () => {
    const chunks = Array.from({ length: 1000 }, (_, i) => ({ address: BASE + i * 16, size: 16, state: i % 2 ? 'free' : 'live' }) as const)
    const snapshot: HeapSnapshot = {
      backend: 'native',
      source: 'mmap',
      strategy: 'first-fit',
      stats: { heapStart: BASE, heapEnd: BASE + 16_000 + 1_000_000, heapBytes: 1_016_000, topBytes: 1_000_000, segments: 1 },
      chunks,
    }
    const layout = layoutHeapMap(snapshot, 64, 4)
    expect(layout.regions).toHaveLength(1001)
    expect(layout.units).toBeGreaterThan(64 * 4)
    // Neighbours of one kind alternate shades so their boundary shows; here kinds alternate.
    expect(layout.regions.slice(0, 4).map((r) => r.shade)).toEqual([0, 0, 0, 0])
  })
})

describe('renderHeapMap text', () => {
  it('draws cells, the break and a legend; plain unless color is asked for', () => {
    const text = renderHeapMap(twoSegments(), { width: 64 })
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^native best-fit heap on the program break: 0x50000000\.\.0x[0-9a-f]+, [\d.]+ KiB held, 2 segments; 1 cell = \d+ B$/)
    const cells = lines.slice(1, -1)
    for (const line of cells) expect(line).toMatch(/^\+[0-9a-f]{4,} [#%.,:;_~≈|]+$/)
    const drawn = cells.map((line) => line.split(' ')[1]).join('')
    expect(drawn).toMatch(/^#+\.+:#≈~*%*#*_+\|$/)
    expect(lines.at(-1)).toBe(
      '# live 3 (12.0 KiB)   . free 1 (1.00 KiB)   : deferred 1 (64 B)   _ top 48.0 KiB   ~ not ours 1.00 MiB in 1 gap   | break   ≈ gap shortened',
    )
    expect(text).not.toContain('\x1b')
    const coloured = renderHeapMap(twoSegments(), { width: 64, color: true })
    expect(coloured).toContain('\x1b[30;42m#')
    expect(coloured.replace(/\x1b\[[\d;]*m/g, '')).toBe(text)
  })

  it('says so for a heap that holds nothing', () => {
    const empty: HeapSnapshot = {
      backend: 'native',
      source: 'brk',
      strategy: 'best-fit',
      stats: { heapStart: BASE, heapEnd: BASE, heapBytes: 0, topBytes: 0, segments: 0 },
      chunks: [],
    }
    expect(renderHeapMap(empty)).toBe('native best-fit heap on the program break: empty: nothing held from the OS\n')
  })

  it('rejects bad options with ERR_INVALID_OPTION', () => {
    for (const options of [{ format: 'png' }, { width: 3 }, { width: 1.5 }, { format: 'svg', width: 100 }, { color: 'yes' }, 7]) {
      let thrown: unknown
      try {
        renderHeapMap(twoSegments(), options as never)
      } catch (error) {
        thrown = error
      }
      expect(thrown, JSON.stringify(options)).toBeInstanceOf(AllocatorError)
      expect((thrown as AllocatorError).code).toBe('ERR_INVALID_OPTION')
    }
  })
})

describe('renderHeapMap svg', () => {
  it('is one standalone document with a legend and the break', () => {
    const svg = renderHeapMap(twoSegments(), { format: 'svg', width: 800 })
    expectWellFormed(svg)
    expect(svg).toContain('width="800"')
    expect(svg).not.toMatch(/<script|<image|<foreignObject|href=|@import|url\((?!#)/)
    for (const text of ['live 3 (12.0 KiB)', 'deferred 1 (64 B)', 'not ours 1.00 MiB in 1 gap', '>break<', '≈']) expect(svg).toContain(text)
  })

  it('gives each row its share of free bytes', () => {
    const snapshot: HeapSnapshot = {
      backend: 'native',
      source: 'brk',
      strategy: 'best-fit',
      stats: { heapStart: BASE, heapEnd: BASE + 0x10_0000 + 16 + 0x10_0000, heapBytes: 0x20_0010, topBytes: 0, segments: 1 },
      chunks: [
        { address: BASE, size: 0x10_0000, state: 'live' },
        { address: BASE + 0x10_0000, size: 16, state: 'free' },
        { address: BASE + 0x10_0010, size: 0x10_0000, state: 'live' },
      ],
    }
    const svg = renderHeapMap(snapshot, { format: 'svg' })
    expectWellFormed(svg)
    expect(svg).toContain('>&lt;1%</text>')
    expect(svg).toContain('>0%</text>')
  })

  it('stays small for a heap of many chunks', () => {
    const chunks = Array.from({ length: 20_000 }, (_, i) => ({ address: BASE + i * 64, size: 64, state: i % 40 === 0 ? 'free' : 'live' }) as const)
    const snapshot: HeapSnapshot = {
      backend: 'native',
      source: 'brk',
      strategy: 'best-fit',
      stats: { heapStart: BASE, heapEnd: BASE + 20_000 * 64, heapBytes: 20_000 * 64, topBytes: 0, segments: 1 },
      chunks,
    }
    const svg = renderHeapMap(snapshot, { format: 'svg' })
    expectWellFormed(svg)
    // 500 free chunks, each its own element; the 19,500 live ones share each row's bar.
    expect(svg.match(/<rect/g)!.length).toBeLessThan(700)
    expect(svg.length).toBeLessThan(60_000)
  })
})

describe.skipIf(nativeBinding() === undefined)('renderHeapMap on a native heap', () => {
  it('shows what the heap holds', () => {
    using heap = createHeap({ backend: 'native', source: 'mmap', growth: 65536 })
    const a = heap.raw.alloc(1000)
    const b = heap.raw.alloc(3000)
    heap.raw.alloc(200)
    heap.raw.free(b)
    const text = renderHeapMap(heap)
    expect(text).toMatch(/^native best-fit heap in an mmap region: /)
    expect(text).toContain('# live 2 (')
    expect(text).toContain('. free 1 (')
    expect(text).toContain('| end of the used region')
    heap.raw.free(a)
    expectWellFormed(renderHeapMap(heap, { format: 'svg' }))
  })
})

describe('renderHeapMap on a js heap', () => {
  it('draws alignment padding as the heap\'s own', () => {
    using heap = createHeap({ backend: 'js' })
    heap.raw.alloc(100)
    heap.raw.alloc(100, 256)
    const text = renderHeapMap(heap)
    expect(text).toMatch(/^js bump heap in an ArrayBuffer: /)
    expect(text).toContain('padding')
    expect(text).not.toContain('not ours')
  })
})
