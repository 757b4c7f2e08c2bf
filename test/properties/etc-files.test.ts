/**
 * Properties of the /etc/passwd and /etc/group readers (src/etc-files.ts) on
 * arbitrary bytes and on arbitrary lines built from what those files are made
 * of. An image is hostile input: the readers must never throw, every gid must
 * be a uint32, and what counts as image-derived may only grow with more lines.
 * test/unit/etc-files.test.ts holds the worked cases of each quirk.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { imageGidsFor, parseGroup, parsePasswd } from '../../src/etc-files';
import { assertProperty, gid, text } from '../helpers/properties';

const RUNS = { numRuns: 500 };
const UINT32_MAX = 0xffffffff;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's unicode.IsSpace: what bytes.TrimSpace takes off both ends of a line. */
const GO_SPACES = ['\t', '\v', '\f', '\r', ' ', '\u0085', '\u00a0', '\u1680', '\u2000', '\u2005', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000'];

const utf8 = (content: string): Uint8Array => Buffer.from(content, 'utf8');

/** A field of a passwd or group line: digits, signs, names, junk. */
const field: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', 'x', 'root', 'alice', '#alice', ' alice', 'alice ', '0', '1000', '-1', '+7', '4294967296', '99999999999999999999', 'notanumber'),
  fc.bigInt({ min: INT64_MIN * 2n, max: INT64_MAX * 2n }).map(String),
  text({ maxLength: 8 }).map((junk) => junk.replaceAll('\n', '')),
);

/** A line of /etc/passwd or /etc/group (no "\n"): fields joined by ":", members by ",", maybe white space around. */
const line: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(fc.constantFrom(...GO_SPACES), { maxLength: 2 }),
    fc.array(field, { maxLength: 5 }),
    fc.array(field, { maxLength: 4 }),
    fc.array(fc.constantFrom(...GO_SPACES), { maxLength: 2 }),
  )
  .map(([lead, fields, members, trail]) => lead.join('') + [...fields, members.join(',')].join(':') + trail.join(''));

const lines: fc.Arbitrary<string[]> = fc.array(line, { maxLength: 12 });

/** File contents: arbitrary bytes (invalid UTF-8 included), or lines of fields. */
const content: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  lines.map((ls) => utf8(ls.join('\n'))),
);

/** A uid as a process could have it. */
const uid = gid;

t.test('the readers never throw on any bytes; every uid an int64, every gid a uint32', async (t) => {
  assertProperty(
    fc.property(content, content, fc.array(uid, { maxLength: 3 }), (passwd, group, uids) => {
      for (const entry of parsePasswd(passwd)) {
        assert.ok(entry.uid >= INT64_MIN && entry.uid <= INT64_MAX, `uid ${entry.uid} is an int64`);
      }
      for (const entry of parseGroup(group)) {
        assert.ok(Number.isInteger(entry.gid) && entry.gid >= 0 && entry.gid <= UINT32_MAX, `gid ${entry.gid} is a uint32`);
      }
      const granted = imageGidsFor(uids, passwd, group);
      const groupGids = new Set(parseGroup(group).map((entry) => entry.gid));
      for (const g of granted) assert.ok(groupGids.has(g), `granted gid ${g} is the gid of a group line`);
    }),
    RUNS,
  );
  t.pass('no throw, gids in range');
});

/** A passwd and a group file that grant something often: user names and members from one small pool. */
const NAMES = ['root', 'alice', 'bob', '#alice', 'Alice'];
const passwdLine = fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom('0', '1000', '1001', '4294968296', '-1', 'junk')).map(([name, id]) => `${name}:x:${id}:${id}::/home:/bin/sh`);
const groupLine = fc
  .tuple(text({ maxLength: 6 }), gid, fc.array(fc.constantFrom(...NAMES, ''), { maxLength: 3 }), fc.boolean())
  .map(([name, g, members, commented]) => `${commented ? '#' : ''}${name.replace(/[:\n]/g, '')}:x:${g}:${members.join(',')}`);
const etcFiles = fc.record({
  passwd: fc.array(fc.oneof(passwdLine, line), { maxLength: 5 }),
  group: fc.array(fc.oneof(groupLine, line), { maxLength: 8 }),
  uids: fc.array(fc.constantFrom(0, 1000, 1001, UINT32_MAX), { minLength: 1, maxLength: 2 }),
});

const granted = (passwd: readonly string[], group: readonly string[], uids: readonly number[]): Set<number> =>
  imageGidsFor(uids, utf8(passwd.join('\n')), utf8(group.join('\n')));

t.test('monotone: a line inserted anywhere in either file never takes a gid away', async (t) => {
  // Lines are independent and every passwd entry of the uid counts (not
  // only the first, as containerd takes): more lines can only mean more gids.
  assertProperty(
    fc.property(etcFiles, fc.oneof(groupLine, passwdLine, line), fc.nat(), fc.boolean(), ({ passwd, group, uids }, extra, at, intoGroup) => {
      const before = granted(passwd, group, uids);
      const target = intoGroup ? group : passwd;
      const grown = target.toSpliced(at % (target.length + 1), 0, extra);
      const after = intoGroup ? granted(passwd, grown, uids) : granted(grown, group, uids);
      for (const g of before) assert.ok(after.has(g), `gid ${g} still granted after inserting ${JSON.stringify(extra)}`);
    }),
    RUNS,
  );
  t.pass('inserting lines only adds gids');
});

t.test('CRLF endings and Go white space around lines read as plain LF lines', async (t) => {
  const padding = fc.array(fc.constantFrom(...GO_SPACES), { maxLength: 3 }).map((spaces) => spaces.join(''));
  const padded = (ls: readonly string[]): fc.Arbitrary<string> =>
    fc.tuple(...ls.map(() => fc.tuple(padding, padding, fc.boolean()))).map((pads) =>
      ls.map((l, i) => {
        const [lead, trail, crlf] = pads[i]!;
        return `${lead}${l}${trail}${crlf ? '\r' : ''}`;
      }).join('\n'),
    );
  assertProperty(
    fc.property(
      etcFiles.chain((files) => fc.tuple(fc.constant(files), padded(files.passwd), padded(files.group))),
      ([{ passwd, group, uids }, paddedPasswd, paddedGroup]) => {
        assert.deepEqual(parsePasswd(utf8(paddedPasswd)), parsePasswd(utf8(passwd.join('\n'))));
        assert.deepEqual(parseGroup(utf8(paddedGroup)), parseGroup(utf8(group.join('\n'))));
        assert.deepEqual(imageGidsFor(uids, utf8(paddedPasswd), utf8(paddedGroup)), granted(passwd, group, uids));
      },
    ),
    RUNS,
  );
  t.pass('padding and CR change nothing');
});

/**
 * A user name as an image could have one: no ":" or ",", no white space at
 * its ends, no leading "#" (a group named like it would be a comment line).
 */
const userName = fc
  .string({ unit: fc.oneof(fc.constantFrom('a', 'l', 'i', 'c', 'e', 'A', '_', '-', '.', '#', '0', 'é', 'ſ', '\u00a0'), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 8 })
  .filter((name) => !/[:,]/.test(name) && name === name.trim() && !name.startsWith('#'));

/**
 * Member spellings that are not the name but could be taken for it by a
 * reader that trims, folds case or matches substrings. No trailing white
 * space: at the end of a line it would be trimmed off, making the name exact.
 */
function nearMisses(name: string): fc.Arbitrary<string[]> {
  const variants = [` ${name}`, `\t${name}`, name.toUpperCase(), name.toLowerCase(), `${name}x`, `x${name}`, name.slice(1), name.slice(0, -1), `${name}\0`, `"${name}"`];
  const misses = variants.filter((v) => v !== name);
  return fc.array(fc.constantFrom(...misses, 'root', ''), { maxLength: 4 });
}

t.test('a member list without the exact name grants nothing; with it, the group is granted', async (t) => {
  const scenario = userName.chain((name) =>
    fc.record({
      name: fc.constant(name),
      uid: fc.integer({ min: 1, max: 65535 }),
      groups: fc.array(fc.tuple(gid, nearMisses(name), fc.boolean()), { minLength: 1, maxLength: 5 }),
    }),
  );
  assertProperty(
    fc.property(scenario, fc.nat(), ({ name, uid, groups }, pick) => {
      const passwd = utf8(`${name}:x:${uid}:${uid}::/home:/bin/sh\n`);
      // A group named like the user is no membership either.
      const groupLines = groups.map(([g, members, namedLikeUser]) => `${namedLikeUser ? name : 'g'}:x:${g}:${members.join(',')}`);
      assert.deepEqual(imageGidsFor(uid, passwd, utf8(groupLines.join('\n'))), new Set(), 'near misses grant nothing');
      // The same file with the exact name added to one member list grants that group: the check can fail.
      const chosen = pick % groups.length;
      const withName = groupLines.map((l, i) => (i === chosen ? `${l}${groups[i]![1].length > 0 ? ',' : ''}${name}` : l));
      assert.ok(imageGidsFor(uid, passwd, utf8(withName.join('\n'))).has(groups[chosen]![0]), 'the exact name grants');
    }),
    RUNS,
  );
  t.pass('only the exact name grants');
});
