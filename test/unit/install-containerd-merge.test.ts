/**
 * The model of how containerd combines its files (src/install/containerd-merge.ts)
 * and reads its own version (containerd-version.ts). The rules themselves are
 * checked against the real containerd dumps in test/installer/containerd.test.ts;
 * these pin each rule down case by case.
 */
import t, { type Test } from 'tap';
import { parse } from 'smol-toml';
import type { LoadedFile } from '../../src/install/containerd-files';
import { mergeTables, runtimesInForce } from '../../src/install/containerd-merge';
import { importRule, parseContainerdVersion, ruleText, versionFromOutput, versionOption } from '../../src/install/containerd-version';
import { canonicalToml, type TomlTable } from '../../src/install/toml';

const CRI2 = 'io.containerd.grpc.v1.cri';
const CRI3 = 'io.containerd.cri.v1.runtime';
const toml = (text: string): TomlTable => parse(text, { integersAsBigInt: true });
const same = (t: Test, actual: unknown, expected: unknown, message = 'same TOML data'): void => {
  t.equal(canonicalToml(actual), canonicalToml(expected), message);
};
/** A loaded file from its text, as containerd-files.ts gives it. */
const file = (path: string, text: string): LoadedFile => {
  const table = toml(text);
  const version = table['version'];
  return { path, text, table, declaredVersion: version === 2n ? 2 : version === 3n ? 3 : undefined };
};

t.test('mergeTables: containerd 2.x merging a later file over an earlier one', async (t) => {
  t.test('tables merge at every depth; the later scalar wins, even false, "" and 0', async (t) => {
    const base = toml(`
[a]
keep = "base"
flag = true
name = "x"
count = 3
[a.b.c]
deep = 1
`);
    const over = toml(`
[a]
flag = false
name = ""
count = 0
added = "over"
[a.b.c]
deeper = 2
`);
    same(t, mergeTables(base, over), toml(`
[a]
keep = "base"
flag = false
name = ""
count = 0
added = "over"
[a.b.c]
deep = 1
deeper = 2
`));
  });

  t.test('arrays are replaced, never appended; an empty array replaces too', async (t) => {
    same(t, mergeTables(toml('x = ["/etc/cdi"]\ny = ["a"]\n'), toml('x = ["/var/run/cdi"]\ny = []\n')), toml('x = ["/var/run/cdi"]\ny = []\n'));
    // Arrays of tables are arrays.
    same(t, mergeTables(toml('[[h]]\na = 1\n[[h]]\na = 2\n'), toml('[[h]]\nb = 3\n')), toml('[[h]]\nb = 3\n'));
  });

  t.test('a table replaces a scalar and a scalar a table', async (t) => {
    same(t, mergeTables(toml('a = 1\nb.c = 1\n'), toml('a.x = 2\nb = "s"\n')), toml('a.x = 2\nb = "s"\n'));
  });

  t.test('the inputs are not changed', async (t) => {
    const base = toml('[a]\nb = 1\n[a.c]\nd = 1\n');
    const over = toml('[a]\nb = 2\n[a.c]\ne = 1\n');
    const [baseText, overText] = [canonicalToml(base), canonicalToml(over)];
    mergeTables(base, over);
    t.equal(canonicalToml(base), baseText);
    t.equal(canonicalToml(over), overText);
  });

  t.test('a key named like an Object.prototype member is a plain key', async (t) => {
    same(t, mergeTables(toml('constructor = 1\n'), toml('[toString]\na = 1\n')), toml('constructor = 1\n[toString]\na = 1\n'));
    const merged = mergeTables(toml('[a]\n"__proto__" = { x = 1 }\n'), toml('"__proto__" = 2\n[a."__proto__"]\ny = 2\n'));
    t.strictSame(Object.keys(merged), ['a', '__proto__']);
    t.equal(Object.getPrototypeOf(merged), Object.prototype, 'no prototype was set');
    same(t, merged, toml('"__proto__" = 2\n[a."__proto__"]\nx = 1\ny = 2\n'));
  });
});

t.test('runtimesInForce', async (t) => {
  const main2 = file('/etc/containerd/config.toml', `version = 2
imports = ["/etc/containerd/conf.d/*.toml"]
[plugins."${CRI2}"]
  sandbox_image = "registry.example.com/pause:3.9"
  [plugins."${CRI2}".containerd]
    default_runtime_name = "runc"
    [plugins."${CRI2}".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      sandbox_mode = "podsandbox"
      [plugins."${CRI2}".containerd.runtimes.runc.options]
        SystemdCgroup = true
`);
  const cdi2 = file('/etc/containerd/conf.d/10-cdi.toml', `[plugins."${CRI2}"]\n  enable_cdi = true\n`);
  const other = file('/etc/containerd/conf.d/20-nri.toml', `[plugins."io.containerd.nri.v1.nri"]\n  disable = false\n`);

  t.test('replace (containerd 1.x): the last file defining the CRI section is the whole section', async (t) => {
    const alone = runtimesInForce([main2, other], 'replace', 2);
    t.equal(alone.plugin, CRI2);
    t.equal(alone.defaultName, 'runc');
    t.strictSame(alone.sectionFiles.map((f) => f.path), [main2.path], 'a drop-in for another plugin changes nothing');
    same(t, alone.declared, { runc: { runtime_type: 'io.containerd.runc.v2', sandbox_mode: 'podsandbox', options: { SystemdCgroup: true } } });

    const split = runtimesInForce([main2, cdi2, other], 'replace', 2);
    t.strictSame(split.sectionFiles.map((f) => f.path), [cdi2.path]);
    t.equal(split.declared, undefined, "the main file's runc handler is not in force");
    t.equal(split.defaultName, undefined);

    const none = runtimesInForce([file('/etc/containerd/config.toml', 'version = 2\n')], 'replace', 2);
    t.strictSame(none, { plugin: CRI2, declared: undefined, defaultName: undefined, sectionFiles: [] });
  });

  t.test('merge, version 2 (containerd 2.x migrating): the version 2 sections merged, sandbox_mode becomes sandboxer', async (t) => {
    const split = runtimesInForce([main2, cdi2, other], 'merge', 2);
    t.equal(split.plugin, CRI2);
    t.equal(split.defaultName, 'runc');
    t.strictSame(split.sectionFiles.map((f) => f.path), [main2.path, cdi2.path]);
    same(t, split.declared, { runc: { runtime_type: 'io.containerd.runc.v2', sandboxer: 'podsandbox', options: { SystemdCgroup: true } } });

    const both = file('/x.toml', `[plugins."${CRI2}".containerd.runtimes.runc]\nsandbox_mode = "shim"\nsandboxer = "podsandbox"\n`);
    same(t, runtimesInForce([both], 'merge', 2).declared, { runc: { sandbox_mode: 'shim', sandboxer: 'podsandbox' } }, 'an explicit sandboxer wins, as in the migration');
  });

  t.test('merge, version 2 with version 3 runtimes in a file: those hide the version 2 runtimes', async (t) => {
    const v3Runtimes = file('/etc/containerd/conf.d/30-v3.toml', `[plugins."${CRI3}".containerd.runtimes.kata]\nruntime_type = "io.containerd.kata.v2"\n`);
    const result = runtimesInForce([main2, v3Runtimes], 'merge', 2);
    t.equal(result.plugin, CRI3, 'the handler must go where the handlers in force are');
    same(t, result.declared, { kata: { runtime_type: 'io.containerd.kata.v2' } });
    t.equal(result.defaultName, 'runc', "default_runtime_name still comes from version 2 where version 3 has none");

    const v3Name = file('/etc/containerd/conf.d/40.toml', `[plugins."${CRI3}".containerd]\ndefault_runtime_name = "kata"\n`);
    t.equal(runtimesInForce([main2, v3Name], 'merge', 2).defaultName, 'kata');
    t.equal(runtimesInForce([main2, v3Name], 'merge', 2).plugin, CRI2, 'version 3 keys without runtimes leave the version 2 runtimes in force');
  });

  t.test('merge, version 3: every file\'s version 3 section merged; version 2 sections are not read', async (t) => {
    const main3 = file('/etc/containerd/config.toml', `version = 3
[plugins."${CRI3}".containerd]
  default_runtime_name = "runc"
[plugins."${CRI3}".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["a/*"]
  [plugins."${CRI3}".containerd.runtimes.runc.options]
    BinaryName = "/usr/local/sbin/runc"
    SystemdCgroup = false
`);
    const dropIn = file('/etc/containerd/conf.d/10.toml', `version = 3
[plugins."${CRI3}".containerd.runtimes.runc]
  pod_annotations = []
  [plugins."${CRI3}".containerd.runtimes.runc.options]
    SystemdCgroup = true
`);
    const result = runtimesInForce([main3, dropIn, main2], 'merge', 3);
    t.equal(result.plugin, CRI3);
    t.strictSame(result.sectionFiles.map((f) => f.path), [main3.path, dropIn.path]);
    same(t, result.declared, { runc: { runtime_type: 'io.containerd.runc.v2', pod_annotations: [], options: { BinaryName: '/usr/local/sbin/runc', SystemdCgroup: true } } });
  });
});

t.test('containerd versions', async (t) => {
  t.test('parseContainerdVersion: releases, tags and packagers\' versions', async (t) => {
    for (const [text, major, minor] of [
      ['1.6.20~ds1', 1, 6],
      ['1.7.24~ds1', 1, 7],
      ['2.1.9+unknown', 2, 1],
      ['v2.0.0', 2, 0],
      ['2.0.0-rc.6', 2, 0],
      ['1.7', 1, 7],
      ['  2.2.0 ', 2, 2],
    ] as const) {
      t.strictSame(parseContainerdVersion(text), { major, minor, text: text.trim() }, text);
    }
    for (const text of ['', 'latest', '2', 'v', '2.x', '1.7.24 extra', '1..7', '2.1.9\n1.6.20', '99999.1']) {
      t.equal(parseContainerdVersion(text), undefined, JSON.stringify(text));
    }
  });

  t.test('versionFromOutput: what `containerd --version` prints', async (t) => {
    t.equal(versionFromOutput('containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n')?.text, '1.6.20~ds1');
    t.equal(versionFromOutput('containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1\n')?.text, '1.7.24~ds1');
    t.equal(versionFromOutput('containerd github.com/containerd/containerd/v2 2.1.9+unknown \n')?.text, '2.1.9+unknown');
    t.equal(versionFromOutput('containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da\n')?.text, '1.7.27');
    t.equal(versionFromOutput('containerd github.com/containerd/containerd/v2 v2.0.0 207ad711eabd375a01713109a8a197d197ff6542\n')?.major, 2);
    for (const output of ['', 'containerd', 'runc version 1.1.5', 'containerd github.com/containerd/containerd', 'containerd x unknown']) {
      t.equal(versionFromOutput(output), undefined, JSON.stringify(output));
    }
  });

  t.test('importRule: before 2.0 replace, from 2.0 merge', async (t) => {
    for (const [text, rule] of [['1.6.20', 'replace'], ['1.7.24', 'replace'], ['1.7.99', 'replace'], ['2.0.0', 'merge'], ['2.1.9', 'merge'], ['2.2.0', 'merge'], ['3.0.0', 'merge']] as const) {
      t.equal(importRule(parseContainerdVersion(text)!), rule, text);
    }
    t.equal(ruleText('replace'), "containerd before 2.0 (imports replace a plugin's whole section)");
    t.equal(ruleText('merge'), 'containerd 2.0+ (imports merge key by key)');
  });

  t.test('versionOption: a refusal that says what it takes', async (t) => {
    t.strictSame(versionOption('2.1.9'), { major: 2, minor: 1, text: '2.1.9' });
    t.throws(() => versionOption('two'), {
      name: 'ShimError',
      message: 'install: --containerd-version "two" is not a version; give what "containerd --version" prints on the node as its third word, e.g. 1.7.24 or 2.1.9',
    });
  });
});
