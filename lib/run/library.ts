/**
 * Where `run` and `bench -- COMMAND` find their native helpers: the malloc library preloaded into
 * the command (native/malloc, memory-allocator-malloc.so) and the measuring runner
 * (native/measure, memory-allocator-measure). Both are looked for as the recorder is: a source
 * build's build/Release first, then the prebuild of this platform.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { AllocatorError } from '../errors'
import { packageRoot } from '../backends/package-root'

export const MALLOC_LIBRARY_FILE = 'memory-allocator-malloc.so'
export const MEASURE_FILE = 'memory-allocator-measure'

const HOW_TO_BUILD = 'npm run build:native builds it; it needs Linux and a C compiler'

function builtFile(file: string): string | undefined {
  const root = packageRoot()
  const candidates = [join(root, 'build', 'Release', file), join(root, 'prebuilds', `${process.platform}-${process.arch}`, file)]
  return candidates.find((path) => existsSync(path))
}

/** The preloaded malloc library, or undefined when it is neither built nor prebuilt. */
export function mallocLibraryPath(): string | undefined {
  return builtFile(MALLOC_LIBRARY_FILE)
}

/** The measuring runner, or undefined when it is not built. */
export function measurePath(): string | undefined {
  return builtFile(MEASURE_FILE)
}

/** The malloc library; ERR_UNSUPPORTED saying how to build it when it is missing. */
export function requireMallocLibrary(): string {
  const path = mallocLibraryPath()
  if (path === undefined) throw new AllocatorError('ERR_UNSUPPORTED', `the malloc library ${MALLOC_LIBRARY_FILE} is not built (${HOW_TO_BUILD})`)
  return path
}

/** The measuring runner; ERR_UNSUPPORTED saying how to build it when it is missing. */
export function requireMeasure(): string {
  const path = measurePath()
  if (path === undefined) throw new AllocatorError('ERR_UNSUPPORTED', `the measuring runner ${MEASURE_FILE} is not built (${HOW_TO_BUILD})`)
  return path
}
