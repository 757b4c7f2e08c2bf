/**
 * The shim's CRI client (src/cri/grpc-call.ts, src/declared-gids.ts) against
 * real peers on unix sockets: a gRPC server (@grpc/grpc-js), an HTTP/2
 * server (Node's http2, that is nghttp2) that misbehaves on purpose, and
 * plain sockets. The real containerd is the e2e suites' part.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import fc from 'fast-check';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CONTAINER_STATUS_PATH, containerStatusRequest } from '../../src/cri/container-status';
import { ResponseReader, frame, grpcUnaryCall, requestBytes, type GrpcCall } from '../../src/cri/grpc-call';
import { containerdSocket, declaredGids } from '../../src/declared-gids';
import { FakeCri, containerdInfo, grpcFrame, type FakeCriBehaviour, type GrpcAnswer } from '../helpers/fake-cri';
import { assertProperty } from '../helpers/properties';

const dir = mkdtempSync(join(tmpdir(), 'sg-cri-client-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ID = 'c0ffee';
const ANNOTATIONS = {
  'io.kubernetes.cri.container-type': 'container',
  'io.kubernetes.cri.container-name': 'main',
  'io.kubernetes.cri.sandbox-id': 'sandbox1',
};
const VIEW = { id: ID, name: 'main', sandboxId: 'sandbox1', supplementalGroups: [50000, 60000], runAsUser: 1000 };
const GOOD: GrpcAnswer = { status: { id: ID, metadata: { name: 'main' } }, info: { info: containerdInfo(VIEW) } };

async function withFake<T>(behaviour: FakeCriBehaviour, use: (fake: FakeCri) => Promise<T>): Promise<T> {
  const fake = await FakeCri.start(dir, behaviour);
  try {
    return await use(fake);
  } finally {
    await fake.stop();
  }
}

function call(socketPath: string, overrides: Partial<GrpcCall> = {}): ReturnType<typeof grpcUnaryCall> {
  return grpcUnaryCall({ socketPath, path: CONTAINER_STATUS_PATH, request: containerStatusRequest(ID), timeoutMs: 2000, maxResponseBytes: 1024 * 1024, ...overrides });
}

/** An HTTP/2 server that answers with gRPC's headers, `body` as DATA and the given trailers. */
function http2Answer(body: (encode: (answer: GrpcAnswer) => Buffer) => Buffer, trailers: Record<string, string> = { 'grpc-status': '0' }): FakeCriBehaviour {
  return {
    kind: 'http2',
    respond: (stream, encode) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end(body(encode));
    },
  };
}

t.test('grpcUnaryCall', async (t) => {
  t.test('a gRPC server answers: status 0 and the message', async (t) => {
    await withFake({ kind: 'grpc', answer: () => GOOD }, async (fake) => {
      const response = await call(fake.socket);
      t.equal(response.status, 0);
      t.ok(response.body !== undefined && response.body.length > 100, 'a message');
      t.same(fake.asked, [ID], 'asked about the container once');
    });
  });

  t.test('a gRPC error: its code and its message, percent-decoded', async (t) => {
    await withFake({ kind: 'grpc', answer: (id) => ({ code: GrpcStatus.NOT_FOUND, details: `an error occurred when try to find container "${id}": not found 100%` }) }, async (fake) => {
      t.same(await call(fake.socket), { status: 5, message: `an error occurred when try to find container "${ID}": not found 100%`, body: undefined });
    });
  });

  t.test('a large answer over many DATA frames, within the window granted', async (t) => {
    const info = { info: containerdInfo(VIEW), padding: 'x'.repeat(3 * 1024 * 1024) };
    await withFake(http2Answer((encode) => grpcFrame(encode({ ...GOOD, info }))), async (fake) => {
      const response = await call(fake.socket, { maxResponseBytes: 4 * 1024 * 1024 });
      t.equal(response.status, 0);
      t.ok(response.body!.length > 3 * 1024 * 1024);
    });
  });

  t.test('headers of any text nghttp2 sends, Huffman-coded or not, read back whole', async (t) => {
    // nghttp2 encodes with Huffman where shorter and indexes into its dynamic table.
    const printable = fc.string({ minLength: 0, maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s) && s.trim() === s);
    await assertAsyncProperty(printable, async (value) => {
      const trailers = { 'grpc-status': '0', 'x-echo': value, 'x-echo-again': value };
      const reader = await rawExchange(http2Answer((encode) => grpcFrame(encode(GOOD)), trailers));
      const got = reader.headers[1]?.filter(([name]) => name.startsWith('x-echo')).map(([, v]) => v);
      if (JSON.stringify(got) !== JSON.stringify([value, value])) throw new Error(`sent ${JSON.stringify(value)}, read ${JSON.stringify(got)}`);
    });
    t.pass('nghttp2 headers decode');
  });

  const refusals: [string, FakeCriBehaviour, RegExp, Partial<GrpcCall>?][] = [
    ['an answer over the bound', http2Answer((encode) => grpcFrame(encode({ ...GOOD, info: { info: 'x'.repeat(2 * 1024 * 1024) } }))), /response over 1048576 bytes/],
    ['a compressed message', http2Answer((encode) => grpcFrame(encode(GOOD), true)), /compressed/],
    ['two messages', http2Answer((encode) => Buffer.concat([grpcFrame(encode(GOOD)), grpcFrame(encode(GOOD))])), /holds \d+ bytes for a message of/],
    ['no message at all with status 0', http2Answer(() => Buffer.alloc(0)), /holds no message/],
    ['a message cut short', http2Answer((encode) => grpcFrame(encode(GOOD)).subarray(0, 20)), /holds 15 bytes for a message of/],
    ['no grpc-status', http2Answer((encode) => grpcFrame(encode(GOOD)), {}), /grpc-status "missing"/],
    ['HTTP 500', { kind: 'http2', respond: (stream) => stream.respond({ ':status': 500 }, { endStream: true }) }, /HTTP status 500/],
    ['not gRPC', { kind: 'http2', respond: (stream) => { stream.respond({ ':status': 200, 'content-type': 'text/html' }); stream.end('<html>'); } }, /content-type "text\/html" is not gRPC/],
    ['a reset stream', { kind: 'http2', respond: (stream) => stream.close(2) }, /RST_STREAM, error code 2/],
    ['GOAWAY before the stream', afterPreface(frame(0x7, 0, 0, Buffer.from('000000000000000b', 'hex'))), /GOAWAY, error code 11/],
    ['headers, then silence', { kind: 'http2', respond: (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc' }) }, /no answer within 300 ms/, { timeoutMs: 300 }],
    ['no answer at all', { kind: 'http2', respond: () => undefined }, /no answer within 300 ms/, { timeoutMs: 300 }],
    ['a socket that never reads', { kind: 'raw', onConnection: (socket) => socket.pause() }, /no answer within 300 ms/, { timeoutMs: 300 }],
    ['a socket that closes', { kind: 'raw', onConnection: (socket) => socket.destroy() }, /closed the connection before answering|ECONNRESET|EPIPE/],
    ['garbage instead of HTTP/2', { kind: 'raw', onConnection: (socket) => socket.end(Buffer.alloc(4096, 0xff)) }, /frame of \d+ bytes, over the 16384 allowed/],
    ['an HTTP/1.1 answer', { kind: 'raw', onConnection: (socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n') }, /frame of \d+ bytes|closed the connection/],
    // nghttp2 will not push to a client that disabled it; these bytes do.
    ['a push promise', afterPreface(frame(0x5, 0x4, 1, Buffer.from('0000000282', 'hex'))), /pushed a stream, which the client disabled/],
    ['a frame on another stream', afterPreface(frame(0x0, 0x1, 3, Buffer.from('x'))), /DATA on stream 3/],
  ];
  for (const [what, behaviour, message, overrides] of refusals) {
    t.test(`refused: ${what}`, async (t) => {
      await withFake(behaviour, async (fake) => {
        await t.rejects(call(fake.socket, overrides), { name: 'GrpcCallError', message });
      });
    });
  }

  t.test('refused: no socket, or nothing listening on it', async (t) => {
    await t.rejects(call(join(dir, 'missing.sock')), { name: 'GrpcCallError', message: /ENOENT on / });
    // A regular file where the socket should be refuses the connection as a
    // socket left by a server that is gone does (test/hostile/cri.test.ts has that one).
    writeFileSync(join(dir, 'not-a-socket'), '');
    await t.rejects(call(join(dir, 'not-a-socket')), { name: 'GrpcCallError', message: /ECONNREFUSED on / });
  });

  t.test('floods of small frames end the call by their count, not the deadline', async (t) => {
    const settings = frame(0x4, 0, 0);
    const ping = frame(0x6, 0, 0, Buffer.alloc(8));
    const headers = frame(0x1, 0x0, 1, Buffer.from('88', 'hex'));
    const continuation = frame(0x9, 0x0, 1);
    const okHeaders = frame(0x1, 0x4, 1, Buffer.from('88', 'hex'));
    const floods: [string, Buffer, RegExp][] = [
      ['empty CONTINUATION frames without END_HEADERS', Buffer.concat([headers, ...Array<Buffer>(100_000).fill(continuation)]), /more than 16 CONTINUATION frames/],
      ['PINGs to acknowledge', Buffer.concat(Array<Buffer>(100_000).fill(ping)), /more than 64 SETTINGS or PING acknowledgements/],
      ['SETTINGS to acknowledge', Buffer.concat(Array<Buffer>(100_000).fill(settings)), /more than 64 SETTINGS or PING acknowledgements/],
      ['empty DATA frames', Buffer.concat([okHeaders, ...Array<Buffer>(100_000).fill(frame(0x0, 0, 1))]), /more DATA frames than a response of 1048576 bytes needs/],
    ];
    for (const [what, bytes, message] of floods) {
      // The message is the count's, not the deadline's ("no answer within").
      await withFake(afterPreface(bytes), (fake) => t.rejects(call(fake.socket), { name: 'GrpcCallError', message }, what));
    }
  });

  t.test('PING and SETTINGS from the server are acknowledged, and the answer still read', async (t) => {
    await withFake(
      {
        kind: 'http2',
        respond: (stream, encode) => {
          stream.session?.ping(() => undefined);
          stream.session?.settings({ maxConcurrentStreams: 7 });
          setTimeout(() => {
            stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
            stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
            stream.end(grpcFrame(encode(GOOD)));
          }, 50);
        },
      },
      async (fake) => {
        t.equal((await call(fake.socket)).status, 0);
      },
    );
  });
});

/** A plain socket that waits for the client's first bytes, then sends `bytes` as if it were an HTTP/2 server. */
function afterPreface(bytes: Buffer): FakeCriBehaviour {
  return { kind: 'raw', onConnection: (socket) => socket.once('data', () => socket.write(bytes)) };
}

/** Our request over a plain socket, the server's bytes fed to a ResponseReader: what nghttp2 sent, decoded. */
async function rawExchange(behaviour: FakeCriBehaviour): Promise<ResponseReader> {
  return withFake(behaviour, (fake) =>
    new Promise<ResponseReader>((resolve, reject) => {
      const reader = new ResponseReader(1024 * 1024);
      const socket = connect({ path: fake.socket }, () => socket.write(requestBytes({ path: CONTAINER_STATUS_PATH, request: containerStatusRequest(ID), timeoutMs: 1000, maxResponseBytes: 1024 * 1024 })));
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const reply of reader.feed(chunk)) socket.write(reply);
          if (reader.complete) {
            socket.destroy();
            resolve(reader);
          }
        } catch (error) {
          socket.destroy();
          reject(error);
        }
      });
      socket.on('error', reject);
    }),
  );
}

/** An async property, awaited: fast-check's check of one is a promise, which the sync helper would not wait for. */
async function assertAsyncProperty<T>(arbitrary: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>): Promise<void> {
  const report = fc.defaultReportMessage(await fc.check(fc.asyncProperty(arbitrary, predicate), { numRuns: 40, includeErrorInReport: true }));
  if (report !== undefined) throw new Error(report);
}

t.test('containerdSocket: where containerd says it listens', async (t) => {
  t.same(containerdSocket({ GRPC_ADDRESS: '/run/containerd/containerd.sock', TTRPC_ADDRESS: '/elsewhere.ttrpc' }), { path: '/run/containerd/containerd.sock' }, 'GRPC_ADDRESS first (1.7+)');
  t.same(containerdSocket({ TTRPC_ADDRESS: '/run/containerd/containerd.sock.ttrpc' }), { path: '/run/containerd/containerd.sock' }, 'TTRPC_ADDRESS less .ttrpc (1.6)');
  t.same(containerdSocket({ GRPC_ADDRESS: 'unix:///run/k3s/containerd/containerd.sock' }), { path: '/run/k3s/containerd/containerd.sock' });
  t.match(containerdSocket({ TTRPC_ADDRESS: '/run/ttrpc.sock' }), { why: /named no gRPC socket .*TTRPC_ADDRESS "\/run\/ttrpc.sock"/ });
  t.match(containerdSocket({}), { why: /GRPC_ADDRESS unset, TTRPC_ADDRESS null/ });
  t.match(containerdSocket({ GRPC_ADDRESS: 'containerd.sock' }), { why: /not an absolute path/ });
});

t.test('declaredGids: what the CRI runtime says, or why not', async (t) => {
  const ask = (annotations: Record<string, string>, socket: string, timeoutMs = 2000) => declaredGids(annotations, ID, { GRPC_ADDRESS: socket }, { timeoutMs });

  t.test('a containerd container: the declared groups', async (t) => {
    await withFake({ kind: 'grpc', answer: () => GOOD }, async (fake) => {
      t.same(await ask(ANNOTATIONS, fake.socket), { known: true, gids: [50000, 60000], source: `containerd's CRI ContainerStatus at ${fake.socket}` });
    });
  });

  t.test('never asked: plain bundles, CRI-O, sandboxes, unknown types', async (t) => {
    await withFake({ kind: 'raw', onConnection: (socket) => socket.destroy() }, async (fake) => {
      t.match(await ask({}, fake.socket), { known: false, why: /not a CRI container/ });
      // Under CRI-O a pod can set containerd's keys; CRI-O's own key says who made the bundle.
      t.match(await ask({ ...ANNOTATIONS, 'io.kubernetes.cri-o.ContainerType': 'container' }, fake.socket), { known: false, why: /CRI-O tells its runtimes nothing/ });
      t.match(await ask({ 'io.kubernetes.cri.container-type': 'sandbox' }, fake.socket), { known: false, why: /a pod sandbox/ });
      t.match(await ask({ 'io.kubernetes.cri.container-type': 'init' }, fake.socket), { known: false, why: /unknown CRI container type "init"/ });
      t.equal(fake.connections, 0, 'no connection was made');
    });
  });

  t.test('answers that are not about this container, or not an answer', async (t) => {
    const cases: [string, FakeCriBehaviour, RegExp][] = [
      ['another container', { kind: 'grpc', answer: () => ({ ...GOOD, status: { id: 'other', metadata: { name: 'main' } } }) }, /about container "other"/],
      ['another sandbox', { kind: 'grpc', answer: () => ({ ...GOOD, info: { info: containerdInfo({ ...VIEW, sandboxId: 'sandbox2' }) } }) }, /sandbox id "sandbox2"/],
      ['not found', { kind: 'grpc', answer: () => ({ code: GrpcStatus.NOT_FOUND, details: 'not found' }) }, /gRPC status 5: not found/],
      ['no verbose info', { kind: 'grpc', answer: () => ({ status: GOOD.status }) }, /no verbose info/],
      ['groups that are not gids', { kind: 'grpc', answer: () => ({ ...GOOD, info: { info: containerdInfo(VIEW).replace('[50000,60000]', '["x"]') } }) }, /not a list of group ids/],
      ['a stall', { kind: 'http2', respond: () => undefined }, /no answer within 300 ms/],
    ];
    for (const [what, behaviour, why] of cases) {
      await withFake(behaviour, async (fake) => {
        t.match(await ask(ANNOTATIONS, fake.socket, 300), { known: false, why }, what);
      });
    }
  });

  t.test('only a socket of root\'s is asked', async (t) => {
    const file = join(dir, 'plain-file');
    writeFileSync(file, '');
    t.match(await ask(ANNOTATIONS, file), { known: false, why: /is not a socket/ });
    t.match(await ask(ANNOTATIONS, join(dir, 'nothing-here')), { known: false, why: /ENOENT/ });
    t.match(await declaredGids(ANNOTATIONS, ID, {}), { known: false, why: /named no gRPC socket/ });
  });

  t.test('a socket another user owns is not asked', { skip: process.getuid?.() === 0 ? false : 'needs root to chown the socket' }, async (t) => {
    await withFake({ kind: 'grpc', answer: () => GOOD }, async (fake) => {
      chownSync(fake.socket, 1234, 1234);
      t.match(await ask(ANNOTATIONS, fake.socket), { known: false, why: /belongs to uid 1234, not root/ });
      t.same(fake.asked, []);
    });
  });
});
