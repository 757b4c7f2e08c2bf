/**
 * npm run release's output (src/build/release.mts over the current build):
 * every artifact there and nothing else, SHA256SUMS as sha256sum checks it,
 * the same bytes from a second pack, an OCI image archive that skopeo copies
 * whole as the README says with its digests kept, the manifests pinning that
 * digest and still valid against the API schema, install.sh finding its
 * binary in the release directory, and the arm64 binary and busybox doing
 * their work under qemu-aarch64-static, with the same answers as amd64.
 * The image's DaemonSets through runc: daemonset.test.ts.
 */
import t from 'tap';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostTree } from '../helpers/install';
import { parseManifest, schemaErrors, typeErrors } from '../helpers/manifests';
import { ROOT, SEED_GIDS, SHIM, makeBundle } from '../helpers/oci';
import { ARM64_SYSROOT, TEST_EPOCH, VERSION, packRelease, packedRelease, readImageArchive, releasePrerequisites, tempDir, unpackRootfs, type Layout } from '../helpers/release';

const skip = releasePrerequisites('release suite', { qemu: true });
if (skip !== undefined) {
  t.comment(`skipping the release suite: ${skip}`);
  t.pass('skipped', { skip });
  process.exit(0);
}
// Two packs of two 120 MB executables, and an emulated arm64 Node.
t.setTimeout(1_200_000);

const ARCHIVE = `strict-groups-${VERSION}.oci.tar`;
const ARTIFACTS = [
  'SHA256SUMS',
  ARCHIVE,
  'deploy/cleanup.yaml',
  'deploy/daemonset.yaml',
  'install.sh',
  'runtimeclass.yaml',
  'strict-groups-runtime-linux-amd64',
  'strict-groups-runtime-linux-arm64',
].sort();
/** ELF e_machine: x86-64 and aarch64. */
const MACHINE = { amd64: 62, arm64: 183 } as const;

const files = (dir: string, prefix = ''): string[] =>
  readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(dir, join(prefix, e.name)) : [join(prefix, e.name)]));

function elfMachine(path: string): number {
  const head = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  return head.readUInt16LE(18);
}

const work = tempDir('sg-release-');
t.teardown(() => rmSync(work, { recursive: true, force: true }));
let release = '';
let layout: Layout;
t.before(async () => {
  release = await packedRelease();
  layout = readImageArchive(join(release, ARCHIVE), join(work, 'layout'));
  for (const [arch, image] of layout.images) unpackRootfs(image, join(work, `rootfs-${arch}`));
});

t.test('every artifact, and SHA256SUMS over all of them', async (t) => {
  t.same(files(release).sort(), ARTIFACTS);
  const sums = readFileSync(join(release, 'SHA256SUMS'), 'utf8');
  t.same(sums.trim().split('\n').map((line) => line.split('  ')[1]), ARTIFACTS.filter((a) => a !== 'SHA256SUMS'), 'one line per artifact, sorted');
  const check = await execa('sha256sum', ['--check', '--strict', 'SHA256SUMS'], { cwd: release, reject: false });
  t.equal(check.exitCode, 0, `sha256sum --check: ${check.stdout}${check.stderr}`);
  t.ok(readFileSync(join(release, 'strict-groups-runtime-linux-amd64')).equals(readFileSync(SHIM)), 'the amd64 binary is the build');
  for (const arch of ['amd64', 'arm64'] as const) {
    t.equal(elfMachine(join(release, `strict-groups-runtime-linux-${arch}`)), MACHINE[arch], `the ${arch} binary is for ${arch}`);
    t.equal(statSync(join(release, `strict-groups-runtime-linux-${arch}`)).mode & 0o777, 0o755);
  }
  t.equal(readFileSync(join(release, 'install.sh'), 'utf8'), readFileSync(join(ROOT, 'install.sh'), 'utf8'));
  t.equal(readFileSync(join(release, 'runtimeclass.yaml'), 'utf8'), readFileSync(join(ROOT, 'runtimeclass.yaml'), 'utf8'));
});

t.test('a second pack gives the same bytes', async (t) => {
  const again = join(work, 'again');
  await packRelease(again);
  t.equal(readFileSync(join(again, 'SHA256SUMS'), 'utf8'), readFileSync(join(release, 'SHA256SUMS'), 'utf8'));
  rmSync(again, { recursive: true, force: true });
});

t.test('the image: one index for linux/amd64 and linux/arm64, tagged with the version, every timestamp the same', async (t) => {
  t.equal(layout.refName, VERSION);
  t.same([...layout.images.keys()].sort(), ['amd64', 'arm64']);
  t.equal(layout.indexAnnotations['org.opencontainers.image.version'], VERSION);
  const created = new Date(TEST_EPOCH * 1000).toISOString().replace('.000Z', 'Z');
  for (const [arch, image] of layout.images) {
    t.equal(image.config.created, created, `${arch}: created at SOURCE_DATE_EPOCH`);
    t.same(image.config.config.Entrypoint, ['/strict-groups/entrypoint']);
    t.equal(image.layers.length, 1);
    // Owners by number, one time, entries sorted: nothing of the build machine.
    const listing = execFileSync('tar', ['--list', '--verbose', '--gzip', '--numeric-owner', '--full-time', '--file', image.layers[0]!], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    const lines = listing.trim().split('\n').map((line) => line.split(/\s+/));
    t.ok(lines.every((f) => f[1] === '0/0'), `${arch}: every entry owned by 0/0`);
    t.ok(lines.every((f) => `${f[3]}T${f[4]}Z` === created), `${arch}: every entry dated ${created}`);
    const names = lines.map((f) => f[5]!.replace(/\/$/, ''));
    t.same(names, [...names].sort(), `${arch}: entries sorted`);

    const rootfs = join(work, `rootfs-${arch}`);
    t.ok(readFileSync(join(rootfs, 'strict-groups', 'strict-groups-runtime')).equals(readFileSync(join(release, `strict-groups-runtime-linux-${arch}`))), `${arch}: the image holds the ${arch} binary`);
    t.equal(elfMachine(join(rootfs, 'bin', 'busybox')), MACHINE[arch as keyof typeof MACHINE], `${arch}: busybox for ${arch}`);
    t.equal(readFileSync(join(rootfs, 'strict-groups', 'entrypoint'), 'utf8'), readFileSync(join(ROOT, 'deploy', 'entrypoint.sh'), 'utf8'));
    t.ok(statSync(join(rootfs, 'usr', 'share', 'doc', 'busybox-static', 'copyright')).isFile(), "busybox's licence travels with it");
  }
});

t.test('skopeo copies the archive whole, as the README says, and keeps the digest the manifests pin', async (t) => {
  const copy = join(work, 'skopeo-copy');
  const result = await execa('skopeo', ['copy', '--all', '--preserve-digests', `oci-archive:${join(release, ARCHIVE)}:${VERSION}`, `oci:${copy}:${VERSION}`], { reject: false, all: true });
  t.equal(result.exitCode, 0, result.all);
  const index = JSON.parse(readFileSync(join(copy, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  t.equal(index.manifests[0]?.digest, layout.indexDigest, 'the copied index has the same digest');
  for (const arch of ['amd64', 'arm64']) {
    const inspect = await execa('skopeo', ['inspect', '--override-arch', arch, `oci:${copy}:${VERSION}`]);
    t.equal((JSON.parse(inspect.stdout) as { Architecture: string }).Architecture, arch, `skopeo finds the ${arch} image`);
  }
});

t.test("the release's manifests: the image pinned by digest, nothing else changed, valid against the API schema", async (t) => {
  const image = `registry.invalid/strict-groups:${VERSION}@${layout.indexDigest}`;
  const checked = [];
  for (const name of ['daemonset.yaml', 'cleanup.yaml']) {
    const shipped = readFileSync(join(release, 'deploy', name), 'utf8');
    const source = readFileSync(join(ROOT, 'deploy', name), 'utf8');
    const manifest = parseManifest(shipped, name) as any;
    t.equal(manifest.spec.template.spec.containers[0].image, image, `${name}: the image by tag and digest`);
    const changed = shipped.split('\n').filter((line, i) => line !== source.split('\n')[i]);
    t.same(changed, [`          image: ${image}`], `${name}: only the image line differs from deploy/${name}`);
    t.same(await schemaErrors(manifest, name), [], `${name}: schema`);
    checked.push({ where: name, manifest });
  }
  t.same(typeErrors(checked), [[], []], 'no unknown field');
});

t.test('install.sh runs from the release directory with the binary of this architecture', async (t) => {
  const tree = hostTree('containerd-1.6-kubeadm');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const run = await execa(join(release, 'install.sh'), ['--host-root', tree, '--cri', 'containerd', '--dry-run'], { reject: false, all: true });
  t.equal(run.exitCode, 0, run.all);
  t.match(run.stdout, /^  would install +\/usr\/local\/bin\/strict-groups-runtime$/m);
  t.match(run.stdout, /^  would edit +\/etc\/containerd\/config\.toml/m);
});

t.test('arm64 under qemu-aarch64-static: the binary answers as the amd64 one does; busybox runs', async (t) => {
  const arm64 = join(release, 'strict-groups-runtime-linux-arm64');
  const amd64 = join(release, 'strict-groups-runtime-linux-amd64');
  const emulated = (args: string[], env: Record<string, string> = {}) =>
    execa('qemu-aarch64-static', ['-L', ARM64_SYSROOT, arm64, ...args], { reject: false, env, timeout: 300_000 });
  const native = (args: string[], env: Record<string, string> = {}) => execa(amd64, args, { reject: false, env, timeout: 60_000 });

  const version = await emulated(['strict-groups', 'version']);
  t.equal(version.exitCode, 0, version.stderr);
  t.equal(version.stdout, `strict-groups-runtime ${VERSION}`);

  // The dry run of a create: the seed bundle, alice in the image's group 50000.
  const bundle = makeBundle(join(work, 'seed'), { args: ['id'] });
  const config = join(work, 'strict-groups.json');
  writeFileSync(config, JSON.stringify({ runtime: '/usr/sbin/runc', auditLog: null }));
  const env = { STRICT_GROUPS_CONFIG: config };
  const [arm, x86] = [await emulated(['strict-groups', 'dry-run', '--bundle', bundle], env), await native(['strict-groups', 'dry-run', '--bundle', bundle], env)];
  t.equal(arm.exitCode, 0, arm.stderr);
  t.match(JSON.parse(arm.stdout), { policy: 'Strict', imageGids: [50000], removed: [50000], additionalGids: { before: SEED_GIDS, after: [1000, 60000] } });
  t.equal(arm.stdout, x86.stdout, 'the same decision, byte for byte, as amd64');

  // The installer's dry run on a node's configuration.
  const tree = hostTree('containerd-1.6-kubeadm');
  t.teardown(() => rmSync(tree, { recursive: true, force: true }));
  const args = ['strict-groups', 'install', '--host-root', tree, '--cri', 'containerd', '--dry-run'];
  const [armInstall, x86Install] = [await emulated(args), await native(args)];
  t.equal(armInstall.exitCode, 0, armInstall.stderr);
  t.match(armInstall.stdout, /^  would edit +\/etc\/containerd\/config\.toml/m);
  t.equal(armInstall.stdout, x86Install.stdout, 'the same plan, byte for byte, as amd64');

  const busybox = await execa('qemu-aarch64-static', [join(work, 'rootfs-arm64', 'bin', 'busybox'), 'echo', 'busybox runs'], { reject: false });
  t.equal(busybox.stdout, 'busybox runs', "the arm64 image's static busybox needs no library");
});
