/**
 * runProgram(): runs a command with this allocator as its malloc (the preloaded library of
 * native/malloc) and collects the reports every process of it wrote at exit from a fresh
 * temporary directory, which is removed afterwards.
 */
import type { StdioOptions } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCommand, type CommandResult } from '../process/command'
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

export interface RunProgramResult extends CommandResult {
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
    const ended = await runCommand(command, args, { env, cwd: options.cwd, stdio: options.stdio })
    const read = reportDir === undefined || ended.pid === null ? { reports: [], problems: [] } : readReports(reportDir, ended.pid)
    const top = read.reports[0]
    if (top !== undefined && top.pid === ended.pid && ended.signal === null) top.exitStatus = ended.status
    return { ...ended, ...read }
  } finally {
    if (reportDir !== undefined) rmSync(reportDir, { recursive: true, force: true })
  }
}
