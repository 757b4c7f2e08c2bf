/**
 * Real OCI bundles and real runtimes for the integration suites: a
 * busybox-static rootfs with its own /etc/passwd and /etc/group, config.json
 * from `runc spec`, and the built strict-groups-runtime in front of runc or
 * crun. Nothing here is mocked.
 */
import { execa, type Options } from 'execa';
import fse from 'fs-extra';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const SHIM = join(ROOT, 'dist', 'strict-groups-runtime');
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'id', 'cat', 'sleep', 'echo', 'ls', 'kill', 'true', 'false'];

/** The seed case of FACTS.md: alice (1000) is in group-in-image (50000). */
export const SEED_PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:alice:/home/alice:/bin/sh\n';
export const SEED_GROUP = 'root:x:0:\nalice:x:1000:\ngroup-in-image:x:50000:alice\n';
/** What containerd 1.6 puts in additionalGids for runAsUser 1000, supplementalGroups [60000]. */
export const SEED_GIDS = [1000, 50000, 60000];
export const STRICT_GROUPS = 'uid=1000(alice) gid=1000(alice) groups=1000(alice),60000';
export const MERGED_GROUPS = 'uid=1000(alice) gid=1000(alice) groups=1000(alice),50000(group-in-image),60000';
export const POLICY = 'strict-groups.io/supplemental-groups-policy';
export const REMOVED = 'strict-groups.io/removed-gids';

export type RuntimeName = 'runc' | 'crun';

/**
 * One build of runc or crun and where it runs: Debian 12's own on the host,
 * or a newer one inside another root (test/helpers/runtime-builds.ts).
 */
export interface RuntimeBuild {
  name: RuntimeName;
  /** As the runtime's --version states it, e.g. "1.3.6". */
  version: string;
  /** The Debian suite it comes from. */
  source: 'bookworm' | 'sid';
  /** For test names: "runc 1.3.6 (sid)". */
  label: string;
  /** The runtime's absolute path where it runs. */
  path: string;
  /** The command line that runs `file args` where this build runs, with pid, stdio, fds and exit status unchanged. */
  wrap(file: string, args: readonly string[]): [string, string[]];
}

/** A build, or a bare name for Debian 12's own build on this host. */
export type Runtime = RuntimeName | RuntimeBuild;

export function runtimeName(runtime: Runtime): RuntimeName {
  return typeof runtime === 'string' ? runtime : runtime.name;
}

/**
 * Whether a suite may run here; outside CI a missing prerequisite skips the
 * suite with the reason, in CI it fails it (no suite may skip there).
 */
export function prerequisites(runtime: RuntimeName): string | undefined {
  return skipOrFail(`${runtime} suite`, missingPrerequisites(runtime));
}

/**
 * What the runtime suites need besides a runtime build: root, busybox for
 * the rootfs, the built shim, and Debian 12's runc, whose `runc spec` writes
 * every bundle's config.json (the same input for every build). With a
 * runtime name, that host runtime too.
 */
export function missingPrerequisites(hostRuntime?: RuntimeName): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  const probes = new Map<string, string[]>([[BUSYBOX, ['true']], ['runc', ['--version']]]);
  if (hostRuntime !== undefined) probes.set(hostRuntime, ['--version']);
  for (const [program, args] of probes) {
    try {
      execFileSync(program, args, { stdio: 'ignore' });
    } catch {
      missing.push(program);
    }
  }
  if (!fse.existsSync(SHIM)) missing.push(`${SHIM} (npm run build)`);
  return missing;
}

/** The absolute path a program name resolves to on PATH, as the shim and containerd's BinaryName use it. */
export function programPath(program: string): string {
  return execFileSync('sh', ['-c', 'command -v "$1"', 'sh', program], { encoding: 'utf8' }).trim();
}

/** The programs (names on PATH, or absolute paths) that are not there to run. */
export function missingPrograms(programs: readonly string[]): string[] {
  return programs.filter((program) => {
    try {
      programPath(program);
      return false;
    } catch {
      return true;
    }
  });
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * The cgroup directories directly under each hierarchy's root (cgroup v1,
 * hybrid or v2) whose names `match` picks: runc names a container's after its
 * id, or after the spec's cgroupsPath.
 */
export function cgroupDirs(match: (name: string) => boolean): string[] {
  const dirs: string[] = [];
  const hierarchies = [CGROUP_ROOT, ...readdirSync(CGROUP_ROOT, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(CGROUP_ROOT, e.name))];
  for (const hierarchy of hierarchies) {
    try {
      for (const entry of readdirSync(hierarchy, { withFileTypes: true })) {
        if (entry.isDirectory() && match(entry.name)) dirs.push(join(hierarchy, entry.name));
      }
    } catch {
      // Not a hierarchy one can list.
    }
  }
  return dirs;
}

/**
 * What every suite does with its missing prerequisites: none, run; outside
 * CI, the reason to skip; in CI, an error, since no suite may skip there.
 */
export function skipOrFail(suite: string, missing: readonly string[]): string | undefined {
  if (missing.length === 0) return undefined;
  const reason = `needs ${missing.join(', ')}`;
  if (process.env['CI']) throw new Error(`${suite} cannot run in CI: ${reason}`);
  return reason;
}

export interface BundleOptions {
  passwd?: string | null;
  group?: string | null;
  uid?: number;
  gid?: number;
  additionalGids?: number[];
  args?: string[];
  annotations?: Record<string, string>;
  /** linux.cgroupsPath; by default the runtime names the cgroup after the container id. */
  cgroupsPath?: string;
}

export interface WorkspaceOptions {
  /**
   * Give each bundle a cgroup named after the workspace and the bundle, not
   * after the container id alone: test runs side by side on one machine use
   * the same ids, and runc 1.2+ refuses to start a container in a cgroup
   * that holds another's processes (runc 1.1 silently shares it).
   */
  ownCgroups?: boolean;
}

export interface Workspace {
  dir: string;
  /** The runtime's --root for this workspace. */
  stateRoot: string;
  configFile: string;
  auditLog: string;
  /** Writes the shim's node configuration. */
  configure(settings: Record<string, unknown>): void;
  bundle(name: string, options?: BundleOptions): string;
  cleanup(): Promise<void>;
}

export function workspace(runtime: Runtime, options: WorkspaceOptions = {}): Workspace {
  const program = runtimeName(runtime);
  const dir = mkdtempSync(join(tmpdir(), `sg-${program}-`));
  const stateRoot = join(dir, 'state');
  const configFile = join(dir, 'strict-groups.json');
  const auditLog = join(dir, 'audit', 'audit.log');
  const ws: Workspace = {
    dir,
    stateRoot,
    configFile,
    auditLog,
    configure(settings) {
      fse.writeJsonSync(configFile, { runtime: program, auditLog, ...settings });
    },
    bundle(name, bundleOptions = {}) {
      const cgroupsPath = options.ownCgroups ? `/${basename(dir)}-${name.replaceAll('/', '-')}` : undefined;
      return makeBundle(join(dir, name), { ...(cgroupsPath !== undefined && { cgroupsPath }), ...bundleOptions });
    },
    async cleanup() {
      // Every container the suite left behind, then the files.
      const listed = await direct(runtime, ['--root', stateRoot, 'list', '-q']);
      for (const id of String(listed.stdout).split('\n').filter(Boolean)) {
        await direct(runtime, ['--root', stateRoot, 'delete', '--force', id]);
      }
      await fse.remove(dir);
    },
  };
  ws.configure({});
  return ws;
}

/** A bundle at `path`: rootfs with busybox, optional /etc files, config.json from `runc spec`. */
export function makeBundle(path: string, options: BundleOptions = {}): string {
  const rootfs = join(path, 'rootfs');
  fse.mkdirpSync(join(rootfs, 'bin'));
  fse.mkdirpSync(join(rootfs, 'etc'));
  fse.mkdirpSync(join(rootfs, 'proc'));
  fse.mkdirpSync(join(rootfs, 'dev'));
  fse.copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  for (const applet of APPLETS) fse.symlinkSync('busybox', join(rootfs, 'bin', applet));
  const passwd = options.passwd === undefined ? SEED_PASSWD : options.passwd;
  const group = options.group === undefined ? SEED_GROUP : options.group;
  if (passwd !== null) fse.writeFileSync(join(rootfs, 'etc', 'passwd'), passwd);
  if (group !== null) fse.writeFileSync(join(rootfs, 'etc', 'group'), group);

  execFileSync('runc', ['spec', '--bundle', path]);
  const spec = fse.readJsonSync(join(path, 'config.json'));
  spec.process.terminal = false;
  spec.process.args = options.args ?? ['id'];
  spec.process.user = { uid: options.uid ?? 1000, gid: options.gid ?? 1000, additionalGids: options.additionalGids ?? SEED_GIDS };
  // runc 1.1's template grants ambient capabilities, which runc 1.2+ cannot
  // raise for a non-root user and warns about on stderr; containerd and
  // CRI-O set none, and runc 1.2+'s own template no longer does.
  delete spec.process.capabilities.ambient;
  spec.root = { path: 'rootfs', readonly: true };
  // Shared host network namespace keeps the suite free of network setup.
  spec.linux.namespaces = spec.linux.namespaces.filter((ns: { type: string }) => ns.type !== 'network');
  spec.annotations = options.annotations ?? {};
  if (options.cgroupsPath !== undefined) spec.linux.cgroupsPath = options.cgroupsPath;
  fse.writeJsonSync(join(path, 'config.json'), spec, { spaces: 2 });
  return path;
}

/** An exec process file as containerd writes it: the ORIGINAL merged groups. */
export function processFile(dir: string, args: string[], additionalGids: number[] = SEED_GIDS): string {
  const file = join(dir, `process-${Math.random().toString(36).slice(2)}.json`);
  fse.writeJsonSync(file, {
    terminal: false,
    user: { uid: 1000, gid: 1000, additionalGids },
    args,
    env: ['PATH=/bin'],
    cwd: '/',
  });
  return file;
}

/**
 * How Debian 12's own runc and crun run here. crun 1.8.1 refuses this host's
 * hybrid cgroup layout (a cgroup2 mount at /sys/fs/cgroup/unified with
 * controllers): crun commands run in a private mount namespace without that
 * mount; the host is not changed.
 */
export function hostWrap(name: RuntimeName): RuntimeBuild['wrap'] {
  if (name === 'runc') return (file, args) => [file, [...args]];
  return (file, args) => [
    unsharePath(),
    ['-m', '--propagation', 'private', '/bin/sh', '-c', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"', file, ...args],
  ];
}

function wrapForRuntime(runtime: Runtime, file: string, args: string[]): [string, string[]] {
  return typeof runtime === 'string' ? hostWrap(runtime)(file, args) : runtime.wrap(file, args);
}

let unshare: string | undefined;
/** By its path: a test may run the shim with a PATH of its own. */
export function unsharePath(): string {
  return (unshare ??= programPath('unshare'));
}

export interface RunOptions {
  env?: Record<string, string>;
  /** 'ignore' gives the container /dev/null, as for a detached create. */
  output?: 'pipe' | 'ignore';
  /** Extra descriptors for the child, from fd 3 on. */
  extraFds?: number[];
}

export interface Outcome {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

async function run(file: string, args: string[], env: Record<string, string>, options: RunOptions): Promise<Outcome> {
  const output = options.output ?? 'pipe';
  const result = await execa(file, args, {
    reject: false,
    env,
    // execa passes a number on as that descriptor; its types only list 0-2.
    stdio: ['ignore', output, output, ...(options.extraFds ?? [])] as unknown as Options['stdio'],
  });
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
  };
}

/** The command line that runs the shim with `args` where the runtime runs. */
export function shimCommand(runtime: Runtime, args: string[]): [string, string[]] {
  return wrapForRuntime(runtime, SHIM, args);
}

/** Runs the shim with the workspace's configuration. */
export function shim(ws: Workspace, runtime: Runtime, args: string[], options: RunOptions = {}): Promise<Outcome> {
  const [file, argv] = wrapForRuntime(runtime, SHIM, args);
  return run(file, argv, { STRICT_GROUPS_CONFIG: ws.configFile, ...options.env }, options);
}

/**
 * Runs the real runtime directly, for comparison, by its absolute path as the
 * shim (and containerd's BinaryName) do: crun puts argv[0] in its messages.
 */
export function direct(runtime: Runtime, args: string[], options: RunOptions = {}): Promise<Outcome> {
  const [file, argv] = wrapForRuntime(runtime, runtimePath(runtime), args);
  return run(file, argv, options.env ?? {}, options);
}

/** The runtime's absolute path where it runs. */
export function runtimePath(runtime: Runtime): string {
  return typeof runtime === 'string' ? programPath(runtime) : runtime.path;
}

/**
 * containerd's reading of a --log file: every line JSON with an RFC 3339
 * time, else "unable to retrieve OCI runtime error"; the last error's msg is
 * what the user sees.
 */
export function containerdError(logFile: string): string {
  let last = '';
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (line === '') continue;
    const entry = JSON.parse(line) as { level: string; msg: string; time: string };
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(entry.time)) throw new Error(`time not RFC 3339: ${entry.time}`);
    if (entry.level === 'error') last = entry.msg;
  }
  return last;
}
