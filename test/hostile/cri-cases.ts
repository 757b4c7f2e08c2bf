/**
 * What can stand where the shim asks containerd's CRI for a pod's declared
 * gids, each run through the built shim in front of real runc
 * (test/hostile/cri.test.ts). Every case is the same container: alice (1000)
 * on an image that lists her in 50000 and 50001, a pod that declared
 * [50000, 60000], and config.json holding what containerd merged,
 * [1000, 50000, 50001, 60000]. There are two right answers and no third:
 * native Strict's `1000 50000 60000` when the answer is sound, the image
 * rule's `1000 60000` when it is not. 50001, which only the image grants,
 * never stays.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { containerdInfo, type FakeCriBehaviour, type GrpcAnswer } from '../helpers/fake-cri';
import type { RecordRow } from '../helpers/record';

export const CONTAINER_NAME = 'main';
export const SANDBOX_ID = 'sandbox-0001';
/** What containerd annotates a pod's container with, and the pod asked for Strict. */
export const CONTAINERD_ANNOTATIONS: Readonly<Record<string, string>> = {
  'io.kubernetes.cri.container-type': 'container',
  'io.kubernetes.cri.container-name': CONTAINER_NAME,
  'io.kubernetes.cri.sandbox-id': SANDBOX_ID,
  'io.kubernetes.cri.sandbox-name': 'pod',
  'io.kubernetes.cri.sandbox-namespace': 'default',
  'strict-groups.io/supplemental-groups-policy': 'Strict',
};

export const GROUP = 'root:x:0:\nalice:x:1000:\ngroup-in-image:x:50000:alice\nonly-in-image:x:50001:alice\n';
export const DECLARED = [50000, 60000];
export const CONFIG_GIDS = [1000, 50000, 50001, 60000];
/** containerd 2.x with supplementalGroupsPolicy: Strict: the primary gid and the declared ones. */
export const NATIVE = '1000 50000 60000';
/** The fallback: every gid the image grants goes, the declared 50000 with it. */
export const IMAGE_RULE = '1000 60000';

/** The CRI's answer about a container, as containerd gives it. */
export function answerFor(id: string, overrides: { declared?: number[]; sandboxId?: string } = {}): GrpcAnswer {
  return {
    status: { id, metadata: { name: CONTAINER_NAME } },
    info: { info: containerdInfo({ id, name: CONTAINER_NAME, sandboxId: overrides.sandboxId ?? SANDBOX_ID, supplementalGroups: overrides.declared ?? DECLARED, runAsUser: 1000 }) },
  };
}

export interface CriCase {
  record: RecordRow;
  /** What listens where the environment points; none: nothing does. */
  cri?: FakeCriBehaviour | undefined;
  /** The socket variables containerd would put in the runtime's environment, given where the stand-in listens. */
  env: (socket: string) => Record<string, string>;
  /** What the stand-in's socket is made into before the run. */
  prepare?: 'chown-1234' | 'regular-file' | 'stale-socket';
  /** Annotations beyond (or replacing) containerd's. */
  annotations?: Record<string, string>;
  /** Native Strict, or the image rule with this reason in the audit line. */
  expect: 'native' | { imageRule: RegExp };
  /** Whether the shim may have connected at all. */
  contacted: boolean;
}

const GRPC = (socket: string): Record<string, string> => ({ GRPC_ADDRESS: socket });
const NATIVE_OUTCOME = 'native Strict, 1000 50000 60000, for the container and its exec; the audit line says the CRI decided';
const fallback = (why: string): string => `the image rule, 1000 60000, for the container and its exec; the audit line says ${why}`;

export const CRI_CASES: readonly CriCase[] = [
  {
    record: { area: 'CRI answer', tried: 'containerd\'s CRI answers for the container (GRPC_ADDRESS, as 1.7 and 2.x set it)', outcome: NATIVE_OUTCOME },
    cri: { kind: 'grpc', answer: (id) => answerFor(id) },
    env: GRPC,
    expect: 'native',
    contacted: true,
  },
  {
    record: { area: 'CRI answer', tried: 'only TTRPC_ADDRESS, as containerd 1.6 sets it: the gRPC socket is that path less ".ttrpc"', outcome: NATIVE_OUTCOME },
    cri: { kind: 'grpc', answer: (id) => answerFor(id) },
    env: (socket) => ({ TTRPC_ADDRESS: `${socket}.ttrpc` }),
    expect: 'native',
    contacted: true,
  },
  {
    record: { area: 'no CRI', tried: 'no socket named in the runtime\'s environment', outcome: fallback('containerd named no gRPC socket') },
    env: () => ({}),
    expect: { imageRule: /containerd named no gRPC socket/ },
    contacted: false,
  },
  {
    record: { area: 'no CRI', tried: 'the named socket does not exist', outcome: fallback('ENOENT') },
    env: GRPC,
    expect: { imageRule: /ENOENT/ },
    contacted: false,
  },
  {
    record: { area: 'no CRI', tried: 'a regular file where the socket should be', outcome: fallback('it is not a socket') },
    env: GRPC,
    prepare: 'regular-file',
    expect: { imageRule: /is not a socket/ },
    contacted: false,
  },
  {
    record: { area: 'no CRI', tried: 'a socket nobody listens on (left by a server that is gone)', outcome: fallback('ECONNREFUSED') },
    env: GRPC,
    prepare: 'stale-socket',
    expect: { imageRule: /ECONNREFUSED/ },
    contacted: false,
  },
  {
    record: { area: 'no CRI', tried: 'a CRI that answers, on a socket owned by uid 1234 rather than root', outcome: fallback('who owns the socket, and nothing was asked') },
    cri: { kind: 'grpc', answer: (id) => answerFor(id, { declared: [50000, 50001, 60000] }) },
    env: GRPC,
    prepare: 'chown-1234',
    expect: { imageRule: /belongs to uid 1234, not root/ },
    contacted: false,
  },
  {
    record: { area: 'stalls', tried: 'a socket that accepts and never reads or answers', outcome: fallback('no answer within 2000 ms') },
    cri: { kind: 'raw', onConnection: (socket) => socket.pause() },
    env: GRPC,
    expect: { imageRule: /no answer within 2000 ms/ },
    contacted: true,
  },
  {
    record: { area: 'stalls', tried: 'an HTTP/2 server that sends the response headers, then nothing', outcome: fallback('no answer within 2000 ms') },
    cri: { kind: 'http2', respond: (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc' }) },
    env: GRPC,
    expect: { imageRule: /no answer within 2000 ms/ },
    contacted: true,
  },
  {
    record: { area: 'garbage', tried: '4 KiB of 0xff bytes instead of HTTP/2', outcome: fallback('the frame it could not take') },
    cri: { kind: 'raw', onConnection: (socket) => socket.end(Buffer.alloc(4096, 0xff)) },
    env: GRPC,
    expect: { imageRule: /over the 16384 allowed/ },
    contacted: true,
  },
  {
    record: { area: 'garbage', tried: 'a gRPC answer whose info is not JSON', outcome: fallback('so') },
    cri: { kind: 'grpc', answer: (id) => ({ status: { id, metadata: { name: CONTAINER_NAME } }, info: { info: '{"config":' } }) },
    env: GRPC,
    expect: { imageRule: /is not JSON/ },
    contacted: true,
  },
  {
    record: { area: 'huge', tried: 'an answer of 17 MiB (the kubelet\'s own bound is 16 MiB)', outcome: fallback('the bound') },
    cri: { kind: 'grpc', answer: (id) => ({ ...answerFor(id), info: { ...answerFor(id).info, padding: 'x'.repeat(17 * 1024 * 1024) } }) },
    env: GRPC,
    expect: { imageRule: /response over 16777216 bytes/ },
    contacted: true,
  },
  {
    record: { area: 'wrong answer', tried: 'the CRI does not know the container (gRPC NotFound)', outcome: fallback('the gRPC status') },
    cri: { kind: 'grpc', answer: (id) => ({ code: GrpcStatus.NOT_FOUND, details: `an error occurred when try to find container "${id}": not found` }) },
    env: GRPC,
    expect: { imageRule: /gRPC status 5: an error occurred when try to find container/ },
    contacted: true,
  },
  {
    record: { area: 'wrong answer', tried: 'an answer about another container, declaring the image-only 50001 too', outcome: fallback('whose answer it was') },
    cri: { kind: 'grpc', answer: () => answerFor('another-container', { declared: [50000, 50001, 60000] }) },
    env: GRPC,
    expect: { imageRule: /about container "another-container"/ },
    contacted: true,
  },
  {
    record: { area: 'wrong answer', tried: 'an answer naming another sandbox, declaring 50001 too', outcome: fallback('the sandbox it named') },
    cri: { kind: 'grpc', answer: (id) => answerFor(id, { sandboxId: 'sandbox-9999', declared: [50000, 50001, 60000] }) },
    env: GRPC,
    expect: { imageRule: /sandbox id "sandbox-9999"/ },
    contacted: true,
  },
  {
    record: { area: 'wrong answer', tried: 'an answer declaring a gid config.json does not hold (70000)', outcome: fallback('the gid config.json lacks') },
    cri: { kind: 'grpc', answer: (id) => answerFor(id, { declared: [50000, 60000, 70000] }) },
    env: GRPC,
    expect: { imageRule: /declares gids config\.json does not hold \(70000\)/ },
    contacted: true,
  },
  {
    record: {
      area: 'annotations',
      tried: 'a CRI-O container whose pod set containerd\'s annotation keys, with GRPC_ADDRESS naming a listening socket',
      outcome: fallback('CRI-O; nothing connects to the socket'),
    },
    cri: { kind: 'raw', onConnection: (socket) => socket.destroy() },
    env: GRPC,
    annotations: { 'io.kubernetes.cri-o.ContainerType': 'container', 'io.kubernetes.pod.name': 'pod' },
    expect: { imageRule: /CRI-O tells its runtimes nothing/ },
    contacted: false,
  },
];

/** A container the shim did not create: exec through the shim afterwards. */
export const PRE_SHIM_CASE: { record: RecordRow } = {
  record: {
    area: 'history',
    tried: 'a container created by runc before the handler existed (no removal record), exec\'d through the shim',
    outcome: 'the exec gets the container\'s own groups, 1000 50000 50001 60000, no fewer and no more, and the CRI is not asked: the shim cannot narrow a container it did not create (restart the pod)',
  },
};
