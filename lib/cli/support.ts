/**
 * What every subcommand of the command line shares: its streams, usage errors, option parsing
 * with messages in our words, number options, and the progress line on a terminal.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { packageRoot } from '../backends/package-root'
import { parseByteSize } from '../render/format'

export const PROGRAM = 'memory-allocator'

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** Wraps words to `width` columns, every line indented by `indent` spaces. */
export function wrapWords(text: string, indent: number, width: number): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(line)
  return lines.map((l) => ' '.repeat(indent) + l).join('\n')
}

export interface CliIo {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
  /** Whether stderr is a terminal: then a progress bar is drawn there. */
  isTTY: boolean
  /** Terminal width for the progress bar (default 80). */
  columns?: number
  /** ANSI colours on stdout (heap maps): a terminal, and NO_COLOR not set. Default false. */
  color?: boolean
}

/** A subcommand: its synopsis line for the main help, its own help, and how it runs. */
export interface Command {
  name: string
  /** The arguments after the name in the main help: "[TRACE...]". */
  usage: string
  /** One sentence for the main help; it is wrapped to the terminal's 80 columns. */
  summary: string
  help: string
  run(args: readonly string[], io: CliIo): Promise<number>
}

/** A usage error of one command (or of the program when `command` is undefined): exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(command === undefined ? message : `${command}: ${message}`)
  }
}

/** https://no-color.org: any non-empty NO_COLOR turns colours off. */
export function colorWanted(isTerminal: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  return isTerminal && !(env.NO_COLOR !== undefined && env.NO_COLOR !== '')
}

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * parseArgs with our messages. `--repeat -1` reaches the value check (parseArgs alone would call
 * "-1" a missing value); an option followed by another option says what value it needs, named by
 * `valueNames` (default "a value").
 */
export function parseCommandArgs<T extends Options>(
  command: string,
  args: readonly string[],
  options: T,
  valueNames: Partial<Record<keyof T, string>> = {},
): ReturnType<typeof parseArgs<{ options: T; allowPositionals: true }>> {
  const joined: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    const name = arg.startsWith('--') ? arg.slice(2) : undefined
    const next = args[i + 1]
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`)
      i++
    } else {
      joined.push(arg)
    }
    if (arg === '--') {
      joined.push(...args.slice(i + 1))
      break
    }
  }
  try {
    return parseArgs({ args: joined, options, allowPositionals: true, strict: true })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? ''
    if (!code.startsWith('ERR_PARSE_ARGS')) throw error
    // Node's messages are long and suggest "--" for positionals; say what is wrong in our words.
    const message = (error as Error).message
    const option = /'(-[^' ]*)/.exec(message)?.[1]
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${option ?? message}`, command)
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (/argument missing|argument is ambiguous/.test(message)) {
        const valueName = (option !== undefined && valueNames[option.replace(/^-+/, '') as keyof T]) || 'a value'
        throw new UsageError(`option ${option} needs ${valueName}`, command)
      }
      throw new UsageError(`option ${option} takes no value`, command)
    }
    throw new UsageError(message, command)
  }
}

export function wholeNumberOption(command: string, name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback
  const value = /^\d+$/.test(text.replace(/_/g, '')) ? Number(text.replace(/_/g, '')) : NaN
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`, command)
  return value
}

export function byteOption(command: string, name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const value = parseByteSize(text)
  if (value === undefined) throw new UsageError(`--${name} must be a byte count like 65536, 64K or 4G, got ${JSON.stringify(text)}`, command)
  return value
}

/**
 * Checks up front that `path` can be written (not a directory, its directory exists and is
 * writable), so that a run of minutes does not end in EISDIR.
 */
export function checkOutputFile(command: string, option: string, path: string): void {
  if (path === '') throw new UsageError(`--${option} needs a file name`, command)
  let existing: ReturnType<typeof statSync>
  try {
    existing = statSync(path, { throwIfNoEntry: false })
  } catch (error) {
    throw new UsageError(`--${option} ${path}: ${(error as Error).message}`, command)
  }
  if (existing?.isDirectory()) throw new UsageError(`--${option} ${path} is a directory; give a file name`, command)
  // An existing file must be writable itself; a new one needs a writable directory.
  const [target, what] = existing === undefined ? [dirname(resolve(path)), 'the directory does not exist or is not writable'] : [path, 'the file is not writable']
  try {
    accessSync(target, constants.W_OK)
  } catch {
    throw new UsageError(`--${option} ${path}: ${what}`, command)
  }
}

/** The progress line on a terminal; silent otherwise. Messages clear the line and redraw it. */
export class Progress {
  private readonly start = performance.now()
  private line = ''

  constructor(private readonly io: CliIo) {}

  elapsed(): number {
    return performance.now() - this.start
  }

  width(): number {
    // A pseudo-terminal without a size reports 0 columns.
    return Math.max(20, (this.io.columns || 80) - 1)
  }

  draw(line: string): void {
    if (!this.io.isTTY) return
    this.line = line.length > this.width() ? line.slice(0, this.width() - 1) + '…' : line
    this.io.stderr.write(`\r${this.line}\x1b[K`)
  }

  /** Writes a message (warning, error) to stderr without mangling the progress line. */
  message(text: string): void {
    if (!this.io.isTTY) {
      this.io.stderr.write(text)
      return
    }
    this.io.stderr.write(`\r\x1b[K${text}`)
    if (this.line !== '') this.io.stderr.write(this.line)
  }

  finish(text: string): void {
    if (!this.io.isTTY) return
    this.io.stderr.write(`\r\x1b[K${text}`)
    this.line = ''
  }
}

/** A progress bar: `[#####.....] label`, fitted to `width`. */
export function progressBar(fraction: number, label: string, width: number): string {
  const cells = 20
  const filled = Math.max(0, Math.min(cells, Math.floor(fraction * cells)))
  const text = `[${'#'.repeat(filled)}${'.'.repeat(cells - filled)}] ${label}`
  return text.length > width ? text.slice(0, width) : text
}
