/**
 * src/handoff.ts: which binary the shim becomes (never itself: that would
 * loop until the pid table fills), and which descriptors above 2 it must
 * hand to the runtime (Node marks them close-on-exec, so every one the
 * runtime will use forces the spawn path).
 */
import t from 'tap';
import { chmodSync, linkSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { inheritedFds, resolveRuntime } from '../../src/handoff';

const SCRIPT = '#!/bin/sh\nexit 0\n';

function executable(path: string, mode = 0o755): string {
  writeFileSync(path, SCRIPT);
  chmodSync(path, mode);
  return path;
}

t.test('resolveRuntime: absolute path', (t) => {
  const dir = t.testdir({});
  const runc = executable(join(dir, 'runc'));
  const self = executable(join(dir, 'shim'));
  t.equal(resolveRuntime(runc, { PATH: '' }, self), runc, 'PATH is not consulted');
  t.equal(resolveRuntime('/bin/sh', {}, self), '/bin/sh');
  t.end();
});

t.test('resolveRuntime: bare name on PATH', (t) => {
  const dir = t.testdir({ empty: {}, noexec: {}, found: {}, later: {}, relative: {} });
  const self = executable(join(dir, 'shim'));
  // Same name, not executable: skipped, as execvp would.
  writeFileSync(join(dir, 'noexec', 'runc'), SCRIPT, { mode: 0o644 });
  const found = executable(join(dir, 'found', 'runc'));
  executable(join(dir, 'later', 'runc'));
  const path = [join(dir, 'empty'), join(dir, 'noexec'), join(dir, 'found'), join(dir, 'later')].join(':');
  t.equal(resolveRuntime('runc', { PATH: path }, self), found, 'the first executable one');

  // Relative PATH entries are ignored (the cwd is the bundle's, under the caller's control).
  executable(join(dir, 'relative', 'runc'));
  t.equal(resolveRuntime('runc', { PATH: `relative:${join(dir, 'found')}` }, self), found);

  // A directory of that name is not the runtime.
  const dirs = t.testdir({ a: { runc: {} }, b: {} });
  const b = executable(join(dirs, 'b', 'runc'));
  t.equal(resolveRuntime('runc', { PATH: `${join(dirs, 'a')}:${join(dirs, 'b')}` }, self), b);
  t.end();
});

t.test('resolveRuntime refusals', (t) => {
  const dir = t.testdir({ bin: {} });
  const self = executable(join(dir, 'shim'));
  const bin = join(dir, 'bin');

  for (const relative of ['bin/runc', './runc', '../runc']) {
    t.throws(() => resolveRuntime(relative, { PATH: bin }, self), {
      name: 'ShimError',
      message: `runtime ${JSON.stringify(relative)} must be an absolute path or a bare name to look up on PATH`,
    });
  }

  t.throws(() => resolveRuntime('runc', { PATH: `${bin}:relative:/nonexistent` }, self), {
    name: 'ShimError',
    message: `runtime "runc" not found on PATH (${bin}:/nonexistent)`,
  }, 'names the PATH searched');
  t.throws(() => resolveRuntime('strict-groups-no-such-runtime', {}, self), {
    name: 'ShimError',
    message: 'runtime "strict-groups-no-such-runtime" not found on PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)',
  }, 'no PATH: a default one');

  writeFileSync(join(dir, 'plain'), SCRIPT, { mode: 0o644 });
  t.throws(() => resolveRuntime(join(dir, 'plain'), {}, self), { name: 'ShimError', message: `runtime ${join(dir, 'plain')} is not an executable file` }, 'mode 644, even for root');
  t.throws(() => resolveRuntime(bin, {}, self), { name: 'ShimError', message: `runtime ${bin} is not an executable file` }, 'a directory');
  t.throws(() => resolveRuntime(join(dir, 'missing'), {}, self), { name: 'ShimError', message: `runtime ${join(dir, 'missing')} is not an executable file` });
  t.end();
});

t.test('resolveRuntime refuses the shim itself under any name', (t) => {
  const dir = t.testdir({ bin: {} });
  const self = executable(join(dir, 'strict-groups-runtime'));
  const itself = /is strict-groups-runtime itself; set "runtime" in the strict-groups configuration to the real runtime/;

  t.throws(() => resolveRuntime(self, {}, self), { name: 'ShimError', message: itself }, 'same path');
  symlinkSync(self, join(dir, 'runc-symlink'));
  t.throws(() => resolveRuntime(join(dir, 'runc-symlink'), {}, self), { name: 'ShimError', message: itself }, 'a symlink to it');
  linkSync(self, join(dir, 'runc-hardlink'));
  t.throws(() => resolveRuntime(join(dir, 'runc-hardlink'), {}, self), { name: 'ShimError', message: itself }, 'a hard link to it');
  // The usual install: the shim's symlink on PATH as "runc".
  symlinkSync(self, join(dir, 'bin', 'runc'));
  t.throws(() => resolveRuntime('runc', { PATH: join(dir, 'bin') }, self), { name: 'ShimError', message: itself }, 'found on PATH');
  // self given as a symlink too.
  t.throws(() => resolveRuntime(join(dir, 'runc-hardlink'), {}, join(dir, 'runc-symlink')), { name: 'ShimError', message: itself });

  // A copy is another file: accepted.
  copyFileSync(self, join(dir, 'copy'));
  chmodSync(join(dir, 'copy'), 0o755);
  t.equal(resolveRuntime(join(dir, 'copy'), {}, self), join(dir, 'copy'));

  // The default self is the running executable.
  t.throws(() => resolveRuntime(process.execPath, {}), { name: 'ShimError', message: itself });
  t.end();
});

t.test('inheritedFds', (t) => {
  const none = { preserveFds: 0 };
  const cases: [string, string | undefined, { preserveFds: number; statusFd?: number }, NodeJS.ProcessEnv, number[]][] = [
    ['nothing', 'create', none, {}, []],
    ['--preserve-fds 2', 'create', { preserveFds: 2 }, {}, [3, 4]],
    ['LISTEN_FDS=2 create', 'create', none, { LISTEN_FDS: '2' }, [3, 4]],
    // runc passes listen fds first, then the preserved ones after them.
    ['LISTEN_FDS=2 + --preserve-fds 1', 'create', { preserveFds: 1 }, { LISTEN_FDS: '2' }, [3, 4, 5]],
    ['LISTEN_FDS=1 run', 'run', none, { LISTEN_FDS: '1' }, [3]],
    ['LISTEN_FDS ignored for state', 'state', none, { LISTEN_FDS: '2' }, []],
    ['LISTEN_FDS ignored without a command', undefined, none, { LISTEN_FDS: '2' }, []],
    // crun honours LISTEN_FDS on exec (runc does not): forwarding is harmless for runc.
    ['LISTEN_FDS=1 exec', 'exec', none, { LISTEN_FDS: '1' }, [3]],
    ['exec --preserve-fds 3', 'exec', { preserveFds: 3 }, {}, [3, 4, 5]],
    ['--status-fd 7', 'checkpoint', { preserveFds: 0, statusFd: 7 }, {}, [7]],
    ['--status-fd 3', 'checkpoint', { preserveFds: 0, statusFd: 3 }, {}, [3]],
    ['--status-fd 2 is stdio, inherited anyway', 'checkpoint', { preserveFds: 0, statusFd: 2 }, {}, []],
    ['status fd inside the preserved range', 'create', { preserveFds: 2, statusFd: 4 }, {}, [3, 4]],
    ['status fd after the preserved range, sorted', 'create', { preserveFds: 1, statusFd: 9 }, { LISTEN_FDS: '1' }, [3, 4, 9]],
    ['LISTEN_FDS=0', 'create', none, { LISTEN_FDS: '0' }, []],
  ];
  for (const [name, command, fds, env, extraFds] of cases) {
    t.strictSame(inheritedFds(command, fds, env).extraFds, extraFds, name);
  }
  // Values neither runc (Atoi) nor crun (strtoll base 10) reads as a positive count.
  for (const junk of ['', 'abc', 'x1', '0x2', '00']) {
    t.strictSame(inheritedFds('create', { preserveFds: 1 }, { LISTEN_FDS: junk }), { extraFds: [3], fixListenPid: false }, `junk LISTEN_FDS ${JSON.stringify(junk)}`);
  }
  t.end();
});

t.test('inheritedFds: fixListenPid only for our own LISTEN_PID', (t) => {
  const pid = String(process.pid);
  // runc honours LISTEN_FDS only when LISTEN_PID is its own pid; spawned, its
  // pid differs, so the shim must rewrite it, and only when it was ours.
  t.strictSame(inheritedFds('create', { preserveFds: 0 }, { LISTEN_FDS: '1', LISTEN_PID: pid }), { extraFds: [3], fixListenPid: true });
  t.strictSame(inheritedFds('run', { preserveFds: 0 }, { LISTEN_FDS: '2', LISTEN_PID: pid }), { extraFds: [3, 4], fixListenPid: true });
  t.strictSame(inheritedFds('create', { preserveFds: 0 }, { LISTEN_FDS: '1', LISTEN_PID: String(process.pid + 1) }), { extraFds: [3], fixListenPid: false }, 'someone else\'s');
  t.strictSame(inheritedFds('create', { preserveFds: 0 }, { LISTEN_FDS: '1' }), { extraFds: [3], fixListenPid: false }, 'no LISTEN_PID');
  t.strictSame(inheritedFds('create', { preserveFds: 0 }, { LISTEN_PID: pid }), { extraFds: [], fixListenPid: false }, 'no LISTEN_FDS');
  t.strictSame(inheritedFds('create', { preserveFds: 0 }, { LISTEN_FDS: '0', LISTEN_PID: pid }), { extraFds: [], fixListenPid: false }, 'LISTEN_FDS=0');
  t.strictSame(inheritedFds('state', { preserveFds: 0 }, { LISTEN_FDS: '1', LISTEN_PID: pid }), { extraFds: [], fixListenPid: false }, 'not for state');
  t.strictSame(inheritedFds('create', { preserveFds: 2 }, { LISTEN_FDS: 'x', LISTEN_PID: pid }), { extraFds: [3, 4], fixListenPid: false }, 'junk LISTEN_FDS');
  t.end();
});

t.test('inheritedFds: an absurd count fails at once instead of mapping a billion descriptors', (t) => {
  t.throws(() => inheritedFds('create', { preserveFds: 999999999 }, {}), { name: 'ShimError', message: /cannot pass on 999999999 descriptors/ });
  t.same(inheritedFds('create', { preserveFds: 65533 }, {}).extraFds.length, 65533);
  t.end();
});

t.test('resolveRuntime refuses a file the kernel would not execute: execve would abort Node', (t) => {
  const dir = t.testdir({ 'text-runtime': 'not a script\n', 'elf-stub': Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.alloc(16)]) });
  for (const name of ['text-runtime', 'elf-stub']) {
    chmodSync(join(dir, name), 0o755);
    t.throws(() => resolveRuntime(join(dir, name), {}), { name: 'ShimError', message: /is neither a script nor an ELF executable for / }, name);
  }
  t.equal(resolveRuntime('/bin/sh', {}), '/bin/sh', 'a native ELF binary');
  t.end();
});
