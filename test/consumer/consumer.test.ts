/**
 * The package as a consumer gets it: packed, installed offline into a temporary project,
 * type-checked by a strict nodenext program with and without @types/node, and run from ESM and
 * CJS. The consumer's code is fixture/use-every-export.ts, which must import every export.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertDistIsFresh, type ConsumerProject, createConsumerProject, PACKAGE, root } from './consumer-project'

let project: ConsumerProject
const sources = ['use.mts', 'use.cts']

beforeAll(() => {
  assertDistIsFresh()
  project = createConsumerProject()
  const src = path.join(project.dir, 'src')
  mkdirSync(src)
  for (const file of sources) copyFileSync(path.join(__dirname, 'fixture', 'use-every-export.ts'), path.join(src, file))
  writeFileSync(path.join(project.dir, 'sample.rep'), '0\n1\n2\n1\na 0 16\nf 0\n')
}, 60_000)

afterAll(() => {
  if (project !== undefined) rmSync(project.dir, { recursive: true, force: true })
})

/** The consumer's compiler options: strict nodenext, ES2022 without any Disposable lib of its own. */
function consumerOptions(withNodeTypes: boolean): ts.CompilerOptions {
  return {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    noUnusedLocals: true,
    skipLibCheck: false, // the package's declarations are checked too
    types: withNodeTypes ? ['node'] : [],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    outDir: path.join(project.dir, 'out'),
    noEmit: !withNodeTypes,
  }
}

const compiled = new Map<boolean, { program: ts.Program; errors: string }>()

function compile(withNodeTypes: boolean): { program: ts.Program; errors: string } {
  const cached = compiled.get(withNodeTypes)
  if (cached !== undefined) return cached
  const files = sources.map((file) => path.join(project.dir, 'src', file))
  const program = ts.createProgram(files, consumerOptions(withNodeTypes))
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...(withNodeTypes ? program.emit().diagnostics : [])]
  const errors = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (file) => file,
    getCurrentDirectory: () => project.dir,
    getNewLine: () => '\n',
  })
  compiled.set(withNodeTypes, { program, errors })
  return { program, errors }
}

function packageFilesIn(program: ts.Program): string[] {
  return program
    .getSourceFiles()
    .map((file) => file.fileName)
    .filter((file) => file.startsWith(project.installed))
}

describe('the tarball', () => {
  it('ships LICENSE, README, both entry points with declarations, and no sources, tests or build output', () => {
    const files = project.packedFiles
    for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/cjs/index.js', 'dist/cjs/index.d.ts', 'dist/esm/index.mjs', 'dist/esm/index.d.mts']) {
      expect(files, file).toContain(file)
    }
    expect(readFileSync(path.join(project.installed, 'LICENSE'), 'utf8')).toMatch(/^MIT License/)
    expect(JSON.parse(readFileSync(path.join(project.installed, 'package.json'), 'utf8')).license).toBe('MIT')
    expect(files.filter((file) => /^(lib|test|build|bench|node_modules)\//.test(file))).toEqual([])
  })

  it('ships no source maps (with inlined sources they were 524 kB of 1.3 MB) and no comment pointing at one', () => {
    const files = project.packedFiles
    expect(files.filter((file) => file.endsWith('.map'))).toEqual([])
    const pointing = files.filter((file) => /\.(c|m)?js$/.test(file) && file.startsWith('dist/')).filter((file) => readFileSync(path.join(project.installed, file), 'utf8').includes('sourceMappingURL'))
    expect(pointing).toEqual([])
    const unpacked = files.reduce((total, file) => total + statSync(path.join(project.installed, file)).size, 0)
    // dist/ (about 340 kB of JS and declarations), the README, the native sources and the prebuild.
    expect(unpacked, 'unpacked bytes').toBeLessThan(900_000)
  })

  it('ships one binding.d.ts (dist/), and every relative import of a shipped declaration resolves to a shipped file', () => {
    const files = new Set(project.packedFiles)
    expect(files.has('binding.d.ts'), 'the root binding.d.ts imports ./lib/types, which is not shipped').toBe(false)
    expect(files.has('dist/binding.d.ts')).toBe(true)
    const unresolved: string[] = []
    for (const file of files) {
      if (!/\.d\.(m|c)?ts$/.test(file)) continue
      const text = readFileSync(path.join(project.installed, file), 'utf8')
      for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']*)'/g)) {
        const base = path.posix.join(path.posix.dirname(file), specifier).replace(/\.(m|c)?js$/, '')
        const candidates = [`${base}.d.ts`, `${base}.d.mts`, `${base}/index.d.ts`]
        if (!candidates.some((candidate) => files.has(candidate))) unresolved.push(`${file} -> ${specifier}`)
      }
    }
    expect(unresolved).toEqual([])
  })

  it("runs nothing on a consumer's install but the install hook (no prepare)", () => {
    const { scripts } = JSON.parse(readFileSync(path.join(project.installed, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    const onInstall = ['preinstall', 'install', 'postinstall', 'preprepare', 'prepare', 'postprepare', 'dependencies']
    expect(Object.keys(scripts).filter((name) => onInstall.includes(name))).toEqual(['install'])
  })
})

describe("the package's scripts", () => {
  it('none is run by npm as the pre- or post-hook of another by accident (a `prebuild` ran before `build`)', () => {
    const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    const hooks = Object.keys(scripts).filter((name) => {
      const hooked = name.startsWith('pre') ? name.slice(3) : name.startsWith('post') ? name.slice(4) : undefined
      return hooked !== undefined && hooked in scripts
    })
    expect(hooks).toEqual([])
  })

  it('the prebuild script keeps its callers: prepack, README', () => {
    const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    const called = [...Object.values(scripts).join('\n').matchAll(/npm run ([\w:-]+)/g), ...readFileSync(path.join(root, 'README.md'), 'utf8').matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1])
    expect(called.filter((name) => !(name in scripts))).toEqual([])
    expect(scripts.prepack).toContain('npm run build:prebuild')
  })
})

describe('type-checking a strict nodenext consumer', () => {
  it('passes without @types/node: the declarations bring the Disposable types they name', () => {
    const { program, errors } = compile(false)
    expect(errors).toBe('')
    expect(packageFilesIn(program).some((file) => file.endsWith('types.d.ts'))).toBe(true)
    expect(program.getSourceFiles().some((file) => /[/\\]@types[/\\]node[/\\]/.test(file.fileName))).toBe(false)
  })

  it('passes with @types/node, and compiles the consumer to ESM and CJS', () => {
    const { program, errors } = compile(true)
    expect(errors).toBe('')
    expect(program.getSourceFiles().some((file) => /[/\\]@types[/\\]node[/\\]/.test(file.fileName))).toBe(true)
    for (const file of ['use.mjs', 'use.cjs']) expect(existsSync(path.join(project.dir, 'out', file)), file).toBe(true)
  })

  it('imports every public export of the package (values and types)', () => {
    const { program } = compile(false)
    const checker = program.getTypeChecker()
    const consumer = program.getSourceFile(path.join(project.dir, 'src', 'use.mts'))
    const declaration = consumer?.statements.find(
      (statement): statement is ts.ImportDeclaration =>
        ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier) && statement.moduleSpecifier.text === PACKAGE,
    )
    expect(declaration, `an import from '${PACKAGE}'`).toBeDefined()
    const moduleSymbol = checker.getSymbolAtLocation(declaration!.moduleSpecifier)
    expect(moduleSymbol).toBeDefined()
    const exported = checker.getExportsOfModule(moduleSymbol!).map((symbol) => symbol.name)
    const bindings = declaration!.importClause?.namedBindings
    const imported = bindings !== undefined && ts.isNamedImports(bindings) ? bindings.elements.map((element) => element.name.text) : []
    if (declaration!.importClause?.name !== undefined) imported.push('default')
    expect(exported.length).toBeGreaterThan(20)
    const missing = exported.filter((name) => !imported.includes(name)).sort()
    expect(missing, 'exports that test/consumer/fixture/use-every-export.ts does not import and use yet').toEqual([])
  })
})

describe('running the consumer', () => {
  function runNode(args: string[]): { stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, args, { cwd: project.dir, encoding: 'utf8', env: { ...process.env, MEMORY_ALLOCATOR_BACKEND: '' } })
    expect(result.status, result.stderr).toBe(0)
    return { stdout: result.stdout, stderr: result.stderr }
  }

  it("installs the command line: the package's bin prints the package's version", () => {
    const bin = path.join(project.dir, 'node_modules', '.bin', PACKAGE)
    const { version } = JSON.parse(readFileSync(path.join(project.installed, 'package.json'), 'utf8'))
    expect(runNode([bin, '--version']).stdout.trim()).toContain(version)
  })

  it('gives the same results from CJS and ESM, on both backends, with one module instance for both', () => {
    const hasAddon = existsSync(path.join(root, 'build', 'Release', 'memory_allocator.node'))
    const cjs = runNode(['-e', "process.stdout.write(JSON.stringify(require('./out/use.cjs').main('sample.rep')))"])
    const esm = runNode([
      '--input-type=module',
      '-e',
      [
        "import { createRequire } from 'node:module'",
        "const { main } = await import('./out/use.mjs')",
        `const esmExports = await import('${PACKAGE}')`,
        `const cjsExports = createRequire(import.meta.url)('${PACKAGE}')`,
        'const shared = esmExports.AllocatorError === cjsExports.AllocatorError',
        // `import ma from` and `require().default`: the same object, holding every value export.
        "const values = Object.keys(esmExports).filter((n) => n !== 'default').sort()",
        'const defaultShared = esmExports.default === cjsExports.default && Object.keys(esmExports.default).sort().join() === values.join()',
        "process.stdout.write(JSON.stringify({ ...main('sample.rep'), shared, defaultShared, names: Object.keys(esmExports).sort().join() === Object.keys(cjsExports).filter((n) => n !== '__esModule').sort().join() }))",
      ].join('\n'),
    ])
    const fromCjs = JSON.parse(cjs.stdout)
    const { shared, defaultShared, names, ...fromEsm } = JSON.parse(esm.stdout)
    expect(fromEsm).toEqual(fromCjs)
    expect(shared).toBe(true)
    expect(defaultShared).toBe(true)
    expect(fromCjs.defaultExport).toEqual(
      ['AllocatorError', 'createHeap', 'formatTrace', 'generateTrace', 'loadTrace', 'parseTrace', 'renderHeapMap', 'replay', 'REPLAY_ALLOCATORS', 'STRATEGIES', 'traceFromOps', 'TraceOp', 'WORKLOAD_KINDS'].sort(),
    )
    expect(names).toBe(true)
    expect(fromCjs.backends).toEqual(['js', hasAddon ? 'native' : 'js'])
    expect(fromCjs.disposedByUsing).toBe(true)
    expect(fromCjs.errorCodes.filter((_: string, i: number) => i % 2 === 0)).toEqual(['ERR_USE_AFTER_FREE', 'ERR_USE_AFTER_FREE'])
    expect(fromCjs).toMatchObject({ arraySum: 20, rawUsable: 16, traceOps: 3, loadedOps: 5, workloads: 7 })
    if (hasAddon) expect(fromCjs.replay).toMatchObject({ allocator: 'best-fit' })
    else expect(fromCjs.replay.unsupported).toMatch(/native addon/)
  })
})
