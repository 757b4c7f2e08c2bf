import { execFileSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, readlinkSync, statSync, unlinkSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ShimError, describe, errnoCode } from '../errors';
import { readRegularFile, replaceFileAtomically } from '../files';
import { readRootfsFile } from '../rootfs';

/**
 * The host's file system as the installer sees it: `root` is where the host's
 * `/` is mounted (`/` itself, or `/host` in a DaemonSet). Paths given to and
 * returned by these functions are the host's view; symlinks in what is read
 * resolve inside the host root, as the host would see them, and nothing is
 * written through a symlink.
 */
export class Host {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** Where a host path is from here. */
  local(path: string): string {
    return join(this.root, path);
  }

  readText(path: string): string | null {
    let content: Buffer | null;
    try {
      content = readRootfsFile(this.root, path, { maxBytes: MAX_CONFIG_BYTES });
    } catch (err) {
      // The reader speaks of image rootfses; here it is the host's file.
      throw new ShimError(`cannot read ${path} on the host (root ${this.root}): ${describe(err).replace(/^cannot read .*?: /, '')}`);
    }
    return content === null ? null : content.toString('utf8');
  }

  list(dir: string): string[] {
    const local = this.resolve(dir);
    if (local === undefined) throw new ShimError(`cannot list ${dir}: too many levels of symbolic links`);
    try {
      return readdirSync(local);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw new ShimError(`cannot list ${dir}: ${errnoCode(err) ?? describe(err)}`);
    }
  }

  exists(path: string): boolean {
    const local = this.resolve(path);
    return local !== undefined && existsSync(local);
  }

  /** A program on the host's usual PATH, as the host would find it. */
  onPath(name: string): string | undefined {
    for (const dir of HOST_PATH) {
      const path = posix.join(dir, name);
      if (this.isExecutable(path)) return path;
    }
    return undefined;
  }

  isExecutable(path: string): boolean {
    const local = this.resolve(path);
    if (local === undefined) return false;
    try {
      accessSync(local, constants.X_OK);
      return statSync(local).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Where a host path really is, its symlinks followed as the host would
   * follow them: an absolute target starts again at the host root and ".."
   * stops there. undefined for a loop; a missing name ends the walk.
   */
  private resolve(path: string): string | undefined {
    const pending = path.split('/').filter((part) => part !== '');
    const done: string[] = [];
    for (let links = 0; pending.length > 0; ) {
      const name = pending.shift()!;
      if (name === '.') continue;
      if (name === '..') {
        done.pop();
        continue;
      }
      const local = join(this.root, ...done, name);
      let target: string;
      try {
        if (!lstatSync(local).isSymbolicLink()) {
          done.push(name);
          continue;
        }
        target = readlinkSync(local);
      } catch {
        return join(this.root, ...done, name, ...pending);
      }
      if (++links > 40) return undefined;
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((part) => part !== ''));
    }
    return join(this.root, ...done);
  }

  /**
   * Writes `content` to a host path atomically, creating its directory;
   * a new file gets `mode` and root's ownership, an old one keeps its own.
   */
  write(path: string, content: string | Buffer, mode: number): void {
    const local = this.writable(path);
    try {
      mkdirSync(posix.dirname(local), { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new ShimError(`cannot write ${path}: ${errnoCode(err) ?? describe(err)}`);
    }
    let like = { mode, uid: 0, gid: 0 };
    try {
      const stat = lstatSync(local);
      like = { mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw new ShimError(`cannot write ${path}: ${errnoCode(err) ?? describe(err)}`);
    }
    replaceFileAtomically(local, content, like);
  }

  remove(path: string): void {
    try {
      unlinkSync(this.writable(path));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw new ShimError(`cannot remove ${path}: ${errnoCode(err) ?? describe(err)}`);
    }
  }

  /** Whether the regular file at a host path holds exactly `local`'s bytes. */
  sameFile(path: string, local: string): boolean {
    try {
      return sameContent(this.writable(path), local);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Throws unless `path` can be written without following a symlink. */
  assertWritable(path: string): void {
    this.writable(path);
  }

  /**
   * The local path to write a host path at: its directory resolved as the
   * host resolves it (ostree hosts link /usr/local into /var), the file
   * itself not a symlink. Writing through a link to a file could land in a
   * read-only image (Flatcar links /etc/containerd/config.toml into /usr) or
   * replace the link with a file, and either way not do what it says.
   */
  private writable(path: string): string {
    const dir = this.resolve(posix.dirname(path));
    if (dir === undefined) throw new ShimError(`cannot write ${path}: too many levels of symbolic links`);
    const local = join(dir, posix.basename(path));
    let isLink = false;
    try {
      isLink = lstatSync(local).isSymbolicLink();
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw new ShimError(`cannot write ${path}: ${errnoCode(err) ?? describe(err)}`);
    }
    if (isLink) throw new ShimError(`${path} is a symlink; install.sh writes only real files`);
    return local;
  }

  /** `systemctl try-restart`: restarts the service if it runs, else does nothing. */
  restart(service: string): 'restarted' | 'no-systemd' {
    if (this.root !== '/' || !existsSync('/run/systemd/system')) return 'no-systemd';
    try {
      execFileSync('systemctl', ['try-restart', `${service}.service`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8').trim();
      throw new ShimError(`systemctl try-restart ${service} failed: ${stderr || describe(err)}`);
    }
    return 'restarted';
  }

  /** Runs one of the host's programs, from inside the host root when it is not `/`. */
  run(program: string, args: readonly string[]): string {
    const [file, argv] = this.root === '/' ? [program, args] : ['chroot', [this.root, program, ...args]];
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
  }
}

/** The directories a systemd service's default PATH holds. */
const HOST_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

function sameContent(a: string, b: string): boolean {
  const fa = openSync(a, 'r');
  try {
    const fb = openSync(b, 'r');
    try {
      const [sa, sb] = [fstatSync(fa), fstatSync(fb)];
      if (!sa.isFile() || sa.size !== sb.size) return false;
      const [ba, bb] = [Buffer.alloc(1 << 20), Buffer.alloc(1 << 20)];
      for (;;) {
        const na = readSync(fa, ba);
        const nb = readSync(fb, bb);
        if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
        if (na === 0) return true;
      }
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}

/** A local file's whole content, for copying it onto the host. */
export function readLocalFile(path: string, maxBytes: number): Buffer {
  return readRegularFile(path, maxBytes).content;
}
