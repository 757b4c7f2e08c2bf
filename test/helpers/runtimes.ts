/**
 * The runtimes test/setup.sh fetched beside Debian 12's own: containerd 1.7
 * (trixie) and 2.x (sid) unpacked under .cache/runtimes, and a sid root with
 * newer runc and crun. Nothing here installs anything; a suite that needs a
 * build that is not there skips (outside CI) or fails (in CI) with the
 * reason, through skipOrFail.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, programPath } from './oci';

/** Where test/setup.sh keeps what it fetched (STRICT_GROUPS_RUNTIMES moves it). */
export const RUNTIMES_DIR = process.env['STRICT_GROUPS_RUNTIMES'] || join(ROOT, '.cache', 'runtimes');

/** A sid root holding runc, crun and busybox-static (test/setup.sh). */
export const SID_ROOT = join(RUNTIMES_DIR, 'sid-root');

export type ContainerdLine = '1.6' | '1.7' | '2.1';

export interface ContainerdBuild {
  line: ContainerdLine;
  /** Where it comes from: Debian 12's package, or trixie's or sid's unpacked. */
  source: 'bookworm' | 'trixie' | 'sid';
  /** The directory holding containerd, ctr and its own containerd-shim-runc-v2. */
  binDir: string;
  /** What `containerd --version` prints, e.g. "1.7.24~ds1". */
  version: string;
  /** The config version it reads natively: 2 for 1.x, 3 for 2.x. */
  configVersion: 2 | 3;
}

const SOURCES: readonly { line: ContainerdLine; source: ContainerdBuild['source']; binDir: () => string }[] = [
  { line: '1.6', source: 'bookworm', binDir: () => '/usr/bin' },
  { line: '1.7', source: 'trixie', binDir: () => join(RUNTIMES_DIR, 'containerd-trixie', 'usr', 'bin') },
  { line: '2.1', source: 'sid', binDir: () => join(RUNTIMES_DIR, 'containerd-sid', 'usr', 'bin') },
];

/** `containerd --version`'s version word ("containerd <module> <version> <revision>"). */
function containerdVersion(binary: string): string | undefined {
  try {
    return execFileSync(binary, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(/\s+/)[2];
  } catch {
    return undefined;
  }
}

/**
 * The containerd build of a line, or why it is not there. The line is
 * checked against what the binary says, so a changed suite shows up as a
 * clear failure rather than as a test of another version.
 */
export function containerdBuild(line: ContainerdLine): ContainerdBuild | { missing: string } {
  const entry = SOURCES.find((candidate) => candidate.line === line)!;
  const binDir = entry.binDir();
  const binary = line === '1.6' ? safeProgramPath('containerd') : join(binDir, 'containerd');
  const version = binary === undefined || !existsSync(binary) ? undefined : containerdVersion(binary);
  if (version === undefined) {
    return { missing: `containerd ${line} (${entry.source}; ${line === '1.6' ? 'apt-get install containerd' : 'test/setup.sh'})` };
  }
  if (!version.startsWith(`${line}.`)) return { missing: `containerd ${line} from ${entry.source}, found ${version} at ${binary}` };
  return { line, source: entry.source, binDir: line === '1.6' ? binary!.replace(/\/containerd$/, '') : binDir, version, configVersion: line === '2.1' ? 3 : 2 };
}

function safeProgramPath(program: string): string | undefined {
  try {
    return programPath(program);
  } catch {
    return undefined;
  }
}

/** node-exporter from Debian 12's package, unpacked by test/setup.sh: the textfile collector reads the report's metrics. */
export const NODE_EXPORTER = join(RUNTIMES_DIR, 'node-exporter', 'usr', 'bin', 'prometheus-node-exporter');
