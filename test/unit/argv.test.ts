/**
 * src/argv.ts: the shim must find the same bundle, container id and process
 * file the real runtime will act on, for every command line containerd,
 * CRI-O and a person at a shell send, and refuse ('unclear') wherever runc's
 * or crun's reading is uncertain. Grammar facts: /tmp/research/flags.md and
 * /work/shared/FACTS.md ("How the runtime binary is called").
 */
import t from 'tap';
import {
  COMMAND_FLAGS,
  goFlagParse,
  parseInvocation,
  reorderArgsV1221,
  reorderArgsV1222,
  type Globals,
  type InheritedFds,
  type Invocation,
} from '../../src/argv';

type Unclear = { kind: 'unclear'; globals: Globals; reason: RegExp };
type Want = Exclude<Invocation, { kind: 'unclear' }> | Unclear;

interface Row {
  /** Split on single spaces; no test word contains one. */
  line: string;
  want: Want;
  why?: string;
}

const words = (line: string): string[] => (line === '' ? [] : line.split(' '));

/** The --root value among the words for `state`, in any of Go's notations: the last one wins. */
function rootIn(forState: readonly string[]): string | undefined {
  let root: string | undefined;
  for (let i = 0; i < forState.length; i++) {
    const match = /^--?root(?:=(.*))?$/.exec(forState[i]!);
    if (match) root = match[1] ?? forState[++i];
  }
  return root;
}

function globals(forState: string[], log?: string, logFormat?: string): Globals {
  const g: Globals = { forState };
  const root = rootIn(forState);
  if (root !== undefined) g.root = root;
  if (log !== undefined) g.log = log;
  if (logFormat !== undefined) g.logFormat = logFormat;
  return g;
}

const NONE = globals([]);

function create(g: Globals, command: string, id: string, bundle: string, preserveFds = 0): Want {
  return { kind: 'create', globals: g, command, id, bundle, fds: { preserveFds } };
}
function exec(g: Globals, id: string, processFile: string | undefined, preserveFds = 0): Want {
  return { kind: 'exec', globals: g, id, processFile, fds: { preserveFds } };
}
function pass(g: Globals, command: string | undefined, fds: InheritedFds = { preserveFds: 0 }): Want {
  return { kind: 'passthrough', globals: g, command, fds };
}
function unclear(g: Globals, reason: RegExp): Want {
  return { kind: 'unclear', globals: g, reason };
}

function check(t: tap.Test, argv: readonly string[], want: Want, why?: string): void {
  const got = parseInvocation(argv);
  const label = `${JSON.stringify(argv)}${why === undefined ? '' : ` (${why})`}`;
  if (want.kind === 'unclear') {
    t.equal(got.kind, 'unclear', `${label}: kind`);
    if (got.kind === 'unclear') {
      t.match(got.reason, want.reason, `${label}: reason`);
      t.strictSame(got.globals, want.globals, `${label}: globals`);
    } else {
      t.fail(`${label}: got ${JSON.stringify(got)}`);
    }
  } else {
    t.strictSame(got, want, label);
  }
}

function table(t: tap.Test, rows: readonly Row[]): void {
  for (const row of rows) check(t, words(row.line), row.want, row.why);
  t.end();
}

// containerd-shim-runc-v2 (go-runc): always space-separated, --log in the bundle.
const ROOT = '/run/containerd/runc/k8s.io';
const ID = '4f3c1d2e0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d';
const B = `/run/containerd/io.containerd.runtime.v2.task/k8s.io/${ID}`;
const SHIM = `--root ${ROOT} --log ${B}/log.json --log-format json`;
const SHIM_G = globals(['--root', ROOT], `${B}/log.json`, 'json');
const SHIM_SYSTEMD_G = globals(['--root', ROOT, '--systemd-cgroup'], `${B}/log.json`, 'json');

t.test('containerd-shim-runc-v2 command lines', (t) =>
  table(t, [
    { line: `${SHIM} create --bundle ${B} --pid-file ${B}/init.pid ${ID}`, want: create(SHIM_G, 'create', ID, B) },
    {
      line: `${SHIM} --systemd-cgroup create --bundle ${B} --pid-file ${B}/init.pid --console-socket /tmp/pty123/pty.sock --no-pivot --no-new-keyring ${ID}`,
      want: create(SHIM_SYSTEMD_G, 'create', ID, B),
      // --no-new-keyring is a bool right before the id: the reorder quirk
      // moves the id next to it, which only works because the id is last.
      why: 'every optional flag, bool last before the id',
    },
    { line: `${SHIM} create --bundle ${B} --pid-file ${B}/init.pid --no-new-keyring ${ID}`, want: create(SHIM_G, 'create', ID, B) },
    { line: `${SHIM} start ${ID}`, want: pass(SHIM_G, 'start') },
    {
      line: `${SHIM} exec --process /tmp/runc-process2736 --console-socket /tmp/pty9/pty.sock --detach --pid-file ${B}/exec1.pid ${ID}`,
      want: exec(SHIM_G, ID, '/tmp/runc-process2736'),
    },
    {
      line: `${SHIM} --systemd-cgroup exec --process /run/user/0/runc-process99 --detach --pid-file ${B}/exec1.pid ${ID}`,
      want: exec(SHIM_SYSTEMD_G, ID, '/run/user/0/runc-process99'),
    },
    { line: `${SHIM} kill --all ${ID} 9`, want: pass(SHIM_G, 'kill') },
    { line: `${SHIM} kill ${ID} 9`, want: pass(SHIM_G, 'kill') },
    { line: `${SHIM} delete --force ${ID}`, want: pass(SHIM_G, 'delete') },
    { line: `${SHIM} delete ${ID}`, want: pass(SHIM_G, 'delete') },
    { line: `${SHIM} ps --format json ${ID}`, want: pass(SHIM_G, 'ps') },
    { line: `${SHIM} pause ${ID}`, want: pass(SHIM_G, 'pause') },
    { line: `${SHIM} resume ${ID}`, want: pass(SHIM_G, 'resume') },
    { line: `${SHIM} update --resources - ${ID}`, want: pass(SHIM_G, 'update'), why: 'JSON on stdin' },
    {
      line: `${SHIM} checkpoint --image-path ${B}/ckpt --work-path ${B}/work --lazy-pages --status-fd 3 --leave-running ${ID}`,
      want: pass(SHIM_G, 'checkpoint', { preserveFds: 0, statusFd: 3 }),
      why: 'fd 3 must reach runc: it does not survive execve',
    },
    {
      line: `${SHIM} restore --bundle ${B} --image-path ${B}/ckpt --work-path ${B}/work --detach --pid-file ${B}/init.pid --no-pivot ${ID}`,
      want: create(SHIM_G, 'restore', ID, B),
      why: 'restore starts the container from the bundle: config.json is rewritten',
    },
    { line: `${SHIM} features`, want: pass(SHIM_G, 'features') },
  ]),
);

const CRIO_G = globals(['--root=/run/runc']);

t.test('CRI-O / conmon command lines: --root=X as one token, no --log', (t) =>
  table(t, [
    {
      line: `--root=/run/runc create --bundle /var/run/containers/storage/overlay-containers/${ID}/userdata --pid-file /var/run/containers/storage/overlay-containers/${ID}/userdata/pidfile ${ID}`,
      want: create(CRIO_G, 'create', ID, `/var/run/containers/storage/overlay-containers/${ID}/userdata`),
    },
    {
      line: `--root=/run/runc --systemd-cgroup create --bundle /b --pid-file /b/pidfile --no-pivot --console-socket /tmp/conmon-term.sock ${ID}`,
      want: create(globals(['--root=/run/runc', '--systemd-cgroup']), 'create', ID, '/b'),
    },
    {
      line: `--root=/run/runc exec --pid-file /tmp/pidfile --process /tmp/exec-process-123456 --detach ${ID}`,
      want: exec(CRIO_G, ID, '/tmp/exec-process-123456'),
    },
    { line: '--version', want: pass(globals(['--version']), undefined), why: 'CRI-O start-up probe' },
    { line: '--root=/run/runc --version', want: pass(globals(['--root=/run/runc', '--version']), undefined) },
    { line: 'features', want: pass(NONE, 'features') },
    { line: '--root=/run/runc features', want: pass(CRIO_G, 'features') },
    { line: `--root=/run/runc state ${ID}`, want: pass(CRIO_G, 'state') },
    { line: `--root=/run/runc kill ${ID} KILL`, want: pass(CRIO_G, 'kill') },
    { line: `--root=/run/runc delete --force ${ID}`, want: pass(CRIO_G, 'delete') },
  ]),
);

// What the newer callers send, read from their sources: go-runc (the
// containerd shim's library) since it knows runc 1.2's --pidfd-socket,
// containerd 1.7/2.1's update with --resources=- as one word, conmon 2.1.x
// (exec, restore, --runtime-opt words after the command's own) and podman
// 4.3 through conmon (its --runtime-flag words as globals, its own delete
// without them). runc 1.2 to 1.4 add no create, run, exec, restore or
// global flag the shim would need beyond these; crun 1.28 adds none either.
const POD = '/var/lib/containers/storage/overlay-containers';
t.test('newer callers: go-runc with runc 1.2+, conmon 2.1, podman 4.3', (t) =>
  table(t, [
    {
      line: `${SHIM} create --bundle ${B} --pid-file ${B}/init.pid --pidfd-socket /run/containerd/s/pidfd.sock ${ID}`,
      want: create(SHIM_G, 'create', ID, B),
      why: 'go-runc CreateOpts.PidfdSocket (runc 1.2+)',
    },
    {
      line: `${SHIM} exec --process /tmp/runc-process7 --pidfd-socket /run/containerd/s/pidfd.sock --detach --pid-file ${B}/e.pid ${ID}`,
      want: exec(SHIM_G, ID, '/tmp/runc-process7'),
      why: 'go-runc ExecOpts.PidfdSocket',
    },
    { line: `${SHIM} --rootless=false create --bundle ${B} --pid-file ${B}/init.pid ${ID}`, want: create(globals(['--root', ROOT, '--rootless=false'], `${B}/log.json`, 'json'), 'create', ID, B) },
    { line: `${SHIM} update --resources=- ${ID}`, want: pass(SHIM_G, 'update'), why: 'containerd 1.7 and 2.1: one word' },
    {
      line: `--root=/run/runc exec --pid-file ${POD}/${ID}/userdata/exec_pid --process ${POD}/${ID}/userdata/exec-process-1 --detach --tty --console-socket /tmp/conmon-term.sock ${ID}`,
      want: exec(CRIO_G, ID, `${POD}/${ID}/userdata/exec-process-1`),
      why: 'conmon 2.1.6 exec with a terminal',
    },
    {
      line: `--root=/run/runc restore --bundle ${POD}/${ID}/userdata --pid-file ${POD}/${ID}/userdata/pidfile --detach --image-path /ckpt --work-path ${POD}/${ID}/userdata --tcp-established ${ID}`,
      want: create(CRIO_G, 'restore', ID, `${POD}/${ID}/userdata`),
      why: 'conmon restore, a --runtime-opt after its own words',
    },
    {
      line: `--root=/run/runc create --bundle /b --pid-file /b/pidfile --preserve-fds 2 ${ID}`,
      want: create(CRIO_G, 'create', ID, '/b', 2),
      why: 'conmon --runtime-opt --preserve-fds',
    },
    { line: `--root=/tmp/runc-state kill ${ID} 9`, want: pass(globals(['--root=/tmp/runc-state']), 'kill'), why: 'podman --runtime-flag root=...' },
    { line: `delete --force ${ID}`, want: pass(NONE, 'delete'), why: 'podman 4.3 deletes without its --runtime-flag words' },
  ]),
);

t.test('runc 1.4 and crun 1.28 specifics', (t) =>
  table(t, [
    // runc 1.4 dropped --criu; it refuses the line, the shim reads it as 1.3 does.
    { line: '--criu /usr/sbin/criu create -b /x id1', want: create(globals(['--criu', '/usr/sbin/criu']), 'create', 'id1', '/x') },
    // crun's --network-lock is declared without an argument yet takes the next word.
    { line: 'restore --network-lock skip --image-path /i -b /x id1', want: create(NONE, 'restore', 'id1', '/x') },
    { line: 'restore --tcp-close -b /x id1', want: create(NONE, 'restore', 'id1', '/x'), why: 'crun only' },
    { line: 'checkpoint --network-lock skip --image-path /i id1', want: pass(NONE, 'checkpoint') },
    { line: '--cgroup-manager=disabled --log-level=warning run -d -b /x id1', want: create(globals(['--cgroup-manager=disabled']), 'run', 'id1', '/x') },
    { line: 'exec --tty=false --cgroup sub -p /f id1', want: exec(NONE, 'id1', '/f'), why: 'crun -t takes an optional attached value' },
  ]),
);

t.test('drop-in runc forms: where the bundle and id are', (t) =>
  table(t, [
    { line: 'create id1 --bundle /x', want: create(NONE, 'create', 'id1', '/x'), why: 'runc reorders flags after the id' },
    { line: 'create id1 -b /x', want: create(NONE, 'create', 'id1', '/x') },
    { line: 'create -b /x id1', want: create(NONE, 'create', 'id1', '/x') },
    { line: 'create --bundle /x id1', want: create(NONE, 'create', 'id1', '/x') },
    { line: 'create --bundle=/x id1', want: create(NONE, 'create', 'id1', '/x') },
    { line: 'create -bundle /x id1', want: create(NONE, 'create', 'id1', '/x'), why: 'Go flag: -x is --x' },
    { line: 'create -b=/x id1', want: create(NONE, 'create', 'id1', '/x') },
    { line: 'create --bundle= id1', want: create(NONE, 'create', 'id1', ''), why: 'empty value is the cwd, as without --bundle' },
    { line: 'create id1', want: create(NONE, 'create', 'id1', ''), why: 'no --bundle: the current directory' },
    { line: 'run id1', want: create(NONE, 'run', 'id1', '') },
    { line: 'run create', want: create(NONE, 'run', 'create', ''), why: 'container id equal to a command name' },
    { line: 'create run', want: create(NONE, 'create', 'run', '') },
    { line: 'run -d create', want: create(NONE, 'run', 'create', '') },
    { line: 'create -b /x -b /y id1', want: create(NONE, 'create', 'id1', '/y'), why: 'a Go string flag: the last one wins' },
    { line: 'create -b - id1', want: create(NONE, 'create', 'id1', '-'), why: 'a value flag takes the next word whatever it is' },
    { line: 'create --console-socket=/s --pid-file /p --no-pivot=true -b /x id1', want: create(NONE, 'create', 'id1', '/x') },
    { line: 'create --help=false -b /x id1', want: create(NONE, 'create', 'id1', '/x'), why: 'help explicitly off still creates' },
    { line: 'restore -b /x --image-path /i id1', want: create(NONE, 'restore', 'id1', '/x') },
    { line: 'restore --image-path /i id1', want: create(NONE, 'restore', 'id1', '') },

    { line: 'exec -p /f id1', want: exec(NONE, 'id1', '/f') },
    { line: 'exec --process /f id1', want: exec(NONE, 'id1', '/f') },
    { line: 'exec --process=/f id1', want: exec(NONE, 'id1', '/f') },
    { line: 'exec -p /f -- id1', want: exec(NONE, 'id1', '/f'), why: 'Go flag consumes the --' },
    { line: 'exec -- id1 ls', want: exec(NONE, 'id1', undefined) },
    { line: 'exec id1 -- ls', want: exec(NONE, 'id1', undefined), why: 'a -- after the id is part of the command' },
    { line: 'exec id1 -p /g', want: exec(NONE, 'id1', undefined), why: 'exec is not reordered: flags after the id are the command' },
    { line: 'exec -p /f id1 -p /g', want: exec(NONE, 'id1', '/f') },
    { line: 'exec -p /f -p /g id1', want: exec(NONE, 'id1', '/g'), why: 'last one wins' },
    { line: 'exec -t -d -u 1000:1000 -g 50000 -e A=1 -e B=2 id1 sh', want: exec(NONE, 'id1', undefined) },
    { line: 'exec --tty=false -p /f id1', want: exec(NONE, 'id1', '/f') },
    { line: 'exec --preserve-fds 2 -p /f id1', want: exec(NONE, 'id1', '/f', 2) },
    { line: 'exec -p /f', want: pass(NONE, 'exec'), why: 'no id: runc prints usage' },
    { line: 'exec --help -p /f id1', want: pass(NONE, 'exec') },

    { line: 'strict-groups check /b', want: { kind: 'shim', globals: NONE, args: ['check', '/b'] } },
    { line: '--root /r strict-groups', want: { kind: 'shim', globals: globals(['--root', '/r']), args: [] } },
    { line: '', want: pass(NONE, undefined) },
    { line: 'state id1', want: pass(NONE, 'state') },
    { line: 'list', want: pass(NONE, 'list') },
    { line: 'spec --rootless', want: pass(NONE, 'spec') },
    { line: 'nosuchcmd id1', want: pass(NONE, 'nosuchcmd') },
  ]),
);

t.test('global options', (t) =>
  table(t, [
    { line: '--debug create -b /x id1', want: create(NONE, 'create', 'id1', '/x') },
    { line: '-debug create -b /x id1', want: create(NONE, 'create', 'id1', '/x') },
    { line: '--systemd-cgroup create -b /x id1', want: create(globals(['--systemd-cgroup']), 'create', 'id1', '/x') },
    { line: '--log=/l create -b /x id1', want: create(globals([], '/l'), 'create', 'id1', '/x') },
    { line: '-log /l create -b /x id1', want: create(globals([], '/l'), 'create', 'id1', '/x') },
    { line: '--log /a --log /b create id1', want: create(globals([], '/b'), 'create', 'id1', ''), why: 'last one wins' },
    { line: '-log=/l -log-format=text create -b /x id1', want: create(globals([], '/l', 'text'), 'create', 'id1', '/x') },
    { line: '--log-format json create -b /x id1', want: create(globals([], undefined, 'json'), 'create', 'id1', '/x') },
    { line: '--root /r --criu /usr/sbin/criu state id1', want: pass(globals(['--root', '/r', '--criu', '/usr/sbin/criu']), 'state') },
    {
      line: '--cgroup-manager systemd --log-level debug create -b /x id1',
      want: create(globals(['--cgroup-manager', 'systemd']), 'create', 'id1', '/x'),
      why: 'crun globals: --cgroup-manager takes a value, --log-level is logging',
    },
    { line: '-- create -b /x id1', want: create(NONE, 'create', 'id1', '/x'), why: 'Go flag consumes a global --' },
    { line: '--root', want: pass(globals(['--root']), undefined), why: 'missing value' },

    // Not knowing whether an unknown global takes a value, the shim cannot
    // tell which word is the command: refuse when one could act.
    { line: '--nosuch create -b /x id1', want: unclear(globals(['--nosuch']), /^unknown global option --nosuch: cannot tell which command follows$/) },
    { line: '--nosuch=1 exec -p /f id1', want: unclear(globals(['--nosuch=1']), /unknown global option --nosuch=1/) },
    { line: '--nosuch /x run id1', want: unclear(globals(['--nosuch']), /unknown global option --nosuch/) },
    { line: '--nosuch restore id1', want: unclear(globals(['--nosuch']), /unknown global option --nosuch/) },
    { line: '--nosuch strict-groups check', want: unclear(globals(['--nosuch']), /unknown global option --nosuch/) },
    { line: '--ro /r create id1', want: unclear(globals(['--ro']), /unknown global option --ro/), why: 'crun abbreviation of --root' },
    { line: '-db /x create id1', want: unclear(globals(['-db']), /unknown global option -db/), why: 'crun option cluster' },
    { line: '--nosuch state id1', want: pass(globals(['--nosuch']), undefined) },
    { line: '--nosuch x kill id1 9', want: pass(globals(['--nosuch']), undefined) },
    { line: '---root /r create id1', want: unclear(globals(['---root']), /unknown global option ---root/), why: 'bad flag syntax for Go' },
  ]),
);

t.test('help, missing and extra ids, unknown and crun-only flags', (t) =>
  table(t, [
    // --help prints usage and acts on nothing.
    { line: 'create --help', want: pass(NONE, 'create') },
    { line: 'create -h', want: pass(NONE, 'create') },
    { line: 'create --help -b /x id1', want: pass(NONE, 'create') },
    { line: 'create -b /x --help id1', want: pass(NONE, 'create') },
    { line: 'create id1 -h', want: pass(NONE, 'create'), why: 'reordered to the front' },
    { line: 'run -h id1', want: pass(NONE, 'run') },
    // No container id: runc prints usage and fails.
    { line: 'create', want: pass(NONE, 'create') },
    { line: 'create -b /x', want: pass(NONE, 'create') },
    { line: 'run --bundle /x --detach', want: pass(NONE, 'run') },
    // Two ids: runc refuses, and which one would be meant is unknowable.
    { line: 'create a b', want: unclear(NONE, /^create takes one container id, got \["a","b"\]$/) },
    { line: 'create -b /x a b', want: unclear(NONE, /create takes one container id/) },
    { line: 'restore id1 /extra', want: unclear(NONE, /restore takes one container id/), why: 'crun restore takes a second positional' },
    // crun-only: --config names another file than config.json.
    { line: 'create --config f.json id1', want: unclear(NONE, /^create: unsupported option --config: /) },
    { line: 'create -f f.json id1', want: unclear(NONE, /^create: unsupported option --config: /) },
    { line: 'run --config=f.json -b /x id1', want: unclear(NONE, /^run: unsupported option --config: /) },
    // crun accepts abbreviations and clusters; runc does not: unknown flags.
    { line: 'create --bun /x id1', want: unclear(NONE, /^create: flag provided but not defined: -bun$/) },
    { line: 'create --bu /x t1', want: unclear(NONE, /^create: flag provided but not defined: -bu$/) },
    { line: 'create -db /x id1', want: unclear(NONE, /^create: flag provided but not defined: -db$/) },
    { line: 'create -b/x id1', want: unclear(NONE, /flag provided but not defined: -b\/x/), why: 'crun attached short value' },
    { line: 'exec -ti id1 sh', want: unclear(NONE, /^exec: flag provided but not defined: -ti$/) },
    { line: 'exec --proc /f id1', want: unclear(NONE, /^exec: flag provided but not defined: -proc$/) },
    { line: 'exec --nosuch id1', want: unclear(NONE, /^exec: flag provided but not defined: -nosuch$/) },
    // Go flag errors on acting commands.
    { line: 'create --no-pivot=maybe -b /x id1', want: unclear(NONE, /^create: invalid boolean value "maybe" for -no-pivot$/) },
    { line: 'create ---b /x id1', want: unclear(NONE, /^create: bad flag syntax: ---b$/) },
    { line: 'create -b', want: unclear(NONE, /^create: flag needs an argument: -b$/) },
    { line: 'create -b /x --bundle /y id1', want: unclear(NONE, /^create: Cannot use two forms of the same flag: b bundle$/) },
    { line: 'exec -e FOO=1 --env BAR=2 id1 sh', want: unclear(NONE, /^exec: Cannot use two forms of the same flag: e env$/) },
    { line: 'restore --preserve-fds 1 id1', want: unclear(NONE, /^restore: /), why: 'runc restore has no --preserve-fds' },
    // A non-acting command with bad flags goes through: the runtime reports it.
    { line: 'checkpoint --nosuch id1', want: pass(NONE, 'checkpoint') },
    { line: 'checkpoint --status-fd', want: pass(NONE, 'checkpoint') },
  ]),
);

t.test('inherited descriptors', (t) =>
  table(t, [
    { line: 'create --preserve-fds 2 id1', want: create(NONE, 'create', 'id1', '', 2) },
    { line: 'create --preserve-fds=2 -b /x id1', want: create(NONE, 'create', 'id1', '/x', 2) },
    { line: 'create id1 --preserve-fds 2', want: create(NONE, 'create', 'id1', '', 2) },
    { line: 'run -d --preserve-fds 1 -b /x id1', want: create(NONE, 'run', 'id1', '/x', 1) },
    { line: 'create --preserve-fds 0 id1', want: create(NONE, 'create', 'id1', '', 0) },
    // runc reads 0x3 as 3 (Go ParseInt base 0), crun ≤1.18 as 0: refuse.
    { line: 'create --preserve-fds 0x3 id1', want: unclear(NONE, /^create: --preserve-fds "0x3" is not a plain decimal count$/) },
    { line: 'create --preserve-fds +3 id1', want: unclear(NONE, /not a plain decimal count/) },
    { line: 'create --preserve-fds 1_0 id1', want: unclear(NONE, /not a plain decimal count/) },
    { line: 'create --preserve-fds abc id1', want: unclear(NONE, /not a plain decimal count/) },
    { line: 'exec --preserve-fds 0b1 -p /f id1', want: unclear(NONE, /^exec: --preserve-fds "0b1" is not a plain decimal count$/) },
    { line: 'checkpoint --status-fd 5 id1', want: pass(NONE, 'checkpoint', { preserveFds: 0, statusFd: 5 }) },
    { line: 'checkpoint id1 --status-fd=5', want: pass(NONE, 'checkpoint', { preserveFds: 0, statusFd: 5 }) },
    { line: 'checkpoint --image-path /i id1', want: pass(NONE, 'checkpoint') },
  ]),
);

// flags.md §4, each line tested on Debian's runc 1.1.5. Where runc refuses,
// the shim must refuse too and never report a create with some bundle.
t.test('flags.md §4 worked examples through parseInvocation', (t) =>
  table(t, [
    { line: 'create t1 --bundle /x', want: create(NONE, 'create', 't1', '/x'), why: 'runc: OK, bundle=/x' },
    { line: 'create --no-pivot t1 -b /x', want: unclear(NONE, /^create takes one container id, got \["t1","-b","\/x"\]$/), why: 'runc: requires exactly 1 argument' },
    { line: 'run -d t9 --keep', want: unclear(NONE, /^run takes one container id, got \["t9","--keep"\]$/), why: 'runc: requires exactly 1 argument' },
    { line: 'run -d t9', want: create(NONE, 'run', 't9', ''), why: 'runc: OK' },
    { line: 'create --no-pivot=true -b /x t1', want: create(NONE, 'create', 't1', '/x'), why: 'runc: OK' },
    { line: 'create --no-pivot false -b /x t1', want: unclear(NONE, /create takes one container id/), why: 'runc: false becomes a positional' },
    { line: 'create t1 --nosuch', want: unclear(NONE, /^create: runc versions read these arguments differently/), why: 'new and old reorder fail differently' },
    { line: 'create -b -- t1', want: create(NONE, 'create', 't1', '--'), why: 'runc: bundle = --' },
    { line: 'create t1 -- -b /x', want: unclear(NONE, /^create: runc versions read these arguments differently/), why: 'runc: 3 args' },
    { line: 'create -- -b /x t1', want: unclear(NONE, /^create takes one container id, got \["-b","\/x","t1"\]$/) },
    { line: 'create -b /x -- t1', want: create(NONE, 'create', 't1', '/x') },
    { line: 'create --pid-file -b /x t1', want: unclear(NONE, /^create takes one container id, got \["\/x","t1"\]$/), why: 'pid-file=-b' },
    { line: 'create --preserve-fds 0x3 -b /x t1', want: unclear(NONE, /not a plain decimal count/) },
    { line: 'create --bu /x t1', want: unclear(NONE, /flag provided but not defined: -bu/), why: 'runc: no abbreviations' },
  ]),
);

const CREATE = COMMAND_FLAGS.get('create')!;
const RUN = COMMAND_FLAGS.get('run')!;

t.test('reorderArgsV1221 and reorderArgsV1222 against flags.md §4', (t) => {
  // [words, flags, old (urfave v1.22.1), new (v1.22.2+)]
  const cases: [string, typeof CREATE, string, string][] = [
    ['t1 --bundle /x', CREATE, '--bundle /x t1', '--bundle /x t1'],
    // The bool quirk: the id is taken as --no-pivot's value by both.
    ['--no-pivot t1 -b /x', CREATE, '--no-pivot t1 -b /x', '--no-pivot t1 -b /x'],
    ['-d t9 --keep', RUN, '-d t9 --keep', '-d t9 --keep'],
    ['-d t9', RUN, '-d t9', '-d t9'],
    ['--no-pivot=true -b /x t1', CREATE, '--no-pivot=true -b /x t1', '--no-pivot=true -b /x t1'],
    ['--no-pivot false -b /x t1', CREATE, '--no-pivot false -b /x t1', '--no-pivot false -b /x t1'],
    // Old: every dashed word is a flag; new: unknown flags stay in place.
    ['t1 --nosuch', CREATE, '--nosuch t1', 't1 --nosuch'],
    ['--bu /x t1', CREATE, '--bu /x t1', '--bu /x t1'],
    ['t1 --bu /x', CREATE, '--bu /x t1', 't1 --bu /x'],
    // "--" as a value: new takes it as the value, old stops there.
    ['-b -- t1', CREATE, '-b -- t1', '-b -- t1'],
    // "--" as a delimiter: old keeps it after t1, new moves it to the front.
    ['t1 -- -b /x', CREATE, 't1 -- -b /x', '-- t1 -b /x'],
    ['-b /x -- t1', CREATE, '-b /x -- t1', '-b /x -- t1'],
    ['a -b /x -- c -d', CREATE, '-b /x a -- c -d', '-b /x -- a c -d'],
    // A known flag where a value is expected is not that value (new).
    ['--pid-file -b /x t1', CREATE, '--pid-file -b /x t1', '--pid-file -b /x t1'],
    ['t1 --pid-file -- x', CREATE, '--pid-file t1 -- x', '--pid-file -- t1 x'],
    // A bare "-" is never a flag.
    ['- t1', CREATE, '- t1', '- t1'],
    ['-b - t1', CREATE, '-b - t1', '-b - t1'],
    // Single-dash and triple-dash spellings of a known flag (argIsFlag strips up to 3).
    ['t1 -bundle /x', CREATE, '-bundle /x t1', '-bundle /x t1'],
    ['t1 ---bundle /x', CREATE, '---bundle /x t1', '---bundle /x t1'],
    ['t1 --bundle=/x y', CREATE, '--bundle=/x t1 y', '--bundle=/x t1 y'],
    ['', CREATE, '', ''],
  ];
  for (const [line, flags, old, neu] of cases) {
    const input = Object.freeze(words(line));
    t.strictSame(reorderArgsV1221(input), words(old), `v1.22.1 ${JSON.stringify(line)}`);
    t.strictSame(reorderArgsV1222(input, flags), words(neu), `v1.22.2 ${JSON.stringify(line)}`);
  }
  t.end();
});

t.test('goFlagParse: Go flag semantics', (t) => {
  const p = goFlagParse(words('--no-pivot -b /x t1 --pid-file /p'), CREATE);
  t.strictSame([...p.values], [['bundle', '/x']]);
  t.strictSame([...p.booleans], [['no-pivot', true]]);
  t.strictSame(p.positionals, ['t1', '--pid-file', '/p'], 'parsing stops at the first positional');
  t.equal(p.error, undefined);

  const q = goFlagParse(words('--no-pivot=F --pid-file -- -- t1'), CREATE);
  t.strictSame([...q.booleans], [['no-pivot', false]]);
  t.strictSame([...q.values], [['pid-file', '--']], 'a value flag takes even --');
  t.strictSame(q.positionals, ['t1'], 'the next -- ends flags and is consumed');

  t.equal(goFlagParse(['-'], CREATE).positionals[0], '-', 'a bare - is a positional');
  t.equal(goFlagParse(['-=x'], CREATE).error, 'bad flag syntax: -=x');
  t.equal(goFlagParse(['--pid-file'], CREATE).error, 'flag needs an argument: -pid-file');
  t.end();
});

t.test('Globals.forState drops logging and keeps the rest', (t) => {
  const got = parseInvocation(words('--root /r --log /l --log-format json --debug --systemd-cgroup --rootless true exec -p /f id1'));
  t.strictSame(got.globals, globals(['--root', '/r', '--systemd-cgroup', '--rootless', 'true'], '/l', 'json'));

  const eq = parseInvocation(words('--root=/r --log=/l --log-format=json -debug=true --systemd-cgroup=true --rootless=auto exec -p /f id1'));
  t.strictSame(eq.globals, globals(['--root=/r', '--systemd-cgroup=true', '--rootless=auto'], '/l', 'json'));

  const dash = parseInvocation(words('-root /r -log /l -log-format text -rootless false -systemd-cgroup state id1'));
  t.strictSame(dash.globals, globals(['-root', '/r', '-rootless', 'false', '-systemd-cgroup'], '/l', 'text'));

  // crun: --log-level is logging too; --cgroup-manager is not.
  const crun = parseInvocation(words('--cgroup-manager=cgroupfs --log-level=debug --root /run/crun exec -p /f id1'));
  t.strictSame(crun.globals, globals(['--cgroup-manager=cgroupfs', '--root', '/run/crun']));
  t.end();
});

t.test('parseInvocation never throws and never mutates its input', (t) => {
  const vocabulary = [
    'create', 'run', 'restore', 'exec', 'checkpoint', 'state', 'strict-groups', 'id1', '/x', '-', '--', '---', '-b', '--bundle',
    '--bundle=', '-p', '--process=/f', '--preserve-fds', '0x3', '2', '--status-fd', '--no-pivot', '--help', '-h', '--root',
    '--log', '--log-format', '--nosuch', '-=', '--=x', '', '-f', '--config', '--debug',
    // Object.prototype's names: a command table on a plain object would find them.
    'toString', '__proto__', 'constructor',
  ];
  let calls = 0;
  const failures: string[] = [];
  const tryOne = (argv: string[]): void => {
    calls++;
    const frozen = Object.freeze([...argv]);
    try {
      const got = parseInvocation(frozen);
      if (!['passthrough', 'create', 'exec', 'shim', 'unclear'].includes(got.kind)) failures.push(`${JSON.stringify(argv)}: kind ${got.kind}`);
      // Whatever the shim acts on, the runtime must be able to act on it too.
      if (got.kind === 'create' && !['create', 'run', 'restore'].includes(got.command)) failures.push(`${JSON.stringify(argv)}: command ${got.command}`);
    } catch (err) {
      failures.push(`${JSON.stringify(argv)}: threw ${String(err)}`);
    }
  };
  // Every sequence of up to three words.
  tryOne([]);
  for (const a of vocabulary) {
    tryOne([a]);
    for (const b of vocabulary) {
      tryOne([a, b]);
      for (const c of vocabulary) tryOne([a, b, c]);
    }
  }
  // And longer ones from a fixed-seed generator.
  let seed = 12345;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    const argv: string[] = [];
    const length = 4 + next(9);
    for (let j = 0; j < length; j++) argv.push(vocabulary[next(vocabulary.length)]!);
    tryOne(argv);
  }
  t.equal(calls, 1 + vocabulary.length + vocabulary.length ** 2 + vocabulary.length ** 3 + 5000);
  t.strictSame(failures.slice(0, 10), [], 'no failures');
  t.end();
});

// Numbers runc reads with Go's ParseInt base 0, which crun reads in base 10.
t.test('descriptor numbers in other notations', (t) => {
  t.test('checkpoint --status-fd in Go integer syntax: runc reads fd 5', (t) => {
    check(t, words('checkpoint --lazy-pages --status-fd=0x5 id1'), pass(NONE, 'checkpoint', { preserveFds: 0, statusFd: 5 }));
    t.end();
  });
  t.test('--preserve-fds with a leading zero: octal 8 to runc, 10 to crun, so unclear', (t) => {
    check(t, words('create --preserve-fds 010 id1'), unclear(NONE, /preserve-fds/));
    t.end();
  });
  t.end();
});

t.test('global --help and --version print and act on nothing, whatever follows', (t) => {
  for (const line of ['--help create -b /x id1', '-h exec -p /f id1', '--version run id1', '-v create id1', '--help=true create id1']) {
    t.equal(parseInvocation(words(line)).kind, 'passthrough', line);
  }
  t.equal(parseInvocation(words('--help=false create -b /x id1')).kind, 'create', '--help=false is no help');
  t.end();
});
