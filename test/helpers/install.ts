/**
 * install.sh on a host root of its own: a temp tree holding a fixture's /etc,
 * the runtimes the host would have, and the real containerd reading the
 * tree's configuration through a private mount namespace, where the tree's
 * /etc/containerd is the host's, so imports resolve as on the node.
 */
import { execa } from 'execa';
import fse from 'fs-extra';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse } from 'smol-toml';
import { ROOT, SHIM, skipOrFail } from './oci';

export const INSTALL_SH = join(ROOT, 'install.sh');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'installer');

/** Outside CI a missing prerequisite skips the suite with the reason; in CI it fails it. */
export function installerPrerequisites(needs: { containerd: boolean }): string | undefined {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!fse.existsSync(SHIM)) missing.push(`${SHIM} (npm run build)`);
  const programs = needs.containerd ? ['containerd', 'unshare'] : [];
  for (const program of programs) {
    try {
      execFileSync(program, ['--version'], { stdio: 'ignore' });
    } catch {
      missing.push(program);
    }
  }
  return skipOrFail('installer suite', missing);
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
 * `containerd config dump` of the tree's configuration, as containerd on
 * that host would load it. Its `imports` line lists the files loaded in Go
 * map order, which changes from run to run; it is sorted here.
 */
export async function configDump(tree: string): Promise<string> {
  const script = 'mkdir -p /etc/containerd && mount --bind "$1" /etc/containerd && exec containerd config dump';
  const result = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', join(tree, 'etc', 'containerd')], { timeout: 30_000 });
  return result.stdout.replace(/^imports = (\[.*\])$/m, (_line, list: string) => `imports = ${JSON.stringify((JSON.parse(list) as string[]).sort()).replaceAll(',', ', ')}`);
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

/** Every file under `dir` (but the binary's directory) with its bytes, for "nothing changed" checks. */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const rel = relative(dir, path);
      if (rel === join('usr', 'local', 'bin')) continue;
      const stat = lstatSync(path);
      if (stat.isDirectory()) walk(path);
      else files[rel] = stat.isSymbolicLink() ? `-> ${readlinkSync(path)}` : `${(stat.mode & 0o7777).toString(8)} ${readFileSync(path, 'latin1')}`;
    }
  };
  walk(dir);
  return files;
}
