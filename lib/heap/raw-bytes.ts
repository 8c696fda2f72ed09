/**
 * Argument checks of raw.read and raw.write (lib/types.ts RawBytes): offsets and lengths are
 * whole numbers within the chunk's usable size, data is bytes or numbers. Each problem is an
 * AllocatorError naming the value and the bounds.
 */
import { AllocatorError, describeValue } from '../errors'
import { hex } from './handle'

function offsetArgument(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new AllocatorError('ERR_INVALID_SIZE', `${name} must be a non-negative integer, got ${describeValue(value)}`)
  }
  return value
}

function outOfBounds(address: number, usable: number, offset: number, length: number): AllocatorError {
  return new AllocatorError(
    'ERR_INVALID_SIZE',
    `offset ${offset} + length ${length} is beyond the ${usable} usable bytes of the chunk at ${hex(address)}`,
  )
}

/** [offset, end) of a read; throws when it leaves the chunk. */
export function readRange(address: number, usable: number, offset: unknown, length: unknown): [number, number] {
  const start = offsetArgument('offset', offset, 0)
  const count = offsetArgument('length', length, Math.max(0, usable - start))
  if (start + count > usable) throw outOfBounds(address, usable, start, count)
  return [start, start + count]
}

/** The bytes to write, as a Uint8Array (numbers are taken modulo 256, as Uint8Array.set does). */
export function writeSource(data: unknown): Uint8Array {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (Array.isArray(data) || (data !== null && typeof data === 'object' && typeof (data as { length?: unknown }).length === 'number')) {
    return Uint8Array.from(data as ArrayLike<number>)
  }
  throw new AllocatorError('ERR_INVALID_SIZE', `data must be a typed array, a DataView or an array of bytes, got ${describeValue(data)}`)
}

/** The start of a write of `length` bytes; throws when it leaves the chunk. */
export function writeOffset(address: number, usable: number, offset: unknown, length: number): number {
  const start = offsetArgument('offset', offset, 0)
  if (start + length > usable) throw outOfBounds(address, usable, start, length)
  return start
}
