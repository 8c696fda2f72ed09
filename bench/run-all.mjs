// `npm run bench`: every benchmark of the project, and the targets checked against what they
// print. Writes each report to bench/results/ (kept in the repository beside this script, so the
// figures quoted in README.md can be traced to the run that produced them).
//
//   node bench/run-all.mjs [--quick]      (--quick: fewer repeats, for a smoke run)
//
// The shared traces are read from ../shared/traces (malloclab/ and programs/) when present; they
// are never copied into the repository. bench/traces holds the project's own recorded traces.
// jemalloc, mimalloc and tcmalloc get rows when their Debian packages are installed.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const results = path.join(here, 'results')
const shared = path.resolve(root, '../shared/traces')
const quick = process.argv.includes('--quick')
const repeat = quick ? '1' : '5'

const { formatReportTables, summarize, geometricMean } = require('../dist/cjs/render/format.js')

mkdirSync(results, { recursive: true })
const log = []
function say(line = '') {
  console.log(line)
  log.push(line)
}

function bench(name, args) {
  const started = Date.now()
  const run = spawnSync(process.execPath, [path.join(root, 'bin/memory-allocator.js'), 'bench', ...args, '--repeat', repeat, '--json'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (run.status !== 0) throw new Error(`bench ${args.join(' ')} exited with ${run.status}`)
  const document = JSON.parse(run.stdout)
  const report = { ...document, traces: document.options.traces }
  const { summary } = document
  const text = formatReportTables(report, summary)
  const shown = args.map((arg) => (arg.startsWith(root) ? path.relative(root, arg) : arg.replace(path.dirname(shared), '..')))
  writeFileSync(path.join(results, `${name}.txt`), `$ memory-allocator bench ${shown.join(' ')} --repeat ${repeat}\n\n${text}`)
  say(`${name}: ${report.results.length} replays in ${((Date.now() - started) / 1000).toFixed(0)} s -> bench/results/${name}.txt`)
  return { report, summary }
}

function script(name, file, args = []) {
  const run = spawnSync(process.execPath, [path.join(here, file), ...args, ...(quick ? ['--quick'] : []), '--json'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (run.status !== 0) throw new Error(`${file} exited with ${run.status}: ${run.stderr}`)
  const jsonStart = run.stdout.indexOf('\n[')
  const text = jsonStart < 0 ? run.stdout : run.stdout.slice(0, jsonStart)
  writeFileSync(path.join(results, `${name}.txt`), `$ node bench/${file} ${args.join(' ')}\n\n${text}\n`)
  say(`${name}: -> bench/results/${name}.txt`)
  return jsonStart < 0 ? [] : JSON.parse(run.stdout.slice(jsonStart))
}

const rowOf = (summary, allocator) => summary.find((row) => row.allocator === allocator)
const { loadTrace } = require('../dist/cjs/index.js')

// The peak of live bytes with every request rounded up to `alignment` (at least one unit).
function roundedPeak(file, alignment) {
  const trace = loadTrace(file)
  const live = new Float64Array(trace.numIds)
  let current = 0
  let peak = 0
  for (let op = 0; op < trace.opCount; op++) {
    const id = trace.ids[op]
    if (id < 0) continue
    const size = trace.kinds[op] === 1 ? 0 : Math.max(alignment, Math.ceil(trace.sizes[op] / alignment) * alignment)
    current += size - live[id]
    live[id] = size
    peak = Math.max(peak, current)
  }
  return peak
}
const fmt = (value, digits = 2) => (value === null || value === undefined || Number.isNaN(value) ? '—' : value.toFixed(digits))
const bestFitRows = (run) => run.report.results.filter((r) => r.allocator === 'best-fit' && r.peakHeapBytes)

say(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}, ${new Date().toISOString()}`)
const malloclab = path.join(shared, 'malloclab')
const programs = path.join(shared, 'programs')
const haveMalloclab = existsSync(malloclab)
const havePrograms = existsSync(programs)
if (!haveMalloclab) say(`note: ${malloclab} not found; the malloc-lab traces are skipped`)
if (!havePrograms) say(`note: ${programs} not found; the shared program traces are skipped`)
const classic = haveMalloclab
  ? readdirSync(malloclab).filter((file) => file.endsWith('-bal.rep') && !file.startsWith('short')).map((file) => path.join(malloclab, file))
  : []
const cmu = haveMalloclab ? [path.join(malloclab, 'cmu-15213-2016')] : []
const programTraces = [...(havePrograms ? [programs] : []), path.join(here, 'traces')]

// The other mallocs, measured by the same loop in a child that preloads each.
const LIBRARIES = { jemalloc: 'libjemalloc.so.2', mimalloc: 'libmimalloc.so.2', tcmalloc: 'libtcmalloc_minimal.so.4' }
const libraryDir = '/usr/lib/x86_64-linux-gnu'
const mallocs = Object.entries(LIBRARIES)
  .filter(([, file]) => existsSync(path.join(libraryDir, file)))
  .flatMap(([name, file]) => ['--malloc', `${name}=${path.join(libraryDir, file)}`])
if (mallocs.length === 0) say('note: no jemalloc, mimalloc or tcmalloc installed; their rows are skipped')

// Speed on real programs: best-fit, bump and worst-fit (the indexed strategies) against glibc and
// the other mallocs; the scanning strategies take seconds per trace there and are measured below.
const programSpeed = {}
for (const touch of [true, false]) {
  const flag = touch ? [] : ['--no-touch']
  programSpeed[touch ? 'touch' : 'no-touch'] = bench(`replay-programs${touch ? '' : '-notouch'}`, [
    ...programTraces,
    '--allocators',
    'best-fit,worst-fit,bump,libc',
    ...mallocs,
    ...flag,
  ])
}

// Speed: every strategy and libc, on the built-in workloads and the malloc-lab traces.
const speed = {}
for (const touch of [true, false]) {
  const flag = touch ? [] : ['--no-touch']
  const builtIn = bench(`replay-builtin${touch ? '' : '-notouch'}`, flag)
  const lab = haveMalloclab ? bench(`replay-malloclab${touch ? '' : '-notouch'}`, [...classic, ...cmu, ...flag]) : undefined
  const all = [...builtIn.report.results, ...(lab?.report.results ?? [])]
  speed[touch ? 'touch' : 'no-touch'] = summarize(all, builtIn.report.options.allocators)
}

// Space, the malloc-lab accounting: the break grows by exactly what a request needs (growth 0),
// every other option at its default (small requests segregated).
const space = haveMalloclab
  ? {
      classic: bench('space-classic-growth0', [...classic, '--growth', '0', '--allocators', 'best-fit,libc']),
      cmu: bench('space-cmu-growth0', [...cmu, '--growth', '0', '--allocators', 'best-fit,libc']),
      cmuAlign8: bench('space-cmu-growth0-align8', [...cmu, '--growth', '0', '--alignment', '8', '--allocators', 'best-fit,libc']),
    }
  : undefined

const jsCosts = script('js-costs', 'js-costs.mjs')
script('js-heap-pair', 'js-heap-pair.mjs')
const sweep = script('table-sweep', 'table-sweep.mjs')
const instructions = spawnSync(process.execPath, [path.join(here, 'instructions.mjs')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
if (instructions.status === 0) say('instructions: -> bench/results/instructions.txt')
else say('instructions: skipped (bench/instructions.mjs needs valgrind and g++)')

say('')
say('Targets')
for (const mode of ['touch', 'no-touch']) {
  const { summary } = programSpeed[mode]
  const libc = rowOf(summary, 'libc')
  const others = summary.filter((row) => !['best-fit', 'libc'].includes(row.allocator))
  say(
    `  speed, real programs (${mode}): best-fit ${fmt(rowOf(summary, 'best-fit').geomeanNsPerOp, 1)} ns/op vs libc ${fmt(libc.geomeanNsPerOp, 1)}, ratio ${fmt(rowOf(summary, 'best-fit').geomeanRatioToLibc)} (target <= 1.00; stretch 0.60); ` +
      others.map((row) => `${row.allocator} ${fmt(row.geomeanRatioToLibc)}`).join(', ') +
      (mode === 'no-touch' ? ' (bump target <= 0.50)' : ''),
  )
}
for (const mode of ['touch', 'no-touch']) {
  const best = rowOf(speed[mode], 'best-fit')
  const libc = rowOf(speed[mode], 'libc')
  say(`  speed, malloc-lab and built-in workloads (${mode}): best-fit ${fmt(best.geomeanNsPerOp, 1)} ns/op vs libc ${fmt(libc.geomeanNsPerOp, 1)} ns/op, ratio ${fmt(best.geomeanRatioToLibc)}`)
}
{
  // The target allows 64 KiB of fixed tables (the small bins' heads alone are 16 KiB). Replay's
  // metadataBytes is the tables' peak (HeapStats.peakMetadataBytes): they shrink after it.
  // bench/metadata.mjs prints the same figures by themselves (bench/results/metadata.txt).
  const FIXED = 64 << 10
  const rows = bestFitRows(programSpeed.touch)
  const beyondFixed = (r) => Math.max(0, r.metadataBytes - FIXED) / r.peakLiveBytes
  const worst = Math.max(...rows.map(beyondFixed))
  const withMetadata = geometricMean(rows.map((r) => (r.peakHeapBytes + r.metadataBytes) / r.peakLiveBytes))
  say(`  metadata at its peak, real programs: beyond 64 KiB of fixed tables at most ${fmt(100 * worst, 1)}% of peak live (target <= 5%); (peak heap + metadata) / peak live ${fmt(withMetadata, 3)} geometric mean (target <= 1.08)`)
  for (const r of rows) {
    say(`      ${r.trace.padEnd(18)} metadata ${fmt(100 * r.metadataBytes / r.peakLiveBytes, 1).padStart(5)}% of peak live, ${fmt(100 * beyondFixed(r), 1).padStart(5)}% beyond 64 KiB; (heap + metadata) / live ${fmt((r.peakHeapBytes + r.metadataBytes) / r.peakLiveBytes, 3)}`)
  }
}
if (space !== undefined) {
  const utilizations = bestFitRows(space.classic).map((r) => r.utilization)
  say(`  space: mean utilization on the ${classic.length} classic -bal traces ${fmt(utilizations.reduce((sum, u) => sum + u, 0) / utilizations.length, 3)} with --growth 0, other options at their defaults (target >= 0.95)`)
  const heapToLive = (run) => {
    const best = bestFitRows(run)
    return {
      ratio: geometricMean(best.map((r) => r.peakHeapBytes / r.peakLiveBytes)),
      metadata: geometricMean(best.map((r) => r.metadataBytes / r.peakLiveBytes)),
      // What rounding every request up to the alignment costs by itself, before any fragmentation.
      floor: geometricMean(run.report.options.traces.map((trace) => roundedPeak(trace.source, run.report.options.alignment) / trace.peakLiveBytes)),
    }
  }
  for (const [label, run] of [['alignment 16', space.cmu], ['alignment 8', space.cmuAlign8]]) {
    const { ratio, metadata, floor } = heapToLive(run)
    say(`  space: peak heap / peak live on the CMU set, ${label}: ${fmt(ratio, 3)} (rounding alone costs ${fmt(floor, 3)}); out-of-band metadata ${fmt(100 * metadata, 1)}% of peak live`)
  }
}
for (const row of jsCosts.filter((r) => r.nsPerOp !== undefined)) say(`      ${row.label.padEnd(46)} ${fmt(row.nsPerOp, 1)} ns/op`)
say('  js pairs against the npm malloc package: bench/results/js-costs.txt')
for (const strategy of ['best-fit', 'best-fit-linear']) {
  const rows = sweep.filter((row) => row.strategy === strategy)
  say(`  scale: ${strategy.padEnd(15)} ${rows.map((row) => `${row.freeChunks}: ${fmt(row.nsPerAlloc, 0)} ns, ${fmt(row.stepsPerAlloc, 1)} steps`).join(' | ')}`)
}
writeFileSync(path.join(results, 'summary.txt'), `$ npm run bench\n\n${log.join('\n')}\n`)
