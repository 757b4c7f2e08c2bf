/**
 * src/build/tar.mts, the release image's tar writer, read back by GNU tar: the
 * entries, their types, modes, owners and times are what was asked for, the
 * same entries give the same bytes, and what would make an archive depend on
 * its input's order (unsorted or repeated entries, a file before its
 * directory) or escape its root is refused.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TarEntry } from '../../src/build/tar.mts';

// The build's modules are ES modules (.mts): loaded with import().
const loaded = import('../../src/build/tar.mts');

const MTIME = 1_700_000_000;
const ENTRIES: TarEntry[] = [
  { type: 'directory', path: 'bin', mode: 0o755 },
  { type: 'symlink', path: 'bin/[', target: 'busybox' },
  { type: 'file', path: 'bin/busybox', mode: 0o755, content: Buffer.from('#!/bin/sh\necho hi\n') },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'directory', path: 'etc', mode: 0o700 },
  // 512 bytes exactly, and one byte past a block: the padding both ways.
  { type: 'file', path: 'etc/block', mode: 0o600, content: Buffer.alloc(512, 'a') },
  { type: 'file', path: 'etc/block-and-one', mode: 0o644, content: Buffer.alloc(513, 'b') },
  { type: 'file', path: 'etc/empty', mode: 0o644, content: Buffer.alloc(0) },
];

t.test('GNU tar reads back every entry as written', async (t) => {
  const { tar } = await loaded;
  const dir = mkdtempSync(join(tmpdir(), 'sg-tar-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const archive = join(dir, 'a.tar');
  writeFileSync(archive, tar(ENTRIES, MTIME));

  // Owner 0/0 by number, the one mtime, in the order given.
  const listing = execFileSync('tar', ['--list', '--verbose', '--numeric-owner', '--full-time', '--file', archive], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  const lines = listing.trim().split('\n');
  t.equal(lines.length, ENTRIES.length);
  const stamp = new Date(MTIME * 1000).toISOString().replace('T', ' ').replace('.000Z', '');
  for (const [i, line] of lines.entries()) {
    const entry = ENTRIES[i]!;
    const fields = line.split(/\s+/);
    t.equal(fields[1], '0/0', `${entry.path}: owned by 0:0`);
    t.equal(`${fields[3]} ${fields[4]}`, stamp, `${entry.path}: the fixed mtime`);
    t.equal(fields[5], entry.type === 'directory' ? `${entry.path}/` : entry.path, `entry ${i} is ${entry.path}`);
  }

  const root = join(dir, 'root');
  execFileSync('mkdir', [root]);
  execFileSync('tar', ['--extract', '--same-permissions', '--numeric-owner', '--file', archive, '--directory', root]);
  for (const entry of ENTRIES) {
    const path = join(root, entry.path);
    const stat = lstatSync(path);
    if (entry.type === 'symlink') {
      t.ok(stat.isSymbolicLink(), `${entry.path} is a symlink`);
      t.equal(readlinkSync(path), entry.target);
      continue;
    }
    t.equal(stat.mode & 0o7777, entry.mode, `${entry.path}: mode ${entry.mode.toString(8)}`);
    t.equal(Math.floor(stat.mtimeMs / 1000), MTIME, `${entry.path}: mtime`);
    if (entry.type === 'file') t.ok(readFileSync(path).equals(entry.content), `${entry.path}: content`);
    else t.ok(stat.isDirectory(), `${entry.path} is a directory`);
  }
});

t.test('the same entries give the same bytes', async (t) => {
  const { tar } = await loaded;
  const copy = ENTRIES.map((entry) => (entry.type === 'file' ? { ...entry, content: Buffer.from(entry.content) } : { ...entry }));
  t.ok(tar(ENTRIES, MTIME).equals(tar(copy, MTIME)));
  t.notOk(tar(ENTRIES, MTIME).equals(tar(ENTRIES, MTIME + 1)), 'and the mtime is in them');
});

t.test('what would make the archive depend on order, or leave its root, is refused', async (t) => {
  const { tar } = await loaded;
  const file = (path: string): TarEntry => ({ type: 'file', path, mode: 0o644, content: Buffer.alloc(1) });
  t.throws(() => tar([file('b'), file('a')], MTIME), /sorted and unique/);
  t.throws(() => tar([file('a'), file('a')], MTIME), /sorted and unique/);
  t.throws(() => tar([file('a/b')], MTIME), /before its directory/);
  for (const path of ['/etc', '../x', 'a/../b', 'a//b', 'a/', '']) {
    t.throws(() => tar([file(path)], MTIME), /not a plain relative path/, `refused: ${JSON.stringify(path)}`);
  }
  t.throws(() => tar([file('x'.repeat(101))], MTIME), /longer than 100 bytes/);
  t.throws(() => tar([{ type: 'symlink', path: 'l', target: 't'.repeat(101) }], MTIME), /longer than 100 bytes/);
});
