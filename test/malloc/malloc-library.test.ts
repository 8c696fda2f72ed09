/**
 * The malloc library (native/malloc, build/Release/memory-allocator-malloc.so) preloaded into
 * C programs and real programs. The C cases (malloc_cases.c, compiled here with the system cc)
 * check the C contract, every bad-free code in both modes, an overflow past chunk ends, threads
 * with remote frees, thread churn, fork while other threads allocate, the exit report and the
 * shared break lock; real programs found on the machine must print byte for byte what they print
 * on glibc's malloc. Without the library, a C compiler or a program, the tests concerned skip
 * and say why.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(__dirname, '..', '..')
const library = join(root, 'build', 'Release', 'memory-allocator-malloc.so')

function findProgram(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // not here
    }
  }
  return undefined
}

const hasLibrary = process.platform === 'linux' && existsSync(library)
if (!hasLibrary) console.warn(`malloc library tests: ${library} is not built (Linux and a C compiler build it); skipped`)
const cc = findProgram('cc') ?? findProgram('gcc')
if (hasLibrary && cc === undefined) console.warn('malloc library tests: no C compiler (cc) here; the C cases are skipped')

let work = ''
let cases = ''

interface Run {
  status: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

// The environment of a preloaded run: the library and nothing of the caller's allocator settings.
function preloadEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: library, ...extra }
  for (const name of Object.keys(env)) {
    if (name.startsWith('MEMORY_ALLOCATOR_') && !(name in extra)) delete env[name]
  }
  return env
}

function runWith(file: string, args: string[], env: NodeJS.ProcessEnv, options: { input?: string; cwd?: string } = {}): Run {
  const result: SpawnSyncReturns<string> = spawnSync(file, args, {
    env,
    encoding: 'utf8',
    timeout: 30_000,
    input: options.input,
    cwd: options.cwd ?? work,
    maxBuffer: 64 << 20,
  })
  if (result.error) throw result.error
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr }
}

function runCase(args: string[], extra: Record<string, string> = {}): Run {
  return runWith(cases, args, preloadEnv(extra))
}

function expectClean(run: Run): void {
  expect(run.stderr).toBe('')
  expect(run.signal).toBeNull()
  expect(run.status).toBe(0)
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'ma-malloc-'))
  if (!hasLibrary || cc === undefined) return
  cases = join(work, 'malloc_cases')
  const built = spawnSync(cc, ['-O1', '-pthread', '-o', cases, join(__dirname, 'malloc_cases.c'), '-ldl'], { encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`cc failed:\n${built.stderr}`)
})

afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true })
})

describe.runIf(hasLibrary && cc !== undefined)('the malloc library: C cases', () => {
  it('keeps the C contract (errno, EINVAL, overflow, alignment, usable size, realloc, calloc)', () => {
    expectClean(runCase(['contract']))
  })

  it('is not disturbed by writes of 16 bytes past chunk ends', () => {
    expectClean(runCase(['overflow']))
  })

  const badFrees = [
    { which: 'double', fn: 'free', code: 'ERR_DOUBLE_FREE', what: () => 'a 48-byte chunk already freed' },
    { which: 'inside', fn: 'free', code: 'ERR_INVALID_POINTER', what: (chunk: string) => `inside a 64-byte live chunk at ${chunk} (16 bytes past its start)` },
    { which: 'foreign', fn: 'free', code: 'ERR_INVALID_POINTER', what: () => 'not in any heap of this allocator' },
    { which: 'remote', fn: 'free', code: 'ERR_DOUBLE_FREE', what: () => 'a 48-byte chunk already freed' },
    { which: 'realloc', fn: 'realloc', code: 'ERR_DOUBLE_FREE', what: () => 'a 48-byte chunk already freed' },
    { which: 'usable', fn: 'malloc_usable_size', code: 'ERR_INVALID_POINTER', what: (chunk: string) => `inside a 64-byte live chunk at ${chunk} (32 bytes past its start)` },
  ]
  for (const { which, fn, code, what } of badFrees) {
    it(`names a bad ${fn} (${which}) and stops the process with SIGABRT by default`, () => {
      const run = runCase(['bad-free', which])
      const [address, chunk] = run.stdout.trim().split(' ')
      expect(run.stderr).toBe(`memory-allocator: ${fn}(${address}): ${code}: ${what(chunk)}\n`)
      expect(run.signal).toBe('SIGABRT')
    })
    it(`names a bad ${fn} (${which}) and goes on with MEMORY_ALLOCATOR_ON_BAD_FREE=report`, () => {
      const run = runCase(['bad-free', which], { MEMORY_ALLOCATOR_ON_BAD_FREE: 'report' })
      const [address, chunk] = run.stdout.trim().split(' ')
      expect(run.stderr).toBe(`memory-allocator: ${fn}(${address}): ${code}: ${what(chunk)}\n`)
      expect(run.signal).toBeNull()
      expect(run.status).toBe(0)
    })
  }

  it('gives chunks freed by other threads back to their owners (producers and consumers)', () => {
    expectClean(runCase(['remote-frees']))
    // The same with a lock on every heap (what the library does where membarrier is missing).
    expectClean(runCase(['remote-frees'], { MEMORY_ALLOCATOR_LOCKED_HEAPS: '1' }))
    expectClean(runCase(['fork', '4'], { MEMORY_ALLOCATOR_LOCKED_HEAPS: '1' }))
  })

  it('sends frees between the main heap and a thread heap to the owner, both ways, fast path or not', () => {
    expectClean(runCase(['cross-frees']))
    // The main heap watched by a timeline and a peak snapshot takes the general path.
    const dir = mkdtempSync(join(work, 'cross-'))
    expectClean(runCase(['cross-frees'], { MEMORY_ALLOCATOR_REPORT_DIR: dir, MEMORY_ALLOCATOR_TIMELINE: '1', MEMORY_ALLOCATOR_SNAPSHOT: 'peak' }))
    expectClean(runCase(['cross-frees'], { MEMORY_ALLOCATOR_LOCKED_HEAPS: '1' }))
  })

  it('hands the heaps of exited threads on: never more heaps than the peak of live threads, plus main', () => {
    const dir = mkdtempSync(join(work, 'churn-'))
    expectClean(runCase(['churn'], { MEMORY_ALLOCATOR_REPORT_DIR: dir }))
    const [file] = readdirSync(dir)
    const report = JSON.parse(readFileSync(join(dir, file), 'utf8'))
    expect(report.heaps).toBeGreaterThanOrEqual(2)
    expect(report.heaps).toBeLessThanOrEqual(5)
    expect(report.threads).toBe(201)
    // Every chunk the threads made was freed, by them or (the one each left) by the main thread.
    expect(report.total.frees).toBeGreaterThanOrEqual(200 * 65)
    expect(report.total.allocs - report.total.frees).toBeLessThan(50)
  })

  it('forks while other threads allocate: every child allocates, starts a thread and exits 0', () => {
    const dir = mkdtempSync(join(work, 'fork-'))
    expectClean(runCase(['fork'], { MEMORY_ALLOCATOR_REPORT_DIR: dir }))
    // One report per process: the parent and its 20 children, each under its own pid.
    const reports = readdirSync(dir).map((file) => JSON.parse(readFileSync(join(dir, file), 'utf8')))
    expect(reports).toHaveLength(21)
    const parent = reports.find((report) => report.command[1] === 'fork' && !reports.some((other) => other.pid === report.ppid))
    expect(parent).toBeDefined()
    for (const report of reports) {
      if (report !== parent) expect(report.ppid).toBe(parent.pid)
    }
  })

  it('writes the exit report: stats of the main heap and all heaps, a snapshot at the peak, a timeline', () => {
    const dir = mkdtempSync(join(work, 'report-'))
    const run = runCase(['report'], {
      MEMORY_ALLOCATOR_REPORT_DIR: dir,
      MEMORY_ALLOCATOR_SNAPSHOT: 'peak',
      MEMORY_ALLOCATOR_TIMELINE: '1',
      MEMORY_ALLOCATOR_STRATEGY: 'first-fit',
    })
    expectClean(run)
    const files = readdirSync(dir)
    expect(files).toHaveLength(1)
    expect(files[0]).toMatch(/^\d+\.json$/)
    const report = JSON.parse(readFileSync(join(dir, files[0]), 'utf8'))
    expect(report.pid).toBe(Number(files[0].replace('.json', '')))
    expect(report.command).toEqual([cases, 'report'])
    expect(report.strategy).toBe('first-fit')
    expect(report.exitStatus).toBeNull()
    expect(report.heaps).toBe(2)
    expect(report.threads).toBe(2)
    expect(report.badFrees).toBe(0)
    const main = report.main
    for (const name of ['heapStart', 'heapEnd', 'heapBytes', 'peakHeapBytes', 'liveBytes', 'liveChunks', 'peakLiveBytes', 'freeBytes', 'freeChunks',
      'largestFreeChunk', 'metadataBytes', 'peakMetadataBytes', 'allocs', 'frees', 'reallocs', 'brkCalls', 'bytesReleased', 'segments', 'searchSteps', 'deferredChunks']) {
      expect(typeof main[name], name).toBe('number')
    }
    expect(main.allocs).toBeGreaterThanOrEqual(1000)
    expect(main.frees).toBeGreaterThanOrEqual(500)
    expect(main.brkCalls).toBeGreaterThan(0)
    expect(main.liveBytes).toBeGreaterThanOrEqual(500 * 100)
    expect(report.total.allocs).toBeGreaterThan(main.allocs)  // the thread's heap counts too
    expect(report.total.peakHeapBytes).toBeGreaterThan(main.peakHeapBytes)
    // The snapshot: the main heap at its peak, chunks in address order tiling it.
    const snapshot = report.snapshot
    expect(snapshot.at).toBe('peak')
    let live = 0
    let at = snapshot.chunks[0][0]
    expect(at).toBeGreaterThanOrEqual(snapshot.heapStart)
    for (const [address, size, state] of snapshot.chunks) {
      expect(address).toBe(at)
      expect(['live', 'free', 'deferred']).toContain(state)
      if (state === 'live') live += size
      at += size
    }
    expect(at).toBeLessThanOrEqual(snapshot.heapEnd)
    expect(live).toBeGreaterThanOrEqual(1000 * 100)
    expect(live).toBeLessThanOrEqual(main.peakLiveBytes)
    expect(live).toBeGreaterThan((main.peakLiveBytes * 63) / 64 - 1)
    // The timeline: (request, heapBytes, liveBytes), requests increasing.
    const timeline = report.timeline
    expect(timeline.every).toBeGreaterThanOrEqual(1)
    expect(timeline.samples.length).toBeGreaterThan(1000)
    expect(timeline.samples.length).toBeLessThanOrEqual(4096)
    for (let i = 1; i < timeline.samples.length; ++i) expect(timeline.samples[i][0]).toBeGreaterThan(timeline.samples[i - 1][0])
    // A sample every `every` requests, none missed (the library counts down to the next one).
    timeline.samples.forEach((sample: number[], i: number) => expect(sample[0]).toBe((i + 1) * timeline.every))
    expect(Math.max(...timeline.samples.map((sample: number[]) => sample[2]))).toBeLessThanOrEqual(main.peakLiveBytes)
  })

  it('counts reported bad frees in the report, and writes no chunk list or timeline unless asked', () => {
    const dir = mkdtempSync(join(work, 'bad-'))
    const run = runCase(['bad-free', 'double'], { MEMORY_ALLOCATOR_REPORT_DIR: dir, MEMORY_ALLOCATOR_ON_BAD_FREE: 'report' })
    expect(run.status).toBe(0)
    const [file] = readdirSync(dir)
    const report = JSON.parse(readFileSync(join(dir, file), 'utf8'))
    expect(report.badFrees).toBe(1)
    expect(report.snapshot).toBeNull()
    expect(report.timeline).toBeNull()
    expect(report.strategy).toBe('best-fit')
  })

  it('says so on an unknown strategy and uses best-fit', () => {
    const dir = mkdtempSync(join(work, 'strategy-'))
    const run = runCase(['contract'], { MEMORY_ALLOCATOR_STRATEGY: 'fastest-fit', MEMORY_ALLOCATOR_REPORT_DIR: dir })
    expect(run.stderr).toBe("memory-allocator: unknown MEMORY_ALLOCATOR_STRATEGY 'fastest-fit'; using best-fit\n")
    expect(run.status).toBe(0)
    const [file] = readdirSync(dir)
    expect(JSON.parse(readFileSync(join(dir, file), 'utf8')).strategy).toBe('best-fit')
  })

  for (const strategy of ['best-fit-linear', 'next-fit', 'worst-fit', 'bump']) {
    it(`runs the contract and the threads on ${strategy}`, () => {
      expectClean(runCase(['contract'], { MEMORY_ALLOCATOR_STRATEGY: strategy }))
      expectClean(runCase(['remote-frees'], { MEMORY_ALLOCATOR_STRATEGY: strategy }))
    })
  }

  it('exports one break lock for the process', () => {
    expectClean(runCase(['break-lock']))
  })
})

describe.runIf(hasLibrary)('the malloc library: Node and the addon share one break lock', () => {
  it('runs node with the addon creating brk heaps beside the library', () => {
    const script = `
      const { createHeap } = require(${JSON.stringify(join(root, 'dist', 'cjs', 'index.js'))})
      const heap = createHeap({ backend: 'native', source: 'brk' })
      const kept = []
      const buffers = []
      for (let i = 0; i < 20000; i++) {
        kept.push(heap.alloc(16 + (i % 300)))
        if (i % 3 === 0) heap.free(kept.splice(i % kept.length, 1)[0])
        if (i % 1000 === 0) buffers.push(Buffer.alloc(100000))  // node's own malloc: the library's heap
      }
      heap.check()
      const stats = heap.stats()
      console.log(heap.backend, heap.source, stats.liveChunks > 0, stats.brkCalls > 0)
    `
    const run = runWith(process.execPath, ['-e', script], preloadEnv())
    expect(run.stderr).toBe('')
    expect(run.stdout).toBe('native brk true true\n')
    expect(run.status).toBe(0)
  })
})

// ---- real programs: byte-identical output with and without the library

interface Program {
  name: string
  file: string | undefined
  args: string[]
  env?: Record<string, string>
  input?: string
  prepare?: (dir: string) => void
}

const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : findProgram('python3')
const programs: Program[] = [
  {
    name: 'python3 (PYTHONMALLOC=malloc)',
    file: python,
    env: { PYTHONMALLOC: 'malloc', PYTHONHASHSEED: '0' },
    args: ['-c', [
      'import json, re, collections, zlib, hashlib, threading',
      'words = [("w%d" % (i * 7919 % 1000)) * (i % 5 + 1) for i in range(60000)]',
      'counts = collections.Counter(words)',
      'doc = json.dumps({"top": counts.most_common(20), "n": len(counts)}, sort_keys=True)',
      'out = []',
      'def work(k): out.append(hashlib.sha256(zlib.compress((doc * (k + 1)).encode())).hexdigest())',
      'ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]',
      '[t.start() for t in ts]; [t.join() for t in ts]',
      'print(doc[:300]); print(sorted(out)); print(len(re.findall(r"w1\\d+", " ".join(words))))',
    ].join('\n')],
  },
  {
    name: 'perl',
    file: findProgram('perl'),
    args: ['-e', 'my %h; for my $i (1..50000) { $h{"k" . ($i * 7 % 5003)} .= "v$i," } my $t = 0; $t += length($h{$_}) for sort keys %h; print scalar(keys %h), " $t\\n"; print join(",", (sort { $a cmp $b } keys %h)[0..9]), "\\n";'],
  },
  {
    name: 'node',
    file: process.execPath,
    args: ['-e', 'const m = new Map(); for (let i = 0; i < 100000; i++) m.set("k" + (i * 31 % 7777), "v".repeat(i % 50)); let t = 0; for (const v of m.values()) t += v.length; console.log(m.size, t, JSON.stringify([...m.keys()].sort().slice(0, 5)))'],
  },
  {
    name: 'sh pipeline',
    file: findProgram('sh'),
    args: ['-c', 'seq 1 20000 | sed "s/1/one/g" | sort | uniq -c | sort -rn | head -20 | awk "{ s += \\$1; print } END { print s }"'],
  },
  {
    name: 'gcc (compile and run a small program)',
    file: findProgram('gcc'),
    args: ['-O2', '-o', 'hello', 'hello.c'],
    prepare: (dir) => writeFileSync(join(dir, 'hello.c'), '#include <stdio.h>\nint main(void) { long s = 0; for (int i = 0; i < 1000; i++) s += i * i; printf("%ld\\n", s); return 0; }\n'),
  },
  {
    name: 'sqlite3',
    file: findProgram('sqlite3'),
    args: [':memory:'],
    input: [
      'CREATE TABLE t(a INTEGER, b TEXT);',
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) INSERT INTO t SELECT x, hex(x * 7919 % 100003) FROM c;',
      'CREATE INDEX tb ON t(b);',
      'SELECT count(*), sum(a), min(b), max(b) FROM t;',
      'SELECT b FROM t ORDER BY b LIMIT 5;',
    ].join('\n'),
  },
  {
    name: 'git',
    file: findProgram('git'),
    args: ['-c', 'init.defaultBranch=main', '-c', 'user.name=t', '-c', 'user.email=t@example.com', 'init', '-q', 'repo'],
    prepare: () => undefined,
  },
]

describe.runIf(hasLibrary)('the malloc library: real programs print what they print on glibc', () => {
  for (const program of programs) {
    it.runIf(program.file !== undefined)(program.name, () => {
      const outputs: Run[] = []
      for (const preload of [false, true]) {
        const dir = mkdtempSync(join(work, 'program-'))
        program.prepare?.(dir)
        const base = { ...process.env, ...program.env }
        delete base.LD_PRELOAD
        const env = preload ? { ...preloadEnv(), ...program.env } : base
        let run = runWith(program.file as string, program.args, env, { input: program.input, cwd: dir })
        if (program.name.startsWith('gcc') && run.status === 0) run = runWith(join(dir, 'hello'), [], env, { cwd: dir })
        if (program.name === 'git' && run.status === 0) {
          const repo = join(dir, 'repo')
          for (let i = 0; i < 20; i++) writeFileSync(join(repo, `f${i}.txt`), `line ${i}\n`.repeat(i * 50 + 1))
          const git = (args: string[]) => runWith(program.file as string, ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { ...env, GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z' }, { cwd: repo })
          const added = git(['add', '.'])
          const committed = git(['commit', '-q', '-m', 'first'])
          run = git(['log', '--stat', '--format=%H %s'])
          run.status = added.status || committed.status || run.status
        }
        outputs.push(run)
      }
      const [glibc, ours] = outputs
      expect(glibc.status).toBe(0)
      expect(ours.stderr).toBe(glibc.stderr)
      expect(ours.stdout.length).toBeGreaterThan(0)
      expect(ours.stdout).toBe(glibc.stdout)
      expect(ours.status).toBe(0)
    })
    if (program.file === undefined) console.warn(`malloc library tests: ${program.name} is not installed here; its test is skipped`)
  }
})
