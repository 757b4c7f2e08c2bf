/**
 * src/exec.ts: finding the container's state, and what an operator reads when
 * exec cannot find its container.
 */
import t from 'tap';
import { stateFromRoot } from '../../src/exec';
import { runtimeMessage } from '../../src/runtime-query';

t.test('runtimeMessage takes the message out of the runtime\'s error output', async (t) => {
  t.equal(runtimeMessage('time="2026-11-26T22:48:12Z" level=error msg="container does not exist"'), 'container does not exist', 'runc without --log: logrus text');
  t.equal(runtimeMessage('time="x" level=error msg="a \\"quoted\\" word"\n'), 'a "quoted" word', 'logrus escapes');
  t.equal(runtimeMessage('container does not exist'), 'container does not exist', 'runc with --log: the bare message');
  t.equal(runtimeMessage('error opening file `/run/crun/x/status`: No such file or directory\n\n'), 'error opening file `/run/crun/x/status`: No such file or directory', 'crun');
  t.equal(runtimeMessage('WARN something\ntime="t" level=error msg="last one"'), 'last one', 'the last line');
  t.equal(runtimeMessage(''), '');
});

t.test('stateFromRoot reads the runtime\'s own state files, or leaves it to the runtime', async (t) => {
  // runc 1.1 to 1.3 keep the bundle and the annotations as "key=value" labels in state.json.
  const runcState = (labels: unknown): string => JSON.stringify({ id: 'c1', init_process_pid: 7, config: { rootfs: '/r', labels } });
  const dir = t.testdir({
    runc: {
      c1: { 'state.json': runcState(['strict-groups.io/removed-gids=50000', 'x=y=z', 'bundle=/run/b1']) },
      nolabels: { 'state.json': JSON.stringify({ config: {} }) },
      nobundle: { 'state.json': runcState(['a=b']) },
      broken: { 'state.json': '{' },
    },
    crun: {
      c2: {
        status: JSON.stringify({ pid: 8, bundle: '/run/b2', rootfs: 'rootfs' }),
        'config.json': JSON.stringify({ ociVersion: '1.0.0', annotations: { 'strict-groups.io/removed-gids': '' } }),
      },
      bare: { status: JSON.stringify({ pid: 8, bundle: '/run/b3' }), 'config.json': JSON.stringify({}) },
      half: { status: JSON.stringify({ pid: 8, bundle: '/run/b4' }) },
    },
  });
  t.same(stateFromRoot('/usr/sbin/runc', `${dir}/runc`, 'c1'), { id: 'c1', bundle: '/run/b1', annotations: { 'strict-groups.io/removed-gids': '50000', x: 'y=z' } });
  t.same(stateFromRoot('/usr/bin/crun', `${dir}/crun`, 'c2'), { id: 'c2', bundle: '/run/b2', annotations: { 'strict-groups.io/removed-gids': '' } });
  t.same(stateFromRoot('/usr/bin/crun', `${dir}/crun`, 'bare'), { id: 'bare', bundle: '/run/b3', annotations: {} });
  t.same(stateFromRoot('runc', `${dir}/crun`, 'c2')?.bundle, '/run/b2', 'the layout decides, not the runtime\'s name');

  t.equal(stateFromRoot('runc', `${dir}/runc`, 'missing'), undefined, 'no such container: the runtime says so itself');
  t.equal(stateFromRoot('runc', `${dir}/crun`, 'half'), undefined, 'a layout it does not know: the runtime is asked');
  t.equal(stateFromRoot('/opt/kata-runtime', undefined, 'c1'), undefined, 'no --root and a runtime whose default root it does not know');
  for (const id of ['../c1', 'a/b', '..', '.', '', 'sp ace']) t.equal(stateFromRoot('runc', `${dir}/runc`, id), undefined, `id ${JSON.stringify(id)} is not one path component`);
  t.throws(() => stateFromRoot('runc', `${dir}/runc`, 'nolabels'), /config\.labels is not a list of strings/);
  t.throws(() => stateFromRoot('runc', `${dir}/runc`, 'nobundle'), /no bundle label/);
  t.throws(() => stateFromRoot('runc', `${dir}/runc`, 'broken'), /not valid JSON/);
});
