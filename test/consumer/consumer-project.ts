/**
 * A temporary consumer project with the packed package installed, as a user gets it: `npm pack`
 * of this worktree, then `npm install --offline` of the tarball into an empty project.
 *
 * Install scripts are skipped (they would build the addon from source); the addon this worktree
 * already built is copied to where a prebuild would be found instead. Dependencies resolve from
 * npm's cache through a lockfile written from this project's own package-lock.json: the cache
 * `npm ci` fills holds their tarballs but not the registry metadata a plain install would ask for.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const root = path.resolve(__dirname, '../..')
export const PACKAGE = 'memory-allocator'

export interface ConsumerProject {
  dir: string
  /** Where the package is installed inside it. */
  installed: string
  /** Paths in the tarball, relative to the package root. */
  packedFiles: string[]
}

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } })
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd} (exit ${result.status}):\n${result.stderr}${result.error ?? ''}`)
  }
  return result.stdout
}

function newestMtime(dir: string, test: (file: string) => boolean): { file: string; mtime: number } {
  let newest = { file: '', mtime: 0 }
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name)
    if (!entry.isFile() || !test(file)) continue
    const mtime = statSync(file).mtimeMs
    if (mtime > newest.mtime) newest = { file, mtime }
  }
  return newest
}

/** The tarball is made from dist/ as it is: refuse a dist/ older than the sources it comes from. */
export function assertDistIsFresh(): void {
  const entry = path.join(root, 'dist', 'cjs', 'index.js')
  if (!existsSync(entry)) throw new Error('dist/ is missing: run `npm run build:ts` (npm test does)')
  const built = statSync(entry).mtimeMs
  const source = newestMtime(path.join(root, 'lib'), (file) => file.endsWith('.ts'))
  if (source.mtime > built) {
    throw new Error(`dist/ is older than ${path.relative(root, source.file)}: run \`npm run build:ts\` (npm test does)`)
  }
}

export function createConsumerProject(): ConsumerProject {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'memory-allocator-consumer-'))
  const [packed] = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root)) as {
    filename: string
    integrity: string
    files: { path: string }[]
  }[]
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
  const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'))
  const spec = `file:${packed.filename}`
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '0.0.0', dependencies: { [PACKAGE]: spec } },
    [`node_modules/${PACKAGE}`]: {
      version: manifest.version,
      resolved: spec,
      integrity: packed.integrity,
      license: manifest.license,
      hasInstallScript: true,
      dependencies: manifest.dependencies,
      bin: manifest.bin,
      engines: manifest.engines,
    },
  }
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    const locked = lock.packages[`node_modules/${name}`]
    if (locked === undefined) throw new Error(`package-lock.json has no entry for the dependency ${name}: run npm install`)
    const { dev: _dev, ...entry } = locked
    packages[`node_modules/${name}`] = entry
  }
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '0.0.0', private: true, dependencies: { [PACKAGE]: spec } }, null, 2))
  writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '0.0.0', lockfileVersion: 3, requires: true, packages }, null, 2))
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], dir)

  const installed = path.join(dir, 'node_modules', PACKAGE)
  const addon = path.join(root, 'build', 'Release', 'memory_allocator.node')
  if (existsSync(addon)) {
    mkdirSync(path.join(installed, 'build', 'Release'), { recursive: true })
    copyFileSync(addon, path.join(installed, 'build', 'Release', 'memory_allocator.node'))
  }
  return { dir, installed, packedFiles: packed.files.map((file) => file.path) }
}
