import t, { type Test } from 'tap';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DECISION_ANNOTATION, KEEP_GIDS_ANNOTATION, POLICY_ANNOTATION, REMOVED_GIDS_ANNOTATION } from '../../src/annotations';
import type { BundleConfig } from '../../src/bundle';
import { decideCreate, prepareCreate } from '../../src/create';
import { ShimError } from '../../src/errors';
import type { DeclaredGids } from '../../src/declared-gids';

type Settings = Parameters<typeof decideCreate>[1];

const STRICT: Settings = { defaultPolicy: 'Strict', allowPolicyOverride: true, honorKeepGids: false };
const MERGE: Settings = { defaultPolicy: 'Merge', allowPolicyOverride: true, honorKeepGids: false };
const STRICT_KEEP: Settings = { defaultPolicy: 'Strict', allowPolicyOverride: true, honorKeepGids: true };

/** The FACTS seed: alice (1000), image group 50000, pod supplementalGroups 60000. */
/** `null` leaves additionalGids out. */
function config(additionalGids: number[] | null = [1000, 50000, 60000], annotations?: Record<string, string>): BundleConfig {
  const user: BundleConfig['process']['user'] = { uid: 1000, gid: 1000 };
  if (additionalGids !== null) user.additionalGids = additionalGids;
  const result: BundleConfig = { process: { user, args: ['sh'] }, root: { path: 'rootfs' } };
  if (annotations !== undefined) result.annotations = annotations;
  return result;
}

/** What the shim knows of a plain bundle's declaration: nothing. */
const PLAIN: DeclaredGids = { known: false, why: 'not a CRI container (no CRI annotations in config.json)' };
const declaredBy = (...gids: number[]): DeclaredGids => ({ known: true, gids, source: 'the test CRI' });

/** A fake image reader that records its calls. */
function fakeImage(gids: number[]): { of: (uid: number) => Set<number>; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    of: (uid) => {
      calls.push(uid);
      return new Set(gids);
    },
  };
}

t.test('decideCreate', async (t) => {
  t.test('Strict removes the image gids and records them', async (t) => {
    const image = fakeImage([50000]);
    const decision = decideCreate(config(), STRICT, PLAIN, image.of);
    t.same(image.calls, [1000], 'the image is asked about the process uid');
    t.same(decision, {
      policy: 'Strict',
      policySource: 'node-default',
      uid: 1000,
      gid: 1000,
      rule: 'image',
      ruleReason: PLAIN.why,
      imageGids: [50000],
      additionalGids: { before: [1000, 50000, 60000], after: [1000, 60000] },
      removed: [50000],
      gids: [
        { gid: 1000, kept: 'primary' },
        { gid: 50000, removed: 'from-image' },
        { gid: 60000, kept: 'not-from-image' },
      ],
      record: '50000',
      decisionRecord: JSON.stringify({ policy: 'Strict', policySource: 'node-default', rule: 'image', ruleReason: PLAIN.why, removed: [50000] }),
      changed: true,
    });
  });

  t.test('the primary gid stays even when the image grants it', async (t) => {
    // A group named like the user (alice:x:1000:alice) makes 1000 image-derived.
    const decision = decideCreate(config(), STRICT, PLAIN, fakeImage([50000, 1000]).of);
    t.same(decision.additionalGids.after, [1000, 60000]);
    t.same(decision.removed, [50000]);
    t.same(decision.gids[0], { gid: 1000, kept: 'primary' });
    t.same(decision.imageGids, [1000, 50000], 'sorted');
    t.equal(decision.record, '50000');
  });

  t.test('Strict with nothing to remove still records an empty removal', async (t) => {
    // "" tells exec that Strict ran; an absent record means Merge.
    const decision = decideCreate(config([1000, 60000]), STRICT, PLAIN, fakeImage([50000]).of);
    t.same(decision.additionalGids.after, [1000, 60000]);
    t.same(decision.removed, []);
    t.equal(decision.record, '');
    t.equal(decision.changed, true);
  });

  t.test('no additionalGids at all', async (t) => {
    const decision = decideCreate(config(null), STRICT, PLAIN, fakeImage([50000]).of);
    t.same(decision.additionalGids, { before: [], after: [] });
    t.same(decision.removed, []);
  });

  t.test('without the CRI runtime\'s word, a gid both the pod and the image grant is removed (the safe failure)', async (t) => {
    // additionalGids cannot tell where 60000 came from; leaving it could be the leak.
    const decision = decideCreate(config([1000, 50000, 60000]), STRICT, PLAIN, fakeImage([50000, 60000]).of);
    t.same(decision.additionalGids.after, [1000]);
    t.same(decision.removed, [50000, 60000]);
    t.equal(decision.record, '50000,60000');
  });

  t.test('with the CRI runtime\'s word, a gid the pod declared stays though the image grants it', async (t) => {
    // supplementalGroups [50000, 60000] on the seed image: native Strict gives 1000 50000 60000.
    const image = fakeImage([50000]);
    const decision = decideCreate(config(), STRICT, declaredBy(50000, 60000), image.of);
    t.same(image.calls, [], 'the image is not read');
    t.same(decision, {
      policy: 'Strict',
      policySource: 'node-default',
      uid: 1000,
      gid: 1000,
      rule: 'declared',
      ruleReason: 'the test CRI',
      declaredGids: [50000, 60000],
      additionalGids: { before: [1000, 50000, 60000], after: [1000, 50000, 60000] },
      removed: [],
      gids: [
        { gid: 1000, kept: 'primary' },
        { gid: 50000, kept: 'declared' },
        { gid: 60000, kept: 'declared' },
      ],
      record: '',
      decisionRecord: '{"policy":"Strict","policySource":"node-default","rule":"declared","ruleReason":"the test CRI","removed":[]}',
      changed: true,
    });
  });

  t.test('the declared rule removes every undeclared gid, whatever a reader of the image would find', async (t) => {
    const decision = decideCreate(config([0, 4, 1000, 60000]), STRICT, declaredBy(60000), fakeImage([]).of);
    t.same(decision.additionalGids.after, [1000, 60000]);
    t.same(decision.removed, [0, 4]);
    t.equal(decision.record, '0,4');
  });

  t.test('the declared rule keeps honoured keep-gids', async (t) => {
    const decision = decideCreate(config([1000, 50000, 50001, 60000], { [KEEP_GIDS_ANNOTATION]: '50001' }), STRICT_KEEP, declaredBy(60000), fakeImage([]).of);
    t.same(decision.additionalGids.after, [1000, 50001, 60000]);
    t.same(decision.gids[2], { gid: 50001, kept: 'keep-gids' });
  });

  t.test('an answer declaring a gid config.json lacks is not about this bundle: the image rule decides', async (t) => {
    const image = fakeImage([50000]);
    const decision = decideCreate(config(), STRICT, declaredBy(60000, 70000), image.of);
    t.same(image.calls, [1000]);
    t.equal(decision.rule, 'image');
    t.equal(decision.ruleReason, 'the test CRI declares gids config.json does not hold (70000)');
    t.equal(decision.declaredGids, undefined);
    t.same(decision.additionalGids.after, [1000, 60000]);
  });

  t.test('no answer: the image rule decides and the reason is kept', async (t) => {
    const decision = decideCreate(config(), STRICT, { known: false, why: 'no socket' }, fakeImage([50000]).of);
    t.same([decision.rule, decision.ruleReason, decision.imageGids], ['image', 'no socket', [50000]]);
  });

  t.test('Audit where Strict would refuse: an invalid keep-gids list on a node that honours it', async (t) => {
    const decision = decideCreate(config(undefined, { [KEEP_GIDS_ANNOTATION]: 'x' }), { ...STRICT_KEEP, defaultPolicy: 'Audit' }, PLAIN, fakeImage([50000]).of);
    t.match(decision, { policy: 'Audit', wouldRemove: [], wouldRefuse: /keep-gids="x"/ });
    t.same(decision.additionalGids.after, [1000, 50000, 60000], 'the container runs as it would under Merge');
  });

  t.test('Audit where Strict would refuse says which rule and why', async (t) => {
    const unreadable = (): Set<number> => {
      throw new ShimError('cannot read /etc/group in the image rootfs /r: not a regular file');
    };
    const decision = decideCreate(config(), { ...STRICT, defaultPolicy: 'Audit' }, declaredBy(60000, 70000), unreadable);
    t.same([decision.rule, decision.ruleReason], ['image', 'the test CRI declares gids config.json does not hold (70000)']);
    t.match(decision.wouldRefuse, /not a regular file/);
  });

  t.test('a node that forbids overrides enforces Strict over a Merge annotation', async (t) => {
    const image = fakeImage([50000]);
    const locked: Settings = { defaultPolicy: 'Strict', allowPolicyOverride: false, honorKeepGids: false };
    const decision = decideCreate(config(undefined, { [POLICY_ANNOTATION]: 'Merge' }), locked, PLAIN, image.of);
    t.equal(decision.policy, 'Strict');
    t.equal(decision.policySource, 'node-enforced');
    t.same(decision.removed, [50000]);
    t.same(image.calls, [1000]);
  });

  t.test('Merge changes no gid, never reads the image, and records itself', async (t) => {
    const image = fakeImage([50000]);
    const decision = decideCreate(config(), MERGE, PLAIN, image.of);
    t.same(image.calls, [], 'imageGidsOf not called');
    t.same(decision, {
      policy: 'Merge',
      policySource: 'node-default',
      uid: 1000,
      gid: 1000,
      rule: 'none',
      ruleReason: 'Merge keeps every gid',
      additionalGids: { before: [1000, 50000, 60000], after: [1000, 50000, 60000] },
      removed: [],
      gids: [
        { gid: 1000, kept: 'merge' },
        { gid: 50000, kept: 'merge' },
        { gid: 60000, kept: 'merge' },
      ],
      record: undefined,
      decisionRecord: '{"policy":"Merge","policySource":"node-default","rule":"none","ruleReason":"Merge keeps every gid"}',
      changed: true,
    });
  });

  t.test('Merge by annotation over a Strict node', async (t) => {
    const image = fakeImage([50000]);
    const decision = decideCreate(config(undefined, { [POLICY_ANNOTATION]: 'Merge' }), STRICT, PLAIN, image.of);
    t.equal(decision.policy, 'Merge');
    t.equal(decision.policySource, 'annotation');
    t.same(decision.additionalGids.after, decision.additionalGids.before);
    t.same(image.calls, []);
  });

  t.test('Merge drops a removal record the pod supplied', async (t) => {
    // Under Merge exec must not strip anything; a pod-set record is removed.
    const image = fakeImage([50000]);
    const decision = decideCreate(config([1000, 50000, 60000], { [REMOVED_GIDS_ANNOTATION]: '50000' }), MERGE, PLAIN, image.of);
    t.equal(decision.record, undefined);
    t.equal(decision.changed, true);
    t.same(decision.additionalGids.after, [1000, 50000, 60000]);
    t.same(image.calls, []);
  });

  t.test('keep-gids honoured only with honorKeepGids', async (t) => {
    const annotations = { [KEEP_GIDS_ANNOTATION]: '50000' };
    const ignored = decideCreate(config([1000, 50000, 50001, 60000], annotations), STRICT, PLAIN, fakeImage([50000, 50001]).of);
    t.same(ignored.additionalGids.after, [1000, 60000]);
    t.same(ignored.removed, [50000, 50001]);
    t.equal(ignored.record, '50000,50001');

    const honoured = decideCreate(config([1000, 50000, 50001, 60000], annotations), STRICT_KEEP, PLAIN, fakeImage([50000, 50001]).of);
    t.same(honoured.additionalGids.after, [1000, 50000, 60000]);
    t.same(honoured.removed, [50001]);
    t.same(honoured.gids[1], { gid: 50000, kept: 'keep-gids' });
    t.equal(honoured.record, '50001');
  });

  t.test('invalid annotations are ShimErrors', async (t) => {
    t.throws(() => decideCreate(config(undefined, { [POLICY_ANNOTATION]: 'strict' }), STRICT, PLAIN, fakeImage([]).of), {
      name: 'ShimError',
      message: /supplemental-groups-policy="strict"/,
    });
    t.throws(() => decideCreate(config(undefined, { [KEEP_GIDS_ANNOTATION]: 'x' }), STRICT_KEEP, PLAIN, fakeImage([]).of), {
      name: 'ShimError',
      message: /keep-gids="x"/,
    });
  });

  t.test('a sandbox tolerates invalid annotations with the stricter reading', async (t) => {
    // containerd copies pod annotations to the pause container too; the error belongs to the containers.
    const sandbox = { 'io.kubernetes.cri.container-type': 'sandbox' };
    const policy = decideCreate(config(undefined, { ...sandbox, [POLICY_ANNOTATION]: 'strict' }), MERGE, PLAIN, fakeImage([50000]).of);
    t.equal(policy.policy, 'Merge', 'the node default');
    t.equal(policy.policySource, 'invalid-annotation-on-sandbox');
    const keep = decideCreate(config(undefined, { ...sandbox, [KEEP_GIDS_ANNOTATION]: 'x' }), STRICT_KEEP, PLAIN, fakeImage([50000]).of);
    t.notOk(keep.gids.some((verdict) => 'kept' in verdict && verdict.kept === 'keep-gids'), 'an invalid keep list keeps nothing');
    t.same(keep.removed, [50000]);
    t.throws(
      () => decideCreate(config(undefined, { 'io.kubernetes.cri.container-type': 'container', [POLICY_ANNOTATION]: 'strict' }), STRICT, PLAIN, fakeImage([]).of),
      { name: 'ShimError' },
      'a workload container still fails',
    );
  });

  t.test('a second decision over a rewritten config keeps the record, changes nothing', async (t) => {
    // runc create run twice in one bundle: the first removal must stay on record for exec.
    const first = decideCreate(config(), STRICT, PLAIN, fakeImage([50000]).of);
    const rewritten = config(first.additionalGids.after, { [REMOVED_GIDS_ANNOTATION]: first.record ?? 'missing', [DECISION_ANNOTATION]: first.decisionRecord });
    const second = decideCreate(rewritten, STRICT, PLAIN, fakeImage([50000]).of);
    t.same(second.additionalGids, { before: [1000, 60000], after: [1000, 60000] });
    t.same(second.removed, []);
    t.equal(second.record, '50000');
    t.equal(second.changed, false);
  });

  t.test('an earlier record and a new removal are united', async (t) => {
    const decision = decideCreate(config([1000, 50000, 60000], { [REMOVED_GIDS_ANNOTATION]: '70000' }), STRICT, PLAIN, fakeImage([50000]).of);
    t.same(decision.removed, [50000]);
    t.equal(decision.record, '70000,50000');
    t.equal(decision.changed, true);
    // An overlap is recorded once.
    const overlap = decideCreate(config([1000, 50000], { [REMOVED_GIDS_ANNOTATION]: '50000' }), STRICT, PLAIN, fakeImage([50000]).of);
    t.equal(overlap.record, '50000');
  });
});

/* ------------------------------------------------------------------------ */

/** prepareCreate on a plain bundle: no CRI annotations, so nobody is asked. */
function create(bundle: string, settings: Settings, options: { dryRun?: boolean } = {}): ReturnType<typeof prepareCreate> {
  return prepareCreate({ bundle, id: 'test-container', env: {}, ...options }, settings);
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n';
const GROUP = 'root:x:0:\nalice:x:1000:\ngroup-in-image:x:50000:alice\n';

/**
 * A config.json as a CRI runtime could write it: fields the shim knows
 * nothing about, an int64 a double cannot hold, numbers in unusual spellings.
 */
const CONFIG_TEXT = `{
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": { "uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [1000, 50000, 60000] },
    "args": ["sh", "-c", "id"],
    "x-unknown": { "nested": [1, 2.50, "s", null, true], "neg": -0 }
  },
  "root": { "path": "rootfs", "readonly": true },
  "linux": { "resources": { "memory": { "limit": 9223372036854775807, "swap": -1 }, "cpu": { "shares": 1E3 } } },
  "annotations": { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-name": "pod" },
  "futureField": {}
}
`;

/** What the shim records of that create: containerd's annotations, but no socket in the environment. */
const DECISION_TEXT = JSON.stringify({
  policy: 'Strict',
  policySource: 'node-default',
  rule: 'image',
  ruleReason: "containerd named no gRPC socket in the runtime's environment (GRPC_ADDRESS unset, TTRPC_ADDRESS null)",
  removed: [50000],
});

/** The same document after Strict, as the shim writes it: compact, only the gids and the records changed. */
const REWRITTEN_TEXT =
  '{"ociVersion":"1.0.2-dev",' +
  '"process":{"terminal":false,"user":{"uid":1000,"gid":1000,"umask":18,"additionalGids":[1000,60000]},' +
  '"args":["sh","-c","id"],"x-unknown":{"nested":[1,2.50,"s",null,true],"neg":-0}},' +
  '"root":{"path":"rootfs","readonly":true},' +
  '"linux":{"resources":{"memory":{"limit":9223372036854775807,"swap":-1},"cpu":{"shares":1E3}}},' +
  '"annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-name":"pod","strict-groups.io/removed-gids":"50000",' +
  `"strict-groups.io/decision":${JSON.stringify(DECISION_TEXT)}},` +
  '"futureField":{}}';

function makeBundle(t: Test, configText: string = CONFIG_TEXT, etc: Record<string, string> = { passwd: PASSWD, group: GROUP }): string {
  const bundle = mkdtempSync(join(tmpdir(), 'strict-groups-bundle-'));
  t.teardown(() => rmSync(bundle, { recursive: true, force: true }));
  mkdirSync(join(bundle, 'rootfs', 'etc'), { recursive: true });
  for (const [name, content] of Object.entries(etc)) writeFileSync(join(bundle, 'rootfs', 'etc', name), content);
  writeFileSync(join(bundle, 'config.json'), configText);
  chmodSync(join(bundle, 'config.json'), 0o640);
  return bundle;
}

const configOf = (bundle: string): string => readFileSync(join(bundle, 'config.json'), 'utf8');

t.test('prepareCreate', async (t) => {
  t.test('Strict rewrites config.json, keeping everything else as it was', async (t) => {
    const bundle = makeBundle(t);
    const { decision } = await create(bundle, STRICT);
    t.same(decision.removed, [50000]);
    t.same(decision.imageGids, [50000], 'read from the rootfs');
    t.equal(decision.changed, true);

    const text = configOf(bundle);
    // A plain JSON.parse would have written 9223372036854776000. Keeping the
    // source text needs JSON.rawJSON (Node >= 21; the shipped binary is Node 24).
    const skip = typeof (JSON as { rawJSON?: unknown }).rawJSON === 'function' ? false : `JSON.rawJSON is missing in Node ${process.version}`;
    t.match(text, '"limit":9223372036854775807', 'the int64 survives', { skip });
    t.equal(text, REWRITTEN_TEXT, 'only the gids and the records changed', { skip });
    t.match(text, '"additionalGids":[1000,60000]');
    t.match(text, '"strict-groups.io/removed-gids":"50000"');
    t.equal(statSync(join(bundle, 'config.json')).mode & 0o7777, 0o640, 'mode kept');
    t.same(readdirSync(bundle).sort(), ['config.json', 'rootfs'], 'no temp files left behind');
  });

  t.test('a second create over the rewritten bundle leaves it alone', async (t) => {
    const bundle = makeBundle(t);
    await create(bundle, STRICT);
    const once = configOf(bundle);
    const { decision } = await create(bundle, STRICT);
    t.equal(decision.changed, false);
    t.equal(decision.record, '50000');
    t.equal(configOf(bundle), once);
  });

  t.test('dryRun decides but leaves the file byte-identical', async (t) => {
    const bundle = makeBundle(t);
    const { decision } = await create(bundle, STRICT, { dryRun: true });
    t.equal(decision.changed, true);
    t.same(decision.additionalGids.after, [1000, 60000]);
    t.equal(configOf(bundle), CONFIG_TEXT);
    t.same(readdirSync(bundle).sort(), ['config.json', 'rootfs']);
  });

  t.test('Merge leaves the gids alone and adds only its record', async (t) => {
    const bundle = makeBundle(t);
    const { decision } = await create(bundle, MERGE);
    t.equal(decision.changed, true);
    const merge = '{"policy":"Merge","policySource":"node-default","rule":"none","ruleReason":"Merge keeps every gid"}';
    t.match(configOf(bundle), '"additionalGids":[1000,50000,60000]', 'the gids as they were');
    t.match(configOf(bundle), `"strict-groups.io/decision":${JSON.stringify(merge)}`, 'the decision on record');
    t.notMatch(configOf(bundle), 'removed-gids', 'no removal record: exec strips nothing');
    const again = await create(bundle, MERGE);
    t.equal(again.decision.changed, false, 'a second create finds its record and writes nothing');
  });

  t.test('Audit leaves the gids alone, gives exec no record, and records what Strict would remove', async (t) => {
    const bundle = makeBundle(t);
    const { decision } = await create(bundle, { ...STRICT, defaultPolicy: 'Audit' });
    t.same([decision.policy, decision.rule, decision.removed, decision.wouldRemove, decision.imageGids], ['Audit', 'image', [], [50000], [50000]]);
    const text = configOf(bundle);
    t.match(text, '"additionalGids":[1000,50000,60000]');
    t.notMatch(text, 'removed-gids');
    t.match(JSON.parse(JSON.parse(text).annotations['strict-groups.io/decision']), { policy: 'Audit', rule: 'image', wouldRemove: [50000] });
  });

  t.test('Audit where Strict would fail closed: says so, and the container runs', async (t) => {
    const bundle = makeBundle(t, CONFIG_TEXT, { passwd: PASSWD });
    execFileSync('mkfifo', [join(bundle, 'rootfs', 'etc', 'group')]);
    const { decision } = await create(bundle, { ...STRICT, defaultPolicy: 'Audit' });
    t.match(decision, { policy: 'Audit', wouldRemove: [], wouldRefuse: /cannot read \/etc\/group .*not a regular file/ });
    t.same(decision.additionalGids.after, [1000, 50000, 60000]);
  });

  t.test('owner and mode are kept', async (t) => {
    const bundle = makeBundle(t);
    const path = join(bundle, 'config.json');
    chownSync(path, 1234, 5678);
    chmodSync(path, 0o604);
    await create(bundle, STRICT);
    const stat = statSync(path);
    t.same([stat.uid, stat.gid, stat.mode & 0o7777], [1234, 5678, 0o604]);
    t.match(configOf(bundle), '"additionalGids":[1000,60000]', 'and it was rewritten');
  });

  t.test('Merge drops a pod-supplied removal record from config.json', async (t) => {
    // Nothing else may change: the gids stay, other annotations keep their order.
    const text = '{"process":{"user":{"uid":1000,"gid":1000,"additionalGids":[1000,50000,60000]}},"root":{"path":"rootfs"},' +
      '"annotations":{"a":"1","strict-groups.io/removed-gids":"50000","z":"2"},"x":[1.5]}';
    const bundle = makeBundle(t, text);
    const { decision } = await create(bundle, MERGE);
    t.equal(decision.changed, true);
    const merge = '{"policy":"Merge","policySource":"node-default","rule":"none","ruleReason":"Merge keeps every gid"}';
    t.equal(configOf(bundle), '{"process":{"user":{"uid":1000,"gid":1000,"additionalGids":[1000,50000,60000]}},"root":{"path":"rootfs"},' +
      `"annotations":{"a":"1","z":"2","strict-groups.io/decision":${JSON.stringify(merge)}},"x":[1.5]}`);
    t.same(readdirSync(bundle).sort(), ['config.json', 'rootfs']);
  });

  t.test('the returned config is the document as loaded', async (t) => {
    const bundle = makeBundle(t);
    const { config } = await create(bundle, STRICT);
    t.same(config.process.user.additionalGids, [1000, 50000, 60000]);
    t.equal(config.root.path, 'rootfs');
  });

  t.test('no /etc/passwd: no image groups, and /etc/group is never read', async (t) => {
    // A FIFO as /etc/group would fail the read; without a passwd entry it is not needed.
    const bundle = makeBundle(t, CONFIG_TEXT, {});
    execFileSync('mkfifo', [join(bundle, 'rootfs', 'etc', 'group')]);
    const { decision } = await create(bundle, STRICT);
    t.same(decision.imageGids, []);
    t.same(decision.removed, []);
    t.equal(decision.record, '');
  });

  t.test('an unreadable /etc/group fails the create and leaves config.json alone', async (t) => {
    const bundle = makeBundle(t, CONFIG_TEXT, { passwd: PASSWD });
    execFileSync('mkfifo', [join(bundle, 'rootfs', 'etc', 'group')]);
    await t.rejects(create(bundle, STRICT), { name: 'ShimError', message: /cannot read \/etc\/group .*not a regular file/ });
    t.equal(configOf(bundle), CONFIG_TEXT);
  });

  t.test('invalid config.json is a ShimError naming the file; the file stays as it was', async (t) => {
    const cases: [string, string, RegExp][] = [
      ['bad JSON', '{"process": ', /: not valid JSON: /],
      ['missing process.user', '{"process": {"args": []}, "root": {"path": "rootfs"}}', /: \/process must have required property 'user'/],
      ['uid "x"', '{"process": {"user": {"uid": "x", "gid": 0}}, "root": {"path": "rootfs"}}', /: \/process\/user\/uid must be integer/],
      ['uid out of uint32', '{"process": {"user": {"uid": 4294967296, "gid": 0}}, "root": {"path": "rootfs"}}', /: \/process\/user\/uid must be <= 4294967295/],
      ['missing root', '{"process": {"user": {"uid": 0, "gid": 0}}}', /: \(top level\) must have required property 'root'/],
    ];
    for (const [what, text, message] of cases) {
      const bundle = makeBundle(t, text);
      const path = join(bundle, 'config.json');
      await t.rejects(create(bundle, STRICT), { name: 'ShimError', message }, what);
      await t.rejects(create(bundle, STRICT), { message: new RegExp('^' + path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + ': ') }, `${what}: names the file`);
      t.equal(configOf(bundle), text, `${what}: byte-identical`);
      t.same(readdirSync(bundle).sort(), ['config.json', 'rootfs'], `${what}: no temp files`);
    }
  });

  t.test('a missing config.json names the file', async (t) => {
    const bundle = makeBundle(t);
    rmSync(join(bundle, 'config.json'));
    await t.rejects(create(bundle, STRICT), { name: 'ShimError', message: `cannot open ${join(bundle, 'config.json')}: ENOENT` });
  });
});
