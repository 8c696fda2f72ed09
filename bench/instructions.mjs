// Instructions per request of the replay loop, counted by callgrind: repeatable where timings on a
// shared 2-core VM are not. Builds bench/native/replay_driver.cpp as the addon is built (-O3, LTO,
// no exceptions), runs each trace with 1 and with 2 timed runs, and divides the difference by the
// trace's requests: one warm run of the loop, setup and teardown cancelled out. Only RunOps is
// counted (--toggle-collect), so the trace's parsing is not. Best fit's untimed first run (0 timed
// runs: a fresh heap) is counted too, so that the warm run can be held to it: a warm heap that
// placed chunks unlike a fresh one would time something no program does.
//
//   node bench/instructions.mjs [TRACE.rep[.gz]...]     (default: ../shared/traces/programs)
//
// Needs g++ and valgrind; writes bench/results/instructions.txt.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const ALLOCATORS = ['best-fit', 'bump', 'libc']

const given = process.argv.slice(2)
const programs = path.resolve(root, '../shared/traces/programs')
const traces = given.length > 0 ? given : existsSync(programs) ? readdirSync(programs).filter((f) => /\.rep(\.gz)?$/.test(f)).sort().map((f) => path.join(programs, f)) : []
if (traces.length === 0) {
  console.error('instructions: no traces (../shared/traces/programs is missing and none were named)')
  process.exit(1)
}
for (const tool of ['g++', 'valgrind']) {
  if (spawnSync(tool, ['--version']).status !== 0) {
    console.error(`instructions: ${tool} is not installed`)
    process.exit(1)
  }
}

const work = mkdtempSync(path.join(os.tmpdir(), 'ma-instructions-'))
try {
  const driver = path.join(work, 'replay_driver')
  const core = readdirSync(path.join(root, 'native/core')).filter((f) => f.endsWith('.cpp')).map((f) => path.join(root, 'native/core', f))
  const command = ['-O3', '-flto', '-fno-exceptions', '-std=c++17', '-I', path.join(root, 'native/core'), ...core, path.join(here, 'native/replay_driver.cpp'), '-o', driver]
  execFileSync('g++', command)

  const counted = (file, allocator, runs) => {
    const run = spawnSync('valgrind', ['--tool=callgrind', "--toggle-collect=*RunOps*", '--callgrind-out-file=/dev/null', driver, file, allocator, String(runs), '0'], { encoding: 'utf8' })
    const match = /Collected : (\d+)/.exec(run.stderr)
    if (run.status !== 0 || match === null || Number(match[1]) === 0) throw new Error(`callgrind failed on ${file} ${allocator}: ${run.stderr.slice(-400)}`)
    return Number(match[1])
  }
  const lines = [
    `$ node bench/instructions.mjs${given.length > 0 ? ` ${given.join(' ')}` : ''}`,
    '',
    'Instructions per request of one warm replay run (callgrind, no touching), RunOps only.',
    `driver: g++ ${command.slice(0, 4).join(' ')} native/core/*.cpp bench/native/replay_driver.cpp`,
    '',
    `${'trace'.padEnd(18)} ${ALLOCATORS.map((a) => a.padStart(9)).join(' ')}   best-fit/libc  bump/libc  best-fit first run  warm/first`,
  ]
  const ratios = { 'best-fit': [], bump: [] }
  const warmToFirst = []
  for (const trace of traces) {
    const name = path.basename(trace).replace(/\.rep(\.gz)?$/, '')
    let file = trace
    if (trace.endsWith('.gz')) {
      file = path.join(work, `${name}.rep`)
      writeFileSync(file, gunzipSync(readFileSync(trace)))
    }
    const ops = Number(readFileSync(file, 'utf8').split('\n', 3)[2])
    const perOp = Object.fromEntries(ALLOCATORS.map((a) => [a, (counted(file, a, 2) - counted(file, a, 1)) / ops]))
    const firstRun = counted(file, 'best-fit', 0) / ops
    ratios['best-fit'].push(perOp['best-fit'] / perOp.libc)
    ratios.bump.push(perOp.bump / perOp.libc)
    warmToFirst.push(perOp['best-fit'] / firstRun)
    lines.push(
      `${name.padEnd(18)} ${ALLOCATORS.map((a) => perOp[a].toFixed(0).padStart(9)).join(' ')}   ${(perOp['best-fit'] / perOp.libc).toFixed(2).padStart(13)}  ${(perOp.bump / perOp.libc).toFixed(2).padStart(9)}  ${firstRun.toFixed(0).padStart(18)}  ${(perOp['best-fit'] / firstRun).toFixed(3).padStart(10)}`,
    )
    console.error(lines[lines.length - 1])
  }
  const mean = (values) => Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length)
  lines.push('', `geometric mean: best-fit ${mean(ratios['best-fit']).toFixed(2)}x libc's instructions, bump ${mean(ratios.bump).toFixed(2)}x`)
  const within = (share) => warmToFirst.filter((r) => Math.abs(r - 1) <= share).length
  const farthest = Math.max(...warmToFirst.map((r) => Math.abs(r - 1)))
  lines.push(
    `best-fit's warm run against its first (a fresh heap): within 2% on ${within(0.02)} of ${warmToFirst.length} traces, at most ${(100 * farthest).toFixed(1)}% apart`,
  )
  writeFileSync(path.join(here, 'results', 'instructions.txt'), `${lines.join('\n')}\n`)
  console.log(lines.join('\n'))
} finally {
  rmSync(work, { recursive: true, force: true })
}
