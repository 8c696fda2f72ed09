// Issue 14's metadata target on the real-program traces: out-of-band metadata at its peak
// (HeapStats.peakMetadataBytes, which replay reports as metadataBytes) against peak live bytes,
// beyond 64 KiB of fixed tables, and the footprint (peak heap + peak metadata) / peak live.
// best-fit, the default options; one untimed replay per trace (the figures are counts, not times).
//
//   node bench/metadata.mjs [--source brk|mmap] [--out FILE] [TRACE.rep.gz ...]
//
// Without traces: ../shared/traces/programs/*.rep.gz and bench/traces/*.rep.gz. Writes
// bench/results/metadata.txt (or --out) with this command at its top.
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const { replay, loadTrace } = require('../dist/cjs/index.js')

const FIXED = 64 << 10 // the target's allowance for fixed tables
const args = process.argv.slice(2)
let source = 'brk'
let out = path.join(here, 'results', 'metadata.txt')
const traces = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--source') source = args[++i]
  else if (args[i] === '--out') out = path.resolve(args[++i])
  else traces.push(path.resolve(args[i]))
}
if (traces.length === 0) {
  for (const dir of [path.resolve(root, '../shared/traces/programs'), path.join(here, 'traces')]) {
    if (!existsSync(dir)) continue
    for (const name of readdirSync(dir).sort()) if (name.endsWith('.rep.gz')) traces.push(path.join(dir, name))
  }
}

const kib = (bytes) => `${(bytes / 1024).toFixed(0)}K`
const pct = (x) => `${(100 * x).toFixed(1)}%`
const lines = []
const say = (line) => {
  console.log(line)
  lines.push(line)
}
const shown = process.argv.slice(2).map((arg) => (arg.startsWith(root) ? path.relative(root, arg) : arg))
say(`$ node bench/metadata.mjs ${shown.join(' ')}`.trimEnd())
say('')
say(`best-fit, source ${source}, default options; metadata = peak of the out-of-band tables (they shrink after it)`)
say('')
say(`${'trace'.padEnd(18)} ${'peak live'.padStart(10)} ${'peak heap'.padStart(10)} ${'metadata'.padStart(9)} ${'% live'.padStart(7)} ${'beyond 64K'.padStart(11)} ${'(heap+md)/live'.padStart(15)}`)
const footprints = []
const heapAlone = []
let worst = 0
for (const file of traces) {
  const trace = loadTrace(file)
  const r = replay(trace, { allocator: 'best-fit', source, repeat: 1, touch: false })
  const beyond = Math.max(0, r.metadataBytes - FIXED) / r.peakLiveBytes
  const footprint = (r.peakHeapBytes + r.metadataBytes) / r.peakLiveBytes
  worst = Math.max(worst, beyond)
  footprints.push(footprint)
  heapAlone.push(r.peakHeapBytes / r.peakLiveBytes)
  say(
    `${path.basename(file, '.rep.gz').padEnd(18)} ${kib(r.peakLiveBytes).padStart(10)} ${kib(r.peakHeapBytes).padStart(10)} ${kib(r.metadataBytes).padStart(9)} ` +
      `${pct(r.metadataBytes / r.peakLiveBytes).padStart(7)} ${pct(beyond).padStart(11)} ${footprint.toFixed(3).padStart(15)}`,
  )
}
const geometricMean = (values) => Math.exp(values.reduce((sum, f) => sum + Math.log(f), 0) / values.length)
const geomean = geometricMean(footprints)
say('')
say(`metadata beyond 64 KiB of fixed tables: at most ${pct(worst)} of peak live (target <= 5%)`)
say(`(peak heap + metadata) / peak live: ${geomean.toFixed(3)} geometric mean (target <= 1.08); peak heap / peak live alone ${geometricMean(heapAlone).toFixed(3)}`)
writeFileSync(out, `${lines.join('\n')}\n`)
