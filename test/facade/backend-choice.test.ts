/**
 * Choosing the backend: 'auto' (the default) is native where the addon loads, unless
 * MEMORY_ALLOCATOR_BACKEND=js forces the js heap (and says so in fallbackReason). Explicit
 * 'js' and 'native' are what they say. The variable is read at createHeap time, so each test
 * sets it as it needs (vi.stubEnv) and both passes of npm test cover both cases.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createHeap, type Heap } from '../../lib/index'
import { closeHeaps, expectAllocatorError, nativeAvailable, newHeap } from './helpers'

const ENV = 'MEMORY_ALLOCATOR_BACKEND'

afterEach(() => {
  vi.unstubAllEnvs()
  closeHeaps()
})

function works(heap: Heap): void {
  const h = heap.allocArray(Float64Array, 4)
  h.array.set([1, 2, 3, 4])
  expect(Array.from(h.array)).toEqual([1, 2, 3, 4])
  h.free()
  heap.check()
}

describe('this pass', () => {
  it('createHeap() follows the environment of this pass', () => {
    const heap = newHeap()
    if (process.env[ENV] === 'js') {
      expect(heap.backend).toBe('js')
      expect(heap.fallbackReason).toContain(ENV)
    } else if (nativeAvailable) {
      expect(heap.backend).toBe('native')
      expect(heap.fallbackReason).toBeUndefined()
    } else {
      expect(heap.backend).toBe('js')
      expect(heap.fallbackReason).toEqual(expect.any(String))
    }
    works(heap)
  })
})

describe.runIf(nativeAvailable)("'auto' where the addon loads", () => {
  it('is native, on the real break (brk) on the main thread, best fit, with no fallback reason', () => {
    vi.stubEnv(ENV, undefined)
    for (const heap of [newHeap(), newHeap({ backend: 'auto' })]) {
      expect(heap.backend).toBe('native')
      expect(heap.source).toBe('brk')
      expect(heap.strategy).toBe('best-fit')
      expect(heap.fallbackReason).toBeUndefined()
      works(heap)
    }
  })

  it(`is js when ${ENV}=js, and fallbackReason names the variable`, () => {
    vi.stubEnv(ENV, 'js')
    const heap = newHeap()
    expect(heap.backend).toBe('js')
    expect(heap.source).toBe('arraybuffer')
    expect(heap.strategy).toBe('bump')
    expect(heap.fallbackReason).toContain(`${ENV}=js`)
    works(heap)
  })

  it(`takes 'native', 'auto' and '' for ${ENV} as the native heap`, () => {
    for (const value of ['native', 'auto', '']) {
      vi.stubEnv(ENV, value)
      expect(newHeap().backend).toBe('native')
    }
  })

  it(`with ${ENV}=js, native-only options are ERR_UNSUPPORTED and say why the js heap was chosen`, () => {
    vi.stubEnv(ENV, 'js')
    expectAllocatorError(() => createHeap({ strategy: 'first-fit' }), 'ERR_UNSUPPORTED', "'first-fit'", `${ENV}=js`)
    expectAllocatorError(() => createHeap({ source: 'mmap' }), 'ERR_UNSUPPORTED', "'mmap'", `${ENV}=js`)
  })
})

describe(`a value of ${ENV} that means nothing`, () => {
  it.each(['jss', 'JS', 'true', ' js'])(`(%j) is ERR_INVALID_OPTION from createHeap() naming the variable, not silently ignored`, (value) => {
    vi.stubEnv(ENV, value)
    expectAllocatorError(() => createHeap(), 'ERR_INVALID_OPTION', ENV, JSON.stringify(value), "'js', 'native' or 'auto'")
    expectAllocatorError(() => createHeap({ backend: 'auto' }), 'ERR_INVALID_OPTION', ENV)
    // An explicit backend does not read the variable.
    expect(newHeap({ backend: 'js' }).backend).toBe('js')
  })
})

describe('without the addon (a child process in which node-gyp-build cannot load it)', () => {
  const dist = path.resolve(__dirname, '../../dist/cjs/index.js')
  function child(env: string | undefined): { stderr: string; out: { backend: string; reason: string | undefined } } {
    const dir = mkdtempSync(path.join(tmpdir(), 'ma-no-addon-'))
    try {
      const hide = path.join(dir, 'hide-addon.cjs')
      writeFileSync(hide, "const M = require('node:module'); const load = M._load; M._load = function (request, ...rest) { if (request === 'node-gyp-build') throw new Error('hidden by the test'); return load.call(this, request, ...rest) }\n")
      const script = `const { createHeap } = require(${JSON.stringify(dist)}); const a = createHeap(), b = createHeap(); process.stdout.write(JSON.stringify({ backend: a.backend + ',' + b.backend, reason: a.fallbackReason }))`
      const result = spawnSync(process.execPath, ['-r', hide, '-e', script], { encoding: 'utf8', env: { ...process.env, [ENV]: env } })
      expect(result.status, result.stderr).toBe(0)
      return { stderr: result.stderr, out: JSON.parse(result.stdout) }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  it(`${ENV}=js: the js heap with no warning, as the README says`, () => {
    const { stderr, out } = child('js')
    expect(out).toEqual({ backend: 'js,js', reason: `${ENV}=js is set` })
    expect(stderr).toBe('')
  })

  it('unset: the js heap, the reason, and one MEMORY_ALLOCATOR_FALLBACK warning for the process', () => {
    const { stderr, out } = child(undefined)
    expect(out.backend).toBe('js,js')
    expect(out.reason).toContain('hidden by the test')
    expect(stderr.match(/MEMORY_ALLOCATOR_FALLBACK/g)).toHaveLength(1)
  })
})

describe("explicit 'js'", () => {
  it.each([undefined, 'js'])(`has no fallback reason (${ENV}=%s)`, (value) => {
    vi.stubEnv(ENV, value)
    const heap = newHeap({ backend: 'js' })
    expect(heap.backend).toBe('js')
    expect(heap.source).toBe('arraybuffer')
    expect(heap.fallbackReason).toBeUndefined()
    works(heap)
  })
})

describe.runIf(nativeAvailable)("explicit 'native'", () => {
  it.each([undefined, 'js'])(`works whatever the variable says (${ENV}=%s)`, (value) => {
    vi.stubEnv(ENV, value)
    const heap = newHeap({ backend: 'native' })
    expect(heap.backend).toBe('native')
    expect(heap.fallbackReason).toBeUndefined()
    works(heap)
  })

  it.each(['brk', 'mmap'] as const)("takes source '%s'", (source) => {
    const heap = newHeap({ backend: 'native', source })
    expect(heap.source).toBe(source)
    works(heap)
  })

  it.each(['best-fit', 'best-fit-linear', 'first-fit', 'next-fit', 'worst-fit', 'bump'] as const)(
    "takes strategy '%s'",
    (strategy) => {
      const heap = newHeap({ backend: 'native', strategy })
      expect(heap.strategy).toBe(strategy)
      works(heap)
    },
  )
})

describe.skipIf(nativeAvailable)("without the addon", () => {
  it("'native' is ERR_UNSUPPORTED with the reason, 'auto' falls back with it", () => {
    expectAllocatorError(() => createHeap({ backend: 'native' }), 'ERR_UNSUPPORTED', 'native')
    const heap = newHeap()
    expect(heap.backend).toBe('js')
    expect(heap.fallbackReason).toEqual(expect.any(String))
  })
})
