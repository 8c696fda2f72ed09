/**
 * Just enough ELF reading to tell, before preloading a library, whether it can stand in for
 * malloc: a 64-bit little-endian shared object for this machine whose dynamic symbol table
 * defines `malloc`. (A library that preloads but defines no malloc would silently time glibc.)
 */
import { readFileSync } from 'node:fs'

const ELF_MAGIC = 0x464c457f  // "\x7fELF" read little-endian
const CLASS_64 = 2
const DATA_LITTLE_ENDIAN = 1
const MACHINES: Record<string, number> = { x64: 62, arm64: 183, riscv64: 243, ppc64: 21, s390x: 22 }
const SHT_DYNSYM = 11
const SYMBOL_BYTES = 24
const SECTION_HEADER_BYTES = 64

export type MallocLibraryCheck =
  | { ok: true }
  /** The file is readable but cannot replace malloc here; `reason` says why. */
  | { ok: false; reason: string }

export function checkMallocLibrary(path: string): MallocLibraryCheck {
  let data: Buffer
  try {
    data = readFileSync(path)
  } catch (error) {
    return { ok: false, reason: `cannot read it (${(error as Error).message})` }
  }
  if (data.length < 64 || data.readUInt32LE(0) !== ELF_MAGIC) return { ok: false, reason: 'it is not an ELF shared library' }
  if (data[4] !== CLASS_64 || data[5] !== DATA_LITTLE_ENDIAN) return { ok: false, reason: 'it is not a 64-bit little-endian ELF library' }
  const machine = data.readUInt16LE(18)
  if (MACHINES[process.arch] !== undefined && machine !== MACHINES[process.arch]) {
    return { ok: false, reason: `it is built for another machine (ELF machine ${machine}, this is ${process.arch})` }
  }
  const sectionsAt = Number(data.readBigUInt64LE(0x28))
  const sectionCount = data.readUInt16LE(0x3c)
  const section = (index: number): { type: number; offset: number; size: number; link: number } | undefined => {
    const at = sectionsAt + index * SECTION_HEADER_BYTES
    if (at + SECTION_HEADER_BYTES > data.length) return undefined
    return { type: data.readUInt32LE(at + 4), offset: Number(data.readBigUInt64LE(at + 24)), size: Number(data.readBigUInt64LE(at + 32)), link: data.readUInt32LE(at + 40) }
  }
  for (let i = 0; i < sectionCount; i++) {
    const symbols = section(i)
    if (symbols === undefined || symbols.type !== SHT_DYNSYM) continue
    const names = section(symbols.link)
    if (names === undefined) break
    for (let at = symbols.offset; at + SYMBOL_BYTES <= symbols.offset + symbols.size && at + SYMBOL_BYTES <= data.length; at += SYMBOL_BYTES) {
      const nameAt = names.offset + data.readUInt32LE(at)
      const defined = data.readUInt16LE(at + 6) !== 0
      if (defined && nameAt + 7 <= data.length && data.toString('latin1', nameAt, nameAt + 7) === 'malloc\0') return { ok: true }
    }
    return { ok: false, reason: 'it does not define malloc' }
  }
  // No section headers (a stripped-down file): the loader can still use it; let it try.
  return { ok: true }
}
