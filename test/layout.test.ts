/**
 * The shape of lib/: no import circle, and imports point one way between its folders (README,
 * "How it works"). The import statements are read with the TypeScript parser, type-only imports
 * included: a circle through types is still a circle for a reader.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const LIB = path.resolve(__dirname, '..', 'lib')

/** A module's folder under lib/ ('heap', 'cli', ...), or its name for the files at the top. */
type Layer = string

/**
 * What each layer may import at run time (its own folder always). cli/ may import anything and
 * nothing imports it; render/ draws from plain data and imports only the public types and
 * errors. `run` is the program runner's folder (lib/run/), listed so that its rules are set
 * before it exists.
 */
const MAY_IMPORT: Record<Layer, readonly Layer[]> = {
  types: [],
  errors: [],
  binding: ['types'], // the root binding.d.ts: the addon's typed shape
  backends: ['types', 'errors', 'binding'],
  heap: ['backends', 'types', 'errors', 'binding'],
  render: ['types', 'errors'],
  process: [], // starting a command as a shell would: record and run share it
  trace: ['backends', 'process', 'types', 'errors'],
  replay: ['trace', 'heap', 'backends', 'render', 'types', 'errors', 'binding'],
  bench: ['replay', 'trace', 'heap', 'render', 'types', 'errors'],
  run: ['bench', 'replay', 'trace', 'heap', 'backends', 'render', 'process', 'types', 'errors'],
  index: ['heap', 'backends', 'trace', 'replay', 'bench', 'render', 'run', 'types', 'errors'],
  cli: ['index', 'run', 'bench', 'replay', 'trace', 'heap', 'backends', 'render', 'process', 'types', 'errors', 'binding'],
}

/** Type-only imports a layer may make beyond MAY_IMPORT: render/ draws the data of these. */
const MAY_IMPORT_TYPES: Record<Layer, readonly Layer[]> = {
  render: ['bench', 'replay', 'trace'],
}

/** The one module that loads the addon (require('node-gyp-build') or a .node file). */
const ADDON_LOADER = 'backends/binding.ts'

interface Edge {
  from: string
  to: string
  typeOnly: boolean
}

interface ModuleImports {
  /** Relative imports resolved to lib-relative paths (or '../binding.d.ts'). */
  edges: Edge[]
  /** Package or built-in specifiers. */
  external: string[]
}

function layerOf(file: string): Layer {
  if (file === '../binding.d.ts') return 'binding'
  const [first, ...rest] = file.split('/')
  return rest.length === 0 ? first.replace(/\.ts$/, '') : first
}

function resolveSpecifier(from: string, specifier: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier))
  for (const candidate of [`${base}.ts`, `${base}.d.ts`, `${base}/index.ts`]) {
    if (candidate === '../binding.d.ts' || existsInLib(candidate)) return candidate
  }
  throw new Error(`${from}: cannot resolve import ${JSON.stringify(specifier)}`)
}

const LIB_FILES = listLib()
function existsInLib(file: string): boolean {
  return LIB_FILES.includes(file)
}

function listLib(): string[] {
  return (readdirSync(LIB, { recursive: true }) as string[])
    .map((file) => file.split(path.sep).join('/'))
    .filter((file) => file.endsWith('.ts'))
    .sort()
}

/** Every import, export-from, require() and import() of one file. */
export function importsOf(file: string, text: string): ModuleImports {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS)
  const found: { specifier: string; typeOnly: boolean }[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)))
      found.push({ specifier: node.moduleSpecifier.text, typeOnly })
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly =
        node.isTypeOnly ||
        (node.exportClause !== undefined && ts.isNamedExports(node.exportClause) && node.exportClause.elements.every((element) => element.isTypeOnly))
      found.push({ specifier: node.moduleSpecifier.text, typeOnly })
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require')) &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false })
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ specifier: node.argument.literal.text, typeOnly: true })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  const edges: Edge[] = []
  const external: string[] = []
  for (const { specifier, typeOnly } of found) {
    if (specifier.startsWith('.')) edges.push({ from: file, to: resolveSpecifier(file, specifier), typeOnly })
    else external.push(specifier)
  }
  return { edges, external }
}

/** Every circle of the graph, each once, as the list of its modules (the first repeated last). */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's strongly connected components; a component of more than one module, or a module
  // importing itself, holds a circle. One circle per component is shown: the shortest path back.
  let index = 0
  const indexes = new Map<string, number>()
  const lowlinks = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const connect = (node: string): void => {
    indexes.set(node, index)
    lowlinks.set(node, index)
    index++
    stack.push(node)
    onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!indexes.has(next)) {
        connect(next)
        lowlinks.set(node, Math.min(lowlinks.get(node)!, lowlinks.get(next)!))
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node)!, indexes.get(next)!))
      }
    }
    if (lowlinks.get(node) === indexes.get(node)) {
      const component: string[] = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== node)
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component)
    }
  }
  for (const node of [...graph.keys()].sort()) if (!indexes.has(node)) connect(node)
  return components.map((component) => shortestCircle(graph, component))
}

function shortestCircle(graph: ReadonlyMap<string, readonly string[]>, component: string[]): string[] {
  const inside = new Set(component)
  const start = [...component].sort()[0]
  // Breadth-first from start back to start, within the component.
  const previous = new Map<string, string>()
  const queue = [start]
  while (queue.length > 0) {
    const node = queue.shift()!
    for (const next of graph.get(node) ?? []) {
      if (!inside.has(next)) continue
      if (next === start) {
        const path = [node]
        while (path[0] !== start) path.unshift(previous.get(path[0])!)
        return [...path, start]
      }
      if (!previous.has(next)) {
        previous.set(next, node)
        queue.push(next)
      }
    }
  }
  return [start, start]
}

/** The edges that break MAY_IMPORT / MAY_IMPORT_TYPES, in words. */
export function layerViolations(edges: readonly Edge[]): string[] {
  const problems: string[] = []
  for (const { from, to, typeOnly } of edges) {
    const [source, target] = [layerOf(from), layerOf(to)]
    if (source === target) continue
    const allowed = MAY_IMPORT[source]
    if (allowed === undefined) {
      problems.push(`${from}: lib/${source} is not a known layer (add it to MAY_IMPORT in test/layout.test.ts)`)
      continue
    }
    if (allowed.includes(target)) continue
    if (typeOnly && (MAY_IMPORT_TYPES[source] ?? []).includes(target)) continue
    problems.push(`${from} imports ${to}${typeOnly ? ' (types)' : ''}: ${source} may not import ${target}`)
  }
  return problems
}

function libGraph(): { edges: Edge[]; external: Map<string, string[]> } {
  const edges: Edge[] = []
  const external = new Map<string, string[]>()
  for (const file of LIB_FILES) {
    const imports = importsOf(file, readFileSync(path.join(LIB, file), 'utf8'))
    edges.push(...imports.edges)
    external.set(file, imports.external)
  }
  return { edges, external }
}

function toGraph(edges: readonly Pick<Edge, 'from' | 'to'>[]): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const { from, to } of edges) {
    graph.set(from, [...(graph.get(from) ?? []), to])
    if (!graph.has(to)) graph.set(to, [])
  }
  return graph
}

describe('the checks themselves', () => {
  it('finds a circle in a small graph, and none in a tree', () => {
    const circle = toGraph([
      { from: 'a.ts', to: 'b.ts' },
      { from: 'b.ts', to: 'c.ts' },
      { from: 'c.ts', to: 'a.ts' },
      { from: 'c.ts', to: 'd.ts' },
      { from: 'e.ts', to: 'e.ts' },
    ])
    expect(findCycles(circle)).toEqual([
      ['a.ts', 'b.ts', 'c.ts', 'a.ts'],
      ['e.ts', 'e.ts'],
    ])
    expect(findCycles(toGraph([{ from: 'a.ts', to: 'b.ts' }, { from: 'a.ts', to: 'c.ts' }, { from: 'b.ts', to: 'c.ts' }]))).toEqual([])
  })

  it('reads value, type-only, re-export, require and import() specifiers', () => {
    const text = [
      "import { a } from './heap/heap'",
      "import type { B } from './types'",
      "import { type C } from './errors'",
      "export { d } from './render/format'",
      "export type { E } from './trace/trace'",
      "const f = require('./cli/main')",
      "const g = import('node:fs')",
      "require('node-gyp-build')",
    ].join('\n')
    const { edges, external } = importsOf('index.ts', text)
    expect(edges).toEqual([
      { from: 'index.ts', to: 'heap/heap.ts', typeOnly: false },
      { from: 'index.ts', to: 'types.ts', typeOnly: true },
      { from: 'index.ts', to: 'errors.ts', typeOnly: true },
      { from: 'index.ts', to: 'render/format.ts', typeOnly: false },
      { from: 'index.ts', to: 'trace/trace.ts', typeOnly: true },
      { from: 'index.ts', to: 'cli/main.ts', typeOnly: false },
    ])
    expect(external).toEqual(['node:fs', 'node-gyp-build'])
  })

  it('refuses an import against the direction, and allows what the rules allow', () => {
    expect(
      layerViolations([
        { from: 'heap/heap.ts', to: 'cli/main.ts', typeOnly: false },
        { from: 'render/heap-map.ts', to: 'heap/heap.ts', typeOnly: false },
        { from: 'render/heap-map.ts', to: 'heap/options.ts', typeOnly: true },
        { from: 'render/timeline.ts', to: 'replay/replay.ts', typeOnly: false },
        { from: 'render/timeline.ts', to: 'replay/replay.ts', typeOnly: true },
        { from: 'cli/main.ts', to: 'heap/heap.ts', typeOnly: false },
        { from: 'extra/x.ts', to: 'types.ts', typeOnly: false },
      ]),
    ).toEqual([
      'heap/heap.ts imports cli/main.ts: heap may not import cli',
      'render/heap-map.ts imports heap/heap.ts: render may not import heap',
      'render/heap-map.ts imports heap/options.ts (types): render may not import heap',
      'render/timeline.ts imports replay/replay.ts: render may not import replay',
      'extra/x.ts: lib/extra is not a known layer (add it to MAY_IMPORT in test/layout.test.ts)',
    ])
  })
})

describe('lib/', () => {
  const { edges, external } = libGraph()

  it('has no import circle', () => {
    const circles = findCycles(toGraph(edges)).map((circle) => circle.join(' -> '))
    expect(circles, `import circles in lib/:\n${circles.join('\n')}`).toEqual([])
  })

  it('imports one way between its folders (cli/ may import anything, nothing imports cli/)', () => {
    expect(layerViolations(edges)).toEqual([])
  })

  it('loads the addon in one place only', () => {
    const loaders = [...external].filter(([, specifiers]) => specifiers.some((s) => s === 'node-gyp-build' || s.endsWith('.node'))).map(([file]) => file)
    expect(loaders).toEqual([ADDON_LOADER])
  })
})
