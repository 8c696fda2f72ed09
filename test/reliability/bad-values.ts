/**
 * The classes of bad value the bad-input matrix tries on every parameter, each with a label that
 * names it in a failure report.
 */

export type Labelled = readonly [label: string, value: unknown]

/** Not numbers at all. `undefined` is left out: where a parameter is optional it means "default". */
export const WRONG_TYPES: readonly Labelled[] = [
  ['the string "8"', '8'],
  ['null', null],
  ['true', true],
  ['an object', {}],
  ['an array [8]', [8]],
  ['the bigint 8n', 8n],
  ['a function', () => 8],
  ['a symbol', Symbol('8')],
  ['a boxed Number(8)', new Number(8)],
]

/** Numbers that are never a byte count, address or alignment. */
export const BAD_NUMBERS: readonly Labelled[] = [
  ['-1', -1],
  ['-2**53', -(2 ** 53)],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['the fraction 1.5', 1.5],
  ['the fraction 0.1', 0.1],
  ['2**53 (beyond safe integers)', 2 ** 53],
  ['2**53 + 2', 2 ** 53 + 2],
  ['1e300', 1e300],
]

/** Valid byte counts that no heap here can hold. */
export const HUGE_SIZES: readonly Labelled[] = [
  ['2**48', 2 ** 48],
  ['2**52', 2 ** 52],
  ['Number.MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
]

/** Integers that are not a power of two up to 1 MiB. */
export const BAD_ALIGNMENTS: readonly Labelled[] = [
  ['3', 3],
  ['6', 6],
  ['24', 24],
  ['4097', 4097],
  ['2**21 (above 1 MiB)', 2 ** 21],
  ['2**30', 2 ** 30],
  ['2**52', 2 ** 52],
]

/** Addresses no heap hands out. */
export const WILD_ADDRESSES: readonly Labelled[] = [
  ['0 (NULL)', 0],
  ['1', 1],
  ['4096', 4096],
  ['2**47 (top of user space)', 2 ** 47],
  ['Number.MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER],
]
