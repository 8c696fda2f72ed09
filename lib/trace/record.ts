/**
 * record(): runs a program with the malloc-family recorder preloaded (native/recorder/recorder.c)
 * and collects the .rep traces it wrote, one per process, with their sidecar summaries.
 */
import type { StdioOptions } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { gzipSync } from 'node:zlib'
import { AllocatorError } from '../errors'
import { nativeFilePath } from '../backends/binding'
import { runCommand } from '../process/command'

export const RECORDER_FILE = 'memory-allocator-recorder.so'

/** The recorder library beside the addon (build/Release, else the prebuild); undefined without one. */
export function recorderPath(): string | undefined {
  return nativeFilePath(RECORDER_FILE)
}

/** One process's trace, with what the recorder's sidecar (TRACE.json) says about it. */
export interface RecordedTrace {
  /** The .rep file (.rep.gz when the output was asked for gzipped). */
  path: string
  /** The sidecar JSON file. */
  summaryPath: string
  /** The executable (/proc/PID/exe when it exited). */
  program: string
  pid: number
  ppid: number
  /** The pid of the recorded process this one was forked from, or null. */
  forkedFrom: number | null
  ops: number
  ids: number
  peakLiveBytes: number
  /** Blocks the program never freed (the trace does not free them). */
  liveBlocksAtExit: number
  liveBytesAtExit: number
  /** free() of a pointer the recorder never saw allocated (e.g. inherited across fork): not in the trace. */
  unknownFrees: number
  /** realloc() of such a pointer: written as a fresh allocation. */
  unknownReallocs: number
  /** Addresses handed out again although their free was never seen (a libc-internal free): written as a free first. */
  unseenFrees: number
  /** Blocks live in the parent when this process was forked. */
  inheritedBlocks: number
  /** This image was replaced by exec (the trace is STEM.PID.exec-K.rep); the next image of the pid has its own. */
  replacedByExec: boolean
}

export interface RecordOptions {
  /**
   * The trace of the launched process (default `./COMMAND.rep`): a name ending in `.rep`, or in
   * `.rep.gz` to gzip every trace of the run. Its companions are `STEM.PID.rep[.gz]` and
   * `STEM.PID.exec-K.rep[.gz]` beside it (STEM: the name without `.rep[.gz]`), and every trace's
   * summary is its name without `.gz`, plus `.json`.
   */
  output?: string
  /**
   * Record only the launched process's last image: not the processes it starts, nor the images
   * exec replaces (a version manager's shim that execs the real program). Default false.
   */
  topOnly?: boolean
  /** Environment of the command (default process.env); LD_PRELOAD and MA_RECORD_* are added. */
  env?: NodeJS.ProcessEnv
  stdio?: StdioOptions
  cwd?: string
}

export interface RecordResult {
  /** As a shell reports it: the exit code, or 128 + the signal number. */
  status: number
  signal: NodeJS.Signals | null
  /** The launched process first, then the others by pid. */
  traces: RecordedTrace[]
  /** The launched process's trace path (whether or not it was written). */
  output: string
  /** false when the command could not be started (status 127: not found, 126: not executable). */
  started: boolean
}

/** Trace names record() writes: FILE.rep, or FILE.rep.gz to gzip them. */
export const RECORD_OUTPUT = /\.rep(\.gz)?$/

/** The recorder writes plain text: FILE.rep.gz is recorded as FILE.rep and gzipped afterwards. */
export function splitGzip(output: string): { recorderFile: string; gzip: boolean } {
  const gzip = output.endsWith('.gz')
  return { recorderFile: gzip ? output.slice(0, -3) : output, gzip }
}

function readSummaries(recorderFile: string, run: string, gzip: boolean): RecordedTrace[] {
  const dir = dirname(recorderFile)
  const stem = basename(recorderFile).replace(/\.rep$/, '')
  const escaped = stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const forkedSidecar = new RegExp(`^${escaped}\\.\\d+(\\.exec-\\d+)?\\.rep\\.json$`)
  const mainSidecar = `${basename(recorderFile)}.json`
  const traces: RecordedTrace[] = []
  for (const name of readdirSync(dir)) {
    if (name !== mainSidecar && !forkedSidecar.test(name)) continue
    const summaryPath = join(dir, name)
    let summary: Record<string, unknown>
    try {
      summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, unknown>
    } catch {
      continue  // not one of ours
    }
    if (summary.run !== run || typeof summary.trace !== 'string') continue  // an earlier run's
    let path = summary.trace
    if (gzip && existsSync(path)) {
      writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: 9 }))
      unlinkSync(path)
      path = `${path}.gz`
    }
    const number = (key: string): number => (typeof summary[key] === 'number' ? (summary[key] as number) : 0)
    traces.push({
      path,
      summaryPath,
      program: typeof summary.program === 'string' ? summary.program : '',
      pid: number('pid'),
      ppid: number('ppid'),
      forkedFrom: number('forkedFrom') === 0 ? null : number('forkedFrom'),
      ops: number('ops'),
      ids: number('ids'),
      peakLiveBytes: number('peakLiveBytes'),
      liveBlocksAtExit: number('liveBlocksAtExit'),
      liveBytesAtExit: number('liveBytesAtExit'),
      unknownFrees: number('unknownFrees'),
      unknownReallocs: number('unknownReallocs'),
      unseenFrees: number('unseenFrees'),
      inheritedBlocks: number('inheritedBlocks'),
      replacedByExec: number('replacedByExec') === 1,
    })
  }
  const isMain = (trace: RecordedTrace): number => (trace.summaryPath === join(dir, mainSidecar) ? 0 : 1)
  return traces.sort((a, b) => isMain(a) - isMain(b) || a.pid - b.pid)
}

/**
 * Runs `command args` with the recorder preloaded; resolves when it has exited, with its status
 * and the traces of this run. A command that cannot be started resolves with status 127 (not
 * found) or 126 (not executable), as a shell reports it, and no traces. Rejects with
 * ERR_UNSUPPORTED when the recorder is not built, ERR_INVALID_OPTION for an unusable output.
 */
export async function record(command: string, args: readonly string[], options: RecordOptions = {}): Promise<RecordResult> {
  const library = recorderPath()
  if (library === undefined) {
    throw new AllocatorError('ERR_UNSUPPORTED', `the recorder library ${RECORDER_FILE} is not built (npm run build:native builds it; it needs Linux and a C compiler)`)
  }
  if (typeof command !== 'string' || command === '') throw new AllocatorError('ERR_INVALID_OPTION', 'record needs a command to run')
  const cwd = options.cwd ?? process.cwd()
  const output = resolve(cwd, options.output ?? `${basename(command)}.rep`)
  if (!RECORD_OUTPUT.test(output)) {
    // The companions' names come from the stem before .rep: `-o out.txt` gave out.txt.PID.rep and
    // `-o foo.gz` gave foo.gz beside foo.PID.rep.gz.
    throw new AllocatorError('ERR_INVALID_OPTION', `record: the trace must be named FILE.rep or FILE.rep.gz (the other traces are named after it), got ${basename(output)}`)
  }
  let isDirectory = false
  try {
    isDirectory = statSync(dirname(output)).isDirectory()
  } catch {
    // reported below
  }
  if (!isDirectory) throw new AllocatorError('ERR_INVALID_OPTION', `record: the directory of ${output} does not exist`)
  if (existsSync(output) && statSync(output).isDirectory()) throw new AllocatorError('ERR_INVALID_OPTION', `record: ${output} is a directory; give a file name`)

  const { recorderFile, gzip } = splitGzip(output)
  const run = randomUUID()
  const base = options.env ?? process.env
  const env: NodeJS.ProcessEnv = {
    ...base,
    LD_PRELOAD: base.LD_PRELOAD ? `${library} ${base.LD_PRELOAD}` : library,
    MA_RECORD_FILE: recorderFile,
    MA_RECORD_PARENT: String(process.pid),
    MA_RECORD_RUN: run,
    MA_RECORD_TOP_ONLY: '1',
  }
  if (options.topOnly !== true) delete env.MA_RECORD_TOP_ONLY  // nor inherited from an outer record
  const ended = await runCommand(command, args, { env, cwd, stdio: options.stdio })
  return {
    status: ended.status,
    signal: ended.signal,
    traces: readSummaries(recorderFile, run, gzip),
    output: gzip ? `${recorderFile}.gz` : recorderFile,
    started: ended.startError === null,
  }
}
