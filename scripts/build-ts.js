#!/usr/bin/env node
// Compiles lib/ to CommonJS (dist/cjs) and writes the ESM entry (dist/esm) as a thin re-export of
// it, so that `import` and `require` share one module instance (one addon load, one error class).
'use strict'
const { execFileSync } = require('node:child_process')
const { mkdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const dist = path.join(root, 'dist')
rmSync(dist, { recursive: true, force: true })
// No source maps in the package: with their inlined sources they were 524 kB of its 1.3 MB, and
// without them they would point at lib/*.ts, which is not shipped. dist/cjs is ES2022 compiled
// with types stripped, close enough to lib/ to read in a stack trace.
const tsc = [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json'), '--sourceMap', 'false', '--inlineSources', 'false']
execFileSync(process.execPath, tsc, { stdio: 'inherit' })

const names = Object.keys(require(path.join(dist, 'cjs', 'index.js'))).filter((name) => name !== '__esModule' && name !== 'default')
mkdirSync(path.join(dist, 'esm'), { recursive: true })
writeFileSync(
  path.join(dist, 'esm', 'index.mjs'),
  `import lib from '../cjs/index.js'\nexport const { ${names.join(', ')} } = lib\nexport default lib.default\n`,
)
// `import ma from 'memory-allocator'`: the CJS entry's `exports.default`, typed as such (a default
// import of a CJS module is its whole module.exports under nodenext, hence `.default`).
writeFileSync(
  path.join(dist, 'esm', 'index.d.mts'),
  `import cjs from '../cjs/index.js'\nexport * from '../cjs/index.js'\ndeclare const ma: typeof cjs.default\nexport default ma\n`,
)
// Heap and Handle extend the global `Disposable` (and name Symbol.dispose), which only TypeScript's
// esnext.disposable lib or @types/node declare. The entry declaration pulls the lib in, so that a
// consumer compiles without @types/node and whatever its own `lib` says (TypeScript >= 5.2).
const entryTypes = path.join(dist, 'cjs', 'index.d.ts')
writeFileSync(entryTypes, `/// <reference lib="esnext.disposable" />\n${readFileSync(entryTypes, 'utf8')}`)
// dist/cjs/*.d.ts import the binding's types from '../binding', which imports lib/types.
writeFileSync(
  path.join(dist, 'binding.d.ts'),
  readFileSync(path.join(root, 'binding.d.ts'), 'utf8').replace("from './lib/types'", "from './cjs/types'"),
)
