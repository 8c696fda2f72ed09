#!/usr/bin/env node
// prebuildify calls this in place of node-gyp (`--node-gyp scripts/prebuildify-cmake.js`) with
// node-gyp's arguments; we build with cmake-js instead. With N-API there is one build for every
// Node version, so the --target it passes does not matter.
//
// prebuildify then copies the addon and every shared library of build/Release (the recorder and
// the malloc library) into prebuilds/PLATFORM-ARCH/, but no executable: the runner behind
// `bench -- COMMAND` (memory-allocator-measure) is copied there here, mode and all, so that a
// prebuilt install has it too.
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const debug = process.argv.includes('--debug')
execFileSync(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '--log-level', 'warn', ...(debug ? ['--debug'] : [])], {
  cwd: root,
  stdio: 'inherit',
})

const EXECUTABLES = ['memory-allocator-measure']
const built = path.join(root, 'build', debug ? 'Debug' : 'Release')
const prebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`)
fs.mkdirSync(prebuilds, { recursive: true })
for (const file of EXECUTABLES) {
  const from = path.join(built, file)
  if (!fs.existsSync(from)) continue  // no C compiler: `bench -- COMMAND` says the runner is missing
  fs.copyFileSync(from, path.join(prebuilds, file))
  fs.chmodSync(path.join(prebuilds, file), fs.statSync(from).mode)
}
