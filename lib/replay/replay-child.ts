/**
 * Replaying a trace against another malloc (jemalloc, mimalloc, tcmalloc, ...): a child Node
 * process preloads the library (LD_PRELOAD) and runs the addon's own 'libc' replay, the loop that
 * times glibc in this process, so that every malloc is timed by the same code.
 *
 * Memory: a malloc keeps its bookkeeping to itself, so the one honest figure is what the kernel
 * says: the child's peak resident set growth during the replay. The child reads VmRSS, resets
 * its peak (writing 5 to /proc/self/clear_refs), replays, and reads VmHWM; the growth is
 * VmHWM - VmRSS, less the replay's own two per-id tables (a pointer and a length per trace id,
 * 16 bytes, which it allocates from the same malloc and fills during every run). What remains is
 * every page the malloc touched for the trace's blocks and its own metadata.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkMallocLibrary } from './elf'
import { AllocatorError, type ErrorCode } from '../errors'
import { addonPath } from '../backends/binding'
import type { Trace } from '../trace/trace'

export interface ChildReplayOptions {
  touch: boolean
  repeat: number
}

export interface ChildReplayFigures {
  nsPerOp: number
  runsNsPerOp: number[]
  peakLiveBytes: number
  /** Peak resident set growth of the child during the replay; null when it cannot be measured. */
  peakRssGrowthBytes: number | null
}

/** native/core/replay.cpp's TimedRun: std::vector<void*> blocks and std::vector<size_t> lengths, one entry per id. */
const REPLAY_TABLE_BYTES_PER_ID = 16

// Runs in the child (plain CommonJS, so that it also runs from the TypeScript sources in tests).
// argv: addon path, trace directory, numIds, options JSON, library path or '' for none.
const CHILD_SCRIPT = String.raw`
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const [addon, dir, numIds, optionsJson, library] = process.argv.slice(1)
const reply = (value) => fs.writeSync(1, JSON.stringify(value))
const statusBytes = (key) => {
  const match = new RegExp('^' + key + ':\\s+(\\d+) kB', 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return match === null ? null : Number(match[1]) * 1024
}
const read = (name, Type) => {
  const data = fs.readFileSync(path.join(dir, name))
  return new Type(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
}
if (library !== '') {
  const mapped = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((line) => line.endsWith(' ' + library))
  if (!mapped) {
    reply({ error: { code: 'ERR_UNSUPPORTED', message: 'the dynamic loader did not preload ' + library + ' (is it a shared library for this architecture?)' } })
    process.exit(0)
  }
}
const binding = require(addon)
binding.setErrorFactory((code, message) => Object.assign(new Error(message), { code }))
const kinds = read('kinds', Uint8Array)
const ids = read('ids', Int32Array)
const sizes = read('sizes', Float64Array)
const options = JSON.parse(optionsJson)
let resettable = true
const rssBefore = statusBytes('VmRSS')
try {
  fs.writeFileSync('/proc/self/clear_refs', '5')
} catch {
  resettable = false
}
const hwmBefore = statusBytes('VmHWM')
try {
  const result = binding.replay(kinds, ids, sizes, Number(numIds), 'libc', {
    source: 'mmap', alignment: 16, growth: 0, trimThreshold: 0, segregateSmall: 0, touch: options.touch, repeat: options.repeat,
  })
  const hwmAfter = statusBytes('VmHWM')
  // Without the reset, the peak during the replay is known only if the replay set a new one.
  const known = rssBefore !== null && hwmAfter !== null && (resettable || hwmAfter > hwmBefore)
  const replayTables = ${REPLAY_TABLE_BYTES_PER_ID} * Number(numIds)
  reply({ result, peakRssGrowthBytes: known ? Math.max(0, hwmAfter - rssBefore - replayTables) : null })
} catch (error) {
  reply({ error: { code: error.code ?? 'ERR_UNSUPPORTED', message: error.message } })
}
`

/**
 * The library as the dynamic loader will map it: a path must name an existing file (its real
 * path is what /proc/self/maps shows). A bare soname (libjemalloc.so.2) is looked up by the loader.
 */
function resolveLibrary(library: string): string {
  if (typeof library !== 'string' || library === '') {
    throw new AllocatorError('ERR_INVALID_OPTION', 'replay option library must be the path of a malloc shared library')
  }
  if (!library.includes('/')) {
    for (const dir of ['/lib', '/usr/lib', `/usr/lib/${process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch}-linux-gnu`, '/usr/local/lib']) {
      if (existsSync(join(dir, library))) return realpathSync(join(dir, library))
    }
    throw new AllocatorError('ERR_INVALID_OPTION', `replay option library ${JSON.stringify(library)}: no such library in the system library directories; give its path`)
  }
  let real: string
  try {
    real = realpathSync(library)
  } catch {
    throw new AllocatorError('ERR_INVALID_OPTION', `replay option library ${JSON.stringify(library)}: no such file`)
  }
  if (!statSync(real).isFile()) throw new AllocatorError('ERR_INVALID_OPTION', `replay option library ${JSON.stringify(library)} is not a file`)
  return real
}

function usableLibrary(library: string): string {
  const path = resolveLibrary(library)
  const check = checkMallocLibrary(path)
  if (!check.ok) throw new AllocatorError('ERR_UNSUPPORTED', `${path} cannot replace malloc: ${check.reason}`)
  return path
}

/**
 * Replays `trace` with the 'libc' loop in a child process that preloads `library` (undefined:
 * the child's own glibc, so that glibc's memory is measured the same way).
 */
export function replayInChild(trace: Trace, options: ChildReplayOptions, library: string | undefined): ChildReplayFigures {
  if (process.platform !== 'linux') throw new AllocatorError('ERR_UNSUPPORTED', `replaying another malloc needs Linux's LD_PRELOAD; this is ${process.platform}`)
  const preload = library === undefined ? '' : usableLibrary(library)
  const dir = mkdtempSync(join(tmpdir(), 'memory-allocator-replay-'))
  try {
    writeFileSync(join(dir, 'kinds'), trace.kinds)
    writeFileSync(join(dir, 'ids'), trace.ids)
    writeFileSync(join(dir, 'sizes'), trace.sizes)
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.LD_PRELOAD
    if (preload !== '') env.LD_PRELOAD = preload
    const child = spawnSync(
      process.execPath,
      ['-e', CHILD_SCRIPT, addonPath(), dir, String(trace.numIds), JSON.stringify(options), preload],
      { env, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const who = preload === '' ? 'the child replay' : `the child replay with ${preload}`
    if (child.error) throw new AllocatorError('ERR_UNSUPPORTED', `${who} could not start: ${child.error.message}`)
    let reply: { result?: ChildReplayFigures & { peakLiveBytes: number }; peakRssGrowthBytes?: number | null; error?: { code: string; message: string } }
    try {
      reply = JSON.parse(child.stdout)
    } catch {
      const how = child.signal !== null ? `was killed by ${child.signal}` : `exited with status ${child.status}`
      const detail = child.stderr.trim().split('\n').slice(-3).join(' ')
      throw new AllocatorError('ERR_UNSUPPORTED', `${who} ${how}${detail === '' ? '' : `: ${detail}`}`)
    }
    if (reply.error !== undefined) throw new AllocatorError(reply.error.code as ErrorCode, `${preload === '' ? '' : `${preload}: `}${reply.error.message}`)
    const result = reply.result!
    return {
      nsPerOp: result.nsPerOp,
      runsNsPerOp: result.runsNsPerOp,
      peakLiveBytes: result.peakLiveBytes,
      peakRssGrowthBytes: reply.peakRssGrowthBytes ?? null,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
