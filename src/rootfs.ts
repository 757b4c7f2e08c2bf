import { closeSync, constants, fstatSync, openSync, readlinkSync } from 'node:fs';
import { ShimError, errnoCode, quoted } from './errors';
import { readOpenFile } from './files';

/**
 * Reads a file of an image's rootfs as the container would see it: every
 * symlink on the way (absolute, relative, "..") is resolved inside the rootfs
 * and ".." never climbs above it. The walk holds an O_PATH descriptor for each
 * directory and looks every name up relative to it through /proc/self/fd, so
 * nothing is ever opened outside the rootfs, and nothing but a regular file is
 * ever opened for reading: a FIFO or a device node is never opened at all.
 *
 * The CRI runtimes do not all resolve like the kernel: containerd 1.6/1.7
 * (continuity's RootPath) joins a relative link target to the link's directory
 * and cleans ".." lexically, and both it and securejoin walk on past a missing
 * component. The answers differ only where a ".." follows a symlink or a
 * missing name; there, rather than pick one reading, the walk fails closed.
 */

/**
 * O_PATH, which Node does not export: 010000000 on x86, arm, arm64, riscv,
 * powerpc and s390 (alpha, parisc and sparc differ, and Node ships none).
 * libuv adds O_CLOEXEC to every open on its own.
 */
const O_PATH = 0o10000000;
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } = constants;

/** Linux's own limit on symlinks followed in one lookup. */
export const MAX_SYMLINKS = 40;
/** A bound on lookups per path, so a crafted chain cannot run away. */
const MAX_STEPS = 4096;
/** containerd 1.7.33+ reads at most this much of /etc/passwd or /etc/group. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;

export interface ReadOptions {
  maxBytes?: number;
}

/**
 * Names stay bytes from readlink to open: a link target is not UTF-8 text,
 * and decoding it would make a different name than the container sees.
 */
const SLASH = 0x2f;

function fdPath(fd: number, name?: Buffer): Buffer {
  const dir = Buffer.from(`/proc/self/fd/${fd}`);
  return name === undefined ? dir : Buffer.concat([dir, Buffer.of(SLASH), name]);
}

function components(path: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === SLASH) {
      const part = path.subarray(start, i);
      if (part.length > 0 && !(part.length === 1 && part[0] === 0x2e)) parts.push(part);
      start = i + 1;
    }
  }
  return parts;
}

function isDotDot(name: Buffer): boolean {
  return name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
}

/** A name for messages; the bytes as UTF-8 where they are, escaped where not. */
function shown(name: Buffer): string {
  return quoted(name.toString('utf8'));
}

/**
 * The content of `path` inside `rootfs`, or null when it does not exist there
 * (a dangling symlink included). Anything else that stops the read, a loop, a
 * non-directory on the way, a file that is not regular or is too large, throws
 * a ShimError naming the path.
 */
export function readRootfsFile(rootfs: string, path: string, options: ReadOptions = {}): Buffer | null {
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
  const fail = (why: string): never => {
    throw new ShimError(`cannot read ${path} in the image rootfs ${rootfs}: ${why}`);
  };

  let rootFd: number;
  try {
    rootFd = openSync(rootfs, O_PATH | O_DIRECTORY);
  } catch (err) {
    return fail(`rootfs: ${errnoCode(err) ?? String(err)}`);
  }
  // stack[0] is the rootfs; the top is the directory the next name is looked up in.
  const stack: number[] = [rootFd];
  const closeAbove = (depth: number): void => {
    while (stack.length > depth) closeSync(stack.pop()!);
  };

  try {
    const pending = components(Buffer.from(path));
    const dotDotPending = (): boolean => pending.some(isDotDot);
    let symlinks = 0;
    let steps = 0;
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (++steps > MAX_STEPS) fail('too many path components (ELOOP)');
      if (isDotDot(name)) {
        if (stack.length > 1) closeAbove(stack.length - 1);
        continue;
      }
      const dirFd = stack[stack.length - 1]!;
      let fd: number;
      try {
        fd = openSync(fdPath(dirFd, name), O_PATH | O_NOFOLLOW);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') return fail(errnoCode(err) ?? String(err));
        // The kernel stops here; a lexical reader would walk on through "..".
        if (dotDotPending()) fail(`${shown(name)} is missing but the path goes on through ".."`);
        return null;
      }
      let isLink: boolean;
      try {
        isLink = fstatSync(fd).isSymbolicLink();
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      if (!isLink) {
        stack.push(fd);
        continue;
      }
      closeSync(fd);
      if (++symlinks > MAX_SYMLINKS) fail('too many levels of symbolic links (ELOOP)');
      // A ".." still to come could climb out of this link's target (the
      // kernel's reading) or cancel the link's name (a lexical reading).
      if (dotDotPending()) fail(`".." after the symbolic link ${shown(name)} resolves differently across CRI runtimes`);
      // A second lookup of the same name: the rootfs is quiescent at create
      // (nothing runs in it yet), so it cannot change in between.
      const target = readlinkSync(fdPath(dirFd, name), { encoding: 'buffer' });
      if (target[0] === SLASH) closeAbove(1);
      pending.unshift(...components(target));
    }

    if (stack.length === 1) fail('it is the rootfs itself');
    const pathFd = stack[stack.length - 1]!;
    const stat = fstatSync(pathFd);
    if (!stat.isFile()) fail(`not a regular file (mode ${(stat.mode & 0o170000).toString(8).padStart(6, '0')})`);
    // Reopening through the magic link reaches the same inode without a new
    // lookup; O_NONBLOCK and O_NOCTTY guard against anything but a plain file.
    const fd = openSync(fdPath(pathFd), O_RDONLY | O_NONBLOCK | O_NOCTTY);
    try {
      return readOpenFile(fd, maxBytes, (why) => fail(why.replace(/^is /, ''))).content;
    } finally {
      closeSync(fd);
    }
  } finally {
    closeAbove(0);
  }
}
