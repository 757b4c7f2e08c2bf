/**
 * The hostile image matrix (image-cases.ts) through the built shim in front
 * of real runc, each case a real bundle run with `id -G`. For every case:
 * - the container runs with exactly the pod's groups, or the create is
 *   refused with a message naming the file, config.json untouched and no
 *   container left;
 * - nothing outside the rootfs is opened: strace -y shows the path of every
 *   descriptor the shim opens before it becomes runc, and each one lies inside
 *   the rootfs or is among those it opens for a benign image in the same run;
 * - it ends: a watchdog kills a case that hangs, and the times are printed.
 */
import { execa } from 'execa';
import fse from 'fs-extra';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { REMOVED, SHIM, direct, makeBundle, prerequisites, skipOrFail, workspace, type Workspace } from '../helpers/oci';
import { IMAGE_CASES, POD_GROUPS, configGids, type ImageCase } from './image-cases';

/** Far above any case's time here (the slowest takes about a second). */
const WATCHDOG_MS = 60_000;
/** V8 reads these as its heap grows, whatever the image: the host's memory settings. */
const V8_OWN_READS = /^\/proc\/sys\/vm\//;

function stracePrerequisite(): string[] {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return [];
  } catch {
    return ['strace'];
  }
}

const skip = prerequisites('runc') ?? skipOrFail('hostile image suite', stracePrerequisite());

interface Traced {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Every path the shim held a descriptor for, before it exec'd the runtime. */
  opened: string[];
  ms: number;
}

/** The seed image, plainly: the measure of what the shim opens for any image. */
const BENIGN: ImageCase = {
  record: { area: 'baseline', tried: 'the seed image', outcome: 'the pod\'s groups' },
  passwd: 'alice:x:1000:1000::/:/bin/sh\n',
  group: 'group-in-image:x:50000:alice\n',
  imageGids: [50000],
  expect: 'pod-groups',
};

/** Runs the shim under strace: `runc run` of the bundle. */
async function tracedRun(ws: Workspace, bundle: string, id: string): Promise<Traced> {
  const trace = join(ws.dir, `${id}.strace`);
  const started = process.hrtime.bigint();
  const result = await execa(
    'strace',
    ['-qq', '-y', '-e', 'trace=open,openat,openat2,execve', '-e', 'status=successful', '-o', trace, SHIM, '--root', ws.stateRoot, 'run', '--bundle', bundle, id],
    { reject: false, env: { STRICT_GROUPS_CONFIG: ws.configFile }, stdin: 'ignore', timeout: WATCHDOG_MS },
  );
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.timedOut) throw new Error(`${id}: still running after ${WATCHDOG_MS} ms`);
  return {
    exitCode: result.exitCode,
    stdout: String(result.stdout),
    stderr: String(result.stderr),
    opened: openedBeforeHandOff(readFileSync(trace, 'utf8')),
    ms,
  };
}

/**
 * The descriptors' paths from strace -y lines such as
 * `openat(AT_FDCWD</x>, "/proc/self/fd/20/etc", O_RDONLY|O_PATH) = 21</bundle/rootfs/etc>`,
 * up to the second execve: the first starts the shim, the second is its hand-off.
 */
function openedBeforeHandOff(trace: string): string[] {
  const paths: string[] = [];
  let execs = 0;
  for (const line of trace.split('\n')) {
    if (line.startsWith('execve(') && ++execs === 2) break;
    const match = /^open(?:at2?)?\(.*\) = \d+<(.*)>$/.exec(line);
    if (match !== null) paths.push(match[1]!);
  }
  if (execs === 0) throw new Error(`no execve in the trace:\n${trace}`);
  return paths;
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + '/');
}

/** A path as it would be for any bundle and any run: bundle, pid and temp names abstracted. */
function normalized(path: string, bundle: string): string {
  const inBundle = within(path, bundle) ? '<bundle>' + path.slice(bundle.length) : path;
  return inBundle.replace(/^\/proc\/\d+\//, '/proc/<pid>/').replace(/\.strict-groups-\d+-[0-9a-z]+-\d+$/, '.strict-groups-<temp>');
}

function caseBundle(ws: Workspace, id: string, testCase: ImageCase): { bundle: string; rootfs: string; cleanup: () => void } {
  const bundle = makeBundle(join(ws.dir, id), { passwd: null, group: null, additionalGids: configGids(testCase), args: ['id', '-G'] });
  const rootfs = join(bundle, 'rootfs');
  if (testCase.passwd !== null) writeFileSync(join(rootfs, 'etc', 'passwd'), testCase.passwd);
  if (testCase.group !== null) writeFileSync(join(rootfs, 'etc', 'group'), testCase.group);
  const cleanup = testCase.build?.({ rootfs, bundle }) ?? (() => {});
  return { bundle, rootfs, cleanup };
}

t.test('hostile images', { skip: skip ?? false }, async (t) => {
  const ws = workspace('runc');
  t.teardown(() => ws.cleanup());
  const times: string[] = [];

  // What the shim opens outside the rootfs for a benign image: its own
  // configuration, the bundle, the audit log, the runtime, Node's start.
  const baseline = caseBundle(ws, 'benign', BENIGN);
  const benignRun = await tracedRun(ws, baseline.bundle, 'benign');
  t.equal(benignRun.stdout.trim(), POD_GROUPS, `the benign image runs: ${benignRun.stderr}`);
  const expected = new Set(benignRun.opened.filter((path) => !within(path, baseline.rootfs)).map((path) => normalized(path, baseline.bundle)));
  t.ok([...benignRun.opened].some((path) => within(path, join(baseline.rootfs, 'etc'))), 'the trace sees the rootfs reads');

  for (const [index, testCase] of IMAGE_CASES.entries()) {
    const { area, tried } = testCase.record;
    await t.test(`${area}: ${tried}`, async (t) => {
      const id = `hostile-${index}`;
      const { bundle, rootfs, cleanup } = caseBundle(ws, id, testCase);
      t.teardown(cleanup);
      const configBefore = readFileSync(join(bundle, 'config.json'));
      const run = await tracedRun(ws, bundle, id);
      times.push(`${run.ms.toFixed(0).padStart(6)} ms  ${area}: ${tried}`);

      if (testCase.expect === 'pod-groups') {
        t.equal(run.exitCode, 0, run.stderr);
        t.equal(run.stdout.trim(), POD_GROUPS, 'the pod\'s groups, exactly');
        const spec = fse.readJsonSync(join(bundle, 'config.json'));
        const imageOnly = configGids(testCase).filter((gid) => !POD_GROUPS.split(' ').includes(String(gid)));
        t.same(spec.annotations[REMOVED], imageOnly.join(','), 'the removal on record');
      } else {
        t.equal(run.exitCode, 1, 'refused');
        t.match(run.stderr, testCase.expect.refused, 'says which file and why');
        t.equal(run.stdout, '', 'nothing on stdout');
        t.same(readFileSync(join(bundle, 'config.json')), configBefore, 'config.json untouched');
        t.not((await direct('runc', ['--root', ws.stateRoot, 'state', id])).exitCode, 0, 'no container');
      }
      assertOpenedInside(t, run.opened, rootfs, bundle, expected);
    });
  }
  t.comment(`time per case (shim and runc run, under strace):\n${times.join('\n')}`);
});

function assertOpenedInside(t: Test, opened: readonly string[], rootfs: string, bundle: string, expected: ReadonlySet<string>): void {
  const outside = opened.filter((path) => !within(path, rootfs));
  t.same(outside.filter((path) => within(path, join(bundle, 'outside'))), [], 'no decoy outside the rootfs opened');
  const unexpected = outside.filter((path) => !expected.has(normalized(path, bundle)) && !V8_OWN_READS.test(path));
  t.same(unexpected, [], 'nothing else outside the rootfs opened');
}

