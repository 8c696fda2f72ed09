/**
 * Differential runs: one seeded operation stream per configuration (every strategy on both
 * native sources, option variants, and the js heap), each checked operation by operation against
 * the model in differential-runner.ts. At least 1,000,000 operations in all;
 * MA_RELIABILITY_SCALE=N runs N times as many, MA_RELIABILITY_SEED=S changes every stream.
 * A failure prints the configuration, its seed, and the shortest failing prefix of its stream.
 */
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import type { HeapOptions } from '../../lib/index'
import { STRATEGIES } from '../../lib/heap/options'
import { DifferentialRun, Divergence, shortestFailingPrefix, type DifferentialConfig } from './differential-runner'
import { deriveSeed, describeOp, generateOps } from './op-generator'
import { testing } from '../native-heap/helpers'
import { nativeAvailable } from './support'

const SCALE = Number(process.env.MA_RELIABILITY_SCALE ?? 1)
const BASE_SEED = Number(process.env.MA_RELIABILITY_SEED ?? 20261201)
const ONLY = process.env.MA_RELIABILITY_ONLY
const TOTAL_OPS = 1_000_000
const CHECK_EVERY = 1_000
if (!(SCALE > 0) || !Number.isFinite(BASE_SEED)) throw new Error('MA_RELIABILITY_SCALE must be a positive number and MA_RELIABILITY_SEED an integer')

/** blockBreak: a page is mapped right above the break for the run, as in about one Node process in a hundred. */
function config(name: string, options: HeapOptions): DifferentialConfig & { blockBreak?: boolean } {
  return { name, options, exactSizes: options.split !== false }
}

const CONFIGS: (DifferentialConfig & { blockBreak?: boolean })[] = [
  ...(nativeAvailable
    ? [
        ...STRATEGIES.flatMap((strategy) =>
          (['brk', 'mmap'] as const).map((source) => config(`${strategy} on ${source}`, { backend: 'native', strategy, source })),
        ),
        config('best-fit, coalesce off', { backend: 'native', source: 'mmap', coalesce: false }),
        config('first-fit, split off', { backend: 'native', source: 'mmap', strategy: 'first-fit', split: false }),
        config('best-fit on brk, growth 0, trimThreshold 0', { backend: 'native', source: 'brk', growth: 0, trimThreshold: 0 }),
        config('worst-fit, segregateSmall 64', { backend: 'native', source: 'mmap', strategy: 'worst-fit', segregateSmall: 64 }),
        config('next-fit, alignment 4096', { backend: 'native', source: 'mmap', strategy: 'next-fit', alignment: 4096 }),
        { ...config('best-fit on brk, the break blocked', { backend: 'native', source: 'brk' }), blockBreak: true },
      ]
    : []),
  config('js heap', { backend: 'js' }),
  config('js heap, alignment 8, growth 0', { backend: 'js', alignment: 8, growth: 0 }),
].filter((c) => ONLY === undefined || c.name === ONLY)

const OPS_PER_CONFIG = Math.ceil((TOTAL_OPS * SCALE) / Math.max(1, CONFIGS.length))
const totals = { ops: 0, refusals: 0, fullChecks: 0, bytesVerified: 0 }

afterAll(() => {
  console.log(
    `differential: ${totals.ops} operations over ${CONFIGS.length} configurations, ${totals.fullChecks} full verifications, ` +
      `${totals.refusals} expected ERR_OUT_OF_MEMORY refusals, ${(totals.bytesVerified / 2 ** 20).toFixed(0)} MiB of contents compared`,
  )
})

describe('differential: heap against model', () => {
  it.each(CONFIGS.map((c) => [c.name, c] as const))('%s', (_, cfg) => {
    if (cfg.blockBreak === true) {
      testing().blockBreak(true)
      onTestFinished(() => testing().blockBreak(false))
    }
    const seed = deriveSeed(BASE_SEED, cfg.name)
    const ops = [...generateOps(seed, OPS_PER_CONFIG)]
    const run = new DifferentialRun(cfg)
    try {
      totals.ops += run.run(ops, CHECK_EVERY)
      totals.refusals += run.refusals
      totals.fullChecks += run.fullChecks
      totals.bytesVerified += run.bytesVerified
    } catch (error) {
      if (!(error instanceof Divergence)) throw error
      run.close()
      const { length, divergence } = shortestFailingPrefix(cfg, ops, error.opIndex + 1)
      const tail = ops.slice(Math.max(0, length - 12), length).map((op, i) => `    #${length - Math.min(12, length) + i} ${describeOp(op)}`)
      const report = [
        `differential run "${cfg.name}" diverged: ${error.message}`,
        `  seed ${seed} (MA_RELIABILITY_SEED=${BASE_SEED} MA_RELIABILITY_ONLY="${cfg.name}")`,
        `  shortest failing prefix: ${length} operations; it fails with: ${divergence.message}`,
        '  its last operations:',
        ...tail,
      ].join('\n')
      console.error(report)
      expect.fail(report)
    } finally {
      run.close()
    }
  }, 60_000 * Math.max(1, SCALE))
})

describe('the differential runner itself', () => {
  const base = { name: 'sabotaged js heap', options: { backend: 'js' } as HeapOptions, exactSizes: true }

  it('catches one flipped byte in a live chunk and shrinks the stream to the operation that flipped it', () => {
    const ops = [...generateOps(7, 5_000)]
    const flipAt = 1_234
    const sabotaged: DifferentialConfig = {
      ...base,
      sabotage: (index, liveHandles) => {
        if (index !== flipAt) return
        const bytes = liveHandles()[0].bytes()
        bytes[bytes.length - 1] ^= 0x40
      },
    }
    const run = new DifferentialRun(sabotaged)
    let caught: unknown
    try {
      run.run(ops, CHECK_EVERY)
    } catch (error) {
      caught = error
    } finally {
      run.close()
    }
    expect(caught).toBeInstanceOf(Divergence)
    expect((caught as Divergence).opIndex).toBeGreaterThan(flipAt)
    const { length, divergence } = shortestFailingPrefix(sabotaged, ops, (caught as Divergence).opIndex + 1)
    expect(length).toBe(flipAt + 1)
    expect(divergence.message).toMatch(/bytes at 0x[0-9a-f]+ changed/)
  })

  it('the same stream without sabotage passes', () => {
    const run = new DifferentialRun(base)
    try {
      expect(run.run(generateOps(7, 5_000), CHECK_EVERY)).toBe(5_000)
    } finally {
      run.close()
    }
  })
})
