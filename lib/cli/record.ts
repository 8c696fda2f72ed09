/**
 * `memory-allocator record [-o FILE.rep] -- COMMAND [ARGS...]`: runs COMMAND with the recorder
 * preloaded, then says on stderr where the traces went (stdout stays the program's). Resolves to
 * the command's exit status; 2 for a usage error (nothing ran), 1 when the recorder is missing.
 */
import { existsSync } from 'node:fs'
import { basename, relative } from 'node:path'
import { formatInteger, humanBytes } from '../render/format'
import { RECORD_OUTPUT, record, splitGzip, type RecordedTrace } from '../trace/record'
import { PROGRAM, UsageError, type CliIo, type Command } from './support'

/** Traces listed one by one in the summary; the others are counted ("and K more"). */
const LISTED_TRACES = 8

export const RECORD_HELP = `Usage: ${PROGRAM} record [options] -- COMMAND [ARGS...]

Runs COMMAND with a preloaded library that records every malloc, calloc,
realloc, reallocarray, free, posix_memalign, aligned_alloc, memalign, valloc
and pvalloc into a malloc-lab .rep trace, ready for '${PROGRAM} bench FILE.rep'.

One trace per process: COMMAND itself writes FILE.rep; a process it forks or
runs writes FILE.PID.rep; a program image that exec replaces writes
FILE.PID.exec-K.rep first (FILE: the name without .rep or .rep.gz). With
FILE.rep.gz every trace is gzipped: FILE.PID.rep.gz, ... A forked child records
only the blocks it allocates itself. Each trace has a summary next to it, the
trace's name without .gz plus .json (FILE.rep.json). Only the first
${LISTED_TRACES} traces are listed at the end (COMMAND's first, then the largest).
free() of a pointer the recorder never saw allocated is counted there, never
written. Blocks still live at exit are not freed in the trace. A process ended
by _exit() or a signal leaves no trace. Statically linked and setuid programs
ignore LD_PRELOAD and are not recorded.

Options:
  -o, --output FILE  the trace of COMMAND (default ./COMMAND.rep): a name
                     ending in .rep, or in .rep.gz to gzip every trace
  --top-only         record only the program COMMAND ends up running: not the
                     processes it starts, nor the images exec replaces (a
                     version manager's shim, e.g. pyenv's python3, that execs
                     the real program)
  -f, --force        overwrite FILE when it exists (without it: exit 2)
  -h, --help         show this help

Exit status: COMMAND's (128+N when signal N ended it; 127 not found, 126 not
executable); 2 usage error (nothing ran); 1 the recorder library is not built.

Examples:
  PYTHONMALLOC=malloc ${PROGRAM} record --top-only -- python3 app.py
  ${PROGRAM} record -o git-log.rep.gz -- git log --stat -n 200
`

interface RecordArgs {
  output: string | undefined
  help: boolean
  topOnly: boolean
  force: boolean
  command: string[]
}

/** Options come before the command; `--` may separate them (needed when COMMAND starts with -). */
function parseRecordArgs(args: readonly string[]): RecordArgs {
  const parsed: RecordArgs = { output: undefined, help: false, topOnly: false, force: false, command: [] }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') {
      parsed.command = args.slice(i + 1)
      break
    }
    if (arg === '-h' || arg === '--help') {
      parsed.help = true
    } else if (arg === '--top-only') {
      parsed.topOnly = true
    } else if (arg === '-f' || arg === '--force') {
      parsed.force = true
    } else if (arg === '-o' || arg === '--output' || arg.startsWith('--output=')) {
      const value = arg.startsWith('--output=') ? arg.slice('--output='.length) : args[++i]
      if (value === undefined || value === '') throw new UsageError(`option ${arg.split('=')[0]} needs a file name`, 'record')
      parsed.output = value
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unknown option ${arg}`, 'record')
    } else {
      parsed.command = args.slice(i)
      break
    }
  }
  return parsed
}

/** "1 op", "2 ops", "1,000 blocks". */
function count(n: number, noun: string): string {
  return `${formatInteger(n)} ${noun}${n === 1 ? '' : 's'}`
}

/** Two lines of the summary for one trace. */
export function describeTrace(trace: RecordedTrace): string {
  const who = `pid ${trace.pid}${trace.forkedFrom === null ? '' : `, forked from ${trace.forkedFrom}`}${trace.replacedByExec ? ', then replaced by exec' : ''}`
  const unknown = trace.unknownFrees + trace.unknownReallocs
  const parts = [
    count(trace.ops, 'op'),
    `peak live ${humanBytes(trace.peakLiveBytes)}`,
    `${count(trace.liveBlocksAtExit, 'block')} live at exit`,
    `unknown frees ${formatInteger(trace.unknownFrees)}${trace.unknownReallocs > 0 ? `, unknown reallocs ${formatInteger(trace.unknownReallocs)}` : ''}`,
  ]
  if (trace.unseenFrees > 0) parts.push(`unseen frees ${formatInteger(trace.unseenFrees)}`)
  const inherited = trace.inheritedBlocks > 0 && unknown > 0 ? ` (of ${count(trace.inheritedBlocks, 'inherited block')})` : ''
  const shown = relative(process.cwd(), trace.path)
  return `  ${shown.startsWith('..') || shown === '' ? trace.path : shown}  ${trace.program} (${who})\n    ${parts.join(', ')}${inherited}\n`
}

export async function runRecordCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseRecordArgs(args)
  if (parsed.help) {
    io.stdout.write(RECORD_HELP)
    return 0
  }
  if (parsed.command.length === 0) throw new UsageError('no COMMAND to run (record [-o FILE.rep] -- COMMAND [ARGS...])', 'record')
  const [command, ...commandArgs] = parsed.command
  const output = parsed.output ?? `${basename(command)}.rep`
  if (!RECORD_OUTPUT.test(output)) {
    throw new UsageError(`the trace must be named FILE.rep or FILE.rep.gz (the other traces are named after it), got ${JSON.stringify(output)}`, 'record')
  }
  // A trace of an earlier run is not replaced in silence; with .rep.gz the recorder writes FILE.rep first.
  const existing = [output, splitGzip(output).recorderFile].find((path) => existsSync(path))
  if (existing !== undefined && !parsed.force) {
    throw new UsageError(`${existing} exists; give --force to overwrite it, or -o another name`, 'record')
  }
  // An AllocatorError (the recorder is not built, a missing directory) reaches main, which prints its code.
  const result = await record(command, commandArgs, { output, topOnly: parsed.topOnly })
  if (!result.started) {
    io.stderr.write(`${PROGRAM}: record: ${result.status === 127 ? `command not found: ${command}` : `cannot execute ${command}`}\n`)
    return result.status
  }
  const how = result.signal !== null ? `ended by ${result.signal}` : `exit status ${result.status}`
  if (result.traces.length === 0) {
    io.stderr.write(
      `${PROGRAM}: ${command} (${how}) left no trace: it made no malloc call the recorder saw, is statically linked or setuid, or ended by _exit() or a signal (or the recorder said why above)\n`,
    )
  } else {
    io.stderr.write(`${PROGRAM}: recorded ${count(result.traces.length, 'trace')} of ${command} (${how}):\n`)
    // COMMAND's own first, then the largest: a shell script's dozens of small helpers are not news.
    const [first, ...others] = result.traces
    const listed = [first, ...[...others].sort((a, b) => b.ops - a.ops || a.pid - b.pid).slice(0, LISTED_TRACES - 1)]
    for (const trace of listed) io.stderr.write(describeTrace(trace))
    const rest = result.traces.length - listed.length
    if (rest > 0) {
      const ops = others.filter((trace) => !listed.includes(trace)).reduce((sum, trace) => sum + trace.ops, 0)
      io.stderr.write(`  and ${count(rest, 'more trace')} (${count(ops, 'op')} in all) beside them, each with its .json summary; --top-only records COMMAND alone\n`)
    }
  }
  return result.status
}

export const RECORD_COMMAND: Command = {
  name: 'record',
  usage: '[-o FILE.rep] [--top-only] -- COMMAND [ARGS...]',
  summary: 'run COMMAND and record its malloc calls into a trace',
  help: RECORD_HELP,
  run: runRecordCommand,
}
