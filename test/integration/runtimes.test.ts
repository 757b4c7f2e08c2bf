/**
 * The shim in front of the real runc and crun on real bundles, every build
 * (runtime-builds.ts): the seed case under Strict and Merge, the node
 * default, exec, and passthrough commands compared with the runtime itself.
 */
import fse from 'fs-extra';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  MERGED_GROUPS, POLICY, REMOVED, STRICT_GROUPS,
  direct, processFile, shim, workspace,
} from '../helpers/oci';
import { runtimeBuilds } from '../helpers/runtime-builds';

for (const { label, build, skip } of runtimeBuilds('runtimes suite')) {
  t.test(label, { skip }, async (t) => {
    const runtime = build!;
    const ws = workspace(runtime, { ownCgroups: true });
    t.teardown(() => ws.cleanup());
    const root = ['--root', ws.stateRoot];

    t.test('seed case under Strict: the image gid is gone and recorded', async (t) => {
      const bundle = ws.bundle('strict', { annotations: { [POLICY]: 'Strict' } });
      const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'strict']);
      t.equal(result.exitCode, 0, result.stderr);
      t.equal(result.stdout.trim(), STRICT_GROUPS);
      t.equal(result.stderr, '', 'nothing printed on success');
      const config = fse.readJsonSync(join(bundle, 'config.json'));
      t.same(config.process.user.additionalGids, [1000, 60000]);
      t.equal(config.annotations[REMOVED], '50000');
      const audit = readFileSync(ws.auditLog, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
      const entry = audit.find((line) => line.id === 'strict');
      t.same(
        [entry.action, entry.policy, entry.policySource, entry.rule, entry.ruleReason, entry.imageGids, entry.removed, entry.additionalGids],
        ['run', 'Strict', 'annotation', 'image', 'not a CRI container (no CRI annotations in config.json)', [50000], [50000], [1000, 60000]],
        'audit line',
      );
    });

    t.test('seed case under Merge: the gids stay; config.json changes only by the decision record', async (t) => {
      const bundle = ws.bundle('merge', { annotations: { [POLICY]: 'Merge' } });
      const before = fse.readJsonSync(join(bundle, 'config.json'));
      const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'merge']);
      t.equal(result.exitCode, 0, result.stderr);
      t.equal(result.stdout.trim(), MERGED_GROUPS);
      const after = fse.readJsonSync(join(bundle, 'config.json'));
      const decision = JSON.parse(after.annotations['strict-groups.io/decision']);
      t.same(decision, { policy: 'Merge', policySource: 'annotation', rule: 'none', ruleReason: 'Merge keeps every gid' }, 'the decision on record');
      delete after.annotations['strict-groups.io/decision'];
      t.same(after, before, 'nothing else changed');
    });

    t.test('seed case under Audit: the gids stay, exec keeps them, what Strict would remove is on record', async (t) => {
      const bundle = ws.bundle('audit', { annotations: { [POLICY]: 'Audit' }, args: ['sleep', '60'] });
      const created = await shim(ws, runtime, [...root, 'create', '--bundle', bundle, 'audit'], { output: 'ignore' });
      t.equal(created.exitCode, 0, created.stderr);
      const exec = await shim(ws, runtime, [...root, 'exec', '--process', processFile(ws.dir, ['id']), 'audit']);
      t.equal(exec.stdout.trim(), MERGED_GROUPS, 'the exec process keeps the image gid');
      const config = fse.readJsonSync(join(bundle, 'config.json'));
      t.same(config.process.user.additionalGids, [1000, 50000, 60000], 'config.json keeps the gids');
      t.equal(config.annotations[REMOVED], undefined, 'no removal record for exec');
      t.match(JSON.parse(config.annotations['strict-groups.io/decision']), { policy: 'Audit', rule: 'image', wouldRemove: [50000] });
      const audit = readFileSync(ws.auditLog, 'utf8').trim().split('\n').map((line) => JSON.parse(line)).find((line) => line.id === 'audit');
      t.same([audit.policy, audit.removed, audit.wouldRemove], ['Audit', [], [50000]], 'audit line');
      await direct(runtime, [...root, 'delete', '--force', 'audit']);
    });

    t.test('pod without runAsUser: root\'s image groups, which containerd merged, go too', async (t) => {
      // containerd looks up uid 0 when the pod sets no runAsUser; the process
      // runs as the image's USER 1000 with root's memberships (disk, 6).
      const bundle = ws.bundle('no-run-as-user', {
        group: 'root:x:0:\ndisk:x:6:root\nalice:x:1000:\n',
        additionalGids: [1000, 6, 60000],
        args: ['id', '-G'],
      });
      const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'no-run-as-user']);
      t.equal(result.exitCode, 0, result.stderr);
      t.equal(result.stdout.trim(), '1000 60000');
      t.equal(fse.readJsonSync(join(bundle, 'config.json')).annotations[REMOVED], '6');
    });

    t.test('no annotation: the node default applies', async (t) => {
      const strict = ws.bundle('default-strict');
      const r1 = await shim(ws, runtime, [...root, 'run', '--bundle', strict, 'default-strict']);
      t.equal(r1.stdout.trim(), STRICT_GROUPS, 'default policy is Strict');

      ws.configure({ defaultPolicy: 'Merge' });
      t.teardown(() => ws.configure({}));
      const merge = ws.bundle('default-merge');
      const r2 = await shim(ws, runtime, [...root, 'run', '--bundle', merge, 'default-merge']);
      t.equal(r2.stdout.trim(), MERGED_GROUPS, 'defaultPolicy Merge');
    });

    t.test('allowPolicyOverride false: the node default wins over the annotation', async (t) => {
      ws.configure({ defaultPolicy: 'Strict', allowPolicyOverride: false });
      t.teardown(() => ws.configure({}));
      const bundle = ws.bundle('enforced', { annotations: { [POLICY]: 'Merge' } });
      const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'enforced']);
      t.equal(result.stdout.trim(), STRICT_GROUPS);
    });

    t.test('flags after the container id: read as the runtime reads them', async (t) => {
      const bundle = ws.bundle('late-flags');
      const args = [...root, 'run', 'late-flags', '--bundle', bundle];
      const result = await shim(ws, runtime, args);
      if (runtime.name === 'runc') {
        t.equal(result.exitCode, 0, result.stderr);
        t.equal(result.stdout.trim(), STRICT_GROUPS);
      } else {
        // crun parses options in order and refuses this form outright.
        const real = await direct(runtime, args);
        t.not(real.exitCode, 0);
        t.equal(result.exitCode, real.exitCode);
        t.equal(result.stderr, real.stderr);
      }
    });

    t.test('exec --process: the exec process loses the same gids', async (t) => {
      const bundle = ws.bundle('exec-strict', { args: ['sleep', '300'] });
      const created = await shim(ws, runtime, [...root, 'create', '--bundle', bundle, 'exec-strict'], { output: 'ignore' });
      t.equal(created.exitCode, 0, created.stderr);
      t.equal((await shim(ws, runtime, [...root, 'start', 'exec-strict'])).exitCode, 0);

      const file = processFile(ws.dir, ['id']);
      const exec = await shim(ws, runtime, [...root, 'exec', '--process', file, 'exec-strict']);
      t.equal(exec.exitCode, 0, exec.stderr);
      t.equal(exec.stdout.trim(), STRICT_GROUPS);
      t.same(fse.readJsonSync(file).user.additionalGids, [1000, 60000], 'process file rewritten');

      // A process that never had the image gid is left alone, byte for byte.
      const clean = processFile(ws.dir, ['id'], [1000, 60000]);
      const before = readFileSync(clean);
      t.equal((await shim(ws, runtime, [...root, 'exec', '-p', clean, 'exec-strict'])).stdout.trim(), STRICT_GROUPS);
      t.same(readFileSync(clean), before);
    });

    t.test('exec into a Merge container keeps the groups', async (t) => {
      const bundle = ws.bundle('exec-merge', { args: ['sleep', '300'], annotations: { [POLICY]: 'Merge' } });
      await shim(ws, runtime, [...root, 'create', '--bundle', bundle, 'exec-merge'], { output: 'ignore' });
      await shim(ws, runtime, [...root, 'start', 'exec-merge']);
      const exec = await shim(ws, runtime, [...root, 'exec', '--process', processFile(ws.dir, ['id']), 'exec-merge']);
      t.equal(exec.stdout.trim(), MERGED_GROUPS);
    });

    t.test('passthrough commands match the runtime: stdout and exit code', async (t) => {
      const bundle = ws.bundle('passthrough', { args: ['sleep', '300'] });
      await shim(ws, runtime, [...root, 'create', '--bundle', bundle, 'passthrough'], { output: 'ignore' });
      const cases: string[][] = [
        ['state', 'passthrough'],
        ['list', '-q'],
        ['state', 'no-such-container'],
        ['--version'],
        ['no-such-command'],
      ];
      for (const args of cases) {
        const [viaShim, real] = await Promise.all([shim(ws, runtime, [...root, ...args]), direct(runtime, [...root, ...args])]);
        t.equal(viaShim.exitCode, real.exitCode, `${args.join(' ')}: exit code`);
        t.equal(viaShim.stdout, real.stdout, `${args.join(' ')}: stdout`);
      }
      t.equal((await shim(ws, runtime, [...root, 'kill', 'passthrough', 'KILL'])).exitCode, 0, 'kill');
      const deleted = await shim(ws, runtime, [...root, 'delete', '--force', 'passthrough']);
      t.equal(deleted.exitCode, 0, 'delete');
      t.not((await direct(runtime, [...root, 'state', 'passthrough'])).exitCode, 0, 'container gone');
    });

    t.test('the exact command lines of containerd-shim-runc-v2 and conmon: the kernel shows the groups', async (t) => {
      // Detached, as these callers run them: the groups are read from the
      // processes' /proc status, where the kernel keeps them.
      const groupsOf = (pidFile: string): string =>
        /^Groups:\t(.*)$/m.exec(readFileSync(`/proc/${readFileSync(pidFile, 'utf8').trim()}/status`, 'utf8'))?.[1]?.trim() ?? '';

      const shimBundle = ws.bundle('containerd-form', { args: ['sleep', '300'] });
      const shimLine = [
        '--root', ws.stateRoot, '--log', join(shimBundle, 'log.json'), '--log-format', 'json',
        'create', '--bundle', shimBundle, '--pid-file', join(shimBundle, 'init.pid'), '--no-new-keyring', 'containerd-form',
      ];
      const created = await shim(ws, runtime, shimLine, { output: 'ignore' });
      t.equal(created.exitCode, 0, created.stderr);
      t.equal(groupsOf(join(shimBundle, 'init.pid')), '1000 60000', 'containerd form: create');
      const shimExec = [
        '--root', ws.stateRoot, '--log', join(shimBundle, 'log.json'), '--log-format', 'json',
        'exec', '--process', processFile(ws.dir, ['sleep', '300']), '--detach', '--pid-file', join(shimBundle, 'exec.pid'), 'containerd-form',
      ];
      const execed = await shim(ws, runtime, shimExec, { output: 'ignore' });
      t.equal(execed.exitCode, 0, execed.stderr);
      t.equal(groupsOf(join(shimBundle, 'exec.pid')), '1000 60000', 'containerd form: exec --process');

      const conmonBundle = ws.bundle('conmon-form', { args: ['sleep', '300'] });
      const conmonRoot = `--root=${ws.stateRoot}`;
      const conmonCreate = [conmonRoot, 'create', '--bundle', conmonBundle, '--pid-file', join(conmonBundle, 'pidfile'), 'conmon-form'];
      const conmonCreated = await shim(ws, runtime, conmonCreate, { output: 'ignore' });
      t.equal(conmonCreated.exitCode, 0, conmonCreated.stderr);
      t.equal(groupsOf(join(conmonBundle, 'pidfile')), '1000 60000', 'conmon form: create');
      const conmonExec = [conmonRoot, 'exec', '--pid-file', join(conmonBundle, 'exec_pid'), '--process', processFile(ws.dir, ['sleep', '300']), '--detach', 'conmon-form'];
      const conmonExeced = await shim(ws, runtime, conmonExec, { output: 'ignore' });
      t.equal(conmonExeced.exitCode, 0, conmonExeced.stderr);
      t.equal(groupsOf(join(conmonBundle, 'exec_pid')), '1000 60000', 'conmon form: exec --process');
    });

    t.test("the container's exit code comes back unchanged", async (t) => {
      const bundle = ws.bundle('exit7', { args: ['sh', '-c', 'exit 7'] });
      const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'exit7']);
      t.equal(result.exitCode, 7);
    });
  });
}
