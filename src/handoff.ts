import { accessSync, closeSync, constants, openSync, readSync, readdirSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { ShimError, errnoCode } from './errors';

/**
 * Handing the call to the real runtime. The normal path is execve: same pid,
 * argv, environment, working directory and stdio, nothing of Node left. Node
 * marks inherited descriptors above 2 close-on-exec at start-up, so when the
 * runtime must inherit more (--preserve-fds, LISTEN_FDS, --status-fd) the
 * shim spawns it instead with those descriptors mapped, forwards signals and
 * ends the way the runtime ended.
 */

/** Far above any real use, far below what would exhaust memory mapping them. */
const MAX_INHERITED_FDS = 65536;

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The configured runtime as an absolute path to an executable that is not
 * this shim. Every runc call pays for this: one stat per candidate, a 20-byte
 * read, one stat of ourselves.
 */
export function resolveRuntime(configured: string, env: NodeJS.ProcessEnv, self: string = process.execPath): string {
  let candidate = configured;
  let stat: Stats | undefined;
  if (isAbsolute(configured)) {
    stat = executableStat(candidate);
    if (stat === undefined) throw new ShimError(`runtime ${candidate} is not an executable file`);
  } else if (configured.includes('/')) {
    throw new ShimError(`runtime ${JSON.stringify(configured)} must be an absolute path or a bare name to look up on PATH`);
  } else {
    const dirs = (env['PATH'] ?? DEFAULT_PATH).split(delimiter).filter((dir) => isAbsolute(dir));
    for (const dir of dirs) {
      candidate = join(dir, configured);
      stat = executableStat(candidate);
      if (stat !== undefined) break;
    }
    if (stat === undefined) throw new ShimError(`runtime ${JSON.stringify(configured)} not found on PATH (${dirs.join(delimiter)})`);
  }
  // A failed execve aborts Node with a stack trace on the container's stdio:
  // make sure the kernel will take it.
  const header = fileHeader(candidate);
  if (!header.subarray(0, 2).equals(Buffer.from('#!')) && !isNativeElf(header)) {
    throw new ShimError(`runtime ${candidate} is neither a script nor an ELF executable for ${process.arch}`);
  }
  // By inode: stat follows symlinks, and a hard link has the same one.
  const ours = statOrUndefined(self);
  if (ours !== undefined && ours.dev === stat.dev && ours.ino === stat.ino) {
    throw new ShimError(
      `runtime ${candidate} is strict-groups-runtime itself; set "runtime" in the strict-groups configuration to the real runtime (runc or crun)`,
    );
  }
  return candidate;
}

/** The stat of an executable regular file, or undefined. */
function executableStat(path: string): Stats | undefined {
  const stat = statOrUndefined(path);
  if (stat === undefined || !stat.isFile()) return undefined;
  try {
    accessSync(path, constants.X_OK);
    return stat;
  } catch {
    return undefined;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function fileHeader(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(20);
    return header.subarray(0, readSync(fd, header, 0, header.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** ELF e_machine values of the architectures Node runs on here. */
const ELF_MACHINE: Readonly<Record<string, number>> = { x64: 62, arm64: 183, arm: 40, ia32: 3, ppc64: 21, s390x: 22, riscv64: 243 };

function isNativeElf(header: Buffer): boolean {
  if (header.length < 20 || !header.subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1'))) return false;
  const machine = ELF_MACHINE[process.arch];
  // e_machine, little or big endian as EI_DATA says.
  return machine === undefined || (header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18)) === machine;
}

export interface HandoffPlan {
  runtime: string;
  args: readonly string[];
  /** Descriptors above 2 the runtime must inherit; empty means execve. */
  extraFds: number[];
  /** Rewrite LISTEN_PID to the runtime's pid (runc checks it against its own). */
  fixListenPid: boolean;
}

/** Which descriptors the runtime must inherit, from the parsed fds and LISTEN_FDS. */
export function inheritedFds(
  command: string | undefined,
  fds: { preserveFds: number; statusFd?: number },
  env: NodeJS.ProcessEnv,
): { extraFds: number[]; fixListenPid: boolean } {
  // runc reads LISTEN_FDS on create and run, crun on exec too; preserved fds follow them.
  const listenFds = ['create', 'run', 'exec'].includes(command ?? '') ? positiveInt(env['LISTEN_FDS']) : 0;
  const count = listenFds + fds.preserveFds;
  if (count > MAX_INHERITED_FDS) {
    throw new ShimError(`cannot pass on ${count} descriptors (--preserve-fds plus LISTEN_FDS); at most ${MAX_INHERITED_FDS}`);
  }
  const extra = new Set<number>();
  for (let fd = 3; fd < 3 + count; fd++) extra.add(fd);
  if (fds.statusFd !== undefined && fds.statusFd > 2) extra.add(fds.statusFd);
  return {
    extraFds: [...extra].sort((a, b) => a - b),
    fixListenPid: listenFds > 0 && env['LISTEN_PID'] === String(process.pid),
  };
}

function positiveInt(text: string | undefined): number {
  return text !== undefined && /^[0-9]{1,6}$/.test(text) ? Number(text) : 0;
}

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Runs the plan. On the execve path this never returns; on the spawn path the
 * promise settles only if the runtime cannot be started, since its end ends
 * the shim too.
 */
export function handOff(plan: HandoffPlan): Promise<never> {
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (plan.extraFds.length === 0 && typeof execve === 'function') {
    // Node ignores SIGPIPE and SIGXFSZ and ignored signals survive execve;
    // a handler does not, so installing one gives the runtime the defaults.
    process.on('SIGPIPE', () => {});
    process.on('SIGXFSZ', () => {});
    // A failed execve aborts Node; resolveRuntime has checked X_OK.
    execve.call(process, plan.runtime, [plan.runtime, ...plan.args], process.env);
  }
  return spawnRuntime(plan);
}

/** Every signal a caller may send that Node lets us catch and pass on. */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTRAP', 'SIGABRT', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM',
  'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH',
  'SIGIO', 'SIGPWR', 'SIGSYS',
];

function spawnRuntime(plan: HandoffPlan): Promise<never> {
  // Loaded here: only this path pays for them.
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  const { signals } = (require('node:os') as typeof import('node:os')).constants;
  const passed = callerFds(plan.extraFds);
  const stdio: (number | 'inherit' | 'ignore')[] = ['inherit', 'inherit', 'inherit'];
  for (const fd of plan.extraFds) {
    while (stdio.length < fd) stdio.push('ignore');
    // 'ignore' above fd 2 leaves the child's descriptor closed, so a missing
    // one is reported by the runtime as it would be without the shim.
    stdio[fd] = passed.has(fd) ? fd : 'ignore';
  }
  const [file, args] = plan.fixListenPid
    ? ['/bin/sh', ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', plan.runtime, ...plan.args]]
    : [plan.runtime, [...plan.args]];

  return new Promise<never>((_resolve, reject) => {
    const child = spawn(file, args, { stdio, argv0: plan.runtime, env: process.env });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    const stopForwarding = (): void => {
      for (const signal of FORWARDED_SIGNALS) process.removeListener(signal, forward);
    };

    child.on('error', (err) => {
      stopForwarding();
      reject(new ShimError(`cannot start runtime ${plan.runtime}: ${errnoCode(err) ?? err.message}`));
    });
    child.on('exit', (code, signal) => {
      stopForwarding();
      if (signal !== null) {
        // Die of the same signal, as a caller waiting on runc would see it;
        // with our listener gone Node has restored the default disposition.
        process.kill(process.pid, signal);
        // Still here: the default for this signal is to ignore it.
        process.exit(128 + (signals[signal] ?? 0));
      }
      process.exit(code ?? 1);
    });
  });
}

/**
 * Which of `fds` are open, from one look at /proc/self/fd. Node holds
 * descriptors of its own (epoll, io_uring, eventfd, libuv's self-pipes) at the
 * lowest free numbers. When a caller declares more fds than it passed, those
 * would be handed to the container: an io_uring ring or libuv's signal pipe of
 * a root process. runc alone would refuse such a call ("unable to stat
 * preserved-fd"); so does the shim.
 */
function callerFds(fds: readonly number[]): Set<number> {
  const targets = new Map<number, string>();
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      targets.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // The directory's own descriptor, gone by now.
    }
  }
  const open = new Set<number>();
  for (const fd of fds) {
    const target = targets.get(fd);
    if (target === undefined) continue;
    const selfPipe = /^pipe:\[\d+\]$/.test(target) && [...targets].some(([other, t]) => other > 2 && other !== fd && t === target);
    if (target.startsWith('anon_inode:') || selfPipe) {
      throw new ShimError(`descriptor ${fd} was not passed by the caller (it is the shim's own ${target}); check --preserve-fds and LISTEN_FDS`);
    }
    open.add(fd);
  }
  return open;
}
