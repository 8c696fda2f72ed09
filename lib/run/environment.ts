/**
 * The environment of a command run on this allocator: the malloc library preloaded ahead of any
 * LD_PRELOAD the user already has (the first library to define malloc is the one the program
 * gets, so ours must come first; the user's libraries stay loaded), and the variables the
 * library reads at start-up (BRIEF's contract, DESIGN "Running a program on this allocator").
 */
import { STRATEGIES } from '../heap/options'
import type { Strategy } from '../types'

export const ENV_STRATEGY = 'MEMORY_ALLOCATOR_STRATEGY'
export const ENV_ON_BAD_FREE = 'MEMORY_ALLOCATOR_ON_BAD_FREE'
export const ENV_REPORT_DIR = 'MEMORY_ALLOCATOR_REPORT_DIR'
export const ENV_SNAPSHOT = 'MEMORY_ALLOCATOR_SNAPSHOT'
export const ENV_TIMELINE = 'MEMORY_ALLOCATOR_TIMELINE'

export const ON_BAD_FREE = ['abort', 'report'] as const
export type OnBadFree = (typeof ON_BAD_FREE)[number]

export interface RunEnvironmentOptions {
  /** Default best-fit. */
  strategy?: Strategy
  /** Default abort. */
  onBadFree?: OnBadFree
  /** Where every process writes `<pid>.json` at exit; unset: no reports. */
  reportDir?: string
  /** Keep a chunk snapshot of the main heap at its peak (or at exit). */
  snapshot?: 'peak' | 'exit'
  /** Sample the main heap's held and live bytes over its requests. */
  timeline?: boolean
}

/** LD_PRELOAD with `library` first and what was there kept after it. */
export function preloadFirst(library: string, existing: string | undefined): string {
  const others = (existing ?? '').split(/[\s:]+/).filter((entry) => entry !== '' && entry !== library)
  return [library, ...others].join(' ')
}

/**
 * `base` with the library preloaded and exactly the variables asked for: ones the user's
 * environment already has and this run does not ask for are removed, so that a run does what its
 * options say.
 */
export function runEnvironment(library: string, options: RunEnvironmentOptions, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const strategy = options.strategy ?? 'best-fit'
  if (!STRATEGIES.includes(strategy)) throw new RangeError(`unknown strategy ${strategy}`)
  const env: NodeJS.ProcessEnv = { ...base, LD_PRELOAD: preloadFirst(library, base.LD_PRELOAD) }
  for (const name of [ENV_REPORT_DIR, ENV_SNAPSHOT, ENV_TIMELINE]) delete env[name]
  env[ENV_STRATEGY] = strategy
  env[ENV_ON_BAD_FREE] = options.onBadFree ?? 'abort'
  if (options.reportDir !== undefined) env[ENV_REPORT_DIR] = options.reportDir
  if (options.snapshot !== undefined) env[ENV_SNAPSHOT] = options.snapshot
  if (options.timeline) env[ENV_TIMELINE] = '1'
  return env
}
