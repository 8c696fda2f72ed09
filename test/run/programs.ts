/** What the run and bench tests need of the machine: programs found on PATH, the CLI as a process. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { packageRoot } from '../../lib/backends/package-root'

/** The first executable `name` on PATH (or among `preferred` paths first), or undefined. */
export function findProgram(name: string, preferred: readonly string[] = []): string | undefined {
  for (const path of [...preferred, ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name))]) {
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // not here
    }
  }
  return undefined
}

/** A real interpreter, not a version manager's shim script (pyenv's runs dozens of processes). */
export const PYTHON = findProgram('python3', ['/usr/bin/python3'])
export const CC = findProgram('cc')

/** The command line as a user runs it: node bin/memory-allocator.js (dist/ must be built). */
export function cli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(packageRoot(), 'bin', 'memory-allocator.js'), ...args], {
    encoding: 'utf8',
    cwd: options.cwd,
    env: options.env ?? process.env,
    timeout: options.timeout ?? 30_000,
  })
}
