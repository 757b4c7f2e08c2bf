/**
 * A small CRI v1 client: the RuntimeService and ImageService calls the
 * kubelet makes, over gRPC on the CRI runtime's unix socket, as promises.
 * Messages use the proto's own snake_case field names (test/e2e/cri/api.proto).
 */
import { credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';

const PROTO = join(__dirname, '..', 'e2e', 'cri', 'api.proto');

/** Every call gets a deadline, so a hung runtime fails the suite with a clear error. */
const CALL_TIMEOUT_MS = 60_000;

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
/** KEP-3619's policy (CRI v0.31+): Strict is the pod's gids only, Merge adds the image's. */
export type SupplementalGroupsPolicy = 'Merge' | 'Strict';

export interface NamespaceOption {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
}

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  log_directory: string;
  annotations: Record<string, string>;
  linux: {
    cgroup_parent: string;
    security_context: SecurityContext;
  };
}

/** The identity part of LinuxSandboxSecurityContext and LinuxContainerSecurityContext, which name these fields alike. */
export interface SecurityContext {
  namespace_options: NamespaceOption;
  run_as_user?: { value: number };
  run_as_group?: { value: number };
  supplemental_groups: number[];
  supplemental_groups_policy?: SupplementalGroupsPolicy;
}

export interface ContainerConfig {
  metadata: { name: string; attempt: number };
  image: { image: string; user_specified_image?: string };
  command: string[];
  log_path: string;
  linux: {
    security_context: SecurityContext;
  };
}

export interface ContainerStatus {
  state: ContainerState;
  exit_code: number;
  reason: string;
  message: string;
  /** The identity the runtime gave the first process (CRI v0.31+; containerd 2.x); null where the runtime does not say. */
  user: { linux: { uid: number; gid: number; supplemental_groups: number[] } | null } | null;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exit_code: number;
}

export interface Image {
  id: string;
}

/** A failed CRI call: the method and the runtime's own message, which is what the kubelet reports. */
export class CriError extends Error {
  readonly method: string;
  readonly code: number;
  readonly details: string;

  constructor(method: string, code: number, details: string) {
    super(`CRI ${method} failed (gRPC code ${code}): ${details}`);
    this.name = 'CriError';
    this.method = method;
    this.code = code;
    this.details = details;
  }
}

function services(): { RuntimeService: ServiceClientConstructor; ImageService: ServiceClientConstructor } {
  const definition = loadSync(PROTO, {
    keepCase: true,
    // int64 fields come back as numbers: uids, gids and exit codes fit.
    longs: Number,
    enums: String,
    defaults: true,
  });
  const v1 = (loadPackageDefinition(definition)['runtime'] as GrpcObject)['v1'] as GrpcObject;
  return {
    RuntimeService: v1['RuntimeService'] as ServiceClientConstructor,
    ImageService: v1['ImageService'] as ServiceClientConstructor,
  };
}

type Callback = (error: ServiceError | null, response: unknown) => void;
type UnaryMethod = (request: object, options: { deadline: number }, callback: Callback) => void;

function unary<Response>(client: Client, method: string, request: object): Promise<Response> {
  const call = (client as unknown as Record<string, UnaryMethod>)[method];
  if (call === undefined) throw new Error(`CRI client has no method ${method}`);
  return new Promise((resolve, reject) => {
    call.call(client, request, { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, response) => {
      if (error) reject(new CriError(method, error.code, error.details));
      else resolve(response as Response);
    });
  });
}

export class CriClient {
  private readonly runtime: Client;
  private readonly images: Client;

  /** `socket` is the absolute path of the CRI runtime's unix socket. */
  constructor(socket: string) {
    const { RuntimeService, ImageService } = services();
    const address = `unix://${socket}`;
    this.runtime = new RuntimeService(address, credentials.createInsecure());
    this.images = new ImageService(address, credentials.createInsecure());
  }

  close(): void {
    this.runtime.close();
    this.images.close();
  }

  version(): Promise<{ runtime_name: string; runtime_version: string; runtime_api_version: string }> {
    // The kubelet's own CRI API version string.
    return unary(this.runtime, 'Version', { version: '0.1.0' });
  }

  /** Whether the runtime says it implements SupplementalGroupsPolicy (StatusResponse.features, CRI v0.31+). */
  async supportsSupplementalGroupsPolicy(): Promise<boolean> {
    const response = await unary<{ features: { supplemental_groups_policy: boolean } | null }>(this.runtime, 'Status', { verbose: false });
    return response.features?.supplemental_groups_policy ?? false;
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler: string): Promise<string> {
    const response = await unary<{ pod_sandbox_id: string }>(this.runtime, 'RunPodSandbox', { config, runtime_handler: runtimeHandler });
    return response.pod_sandbox_id;
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    await unary(this.runtime, 'StopPodSandbox', { pod_sandbox_id: podSandboxId });
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await unary(this.runtime, 'RemovePodSandbox', { pod_sandbox_id: podSandboxId });
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const response = await unary<{ container_id: string }>(this.runtime, 'CreateContainer', {
      pod_sandbox_id: podSandboxId,
      config,
      sandbox_config: sandboxConfig,
    });
    return response.container_id;
  }

  async startContainer(containerId: string): Promise<void> {
    await unary(this.runtime, 'StartContainer', { container_id: containerId });
  }

  async stopContainer(containerId: string, timeoutSeconds: number): Promise<void> {
    await unary(this.runtime, 'StopContainer', { container_id: containerId, timeout: timeoutSeconds });
  }

  async removeContainer(containerId: string): Promise<void> {
    await unary(this.runtime, 'RemoveContainer', { container_id: containerId });
  }

  async containerStatus(containerId: string): Promise<ContainerStatus> {
    const response = await unary<{ status: ContainerStatus }>(this.runtime, 'ContainerStatus', { container_id: containerId });
    return response.status;
  }

  execSync(containerId: string, cmd: string[], timeoutSeconds: number): Promise<ExecSyncResult> {
    return unary(this.runtime, 'ExecSync', { container_id: containerId, cmd, timeout: timeoutSeconds });
  }

  /** The image the runtime knows by `reference`, or undefined (ImageStatus answers an unknown image with no image). */
  async imageStatus(reference: string): Promise<Image | undefined> {
    const response = await unary<{ image: Image | null }>(this.images, 'ImageStatus', { image: { image: reference } });
    return response.image ?? undefined;
  }
}
