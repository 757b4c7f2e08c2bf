/**
 * The CRI client's wire formats, each checked against an implementation that
 * is not the shim's: protobuf against protobufjs, HPACK against RFC 7541's
 * own examples (Appendix C), the Huffman code against its published code
 * words. test/integration/cri-client.test.ts checks the HTTP/2 exchange
 * against real servers.
 */
import fc from 'fast-check';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import t from 'tap';
import { containerStatusRequest, declaredSupplementalGroups, parseContainerStatusResponse } from '../../src/cri/container-status';
import { HpackDecoder, encodeHeaders, huffmanDecode } from '../../src/cri/hpack';
import { boolField, readFields, stringField, stringMapField } from '../../src/cri/protobuf';
import { containerdInfo } from '../helpers/fake-cri';
import { assertProperty } from '../helpers/properties';

const root = new protobuf.Root().loadSync(join(__dirname, '..', 'e2e', 'cri', 'api.proto'), { keepCase: true });
const Request = root.lookupType('runtime.v1.ContainerStatusRequest');
const Response = root.lookupType('runtime.v1.ContainerStatusResponse');
const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

t.test('protobuf', async (t) => {
  t.test('the fields it writes, byte for byte', async (t) => {
    t.same(stringField(1, 'abc'), hex('0a 03 616263'));
    t.same(boolField(2, true), hex('10 01'));
    t.same(boolField(2, false), Buffer.alloc(0), 'proto3 leaves a false bool out');
    t.same(stringField(1, 'x'.repeat(300)).subarray(0, 3), hex('0a ac02'), 'a two-byte length');
  });

  t.test('protobufjs reads the request as the CRI defines it', async (t) => {
    const decoded = Request.toObject(Request.decode(containerStatusRequest('0123abc')));
    t.same(decoded, { container_id: '0123abc', verbose: true });
  });

  t.test('every wire type, unknown fields skipped', async (t) => {
    // 1: varint 300; 2: fixed64; 3: bytes "hi"; 4: fixed32; 1 again.
    const fields = readFields(hex('08 ac02  11 0100000000000000  1a 02 6869  25 02000000  08 01'));
    t.same(fields.map((field) => [field.number, field.wireType]), [[1, 0], [2, 1], [3, 2], [4, 5], [1, 0]]);
    t.same(fields.map((field) => field.value), [300n, 1n, Buffer.from('hi'), 2n, 1n]);
    t.same(readFields(hex('08 ffffffffffffffffff01')).map((field) => field.value), [2n ** 64n - 1n], 'a ten-byte varint');
  });

  t.test('malformed encodings are errors, never a wrong reading', async (t) => {
    const cases: [string, string][] = [
      ['0a 05 6869', 'field runs past the end'],
      ['0a', 'truncated varint'],
      ['08 ffffffffffffffffffff01', 'varint longer than 10 bytes'],
      ['0b', 'unsupported wire type 3'],
      ['0c', 'unsupported wire type 4'],
      ['0e', 'unsupported wire type 6'],
      ['00 00', 'invalid field number 0'],
      ['11 0102', 'field runs past the end'],
      ['0a ffffffff0f', 'field runs past the end'],
    ];
    for (const [bytes, message] of cases) t.throws(() => readFields(hex(bytes)), { name: 'ProtobufError', message: new RegExp(message) }, bytes);
  });

  t.test('map<string, string>: later keys win, missing key or value is empty', async (t) => {
    const entry = (key: string | undefined, value: string | undefined): Buffer =>
      Buffer.concat([key === undefined ? Buffer.alloc(0) : stringField(1, key), value === undefined ? Buffer.alloc(0) : stringField(2, value)]);
    const message = Buffer.concat([entry('a', '1'), entry('b', '2'), entry('a', '3'), entry(undefined, 'v'), entry('k', undefined)].map((e) => Buffer.concat([hex('12'), Buffer.from([e.length]), e])));
    t.same([...stringMapField(readFields(message), 2)], [['a', '3'], ['b', '2'], ['', 'v'], ['k', '']]);
  });

  t.test('a ContainerStatusResponse from protobufjs reads back, whatever the strings', async (t) => {
    const text = fc.string({ unit: 'grapheme', maxLength: 40 });
    assertProperty(
      fc.property(text, text, fc.dictionary(text, text, { maxKeys: 4 }), text, (id, name, extra, info) => {
        const message = Buffer.from(Response.encode(Response.fromObject({ status: { id, metadata: { name }, exit_code: 7 }, info: { ...extra, info: JSON.stringify({ value: info }) } })).finish());
        const reported = parseContainerStatusResponse(message);
        if (reported.id !== id || reported.name !== name || reported.info['value'] !== info) {
          throw new Error(`read ${JSON.stringify(reported)}`);
        }
      }),
      { numRuns: 300 },
    );
    t.pass('round trip');
  });
});

t.test('ContainerStatus answers', async (t) => {
  const encode = (status: object, info?: Record<string, string>): Buffer =>
    Buffer.from(Response.encode(Response.fromObject(info === undefined ? { status } : { status, info })).finish());
  const view = { id: 'c1', name: 'main', sandboxId: 's1', supplementalGroups: [50000, 60000], runAsUser: 1000 };
  const answer = (overrides: Partial<typeof view> = {}, status: object = { id: 'c1', metadata: { name: 'main' } }) =>
    parseContainerStatusResponse(encode(status, { info: containerdInfo({ ...view, ...overrides }) }));
  const expected = { id: 'c1', name: 'main', sandboxId: 's1' };

  t.test('the declared groups of the container asked about', async (t) => {
    t.same(declaredSupplementalGroups(answer(), expected), [50000, 60000]);
    t.same(declaredSupplementalGroups(answer(), { id: 'c1' }), [50000, 60000], 'a bundle without name or sandbox annotations checks the id alone');
    t.same(declaredSupplementalGroups(answer({ supplementalGroups: [] }), expected), [], 'an empty list is left out by omitempty');
  });

  t.test('an answer about another container, or not shaped as containerd writes it, is refused', async (t) => {
    const refusals: [string, () => unknown, RegExp][] = [
      ['another id', () => declaredSupplementalGroups(answer({}, { id: 'c2', metadata: { name: 'main' } }), expected), /about container "c2", not "c1"/],
      ['another status name', () => declaredSupplementalGroups(answer({}, { id: 'c1', metadata: { name: 'other' } }), expected), /status name "other"/],
      ['another config name', () => declaredSupplementalGroups(answer({ name: 'other' }), expected), /config name "other"/],
      ['another sandbox', () => declaredSupplementalGroups(answer({ sandboxId: 's2' }), expected), /sandbox id "s2"/],
      ['no verbose info', () => parseContainerStatusResponse(encode({ id: 'c1' })), /no verbose info/],
      ['info not JSON', () => parseContainerStatusResponse(encode({ id: 'c1' }, { info: '{' })), /is not JSON/],
      ['info a list', () => parseContainerStatusResponse(encode({ id: 'c1' }, { info: '[]' })), /not a JSON object/],
      ['no status', () => parseContainerStatusResponse(Buffer.alloc(0)), /no status/],
      ['not protobuf', () => parseContainerStatusResponse(hex('0a 05 01')), /malformed response/],
    ];
    for (const [what, call, message] of refusals) t.throws(call, { name: 'ContainerStatusError', message }, what);

    const shaped = (config: unknown): unknown => declaredSupplementalGroups({ id: 'c1', name: undefined, info: { config } }, { id: 'c1' });
    t.throws(() => shaped(undefined), /no CRI config/);
    t.throws(() => shaped({ linux: [] }), /config.linux is not an object/);
    t.throws(() => shaped({ linux: { security_context: 'x' } }), /security_context is not an object/);
    for (const groups of [[-1], [2 ** 32], [1.5], ['1'], 5, null, [2 ** 63]]) {
      t.throws(() => shaped({ linux: { security_context: { supplemental_groups: groups } } }), /not a list of group ids/, JSON.stringify(groups));
    }
    t.same(shaped({}), [], 'no linux section: nothing declared');
    t.same(shaped({ linux: {} }), [], 'no security context: nothing declared');
    t.same(shaped({ linux: { security_context: { supplemental_groups: [0, 2 ** 31, 2 ** 32 - 1] } } }), [0, 2 ** 31, 2 ** 32 - 1], 'a volume gid past 2^31 as containerd casts it');
  });
});

t.test('HPACK', async (t) => {
  t.test('RFC 7541 C.2: literal representations', async (t) => {
    const decoder = new HpackDecoder();
    t.same(decoder.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), [['custom-key', 'custom-header']]);
    t.same(decoder.decode(hex('be')), [['custom-key', 'custom-header']], 'C.2.1 entered the dynamic table at index 62');
    t.same(new HpackDecoder().decode(hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
    t.same(new HpackDecoder().decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [['password', 'secret']]);
    t.same(new HpackDecoder().decode(hex('82')), [[':method', 'GET']]);
  });

  t.test('RFC 7541 C.4: requests with Huffman coding, one dynamic table across them', async (t) => {
    const decoder = new HpackDecoder();
    t.same(decoder.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')), [
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'],
    ]);
    t.same(decoder.decode(hex('8286 84be 5886 a8eb 1064 9cbf')), [
      [':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache'],
    ]);
    t.same(decoder.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')), [
      [':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value'],
    ]);
  });

  t.test('the table size: an update shrinks it and evicts, beyond the limit is an error', async (t) => {
    const decoder = new HpackDecoder();
    decoder.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    t.same(decoder.decode(hex('20')), [], 'size 0 empties the table');
    t.throws(() => decoder.decode(hex('be')), /index 62 is in neither table/);
    t.throws(() => new HpackDecoder().decode(hex('3fe21f')), /table size 4097 over the limit 4096/);
    t.throws(() => new HpackDecoder().decode(hex('82 20')), /size update after a header field/);
  });

  t.test('malformed blocks are errors', async (t) => {
    t.throws(() => new HpackDecoder().decode(hex('80')), /index 0/);
    t.throws(() => new HpackDecoder().decode(hex('ff')), /truncated integer/);
    t.throws(() => new HpackDecoder().decode(hex('ff ffffffffff7f')), /integer too large/);
    t.throws(() => new HpackDecoder().decode(hex('00 05 6162')), /runs past the end/);
    t.throws(() => new HpackDecoder().decode(hex('00')), /truncated string/);
  });

  t.test('Huffman: the code words RFC 7541 Appendix B gives, EOS and bad padding refused', async (t) => {
    // '0' is 00000 (5 bits), 'a' 00011, ' ' 010100 (6 bits); a byte of '0' padded with ones is 0x07.
    t.same(huffmanDecode(hex('07')), Buffer.from('0'));
    t.same(huffmanDecode(hex('1f')), Buffer.from('a'));
    t.same(huffmanDecode(hex('53')), Buffer.from(' '));
    // Symbol 0 is 0x1ff8 in 13 bits, symbol 255 0x3ffffee in 26 bits.
    t.same(huffmanDecode(hex('ffc7')), Buffer.of(0));
    t.same(huffmanDecode(hex('fffffbbf')), Buffer.of(255), '0x3ffffee then 6 bits of padding');
    t.throws(() => huffmanDecode(hex('ffffffff')), /EOS/);
    t.throws(() => huffmanDecode(hex('00')), /padding/, "'0' then three zero bits");
    t.throws(() => huffmanDecode(hex('07ff')), /padding/, 'eight bits of padding');
  });

  t.test('what the request encoder writes, any decoder reads', async (t) => {
    const headers: [string, string][] = [[':method', 'POST'], [':path', '/runtime.v1.RuntimeService/ContainerStatus'], ['x', 'y'.repeat(200)]];
    t.same(new HpackDecoder().decode(encodeHeaders(headers)), headers);
  });
});
