/**
 * Every build of runc and crun the runtime suites run against, each under a
 * test name that says which: Debian 12's own on the host (runc 1.1.5, crun
 * 1.8.1), and sid's (runc 1.3, crun 1.2x) inside the sid root test/setup.sh
 * made.
 *
 * The sid builds need a newer glibc than the host's, so they run in that
 * root. The shim runs there with them: test/helpers/enter-root.sh makes the
 * sid tree the root of a private mount namespace (an overlay, with /proc,
 * /sys, /dev, /tmp, /run and this checkout bound in at their own paths),
 * then execs the shim, which then execs the runtime as on any node: one
 * root, one PATH lookup, one execve, nothing between them. The host-built
 * SEA runs on sid's newer glibc as it would on a newer distribution. What
 * the wrapping changes is on the caller's side only, and it only ever execs:
 * the shim keeps the pid, argv, environment, stdio and descriptors the test
 * gave it, and the test sees its exit status and signals directly.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, hostWrap, missingPrerequisites, skipOrFail, unsharePath, type RuntimeBuild, type RuntimeName } from './oci';
import { SID_ROOT } from './runtimes';

const ENTER_ROOT = join(ROOT, 'test', 'helpers', 'enter-root.sh');
/** What enter-root.sh binds in anyway. */
const BOUND_ANYWAY = ['/proc', '/sys', '/dev', '/tmp', '/run'];

/** A build the suites run against, or why it cannot be run here. */
export interface BuildEntry {
  /** The test name: "runc 1.3.6 (sid)", or "runc (sid)" when it is missing. */
  label: string;
  build: RuntimeBuild | undefined;
  /** tap's skip: false, or the reason (outside CI only; in CI a missing build throws). */
  skip: string | false;
}

/** "1.3.6" from "runc version 1.3.6+ds1" or "crun version 1.28". */
function versionFrom(output: string, name: RuntimeName): string | undefined {
  return new RegExp(`^${name} version (\\d+\\.\\d+(?:\\.\\d+)?)`, 'm').exec(output)?.[1];
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + '/');
}

/** The sid root's wrapping: a private mount namespace whose root is the sid tree. */
function sidWrap(name: RuntimeName): RuntimeBuild['wrap'] {
  const binds = [ROOT, tmpdir()].filter((dir) => !BOUND_ANYWAY.some((bound) => within(dir, bound)));
  const options = [...binds.flatMap((dir) => ['--bind', dir]), ...(name === 'crun' ? ['--no-cgroup2'] : [])];
  return (file, args) => [unsharePath(), ['-m', '--propagation', 'private', ENTER_ROOT, SID_ROOT, ...options, '--', file, ...args]];
}

/** Finds `name` where `wrap` runs things and asks it its version. */
function probe(name: RuntimeName, source: RuntimeBuild['source'], wrap: RuntimeBuild['wrap']): RuntimeBuild | string {
  const [file, args] = wrap('/bin/sh', ['-c', 'command -v "$0" && "$0" --version', name]);
  let output: string;
  try {
    output = execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (err) {
    return `${name} from ${source} (${String((err as { stderr?: unknown }).stderr ?? err).trim().split('\n').pop()})`;
  }
  const [path = '', ...rest] = output.split('\n');
  const version = versionFrom(rest.join('\n'), name);
  if (!path.startsWith('/') || version === undefined) return `${name} from ${source} (--version said ${JSON.stringify(output)})`;
  return { name, version, source, label: `${name} ${version} (${source})`, path, wrap };
}

function entry(name: RuntimeName, source: RuntimeBuild['source'], suite: string): BuildEntry {
  const missing = missingPrerequisites();
  let found: RuntimeBuild | string;
  if (source === 'bookworm') {
    found = probe(name, source, hostWrap(name));
  } else if (!existsSync(join(SID_ROOT, 'usr', 'sbin', 'runc')) || !existsSync(join(SID_ROOT, 'usr', 'bin', 'crun'))) {
    found = `the sid root at ${SID_ROOT} (test/setup.sh)`;
  } else {
    found = probe(name, source, sidWrap(name));
  }
  if (typeof found === 'string') missing.push(found);
  const build = typeof found === 'string' ? undefined : found;
  const label = build?.label ?? `${name} (${source})`;
  return { label, build, skip: skipOrFail(`${suite} on ${label}`, missing) ?? false };
}

const NAMES: readonly RuntimeName[] = ['runc', 'crun'];
const SOURCES: readonly RuntimeBuild['source'][] = ['bookworm', 'sid'];

/**
 * runc and crun, Debian 12's and sid's, in that order. Outside CI a build
 * that is not here is a skipped entry with the reason; in CI it throws.
 */
export function runtimeBuilds(suite: string): BuildEntry[] {
  return SOURCES.flatMap((source) => NAMES.map((name) => entry(name, source, suite)));
}

/** Whether the build's version is at least `minimum` ("1.2"). */
export function atLeast(build: RuntimeBuild, minimum: string): boolean {
  const have = build.version.split('.').map(Number);
  const want = minimum.split('.').map(Number);
  for (let i = 0; i < want.length; i++) {
    if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i]!;
  }
  return true;
}
