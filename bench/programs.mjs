// Issue 15's targets (and issue 14's `run` single-threaded target) measured on whole programs:
// mimalloc-bench's programs and real programs (python3, perl, node, gcc, sqlite3, git, sh), each
// under glibc, under this allocator's strategies (`run`), and under jemalloc, mimalloc and
// tcmalloc preloaded; interleaved, medians of --repeat; wall time (or the program's own
// throughput where it runs for a fixed time), CPU time and the command's peak RSS, x glibc.
//
//   node bench/programs.mjs [--manifest FILE] [--allocators best-fit,bump,libc]
//        [--malloc NAME=LIBRARY]... [--repeat 3] [--only NAME,...] [--harness cli|self]
//        [--bump-repeat N] [--timeout SECONDS] [--max-rss MIB] [--budget MINUTES]
//        [--out FILE.txt] [--json-out FILE.json]
//
// THE PROGRAMS AND THE MANIFEST ARE NOT IN THIS REPOSITORY. The manifest (a JSON array; its path
// from --manifest, else $MA_BENCH_PROGRAMS, else /work/mb-all/programs.json) names each program:
//   { name, kind: "multi"|"single", threads, cwd, argv, env, stdin, inputs,
//     metric: null | { regex, unit, higher }, compare: "exact"|"numbers-masked"|"numbers-masked-unordered",
//     note }
// mimalloc-bench (github.com/daanx/mimalloc-bench) is built outside the repository; nothing here
// builds it. The workloads of the real programs are the small scripts in bench/programs-workloads/.
//
// How each allocator is run:
// - `libc`: the program as it is (glibc's malloc).
// - a --malloc library: LD_PRELOAD=LIBRARY (jemalloc, mimalloc, tcmalloc from their Debian
//   packages by default, when installed).
// - a strategy (best-fit, bump, ...): with --harness cli, through the project's own
//   `memory-allocator bench --json --repeat N --allocators ... --malloc ... -- COMMAND`; with
//   --harness self, the way `run` does it (DESIGN.md's contract): LD_PRELOAD of
//   build/Release/memory-allocator-malloc.so with MEMORY_ALLOCATOR_STRATEGY=<strategy>.
// Programs that run for a fixed time (a manifest `metric`: larson, xmalloc-test, glibc-thread,
// rptest) are always measured by this script's own harness, since their wall time says nothing:
// their throughput, parsed from their output, is the time measure (time ratio = glibc's
// throughput / the allocator's). Every allocator's output (stdout, stderr and exit status; with
// numbers masked where the program prints timings) is compared with glibc's, from this script's
// own runs (one extra run per allocator when the CLI did the timing).
// The self harness times with GNU time (`/usr/bin/time`, Debian package `time`): wall, user+sys
// CPU and the peak RSS of the largest process of the command (wait4's rusage).
// Bounds, so that a slow strategy (bump never reuses memory) cannot take the machine or the
// afternoon: a run is killed after --timeout seconds or 8x glibc's first run of that program
// (at least 20 s), whichever is shorter, or when the command's processes hold more than
// --max-rss MiB (default 4096); an allocator that failed so on a program runs it no more.
// --budget MINUTES skips the programs that would start after that much time (said in the report);
// --bump-repeat N runs bump N times instead of --repeat (it is many times slower than the rest).
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const cliPath = path.join(root, 'bin/memory-allocator.js')
const libDir = '/usr/lib/x86_64-linux-gnu'
const OTHER_MALLOCS = [
  ['jemalloc', `${libDir}/libjemalloc.so.2`, 'libjemalloc2'],
  ['mimalloc', `${libDir}/libmimalloc.so.2`, 'libmimalloc2.0'],
  ['tcmalloc', `${libDir}/libtcmalloc_minimal.so.4`, 'libtcmalloc-minimal4'],
]
const STRATEGIES = new Set(['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit', 'bump'])

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const o = {
    manifest: process.env.MA_BENCH_PROGRAMS || '/work/mb-all/programs.json',
    allocators: ['best-fit', 'bump', 'libc'],
    mallocs: [],
    repeat: 3,
    only: null,
    harness: null,
    timeout: 120,
    maxRssMiB: 4096,
    budgetMinutes: Infinity,
    out: path.join(here, 'results/programs.txt'),
    jsonOut: path.join(here, 'results/programs.json'),
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--manifest') o.manifest = value()
    else if (a === '--allocators') o.allocators = value().split(',').filter(Boolean)
    else if (a === '--malloc') {
      const v = value()
      const eq = v.indexOf('=')
      if (eq <= 0) usage(`--malloc wants NAME=LIBRARY, got ${v}`)
      o.mallocs.push([v.slice(0, eq), v.slice(eq + 1)])
    } else if (a === '--repeat') o.repeat = Number(value())
    else if (a === '--only') o.only = new Set(value().split(','))
    else if (a === '--harness') o.harness = value()
    else if (a === '--timeout') o.timeout = Number(value())
    else if (a === '--max-rss') o.maxRssMiB = Number(value())
    else if (a === '--budget') o.budgetMinutes = Number(value())
    else if (a === '--bump-repeat') o.bumpRepeat = Number(value())
    else if (a === '--out') o.out = path.resolve(value())
    else if (a === '--json-out') o.jsonOut = path.resolve(value())
    else if (a === '--help' || a === '-h') usage()
    else usage(`unknown argument ${a}`)
  }
  if (!(o.repeat >= 1)) usage('--repeat must be >= 1')
  o.bumpRepeat ??= o.repeat
  if (o.harness && o.harness !== 'cli' && o.harness !== 'self') usage('--harness is cli or self')
  if (o.mallocs.length === 0) for (const [name, lib] of OTHER_MALLOCS) if (existsSync(lib)) o.mallocs.push([name, lib])
  for (const a of o.allocators) if (a !== 'libc' && !STRATEGIES.has(a)) usage(`unknown allocator ${a}`)
  return o
}

function usage(message) {
  const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).slice(0, 10)
  if (message) console.error(`programs.mjs: ${message}`)
  console.error(text.map((l) => l.slice(3)).join('\n'))
  process.exit(2)
}

const opts = parseArgs(process.argv.slice(2))

// ---------------------------------------------------------------- environment
function mallocLibraryPath() {
  const candidates = [
    path.join(root, 'build/Release/memory-allocator-malloc.so'),
    path.join(root, `prebuilds/${process.platform}-${process.arch}/memory-allocator-malloc.so`),
  ]
  return candidates.find((p) => existsSync(p))
}

function cliHasBenchCommand() {
  const help = spawnSync(process.execPath, [cliPath, 'bench', '--help'], { cwd: root, encoding: 'utf8', timeout: 30000 })
  return /--\s+COMMAND/.test(`${help.stdout}${help.stderr}`)
}

const strategies = opts.allocators.filter((a) => a !== 'libc')
const ourLibrary = mallocLibraryPath()
if (strategies.length && !ourLibrary) {
  console.error('programs.mjs: build/Release/memory-allocator-malloc.so is missing (npm ci / the malloc library); ' +
    `dropping ${strategies.join(', ')}: only libc and --malloc libraries are measured`)
  opts.allocators = opts.allocators.filter((a) => a === 'libc')
}
if (!opts.allocators.includes('libc')) opts.allocators.push('libc')
const harness = opts.harness ?? (opts.allocators.some((a) => a !== 'libc') && cliHasBenchCommand() ? 'cli' : 'self')
// bump never reuses memory (its heap climbs to GBs on malloc-large) and the CLI has no time or
// RSS limit, so bump always runs in this script's bounded harness, preloaded as `run` does it.
const cliAllocators = ['libc', ...opts.allocators.filter((a) => a !== 'libc' && a !== 'bump'), ...opts.mallocs.map(([name]) => name)]
// libc first: its first run sets the time limit of the others on the same program.
const allocators = ['libc', ...opts.allocators.filter((a) => a !== 'libc'), ...opts.mallocs.map(([name]) => name)]
const mallocByName = new Map(opts.mallocs)

if (!existsSync(opts.manifest)) {
  console.error(`programs.mjs: no manifest at ${opts.manifest} (set MA_BENCH_PROGRAMS or --manifest): ` +
    'the programs and their manifest live outside the repository')
  process.exit(2)
}
if (!existsSync('/usr/bin/time')) {
  console.error('programs.mjs: /usr/bin/time (Debian package `time`) is needed')
  process.exit(2)
}
let programs = JSON.parse(readFileSync(opts.manifest, 'utf8'))
if (opts.only) programs = programs.filter((p) => opts.only.has(p.name))

// ---------------------------------------------------------------- running one command
const scratch = mkdtempSync(path.join(os.tmpdir(), 'ma-programs-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))

function allocatorEnv(allocator) {
  if (allocator === 'libc') return {}
  if (mallocByName.has(allocator)) return { LD_PRELOAD: mallocByName.get(allocator) }
  return { LD_PRELOAD: ourLibrary, MEMORY_ALLOCATOR_STRATEGY: allocator }
}

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}

function digest(text) {
  return createHash('sha256').update(text).digest('hex').slice(0, 16)
}

/** Runs the program once under one allocator (self harness): times, output digests, metric. */
function runOnce(program, allocator, limitSeconds) {
  return new Promise((resolve) => {
    const timeFile = path.join(scratch, 'time.txt')
    rmSync(timeFile, { force: true })
    const env = { ...process.env, ...program.env, ...allocatorEnv(allocator) }
    const stdinFd = program.stdin ? openSync(program.stdin, 'r') : 'ignore'
    const child = spawn('/usr/bin/time', ['-f', 'MA-TIME %e %U %S %M', '-o', timeFile, ...program.argv], {
      cwd: program.cwd,
      env,
      stdio: [stdinFd, 'pipe', 'pipe'],
      detached: true,
    })
    if (typeof stdinFd === 'number') closeSync(stdinFd)
    const out = []
    const err = []
    child.stdout.on('data', (b) => out.push(b))
    child.stderr.on('data', (b) => err.push(b))
    let timedOut = false
    let overRss = false
    const kill = () => {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }
    const timer = setTimeout(() => {
      timedOut = true
      kill()
    }, limitSeconds * 1000)
    const watchdog = setInterval(() => {
      if (treeRssKiB(child.pid) > opts.maxRssMiB * 1024) {
        overRss = true
        kill()
      }
    }, 200)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearInterval(watchdog)
      const stdout = Buffer.concat(out).toString('latin1')
      const stderr = Buffer.concat(err).toString('latin1')
      const timeText = existsSync(timeFile) ? readFileSync(timeFile, 'utf8') : ''
      const m = /MA-TIME (\S+) (\S+) (\S+) (\S+)/.exec(timeText)
      const sig = /terminated by signal (\d+)/.exec(timeText)
      const exitMatch = /exited with non-zero status (\d+)/.exec(timeText)
      const status = timedOut ? `timeout (${limitSeconds.toFixed(0)} s)` : overRss ? `killed: RSS > ${opts.maxRssMiB} MiB` : sig ? `signal ${sig[1]}` : signal ? `signal ${signal}` : exitMatch ? `exit ${exitMatch[1]}` : code === 0 ? 'exit 0' : `exit ${code}`
      let metric = null
      if (program.metric) {
        const mm = new RegExp(program.metric.regex, 'm').exec(stdout)
        metric = mm ? Number(mm[1]) : null
      }
      // Masked: numbers become # and runs of blanks one space (printf field widths vary with them).
      // NaN and infinity are numbers too: barnes prints a time's share of a 0 s total as -nan, and
      // as 0.00 once its total reaches a second, so glibc's own runs differed from each other.
      const masked = (s) => s.replace(/[-+]?(nan|inf(inity)?)\b|[0-9]+(\.[0-9]+)?/gi, '#').replace(/[ \t]+/g, ' ')
      // Unordered: the lines in sorted order (threads that print in a racy order, e.g. alloc-test).
      const unordered = (s) => s.split('\n').sort().join('\n')
      const shown =
        program.compare === 'numbers-masked' ? masked : program.compare === 'numbers-masked-unordered' ? (s) => unordered(masked(s)) : (s) => s
      resolve({
        wall: m ? Number(m[1]) : null,
        cpu: m ? Number(m[2]) + Number(m[3]) : null,
        rssKiB: m ? Number(m[4]) : null,
        status,
        timedOut,
        metric,
        output: digest(`${shown(stdout)}\u0000${shown(stderr)}\u0000${status}`),
        stderrTail: stderr.slice(-400),
      })
    })
  })
}

/** Resident KiB of a process and its descendants (from /proc; 0 once they are gone). */
function treeRssKiB(pid) {
  let total = 0
  const stack = [pid]
  while (stack.length) {
    const p = stack.pop()
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8')
      const m = /VmRSS:\s+(\d+)/.exec(status)
      if (m) total += Number(m[1])
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim()
        if (kids) stack.push(...kids.split(/\s+/).map(Number))
      }
    } catch {}
  }
  return total
}

/** The command line a shell-less runner (the CLI) gets: stdin redirection done by sh. */
function commandArgv(program) {
  if (!program.stdin) return program.argv
  return ['/bin/sh', '-c', 'exec "$@" < "$0"', program.stdin, ...program.argv]
}

/** The project's CLI `bench -- COMMAND`: per allocator median wall, CPU, peak RSS. */
function runCli(program, cliAllocators) {
  const args = [cliPath, 'bench', '--json', '--repeat', String(opts.repeat), '--allocators', cliAllocators.filter((a) => !mallocByName.has(a)).join(',')]
  for (const [name, lib] of opts.mallocs) args.push('--malloc', `${name}=${lib}`)
  args.push('--', ...commandArgv(program))
  const command = ['memory-allocator', ...args.slice(1)]
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: program.cwd,
      env: { ...process.env, ...program.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    const out = []
    const err = []
    child.stdout.on('data', (b) => out.push(b))
    child.stderr.on('data', (b) => err.push(b))
    // The CLI has no limits of its own: the same bounds as the self harness, on its whole run
    // (the CLI's node itself is under 200 MiB).
    let stopped = null
    const kill = (why) => {
      stopped = why
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }
    const timer = setTimeout(() => kill(`timeout (${opts.timeout * opts.repeat * cliAllocators.length} s)`), opts.timeout * 1000 * opts.repeat * cliAllocators.length)
    const watchdog = setInterval(() => {
      if (treeRssKiB(child.pid) > (opts.maxRssMiB + 200) * 1024) kill(`killed: RSS > ${opts.maxRssMiB} MiB`)
    }, 200)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      clearInterval(watchdog)
      const stdout = Buffer.concat(out).toString('utf8')
      const stderr = Buffer.concat(err).toString('utf8')
      let report = null
      try {
        report = JSON.parse(stdout)
      } catch {}
      if (stopped || !report) {
        const why = stopped ?? `exit ${code}${signal ? ` signal ${signal}` : ''}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`
        resolve({ error: `CLI ${why}`, rows: new Map(), command })
      } else resolve({ error: null, rows: cliRows(report), command })
    })
  })
}

/**
 * Finds the per-allocator rows in the CLI's JSON, whatever nesting it uses: any object with an
 * `allocator` (or `name`) and a wall time. Field names accepted: wallNs/wall/wallSeconds/wallMs,
 * cpuNs/cpu/cpuSeconds/cpuMs, maxRssBytes/peakRss/peakRssBytes/maxRss/peakRssKiB.
 */
function cliRows(report) {
  const rows = new Map()
  const seconds = (o, names) => {
    for (const n of names) {
      const v = o[n]
      if (typeof v === 'number') return /Ms$/.test(n) ? v / 1000 : /Ns$/.test(n) ? v / 1e9 : v
      if (v && typeof v === 'object' && typeof v.median === 'number') return /Ms$/.test(n) ? v.median / 1000 : v.median
    }
    return null
  }
  const kib = (o) => {
    for (const n of ['peakRssKiB', 'maxRssKiB', 'peakRssKb']) if (typeof o[n] === 'number') return o[n]
    for (const n of ['peakRssBytes', 'peakRss', 'maxRssBytes', 'maxRss', 'rssBytes', 'peakResidentBytes']) {
      const v = o[n]
      if (typeof v === 'number') return v / 1024
      if (v && typeof v === 'object' && typeof v.median === 'number') return v.median / 1024
    }
    return null
  }
  const visit = (node) => {
    if (Array.isArray(node)) return node.forEach(visit)
    if (!node || typeof node !== 'object') return
    const name = node.allocator ?? node.name
    const wall = seconds(node, ['wallNs', 'wallSeconds', 'wall', 'wallMs', 'wallTimeMs', 'wallTime', 'elapsedMs', 'elapsedSeconds'])
    if (typeof name === 'string' && wall !== null) {
      const failed = node.failed ?? node.error ?? null
      rows.set(name, {
        wall,
        cpu: seconds(node, ['cpuNs', 'cpuSeconds', 'cpu', 'cpuMs', 'cpuTimeMs', 'cpuTime']),
        rssKiB: kib(node),
        failed: failed ? String(failed) : null,
        // The CLI compares stdout with libc's itself: 'same' | 'differs' | 'unknown'.
        output: typeof node.output === 'string' ? node.output : null,
        failureStderr: node.failureStderr ?? '',
      })
      return
    }
    for (const v of Object.values(node)) visit(v)
  }
  visit(report)
  return rows
}

// ---------------------------------------------------------------- the run
function fmtS(x) {
  return x === null ? '—' : x < 10 ? x.toFixed(2) : x.toFixed(1)
}
function fmtX(x) {
  return x === null || x === undefined ? '—' : x.toFixed(2)
}
function fmtMiB(kib) {
  return kib === null ? '—' : (kib / 1024).toFixed(1)
}

const started = new Date()
const loadBefore = os.loadavg()
const results = []
const skippedForBudget = []
for (const program of programs) {
  if ((Date.now() - started) / 60000 > opts.budgetMinutes) {
    skippedForBudget.push(program.name)
    continue
  }
  const t0 = Date.now()
  const fixedTime = !!program.metric
  let viaCli = harness === 'cli' && !fixedTime
  const cells = new Map(allocators.map((a) => [a, { runs: [] }]))
  let cliError = null
  let cliCommand = null
  if (viaCli) {
    const cli = await runCli(program, cliAllocators)
    cliError = cli.error
    cliCommand = cli.command
    for (const a of cliAllocators) {
      const row = cli.rows.get(a)
      if (row) Object.assign(cells.get(a), { cli: row })
    }
    // A CLI run that was stopped or failed as a whole: this program falls back to the self harness.
    if (cliError) viaCli = false
  }
  // Allocators the self harness runs for this program: all of them, or those the CLI does not.
  const selfAllocators = viaCli ? allocators.filter((a) => !cliAllocators.includes(a)) : allocators
  // Timing runs (self harness), or one output-check run per allocator after the CLI when the CLI
  // could not compare (its comparison is of exact stdout; masked programs print timings).
  const cliCompared = viaCli && (program.compare ?? 'exact') === 'exact' && cliAllocators.every((a) => {
    const row = cells.get(a).cli
    return row && (row.failed || row.output === 'same' || row.output === 'differs' || a === 'libc')
  })
  const checks = cliCompared ? 0 : 1
  // Self runs per allocator: all --repeat without the CLI; after it, output checks for the CLI's
  // allocators (libc at least once when others run here: their reference and time limit) and
  // --repeat for the others.
  const selfRounds = (a) =>
    a === 'bump' ? opts.bumpRepeat : !viaCli ? opts.repeat : selfAllocators.includes(a) ? opts.repeat : a === 'libc' && selfAllocators.length ? 1 : checks
  const libcCli = cells.get('libc').cli
  let limit = libcCli?.wall ? Math.min(opts.timeout, Math.max(20, 8 * libcCli.wall)) : opts.timeout
  const rounds = Math.max(...allocators.map(selfRounds))
  for (let r = 0; r < rounds; r++) {
    for (const a of allocators) {
      if (r >= selfRounds(a)) continue
      const earlier = cells.get(a).runs
      if (earlier.some((x) => x.status.startsWith('timeout') || x.status.startsWith('killed'))) continue
      process.stderr.write(`\r${program.name}: ${a} ${r + 1}/${rounds}        `)
      const run = await runOnce(program, a, limit)
      earlier.push(run)
      if (a === 'libc' && r === 0 && run.wall && !libcCli?.wall) limit = Math.min(opts.timeout, Math.max(20, 8 * run.wall))
    }
  }
  const reference = cells.get('libc').runs.map((x) => x.output)
  const stopped = (runs) => runs.filter((x) => x.timedOut || x.status.startsWith('killed'))
  const row = { name: program.name, kind: program.kind, threads: program.threads, argv: commandArgv(program), env: program.env, note: program.note ?? '', fixedTime, harness: viaCli ? `cli (${cliAllocators.join(', ')}), self (${selfAllocators.join(', ') || 'output checks'})` : 'self', cliError, cliCommand, cells: {} }
  for (const a of allocators) {
    const c = cells.get(a)
    const runs = c.runs
    const failures = runs.filter((x) => x.status !== 'exit 0')
    const m = {
      wall: c.cli && !c.cli.failed ? c.cli.wall : median(runs.map((x) => x.wall)),
      cpu: c.cli && !c.cli.failed ? c.cli.cpu : median(runs.map((x) => x.cpu)),
      rssKiB: c.cli && !c.cli.failed ? c.cli.rssKiB : median(runs.map((x) => x.rssKiB)),
      metric: fixedTime ? median(runs.map((x) => x.metric)) : null,
      // Runs stopped by this script (time or RSS limit) have no output to compare: null.
      sameOutput: runs.length
        ? stopped(runs).length === runs.length ? null : runs.filter((x) => !stopped([x]).length).every((x) => reference.includes(x.output))
        : c.cli?.output !== 'differs',
      statuses: runs.length ? [...new Set(runs.map((x) => x.status))] : c.cli ? [c.cli.failed ?? 'exit 0'] : ['not run'],
      crashes: failures.filter((x) => !x.timedOut && !x.status.startsWith('killed')).length + (c.cli?.failed ? 1 : 0),
      hangs: failures.filter((x) => x.timedOut).length,
      overRss: failures.filter((x) => x.status.startsWith('killed')).length,
      stderrTail: failures.length ? failures[0].stderrTail : c.cli?.failed ? String(c.cli.failureStderr ?? '') : '',
      source: c.cli ? 'cli' : 'self',
    }
    if (viaCli && cliAllocators.includes(a) && !c.cli) m.cliMissing = true
    row.cells[a] = m
  }
  const base = row.cells.libc
  for (const a of allocators) {
    const m = row.cells[a]
    const ok = m.crashes === 0 && m.hangs === 0 && m.overRss === 0
    if (fixedTime) {
      m.timeRatio = ok && m.metric && base.metric ? (program.metric.higher ? base.metric / m.metric : m.metric / base.metric) : null
    } else {
      m.timeRatio = ok && m.wall && base.wall ? m.wall / base.wall : null
    }
    m.cpuRatio = ok && m.cpu && base.cpu ? m.cpu / base.cpu : null
    m.rssRatio = ok && m.rssKiB && base.rssKiB ? m.rssKiB / base.rssKiB : null
  }
  row.seconds = (Date.now() - t0) / 1000
  results.push(row)
  process.stderr.write(`\r${program.name}: done in ${row.seconds.toFixed(0)} s${cliError ? ` (CLI: ${cliError})` : ''}            \n`)
}
const finished = new Date()
const loadAfter = os.loadavg()

// ---------------------------------------------------------------- summary and targets
function geomean(values) {
  const v = values.filter((x) => typeof x === 'number' && x > 0)
  if (v.length === 0) return null
  return Math.exp(v.reduce((s, x) => s + Math.log(x), 0) / v.length)
}

function summarizeAllocator(a) {
  const pick = (kind, key) => results.filter((r) => !kind || r.kind === kind).map((r) => ({ name: r.name, x: r.cells[a][key] }))
  const worst = (list) => list.filter((e) => e.x !== null).sort((p, q) => q.x - p.x)[0] ?? null
  const multi = pick('multi', 'timeRatio')
  const single = pick('single', 'timeRatio')
  const rss = pick(null, 'rssRatio')
  const cpu = pick(null, 'cpuRatio')
  return {
    allocator: a,
    multiTime: geomean(multi.map((e) => e.x)),
    multiWorst: worst(multi),
    multiCount: multi.filter((e) => e.x !== null).length,
    singleTime: geomean(single.map((e) => e.x)),
    singleWorst: worst(single),
    singleCount: single.filter((e) => e.x !== null).length,
    rss: geomean(rss.map((e) => e.x)),
    rssWorst: worst(rss),
    cpu: geomean(cpu.map((e) => e.x)),
    multiCpu: geomean(pick('multi', 'cpuRatio').filter((e) => !results.find((r) => r.name === e.name).fixedTime).map((e) => e.x)),
    singleCpu: geomean(pick('single', 'cpuRatio').map((e) => e.x)),
    differentOutput: results.filter((r) => r.cells[a].sameOutput === false).map((r) => r.name),
    crashes: results.filter((r) => r.cells[a].crashes > 0).map((r) => `${r.name} (${r.cells[a].statuses.join(', ')})`),
    hangs: results.filter((r) => r.cells[a].hangs > 0).map((r) => `${r.name} (${r.cells[a].statuses.join(', ')})`),
    overRss: results.filter((r) => r.cells[a].overRss > 0).map((r) => r.name),
    unmeasured: results.filter((r) => r.cells[a].timeRatio === null).map((r) => r.name),
  }
}
const summaries = allocators.map(summarizeAllocator)

function verdict(value, limit) {
  if (value === null) return 'not measured'
  if (value <= limit) return `met (${value.toFixed(2)}x <= ${limit}x)`
  return `MISSED by ${(((value / limit) - 1) * 100).toFixed(0)}% (${value.toFixed(2)}x, target <= ${limit}x)`
}

function targetLines(s) {
  const lines = []
  const worstText = (w, limit) => (w === null ? 'not measured' : w.x <= limit ? `met (worst ${w.name} ${w.x.toFixed(2)}x <= ${limit}x)` : `MISSED (${w.name} ${w.x.toFixed(2)}x > ${limit}x, by ${(((w.x / limit) - 1) * 100).toFixed(0)}%)`)
  const over = (kind, limit) => results.filter((r) => r.kind === kind && r.cells[s.allocator].timeRatio > limit).map((r) => `${r.name} ${r.cells[s.allocator].timeRatio.toFixed(2)}x`)
  lines.push(`  issue 15  multi-threaded time, geometric mean <= 1.0x glibc (${s.multiCount} programs): ${verdict(s.multiTime, 1.0)}`)
  const multiOver = over('multi', 2.0)
  lines.push(`  issue 15  multi-threaded, none worse than 2x: ${worstText(s.multiWorst, 2.0)}${multiOver.length > 1 ? `; over: ${multiOver.join(', ')}` : ''}`)
  lines.push(`  issue 15  single-threaded time, geometric mean <= 1.0x glibc (${s.singleCount} programs): ${verdict(s.singleTime, 1.0)}`)
  const singleOver = over('single', 1.5)
  lines.push(`  issue 15  single-threaded, none worse than 1.5x: ${worstText(s.singleWorst, 1.5)}${singleOver.length > 1 ? `; over: ${singleOver.join(', ')}` : ''}`)
  lines.push(`  issue 14  (\`run\`) single-threaded <= 1.0x glibc (geometric mean), none worse than 1.5x: ${s.singleTime !== null && s.singleTime <= 1 && s.singleWorst && s.singleWorst.x <= 1.5 ? 'met' : s.singleTime === null ? 'not measured' : 'MISSED'} (${fmtX(s.singleTime)}x, worst ${s.singleWorst ? `${s.singleWorst.name} ${s.singleWorst.x.toFixed(2)}x` : '—'})`)
  lines.push(`  issue 15  peak RSS, geometric mean <= 1.0x glibc (${results.length} programs): ${verdict(s.rss, 1.0)}`)
  const outputs = s.differentOutput.length === 0 ? 'met' : `MISSED: ${s.differentOutput.join(', ')}`
  lines.push(`  issue 15  every output identical to glibc's: ${outputs}`)
  lines.push(`  issue 15  0 crashes, 0 hangs: ${s.crashes.length + s.hangs.length + s.overRss.length === 0 ? 'met' : `MISSED: crashes ${s.crashes.join(', ') || 'none'}; hangs or too slow ${s.hangs.join(', ') || 'none'}; over the RSS limit ${s.overRss.join(', ') || 'none'}`}`)
  lines.push(`  (on CPU time, less sensitive to the shared machine's load: multi ${fmtX(s.multiCpu)}x (fixed-time programs left out), single ${fmtX(s.singleCpu)}x)`)
  const mi = summaries.find((x) => x.allocator === 'mimalloc')
  if (mi) {
    const vs = (ours, theirs) => (ours === null || theirs === null ? '—' : `${ours.toFixed(2)}x vs ${theirs.toFixed(2)}x: ${ours <= theirs ? 'met' : `missed by ${(((ours / theirs) - 1) * 100).toFixed(0)}%`}`)
    lines.push(`  stretch   mimalloc's times: multi ${vs(s.multiTime, mi.multiTime)}; single ${vs(s.singleTime, mi.singleTime)}`)
  }
  return lines
}

// ---------------------------------------------------------------- the report
function versions() {
  const q = (pkg) => spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).stdout || '?'
  const glibc = (spawnSync('ldd', ['--version'], { encoding: 'utf8' }).stdout || '').split('\n')[0].replace(/^ldd\s*/, '')
  const others = OTHER_MALLOCS.filter(([name]) => mallocByName.has(name)).map(([name, , pkg]) => `${name} ${pkg} ${q(pkg)}`)
  return [`glibc ${glibc}`, ...others, `node ${process.version}`].join('; ')
}
function gitHead() {
  const r = spawnSync('git', ['-C', root, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' })
  return (r.stdout || '').trim()
}
const cpuModel = os.cpus()[0]?.model ?? '?'
const commandLine = `node bench/programs.mjs ${process.argv.slice(2).join(' ')}`.trim()
const lines = []
lines.push(`$ ${commandLine}`)
lines.push(`# ${started.toISOString()} .. ${finished.toISOString()} (${((finished - started) / 60000).toFixed(1)} min); ${os.hostname()}: ${os.cpus().length} x ${cpuModel}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}`)
lines.push(`# load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after: the machine is shared with other jobs, timings are noisy`)
lines.push(`# ${versions()}; repository at ${gitHead()}`)
lines.push(`# manifest ${opts.manifest} (outside the repository); harness ${harness}: ${harness === 'cli' ? `fixed-work programs timed by \`memory-allocator bench --json --repeat ${opts.repeat} --allocators ${cliAllocators.filter((x) => !mallocByName.has(x)).join(',')}${opts.mallocs.map(([n, l]) => ` --malloc ${n}=${l}`).join('')} -- COMMAND\` (which also compares stdout); bump (no limits in the CLI), the fixed-time programs and the output checks of programs that print timings by this script (GNU time, LD_PRELOAD as \`run\` does it)` : 'every run by this script (GNU time; strategies as `run` does them: LD_PRELOAD=memory-allocator-malloc.so, MEMORY_ALLOCATOR_STRATEGY)'}`)
lines.push(`# allocators ${allocators.join(', ')}; medians of ${opts.repeat}${allocators.includes('bump') && opts.bumpRepeat !== opts.repeat ? ` (bump: ${opts.bumpRepeat})` : ''}, interleaved; time = wall seconds, or for fixed-time programs the inverse of their own throughput; CPU = user + sys; RSS = peak resident set of the command (its largest process)`)
if (!opts.allocators.some((a) => a !== 'libc')) lines.push('# BASELINE ONLY: this allocator\'s malloc library (build/Release/memory-allocator-malloc.so) was not available, so no strategy was measured')
if (skippedForBudget.length) lines.push(`# NOT RUN (the --budget of ${opts.budgetMinutes} min was spent): ${skippedForBudget.join(', ')}`)
lines.push('')
for (const r of results) {
  lines.push(`${r.name}  (${r.kind}-threaded, ${r.threads} thread${r.threads === 1 ? '' : 's'}${r.fixedTime ? ', fixed time' : ''}; ${r.harness})`)
  lines.push(`  $ ${Object.entries(r.env ?? {}).map(([k, v]) => `${k}=${v} `).join('')}${r.argv.map((x) => (/^[\w./:=,@+-]+$/.test(x) ? x : `'${x.replace(/'/g, "'\\''")}'`)).join(' ').slice(0, 300)}`)
  if (r.note) lines.push(`  # ${r.note}`)
  if (r.cliError) lines.push(`  # CLI failed: ${r.cliError}`)
  const head = ['allocator', r.fixedTime ? 'throughput' : 'wall s', 'x glibc', 'cpu s', 'x glibc', 'rss MiB', 'x glibc', 'output', 'status']
  const table = [head]
  for (const a of allocators) {
    const m = r.cells[a]
    table.push([
      a,
      r.fixedTime ? (m.metric === null ? '—' : `${m.metric.toPrecision(4)}`) : fmtS(m.wall),
      fmtX(m.timeRatio),
      fmtS(m.cpu),
      fmtX(m.cpuRatio),
      fmtMiB(m.rssKiB),
      fmtX(m.rssRatio),
      a === 'libc' ? 'reference' : m.sameOutput === null ? '—' : m.sameOutput ? 'same' : 'DIFFERENT',
      m.statuses.join(',') + (m.cliMissing ? ' (no CLI row)' : ''),
    ])
  }
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)))
  for (const [i, row] of table.entries()) {
    lines.push('  ' + row.map((c, j) => (j === 0 || j >= 7 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ').trimEnd())
    if (i === 0) lines.push('  ' + widths.map((w) => '-'.repeat(w)).join('  '))
  }
  for (const a of allocators) if (r.cells[a].stderrTail) lines.push(`  # ${a} stderr: ${r.cells[a].stderrTail.trim().split('\n').slice(-2).join(' | ')}`)
  if (r.fixedTime) lines.push(`  # throughput in ${programs.find((p) => p.name === r.name).metric.unit}`)
  lines.push('')
}
lines.push('Summary: geometric means of the ratios to glibc (x glibc; lower is better)')
const sHead = ['allocator', 'multi time', 'worst multi', 'single time', 'worst single', 'cpu', 'peak RSS', 'worst RSS', 'outputs', 'crashes/hangs']
const sTable = [sHead]
for (const s of summaries) {
  sTable.push([
    s.allocator,
    fmtX(s.multiTime),
    s.multiWorst ? `${s.multiWorst.name} ${s.multiWorst.x.toFixed(2)}` : '—',
    fmtX(s.singleTime),
    s.singleWorst ? `${s.singleWorst.name} ${s.singleWorst.x.toFixed(2)}` : '—',
    fmtX(s.cpu),
    fmtX(s.rss),
    s.rssWorst ? `${s.rssWorst.name} ${s.rssWorst.x.toFixed(2)}` : '—',
    s.allocator === 'libc' ? 'reference' : s.differentOutput.length ? `${s.differentOutput.length} differ` : 'all same',
    `${s.crashes.length}/${s.hangs.length + s.overRss.length}`,
  ])
}
const sWidths = sHead.map((_, i) => Math.max(...sTable.map((row) => row[i].length)))
for (const [i, row] of sTable.entries()) {
  lines.push('  ' + row.map((c, j) => c.padEnd(sWidths[j])).join('  ').trimEnd())
  if (i === 0) lines.push('  ' + sWidths.map((w) => '-'.repeat(w)).join('  '))
}
lines.push(`  multi-threaded: ${results.filter((r) => r.kind === 'multi').map((r) => r.name).join(', ')}`)
lines.push(`  single-threaded: ${results.filter((r) => r.kind === 'single').map((r) => r.name).join(', ')}`)
lines.push('')
lines.push('Targets (issue 15 "Targets"; issue 14 `run` single-threaded target), per allocator')
for (const s of summaries) {
  if (s.allocator === 'libc') continue
  lines.push(`${s.allocator}${STRATEGIES.has(s.allocator) ? ' (this allocator, under `run`)' : ' (for comparison)'}:`)
  lines.push(...targetLines(s))
}
lines.push('')

mkdirSync(path.dirname(opts.out), { recursive: true })
writeFileSync(opts.out, lines.join('\n'))
writeFileSync(opts.jsonOut, JSON.stringify({ command: commandLine, started, finished, machine: { host: os.hostname(), cpus: os.cpus().length, cpuModel, loadBefore, loadAfter }, versions: versions(), manifest: opts.manifest, harness, allocators, repeat: opts.repeat, programs: results, summaries }, null, 2) + '\n')
console.log(lines.join('\n'))
console.error(`wrote ${path.relative(process.cwd(), opts.out)} and ${path.relative(process.cwd(), opts.jsonOut)}`)
