/**
 * A Kubernetes node for the CRI suites, short of the kubelet: a real
 * containerd (1.6 from Debian 12, 1.7 from trixie or 2.1 from sid, each with
 * its own containerd-shim-runc-v2 first on PATH) wired by the project's own
 * install.sh, driven through the CRI gRPC API with the requests the kubelet
 * makes.
 *
 * The node's files live in a temporary "host root" tree. containerd runs on
 * private paths (root, state, sockets) in a private mount namespace in which
 * the tree's /usr/local/bin, /etc/strict-groups, a temporary
 * /var/log/strict-groups and the tree's /run/containerd are bind-mounted over
 * the host's, so the host paths that install.sh writes into the configuration
 * reach the tree's files exactly as on a real node, and nothing on the host
 * changes.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, closeSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { nodeConfig } from './containerd-config';
import { CriClient, type ContainerConfig, type ContainerStatus, type NamespaceOption, type PodSandboxConfig, type SecurityContext, type SupplementalGroupsPolicy } from './cri';
import { buildImageArchive, type ImageOptions } from './oci-image';
import { ROOT, SEED_GROUP, SEED_PASSWD, SHIM, missingPrograms, programPath, skipOrFail } from './oci';
import { containerdBuild, type ContainerdBuild, type ContainerdLine } from './runtimes';

export const HANDLER = 'strict-groups';
/** containerd's CRI keeps its containers and images in this namespace. */
const CRI_NAMESPACE = 'k8s.io';
const INSTALL = join(ROOT, 'install.sh');
const BUSYBOX = '/bin/busybox';

/** The seed image of FACTS.md: alice (1000) is in group-in-image (50000). */
export const SEED_IMAGE = 'localhost/strict-groups-e2e/seed:1';
const PAUSE_IMAGE = 'localhost/strict-groups-e2e/pause:1';
/** Every node has these; a suite may add its own. */
const NODE_IMAGES: ImageOptions[] = [
  { name: SEED_IMAGE, passwd: SEED_PASSWD, group: SEED_GROUP, user: '1000', cmd: ['sleep', '3600'] },
  // The sandbox's pause process, as registry.k8s.io/pause runs it (user
  // 65535); a plain sleep will do, as pod teardown kills it with SIGKILL.
  { name: PAUSE_IMAGE, user: '65535', entrypoint: ['sleep'], cmd: ['86400'] },
];

/** The host paths the shim's configuration names, shadowed inside the namespace. */
const SHADOWED = ['/usr/local/bin', '/etc/strict-groups', '/var/log/strict-groups', '/run/containerd'] as const;

/** What systemd gives a service: containerd, and through it the shims and runtimes, inherit nothing of the test's environment. */
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const POLL_MS = 50;
const CONTAINERD_READY_MS = 30_000;
const IMAGE_READY_MS = 30_000;
const CONTAINER_OUTPUT_MS = 20_000;
const CONTAINERD_EXIT_MS = 10_000;
const EXEC_TIMEOUT_S = 10;
/** install.sh may build the binary first when the sources are newer than it. */
const INSTALL_MS = 180_000;
const COMMAND_MS = 60_000;

/** A pod of one container, as the kubelet would send it for a hostNetwork pod. */
export interface PodSpec {
  name: string;
  runtimeHandler: string;
  annotations?: Record<string, string>;
  /** The container's image; the seed image when absent. */
  image?: string;
  /** Absent: left out of the CRI requests, as the kubelet does for a pod without runAsUser. */
  runAsUser?: number;
  runAsGroup?: number;
  /** What the kubelet sends: the pod's supplementalGroups, then fsGroup, then volume gids. */
  supplementalGroups: number[];
  /** The native policy (CRI 1.31+); absent: not sent, as a kubelet before 1.31 does. */
  supplementalGroupsPolicy?: SupplementalGroupsPolicy;
  command: string[];
}

export interface Sandbox {
  id: string;
  spec: PodSpec;
  config: PodSandboxConfig;
  /** Containers created in it, for teardown. */
  containers: string[];
}

export interface Pod extends Sandbox {
  containerId: string;
}

/** One line of the shim's audit trail (README, "Audit trail"). */
export type AuditEntry = Record<string, unknown>;

export type NodeReadiness = { build: ContainerdBuild; skip: false } | { build?: undefined; skip: string };

/**
 * Whether a node of this containerd line can run here: outside CI a missing
 * prerequisite skips with the reason, in CI it fails.
 */
export function prerequisites(line: ContainerdLine): NodeReadiness {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  missing.push(...missingPrograms(['runc', 'unshare', 'setpriv', 'tar']));
  if (!existsSync(BUSYBOX)) missing.push(`${BUSYBOX} (busybox-static)`);
  if (!existsSync(SHIM)) missing.push(`${SHIM} (npm run build)`);
  if (!existsSync(INSTALL)) missing.push(INSTALL);
  const build = containerdBuild(line);
  if ('missing' in build) missing.push(build.missing);
  else missing.push(...['ctr', 'containerd-shim-runc-v2'].map((name) => join(build.binDir, name)).filter((path) => !existsSync(path)));
  const skip = skipOrFail(`containerd ${line} suite`, missing);
  if (skip !== undefined) return { skip };
  return 'missing' in build ? { skip: build.missing } : { build, skip: false };
}

/** Polls `probe` until it returns a value, at most `timeoutMs`. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(POLL_MS);
  }
}

/**
 * The host directories the nodes bind-mount over, made when missing and
 * removed by the last node of this process to stop, so nodes may run side
 * by side: a directory another node's namespace still mounts over cannot be
 * removed.
 */
const mountPoints = {
  users: 0,
  created: [] as string[],
  acquire(): void {
    if (this.users++ > 0) return;
    for (const mountPoint of SHADOWED) {
      if (!existsSync(mountPoint)) {
        mkdirSync(mountPoint, { recursive: true });
        this.created.push(mountPoint);
      }
    }
  },
  /** The directories to remove now: those this process made, once no node uses them. */
  release(): string[] {
    if (--this.users > 0) return [];
    return this.created.splice(0).reverse();
  },
};

/** Host network, own PID namespace, pod IPC: what the kubelet asks for a hostNetwork pod. */
const HOST_NETWORK: NamespaceOption = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' };

export interface NodeOptions {
  build: ContainerdBuild;
  /** Images besides the seed and pause images. */
  images?: ImageOptions[];
  /**
   * More handlers like install.sh's, each with a binary of its own (the
   * benchmarks' earlier build, say); written after install.sh's block.
   */
  extraHandlers?: { name: string; binary: string }[];
}

export class ContainerdNode {
  readonly build: ContainerdBuild;
  private readonly extraHandlers: readonly { name: string; binary: string }[];
  /** containerd's CRI socket. */
  readonly socket: string;
  readonly auditLog: string;
  /** Everything of this node's on the host's file system: the tree, logs, images. */
  private readonly work: string;
  /** The node's "host root", what install.sh gets as --host-root. */
  private readonly tree: string;
  private readonly config: string;
  private readonly shadows: Record<(typeof SHADOWED)[number], string>;
  private readonly containerdLog: string;
  private readonly podLogs: string;
  private readonly images: ImageOptions[];
  /** Every pod of this node gets this cgroup parent, removed at the end. */
  private readonly cgroupParent = `/strict-groups-e2e-${randomUUID().slice(0, 8)}`;
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly imageIds = new Map<string, string>();
  private holdsMountPoints = false;
  private containerd: ChildProcess | undefined;
  private client: CriClient | undefined;
  /** What install.sh printed, for a suite to show. */
  installReport = '';

  private constructor(work: string, options: NodeOptions) {
    this.build = options.build;
    this.images = [...NODE_IMAGES, ...(options.images ?? [])];
    this.extraHandlers = options.extraHandlers ?? [];
    this.work = work;
    this.tree = join(work, 'host');
    this.config = join(this.tree, 'etc/containerd/config.toml');
    this.socket = join(this.tree, 'run/containerd/containerd.sock');
    const logDir = join(work, 'var-log-strict-groups');
    this.auditLog = join(logDir, 'audit.log');
    this.shadows = {
      '/usr/local/bin': join(this.tree, 'usr/local/bin'),
      '/etc/strict-groups': join(this.tree, 'etc/strict-groups'),
      '/var/log/strict-groups': logDir,
      '/run/containerd': join(this.tree, 'run/containerd'),
    };
    this.containerdLog = join(work, 'containerd.log');
    this.podLogs = join(work, 'pods');
  }

  /** Installs, starts containerd and loads the images; cleans up after itself if any step fails. */
  static async start(options: NodeOptions): Promise<ContainerdNode> {
    const node = new ContainerdNode(mkdtempSync(join(tmpdir(), `sg-cri-${options.build.line}-`)), options);
    try {
      const archives = node.buildImages();
      node.prepareTree();
      node.install();
      await node.startContainerd();
      for (const [name, archive] of archives) await node.importImage(name, archive);
      return node;
    } catch (error) {
      await node.stop().catch(() => undefined);
      throw error;
    }
  }

  /** "containerd 1.7.24~ds1", as the suites name a node. */
  get label(): string {
    return `containerd ${this.build.version}`;
  }

  /** Where containerd-shim-runc-v2 keeps runc's state for the CRI's containers: `--root` for runc, and for `strict-groups report`. */
  get runcRoot(): string {
    return join(this.shadows['/run/containerd'], 'runc', CRI_NAMESPACE);
  }

  get cri(): CriClient {
    if (this.client === undefined) throw new Error('containerd is not running');
    return this.client;
  }

  private buildImages(): Map<string, string> {
    const archives = new Map<string, string>();
    this.images.forEach((image, i) => {
      const dir = join(this.work, 'images', String(i));
      mkdirSync(dir, { recursive: true });
      archives.set(image.name, buildImageArchive(dir, image));
    });
    return archives;
  }

  private prepareTree(): void {
    const cniBin = join(this.work, 'cni/bin');
    const cniConf = join(this.work, 'cni/conf');
    for (const dir of [...Object.values(this.shadows), join(this.tree, 'etc/containerd'), cniBin, cniConf, this.podLogs]) {
      mkdirSync(dir, { recursive: true });
    }
    writeFileSync(this.config, nodeConfig(this.build, { tree: this.tree, cniBin, cniConf, sandboxImage: PAUSE_IMAGE }));
    // The installer looks for the runc handler's runtime in the tree, as on
    // the host; inside the namespace that path is the host's own runc.
    const runc = programPath('runc');
    mkdirSync(join(this.tree, dirname(runc)), { recursive: true });
    copyFileSync(runc, join(this.tree, runc), constants.COPYFILE_FICLONE);
  }

  /** The project's installer, as an operator runs it on a node (minus the restart, which is ours). */
  private install(): void {
    try {
      // The tree holds no containerd to ask, so its version is given, as from
      // a DaemonSet that cannot run the node's binary; test/installer asks the real one.
      const version = this.build.version.replace(/[~+].*$/, '');
      this.installReport = execFileSync(INSTALL, ['--host-root', this.tree, '--cri', 'containerd', '--containerd-version', version, '--no-restart'], {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: 'pipe',
        timeout: INSTALL_MS,
      });
    } catch (error) {
      const { status, stdout, stderr } = error as { status: number | null; stdout: string; stderr: string };
      throw new Error(`${INSTALL} exited ${status} on ${this.label}'s configuration (${this.config}):\n${stdout}${stderr}`);
    }
    const runtimes = this.build.configVersion === 2 ? 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes' : 'plugins."io.containerd.cri.v1.runtime".containerd.runtimes';
    // TOML basic strings read JSON's escapes.
    const toml = (value: string): string => JSON.stringify(value);
    for (const { name, binary } of this.extraHandlers) {
      appendFileSync(
        this.config,
        `\n[${runtimes}.${toml(name)}]\n  runtime_type = "io.containerd.runc.v2"\n  pod_annotations = ["strict-groups.io/*"]\n` +
          `  [${runtimes}.${toml(name)}.options]\n    BinaryName = ${toml(binary)}\n    SystemdCgroup = false\n`,
      );
    }
  }

  /** The configuration containerd runs with: the operator's file as install.sh left it. */
  configText(): string {
    return readFileSync(this.config, 'utf8');
  }

  private async startContainerd(): Promise<void> {
    mountPoints.acquire();
    this.holdsMountPoints = true;
    const binds = SHADOWED.map((target, i) => `mount --bind "$${i + 1}" ${target}`);
    const script = [
      'set -e',
      ...binds,
      `shift ${SHADOWED.length}`,
      // containerd dies with the test process however that ends; it is the
      // direct child of this process (unshare and sh exec, they do not fork).
      'exec setpriv --pdeathsig TERM "$1" --config "$2"',
    ].join('\n');
    const log = openSync(this.containerdLog, 'a');
    try {
      this.containerd = spawn(
        'unshare',
        ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...SHADOWED.map((target) => this.shadows[target]), join(this.build.binDir, 'containerd'), this.config],
        // Its own containerd-shim-runc-v2 first: containerd finds the shim on PATH.
        { env: { PATH: `${this.build.binDir}:${SERVICE_PATH}` }, stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }

    await waitFor(`containerd's socket ${this.socket}`, CONTAINERD_READY_MS, () => {
      this.assertContainerdRunning();
      return existsSync(this.socket) || undefined;
    });
    // The client connects only once the socket exists: gRPC backs off for
    // seconds after a failed connection.
    this.client = new CriClient(this.socket);
    await waitFor('the CRI Version call to succeed', CONTAINERD_READY_MS, () => {
      this.assertContainerdRunning();
      return this.cri.version().catch(() => undefined);
    });
  }

  private assertContainerdRunning(): void {
    const containerd = this.containerd;
    if (containerd === undefined || containerd.exitCode === null && containerd.signalCode === null) return;
    throw new Error(`containerd exited (${containerd.exitCode ?? containerd.signalCode}); last lines of ${this.containerdLog}:\n${this.containerdLogTail()}`);
  }

  private containerdLogTail(lines = 20): string {
    return readFileSync(this.containerdLog, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  }

  /**
   * Loads an image archive into the CRI's namespace, unpacked for the CRI's
   * snapshotter, and waits until the CRI has it: its image store learns of
   * the import from containerd's events, asynchronously.
   */
  private async importImage(name: string, archive: string): Promise<void> {
    const ctr = join(this.build.binDir, 'ctr');
    // ctr 2.x imports through containerd's transfer service by default, which
    // unpacks only for the snapshotters of its own unpack_config (none but
    // the default); --local imports in ctr itself, as 1.x always does.
    const local = this.build.configVersion === 3 ? ['--local'] : [];
    execFileSync(ctr, ['--address', this.socket, '--namespace', CRI_NAMESPACE, 'images', 'import', ...local, '--snapshotter', 'native', archive], { stdio: 'pipe', timeout: COMMAND_MS });
    const image = await waitFor(`the CRI to know image ${name}`, IMAGE_READY_MS, () => this.cri.imageStatus(name));
    this.imageIds.set(name, image.id);
  }

  private sandboxConfig(spec: PodSpec): PodSandboxConfig {
    const uid = randomUUID();
    const namespace = 'strict-groups-e2e';
    return {
      metadata: { name: spec.name, uid, namespace, attempt: 0 },
      log_directory: join(this.podLogs, `${namespace}_${spec.name}_${uid}`),
      annotations: spec.annotations ?? {},
      linux: {
        cgroup_parent: this.cgroupParent,
        security_context: {
          namespace_options: HOST_NETWORK,
          ...identity(spec),
        },
      },
    };
  }

  /** RunPodSandbox, after making the pod's log directory as the kubelet does. */
  async runSandbox(spec: PodSpec): Promise<Sandbox> {
    const config = this.sandboxConfig(spec);
    mkdirSync(config.log_directory, { recursive: true });
    const id = await this.cri.runPodSandbox(config, spec.runtimeHandler);
    const sandbox: Sandbox = { id, spec, config, containers: [] };
    this.sandboxes.set(id, sandbox);
    return sandbox;
  }

  /**
   * CreateContainer for the pod's one container: its image by the id the
   * CRI reported (the kubelet's imageRef), and the pod-level security context
   * copied into the container's, as the kubelet does.
   */
  async createContainer(sandbox: Sandbox): Promise<string> {
    const name = 'main';
    const image = sandbox.spec.image ?? SEED_IMAGE;
    const imageId = this.imageIds.get(image);
    if (imageId === undefined) throw new Error(`${this.label} has no image ${image}`);
    mkdirSync(join(sandbox.config.log_directory, name), { recursive: true });
    const config: ContainerConfig = {
      metadata: { name, attempt: 0 },
      image: { image: imageId, user_specified_image: image },
      command: sandbox.spec.command,
      log_path: `${name}/0.log`,
      linux: {
        security_context: {
          namespace_options: HOST_NETWORK,
          ...identity(sandbox.spec),
        },
      },
    };
    const id = await this.cri.createContainer(sandbox.id, config, sandbox.config);
    sandbox.containers.push(id);
    return id;
  }

  /** RunPodSandbox, CreateContainer, StartContainer: a pod start as the kubelet makes it. */
  async runPod(spec: PodSpec): Promise<Pod> {
    const sandbox = await this.runSandbox(spec);
    const containerId = await this.createContainer(sandbox);
    await this.cri.startContainer(containerId);
    return { ...sandbox, containerId };
  }

  /** The container's first whole stdout line from its CRI log (`<time> stdout F <text>`). */
  async firstOutputLine(pod: Pod): Promise<string> {
    const file = join(pod.config.log_directory, 'main', '0.log');
    try {
      return await waitFor(`a line in ${file}`, CONTAINER_OUTPUT_MS, () => {
        if (!existsSync(file)) return undefined;
        for (const line of readFileSync(file, 'utf8').split('\n')) {
          const match = /^\S+ stdout F (.*)$/.exec(line);
          if (match) return match[1];
        }
        return undefined;
      });
    } catch (error) {
      const status = await this.cri.containerStatus(pod.containerId);
      throw new Error(`${(error as Error).message}; container ${status.state}, exit code ${status.exit_code}, ${status.reason} ${status.message}`);
    }
  }

  /** ExecSync, as an exec probe or `kubectl exec` without a terminal. */
  async exec(pod: Pod, cmd: string[]): Promise<string> {
    const result = await this.cri.execSync(pod.containerId, cmd, EXEC_TIMEOUT_S);
    if (result.exit_code !== 0) throw new Error(`exec ${cmd.join(' ')} exited ${result.exit_code}: ${result.stderr.toString('utf8')}`);
    return result.stdout.toString('utf8');
  }

  containerStatus(pod: Pod): Promise<ContainerStatus> {
    return this.cri.containerStatus(pod.containerId);
  }

  /** The audit trail's lines for one pod. */
  auditEntries(podName: string): AuditEntry[] {
    if (!existsSync(this.auditLog)) return [];
    const lines = readFileSync(this.auditLog, 'utf8').split('\n').filter(Boolean);
    return lines.map((line) => JSON.parse(line) as AuditEntry).filter((entry) => entry.pod === podName);
  }

  /** The kubelet's pod teardown: stop the containers and the sandbox, then remove them. */
  async removePod(sandbox: Sandbox): Promise<void> {
    for (const id of sandbox.containers) await this.cri.stopContainer(id, 0);
    await this.cri.stopPodSandbox(sandbox.id);
    for (const id of sandbox.containers) await this.cri.removeContainer(id);
    await this.cri.removePodSandbox(sandbox.id);
    this.sandboxes.delete(sandbox.id);
  }

  /**
   * Tears everything down, whatever state the node is in: the pods through
   * the CRI, containerd, then whatever outlived it (containers, shims), the
   * cgroups, the files and the mount points this node made. Throws at the
   * end if anything needed force.
   */
  async stop(): Promise<void> {
    const problems: string[] = [];
    const attempt = async (what: string, step: () => unknown): Promise<void> => {
      try {
        await step();
      } catch (error) {
        problems.push(`${what}: ${(error as Error).message}`);
      }
    };
    if (this.client !== undefined) {
      for (const sandbox of [...this.sandboxes.values()]) await attempt(`removing pod ${sandbox.spec.name}`, () => this.removePod(sandbox));
      this.client.close();
      this.client = undefined;
    }
    await attempt('stopping containerd', () => this.stopContainerd());
    await attempt('removing leftover containers', () => this.deleteLeftoverContainers(problems));
    await attempt('killing leftover shims', () => this.killLeftoverShims(problems));
    await attempt('removing cgroups', () => this.removeCgroupParent());
    rmSync(this.work, { recursive: true, force: true });
    if (this.holdsMountPoints) {
      this.holdsMountPoints = false;
      for (const mountPoint of mountPoints.release()) await attempt(`removing ${mountPoint}`, () => rmdirSync(mountPoint));
    }
    if (problems.length > 0) throw new Error(`${this.label} node teardown:\n${problems.join('\n')}`);
  }

  private async stopContainerd(): Promise<void> {
    const containerd = this.containerd;
    if (containerd === undefined || containerd.exitCode !== null || containerd.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => containerd.once('exit', () => resolve()));
    containerd.kill('SIGTERM');
    // Unreferenced: the timer must not keep the test process alive once containerd is gone.
    const timeout = delay(CONTAINERD_EXIT_MS, 'timeout' as const, { ref: false });
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      containerd.kill('SIGKILL');
      await exited;
      throw new Error(`containerd did not exit within ${CONTAINERD_EXIT_MS} ms of SIGTERM; killed`);
    }
  }

  /** Containers the CRI did not remove, straight from runc's state under the node's /run/containerd. */
  private deleteLeftoverContainers(problems: string[]): void {
    const root = this.runcRoot;
    if (!existsSync(root)) return;
    const ids = execFileSync('runc', ['--root', root, 'list', '--quiet'], { encoding: 'utf8', timeout: COMMAND_MS }).split('\n').filter(Boolean);
    for (const id of ids) {
      execFileSync('runc', ['--root', root, 'delete', '--force', id], { stdio: 'ignore', timeout: COMMAND_MS });
      problems.push(`container ${id} was left running; deleted with runc`);
    }
  }

  /** Shims of this node's containerd still alive after it (their command line names its socket). */
  private killLeftoverShims(problems: string[]): void {
    for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue; // gone meanwhile
      }
      const address = argv.indexOf('-address');
      if (address < 0 || argv[address + 1] !== this.socket) continue;
      process.kill(Number(pid), 'SIGKILL');
      problems.push(`shim ${pid} (${argv.join(' ').trim()}) outlived containerd; killed`);
    }
  }

  /** The cgroup parent every pod got, in each hierarchy runc made it in; empty once its containers are gone. */
  private removeCgroupParent(): void {
    const base = '/sys/fs/cgroup';
    for (const hierarchy of [base, ...readdirSync(base).map((name) => join(base, name))]) {
      try {
        rmdirSync(join(hierarchy, this.cgroupParent));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      }
    }
  }
}

/** The identity fields of a security context, sandbox or container alike; what the pod leaves out is not sent. */
function identity(spec: PodSpec): Omit<SecurityContext, 'namespace_options'> {
  return {
    ...(spec.runAsUser !== undefined && { run_as_user: { value: spec.runAsUser } }),
    ...(spec.runAsGroup !== undefined && { run_as_group: { value: spec.runAsGroup } }),
    supplemental_groups: spec.supplementalGroups,
    ...(spec.supplementalGroupsPolicy !== undefined && { supplemental_groups_policy: spec.supplementalGroupsPolicy }),
  };
}
