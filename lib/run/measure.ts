/**
 * One measured run of a command through native/measure (memory-allocator-measure): the command's
 * own wall time, CPU time and peak resident set from wait4, which Node's spawn cannot report, and
 * its output, captured. Variables meant for the command (LD_PRELOAD above all) are passed with
 * --env, so that the runner itself never loads the library under test.
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { requireMeasure } from './library'

export interface MeasuredRun {
  wallNs: number
  /** User + system CPU of the command and the processes it waited for. */
  cpuNs: number
  userNs: number
  sysNs: number
  /** The largest resident set of the command (or of any process it waited for), bytes. */
  maxRssBytes: number
  /** null after a signal. */
  exitStatus: number | null
  /** The signal number that ended it, or null. */
  signal: number | null
  /** "command not found: ..." / "cannot execute: ...", or null when it started. */
  error: string | null
  /** sha256 of everything it wrote on stdout. */
  stdoutHash: string
  stdoutBytes: number
  /** The last part of its stderr (for a failure's message). */
  stderrTail: string
}

const STDERR_TAIL = 2000

interface MeasureLine {
  wallNs: number
  userUs: number
  sysUs: number
  maxRssKiB: number
  exitStatus: number | null
  signal: number | null
  error: string | null
}

function parseMeasureLine(text: string): MeasureLine {
  const line = JSON.parse(text) as Partial<MeasureLine>
  for (const key of ['wallNs', 'userUs', 'sysUs', 'maxRssKiB'] as const) {
    if (typeof line[key] !== 'number') throw new Error(`the measuring runner's report has no ${key}: ${text.trim()}`)
  }
  return line as MeasureLine
}

/** Runs `command args` once with `env` added to the command's environment (not the runner's). */
export async function measureRun(command: string, args: readonly string[], env: Record<string, string> = {}, options: { cwd?: string } = {}): Promise<MeasuredRun> {
  const runner = requireMeasure()
  const envArgs = Object.entries(env).flatMap(([name, value]) => ['--env', `${name}=${value}`])
  return new Promise((resolvePromise, reject) => {
    const child = spawn(runner, ['--fd', '3', ...envArgs, '--', command, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], cwd: options.cwd })
    const hash = createHash('sha256')
    let stdoutBytes = 0
    let stderr = ''
    let report = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      hash.update(chunk)
      stdoutBytes += chunk.length
    })
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL)
    })
    ;(child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
      report += chunk.toString('utf8')
    })
    child.on('error', reject)
    child.on('close', () => {
      let line: MeasureLine
      try {
        line = parseMeasureLine(report)
      } catch (error) {
        reject(new Error(`the measuring runner failed: ${stderr.trim() || (error as Error).message}`))
        return
      }
      resolvePromise({
        wallNs: line.wallNs,
        cpuNs: (line.userUs + line.sysUs) * 1000,
        userNs: line.userUs * 1000,
        sysNs: line.sysUs * 1000,
        maxRssBytes: line.maxRssKiB * 1024,
        exitStatus: line.exitStatus,
        signal: line.signal,
        error: line.error,
        stdoutHash: hash.digest('hex'),
        stdoutBytes,
        stderrTail: stderr,
      })
    })
  })
}
