/**
 * Load: 200 containers through the shim in front of the real runc, in lockstep
 * batches on this 2-CPU machine, each created, started, polled, exec'd with
 * containerd's process file (the ORIGINAL merged groups), killed and deleted,
 * and every one checked for the strict groups. 40 more through plain runc,
 * interleaved, are the control: they must show the merged groups (so the
 * checks can fail) and give the baseline. Wall time, per-call cost against a
 * bare Node start in the same run, and memory are reported; speed is never
 * asserted.
 */
import fse from 'fs-extra';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import {
  LIFECYCLE, LoadRun, NODE, cgroupsLeft, forceCleanup, loadPrerequisites, stats,
  type Command, type Container, type Invocation, type Variant,
} from '../helpers/load';
import { MERGED_GROUPS, REMOVED, SEED_GIDS, STRICT_GROUPS, direct, prerequisites, workspace } from '../helpers/oci';

const SHIM_CONTAINERS = 200;
const CONTROL_CONTAINERS = 40;
/**
 * 10 concurrent calls on 2 CPUs: five runnable processes per CPU, so creates,
 * execs and audit appends really overlap, as in a burst of pod starts, while
 * a call's latency is still mostly its own work rather than queueing, and ten
 * Node processes at once are far from this machine's memory. 10 divides both
 * counts.
 */
const BATCH = 10;
const IDLE_NODE_STARTS = 10;
/** Generous: a call takes well under a second here; only a hang reaches it. */
const WATCHDOG_MS = 60_000;
const REAP_TIMEOUT_MS = 15_000;
const SAMPLE_MS = 100;

interface Expected {
  configGids: number[];
  removed: string | undefined;
  exec: string;
  processGids: number[];
}
const EXPECTED: Record<Variant, Expected> = {
  shim: { configGids: [1000, 60000], removed: '50000', exec: STRICT_GROUPS, processGids: [1000, 60000] },
  runc: { configGids: SEED_GIDS, removed: undefined, exec: MERGED_GROUPS, processGids: SEED_GIDS },
};
/** All a bundle may hold afterwards: its own files and containerd's --pid-file and --log. */
const BUNDLE_ENTRIES = new Set(['config.json', 'rootfs', 'init.pid', 'log.json']);

/** One check over every container: the ids it fails for, with what was found instead. */
type Check = (c: Container) => string | undefined;

const checks: Record<string, Check> = {
  'every call ran, exited 0 with nothing on stderr (create: nothing on the container\'s stdio), none hung': (c) => {
    const bad = LIFECYCLE.map((command) => [command, c.calls[command]] as const)
      .filter(([, call]) => call === undefined || call.timedOut || call.exitCode !== 0 || call.stderr !== '')
      .map(([command, call]) =>
        call === undefined ? `${command} not run` : `${command} ${call.timedOut ? 'hung' : `exited ${call.exitCode ?? call.signal}`}: ${call.stderr.trim()}`,
      );
    return bad.length > 0 ? bad.join('; ') : undefined;
  },
  'config.json after create: the expected additionalGids and removal record': (c) => {
    const expected = EXPECTED[c.variant];
    const got = { additionalGids: c.createdConfig?.additionalGids, removed: c.createdConfig?.annotations?.[REMOVED] };
    return JSON.stringify(got) === JSON.stringify({ additionalGids: expected.configGids, removed: expected.removed }) ? undefined : JSON.stringify(got);
  },
  'state while running: status running, the --pid-file pid': (c) => {
    let state: { status?: unknown; pid?: unknown } = {};
    try {
      state = JSON.parse(c.calls.state?.stdout ?? '');
    } catch {
      return `not JSON: ${c.calls.state?.stdout}`;
    }
    return state.status === 'running' && state.pid === c.pid ? undefined : `${String(state.status)} pid ${String(state.pid)} (pid file ${c.pid})`;
  },
  'exec printed the expected id': (c) => (c.calls.exec?.stdout.trim() === EXPECTED[c.variant].exec ? undefined : JSON.stringify(c.calls.exec?.stdout)),
  'exec process file afterwards: the expected additionalGids': (c) => {
    const gids = c.processFile === undefined ? undefined : fse.readJsonSync(c.processFile).user.additionalGids;
    return JSON.stringify(gids) === JSON.stringify(EXPECTED[c.variant].processGids) ? undefined : JSON.stringify(gids);
  },
  'killed init exited (and was reaped) before the delete': (c) => (c.reaped === true ? undefined : `pid ${c.pid} still there`),
  'nothing logged to the --log file': (c) => {
    const log = join(c.bundle, 'log.json');
    const content = existsSync(log) ? readFileSync(log, 'utf8') : '';
    return content === '' ? undefined : content.trim();
  },
  'bundle holds nothing else (no temporary file left)': (c) => {
    const extra = readdirSync(c.bundle).filter((entry) => !BUNDLE_ENTRIES.has(entry));
    return extra.length === 0 ? undefined : extra.join(', ');
  },
};

function failures(containers: readonly Container[], check: Check): string[] {
  return containers.flatMap((c) => {
    const problem = check(c);
    return problem === undefined ? [] : [`${c.id}: ${problem}`];
  });
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

const skip = [prerequisites('runc'), loadPrerequisites()].filter((reason) => reason !== undefined).join('; ');

t.test(`${SHIM_CONTAINERS} containers through the shim, ${CONTROL_CONTAINERS} through plain runc, batches of ${BATCH}`, { skip: skip || false }, async (t) => {
  const ws = workspace('runc');
  const idPrefix = `sg-load-${process.pid}-`;
  t.teardown(() => forceCleanup(ws, idPrefix, REAP_TIMEOUT_MS));

  const run = new LoadRun({ ws, idPrefix, watchdogMs: WATCHDOG_MS, reapTimeoutMs: REAP_TIMEOUT_MS });
  const shimContainers = run.prepare('shim', SHIM_CONTAINERS);
  const controlContainers = run.prepare('runc', CONTROL_CONTAINERS);
  await run.warmUp();
  t.same(await run.environmentSeen(), run.environment, 'measured programs get exactly the given environment (no NODE_OPTIONS from tap)');
  const idleNodeStarts = await run.serialNodeStarts(IDLE_NODE_STARTS);

  const loadAverageBefore = loadAverage();
  await run.memory.measureBaseline(1000, SAMPLE_MS);
  run.memory.start(SAMPLE_MS);
  const loadStarted = Date.now();
  try {
    // A round of bare Node starts after every shim batch and the control
    // batches spread evenly among them, so that drift and whatever else runs
    // on the machine hit all three alike.
    const shimBatches = chunks(shimContainers, BATCH);
    const controlBatches = chunks(controlContainers, BATCH);
    const controlAfter = new Map(controlBatches.map((batch, j) => [Math.floor(((j + 0.5) * shimBatches.length) / controlBatches.length), batch]));
    for (const [i, batch] of shimBatches.entries()) {
      await run.lifecycle(batch);
      await run.concurrentNodeStarts(BATCH);
      const control = controlAfter.get(i);
      if (control !== undefined) await run.lifecycle(control);
    }
    await run.finish();
  } finally {
    run.memory.stop();
  }
  const loadMs = Date.now() - loadStarted;

  t.comment(report(run, idleNodeStarts, loadMs, [loadAverageBefore, loadAverage()]));

  for (const [variant, containers, count] of [['shim', shimContainers, SHIM_CONTAINERS], ['runc', controlContainers, CONTROL_CONTAINERS]] as const) {
    t.test(variant === 'shim' ? 'through the shim: every container strict' : 'through plain runc (control): every container merged', async (t) => {
      t.equal(containers.length, count, 'every container was run');
      for (const [name, check] of Object.entries(checks)) t.same(failures(containers, check), [], name);
      if (variant === 'shim') {
        const leaked = containers.filter((c) => /\b50000\b/.test(c.calls.exec?.stdout ?? ''));
        t.same(leaked.map((c) => c.id), [], 'no exec through the shim saw the image gid 50000');
      } else {
        t.equal(containers.filter((c) => c.calls.exec?.stdout.includes('50000(group-in-image)')).length, count, 'every control exec saw 50000: the checks discriminate');
      }
    });
  }

  t.test('one whole audit line per shim create, none for the control', async (t) => {
    const lines = readFileSync(ws.auditLog, 'utf8').split('\n').filter((line) => line !== '');
    const entries: { id?: unknown; removed?: unknown; additionalGids?: unknown }[] = [];
    const unreadable = lines.filter((line) => {
      try {
        entries.push(JSON.parse(line));
        return false;
      } catch {
        return true;
      }
    });
    t.same(unreadable, [], 'every line is whole JSON (concurrent appends did not interleave)');
    t.same(entries.map((entry) => entry.id).sort(), shimContainers.map((c) => c.id).sort(), 'exactly the shim containers, once each');
    const wrong = entries.filter((entry) => JSON.stringify([entry.removed, entry.additionalGids]) !== JSON.stringify([[50000], [1000, 60000]]));
    t.same(wrong, [], 'each records 50000 removed and 1000, 60000 kept');
  });

  t.test('nothing left behind', async (t) => {
    const listed = await direct('runc', ['--root', ws.stateRoot, 'list', '-q']);
    t.equal(listed.stdout.trim(), '', 'runc list: no container left');
    t.same(cgroupsLeft(idPrefix), [], 'no container cgroup left');
    const written = run.containers.flatMap((c) => (c.processFile === undefined ? [] : [basename(c.processFile)])).sort();
    t.equal(written.length, SHIM_CONTAINERS + CONTROL_CONTAINERS, 'every container had an exec process file');
    t.same(readdirSync(run.processDir).sort(), written, 'process file directory: no temporary file left');
  });
});

/** The 1-minute load average: other work on the machine skews every figure, and shows here. */
function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
}

/** The figures, as aligned text for t.comment. */
function report(run: LoadRun, idleNodeStarts: readonly Invocation[], loadMs: number, loadAverages: [string, string]): string {
  const ms = (value: number): string => `${value.toFixed(1)} ms`;
  const mb = (kib: number): string => `${(kib / 1024).toFixed(1)}`;
  const calls = (variant: Variant, command: Command): Invocation[] =>
    run.containers.filter((c) => c.variant === variant).flatMap((c) => c.calls[command] ?? []);
  const time = (invocations: readonly Invocation[]): ReturnType<typeof stats> => stats(invocations.map((call) => call.elapsedMs));
  const rss = (invocations: readonly Invocation[]): string => {
    const s = stats(invocations.flatMap((call) => call.maxRssKb ?? []));
    return `${mb(s.median)} / ${mb(s.max)}`;
  };
  const bareNode = time(run.nodeStarts);
  const count = (variant: Variant): number => run.containers.filter((c) => c.variant === variant).length;
  const wall = (variant: Variant): string => `${(run.busyMs[variant] / 1000).toFixed(1)} s, ${((count(variant) * 1000) / run.busyMs[variant]).toFixed(1)} containers/s`;

  const header = ['command', 'runc med / p95', 'shim med / p95', 'extra (med)', 'extra / bare Node', 'maxRSS MB runc med / max', 'shim med / max'];
  const rows = LIFECYCLE.map((command) => {
    const [runc, shim] = [calls('runc', command), calls('shim', command)];
    const extra = time(shim).median - time(runc).median;
    return [
      command,
      `${ms(time(runc).median)} / ${ms(time(runc).p95)}`,
      `${ms(time(shim).median)} / ${ms(time(shim).p95)}`,
      ms(extra),
      (extra / bareNode.median).toFixed(2),
      rss(runc),
      rss(shim),
    ];
  });
  rows.push(['node -e 0', '', `${ms(bareNode.median)} / ${ms(bareNode.p95)}`, '', '1.00', '', rss(run.nodeStarts)]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => row[i]!.length)));
  const table = [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ').trimEnd());

  const peak = (phase: string): string => {
    // Machine-wide: memory others free meanwhile can put a peak below the baseline.
    const delta = (run.memory.peakUsedKb.get(phase) ?? NaN) - run.memory.baselineUsedKb;
    return `${delta >= 0 ? '+' : ''}${mb(delta)} MB`;
  };
  const nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  const nodeVersion = execFileSync(NODE, ['--version'], { encoding: 'utf8' }).trim();
  return [
    `load: ${count('shim')} containers through the shim, ${count('runc')} through plain runc, lockstep batches of ${BATCH} (${nproc} CPUs); bare Node: ${NODE} ${nodeVersion}`,
    `wall time of each runtime's steps: shim ${wall('shim')}; runc ${wall('runc')}; whole load ${(loadMs / 1000).toFixed(1)} s, of which waiting for pid 1 to reap ${(run.reapWaitMs / 1000).toFixed(1)} s`,
    `bare node -e 0: ${ms(bareNode.median)} median at ${BATCH} concurrent (${bareNode.n} starts), ${ms(stats(idleNodeStarts.map((call) => call.elapsedMs)).median)} alone; every figure includes the exec of env and GNU time`,
    `per call at ${BATCH} concurrent (maxRSS: GNU time %M, max over shim and runc across execve):`,
    ...table.map((line) => `  ${line}`),
    `1-minute load average: ${loadAverages[0]} before, ${loadAverages[1]} after`,
    `machine memory in use: baseline ${mb(run.memory.baselineUsedKb)} MB; peak ${peak('all')} (during shim steps ${peak('shim')}, runc steps ${peak('runc')}, node starts ${peak('node')})`,
  ].join('\n');
}
