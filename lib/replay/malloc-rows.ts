/**
 * `--malloc NAME=LIBRARY` (bench, replay): rows for other malloc libraries, each replayed by the
 * 'libc' loop in a child process that preloads it. With any such row, the libc row is replayed
 * in a child of its own too, so that every malloc's time and peak RSS growth are measured alike.
 */
import { AllocatorError } from '../errors'
import { childResult, replay, REPLAY_ALLOCATORS, type ReplayOptions, type ReplayResult } from './replay'
import { replayInChild } from './replay-child'
import type { Trace } from '../trace/trace'
import { generateTrace } from '../trace/workloads'

export interface MallocSpec {
  /** The row's name in tables, CSV and JSON. */
  name: string
  library: string
}

const NAME = /^[A-Za-z][A-Za-z0-9._+-]*$/

/** Parses the repeated option; a malformed value is ERR_INVALID_OPTION (a usage error). */
export function parseMallocSpecs(values: readonly string[] | undefined): MallocSpec[] {
  const specs: MallocSpec[] = []
  for (const value of values ?? []) {
    const equals = value.indexOf('=')
    const name = value.slice(0, Math.max(0, equals))
    const library = value.slice(equals + 1)
    if (equals <= 0 || library === '' || !NAME.test(name)) {
      throw new AllocatorError('ERR_INVALID_OPTION', `--malloc takes NAME=LIBRARY (e.g. jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2), got ${JSON.stringify(value)}`)
    }
    if ((REPLAY_ALLOCATORS as readonly string[]).includes(name)) {
      throw new AllocatorError('ERR_INVALID_OPTION', `--malloc ${value}: ${name} is one of the built-in allocators; choose another name`)
    }
    if (specs.some((spec) => spec.name === name)) throw new AllocatorError('ERR_INVALID_OPTION', `--malloc ${value}: ${name} is given twice`)
    specs.push({ name, library })
  }
  return specs
}

/** replay() for a bench run: NAME rows and libc in child processes, our strategies in-process. */
export function mallocReplay(specs: readonly MallocSpec[]): (trace: Trace, options: ReplayOptions) => ReplayResult {
  return (trace, options) => {
    const spec = specs.find((candidate) => candidate.name === options.allocator)
    if (spec === undefined && options.allocator !== 'libc') return replay(trace, options)
    const touch = options.touch ?? true
    const figures = replayInChild(trace, { touch, repeat: options.repeat ?? 1 }, spec?.library)
    return childResult(spec?.name ?? 'libc', trace, figures, touch)
  }
}

/**
 * Tries each library on a small trace: one that does not exist, does not preload or fails is
 * reported through `onFailure` and left out, so that the other rows still run.
 */
export function usableMallocs(specs: readonly MallocSpec[], onFailure: (message: string) => void): MallocSpec[] {
  if (specs.length === 0) return []
  const probe = generateTrace('program-mix', { ops: 500 })
  return specs.filter((spec) => {
    try {
      replayInChild(probe, { touch: true, repeat: 1 }, spec.library)
      return true
    } catch (error) {
      if (!(error instanceof AllocatorError)) throw error
      onFailure(`--malloc ${spec.name}=${spec.library}: ${error.code}: ${error.message}`)
      return false
    }
  })
}
