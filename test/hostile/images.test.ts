/**
 * The hostile image matrix (image-cases.ts) through the built shim in front
 * of every runc and crun build (runtime-builds.ts), each case a real bundle
 * run with `id -G`. For every case:
 * - the container runs with exactly the pod's groups, or the create is
 *   refused with a message naming the file, config.json untouched and no
 *   container left;
 * - nothing outside the rootfs is read: strace -y shows every file the shim
 *   opens before it becomes runc, with the path asked for and the path it
 *   resolved to. Every lookup in the image (through /proc/self/fd, one
 *   component at a time) resolves inside the rootfs; nothing names a path
 *   under the rootfs directly, as a read that follows links on the host
 *   would; and none of the host files the cases' links point at is opened;
 * - it ends: a watchdog kills a case that hangs, and the times are printed.
 */
import { execa } from 'execa';
import fse from 'fs-extra';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { REMOVED, SHIM, direct, missingPrograms, shimCommand, skipOrFail, workspace, type RuntimeBuild, type Workspace } from '../helpers/oci';
import { runtimeBuilds } from '../helpers/runtime-builds';
import { IMAGE_CASES, POD_GROUPS, configGids, type ImageCase } from './image-cases';

/** Far above any case's time here (the slowest takes about a second). */
const WATCHDOG_MS = 60_000;
/** Host files the cases' links point at, besides each case's decoys. */
const HOST_TARGETS = ['/etc/passwd', '/etc/group', '/dev/null', '/sys/kernel/notes'];

const straceMissing = skipOrFail('hostile image suite', missingPrograms(['strace']));

/** One successful open: the path asked for, the path the descriptor has. */
interface Opened {
  asked: string;
  resolved: string;
}

interface Traced {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Every file the shim opened, before it exec'd the runtime. */
  opened: Opened[];
  ms: number;
}

/** Runs the shim under strace: `<runtime> run` of the bundle. */
async function tracedRun(ws: Workspace, runtime: RuntimeBuild, bundle: string, id: string): Promise<Traced> {
  const trace = join(ws.dir, `${id}.strace`);
  const started = process.hrtime.bigint();
  // In a process group of its own: killing strace alone would leave a hung
  // shim behind, holding the pipes open.
  const child = execa(
    'strace',
    // Every thread (-f): an open on a libuv worker must not go unseen.
    ['-f', '-qq', '-y', '-e', 'trace=?open,openat,openat2,execve', '-e', 'status=successful', '-o', trace, ...shimCommand(runtime, ['--root', ws.stateRoot, 'run', '--bundle', bundle, id]).flat()],
    { reject: false, env: { STRICT_GROUPS_CONFIG: ws.configFile }, stdin: 'ignore', detached: true },
  );
  let hung = false;
  const watchdog = setTimeout(() => {
    hung = true;
    process.kill(-child.pid!, 'SIGKILL');
  }, WATCHDOG_MS);
  const result = await child.finally(() => clearTimeout(watchdog));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (hung) throw new Error(`${id}: still running after ${WATCHDOG_MS} ms`);
  return {
    exitCode: result.exitCode,
    stdout: String(result.stdout),
    stderr: String(result.stderr),
    opened: openedBeforeHandOff(readFileSync(trace, 'utf8')),
    ms,
  };
}

/**
 * The opens in strace -f -y lines such as
 * `123 openat(AT_FDCWD</x>, "/proc/self/fd/20/etc", O_RDONLY|O_PATH) = 21</bundle/rootfs/etc>`,
 * a call another thread interrupted joined from its `<unfinished ...>` and
 * `<... openat resumed>` lines, from the execve that starts the shim (after
 * whatever wrapping enters the runtime's root) to the shim's next execve,
 * its hand-off to the runtime, or to its end if it refused.
 */
function openedBeforeHandOff(trace: string): Opened[] {
  const opened: Opened[] = [];
  const unfinished = new Map<string, string>();
  const startsShim = `execve(${JSON.stringify(SHIM)}, `;
  let shimPid: string | undefined;
  for (const line of trace.split('\n')) {
    const [, pid, call] = /^(\d+) +(.*)$/.exec(line) ?? [];
    if (pid === undefined || call === undefined) continue;
    if (shimPid === undefined) {
      if (call.startsWith(startsShim)) shimPid = pid;
      continue;
    }
    // The hand-off: the first exec after the shim's own, whichever thread
    // strace shows it under (a process that execs with threads running may
    // be shown as the exec'ing thread, its old pid then "superseded"). The
    // shim starts no other program on these paths.
    if (call.startsWith('execve(') || call.startsWith('<... execve resumed>') || call.includes('superseded by execve')) return opened;
    const asked = /^open(?:at2?)?\((?:[^,"]*, )?"((?:[^"\\]|\\.)*)"/.exec(call)?.[1];
    if (call.endsWith('<unfinished ...>')) {
      if (asked !== undefined) unfinished.set(pid, asked);
      continue;
    }
    const resolved = /\) = \d+<(.*)>$/.exec(call)?.[1];
    if (resolved === undefined) continue;
    if (asked !== undefined) opened.push({ asked, resolved });
    else if (/^<\.\.\. open(?:at2?)? resumed>/.test(call)) opened.push({ asked: unfinished.get(pid) ?? '', resolved });
  }
  // A refusal: the shim never handed off.
  if (shimPid !== undefined) return opened;
  throw new Error(`no execve of the shim in the trace:\n${trace.slice(0, 4000)}`);
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + '/');
}

function caseBundle(ws: Workspace, id: string, testCase: ImageCase): { bundle: string; rootfs: string; cleanup: () => void } {
  const bundle = ws.bundle(id, { passwd: null, group: null, additionalGids: configGids(testCase), args: ['id', '-G'] });
  const rootfs = join(bundle, 'rootfs');
  if (testCase.passwd !== null) writeFileSync(join(rootfs, 'etc', 'passwd'), testCase.passwd);
  if (testCase.group !== null) writeFileSync(join(rootfs, 'etc', 'group'), testCase.group);
  const cleanup = testCase.build?.({ rootfs, bundle }) ?? (() => {});
  return { bundle, rootfs, cleanup };
}

for (const { label, build, skip } of runtimeBuilds('hostile image suite')) t.test(`hostile images: ${label}`, { skip: straceMissing ?? skip }, async (t) => {
  const runtime = build!;
  const ws = workspace(runtime, { ownCgroups: true });
  t.teardown(() => ws.cleanup());
  const times: string[] = [];

  for (const [index, testCase] of IMAGE_CASES.entries()) {
    const { area, tried } = testCase.record;
    await t.test(`${area}: ${tried}`, async (t) => {
      const id = `hostile-${index}`;
      const { bundle, rootfs, cleanup } = caseBundle(ws, id, testCase);
      t.teardown(cleanup);
      const configBefore = readFileSync(join(bundle, 'config.json'));
      const run = await tracedRun(ws, runtime, bundle, id);
      times.push(`${run.ms.toFixed(0).padStart(6)} ms  ${area}: ${tried}`);

      if (testCase.expect === 'pod-groups') {
        t.equal(run.exitCode, 0, run.stderr);
        t.equal(run.stdout.trim(), POD_GROUPS, 'the pod\'s groups, exactly');
        const spec = fse.readJsonSync(join(bundle, 'config.json'));
        const imageOnly = configGids(testCase).filter((gid) => !POD_GROUPS.split(' ').includes(String(gid)));
        t.same(spec.annotations[REMOVED], imageOnly.join(','), 'the removal on record');
        // What the shim found in the image, exactly: a gid it should not have
        // counted would change nothing above, as config.json does not hold it.
        const audit = readFileSync(ws.auditLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { id: string; imageGids: number[] });
        t.same(audit.find((entry) => entry.id === id)?.imageGids, [...testCase.imageGids].sort((a, b) => a - b), 'the image gids the shim found');
      } else {
        t.equal(run.exitCode, 1, 'refused');
        t.match(run.stderr, testCase.expect.refused, 'says which file and why');
        t.equal(run.stdout, '', 'nothing on stdout');
        t.same(readFileSync(join(bundle, 'config.json')), configBefore, 'config.json untouched');
        t.not((await direct(runtime, ['--root', ws.stateRoot, 'state', id])).exitCode, 0, 'no container');
      }
      assertReadInside(t, run.opened, rootfs, bundle);
    });
  }
  t.comment(`time per case (shim and ${runtime.label} run, under strace):\n${times.join('\n')}`);
});

function assertReadInside(t: Test, opened: readonly Opened[], rootfs: string, bundle: string): void {
  const lookups = opened.filter(({ asked }) => asked.startsWith('/proc/self/fd/'));
  t.ok(lookups.length > 0, 'the trace shows the lookups in the image');
  t.same(lookups.filter(({ resolved }) => !within(resolved, rootfs)), [], 'every lookup resolves inside the rootfs');
  t.same(opened.filter(({ asked }) => asked !== rootfs && within(asked, rootfs)), [], 'no rootfs path opened directly');
  const targets = opened.filter(({ resolved }) => within(resolved, join(bundle, 'outside')) || HOST_TARGETS.some((target) => within(resolved, target)));
  t.same(targets, [], 'no decoy or host file a link points at opened');
}
