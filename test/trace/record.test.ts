/**
 * record(): real programs found on this machine, run with the recorder preloaded. Every trace is
 * checked by a validator written here, independent of lib/trace/trace.ts, then loaded and replayed
 * through every allocator. A program that is missing skips its test and says so.
 */
import { execFileSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nativeBinding } from '../../lib/backends/binding'
import { record, recorderPath, type RecordedTrace } from '../../lib/trace/record'
import { replay, REPLAY_ALLOCATORS } from '../../lib/replay/replay'
import { loadTrace } from '../../lib/trace/trace'
import { run } from '../cli/helpers'

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

function available(name: string, path = findProgram(name)): string | undefined {
  if (path === undefined) console.warn(`record tests: ${name} is not installed here; its test is skipped`)
  return path
}

interface Checked {
  ops: number
  ids: number
  peakLiveBytes: number
  allocs: number
  frees: number
  reallocs: number
}

/**
 * The recorder's promises, checked line by line: the header (peak live, ids, ops, weight 1)
 * matches the body, every id is allocated exactly once (fresh ids) and in order, every f and r
 * names a live id, no a names a live id, and nothing but `a ID SIZE`, `f ID`, `r ID SIZE`.
 */
function validateRep(text: string): Checked {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const header = lines.slice(0, 4).map((line) => {
    if (!/^\d+$/.test(line)) throw new Error(`header line ${JSON.stringify(line)} is not a number`)
    return Number(line)
  })
  if (header.length !== 4 || header[3] !== 1) throw new Error(`bad header ${header.join(',')}`)
  const live = new Map<number, number>()
  const counts = { allocs: 0, frees: 0, reallocs: 0 }
  let nextId = 0
  let liveBytes = 0
  let peak = 0
  for (let i = 4; i < lines.length; i++) {
    const where = `line ${i + 1} ${JSON.stringify(lines[i])}`
    const match = /^(a|r) (\d+) (\d+)$|^f (\d+)$/.exec(lines[i])
    if (match === null) throw new Error(`${where}: not a request`)
    const id = Number(match[2] ?? match[4])
    if (match[1] === 'a') {
      if (live.has(id)) throw new Error(`${where}: a of a live id`)
      if (id !== nextId) throw new Error(`${where}: id ${id} is not the next fresh id ${nextId}`)
      nextId++
      live.set(id, Number(match[3]))
      liveBytes += Number(match[3])
      counts.allocs++
    } else if (match[1] === 'r') {
      if (!live.has(id)) throw new Error(`${where}: r of an id that is not live`)
      liveBytes += Number(match[3]) - live.get(id)!
      live.set(id, Number(match[3]))
      counts.reallocs++
    } else {
      if (!live.has(id)) throw new Error(`${where}: f of an id that is not live`)
      liveBytes -= live.get(id)!
      live.delete(id)
      counts.frees++
    }
    peak = Math.max(peak, liveBytes)
  }
  const ops = lines.length - 4
  if (header[1] !== nextId) throw new Error(`header says ${header[1]} ids, the body allocates ${nextId}`)
  if (header[2] !== ops) throw new Error(`header says ${header[2]} ops, the body has ${ops}`)
  if (header[0] !== peak) throw new Error(`header says peak live ${header[0]}, the body peaks at ${peak}`)
  return { ops, ids: nextId, peakLiveBytes: peak, ...counts }
}

function readRep(path: string): string {
  const data = readFileSync(path)
  return (path.endsWith('.gz') ? gunzipSync(data) : data).toString('latin1')
}

/** Validates, compares with the sidecar, and replays through every allocator. */
function checkTrace(trace: RecordedTrace): Checked {
  const checked = validateRep(readRep(trace.path))
  expect({ ops: checked.ops, ids: checked.ids, peakLiveBytes: checked.peakLiveBytes }).toEqual({
    ops: trace.ops,
    ids: trace.ids,
    peakLiveBytes: trace.peakLiveBytes,
  })
  expect(checked.ops).toBeGreaterThan(0)
  const loaded = loadTrace(trace.path)
  expect(loaded.opCount).toBe(checked.ops)
  expect(loaded.peakLiveBytes).toBe(checked.peakLiveBytes)
  for (const allocator of REPLAY_ALLOCATORS) {
    const result = replay(loaded, { allocator, touch: false, repeat: 1, growth: 4096 })
    expect(result.ops).toBe(checked.ops)
    expect(result.peakLiveBytes).toBe(checked.peakLiveBytes)
  }
  return checked
}

const quiet = { stdio: ['ignore', 'ignore', 'inherit'] as ('ignore' | 'inherit')[] }

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'memory-allocator-record-'))
})
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('the validator of recorded traces', () => {
  it('accepts a valid trace and names the line of each broken promise', () => {
    expect(validateRep('16\n2\n4\n1\na 0 8\na 1 8\nr 0 4\nf 1\n')).toMatchObject({ ops: 4, ids: 2, peakLiveBytes: 16 })
    expect(() => validateRep('8\n1\n2\n1\na 0 8\nf 1\n')).toThrow(/line 6 .*f of an id that is not live/)
    expect(() => validateRep('8\n1\n2\n1\na 0 8\na 0 8\n')).toThrow(/line 6 .*a of a live id/)
    expect(() => validateRep('8\n2\n2\n1\na 0 8\na 2 8\n')).toThrow(/not the next fresh id/)
    expect(() => validateRep('8\n1\n3\n1\na 0 8\nf 0\n')).toThrow(/3 ops/)
    expect(() => validateRep('9\n1\n2\n1\na 0 8\nf 0\n')).toThrow(/peak live 9/)
    expect(() => validateRep('8\n1\n1\n1\na 0 8 # note\n')).toThrow(/not a request/)
  })
})

describe('the recorded traces kept in bench/traces', () => {
  const kept = join(__dirname, '..', '..', 'bench', 'traces')
  it.each(readdirSync(kept).filter((name) => name.endsWith('.rep.gz')))('%s is valid and small', (name) => {
    const path = join(kept, name)
    expect(statSync(path).size).toBeLessThan(300 * 1024)
    const checked = validateRep(readRep(path))
    expect(loadTrace(path)).toMatchObject({ opCount: checked.ops, numIds: checked.ids, peakLiveBytes: checked.peakLiveBytes })
  })
})

describe.skipIf(recorderPath() === undefined || nativeBinding() === undefined)('record', () => {
  const perl = available('perl')
  // The system's python first: a version manager's shim (pyenv) is a shell script that execs it.
  const python = available('python3', existsSync('/usr/bin/python3') ? '/usr/bin/python3' : findProgram('python3'))
  const cc = available('cc')

  it.skipIf(perl === undefined)('records perl, and the child it forks as a trace of its own', async () => {
    const script = `
      my %index; my @lines;
      for my $i (1..3000) { my $w = join(' ', map { "w$_" x ($_ % 7 + 1) } 1..($i % 13 + 1)); push @lines, $w; $index{$_}++ for split / /, $w }
      my @sorted = sort { $index{$b} <=> $index{$a} } keys %index;
      my $pid = fork();
      if ($pid == 0) { my @mine = map { reverse $_ } @lines[0..500]; @lines = (); exit 0 }
      waitpid($pid, 0); @lines = reverse @lines; print scalar(@sorted), "\\n";`
    const result = await record(perl!, ['-e', script], { output: join(dir, 'perl.rep'), ...quiet })
    expect(result.status).toBe(0)
    expect(result.traces).toHaveLength(2)
    const [parent, child] = result.traces
    expect(parent.path).toBe(join(dir, 'perl.rep'))
    expect(child.path).toBe(join(dir, `perl.${child.pid}.rep`))
    expect(child.forkedFrom).toBe(parent.pid)
    expect(child.inheritedBlocks).toBeGreaterThan(1000)
    // `@lines = ()` frees inherited strings: counted, never written.
    expect(child.unknownFrees).toBeGreaterThan(100)
    expect(parent.unknownFrees).toBe(0)
    expect(checkTrace(parent).ops).toBeGreaterThan(10_000)
    checkTrace(child)
  })

  it.skipIf(perl === undefined)('writes the trace of an image that exec replaces, and removes it again when exec fails', async () => {
    const script = `my @a = map { "z" x $_ } 1..2000; exec("/nonexistent-program") or my @b = (1..50);
      exec "${perl}", "-e", 'my @c = map { "y" x $_ } 1..3000'`
    const result = await record(perl!, ['-e', script], { output: join(dir, 'exec.rep'), ...quiet })
    expect(result.status).toBe(0)
    expect(result.traces.map((trace) => trace.path)).toEqual([join(dir, 'exec.rep'), join(dir, `exec.${result.traces[0].pid}.exec-1.rep`)])
    const [after, before] = result.traces
    expect(after.pid).toBe(before.pid)
    expect([after.replacedByExec, before.replacedByExec]).toEqual([false, true])
    expect(checkTrace(before).allocs).toBeGreaterThan(2000)
    expect(checkTrace(after).allocs).toBeGreaterThan(3000)
  })

  it.skipIf(perl === undefined)('drops the trace, and writes nothing into its files, when the program closes the recorder\'s descriptor', async () => {
    const victim = join(dir, 'victim.txt')
    const script = `use POSIX; my @x = map { "a" x $_ } 1..3000; POSIX::close($_) for 3..1023;
      open(my $f, ">", "${victim}") or die; my @y = map { "b" x $_ } 1..3000; close $f;`
    const result = await record(perl!, ['-e', script], { output: join(dir, 'closer.rep'), stdio: 'ignore' })
    expect(result.status).toBe(0)
    expect(result.traces).toEqual([])
    expect(statSync(victim).size).toBe(0)
  })

  it.skipIf(python === undefined)('records python3 with PYTHONMALLOC=malloc', async () => {
    const script = 'import json, re\nrows = [{"id": i, "name": "n" * (i % 40), "tags": list(range(i % 9))} for i in range(1000)]\n' +
      'text = json.dumps(rows)\nback = json.loads(text)\nprint(len(re.findall(r"\\d+", text)), len(back))\n'
    const result = await record(python!, ['-c', script], { output: join(dir, 'python.rep'), env: { ...process.env, PYTHONMALLOC: 'malloc' }, ...quiet })
    expect(result.status).toBe(0)
    expect(result.traces[0].path).toBe(join(dir, 'python.rep'))
    expect(result.traces[0].program).toMatch(/python/)
    const checked = checkTrace(result.traces[0])
    expect(checked.allocs).toBeGreaterThan(20_000)
    expect(checked.reallocs).toBeGreaterThan(0)
  })

  it('records node itself, a multi-threaded program, into a gzipped trace', async () => {
    const script = `const zlib = require('node:zlib'); const crypto = require('node:crypto'); let keep = []
      for (let i = 0; i < 300; i++) { keep.push(Buffer.alloc(64 + (i % 50) * 8)); crypto.createHash('sha256').update(keep[i]).digest() }
      zlib.gzipSync(Buffer.alloc(1 << 16, 7)); keep = null`
    const result = await record(process.execPath, ['-e', script], { output: join(dir, 'node.rep.gz'), ...quiet })
    expect(result.status).toBe(0)
    expect(result.traces).toHaveLength(1)
    expect(result.traces[0].path).toBe(join(dir, 'node.rep.gz'))
    expect(checkTrace(result.traces[0]).ops).toBeGreaterThan(5_000)
  })

  describe.skipIf(cc === undefined)('a C program with threads', () => {
    // Four threads allocate, reallocate and free; every block is freed by another thread than
    // the one that allocated it. With EXIT_FROM_THREAD a worker calls exit() while the others run.
    const source = `
      #include <pthread.h>
      #include <stdlib.h>
      #include <string.h>
      #include <unistd.h>
      #define THREADS 4
      #define ROUNDS 5000
      static void* volatile handoff[THREADS][64];
      static void* work(void* arg) {
        long t = (long)arg;
        unsigned seed = (unsigned)t * 7919u + 1u;
        for (int i = 0; i < ROUNDS; i++) {
          seed = seed * 1103515245u + 12345u;
          size_t size = 8 + (seed >> 16) % 600;
          void* p = (seed & 1) ? malloc(size) : calloc(1, size);
          if ((seed >> 3) & 1) p = realloc(p, size * 2);
          if (i % 97 == 0) { void* q = NULL; if (posix_memalign(&q, 64, size) == 0) free(q); free(aligned_alloc(32, 64)); }
          memset(p, 1, size);
          void* old = __atomic_exchange_n(&handoff[(t + 1) % THREADS][i % 64], p, __ATOMIC_ACQ_REL);
          free(old);
          if (t == 1 && i == ROUNDS / 2 && getenv("EXIT_FROM_THREAD")) exit(0);
        }
        return NULL;
      }
      int main(void) {
        pthread_t threads[THREADS];
        for (long t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, work, (void*)t);
        for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
        for (int t = 0; t < THREADS; t++) for (int i = 0; i < 64; i++) free(handoff[t][i]);
        return 0;
      }`
    let program: string
    beforeAll(() => {
      writeFileSync(join(dir, 'threads.c'), source)
      program = join(dir, 'threads')
      execFileSync(cc!, ['-O1', '-pthread', '-o', program, join(dir, 'threads.c')])
    })

    it('serializes every thread into one valid order', async () => {
      const result = await record(program, [], { output: join(dir, 'threads.rep'), ...quiet })
      expect(result.status).toBe(0)
      const checked = checkTrace(result.traces[0])
      expect(checked.allocs).toBeGreaterThanOrEqual(4 * 5000)
      expect(result.traces[0].unknownFrees).toBe(0)
    })

    it('writes the trace when a thread calls exit() while the others still allocate', async () => {
      const result = await record(program, [], { output: join(dir, 'threads-exit.rep'), env: { ...process.env, EXIT_FROM_THREAD: '1' }, ...quiet })
      expect(result.status).toBe(0)
      expect(result.traces).toHaveLength(1)
      expect(checkTrace(result.traces[0]).allocs).toBeGreaterThan(2500)
    })
  })
})

describe.skipIf(recorderPath() === undefined)('memory-allocator record', () => {
  it('exits with the command\'s status and says where the traces went', async () => {
    const output = join(dir, 'sh.rep')
    // sh forks `ls`, which writes its own trace; sh itself ends with exit status 3.
    const result = await run(['record', '-o', output, '--', 'sh', '-c', 'ls / > /dev/null; exit 3'])
    expect(result.code).toBe(3)
    expect(result.stderr).toMatch(/recorded \d+ traces? of sh \(exit status 3\)/)
    expect(result.stderr).toMatch(/sh\.\d+\.rep .*\/ls \(pid \d+\)/)
    const ls = /(sh\.\d+\.rep)/.exec(result.stderr)![1]
    expect(validateRep(readFileSync(join(dir, ls), 'latin1')).ops).toBeGreaterThan(10)
  })

  it('reports a signal as 128 + its number, and a missing command as 127', async () => {
    const killed = await run(['record', '-o', join(dir, 'killed.rep'), '--', 'sh', '-c', 'kill -9 $$'])
    expect(killed.code).toBe(137)
    const missing = await run(['record', '-o', join(dir, 'missing.rep'), '--', join(dir, 'no-such-program')])
    expect(missing.code).toBe(127)
    expect(missing.stderr).toContain('not found')
  })

  it('is a usage error (2) without a command, with an unknown option, or into a missing directory', async () => {
    for (const argv of [['record'], ['record', '--'], ['record', '-x', '--', 'true'], ['record', '-o'], ['record', '-o', join(dir, 'nope', 'x.rep'), '--', 'true']]) {
      const result = await run(argv)
      expect(result.code, argv.join(' ')).toBe(2)
      expect(result.stderr).toMatch(/record/)
    }
    expect((await run(['record', '--help'])).stdout).toContain('Usage: memory-allocator record')
  })
})
