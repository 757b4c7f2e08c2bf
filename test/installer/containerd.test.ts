/**
 * install.sh against realistic containerd configurations, each judged by the
 * real containerd of its line (1.6.20 from Debian 12, 1.7.24 from trixie,
 * 2.1.9 from sid), which sits in the host tree where install.sh asks it for
 * its version and defaults, as on a node. For every case: a dry run touches
 * nothing; after install `containerd config dump` is the dump before plus the
 * handler and nothing else, the handler being the runc handler in force with
 * the glob added to pod_annotations and the shim as BinaryName; a second run
 * changes no byte; uninstall gives back the original dump and files.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  at,
  configDump,
  copyProgram,
  FIXTURES,
  hostTree,
  install,
  installerPrerequisites,
  parseToml,
  putContainerd,
  requireContainerd,
  snapshot,
  type TomlDoc,
} from '../helpers/install';
import { RUNTIMES_DIR, type ContainerdBuild, type ContainerdLine } from '../helpers/runtimes';

const LINES: readonly ContainerdLine[] = ['1.6', '1.7', '2.1'];
const skip = installerPrerequisites({ containerd: LINES });
if (skip !== undefined) {
  t.comment(`skipping the containerd installer suite: ${skip}`);
  t.pass('skipped', { skip });
  process.exit(0);
}
const BUILDS = Object.fromEntries(LINES.map((line) => [line, requireContainerd(line)])) as Record<ContainerdLine, ContainerdBuild>;

const BINARY = '/usr/local/bin/strict-groups-runtime';
const GLOB = 'strict-groups.io/*';
/** Where install.sh keeps a file's original: outside every directory containerd or CRI-O scans. */
const backupOf = (path: string): string => `/var/lib/strict-groups/backup${path}`;
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const EDITED_LINE = (path: string): RegExp => new RegExp(`^  edited +${escape(path)} \\(original kept as ${escape(backupOf(path))}\\)$`, 'm');

/** Where the runtime handlers are in a build's dump: containerd 2.x dumps version 3, whatever the files say. */
const runtimesPath = (build: ContainerdBuild): string[] =>
  ['plugins', build.configVersion === 3 ? 'io.containerd.cri.v1.runtime' : 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'];

/** `containerd config default` of a build, saved where an operator would keep it, for the cases that pass it. */
function defaultsFile(build: ContainerdBuild, tree: string): string {
  const file = join(tree, 'root', `containerd-${build.line}-defaults.toml`);
  mkdirSync(join(tree, 'root'), { recursive: true });
  writeFileSync(file, execFileSync(join(build.binDir, 'containerd'), ['config', 'default']));
  return file;
}

interface Case {
  line: ContainerdLine;
  fixture: string | null;
  /** The file the handler must land in. */
  edited: string;
  /** The config version containerd reads the files in (default 2). */
  configVersion?: 3;
  /** How the report names the import rule. */
  rule: 'imports replace a plugin\'s whole section' | 'imports merge key by key';
  /** What the runtime in config.json must be. */
  runtime: string;
  systemdCgroup: boolean;
  /** Put the node's containerd into the tree (default), or leave it out and pass args. */
  nodeContainerd?: boolean;
  args?: (build: ContainerdBuild, tree: string) => string[];
  setup?: (tree: string) => void;
}

const MAIN = '/etc/containerd/config.toml';
const runcAt = (path: string) => (tree: string) => copyProgram(tree, path, '/usr/sbin/runc');
const REPLACE = "imports replace a plugin's whole section";
const MERGE = 'imports merge key by key';

const CASES: Record<string, Case> = {
  // containerd 1.6.20 (Debian 12)
  '1.6, kubeadm style: SystemdCgroup, private pause image, mirror, a drop-in for another plugin': {
    line: '1.6', fixture: 'containerd-1.6-kubeadm', edited: MAIN, rule: REPLACE, runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  "1.6, Debian's packaged config: the runc handler left implicit": {
    line: '1.6', fixture: 'containerd-debian', edited: MAIN, rule: REPLACE, runtime: '/usr/sbin/runc', systemdCgroup: false,
  },
  '1.6, the CRI section in an import that replaces the main one': {
    line: '1.6', fixture: 'containerd-1.7-cri-in-import', edited: '/etc/containerd/conf.d/20-cri.toml', rule: REPLACE,
    runtime: '/usr/local/sbin/runc', systemdCgroup: true, setup: runcAt('/usr/local/sbin/runc'),
  },
  '1.6, no config file: one is created from the defaults and removed again': {
    line: '1.6', fixture: null, edited: MAIN, rule: REPLACE, runtime: '/usr/sbin/runc', systemdCgroup: false,
  },
  // containerd 1.7.24 (trixie)
  '1.7, kubeadm style: config default of 1.7, SystemdCgroup, private pause image, config_path, a drop-in for NRI': {
    line: '1.7', fixture: 'containerd-1.7-kubeadm', edited: MAIN, rule: REPLACE, runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  "1.7, Debian's packaged config (trixie ships the same file)": {
    line: '1.7', fixture: 'containerd-debian', edited: MAIN, rule: REPLACE, runtime: '/usr/sbin/runc', systemdCgroup: false,
  },
  '1.7, the CRI section in an import that replaces the main one': {
    line: '1.7', fixture: 'containerd-1.7-cri-in-import', edited: '/etc/containerd/conf.d/20-cri.toml', rule: REPLACE,
    runtime: '/usr/local/sbin/runc', systemdCgroup: true, setup: runcAt('/usr/local/sbin/runc'),
  },
  '1.7, a split version 2 CRI section: the drop-in replaces the main one, whose runc settings are not in force': {
    line: '1.7', fixture: 'containerd-v2-cri-split', edited: '/etc/containerd/conf.d/10-cdi.toml', rule: REPLACE, runtime: '/usr/sbin/runc', systemdCgroup: false,
  },
  // containerd 2.1.9 (sid)
  '2.1, kubeadm style: config default of 2.1, SystemdCgroup, private pause image, config_path, drop-ins for tracing and another handler': {
    line: '2.1', fixture: 'containerd-2.1-kubeadm', edited: MAIN, rule: MERGE, configVersion: 3, runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  '2.1, the runc handler in conf.d/ and the CRI runtime section split across drop-ins': {
    line: '2.1', fixture: 'containerd-2.1-runc-in-conf.d', edited: '/etc/containerd/conf.d/20-runc.toml', rule: MERGE, configVersion: 3,
    runtime: '/usr/local/sbin/runc', systemdCgroup: true, setup: runcAt('/usr/local/sbin/runc'),
  },
  '2.1, config default kept as it is, SystemdCgroup switched on by a drop-in merged into the runc handler': {
    line: '2.1', fixture: 'containerd-2.1-systemd-drop-in', edited: '/etc/containerd/conf.d/10-systemd-cgroup.toml', rule: MERGE, configVersion: 3,
    runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  "2.1, Debian's packaged config (sid ships the same version 2 file, migrated when loaded)": {
    line: '2.1', fixture: 'containerd-debian', edited: MAIN, rule: MERGE, runtime: '/usr/sbin/runc', systemdCgroup: false,
  },
  '2.1, a plain version 3 config': {
    line: '2.1', fixture: 'containerd-2.x', edited: MAIN, rule: MERGE, configVersion: 3, runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  '2.1 on a node upgraded from 1.6: the kubeadm version 2 config, migrated when loaded': {
    line: '2.1', fixture: 'containerd-1.6-kubeadm', edited: MAIN, rule: MERGE, runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  '2.1 on a node upgraded from 1.7: its config default (sandbox_mode) and NRI drop-in': {
    line: '2.1', fixture: 'containerd-1.7-kubeadm', edited: MAIN, rule: MERGE, runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  '2.1, a split version 2 CRI section: merged, so the main file\'s runc handler is in force': {
    line: '2.1', fixture: 'containerd-v2-cri-split', edited: MAIN, rule: MERGE, runtime: '/usr/sbin/runc', systemdCgroup: true,
  },
  '2.1, the CRI section in a version 2 import, merged over the main one': {
    line: '2.1', fixture: 'containerd-1.7-cri-in-import', edited: '/etc/containerd/conf.d/20-cri.toml', rule: MERGE,
    runtime: '/usr/local/sbin/runc', systemdCgroup: true, setup: runcAt('/usr/local/sbin/runc'),
  },
  '2.1, no config file: one is created holding only the handler, containerd keeps its built-in runc': {
    line: '2.1', fixture: null, edited: MAIN, rule: MERGE, configVersion: 3, runtime: '/usr/sbin/runc', systemdCgroup: false,
  },
  // containerd that install.sh cannot run: what the operator passes instead
  '2.1 not runnable in the host root: --containerd-version and --containerd-defaults instead': {
    line: '2.1', fixture: 'containerd-v2-cri-split', edited: MAIN, rule: MERGE, runtime: '/usr/sbin/runc', systemdCgroup: true,
    nodeContainerd: false, args: (build, tree) => ['--containerd-version', build.version, '--containerd-defaults', defaultsFile(build, tree)],
  },
  '1.7 not runnable in the host root: --containerd-version and --containerd-defaults instead': {
    line: '1.7', fixture: 'containerd-v2-cri-split', edited: '/etc/containerd/conf.d/10-cdi.toml', rule: REPLACE, runtime: '/usr/sbin/runc', systemdCgroup: false,
    nodeContainerd: false, args: (build, tree) => ['--containerd-version', build.version, '--containerd-defaults', defaultsFile(build, tree)],
  },
};

/** The dump's data without one handler. */
function withoutHandler(dump: string, build: ContainerdBuild, handler: string): TomlDoc {
  const doc = parseToml(dump);
  delete (at(doc, ...runtimesPath(build)) as TomlDoc)[handler];
  return doc;
}

/** Lines of a report, for messages. */
const report = (run: { stdout: string; stderr: string }): string => `${run.stdout}\n${run.stderr}`;

for (const [name, c] of Object.entries(CASES)) {
  t.test(name, async (t) => {
    const build = BUILDS[c.line];
    const tree = hostTree(c.fixture);
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    mkdirSync(join(tree, 'etc/containerd'), { recursive: true });
    if (c.nodeContainerd !== false) putContainerd(tree, build);
    c.setup?.(tree);
    const args = ['--cri', 'containerd', ...(c.args?.(build, tree) ?? [])];
    const original = snapshot(tree);
    const before = await configDump(tree, build);
    const created = c.fixture === null;

    const dry = await install(tree, ...args, '--dry-run');
    t.equal(dry.exitCode, 0, `dry run succeeds: ${report(dry)}`);
    t.same(snapshot(tree), original, 'the dry run touches nothing');
    t.match(dry.stdout, new RegExp(`^  would ${created ? 'create' : 'edit'} +${escape(c.edited)}`, 'm'), 'it says which file it would change');
    t.match(dry.stdout, /^ +\+ BinaryName = "\/usr\/local\/bin\/strict-groups-runtime"$/m, 'and shows the lines');

    const first = await install(tree, ...args);
    t.equal(first.exitCode, 0, `install succeeds: ${report(first)}`);
    t.match(first.stdout, created ? new RegExp(`^  created +${escape(c.edited)}$`, 'm') : EDITED_LINE(c.edited), 'it says which file it changed and where the original is');
    t.match(first.stdout, new RegExp(`^  note +.*: ${escape(c.rule)}; config version ${c.configVersion ?? 2}$`, 'm'), 'it says how imports combine on this containerd');
    if (c.nodeContainerd !== false) t.match(first.stdout, `containerd ${build.version} ("/usr/bin/containerd --version" in ${tree})`, 'the version asked of the node\'s containerd');
    else t.match(first.stdout, `containerd ${build.version} (--containerd-version)`, 'the version the operator gave');
    t.match(first.stdout, /kubectl apply -f runtimeclass\.yaml/, 'it says what is left to do');

    const after = await configDump(tree, build);
    t.same(withoutHandler(after, build, 'strict-groups'), parseToml(before), 'config dump: nothing changed but the new handler');
    const runc = at(parseToml(before), ...runtimesPath(build), 'runc') as TomlDoc;
    const handler = at(parseToml(after), ...runtimesPath(build), 'strict-groups') as TomlDoc;
    t.same(
      handler,
      { ...runc, pod_annotations: [...((runc['pod_annotations'] as string[] | undefined) ?? []), GLOB], options: { ...(runc['options'] as TomlDoc), BinaryName: BINARY } },
      'the handler is the runc handler in force, with the glob and the shim as BinaryName',
    );
    t.equal(at(handler, 'options', 'SystemdCgroup'), c.systemdCgroup, 'SystemdCgroup as the runc handler has it');
    t.same(
      JSON.parse(readFileSync(join(tree, 'etc/strict-groups/config.json'), 'utf8')),
      { runtime: c.runtime, defaultPolicy: 'Strict', allowPolicyOverride: true, honorKeepGids: false, auditLog: '/var/log/strict-groups/audit.log' },
      'config.json names the runtime the runc handler used',
    );
    t.ok(readFileSync(join(tree, BINARY)).equals(readFileSync(join(__dirname, '../../dist/strict-groups-runtime'))), 'the binary is installed');
    if (!created) t.equal(readFileSync(join(tree, backupOf(c.edited)), 'latin1'), original[c.edited.slice(1)]?.replace(/^\d+ /, ''), 'the backup is the original');

    const installed = snapshot(tree);
    const second = await install(tree, ...args);
    t.equal(second.exitCode, 0, report(second));
    t.same(snapshot(tree), installed, 'a second run changes no byte');
    t.match(second.stdout, /^  unchanged +CRI runtime configuration$/m);
    t.match(second.stdout, /^  unchanged +\/usr\/local\/bin\/strict-groups-runtime$/m);
    t.notMatch(second.stdout, /restart/, 'nothing to restart');

    const removal = await install(tree, '--cri', 'containerd', '--uninstall');
    t.equal(removal.exitCode, 0, report(removal));
    t.equal(await configDump(tree, build), before, 'uninstall: config dump is the original again');
    const left = snapshot(tree);
    for (const [path, content] of Object.entries(original)) t.equal(left[path], content, `uninstall: ${path} is the original`);
    if (created) t.notOk(existsSync(join(tree, c.edited)), 'the file install.sh created is gone');
    t.notOk(existsSync(join(tree, backupOf(c.edited))), 'no backup is left');
    t.ok(existsSync(join(tree, BINARY)), 'the binary stays for containers that still need it to stop');

    const again = await install(tree, '--cri', 'containerd', '--uninstall');
    t.equal(again.exitCode, 0);
    t.match(again.stdout, /unchanged +no handler installed by install\.sh/, 'uninstalling twice is harmless');
  });
}

t.test("Debian's packaged config.toml is the same file in bookworm, trixie and sid", async (t) => {
  const fixture = readFileSync(join(FIXTURES, 'containerd-debian/etc/containerd/config.toml'));
  for (const [where, file] of [
    ['bookworm (installed)', '/etc/containerd/config.toml'],
    ['trixie', join(RUNTIMES_DIR, 'containerd-trixie/etc/containerd/config.toml')],
    ['sid', join(RUNTIMES_DIR, 'containerd-sid/etc/containerd/config.toml')],
  ] as const) {
    t.ok(readFileSync(file).equals(fixture), `${where}: ${file} is the fixture`);
  }
});

t.test("containerd's version unknown where it matters: refused, saying what to pass", async (t) => {
  const tree = hostTree('containerd-v2-cri-split');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const original = snapshot(tree);
  const refused = await install(tree, '--cri', 'containerd');
  t.equal(refused.exitCode, 1, report(refused));
  t.match(refused.stderr, `containerd's version is unknown (no containerd on the host's PATH under ${tree}), and this configuration depends on it`);
  // Before 2.0 the drop-in's CRI section would be the whole section, leaving runc implicit.
  t.match(
    refused.stderr,
    `containerd before 2.0 (imports replace a plugin's whole section) cannot be served (/etc/containerd/conf.d/10-cdi.toml has no runtime handlers and containerd's defaults are unknown (could not run "containerd config default"); pass --containerd-defaults FILE), containerd 2.0+ (imports merge key by key) can.`,
  );
  t.match(refused.stderr, /Pass --containerd-version with the version "containerd --version" prints on the node/);
  t.same(snapshot(tree), original, 'nothing written');

  t.test('a containerd that cannot run in the host root says why', async (t) => {
    // The binary without its C library: chroot cannot start it.
    copyProgram(tree, '/usr/bin/containerd', join(BUILDS['2.1'].binDir, 'containerd'));
    const run = await install(tree, '--cri', 'containerd');
    t.equal(run.exitCode, 1);
    t.match(run.stderr, `containerd's version is unknown ("/usr/bin/containerd --version" failed inside ${tree}: `);
  });

  t.test('the same layout with every rule agreeing goes ahead without the version', async (t) => {
    const plain = hostTree('containerd-1.6-kubeadm');
    t.teardown(() => rmSync(plain, { recursive: true, force: true }));
    const run = await install(plain, '--cri', 'containerd', '--dry-run');
    t.equal(run.exitCode, 0, report(run));
    t.match(run.stdout, /note +containerd's version is unknown \(no containerd on the host's PATH under .*\), and the result is the same for every version; config version 2/);
  });

  t.test('a bad --containerd-version', async (t) => {
    const run = await install(tree, '--cri', 'containerd', '--containerd-version', 'latest');
    t.equal(run.exitCode, 1);
    t.match(run.stderr, /--containerd-version "latest" is not a version; give what "containerd --version" prints on the node as its third word, e.g. 1\.7\.24 or 2\.1\.9/);
  });
});

t.test('refusals leave everything as it was', async (t) => {
  t.test('a config file that is a symlink is not written through', async (t) => {
    const tree = hostTree(null);
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    mkdirSync(join(tree, 'usr/share/containerd'), { recursive: true });
    writeFileSync(join(tree, 'usr/share/containerd/config.toml'), readFileSync(join(FIXTURES, 'containerd-1.6-kubeadm/etc/containerd/config.toml')));
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

  t.test('a version 3 config on a containerd 1.7', async (t) => {
    const tree = hostTree('containerd-2.x');
    t.teardown(() => rmSync(tree, { recursive: true, force: true }));
    putContainerd(tree, BUILDS['1.7']);
    const original = snapshot(tree);
    const run = await install(tree, '--cri', 'containerd');
    t.equal(run.exitCode, 1);
    t.match(run.stderr, `/etc/containerd/config.toml is config version 3, which only containerd 2.0+ reads, but the node runs containerd ${BUILDS['1.7'].version}`);
    t.same(snapshot(tree), original);
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

t.test('--cri auto finds the CRI runtime, and will not guess between two', async (t: Test) => {
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
