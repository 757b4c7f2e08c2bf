/**
 * src/json-document.ts and src/bundle.ts: config.json and exec process files
 * are rewritten in place, so everything the shim does not edit must come back
 * exactly (an int64 memory limit written back as a double changes the
 * container), the write must be atomic and keep mode and owner, and every
 * error must name the file.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DECISION_ANNOTATION, REMOVED_GIDS_ANNOTATION } from '../../src/annotations';
import {
  bundleConfigPath,
  loadBundleConfig,
  loadExecProcess,
  rootfsPath,
  saveDocument,
  withAdditionalGids,
  withRecords,
  type BundleConfig,
  type ExecProcess,
} from '../../src/bundle';
import { replaceFileAtomically } from '../../src/files';
import { parseDocument, serializeDocument } from '../../src/json-document';

// Keeping a number's text needs JSON.parse source text access (Node 21+).
// The shim ships as a Node 24 executable; `npm test` runs Node 24 too. Under
// an older `node` these cases cannot pass, and say so instead of failing.
const SOURCE_TEXT = typeof (JSON as unknown as { rawJSON?: unknown }).rawJSON === 'function';
const needsSourceText = SOURCE_TEXT ? {} : { skip: `Node ${process.version} has no JSON.parse source text access (run with Node 24: npm test)` };

const round = (text: string): string => serializeDocument(parseDocument(text, 'test.json'));

t.test('parseDocument/serializeDocument keep every number as written', needsSourceText, (t) => {
  const numbers = [
    '9223372036854775807', // int64 max: memory.limit "unlimited" in some runtimes
    '-9223372036854775808',
    '18446744073709551615', // uint64 max
    '9007199254740993', // 2^53 + 1: the first integer a double cannot hold
    '1.0',
    '1e400', // Infinity as a double
    '-1e-400', // -0 as a double
    '0.1',
    '0.30000000000000004',
    '1E2',
    '1e2',
    '-0',
    '0',
    '100',
    '2.50',
    '123456789012345678901234567890.123456789',
  ];
  for (const n of numbers) {
    t.equal(round(`{"v":${n}}`), `{"v":${n}}`, n);
    t.equal(round(`[${n},${n}]`), `[${n},${n}]`, `${n} in an array`);
  }
  const doc = '{"linux":{"resources":{"memory":{"limit":9223372036854775807,"swap":-1},"cpu":{"quota":-1,"period":100000,"shares":1.0}}}}';
  t.equal(round(doc), doc);
  t.end();
});

t.test('parseDocument/serializeDocument keep unknown fields, order and strings', (t) => {
  const doc =
    '{"ociVersion":"1.1.0","z":1,"a":{"nested":[true,false,null,{"k":"v"}],"empty":{},"list":[]},' +
    '"s":"quote \\" backslash \\\\ newline \\n tab \\t nul \\u0000 U+2028 \u2028 é 漢字 \u{1F600} lone \\ud800",' +
    '"x-future-field":{"anything":[1,2,3]}}';
  t.equal(round(doc), doc);
  // Whitespace is not kept, values are.
  t.equal(round('{\n  "b" : [ 1 , 2 ],\n\t"a":"x"\n}\n'), '{"b":[1,2],"a":"x"}');
  t.end();
});

t.test('parseDocument names the file on bad JSON', (t) => {
  for (const bad of ['', '{', '{"a":1,}', "{'a':1}", '{"a":01}', 'NaN', '{"a":1} x']) {
    t.throws(() => parseDocument(bad, '/b/config.json'), { name: 'ShimError', message: /^\/b\/config\.json: not valid JSON: / }, JSON.stringify(bad));
  }
  t.end();
});

function userHolder(): ExecProcess {
  return {
    terminal: false,
    user: { uid: 1000, gid: 1000, umask: 18, additionalGids: [1000, 50000, 60000], username: 'alice' },
    args: ['sh'],
    env: ['PATH=/bin'],
    cwd: '/',
  };
}

t.test('withAdditionalGids replaces only the gids, in place', (t) => {
  const before = userHolder();
  const snapshot = JSON.stringify(before);
  const after = withAdditionalGids(before, [1000, 60000]);
  t.equal(JSON.stringify(before), snapshot, 'input not mutated');
  t.equal(
    JSON.stringify(after),
    '{"terminal":false,"user":{"uid":1000,"gid":1000,"umask":18,"additionalGids":[1000,60000],"username":"alice"},"args":["sh"],"env":["PATH=/bin"],"cwd":"/"}',
    'same keys, same order',
  );
  t.equal(after.args, before.args, 'other fields are the same objects');

  // No additionalGids before: the key is added at the end of user.
  const bare: ExecProcess = { user: { uid: 0, gid: 0, umask: 0 }, args: ['x'] };
  t.equal(JSON.stringify(withAdditionalGids(bare, [])), '{"user":{"uid":0,"gid":0,"umask":0,"additionalGids":[]},"args":["x"]}');
  t.end();
});

function bundleConfig(annotations?: Record<string, string>): BundleConfig {
  const config: BundleConfig = {
    ociVersion: '1.0.2-dev',
    process: { user: { uid: 1000, gid: 1000, additionalGids: [50000] }, args: ['sleep', '1'] },
    root: { path: 'rootfs' },
    hostname: 'h',
  };
  if (annotations !== undefined) config.annotations = annotations;
  config['linux'] = { namespaces: [] };
  return config;
}

t.test('withRecords sets or drops the removal record, sets the decision, and keeps the rest', (t) => {
  const config = bundleConfig({ 'io.kubernetes.cri.container-type': 'container', [REMOVED_GIDS_ANNOTATION]: '5', 'z.last': 'z' });
  const snapshot = JSON.stringify(config);

  const set = withRecords(config, { removedGids: '50000,50001', decision: '{"policy":"Strict"}' });
  t.equal(JSON.stringify(config), snapshot, 'input not mutated');
  t.strictSame(Object.keys(set), ['ociVersion', 'process', 'root', 'hostname', 'annotations', 'linux']);
  t.strictSame(Object.entries(set.annotations!), [
    ['io.kubernetes.cri.container-type', 'container'],
    [REMOVED_GIDS_ANNOTATION, '50000,50001'],
    ['z.last', 'z'],
    [DECISION_ANNOTATION, '{"policy":"Strict"}'],
  ]);
  t.equal(set.process, config.process);

  const dropped = withRecords(config, { removedGids: undefined, decision: 'd' });
  t.strictSame(Object.entries(dropped.annotations!), [
    ['io.kubernetes.cri.container-type', 'container'],
    ['z.last', 'z'],
    [DECISION_ANNOTATION, 'd'],
  ]);

  const empty = withRecords(config, { removedGids: '', decision: 'd' });
  t.equal(empty.annotations![REMOVED_GIDS_ANNOTATION], '', 'an empty record (Strict, nothing removed) is kept');

  // No annotations before: they are added, the records last among them.
  const fresh = withRecords(bundleConfig(), { removedGids: '7', decision: 'd' });
  t.strictSame(Object.keys(fresh), ['ociVersion', 'process', 'root', 'hostname', 'linux', 'annotations']);
  t.strictSame(fresh.annotations, { [REMOVED_GIDS_ANNOTATION]: '7', [DECISION_ANNOTATION]: 'd' });
  t.end();
});

const CONFIG_TEXT =
  '{"ociVersion":"1.0.2-dev","process":{"terminal":false,"user":{"uid":1000,"gid":1000,"additionalGids":[1000,50000,60000]},' +
  '"args":["sleep","1000"]},"root":{"path":"rootfs","readonly":true},"annotations":{"io.kubernetes.cri.container-type":"container"},' +
  '"linux":{"resources":{"memory":{"limit":9223372036854775807},"cpu":{"shares":1024}},"x-unknown":[1.0,1e400]}}';

t.test('load, edit and save a config.json: only the edit changes', needsSourceText, (t) => {
  const bundle = t.testdir({ 'config.json': CONFIG_TEXT });
  const loaded = loadBundleConfig(bundle);
  t.equal(loaded.path, join(bundle, 'config.json'));
  t.equal(loaded.file.content.toString('utf8'), CONFIG_TEXT);
  t.strictSame(loaded.document.process.user.additionalGids, [1000, 50000, 60000]);

  const process = withAdditionalGids(loaded.document.process, [1000, 60000]);
  saveDocument(loaded, withRecords({ ...loaded.document, process }, { removedGids: '50000', decision: 'd' }));
  t.equal(
    readFileSync(join(bundle, 'config.json'), 'utf8'),
    CONFIG_TEXT.replace('[1000,50000,60000]', '[1000,60000]').replace(
      '"container"}',
      `"container","${REMOVED_GIDS_ANNOTATION}":"50000","${DECISION_ANNOTATION}":"d"}`,
    ),
  );
  t.strictSame(readdirSync(bundle), ['config.json'], 'no temporary file left');
  t.end();
});

t.test('saveDocument keeps mode and owner', (t) => {
  for (const [mode, uid, gid] of [
    [0o640, 0, 0],
    [0o600, 0, 0],
    [0o644, 1234, 5678],
    [0o4755, 0, 0],
    // chown clears setuid/setgid, even for root: chmod must come after it.
    [0o6750, 1234, 5678],
  ] as const) {
    const bundle = t.testdir({ 'config.json': CONFIG_TEXT });
    const path = join(bundle, 'config.json');
    // Root can give the file away; the rewrite must then chown the new one.
    chownSync(path, uid, gid);
    chmodSync(path, mode);
    const loaded = loadBundleConfig(bundle);
    t.equal(loaded.file.mode, mode, `${mode.toString(8)} read`);
    saveDocument(loaded, withRecords(loaded.document, { removedGids: '1', decision: 'd' }));
    const st = statSync(path);
    t.equal(st.mode & 0o7777, mode, `mode ${mode.toString(8)} kept`);
    t.equal(st.uid, uid, `uid ${uid} kept`);
    t.equal(st.gid, gid, `gid ${gid} kept`);
    t.match(readFileSync(path, 'utf8'), /"strict-groups\.io\/removed-gids":"1"/);
    t.strictSame(readdirSync(bundle), ['config.json'], 'no temporary file left');
  }
  t.end();
});

t.test('replaceFileAtomically replaces by rename: an open reader keeps the old file', (t) => {
  const dir = t.testdir({ 'f.json': 'old' });
  const path = join(dir, 'f.json');
  const inoBefore = statSync(path).ino;
  replaceFileAtomically(path, 'new content', { mode: 0o640, uid: 0, gid: 0 });
  t.equal(readFileSync(path, 'utf8'), 'new content');
  t.not(statSync(path).ino, inoBefore, 'a new inode: readers of the old one see it whole');
  t.equal(statSync(path).mode & 0o7777, 0o640);
  t.strictSame(readdirSync(dir), ['f.json']);
  t.end();
});

t.test('replaceFileAtomically failures: ShimError, original intact, no stray file', (t) => {
  // Tests run as root, which writes through chmod 0o555. These failures do not depend on it.
  const dir = t.testdir({ 'config.json': CONFIG_TEXT, 'adir': { 'inside': 'x' } });

  t.throws(() => replaceFileAtomically(join(dir, 'missing', 'config.json'), '{}', { mode: 0o600, uid: 0, gid: 0 }), {
    name: 'ShimError',
    message: new RegExp(`^cannot rewrite ${dir}/missing/config\\.json: creating a temporary file in ${dir}/missing: ENOENT$`),
  });

  // The temporary file is written, then the rename fails: it must be removed.
  t.throws(() => replaceFileAtomically(join(dir, 'adir'), '{}', { mode: 0o600, uid: 0, gid: 0 }), {
    name: 'ShimError',
    message: new RegExp(`^cannot rewrite ${dir}/adir: EISDIR$`),
  });
  t.strictSame(readdirSync(dir).sort(), ['adir', 'config.json'], 'no temporary file left');
  t.strictSame(readdirSync(join(dir, 'adir')), ['inside']);
  t.equal(readFileSync(join(dir, 'config.json'), 'utf8'), CONFIG_TEXT);
  t.end();
});

t.test('replaceFileAtomically in a directory root cannot write to', (t) => {
  // chattr +i stops even root from creating files in the directory.
  const dir = mkdtempSync(join(tmpdir(), 'sg-immutable-'));
  const path = join(dir, 'config.json');
  writeFileSync(path, CONFIG_TEXT, { mode: 0o640 });
  const chattr = (flag: string): boolean => spawnSync('chattr', [flag, dir], { stdio: 'ignore' }).status === 0;
  t.teardown(() => {
    chattr('-i');
    rmSync(dir, { recursive: true, force: true });
  });
  if (!chattr('+i')) {
    t.pass('immutable directory', { skip: 'chattr +i is not available here' });
    t.end();
    return;
  }
  t.throws(() => replaceFileAtomically(path, '{}', { mode: 0o640, uid: 0, gid: 0 }), {
    name: 'ShimError',
    message: new RegExp(`^cannot rewrite ${path}: creating a temporary file in ${dir}: EPERM$`),
  });
  t.equal(readFileSync(path, 'utf8'), CONFIG_TEXT, 'original byte-identical');
  t.equal(statSync(path).mode & 0o7777, 0o640);
  t.strictSame(readdirSync(dir), ['config.json']);
  t.end();
});

const USER_OK = '"user":{"uid":0,"gid":0}';

t.test('loadBundleConfig errors name the file', (t) => {
  const cases: [string, string, RegExp][] = [
    ['bad JSON', '{"process":', /: not valid JSON: /],
    ['no process.user', '{"process":{},"root":{"path":"rootfs"}}', /: \/process must have required property 'user'$/],
    ['no process', '{"root":{"path":"rootfs"}}', /: \(top level\) must have required property 'process'$/],
    ['no root', `{"process":{${USER_OK}}}`, /: \(top level\) must have required property 'root'$/],
    ['empty root.path', `{"process":{${USER_OK}},"root":{"path":""}}`, /: \/root\/path must NOT have fewer than 1 characters$/],
    ['uid -1', '{"process":{"user":{"uid":-1,"gid":0}},"root":{"path":"r"}}', /: \/process\/user\/uid must be >= 0$/],
    ['uid 4294967296', '{"process":{"user":{"uid":4294967296,"gid":0}},"root":{"path":"r"}}', /: \/process\/user\/uid must be <= 4294967295$/],
    ['gid as string', '{"process":{"user":{"uid":0,"gid":"0"}},"root":{"path":"r"}}', /: \/process\/user\/gid must be integer$/],
    ['additionalGids [1.5]', '{"process":{"user":{"uid":0,"gid":0,"additionalGids":[1.5]}},"root":{"path":"r"}}', /: \/process\/user\/additionalGids\/0 must be integer$/],
    ['additionalGids [-1]', '{"process":{"user":{"uid":0,"gid":0,"additionalGids":[0,-1]}},"root":{"path":"r"}}', /: \/process\/user\/additionalGids\/1 must be >= 0$/],
    ['annotation not a string', `{"process":{${USER_OK}},"root":{"path":"r"},"annotations":{"a":1}}`, /: \/annotations\/a must be string$/],
    ['an array', '[]', /: \(top level\) must be object$/],
  ];
  for (const [name, text, message] of cases) {
    const bundle = t.testdir({ 'config.json': text });
    const path = join(bundle, 'config.json');
    t.throws(() => loadBundleConfig(bundle), { name: 'ShimError', message: new RegExp(`^${path}${message.source}`) }, name);
    t.equal(readFileSync(path, 'utf8'), text, `${name}: file untouched`);
  }
  t.end();
});

t.test('uids that only look like integers are refused, as Go refuses them', needsSourceText, (t) => {
  // encoding/json will not put 1.0 or 1e3 into a uint32; neither may the shim.
  for (const uid of ['1.0', '1e3', '9223372036854775807']) {
    const bundle = t.testdir({ 'config.json': `{"process":{"user":{"uid":${uid},"gid":0}},"root":{"path":"r"}}` });
    t.throws(() => loadBundleConfig(bundle), { name: 'ShimError', message: /\/process\/user\/uid must be integer$/ }, uid);
  }
  t.end();
});

t.test('loadBundleConfig: config.json that is not a readable regular file', (t) => {
  const bundle = t.testdir({ 'config.json': {} });
  t.throws(() => loadBundleConfig(bundle), { name: 'ShimError', message: `${bundle}/config.json is not a regular file` }, 'a directory');

  const empty = t.testdir({});
  t.throws(() => loadBundleConfig(empty), { name: 'ShimError', message: `cannot open ${empty}/config.json: ENOENT` }, 'missing');

  const linked = t.testdir({ 'config.json': t.fixture('symlink', 'real.json'), 'real.json': CONFIG_TEXT });
  t.equal(loadBundleConfig(linked).document.root.path, 'rootfs', 'a symlink to a regular file is read');
  t.end();
});

t.test('a FIFO at config.json fails at once instead of hanging', (t) => {
  const bundle = t.testdir({});
  t.equal(spawnSync('mkfifo', [join(bundle, 'config.json')]).status, 0, 'mkfifo');
  // In a child, so that a regression hangs only the child, which the timeout kills.
  const register = require.resolve('@isaacs/ts-node-temp-fork-for-pr-2009/register/transpile-only');
  const script =
    `try { require(${JSON.stringify(require.resolve('../../src/bundle'))}).loadBundleConfig(${JSON.stringify(bundle)}); console.log('loaded') }` +
    ` catch (e) { console.log(e.name + ': ' + e.message) }`;
  const child = spawnSync(process.execPath, ['-r', register, '-e', script], { encoding: 'utf8', timeout: 30_000 });
  t.equal(child.signal, null, 'not killed by the timeout');
  t.equal(child.stdout, `ShimError: ${bundle}/config.json is not a regular file\n`);
  t.end();
});

t.test('loadExecProcess', (t) => {
  const dir = t.testdir({
    'ok.json': '{"terminal":false,"user":{"uid":1000,"gid":1000,"additionalGids":[1000,50000]},"args":["sh"],"cwd":"/"}',
    'no-user.json': '{"args":["sh"],"cwd":"/"}',
    'bad.json': '{"user":',
    'uid-big.json': '{"user":{"uid":4294967296,"gid":0}}',
  });
  const ok = loadExecProcess(join(dir, 'ok.json'));
  t.strictSame(ok.document.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50000] });
  t.equal(ok.path, join(dir, 'ok.json'));

  t.throws(() => loadExecProcess(join(dir, 'no-user.json')), { name: 'ShimError', message: `${dir}/no-user.json: (top level) must have required property 'user'` });
  t.throws(() => loadExecProcess(join(dir, 'bad.json')), { name: 'ShimError', message: new RegExp(`^${dir}/bad\\.json: not valid JSON: `) });
  t.throws(() => loadExecProcess(join(dir, 'uid-big.json')), { name: 'ShimError', message: `${dir}/uid-big.json: /user/uid must be <= 4294967295` });
  t.throws(() => loadExecProcess(join(dir, 'missing.json')), { name: 'ShimError', message: `cannot open ${dir}/missing.json: ENOENT` });

  // The exec process file is rewritten in place like config.json.
  const edited = withAdditionalGids(ok.document, [1000]);
  saveDocument(ok, edited);
  t.equal(readFileSync(join(dir, 'ok.json'), 'utf8'), '{"terminal":false,"user":{"uid":1000,"gid":1000,"additionalGids":[1000]},"args":["sh"],"cwd":"/"}');
  t.end();
});

t.test('a hard link to config.json is not written through', (t) => {
  // The rewrite replaces the directory entry; another name of the old inode keeps the old text.
  const dir = t.testdir({ bundle: { 'config.json': CONFIG_TEXT } });
  const bundle = join(dir, 'bundle');
  linkSync(join(bundle, 'config.json'), join(dir, 'other-name.json'));
  const loaded = loadBundleConfig(bundle);
  saveDocument(loaded, withRecords(loaded.document, { removedGids: '1', decision: 'd' }));
  t.equal(readFileSync(join(dir, 'other-name.json'), 'utf8'), CONFIG_TEXT);
  t.not(readFileSync(join(bundle, 'config.json'), 'utf8'), CONFIG_TEXT);
  t.end();
});

t.test('bundleConfigPath and rootfsPath', (t) => {
  t.equal(bundleConfigPath('/b'), '/b/config.json');
  t.equal(bundleConfigPath('/b/'), '/b/config.json');
  const withRoot = (path: string): BundleConfig => ({ process: { user: { uid: 0, gid: 0 } }, root: { path } });
  t.equal(rootfsPath('/run/b', withRoot('rootfs')), '/run/b/rootfs', 'relative to the bundle');
  t.equal(rootfsPath('/run/b', withRoot('./rootfs/')), '/run/b/rootfs');
  t.equal(rootfsPath('/run/b', withRoot('../other/rootfs')), '/run/other/rootfs');
  t.equal(rootfsPath('/run/b', withRoot('/var/lib/containers/rootfs')), '/var/lib/containers/rootfs', 'absolute stays');
  t.equal(rootfsPath('/', withRoot('rootfs')), '/rootfs');
  t.end();
});

t.test('keys runc would read case-insensitively are refused in any other spelling', (t) => {
  // Go's encoding/json matches "AdditionalGids" (or "additionalGidſ", with the
  // long s) to additionalGids: the shim must never edit one spelling while
  // runc reads another.
  const cases: [string, string, RegExp][] = [
    ['AdditionalGids', '{"process":{"user":{"uid":0,"gid":0,"additionalGids":[1],"AdditionalGids":[2]}},"root":{"path":"r"}}', /key "AdditionalGids" in \/process\/user would be read by runc as "additionalGids"$/],
    ['long s', '{"process":{"user":{"uid":0,"gid":0,"additionalGid\u017f":[2]}},"root":{"path":"r"}}', /key "additionalGid\u017f" in \/process\/user would be read by runc as "additionalGids"$/],
    ['Process', `{"Process":{${USER_OK}},"process":{${USER_OK}},"root":{"path":"r"}}`, /key "Process" in \/ would be read by runc as "process"$/],
    ['USER', `{"process":{"USER":{"uid":1,"gid":1},${USER_OK}},"root":{"path":"r"}}`, /key "USER" in \/process would be read by runc as "user"$/],
    ['Annotations', `{"process":{${USER_OK}},"root":{"path":"r"},"Annotations":{}}`, /key "Annotations" in \/ would be read by runc as "annotations"$/],
  ];
  for (const [name, text, message] of cases) {
    const bundle = t.testdir({ 'config.json': text });
    t.throws(() => loadBundleConfig(bundle), { name: 'ShimError', message }, name);
  }
  const process = t.testdir({ 'p.json': '{"user":{"uid":0,"gid":0,"Uid":5}}' });
  t.throws(() => loadExecProcess(join(process, 'p.json')), { name: 'ShimError', message: /key "Uid" in \/user would be read by runc as "uid"$/ });
  // Keys the shim does not own may be spelled any way at all.
  const other = t.testdir({ 'config.json': `{"process":{${USER_OK},"Env":[]},"root":{"path":"r","Readonly":true},"Path":1}` });
  t.equal(loadBundleConfig(other).document.root.path, 'r');
  t.end();
});
