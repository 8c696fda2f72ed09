/**
 * The test-only break hooks: memory_allocator_testing.node, built apart from the shipped addon
 * (test/native/break_hooks_addon.cpp) by test-hooks-setup.ts. They play the foreign code that
 * moves the program break.
 */
import { dirname, resolve } from 'node:path'

export interface TestHooks {
  /** sbrk(delta); returns the old break. Main thread only (ERR_BRK_MAIN_THREAD_ONLY elsewhere). */
  moveBreak(delta: number): number
  currentBreak(): number
  /** true: map a page right above the break so that it cannot grow; false: remove it. */
  blockBreak(block: boolean): void
}

export const repoRoot = resolve(dirname(__filename), '../..')
export const testHooksBuildDir = resolve(repoRoot, 'build-test-hooks')
export const testHooksAddon = resolve(testHooksBuildDir, 'Release/memory_allocator_testing.node')
/** What the hooks addon is built from: a newer one of these means a rebuild. */
export const testHooksSources = [resolve(repoRoot, 'test/native/break_hooks_addon.cpp'), resolve(repoRoot, 'CMakeLists.txt')]

let hooks: TestHooks | undefined

export function loadTestHooks(): TestHooks {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  hooks ??= require(testHooksAddon) as TestHooks
  return hooks
}
