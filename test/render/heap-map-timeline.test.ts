/**
 * renderTimeline(): the replay timeline's axes hold the data, its paths follow the samples, and
 * it marks the peak that the heap map draws.
 */
import { describe, expect, it } from 'vitest'
import type { HeapSnapshot } from '../../lib/render/heap-map'
import type { TracePictures } from '../../lib/replay/replay-pictures'
import { renderTimeline } from '../../lib/render/timeline'
import { wellFormedSvg } from '../cli/helpers'

const MiB = 2 ** 20

function pictures(samples: TracePictures['samples'], peakOp: number): TracePictures {
  const peakBytes = Math.max(...samples.map((s) => s.heapBytes))
  const peak: HeapSnapshot = {
    backend: 'native',
    source: 'mmap',
    strategy: 'best-fit',
    stats: { heapStart: 0x1000, heapEnd: 0x1000 + peakBytes, heapBytes: peakBytes, topBytes: 0, segments: 1 },
    chunks: [{ address: 0x1000, size: peakBytes, state: 'live' }],
  }
  return { trace: 'waves', strategy: 'best-fit', ops: samples.at(-1)!.op, samples, peak, peakOp }
}

/** The y of every point of the n-th <path>. */
function pathYs(svg: string, n: number): number[] {
  const d = [...svg.matchAll(/<path d="([^"]+)"/g)][n][1]
  return [...d.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]))
}

describe('renderTimeline', () => {
  it('puts the largest sample under the top tick, and the live line under the held line', () => {
    const samples = Array.from({ length: 101 }, (_, i) => ({
      op: i * 100,
      heapBytes: Math.round(14.1 * MiB * Math.min(1, i / 60)),
      liveBytes: Math.round(14.1 * MiB * Math.min(1, i / 60) * (i > 70 ? 0.6 : 0.98)),
    }))
    const svg = renderTimeline(pictures(samples, 6000))
    expect(wellFormedSvg(svg)).toBe(true)
    // Ticks at 2 MiB steps up to 16 MiB: 14.1 MiB must not stick out above the last one.
    const ticks = [...svg.matchAll(/text-anchor="end">([\d.]+ MiB|0)</g)].map((m) => m[1])
    expect(ticks.at(-1)).toBe('16 MiB')
    const held = pathYs(svg, 1)
    const live = pathYs(svg, 2)
    expect(held).toHaveLength(101)
    const plotTop = 64
    for (const y of held) expect(y).toBeGreaterThanOrEqual(plotTop)
    // SVG y grows downwards: live at or below held everywhere.
    // The live area: its line, then two points closing it along the axis.
    expect(live).toHaveLength(103)
    live.slice(0, 101).forEach((y, i) => expect(y).toBeGreaterThanOrEqual(held[i]))
    expect(svg).toContain('peak held 14.1 MiB at request 6,000')
    expect(svg).toContain('sampled every 100 requests')
  })

  it('draws a trace that never allocated', () => {
    const svg = renderTimeline(pictures([{ op: 0, heapBytes: 0, liveBytes: 0 }], 0))
    expect(wellFormedSvg(svg)).toBe(true)
    expect(svg).not.toContain('NaN')
    expect(svg).not.toContain('Infinity')
  })
})
