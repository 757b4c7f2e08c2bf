/**
 * HPACK (RFC 7541), for the one HTTP/2 exchange the shim has with its CRI
 * runtime: a decoder for the response's header blocks (static and dynamic
 * tables, Huffman-coded strings), and an encoder for the request's few
 * headers that uses no table state and no Huffman coding, which every
 * decoder must accept. Header names and values are octets, kept as latin1.
 */

export class HpackError extends Error {
  override name = 'HpackError';
}

export type HeaderList = [name: string, value: string][];

/** RFC 7541 Appendix A. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/**
 * RFC 7541 Appendix B: the code length of each symbol, 0 to 255 and EOS
 * (256). The code is canonical (codes of one length are consecutive, in
 * symbol order, each length following on from the shorter ones), so the
 * lengths alone define it.
 */
const HUFFMAN_CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];
const EOS = 256;
const MAX_CODE_LENGTH = 30;

interface CanonicalCode {
  /** By code length: the first code of that length, how many there are, and where they start in `symbols`. */
  first: number[];
  count: number[];
  offset: number[];
  /** The symbols ordered by (length, symbol). */
  symbols: number[];
}

let canonical: CanonicalCode | undefined;

function huffmanCode(): CanonicalCode {
  if (canonical !== undefined) return canonical;
  const symbols = HUFFMAN_CODE_LENGTHS.map((_, symbol) => symbol).sort(
    (a, b) => HUFFMAN_CODE_LENGTHS[a]! - HUFFMAN_CODE_LENGTHS[b]! || a - b,
  );
  const first = new Array<number>(MAX_CODE_LENGTH + 1).fill(0);
  const count = new Array<number>(MAX_CODE_LENGTH + 1).fill(0);
  const offset = new Array<number>(MAX_CODE_LENGTH + 1).fill(0);
  for (const length of HUFFMAN_CODE_LENGTHS) count[length]!++;
  let code = 0;
  let position = 0;
  for (let length = 1; length <= MAX_CODE_LENGTH; length++) {
    code <<= 1;
    first[length] = code;
    offset[length] = position;
    code += count[length]!;
    position += count[length]!;
  }
  canonical = { first, count, offset, symbols };
  return canonical;
}

/** Decodes a Huffman-coded string (RFC 7541 5.2): padding must be at most 7 bits of the EOS prefix, EOS itself is an error. */
export function huffmanDecode(data: Uint8Array): Buffer {
  const { first, count, offset, symbols } = huffmanCode();
  const out: number[] = [];
  let code = 0;
  let length = 0;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      length++;
      const index = code - first[length]!;
      if (index >= 0 && index < count[length]!) {
        const symbol = symbols[offset[length]! + index]!;
        if (symbol === EOS) throw new HpackError('Huffman string holds EOS');
        out.push(symbol);
        code = 0;
        length = 0;
      } else if (length >= MAX_CODE_LENGTH) {
        throw new HpackError('invalid Huffman code');
      }
    }
  }
  if (length > 7 || code !== (1 << length) - 1) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out);
}

/** Table entries are charged their octets plus 32 (RFC 7541 4.1). */
const ENTRY_OVERHEAD = 32;
/** SETTINGS_HEADER_TABLE_SIZE's default, which the shim never changes. */
export const DEFAULT_TABLE_SIZE = 4096;

/** A header block decoder; one per connection, fed every block in order. */
export class HpackDecoder {
  /** Newest first: dynamic index 1 is static index 62. */
  private readonly dynamic: [string, string][] = [];
  private dynamicSize = 0;
  private maxSize: number;
  private readonly tableSizeLimit: number;

  constructor(tableSizeLimit: number = DEFAULT_TABLE_SIZE) {
    this.tableSizeLimit = tableSizeLimit;
    this.maxSize = tableSizeLimit;
  }

  decode(block: Uint8Array): HeaderList {
    const headers: HeaderList = [];
    let offset = 0;
    const readInteger = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[offset++]! & mask;
      if (value < mask) return value;
      for (let shift = 0; ; shift += 7) {
        if (offset >= block.length) throw new HpackError('truncated integer');
        if (shift > 28) throw new HpackError('integer too large');
        const byte = block[offset++]!;
        value += (byte & 0x7f) * 2 ** shift;
        if ((byte & 0x80) === 0) return value;
      }
    };
    const readString = (): string => {
      if (offset >= block.length) throw new HpackError('truncated string');
      const huffman = (block[offset]! & 0x80) !== 0;
      const length = readInteger(7);
      if (length > block.length - offset) throw new HpackError('string runs past the end of the block');
      const raw = block.subarray(offset, offset + length);
      offset += length;
      return (huffman ? huffmanDecode(raw) : Buffer.from(raw)).toString('latin1');
    };

    while (offset < block.length) {
      const byte = block[offset]!;
      if (byte & 0x80) {
        headers.push(this.entry(readInteger(7)));
      } else if (byte & 0x40) {
        const index = readInteger(6);
        const name = index === 0 ? readString() : this.entry(index)[0];
        const value = readString();
        headers.push([name, value]);
        this.insert(name, value);
      } else if (byte & 0x20) {
        // A size update may only come first in a block (RFC 7541 4.2).
        if (headers.length > 0) throw new HpackError('table size update after a header field');
        const size = readInteger(5);
        if (size > this.tableSizeLimit) throw new HpackError(`table size ${size} over the limit ${this.tableSizeLimit}`);
        this.maxSize = size;
        this.evict();
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = readInteger(4);
        const name = index === 0 ? readString() : this.entry(index)[0];
        headers.push([name, readString()]);
      }
    }
    return headers;
  }

  private entry(index: number): [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) {
      const [name, value] = STATIC_TABLE[index - 1]!;
      return [name, value];
    }
    const entry = this.dynamic[index - STATIC_TABLE.length - 1];
    if (entry === undefined) throw new HpackError(`index ${index} is in neither table`);
    return [entry[0], entry[1]];
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.dynamic.unshift([name, value]);
    this.dynamicSize += size;
    // An entry larger than the table empties it and is not kept (RFC 7541 4.4).
    this.evict();
  }

  private evict(): void {
    while (this.dynamicSize > this.maxSize) {
      const [name, value] = this.dynamic.pop()!;
      this.dynamicSize -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

function encodeInteger(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) return [firstByteFlags | value];
  const bytes = [firstByteFlags | mask];
  let rest = value - mask;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return bytes;
}

function encodeString(text: string): number[] {
  const bytes = Buffer.from(text, 'latin1');
  return [...encodeInteger(bytes.length, 7, 0), ...bytes];
}

/**
 * A header block of literal fields without indexing, names given as
 * strings: no table state on either side, nothing to keep in step.
 */
export function encodeHeaders(headers: HeaderList): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of headers) bytes.push(0x00, ...encodeString(name), ...encodeString(value));
  return Buffer.from(bytes);
}
