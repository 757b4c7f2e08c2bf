/**
 * The installer DaemonSet's pure parts and decisions: the Node Feature
 * Discovery feature file (read back as nfd-worker's local source reads it),
 * the version record, when the CRI runtime is restarted and with what, and
 * the daemonset command line. The whole flow, through the release image and
 * real runc, is test/release/release.test.ts.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FEATURE_FILE, HANDLER_LABEL, VERSION_LABEL, featureFile, isLabelValue, nodeLabels } from '../../src/install/advertise';
import { parseDaemonSetArgs } from '../../src/install/daemon';
import { Host } from '../../src/install/host';
import { installedRecord } from '../../src/install/installed-record';
import { RESTART_PENDING, restartIfNeeded, restartNeeded, systemctlTryRestart } from '../../src/install/restart';

/** nfd-worker's local source (source/local/local.go): trimmed lines, "#" lines skipped, name[=value], value "true" by default. */
function nfdLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const at = line.indexOf('=');
    if (at < 0) labels[line] = 'true';
    else labels[line.slice(0, at)] = line.slice(at + 1);
  }
  return labels;
}

t.test('the feature file gives NFD exactly the node labels, fully named', async (t) => {
  const text = featureFile('strict-groups', '0.1.0');
  t.same(nfdLabels(text), {
    'feature.node.kubernetes.io/strict-groups.handler': 'strict-groups',
    'feature.node.kubernetes.io/strict-groups.version': '0.1.0',
  });
  t.same(nfdLabels(text), nodeLabels('strict-groups', '0.1.0'));
  t.equal(HANDLER_LABEL, 'feature.node.kubernetes.io/strict-groups.handler');
  t.equal(VERSION_LABEL, 'feature.node.kubernetes.io/strict-groups.version');
  t.ok(text.endsWith('\n'));
  t.ok(Buffer.byteLength(text) < 65536, "within nfd-worker's 64 kB limit");
  // A dot file is ignored by nfd-worker: the atomic write's temporary file is one.
  t.notOk(FEATURE_FILE.split('/').pop()!.startsWith('.'));
  t.equal(FEATURE_FILE, '/etc/kubernetes/node-feature-discovery/features.d/strict-groups');
});

t.test('values that cannot be label values are refused, not written', async (t) => {
  for (const ok of ['strict-groups', '0.1.0', '1.2.3-rc.1', 'a', 'x'.repeat(63), '']) t.ok(isLabelValue(ok), JSON.stringify(ok));
  for (const bad of ['0.1.0+build.5', '-x', 'x-', 'a b', 'x'.repeat(64), 'ü', 'a/b']) t.notOk(isLabelValue(bad), JSON.stringify(bad));
  t.throws(() => featureFile('strict-groups', '0.1.0+build.5'), /version "0\.1\.0\+build\.5" cannot be a node label value/);
  t.throws(() => featureFile('sg\nevil=1', '0.1.0'), /handler .* cannot be a node label value/, 'no line can be smuggled into the file');
});

t.test('the version record', async (t) => {
  const text = installedRecord({ version: '0.1.0', binary: '/usr/local/bin/strict-groups-runtime', sha256: 'ab'.repeat(32) });
  t.same(JSON.parse(text), { version: '0.1.0', binary: '/usr/local/bin/strict-groups-runtime', sha256: 'ab'.repeat(32) });
  t.equal(installedRecord({ sha256: 'ab'.repeat(32), binary: '/usr/local/bin/strict-groups-runtime', version: '0.1.0' }), text, 'the same record, the same bytes');
});

t.test('restart: only on a change, or a change still pending', async (t) => {
  t.equal(restartNeeded(false, false), false);
  t.equal(restartNeeded(true, false), true);
  t.equal(restartNeeded(false, true), true, 'a change an earlier start could not restart for');
  t.equal(restartNeeded(true, true), true);
});

t.test("restart goes through the host's systemctl, told it may act from a chroot, never a signal", async (t) => {
  t.same(systemctlTryRestart('/usr/bin/systemctl', 'containerd'), {
    file: '/usr/bin/systemctl',
    args: ['try-restart', 'containerd.service'],
    env: { SYSTEMD_OFFLINE: '0', SYSTEMD_IGNORE_CHROOT: '1', SYSTEMD_IN_CHROOT: '0' },
  });
  t.same(systemctlTryRestart('/bin/systemctl', 'crio').args, ['try-restart', 'crio.service']);
});

t.test('a restart that cannot happen is reported and stays pending; no change, nothing to do', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'sg-restart-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const host = new Host(root);
  const never = (): void => {
    throw new Error('nothing may be run');
  };
  t.same(restartIfNeeded(host, 'containerd', false, never), { kind: 'not-needed' });

  const outcome = restartIfNeeded(host, 'containerd', true, never);
  t.equal(outcome.kind, 'impossible');
  t.match(outcome, { service: 'containerd', why: /host root is .*, not \// });
  t.equal(readFileSync(join(root, RESTART_PENDING), 'utf8'), 'containerd\n', 'the change is pending on the host');

  // A later start that changes nothing still owes the restart.
  t.equal(restartIfNeeded(host, 'containerd', false, never).kind, 'impossible');
  t.equal(readFileSync(join(root, RESTART_PENDING), 'utf8'), 'containerd\n');
});

t.test('the daemonset command line', async (t) => {
  t.same(parseDaemonSetArgs(['install']), { mode: 'install', installArgs: ['--host-root', '/'] });
  t.same(parseDaemonSetArgs(['uninstall', '--cri', 'containerd', '--handler', 'sg']), {
    mode: 'uninstall',
    installArgs: ['--host-root', '/', '--cri', 'containerd', '--handler', 'sg', '--uninstall'],
  });
  t.same(parseDaemonSetArgs(['--host-root', '/host', 'install', '--runtime', '/usr/bin/crun']), {
    mode: 'install',
    installArgs: ['--host-root', '/host', '--runtime', '/usr/bin/crun'],
  });
  t.equal(parseDaemonSetArgs(['--help']), 'help');
  t.throws(() => parseDaemonSetArgs([]), /say install or uninstall/);
  t.throws(() => parseDaemonSetArgs(['restart']), /say install or uninstall, not restart/);
  t.throws(() => parseDaemonSetArgs(['install', 'extra']), /not install extra/);
  // A dry run or no restart would leave a pod that says "installed" about a node that is not.
  for (const option of ['--dry-run', '--no-restart', '--uninstall']) t.throws(() => parseDaemonSetArgs(['install', option]), /Unknown option/, option);
});
