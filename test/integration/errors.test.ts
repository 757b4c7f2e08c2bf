/**
 * Every refusal, through the built binary in front of every runc and crun
 * build (runtime-builds.ts): the message where operators look (the --log
 * file containerd decodes, else stderr), exit 1, nothing on stdout, the
 * bundle untouched and no container created.
 */
import fse from 'fs-extra';
import { execFileSync } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MERGED_GROUPS, POLICY, REMOVED, SHIM, STRICT_GROUPS, containerdError, direct, shim, workspace, type RuntimeBuild } from '../helpers/oci';
import { atLeast, runtimeBuilds } from '../helpers/runtime-builds';

/** What each build's `state` says of a container it does not have, which the shim relays. */
function noSuchContainer(runtime: RuntimeBuild, stateRoot: string, id: string): string {
  if (runtime.name === 'runc') return 'container does not exist';
  const status = `\`${stateRoot}/${id}/status\`: No such file or directory`;
  // crun 1.22 ("status: report better error on ENOENT") names the container.
  return atLeast(runtime, '1.22') ? `container \`${id}\` does not exist: open ${status}` : `error opening file ${status}`;
}

for (const { label, build, skip } of runtimeBuilds('refusals suite')) t.test(`refusals: ${label}`, { skip }, async (t) => {
  const runtime = build!;
  const ws = workspace(runtime, { ownCgroups: true });
  t.teardown(() => ws.cleanup());
  const root = ['--root', ws.stateRoot];

  /** Asserts a refused create: message, exit 1, config.json unchanged, no container. */
  async function refusedCreate(t: Test, bundle: string, id: string, message: RegExp, globals: string[] = []): Promise<void> {
    const config = join(bundle, 'config.json');
    const before = fse.existsSync(config) ? readFileSync(config) : undefined;
    const result = await shim(ws, runtime, [...root, ...globals, 'create', '--bundle', bundle, id]);
    t.equal(result.exitCode, 1, 'exit 1');
    t.equal(result.stdout, '', 'nothing on stdout');
    t.match(result.stderr, message, 'the message on stderr');
    t.match(result.stderr, /^strict-groups: /, 'says who refused');
    t.equal(result.stderr.split('\n').filter(Boolean).length, 1, 'one line');
    if (before !== undefined) t.same(readFileSync(config), before, 'config.json byte-identical');
    t.not((await direct(runtime, [...root, 'state', id])).exitCode, 0, 'no container created');
  }

  t.test('invalid policy annotation', async (t) => {
    const bundle = ws.bundle('bad-annotation', { annotations: { [POLICY]: 'strict' } });
    await refusedCreate(t, bundle, 'bad-annotation', /invalid pod annotation strict-groups\.io\/supplemental-groups-policy="strict": want "Strict", "Merge" or "Audit"/);
  });

  t.test('with --log json the message goes to the log, as containerd reads it', async (t) => {
    const bundle = ws.bundle('log-json', { annotations: { [POLICY]: 'Loose\n{"level":"error","msg":"forged"}' } });
    const log = join(bundle, 'log.json');
    const result = await shim(ws, runtime, [...root, '--log', log, '--log-format', 'json', 'create', '--bundle', bundle, 'log-json']);
    t.equal(result.exitCode, 1);
    t.equal(result.stderr, '', 'stderr is the container\'s: nothing there');
    t.equal(result.stdout, '');
    t.equal(readFileSync(log, 'utf8').split('\n').filter(Boolean).length, 1, 'one line: the newline did not forge another');
    t.match(containerdError(log), /^strict-groups: invalid pod annotation .*"Loose\\n\{\\"level\\":\\"error\\",\\"msg\\":\\"forged\\"\}"/);
  });

  t.test('with --log in text format', async (t) => {
    const bundle = ws.bundle('log-text', { annotations: { [POLICY]: 'nope' } });
    const log = join(bundle, 'log.txt');
    const result = await shim(ws, runtime, [...root, '--log', log, 'create', '--bundle', bundle, 'log-text']);
    t.equal(result.exitCode, 1);
    t.match(readFileSync(log, 'utf8'), /^time="[^"]+" level=error msg="strict-groups: invalid pod annotation .*"\n$/);
  });

  t.test('config.json missing, not JSON, without process.user', async (t) => {
    const missing = ws.bundle('no-config');
    fse.removeSync(join(missing, 'config.json'));
    await refusedCreate(t, missing, 'no-config', /cannot open .*no-config\/config\.json: ENOENT/);

    const garbled = ws.bundle('garbled');
    writeFileSync(join(garbled, 'config.json'), '{"process": ');
    await refusedCreate(t, garbled, 'garbled', /garbled\/config\.json: not valid JSON/);

    const noUser = ws.bundle('no-user');
    const spec = fse.readJsonSync(join(noUser, 'config.json'));
    delete spec.process.user;
    fse.writeJsonSync(join(noUser, 'config.json'), spec);
    await refusedCreate(t, noUser, 'no-user', /no-user\/config\.json: \/process must have required property 'user'/);
  });

  t.test('Strict with an /etc/group that cannot be read safely fails closed', async (t) => {
    const fifo = ws.bundle('fifo-group', { group: null });
    execFileSync('mkfifo', [join(fifo, 'rootfs', 'etc', 'group')]);
    await refusedCreate(t, fifo, 'fifo-group', /cannot read \/etc\/group in the image rootfs .*: not a regular file/);

    const dir = ws.bundle('dir-group', { group: null });
    fse.mkdirpSync(join(dir, 'rootfs', 'etc', 'group'));
    await refusedCreate(t, dir, 'dir-group', /\/etc\/group .*not a regular file/);

    const loop = ws.bundle('loop-group', { group: null });
    symlinkSync('group', join(loop, 'rootfs', 'etc', 'group'));
    await refusedCreate(t, loop, 'loop-group', /too many levels of symbolic links/);

    const ambiguous = ws.bundle('ambiguous-group', { group: null });
    writeFileSync(join(ambiguous, 'rootfs', 'etc', 'group.real'), 'group-in-image:x:50000:alice\n');
    symlinkSync('missing/../group.real', join(ambiguous, 'rootfs', 'etc', 'group'));
    await refusedCreate(t, ambiguous, 'ambiguous-group', /"missing" is missing but the path goes on through "\.\."/);
  });

  t.test('an image Strict refuses runs under Merge: nothing is read', async (t) => {
    // (A FIFO would not do: runc's own init reads /etc/group for user:group.)
    const bundle = ws.bundle('ambiguous-merge', { group: null, args: ['id', '-G'], annotations: { [POLICY]: 'Merge' } });
    symlinkSync('missing/../group.real', join(bundle, 'rootfs', 'etc', 'group'));
    const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'ambiguous-merge']);
    t.equal(result.exitCode, 0, result.stderr);
    t.equal(result.stdout.trim(), '1000 50000 60000');
  });

  t.test('symlinks resolve inside the rootfs, as the container sees them', async (t) => {
    const bundle = ws.bundle('symlinked', { group: null, args: ['id', '-G'] });
    // An absolute link to a host path that also exists inside the image.
    fse.mkdirpSync(join(bundle, 'rootfs', 'usr', 'lib'));
    writeFileSync(join(bundle, 'rootfs', 'usr', 'lib', 'group'), 'group-in-image:x:50000:alice\n');
    symlinkSync('/usr/lib/group', join(bundle, 'rootfs', 'etc', 'group'));
    const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'symlinked']);
    t.equal(result.exitCode, 0, result.stderr);
    t.equal(result.stdout.trim(), '1000 60000');
  });

  t.test('keep-gids: only when the node honours it', async (t) => {
    const annotations = { 'strict-groups.io/keep-gids': '50000' };
    const ignored = ws.bundle('keep-ignored', { annotations });
    t.equal((await shim(ws, runtime, [...root, 'run', '--bundle', ignored, 'keep-ignored'])).stdout.trim(), STRICT_GROUPS);

    ws.configure({ honorKeepGids: true });
    t.teardown(() => ws.configure({}));
    const honoured = ws.bundle('keep-honoured', { annotations });
    t.equal((await shim(ws, runtime, [...root, 'run', '--bundle', honoured, 'keep-honoured'])).stdout.trim(), MERGED_GROUPS);
    t.equal(fse.readJsonSync(join(honoured, 'config.json')).annotations[REMOVED], '', 'nothing removed, on record');

    const invalid = ws.bundle('keep-invalid', { annotations: { 'strict-groups.io/keep-gids': '50000,abc' } });
    await refusedCreate(t, invalid, 'keep-invalid', /invalid pod annotation strict-groups\.io\/keep-gids="50000,abc"/);
  });

  t.test('the rewrite keeps every other field, big integers included', async (t) => {
    const bundle = ws.bundle('fields');
    const path = join(bundle, 'config.json');
    const text = readFileSync(path, 'utf8').replace(/^\{/, '{"x-vendor": {"limit": 9223372036854775807, "ratio": 1.50, "list": [18446744073709551615]},');
    writeFileSync(path, text);
    const result = await shim(ws, runtime, [...root, 'run', '--bundle', bundle, 'fields']);
    t.equal(result.exitCode, 0, result.stderr);
    t.match(readFileSync(path, 'utf8'), '"x-vendor":{"limit":9223372036854775807,"ratio":1.50,"list":[18446744073709551615]}');
    t.same(fse.readdirSync(bundle).sort(), ['config.json', 'rootfs'], 'no temporary file left');
  });

  t.test('the real runtime: missing, or the shim itself', async (t) => {
    ws.configure({ runtime: '/nonexistent/runc' });
    t.teardown(() => ws.configure({}));
    const r1 = await shim(ws, runtime, [...root, 'state', 'x']);
    t.equal(r1.exitCode, 1);
    t.match(r1.stderr, /^strict-groups: runtime \/nonexistent\/runc is not an executable file$/);

    ws.configure({ runtime: SHIM });
    const r2 = await shim(ws, runtime, [...root, 'state', 'x']);
    t.equal(r2.exitCode, 1);
    t.match(r2.stderr, /is strict-groups-runtime itself/);

    const link = join(ws.dir, runtime.name);
    symlinkSync(SHIM, link);
    ws.configure({ runtime: runtime.name });
    const r3 = await shim(ws, runtime, [...root, 'state', 'x'], { env: { PATH: ws.dir } });
    t.match(r3.stderr, new RegExp(`runtime .*/${runtime.name} is strict-groups-runtime itself`), 'found on PATH through a symlink');
  });

  t.test('a broken node configuration stops creates and execs, not state/kill/delete', async (t) => {
    writeFileSync(ws.configFile, JSON.stringify({ runtime: runtime.name, defaultPolicy: 'Strict', allowOverride: true }));
    t.teardown(() => ws.configure({}));
    const bundle = ws.bundle('broken-config');
    await refusedCreate(t, bundle, 'broken-config', /strict-groups: .*strict-groups\.json: \(top level\) unknown key "allowOverride"/);

    // Pods must still stop: state, kill and delete reach the runtime the file names.
    const log = join(ws.dir, 'broken-config.log');
    const [viaShim, real] = await Promise.all([
      shim(ws, runtime, [...root, '--log', log, '--log-format', 'json', 'state', 'no-such']),
      direct(runtime, [...root, '--log', `${log}.direct`, '--log-format', 'json', 'state', 'no-such']),
    ]);
    t.equal(viaShim.exitCode, real.exitCode, 'runc answered');
    t.equal(viaShim.stderr, real.stderr);
    const warning = JSON.parse(readFileSync(log, 'utf8').split('\n')[0]!);
    t.equal(warning.level, 'warning');
    t.match(warning.msg, new RegExp(`unknown key "allowOverride"; passing state on to runtime "${runtime.name}"`));
  });

  t.test('command lines the shim cannot read with certainty are refused', async (t) => {
    const bundle = ws.bundle('unclear');
    await refusedCreate(t, bundle, 'unclear', /refusing to run: unknown global option --frobnicate/, ['--frobnicate']);
    const result = await shim(ws, runtime, [...root, 'create', '--config', 'other.json', '--bundle', bundle, 'unclear']);
    t.equal(result.exitCode, 1);
    t.match(result.stderr, /unsupported option --config/);
  });

  t.test('exec refusals: no container, or a record the shim cannot have written', async (t) => {
    const file = join(ws.dir, 'exec-process.json');
    fse.writeJsonSync(file, { terminal: false, user: { uid: 1000, gid: 1000, additionalGids: [1000, 50000] }, args: ['id'], cwd: '/' });
    const missing = await shim(ws, runtime, [...root, 'exec', '--process', file, 'no-such-container']);
    t.equal(missing.exitCode, 1);
    t.equal(missing.stderr, `strict-groups: cannot look up container no-such-container with ${runtime.path} state: ${noSuchContainer(runtime, ws.stateRoot, 'no-such-container')}`);

    // A container created by plain runc with a hand-made record (no shim can write this).
    const bundle = ws.bundle('forged-record', { args: ['sleep', '300'], annotations: { [REMOVED]: 'fifty' } });
    t.equal((await direct(runtime, [...root, 'create', '--bundle', bundle, 'forged-record'], { output: 'ignore' })).exitCode, 0);
    const before = readFileSync(file);
    const forged = await shim(ws, runtime, [...root, 'exec', '--process', file, 'forged-record']);
    t.equal(forged.exitCode, 1);
    t.match(forged.stderr, /invalid annotation strict-groups\.io\/removed-gids="fifty" in the container's state/);
    t.same(readFileSync(file), before, 'process file untouched');
  });

  t.test('a symlinked bundle: root.path is relative to where the bundle really is, as for runc', async (t) => {
    const real = ws.bundle('physical/real', { args: ['id', '-G'] });
    fse.moveSync(join(real, 'rootfs'), join(ws.dir, 'physical', 'rootfs2'));
    const spec = fse.readJsonSync(join(real, 'config.json'));
    spec.root.path = '../rootfs2';
    fse.writeJsonSync(join(real, 'config.json'), spec);
    // A decoy beside the symlink, where a logical join would look.
    fse.mkdirpSync(join(ws.dir, 'rootfs2', 'etc'));
    fse.writeFileSync(join(ws.dir, 'rootfs2', 'etc', 'passwd'), 'nobody:x:65534:65534::/:/bin/sh\n');
    symlinkSync(join(ws.dir, 'physical', 'real'), join(ws.dir, 'link'));
    const result = await shim(ws, runtime, [...root, 'run', '--bundle', join(ws.dir, 'link'), 'symlinked-bundle']);
    t.equal(result.exitCode, 0, result.stderr);
    t.equal(result.stdout.trim(), '1000 60000');
  });

  t.test('dry run: the decision as JSON, nothing changed', async (t) => {
    const bundle = ws.bundle('dry');
    const before = readFileSync(join(bundle, 'config.json'));
    const result = await shim(ws, runtime, ['strict-groups', 'dry-run', '--bundle', bundle]);
    t.equal(result.exitCode, 0, result.stderr);
    const decision = JSON.parse(result.stdout);
    t.same(
      [decision.policy, decision.policySource, decision.imageGids, decision.removed, decision.additionalGids],
      ['Strict', 'node-default', [50000], [50000], { before: [1000, 50000, 60000], after: [1000, 60000] }],
    );
    t.same(readFileSync(join(bundle, 'config.json')), before);
  });
});
