/**
 * `memory-allocator run [options] -- COMMAND [ARGS...]`: COMMAND (and every process it starts) on
 * this allocator, through the preloaded malloc library; afterwards, on request, what the library
 * reported at each process's exit: --stats on stderr, --json, and the main heap drawn by the
 * existing renderers (--map, --timeline). Resolves to the command's own exit status.
 */
import { writeFileSync } from 'node:fs'
import { formatInteger, humanBytes } from '../render/format'
import { PROGRAM, UsageError, checkOutputFile, parseCommandArgs, type CliIo, type Command } from './support'
import { AllocatorError } from '../errors'
import { renderHeapMap } from '../render/heap-map'
import { STRATEGIES } from '../heap/options'
import { renderTimeline } from '../render/timeline'
import type { Strategy } from '../types'
import { ON_BAD_FREE, type OnBadFree } from '../run/environment'
import { MALLOC_LIBRARY_FILE } from '../run/library'
import { commandText, heapSnapshot, mapTitle, pictureFile, timelinePictures, timelineTitle } from '../run/pictures'
import type { ProcessReport } from '../run/report'
import { runProgram, type RunProgramResult } from '../run/run-program'
import { endedText, formatProcessStats } from '../run/summary'

export const RUN_HELP = `Usage: ${PROGRAM} run [options] -- COMMAND [ARGS...]

Runs COMMAND with this allocator as its malloc: a preloaded library
(${MALLOC_LIBRARY_FILE}, built from the same core) replaces malloc, free,
calloc, realloc and the rest in COMMAND and in every process it starts. The
main heap grows by moving the real program break; threads get heaps of their
own. Every free is checked: a bad one is named on stderr in one line.

Options:
  --allocator A      the fit strategy of every heap: ${STRATEGIES.join(', ')}
                     (default best-fit)
  --stats            after COMMAND ends, a summary per process on stderr:
                     peak heap, peak live, utilization, metadata, chunks,
                     break moves, heaps, threads, bad frees
  --json FILE        write the same per process, as a JSON array, to FILE
  --map FILE.svg     draw the main heap at its peak (or at exit, where a
                     snapshot at the peak would cost too much; the title says
                     which): every chunk by address. Where several processes
                     ran, FILE.svg is COMMAND's and FILE-PID.svg each other's
  --timeline FILE.svg
                     plot the main heap's bytes held and live over its
                     requests (FILE-PID.svg for other processes, as --map)
  --on-bad-free abort|report
                     a free of something that is not a live chunk: stop the
                     process with SIGABRT (abort, the default) or print the
                     line and go on (report)
  -h, --help         show this help

The existing LD_PRELOAD is kept, after the allocator's library. A process
ended by a signal or _exit(), or statically linked, writes no report; where
COMMAND wrote none (sh's exit is an _exit), FILE.svg goes to the first process
that did. PYTHONMALLOC=malloc makes Python use malloc for its small objects too.

Exit status: COMMAND's (128+N when signal N ended it; 127 not found, 126 not
executable); 2 usage error (nothing ran); 1 the malloc library is not built.

Examples:
  ${PROGRAM} run --stats -- python3 -c 'print(sum(range(10**6)))'
  PYTHONMALLOC=malloc ${PROGRAM} run --map heap.svg -- python3 script.py
  ${PROGRAM} run --allocator first-fit --json report.json -- gcc -c file.c
`

const RUN_OPTIONS = {
  allocator: { type: 'string' },
  stats: { type: 'boolean' },
  json: { type: 'string' },
  map: { type: 'string' },
  timeline: { type: 'string' },
  'on-bad-free': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

const usage = (message: string): UsageError => new UsageError(message, 'run')
/** Processes --stats describes in full; the others are counted. */
const STATS_SHOWN = 8

/**
 * Options before COMMAND: everything up to `--`, or up to the first word that is neither an option
 * nor an option's value (so that `run python3 -c ...` needs no `--`, and COMMAND's own options
 * are never read as ours).
 */
export function splitCommand(args: readonly string[], options: Record<string, { type: string }>): { ours: string[]; command: string[] } {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') return { ours: args.slice(0, i), command: args.slice(i + 1) }
    if (!arg.startsWith('-') || arg === '-') return { ours: args.slice(0, i), command: args.slice(i) }
    const name = arg.startsWith('--') ? arg.slice(2) : undefined
    if (name !== undefined && !name.includes('=') && options[name]?.type === 'string') i++
  }
  return { ours: [...args], command: [] }
}

interface RunRequest {
  strategy: Strategy
  onBadFree: OnBadFree
  stats: boolean
  json: string | undefined
  map: string | undefined
  timeline: string | undefined
}

function parseRunArgs(args: readonly string[]): { help: true } | { help: false; request: RunRequest; command: string[] } {
  const { ours, command } = splitCommand(args, RUN_OPTIONS)
  const { values, positionals } = parseCommandArgs('run', ours, RUN_OPTIONS, {
    allocator: 'a strategy',
    json: 'a file name',
    map: 'a file name',
    timeline: 'a file name',
    'on-bad-free': 'abort or report',
  })
  if (values.help) return { help: true }
  if (positionals.length > 0) throw usage(`unexpected ${JSON.stringify(positionals[0])} before COMMAND`)
  if (command.length === 0) throw usage('no COMMAND to run (run [options] -- COMMAND [ARGS...])')
  const strategy = values.allocator ?? 'best-fit'
  if (!(STRATEGIES as readonly string[]).includes(strategy)) {
    throw usage(`unknown allocator ${JSON.stringify(strategy)} (expected ${STRATEGIES.join(', ')}; libc needs no run: run COMMAND itself)`)
  }
  const onBadFree = values['on-bad-free'] ?? 'abort'
  if (!(ON_BAD_FREE as readonly string[]).includes(onBadFree)) throw usage(`--on-bad-free must be abort or report, got ${JSON.stringify(onBadFree)}`)
  for (const option of ['json', 'map', 'timeline'] as const) {
    if (values[option] !== undefined) checkOutputFile('run', option, values[option])
  }
  const files = (['json', 'map', 'timeline'] as const).filter((option) => values[option] !== undefined)
  for (let i = 0; i < files.length; i++) {
    for (let j = i + 1; j < files.length; j++) {
      if (values[files[i]] === values[files[j]]) throw usage(`--${files[i]} and --${files[j]} name the same file ${values[files[i]]}`)
    }
  }
  return {
    help: false,
    command,
    request: { strategy: strategy as Strategy, onBadFree: onBadFree as OnBadFree, stats: values.stats === true, json: values.json, map: values.map, timeline: values.timeline },
  }
}

/** Writes a file, or says on stderr why not; returns whether it was written. */
function writeOutput(io: CliIo, path: string, text: string): boolean {
  try {
    writeFileSync(path, text)
    return true
  } catch (error) {
    io.stderr.write(`${PROGRAM}: run: cannot write ${path}: ${(error as Error).message}\n`)
    return false
  }
}

/**
 * Draws one picture per process that has what it needs: FILE.svg for COMMAND (or for the first
 * process when COMMAND wrote no report), FILE-PID.svg for each other; says on stderr what was
 * written, in one line for the others however many there are.
 */
function writePictures(io: CliIo, request: RunRequest, reports: readonly ProcessReport[], topPid: number | null): void {
  const say = (text: string): void => {
    io.stderr.write(`${PROGRAM}: run: ${text}\n`)
  }
  const draw = (option: 'map' | 'timeline', file: string, render: (report: ProcessReport) => { svg: string; what: string } | undefined): void => {
    const others: number[] = []
    let none = true
    for (const report of reports) {
      const picture = render(report)
      if (picture === undefined) continue
      const main = report.pid === topPid || (topPid === null && none)
      none = false
      const path = pictureFile(file, main ? undefined : report.pid)
      if (!writeOutput(io, path, picture.svg)) continue
      if (main) say(`${picture.what}: ${path}`)
      else others.push(report.pid)
    }
    if (others.length > 0) say(`--${option} of ${others.length} other process${others.length === 1 ? '' : 'es'}: ${pictureFile(file, 'PID')} for PID ${others.length <= 6 ? others.join(', ') : `${others.slice(0, 5).join(', ')}, ... ${others.at(-1)}`}`)
    if (none) say(`--${option}: no process wrote ${option === 'map' ? 'a heap snapshot' : 'samples'}, so nothing was drawn`)
  }
  if (request.map !== undefined) {
    draw('map', request.map, (report) => {
      const snapshot = report.snapshot
      if (snapshot === null) return undefined
      const why = snapshot.at === 'exit' ? ` (no snapshot at the peak: ${snapshot.reason ?? 'it would have cost too much'})` : ''
      return {
        svg: renderHeapMap(heapSnapshot(report, snapshot), { format: 'svg', title: mapTitle(report, snapshot) }),
        what: `heap map of pid ${report.pid} at ${snapshot.at === 'peak' ? 'its peak' : 'exit'}${why}, ${formatInteger(snapshot.chunks.length)} chunks in ${humanBytes(snapshot.heapEnd - snapshot.heapStart)}`,
      }
    })
  }
  if (request.timeline !== undefined) {
    draw('timeline', request.timeline, (report) => {
      const pictures = timelinePictures(report)
      if (pictures === undefined) return undefined
      return { svg: renderTimeline(pictures, { title: timelineTitle(report, pictures) }), what: `timeline of pid ${report.pid} (${pictures.samples.length} samples)` }
    })
  }
}

function describeEnd(result: RunProgramResult): string {
  return endedText(result.signal === null ? result.status : null, result.signal)
}

export async function runRunCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseRunArgs(args)
  if (parsed.help) {
    io.stdout.write(RUN_HELP)
    return 0
  }
  const { request, command } = parsed
  const wantReports = request.stats || request.json !== undefined || request.map !== undefined || request.timeline !== undefined
  let result: RunProgramResult
  try {
    result = await runProgram(command[0], command.slice(1), {
      strategy: request.strategy,
      onBadFree: request.onBadFree,
      reports: wantReports,
      ...(request.map !== undefined ? { snapshot: 'peak' as const } : {}),
      timeline: request.timeline !== undefined,
    })
  } catch (error) {
    if (!(error instanceof AllocatorError)) throw error
    io.stderr.write(`${PROGRAM}: run: ${error.code}: ${error.message}\n`)
    return 1
  }
  if (result.startError !== null) {
    io.stderr.write(`${PROGRAM}: run: ${command[0]}: ${result.startError}\n`)
    return result.status
  }
  for (const problem of result.problems) io.stderr.write(`${PROGRAM}: run: a report the malloc library wrote cannot be used: ${problem}\n`)
  if (!wantReports) return result.status

  const { reports } = result
  const topReported = reports.length > 0 && reports[0].pid === result.pid
  const topUnusable = result.problems.some((problem) => problem.startsWith(`${result.pid}.json:`))
  if (!topReported && !topUnusable) {
    io.stderr.write(
      `${PROGRAM}: run: ${commandText(command)} (pid ${result.pid}, ${describeEnd(result)}) wrote no report: it ended by a signal or _exit(), exec'd a statically linked or setuid program, or did not load the library\n`,
    )
  }
  if (request.stats) {
    // A shell script or a build can start hundreds of processes: COMMAND and the largest heaps
    // are shown, the rest counted (all of them are in --json).
    const shown = [...(topReported ? [reports[0]] : []), ...[...reports.slice(topReported ? 1 : 0)].sort((a, b) => b.total.peakHeapBytes - a.total.peakHeapBytes).slice(0, STATS_SHOWN - (topReported ? 1 : 0))]
    const count = reports.length
    io.stderr.write(`${PROGRAM} run: ${count} process${count === 1 ? '' : 'es'} reported${count > shown.length ? `; ${topReported ? 'COMMAND and ' : ''}the ${shown.length - (topReported ? 1 : 0)} largest heaps of the others below` : ''}\n`)
    for (const report of shown) {
      const ended = report.pid === result.pid ? describeEnd(result) : report.exitStatus === null ? 'exited' : endedText(report.exitStatus, null)
      io.stderr.write(formatProcessStats(report, ended))
    }
    if (count > shown.length) io.stderr.write(`... and ${count - shown.length} more process${count - shown.length === 1 ? '' : 'es'}${request.json === undefined ? ' (--json FILE writes every one)' : ` (every one is in ${request.json})`}\n`)
  }
  if (request.json !== undefined) writeOutput(io, request.json, JSON.stringify(reports, null, 2) + '\n')
  writePictures(io, request, reports, topReported ? result.pid : null)
  return result.status
}

export const RUN_COMMAND: Command = {
  name: 'run',
  usage: '[options] -- COMMAND [ARGS...]',
  summary: 'run COMMAND with this allocator as its malloc; --stats, --json, --map and --timeline show its heap',
  help: RUN_HELP,
  run: runRunCommand,
}
