import t from 'tap';
import {
  criLookupUids,
  goAtoi,
  imageGids,
  imageGidsFor,
  namesForUid,
  parseGroup,
  parsePasswd,
  toUint32,
  type GroupEntry,
} from '../../src/etc-files';

/**
 * The image's /etc/passwd and /etc/group must be read exactly as the CRI
 * runtime's Go readers read them (FACTS.md, "How containerd 1.6/1.7 builds
 * additionalGids"): any gid the runtime could have derived and the shim does
 * not is a leak.
 */

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const sorted = (set: ReadonlySet<number>): number[] => [...set].sort((a, b) => a - b);

t.test('goAtoi: Go strconv.Atoi with the error ignored', async (t) => {
  t.equal(goAtoi('0'), 0n);
  t.equal(goAtoi('1000'), 1000n);
  t.equal(goAtoi('007'), 7n, 'leading zeros are decimal, not octal');
  t.equal(goAtoi('+5'), 5n, 'Atoi accepts a plus sign');
  t.equal(goAtoi('-1'), -1n);
  t.equal(goAtoi('-0'), 0n);
  t.equal(goAtoi('4294967296'), 4294967296n, 'no uint32 wrap here: Atoi is int64');

  // Anything that is not sign+digits parses as 0, which becomes gid 0 (root).
  t.equal(goAtoi(''), 0n);
  t.equal(goAtoi(' 5'), 0n, 'fields are not trimmed');
  t.equal(goAtoi('5 '), 0n);
  t.equal(goAtoi('5\n'), 0n, 'a trailing newline is junk too');
  t.equal(goAtoi('notanumber'), 0n);
  t.equal(goAtoi('+'), 0n);
  t.equal(goAtoi('-'), 0n);
  t.equal(goAtoi('+-5'), 0n);
  t.equal(goAtoi('0x10'), 0n, 'no base prefixes');
  t.equal(goAtoi('1_000'), 0n, 'no underscores in base 10');
  t.equal(goAtoi('1e3'), 0n);
  t.equal(goAtoi('1.0'), 0n);
  t.equal(goAtoi('\uff11'), 0n, 'a fullwidth digit is not a digit');

  // Out of range: ParseInt returns the clamped bound together with the error.
  t.equal(goAtoi('9223372036854775807'), INT64_MAX);
  t.equal(goAtoi('9223372036854775808'), INT64_MAX);
  t.equal(goAtoi('99999999999999999999999999'), INT64_MAX);
  t.equal(goAtoi('-9223372036854775808'), INT64_MIN);
  t.equal(goAtoi('-9223372036854775809'), INT64_MIN);
  t.equal(goAtoi('-99999999999999999999999999'), INT64_MIN);
});

t.test('toUint32: Go uint32(int), the low 32 bits', async (t) => {
  t.equal(toUint32(0n), 0);
  t.equal(toUint32(1000n), 1000);
  t.equal(toUint32(4294967295n), 4294967295);
  t.equal(toUint32(4294967296n), 0, '2^32 wraps to root');
  t.equal(toUint32(4294968296n), 1000);
  t.equal(toUint32(-1n), 4294967295);
  t.equal(toUint32(-4294967296n), 0);
  t.equal(toUint32(-4294967295n), 1);
  // The clamped Atoi results.
  t.equal(toUint32(INT64_MAX), 4294967295);
  t.equal(toUint32(INT64_MIN), 0);
  t.equal(toUint32(goAtoi('99999999999999999999')), 4294967295);
  t.equal(toUint32(goAtoi('-99999999999999999999')), 0);
});

t.test('parsePasswd', async (t) => {
  t.test('plain lines, name and uid', async (t) => {
    t.same(parsePasswd(bytes('root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n')), [
      { name: 'root', uid: 0n },
      { name: 'alice', uid: 1000n },
    ]);
  });

  t.test('CRLF and surrounding white space are trimmed per line', async (t) => {
    t.same(parsePasswd(bytes('root:x:0:0::/:/bin/sh\r\n  alice:x:1000:1000::/:/bin/sh\t\r\n\tbob:x:1001:1001::/:/bin/sh  \n')), [
      { name: 'root', uid: 0n },
      { name: 'alice', uid: 1000n },
      { name: 'bob', uid: 1001n },
    ]);
  });

  t.test('Unicode spaces (U+00A0, U+3000) are trimmed like bytes.TrimSpace', async (t) => {
    t.same(parsePasswd(bytes('\u00a0alice:x:1000:1000\u00a0\n\u3000bob:x:1001:1001\u3000\n\u2003carol:x:1002\u205f\n')), [
      { name: 'alice', uid: 1000n },
      { name: 'bob', uid: 1001n },
      { name: 'carol', uid: 1002n },
    ]);
    // Inside a field nothing is trimmed: the uid " 1000" is junk, so 0.
    t.same(parsePasswd(bytes('alice:x:\u00a01000:1000\n')), [{ name: 'alice', uid: 0n }]);
    // U+FEFF (a BOM) is not white space to Go: it stays part of the name.
    t.same(parsePasswd(bytes('\ufeffalice:x:1000:1000\n')), [{ name: '\ufeffalice', uid: 1000n }]);
  });

  t.test('empty and blank lines are skipped; no final newline needed', async (t) => {
    t.same(parsePasswd(bytes('\n\n   \n\t\r\nalice:x:1000:1000\n\n\u00a0\nbob:x:1001')), [
      { name: 'alice', uid: 1000n },
      { name: 'bob', uid: 1001n },
    ]);
    t.same(parsePasswd(bytes('')), []);
  });

  t.test('a lone CR does not end a line (bufio splits on LF only)', async (t) => {
    t.same(parsePasswd(bytes('alice:x:1000:1000\rbob:x:1001:1001\n')), [{ name: 'alice', uid: 1000n }]);
  });

  t.test("'#' lines are NOT comments in /etc/passwd", async (t) => {
    // The passwd reader keeps them as users named "#...".
    t.same(parsePasswd(bytes('#alice:x:1000:1000\n# comment\n')), [
      { name: '#alice', uid: 1000n },
      { name: '# comment', uid: 0n },
    ]);
  });

  t.test('missing and extra fields', async (t) => {
    t.same(parsePasswd(bytes('alice\nbob:x\ncarol:x:1002:1002:gecos:/home:/bin/sh:extra:more\n:x:7\n')), [
      { name: 'alice', uid: 0n },
      { name: 'bob', uid: 0n },
      { name: 'carol', uid: 1002n },
      { name: '', uid: 7n },
    ]);
  });

  t.test('uid quirks: junk -> 0, wrap kept as int64, clamped', async (t) => {
    t.same(parsePasswd(bytes('a:x:nope\nb:x:-1\nc:x:4294968296\nd:x:99999999999999999999\ne:x:+1000\n')), [
      { name: 'a', uid: 0n },
      { name: 'b', uid: -1n },
      { name: 'c', uid: 4294968296n },
      { name: 'd', uid: INT64_MAX },
      { name: 'e', uid: 1000n },
    ]);
  });

  t.test('invalid UTF-8 decodes to U+FFFD; NUL bytes are kept', async (t) => {
    const content = Buffer.concat([Buffer.from('al'), Buffer.from([0xff]), Buffer.from('ice:x:1000\nbob\0:x:1001\n\0carol:x:1002\n')]);
    t.same(parsePasswd(content), [
      { name: 'al\ufffdice', uid: 1000n },
      { name: 'bob\0', uid: 1001n },
      // NUL is not white space: it is not trimmed from the line's start.
      { name: '\0carol', uid: 1002n },
    ]);
  });
});

t.test('parseGroup', async (t) => {
  t.test('name, gid, members', async (t) => {
    t.same(parseGroup(bytes('root:x:0:\nwheel:x:10:alice,bob\nusers:x:100:alice\n')), [
      { name: 'root', gid: 0, members: [] },
      { name: 'wheel', gid: 10, members: ['alice', 'bob'] },
      { name: 'users', gid: 100, members: ['alice'] },
    ]);
  });

  t.test('CRLF, leading/trailing spaces and tabs, Unicode spaces', async (t) => {
    // The trailing CR/space would otherwise stick to the last member.
    t.same(parseGroup(bytes('a:x:1:alice\r\n  b:x:2:alice \n\tc:x:3:alice\t\n\u00a0d:x:4:alice\u00a0\n\u3000e:x:5:alice\u3000\r\n')), [
      { name: 'a', gid: 1, members: ['alice'] },
      { name: 'b', gid: 2, members: ['alice'] },
      { name: 'c', gid: 3, members: ['alice'] },
      { name: 'd', gid: 4, members: ['alice'] },
      { name: 'e', gid: 5, members: ['alice'] },
    ]);
  });

  t.test("empty lines and '#' lines are skipped, also when indented", async (t) => {
    t.same(parseGroup(bytes('\n#x:x:1:alice\n   # y:x:2:alice\n\u00a0#z:x:3:alice\n\r\nreal:x:4:alice\n\n')), [
      { name: 'real', gid: 4, members: ['alice'] },
    ]);
  });

  t.test("members split on ',' without trimming", async (t) => {
    const [entry] = parseGroup(bytes('g:x:5:bob, alice,carol ,,dave,\n'));
    t.same(entry, { name: 'g', gid: 5, members: ['bob', ' alice', 'carol ', '', 'dave', ''] });
    t.notOk(entry?.members.includes('alice'), '"bob, alice" does not contain "alice"');
  });

  t.test('missing fields and extra fields', async (t) => {
    t.same(parseGroup(bytes('a\nb:x\nc:x:3\nd:x:4:\ne:x:5:alice:extra:fields\n')), [
      { name: 'a', gid: 0, members: [] },
      { name: 'b', gid: 0, members: [] },
      { name: 'c', gid: 3, members: [] },
      { name: 'd', gid: 4, members: [] },
      // Fields past the fourth are ignored, not appended to the members.
      { name: 'e', gid: 5, members: ['alice'] },
    ]);
  });

  t.test('gid quirks end as uint32, as in additionalGids', async (t) => {
    t.same(
      parseGroup(bytes('weird:x:notanumber:alice\nbig:x:4294967296:alice\nneg:x:-1:alice\nwrap:x:4294968296:alice\nhuge:x:99999999999999999999:alice\nplus:x:+7:alice\nsp:x: 8:alice\n')).map((g) => g.gid),
      [0, 0, 4294967295, 1000, 4294967295, 7, 0],
    );
  });

  t.test('invalid UTF-8 and NUL bytes', async (t) => {
    const content = Buffer.concat([Buffer.from('g'), Buffer.from([0xc3]), Buffer.from(':x:9:al'), Buffer.from([0xfe]), Buffer.from('ice,bob\0\n')]);
    t.same(parseGroup(content), [{ name: 'g\ufffd', gid: 9, members: ['al\ufffdice', 'bob\0'] }]);
  });
});

t.test('namesForUid', async (t) => {
  const passwd = parsePasswd(
    bytes(
      [
        'root:x:0:0::/:/bin/sh',
        'alice:x:1000:1000::/:/bin/sh',
        'alias:x:1000:1000::/:/bin/sh', // same uid: containerd takes the first, USER alias the second
        'wrapped:x:4294968296:1::/:/bin/sh', // int64 4294968296, uint32 1000
        'minus:x:-1:1::/:/bin/sh',
        'junk:x:abc:1::/:/bin/sh', // uid 0
        'bob:x:1001:1001::/:/bin/sh',
      ].join('\n'),
    ),
  );
  t.same([...namesForUid(passwd, 1000)].sort(), ['alias', 'alice', 'wrapped']);
  t.same([...namesForUid(passwd, 0)].sort(), ['junk', 'root']);
  t.same([...namesForUid(passwd, 4294967295)], ['minus']);
  t.same([...namesForUid(passwd, 1001)], ['bob']);
  t.same([...namesForUid(passwd, 2000)], []);
  t.same([...namesForUid([], 0)], []);
});

t.test('imageGids', async (t) => {
  const groups: GroupEntry[] = [
    { name: 'alice', gid: 1000, members: ['alice'] },
    { name: 'g1', gid: 50000, members: ['bob', 'alice'] },
    { name: 'g2', gid: 50001, members: ['bob'] },
    { name: 'g3', gid: 50002, members: ['carol'] },
    { name: 'g4', gid: 50000, members: ['alice'] },
  ];
  // A group named like the user counts (CRI-O does not skip it).
  t.same(sorted(imageGids(groups, new Set(['alice']))), [1000, 50000]);
  t.same(sorted(imageGids(groups, new Set(['alice', 'carol']))), [1000, 50000, 50002]);
  t.same(sorted(imageGids(groups, new Set(['nobody']))), []);
  t.same(sorted(imageGids(groups, new Set())), []);
  // An empty member ("a,,b") must not match when there are no names at all.
  t.same(sorted(imageGids([{ name: 'e', gid: 7, members: [''] }], new Set())), []);
});

t.test('imageGidsFor', async (t) => {
  t.test('the FACTS seed: alice 1000 in group-in-image 50000', async (t) => {
    const passwd = bytes('root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n');
    const group = bytes('root:x:0:\nalice:x:1000:\ngroup-in-image:x:50000:alice\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [50000]);
    // root is in no group's member list.
    t.same(sorted(imageGidsFor(0, passwd, group)), []);
  });

  t.test('weird:x:notanumber:alice grants gid 0 (seen with containerd 1.6.20)', async (t) => {
    const passwd = bytes('alice:x:1000:1000::/:/bin/sh\n');
    const group = bytes('weird:x:notanumber:alice\nok:x:50000:alice\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [0, 50000]);
  });

  t.test('a group named like the user counts', async (t) => {
    const passwd = bytes('alice:x:1000:1000::/:/bin/sh\n');
    const group = bytes('alice:x:51000:alice\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [51000]);
  });

  t.test('no passwd entry for the uid -> no image groups', async (t) => {
    const passwd = bytes('alice:x:1000:1000::/:/bin/sh\n');
    const group = bytes('g:x:50000:alice\n');
    t.same(sorted(imageGidsFor(1001, passwd, group)), []);
  });

  t.test('a missing file (null) -> no image groups', async (t) => {
    const passwd = bytes('alice:x:1000:1000::/:/bin/sh\n');
    const group = bytes('g:x:50000:alice\n');
    t.same(sorted(imageGidsFor(1000, null, group)), []);
    t.same(sorted(imageGidsFor(1000, passwd, null)), []);
    t.same(sorted(imageGidsFor(1000, null, null)), []);
  });

  t.test('every name of a duplicated uid counts', async (t) => {
    const passwd = bytes('alice:x:1000:1000::/:/bin/sh\nalias:x:1000:1000::/:/bin/sh\n');
    const group = bytes('a:x:50000:alice\nb:x:50001:alias\nc:x:50002:bob\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [50000, 50001]);
  });

  t.test('a uint32-wrapping passwd uid matches', async (t) => {
    const passwd = bytes('wrapped:x:4294968296:1000::/:/bin/sh\n');
    const group = bytes('g:x:50000:wrapped\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [50000]);
  });

  t.test('"bob, alice" does not grant alice; a commented group grants nothing', async (t) => {
    const passwd = bytes('alice:x:1000:1000::/:/bin/sh\n');
    const group = bytes('spaced:x:50000:bob, alice\n#hidden:x:50001:alice\nreal:x:50002:bob,alice\r\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [50002]);
  });

  t.test('a "#" passwd line is a user, so its groups count', async (t) => {
    const passwd = bytes('#alice:x:1000:1000::/:/bin/sh\n');
    const group = bytes('g:x:50000:#alice\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [50000]);
  });

  t.test('CRLF files on both sides', async (t) => {
    const passwd = bytes('root:x:0:0::/:/bin/sh\r\nalice:x:1000:1000::/:/bin/sh\r\n');
    const group = bytes('g:x:50000:alice\r\nh:x:50001:bob,alice\r\n');
    t.same(sorted(imageGidsFor(1000, passwd, group)), [50000, 50001]);
  });

  t.test('a large /etc/group: 100k groups', async (t) => {
    const passwd = bytes('root:x:0:0::/:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n');
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      // alice is in every 1000th group; everyone else is noise.
      const members = i % 1000 === 0 ? `u${i},alice,v${i}` : `u${i},v${i}`;
      lines.push(`g${i}:x:${100_000 + i}:${members}`);
    }
    const group = bytes(lines.join('\n') + '\n');
    t.equal(parseGroup(group).length, 100_000);
    const gids = sorted(imageGidsFor(1000, passwd, group));
    t.equal(gids.length, 100);
    t.equal(gids[0], 100_000);
    t.equal(gids[99], 199_000);
    t.same(gids, Array.from({ length: 100 }, (_, k) => 100_000 + k * 1000));
  });
});

t.test('root\'s image groups count for every process (containerd without runAsUser)', async (t) => {
  // containerd 1.6/1.7 looks up uid 0 when the pod sets no runAsUser, while
  // the process runs as the image's USER: root's memberships reach a uid-1000
  // process, so Strict must count them as image-derived.
  t.same(criLookupUids(1000), [1000, 0]);
  t.same(criLookupUids(0), [0]);
  const passwd = bytes('root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n');
  const group = bytes('root:x:0:\ndisk:x:6:root\nwheel:x:10:root,alice\nmine:x:50000:alice\n');
  t.same(sorted(imageGidsFor(criLookupUids(1000), passwd, group)), [6, 10, 50000]);
  t.same(sorted(imageGidsFor(1000, passwd, group)), [10, 50000], 'a single uid still means that uid alone');
});
