/**
 * The shipped addon has no test hooks: nothing a user can load moves the real program break. The
 * hooks live in memory_allocator_testing.node, which only the test setup builds.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot, testHooksAddon } from './test-hooks'

const hookNames = ['testing', 'moveBreak', 'blockBreak', 'currentBreak']

/** Every .node file a user could get: the source build and any prebuilds. */
function shippedAddons(): string[] {
  const found: string[] = []
  const walk = (dir: string) => {
    if (!existsSync(dir)) return
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.node')) found.push(path)
    }
  }
  walk(resolve(repoRoot, 'build/Release'))
  walk(resolve(repoRoot, 'prebuilds'))
  return found
}

describe('test hooks stay out of the package', () => {
  const addons = shippedAddons()

  it('there is a shipped addon to look at', () => {
    expect(addons.map((path) => relative(repoRoot, path))).toContain('build/Release/memory_allocator.node')
  })

  it.each(addons.map((path) => [relative(repoRoot, path), path]))('%s exports no hook, at any depth', (_, path) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const binding = require(path) as Record<string, unknown>
    const names: string[] = []
    const collect = (object: Record<string, unknown>, prefix: string) => {
      for (const [name, value] of Object.entries(object)) {
        names.push(prefix + name)
        if (value !== null && typeof value === 'object') collect(value as Record<string, unknown>, `${prefix}${name}.`)
      }
    }
    collect(binding, '')
    expect(names).toContain('createHeap')
    for (const hook of hookNames) expect(names.filter((name) => name.split('.').includes(hook))).toEqual([])
  })

  it.each(addons.map((path) => [relative(repoRoot, path), path]))('%s does not even contain the hooks\' names', (_, path) => {
    const text = readFileSync(path).toString('latin1')
    for (const hook of ['moveBreak', 'blockBreak', 'memory_allocator_testing']) expect(text.includes(hook), hook).toBe(false)
  })

  it('npm pack lists neither the hooks addon nor its source', () => {
    const [pack] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    ) as Array<{ files: Array<{ path: string }> }>
    const files = pack.files.map((file) => file.path)
    expect(files).toContain('package.json')
    expect(files.filter((file) => /testing|break_hooks|build-test-hooks|^test\//.test(file))).toEqual([])
    // The addon itself (build/Release/memory_allocator.node, or prebuildify's memory-allocator.node) is the only .node.
    expect(files.filter((file) => file.endsWith('.node') && !/(^|\/)memory[-_]allocator\.node$/.test(file))).toEqual([])
  })

  it('the hooks addon is a separate file, built for the tests only', () => {
    expect(existsSync(testHooksAddon)).toBe(true)
    expect(relative(repoRoot, testHooksAddon).startsWith('build-test-hooks/')).toBe(true)
  })
})
