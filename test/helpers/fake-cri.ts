/**
 * Stand-ins for containerd's CRI socket, for the cases the real containerd
 * will not produce: a CRI that answers about another container, declares
 * gids the config lacks, stalls, floods, speaks garbage or is not there.
 * Each is a real peer of the shim's client, never a mock of it: a gRPC
 * server (@grpc/grpc-js), an HTTP/2 server (Node's http2, nghttp2), or a
 * plain socket, listening on a unix socket in a temporary directory.
 */
import { Server, ServerCredentials, loadPackageDefinition, status as GrpcStatus, type GrpcObject, type ServiceClientConstructor, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import protobuf from 'protobufjs';

const PROTO = join(__dirname, '..', 'e2e', 'cri', 'api.proto');

/** What containerd's verbose ContainerStatus reports of a container, as Go's encoding/json writes its ContainerInfo. */
export interface ContainerdView {
  id: string;
  name: string;
  sandboxId: string;
  /** config.linux.security_context.supplemental_groups; omitted from the JSON when empty, as omitempty does. */
  supplementalGroups: number[];
  runAsUser?: number;
}

export function containerdInfo(view: ContainerdView): string {
  const securityContext: Record<string, unknown> = {};
  if (view.runAsUser !== undefined) securityContext['run_as_user'] = view.runAsUser === 0 ? {} : { value: view.runAsUser };
  if (view.supplementalGroups.length > 0) securityContext['supplemental_groups'] = view.supplementalGroups;
  return JSON.stringify({
    sandboxID: view.sandboxId,
    pid: 0,
    removing: false,
    snapshotKey: view.id,
    snapshotter: 'native',
    runtimeType: 'io.containerd.runc.v2',
    runtimeOptions: { binary_name: '/usr/local/bin/strict-groups-runtime' },
    config: {
      metadata: { name: view.name },
      image: { image: 'sha256:0000' },
      command: ['id', '-G'],
      linux: { security_context: securityContext },
      log_path: `${view.name}/0.log`,
    },
    runtimeSpec: { ociVersion: '1.1.0', process: { user: { uid: 1000, gid: 1000 } } },
  });
}

export interface GrpcAnswer {
  status: { id: string; metadata?: { name: string } };
  info?: Record<string, string>;
}

export type FakeCriBehaviour =
  /** A gRPC server: its answer to a container id, or an error. */
  | { kind: 'grpc'; answer: (containerId: string) => GrpcAnswer | { code: GrpcStatus; details: string } }
  /** An HTTP/2 server that does whatever `respond` does with the request's stream. */
  | { kind: 'http2'; respond: (stream: ServerHttp2Stream, encodeResponse: (answer: GrpcAnswer) => Buffer) => void }
  /** A plain socket: `onConnection` gets the client's connection. */
  | { kind: 'raw'; onConnection: (socket: Socket) => void };

/** A ContainerStatusResponse encoded by protobufjs, an encoder that is not the shim's. */
function encoderFor(): (answer: GrpcAnswer) => Buffer {
  const root = new protobuf.Root().loadSync(PROTO, { keepCase: true });
  const type = root.lookupType('runtime.v1.ContainerStatusResponse');
  return (answer) => Buffer.from(type.encode(type.fromObject(answer)).finish());
}

/** A length-prefixed gRPC message. */
export function grpcFrame(message: Buffer, compressed = false): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed ? 1 : 0;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

export class FakeCri {
  readonly socket: string;
  /** Connections accepted (http2 and raw kinds). */
  connections = 0;
  /** Container ids asked about (grpc kind). */
  readonly asked: string[] = [];
  private closeServer: () => Promise<void> = async () => undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(socket: string) {
    this.socket = socket;
  }

  static async start(dir: string, behaviour: FakeCriBehaviour): Promise<FakeCri> {
    const fake = new FakeCri(join(dir, `cri-${Math.random().toString(36).slice(2, 8)}.sock`));
    if (behaviour.kind === 'grpc') await fake.startGrpc(behaviour.answer);
    else if (behaviour.kind === 'http2') await fake.startHttp2(behaviour.respond);
    else await fake.startRaw(behaviour.onConnection);
    return fake;
  }

  private async startGrpc(answer: Extract<FakeCriBehaviour, { kind: 'grpc' }>['answer']): Promise<void> {
    const definition = loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true });
    const runtime = ((loadPackageDefinition(definition)['runtime'] as GrpcObject)['v1'] as GrpcObject)['RuntimeService'] as ServiceClientConstructor;
    const server = new Server();
    server.addService(runtime.service, {
      ContainerStatus: (call: ServerUnaryCall<{ container_id: string }, GrpcAnswer>, callback: sendUnaryData<GrpcAnswer>) => {
        this.asked.push(call.request.container_id);
        const result = answer(call.request.container_id);
        if ('code' in result) callback({ code: result.code, details: result.details });
        else callback(null, result);
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${this.socket}`, ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
    );
    // A client that never hangs up must not hold the suite: after a second, force.
    this.closeServer = () =>
      new Promise((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
  }

  private async startHttp2(respond: Extract<FakeCriBehaviour, { kind: 'http2' }>['respond']): Promise<void> {
    const encode = encoderFor();
    const server: Http2Server = createHttp2Server();
    server.on('connection', (socket: Socket) => this.track(socket));
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      // The request is read, so that the client's DATA is not what stalls.
      stream.resume();
      respond(stream, encode);
    });
    await this.listen(server);
  }

  private async startRaw(onConnection: (socket: Socket) => void): Promise<void> {
    const server = createNetServer((socket) => {
      this.track(socket);
      socket.on('error', () => undefined);
      onConnection(socket);
    });
    await this.listen(server);
  }

  private track(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private async listen(server: NetServer | Http2Server): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socket, () => resolve());
    });
    this.closeServer = () =>
      new Promise((resolve) => {
        for (const socket of this.sockets) socket.destroy();
        server.close(() => resolve());
      });
  }

  async stop(): Promise<void> {
    await this.closeServer();
  }
}
