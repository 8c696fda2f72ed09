#!/usr/bin/env node
// npm install hook. Uses a prebuild that loads; else builds the addon from source with cmake-js;
// else says why and leaves the js backend to be used. It never fails the install and never
// touches the network (cmake-js takes the Node-API headers from the node-api-headers package).
// In a checkout (scripts/build-ts.js is there; the tarball ships dist/ instead) it also compiles
// the TypeScript, which a `prepare` script did before: `prepare` shipped in the package's
// package.json as one more script a consumer's install could run (issue 13, defect 17).
'use strict'
const { spawnSync } = require('node:child_process')
const { existsSync } = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

function say(message) {
  console.warn(`memory-allocator: ${message}`)
}

function prebuildLoads() {
  let nodeGypBuild
  try {
    nodeGypBuild = require('node-gyp-build')
  } catch {
    return false
  }
  let file
  try {
    file = nodeGypBuild.path(root)
  } catch {
    return false  // nothing built or prebuilt for this platform
  }
  if (!file.includes(`${path.sep}prebuilds${path.sep}`)) return false  // a source build: rebuild it
  try {
    require(file)
    return true
  } catch (error) {
    say(`the prebuild ${path.relative(root, file)} does not load (${error.message.split('\n')[0]}); building from source`)
    return false
  }
}

function buildFromSource() {
  let cmakeJs
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] })
  } catch {
    return 'no prebuild fits this platform and cmake-js is not installed (npm install --save-dev cmake-js to build from source)'
  }
  const build = spawnSync(process.execPath, [cmakeJs, 'build', '--log-level', 'warn'], { cwd: root, stdio: 'inherit' })
  if (build.error) return `cmake-js could not run: ${build.error.message}`
  if (build.status !== 0) return `the source build failed (cmake-js exited with ${build.status}); is cmake with a C++17 compiler installed?`
  return undefined
}

function main() {
  if (process.platform !== 'linux') {
    say(`the native heap needs a Linux program break; on ${process.platform} the js backend will be used`)
    return
  }
  if (prebuildLoads()) return
  const failure = buildFromSource()
  if (failure !== undefined) say(`${failure}. The js backend will be used (heap.fallbackReason says why).`)
}

try {
  main()
} catch (error) {
  say(`install step failed unexpectedly (${error && error.message}); the js backend will be used`)
}

// A checkout's TypeScript: a compile error there is the developer's to see, so it fails `npm ci`.
const buildTs = path.join(root, 'scripts', 'build-ts.js')
if (existsSync(buildTs)) {
  const build = spawnSync(process.execPath, [buildTs], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) process.exitCode = build.status ?? 1
}
