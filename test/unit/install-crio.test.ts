import t, { type Test } from 'tap';
import { parse } from 'smol-toml';
import { CRIO_CONFIG, CRIO_DROP_IN, CRIO_DROP_IN_DIR, isOurDropIn, planCrioInstall, type CrioFile, type CrioPlan, type CrioRequest } from '../../src/install/crio';
import { canonicalToml, tableAt, type TomlTable } from '../../src/install/toml';

const SHIM = '/usr/local/bin/strict-groups-runtime';
const MARKER = '# Written by strict-groups install.sh and removed by "install.sh --uninstall".';

/** A PATH with these runtimes on it, recording the lookups. */
function pathWith(found: Record<string, string>): CrioRequest['onPath'] & { calls: string[] } {
  const calls: string[] = [];
  const onPath = (name: string): string | undefined => {
    calls.push(name);
    return found[name];
  };
  return Object.assign(onPath, { calls });
}

const request = (onPath: CrioRequest['onPath'] = pathWith({}), handler = 'strict-groups'): CrioRequest => ({ handler, runtimePath: SHIM, onPath });
const main = (text: string): CrioFile => ({ path: CRIO_CONFIG, text });
const dropIn = (name: string, text: string): CrioFile => ({ path: `${CRIO_DROP_IN_DIR}/${name}`, text });
/** Equal TOML data, whatever the key order; integers and floats told apart. */
const same = (t: Test, actual: unknown, expected: unknown, message = 'same TOML data'): void => {
  t.equal(canonicalToml(actual), canonicalToml(expected), message);
};
/** The handler table the drop-in defines, checking it defines nothing else. */
function handlerIn(t: Test, plan: CrioPlan, handler = 'strict-groups'): TomlTable | undefined {
  const parsed = parse(plan.dropIn, { integersAsBigInt: true });
  t.strictSame(Object.keys(parsed), ['crio']);
  t.strictSame(Object.keys(tableAt(parsed, ['crio'])!), ['runtime']);
  t.strictSame(Object.keys(tableAt(parsed, ['crio', 'runtime'])!), ['runtimes']);
  t.strictSame(Object.keys(tableAt(parsed, ['crio', 'runtime', 'runtimes'])!), [handler]);
  return tableAt(parsed, ['crio', 'runtime', 'runtimes', handler]);
}

/** /etc/crio/crio.conf as a distribution ships it, shortened. */
const MAIN_CONF = `[crio]
root = "/var/lib/containers/storage"
runroot = "/run/containers/storage"

[crio.api]
listen = "/var/run/crio/crio.sock"

[crio.runtime]
default_runtime = "runc"
conmon_cgroup = "pod"
cgroup_manager = "systemd"
pids_limit = 1024

[crio.runtime.runtimes.runc]
runtime_path = "/usr/bin/runc"
runtime_type = "oci"
runtime_root = "/run/runc"
monitor_path = "/usr/libexec/crio/conmon"
monitor_cgroup = "pod"
monitor_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
allowed_annotations = ["io.containers.trace-syscall"]
privileged_without_host_devices = false

[crio.runtime.runtimes.crun]
runtime_path = "/usr/bin/crun"
runtime_root = "/run/crun"
monitor_path = "/usr/libexec/crio/conmon"

[crio.image]
pause_image = "registry.k8s.io/pause:3.9"
`;

t.test('constants', async (t) => {
  t.equal(CRIO_CONFIG, '/etc/crio/crio.conf');
  t.equal(CRIO_DROP_IN_DIR, '/etc/crio/crio.conf.d');
  t.equal(CRIO_DROP_IN, '/etc/crio/crio.conf.d/99-strict-groups.conf');
});

t.test('planCrioInstall', async (t) => {
  t.test('copies the default runtime, with the shim as runtime_path', async (t) => {
    const onPath = pathWith({ runc: '/usr/sbin/runc' });
    const plan = planCrioInstall([main(MAIN_CONF)], request(onPath));
    t.equal(plan.copiedFrom, 'runc');
    // The configured runtime_path wins over PATH.
    t.equal(plan.runtimeBinary, '/usr/bin/runc');
    same(t, handlerIn(t, plan), {
      runtime_path: SHIM,
      runtime_type: 'oci',
      runtime_root: '/run/runc',
      monitor_path: '/usr/libexec/crio/conmon',
      monitor_cgroup: 'pod',
      monitor_env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      allowed_annotations: ['io.containers.trace-syscall'],
      privileged_without_host_devices: false,
    });
    t.equal(
      plan.dropIn,
      `${MARKER}
# Handler "strict-groups": CRI-O's "runc" runtime with strict-groups-runtime in front.

[crio.runtime.runtimes.strict-groups]
runtime_path = "${SHIM}"
runtime_type = "oci"
runtime_root = "/run/runc"
monitor_path = "/usr/libexec/crio/conmon"
monitor_cgroup = "pod"
monitor_env = [ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" ]
allowed_annotations = [ "io.containers.trace-syscall" ]
privileged_without_host_devices = false
`,
    );
    t.equal(isOurDropIn(plan.dropIn), true);
  });

  t.test('default_runtime from a later drop-in overrides the main file', async (t) => {
    const onPath = pathWith({ runc: '/usr/sbin/runc', crun: '/usr/sbin/crun' });
    const plan = planCrioInstall(
      [main(MAIN_CONF), dropIn('10-crun.conf', '[crio.runtime]\ndefault_runtime = "crun"\n\n[crio.runtime.runtimes.crun]\nmonitor_env = ["X=1"]\n')],
      request(onPath),
    );
    t.equal(plan.copiedFrom, 'crun');
    t.equal(plan.runtimeBinary, '/usr/bin/crun');
    // crun's table, merged key by key over both files.
    same(t, handlerIn(t, plan), {
      runtime_path: SHIM,
      runtime_type: 'oci',
      runtime_root: '/run/crun',
      monitor_path: '/usr/libexec/crio/conmon',
      monitor_env: ['X=1'],
    });
    t.match(plan.dropIn, /^# Written by .*\n# Handler "strict-groups": CRI-O's "crun" runtime with strict-groups-runtime in front\.\n\n\[/);
  });

  t.test('files are applied in the order given: the last word on a key wins', async (t) => {
    const files = [
      main('[crio.runtime]\ndefault_runtime = "a"\n[crio.runtime.runtimes.a]\nmonitor_path = "/one"\nruntime_path = "/bin/a"\n'),
      dropIn('10-x.conf', '[crio.runtime.runtimes.a]\nmonitor_path = "/two"\n'),
      dropIn('20-y.conf', '[crio.runtime]\ndefault_runtime = "b"\n'),
      dropIn('30-z.conf', '[crio.runtime]\ndefault_runtime = "a"\n[crio.runtime.runtimes.a]\nmonitor_cgroup = "system.slice"\n'),
    ];
    const plan = planCrioInstall(files, request());
    t.equal(plan.copiedFrom, 'a');
    t.equal(plan.runtimeBinary, '/bin/a');
    same(t, handlerIn(t, plan), { runtime_path: SHIM, runtime_type: 'oci', runtime_root: '/run/a', monitor_path: '/two', monitor_cgroup: 'system.slice' });
    // Files without a crio.runtime section change nothing.
    const withUnrelated = planCrioInstall([...files, dropIn('40-image.conf', '[crio.image]\npause_image = "x"\n'), dropIn('50-empty.conf', '')], request());
    t.equal(withUnrelated.dropIn, plan.dropIn);
  });

  t.test('runtime_root: copied, else /run/<name>', async (t) => {
    const noRoot = planCrioInstall([main('[crio.runtime]\ndefault_runtime = "custom"\n[crio.runtime.runtimes.custom]\nruntime_path = "/opt/custom"\n')], request());
    same(t, handlerIn(t, noRoot), { runtime_path: SHIM, runtime_type: 'oci', runtime_root: '/run/custom' });
    const emptyRoot = planCrioInstall([main('[crio.runtime.runtimes.runc]\nruntime_root = ""\n')], request());
    t.equal(handlerIn(t, emptyRoot)?.['runtime_root'], '/run/runc');
    const ownRoot = planCrioInstall([main('[crio.runtime.runtimes.runc]\nruntime_root = "/var/run/my-runc"\n')], request());
    t.equal(handlerIn(t, ownRoot)?.['runtime_root'], '/var/run/my-runc');
  });

  t.test('no default_runtime: runc if defined or on PATH, else crun', async (t) => {
    // runc defined in a file.
    const defined = planCrioInstall([main('[crio.runtime.runtimes.runc]\nruntime_path = "/opt/runc"\n[crio.runtime.runtimes.crun]\n')], request(pathWith({ crun: '/usr/bin/crun' })));
    t.equal(defined.copiedFrom, 'runc');
    t.equal(defined.runtimeBinary, '/opt/runc');

    // runc only on PATH.
    const onPath = pathWith({ runc: '/usr/sbin/runc', crun: '/usr/bin/crun' });
    const found = planCrioInstall([main('[crio]\nroot = "/x"\n')], request(onPath));
    t.equal(found.copiedFrom, 'runc');
    t.equal(found.runtimeBinary, '/usr/sbin/runc');
    t.strictSame(onPath.calls.filter((name) => name !== 'runc'), []);
    same(t, handlerIn(t, found), { runtime_path: SHIM, runtime_type: 'oci', runtime_root: '/run/runc' });

    // Neither: crun (CRI-O 1.31's own default).
    const crunPath = pathWith({ crun: '/usr/bin/crun' });
    const crun = planCrioInstall([], request(crunPath));
    t.equal(crun.copiedFrom, 'crun');
    t.equal(crun.runtimeBinary, '/usr/bin/crun');
    t.strictSame(crunPath.calls, ['runc', 'crun']);
    same(t, handlerIn(t, crun), { runtime_path: SHIM, runtime_type: 'oci', runtime_root: '/run/crun' });

    // Nothing anywhere: still crun, with no binary known.
    const nothing = planCrioInstall([main('')], request());
    t.equal(nothing.copiedFrom, 'crun');
    t.equal(nothing.runtimeBinary, undefined);
  });

  t.test('runtimeBinary: runtime_path if set, else PATH, else undefined', async (t) => {
    const conf = (path: string): CrioFile => main(`[crio.runtime]\ndefault_runtime = "crun"\n[crio.runtime.runtimes.crun]\n${path}`);
    t.equal(planCrioInstall([conf('runtime_path = "/opt/crun"\n')], request(pathWith({ crun: '/usr/bin/crun' }))).runtimeBinary, '/opt/crun');
    t.equal(planCrioInstall([conf('runtime_path = ""\n')], request(pathWith({ crun: '/usr/bin/crun' }))).runtimeBinary, '/usr/bin/crun');
    t.equal(planCrioInstall([conf('')], request(pathWith({ crun: '/usr/bin/crun' }))).runtimeBinary, '/usr/bin/crun');
    t.equal(planCrioInstall([conf('')], request(pathWith({ runc: '/usr/bin/runc' }))).runtimeBinary, undefined);
    // The shim's own path never leaks into the copy.
    t.equal(handlerIn(t, planCrioInstall([conf('runtime_path = "/opt/crun"\n')], request()))?.['runtime_path'], SHIM);
  });

  t.test('a handler with the name already defined is refused, naming the file', async (t) => {
    t.throws(() => planCrioInstall([main(MAIN_CONF), dropIn('50-mine.conf', '[crio.runtime.runtimes.strict-groups]\nruntime_path = "/x"\n')], request()), {
      name: 'ShimError',
      message: '/etc/crio/crio.conf.d/50-mine.conf already defines a runtime handler "strict-groups"; remove it or choose another --handler',
    });
    t.throws(() => planCrioInstall([main(`${MAIN_CONF}\n[crio.runtime.runtimes.sg]\n`)], request(undefined, 'sg')), {
      name: 'ShimError',
      message: '/etc/crio/crio.conf already defines a runtime handler "sg"; remove it or choose another --handler',
    });
    // Another --handler name is fine, and used for the table and the comment.
    const other = planCrioInstall([main(MAIN_CONF), dropIn('50-mine.conf', '[crio.runtime.runtimes.strict-groups]\nruntime_path = "/x"\n')], request(undefined, 'sg'));
    t.equal(handlerIn(t, other, 'sg')?.['runtime_path'], SHIM);
    t.match(other.dropIn, '\n# Handler "sg": CRI-O\'s "runc" runtime');
  });

  t.test('a default runtime that is not an OCI runtime is refused', async (t) => {
    const kata = main('[crio.runtime]\ndefault_runtime = "kata"\n[crio.runtime.runtimes.kata]\nruntime_path = "/usr/bin/containerd-shim-kata-v2"\nruntime_type = "vm"\n');
    t.throws(() => planCrioInstall([kata], request()), {
      name: 'ShimError',
      message: 'CRI-O\'s default runtime "kata" is runtime_type "vm", not "oci"; strict-groups wraps an OCI runtime',
    });
    // A drop-in making it oci again lifts that.
    const fixed = planCrioInstall([kata, dropIn('10-oci.conf', '[crio.runtime.runtimes.kata]\nruntime_type = "oci"\n')], request());
    t.equal(fixed.copiedFrom, 'kata');
    t.equal(fixed.runtimeBinary, '/usr/bin/containerd-shim-kata-v2');
  });

  t.test('an empty runtime_type is CRI-O\'s "oci"', async (t) => {
    const plan = planCrioInstall([main('[crio.runtime.runtimes.runc]\nruntime_path = "/usr/bin/runc"\nruntime_type = ""\n')], request());
    t.equal(plan.copiedFrom, 'runc');
    t.equal(handlerIn(t, plan)?.['runtime_type'], 'oci');
  });

  t.test('values keep their TOML types', async (t) => {
    const plan = planCrioInstall(
      [main('[crio.runtime.runtimes.runc]\ncontainer_min_memory = "12MiB"\nstream_websockets = 9007199254740993\nratio = 2.0\nmonitor_env = []\n')],
      request(),
    );
    const handler = handlerIn(t, plan);
    t.equal(handler?.['stream_websockets'], 9007199254740993n);
    t.equal(handler?.['ratio'], 2);
    t.match(plan.dropIn, '\nstream_websockets = 9007199254740993\n');
    t.match(plan.dropIn, '\nratio = 2.0\n');
    t.strictSame(handler?.['monitor_env'], []);
  });

  t.test('invalid TOML in any file is a ShimError naming it', async (t) => {
    t.throws(() => planCrioInstall([main(MAIN_CONF), dropIn('10-bad.conf', '[crio.runtime\n')], request()), {
      name: 'ShimError',
      message: /^\/etc\/crio\/crio\.conf\.d\/10-bad\.conf: not valid TOML: /,
    });
  });

  t.test('the same files give the same drop-in', async (t) => {
    const a = planCrioInstall([main(MAIN_CONF)], request());
    const b = planCrioInstall([main(MAIN_CONF)], request());
    t.equal(a.dropIn, b.dropIn);
  });
});

t.test('isOurDropIn', async (t) => {
  t.equal(isOurDropIn(`${MARKER}\n`), true);
  t.equal(isOurDropIn(`${MARKER}\n[crio.runtime]\n`), true);
  t.equal(isOurDropIn(MARKER), false);
  t.equal(isOurDropIn(` ${MARKER}\n`), false);
  t.equal(isOurDropIn(`[crio.runtime]\n${MARKER}\n`), false);
  t.equal(isOurDropIn(''), false);
  t.equal(isOurDropIn('# Written by someone else\n'), false);
});
