/**
 * runCommand(): starts a program as a shell would and resolves with the status a shell reports.
 * `record` (a recorder preloaded) and `run` (the malloc library preloaded) both start a command
 * and collect what its processes wrote once it has exited; how the child is started, how signals
 * reach it and how its end becomes a status live here once.
 */
import { spawn, type StdioOptions } from 'node:child_process'
import { constants as osConstants } from 'node:os'

export interface CommandOptions {
  env: NodeJS.ProcessEnv
  cwd?: string
  /** Default 'inherit': the program talks to the user's terminal. */
  stdio?: StdioOptions
}

export interface CommandResult {
  /** As a shell reports it: the exit code, 128 + N after signal N, 127 not found, 126 not executable. */
  status: number
  signal: NodeJS.Signals | null
  /** The command could not be started: 'command not found' or 'cannot execute', with the system's code. */
  startError: string | null
  /** The started process's pid, or null when it could not start. */
  pid: number | null
}

/** Runs `command args`; resolves when it has exited (never rejects). */
export function runCommand(command: string, args: readonly string[], options: CommandOptions): Promise<CommandResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, [...args], { env: options.env, cwd: options.cwd, stdio: options.stdio ?? 'inherit' })
    // Ctrl-C reaches the whole process group: the program handles it, and what it wrote is still
    // collected. A termination aimed at us alone is passed on.
    const ignore = (): void => {}
    const pass = (signal: NodeJS.Signals): void => {
      child.kill(signal)
    }
    process.on('SIGINT', ignore)
    process.on('SIGTERM', pass)
    process.on('SIGHUP', pass)
    let done = false
    const finish = (status: number, signal: NodeJS.Signals | null, startError: string | null): void => {
      if (done) return
      done = true
      process.off('SIGINT', ignore)
      process.off('SIGTERM', pass)
      process.off('SIGHUP', pass)
      resolvePromise({ status, signal, startError, pid: child.pid ?? null })
    }
    child.on('error', (error: NodeJS.ErrnoException) => {
      // Only a failure to start ends the run here; a started child ends with 'close'.
      if (child.pid !== undefined) return
      const notFound = error.code === 'ENOENT'
      finish(notFound ? 127 : 126, null, `${notFound ? 'command not found' : 'cannot execute'} (${error.code ?? error.message})`)
    })
    child.on('close', (code, signal) => {
      finish(signal !== null ? 128 + (osConstants.signals[signal] ?? 0) : (code ?? 1), signal, null)
    })
  })
}
