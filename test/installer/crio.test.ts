/**
 * install.sh for CRI-O: a drop-in of its own that copies the default
 * runtime's settings. Debian 12 has no CRI-O package, so the drop-in is
 * judged as CRI-O reads it: TOML merged key by key after crio.conf.
 */
import t from 'tap';
import { execa } from 'execa';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHIM } from '../helpers/oci';
import { INSTALL_SH, at, hostTree, install, installerPrerequisites, copyProgram, parseToml, snapshot } from '../helpers/install';

const skip = installerPrerequisites({ containerd: [] });
if (skip !== undefined) {
  t.comment(`skipping the CRI-O installer suite: ${skip}`);
  t.pass('skipped', { skip });
  process.exit(0);
}

const DROP_IN = 'etc/crio/crio.conf.d/99-strict-groups.conf';

t.test('the drop-in copies the default runtime, and uninstall removes it', async (t) => {
  const tree = hostTree('crio');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const original = snapshot(tree);

  const run = await install(tree);
  t.equal(run.exitCode, 0, run.stderr);
  t.match(run.stdout, /^strict-groups install: crio, /, '--cri auto finds CRI-O by /etc/crio');
  t.match(run.stdout, /^  created +\/etc\/crio\/crio\.conf\.d\/99-strict-groups\.conf$/m);
  t.match(run.stdout, /settings copied from CRI-O's runtime "runc"/);
  t.match(run.stdout, /restart crio to apply/);
  const dropIn = readFileSync(join(tree, DROP_IN), 'utf8');
  t.same(at(parseToml(dropIn), 'crio', 'runtime', 'runtimes'), {
    'strict-groups': {
      runtime_path: '/usr/local/bin/strict-groups-runtime',
      runtime_type: 'oci',
      runtime_root: '/run/runc',
      monitor_path: '/usr/libexec/crio/conmon',
      monitor_env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    },
  }, 'the only table: the handler, with the monitor settings of runc');
  t.equal(JSON.parse(readFileSync(join(tree, 'etc/strict-groups/config.json'), 'utf8')).runtime, '/usr/sbin/runc', 'runc found on the host PATH, as CRI-O finds it');
  for (const [path, content] of Object.entries(original)) t.equal(snapshot(tree)[path], content, `${path} untouched`);

  const installed = snapshot(tree);
  const second = await install(tree);
  t.equal(second.exitCode, 0, second.stderr);
  t.same(snapshot(tree), installed, 'a second run changes no byte');
  t.match(second.stdout, /^  unchanged +CRI runtime configuration$/m);

  const removal = await install(tree, '--uninstall');
  t.equal(removal.exitCode, 0, removal.stderr);
  t.match(removal.stdout, /^  removed +\/etc\/crio\/crio\.conf\.d\/99-strict-groups\.conf$/m);
  t.notOk(existsSync(join(tree, DROP_IN)));
  const left = snapshot(tree);
  for (const [path, content] of Object.entries(original)) t.equal(left[path], content, `uninstall: ${path} is the original`);
});

t.test('a changed default runtime rewrites the drop-in, and nothing else lands in crio.conf.d', async (t) => {
  const tree = hostTree('crio');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  t.equal((await install(tree)).exitCode, 0);
  const conf = join(tree, 'etc/crio/crio.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace('/usr/libexec/crio/conmon', '/usr/bin/conmon'));
  const changed = await install(tree);
  t.equal(changed.exitCode, 0, changed.stderr);
  t.match(changed.stdout, /^  edited +\/etc\/crio\/crio\.conf\.d\/99-strict-groups\.conf$/m, 'no backup of a file that is wholly ours');
  // CRI-O reads every file in the directory: a backup there would be configuration.
  t.same(readdirSync(join(tree, 'etc/crio/crio.conf.d')).sort(), ['10-crun.conf', '99-strict-groups.conf']);
  t.equal(at(parseToml(readFileSync(join(tree, DROP_IN), 'utf8')), 'crio', 'runtime', 'runtimes', 'strict-groups', 'monitor_path'), '/usr/bin/conmon');
  const third = await install(tree);
  t.equal(third.exitCode, 0, third.stderr);
  t.match(third.stdout, /^  unchanged +CRI runtime configuration$/m);
});

t.test('a default runtime chosen in a later drop-in wins, with its own runtime_path', async (t) => {
  const tree = hostTree('crio');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  copyProgram(tree, '/usr/bin/crun', '/usr/bin/crun');
  writeFileSync(join(tree, 'etc/crio/crio.conf.d/20-default.conf'), '[crio.runtime]\ndefault_runtime = "crun"\n');
  const run = await install(tree, '--cri', 'crio', '--handler', 'strict');
  t.equal(run.exitCode, 0, run.stderr);
  const handler = at(parseToml(readFileSync(join(tree, DROP_IN), 'utf8')), 'crio', 'runtime', 'runtimes', 'strict');
  t.same(handler, { runtime_path: '/usr/local/bin/strict-groups-runtime', runtime_type: 'oci', runtime_root: '/run/crun' });
  t.equal(JSON.parse(readFileSync(join(tree, 'etc/strict-groups/config.json'), 'utf8')).runtime, '/usr/bin/crun');
});

t.test('--dry-run shows the drop-in and writes nothing', async (t) => {
  const tree = hostTree('crio');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const original = snapshot(tree);
  const run = await install(tree, '--dry-run');
  t.equal(run.exitCode, 0, run.stderr);
  t.same(snapshot(tree), original);
  t.match(run.stdout, /^  would create +\/etc\/crio\/crio\.conf\.d\/99-strict-groups\.conf$/m);
  t.match(run.stdout, /^ +\+ \[crio\.runtime\.runtimes\.strict-groups\]$/m);
  t.notMatch(run.stdout, /^  restarted/m);
});

t.test("a drop-in of that name that install.sh did not write is left alone", async (t) => {
  const tree = hostTree('crio');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  writeFileSync(join(tree, DROP_IN), '[crio.runtime]\nlog_level = "debug"\n');
  const original = snapshot(tree);
  for (const args of [[], ['--uninstall']]) {
    const run = await install(tree, ...args);
    t.equal(run.exitCode, 1);
    t.match(run.stderr, /99-strict-groups\.conf (exists and )?was not written by install\.sh/);
    t.same(snapshot(tree), original);
  }
});

t.test('from a release directory: the binary beside install.sh, no npm needed', async (t) => {
  const release = mkdtempSync(join(tmpdir(), 'sg-release-'));
  const tree = hostTree('crio');
  t.teardown(() => {
    rmSync(release, { recursive: true, force: true });
    rmSync(tree, { recursive: true, force: true });
  });
  cpSync(INSTALL_SH, join(release, 'install.sh'));
  copyFileSync(SHIM, join(release, 'strict-groups-runtime'));
  // No npm on this PATH: a node has none.
  const run = await execa(join(release, 'install.sh'), ['--host-root', tree, '--dry-run'], { reject: false, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, extendEnv: false });
  t.equal(run.exitCode, 0, run.stderr);
  t.match(run.stdout, /^  would install +\/usr\/local\/bin\/strict-groups-runtime$/m);
});
