/**
 * vitest globalSetup: builds the test-only break hooks addon (memory_allocator_testing.node)
 * into build-test-hooks/ when it is missing or older than its sources. The package build never
 * makes it, so the shipped addon cannot move the break for a user.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { repoRoot, testHooksAddon, testHooksBuildDir, testHooksSources } from './test-hooks'

function upToDate(): boolean {
  if (!existsSync(testHooksAddon)) return false
  const built = statSync(testHooksAddon).mtimeMs
  return testHooksSources.every((source) => statSync(source).mtimeMs <= built)
}

export default function setup(): void {
  // Without a source build of the main addon (no compiler) the native suites have nothing to test.
  if (!existsSync(resolve(repoRoot, 'build/Release/memory_allocator.node')) || upToDate()) return
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js')
  const args = ['build', '-O', testHooksBuildDir, '-T', 'memory_allocator_testing', '--CDMA_TEST_HOOKS=ON', '--log-level', 'warn']
  const build = spawnSync(process.execPath, [cmakeJs, ...args], { cwd: repoRoot, encoding: 'utf8' })
  if (build.status !== 0 || !existsSync(testHooksAddon)) {
    throw new Error(`building the test hooks addon failed (cmake-js ${args.join(' ')}):\n${build.stdout}\n${build.stderr}`)
  }
}
