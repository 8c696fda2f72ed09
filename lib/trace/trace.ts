/**
 * Malloc-lab `.rep` traces (DESIGN.md, "Trace format"): a one-pass parser that writes requests
 * straight into typed arrays, the loader for `.rep` / `.rep.gz` files, the writer, and the
 * validation plus peak-live accounting that parsed and generated traces share.
 *
 * Peak live bytes follow the malloc-lab utilization rule: +bytes on `a`, +(new - old) on `r`,
 * -(current size) on `f`. Sizes are doubles, not 32-bit integers, because real traces ask for
 * more than 4 GiB in one request.
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { AllocatorError, describeValue } from '../errors'

// The hot loops compare against these module constants: compiled to CommonJS, `TraceOp.Alloc`
// would be a property load from `exports` on every request.
const OP_ALLOC = 0
const OP_FREE = 1
const OP_REALLOC = 2

export const TraceOp = { Alloc: OP_ALLOC, Free: OP_FREE, Realloc: OP_REALLOC } as const

export interface Trace {
  readonly name: string
  /** Ids run 0..numIds-1. */
  readonly numIds: number
  readonly opCount: number
  /** Per request: a TraceOp value. */
  readonly kinds: Uint8Array
  /** Per request: the block id; -1 only for `f -1` (free(NULL)). */
  readonly ids: Int32Array
  /** Per request: bytes for alloc/realloc, 0 for free. */
  readonly sizes: Float64Array
  /** The four header numbers as read; generated traces use [0, numIds, opCount, peakLiveBytes]. */
  readonly header: readonly number[]
  readonly peakLiveBytes: number
  readonly peakLiveChunks: number
}

const CHAR_TAB = 9
const CHAR_LF = 10
const CHAR_CR = 13
const CHAR_SPACE = 32
const CHAR_MINUS = 45
const CHAR_0 = 48
const CHAR_9 = 57
const CHAR_A = 97
const CHAR_F = 102
const CHAR_R = 114

/** Ids are stored in an Int32Array. */
const MAX_IDS = 0x7fffffff
/**
 * A replay sizes its per-id tables (24 bytes an id in native code) by numIds before it runs, so
 * a header's id count is capped by what the body can use: every id a trace uses takes at least
 * one request, and real traces number their ids densely (malloc-lab's run 0..numIds-1, every one
 * used). A trace may declare up to max(requests, ID_ALLOWANCE) ids; more is ERR_TRACE_FORMAT,
 * raised before anything is allocated. The allowance keeps small hand-written traces that
 * declare a round number of ids legal, and it bounds a replay's tables by the trace's own size.
 */
export const ID_ALLOWANCE = 1 << 16
/** The shortest request line, `f 0\n`; bounds how many requests a text can hold. */
const MIN_REQUEST_CHARS = 4
/** How many ids get live-size slots up front; a header may declare far more ids than a trace uses. */
const INITIAL_ID_SLOTS = 1 << 16

const HEADER_FIELDS = [
  'header line 1 (heap size or weight)',
  'header line 2 (number of ids)',
  'header line 3 (number of requests)',
  'header line 4 (weight or peak live bytes)',
]

const DEAD = -1

function traceError(traceName: string, line: number, what: string): AllocatorError {
  return new AllocatorError('ERR_TRACE_FORMAT', `trace ${JSON.stringify(traceName)} line ${line}: ${what}`)
}

function describeIdRange(numIds: number): string {
  return numIds === 0 ? 'the header declares no ids' : `ids run 0..${numIds - 1}`
}

/**
 * Replays requests against a table of current sizes: rejects requests that make no sense for the
 * live set and keeps the malloc-lab peak statistics.
 */
class LiveSet {
  private sizes: Float64Array
  private liveBytes = 0
  private liveChunks = 0
  peakLiveBytes = 0
  peakLiveChunks = 0

  constructor(
    private readonly traceName: string,
    private readonly numIds: number,
  ) {
    this.sizes = new Float64Array(Math.min(numIds, INITIAL_ID_SLOTS)).fill(DEAD)
  }

  alloc(id: number, size: number, line: number): void {
    const sizes = this.slotsFor(id, line)
    if (sizes[id] !== DEAD) {
      throw traceError(this.traceName, line, `allocation of id ${id}, which is still live (it was never freed)`)
    }
    sizes[id] = size
    this.liveChunks++
    this.addLiveBytes(size)
  }

  free(id: number, line: number): void {
    if (id === -1) return
    const sizes = this.slotsFor(id, line)
    const size = sizes[id]
    if (size === DEAD) throw traceError(this.traceName, line, `free of id ${id}, which is not live`)
    sizes[id] = DEAD
    this.liveChunks--
    this.liveBytes -= size
  }

  /** realloc of a dead id is realloc(NULL, size): it allocates. */
  realloc(id: number, size: number, line: number): void {
    const sizes = this.slotsFor(id, line)
    const oldSize = sizes[id]
    sizes[id] = size
    if (oldSize === DEAD) {
      this.liveChunks++
      this.addLiveBytes(size)
    } else {
      this.addLiveBytes(size - oldSize)
    }
  }

  private addLiveBytes(bytes: number): void {
    this.liveBytes += bytes
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes
    if (this.liveChunks > this.peakLiveChunks) this.peakLiveChunks = this.liveChunks
  }

  private slotsFor(id: number, line: number): Float64Array {
    if (id < 0 || id >= this.numIds) {
      throw traceError(this.traceName, line, `id ${id} is out of range (${describeIdRange(this.numIds)})`)
    }
    if (id >= this.sizes.length) {
      const grown = new Float64Array(Math.min(this.numIds, Math.max(id + 1, this.sizes.length * 2))).fill(DEAD)
      grown.set(this.sizes)
      this.sizes = grown
    }
    return this.sizes
  }
}

/**
 * Reads the text by char codes; `pos` and `line` always describe the next unread character. This
 * is the general path that accepts every legal spelling and explains every error; parseTrace runs
 * its own fast path for the canonical `x ID SIZE\n` shape and hands anything else to readRequest.
 */
class Scanner {
  pos = 0
  line = 1
  kind = 0
  id = 0
  size = 0
  private tokenStart = 0
  private firstBlankLine = 0

  constructor(
    readonly text: string,
    readonly traceName: string,
  ) {}

  fail(what: string, line = this.line): never {
    throw traceError(this.traceName, line, what)
  }

  /** Spaces and tabs are the only field separators. */
  skipSeparators(): void {
    const text = this.text
    let pos = this.pos
    let c = text.charCodeAt(pos)
    while (c === CHAR_SPACE || c === CHAR_TAB) c = text.charCodeAt(++pos)
    this.pos = pos
  }

  atEnd(): boolean {
    return this.pos >= this.text.length
  }

  atLineEnd(): boolean {
    const c = this.text.charCodeAt(this.pos)
    return c === CHAR_LF || c === CHAR_CR || this.pos >= this.text.length
  }

  /**
   * An optionally negative decimal integer ending at a separator or line end, or NaN (position
   * unchanged) when the token is anything else; `token()` then shows what was there. Values beyond
   * 2^53 come back inexact but still larger than Number.MAX_SAFE_INTEGER, which callers reject.
   */
  readInteger(): number {
    const text = this.text
    let pos = this.pos
    this.tokenStart = pos
    const negative = text.charCodeAt(pos) === CHAR_MINUS
    if (negative) pos++
    const digitsStart = pos
    let value = 0
    let c = text.charCodeAt(pos)
    while (c >= CHAR_0 && c <= CHAR_9) {
      value = value * 10 + (c - CHAR_0)
      c = text.charCodeAt(++pos)
    }
    const endsToken = c === CHAR_SPACE || c === CHAR_TAB || c === CHAR_LF || c === CHAR_CR || pos >= text.length
    if (pos === digitsStart || !endsToken) return NaN
    this.pos = pos
    // `0 - value` rather than `-value`, so that "-0" reads as 0 and not as -0.
    return negative ? 0 - value : value
  }

  /** The whitespace-delimited token at the last readInteger() position, for error messages. */
  token(): string {
    const text = this.text
    let end = this.tokenStart
    for (;;) {
      const c = text.charCodeAt(end)
      if (c === CHAR_SPACE || c === CHAR_TAB || c === CHAR_LF || c === CHAR_CR || end >= text.length) break
      end++
    }
    return text.slice(this.tokenStart, end)
  }

  /** Consumes trailing separators and the line break (`\n` or `\r\n`); anything else is an extra field. */
  endLine(): void {
    this.skipSeparators()
    const text = this.text
    let c = text.charCodeAt(this.pos)
    if (c === CHAR_CR) c = text.charCodeAt(++this.pos)
    if (c === CHAR_LF) {
      this.pos++
      this.line++
    } else if (this.pos < text.length) {
      this.tokenStart = this.pos
      this.fail(`unexpected extra field ${JSON.stringify(this.token())}`)
    }
  }

  readHeader(): number[] {
    const header: number[] = []
    for (const field of HEADER_FIELDS) {
      this.skipSeparators()
      if (this.atEnd()) this.fail(`the header ends after ${header.length} of its 4 lines; missing ${field}`)
      if (this.atLineEnd()) this.fail(`${field} is empty`)
      const value = this.readInteger()
      if (Number.isNaN(value)) this.fail(`${field} ${JSON.stringify(this.token())} is not an integer`)
      if (value < 0) this.fail(`${field} is negative (${this.token()})`)
      if (value > Number.MAX_SAFE_INTEGER) this.fail(`${field} ${this.token()} is too large`)
      this.endLine()
      header.push(value)
    }
    if (header[1] > MAX_IDS) this.fail(`${HEADER_FIELDS[1]} ${header[1]} is more than ${MAX_IDS}`, 2)
    // The rest of the text bounds the requests, whatever header line 3 claims.
    const requestsTheTextHolds = Math.floor((this.text.length - this.pos + 1) / MIN_REQUEST_CHARS)
    const usable = maxIdsFor(Math.min(header[2], requestsTheTextHolds))
    if (header[1] > usable) {
      this.fail(`${HEADER_FIELDS[1]} ${header[1]} is more than the trace can use (at most ${usable}: one id per request, or ${ID_ALLOWANCE})`, 2)
    }
    return header
  }

  /**
   * Reads the next request into kind/id/size, skipping blank lines; false at the end of the text.
   * Blank lines are accepted only at the end. The id is not range-checked here (LiveSet does that).
   */
  readRequest(): boolean {
    const text = this.text
    for (;;) {
      this.skipSeparators()
      if (!this.atLineEnd()) break
      if (this.atEnd()) return false
      if (this.firstBlankLine === 0) this.firstBlankLine = this.line
      this.endLine()
    }
    if (this.firstBlankLine !== 0) this.fail('empty line between requests', this.firstBlankLine)

    const opChar = text.charCodeAt(this.pos)
    const kind =
      opChar === CHAR_A ? OP_ALLOC : opChar === CHAR_F ? OP_FREE : opChar === CHAR_R ? OP_REALLOC : -1
    const afterOp = text.charCodeAt(this.pos + 1)
    const opEnds = afterOp === CHAR_SPACE || afterOp === CHAR_TAB || afterOp === CHAR_LF || afterOp === CHAR_CR
    if (kind === -1 || !(opEnds || this.pos + 1 >= text.length)) {
      this.readInteger()
      this.fail(`unknown request ${JSON.stringify(this.token())} (expected a, f or r)`)
    }
    this.pos++

    this.skipSeparators()
    if (this.atLineEnd()) this.fail('missing id')
    const id = this.readInteger()
    if (Number.isNaN(id)) this.fail(`id ${JSON.stringify(this.token())} is not an integer`)

    let size = 0
    if (kind !== OP_FREE) {
      this.skipSeparators()
      if (this.atLineEnd()) this.fail('missing size')
      size = this.readInteger()
      if (Number.isNaN(size)) this.fail(`size ${JSON.stringify(this.token())} is not an integer`)
      if (size < 0) this.fail(`size ${this.token()} is negative`)
      if (size > Number.MAX_SAFE_INTEGER) this.fail(`size ${this.token()} is too large`)
    }
    this.endLine()
    this.kind = kind
    this.id = id
    this.size = size
    return true
  }
}

/**
 * Parses malloc-lab `.rep` text: four header numbers (classic: heap size, ids, requests, weight;
 * 2016 set: weight, ids, requests, peak live bytes), then `a ID SIZE`, `f ID` or `r ID SIZE` per
 * line. Accepts `\r\n`, tabs, trailing whitespace and trailing blank lines, `f -1` (free(NULL)) and
 * `r` of a dead id (realloc(NULL)). Anything else throws ERR_TRACE_FORMAT naming the line.
 */
export function parseTrace(text: string, name = 'trace'): Trace {
  if (typeof name !== 'string') throw new AllocatorError('ERR_INVALID_OPTION', `the trace name must be a string, got ${describeValue(name)}`)
  if (typeof text !== 'string') throw new AllocatorError('ERR_TRACE_FORMAT', `trace ${JSON.stringify(name)}: the text must be a string, got ${describeValue(text)}`)
  const scanner = new Scanner(text, name)
  const header = scanner.readHeader()
  const numIds = header[1]
  const declaredOps = header[2]
  const liveSet = new LiveSet(name, numIds)

  let pos = scanner.pos
  let line = scanner.line
  let capacity = Math.min(declaredOps, Math.floor((text.length - pos + 1) / MIN_REQUEST_CHARS))
  let kinds = new Uint8Array(capacity)
  let ids = new Int32Array(capacity)
  let sizes = new Float64Array(capacity)
  let count = 0

  for (;;) {
    const requestLine = line
    // Fast path: `x ID\n` or `x ID SIZE\n` (or `\r\n`) with single spaces and unsigned numbers.
    const opChar = text.charCodeAt(pos)
    let kind =
      opChar === CHAR_A ? OP_ALLOC : opChar === CHAR_F ? OP_FREE : opChar === CHAR_R ? OP_REALLOC : -1
    let next = pos + 2
    let c = text.charCodeAt(next)
    let id = 0
    while (c >= CHAR_0 && c <= CHAR_9) {
      id = id * 10 + (c - CHAR_0)
      c = text.charCodeAt(++next)
    }
    let canonical = kind !== -1 && text.charCodeAt(pos + 1) === CHAR_SPACE && next > pos + 2
    let size = 0
    if (kind !== OP_FREE) {
      canonical = canonical && c === CHAR_SPACE
      const sizeStart = ++next
      c = text.charCodeAt(next)
      while (c >= CHAR_0 && c <= CHAR_9) {
        size = size * 10 + (c - CHAR_0)
        c = text.charCodeAt(++next)
      }
      canonical = canonical && next > sizeStart && size <= Number.MAX_SAFE_INTEGER
    }
    if (c === CHAR_CR) c = text.charCodeAt(++next)

    if (canonical && c === CHAR_LF) {
      pos = next + 1
      line++
    } else {
      scanner.pos = pos
      scanner.line = line
      if (!scanner.readRequest()) break
      kind = scanner.kind
      id = scanner.id
      size = scanner.size
      pos = scanner.pos
      line = scanner.line
    }

    // Validated before storing: an id beyond 32 bits would silently wrap in the Int32Array.
    if (kind === OP_ALLOC) liveSet.alloc(id, size, requestLine)
    else if (kind === OP_FREE) liveSet.free(id, requestLine)
    else liveSet.realloc(id, size, requestLine)

    if (count === capacity) {
      // Only reachable when the file holds more requests than its header says; keep counting so
      // the mismatch can name both numbers.
      capacity = Math.max(16, capacity * 2)
      kinds = copyInto(new Uint8Array(capacity), kinds)
      ids = copyInto(new Int32Array(capacity), ids)
      sizes = copyInto(new Float64Array(capacity), sizes)
    }
    kinds[count] = kind
    ids[count] = id
    sizes[count] = size
    count++
  }

  if (count !== declaredOps) {
    scanner.fail(`${HEADER_FIELDS[2]} is ${declaredOps}, but the trace has ${count} requests`, 3)
  }
  return {
    name,
    numIds,
    opCount: count,
    kinds,
    ids,
    sizes,
    header: Object.freeze(header),
    peakLiveBytes: liveSet.peakLiveBytes,
    peakLiveChunks: liveSet.peakLiveChunks,
  }
}

function copyInto<T extends Uint8Array | Int32Array | Float64Array>(target: T, source: T): T {
  target.set(source)
  return target
}

const GZIP_MAGIC_0 = 0x1f
const GZIP_MAGIC_1 = 0x8b

/** Loads a `.rep` file, gunzipping it first when it is gzip data (`.rep.gz`); the name is the file name without `.rep`/`.rep.gz`. */
export function loadTrace(path: string): Trace {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw new AllocatorError('ERR_INVALID_OPTION', `loadTrace needs a file path, got ${describeValue(path)}`)
  }
  const name = basename(path).replace(/(\.rep)?(\.gz)?$/, '')
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (error) {
    // A trace that cannot be read is, to the caller, a trace that is not there to replay; the
    // system error stays reachable as `cause` (its code: ENOENT, EACCES, EISDIR, ...).
    throw withCause(new AllocatorError('ERR_TRACE_FORMAT', `trace ${JSON.stringify(name)}: cannot read it: ${(error as Error).message}`), error)
  }
  if (bytes.length >= 2 && bytes[0] === GZIP_MAGIC_0 && bytes[1] === GZIP_MAGIC_1) {
    try {
      bytes = gunzipSync(bytes)
    } catch (error) {
      throw new AllocatorError(
        'ERR_TRACE_FORMAT',
        `trace ${JSON.stringify(name)}: ${path} is not valid gzip data (${(error as Error).message})`,
      )
    }
  }
  let text: string
  try {
    // Traces are ASCII; latin1 decoding yields a one-byte string, the fastest kind to scan.
    text = bytes.toString('latin1')
  } catch (error) {
    throw withCause(new AllocatorError('ERR_TRACE_FORMAT', `trace ${JSON.stringify(name)}: ${path} is too large to read (${bytes.length} bytes)`), error)
  }
  return parseTrace(text, name)
}

function withCause(error: AllocatorError, cause: unknown): AllocatorError {
  Object.defineProperty(error, 'cause', { value: cause, configurable: true, writable: true })
  return error
}

/** The most ids a trace of `requests` requests may declare (see ID_ALLOWANCE). */
export function maxIdsFor(requests: number): number {
  return Math.max(requests, ID_ALLOWANCE)
}

/**
 * Checks that `trace` has a Trace's shape (hand-built objects reach replay too): typed arrays of
 * one length, opCount equal to it, and numIds within what the requests can use. The requests
 * themselves are checked by whoever runs them. Throws ERR_TRACE_FORMAT.
 */
export function checkTraceShape(trace: unknown): asserts trace is Trace {
  if (trace === null || typeof trace !== 'object') {
    throw new AllocatorError('ERR_TRACE_FORMAT', `expected a Trace (from parseTrace, loadTrace, traceFromOps or generateTrace), got ${describeValue(trace)}`)
  }
  const { name, numIds, opCount, kinds, ids, sizes } = trace as Partial<Trace>
  const label = typeof name === 'string' ? `trace ${JSON.stringify(name)}` : 'trace'
  const fail = (what: string): never => {
    throw new AllocatorError('ERR_TRACE_FORMAT', `${label}: ${what}`)
  }
  if (typeof name !== 'string') fail(`name must be a string, got ${describeValue(name)}`)
  if (!(kinds instanceof Uint8Array)) fail(`kinds must be a Uint8Array, got ${describeValue(kinds)}`)
  if (!(ids instanceof Int32Array)) fail(`ids must be an Int32Array, got ${describeValue(ids)}`)
  if (!(sizes instanceof Float64Array)) fail(`sizes must be a Float64Array, got ${describeValue(sizes)}`)
  const length = kinds!.length
  if (ids!.length !== length || sizes!.length !== length) {
    fail(`kinds, ids and sizes must have the same length (got ${length}, ${ids!.length}, ${sizes!.length})`)
  }
  if (opCount !== length) fail(`opCount is ${describeValue(opCount)}, but there are ${length} requests`)
  if (typeof numIds !== 'number' || !isCount(numIds) || numIds > MAX_IDS) {
    fail(`numIds must be an integer from 0 to ${MAX_IDS}, got ${describeValue(numIds)}`)
  }
  if (numIds! > maxIdsFor(length)) fail(`numIds ${numIds} is more than ${length} requests can use (at most ${maxIdsFor(length)})`)
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0
}

/**
 * Builds a Trace from request arrays (the generators' path), validating them like parseTrace and
 * computing the peak statistics. Errors name the line the request would have in formatTrace's
 * output (request i is on line i + 5). The arrays are used as given, not copied.
 */
export function traceFromOps(
  name: string,
  numIds: number,
  kinds: Uint8Array,
  ids: Int32Array,
  sizes: Float64Array,
  header?: number[],
): Trace {
  if (typeof name !== 'string') throw new AllocatorError('ERR_INVALID_OPTION', `the trace name must be a string, got ${describeValue(name)}`)
  const opCount = kinds instanceof Uint8Array ? kinds.length : 0
  checkTraceShape({ name, numIds, opCount, kinds, ids, sizes })
  const fail = (what: string): never => {
    throw new AllocatorError('ERR_TRACE_FORMAT', `trace ${JSON.stringify(name)}: ${what}`)
  }
  if (header !== undefined && !Array.isArray(header)) fail(`header must be an array of four numbers, got ${describeValue(header)}`)
  if (header !== undefined) {
    if (header.length !== 4 || !header.every(isCount)) {
      fail(`header must be four non-negative integers (got [${header.join(', ')}])`)
    }
    if (header[1] !== numIds || header[2] !== opCount) {
      fail(`header declares ${header[1]} ids and ${header[2]} requests, but there are ${numIds} ids and ${opCount} requests`)
    }
  }

  const liveSet = new LiveSet(name, numIds)
  for (let i = 0; i < opCount; i++) {
    const line = i + 5
    const kind = kinds[i]
    const size = sizes[i]
    if (kind === OP_FREE) {
      if (size !== 0) throw traceError(name, line, `free carries size ${size}; it must be 0`)
      liveSet.free(ids[i], line)
      continue
    }
    if (kind !== OP_ALLOC && kind !== OP_REALLOC) {
      throw traceError(name, line, `unknown request kind ${kind} (expected a TraceOp value)`)
    }
    if (!isCount(size)) throw traceError(name, line, `size ${size} is not a non-negative integer`)
    if (kind === OP_ALLOC) liveSet.alloc(ids[i], size, line)
    else liveSet.realloc(ids[i], size, line)
  }

  return {
    name,
    numIds,
    opCount,
    kinds,
    ids,
    sizes,
    header: Object.freeze(header ? [...header] : [0, numIds, opCount, liveSet.peakLiveBytes]),
    peakLiveBytes: liveSet.peakLiveBytes,
    peakLiveChunks: liveSet.peakLiveChunks,
  }
}

const OP_LETTERS = ['a', 'f', 'r']

/** Writes a trace as `.rep` text (header as stored, one request per line, `\n` endings). */
export function formatTrace(trace: Trace): string {
  checkTraceShape(trace)
  if (!Array.isArray(trace.header) || trace.header.length !== 4) {
    throw new AllocatorError('ERR_TRACE_FORMAT', `trace ${JSON.stringify(trace.name)}: header must be four numbers, got ${describeValue(trace.header)}`)
  }
  const { kinds, ids, sizes } = trace
  let text = trace.header.join('\n') + '\n'
  for (let i = 0; i < trace.opCount; i++) {
    text += kinds[i] === OP_FREE ? `f ${ids[i]}\n` : `${OP_LETTERS[kinds[i]]} ${ids[i]} ${sizes[i]}\n`
  }
  return text
}
