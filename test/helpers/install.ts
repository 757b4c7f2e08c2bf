/**
 * install.sh on a host root of its own: a temp tree holding a fixture's /etc,
 * the runtimes the host would have (containerd too, which install.sh runs
 * inside the tree with chroot, as on a node), and the real containerd
 * reading the tree's configuration through a private mount namespace, where
 * the tree's /etc/containerd is the host's, so imports resolve as on the node.
 */
import { execa } from 'execa';
import fse from 'fs-extra';
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parse } from 'smol-toml';
import { ROOT, SHIM, skipOrFail } from './oci';
import { containerdBuild, type ContainerdBuild, type ContainerdLine } from './runtimes';

export const INSTALL_SH = join(ROOT, 'install.sh');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'installer');

/**
 * Outside CI a missing prerequisite skips the suite with the reason; in CI it
 * fails it. `containerd` lists the containerd lines the suite runs.
 */
export function installerPrerequisites(needs: { containerd: readonly ContainerdLine[] }): string | undefined {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!fse.existsSync(SHIM)) missing.push(`${SHIM} (npm run build)`);
  const programs = needs.containerd.length > 0 ? ['unshare', 'ldd'] : [];
  for (const program of programs) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', program], { stdio: 'ignore' });
    } catch {
      missing.push(program);
    }
  }
  for (const line of needs.containerd) {
    const build = containerdBuild(line);
    if ('missing' in build) missing.push(build.missing);
  }
  return skipOrFail('installer suite', missing);
}

/** The containerd build of a line; the suite checked it with installerPrerequisites. */
export function requireContainerd(line: ContainerdLine): ContainerdBuild {
  const build = containerdBuild(line);
  if ('missing' in build) throw new Error(`needs ${build.missing}`);
  return build;
}

/** A host root with the fixture's files and runc where Debian puts it. */
export function hostTree(fixture: string | null): string {
  const tree = mkdtempSync(join(tmpdir(), 'sg-host-'));
  if (fixture !== null) fse.copySync(join(FIXTURES, fixture), tree);
  copyProgram(tree, '/usr/sbin/runc', '/usr/sbin/runc');
  return tree;
}

/**
 * Puts a copy of this machine's `real` at `hostPath` in the tree. A copy, not
 * a symlink: the installer resolves links as the host would, inside the tree.
 */
export function copyProgram(tree: string, hostPath: string, real: string): void {
  fse.copySync(real, join(tree, hostPath));
}

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function install(tree: string, ...args: string[]): Promise<Run> {
  const result = await execa(INSTALL_SH, ['--host-root', tree, '--no-restart', ...args], { reject: false, timeout: 60_000 });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Puts the node's containerd into the tree at /usr/bin/containerd with the C
 * library it loads, so that install.sh can run it inside the tree (chroot)
 * as it runs a node's. Hard links to one copy per build made for this run.
 */
export function putContainerd(tree: string, build: ContainerdBuild): void {
  const template = containerdTemplate(build);
  for (const path of filesUnder(template)) {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    linkSync(join(template, path), join(tree, path));
  }
}

const templates = new Map<string, string>();
process.on('exit', () => {
  for (const dir of templates.values()) rmSync(dir, { recursive: true, force: true });
});

function containerdTemplate(build: ContainerdBuild): string {
  const known = templates.get(build.binDir);
  if (known !== undefined) return known;
  const dir = mkdtempSync(join(tmpdir(), 'sg-containerd-'));
  const binary = join(build.binDir, 'containerd');
  fse.copySync(binary, join(dir, 'usr/bin/containerd'));
  // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)"
  for (const match of execFileSync('ldd', [binary], { encoding: 'utf8' }).matchAll(/(?:^|\s)(\/\S+) \(0x/gm)) {
    fse.copySync(match[1]!, join(dir, match[1]!), { dereference: true });
  }
  templates.set(build.binDir, dir);
  return dir;
}

function filesUnder(dir: string, at = ''): string[] {
  return readdirSync(join(dir, at), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(dir, join(at, entry.name)) : [join(at, entry.name)],
  );
}

/**
 * `containerd config dump` of the tree's configuration by `build`'s
 * containerd, as containerd on that host would load it. Its `imports` line
 * lists the files loaded in Go map order (1.x) or the imports as written
 * (2.x); it is sorted here. Without a config.toml containerd 2.x runs on its
 * defaults, and 1.x's dump needs a file: one holding only `version = 2`,
 * which is the same.
 */
export async function configDump(tree: string, build?: ContainerdBuild): Promise<string> {
  let dir = join(tree, 'etc', 'containerd');
  let scratch: string | undefined;
  if (build?.configVersion === 2 && !existsSync(join(dir, 'config.toml'))) {
    scratch = mkdtempSync(join(tmpdir(), 'sg-defaults-'));
    writeFileSync(join(scratch, 'config.toml'), 'version = 2\n');
    dir = scratch;
  }
  const containerd = build === undefined ? 'containerd' : join(build.binDir, 'containerd');
  const script = 'mkdir -p /etc/containerd && mount --bind "$1" /etc/containerd && exec "$2" config dump';
  try {
    const result = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, containerd], { timeout: 30_000 });
    return result.stdout.replace(/^imports = (\[.*\])$/m, (_line, list: string) => `imports = ${JSON.stringify((parse(`x = ${list}`)['x'] as string[]).sort()).replaceAll(',', ', ')}`);
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

export type TomlDoc = Record<string, unknown>;

export function parseToml(text: string): TomlDoc {
  return parse(text, { integersAsBigInt: true }) as TomlDoc;
}

/** The value at a path of keys, or undefined. */
export function at(doc: unknown, ...path: string[]): unknown {
  let node = doc;
  for (const key of path) node = node !== null && typeof node === 'object' ? (node as TomlDoc)[key] : undefined;
  return node;
}

/**
 * Every file under `dir` (but the binary's directory) with its bytes, for
 * "nothing changed" checks; programs (over 1 MiB) by inode, size and mtime,
 * which any rewrite changes.
 */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const rel = relative(dir, path);
      if (rel === join('usr', 'local', 'bin')) continue;
      const stat = lstatSync(path);
      const mode = (stat.mode & 0o7777).toString(8);
      if (stat.isDirectory()) walk(path);
      else if (stat.isSymbolicLink()) files[rel] = `-> ${readlinkSync(path)}`;
      else if (stat.size > 1024 * 1024) files[rel] = `${mode} program, inode ${stat.ino}, ${stat.size} bytes, modified ${stat.mtimeMs}`;
      else files[rel] = `${mode} ${readFileSync(path, 'latin1')}`;
    }
  };
  walk(dir);
  return files;
}
