import { posix } from 'node:path';
import t, { type Test } from 'tap';
import { parse } from 'smol-toml';
import {
  handlerTable,
  planContainerdInstall,
  planContainerdUninstall,
  POD_ANNOTATIONS_GLOB,
  type ContainerdPlan,
  type FileEdit,
  type HandlerRequest,
} from '../../src/install/containerd';
import { effectiveConfigVersion, loadContainerdConfig, nameMatcher, type ConfigReader } from '../../src/install/containerd-files';
import { parseContainerdVersion } from '../../src/install/containerd-version';
import { canonicalToml, tableAt, withValueAt, type TomlTable } from '../../src/install/toml';

const MAIN = '/etc/containerd/config.toml';
const SHIM = '/usr/local/bin/strict-groups-runtime';
const CRI2 = 'io.containerd.grpc.v1.cri';
const CRI3 = 'io.containerd.cri.v1.runtime';
const RUNTIMES2 = ['plugins', CRI2, 'containerd', 'runtimes'];
const RUNTIMES3 = ['plugins', CRI3, 'containerd', 'runtimes'];
const BEGIN_LINE = '# BEGIN strict-groups: added by strict-groups install.sh, removed by "install.sh --uninstall"; edits inside are replaced\n';
const END_LINE = '# END strict-groups\n';

/** An in-memory file system: path -> text. */
function fsReader(files: Record<string, string>): ConfigReader & { files: Map<string, string>; reads: string[] } {
  const map = new Map(Object.entries(files));
  const reads: string[] = [];
  return {
    files: map,
    reads,
    read(path) {
      reads.push(path);
      return map.get(path) ?? null;
    },
    list(dir) {
      // Unsorted on purpose: the loader must sort glob matches itself.
      return [...map.keys()].filter((path) => posix.dirname(path) === dir).map((path) => posix.basename(path)).reverse();
    },
  };
}

/** The files after applying `edits`. */
function applied(files: Map<string, string>, edits: readonly FileEdit[]): Record<string, string> {
  const next = new Map(files);
  for (const edit of edits) {
    if (edit.after === null) next.delete(edit.path);
    else next.set(edit.path, edit.after);
  }
  return Object.fromEntries(next);
}

/** A request; `containerd` is the node's version as --containerd-version takes it, unknown when left out. */
const request = (defaults?: TomlTable, handler = 'strict-groups', containerd?: string): HandlerRequest => ({
  handler,
  binaryName: SHIM,
  defaults,
  containerd: containerd === undefined ? undefined : parseContainerdVersion(containerd)!,
  versionUnknown: 'not asked in this test',
});
const plan = (files: Record<string, string>, defaults?: TomlTable, handler?: string, containerd?: string): ContainerdPlan =>
  planContainerdInstall(loadContainerdConfig(fsReader(files), MAIN), request(defaults, handler, containerd));
const toml = (text: string): TomlTable => parse(text, { integersAsBigInt: true });
/** Equal TOML data, whatever the key order; integers and floats told apart. */
const same = (t: Test, actual: unknown, expected: unknown, message = 'same TOML data'): void => {
  t.equal(canonicalToml(actual), canonicalToml(expected), message);
};
/** The handler table `handler` (version 2) in the edited text of the plan's first edit. */
const handlerOf = (p: ContainerdPlan, handler = 'strict-groups', runtimesPath = RUNTIMES2): TomlTable | undefined =>
  tableAt(toml(p.edits[0]!.after!), [...runtimesPath, handler]);

/** A realistic containerd 1.x config as a kubeadm node has it. */
const REALISTIC = `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
imports = ["/etc/containerd/conf.d/*.toml"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.example.com/pause:3.9"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true
    [plugins."io.containerd.grpc.v1.cri".registry]
      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
        [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
          endpoint = ["https://mirror.example.com", "https://registry-1.docker.io"]
`;
const TRACING = `[plugins."io.containerd.tracing.processor.v1.otlp"]
  endpoint = "http://127.0.0.1:4318"
`;

/** What \`containerd config default\` prints on 1.x, shortened. */
const DEFAULTS_V2 = toml(`version = 2
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        runtime_engine = ""
        privileged_without_host_devices = false
        base_runtime_spec = ""
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = ""
          SystemdCgroup = false
          NoPivotRoot = false
`);
const DEFAULT_RUNC_V2 = {
  runtime_type: 'io.containerd.runc.v2',
  runtime_engine: '',
  privileged_without_host_devices: false,
  base_runtime_spec: '',
  options: { BinaryName: '', SystemdCgroup: false, NoPivotRoot: false },
};

/** What \`containerd config default\` prints on 2.x, shortened. */
const DEFAULTS_V3 = toml(`version = 3

[plugins."io.containerd.cri.v1.runtime"]
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes]
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          SystemdCgroup = false
`);

/** containerd 2.1's defaults for its runc handler, with a key the version 2 form lacks. */
const DEFAULTS_V3_RUNC_IN_V2 = toml(`version = 3

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    sandboxer = "podsandbox"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      SystemdCgroup = false
`);

t.test('nameMatcher: Go path.Match on one name', async (t) => {
  t.test('* matches any run of characters, leading dots included, never /', async (t) => {
    const m = nameMatcher('*.toml');
    t.equal(m('a.toml'), true);
    t.equal(m('.hidden.toml'), true);
    t.equal(m('.toml'), true);
    t.equal(m('a.toml.bak'), false);
    t.equal(m('atoml'), false);
    t.equal(m('toml'), false);
    t.equal(m('dir/a.toml'), false);
    t.equal(nameMatcher('*')('a/b'), false);
    t.equal(nameMatcher('*')(''), true);
    t.equal(nameMatcher('a*b*c')('aXXbYYc'), true);
    t.equal(nameMatcher('a*b*c')('aXXbYY'), false);
  });

  t.test('? matches exactly one character, never /', async (t) => {
    const m = nameMatcher('a?.toml');
    t.equal(m('ab.toml'), true);
    t.equal(m('a.toml'), false);
    t.equal(m('abc.toml'), false);
    t.equal(nameMatcher('a?b')('a/b'), false);
    // One character, not one UTF-16 unit.
    t.equal(nameMatcher('?')('é'), true);
    t.equal(nameMatcher('?')('😀'), true);
  });

  t.test('character classes: sets, ranges, negation', async (t) => {
    const digit = nameMatcher('[0-9]*.toml');
    t.equal(digit('10-a.toml'), true);
    t.equal(digit('5.toml'), true);
    t.equal(digit('a.toml'), false);
    const notA = nameMatcher('[^a]');
    t.equal(notA('b'), true);
    t.equal(notA('a'), false);
    t.equal(notA('bb'), false);
    t.equal(notA(''), false);
    const set = nameMatcher('[xyz].toml');
    t.equal(set('y.toml'), true);
    t.equal(set('w.toml'), false);
    t.equal(nameMatcher('[a-c]')('b'), true);
    t.equal(nameMatcher('[a-c]')('d'), false);
    // A ^ that is not first is a member.
    t.equal(nameMatcher('[a^]')('^'), true);
  });

  t.test('\\ escapes the next character', async (t) => {
    const star = nameMatcher('a\\*');
    t.equal(star('a*'), true);
    t.equal(star('ab'), false);
    t.equal(star('a'), false);
    t.equal(nameMatcher('\\?')('?'), true);
    t.equal(nameMatcher('\\?')('x'), false);
    t.equal(nameMatcher('\\[a]')('[a]'), true);
    t.equal(nameMatcher('\\[a]')('a'), false);
  });

  t.test('regular expression syntax is literal', async (t) => {
    t.equal(nameMatcher('a.b')('a.b'), true);
    t.equal(nameMatcher('a.b')('axb'), false);
    t.equal(nameMatcher('a+(b)|{c}$')('a+(b)|{c}$'), true);
    t.equal(nameMatcher('a+')('aa'), false);
    t.equal(nameMatcher('^a')('^a'), true);
  });

  t.test('an unclosed [ is a ShimError', async (t) => {
    t.throws(() => nameMatcher('[abc'), { name: 'ShimError', message: 'bad import pattern [abc' });
    t.throws(() => nameMatcher('*.[to'), { name: 'ShimError', message: 'bad import pattern *.[to' });
  });

  t.test('a - outside a class is literal', async (t) => {
    t.equal(nameMatcher('10-*.toml')('10-strict.toml'), true);
    t.equal(nameMatcher('10-*.toml')('10.toml'), false);
    t.equal(nameMatcher('*-runtime.toml')('strict-groups-runtime.toml'), true);
    t.equal(nameMatcher('a\\-b')('a-b'), true);
  });

  t.test('a \\ escape inside a class', async (t) => {
    t.equal(nameMatcher('[\\]]')(']'), true);
    t.equal(nameMatcher('[\\]]')('\\]'), false);
  });
});

t.test('loadContainerdConfig', async (t) => {
  t.test('main first, then imports breadth first, each path once', async (t) => {
    const reader = fsReader({
      [MAIN]: 'version = 2\nimports = ["/etc/containerd/a.toml", "conf.d/*.toml"]\n',
      '/etc/containerd/a.toml': 'imports = ["b.toml"]\n',
      '/etc/containerd/b.toml': 'x = 1\n',
      // A cycle back to main and a second path to a.toml.
      '/etc/containerd/conf.d/20.toml': `imports = ["${MAIN}", "../a.toml"]\n`,
      '/etc/containerd/conf.d/10.toml': 'imports = ["/etc/containerd/b.toml"]\n',
      '/etc/containerd/conf.d/notes.txt': 'not toml at all = = =',
      '/etc/containerd/conf.d/05.toml.bak': 'broken = = =',
    });
    const files = loadContainerdConfig(reader, MAIN);
    t.strictSame(files.map((file) => file.path), [
      MAIN,
      '/etc/containerd/a.toml',
      '/etc/containerd/conf.d/10.toml',
      '/etc/containerd/conf.d/20.toml',
      '/etc/containerd/b.toml',
    ]);
    // Each file read once.
    t.strictSame(reader.reads.toSorted(), files.map((file) => file.path).toSorted());
    t.equal(files[4]!.text, 'x = 1\n');
    same(t, files[4]!.table, { x: 1n });
    // Only main says which version it is.
    t.strictSame(files.map((file) => file.declaredVersion), [2, undefined, undefined, undefined, undefined]);
  });

  t.test('a cycle main -> a -> main terminates', async (t) => {
    const files = loadContainerdConfig(
      fsReader({ [MAIN]: 'version = 2\nimports = ["a.toml"]\n', '/etc/containerd/a.toml': `imports = ["${MAIN}", "a.toml", "./a.toml"]\n` }),
      MAIN,
    );
    t.strictSame(files.map((file) => file.path), [MAIN, '/etc/containerd/a.toml']);
  });

  t.test('relative imports resolve against the importing file\'s directory', async (t) => {
    const files = loadContainerdConfig(
      fsReader({
        [MAIN]: 'version = 2\nimports = ["sub/a.toml"]\n',
        '/etc/containerd/sub/a.toml': 'imports = ["b.toml", "../c.toml", "./d/*.toml"]\n',
        '/etc/containerd/sub/b.toml': '',
        '/etc/containerd/c.toml': '',
        '/etc/containerd/sub/d/e.toml': '',
      }),
      MAIN,
    );
    t.strictSame(files.map((file) => file.path), [
      MAIN,
      '/etc/containerd/sub/a.toml',
      '/etc/containerd/sub/b.toml',
      '/etc/containerd/c.toml',
      '/etc/containerd/sub/d/e.toml',
    ]);
  });

  t.test('glob imports are sorted; a glob with no match is fine', async (t) => {
    const files = loadContainerdConfig(
      fsReader({
        [MAIN]: 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml", "/etc/containerd/empty/*.toml", "/nowhere/*.toml"]\n',
        '/etc/containerd/conf.d/b.toml': '',
        '/etc/containerd/conf.d/a.toml': '',
        '/etc/containerd/conf.d/C.toml': '',
        '/etc/containerd/conf.d/.hidden.toml': '',
        '/etc/containerd/conf.d/a.toml.dpkg-old': 'garbage = = =',
        '/etc/containerd/empty/readme': '',
      }),
      MAIN,
    );
    // Byte order, as Go's sort.Strings: "." < "C" < "a".
    t.strictSame(files.map((file) => file.path), [
      MAIN,
      '/etc/containerd/conf.d/.hidden.toml',
      '/etc/containerd/conf.d/C.toml',
      '/etc/containerd/conf.d/a.toml',
      '/etc/containerd/conf.d/b.toml',
    ]);
  });

  t.test('only * makes a glob, as in containerd; ? alone names a file', async (t) => {
    t.throws(
      () => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2\nimports = ["a?.toml"]\n', '/etc/containerd/ab.toml': '' }), MAIN),
      { name: 'ShimError', message: `${MAIN} imports /etc/containerd/a?.toml, which does not exist; containerd would not start` },
    );
  });

  t.test('wildcards in a directory name are refused', async (t) => {
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2\nimports = ["/etc/*/x.toml"]\n' }), MAIN), {
      name: 'ShimError',
      message: `${MAIN}: import /etc/*/x.toml: wildcards in directory names are not supported`,
    });
  });

  t.test('a missing named import throws naming both files', async (t) => {
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2\nimports = ["missing.toml"]\n' }), MAIN), {
      name: 'ShimError',
      message: `${MAIN} imports /etc/containerd/missing.toml, which does not exist; containerd would not start`,
    });
    t.throws(
      () => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2\nimports = ["a.toml"]\n', '/etc/containerd/a.toml': 'imports = ["/opt/gone.toml"]\n' }), MAIN),
      { name: 'ShimError', message: '/etc/containerd/a.toml imports /opt/gone.toml, which does not exist; containerd would not start' },
    );
  });

  t.test('imports must be a list of strings', async (t) => {
    for (const imports of ['"a.toml"', '[1]', '["a.toml", 2]', '{ a = "b" }']) {
      t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: `version = 2\nimports = ${imports}\n` }), MAIN), {
        name: 'ShimError',
        message: `${MAIN}: imports must be a list of paths`,
      }, imports);
    }
  });

  t.test('version 1 and a missing version are refused, naming version 2', async (t) => {
    const message = `${MAIN}: config version 1 is not supported; convert it to version 2 (containerd 1.x) first`;
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 1\n' }), MAIN), { name: 'ShimError', message });
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: '[plugins.cri]\nsystemd_cgroup = true\n' }), MAIN), { name: 'ShimError', message });
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: '' }), MAIN), { name: 'ShimError', message });
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 4\n' }), MAIN), { name: 'ShimError', message: `${MAIN}: unknown config version 4` });
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = "2"\n' }), MAIN), { name: 'ShimError', message: `${MAIN}: unknown config version 2` });
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2.0\n' }), MAIN), { name: 'ShimError', message: /unknown config version/ });
    // An import of version 1.
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2\nimports = ["a.toml"]\n', '/etc/containerd/a.toml': 'version = 1\n' }), MAIN), {
      name: 'ShimError',
      message: '/etc/containerd/a.toml: config version 1 is not supported; convert it to version 2 (containerd 1.x) first',
    });
  });

  t.test('invalid TOML names the file', async (t) => {
    t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2\nimports = ["a.toml"]\n', '/etc/containerd/a.toml': 'x = = 1\n' }), MAIN), {
      name: 'ShimError',
      message: /^\/etc\/containerd\/a\.toml: not valid TOML: /,
    });
  });

  t.test('an absent main config: text null, no version, no imports', async (t) => {
    const files = loadContainerdConfig(fsReader({ '/etc/containerd/conf.d/a.toml': 'x = 1\n' }), MAIN);
    t.equal(files.length, 1);
    t.equal(files[0]!.path, MAIN);
    t.equal(files[0]!.text, null);
    t.equal(files[0]!.declaredVersion, undefined);
    t.equal(effectiveConfigVersion(files), undefined);
    same(t, files[0]!.table, {});
  });

  t.test('the last file that names a version decides it for all (containerd merges `version` like any value)', async (t) => {
    const files = loadContainerdConfig(
      fsReader({ [MAIN]: 'version = 2\nimports = ["a.toml", "b.toml"]\n', '/etc/containerd/a.toml': 'version = 3\n', '/etc/containerd/b.toml': 'x = 1\n' }),
      MAIN,
    );
    t.strictSame(files.map((file) => [file.path, file.declaredVersion]), [[MAIN, 2], ['/etc/containerd/a.toml', 3], ['/etc/containerd/b.toml', undefined]]);
    t.equal(effectiveConfigVersion(files), 3, 'a version 3 drop-in makes containerd 2.x read the version 2 main file as version 3 too');
    const v3 = loadContainerdConfig(fsReader({ [MAIN]: 'version = 3\nimports = ["b.toml"]\n', '/etc/containerd/b.toml': '' }), MAIN);
    t.strictSame(v3.map((file) => file.declaredVersion), [3, undefined]);
    t.equal(effectiveConfigVersion(v3), 3);
    const back = loadContainerdConfig(fsReader({ [MAIN]: 'version = 3\nimports = ["b.toml"]\n', '/etc/containerd/b.toml': 'version = 2\n' }), MAIN);
    t.equal(effectiveConfigVersion(back), 2, 'and a version 2 drop-in makes 2.x migrate everything');
  });

  t.test('a glob whose name has a dash', async (t) => {
    const files = loadContainerdConfig(
      fsReader({ [MAIN]: 'version = 2\nimports = ["/etc/containerd/conf.d/10-*.toml"]\n', '/etc/containerd/conf.d/10-a.toml': '', '/etc/containerd/conf.d/20-b.toml': '' }),
      MAIN,
    );
    t.strictSame(files.map((file) => file.path), [MAIN, '/etc/containerd/conf.d/10-a.toml']);
  });
});

t.test('planContainerdInstall', async (t) => {
  t.test('(a) a realistic version 2 config: one edit, to the main file, old data plus the handler', async (t) => {
    const files = { [MAIN]: REALISTIC, '/etc/containerd/conf.d/tracing.toml': TRACING };
    const result = plan(files);
    t.equal(result.version, 2);
    t.equal(result.target, MAIN);
    t.equal(result.copiedFrom, 'runc');
    t.equal(result.wroteDefaultHandler, false);
    t.equal(result.runtimeBinary, '');
    t.equal(result.edits.length, 1);
    const edit = result.edits[0]!;
    t.equal(edit.path, MAIN);
    t.equal(edit.before, REALISTIC);
    t.equal(
      edit.after,
      `${REALISTIC}\n${BEGIN_LINE}[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.strict-groups]
runtime_type = "io.containerd.runc.v2"
pod_annotations = [ "strict-groups.io/*" ]

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.strict-groups.options]
SystemdCgroup = true
BinaryName = "${SHIM}"
${END_LINE}`,
    );
    const handler = { runtime_type: 'io.containerd.runc.v2', pod_annotations: ['strict-groups.io/*'], options: { SystemdCgroup: true, BinaryName: SHIM } };
    const parsed = parse(edit.after!, { integersAsBigInt: true });
    same(t, parsed, withValueAt(toml(REALISTIC), [...RUNTIMES2, 'strict-groups'], handler));
    // Spot checks that the rest is still there.
    same(t, tableAt(parsed, ['plugins', CRI2, 'registry', 'mirrors', 'docker.io'])?.['endpoint'], ['https://mirror.example.com', 'https://registry-1.docker.io']);
    t.equal(tableAt(parsed, ['plugins', CRI2])?.['sandbox_image'], 'registry.example.com/pause:3.9');
    same(t, toml(edit.after!)['imports'], ['/etc/containerd/conf.d/*.toml']);

    t.test('re-planning over the edited files changes nothing', async (t) => {
      const again = plan(applied(new Map(Object.entries(files)), result.edits));
      t.strictSame(again.edits, []);
      t.equal(again.copiedFrom, 'runc');
      t.equal(again.target, MAIN);
      t.equal(again.wroteDefaultHandler, false);
    });

    t.test('uninstall gives back the original bytes', async (t) => {
      const installed = applied(new Map(Object.entries(files)), result.edits);
      const edits = planContainerdUninstall(loadContainerdConfig(fsReader(installed), MAIN));
      t.strictSame(edits, [{ path: MAIN, before: edit.after, after: REALISTIC }]);
    });

    t.test('a changed runc handler is picked up by the next run', async (t) => {
      const installed = applied(new Map(Object.entries(files)), result.edits);
      const changed = installed[MAIN]!.replace('SystemdCgroup = true\n', 'SystemdCgroup = false\n');
      t.not(changed, installed[MAIN]);
      const again = plan({ ...installed, [MAIN]: changed });
      t.equal(again.edits.length, 1);
      same(t, handlerOf(again), { ...handler, options: { SystemdCgroup: false, BinaryName: SHIM } });
      // The block is replaced, not added to.
      t.equal(again.edits[0]!.after!.split(BEGIN_LINE).length, 2);
      t.ok(again.edits[0]!.after!.startsWith(REALISTIC.replace('SystemdCgroup = true\n', 'SystemdCgroup = false\n')));
    });
  });

  t.test('(b) an import that defines the CRI plugin section gets the handler, not main', async (t) => {
    const importPath = '/etc/containerd/conf.d/cri.toml';
    const criImport = `[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.example.com/pause:3.10"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
  BinaryName = "/opt/runc/bin/runc"
`;
    const files = { [MAIN]: REALISTIC, [importPath]: criImport, '/etc/containerd/conf.d/tracing.toml': TRACING };
    const result = plan(files);
    t.equal(result.target, importPath);
    t.equal(result.version, 2);
    t.equal(result.runtimeBinary, '/opt/runc/bin/runc');
    t.equal(result.edits.length, 1);
    t.equal(result.edits[0]!.path, importPath);
    t.equal(result.edits[0]!.before, criImport);
    same(
      t,
      toml(result.edits[0]!.after!),
      withValueAt(toml(criImport), [...RUNTIMES2, 'strict-groups'], {
        runtime_type: 'io.containerd.runc.v2',
        pod_annotations: [POD_ANNOTATIONS_GLOB],
        options: { SystemdCgroup: true, BinaryName: SHIM },
      }),
    );

    t.test('a block an earlier run left in main moves to the import', async (t) => {
      const mainWithBlock = plan({ [MAIN]: REALISTIC }).edits[0]!.after!;
      const moved = plan({ ...files, [MAIN]: mainWithBlock });
      t.equal(moved.target, importPath);
      t.strictSame(moved.edits.map((edit) => [edit.path, edit.before === null, edit.after === null]), [
        [MAIN, false, false],
        [importPath, false, false],
      ]);
      t.equal(moved.edits[0]!.after, REALISTIC);
      t.equal(moved.edits[1]!.after, result.edits[0]!.after);
    });

    t.test('the version unknown: the same edits under both rules, so it goes ahead', async (t) => {
      t.equal(result.rule, undefined);
      t.match(result.ruleFrom, /unknown \(not asked in this test\), and the result is the same for every version/);
      const old = plan(files, undefined, undefined, '1.7.24');
      const merging = plan(files, undefined, undefined, '2.1.9');
      t.equal(old.rule, 'replace');
      t.equal(merging.rule, 'merge');
      t.strictSame(old.edits, result.edits);
      t.strictSame(merging.edits, result.edits);
    });

    t.test('runc split across files: before 2.0 the last section replaces, from 2.0 they merge', async (t) => {
      const later = '/etc/containerd/conf.d/zz.toml';
      const laterText = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n`;
      const split = { ...files, [later]: laterText };
      const old = plan(split, undefined, undefined, '1.7.24');
      t.equal(old.target, later, '1.x: the last file defining the section is the section');
      t.strictSame(old.edits.map((edit) => edit.path), [later]);
      t.equal(old.runtimeBinary, '', 'its runc handler has no BinaryName');
      same(t, handlerOf(old), { runtime_type: 'io.containerd.runc.v2', pod_annotations: [POD_ANNOTATIONS_GLOB], options: { BinaryName: SHIM } });

      const merging = plan(split, undefined, undefined, '2.0.0');
      t.equal(merging.target, later, '2.0+: the last file holding the runc handler');
      t.equal(merging.runtimeBinary, '/opt/runc/bin/runc', 'the runc handler merged from every file');
      same(t, handlerOf(merging), { runtime_type: 'io.containerd.runc.v2', pod_annotations: [POD_ANNOTATIONS_GLOB], options: { SystemdCgroup: true, BinaryName: SHIM } });

      t.throws(() => plan(split), {
        name: 'ShimError',
        message:
          `containerd's version is unknown (not asked in this test), and this configuration depends on it: ` +
          `containerd before 2.0 (imports replace a plugin's whole section) and containerd 2.0+ (imports merge key by key) read the "runc" handler differently (options.SystemdCgroup). ` +
          `Pass --containerd-version with the version "containerd --version" prints on the node (e.g. --containerd-version 1.7.24 or 2.1.9)`,
      });
    });
  });

  t.test('(c) a CRI section without runtimes: the defaults\' runc handler is written out too', async (t) => {
    const text = `version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.example.com/pause:3.9"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
`;
    const result = plan({ [MAIN]: text }, DEFAULTS_V2);
    t.equal(result.wroteDefaultHandler, true);
    t.equal(result.copiedFrom, 'runc');
    t.equal(result.runtimeBinary, '');
    t.equal(result.target, MAIN);
    t.equal(result.edits.length, 1);
    let expected = withValueAt(toml(text), [...RUNTIMES2, 'runc'], DEFAULT_RUNC_V2);
    expected = withValueAt(expected, [...RUNTIMES2, 'strict-groups'], {
      ...DEFAULT_RUNC_V2,
      pod_annotations: [POD_ANNOTATIONS_GLOB],
      options: { ...DEFAULT_RUNC_V2.options, BinaryName: SHIM },
    });
    same(t, toml(result.edits[0]!.after!), expected);
    // The operator's part is untouched.
    t.ok(result.edits[0]!.after!.startsWith(`${text}\n${BEGIN_LINE}`));

    t.test('idempotent with the same defaults', async (t) => {
      t.strictSame(plan({ [MAIN]: result.edits[0]!.after! }, DEFAULTS_V2).edits, []);
    });

    t.test('idempotent without them, the version known: the runc handler the block wrote out stands in', async (t) => {
      const again = plan({ [MAIN]: result.edits[0]!.after! }, undefined, undefined, '1.6.20');
      t.strictSame(again.edits, []);
      t.equal(again.wroteDefaultHandler, true);
    });

    t.test('containerd 2.x reads the same file: its built-in runc handler stays, so only the handler is added', async (t) => {
      const merging = plan({ [MAIN]: text }, DEFAULTS_V3_RUNC_IN_V2);
      t.equal(merging.rule, 'merge');
      t.equal(merging.wroteDefaultHandler, false);
      t.equal(merging.plugin, CRI2, 'the version 2 section, which containerd 2.x migrates');
      same(t, toml(merging.edits[0]!.after!), withValueAt(toml(text), [...RUNTIMES2, 'strict-groups'], {
        runtime_type: 'io.containerd.runc.v2',
        sandboxer: 'podsandbox',
        pod_annotations: [POD_ANNOTATIONS_GLOB],
        options: { SystemdCgroup: false, BinaryName: SHIM },
      }));
    });

    t.test('a main file with no CRI section at all', async (t) => {
      const bare = 'version = 2\nroot = "/var/lib/containerd"\n';
      const r = plan({ [MAIN]: bare }, DEFAULTS_V2);
      t.equal(r.wroteDefaultHandler, true);
      same(t, toml(r.edits[0]!.after!)['root'], '/var/lib/containerd');
      same(t, Object.keys(toml(r.edits[0]!.after!)['plugins'] as TomlTable), [CRI2]);
    });

    t.test('without defaults: a ShimError pointing to --containerd-defaults', async (t) => {
      t.throws(() => plan({ [MAIN]: text }), {
        name: 'ShimError',
        message: `${MAIN} has no runtime handlers and containerd's defaults are unknown (could not run "containerd config default"); pass --containerd-defaults FILE`,
      });
    });
  });

  t.test('(d) no main config: the file is created with the block and version, and uninstall removes it', async (t) => {
    const result = plan({}, DEFAULTS_V2);
    t.equal(result.version, 2);
    t.equal(result.target, MAIN);
    t.equal(result.wroteDefaultHandler, true);
    t.equal(result.edits.length, 1);
    const edit = result.edits[0]!;
    t.equal(edit.path, MAIN);
    t.equal(edit.before, null);
    t.ok(edit.after!.startsWith(`${BEGIN_LINE}version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n`), edit.after!);
    t.ok(edit.after!.endsWith(`\n${END_LINE}`));
    let expected: TomlTable = { version: 2n };
    expected = withValueAt(expected, [...RUNTIMES2, 'runc'], DEFAULT_RUNC_V2);
    expected = withValueAt(expected, [...RUNTIMES2, 'strict-groups'], {
      ...DEFAULT_RUNC_V2,
      pod_annotations: [POD_ANNOTATIONS_GLOB],
      options: { ...DEFAULT_RUNC_V2.options, BinaryName: SHIM },
    });
    same(t, toml(edit.after!), expected);

    const installed = { [MAIN]: edit.after! };
    t.strictSame(planContainerdUninstall(loadContainerdConfig(fsReader(installed), MAIN)), [{ path: MAIN, before: edit.after, after: null }]);
    t.strictSame(plan(installed, DEFAULTS_V2).edits, [], 'idempotent');
    t.strictSame(plan(installed, undefined, undefined, '1.6.20').edits, [], 'idempotent without the defaults too, the version known');

    t.test('containerd 2.x defaults: version 3 and its plugin, the built-in runc left to containerd', async (t) => {
      const v3 = plan({}, DEFAULTS_V3);
      t.equal(v3.version, 3);
      t.equal(v3.wroteDefaultHandler, false);
      t.ok(v3.edits[0]!.after!.startsWith(`${BEGIN_LINE}version = 3\n\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.strict-groups]\n`));
      same(t, toml(v3.edits[0]!.after!)['version'], 3n);
      same(t, (toml(v3.edits[0]!.after!)['plugins'] as TomlTable)[CRI3], {
        containerd: {
          runtimes: {
            'strict-groups': { runtime_type: 'io.containerd.runc.v2', pod_annotations: [POD_ANNOTATIONS_GLOB], options: { SystemdCgroup: false, BinaryName: SHIM } },
          },
        },
      });
      t.strictSame(plan({ [MAIN]: v3.edits[0]!.after! }, DEFAULTS_V3).edits, [], 'idempotent');
      t.strictSame(planContainerdUninstall(loadContainerdConfig(fsReader({ [MAIN]: v3.edits[0]!.after! }), MAIN)), [{ path: MAIN, before: v3.edits[0]!.after, after: null }]);
    });

    t.test('no main config and no defaults: a ShimError', async (t) => {
      t.throws(() => plan({}), {
        name: 'ShimError',
        message: `${MAIN} does not exist and containerd's defaults are unknown (could not run "containerd config default")`,
      });
    });
  });

  t.test('(e) the handler copied: the default handler if it is runc, else runc', async (t) => {
    const config = (defaultName: string, runtimes: string): string => `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "${defaultName}"
${runtimes}`;
    const custom = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.custom]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.custom.options]
    BinaryName = "/opt/custom/runc"
    SystemdCgroup = true
`;
    const runc = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    BinaryName = "/usr/sbin/runc"
`;
    const kata = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
  runtime_type = "io.containerd.kata.v2"
`;
    const fromCustom = plan({ [MAIN]: config('custom', custom + runc) });
    t.equal(fromCustom.copiedFrom, 'custom');
    t.equal(fromCustom.runtimeBinary, '/opt/custom/runc');
    same(t, toml(fromCustom.edits[0]!.after!), withValueAt(toml(config('custom', custom + runc)), [...RUNTIMES2, 'strict-groups'], {
      runtime_type: 'io.containerd.runc.v2',
      pod_annotations: [POD_ANNOTATIONS_GLOB],
      options: { BinaryName: SHIM, SystemdCgroup: true },
    }));

    const fromRunc = plan({ [MAIN]: config('kata', kata + runc) });
    t.equal(fromRunc.copiedFrom, 'runc');
    t.equal(fromRunc.runtimeBinary, '/usr/sbin/runc');

    // A default that names no handler at all.
    t.equal(plan({ [MAIN]: config('gone', runc) }).copiedFrom, 'runc');

    t.throws(() => plan({ [MAIN]: config('kata', kata) }), {
      name: 'ShimError',
      message: `${MAIN}: no runc handler to copy settings from (neither the default handler "kata" nor "runc" has runtime_type "io.containerd.runc.v2")`,
    });
    // A handler named runc that is not runc.v2 is no use either.
    t.throws(() => plan({ [MAIN]: config('runc', '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v1"\n') }), {
      name: 'ShimError',
      message: /no runc handler to copy settings from \(neither the default handler "runc" nor "runc"/,
    });
  });

  t.test('(f) a handler with the name already defined outside the block is refused', async (t) => {
    const text = `${REALISTIC}[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.strict-groups]
  runtime_type = "io.containerd.runc.v2"
`;
    t.throws(() => plan({ [MAIN]: text }), {
      name: 'ShimError',
      message: `${MAIN} already defines a runtime handler "strict-groups" outside the block install.sh manages; remove it or choose another --handler`,
    });
    // In an import.
    const importPath = '/etc/containerd/conf.d/mine.toml';
    t.throws(() => plan({ [MAIN]: REALISTIC, [importPath]: '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.strict-groups]\nruntime_type = "x"\n' }), {
      name: 'ShimError',
      message: new RegExp(`^${importPath.replaceAll('.', '\\.')} already defines a runtime handler "strict-groups"`),
    });
    // Another handler name is fine, and named after --handler.
    const other = plan({ [MAIN]: text }, undefined, 'sg-strict');
    same(t, toml(other.edits[0]!.after!), withValueAt(toml(text), [...RUNTIMES2, 'sg-strict'], {
      runtime_type: 'io.containerd.runc.v2',
      pod_annotations: [POD_ANNOTATIONS_GLOB],
      options: { SystemdCgroup: true, BinaryName: SHIM },
    }));
  });

  t.test('(g) an inline runtimes table cannot take a new sub-table: a ShimError', async (t) => {
    const text = `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  runtimes = { runc = { runtime_type = "io.containerd.runc.v2", options = { SystemdCgroup = true } } }
`;
    t.throws(() => plan({ [MAIN]: text }), {
      name: 'ShimError',
      message: /^\/etc\/containerd\/config\.toml with the handler added \(edit it by hand; install\.sh cannot\): not valid TOML: /,
    });

    t.test('dotted keys are not inline tables: that works', async (t) => {
      const dotted = `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  runtimes.runc.runtime_type = "io.containerd.runc.v2"
  runtimes.runc.options.SystemdCgroup = true
`;
      const result = plan({ [MAIN]: dotted });
      same(t, toml(result.edits[0]!.after!), withValueAt(toml(dotted), [...RUNTIMES2, 'strict-groups'], {
        runtime_type: 'io.containerd.runc.v2',
        pod_annotations: [POD_ANNOTATIONS_GLOB],
        options: { SystemdCgroup: true, BinaryName: SHIM },
      }));
    });

    t.test('an inline runc table inside a real runtimes table works', async (t) => {
      const inlineRunc = `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
  runc = { runtime_type = "io.containerd.runc.v2", options = { SystemdCgroup = true } }
`;
      const result = plan({ [MAIN]: inlineRunc });
      t.equal(result.copiedFrom, 'runc');
      same(t, toml(result.edits[0]!.after!), withValueAt(toml(inlineRunc), [...RUNTIMES2, 'strict-groups'], {
        runtime_type: 'io.containerd.runc.v2',
        pod_annotations: [POD_ANNOTATIONS_GLOB],
        options: { SystemdCgroup: true, BinaryName: SHIM },
      }));
    });
  });

  t.test('(h) a version 3 config (containerd 2.x): the handler goes under io.containerd.cri.v1.runtime', async (t) => {
    const text = `version = 3

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "registry.example.com/pause:3.10"

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      SystemdCgroup = true
`;
    const result = plan({ [MAIN]: text });
    t.equal(result.version, 3);
    t.equal(result.target, MAIN);
    t.equal(result.copiedFrom, 'runc');
    t.equal(result.edits.length, 1);
    t.match(result.edits[0]!.after!, `\n${BEGIN_LINE}[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.strict-groups]\n`);
    same(t, toml(result.edits[0]!.after!), withValueAt(toml(text), [...RUNTIMES3, 'strict-groups'], {
      runtime_type: 'io.containerd.runc.v2',
      pod_annotations: [POD_ANNOTATIONS_GLOB],
      options: { SystemdCgroup: true, BinaryName: SHIM },
    }));
    t.strictSame(plan({ [MAIN]: result.edits[0]!.after! }).edits, []);

    t.test('a version 3 config without runtimes: the handler copies the built-in runc, which containerd 2.x keeps', async (t) => {
      const bare = 'version = 3\n[plugins."io.containerd.cri.v1.runtime"]\n  enable_selinux = false\n';
      const r = plan({ [MAIN]: bare }, DEFAULTS_V3);
      t.equal(r.wroteDefaultHandler, false);
      same(t, toml(r.edits[0]!.after!), withValueAt(toml(bare), [...RUNTIMES3, 'strict-groups'], {
        runtime_type: 'io.containerd.runc.v2',
        pod_annotations: [POD_ANNOTATIONS_GLOB],
        options: { SystemdCgroup: false, BinaryName: SHIM },
      }));
      t.throws(() => plan({ [MAIN]: bare }), {
        name: 'ShimError',
        message: `${MAIN} has no runtime handlers and containerd's defaults are unknown (could not run "containerd config default"); pass --containerd-defaults FILE`,
      });
    });

    t.test('a leftover version 2 plugin section in a version 3 file is not the target', async (t) => {
      const mixed = `${text}[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.strict-groups]\n  runtime_type = "old"\n`;
      // Not in force under version 3, so not "already defined" either.
      const r = plan({ [MAIN]: mixed });
      t.equal(r.version, 3);
      same(t, toml(r.edits[0]!.after!), withValueAt(toml(mixed), [...RUNTIMES3, 'strict-groups'], {
        runtime_type: 'io.containerd.runc.v2',
        pod_annotations: [POD_ANNOTATIONS_GLOB],
        options: { SystemdCgroup: true, BinaryName: SHIM },
      }));
    });
  });

  t.test('(i) pod_annotations are kept and the glob added once; runtimeBinary is runc\'s BinaryName', async (t) => {
    const withAnnotations = (annotations: string, binary: string): string => `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ${annotations}
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
${binary}`;
    const added = plan({ [MAIN]: withAnnotations('["io.kubernetes.cri-o.Devices", "example.com/*"]', '    BinaryName = "/usr/sbin/runc"\n') });
    t.equal(added.runtimeBinary, '/usr/sbin/runc');
    t.strictSame(handlerOf(added)?.['pod_annotations'], ['io.kubernetes.cri-o.Devices', 'example.com/*', 'strict-groups.io/*']);
    same(t, handlerOf(added)?.['options'], { SystemdCgroup: true, BinaryName: SHIM });

    const already = plan({ [MAIN]: withAnnotations('["strict-groups.io/*", "x/y"]', '') });
    t.strictSame(handlerOf(already)?.['pod_annotations'], ['strict-groups.io/*', 'x/y']);
    t.equal(already.runtimeBinary, '');
    // The source table is not changed by the copy.
    const source: TomlTable = { runtime_type: 'io.containerd.runc.v2', pod_annotations: ['a'], options: { BinaryName: '/usr/bin/runc' } };
    const copy = handlerTable(source, SHIM);
    same(t, source, { runtime_type: 'io.containerd.runc.v2', pod_annotations: ['a'], options: { BinaryName: '/usr/bin/runc' } });
    same(t, copy, { runtime_type: 'io.containerd.runc.v2', pod_annotations: ['a', POD_ANNOTATIONS_GLOB], options: { BinaryName: SHIM } });
    // runtime_type is always runc.v2; a non-list pod_annotations is replaced.
    same(t, handlerTable({ runtime_type: 'x', pod_annotations: 'bad', runtime_path: '/p' }, SHIM), {
      runtime_type: 'io.containerd.runc.v2',
      pod_annotations: [POD_ANNOTATIONS_GLOB],
      runtime_path: '/p',
      options: { BinaryName: SHIM },
    });
  });

  t.test('(j) integers stay exact and floats stay floats', async (t) => {
    const text = `version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    IoUid = 9007199254740993
    IoGid = 0
    Ratio = 0.5
    Whole = 2.0
    Huge = 1e300
`;
    const result = plan({ [MAIN]: text });
    const after = result.edits[0]!.after!;
    const block = after.slice(after.indexOf(BEGIN_LINE));
    t.match(block, '\nIoUid = 9007199254740993\n');
    t.match(block, '\nIoGid = 0\n');
    t.match(block, '\nRatio = 0.5\n');
    t.match(block, '\nWhole = 2.0\n');
    const options = tableAt(toml(after), [...RUNTIMES2, 'strict-groups', 'options'])!;
    t.equal(options['IoUid'], 9007199254740993n);
    t.equal(options['IoGid'], 0n);
    t.equal(options['Ratio'], 0.5);
    t.equal(options['Whole'], 2);
    t.equal(typeof options['Whole'], 'number');
    t.equal(options['Huge'], 1e300);
  });

  t.test('a damaged block stops the plan, naming the file', async (t) => {
    t.throws(() => plan({ [MAIN]: `${REALISTIC}\n${BEGIN_LINE}x = 1\n` }), {
      name: 'ShimError',
      message: `${MAIN}: a "# BEGIN strict-groups" line has no "# END strict-groups" line after it; mend the file by hand`,
    });
  });
});

t.test('planContainerdUninstall', async (t) => {
  t.test('removes only the block, giving back the original bytes', async (t) => {
    const importPath = '/etc/containerd/conf.d/tracing.toml';
    const installed = applied(new Map([[MAIN, REALISTIC], [importPath, TRACING]]), plan({ [MAIN]: REALISTIC, [importPath]: TRACING }).edits);
    const edits = planContainerdUninstall(loadContainerdConfig(fsReader(installed), MAIN));
    t.strictSame(edits, [{ path: MAIN, before: installed[MAIN], after: REALISTIC }]);
  });

  t.test('operator text after the block stays', async (t) => {
    const withBlock = plan({ [MAIN]: REALISTIC }).edits[0]!.after!;
    const edits = planContainerdUninstall(loadContainerdConfig(fsReader({ [MAIN]: `${withBlock}[debug]\n  level = "info"\n` }), MAIN));
    t.strictSame(edits, [{ path: MAIN, before: `${withBlock}[debug]\n  level = "info"\n`, after: `${REALISTIC}[debug]\n  level = "info"\n` }]);
  });

  t.test('blocks in several files are all taken out', async (t) => {
    const a = '/etc/containerd/a.toml';
    const aText = 'x = 1\n';
    const mainText = `version = 2\nimports = ["a.toml"]\n`;
    const block = `${BEGIN_LINE}y = 2\n${END_LINE}`;
    const edits = planContainerdUninstall(loadContainerdConfig(fsReader({ [MAIN]: `${mainText}\n${block}`, [a]: `${aText}\n${block}` }), MAIN));
    t.strictSame(edits, [
      { path: MAIN, before: `${mainText}\n${block}`, after: mainText },
      { path: a, before: `${aText}\n${block}`, after: aText },
    ]);
  });

  t.test('files without a block produce no edit', async (t) => {
    t.strictSame(planContainerdUninstall(loadContainerdConfig(fsReader({ [MAIN]: REALISTIC, '/etc/containerd/conf.d/tracing.toml': TRACING }), MAIN)), []);
    t.strictSame(planContainerdUninstall(loadContainerdConfig(fsReader({}), MAIN)), []);
  });

  t.test('a damaged block is a ShimError naming the file', async (t) => {
    t.throws(() => planContainerdUninstall(loadContainerdConfig(fsReader({ [MAIN]: `version = 2\n\n${BEGIN_LINE}x = 1\n` }), MAIN)), {
      name: 'ShimError',
      message: /^\/etc\/containerd\/config\.toml: a "# BEGIN strict-groups" line has no "# END strict-groups" line/,
    });
  });
});

t.test('configurations the installer refuses to guess about', async (t) => {
  t.test("a containerd whose CRI plugin is disabled (Docker's containerd.io config)", async (t) => {
    for (const name of ['cri', 'io.containerd.grpc.v1.cri']) {
      t.throws(() => loadContainerdConfig(fsReader({ [MAIN]: `disabled_plugins = ["${name}"]\n` }), MAIN), {
        name: 'ShimError',
        message: `${MAIN}: the CRI plugin is disabled (disabled_plugins), so no kubelet uses this containerd; enable CRI first`,
      });
    }
    t.doesNotThrow(() => loadContainerdConfig(fsReader({ [MAIN]: 'version = 2\ndisabled_plugins = ["io.containerd.snapshotter.v1.btrfs"]\n' }), MAIN));
  });

  t.test('a version 3 CRI section split across files: containerd 2.0+ merges them, so no refusal', async (t) => {
    const files = {
      [MAIN]: `version = 3\nimports = ["/etc/containerd/conf.d/10-cdi.toml"]\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n`,
      '/etc/containerd/conf.d/10-cdi.toml': `version = 3\n[plugins."io.containerd.cri.v1.runtime"]\nenable_cdi = true\n`,
    };
    const result = plan(files);
    t.equal(result.rule, 'merge');
    t.match(result.ruleFrom, /config version 3, which only 2\.0\+ reads/);
    t.equal(result.target, MAIN, 'the file that holds the runc handler');
    t.strictSame(result.edits.map((edit) => edit.path), [MAIN]);
  });

  t.test('a version 3 file on a containerd 1.x', async (t) => {
    t.throws(() => plan({ [MAIN]: 'version = 3\n' }, undefined, undefined, '1.7.24'), {
      name: 'ShimError',
      message: `${MAIN} is config version 3, which only containerd 2.0+ reads, but the node runs containerd 1.7.24; check --containerd-version or the file`,
    });
  });

  t.test("defaults that are not the node's containerd's", async (t) => {
    t.throws(() => plan({ [MAIN]: REALISTIC }, DEFAULTS_V3, undefined, '1.7.24'), {
      name: 'ShimError',
      message: `containerd's defaults are config version 3, which is not what containerd 1.7.24 prints; pass the node's own "containerd config default" as --containerd-defaults`,
    });
  });
});
