/**
 * Hostile images: what a tenant can put at /etc/passwd and /etc/group, each
 * run through the built shim in front of real runc (test/hostile/images.test.ts).
 *
 * Every case is the seed pod (runAsUser 1000, supplementalGroups [4242, 60000])
 * on an image built to confuse the reader. `imageGids` is what the image
 * grants, read inside the rootfs with every quirk of the CRI runtimes' Go
 * readers (the union where they differ): the shim must find exactly these,
 * and config.json carries them merged in, as a CRI runtime would. The right
 * answer is then always the pod's own groups, `1000 4242 60000`.
 * Files OUTSIDE the rootfs, at the places a reader that escaped would reach,
 * grant alice 4242: reading one would take a pod gid away, so an escape shows
 * in the groups as well as in the files the shim opened.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import type { RecordRow } from '../helpers/record';

/** The pod's groups: what every case that runs must show. */
export const POD_GROUPS = '1000 4242 60000';
/** The pod's gids in config.json, before the image's are merged in. */
const POD_GIDS = [1000, 4242, 60000];

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n';
const GRANT_50000 = 'root:x:0:\nalice:x:1000:\ngroup-in-image:x:50000:alice\n';
/** What a reader that escaped the rootfs would find: a grant of a pod gid. */
const DECOY_GROUP = 'decoy:x:4242:alice\n';

/** Where a case's files are. */
export interface CaseDirs {
  rootfs: string;
  /** The bundle directory, outside the rootfs: the decoys go here. */
  bundle: string;
}

export interface ImageCase {
  record: RecordRow;
  /** /etc/passwd and /etc/group of the image; null leaves the file out for build(). */
  passwd: string | Buffer | null;
  group: string | Buffer | null;
  /** The gids the image grants alice (or root), read as the CRI runtimes read it. */
  imageGids: number[];
  /** Shapes the rootfs beyond the two files; may return a cleanup. */
  build?: (dirs: CaseDirs) => (() => void) | void;
  /** The container runs with the pod's groups, or the create is refused with this message. */
  expect: 'pod-groups' | { refused: RegExp };
}

export function configGids(testCase: ImageCase): number[] {
  return [...new Set([...POD_GIDS, ...testCase.imageGids])].sort((a, b) => a - b);
}

/** A decoy outside the rootfs, at `<bundle>/outside/...`; returns its absolute path. */
function decoy(bundle: string, name: string, content: string): string {
  const path = join(bundle, 'outside', name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

/** A file inside the rootfs at an absolute container path. */
function inside(rootfs: string, path: string, content: string | Buffer): void {
  mkdirSync(dirname(join(rootfs, path)), { recursive: true });
  writeFileSync(join(rootfs, path), content);
}

function link(rootfs: string, path: string, target: string): void {
  mkdirSync(dirname(join(rootfs, path)), { recursive: true });
  symlinkSync(target, join(rootfs, path));
}

/** A chain /etc/group -> /c/1 -> /c/2 -> ... -> /c/n -> /c/real of n + 1 links. */
function chain(rootfs: string, n: number): void {
  link(rootfs, '/etc/group', '/c/1');
  for (let i = 1; i <= n; i++) link(rootfs, `/c/${i}`, i === n ? 'real' : `${i + 1}`);
  inside(rootfs, '/c/real', GRANT_50000);
}

function refused(why: RegExp): { refused: RegExp } {
  return { refused: new RegExp(`^strict-groups: cannot read /etc/(passwd|group) in the image rootfs \\S+: ${why.source}$`) };
}

const SYMLINK_LOOP = refused(/too many levels of symbolic links \(ELOOP\)/);
const NOT_REGULAR = refused(/not a regular file \(mode \d+\)/);
const TOO_LARGE = refused(/larger than 10485760 bytes/);

const MiB = 1024 * 1024;

/** /etc/group with `count` groups, alice in every hundredth from gid 100000 on. */
function manyGroups(count: number): { text: string; aliceGids: number[] } {
  const lines: string[] = [];
  const aliceGids: number[] = [];
  for (let i = 0; i < count; i++) {
    const gid = 100_000 + i;
    const member = i % 100 === 0;
    if (member) aliceGids.push(gid);
    lines.push(`g${i}:x:${gid}:${member ? 'bob,alice' : 'bob'}`);
  }
  return { text: lines.join('\n') + '\n', aliceGids };
}
const HUNDRED_THOUSAND = manyGroups(100_000);

export const IMAGE_CASES: readonly ImageCase[] = [
  // Symlinks, resolved inside the rootfs as the container and containerd see them.
  {
    record: { area: 'symlinks', tried: '/etc/group an absolute link to a host path', outcome: 'read at that path inside the rootfs; the host file is never opened' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs, bundle }) => {
      const host = decoy(bundle, 'group', DECOY_GROUP);
      link(rootfs, '/etc/group', host);
      inside(rootfs, host, GRANT_50000);
    },
    expect: 'pod-groups',
  },
  {
    record: { area: 'symlinks', tried: '/etc/group a relative link climbing out with 40 ".."', outcome: '".." stops at the rootfs; the host file is never opened' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs, bundle }) => {
      const host = decoy(bundle, 'group', DECOY_GROUP);
      link(rootfs, '/etc/group', '../'.repeat(40) + host.slice(1));
      inside(rootfs, host, GRANT_50000);
    },
    expect: 'pod-groups',
  },
  {
    record: { area: 'symlinks', tried: '/etc itself a link to a host directory', outcome: 'both files read inside the rootfs' },
    passwd: null, group: null, imageGids: [50000],
    build: ({ rootfs, bundle }) => {
      decoy(bundle, 'etc/passwd', PASSWD);
      const host = dirname(decoy(bundle, 'etc/group', DECOY_GROUP));
      execFileSync('rm', ['-r', join(rootfs, 'etc')]);
      link(rootfs, '/etc', host);
      inside(rootfs, join(host, 'passwd'), PASSWD);
      inside(rootfs, join(host, 'group'), GRANT_50000);
    },
    expect: 'pod-groups',
  },
  {
    record: { area: 'symlinks', tried: '/etc a relative link to "../outside" (on the host: the bundle\'s outside/, a decoy)', outcome: '".." stops at the rootfs: the image\'s own /outside is read' },
    passwd: null, group: null, imageGids: [50000],
    build: ({ rootfs, bundle }) => {
      decoy(bundle, 'passwd', PASSWD);
      decoy(bundle, 'group', DECOY_GROUP);
      execFileSync('rm', ['-r', join(rootfs, 'etc')]);
      link(rootfs, '/etc', '../outside');
      inside(rootfs, '/outside/passwd', PASSWD);
      inside(rootfs, '/outside/group', GRANT_50000);
    },
    expect: 'pod-groups',
  },
  {
    record: { area: 'symlinks', tried: '/etc/group -> /proc/self/root/etc/group (the host\'s, if followed on the host)', outcome: 'resolved in the image\'s own /proc directory, as containerd reads it' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      link(rootfs, '/etc/group', '/proc/self/root/etc/group');
      inside(rootfs, '/proc/self/root/etc/group', GRANT_50000);
    },
    expect: 'pod-groups',
  },
  {
    // Not /dev/zero: runc's own init reads the container's /etc/group, and
    // would read that one for ever.
    record: { area: 'symlinks', tried: '/etc/group -> /dev/null, /etc/passwd -> /sys/kernel/notes, with no such files in the image', outcome: 'missing inside the rootfs: no image groups; nothing in /dev or /sys opened' },
    passwd: null, group: null, imageGids: [],
    build: ({ rootfs }) => {
      link(rootfs, '/etc/group', '/dev/null');
      link(rootfs, '/etc/passwd', '/sys/kernel/notes');
    },
    expect: 'pod-groups',
  },
  {
    record: { area: 'symlinks', tried: 'a loop of two links', outcome: 'refused: ELOOP' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      link(rootfs, '/etc/group', 'group.2');
      link(rootfs, '/etc/group.2', '/etc/group');
    },
    expect: SYMLINK_LOOP,
  },
  {
    record: { area: 'symlinks', tried: 'a chain of 40 links (the kernel\'s limit)', outcome: 'followed to the end' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => chain(rootfs, 39),
    expect: 'pod-groups',
  },
  {
    record: { area: 'symlinks', tried: 'a chain of 41 links', outcome: 'refused: ELOOP' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => chain(rootfs, 40),
    expect: SYMLINK_LOOP,
  },
  {
    record: { area: 'symlinks', tried: 'links of 1,600 path components each ("d/.." 800 times), chained', outcome: 'refused after 4,096 lookups' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      mkdirSync(join(rootfs, 'd'));
      link(rootfs, '/etc/group', '/l/0');
      for (let i = 0; i < 40; i++) link(rootfs, `/l/${i}`, `/${'d/../'.repeat(800)}l/${i + 1}`);
    },
    expect: refused(/too many path components \(ELOOP\)/),
  },
  {
    record: { area: 'symlinks', tried: 'a dangling link', outcome: 'no file: no image groups' },
    passwd: PASSWD, group: null, imageGids: [],
    build: ({ rootfs }) => link(rootfs, '/etc/group', '/nowhere/group'),
    expect: 'pod-groups',
  },
  {
    record: { area: 'symlinks', tried: '".." after a link (kernel and containerd would read different files)', outcome: 'refused: resolves differently across CRI runtimes' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      inside(rootfs, '/usr/lib/group', GRANT_50000);
      link(rootfs, '/etc/lib', '/usr/lib/x');
      link(rootfs, '/etc/group', 'lib/../../usr/lib/group');
    },
    expect: refused(/"\.\." after the symbolic link "lib" resolves differently across CRI runtimes/),
  },

  // What stands at the path.
  {
    record: { area: 'file types', tried: '/etc/group a FIFO with no writer', outcome: 'refused as not a regular file, before any read: no hang' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      execFileSync('mkfifo', [join(rootfs, 'etc', 'group')]);
    },
    expect: NOT_REGULAR,
  },
  {
    record: { area: 'file types', tried: '/etc/passwd a FIFO', outcome: 'refused as not a regular file, before any read' },
    passwd: null, group: GRANT_50000, imageGids: [50000],
    build: ({ rootfs }) => {
      execFileSync('mkfifo', [join(rootfs, 'etc', 'passwd')]);
    },
    expect: NOT_REGULAR,
  },
  {
    record: { area: 'file types', tried: '/etc/group a character device (1:5, /dev/zero)', outcome: 'refused as not a regular file, before any read' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      execFileSync('mknod', [join(rootfs, 'etc', 'group'), 'c', '1', '5']);
    },
    expect: NOT_REGULAR,
  },
  {
    record: { area: 'file types', tried: '/etc/group a block device (7:0, loop0)', outcome: 'refused as not a regular file, before any read' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      execFileSync('mknod', [join(rootfs, 'etc', 'group'), 'b', '7', '0']);
    },
    expect: NOT_REGULAR,
  },
  {
    record: { area: 'file types', tried: '/etc/group a listening unix socket', outcome: 'refused as not a regular file, before any read' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      // Node binds at listen() and unlinks at close(): it listens for the case's length.
      const server = createServer().listen(join(rootfs, 'etc', 'group'));
      return () => server.close();
    },
    expect: NOT_REGULAR,
  },
  {
    record: { area: 'file types', tried: '/etc/group a directory', outcome: 'refused as not a regular file' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => mkdirSync(join(rootfs, 'etc', 'group')),
    expect: NOT_REGULAR,
  },
  {
    record: { area: 'file types', tried: '/etc a regular file', outcome: 'refused: ENOTDIR' },
    passwd: null, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      execFileSync('rm', ['-r', join(rootfs, 'etc')]);
      writeFileSync(join(rootfs, 'etc'), GRANT_50000);
    },
    expect: refused(/ENOTDIR/),
  },

  // Sizes.
  {
    record: { area: 'size', tried: '/etc/group of exactly 10 MiB (containerd\'s bound)', outcome: 'read' },
    passwd: PASSWD, group: padded(GRANT_50000, 10 * MiB), imageGids: [50000],
    expect: 'pod-groups',
  },
  {
    record: { area: 'size', tried: '/etc/group of 10 MiB and one byte', outcome: 'refused: too large' },
    passwd: PASSWD, group: padded(GRANT_50000, 10 * MiB + 1), imageGids: [50000],
    expect: TOO_LARGE,
  },
  {
    record: { area: 'size', tried: 'a sparse /etc/group of 1 TiB', outcome: 'refused by its size, nothing read' },
    passwd: PASSWD, group: null, imageGids: [50000],
    build: ({ rootfs }) => {
      execFileSync('truncate', ['-s', '1T', join(rootfs, 'etc', 'group')]);
    },
    expect: TOO_LARGE,
  },
  {
    record: { area: 'size', tried: '100,000 groups, alice in 1,000 of them', outcome: 'all 1,000 removed' },
    passwd: PASSWD, group: HUNDRED_THOUSAND.text, imageGids: HUNDRED_THOUSAND.aliceGids,
    expect: 'pod-groups',
  },
  {
    record: { area: 'size', tried: 'one group of 1,000,000 members (7 MiB line), alice last', outcome: 'removed' },
    passwd: PASSWD, group: `big:x:50000:${'member,'.repeat(1_000_000)}alice\n`, imageGids: [50000],
    expect: 'pod-groups',
  },

  // Content, parsed as the CRI runtimes' Go readers parse it.
  {
    record: { area: 'content', tried: 'NUL bytes around and inside lines', outcome: 'kept as bytes, as Go does: only the exact name grants' },
    passwd: PASSWD, group: Buffer.from('\0\0\0\nnul:x:50001:ali\0ce\ngroup-in-image:x:50000:alice\n\0:x:50002:alice\0\n'), imageGids: [50000],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: 'CRLF line ends, Unicode spaces (U+00A0, U+3000) around lines', outcome: 'trimmed as Go\'s bytes.TrimSpace: granted and removed' },
    passwd: PASSWD.replaceAll('\n', '\r\n'), group: '\u00a0 group-in-image:x:50000:alice\u3000\r\n\tother:x:50001:alice\r\n', imageGids: [50000, 50001],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: 'two passwd entries with uid 1000 (alice, mallory)', outcome: 'both names\' groups removed' },
    passwd: `${PASSWD}mallory:x:1000:1000::/:/bin/sh\n`, group: 'a:x:50000:alice\nm:x:50001:mallory\n', imageGids: [50000, 50001],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: 'gids "notanumber", "", "-1", "4294967296", "99999999999999999999"', outcome: 'read as Go does (0 and 4294967295) and removed' },
    passwd: PASSWD,
    group: 'a:x:notanumber:alice\nb:x::alice\nc:x:-1:alice\nd:x:4294967296:alice\ne:x:99999999999999999999:alice\n',
    imageGids: [0, 4294967295],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: 'a uid "abc" in /etc/passwd (Go reads 0: a name of root)', outcome: 'its groups removed, as root\'s are for every process' },
    passwd: `${PASSWD}eve:x:abc:0::/:/bin/sh\n`, group: `${GRANT_50000}wheel:x:10:eve\n`, imageGids: [10, 50000],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: '"#" comment lines and NIS "+"/"-" lines', outcome: 'comments skipped in /etc/group only ("#alice" in /etc/passwd is a user, and its group removed); NIS lines read as plain entries' },
    passwd: `#alice:x:1000:1000::/:/bin/sh\n${PASSWD}+::::::\n`,
    group: '#commented:x:50001:alice\n+nis:x:50000:alice\n-:x:50002:\n+:::\nhash:x:50003:#alice\n',
    imageGids: [50000, 50003],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: 'members with spaces ("bob, alice"), a group named "alice"', outcome: 'no trim inside the list; the user-named group removed (CRI-O counts it)' },
    passwd: PASSWD, group: 'spaced:x:50001:bob, alice\nalice:x:50000:alice\n', imageGids: [50000],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: '1 MiB of binary noise (no colon or comma) as each file', outcome: 'names without groups: no image groups' },
    passwd: noise(MiB, 1), group: noise(MiB, 2), imageGids: [],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: 'no /etc/passwd, an /etc/group that lists alice', outcome: 'no user names: no image groups' },
    passwd: null, group: GRANT_50000, imageGids: [],
    expect: 'pod-groups',
  },
  {
    record: { area: 'content', tried: 'an empty /etc/group', outcome: 'no image groups' },
    passwd: PASSWD, group: '', imageGids: [],
    expect: 'pod-groups',
  },
];

/** `content` then comment lines up to exactly `size` bytes. */
function padded(content: string, size: number): Buffer {
  const out = Buffer.alloc(size, '#');
  out.write(content);
  for (let at = content.length + 4095; at < size; at += 4096) out[at] = 0x0a;
  out[size - 1] = 0x0a;
  return out;
}

/**
 * Deterministic noise (xorshift32) without the separators of fields and
 * members, so the expected answer is known without a second parser: what any
 * byte soup does to the readers is the property suite's part. Line breaks
 * stay: runc's own passwd reader stops at lines over 64 KiB.
 */
function noise(length: number, seed: number): Buffer {
  const structural = new Set([0x3a, 0x2c]);
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const byte = x & 0xff;
    out[i] = structural.has(byte) ? 0x2e : byte;
  }
  return out;
}
