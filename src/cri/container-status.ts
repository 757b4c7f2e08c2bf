import { ProtobufError, boolField, bytesField, decodeString, readFields, stringField, stringMapField } from './protobuf';

/**
 * The CRI RuntimeService's ContainerStatus call (k8s.io/cri-api v1), the
 * fields the shim needs and nothing else: the request, and from a verbose
 * response the container's id and name and the CRI ContainerConfig that
 * containerd keeps with it and reports, as JSON, under info["info"].
 */

export const CONTAINER_STATUS_PATH = '/runtime.v1.RuntimeService/ContainerStatus';

/** ContainerStatusRequest { string container_id = 1; bool verbose = 2; } */
export function containerStatusRequest(containerId: string): Buffer {
  return Buffer.concat([stringField(1, containerId), boolField(2, true)]);
}

export interface ReportedContainer {
  /** ContainerStatus.id. */
  id: string;
  /** ContainerStatus.metadata.name. */
  name: string | undefined;
  /** info["info"], parsed: containerd's ContainerInfo. */
  info: Record<string, unknown>;
}

export class ContainerStatusError extends Error {
  override name = 'ContainerStatusError';
}

/**
 * ContainerStatusResponse { ContainerStatus status = 1; map<string, string> info = 2; }
 * ContainerStatus { string id = 1; ContainerMetadata metadata = 2; ... }
 * ContainerMetadata { string name = 1; uint32 attempt = 2; }
 */
export function parseContainerStatusResponse(message: Buffer): ReportedContainer {
  try {
    const response = readFields(message);
    const status = bytesField(response, 1);
    if (status === undefined) throw new ContainerStatusError('the response has no status');
    const statusFields = readFields(status);
    const id = bytesField(statusFields, 1);
    const metadata = bytesField(statusFields, 2);
    const name = metadata === undefined ? undefined : bytesField(readFields(metadata), 1);
    const infoText = stringMapField(response, 2).get('info');
    if (infoText === undefined) throw new ContainerStatusError('the response has no verbose info (no "info" key)');
    let info: unknown;
    try {
      info = JSON.parse(infoText);
    } catch (error) {
      throw new ContainerStatusError(`info["info"] is not JSON: ${(error as Error).message}`);
    }
    if (!isObject(info)) throw new ContainerStatusError('info["info"] is not a JSON object');
    return {
      id: id === undefined ? '' : decodeString(id, 'the status id'),
      name: name === undefined ? undefined : decodeString(name, 'the container name'),
      info,
    };
  } catch (error) {
    if (error instanceof ProtobufError) throw new ContainerStatusError(`malformed response: ${error.message}`);
    throw error;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What the bundle says of the container, for checking that the answer is about it. */
export interface ExpectedContainer {
  id: string;
  /** io.kubernetes.cri.container-name, if the bundle has it. */
  name?: string | undefined;
  /** io.kubernetes.cri.sandbox-id, if the bundle has it. */
  sandboxId?: string | undefined;
}

/**
 * A gid as it reaches the spec: containerd casts the CRI's int64 to uint32.
 * (The kubelet's volume gids, from pv.beta.kubernetes.io/gid, are not held
 * to Kubernetes' 2^31-1 for pod fields.) Anything outside uint32 would reach
 * config.json as another gid, so the answer would not describe it.
 */
const MAX_GROUP_ID = 2 ** 32 - 1;

/**
 * The supplementary groups the kubelet declared for the container, from a
 * verbose answer about it: `config.linux.security_context.supplemental_groups`
 * of containerd's ContainerInfo (Go's encoding/json of the CRI ContainerConfig,
 * whose fields are omitted when empty: an absent list is an empty one).
 * Throws ContainerStatusError when the answer is about another container or
 * is not shaped as containerd writes it.
 */
export function declaredSupplementalGroups(reported: ReportedContainer, expected: ExpectedContainer): number[] {
  if (reported.id !== expected.id) {
    throw new ContainerStatusError(`the answer is about container ${JSON.stringify(reported.id)}, not ${JSON.stringify(expected.id)}`);
  }
  const { config, sandboxID } = reported.info;
  if (!isObject(config)) throw new ContainerStatusError('the verbose info has no CRI config');
  const configName = isObject(config['metadata']) ? config['metadata']['name'] : undefined;
  for (const [what, said, expect] of [
    ['status name', reported.name, expected.name],
    ['config name', configName, expected.name],
    ['sandbox id', sandboxID, expected.sandboxId],
  ] as const) {
    if (expect !== undefined && said !== expect) {
      throw new ContainerStatusError(`the answer's ${what} ${JSON.stringify(said ?? null)} is not the bundle's ${JSON.stringify(expect)}`);
    }
  }
  const linux = config['linux'];
  if (linux === undefined) return [];
  if (!isObject(linux)) throw new ContainerStatusError('config.linux is not an object');
  const securityContext = linux['security_context'];
  if (securityContext === undefined) return [];
  if (!isObject(securityContext)) throw new ContainerStatusError('config.linux.security_context is not an object');
  const groups = securityContext['supplemental_groups'];
  if (groups === undefined) return [];
  if (!Array.isArray(groups) || !groups.every((gid) => Number.isInteger(gid) && gid >= 0 && gid <= MAX_GROUP_ID)) {
    throw new ContainerStatusError(`supplemental_groups is not a list of group ids: ${JSON.stringify(groups).slice(0, 200)}`);
  }
  return groups as number[];
}
