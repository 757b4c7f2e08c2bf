import { closeSync, fchmodSync, fchownSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, unlinkSync, writeSync, constants, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ShimError, errnoCode } from './errors';

// libuv opens every descriptor with O_CLOEXEC on its own.
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

export interface FileSnapshot {
  content: Buffer;
  mode: number;
  uid: number;
  gid: number;
}

/**
 * Reads a whole regular file of at most maxBytes, with the mode and owner a
 * rewrite must keep; O_NONBLOCK so that a FIFO put in its place cannot hang
 * the read. Errors name the file.
 */
export function readRegularFile(path: string, maxBytes: number): FileSnapshot;
export function readRegularFile(path: string, maxBytes: number, options: { missingOk: true }): FileSnapshot | null;
export function readRegularFile(path: string, maxBytes: number, options?: { missingOk: true }): FileSnapshot | null {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NONBLOCK);
  } catch (err) {
    if (options?.missingOk && errnoCode(err) === 'ENOENT') return null;
    throw new ShimError(`cannot open ${path}: ${errnoCode(err) ?? String(err)}`);
  }
  try {
    const { content, stat } = readOpenFile(fd, maxBytes, (why) => {
      throw new ShimError(`${path} ${why}`);
    });
    return { content, mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an open regular file to its end, at most maxBytes: the size is
 * checked first, and reading goes on to one byte past the bound, so a file
 * that grows meanwhile is caught rather than cut. `fail` says why not.
 */
export function readOpenFile(fd: number, maxBytes: number, fail: (why: string) => never): { content: Buffer; stat: Stats } {
  const stat = fstatSync(fd);
  if (!stat.isFile()) fail('is not a regular file');
  if (stat.size > maxBytes) fail(`is larger than ${maxBytes} bytes`);
  const buffer = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(stat.size + 1, 4096), 1024 * 1024));
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const n = readSync(fd, buffer, 0, buffer.length, null);
    if (n === 0) break;
    total += n;
    if (total > maxBytes) fail(`is larger than ${maxBytes} bytes`);
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  return { content: Buffer.concat(chunks, total), stat };
}

/**
 * Replaces `path` with `content` so that a reader sees either the old file or
 * the new one, whole: a temporary file in the same directory, with the old
 * file's mode and owner, written and fsynced, renamed over it, then the
 * directory fsynced. On any failure the temporary file is removed and the
 * old file is untouched. `durable: false` skips the fsyncs for a file that
 * does not outlive a crash anyway (an exec process file); the rename stays
 * atomic.
 */
export function replaceFileAtomically(
  path: string,
  content: string | Buffer,
  like: Pick<FileSnapshot, 'mode' | 'uid' | 'gid'>,
  options: { durable?: boolean } = {},
): void {
  const durable = options.durable ?? true;
  const dir = dirname(path);
  const { fd, temp } = createTempFile(dir, basename(path), path);
  let renamed = false;
  try {
    try {
      // A new file belongs to us with the umask applied; the rewrite keeps
      // the original's owner and mode.
      if (like.uid !== process.geteuid?.() || like.gid !== process.getegid?.()) fchownSync(fd, like.uid, like.gid);
      fchmodSync(fd, like.mode);
      writeAll(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    renamed = true;
    if (durable) syncDirectory(dir);
  } catch (err) {
    if (err instanceof ShimError) throw err;
    throw new ShimError(`cannot rewrite ${path}: ${errnoCode(err) ?? String(err)}`);
  } finally {
    if (!renamed) {
      try {
        unlinkSync(temp);
      } catch {
        // Already gone.
      }
    }
  }
}

/**
 * An exclusive new file beside the target. The name needs no randomness
 * (node:crypto costs a millisecond to load): O_EXCL settles any collision.
 */
function createTempFile(dir: string, base: string, target: string): { fd: number; temp: string } {
  for (let attempt = 0; ; attempt++) {
    const temp = join(dir, `.${base}.strict-groups-${process.pid}-${Date.now().toString(36)}-${attempt}`);
    try {
      return { fd: openSync(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600), temp };
    } catch (err) {
      if (errnoCode(err) === 'EEXIST' && attempt < 100) continue;
      throw new ShimError(`cannot rewrite ${target}: creating a temporary file in ${dir}: ${errnoCode(err) ?? String(err)}`);
    }
  }
}

/**
 * Appends `data` to a file opened for appending, whole or not at all: a full
 * disk can take part of a line, and a reader of the file (containerd, of the
 * --log file) that meets a line cut short loses every line. One write, so
 * that the line cannot end up split around another writer's; a part written
 * is cut off again unless another writer has appended since (a race it can
 * lose only while the disk is full), and the failure is thrown for the
 * caller to report elsewhere.
 */
export function appendWhole(fd: number, data: Buffer): void {
  const sizeBefore = fstatSync(fd).size;
  const written = writeSync(fd, data);
  if (written === data.length) return;
  if (fstatSync(fd).size === sizeBefore + written) ftruncateSync(fd, sizeBefore);
  throw new Error(`only ${written} of ${data.length} bytes written (disk full?)`);
}

function writeAll(fd: number, data: Buffer): void {
  for (let offset = 0; offset < data.length; ) {
    offset += writeSync(fd, data, offset, data.length - offset);
  }
}

/** Makes a rename durable; a directory that refuses fsync is no failure. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, O_RDONLY);
    fsyncSync(fd);
  } catch {
    // Some file systems reject fsync on directories; the rename stands.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
