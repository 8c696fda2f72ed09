/**
 * runProgram(): runs a command with this allocator as its malloc (the preloaded library of
 * native/malloc) and collects the reports every process of it wrote at exit from a fresh
 * temporary directory, which is removed afterwards.
 */
import { spawn, type StdioOptions } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { constants as osConstants, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Strategy } from '../types'
import { runEnvironment, type OnBadFree } from './environment'
import { requireMallocLibrary } from './library'
import { readReports, type ProcessReport } from './report'

export interface RunProgramOptions {
  strategy?: Strategy
  onBadFree?: OnBadFree
  /** Collect the per-process reports (needed by --stats, --json, --map, --timeline). */
  reports?: boolean
  snapshot?: 'peak' | 'exit'
  timeline?: boolean
  env?: NodeJS.ProcessEnv
  stdio?: StdioOptions
  cwd?: string
}

export interface RunProgramResult {
  /** As a shell reports it: the exit code, 128 + N after signal N, 127 not found, 126 not executable. */
  status: number
  signal: NodeJS.Signals | null
  /** The command could not be started: 'not found' or 'not executable' with the system's reason. */
  startError: string | null
  /** The started process's pid, or null when it could not start. */
  pid: number | null
  /** The started process first (with its exitStatus filled in), then the others by pid. */
  reports: ProcessReport[]
  /** Report files that could not be read: "<file>: <what is wrong>". */
  problems: string[]
}

/**
 * Runs `command args` on this allocator; resolves when it has exited. Rejects with
 * ERR_UNSUPPORTED when the malloc library is not built.
 */
export async function runProgram(command: string, args: readonly string[], options: RunProgramOptions = {}): Promise<RunProgramResult> {
  const library = requireMallocLibrary()
  const reportDir = options.reports ? mkdtempSync(join(tmpdir(), 'memory-allocator-run-')) : undefined
  const env = runEnvironment(
    library,
    { strategy: options.strategy, onBadFree: options.onBadFree, reportDir, snapshot: options.snapshot, timeline: options.timeline },
    options.env ?? process.env,
  )
  try {
    return await new Promise((resolvePromise) => {
      const child = spawn(command, [...args], { env, cwd: options.cwd, stdio: options.stdio ?? 'inherit' })
      // Ctrl-C reaches the whole process group: the program handles it, and its reports are still
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
        const pid = child.pid ?? null
        const read = reportDir === undefined || pid === null ? { reports: [], problems: [] } : readReports(reportDir, pid)
        const top = read.reports[0]
        if (top !== undefined && top.pid === pid && signal === null) top.exitStatus = status
        resolvePromise({ status, signal, startError, pid, ...read })
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
  } finally {
    if (reportDir !== undefined) rmSync(reportDir, { recursive: true, force: true })
  }
}
