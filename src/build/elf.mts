/**
 * What the release checks about each executable it packs, from its ELF
 * header: the architecture, and whether it needs a dynamic loader. A static
 * busybox runs in any image; the SEA needs the host's C library.
 */

export type Architecture = 'amd64' | 'arm64';

/** e_machine values. */
const MACHINES: Record<number, Architecture> = { 62: 'amd64', 183: 'arm64' };
const PT_INTERP = 3;

export interface ElfInfo {
  architecture: Architecture;
  /** The program interpreter (dynamic loader) it names, or undefined for a static executable. */
  interpreter: string | undefined;
}

/** Bytes of the file at an offset; the program headers may be anywhere (postject moves them to the end). */
export type ReadAt = (offset: number, length: number) => Buffer;

/** Reads a 64-bit little-endian ELF executable's header and program headers. */
export function elfInfo(read: ReadAt, what: string): ElfInfo {
  const header = read(0, 64);
  if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${what} is not an ELF file`);
  if (header[4] !== 2 || header[5] !== 1) throw new Error(`${what} is not a 64-bit little-endian ELF file`);
  const machine = header.readUInt16LE(18);
  const architecture = MACHINES[machine];
  if (architecture === undefined) throw new Error(`${what} is for ELF machine ${machine}, neither x86-64 nor aarch64`);
  const phoff = Number(header.readBigUInt64LE(32));
  const phentsize = header.readUInt16LE(54);
  const phnum = header.readUInt16LE(56);
  const table = read(phoff, phentsize * phnum);
  if (phentsize < 56 || table.length < phentsize * phnum) throw new Error(`${what}: program headers cut short`);
  let interpreter: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (table.readUInt32LE(at) !== PT_INTERP) continue;
    const offset = Number(table.readBigUInt64LE(at + 8));
    const size = Number(table.readBigUInt64LE(at + 32));
    interpreter = read(offset, size).toString('latin1').replace(/\0+$/, '');
  }
  return { architecture, interpreter };
}

/** A ReadAt over a whole file in memory. */
export function readFromBuffer(file: Buffer): ReadAt {
  return (offset, length) => file.subarray(offset, offset + length);
}
