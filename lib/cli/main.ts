/**
 * The `memory-allocator` command line. bin/memory-allocator.js calls main(argv), which resolves to
 * the exit code (DESIGN.md): 0 done, 1 a run failed (the others still ran), 2 a usage error
 * (nothing ran). main takes its output streams as an argument so that tests run it in-process.
 * Every subcommand is a file of this folder with the same shape: its help text, an exported
 * `runXCommand(args, io): Promise<number>`, and the Command entry listed in COMMANDS below.
 */
import { AllocatorError } from '../errors'
import { BENCH_COMMAND } from './bench'
import { DEMO_COMMAND } from './demo'
import { RECORD_COMMAND } from './record'
import { REPLAY_COMMAND } from './replay'
import { RUN_COMMAND } from './run'
import { PROGRAM, UsageError, colorWanted, packageVersion, wrapWords, type CliIo, type Command } from './support'

export type { CliIo, Command } from './support'

function processIo(): CliIo {
  // `memory-allocator bench --json | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error
    process.exit(process.exitCode ?? 0)
  })
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    isTTY: process.stderr.isTTY === true,
    columns: process.stderr.columns,
    color: colorWanted(process.stdout.isTTY === true),
  }
}

/** The subcommands, in the order the main help lists them. */
export const COMMANDS: readonly Command[] = [BENCH_COMMAND, REPLAY_COMMAND, RECORD_COMMAND, RUN_COMMAND, DEMO_COMMAND]

function findCommand(name: string | undefined): Command | undefined {
  return COMMANDS.find((command) => command.name === name)
}

/** "  bench [TRACE...]   replay ...", the summary wrapped beside the usage (or under a long one). */
function commandLine(command: Command): string {
  const usage = `  ${command.name} ${command.usage}`.trimEnd()
  const summary = wrapWords(command.summary, 21, 80)
  return usage.length <= 19 ? usage.padEnd(21) + summary.slice(21) : `${usage}\n${summary}`
}

export const MAIN_HELP = `Usage: ${PROGRAM} <command> [options]

Commands:
${COMMANDS.map(commandLine).join('\n')}

Options:
  -h, --help         show this help
  -v, --version      print the version

Run '${PROGRAM} help COMMAND' or '${PROGRAM} COMMAND --help' for details.
Exit status: 0 done; 1 a run failed (the others still ran); 2 usage error
(nothing ran).
`

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    const [first, ...rest] = argv
    if (first === undefined) {
      io.stderr.write(MAIN_HELP)
      return 2
    }
    if (first === '-h' || first === '--help' || first === 'help') {
      if (rest.length === 0) {
        io.stdout.write(MAIN_HELP)
        return 0
      }
      const command = findCommand(rest[0])
      if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(rest[0])}`)
      io.stdout.write(command.help)
      return 0
    }
    if (first === '-v' || first === '--version') {
      io.stdout.write(`${packageVersion()}\n`)
      return 0
    }
    const command = findCommand(first)
    if (command !== undefined) return await command.run(rest, io)
    if (first.startsWith('-')) throw new UsageError(`unknown option ${first}`)
    throw new UsageError(`unknown command ${JSON.stringify(first)} (the commands are ${COMMANDS.map((c) => c.name).join(', ')})`)
  } catch (error) {
    if (error instanceof UsageError) {
      const help = error.command === undefined ? `${PROGRAM} --help` : `${PROGRAM} ${error.command} --help`
      io.stderr.write(`${PROGRAM}: ${error.message}\nRun '${help}' for usage.\n`)
      return 2
    }
    if (error instanceof AllocatorError) {
      io.stderr.write(`${PROGRAM}: ${error.code}: ${error.message}\n`)
      return error.code === 'ERR_INVALID_OPTION' ? 2 : 1
    }
    throw error
  }
}

