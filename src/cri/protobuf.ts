/**
 * Just enough of the protobuf wire format for one CRI call: writing a few
 * scalar fields, and reading a message's fields by number without its schema.
 * Readers never throw on unknown fields; a malformed encoding is an error.
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;

export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

function varint(value: bigint): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return bytes;
}

function tag(field: number, wireType: number): number[] {
  return varint(BigInt((field << 3) | wireType));
}

/** A string field (UTF-8). */
export function stringField(field: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([Buffer.from([...tag(field, WIRE_LENGTH_DELIMITED), ...varint(BigInt(bytes.length))]), bytes]);
}

/** A bool field; false is the default and, as proto3 does, not written. */
export function boolField(field: number, value: boolean): Buffer {
  return value ? Buffer.from([...tag(field, WIRE_VARINT), 1]) : Buffer.alloc(0);
}

export interface Field {
  number: number;
  wireType: number;
  /** Varints and fixed-width values as unsigned integers; length-delimited fields as their bytes. */
  value: bigint | Buffer;
}

/** The fields of an encoded message, in the order they appear. */
export function readFields(message: Buffer): Field[] {
  const fields: Field[] = [];
  let offset = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (offset >= message.length) throw new ProtobufError('truncated varint');
      const byte = message[offset++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  };
  const take = (length: number): Buffer => {
    if (length > message.length - offset) throw new ProtobufError('field runs past the end of the message');
    const bytes = message.subarray(offset, offset + length);
    offset += length;
    return bytes;
  };

  while (offset < message.length) {
    const key = readVarint();
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (number === 0 || key >> 3n > 0x1fffffffn) throw new ProtobufError(`invalid field number ${key >> 3n}`);
    switch (wireType) {
      case WIRE_VARINT:
        fields.push({ number, wireType, value: readVarint() });
        break;
      case WIRE_FIXED64:
        fields.push({ number, wireType, value: take(8).readBigUInt64LE() });
        break;
      case WIRE_LENGTH_DELIMITED: {
        const length = readVarint();
        if (length > BigInt(message.length)) throw new ProtobufError('field runs past the end of the message');
        fields.push({ number, wireType, value: take(Number(length)) });
        break;
      }
      case WIRE_FIXED32:
        fields.push({ number, wireType, value: BigInt(take(4).readUInt32LE()) });
        break;
      default:
        // Groups (3, 4) are proto2-only and nothing the CRI uses.
        throw new ProtobufError(`unsupported wire type ${wireType} for field ${number}`);
    }
  }
  return fields;
}

/** The last occurrence of a length-delimited field, as protobuf merges a repeated singular field. */
export function bytesField(fields: readonly Field[], number: number): Buffer | undefined {
  let found: Buffer | undefined;
  for (const field of fields) {
    if (field.number !== number) continue;
    if (!(field.value instanceof Buffer)) throw new ProtobufError(`field ${number} is not length-delimited`);
    found = field.value;
  }
  return found;
}

/** Every occurrence of a length-delimited field (a repeated or map field). */
export function repeatedBytesField(fields: readonly Field[], number: number): Buffer[] {
  return fields.filter((field) => field.number === number).map((field) => {
    if (!(field.value instanceof Buffer)) throw new ProtobufError(`field ${number} is not length-delimited`);
    return field.value;
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A string field's text; protobuf strings must be valid UTF-8. */
export function decodeString(bytes: Buffer, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ProtobufError(`${what} is not valid UTF-8`);
  }
}

/** A map<string, string> field: entries with key = 1 and value = 2; a later key wins. */
export function stringMapField(fields: readonly Field[], number: number): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of repeatedBytesField(fields, number)) {
    const entryFields = readFields(entry);
    const key = bytesField(entryFields, 1);
    const value = bytesField(entryFields, 2);
    map.set(key === undefined ? '' : decodeString(key, 'a map key'), value === undefined ? '' : decodeString(value, 'a map value'));
  }
  return map;
}
