import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { MAX_FILE_BYTES, MAX_SYMLINKS, readRootfsFile } from '../../src/rootfs';

/**
 * readRootfsFile resolves every symlink INSIDE the rootfs, as containerd does
 * for /etc/passwd and /etc/group, and opens nothing but a regular file. These
 * tests build real rootfs trees (the suite runs as root, for mknod).
 */


/** A fresh temp dir, removed when the test ends. */
function tempDir(t: Test, prefix = 'strict-groups-rootfs-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A rootfs with the given files (path -> content) under it. */
function makeRootfs(t: Test, files: Record<string, string> = {}): string {
  const rootfs = join(tempDir(t), 'rootfs');
  mkdirSync(rootfs);
  for (const [path, content] of Object.entries(files)) put(rootfs, path, content);
  return rootfs;
}

function put(rootfs: string, path: string, content: string): void {
  const full = join(rootfs, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content);
}

function link(rootfs: string, path: string, target: string): void {
  const full = join(rootfs, path);
  mkdirSync(dirname(full), { recursive: true });
  symlinkSync(target, full);
}

const read = (rootfs: string, path: string, maxBytes?: number): string | null => {
  const content = readRootfsFile(rootfs, path, maxBytes === undefined ? {} : { maxBytes });
  return content === null ? null : content.toString('utf8');
};

t.test('a plain file', async (t) => {
  const rootfs = makeRootfs(t, { 'etc/group': 'g:x:50000:alice\n' });
  const content = readRootfsFile(rootfs, '/etc/group');
  t.ok(Buffer.isBuffer(content));
  t.equal(content?.toString('utf8'), 'g:x:50000:alice\n');
  // Relative and redundant spellings of the same path.
  t.equal(read(rootfs, 'etc/group'), 'g:x:50000:alice\n');
  t.equal(read(rootfs, '//etc/./group'), 'g:x:50000:alice\n');
});

t.test('an empty file is empty content, not missing', async (t) => {
  const rootfs = makeRootfs(t, { 'etc/group': '' });
  t.equal(read(rootfs, '/etc/group'), '');
});

t.test('missing -> null', async (t) => {
  const rootfs = makeRootfs(t, { 'etc/passwd': 'x' });
  t.equal(readRootfsFile(rootfs, '/etc/group'), null, 'missing file');
  t.equal(readRootfsFile(rootfs, '/nope/group'), null, 'missing directory');
});

t.test('a dangling symlink -> null', async (t) => {
  const rootfs = makeRootfs(t);
  link(rootfs, 'etc/group', 'group.real');
  link(rootfs, 'etc/passwd', '/nowhere/passwd');
  t.equal(readRootfsFile(rootfs, '/etc/group'), null);
  t.equal(readRootfsFile(rootfs, '/etc/passwd'), null);
});

t.test('an absolute symlink resolves inside the rootfs, never on the host', async (t) => {
  // A decoy at a real host path; the rootfs links to that same absolute path.
  const host = tempDir(t, 'strict-groups-decoy-');
  const hostFile = join(host, 'group.real');
  writeFileSync(hostFile, 'DECOY FROM THE HOST\n');

  const rootfs = makeRootfs(t, { 'etc/group.real': 'inside:x:50000:alice\n' });
  link(rootfs, 'etc/group', '/etc/group.real');
  t.equal(read(rootfs, '/etc/group'), 'inside:x:50000:alice\n');

  // Pointing at the decoy's host path: the same path inside the rootfs is read.
  link(rootfs, 'etc/passwd', hostFile);
  t.equal(read(rootfs, '/etc/passwd'), null, 'not in the rootfs: missing, not the host file');
  put(rootfs, hostFile, 'alice:x:1000:1000::/:/bin/sh\n');
  t.equal(read(rootfs, '/etc/passwd'), 'alice:x:1000:1000::/:/bin/sh\n');
});

t.test('a relative symlink climbing above the rootfs stays inside', async (t) => {
  const rootfs = makeRootfs(t, { 'etc/group.real': 'inside\n' });
  // From /etc, "../../../.." stops at the rootfs like at "/".
  link(rootfs, 'etc/group', '../../../../../etc/group.real');
  t.equal(read(rootfs, '/etc/group'), 'inside\n');
  // Climbing far enough to reach a real host file on the host finds nothing.
  const host = tempDir(t, 'strict-groups-decoy-');
  writeFileSync(join(host, 'passwd'), 'DECOY FROM THE HOST\n');
  link(rootfs, 'etc/passwd', '../../../../../../../../../..' + join(host, 'passwd'));
  t.equal(read(rootfs, '/etc/passwd'), null);
});

t.test('/etc itself a symlink', async (t) => {
  t.test('absolute', async (t) => {
    const rootfs = makeRootfs(t, { 'usr/etc/group': 'via-absolute\n' });
    link(rootfs, 'etc', '/usr/etc');
    t.equal(read(rootfs, '/etc/group'), 'via-absolute\n');
  });
  t.test('relative', async (t) => {
    const rootfs = makeRootfs(t, { 'usr/etc/group': 'via-relative\n' });
    link(rootfs, 'etc', 'usr/etc');
    t.equal(read(rootfs, '/etc/group'), 'via-relative\n');
  });
  t.test('then a relative link inside it, resolved from the link target', async (t) => {
    // /etc -> usr/etc, /usr/etc/group -> ../lib/group: /usr/lib/group for
    // the kernel and for containerd's lexical walk alike.
    const rootfs = makeRootfs(t, { 'usr/lib/group': 'usr-lib\n', 'lib/group': 'wrong\n' });
    link(rootfs, 'etc', 'usr/etc');
    link(rootfs, 'usr/etc/group', '../lib/group');
    t.equal(read(rootfs, '/etc/group'), 'usr-lib\n');
  });
});

/** /etc/group -> l1 -> l2 ... -> group.real: `count` symlinks followed in all. */
function chain(rootfs: string, count: number): void {
  put(rootfs, 'etc/group.real', 'end of chain\n');
  link(rootfs, 'etc/group', count === 1 ? 'group.real' : 'l1');
  for (let i = 1; i < count; i++) link(rootfs, `etc/l${i}`, i === count - 1 ? 'group.real' : `l${i + 1}`);
}

t.test('symlink limits', async (t) => {
  t.test('a chain of 40 links works', async (t) => {
    const rootfs = makeRootfs(t);
    chain(rootfs, 40);
    t.equal(read(rootfs, '/etc/group'), 'end of chain\n');
  });
  t.test('41 fails with ELOOP', async (t) => {
    const rootfs = makeRootfs(t);
    chain(rootfs, 41);
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), {
      name: 'ShimError',
      message: `cannot read /etc/group in the image rootfs ${rootfs}: too many levels of symbolic links (ELOOP)`,
    });
  });
  t.test('absolute links count too', async (t) => {
    const rootfs = makeRootfs(t, { 'etc/group.real': 'x' });
    link(rootfs, 'etc/group', '/etc/a0');
    for (let i = 0; i < 40; i++) link(rootfs, `etc/a${i}`, i === 39 ? '/etc/group.real' : `/etc/a${i + 1}`);
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), { name: 'ShimError', message: /ELOOP/ });
  });
  t.test('a self loop fails', async (t) => {
    const rootfs = makeRootfs(t);
    link(rootfs, 'etc/group', 'group');
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), { name: 'ShimError', message: /too many levels of symbolic links \(ELOOP\)/ });
  });
  t.test('a two-link loop through directories fails', async (t) => {
    const rootfs = makeRootfs(t);
    link(rootfs, 'etc', '/var/etc');
    link(rootfs, 'var/etc', '/etc');
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), { name: 'ShimError', message: /ELOOP/ });
  });
});

t.test('nothing but a regular file is opened', async (t) => {
  t.test('a FIFO fails fast and never blocks', async (t) => {
    const rootfs = makeRootfs(t);
    mkdirSync(join(rootfs, 'etc'));
    const fifo = join(rootfs, 'etc', 'group');
    execFileSync('mkfifo', [fifo]);
    // Guard: if the reader ever opened the FIFO and blocked, this writer
    // unblocks it after a while, so the test fails instead of hanging.
    const writer = spawn('sh', ['-c', 'sleep 3; echo FROM-FIFO > "$1"', 'sh', fifo], { stdio: 'ignore' });
    t.teardown(() => {
      writer.kill('SIGKILL');
    });
    const started = Date.now();
    // The mode in the message comes from the check made before any open.
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), {
      name: 'ShimError',
      message: `cannot read /etc/group in the image rootfs ${rootfs}: not a regular file (mode 010000)`,
    });
    t.ok(Date.now() - started < 2000, 'returned before the guard writer woke up');
  });

  t.test('a directory fails', async (t) => {
    const rootfs = makeRootfs(t);
    mkdirSync(join(rootfs, 'etc', 'group'), { recursive: true });
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), { name: 'ShimError', message: /not a regular file \(mode 040000\)/ });
  });

  t.test('a socket fails', async (t) => {
    const rootfs = makeRootfs(t);
    mkdirSync(join(rootfs, 'etc'));
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(join(rootfs, 'etc', 'group'), resolve);
    });
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), { name: 'ShimError', message: /not a regular file \(mode 140000\)/ });
  });

  t.test('a character device (like /dev/null) fails without being opened', async (t) => {
    const rootfs = makeRootfs(t);
    mkdirSync(join(rootfs, 'etc'));
    execFileSync('mknod', [join(rootfs, 'etc', 'group'), 'c', '1', '3']);
    // "(mode 020000)" is only in the message of the check made before the open.
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), {
      name: 'ShimError',
      message: `cannot read /etc/group in the image rootfs ${rootfs}: not a regular file (mode 020000)`,
    });
  });

  t.test('a symlink to the host /dev/null resolves inside the rootfs', async (t) => {
    const rootfs = makeRootfs(t);
    link(rootfs, 'etc/group', '/dev/null');
    t.equal(readRootfsFile(rootfs, '/etc/group'), null);
  });

  t.test('the rootfs itself fails', async (t) => {
    const rootfs = makeRootfs(t);
    link(rootfs, 'etc/group', '/');
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), { name: 'ShimError', message: /it is the rootfs itself/ });
  });

  t.test('a regular file on the way fails', async (t) => {
    const rootfs = makeRootfs(t, { etc: 'not a directory' });
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), { name: 'ShimError', message: /ENOTDIR/ });
  });

  t.test('a missing rootfs fails', async (t) => {
    const dir = tempDir(t);
    t.throws(() => readRootfsFile(join(dir, 'nope'), '/etc/group'), { name: 'ShimError', message: /rootfs: ENOENT/ });
  });
});

t.test('maxBytes', async (t) => {
  const rootfs = makeRootfs(t, { 'etc/ten': '0123456789', 'etc/eleven': '0123456789A' });
  t.equal(read(rootfs, '/etc/ten', 10), '0123456789', 'exactly the bound is fine');
  t.throws(() => readRootfsFile(rootfs, '/etc/eleven', { maxBytes: 10 }), {
    name: 'ShimError',
    message: `cannot read /etc/eleven in the image rootfs ${rootfs}: larger than 10 bytes`,
  });
  t.throws(() => readRootfsFile(rootfs, '/etc/ten', { maxBytes: 0 }), { name: 'ShimError', message: /larger than 0 bytes/ });
});

t.test('the default bound is the 10 MiB of containerd', async (t) => {
  // Sparse files: the size is what counts, nothing is written to disk.
  const rootfs = makeRootfs(t);
  mkdirSync(join(rootfs, 'etc'));
  execFileSync('truncate', ['-s', String(MAX_FILE_BYTES), join(rootfs, 'etc', 'group')]);
  execFileSync('truncate', ['-s', String(MAX_FILE_BYTES + 1), join(rootfs, 'etc', 'passwd')]);
  t.equal(readRootfsFile(rootfs, '/etc/group')?.length, MAX_FILE_BYTES);
  t.throws(() => readRootfsFile(rootfs, '/etc/passwd'), { name: 'ShimError', message: /: larger than 10485760 bytes$/ });
});

t.test('a symlink into /proc resolves inside the rootfs', async (t) => {
  // Reading the shim's own environment would leak it; the rootfs has no /proc.
  const rootfs = makeRootfs(t);
  link(rootfs, 'etc/group', '/proc/self/environ');
  t.equal(readRootfsFile(rootfs, '/etc/group'), null);
  // With a /proc/self/environ inside the rootfs, that file is what is read.
  put(rootfs, 'proc/self/environ', 'inside\n');
  t.equal(read(rootfs, '/etc/group'), 'inside\n');
});

t.test('".." forms the CRI runtimes read differently are refused', async (t) => {
  t.test("a missing name followed by '..'", async (t) => {
    // The kernel stops at "missing"; containerd's lexical walk reads /etc/group.real.
    const rootfs = makeRootfs(t, { 'etc/group.real': 'x' });
    link(rootfs, 'etc/group', 'missing/../group.real');
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), {
      name: 'ShimError',
      message: `cannot read /etc/group in the image rootfs ${rootfs}: "missing" is missing but the path goes on through ".."`,
    });
  });

  t.test("a symlink followed by '..'", async (t) => {
    // The kernel climbs from sub's target (/elsewhere), a lexical reader cancels "sub".
    const rootfs = makeRootfs(t, { 'etc/group.real': 'lexical\n', 'group.real': 'kernel\n', 'elsewhere/x': '' });
    link(rootfs, 'etc/sub', '/elsewhere');
    link(rootfs, 'etc/group', 'sub/../group.real');
    t.throws(() => readRootfsFile(rootfs, '/etc/group'), {
      name: 'ShimError',
      message: `cannot read /etc/group in the image rootfs ${rootfs}: ".." after the symbolic link "sub" resolves differently across CRI runtimes`,
    });
  });

  t.test("'..' after a real directory is fine", async (t) => {
    const rootfs = makeRootfs(t, { 'etc/group.real': 'same for all\n' });
    mkdirSync(join(rootfs, 'etc', 'sub'));
    link(rootfs, 'etc/group', 'sub/../group.real');
    t.equal(read(rootfs, '/etc/group'), 'same for all\n');
  });

  t.test("/etc/group -> '../usr/lib/group' with /etc a real directory", async (t) => {
    const rootfs = makeRootfs(t, { 'usr/lib/group': 'usr-lib\n', 'etc/passwd': '' });
    link(rootfs, 'etc/group', '../usr/lib/group');
    t.equal(read(rootfs, '/etc/group'), 'usr-lib\n');
  });
});

t.test('link targets with non-ASCII names', async (t) => {
  // Link targets are bytes; an image may name the real file anything. Treating
  // the file as missing would grant no image groups to strip: a leak.

  t.test('relative', async (t) => {
    const rootfs = makeRootfs(t, { 'etc/gr\u00fcppe': 'g:x:50000:alice\n' });
    link(rootfs, 'etc/group', 'gr\u00fcppe');
    t.equal(read(rootfs, '/etc/group'), 'g:x:50000:alice\n', 'the target file is read');
  });
  t.test('absolute, through a directory', async (t) => {
    const rootfs = makeRootfs(t, { '\u00e9tc/group': 'g:x:50000:alice\n' });
    link(rootfs, 'etc', '/\u00e9tc');
    t.equal(read(rootfs, '/etc/group'), 'g:x:50000:alice\n', 'the target file is read');
  });
  t.test('non-UTF-8 bytes in a target', async (t) => {
    const rootfs = makeRootfs(t);
    mkdirSync(join(rootfs, 'etc'));
    // A file and a link whose names hold the byte 0xff, made through Buffers.
    const nameBytes = Buffer.from([0x67, 0xff]); // "g\xff"
    writeFileSync(Buffer.concat([Buffer.from(join(rootfs, 'etc') + '/'), nameBytes]), 'g:x:50000:alice\n');
    symlinkSync(nameBytes, join(rootfs, 'etc', 'group'));
    t.equal(read(rootfs, '/etc/group'), 'g:x:50000:alice\n', 'the target file is read');
  });
});
