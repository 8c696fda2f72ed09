/**
 * `memory-allocator record [-o FILE.rep] -- COMMAND [ARGS...]`: runs COMMAND with the recorder
 * preloaded, then says on stderr where the traces went (stdout stays the program's). Resolves to
 * the command's exit status; 2 for a usage error (nothing ran), 1 when the recorder is missing.
 */
import { relative } from 'node:path'
import { formatInteger, humanBytes } from '../render/format'
import { record, type RecordedTrace } from '../trace/record'
import { PROGRAM, UsageError, type CliIo, type Command } from './support'

export const RECORD_HELP = `Usage: ${PROGRAM} record [-o FILE.rep] -- COMMAND [ARGS...]

Runs COMMAND with a preloaded library that records every malloc, calloc,
realloc, reallocarray, free, posix_memalign, aligned_alloc, memalign, valloc
and pvalloc into a malloc-lab .rep trace, ready for '${PROGRAM} bench FILE.rep'.

One trace per process: COMMAND itself writes FILE.rep; a process it forks or
runs writes FILE.PID.rep (FILE without .rep); a program image that exec
replaces writes FILE.PID.exec-K.rep first. A forked child records only the
blocks it allocates itself. Each trace has a summary next to it (TRACE.json).
free() of a pointer the recorder never saw allocated is counted there, never
written. Blocks still live at exit are not freed in the trace. A process ended
by _exit() or a signal leaves no trace. Statically linked and setuid programs
ignore LD_PRELOAD and are not recorded.

Options:
  -o, --output FILE  the trace of COMMAND (default ./COMMAND.rep); a name
                     ending in .gz gzips every trace of the run
  -h, --help         show this help

Exit status: COMMAND's (128+N when signal N ended it; 127 not found, 126 not
executable); 2 usage error; 1 the recorder library is not built.

Examples:
  PYTHONMALLOC=malloc ${PROGRAM} record -o py.rep -- python3 script.py
  ${PROGRAM} record -o git-log.rep.gz -- git log --stat -n 200
`

interface RecordArgs {
  output: string | undefined
  help: boolean
  command: string[]
}

/** Options come before the command; `--` may separate them (needed when COMMAND starts with -). */
function parseRecordArgs(args: readonly string[]): RecordArgs {
  const parsed: RecordArgs = { output: undefined, help: false, command: [] }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') {
      parsed.command = args.slice(i + 1)
      break
    }
    if (arg === '-h' || arg === '--help') {
      parsed.help = true
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

function describe(trace: RecordedTrace): string {
  const who = `pid ${trace.pid}${trace.forkedFrom === null ? '' : `, forked from ${trace.forkedFrom}`}${trace.replacedByExec ? ', then replaced by exec' : ''}`
  const unknown = trace.unknownFrees + trace.unknownReallocs
  const parts = [
    `${formatInteger(trace.ops)} ops`,
    `peak live ${humanBytes(trace.peakLiveBytes)}`,
    `${formatInteger(trace.liveBlocksAtExit)} blocks live at exit`,
    `unknown frees ${formatInteger(trace.unknownFrees)}${trace.unknownReallocs > 0 ? `, unknown reallocs ${formatInteger(trace.unknownReallocs)}` : ''}`,
  ]
  if (trace.unseenFrees > 0) parts.push(`unseen frees ${formatInteger(trace.unseenFrees)}`)
  const inherited = trace.inheritedBlocks > 0 && unknown > 0 ? ` (of ${formatInteger(trace.inheritedBlocks)} inherited blocks)` : ''
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
  // An AllocatorError (the recorder is not built, a bad -o) reaches main, which prints its code.
  const result = await record(command, commandArgs, { output: parsed.output })
  const how = result.status === 127 ? 'command not found' : result.status === 126 ? 'cannot execute' : result.signal !== null ? `ended by ${result.signal}` : `exit status ${result.status}`
  if (result.traces.length === 0) {
    io.stderr.write(
      `${PROGRAM}: ${command} (${how}) left no trace: it made no malloc call the recorder saw, is statically linked or setuid, or ended by _exit() or a signal (or the recorder said why above)\n`,
    )
  } else {
    io.stderr.write(`${PROGRAM}: recorded ${result.traces.length} trace${result.traces.length === 1 ? '' : 's'} of ${command} (${how}):\n`)
    for (const trace of result.traces) io.stderr.write(describe(trace))
  }
  return result.status
}

export const RECORD_COMMAND: Command = {
  name: 'record',
  usage: '[-o FILE.rep] -- COMMAND [ARGS...]',
  summary: 'run COMMAND and record its malloc calls into a trace',
  help: RECORD_HELP,
  run: runRecordCommand,
}
