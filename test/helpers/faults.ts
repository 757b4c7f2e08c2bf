/**
 * Faults for test/faults: file systems that are full or read-only (mounted for
 * one test and always taken down), bundles whose directory holds config.json
 * apart from the rootfs, runc held inside a create by a hook, and strace's
 * fault injection to kill the shim before any chosen system call.
 */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Test } from 'tap';
import { SHIM, cgroupDirs, direct, type BundleOptions, type Workspace } from './oci';

/** What every fault case gets: the suite's workspace and runc's --root for it. */
export interface FaultContext {
  ws: Workspace;
  /** `--root <the workspace's state dir>`, runc's global option. */
  root: string[];
}

/** Mounts a tmpfs of `bytes` at `dir` until the test ends. */
export function mountTmpfs(t: Test, dir: string, bytes: number): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'strict-groups-faults', dir]);
  t.teardown(() => execFileSync('umount', [dir]));
}

/** Makes `dir` read-only until the test ends: a bind mount onto itself, remounted ro. */
export function mountReadOnly(t: Test, dir: string): void {
  execFileSync('mount', ['--bind', dir, dir]);
  t.teardown(() => execFileSync('umount', [dir]));
  execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
}

/** Fills the file system under `dir` to its last page; returns the filler file. */
export function fillFileSystem(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const page = Buffer.alloc(4096, 0x2e);
  try {
    for (;;) writeSync(fd, page);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return filler;
}

/**
 * A bundle whose directory `dir` holds only config.json, the rootfs being
 * `<name>-image/rootfs` in the workspace under an absolute root.path: a fault
 * on `dir` hits the bundle and not the image the shim reads.
 */
export function bundleApart(ws: Workspace, dir: string, name: string, options: BundleOptions = {}): string {
  const image = ws.bundle(`${name}-image`, options);
  const spec = JSON.parse(readFileSync(join(image, 'config.json'), 'utf8')) as { root: { path: string } };
  spec.root.path = join(image, 'rootfs');
  rmSync(join(image, 'config.json'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}

/** The OCI fields the fault cases read or set in config.json. */
export interface Spec {
  process: { user: { uid: number; gid: number; additionalGids?: number[] } };
  annotations?: Record<string, string>;
  hooks?: Record<string, { path: string; args?: string[] }[]>;
  linux: { cgroupsPath?: string };
}

export function readSpec(bundle: string): Spec {
  return JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as Spec;
}

function editSpec(bundle: string, edit: (spec: Spec) => void): void {
  const spec = readSpec(bundle);
  edit(spec);
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
}

/** The shim's leftover temporary files beside `file` (replaceFileAtomically's names). */
export function tempFilesBeside(file: string): string[] {
  const prefix = `.${basename(file)}.strict-groups-`;
  return readdirSync(dirname(file)).filter((name) => name.startsWith(prefix));
}

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The first child of a process, from /proc. */
export function firstChild(pid: number): number | undefined {
  const children = readOrUndefined(`/proc/${pid}/task/${pid}/children`)?.trim();
  return children ? Number(children.split(' ')[0]) : undefined;
}

/** Shell scripts for a createRuntime hook; $1 is a file of the hook's own. */
export const HOOK = {
  /** The first create blocks inside runc: the hook writes its pid to $1 and sleeps. Later creates pass. */
  blockOnce: 'if [ ! -e "$1" ]; then echo $$ > "$1.tmp" && /bin/mv "$1.tmp" "$1" && exec /bin/sleep 300; fi',
  /** Every create fails inside runc. */
  fail: 'echo "hook refuses" >&2; exit 3',
};

/**
 * Gives a bundle a createRuntime hook (a shell script runc runs on the host
 * in the middle of a create) and returns the hook's file. runc killed inside
 * a create leaves the hook, the container's state directory and its cgroup
 * behind, as it does without the shim: so the cgroup gets a known path, and
 * when the test ends the hook is killed, the container deleted and the
 * cgroups removed.
 */
export function createRuntimeHook(t: Test, ctx: FaultContext, bundle: string, id: string, script: string): { hookFile: string } {
  const hookFile = `${bundle}.hook`;
  const cgroup = `strict-groups-faults-${process.pid}-${id}`;
  editSpec(bundle, (spec) => {
    spec.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', script, 'hook', hookFile] }] };
    spec.linux.cgroupsPath = `/${cgroup}`;
  });
  t.teardown(async () => {
    const hookPid = Number(readOrUndefined(hookFile));
    if (hookPid > 0) {
      try {
        process.kill(hookPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await direct('runc', [...ctx.root, 'delete', '--force', id]);
    // runc init leaves the cgroup as it dies of its parent's death: rmdir may
    // have to wait for that.
    await waitFor(() => (removeCgroups(cgroup) ? true : undefined), `the cgroup of ${id} to empty`);
  });
  return { hookFile };
}

/** Waits until a HOOK.blockOnce hook holds runc, and returns the hook's pid. */
export function hookStarted(hookFile: string): Promise<number> {
  return waitFor(() => {
    const pid = Number(readOrUndefined(hookFile));
    return pid > 0 ? pid : undefined;
  }, 'the createRuntime hook');
}

/** rmdir of a cgroup in every hierarchy; false while one is busy. */
function removeCgroups(name: string): boolean {
  try {
    for (const dir of cgroupDirs((entry) => entry === name)) rmdirSync(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBUSY') return false;
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Kill at every step: strace's fault injection

/**
 * The system calls a kill is placed before: those that touch files or
 * descriptors. A kill before any other call (memory, futexes, signal masks)
 * leaves the files as a kill before the next of these does, and those other
 * calls are left out because their number varies from run to run.
 */
const FILE_SYSCALLS = [
  'openat', 'read', 'pread64', 'readv', 'write', 'pwrite64', 'writev', 'close', 'fstat', 'newfstatat', 'statx', 'lseek',
  'fchmod', 'fchown', 'fsync', 'fdatasync', 'renameat', 'renameat2', 'linkat', 'unlinkat', 'mkdirat', 'readlinkat',
  'getdents64', 'fcntl', 'ftruncate', 'execve',
  // x86-64 only; "?" lets strace skip a name the architecture lacks.
  '?open', '?creat', '?stat', '?lstat', '?rename', '?link', '?unlink', '?mkdir', '?readlink',
].join(',');

/** One system call of the window a kill is placed in, as the reference run made it. */
export interface Step {
  /** strace's line for it. */
  line: string;
  syscall: string;
  /** Which call of its name it is, counting from the window's first call. */
  sinceFirst: number;
}

export interface KillResult {
  step: Step;
  /** What the file was right after the kill. */
  file: 'old' | 'new' | 'other';
  tempLeft: boolean;
  /** Runs it took to land the kill (more than one when a run's calls differed from the reference's). */
  runs: number;
}

export interface KillAtEveryStep {
  results: KillResult[];
  /** The file as an unhindered run leaves it. */
  rewritten: Buffer;
}

interface Call {
  line: string;
  syscall: string;
}

interface StraceRun {
  signal: string | undefined;
  exitCode: number | undefined;
  calls: Call[];
}

/** The shim under strace with `FILE_SYSCALLS` traced; `injections` are strace's inject= expressions. */
async function straceShim(injections: string[], shimArgs: string[], env: Record<string, string>, traceFile: string): Promise<StraceRun> {
  const straceArgs = ['-o', traceFile, '-e', `trace=${FILE_SYSCALLS}`, ...injections.flatMap((injection) => ['-e', `inject=${injection}`])];
  const result = await execa('strace', [...straceArgs, SHIM, ...shimArgs], { reject: false, env, stdio: 'ignore' });
  const lines = readFileSync(traceFile, 'utf8')
    .split('\n')
    .filter((line) => /^\w+\(/.test(line));
  return { signal: result.signal, exitCode: result.exitCode, calls: callsOf(lines) };
}

/** A trace's calls as strace's `when=` counts them: it shows the shim's own execve but does not count it. */
function callsOf(lines: readonly string[]): Call[] {
  return lines.slice(1).map((line) => ({ line, syscall: /^(\w+)\(/.exec(line)![1]! }));
}

/** Where the window starts in a run: its first call that `isFirst` picks, or -1. */
function windowStart(calls: readonly Call[], isFirst: (line: string) => boolean): number {
  return calls.findIndex((call) => isFirst(call.line));
}

/** The calls from the window's first through the next execve (the runtime's). */
function windowOf(calls: readonly Call[], isFirst: (line: string) => boolean): Step[] {
  const first = windowStart(calls, isFirst);
  const execve = calls.findIndex((call, i) => i > first && call.syscall === 'execve');
  if (first < 0 || execve < 0) throw new Error(`the reference run never reached ${first < 0 ? 'its first step' : 'the execve of the runtime'}`);
  const window = calls.slice(first, execve + 1);
  return window.map(({ line, syscall }, i) => ({ line, syscall, sinceFirst: window.slice(0, i + 1).filter((c) => c.syscall === syscall).length }));
}

/** How many calls of each name a run made before the window; undefined if it never got there. */
function leadOf(calls: readonly Call[], isFirst: (line: string) => boolean): Map<string, number> | undefined {
  const first = windowStart(calls, isFirst);
  if (first < 0) return undefined;
  const lead = new Map<string, number>(calls.map((call) => [call.syscall, 0]));
  for (const call of calls.slice(0, first)) lead.set(call.syscall, lead.get(call.syscall)! + 1);
  return lead;
}

/** The value seen most often. */
function mostSeen<T>(values: readonly T[], key: (value: T) => string): T | undefined {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(key(value), (counts.get(key(value)) ?? 0) + 1);
  return [...values].sort((a, b) => counts.get(key(b))! - counts.get(key(a))!)[0];
}

/**
 * What identifies a call across runs: its name, first argument and first
 * path (later ones may be results, which a call killed on entry lacks), with
 * the shim's pid and clock taken out of temporary file names.
 */
function signature(line: string): string {
  const normalized = line.replace(/\.strict-groups-\d+-[0-9a-z]+-\d+/g, '.strict-groups-*');
  const [, name, firstArg] = /^(\w+)\(([^,)]*)/.exec(normalized) ?? [];
  const [path] = /"\/[^"]*"/.exec(normalized) ?? [];
  return [name, firstArg, path].join(' ');
}

const REFERENCE_RUNS = 5;
const MAX_RUNS_PER_KILL = 8;

/** strace's kill at the runtime's execve: whatever else a run aims at, no runtime runs. */
const STOP_AT_RUNTIME = 'execve:signal=SIGKILL:when=1';

/**
 * Kills the shim (SIGKILL through strace) before each file or descriptor
 * system call from the first that `isFirst` picks up to its execve of the
 * runtime, with `file` reset to `original` before each run. The calls come
 * from a reference run stopped at that execve. Each kill must land on the
 * call it aimed at, as its own trace shows; a kill that missed is run again.
 * A temporary file a kill leaves is counted, then removed.
 */
export async function killAtEveryStep(
  t: Test,
  options: { shimArgs: string[]; env: Record<string, string>; file: string; original: Buffer; isFirst: (line: string) => boolean; scratch: string },
): Promise<KillAtEveryStep> {
  const { shimArgs, env, file, original, isFirst, scratch } = options;
  const reset = (): void => {
    writeFileSync(file, original);
    for (const temp of tempFilesBeside(file)) rmSync(join(dirname(file), temp));
  };
  mkdirSync(scratch, { recursive: true });

  // Node's own work makes runs differ: before the window, how many calls
  // come (the SIGCHLD of `runc state` is handled on the main thread or on
  // another, a pipe drains in one read or two); within it, now and then a
  // read of /sys/devices/system/cpu/online. So the steps are the window most
  // reference runs made, and a kill aims with the lead seen most often.
  const references: StraceRun[] = [];
  for (let run = 0; run < REFERENCE_RUNS; run++) {
    reset();
    references.push(await straceShim([STOP_AT_RUNTIME], shimArgs, env, join(scratch, 'reference.trace')));
  }
  t.same(references.map((run) => run.signal), references.map(() => 'SIGKILL'), 'the reference runs stopped at the execve of the runtime');
  const rewritten = readFileSync(file);
  const steps = mostSeen(references.map((run) => windowOf(run.calls, isFirst)), (window) => window.map((s) => signature(s.line)).join('\n'))!;
  // Per system call name, the leads seen so far.
  const leads = new Map<string, number[]>(steps.map((step) => [step.syscall, []]));
  const observe = (lead: Map<string, number>): void => {
    for (const [syscall, seen] of leads) seen.push(lead.get(syscall) ?? 0);
  };
  for (const run of references) observe(leadOf(run.calls, isFirst)!);
  const aimFor = (step: Step): number => mostSeen(leads.get(step.syscall)!, String)! + step.sinceFirst;

  const results: KillResult[] = [];
  const misses: string[] = [];
  for (const [index, step] of steps.entries()) {
    // A kill has landed when the run made, from the window's first call up to
    // the killed one, the same calls as the reference: nothing extra, nothing missing.
    const path = steps.slice(0, index + 1).map((s) => signature(s.line));
    let miss: string | undefined;
    let runs = 0;
    do {
      runs++;
      reset();
      const aim = aimFor(step);
      const injections = [`${step.syscall}:signal=SIGKILL:when=${aim}`, ...(step.syscall === 'execve' ? [] : [STOP_AT_RUNTIME])];
      const run = await straceShim(injections, shimArgs, env, join(scratch, 'kill.trace'));
      const lead = leadOf(run.calls, isFirst);
      if (lead !== undefined) observe(lead);
      // Killed before the window: this run's lead was larger than the aim's.
      else if (run.signal === 'SIGKILL') leads.get(step.syscall)!.push(aim - step.sinceFirst + 1);
      const first = windowStart(run.calls, isFirst);
      const taken = first < 0 ? [] : run.calls.slice(first).map((call) => signature(call.line));
      const landed = taken.length === path.length && taken.every((call, i) => call === path[i]);
      miss = run.signal !== 'SIGKILL' ? `not killed (exit ${run.exitCode})` : landed ? undefined : `killed at ${run.calls.at(-1)?.line}`;
    } while (miss !== undefined && runs < MAX_RUNS_PER_KILL);
    if (miss !== undefined) misses.push(`aimed at ${step.line}, ${miss}`);
    const now = existsSync(file) ? readFileSync(file) : undefined;
    results.push({
      step,
      file: now?.equals(original) ? 'old' : now?.equals(rewritten) ? 'new' : 'other',
      tempLeft: tempFilesBeside(file).length > 0,
      runs,
    });
  }
  t.same(misses, [], `each of the ${steps.length} kills landed on the system call it aimed at`);
  return { results, rewritten };
}

/** Counts for the report line and the assertions. */
export function tally(results: readonly KillResult[]): { points: number; runs: number; old: number; new: number; other: number; tempLeft: number } {
  return {
    points: results.length,
    runs: results.reduce((sum, r) => sum + r.runs, 0),
    old: results.filter((r) => r.file === 'old').length,
    new: results.filter((r) => r.file === 'new').length,
    other: results.filter((r) => r.file === 'other').length,
    tempLeft: results.filter((r) => r.tempLeft).length,
  };
}
