/**
 * The release image run as the DaemonSets say, by real runc: the amd64 image
 * from the release's OCI archive, unpacked; the container's command,
 * arguments, environment, privilege and the host's / mounted where the
 * manifest mounts it, all read from deploy/daemonset.yaml and
 * deploy/cleanup.yaml; a temp host root (a kubeadm-style containerd 1.6
 * configuration, runc, and this machine's C library) in the host's place.
 * The real containerd judges the result with its own `config dump`.
 *
 * This machine has no systemd, so a restart cannot happen here: the
 * installer must say so and go on. Where the host does have systemd, a
 * stand-in for its systemctl that records each call (and can be made to
 * fail) shows when the installer restarts: only on a change, once, and
 * again after a failed attempt even when nothing changes any more; an
 * upgrade replaces the binary under a process running the old one, and
 * restarts nothing.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { at, configDump, hostTree, parseToml, type TomlDoc } from '../helpers/install';
import { parseManifest } from '../helpers/manifests';
import { ROOT } from '../helpers/oci';
import {
  VERSION,
  addHostMountpoints,
  makeRunnableHost,
  packedRelease,
  podBundle,
  podContainer,
  readImageArchive,
  releasePrerequisites,
  startPod,
  tempDir,
  treeState,
  unpackRootfs,
  type ImageConfig,
  type Pod,
} from '../helpers/release';

const skip = releasePrerequisites('DaemonSet suite', { containerd: true });
if (skip !== undefined) {
  t.comment(`skipping the DaemonSet suite: ${skip}`);
  t.pass('skipped', { skip });
  process.exit(0);
}
t.setTimeout(1_200_000);

const CRI = 'io.containerd.grpc.v1.cri';
const BINARY = '/usr/local/bin/strict-groups-runtime';
const FEATURE_FILE = '/etc/kubernetes/node-feature-discovery/features.d/strict-groups';
const RECORD = '/var/lib/strict-groups/installed.json';
const PENDING = '/var/lib/strict-groups/restart-pending';
const STAGED = '/var/lib/strict-groups/daemonset/strict-groups-runtime';
const CALLS = '/var/log/systemctl-calls';
/** Bounds on each wait: a pod's work takes seconds; these only stop a hang. */
const START_MS = 120_000;
const EXIT_MS = 30_000;

const installer = podContainer(parseManifest(readFileSync(join(ROOT, 'deploy', 'daemonset.yaml'), 'utf8'), 'deploy/daemonset.yaml'));
const cleanup = podContainer(parseManifest(readFileSync(join(ROOT, 'deploy', 'cleanup.yaml'), 'utf8'), 'deploy/cleanup.yaml'));

const work = tempDir('sg-daemonset-');
const stateRoot = join(work, 'runc');
let rootfs = '';
let imageConfig: ImageConfig;
let amd64Binary = Buffer.alloc(0);
const pods: Pod[] = [];
t.before(async () => {
  const release = await packedRelease();
  const layout = readImageArchive(join(release, `strict-groups-${VERSION}.oci.tar`), join(work, 'layout'));
  const image = layout.images.get('amd64')!;
  imageConfig = image.config;
  rootfs = unpackRootfs(image, join(work, 'rootfs'));
  amd64Binary = readFileSync(join(release, 'strict-groups-runtime-linux-amd64'));
});
t.teardown(async () => {
  for (const pod of pods) await pod.remove();
  rmSync(work, { recursive: true, force: true });
});

let podCount = 0;
/** One pod of a DaemonSet on the node whose / is `tree`. */
function runPod(container: typeof installer, tree: string, name: string): Pod {
  const id = `sg-ds-${process.pid}-${++podCount}-${name}`;
  const pod = startPod(podBundle(join(work, id), rootfs, imageConfig, container, tree), id, stateRoot);
  pods.push(pod);
  return pod;
}

/** A node: the fixture's configuration, runc, the C library the binary needs. */
function node(t: Test): string {
  const tree = hostTree('containerd-1.6-kubeadm');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  makeRunnableHost(tree, join(ROOT, 'dist', 'strict-groups-runtime'));
  return tree;
}

const read = (tree: string, path: string): string | null => (existsSync(join(tree, path)) ? readFileSync(join(tree, path), 'utf8') : null);
const runtimesOf = (dump: string): TomlDoc => at(parseToml(dump), 'plugins', CRI, 'containerd', 'runtimes') as TomlDoc;
/** The feature file's labels, as nfd-worker reads them. */
const labelsOf = (text: string): Record<string, string> =>
  Object.fromEntries(text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#')).map((line) => [line.split('=')[0]!, line.split('=').slice(1).join('=')]));

t.test('installer and cleanup on a node without systemd: installed, advertised, up until SIGTERM, then undone byte for byte', async (t) => {
  const tree = node(t);
  const before = await configDump(tree);
  const original = treeState(tree);

  // --- The installer's first start.
  const first = runPod(installer, tree, 'install-1');
  await first.waitFor(/strict-groups daemonset installed; staying up until SIGTERM/, START_MS);
  t.equal(await first.status(), 'running', 'the pod stays up after installing');
  const log = first.log();
  t.comment(`the installer pod's log:\n${log}`);
  t.match(log, /strict-groups entrypoint: staged \/var\/lib\/strict-groups\/daemonset\/strict-groups-runtime/);
  t.match(log, new RegExp(`strict-groups entrypoint: strict-groups-runtime ${VERSION.replaceAll('.', '\\.')}; running ${STAGED} inside the host root`), "the host's C library runs it");
  t.match(log, /strict-groups install: containerd, handler "strict-groups", host root \/$/m, 'it runs inside the host root');
  t.match(log, /^  installed +\/usr\/local\/bin\/strict-groups-runtime$/m);
  t.match(log, /^  not restarted containerd: no systemd on this host/m, 'the restart that cannot happen here is reported');
  t.notMatch(log, /strict-groups: (internal )?error/, 'and is not fatal');

  const dump = await configDump(tree);
  const handler = runtimesOf(dump)['strict-groups'] as TomlDoc;
  t.equal(handler?.['runtime_type'], 'io.containerd.runc.v2', "the handler is in containerd's own config dump");
  t.equal(at(handler, 'options', 'BinaryName'), BINARY);
  const withoutHandler = parseToml(dump);
  delete (at(withoutHandler, 'plugins', CRI, 'containerd', 'runtimes') as TomlDoc)['strict-groups'];
  t.same(withoutHandler, parseToml(before), 'and nothing else changed in it');

  t.ok(readFileSync(join(tree, BINARY)).equals(amd64Binary), 'the binary on the host is the release binary');
  t.match(log, new RegExp(`^  removed +${STAGED} \\(the image's entrypoint staged it`, 'm'));
  t.notOk(existsSync(join(tree, STAGED)), 'the staged copy is gone once the same binary is installed');
  t.same(labelsOf(read(tree, FEATURE_FILE) ?? ''), {
    'feature.node.kubernetes.io/strict-groups.handler': 'strict-groups',
    'feature.node.kubernetes.io/strict-groups.version': VERSION,
  }, 'the feature file appears, with the label runtimeclass.yaml selects');
  const runtimeClass = parseManifest(readFileSync(join(ROOT, 'runtimeclass.yaml'), 'utf8'), 'runtimeclass.yaml') as any;
  t.match(labelsOf(read(tree, FEATURE_FILE) ?? ''), runtimeClass.scheduling.nodeSelector);
  t.match(JSON.parse(read(tree, RECORD) ?? '{}'), { version: VERSION, binary: BINARY }, 'the installed version is recorded on the host');
  t.equal(read(tree, PENDING), 'containerd\n', 'the restart it owes is kept on the host');

  // --- SIGTERM, as a rollout or a drain sends it.
  const installed = treeState(tree);
  const stopped = await first.terminate(EXIT_MS);
  t.same(stopped, { code: 0, signal: null }, 'exits 0 on SIGTERM');
  t.match(first.log(), /strict-groups daemonset SIGTERM: exiting; the node stays installed/);
  t.same(treeState(tree), installed, 'and leaves the node installed, as it was');

  // --- A second start, as after a rollout of the same version.
  const second = runPod(installer, tree, 'install-2');
  await second.waitFor(/strict-groups daemonset installed; staying up until SIGTERM/, START_MS);
  t.same(treeState(tree), installed, 'a second start changes no byte (nor any inode or mtime)');
  t.notMatch(second.log(), /staged/, 'nothing is staged');
  t.match(second.log(), `; running ${BINARY} inside the host root`, 'the installed binary, the same as the image\'s, runs');
  for (const what of [BINARY, RECORD, FEATURE_FILE, 'CRI runtime configuration']) {
    t.match(second.log(), new RegExp(`^  unchanged +${what.replaceAll('.', '\\.')}`, 'm'), `unchanged: ${what}`);
  }
  t.same(await second.terminate(EXIT_MS), { code: 0, signal: null });

  // --- The cleanup DaemonSet.
  const removal = runPod(cleanup, tree, 'cleanup');
  await removal.waitFor(/strict-groups daemonset uninstalled: finished on this node; staying up/, START_MS);
  t.equal(await removal.status(), 'running', 'the cleanup pod stays up so that its log can be read');
  t.match(removal.log(), /^  removed +\/etc\/kubernetes\/node-feature-discovery\/features\.d\/strict-groups/m);
  t.equal(await configDump(tree), before, "containerd's config dump is the original, byte for byte");
  t.equal(read(tree, FEATURE_FILE), null, 'the feature file is gone');
  const left = treeState(tree);
  for (const path of Object.keys(original).filter((path) => path.startsWith('etc/containerd/'))) {
    t.equal(left[path]?.replace(/ino \d+ .* sha256/, 'sha256'), original[path]?.replace(/ino \d+ .* sha256/, 'sha256'), `${path}: the original bytes`);
  }
  t.ok(existsSync(join(tree, BINARY)), 'the binary stays for containers that still use it');
  t.same(await removal.terminate(EXIT_MS), { code: 0, signal: null });
  t.comment(`the cleanup pod's log:\n${removal.log()}`);
});

t.test("on a host with systemd: the host's systemctl, once per change, again after a failure, never without cause", async (t) => {
  const tree = node(t);
  // The stand-in: the host's systemctl, run inside the host root; it records each call.
  mkdirSync(join(tree, 'run', 'systemd', 'system'), { recursive: true });
  mkdirSync(join(tree, 'bin'), { recursive: true });
  mkdirSync(join(tree, 'usr', 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(tree, 'bin', 'busybox'));
  mkdirSync(join(tree, 'var', 'log'), { recursive: true });
  writeFileSync(
    join(tree, 'usr', 'bin', 'systemctl'),
    [
      '#!/bin/busybox sh',
      `echo "$*|SYSTEMD_OFFLINE=\${SYSTEMD_OFFLINE-}|SYSTEMD_IGNORE_CHROOT=\${SYSTEMD_IGNORE_CHROOT-}|SYSTEMD_IN_CHROOT=\${SYSTEMD_IN_CHROOT-}" >> ${CALLS}`,
      'if [ -e /etc/systemctl-fails ]; then echo "Job for $2 failed." >&2; exit 1; fi',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const calls = (): string[] => (read(tree, CALLS) ?? '').split('\n').filter(Boolean);
  const RESTART = 'try-restart containerd.service|SYSTEMD_OFFLINE=0|SYSTEMD_IGNORE_CHROOT=1|SYSTEMD_IN_CHROOT=0';

  // A restart that fails: the pod fails (the kubelet starts it again), nothing is advertised, the restart stays owed.
  writeFileSync(join(tree, 'etc', 'systemctl-fails'), '');
  const failing = runPod(installer, tree, 'install-fails');
  t.same(await failing.exited(START_MS), { code: 1, signal: null }, 'a failed restart fails the pod');
  t.match(failing.log(), /try-restart containerd\.service failed: Job for containerd\.service failed\./);
  t.same(calls(), [RESTART]);
  t.equal(read(tree, PENDING), 'containerd\n', 'the restart stays owed');
  t.equal(read(tree, FEATURE_FILE), null, 'a node whose runtime did not restart is not advertised');
  t.ok(existsSync(join(tree, STAGED)), 'the failed start left its staged copy');
  rmSync(join(tree, 'etc', 'systemctl-fails'));

  // The next start finds nothing to change, and restarts all the same.
  const retry = runPod(installer, tree, 'install-retry');
  await retry.waitFor(/strict-groups daemonset installed; staying up/, START_MS);
  t.match(retry.log(), /^  unchanged +CRI runtime configuration$/m);
  t.match(retry.log(), /^  restarted +containerd through the host's systemd \(a change from an earlier start was pending\)$/m);
  t.same(calls(), [RESTART, RESTART]);
  t.equal(read(tree, PENDING), null, 'nothing is owed any more');
  t.notOk(existsSync(join(tree, STAGED)), 'the start that runs the installed binary removes a staged copy left behind');
  t.ok(read(tree, FEATURE_FILE), 'advertised once the runtime restarted');
  t.same(await retry.terminate(EXIT_MS), { code: 0, signal: null });

  // A start with nothing to do restarts nothing.
  const installed = treeState(tree);
  const again = runPod(installer, tree, 'install-again');
  await again.waitFor(/strict-groups daemonset installed; staying up/, START_MS);
  t.match(again.log(), /^  unchanged +nothing to restart$/m);
  t.same(calls(), [RESTART, RESTART], 'no restart');
  t.same(treeState(tree), installed, 'no byte changed');
  t.same(await again.terminate(EXIT_MS), { code: 0, signal: null });

  // An upgrade: another build is installed and running (a static busybox
  // stands in for it, as a process started from the installed path); the
  // new one replaces it atomically and nothing restarts.
  writeFileSync(join(tree, BINARY), readFileSync('/bin/busybox'), { mode: 0o755 });
  writeFileSync(join(tree, RECORD), readFileSync(join(tree, RECORD), 'utf8').replace(`"version": "${VERSION}"`, '"version": "0.0.1"'));
  writeFileSync(join(tree, FEATURE_FILE), readFileSync(join(tree, FEATURE_FILE), 'utf8').replace(`version=${VERSION}`, 'version=0.0.1'));
  const running = spawn(join(tree, BINARY), ['sleep', '600'], { argv0: 'busybox', stdio: 'ignore' });
  t.teardown(() => running.kill('SIGKILL'));
  const upgrade = runPod(installer, tree, 'upgrade');
  await upgrade.waitFor(/strict-groups daemonset installed; staying up/, START_MS);
  t.match(upgrade.log(), /^  installed +\/usr\/local\/bin\/strict-groups-runtime$/m);
  t.match(upgrade.log(), /^  unchanged +CRI runtime configuration$/m);
  t.match(upgrade.log(), /^  unchanged +nothing to restart$/m);
  t.same(calls(), [RESTART, RESTART], 'an upgrade restarts nothing');
  t.ok(readFileSync(join(tree, BINARY)).equals(amd64Binary), 'the new binary is in place');
  t.match(upgrade.log(), /staged /);
  t.notOk(existsSync(join(tree, STAGED)), 'and the staged copy gone');
  t.equal(running.exitCode, null, 'the process started from the old binary runs on');
  t.match(readlinkSync(`/proc/${running.pid}/exe`), /\(deleted\)$/, 'on the old file, replaced rather than written over');
  t.ok(readFileSync(`/proc/${running.pid}/exe`).equals(readFileSync('/bin/busybox')), 'which is whole');
  t.match(JSON.parse(read(tree, RECORD) ?? '{}'), { version: VERSION }, 'the record says the new version');
  t.match(read(tree, FEATURE_FILE), `strict-groups.version=${VERSION}\n`, 'and so does the node label');
  t.same(await upgrade.terminate(EXIT_MS), { code: 0, signal: null });
  running.kill('SIGKILL');

  // The cleanup changes the configuration: one restart.
  const removal = runPod(cleanup, tree, 'cleanup');
  await removal.waitFor(/uninstalled: finished on this node/, START_MS);
  t.match(removal.log(), /^  restarted +containerd through the host's systemd$/m);
  t.same(calls(), [RESTART, RESTART, RESTART]);
  t.same(await removal.terminate(EXIT_MS), { code: 0, signal: null });
});

t.test('a host whose C library cannot run the binary is left as it was', async (t) => {
  // A host root with a configuration and no C library at all (as a musl or
  // a too-old glibc host would fail the same way: the loader refuses).
  const tree = hostTree('containerd-1.6-kubeadm');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  addHostMountpoints(tree);
  const before = treeState(tree);
  const pod = runPod(installer, tree, 'no-libc');
  t.same(await pod.exited(START_MS), { code: 1, signal: null });
  t.match(pod.log(), /strict-groups entrypoint: this host cannot run strict-groups-runtime .* nothing was changed/);
  const after = treeState(tree);
  const added = Object.keys(after).filter((path) => !(path in before));
  t.same(added.sort(), ['var', 'var/lib', 'var/lib/strict-groups', 'var/lib/strict-groups/daemonset'], 'nothing is left but the empty staging directory');
  t.equal(read(tree, '/etc/containerd/config.toml'), readFileSync(join(ROOT, 'test/fixtures/installer/containerd-1.6-kubeadm/etc/containerd/config.toml'), 'utf8'));
});
