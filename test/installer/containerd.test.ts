/**
 * install.sh against realistic containerd configurations, judged by the real
 * containerd 1.6: `containerd config dump` after install must be the dump
 * before plus the handler and nothing else; a second run changes no byte;
 * uninstall gives back the original dump and files; a dry run touches nothing.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, existsSync, symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { at, configDump, hostTree, install, installerPrerequisites, copyProgram, parseToml, snapshot, type TomlDoc } from '../helpers/install';

const skip = installerPrerequisites({ containerd: true });
if (skip !== undefined) {
  t.comment(`skipping the containerd installer suite: ${skip}`);
  t.pass('skipped', { skip });
  process.exit(0);
}

const CRI = 'io.containerd.grpc.v1.cri';
const BINARY = '/usr/local/bin/strict-groups-runtime';
/** Where install.sh keeps a file's original: outside every directory containerd or CRI-O scans. */
const backupOf = (path: string): string => `/var/lib/strict-groups/backup${path}`;
const HANDLER_LINE = (path: string): RegExp =>
  new RegExp(`^  edited +${path.replace(/[.]/g, '\\.')} \\(original kept as ${backupOf(path).replace(/[.]/g, '\\.')}\\)$`, 'm');

/** The node's containerd defaults, for configurations that leave runc implicit. */
const defaultsFile = join(hostTree(null), 'containerd-defaults.toml');
writeFileSync(defaultsFile, execFileSync('containerd', ['config', 'default']));

function runtimesOf(dump: string): TomlDoc {
  return at(parseToml(dump), 'plugins', CRI, 'containerd', 'runtimes') as TomlDoc;
}

/** The dump's data without the given handler, for comparing with the original. */
function withoutHandler(dump: string, handler: string): TomlDoc {
  const doc = parseToml(dump);
  delete (at(doc, 'plugins', CRI, 'containerd', 'runtimes') as TomlDoc)[handler];
  return doc;
}

interface Case {
  fixture: string | null;
  /** The file the handler must land in. */
  edited: string;
  /** What the runtime in config.json must be. */
  runtime: string;
  systemdCgroup: boolean;
  args?: string[];
  /** The original state for the dump when the fixture has no config file. */
  baseline?: string;
  setup?: (tree: string) => void;
}

const CASES: Record<string, Case> = {
  'containerd 1.6, kubeadm style: SystemdCgroup, private pause image, mirror, drop-in for another plugin': {
    fixture: 'containerd-1.6-kubeadm',
    edited: '/etc/containerd/config.toml',
    runtime: '/usr/sbin/runc',
    systemdCgroup: true,
  },
  'containerd 1.7 style: the CRI section lives in an import that replaces the main one': {
    fixture: 'containerd-1.7-cri-in-import',
    edited: '/etc/containerd/conf.d/20-cri.toml',
    runtime: '/usr/local/sbin/runc',
    systemdCgroup: true,
    setup: (tree) => copyProgram(tree, '/usr/local/sbin/runc', '/usr/sbin/runc'),
  },
  "Debian's packaged config: a CRI section with the runc handler left implicit": {
    fixture: 'containerd-debian',
    edited: '/etc/containerd/config.toml',
    runtime: '/usr/sbin/runc',
    systemdCgroup: false,
    args: ['--containerd-defaults', defaultsFile],
  },
};

for (const [name, c] of Object.entries(CASES)) {
  t.test(name, async (t) => {
    const tree = hostTree(c.fixture);
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    c.setup?.(tree);
    const original = snapshot(tree);
    const before = await configDump(tree);

    const first = await install(tree, '--cri', 'containerd', ...(c.args ?? []));
    t.equal(first.exitCode, 0, `install succeeds: ${first.stderr}`);
    t.match(first.stdout, HANDLER_LINE(c.edited), 'it says which file it edited and where the original is');
    t.match(first.stdout, /^  installed +\/usr\/local\/bin\/strict-groups-runtime$/m);
    t.match(first.stdout, /kubectl apply -f runtimeclass\.yaml/, 'it says what is left to do');

    const after = await configDump(tree);
    t.same(withoutHandler(after, 'strict-groups'), parseToml(before), 'config dump: nothing changed but the new handler');
    t.not(after, before);
    const runc = runtimesOf(before)['runc'] as TomlDoc;
    const handler = runtimesOf(after)['strict-groups'] as TomlDoc;
    t.equal(handler['runtime_type'], 'io.containerd.runc.v2');
    t.same(handler['pod_annotations'], [...(runc['pod_annotations'] as string[]), 'strict-groups.io/*']);
    t.same(handler['options'], { ...(runc['options'] as TomlDoc), BinaryName: BINARY }, "runc's options copied, the shim as BinaryName");
    t.equal(at(handler, 'options', 'SystemdCgroup'), c.systemdCgroup);
    t.same(
      JSON.parse(readFileSync(join(tree, 'etc/strict-groups/config.json'), 'utf8')),
      { runtime: c.runtime, defaultPolicy: 'Strict', allowPolicyOverride: true, honorKeepGids: false, auditLog: '/var/log/strict-groups/audit.log' },
      'config.json names the runtime the runc handler used',
    );
    t.ok(readFileSync(join(tree, BINARY)).equals(readFileSync(join(__dirname, '../../dist/strict-groups-runtime'))), 'the binary is installed');
    t.equal(readFileSync(join(tree, backupOf(c.edited)), 'latin1'), original[c.edited.slice(1)]?.replace(/^\d+ /, ''), 'the backup is the original');

    const installed = snapshot(tree);
    const second = await install(tree, '--cri', 'containerd', ...(c.args ?? []));
    t.equal(second.exitCode, 0, second.stderr);
    t.same(snapshot(tree), installed, 'a second run changes no byte');
    t.match(second.stdout, /^  unchanged +CRI runtime configuration$/m);
    t.match(second.stdout, /^  unchanged +\/usr\/local\/bin\/strict-groups-runtime$/m);
    t.notMatch(second.stdout, /restart/, 'nothing to restart');

    const removal = await install(tree, '--cri', 'containerd', '--uninstall');
    t.equal(removal.exitCode, 0, removal.stderr);
    t.equal(await configDump(tree), before, 'uninstall: config dump is the original again');
    const left = snapshot(tree);
    for (const [path, content] of Object.entries(original)) t.equal(left[path], content, `uninstall: ${path} is the original`);
    t.notOk(existsSync(join(tree, backupOf(c.edited))), 'the backup has served and is gone');
    t.ok(existsSync(join(tree, BINARY)), 'the binary stays for containers that still need it to stop');
    t.match(removal.stdout, /are kept: containers started through the handler need the binary to stop/);

    const again = await install(tree, '--cri', 'containerd', '--uninstall');
    t.equal(again.exitCode, 0);
    t.match(again.stdout, /unchanged +no handler installed by install\.sh/, 'uninstalling twice is harmless');
  });
}

t.test('no config file: one is created from the defaults and removed again', async (t) => {
  const tree = hostTree(null);
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  // containerd with no config file runs on its defaults: a file of nothing but the version.
  mkdirSync(join(tree, 'etc/containerd'), { recursive: true });
  writeFileSync(join(tree, 'etc/containerd/config.toml'), 'version = 2\n');
  const defaults = await configDump(tree);
  rmSync(join(tree, 'etc/containerd/config.toml'));

  const run = await install(tree, '--cri', 'containerd', '--containerd-defaults', defaultsFile);
  t.equal(run.exitCode, 0, run.stderr);
  t.match(run.stdout, /^  created +\/etc\/containerd\/config\.toml$/m);
  t.same(withoutHandler(await configDump(tree), 'strict-groups'), parseToml(defaults), 'the defaults, runc handler included, plus the handler');

  const removal = await install(tree, '--cri', 'containerd', '--uninstall');
  t.equal(removal.exitCode, 0, removal.stderr);
  t.notOk(existsSync(join(tree, 'etc/containerd/config.toml')), 'the file install.sh created is gone');
});

t.test('--dry-run shows the change and touches nothing', async (t) => {
  const tree = hostTree('containerd-1.6-kubeadm');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const original = snapshot(tree);
  const run = await install(tree, '--cri', 'containerd', '--dry-run');
  t.equal(run.exitCode, 0, run.stderr);
  t.same(snapshot(tree), original, 'no file changed');
  t.notOk(existsSync(join(tree, BINARY)), 'no binary installed');
  t.match(run.stdout, /\(dry run: nothing is changed\)/);
  t.match(run.stdout, /^  would install +\/usr\/local\/bin\/strict-groups-runtime$/m);
  t.match(run.stdout, /^  would edit +\/etc\/containerd\/config\.toml/m);
  t.match(run.stdout, /^ +\+ \[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.strict-groups\]$/m, 'the diff shows the handler');
  t.match(run.stdout, /^ +\+ BinaryName = "\/usr\/local\/bin\/strict-groups-runtime"$/m);
});

t.test('containerd 2.x, config version 3: the handler goes under io.containerd.cri.v1.runtime', async (t) => {
  const tree = hostTree('containerd-2.x');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const path = join(tree, 'etc/containerd/config.toml');
  const original = readFileSync(path, 'utf8');
  const run = await install(tree, '--cri', 'containerd', '--handler', 'sg');
  t.equal(run.exitCode, 0, run.stderr);
  // No containerd 2.x here: its TOML data must be the old data plus the handler.
  const edited = parseToml(readFileSync(path, 'utf8'));
  const runtimes = at(edited, 'plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes') as TomlDoc;
  t.same(runtimes['sg'], {
    runtime_type: 'io.containerd.runc.v2',
    sandboxer: 'podsandbox',
    pod_annotations: ['strict-groups.io/*'],
    options: { SystemdCgroup: true, BinaryName: BINARY },
  });
  delete runtimes['sg'];
  t.same(edited, parseToml(original), 'nothing else changed');
  const removal = await install(tree, '--cri', 'containerd', '--uninstall');
  t.equal(removal.exitCode, 0, removal.stderr);
  t.equal(readFileSync(path, 'utf8'), original, 'uninstall gives back the original bytes');
});

t.test('refusals leave everything as it was', async (t) => {
  t.test('a config file that is a symlink is not written through', async (t) => {
    const tree = hostTree(null);
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    mkdirSync(join(tree, 'usr/share/containerd'), { recursive: true });
    writeFileSync(join(tree, 'usr/share/containerd/config.toml'), readFileSync(join(__dirname, '../fixtures/installer/containerd-1.6-kubeadm/etc/containerd/config.toml')));
    mkdirSync(join(tree, 'etc/containerd'), { recursive: true });
    symlinkSync('/usr/share/containerd/config.toml', join(tree, 'etc/containerd/config.toml'));
    const original = snapshot(tree);
    const run = await install(tree, '--cri', 'containerd');
    t.equal(run.exitCode, 1);
    t.match(run.stderr, /\/etc\/containerd\/config\.toml is a symlink; install\.sh writes only real files/);
    t.same(snapshot(tree), original, 'nothing written');
  });

  t.test('a handler of the same name that install.sh did not write', async (t) => {
    const tree = hostTree('containerd-1.6-kubeadm');
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    const original = snapshot(tree);
    const run = await install(tree, '--cri', 'containerd', '--handler', 'runc');
    t.equal(run.exitCode, 1);
    t.match(run.stderr, /already defines a runtime handler "runc" outside the block install\.sh manages/);
    t.same(snapshot(tree), original);
  });

  t.test('an inline runtimes table cannot take the handler', async (t) => {
    const tree = hostTree(null);
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    mkdirSync(join(tree, 'etc/containerd'), { recursive: true });
    writeFileSync(
      join(tree, 'etc/containerd/config.toml'),
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\nruntimes = { runc = { runtime_type = "io.containerd.runc.v2" } }\n',
    );
    const original = snapshot(tree);
    const run = await install(tree, '--cri', 'containerd');
    t.equal(run.exitCode, 1);
    t.match(run.stderr, /with the handler added \(edit it by hand; install\.sh cannot\): not valid TOML/);
    t.same(snapshot(tree), original);
  });

  t.test('version 1 configurations', async (t) => {
    const tree = hostTree(null);
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    mkdirSync(join(tree, 'etc/containerd'), { recursive: true });
    writeFileSync(join(tree, 'etc/containerd/config.toml'), '[plugins.cri]\nsandbox_image = "x"\n');
    const run = await install(tree, '--cri', 'containerd');
    t.equal(run.exitCode, 1);
    t.match(run.stderr, /config version 1 is not supported; convert it to version 2/);
  });

  t.test('an unknown option and a bad handler name', async (t) => {
    const tree = hostTree('containerd-1.6-kubeadm');
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    const unknown = await install(tree, '--frobnicate');
    t.equal(unknown.exitCode, 1);
    t.match(unknown.stderr, /Unknown option '--frobnicate'/);
    const bad = await install(tree, '--handler', 'Strict_Groups');
    t.equal(bad.exitCode, 1);
    t.match(bad.stderr, /is not a DNS label/);
  });
});

t.test("the real runtime is found as the host sees it: links resolve inside the host root", async (t) => {
  const tree = hostTree('containerd-1.6-kubeadm');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  rmSync(join(tree, 'usr/sbin/runc'));
  // On the host, /usr/sbin/runc -> /usr/lib/runc/runc; here that is the tree's file, not this machine's.
  symlinkSync('/usr/lib/runc/runc', join(tree, 'usr/sbin/runc'));
  const missing = await install(tree, '--cri', 'containerd', '--dry-run');
  t.equal(missing.exitCode, 1, 'the link target is not in the host root');
  t.match(missing.stderr, /cannot find the real runtime of the "runc" handler on the host's PATH/);
  copyProgram(tree, '/usr/lib/runc/runc', '/usr/sbin/runc');
  const found = await install(tree, '--cri', 'containerd', '--dry-run');
  t.equal(found.exitCode, 0, found.stderr);
  t.match(found.stdout, /would write +\/etc\/strict-groups\/config\.json \(runtime \/usr\/sbin\/runc,/);
});

t.test('--cri auto finds the CRI runtime, and will not guess between two', async (t) => {
  const tree = hostTree('containerd-1.6-kubeadm');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const run = await install(tree, '--dry-run');
  t.equal(run.exitCode, 0, run.stderr);
  t.match(run.stdout, /^strict-groups install: containerd, /);
  mkdirSync(join(tree, 'etc/crio'));
  const both = await install(tree, '--dry-run');
  t.equal(both.exitCode, 1);
  t.match(both.stderr, /both containerd and CRI-O are on this host; choose one with --cri/);
});
