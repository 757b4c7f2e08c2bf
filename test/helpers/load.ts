/**
 * The load driver: many containers through the shim (or plain runc) in
 * lockstep batches, every runtime call timed and measured by GNU time, the
 * machine's memory sampled meanwhile. It records; test/load/load.test.ts
 * judges. Calls use containerd-shim-runc-v2's command lines.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SHIM, cgroupDirs, direct, missingPrograms, processFile, programPath, skipOrFail, type Workspace } from './oci';

export const GNU_TIME = '/usr/bin/time';
const ENV = '/usr/bin/env';
/** The Node the shim's executable is built from (the node@24 devDependency, first on PATH under npm exec). */
export const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');

/** What the load suite needs beyond the runc suite's prerequisites. */
export function loadPrerequisites(): string | undefined {
  return skipOrFail('load suite', missingPrograms([GNU_TIME, ENV, NODE]));
}

export type Variant = 'shim' | 'runc';
/** One container's calls, in order, as containerd makes them (state as a CRI status poll does). */
export const LIFECYCLE = ['create', 'start', 'state', 'exec', 'kill', 'delete'] as const;
export type Command = (typeof LIFECYCLE)[number];

export interface Invocation {
  elapsedMs: number;
  /** GNU time's %M in KiB: the largest RSS of the process over its execve (shim then runc) and of its waited-for children. */
  maxRssKb: number | undefined;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The watchdog killed it: a hang, not a slow call. */
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

export interface Container {
  id: string;
  variant: Variant;
  bundle: string;
  calls: Partial<Record<Command, Invocation>>;
  /** config.json right after create: what the runtime was given. */
  createdConfig?: { additionalGids: unknown; annotations: Record<string, string> | undefined };
  /** From --pid-file, as containerd reads it. */
  pid?: number;
  /** The exec's process file, written just before the exec as containerd writes it: the ORIGINAL merged groups. */
  processFile?: string;
  /** pid 1 reaped the killed init before the delete (it is a zombie until then). */
  reaped?: boolean;
}

export interface LoadRunOptions {
  ws: Workspace;
  /** Unique on this machine: runc names the container's cgroups after its id, so ids of concurrent suites must not meet. */
  idPrefix: string;
  /** Per call: a call that takes longer is killed with its process group and recorded as timed out. */
  watchdogMs: number;
  /** How long a killed container's init may stay a zombie before the delete goes ahead anyway. */
  reapTimeoutMs: number;
}

export interface Stats {
  n: number;
  median: number;
  p95: number;
  max: number;
}

/** Median, nearest-rank p95 and max; NaN for no values. */
export function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { n, median: NaN, p95: NaN, max: NaN };
  const mid = n >> 1;
  const median = n % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { n, median, p95: sorted[Math.ceil(0.95 * n) - 1]!, max: sorted[n - 1]! };
}

/** Memory in use (MemTotal - MemAvailable, KiB), the peak per phase of the run. */
export class MemorySampler {
  /** Which phase later samples count for; 'all' counts every sample. */
  phase = 'idle';
  readonly peakUsedKb = new Map<string, number>();
  baselineUsedKb = NaN;
  private timer: NodeJS.Timeout | undefined;

  static usedKb(): number {
    const meminfo = readFileSync('/proc/meminfo', 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(meminfo)?.[1] ?? NaN);
    return field('MemTotal') - field('MemAvailable');
  }

  /** The median over `ms` of idle sampling, before the load. */
  async measureBaseline(ms: number, intervalMs: number): Promise<void> {
    const samples: number[] = [];
    for (let elapsed = 0; elapsed < ms; elapsed += intervalMs) {
      samples.push(MemorySampler.usedKb());
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    this.baselineUsedKb = stats(samples).median;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  private sample(): void {
    const used = MemorySampler.usedKb();
    for (const key of ['all', this.phase]) this.peakUsedKb.set(key, Math.max(this.peakUsedKb.get(key) ?? 0, used));
  }
}

/**
 * `/usr/bin/time -f %M -o FILE file args...` in its own process group, so the
 * watchdog can kill the whole call, runc and its children included. It starts
 * as `env -i`: tap's processinfo hook adds its NODE_OPTIONS (an --import of
 * its loader) and _TAPJS_* variables to the environment of every child a test
 * spawns, which would make `node -e 0` load tap's hooks.
 */
export function timedCall(
  file: string,
  args: readonly string[],
  options: { env: Record<string, string>; output: 'pipe' | number; watchdogMs: number; rssFile: string },
): Promise<Invocation> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const environment = Object.entries(options.env).map(([name, value]) => `${name}=${value}`);
    const child = spawn(ENV, ['-i', ...environment, GNU_TIME, '-f', '%M', '-o', options.rssFile, file, ...args], {
      detached: true,
      stdio: ['ignore', options.output, options.output],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const watchdog = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
      child.stdout?.destroy();
      child.stderr?.destroy();
    }, options.watchdogMs);
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, error?: Error): void => {
      clearTimeout(watchdog);
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      let maxRssKb: number | undefined;
      try {
        // A failing command adds "Command exited with non-zero status N" above the figure.
        const lastLine = readFileSync(options.rssFile, 'utf8').trim().split('\n').pop() ?? '';
        maxRssKb = /^\d+$/.test(lastLine) ? Number(lastLine) : undefined;
        unlinkSync(options.rssFile);
      } catch {
        // Killed before GNU time wrote it.
      }
      resolve({
        elapsedMs,
        maxRssKb,
        exitCode,
        signal,
        timedOut,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8') + (error ? String(error) : ''),
      });
    };
    child.on('error', (error) => finish(null, null, error));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/**
 * A load run in one workspace. Batches run in lockstep: every container of a
 * batch makes the same call at the same time and the next call starts when
 * all are back, so each figure is a call at a known concurrency and steps
 * never overlap. A batch's deletes wait for the next batch: this machine's
 * pid 1 reaps a killed container's init only ~2 s later, and deleting before
 * that finds the cgroup still busy (containerd's shim, a subreaper, reaps at
 * once). The wait is not counted in any variant's time.
 */
export class LoadRun {
  readonly containers: Container[] = [];
  /** `node -e 0` at the batches' concurrency. */
  readonly nodeStarts: Invocation[] = [];
  /** Time in steps of each kind; steps never overlap. */
  readonly busyMs: Record<Variant | 'node', number> = { shim: 0, runc: 0, node: 0 };
  reapWaitMs = 0;
  readonly memory = new MemorySampler();
  /** What every measured program is given, and nothing else. */
  readonly environment: Readonly<Record<string, string>>;
  /** Where the exec process files are written. */
  readonly processDir: string;
  private readonly options: LoadRunOptions;
  private readonly runc: string;
  private readonly metricsDir: string;
  /** The stdio of each create, which the container inherits: a pipe would stay open as long as it runs. */
  private readonly createStdioDir: string;
  private pendingDelete: Container[] = [];
  private sequence = 0;

  constructor(options: LoadRunOptions) {
    this.options = options;
    const { ws } = options;
    this.runc = programPath('runc');
    // The same small environment for every program, as in npm run bench.
    this.environment = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', STRICT_GROUPS_CONFIG: ws.configFile };
    // Outside every bundle, as containerd's runc-process* files are.
    this.processDir = join(ws.dir, 'exec-processes');
    this.metricsDir = join(ws.dir, 'rss');
    this.createStdioDir = join(ws.dir, 'create-stdio');
    mkdirSync(this.processDir);
    mkdirSync(this.metricsDir);
    mkdirSync(this.createStdioDir);
  }

  /** `count` containers with their own bundles (a seed-image rootfs running `sleep`). */
  prepare(variant: Variant, count: number): Container[] {
    const prepared: Container[] = [];
    for (let i = 0; i < count; i++) {
      const id = `${this.options.idPrefix}${variant}-${i}`;
      prepared.push({ id, variant, bundle: this.options.ws.bundle(id, { args: ['sleep', '300'] }), calls: {} });
    }
    this.containers.push(...prepared);
    return prepared;
  }

  /** Pages the shim, runc and Node into the page cache; nothing is recorded. */
  async warmUp(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      for (const file of [SHIM, this.runc]) await this.call(file, ['--version'], 'pipe');
      await this.call(NODE, ['-e', '0'], 'pipe');
    }
  }

  /** The environment a measured program gets, as `node` sees it. */
  async environmentSeen(): Promise<Record<string, string>> {
    return JSON.parse((await this.call(NODE, ['-p', 'JSON.stringify(process.env)'], 'pipe')).stdout);
  }

  /** `node -e 0`, one at a time on an otherwise idle run. */
  async serialNodeStarts(count: number): Promise<Invocation[]> {
    const starts: Invocation[] = [];
    for (let i = 0; i < count; i++) starts.push(await this.call(NODE, ['-e', '0'], 'pipe'));
    return starts;
  }

  /** `count` concurrent `node -e 0`, the bare start at the batches' concurrency. */
  async concurrentNodeStarts(count: number): Promise<void> {
    await this.timedStep('node', async () => {
      this.nodeStarts.push(...(await Promise.all(Array.from({ length: count }, () => this.call(NODE, ['-e', '0'], 'pipe')))));
    });
  }

  /** create, start, state, exec, kill for one batch; the previous batch's deletes in between. */
  async lifecycle(batch: readonly Container[]): Promise<void> {
    await this.step('create', batch, (c) => ['create', '--bundle', c.bundle, '--pid-file', join(c.bundle, 'init.pid'), c.id], 'file');
    const created = batch.filter((c) => c.calls.create?.exitCode === 0);
    for (const c of created) {
      c.createdConfig = readCreatedConfig(c.bundle);
      c.pid = Number(readFileSync(join(c.bundle, 'init.pid'), 'utf8'));
    }
    await this.step('start', created, (c) => ['start', c.id]);
    await this.step('state', created, (c) => ['state', c.id]);
    for (const c of created) c.processFile = processFile(this.processDir, ['id']);
    await this.step('exec', created, (c) => ['exec', '--process', c.processFile!, c.id]);
    await this.step('kill', created, (c) => ['kill', c.id, '9']);
    await this.deletePending();
    this.pendingDelete = created;
  }

  /** The last batch's deletes. */
  async finish(): Promise<void> {
    await this.deletePending();
  }

  private async deletePending(): Promise<void> {
    const batch = this.pendingDelete;
    this.pendingDelete = [];
    const started = Date.now();
    for (const c of batch) c.reaped = false;
    while (batch.some((c) => !c.reaped) && Date.now() - started < this.options.reapTimeoutMs) {
      for (const c of batch) c.reaped ||= c.pid === undefined || !existsSync(`/proc/${c.pid}`);
      if (batch.some((c) => !c.reaped)) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.reapWaitMs += Date.now() - started;
    await this.step('delete', batch, (c) => ['delete', c.id]);
  }

  /** One command for every container of a batch at once, through the batch's runtime. */
  private async step(command: Command, batch: readonly Container[], argsFor: (c: Container) => string[], output: 'pipe' | 'file' = 'pipe'): Promise<void> {
    const variant = batch[0]?.variant;
    if (variant === undefined) return;
    const file = variant === 'shim' ? SHIM : this.runc;
    await this.timedStep(variant, async () => {
      await Promise.all(
        batch.map(async (c) => {
          // containerd's global options: its --log file sits in the bundle.
          const global = ['--root', this.options.ws.stateRoot, '--log', join(c.bundle, 'log.json'), '--log-format', 'json'];
          if (output === 'pipe') {
            c.calls[command] = await this.call(file, [...global, ...argsFor(c)], 'pipe');
            return;
          }
          // Whatever the call wrote on its stdio, the container's, stands as both its outputs.
          const stdio = join(this.createStdioDir, c.id);
          const fd = openSync(stdio, 'w');
          try {
            const call = await this.call(file, [...global, ...argsFor(c)], fd);
            const written = readFileSync(stdio, 'utf8');
            c.calls[command] = { ...call, stdout: written, stderr: written };
          } finally {
            closeSync(fd);
          }
        }),
      );
    });
  }

  private async timedStep(kind: Variant | 'node', body: () => Promise<void>): Promise<void> {
    this.memory.phase = kind;
    const started = process.hrtime.bigint();
    try {
      await body();
    } finally {
      this.busyMs[kind] += Number(process.hrtime.bigint() - started) / 1e6;
      this.memory.phase = 'between';
    }
  }

  private call(file: string, args: string[], output: 'pipe' | number): Promise<Invocation> {
    const rssFile = join(this.metricsDir, `${this.sequence++}`);
    return timedCall(file, args, { env: this.environment, output, watchdogMs: this.options.watchdogMs, rssFile });
  }
}

/** The parts of config.json a create decides; a file that does not parse is recorded as such, for the test to report. */
function readCreatedConfig(bundle: string): NonNullable<Container['createdConfig']> {
  const path = join(bundle, 'config.json');
  try {
    const config = JSON.parse(readFileSync(path, 'utf8'));
    return { additionalGids: config.process?.user?.additionalGids, annotations: config.annotations };
  } catch (err) {
    return { additionalGids: `unreadable: ${String(err)}`, annotations: undefined };
  }
}

/** cgroup directories runc made for containers whose id starts with `idPrefix`, in every hierarchy. */
export function cgroupsLeft(idPrefix: string): string[] {
  return cgroupDirs((name) => name.startsWith(idPrefix));
}

/**
 * Leaves nothing, whatever state a failed run left: every container of the
 * workspace killed, reaped (or given up on), force-deleted, the files
 * removed, and any cgroup runc could not remove beside a zombie.
 */
export async function forceCleanup(ws: Workspace, idPrefix: string, reapTimeoutMs: number): Promise<void> {
  const root = ['--root', ws.stateRoot];
  const listed = await direct('runc', [...root, 'list', '--format', 'json']);
  const containers = (JSON.parse(listed.stdout || 'null') ?? []) as { id: string; pid: number }[];
  for (const { id } of containers) await direct('runc', [...root, 'kill', id, '9']);
  const started = Date.now();
  while (containers.some(({ pid }) => pid > 0 && existsSync(`/proc/${pid}`)) && Date.now() - started < reapTimeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await ws.cleanup();
  for (const dir of cgroupsLeft(idPrefix)) {
    try {
      rmdirSync(dir);
    } catch {
      // Still busy: its zombie outlived the wait.
    }
  }
}
