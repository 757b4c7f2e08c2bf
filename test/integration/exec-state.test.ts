/**
 * exec --process finds the container's removal record in the runtime's own
 * state files, without running `<runtime> state`: under strace, the shim's
 * only execve is its hand-off to the runtime, and it forks nothing. A runtime
 * whose layout the shim does not know is still asked, and the exec still gets
 * the strict groups. On Debian 12's runc and crun.
 */
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { SHIM, STRICT_GROUPS, direct, missingPrograms, prerequisites, processFile, programPath, shim, shimCommand, skipOrFail, workspace, type RuntimeName } from '../helpers/oci';

interface Traced {
  stdout: string;
  /** Every execve that succeeded, as "path argv...", in order, across the whole process tree. */
  execs: string[];
  /** The execves of the shim's own process, from its own on. */
  shimExecs: string[];
  /** Whether the shim's process forked or cloned a new process (not a thread) before handing off. */
  shimForked: boolean;
}

/** Runs `args` (already wrapped for the runtime) under strace -f; the wrapping's own execs come first. */
async function traced(file: string, argv: string[], env: Record<string, string>, traceFile: string): Promise<Traced> {
  const result = await execa('strace', ['-f', '-qq', '-s', '256', '-e', 'trace=execve,fork,vfork,clone,clone3', '-e', 'status=successful', '-o', traceFile, file, ...argv], {
    reject: false,
    env,
    stdin: 'ignore',
  });
  const calls = readFileSync(traceFile, 'utf8').split('\n').flatMap((line) => {
    const match = /^(\d+) +(.*)$/.exec(line);
    return match ? [{ pid: match[1]!, call: match[2]! }] : [];
  });
  const execOf = (call: string): string | undefined => {
    const match = /^execve\("([^"]+)", \[(.*)\], /.exec(call);
    return match ? `${match[1]} ${match[2]}` : undefined;
  };
  const execs = calls.flatMap(({ call }) => execOf(call) ?? []);
  const shimPid = calls.find(({ call }) => execOf(call)?.startsWith(`${SHIM} `))?.pid;
  const shimExecs: string[] = [];
  let shimForked = false;
  for (const { pid, call } of calls) {
    if (pid !== shimPid) continue;
    const exec = execOf(call);
    // The caller's wrapping (unshare, sh) execs in the same process first.
    if (exec !== undefined && (shimExecs.length > 0 || exec.startsWith(`${SHIM} `))) shimExecs.push(exec);
    // A new process, not a thread: clone without CLONE_THREAD, or fork/vfork, before the hand-off.
    else if (shimExecs.length === 1 && (/^v?fork\(/.test(call) || (/^clone3?\(/.test(call) && !/CLONE_THREAD/.test(call)))) shimForked = true;
  }
  return { stdout: String(result.stdout), execs, shimExecs, shimForked };
}

for (const runtime of ['runc', 'crun'] as RuntimeName[]) {
  const skip = prerequisites(runtime) ?? skipOrFail(`${runtime} exec-state suite`, missingPrograms(['strace']));
  t.test(`${runtime}: exec reads the state the runtime keeps`, { skip: skip ?? false }, async (t) => {
    const ws = workspace(runtime);
    t.teardown(() => ws.cleanup());
    const root = ['--root', ws.stateRoot];
    const bundle = ws.bundle('c', { args: ['sleep', '60'] });
    t.equal((await shim(ws, runtime, [...root, 'create', '--bundle', bundle, 'c'], { output: 'ignore' })).exitCode, 0);
    t.equal((await shim(ws, runtime, [...root, 'start', 'c'], { output: 'ignore' })).exitCode, 0);
    t.teardown(() => direct(runtime, [...root, 'delete', '--force', 'c']));

    t.test('no process of its own: the one execve is the hand-off', async (t) => {
      const [file, argv] = shimCommand(runtime, [...root, 'exec', '--process', processFile(ws.dir, ['id']), 'c']);
      const run = await traced(file, argv, { STRICT_GROUPS_CONFIG: ws.configFile }, join(ws.dir, 'exec.strace'));
      t.equal(run.stdout.trim(), STRICT_GROUPS, 'the exec has the strict groups');
      t.equal(run.shimExecs.length, 2, `the shim, then the runtime: ${JSON.stringify(run.shimExecs)}`);
      t.match(run.shimExecs[1], new RegExp(`^${programPath(runtime)} .*"exec"`), 'the hand-off');
      t.notOk(run.shimForked, 'no process forked before it');
      t.notOk(run.execs.some((exec) => /"state"/.test(exec)), 'no `state` call anywhere');
    });

  });
}

// The container is in runc's default root, /run/runc, so no --root is passed,
// and the runtime's name, a link, says nothing of where that is. /run is the
// workspace's own, bound over the host's in a private mount namespace, so that
// nothing of the test lands in the host's /run/runc.
const skipRunc = prerequisites('runc') ?? skipOrFail('runc exec-state suite', missingPrograms(['strace', 'unshare']));
t.test('runc under a name whose state layout the shim does not know, and no --root: the runtime is asked', { skip: skipRunc ?? false }, async (t) => {
  const runtime: RuntimeName = 'runc';
  const ws = workspace(runtime);
  t.teardown(() => ws.cleanup());
  const run = join(ws.dir, 'run');
  mkdirSync(run);
  const privateRun = (argv: string[]): [string, string[]] => [programPath('unshare'), ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /run && exec "$@"', run, ...argv]];
  const other = join(ws.dir, 'bin', 'oci-runtime');
  mkdirSync(join(ws.dir, 'bin'));
  symlinkSync(programPath(runtime), other);
  const config = join(ws.dir, 'other-runtime.json');
  writeFileSync(config, JSON.stringify({ runtime: other, auditLog: null }));
  const id = 'exec-fallback';
  const defaultBundle = ws.bundle(id, { args: ['sleep', '60'] });
  const env = { STRICT_GROUPS_CONFIG: config };
  const [createFile, createArgs] = privateRun([SHIM, 'create', '--bundle', defaultBundle, id]);
  t.equal((await execa(createFile, createArgs, { env, stdio: 'ignore', reject: false })).exitCode, 0);
  t.teardown(async () => {
    const [file, args] = privateRun([programPath(runtime), 'delete', '--force', id]);
    await execa(file, args, { reject: false });
  });
  const [execFile, execArgs] = privateRun([SHIM, 'exec', '--process', processFile(ws.dir, ['id']), id]);
  const traceRun = await traced(execFile, execArgs, env, join(ws.dir, 'fallback.strace'));
  t.equal(traceRun.stdout.trim(), STRICT_GROUPS, 'the exec has the strict groups');
  t.ok(traceRun.execs.some((exec) => exec.startsWith(`${other} `) && exec.includes(`"state", "${id}"`)), `the runtime was asked for the state: ${JSON.stringify(traceRun.execs)}`);
  t.ok(existsSync(join(run, 'runc', id)), 'the container lives in the workspace\'s /run, not the host\'s');
});
