/**
 * podman with conmon, CRI-O's runtime monitor, in front of the built shim:
 * podman creates a container through conmon, which runs `<runtime> create`
 * with an environment of its own and relays the runtime's stderr when the
 * create fails; `podman exec` runs a new conmon, which runs `<runtime> exec
 * --process`. Debian 12's podman 4.3.1 and conmon 2.1.6, on private
 * storage, state and configuration (test/helpers/private-host.sh): nothing
 * on the host changes but the containers' cgroups, removed at the end.
 */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { buildImageArchive } from './oci-image';
import { ROOT, SEED_GROUP, SEED_PASSWD, SHIM, cgroupDirs, missingPrerequisites, missingPrograms, programPath, skipOrFail, unsharePath, type RuntimeName } from './oci';

const PRIVATE_HOST = join(ROOT, 'test', 'helpers', 'private-host.sh');
export const SEED_IMAGE = 'localhost/strict-groups-conmon/seed:1';
/** Far above a podman call here (about a second); a hung one is killed. */
const CALL_TIMEOUT_MS = 120_000;
/**
 * podman 4.3 lowers its own RLIMIT_NPROC, which conmon and the runtime
 * inherit, to 32768 (strace shows the setrlimit), while a container's
 * default asks for the caller's hard limit: above 32768, runc cannot set
 * it without CAP_SYS_RESOURCE, which these machines do not give.
 */
const PODMAN_NPROC = 32768;

export interface PodmanResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/** Why the conmon suite cannot run here, through skipOrFail. */
export function podmanPrerequisites(suite: string, runtime: RuntimeName): string | undefined {
  const missing = [...missingPrerequisites(runtime), ...missingPrograms(['podman', 'conmon', 'unshare', 'tar'])];
  return skipOrFail(suite, missing);
}

/** This process's hard limit of a resource, from /proc/self/limits. */
function hardLimit(name: string): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const hard = line?.slice(26).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(hard);
}

export class Podman {
  /** What the shim hands off to: Debian 12's runc or crun. */
  readonly runtime: RuntimeName;
  readonly dir: string;
  readonly auditLog: string;
  /** The runtimes' state root, /run/<runtime> in every call's namespace. */
  readonly runtimeState: string;
  private readonly config: string;
  private readonly cgroupParent: string;

  constructor(runtime: RuntimeName) {
    this.runtime = runtime;
    this.dir = mkdtempSync(join(tmpdir(), 'sg-podman-'));
    this.auditLog = join(this.dir, 'audit.log');
    this.config = join(this.dir, 'strict-groups.json');
    this.runtimeState = join(this.dir, runtime);
    this.cgroupParent = basename(this.dir);
    mkdirSync(join(this.dir, 'stage'));
    this.configure({});
  }

  /** The node configuration the shim finds at /etc/strict-groups/config.json. */
  configure(settings: Record<string, unknown>): void {
    writeFileSync(this.config, JSON.stringify({ runtime: this.runtime, auditLog: this.auditLog, ...settings }));
  }

  /**
   * podman with the shim as its OCI runtime, or with `runtime` given
   * (a control run without the shim).
   */
  async call(args: string[], options: { runtime?: string } = {}): Promise<PodmanResult> {
    const globals = [
      '--root', join(this.dir, 'storage'), '--runroot', join(this.dir, 'runroot'), '--tmpdir', join(this.dir, 'tmp'),
      '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none',
      '--runtime', options.runtime ?? SHIM,
    ];
    const crun = this.runtime === 'crun' ? ['--no-cgroup2'] : [];
    const result = await execa(
      unsharePath(),
      ['-m', '--propagation', 'private', PRIVATE_HOST, this.dir, this.config, ...crun, '--', programPath('podman'), ...globals, ...args],
      // The shim's configuration must come from its default path, as under CRI-O.
      { reject: false, stdin: 'ignore', timeout: CALL_TIMEOUT_MS, killSignal: 'SIGKILL', env: { STRICT_GROUPS_CONFIG: undefined } },
    );
    if (result.timedOut) throw new Error(`podman ${args.join(' ')}: still running after ${CALL_TIMEOUT_MS} ms`);
    return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
  }

  /** The options every container of the suite runs with. */
  containerOptions(): string[] {
    const nofile = hardLimit('Max open files');
    const nproc = Math.min(hardLimit('Max processes'), PODMAN_NPROC);
    return [
      '--network', 'host', '--pull', 'never', `--cgroup-parent=/${this.cgroupParent}`,
      '--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`,
    ];
  }

  /** Builds the seed image (alice in group-in-image) and loads it. */
  async loadSeedImage(): Promise<void> {
    const dir = join(this.dir, 'image');
    mkdirSync(dir);
    const archive = buildImageArchive(dir, { name: SEED_IMAGE, passwd: SEED_PASSWD, group: SEED_GROUP, cmd: ['id'] });
    const loaded = await this.call(['load', '--quiet', '--input', archive]);
    if (loaded.exitCode !== 0) throw new Error(`podman load: ${loaded.stderr}`);
  }

  /** The audit lines the shim wrote, one object each. */
  audit(): Record<string, unknown>[] {
    try {
      return readFileSync(this.auditLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    } catch {
      return [];
    }
  }

  /**
   * Every container removed through podman, any the runtime still holds
   * deleted, the cgroups under the suite's parent removed, the files too.
   */
  async cleanup(): Promise<void> {
    await this.call(['rm', '--all', '--force', '--time', '0']);
    const runtime = programPath(this.runtime);
    const inState = (args: string[]): string => {
      const crun = this.runtime === 'crun' ? ['sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"'] : [];
      return execFileSync(unsharePath(), ['-m', '--propagation', 'private', ...crun, runtime, '--root', this.runtimeState, ...args], { encoding: 'utf8' });
    };
    if (existsSync(this.runtimeState)) {
      for (const id of inState(['list', '-q']).split('\n').filter(Boolean)) inState(['delete', '--force', id]);
    }
    for (const parent of cgroupDirs((name) => name === this.cgroupParent)) await removeTree(parent);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** How long a conmon or podman cleanup process may take to leave its cgroup before it is killed. */
const CGROUP_EMPTY_MS = 5000;

/**
 * rmdir of a cgroup and every cgroup below it, deepest first. conmon and
 * podman's cleanup process outlive `podman rm` by a moment: each cgroup is
 * given a bounded while to empty, then what is left in it is killed.
 */
async function removeTree(dir: string): Promise<void> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeTree(join(dir, entry.name));
  }
  const procs = (): number[] => readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (const deadline = Date.now() + CGROUP_EMPTY_MS; procs().length > 0 && Date.now() < deadline; ) await delay(50);
  for (const pid of procs()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  for (const deadline = Date.now() + CGROUP_EMPTY_MS; procs().length > 0 && Date.now() < deadline; ) await delay(50);
  rmdirSync(dir);
}
