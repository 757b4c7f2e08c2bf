/**
 * A deterministic tar writer for the release image: POSIX ustar headers,
 * every entry owned by 0:0 with no user or group names, one fixed mtime,
 * entries in the order given (which must be sorted, parents first), no
 * extended headers. The same entries always give the same bytes, whatever
 * the machine, the umask, or the version of GNU tar, so that SHA256SUMS and
 * the image's digests mean something.
 */

export type TarEntry =
  | { type: 'directory'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; content: Buffer }
  | { type: 'symlink'; path: string; target: string };

const BLOCK = 512;

/** The archive as a list of chunks (headers, contents, padding, the end). */
export function tarChunks(entries: readonly TarEntry[], mtime: number): Buffer[] {
  checkOrder(entries);
  const chunks: Buffer[] = [];
  for (const entry of entries) {
    const name = entry.type === 'directory' ? `${entry.path}/` : entry.path;
    const size = entry.type === 'file' ? entry.content.length : 0;
    chunks.push(header({
      name,
      mode: entry.type === 'symlink' ? 0o777 : entry.mode,
      size,
      mtime,
      typeflag: entry.type === 'file' ? '0' : entry.type === 'symlink' ? '2' : '5',
      linkname: entry.type === 'symlink' ? entry.target : '',
    }));
    if (entry.type === 'file') {
      chunks.push(entry.content);
      const padding = (BLOCK - (size % BLOCK)) % BLOCK;
      if (padding > 0) chunks.push(Buffer.alloc(padding));
    }
  }
  // The end of an archive: two zero blocks.
  chunks.push(Buffer.alloc(2 * BLOCK));
  return chunks;
}

export function tar(entries: readonly TarEntry[], mtime: number): Buffer {
  return Buffer.concat(tarChunks(entries, mtime));
}

function checkOrder(entries: readonly TarEntry[]): void {
  const seen = new Set<string>();
  let previous = '';
  for (const entry of entries) {
    const { path } = entry;
    if (path === '' || path.startsWith('/') || path.endsWith('/') || path.split('/').some((part) => part === '' || part === '.' || part === '..')) {
      throw new Error(`tar: ${JSON.stringify(path)} is not a plain relative path`);
    }
    if (seen.has(path) || path < previous) throw new Error(`tar: entries must be sorted and unique (${JSON.stringify(path)} after ${JSON.stringify(previous)})`);
    const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : undefined;
    if (parent !== undefined && !seen.has(parent)) throw new Error(`tar: ${JSON.stringify(path)} comes before its directory`);
    seen.add(path);
    previous = path;
  }
}

interface Header {
  name: string;
  mode: number;
  size: number;
  mtime: number;
  typeflag: '0' | '2' | '5';
  linkname: string;
}

function header(h: Header): Buffer {
  const block = Buffer.alloc(BLOCK);
  field(block, 0, 100, h.name, 'name');
  octal(block, 100, 8, h.mode & 0o7777);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, h.size);
  octal(block, 136, 12, h.mtime);
  block.write('        ', 148, 'ascii'); // the checksum counts as spaces while it is summed
  block.write(h.typeflag, 156, 'ascii');
  field(block, 157, 100, h.linkname, 'link target');
  block.write('ustar\u000000', 257, 'ascii'); // magic "ustar\0", version "00"
  // uname, gname (empty: numeric ids only), devmajor, devminor and prefix stay zero.
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return block;
}

function field(block: Buffer, offset: number, length: number, value: string, what: string): void {
  const bytes = Buffer.from(value, 'utf8');
  // ustar's prefix field could take longer names; the image's are short.
  if (bytes.length > length) throw new Error(`tar: ${what} ${JSON.stringify(value)} is longer than ${length} bytes`);
  bytes.copy(block, offset);
}

/** A number as zero-padded octal digits and a NUL, filling the field. */
function octal(block: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, '0');
  if (!Number.isSafeInteger(value) || value < 0 || digits.length > length - 1) throw new Error(`tar: ${value} does not fit a ${length}-byte field`);
  block.write(`${digits}\u0000`, offset, 'ascii');
}
