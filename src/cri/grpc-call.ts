import { connect, type Socket } from 'node:net';
import { HpackDecoder, encodeHeaders, type HeaderList } from './hpack';

/**
 * One unary gRPC call over a unix socket: HTTP/2 with prior knowledge, one
 * stream, nothing kept afterwards. Node's own http2 module would do, but it
 * loads http, tls and crypto with it, which costs a CRI create more than the
 * whole question (measured: 10 to 25 ms against 3 ms for net alone); a single
 * request needs only the framing of RFC 9113, the response's header
 * decoding, and gRPC's message framing. Every wait is bounded by one
 * deadline; the response's bytes by `maxResponseBytes`, its frames, header
 * block fragments and the acknowledgements it can ask for by counts, so that
 * a flood of small frames can neither hold the process past the deadline
 * nor fill its memory. Anything unexpected ends the call with a
 * GrpcCallError saying what.
 */

export class GrpcCallError extends Error {
  override name = 'GrpcCallError';
}

export interface GrpcCall {
  socketPath: string;
  /** "/package.Service/Method". */
  path: string;
  /** The encoded request message. */
  request: Buffer;
  timeoutMs: number;
  /** Bound on the response message; also the flow-control window granted. */
  maxResponseBytes: number;
}

export interface GrpcResponse {
  /** gRPC status code: 0 is OK. */
  status: number;
  /** grpc-message, percent-decoded. */
  message: string;
  /** The response message when status is 0. */
  body: Buffer | undefined;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const FRAME_HEADER_BYTES = 9;
const DEFAULT_MAX_FRAME_BYTES = 16384;
const DEFAULT_WINDOW = 65535;

const FrameType = { DATA: 0x0, HEADERS: 0x1, PRIORITY: 0x2, RST_STREAM: 0x3, SETTINGS: 0x4, PUSH_PROMISE: 0x5, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;
const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
const Setting = { ENABLE_PUSH: 0x2, INITIAL_WINDOW_SIZE: 0x4, MAX_HEADER_LIST_SIZE: 0x6 } as const;

/** Our one stream. */
const STREAM_ID = 1;
/** Bound on the response's decoded headers, as SETTINGS_MAX_HEADER_LIST_SIZE says to the server. */
const MAX_HEADER_LIST_BYTES = 64 * 1024;
/** CONTINUATION frames in one header block: a real server needs one or two (nghttp2 allows 8). */
const MAX_CONTINUATIONS = 16;
/** SETTINGS and PING frames the server may make us answer: a real one sends a few. */
const MAX_ACKS = 64;
/** Frames besides DATA: headers, trailers and the connection's housekeeping. */
const MAX_OTHER_FRAMES = 256;
/** DATA frames average at least this much (Go's servers send 16 KiB), so their count is bounded too. */
const MIN_AVERAGE_DATA_FRAME = 1024;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

function settingsPayload(settings: readonly [number, number][]): Buffer {
  const payload = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value, 6 * i + 2);
  });
  return payload;
}

/** The bytes a client sends: preface, settings, window, and the request on stream 1. */
export function requestBytes(call: Pick<GrpcCall, 'path' | 'request' | 'timeoutMs' | 'maxResponseBytes'>): Buffer {
  // One DATA frame, sent within the server's initial windows.
  if (call.request.length + 5 > DEFAULT_MAX_FRAME_BYTES) throw new GrpcCallError(`a request of ${call.request.length} bytes does not fit one frame`);
  // Room for the message, its 5-byte prefix and DATA frames' padding, at most
  // one frame's worth; the connection's window starts at 65535 and can only
  // grow (a zero increment is a protocol error).
  const window = Math.min(Math.max(call.maxResponseBytes + DEFAULT_MAX_FRAME_BYTES, DEFAULT_WINDOW), 0x7fffffff);
  const windowUpdate = Buffer.alloc(4);
  windowUpdate.writeUInt32BE(window - DEFAULT_WINDOW);
  const headers = encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', call.path],
    [':authority', 'localhost'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    // The server gives up when we would, too.
    ['grpc-timeout', `${Math.max(1, Math.ceil(call.timeoutMs))}m`],
  ]);
  const message = Buffer.alloc(5 + call.request.length);
  message.writeUInt32BE(call.request.length, 1);
  call.request.copy(message, 5);
  return Buffer.concat([
    PREFACE,
    frame(FrameType.SETTINGS, 0, 0, settingsPayload([
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, window],
      [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES],
    ])),
    ...(window > DEFAULT_WINDOW ? [frame(FrameType.WINDOW_UPDATE, 0, 0, windowUpdate)] : []),
    frame(FrameType.HEADERS, Flag.END_HEADERS, STREAM_ID, headers),
    frame(FrameType.DATA, Flag.END_STREAM, STREAM_ID, message),
  ]);
}

/** grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"). */
function percentDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The state of one response, fed the server's bytes as they come. Pure: it
 * returns the bytes to send back (SETTINGS and PING acknowledgements) and
 * says when the response is complete.
 */
export class ResponseReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();
  /** The header block being assembled from HEADERS and CONTINUATION frames, and its size. */
  private pendingBlock: Buffer[] | undefined;
  private pendingBlockBytes = 0;
  private pendingEndStream = false;
  private readonly headerBlocks: HeaderList[] = [];
  private readonly data: Buffer[] = [];
  private dataBytes = 0;
  private dataFrames = 0;
  private otherFrames = 0;
  private acks = 0;
  private ended = false;
  private readonly maxResponseBytes: number;
  private readonly maxDataFrames: number;

  constructor(maxResponseBytes: number) {
    this.maxResponseBytes = maxResponseBytes;
    this.maxDataFrames = 16 + Math.ceil(maxResponseBytes / MIN_AVERAGE_DATA_FRAME);
  }

  /** Takes more bytes; returns what to write back. Throws GrpcCallError on anything invalid. */
  feed(chunk: Buffer): Buffer[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const replies: Buffer[] = [];
    while (!this.ended && this.buffer.length >= FRAME_HEADER_BYTES) {
      const length = this.buffer.readUIntBE(0, 3);
      if (length > DEFAULT_MAX_FRAME_BYTES) throw new GrpcCallError(`the server sent a frame of ${length} bytes, over the ${DEFAULT_MAX_FRAME_BYTES} allowed`);
      if (this.buffer.length < FRAME_HEADER_BYTES + length) break;
      const type = this.buffer[3]!;
      const flags = this.buffer[4]!;
      const streamId = this.buffer.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buffer.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
      this.buffer = this.buffer.subarray(FRAME_HEADER_BYTES + length);
      const reply = this.onFrame(type, flags, streamId, payload);
      if (reply !== undefined) replies.push(reply);
    }
    return replies;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** The response's header blocks as decoded so far: headers, then trailers. */
  get headers(): readonly HeaderList[] {
    return this.headerBlocks;
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): Buffer | undefined {
    if (this.pendingBlock !== undefined && type !== FrameType.CONTINUATION) {
      throw new GrpcCallError('a header block was interrupted by another frame');
    }
    if (type === FrameType.DATA ? ++this.dataFrames > this.maxDataFrames : ++this.otherFrames > MAX_OTHER_FRAMES) {
      throw new GrpcCallError(`the server sent more ${type === FrameType.DATA ? 'DATA' : 'non-DATA'} frames than a response of ${this.maxResponseBytes} bytes needs`);
    }
    switch (type) {
      case FrameType.SETTINGS:
        if (streamId !== 0 || payload.length % 6 !== 0) throw new GrpcCallError('malformed SETTINGS frame');
        return (flags & Flag.ACK) !== 0 ? undefined : this.ack(frame(FrameType.SETTINGS, Flag.ACK, 0));
      case FrameType.PING:
        if (streamId !== 0 || payload.length !== 8) throw new GrpcCallError('malformed PING frame');
        return (flags & Flag.ACK) !== 0 ? undefined : this.ack(frame(FrameType.PING, Flag.ACK, 0, Buffer.from(payload)));
      case FrameType.GOAWAY: {
        if (payload.length < 8) throw new GrpcCallError('malformed GOAWAY frame');
        const lastStream = payload.readUInt32BE(0) & 0x7fffffff;
        // Streams up to lastStream may still complete.
        if (lastStream < STREAM_ID) throw new GrpcCallError(`the server refused the call (GOAWAY, error code ${payload.readUInt32BE(4)})`);
        return undefined;
      }
      case FrameType.RST_STREAM:
        if (streamId === STREAM_ID) throw new GrpcCallError(`the server reset the call (RST_STREAM, error code ${payload.length >= 4 ? payload.readUInt32BE(0) : '?'})`);
        return undefined;
      case FrameType.PUSH_PROMISE:
        throw new GrpcCallError('the server pushed a stream, which the client disabled');
      case FrameType.HEADERS: {
        if (streamId !== STREAM_ID) throw new GrpcCallError(`HEADERS on stream ${streamId}`);
        let fragment = unpad(payload, flags);
        if (flags & Flag.PRIORITY) {
          if (fragment.length < 5) throw new GrpcCallError('malformed HEADERS priority');
          fragment = fragment.subarray(5);
        }
        this.pendingBlock = [fragment];
        this.pendingBlockBytes = fragment.length;
        this.pendingEndStream = (flags & Flag.END_STREAM) !== 0;
        if (flags & Flag.END_HEADERS) this.finishHeaderBlock();
        return undefined;
      }
      case FrameType.CONTINUATION:
        if (this.pendingBlock === undefined || streamId !== STREAM_ID) throw new GrpcCallError('unexpected CONTINUATION frame');
        if (this.pendingBlock.length > MAX_CONTINUATIONS) throw new GrpcCallError(`a header block in more than ${MAX_CONTINUATIONS} CONTINUATION frames`);
        this.pendingBlock.push(payload);
        this.pendingBlockBytes += payload.length;
        if (this.pendingBlockBytes > MAX_HEADER_LIST_BYTES) throw new GrpcCallError(`response headers over ${MAX_HEADER_LIST_BYTES} bytes`);
        if (flags & Flag.END_HEADERS) this.finishHeaderBlock();
        return undefined;
      case FrameType.DATA: {
        if (streamId !== STREAM_ID) throw new GrpcCallError(`DATA on stream ${streamId}`);
        if (this.headerBlocks.length !== 1) throw new GrpcCallError('DATA outside the response body');
        const data = unpad(payload, flags);
        this.dataBytes += data.length;
        if (this.dataBytes > this.maxResponseBytes + 5) throw new GrpcCallError(`response over ${this.maxResponseBytes} bytes`);
        if (data.length > 0) this.data.push(Buffer.from(data));
        if (flags & Flag.END_STREAM) this.ended = true;
        return undefined;
      }
      default:
        // PRIORITY, WINDOW_UPDATE (the request fits the initial windows) and
        // frame types this client does not know are ignored, as RFC 9113 says.
        return undefined;
    }
  }

  /** An acknowledgement to send, as long as the server has not asked for too many. */
  private ack(reply: Buffer): Buffer {
    if (++this.acks > MAX_ACKS) throw new GrpcCallError(`the server asked for more than ${MAX_ACKS} SETTINGS or PING acknowledgements`);
    return reply;
  }

  private finishHeaderBlock(): void {
    const block = Buffer.concat(this.pendingBlock!);
    this.pendingBlock = undefined;
    // Every block is decoded, in order, to keep the dynamic table in step.
    const headers = this.decoder.decode(block);
    if (headers.reduce((sum, [name, value]) => sum + name.length + value.length + 32, 0) > MAX_HEADER_LIST_BYTES) {
      throw new GrpcCallError(`response headers over ${MAX_HEADER_LIST_BYTES} bytes`);
    }
    this.headerBlocks.push(headers);
    if (this.headerBlocks.length > 2) throw new GrpcCallError('more than two header blocks in a response');
    if (this.pendingEndStream) this.ended = true;
    else if (this.headerBlocks.length === 2) throw new GrpcCallError('trailers without END_STREAM');
  }

  /** The gRPC outcome of a complete response. */
  result(): GrpcResponse {
    if (!this.ended) throw new GrpcCallError('the response is not complete');
    const [headers, trailers] = this.headerBlocks;
    if (headers === undefined) throw new GrpcCallError('the server answered without headers');
    const status = field(headers, ':status');
    if (status !== '200') throw new GrpcCallError(`HTTP status ${status ?? 'missing'}`);
    const contentType = field(headers, 'content-type') ?? '';
    if (!/^application\/grpc(?:$|[+;])/.test(contentType)) throw new GrpcCallError(`content-type ${JSON.stringify(contentType)} is not gRPC`);
    // A trailers-only response carries its status in the one header block.
    const statusBlock = trailers ?? headers;
    const grpcStatus = field(statusBlock, 'grpc-status');
    if (grpcStatus === undefined || !/^[0-9]{1,2}$/.test(grpcStatus)) throw new GrpcCallError(`grpc-status ${JSON.stringify(grpcStatus ?? 'missing')}`);
    const message = percentDecode(field(statusBlock, 'grpc-message') ?? '');
    const code = Number(grpcStatus);
    if (code !== 0) return { status: code, message, body: undefined };
    return { status: 0, message, body: this.message() };
  }

  /** Exactly one uncompressed length-prefixed message. */
  private message(): Buffer {
    const body = Buffer.concat(this.data);
    if (body.length < 5) throw new GrpcCallError('the response holds no message');
    if (body[0] !== 0) throw new GrpcCallError('the response message is compressed, which the client did not ask for');
    const length = body.readUInt32BE(1);
    if (length !== body.length - 5) throw new GrpcCallError(`the response body holds ${body.length - 5} bytes for a message of ${length}`);
    return body.subarray(5);
  }
}

function unpad(payload: Buffer, flags: number): Buffer {
  if ((flags & Flag.PADDED) === 0) return payload;
  if (payload.length < 1 || payload[0]! >= payload.length) throw new GrpcCallError('malformed padding');
  return payload.subarray(1, payload.length - payload[0]!);
}

function field(headers: HeaderList, name: string): string | undefined {
  return headers.find(([key]) => key === name)?.[1];
}

/** Makes the call; rejects with GrpcCallError, never hangs past the deadline. */
export function grpcUnaryCall(call: GrpcCall): Promise<GrpcResponse> {
  return new Promise((resolve, reject) => {
    let request: Buffer;
    try {
      request = requestBytes(call);
    } catch (error) {
      reject(error instanceof GrpcCallError ? error : new GrpcCallError((error as Error).message));
      return;
    }
    const reader = new ResponseReader(call.maxResponseBytes);
    let socket: Socket | undefined;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (outcome: () => GrpcResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      try {
        resolve(outcome());
      } catch (error) {
        reject(error instanceof GrpcCallError ? error : new GrpcCallError((error as Error).message));
      }
    };
    const fail = (why: string): void => finish(() => {
      throw new GrpcCallError(why);
    });
    timer = setTimeout(() => fail(`no answer within ${call.timeoutMs} ms`), call.timeoutMs);

    const connection = connect({ path: call.socketPath });
    socket = connection;
    connection.on('connect', () => connection.write(request));
    connection.on('data', (chunk: Buffer) => {
      try {
        for (const reply of reader.feed(chunk)) connection.write(reply);
      } catch (error) {
        fail((error as Error).message);
        return;
      }
      if (reader.complete) finish(() => reader.result());
    });
    connection.on('error', (error: NodeJS.ErrnoException) => fail(`${error.code ?? error.message} on ${call.socketPath}`));
    connection.on('close', () => fail('the server closed the connection before answering'));
  });
}
