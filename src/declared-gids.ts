import { lstatSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { criContainer, type Annotations } from './annotations';
import { errnoCode } from './errors';

/**
 * What the pod declared, as the CRI runtime that calls the shim knows it:
 * the container's CRI supplemental_groups (the pod's supplementalGroups,
 * fsGroup and volume gids, which the kubelet folds in). Native Strict keeps
 * exactly these and the primary gid.
 *
 * Trusted: only the CRI runtime's own answer, on the socket it names in the
 * runtime's environment (which containerd sets for its shims, and a pod
 * cannot touch). The bundle's annotations only say whether asking makes
 * sense; the answer must then be about this very container. When it cannot
 * be had, the caller falls back to the image rule, and the reason goes into
 * the audit line.
 */
export type DeclaredGids =
  | { known: true; gids: number[]; source: string }
  | { known: false; why: string };

/** A short wait: containerd answers in milliseconds; a create must not hang on it. */
export const CRI_TIMEOUT_MS = 2000;
/** The kubelet's own bound on a CRI message. */
export const CRI_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/**
 * containerd's gRPC socket, as containerd tells its shims: GRPC_ADDRESS
 * (1.7+), else TTRPC_ADDRESS, which is that address plus ".ttrpc" unless the
 * node configured its ttrpc socket elsewhere.
 */
export function containerdSocket(env: NodeJS.ProcessEnv): { path: string } | { why: string } {
  const strip = (address: string): string => address.replace(/^unix:\/\//, '');
  const grpc = env['GRPC_ADDRESS'];
  const ttrpc = env['TTRPC_ADDRESS'];
  let path: string;
  if (grpc !== undefined && grpc !== '') {
    path = strip(grpc);
  } else if (ttrpc !== undefined && ttrpc.endsWith('.ttrpc')) {
    path = strip(ttrpc.slice(0, -'.ttrpc'.length));
  } else {
    return { why: `containerd named no gRPC socket in the runtime's environment (GRPC_ADDRESS unset, TTRPC_ADDRESS ${JSON.stringify(ttrpc ?? null)})` };
  }
  if (!isAbsolute(path)) return { why: `containerd's socket ${JSON.stringify(path)} is not an absolute path` };
  return { path };
}

/** Only root's own socket: anything else at that path is not the CRI runtime that runs us. */
function checkSocket(path: string): string | undefined {
  try {
    const stat = lstatSync(path);
    if (!stat.isSocket()) return `${path} is not a socket`;
    const euid = process.geteuid?.() ?? 0;
    if (stat.uid !== 0 && stat.uid !== euid) return `${path} belongs to uid ${stat.uid}, not root`;
    return undefined;
  } catch (error) {
    return `${path}: ${errnoCode(error) ?? String(error)}`;
  }
}

export interface AskOptions {
  /** The socket to ask, overriding the environment (the dry run's --cri-socket). */
  socket?: string | undefined;
  timeoutMs?: number;
}

/** Asks the CRI runtime what the container's pod declared. Never throws. */
export async function declaredGids(annotations: Annotations, containerId: string, env: NodeJS.ProcessEnv, options: AskOptions = {}): Promise<DeclaredGids> {
  const cri = criContainer(annotations);
  if (cri.runtime === 'none') return { known: false, why: 'not a CRI container (no CRI annotations in config.json)' };
  if (cri.runtime === 'cri-o') return { known: false, why: 'CRI-O tells its runtimes nothing of what the pod declared' };
  if (cri.containerType === 'sandbox') return { known: false, why: 'a pod sandbox: the CRI keeps no container status for it' };
  if (cri.containerType !== 'container') return { known: false, why: `unknown CRI container type ${JSON.stringify(cri.containerType)}` };

  const socket = options.socket !== undefined ? { path: options.socket } : containerdSocket(env);
  if ('why' in socket) return { known: false, why: socket.why };
  const unusable = checkSocket(socket.path);
  if (unusable !== undefined) return { known: false, why: `containerd's socket: ${unusable}` };

  // Loaded only here: nothing of it on any other call.
  const { grpcUnaryCall } = require('./cri/grpc-call') as typeof import('./cri/grpc-call');
  const status = require('./cri/container-status') as typeof import('./cri/container-status');
  const asked = `containerd's CRI ContainerStatus at ${socket.path}`;
  try {
    const response = await grpcUnaryCall({
      socketPath: socket.path,
      path: status.CONTAINER_STATUS_PATH,
      request: status.containerStatusRequest(containerId),
      timeoutMs: options.timeoutMs ?? CRI_TIMEOUT_MS,
      maxResponseBytes: CRI_MAX_RESPONSE_BYTES,
    });
    if (response.status !== 0 || response.body === undefined) {
      return { known: false, why: `${asked}: gRPC status ${response.status}: ${response.message}` };
    }
    const reported = status.parseContainerStatusResponse(response.body);
    const gids = status.declaredSupplementalGroups(reported, { id: containerId, name: cri.name, sandboxId: cri.sandboxId });
    return { known: true, gids, source: asked };
  } catch (error) {
    return { known: false, why: `${asked}: ${(error as Error).message}` };
  }
}
