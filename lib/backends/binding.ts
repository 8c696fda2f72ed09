/**
 * The one place that loads the native addon, and that knows where the native build puts its
 * files (the addon, and the preloaded libraries beside it). Loading never throws: when the addon
 * cannot be used, it keeps the reason, which becomes `heap.fallbackReason` for backend 'auto'.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { NativeBinding } from '../../binding'
import { AllocatorError, type ErrorCode } from '../errors'
import { packageRoot } from './package-root'

/** Set to `js` to make backend 'auto' choose the pure-TS heap (the test suite runs both ways). */
export const BACKEND_ENV = 'MEMORY_ALLOCATOR_BACKEND'

interface LoadResult {
  binding: NativeBinding | undefined
  reason: string | undefined
}

let loaded: LoadResult | undefined

function load(): LoadResult {
  if (process.platform !== 'linux') {
    return { binding: undefined, reason: `the native heap needs a Linux program break; this is ${process.platform}` }
  }
  let binding: NativeBinding
  try {
    // node-gyp-build looks in build/Release (a source build) and prebuilds/<platform>-<arch>.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding
    binding = nodeGypBuild(packageRoot())
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error)
    return { binding: undefined, reason: `the native addon could not be loaded: ${message}` }
  }
  if (!binding.externalBuffersAllowed()) {
    return { binding: undefined, reason: 'this runtime forbids external ArrayBuffers (V8 memory cage), so native chunks cannot have views' }
  }
  binding.setErrorFactory((code, message) => new AllocatorError(code as ErrorCode, message))
  return { binding, reason: undefined }
}

/** The addon, or undefined with the reason in `nativeUnavailableReason()`. */
export function nativeBinding(): NativeBinding | undefined {
  loaded ??= load()
  return loaded.binding
}

export function nativeUnavailableReason(): string | undefined {
  loaded ??= load()
  return loaded.reason
}

/** Why 'auto' must not choose native even though it loads, or undefined. */
export function forcedJsReason(): string | undefined {
  return process.env[BACKEND_ENV] === 'js' ? `${BACKEND_ENV}=js is set` : undefined
}

/** The addon's file, as node-gyp-build would load it (for a child process that loads it itself). */
export function addonPath(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string }
  return nodeGypBuild.path(packageRoot())
}

/**
 * A file the native build puts beside the addon (the recorder, the malloc library): a source
 * build's build/Release first (as node-gyp-build looks for the addon), then the prebuild for this
 * platform; undefined when neither exists.
 */
export function nativeFilePath(file: string): string | undefined {
  const root = packageRoot()
  const candidates = [join(root, 'build', 'Release', file), join(root, 'prebuilds', `${process.platform}-${process.arch}`, file)]
  return candidates.find((path) => existsSync(path))
}
