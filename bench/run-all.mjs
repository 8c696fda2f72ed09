// `npm run bench`: every benchmark of the project, and the targets checked against what they
// print. Writes each report to bench/results/ (kept in the repository beside this script, so the
// figures quoted in README.md can be traced to the run that produced them).
//
//   node bench/run-all.mjs [--quick]      (--quick: fewer repeats, for a smoke run)
//
// The malloc-lab traces are read from ../shared/traces/malloclab when present; they are never
// copied into the repository.
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
const traces = path.resolve(root, '../shared/traces/malloclab')
const quick = process.argv.includes('--quick')
const repeat = quick ? '1' : '5'

const { formatReportTables, summarize, geometricMean } = require('../dist/cjs/bench/format.js')

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
  writeFileSync(path.join(results, `${name}.txt`), `$ memory-allocator bench ${args.join(' ')} --repeat ${repeat}\n\n${text}`)
  say(`${name}: ${report.results.length} replays in ${((Date.now() - started) / 1000).toFixed(0)} s -> bench/results/${name}.txt`)
  return { report, summary }
}

function script(name, file) {
  const run = spawnSync(process.execPath, [path.join(here, file), ...(quick ? ['--quick'] : []), '--json'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (run.status !== 0) throw new Error(`${file} exited with ${run.status}: ${run.stderr}`)
  const jsonStart = run.stdout.indexOf('\n[')
  writeFileSync(path.join(results, `${name}.txt`), `$ node bench/${file}\n\n${run.stdout.slice(0, jsonStart)}\n`)
  say(`${name}: -> bench/results/${name}.txt`)
  return JSON.parse(run.stdout.slice(jsonStart))
}

const ratioOf = (summary, allocator) => summary.find((row) => row.allocator === allocator)
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
const fmt = (value, digits = 2) => (value === null || value === undefined ? '—' : value.toFixed(digits))

say(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}, ${new Date().toISOString()}`)
const haveTraces = existsSync(traces)
if (!haveTraces) say(`note: ${traces} not found; the malloc-lab traces are skipped`)
const classic = haveTraces
  ? readdirSync(traces).filter((file) => file.endsWith('-bal.rep') && !file.startsWith('short')).map((file) => path.join(traces, file))
  : []
const cmu = haveTraces ? [path.join(traces, 'cmu-15213-2016')] : []

// Speed: every strategy and libc, on the built-in workloads and the malloc-lab traces.
const speed = {}
for (const touch of [true, false]) {
  const flag = touch ? [] : ['--no-touch']
  const builtIn = bench(`replay-builtin${touch ? '' : '-notouch'}`, flag)
  const malloclab = haveTraces ? bench(`replay-malloclab${touch ? '' : '-notouch'}`, [...classic, ...cmu, ...flag]) : undefined
  const all = [...builtIn.report.results, ...(malloclab?.report.results ?? [])]
  speed[touch ? 'touch' : 'no-touch'] = summarize(all, builtIn.report.options.allocators)
}

// Space, the malloc-lab accounting: the break grows by exactly what a request needs (growth 0),
// or by whole pages with small requests segregated from large ones (the remedy for the binary
// traces, where 64-byte and 448-byte chunks interleave).
const space = haveTraces
  ? {
      classicPlain: bench('space-classic-growth0', [...classic, '--growth', '0', '--allocators', 'best-fit,libc']),
      classic: bench('space-classic-segregated', [...classic, '--growth', '4096', '--segregate-small', '64', '--allocators', 'best-fit,libc']),
      cmu: bench('space-cmu-growth0', [...cmu, '--growth', '0', '--allocators', 'best-fit,libc']),
      cmuAlign8: bench('space-cmu-growth0-align8', [...cmu, '--growth', '0', '--alignment', '8', '--allocators', 'best-fit,libc']),
    }
  : undefined

const jsCosts = script('js-costs', 'js-costs.mjs')
const sweep = script('table-sweep', 'table-sweep.mjs')

say('')
say('Targets')
for (const mode of ['touch', 'no-touch']) {
  const best = ratioOf(speed[mode], 'best-fit')
  const libc = ratioOf(speed[mode], 'libc')
  say(`  speed (${mode}): best-fit ${fmt(best.geomeanNsPerOp, 1)} ns/op vs libc ${fmt(libc.geomeanNsPerOp, 1)} ns/op, ratio ${fmt(best.geomeanRatioToLibc)} (target <= 1.00)`)
}
if (space !== undefined) {
  const meanUtilization = (run) => {
    const utilizations = run.report.results.filter((r) => r.allocator === 'best-fit' && r.utilization !== null).map((r) => r.utilization)
    return utilizations.reduce((sum, u) => sum + u, 0) / utilizations.length
  }
  say(`  space: mean utilization on the ${classic.length} classic -bal traces ${fmt(meanUtilization(space.classic), 3)} with --growth 4096 --segregate-small 64 (target >= 0.90); ${fmt(meanUtilization(space.classicPlain), 3)} with --growth 0 and no segregation`)
  const heapToLive = (run) => {
    const best = run.report.results.filter((r) => r.allocator === 'best-fit' && r.peakHeapBytes)
    return {
      ratio: geometricMean(best.map((r) => r.peakHeapBytes / r.peakLiveBytes)),
      metadata: geometricMean(best.map((r) => r.metadataBytes / r.peakLiveBytes)),
      // What rounding every request up to the alignment costs by itself, before any fragmentation.
      floor: geometricMean(run.report.options.traces.map((trace) => roundedPeak(trace.source, run.report.options.alignment) / trace.peakLiveBytes)),
    }
  }
  for (const [label, run] of [['alignment 16', space.cmu], ['alignment 8', space.cmuAlign8]]) {
    const { ratio, metadata, floor } = heapToLive(run)
    say(`  space: peak heap / peak live on the CMU set, ${label}: ${fmt(ratio, 3)} (target <= 1.10; rounding alone costs ${fmt(floor, 3)}); out-of-band metadata ${fmt(100 * metadata, 0)}% of peak live`)
  }
}
const pair = jsCosts.find((row) => row.label === 'native: raw pair')
say(`  js: native raw.alloc+raw.free pair ${fmt(pair?.nsPerPair, 1)} ns median (target < 70)`)
for (const row of jsCosts.filter((r) => r.nsPerOp !== undefined)) say(`      ${row.label.padEnd(46)} ${fmt(row.nsPerOp, 1)} ns/op`)
for (const strategy of ['best-fit', 'best-fit-linear']) {
  const rows = sweep.filter((row) => row.strategy === strategy)
  say(`  scale: ${strategy.padEnd(15)} ${rows.map((row) => `${row.freeChunks}: ${fmt(row.nsPerAlloc, 0)} ns, ${fmt(row.stepsPerAlloc, 1)} steps`).join(' | ')}`)
}
writeFileSync(path.join(results, 'summary.txt'), `$ npm run bench\n\n${log.join('\n')}\n`)
