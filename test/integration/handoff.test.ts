/**
 * The hand-off to the real runc: descriptors that must survive
 * (--preserve-fds, LISTEN_FDS), exit codes and signal deaths reproduced, and
 * --version passed through verbatim.
 */
import { execa } from 'execa';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import t from 'tap';
import { SHIM, STRICT_GROUPS, direct, prerequisites, shim, workspace } from '../helpers/oci';

const skip = prerequisites('runc');
t.test('hand-off to runc', { skip: skip ?? false }, async (t) => {
  const ws = workspace('runc');
  t.teardown(() => ws.cleanup());
  const root = ['--root', ws.stateRoot];

  t.test('--version is runc\'s, byte for byte', async (t) => {
    const [viaShim, real] = await Promise.all([shim(ws, 'runc', ['--version']), direct('runc', ['--version'])]);
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
    const viaShell = (script: string): Promise<{ exitCode?: number | undefined; stderr: string }> =>
      execa('sh', ['-c', script, SHIM], { reject: false, env: { STRICT_GROUPS_CONFIG: ws.configFile }, stdin: 'ignore' });

    const argument = await viaShell(`exec "$0" state "$(printf 'ab\\377cd')"`);
    t.equal(argument.exitCode, 1);
    t.equal(argument.stderr, 'strict-groups: refusing to run: argument 2 is not valid UTF-8, and Node would pass it on altered');
    t.notOk(existsSync(record), 'the runtime was not called');

    const bundle = ws.bundle('non-utf8-env');
    const config = readFileSync(join(bundle, 'config.json'));
    const create = await viaShell(`X="$(printf '\\376')" exec "$0" create --bundle ${bundle} non-utf8-env`);
    t.equal(create.exitCode, 1);
    t.equal(create.stderr, 'strict-groups: refusing to run: environment variable "X" is not valid UTF-8, and Node would pass it on altered');
    t.same(readFileSync(join(bundle, 'config.json')), config, 'config.json untouched');
    t.notOk(existsSync(record), 'the runtime was not called');

    // state, kill and delete go on, so that pods can still stop; the log says why.
    const log = join(ws.dir, 'non-utf8-env.log');
    const state = await viaShell(`X="$(printf '\\376')" exec "$0" --log ${log} --log-format json state some-id`);
    t.equal(state.exitCode, 0, state.stderr);
    t.equal(readFileSync(record, 'utf8'), '--log\0' + log + '\0--log-format\0json\0state\0some-id\0', 'passed on byte for byte');
    t.match(JSON.parse(readFileSync(log, 'utf8')), { level: 'warning', msg: /environment variable "X" is not valid UTF-8.*passing state on to runtime "[^"]+"$/ });

    const valid = await viaShell(`exec "$0" state 'caf\u00e9 \u6f22\u5b57'`);
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
    const expected = (await execa(probe, [], { reject: false, stdin: 'ignore' })).stdout;
    t.match(expected, /^SigIgn:\t0000000000000000$/m);

    const viaExecve = await shim(ws, 'runc', ['state', 'x']);
    t.equal(viaExecve.stdout, expected, 'execve path');
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    const viaSpawn = await shim(ws, 'runc', ['exec', '--preserve-fds', '1', 'x', 'true'], { extraFds: [fd] });
    t.equal(viaSpawn.stdout, expected, 'spawn path');
  });

  t.test('--preserve-fds: the container reads the inherited descriptor', async (t) => {
    const payload = join(ws.dir, 'preserve-payload');
    writeFileSync(payload, 'preserved-fd-content\n');
    const fd = openSync(payload, 'r');
    t.teardown(() => closeSync(fd));
    const bundle = ws.bundle('preserve', { args: ['sh', '-c', 'id; cat <&3'] });
    const result = await shim(ws, 'runc', [...root, 'run', '--preserve-fds', '1', '--bundle', bundle, 'preserve'], { extraFds: [fd] });
    t.equal(result.exitCode, 0, result.stderr);
    t.equal(result.stdout, `${STRICT_GROUPS}\npreserved-fd-content`, 'groups stripped and fd 3 inherited');
  });

  t.test('LISTEN_FDS with LISTEN_PID of the caller: runc still sees its own pid', async (t) => {
    const payload = join(ws.dir, 'listen-payload');
    writeFileSync(payload, 'socket-activated\n');
    const bundle = ws.bundle('listen', { args: ['sh', '-c', 'echo "fds=$LISTEN_FDS pid=$LISTEN_PID"; cat <&3'] });
    // The shell sets LISTEN_PID to its own pid, which the shim keeps by exec.
    const result = await execa('sh', ['-c', 'LISTEN_FDS=1 LISTEN_PID=$$ exec "$@" 3<"$0"', payload, SHIM, ...root, 'run', '--bundle', bundle, 'listen'], {
      reject: false,
      env: { STRICT_GROUPS_CONFIG: ws.configFile },
      stdin: 'ignore',
    });
    t.equal(result.exitCode, 0, String(result.stderr));
    t.equal(result.stdout, 'fds=1 pid=1\nsocket-activated', 'runc passed fd 3 on as a listen fd');
  });

  t.test('--preserve-fds larger than what was passed: the shim\'s own descriptors never reach the container', async (t) => {
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    const bundle = ws.bundle('preserve-short', { args: ['ls', '-l', '/proc/self/fd'] });
    const result = await shim(ws, 'runc', [...root, 'run', '--preserve-fds', '8', '--bundle', bundle, 'preserve-short'], { extraFds: [fd] });
    t.equal(result.exitCode, 1);
    t.equal(result.stdout, '', 'no container ran');
    t.match(result.stderr, /^strict-groups: descriptor \d+ was not passed by the caller \(it is the shim's own (anon_inode|pipe):/);
  });

  t.test('exit codes: the runtime\'s own, on both hand-off paths', async (t) => {
    const bundle = ws.bundle('exit-execve', { args: ['sh', '-c', 'exit 42'] });
    t.equal((await shim(ws, 'runc', [...root, 'run', '--bundle', bundle, 'exit-execve'])).exitCode, 42, 'execve path');
    const spawned = ws.bundle('exit-spawn', { args: ['sh', '-c', 'exit 43'] });
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    const result = await shim(ws, 'runc', [...root, 'run', '--preserve-fds', '1', '--bundle', spawned, 'exit-spawn'], { extraFds: [fd] });
    t.equal(result.exitCode, 43, 'spawn path');
    t.equal((await shim(ws, 'runc', [...root, 'state', 'no-such'])).exitCode, 1, 'runc failure passes through');
  });

  t.test('spawn path: signals are forwarded; a runtime killed by a signal kills the shim with it', async (t) => {
    const fd = openSync('/dev/null', 'r');
    t.teardown(() => closeSync(fd));
    // pid 1 ignores signals it has no handler for, so the container traps
    // TERM, and says so: a TERM sent before the trap is set would be lost.
    const bundle = ws.bundle('signals', { args: ['sh', '-c', 'trap "exit 3" TERM; echo trapped; while :; do sleep 0.1; done'] });
    const child = execa(SHIM, [...root, 'run', '--preserve-fds', '1', '--bundle', bundle, 'signals'], {
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
    // SIGTERM to the shim reaches runc, which passes it to the container.
    process.kill(child.pid!, 'SIGTERM');
    const first = await child;
    t.equal(first.exitCode, 3, `the container's TERM trap ran (signal: ${first.signal})`);

    const again = ws.bundle('signals-kill', { args: ['sleep', '300'] });
    const second = execa(SHIM, [...root, 'run', '--preserve-fds', '1', '--bundle', again, 'signals-kill'], {
      reject: false,
      env: { STRICT_GROUPS_CONFIG: ws.configFile },
      stdio: ['ignore', 'pipe', 'pipe', fd] as never,
    });
    const pid = await waitFor(() => childOf(second.pid!));
    await waitFor(() => (containerRunning(ws.stateRoot, 'signals-kill') ? 1 : 0));
    process.kill(pid, 'SIGKILL');
    const result = await second;
    t.equal(result.signal, 'SIGKILL', 'the shim died of the signal that killed runc');
    await direct('runc', [...root, 'delete', '--force', 'signals-kill']);
  });
});

function childOf(pid: number): number {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return children === '' ? 0 : Number(children.split(' ')[0]);
  } catch {
    return 0;
  }
}

function containerRunning(stateRoot: string, id: string): boolean {
  try {
    return JSON.parse(readFileSync(join(stateRoot, id, 'state.json'), 'utf8')).init_process_pid > 0;
  } catch {
    return false;
  }
}

async function waitFor(probe: () => number, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
