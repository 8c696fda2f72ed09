/**
 * Runs out-of-memory-child.cjs in a child process under `prlimit --data` (util-linux), for the
 * out-of-memory suites. The child requires the built package (dist/), as a user's program would.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { warnIfDistIsStale } from './support'

const CHILD = join(__dirname, 'out-of-memory-child.cjs')
const DIST = join(__dirname, '..', '..', 'dist', 'cjs', 'index.js')
const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit', '/usr/sbin/prlimit'].find((path) => existsSync(path))

warnIfDistIsStale()

/** prlimit and the built package are both there. */
export const canLimitData = PRLIMIT !== undefined && existsSync(DIST)

export interface ChildReport {
  source: string
  limit: number
  usedAtStart: number
  chunks: number
  refusal: { code: string | null; name: string; message: string }
  heapBytesAtRefusal: number
  metadataBytes: number
  reallocatedAfterFrees: number
  refusalAfterFrees: string | null
  liveChunksAtEnd: number
}

/** Runs the child under a data limit of `limitBytes`: its report, or how it ended instead. */
export function runUnderDataLimit(source: 'brk' | 'mmap', chunkBytes: number, limitBytes: number): { report?: ChildReport; failure?: string } {
  // --single-threaded, --no-opt, --no-sparkplug: no V8 compiler that could need memory just as
  // the heap takes the last of it (TurboFan then dies of std::bad_alloc, on its thread or on the
  // main one), so that only the heap's own calls meet the limit.
  const args = [`--data=${limitBytes}`, process.execPath, '--single-threaded', '--no-opt', '--no-sparkplug', CHILD, source, String(chunkBytes)]
  const result = spawnSync(PRLIMIT!, args, { encoding: 'utf8', timeout: 60_000 })
  if (result.status !== 0) {
    const how = result.signal === null ? `exited with ${result.status}` : `was killed by ${result.signal}`
    // Its first lines say who gave up (V8's fatal errors name themselves there) and its last ones
    // where (a stack): both are kept.
    const stderr = result.stderr.trim()
    const said = stderr.length <= 900 ? stderr : `${stderr.slice(0, 300)}\n…\n${stderr.slice(-600)}`
    return { failure: `the child ${how}: ${said}` }
  }
  return { report: JSON.parse(result.stdout.trim().split('\n').pop()!) as ChildReport }
}
