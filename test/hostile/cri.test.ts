/**
 * The CRI cases (cri-cases.ts) through the built shim in front of real runc.
 * For each: a container created and started as containerd-shim-runc-v2 does
 * it, with the case's socket variables in the runtime's environment; its
 * groups read from the kernel (/proc/<pid>/status of its init); an exec
 * whose process file carries the merged gids again, as containerd writes it;
 * the audit line's rule and reason; whether the stand-in was contacted. A
 * case still running after 60 s would fail.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FakeCri } from '../helpers/fake-cri';
import { direct, makeBundle, prerequisites, processFile, shim, workspace, type Workspace } from '../helpers/oci';
import { CONFIG_GIDS, CONTAINERD_ANNOTATIONS, CRI_CASES, GROUP, IMAGE_RULE, NATIVE, PRE_SHIM_CASE, type CriCase } from './cri-cases';

const WATCHDOG_MS = 60_000;
const skip = prerequisites('runc');

interface AuditEntry {
  id: string;
  rule: string;
  ruleReason: string;
  removed: number[];
}

function auditEntry(ws: Workspace, id: string): AuditEntry | undefined {
  return readFileSync(ws.auditLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditEntry).find((entry) => entry.id === id);
}

/** The supplementary groups in a /proc/<pid>/status text, as the kernel holds them (sorted). */
function kernelGroups(status: string): string {
  const line = status.split('\n').find((l) => l.startsWith('Groups:')) ?? '';
  return line.replace(/^Groups:\s*/, '').trim();
}

/** A unix socket file nobody listens on: its server was killed before it could remove it. */
function staleSocket(path: string): void {
  spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
}

async function withWatchdog<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${WATCHDOG_MS} ms`)), WATCHDOG_MS);
  });
  try {
    return await Promise.race([work, watchdog]);
  } finally {
    clearTimeout(timer);
  }
}

/** create, start, read the groups, exec with the merged gids, delete: what containerd-shim-runc-v2 makes the runtime do. */
async function lifecycle(ws: Workspace, id: string, annotations: Record<string, string>, env: Record<string, string>, via: 'shim' | 'runc') {
  const bundle = makeBundle(join(ws.dir, id), { group: GROUP, additionalGids: CONFIG_GIDS, args: ['sleep', '60'], annotations });
  const root = ['--root', ws.stateRoot];
  const runtime = via === 'shim' ? (args: string[]) => shim(ws, 'runc', args, { env, output: 'ignore' }) : (args: string[]) => direct('runc', args, { output: 'ignore' });
  const created = await runtime([...root, 'create', '--bundle', bundle, id]);
  if (created.exitCode !== 0) throw new Error(`create ${id} failed: ${created.stderr}`);
  const started = await runtime([...root, 'start', id]);
  if (started.exitCode !== 0) throw new Error(`start ${id} failed: ${started.stderr}`);
  const state = JSON.parse((await direct('runc', [...root, 'state', id])).stdout) as { pid: number };
  const container = kernelGroups(readFileSync(`/proc/${state.pid}/status`, 'utf8'));
  const exec = await shim(ws, 'runc', [...root, 'exec', '--process', processFile(ws.dir, ['cat', '/proc/self/status'], CONFIG_GIDS), id], { env });
  await direct('runc', [...root, 'delete', '--force', id]);
  return { container, exec: kernelGroups(exec.stdout), execStderr: exec.stderr };
}

t.test('CRI answers, good and bad', { skip: skip ?? false }, async (t) => {
  const ws = workspace('runc');
  t.teardown(() => ws.cleanup());
  const times: string[] = [];

  for (const [index, testCase] of CRI_CASES.entries()) {
    const { area, tried } = testCase.record;
    await t.test(`${area}: ${tried}`, async (t) => {
      const id = `cri-${index}`;
      const fake = testCase.cri === undefined ? undefined : await FakeCri.start(ws.dir, testCase.cri);
      t.teardown(() => fake?.stop());
      const socket = fake?.socket ?? join(ws.dir, `${id}.sock`);
      prepare(testCase, socket);

      const started = Date.now();
      const outcome = await withWatchdog(id, lifecycle(ws, id, { ...CONTAINERD_ANNOTATIONS, ...testCase.annotations }, testCase.env(socket), 'shim'));
      times.push(`${String(Date.now() - started).padStart(6)} ms  ${area}: ${tried}`);

      const expected = testCase.expect === 'native' ? NATIVE : IMAGE_RULE;
      t.equal(outcome.container, expected, 'the container\'s groups');
      t.equal(outcome.exec, expected, `the exec process's groups ${outcome.execStderr}`);
      t.notOk(outcome.container.split(' ').includes('50001'), 'the image-only gid never stays');
      const audit = auditEntry(ws, id);
      if (testCase.expect === 'native') {
        t.same([audit?.rule, audit?.removed], ['declared', [50001]], 'the audit line: the CRI decided');
      } else {
        t.equal(audit?.rule, 'image', 'the audit line: the image rule decided');
        t.match(audit?.ruleReason, testCase.expect.imageRule, 'and why');
      }
      if (fake !== undefined && !testCase.contacted) t.same([fake.connections, fake.asked], [0, []], 'the stand-in was never contacted');
      if (fake !== undefined && testCase.contacted) t.ok(fake.connections > 0 || fake.asked.length > 0, 'the stand-in was asked');
    });
  }

  await t.test(`${PRE_SHIM_CASE.record.area}: ${PRE_SHIM_CASE.record.tried}`, async (t) => {
    // Created by runc itself, as before the handler existed: no removal record.
    const fake = await FakeCri.start(ws.dir, { kind: 'grpc', answer: () => ({ code: 5, details: 'not asked' }) });
    t.teardown(() => fake.stop());
    const outcome = await withWatchdog('pre-shim', lifecycle(ws, 'pre-shim', CONTAINERD_ANNOTATIONS, { GRPC_ADDRESS: fake.socket }, 'runc'));
    const merged = CONFIG_GIDS.join(' ');
    t.equal(outcome.container, merged, 'the container has what containerd merged');
    t.equal(outcome.exec, merged, 'the exec gets the same, no fewer and no more');
    t.same(fake.asked, [], 'exec never asks the CRI');
  });

  t.comment(`time per case (create, start, exec, delete through the shim):\n${times.join('\n')}`);
});

function prepare(testCase: CriCase, socket: string): void {
  switch (testCase.prepare) {
    case 'chown-1234':
      chownSync(socket, 1234, 1234);
      break;
    case 'regular-file':
      writeFileSync(socket, '');
      break;
    case 'stale-socket':
      staleSocket(socket);
      break;
    case undefined:
      break;
  }
}
