/**
 * Faults on the bundle and around the real runtime, each run through the
 * built shim in front of real runc (test/faults/faults.test.ts): a full disk,
 * a read-only bundle, the shim killed at every step of a rewrite, a missing
 * runtime, runc killed or crashing inside a create. What must hold throughout:
 * config.json and the exec process file are never lost or half-written.
 *
 * Every bundle is the seed case: alice (1000) in the image's group 50000,
 * additionalGids [1000, 50000, 60000]; Strict leaves groups=1000,60000.
 */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Test } from 'tap';
import {
  HOOK,
  bundleApart,
  createRuntimeHook,
  fillFileSystem,
  firstChild,
  hookStarted,
  killAtEveryStep,
  mountReadOnly,
  mountTmpfs,
  readSpec,
  tally,
  tempFilesBeside,
  type FaultContext,
  type KillResult,
  type Spec,
} from '../helpers/faults';
import { MERGED_GROUPS, POLICY, REMOVED, SHIM, STRICT_GROUPS, containerdError, direct, processFile, programPath, shim } from '../helpers/oci';
import type { RecordRow } from '../helpers/record';

/** A row of the README's fault table and the procedure that asserts exactly its outcome. */
export interface FaultCase {
  record: RecordRow;
  run(t: Test, ctx: FaultContext): Promise<void>;
}

/** What Strict leaves in additionalGids for the seed case, and what it records as removed. */
const STRICT_GIDS = [1000, 60000];
const REMOVED_RECORD = '50000';

/** A tmpfs this small holds config.json and little else once filled. */
const SMALL_TMPFS_BYTES = 64 * 1024;

/** A runc-style JSON log line of exactly `length` bytes, newline included. */
function logLineOfLength(length: number): string {
  const line = (msg: string): string => `${JSON.stringify({ level: 'info', msg, time: '2026-01-01T00:00:00Z' })}\n`;
  return line('x'.repeat(length - line('').length));
}

function shimEnv(ctx: FaultContext): Record<string, string> {
  return { STRICT_GROUPS_CONFIG: ctx.ws.configFile };
}

/** A container made through the shim (so its create recorded the removal), running `sleep`. */
async function runningContainer(t: Test, ctx: FaultContext, id: string): Promise<void> {
  const bundle = ctx.ws.bundle(id, { args: ['sleep', '300'] });
  const created = await shim(ctx.ws, 'runc', [...ctx.root, 'create', '--bundle', bundle, id], { output: 'ignore' });
  t.equal(created.exitCode, 0, `container ${id} created: ${created.stderr}`);
  t.teardown(() => direct('runc', [...ctx.root, 'delete', '--force', id]));
  t.equal((await direct('runc', [...ctx.root, 'start', id])).exitCode, 0, `container ${id} started`);
}

/** Runs the shim and asserts that the container's output is the strict groups. */
async function assertStrictGroups(t: Test, ctx: FaultContext, args: string[], what: string): Promise<void> {
  const result = await shim(ctx.ws, 'runc', [...ctx.root, ...args]);
  t.equal(result.exitCode, 0, result.stderr);
  t.equal(result.stdout.trim(), STRICT_GROUPS, what);
}

async function containerStatus(ctx: FaultContext, id: string): Promise<string | undefined> {
  const state = await direct('runc', [...ctx.root, 'state', id]);
  return state.exitCode === 0 ? (JSON.parse(state.stdout) as { status: string }).status : undefined;
}

/** The strict result in a rewritten config.json: stripped gids, removal on record. */
function assertStrictConfig(t: Test, spec: Spec, what: string): void {
  t.same(spec.process.user.additionalGids, STRICT_GIDS, `${what}: additionalGids stripped`);
  t.equal(spec.annotations?.[REMOVED], REMOVED_RECORD, `${what}: removal on record`);
}

/** The file a kill left, judged for the table: old or new, and the temp file window. */
function assertKillResults(t: Test, file: string, results: readonly KillResult[], tempOpen: (line: string) => boolean): void {
  const counts = tally(results);
  t.comment(
    `${file}: ${counts.points} kill points (${counts.runs} runs), ${counts.old} left the original, ${counts.new} the rewritten file, ${counts.tempLeft} a temp file`,
  );
  t.same(
    results.filter((r) => r.file === 'other').map((r) => r.step.line),
    [],
    'after every kill the file is the original or the rewritten one, byte for byte',
  );
  // Discriminates: the outcome flips exactly at the rename, and a temp file
  // survives exactly the kills between its creation and the rename.
  const renameAt = results.findIndex((r) => /^rename(at2?)?\(/.test(r.step.line));
  const createdAt = results.findIndex((r) => tempOpen(r.step.line));
  t.ok(createdAt > 0 && renameAt > createdAt, 'the kill points include the temp file\'s creation and the rename');
  t.same(
    results.map((r) => r.file),
    results.map((_, i) => (i <= renameAt ? 'old' : 'new')),
    'the original up to a kill at the rename, the rewritten file after it',
  );
  t.same(
    results.map((r) => r.tempLeft),
    results.map((_, i) => i > createdAt && i <= renameAt),
    'a temp file is left only by kills after its creation and up to the rename',
  );
  t.ok(counts.old > 0 && counts.new > 0 && counts.tempLeft > 0, 'all three outcomes were seen');
}

function isOpenOf(path: string): (line: string) => boolean {
  return (line) => line.startsWith('openat(') && line.includes(`"${path}"`);
}

function readOrEmpty(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** The creation of the shim's temp file beside `file` (src/files.ts names it so). */
function isTempOpenBeside(file: string): (line: string) => boolean {
  return (line) => line.startsWith('openat(') && line.includes(`"${dirname(file)}/.${basename(file)}.strict-groups-`) && line.includes('O_CREAT');
}

export const FAULT_CASES: readonly FaultCase[] = [
  {
    record: {
      area: 'disk',
      tried: 'bundle on a full tmpfs (the Strict rewrite needs space), --log file elsewhere',
      outcome:
        'create refused, exit 1, ENOSPC named on stderr and, with --log json, in the line containerd shows; config.json byte-identical, no temp file, no container; runs with groups=1000,60000 once space is freed',
    },
    async run(t, ctx) {
      const dir = join(ctx.ws.dir, 'full-bundle');
      mountTmpfs(t, dir, SMALL_TMPFS_BYTES);
      const bundle = bundleApart(ctx.ws, dir, 'full', { args: ['id'] });
      const config = join(bundle, 'config.json');
      const original = readFileSync(config);
      const filler = fillFileSystem(dir);
      const message = `strict-groups: cannot rewrite ${config}: ENOSPC`;

      const plain = await shim(ctx.ws, 'runc', [...ctx.root, 'create', '--bundle', bundle, 'full']);
      t.equal(plain.exitCode, 1, 'exit 1');
      t.equal(plain.stderr, message, 'ENOSPC named on stderr (no --log: what conmon relays)');
      t.equal(plain.stdout, '', 'nothing on stdout');

      const log = join(ctx.ws.dir, 'full.log.json');
      const logged = await shim(ctx.ws, 'runc', [...ctx.root, '--log', log, '--log-format', 'json', 'create', '--bundle', bundle, 'full']);
      t.equal(logged.exitCode, 1, 'exit 1 with --log');
      t.equal(logged.stderr, '', 'with --log, nothing on the container\'s stderr');
      t.equal(containerdError(log), message, 'the --log line containerd decodes names ENOSPC');

      t.same(readFileSync(config), original, 'config.json byte-identical');
      t.same(tempFilesBeside(config), [], 'no temp file left');
      t.equal(await containerStatus(ctx, 'full'), undefined, 'no container');

      rmSync(filler);
      await assertStrictGroups(t, ctx, ['run', '--bundle', bundle, 'full'], 'runs with the strict groups once space is freed');
      assertStrictConfig(t, readSpec(bundle), 'after space was freed');
    },
  },
  {
    record: {
      area: 'disk',
      tried: 'bundle on a full tmpfs holding the --log file (as containerd passes it), whose last page has room for only part of the error line',
      outcome: 'create refused, exit 1; config.json byte-identical; the part of the error line that fit is cut off again, leaving the --log file as it was, and ENOSPC is named on stderr',
    },
    async run(t, ctx) {
      const dir = join(ctx.ws.dir, 'full-log');
      mountTmpfs(t, dir, SMALL_TMPFS_BYTES);
      const bundle = bundleApart(ctx.ws, dir, 'full-log', { args: ['id'] });
      const config = join(bundle, 'config.json');
      const original = readFileSync(config);
      // An earlier line leaves 60 bytes of the log's page; then the disk fills.
      const log = join(bundle, 'log.json');
      const earlier = logLineOfLength(Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' })) - 60);
      writeFileSync(log, earlier);
      fillFileSystem(dir);

      const refused = await shim(ctx.ws, 'runc', [...ctx.root, '--log', log, '--log-format', 'json', 'create', '--bundle', bundle, 'full-log']);
      t.equal(refused.exitCode, 1, 'exit 1');
      t.same(readFileSync(config), original, 'config.json byte-identical');
      t.doesNotThrow(() => containerdError(log), 'every line of the --log file is JSON, as containerd needs');
      t.equal(readFileSync(log, 'utf8'), earlier, 'the part of the error line that fit was cut off again');
      t.match(refused.stderr, /^strict-groups: cannot rewrite .*: ENOSPC$/, 'ENOSPC named on stderr instead');
    },
  },
  {
    record: {
      area: 'disk',
      tried: 'audit log and --log file on a full tmpfs, bundle elsewhere: the create itself succeeds',
      outcome:
        'the container runs with groups=1000,60000 and its stdout and stderr hold only its own output: the warning about the lost audit line has nowhere to go and is dropped; neither file holds a part of a line',
    },
    async run(t, ctx) {
      const dir = join(ctx.ws.dir, 'full-logs-disk');
      mountTmpfs(t, dir, SMALL_TMPFS_BYTES);
      const auditLog = join(dir, 'audit.log');
      const log = join(dir, 'log.json');
      ctx.ws.configure({ auditLog });
      t.teardown(() => ctx.ws.configure({}));
      fillFileSystem(dir);
      const bundle = ctx.ws.bundle('full-logs', { args: ['id'] });

      const run = await shim(ctx.ws, 'runc', [...ctx.root, '--log', log, '--log-format', 'json', 'run', '--bundle', bundle, 'full-logs']);
      t.equal(run.exitCode, 0, 'runs');
      t.equal(run.stdout.trim(), STRICT_GROUPS, 'the container\'s own output, strict groups');
      t.equal(run.stderr, '', 'nothing on the container\'s stderr');
      assertStrictConfig(t, readSpec(bundle), 'config.json');
      t.same([readOrEmpty(auditLog), readOrEmpty(log)], ['', ''], 'no part of a line in either file');
    },
  },
  {
    record: {
      area: 'disk',
      tried: 'exec process file on a full tmpfs',
      outcome:
        'exec refused, exit 1, ENOSPC named; process file byte-identical, no temp file; the container keeps running, and the exec gets groups=1000,60000 once space is freed',
    },
    async run(t, ctx) {
      const id = 'full-exec';
      await runningContainer(t, ctx, id);
      const dir = join(ctx.ws.dir, 'full-exec-tmp');
      mountTmpfs(t, dir, SMALL_TMPFS_BYTES);
      const file = processFile(dir, ['id']);
      const original = readFileSync(file);
      const filler = fillFileSystem(dir);

      const refused = await shim(ctx.ws, 'runc', [...ctx.root, 'exec', '--process', file, id]);
      t.equal(refused.exitCode, 1, 'exit 1');
      t.equal(refused.stderr, `strict-groups: cannot rewrite ${file}: ENOSPC`, 'ENOSPC named');
      t.same(readFileSync(file), original, 'process file byte-identical');
      t.same(tempFilesBeside(file), [], 'no temp file left');
      t.equal(await containerStatus(ctx, id), 'running', 'the container keeps running');

      rmSync(filler);
      await assertStrictGroups(t, ctx, ['exec', '--process', file, id], 'the exec gets the strict groups once space is freed');
    },
  },
  {
    record: {
      area: 'read-only',
      tried: 'bundle directory mounted read-only',
      outcome:
        'create refused under Strict and under Merge alike (every create records its decision in config.json), exit 1, EROFS named; config.json byte-identical, no container',
    },
    async run(t, ctx) {
      const dir = join(ctx.ws.dir, 'read-only');
      const strict = bundleApart(ctx.ws, join(dir, 'strict'), 'ro-strict', { args: ['id'] });
      const merge = bundleApart(ctx.ws, join(dir, 'merge'), 'ro-merge', { args: ['id'], annotations: { [POLICY]: 'Merge' } });
      const strictOriginal = readFileSync(join(strict, 'config.json'));
      const mergeOriginal = readFileSync(join(merge, 'config.json'));
      mountReadOnly(t, dir);

      const refused = await shim(ctx.ws, 'runc', [...ctx.root, 'create', '--bundle', strict, 'ro-strict']);
      t.equal(refused.exitCode, 1, 'exit 1');
      t.equal(refused.stderr, `strict-groups: cannot rewrite ${join(strict, 'config.json')}: creating a temporary file in ${strict}: EROFS`, 'EROFS named');
      t.same(readFileSync(join(strict, 'config.json')), strictOriginal, 'config.json byte-identical');
      t.equal(await containerStatus(ctx, 'ro-strict'), undefined, 'no container');

      const merged = await shim(ctx.ws, 'runc', [...ctx.root, 'run', '--bundle', merge, 'ro-merge']);
      t.equal(merged.exitCode, 1, 'Merge: exit 1, as its decision cannot be recorded');
      t.equal(merged.stderr, `strict-groups: cannot rewrite ${join(merge, 'config.json')}: creating a temporary file in ${merge}: EROFS`, 'Merge: EROFS named');
      t.same(readFileSync(join(merge, 'config.json')), mergeOriginal, 'Merge: config.json byte-identical');
      t.equal(await containerStatus(ctx, 'ro-merge'), undefined, 'Merge: no container');
    },
  },
  {
    record: {
      area: 'kill',
      tried:
        'shim killed (SIGKILL, strace fault injection) before each file or descriptor system call of a create, from opening config.json to the execve of runc',
      outcome:
        'config.json is always whole: the original up to a kill at the rename, the rewritten file after it; kills between the temp file\'s creation and the rename leave a .config.json.strict-groups-* file beside it (counted); no container; a create afterwards runs with groups=1000,60000',
    },
    async run(t, ctx) {
      const id = 'killed-create';
      const bundle = ctx.ws.bundle(id, { args: ['id'] });
      const config = join(bundle, 'config.json');
      const { results, rewritten } = await killAtEveryStep(t, {
        shimArgs: [...ctx.root, 'create', '--bundle', bundle, id],
        env: shimEnv(ctx),
        file: config,
        original: readFileSync(config),
        isFirst: isOpenOf(config),
        scratch: join(ctx.ws.dir, `${id}-traces`),
      });
      assertStrictConfig(t, JSON.parse(rewritten.toString('utf8')) as Spec, 'the rewritten file');
      assertKillResults(t, config, results, isTempOpenBeside(config));
      t.equal(await containerStatus(ctx, id), undefined, 'no container: every kill came before runc');

      // From what the last kill (at the execve of runc) left.
      await assertStrictGroups(t, ctx, ['run', '--bundle', bundle, id], 'a create afterwards runs with the strict groups');
      t.same(readFileSync(config), rewritten, 'config.json is the rewritten file');
    },
  },
  {
    record: {
      area: 'kill',
      tried:
        'shim killed before each file or descriptor system call of an exec --process on a running container, from opening the process file to the execve of runc',
      outcome:
        'the process file is always whole: the original up to a kill at the rename, the stripped file after it; a temp file is left only by kills between its creation and the rename (counted); the container keeps running; an exec afterwards gets groups=1000,60000',
    },
    async run(t, ctx) {
      const id = 'killed-exec';
      await runningContainer(t, ctx, id);
      const file = processFile(ctx.ws.dir, ['id']);
      const { results, rewritten } = await killAtEveryStep(t, {
        shimArgs: [...ctx.root, 'exec', '--process', file, id],
        env: shimEnv(ctx),
        file,
        original: readFileSync(file),
        isFirst: isOpenOf(file),
        scratch: join(ctx.ws.dir, `${id}-traces`),
      });
      t.same((JSON.parse(rewritten.toString('utf8')) as { user: { additionalGids: number[] } }).user.additionalGids, STRICT_GIDS, 'the stripped file');
      assertKillResults(t, file, results, isTempOpenBeside(file));
      t.equal(await containerStatus(ctx, id), 'running', 'the container keeps running');

      await assertStrictGroups(t, ctx, ['exec', '--process', file, id], 'an exec afterwards gets the strict groups');
    },
  },
  {
    record: {
      area: 'runtime',
      tried: 'configured runtime missing (/nonexistent/runc), on create and on exec',
      outcome:
        'refused before anything is written: exit 1, "runtime /nonexistent/runc is not an executable file"; config.json and the process file byte-identical, no temp file, no container; with runc configured again both get groups=1000,60000',
    },
    async run(t, ctx) {
      const execId = 'missing-runtime-exec';
      await runningContainer(t, ctx, execId);
      const bundle = ctx.ws.bundle('missing-runtime', { args: ['id'] });
      const config = join(bundle, 'config.json');
      const file = processFile(ctx.ws.dir, ['id']);
      const originals = [readFileSync(config), readFileSync(file)];

      ctx.ws.configure({ runtime: '/nonexistent/runc' });
      t.teardown(() => ctx.ws.configure({}));
      const message = 'strict-groups: runtime /nonexistent/runc is not an executable file';
      const create = await shim(ctx.ws, 'runc', [...ctx.root, 'create', '--bundle', bundle, 'missing-runtime']);
      t.same([create.exitCode, create.stderr], [1, message], 'create: exit 1, the runtime named');
      const exec = await shim(ctx.ws, 'runc', [...ctx.root, 'exec', '--process', file, execId]);
      t.same([exec.exitCode, exec.stderr], [1, message], 'exec: exit 1, the runtime named');
      t.same([readFileSync(config), readFileSync(file)], originals, 'config.json and the process file byte-identical');
      t.same([...tempFilesBeside(config), ...tempFilesBeside(file)], [], 'no temp file');
      t.equal(await containerStatus(ctx, 'missing-runtime'), undefined, 'no container');

      // Both files would have been rewritten: the runtime is checked first.
      ctx.ws.configure({});
      const created = await shim(ctx.ws, 'runc', [...ctx.root, 'run', '--bundle', bundle, 'missing-runtime']);
      t.equal(created.stdout.trim(), STRICT_GROUPS, 'with runc configured, the create gets the strict groups');
      const execd = await shim(ctx.ws, 'runc', [...ctx.root, 'exec', '--process', file, execId]);
      t.equal(execd.stdout.trim(), STRICT_GROUPS, 'and so does the exec');
    },
  },
  {
    record: {
      area: 'runtime',
      tried: 'runc SIGKILLed inside a create (held in a createRuntime hook), on the execve path and on the spawn path (--preserve-fds 1)',
      outcome:
        'the caller sees death by SIGKILL, as from plain runc (execve: the caller\'s child is runc itself; spawn: the shim dies of the same signal); config.json is the rewritten file, whole; runc delete --force clears the half-made container; a new create in the bundle runs with groups=1000,60000',
    },
    async run(t, ctx) {
      const runc = programPath('runc');
      const fd = openSync('/dev/null', 'r');
      t.teardown(() => closeSync(fd));
      for (const spawned of [false, true]) {
        const path = spawned ? 'spawn path' : 'execve path';
        const id = spawned ? 'runc-killed-spawned' : 'runc-killed';
        const bundle = ctx.ws.bundle(id, { args: ['id'] });
        const { hookFile } = createRuntimeHook(t, ctx, bundle, id, HOOK.blockOnce);
        const args = [...ctx.root, 'create', ...(spawned ? ['--preserve-fds', '1'] : []), '--bundle', bundle, id];
        const call = execa(SHIM, args, { reject: false, env: shimEnv(ctx), stdio: ['ignore', 'ignore', 'ignore', ...(spawned ? [fd] : [])] as never });
        await hookStarted(hookFile);
        const runcPid = spawned ? firstChild(call.pid!) : call.pid;
        t.equal(readlinkSync(`/proc/${runcPid}/exe`), runc, `${path}: runc is running the create`);
        process.kill(runcPid!, 'SIGKILL');
        t.equal((await call).signal, 'SIGKILL', `${path}: the caller sees death by SIGKILL`);
        assertStrictConfig(t, readSpec(bundle), `${path}: config.json after runc was killed`);

        t.equal((await direct('runc', [...ctx.root, 'delete', '--force', id])).exitCode, 0, `${path}: runc delete --force`);
        t.notOk(existsSync(join(ctx.ws.stateRoot, id)), `${path}: nothing of the container left in runc's state`);
        await assertStrictGroups(t, ctx, ['run', '--bundle', bundle, id], `${path}: a new create in the bundle runs with the strict groups`);
      }
    },
  },
  {
    record: {
      area: 'runtime',
      tried: 'runc failing inside a create (its createRuntime hook exits 3), spawn path (--preserve-fds 1)',
      outcome: 'the caller sees what plain runc gives: exit 1 and runc\'s own message on stderr; config.json is the rewritten file, whole; no container left',
    },
    async run(t, ctx) {
      const fd = openSync('/dev/null', 'r');
      t.teardown(() => closeSync(fd));
      /** A create whose hook fails, through the shim (spawn path) or from runc alone. */
      const failedCreate = async (id: string, viaShim: boolean) => {
        const bundle = ctx.ws.bundle(id, { args: ['id'] });
        createRuntimeHook(t, ctx, bundle, id, HOOK.fail);
        const args = [...ctx.root, 'create', '--preserve-fds', '1', '--bundle', bundle, id];
        const result = viaShim ? await shim(ctx.ws, 'runc', args, { extraFds: [fd] }) : await direct('runc', args, { extraFds: [fd] });
        t.equal(await containerStatus(ctx, id), undefined, `${viaShim ? 'through the shim' : 'plain runc'}: no container left`);
        // runc's log lines carry the time; the rest must match.
        return { bundle, exitCode: result.exitCode, stderr: result.stderr.replace(/time="[^"]*"/g, 'time=T').replaceAll(id, 'ID') };
      };
      const plain = await failedCreate('hook-fails-plain', false);
      const viaShim = await failedCreate('hook-fails-shim', true);
      t.equal(plain.exitCode, 1, 'plain runc exits 1');
      t.match(plain.stderr, /error running hook #0: .*exit status 3.*hook refuses/, 'plain runc names the hook');
      t.same([viaShim.exitCode, viaShim.stderr], [plain.exitCode, plain.stderr], 'through the shim: the same exit code and message');
      assertStrictConfig(t, readSpec(viaShim.bundle), 'config.json after runc failed');
    },
  },
  {
    record: {
      area: 'runtime',
      tried:
        'a runtime that dies of SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS or SIGQUIT, or exits 2, on the spawn path (a script stands in: runc, in Go, reports its own crashes as exit 2)',
      outcome: 'the caller sees the same death signal or exit code as calling the runtime directly; config.json is the rewritten file, whole',
    },
    async run(t, ctx) {
      const script = join(ctx.ws.dir, 'crashing-runtime');
      writeFileSync(script, '#!/bin/sh\n# A runtime that crashes: dies of $CRASH_SIGNAL, or exits $CRASH_EXIT.\n[ -n "$CRASH_SIGNAL" ] && kill -s "$CRASH_SIGNAL" $$\nexit "$CRASH_EXIT"\n', {
        mode: 0o755,
      });
      ctx.ws.configure({ runtime: script });
      t.teardown(() => ctx.ws.configure({}));
      const bundle = ctx.ws.bundle('crashing-runtime-bundle', { args: ['id'] });
      const fd = openSync('/dev/null', 'r');
      t.teardown(() => closeSync(fd));
      const crashes: ({ CRASH_SIGNAL: string; CRASH_EXIT?: never } | { CRASH_EXIT: string; CRASH_SIGNAL?: never })[] = [
        ...['SEGV', 'BUS', 'FPE', 'ILL', 'ABRT', 'TRAP', 'SYS', 'QUIT'].map((signal) => ({ CRASH_SIGNAL: signal })),
        { CRASH_EXIT: '2' },
      ];
      for (const crash of crashes) {
        // No core files: from the script, nor from the shim re-raising the signal.
        const options = { reject: false, stdio: ['ignore', 'pipe', 'pipe', fd] as never };
        const plain = await execa('prlimit', ['--core=0', '--', script], { ...options, env: crash });
        const args = [...ctx.root, 'create', '--preserve-fds', '1', '--bundle', bundle, 'crashing'];
        const viaShim = await execa('prlimit', ['--core=0', '--', SHIM, ...args], { ...options, env: { ...crash, ...shimEnv(ctx) } });
        const label = crash.CRASH_SIGNAL === undefined ? `exit ${crash.CRASH_EXIT}` : `SIG${crash.CRASH_SIGNAL}`;
        t.same([plain.exitCode, plain.signal], crash.CRASH_SIGNAL === undefined ? [2, undefined] : [undefined, label], `${label}: the runtime alone`);
        t.same([viaShim.exitCode, viaShim.signal], [plain.exitCode, plain.signal], `${label}: the same end through the shim`);
      }
      assertStrictConfig(t, readSpec(bundle), 'config.json after the crashes');
    },
  },
];
