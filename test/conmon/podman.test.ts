/**
 * conmon, CRI-O's runtime monitor, in front of the built shim, driven by
 * podman (test/helpers/podman.ts): Debian 12's podman 4.3.1 and conmon
 * 2.1.6, the shim handing off to Debian 12's runc and crun. The shim's node
 * configuration is at its default path, as conmon passes the runtime no
 * caller environment. Each case that the shim changes is run once without
 * it too (podman's --runtime the real runtime), so that it can fail.
 */
import t from 'tap';
import { MERGED_GROUPS, POLICY, SHIM, STRICT_GROUPS, programPath, type RuntimeName } from '../helpers/oci';
import { Podman, SEED_IMAGE, podmanPrerequisites } from '../helpers/podman';

/** What `id` shows in an exec process: podman's exec adds no primary gid to the groups. */
const EXEC_STRICT = 'uid=1000(alice) gid=1000(alice) groups=60000';
const EXEC_MERGED = 'uid=1000(alice) gid=1000(alice) groups=50000(group-in-image),60000';

for (const runtime of ['runc', 'crun'] as RuntimeName[]) {
  const skip = podmanPrerequisites(`conmon suite (${runtime})`, runtime);
  t.test(`podman 4.3 and conmon 2.1 in front of the shim and ${runtime} (bookworm)`, { skip: skip ?? false }, async (t) => {
    const podman = new Podman(runtime);
    t.teardown(() => podman.cleanup());
    await podman.loadSeedImage();
    const real = programPath(runtime);
    const pod = ['--user', '1000', '--group-add', '60000', ...podman.containerOptions()];

    t.test('Strict by the node default: the container\'s id shows no image gid', async (t) => {
      const viaShim = await podman.call(['run', '--rm', ...pod, SEED_IMAGE, 'id']);
      t.equal(viaShim.exitCode, 0, viaShim.stderr);
      t.equal(viaShim.stdout, STRICT_GROUPS);
      const entry = podman.audit().at(-1) ?? {};
      t.same(
        [entry['action'], entry['policy'], entry['policySource'], entry['removed'], entry['additionalGids']],
        ['create', 'Strict', 'node-default', [50000], [1000, 60000]],
        'audited where /etc/strict-groups/config.json says',
      );

      const control = await podman.call(['run', '--rm', ...pod, SEED_IMAGE, 'id'], { runtime: real });
      t.equal(control.stdout, MERGED_GROUPS, `without the shim, ${runtime} gives the image gid`);
    });

    t.test('podman exec: the exec process loses the image gid too', async (t) => {
      const started = await podman.call(['run', '--detach', '--name', 'exec-strict', ...pod, SEED_IMAGE, 'sleep', '300']);
      t.equal(started.exitCode, 0, started.stderr);
      const exec = await podman.call(['exec', 'exec-strict', 'id']);
      t.equal(exec.exitCode, 0, exec.stderr);
      t.equal(exec.stdout, EXEC_STRICT);

      // podman keeps a container's runtime for its execs, so the control is a
      // container of the real runtime: conmon's process file carries the
      // image gid again, which only the shim takes away.
      const control = await podman.call(['run', '--detach', '--name', 'exec-control', ...pod, SEED_IMAGE, 'sleep', '300'], { runtime: real });
      t.equal(control.exitCode, 0, control.stderr);
      const controlExec = await podman.call(['exec', 'exec-control', 'id']);
      t.equal(controlExec.stdout, EXEC_MERGED, `without the shim, ${runtime} exec gives the image gid`);
    });

    t.test('Merge by annotation (podman --annotation): the image gid stays', async (t) => {
      const merge = await podman.call(['run', '--rm', '--annotation', `${POLICY}=Merge`, ...pod, SEED_IMAGE, 'id']);
      t.equal(merge.exitCode, 0, merge.stderr);
      t.equal(merge.stdout, MERGED_GROUPS);
      const entry = podman.audit().at(-1) ?? {};
      t.same([entry['policy'], entry['policySource'], entry['removed']], ['Merge', 'annotation', []]);
    });

    t.test('an invalid annotation: the create fails with the shim\'s message, as podman shows it', async (t) => {
      const before = podman.audit().length;
      const invalid = await podman.call(['run', '--rm', '--name', 'invalid', '--annotation', `${POLICY}=bogus`, ...pod, SEED_IMAGE, 'id']);
      t.not(invalid.exitCode, 0);
      t.equal(invalid.stdout, '', 'the container never ran');
      // conmon relays the runtime's stderr; podman prefixes the runtime's path.
      t.equal(
        invalid.stderr.split('\n').find((line) => line.startsWith('Error: ')),
        `Error: OCI runtime error: ${SHIM}: strict-groups: invalid pod annotation ${POLICY}="bogus": want "Strict", "Merge" or "Audit"`,
      );
      t.equal(podman.audit().length, before, 'no create was audited');
      t.not((await podman.call(['container', 'exists', 'invalid'])).exitCode, 0, 'podman removed it (--rm)');
    });
  });
}
