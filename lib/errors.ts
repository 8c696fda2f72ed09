/**
 * AllocatorError and the error codes of the public API (README, "API").
 * Every failure the library reports to a user is one of these; native code reports a code and a
 * message, and the binding turns them into this class so `instanceof` works across backends.
 */

export type ErrorCode =
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_SIZE'
  | 'ERR_INVALID_ALIGNMENT'
  | 'ERR_INVALID_POINTER'
  | 'ERR_DOUBLE_FREE'
  | 'ERR_USE_AFTER_FREE'
  | 'ERR_FOREIGN_HANDLE'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_UNSUPPORTED'
  | 'ERR_HEAP_CLOSED'
  | 'ERR_BRK_MAIN_THREAD_ONLY'
  | 'ERR_HEAP_CORRUPT'
  | 'ERR_LEAK'
  | 'ERR_TRACE_FORMAT'

export class AllocatorError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string) {
    super(message)
    this.name = 'AllocatorError'
    this.code = code
  }
}

/** How a value appears in an error message: strings quoted, everything else as JS prints it. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'function') return 'a function'
  if (value !== null && typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object'
  return String(value)
}
