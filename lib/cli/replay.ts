/**
 * `memory-allocator replay TRACE`: the timed native replay of one trace against one allocator
 * (lib/replay/replay.ts through the bench runner, so that its row reads as bench's), and on request two
 * pictures of our heap running it: the map at its peak (--map) and the timeline (--timeline).
 */
import { writeFileSync } from 'node:fs'
import { formatInteger, formatTraceTable, humanBytes } from '../render/format'
import { runBench, type LoadedTrace, type RunHooks } from '../bench/run'
import type { BenchOptions } from '../bench/types'
import { MAX_REPEAT, PROGRAM, Progress, UsageError, alignmentOption, byteOption, checkOutputFile, parseCommandArgs, progressBar, repeatOption, type CliIo, type Command } from './support'
import { AllocatorError } from '../errors'
import { mallocReplay, parseMallocSpecs, type MallocSpec } from '../replay/malloc-rows'
import { renderHeapMap } from '../render/heap-map'
import { DEFAULT_ALIGNMENT, DEFAULT_GROWTH, DEFAULT_SEGREGATE_SMALL, MAX_GROWTH, MAX_SEGREGATE_SMALL, STRATEGIES } from '../heap/options'
import { REPLAY_ALLOCATORS } from '../replay/replay'
import { traceThroughHeap, type TracePictures } from '../replay/replay-pictures'
import { renderTimeline } from '../render/timeline'
import { loadTrace, type Trace } from '../trace/trace'
import type { Strategy } from '../types'

const DEFAULT_REPEAT = 5
/** Traces with fewer requests draw their pictures without a progress bar. */
const LONG_TRACE_OPS = 200_000

export const REPLAY_HELP = `Usage: ${PROGRAM} replay TRACE [options]

Replays one malloc-lab trace (.rep or .rep.gz) inside native code against one
allocator and prints its row as bench does: ns/op, peak heap, peak live,
utilization, metadata, brk calls, search steps.

Options:
  --allocator A      ${REPLAY_ALLOCATORS.join(', ')}
                     (default best-fit; libc is the process's own malloc)
  --malloc NAME=LIBRARY
                     replay with a malloc library (jemalloc, mimalloc, ...)
                     preloaded in a child process, by the same loop as libc,
                     instead of --allocator; its row is named NAME
  --map FILE.svg     also draw our heap at its peak: every chunk by address
  --timeline FILE.svg
                     also plot bytes held and bytes live over the requests
  --repeat N         timed runs; the median is reported (default ${DEFAULT_REPEAT},
                     at most ${MAX_REPEAT})
  --no-touch         do not write the allocated bytes
  --growth BYTES     least bytes per break move of our heap (default ${DEFAULT_GROWTH})
  --alignment BYTES  our heap's alignment, 8..4096 (default ${DEFAULT_ALIGNMENT})
  --segregate-small BYTES
                     our heap places requests up to BYTES apart from larger
                     ones (HeapOptions.segregateSmall; default ${DEFAULT_SEGREGATE_SMALL}; 0: off;
                     bump has nothing to segregate and ignores it)
  --max-heap BYTES   our heap may hold at most BYTES from the OS; beyond, the
                     replay fails as ERR_OUT_OF_MEMORY (default: no cap)
  --json             print the result as JSON
  -h, --help         show this help

The options of our heap are bench's, with bench's defaults, so that
'bench TRACE --allocators A' and 'replay TRACE --allocator A' with the same
options give the same row (bench caps the built-in workloads at --max-heap
256M).

The pictures come from a second run of the trace through a heap made with the
public API (createHeap, heap.raw), sampled every few hundred requests; they
need one of our strategies, not libc. On a terminal a progress bar is drawn on
stderr while they are made.

Exit status: 0 done; 1 the trace could not be read, or the allocator failed on
it (e.g. bump running out of memory; the pictures are still drawn); 2 usage
error (nothing ran).

Examples:
  ${PROGRAM} replay traces/perl-text.rep.gz --allocator first-fit
  ${PROGRAM} replay traces/a.rep --map map.svg --timeline timeline.svg
`

const REPLAY_OPTIONS = {
  allocator: { type: 'string' },
  malloc: { type: 'string' },
  map: { type: 'string' },
  timeline: { type: 'string' },
  repeat: { type: 'string' },
  'no-touch': { type: 'boolean' },
  growth: { type: 'string' },
  alignment: { type: 'string' },
  'segregate-small': { type: 'string' },
  'max-heap': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

type ReplayValues = ReturnType<typeof parseCommandArgs<typeof REPLAY_OPTIONS>>['values']

const usage = (message: string): UsageError => new UsageError(message, 'replay')

/**
 * The bench options of the timed run: one allocator. A malloc library (--malloc NAME=LIBRARY)
 * joins as bench's do: its NAME as the allocator here, and its replay in timedRunHooks.
 */
function timedRunOptions(values: ReplayValues): BenchOptions {
  const allocator = values.allocator ?? 'best-fit'
  if (!(REPLAY_ALLOCATORS as readonly string[]).includes(allocator)) {
    throw usage(`unknown allocator ${JSON.stringify(allocator)} (expected ${REPLAY_ALLOCATORS.join(', ')})`)
  }
  const alignment = alignmentOption('replay', values.alignment)
  const growth = byteOption('replay', 'growth', values.growth, DEFAULT_GROWTH)
  if (growth > MAX_GROWTH) throw usage(`--growth ${values.growth} is more than 1 TiB`)
  const segregateSmall = byteOption('replay', 'segregate-small', values['segregate-small'], DEFAULT_SEGREGATE_SMALL)
  if (segregateSmall > MAX_SEGREGATE_SMALL) throw usage(`--segregate-small ${values['segregate-small']} is more than 1 MiB`)
  return {
    allocators: [allocator],
    repeat: repeatOption('replay', values.repeat, DEFAULT_REPEAT),
    touch: values['no-touch'] !== true,
    growth,
    segregateSmall,
    alignment,
    maxLiveBytes: Infinity,
    maxHeapBytes: byteOption('replay', 'max-heap', values['max-heap'], 0) || null,
  }
}

/** How the runner replays: replay() for our strategies and libc. */
function timedRunHooks(progress: Progress): RunHooks {
  return { onWarning: (message) => progress.message(`${PROGRAM}: warning: ${message}\n`) }
}

export async function runReplayCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs('replay', args, REPLAY_OPTIONS, {
    allocator: 'an allocator name',
    malloc: 'NAME=LIBRARY',
    map: 'a file name',
    timeline: 'a file name',
  })
  if (values.help) {
    io.stdout.write(REPLAY_HELP)
    return 0
  }
  if (positionals.length !== 1) throw usage(positionals.length === 0 ? 'give the TRACE to replay' : `one TRACE at a time (got ${positionals.length}); bench replays several`)
  const options = timedRunOptions(values)
  let specs: MallocSpec[] = []
  if (values.malloc !== undefined) {
    if (values.allocator !== undefined) throw usage('--malloc replaces --allocator: give one of them')
    try {
      specs = parseMallocSpecs([values.malloc])
    } catch (error) {
      if (error instanceof AllocatorError) throw usage(error.message)
      throw error
    }
    options.allocators = [specs[0].name]
  }
  const allocator = options.allocators[0]
  const drawing = values.map !== undefined || values.timeline !== undefined
  if (drawing && !(STRATEGIES as readonly string[]).includes(allocator)) {
    throw usage(`--map and --timeline draw our heap; ${allocator} has no heap to draw (pick one of ${STRATEGIES.join(', ')})`)
  }
  if (values.map !== undefined) checkOutputFile('replay', 'map', values.map)
  if (values.timeline !== undefined) checkOutputFile('replay', 'timeline', values.timeline)

  const path = positionals[0]
  let trace: Trace
  try {
    trace = loadTrace(path)
  } catch (error) {
    const code = error instanceof AllocatorError ? error.code : ((error as NodeJS.ErrnoException).code ?? 'ERR_TRACE_READ')
    io.stderr.write(`${PROGRAM}: ${code}: ${path}: ${(error as Error).message}\n`)
    return 1
  }

  const progress = new Progress(io)
  progress.draw(`replaying ${trace.name} (${formatInteger(trace.opCount)} requests) with ${allocator}, ${options.repeat} timed run${options.repeat === 1 ? '' : 's'}`)
  const loaded: LoadedTrace = { name: trace.name, source: path, trace }
  let report
  try {
    report = runBench([loaded], options, { ...timedRunHooks(progress), ...(specs.length > 0 ? { replay: mallocReplay(specs) } : {}) })
  } finally {
    progress.finish('')
  }
  const result = report.results[0]

  let pictures: TracePictures | undefined
  if (drawing) {
    const showProgress = trace.opCount >= LONG_TRACE_OPS
    pictures = traceThroughHeap(trace, {
      strategy: allocator as Strategy,
      heap: {
        growth: options.growth,
        alignment: options.alignment,
        // createHeap refuses segregateSmall for bump (it would be ignored); the timed replay, as
        // bench's, ignores it there.
        ...(allocator === 'bump' ? {} : { segregateSmall: options.segregateSmall }),
        ...(options.maxHeapBytes ? { maxHeapBytes: options.maxHeapBytes } : {}),
      },
      onProgress: (fraction) => {
        if (showProgress) progress.draw(progressBar(fraction, `drawing ${trace.name}: ${Math.round(fraction * 100)}%`, progress.width()))
      },
    })
    progress.finish('')
    if (values.map !== undefined) {
      const title = `${allocator} heap at its peak replaying ${trace.name} (request ${formatInteger(pictures.peakOp)} of ${formatInteger(trace.opCount)})`
      writeFileSync(values.map, renderHeapMap(pictures.peak, { format: 'svg', title }))
    }
    if (values.timeline !== undefined) writeFileSync(values.timeline, renderTimeline(pictures))
  }

  if (values.json) {
    const document = {
      result,
      ...(values.map === undefined || pictures === undefined ? {} : { map: { file: values.map, peakOp: pictures.peakOp, peakHeapBytes: pictures.peak.stats.heapBytes } }),
      ...(values.timeline === undefined || pictures === undefined ? {} : { timeline: { file: values.timeline, samples: pictures.samples.length } }),
    }
    io.stdout.write(JSON.stringify(document, null, 2) + '\n')
  } else {
    io.stdout.write(
      `${trace.name}  (${formatInteger(trace.opCount)} ops, peak live ${humanBytes(trace.peakLiveBytes)} in ${formatInteger(trace.peakLiveChunks)} blocks; ${path})\n` +
        formatTraceTable([result]) +
        '\n',
    )
    if (pictures !== undefined) {
      if (values.map !== undefined) io.stdout.write(`heap map at the peak (request ${formatInteger(pictures.peakOp)}, ${humanBytes(pictures.peak.stats.heapBytes)} held): ${values.map}\n`)
      if (values.timeline !== undefined) io.stdout.write(`timeline (${pictures.samples.length} sample${pictures.samples.length === 1 ? '' : 's'}): ${values.timeline}\n`)
      if (pictures.stopped) io.stdout.write(`the pictures stop at request ${formatInteger(pictures.stopped.op)}: ${pictures.stopped.code}\n`)
    }
  }
  if (result.failed !== null) {
    io.stderr.write(`${PROGRAM}: ${allocator} failed on ${trace.name}: ${result.failed}${result.failureMessage ? `: ${result.failureMessage}` : ''}\n`)
    return 1
  }
  return 0
}

export const REPLAY_COMMAND: Command = {
  name: 'replay',
  usage: 'TRACE',
  summary: 'replay one trace against one allocator; --map and --timeline draw our heap at its peak and over time (SVG)',
  help: REPLAY_HELP,
  run: runReplayCommand,
}
