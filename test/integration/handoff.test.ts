/**
 * The hand-off to the real runtime, every runc and crun build
 * (runtime-builds.ts): descriptors that must survive (--preserve-fds,
 * LISTEN_FDS), exit codes and signal deaths reproduced, and --version passed
 * through verbatim.
 */
import { execa } from 'execa';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import t from 'tap';
import { STRICT_GROUPS, direct, shim, shimCommand, workspace, type RuntimeBuild } from '../helpers/oci';
import { runtimeBuilds } from '../helpers/runtime-builds';

for (const { label, build, skip } of runtimeBuilds('hand-off suite')) t.test(`hand-off: ${label}`, { skip }, async (t) => {
  const runtime = build!;
  const ws = workspace(runtime, { ownCgroups: true });
  // The shim's command line where the runtime runs, for tests that start it themselves.
  const shimArgv = (args: string[]): string[] => shimCommand(runtime, args).flat();
  t.teardown(() => ws.cleanup());
  const root = ['--root', ws.stateRoot];

  t.test('--version is the runtime\'s, byte for byte', async (t) => {
    const [viaShim, real] = await Promise.all([shim(ws, runtime, ['--version']), direct(runtime, ['--version'])]);
    t.equal(viaShim.stdout, real.stdout);
    t.equal(viaShim.stderr, real.stderr);
    t.equal(viaShim.exitCode, 0);
  });

  t.test('bytes that are not UTF-8 are refused, never passed on altered', async (t) => {
    // Node cannot pass such bytes itself; a shell makes them with printf.
    const record = join(ws.dir, 'recorded-argv');
    const recorder = join(ws.dir, 'recording-runtime');
    writeFileSync(recorder, `#!/bin/sh\nprintf '%s\\0' "$@" > ${record}\n`, { mode: 0o755 });
    ws.configure({ runtime: recorder });
    t.teardown(() => ws.configure({}));
    // The script runs the shim as "$@" followed by its own words.
    const viaShell = (script: string): Promise<{ exitCode?: number | undefined; stderr: string }> =>
      execa('sh', ['-c', script, 'sh', ...shimArgv([])], { reject: false, env: { STRICT_GROUPS_CONFIG: ws.configFile }, stdin: 'ignore' });

    const argument = await viaShell(`exec "$@" state "$(printf 'ab\\377cd')"`);
    t.equal(argument.exitCode, 1);
    t.equal(argument.stderr, 'strict-groups: refusing to run: argument 2 is not valid UTF-8, and Node would pass it on altered');
    t.notOk(existsSync(record), 'the runtime was not called');

    const bundle = ws.bundle('non-utf8-env');
    const config = readFileSync(join(bundle, 'config.json'));
    const create = await viaShell(`X="$(printf '\\376')" exec "$@" create --bundle ${bundle} non-utf8-env`);
    t.equal(create.exitCode, 1);
    t.equal(create.stderr, 'strict-groups: refusing to run: environment variable "X" is not valid UTF-8, and Node would pass it on altered');
    t.same(readFileSync(join(bundle, 'config.json')), config, 'config.json untouched');
    t.notOk(existsSync(record), 'the runtime was not called');

    // state, kill and delete go on, so that pods can still stop; the log says why.
    const log = join(ws.dir, 'non-utf8-env.log');
    const state = await viaShell(`X="$(printf '\\376')" exec "$@" --log ${log} --log-format json state some-id`);
    t.equal(state.exitCode, 0, state.stderr);
    t.equal(readFileSync(record, 'utf8'), '--log\0' + log + '\0--log-format\0json\0state\0some-id\0', 'passed on byte for byte');
    t.match(JSON.parse(readFileSync(log, 'utf8')), { level: 'warning', msg: /environment variable "X" is not valid UTF-8.*passing state on to runtime "[^"]+"$/ });

    const valid = await viaShell(`exec "$@" state 'caf\u00e9 \u6f22\u5b57'`);
    t.equal(valid.exitCode, 0, valid.stderr);
    t.equal(readFileSync(record, 'utf8'), 'state\0caf\u00e9 \u6f22\u5b57\0', 'UTF-8 passes byte for byte');
  });

  t.test('the runtime process inherits no ignored signals and blocking stdio, on both paths', async (t) => {
    // Node ignores SIGPIPE and SIGXFSZ, ignored signals survive execve, and
    // Node's stdio streams would leave a pipe non-blocking. runc and crun
    // happen to reset signals for the container, so the probe is the runtime
    // process itself: a script standing in for it that reports what it got.
    const probe = join(ws.dir, 'probe-runtime');
    writeFileSync(probe, '#!/bin/sh\ngrep -E "^Sig(Ign|Blk)" /proc/self/status\ngrep ^flags /proc/self/fdinfo/1 /proc/self/fdinfo/2\n', { mode: 0o755 });
    ws.configure({ runtime: probe });
    t.teardown(() => ws.configure({}));
    // The same probe started the same way without the shim: what the runtime should get.
    const [probeFile, probeArgs] = runtime.wrap(probe, []);
    const expected = (await execa(probeFile, probeArgs, { reject: false, stdin: 'ignore' })).stdout;
    t.match(expected, /^SigIgn:\t0000000000000000$/m);

    const viaExecve = await shim(ws, runtime, ['state', 'x']);
    t.equal(viaExecve.stdout, expected, 'execve path');
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    const viaSpawn = await shim(ws, runtime, ['exec', '--preserve-fds', '1', 'x', 'true'], { extraFds: [fd] });
    t.equal(viaSpawn.stdout, expected, 'spawn path');
  });

  t.test('--preserve-fds: the container reads the inherited descriptor', async (t) => {
    const payload = join(ws.dir, 'preserve-payload');
    writeFileSync(payload, 'preserved-fd-content\n');
    const fd = openSync(payload, 'r');
    t.teardown(() => closeSync(fd));
    const bundle = ws.bundle('preserve', { args: ['sh', '-c', 'id; cat <&3'] });
    const result = await shim(ws, runtime, [...root, 'run', '--preserve-fds', '1', '--bundle', bundle, 'preserve'], { extraFds: [fd] });
    t.equal(result.exitCode, 0, result.stderr);
    t.equal(result.stdout, `${STRICT_GROUPS}\npreserved-fd-content`, 'groups stripped and fd 3 inherited');
  });

  t.test('LISTEN_FDS with LISTEN_PID of the caller: the runtime still sees its own pid', async (t) => {
    const payload = join(ws.dir, 'listen-payload');
    writeFileSync(payload, 'socket-activated\n');
    const bundle = ws.bundle('listen', { args: ['sh', '-c', 'echo "fds=$LISTEN_FDS pid=$LISTEN_PID"; cat <&3'] });
    // The shell sets LISTEN_PID to its own pid, which the shim keeps by exec.
    const result = await execa('sh', ['-c', 'LISTEN_FDS=1 LISTEN_PID=$$ exec "$@" 3<"$0"', payload, ...shimArgv([...root, 'run', '--bundle', bundle, 'listen'])], {
      reject: false,
      env: { STRICT_GROUPS_CONFIG: ws.configFile },
      stdin: 'ignore',
    });
    t.equal(result.exitCode, 0, String(result.stderr));
    // runc sets LISTEN_FDS in the container and passes fds only when
    // LISTEN_PID is its own pid; crun (1.8 and 1.28) checks no pid and sets
    // only LISTEN_PID, so with crun this shows the descriptor survived.
    const listenFds = runtime.name === 'runc' ? '1' : '';
    t.equal(result.stdout, `fds=${listenFds} pid=1\nsocket-activated`, 'the runtime passed fd 3 on as a listen fd');
  });

  t.test('--preserve-fds larger than what was passed: the shim\'s own descriptors never reach the container', async (t) => {
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    const bundle = ws.bundle('preserve-short', { args: ['ls', '-l', '/proc/self/fd'] });
    const result = await shim(ws, runtime, [...root, 'run', '--preserve-fds', '8', '--bundle', bundle, 'preserve-short'], { extraFds: [fd] });
    t.equal(result.exitCode, 1);
    t.equal(result.stdout, '', 'no container ran');
    t.match(result.stderr, /^strict-groups: descriptor \d+ was not passed by the caller \(it is the shim's own (anon_inode|pipe):/);
  });

  t.test('exit codes: the runtime\'s own, on both hand-off paths', async (t) => {
    const bundle = ws.bundle('exit-execve', { args: ['sh', '-c', 'exit 42'] });
    t.equal((await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'exit-execve'])).exitCode, 42, 'execve path');
    const spawned = ws.bundle('exit-spawn', { args: ['sh', '-c', 'exit 43'] });
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    const result = await shim(ws, runtime, [...root, 'run', '--preserve-fds', '1', '--bundle', spawned, 'exit-spawn'], { extraFds: [fd] });
    t.equal(result.exitCode, 43, 'spawn path');
    t.equal((await shim(ws, runtime, [...root, 'state', 'no-such'])).exitCode, 1, 'the runtime\'s failure passes through');
  });

  t.test('spawn path: signals are forwarded; a runtime killed by a signal kills the shim with it', async (t) => {
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    // pid 1 ignores signals it has no handler for, so the container traps
    // TERM, and says so: a TERM sent before the trap is set would be lost.
    const bundle = ws.bundle('signals', { args: ['sh', '-c', 'trap "exit 3" TERM; echo trapped; while :; do sleep 0.1; done'] });
    const [file, args] = shimCommand(runtime, [...root, 'run', '--preserve-fds', '1', '--bundle', bundle, 'signals']);
    const child = execa(file, args, {
      reject: false,
      env: { STRICT_GROUPS_CONFIG: ws.configFile },
      stdio: ['ignore', 'pipe', 'pipe', fd] as never,
    });
    let trapped = false;
    // execa's types know no stdio beyond fd 2, hence the cast above and here.
    (child.stdout as unknown as Readable).on('data', (chunk: Buffer) => {
      trapped ||= chunk.toString('utf8').includes('trapped');
    });
    await waitFor(() => (trapped ? 1 : 0));
    // SIGTERM to the shim reaches the runtime, which passes it to the container.
    process.kill(child.pid!, 'SIGTERM');
    const first = await settled(child);
    t.equal(first.exitCode, 3, `the container's TERM trap ran (signal: ${first.signal})`);

    const again = ws.bundle('signals-kill', { args: ['sleep', '300'] });
    const [againFile, againArgs] = shimCommand(runtime, [...root, 'run', '--preserve-fds', '1', '--bundle', again, 'signals-kill']);
    const second = execa(againFile, againArgs, {
      reject: false,
      env: { STRICT_GROUPS_CONFIG: ws.configFile },
      // No pipes: crun leaves the container running when it is killed, and
      // the container would hold them open.
      stdio: ['ignore', 'ignore', 'ignore', fd] as never,
    });
    // Once the container runs, the shim's only child is the runtime (before
    // that, a wrapping that enters another root has children of its own).
    await waitFor(async () => ((await containerRunning(runtime, ws.stateRoot, 'signals-kill')) ? 1 : 0));
    const pid = await waitFor(() => childOf(second.pid!));
    process.kill(pid, 'SIGKILL');
    const result = await settled(second);
    t.equal(result.signal, 'SIGKILL', 'the shim died of the signal that killed the runtime');
    await direct(runtime, [...root, 'delete', '--force', 'signals-kill']);
  });
});

/** The process's end, or after `ms` it is killed and the test fails. */
async function settled<T>(child: Promise<T> & { pid?: number | undefined }, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`still running after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([child, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function childOf(pid: number): number {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return children === '' ? 0 : Number(children.split(' ')[0]);
  } catch {
    return 0;
  }
}

/** Whether the runtime's own `state` reports the container running. */
async function containerRunning(runtime: RuntimeBuild, stateRoot: string, id: string): Promise<boolean> {
  const state = await direct(runtime, ['--root', stateRoot, 'state', id]);
  try {
    return state.exitCode === 0 && JSON.parse(state.stdout).status === 'running';
  } catch {
    return false;
  }
}

async function waitFor(probe: () => number | Promise<number>, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
