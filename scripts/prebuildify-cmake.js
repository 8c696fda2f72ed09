#!/usr/bin/env node
// prebuildify calls this in place of node-gyp (`--node-gyp scripts/prebuildify-cmake.js`) with
// node-gyp's arguments; we build with cmake-js instead. With N-API there is one build for every
// Node version, so the --target it passes does not matter.
'use strict'
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const debug = process.argv.includes('--debug')
execFileSync(process.execPath, [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '--log-level', 'warn', ...(debug ? ['--debug'] : [])], {
  cwd: root,
  stdio: 'inherit',
})
