/**
 * Properties of the policy (src/policy.ts stripGids, src/create.ts
 * decideCreate) over arbitrary gid lists and configs: Strict only ever takes
 * gids away, never the primary gid, never reorders; Merge changes nothing.
 * test/unit/policy.test.ts and create-decision.test.ts hold the worked cases.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { KEEP_GIDS_ANNOTATION, POLICY_ANNOTATION, REMOVED_GIDS_ANNOTATION } from '../../src/annotations';
import type { BundleConfig } from '../../src/bundle';
import { decideCreate } from '../../src/create';
import { formatGidList, recordedRemoval, stripGids, type Policy, type StripResult } from '../../src/policy';
import { assertProperty, gid, gidList, gidSet, isSubsequence, text } from '../helpers/properties';

const RUNS = { numRuns: 500 };

/** stripGids' inputs: additionalGids, unwanted (the image's gids), the primary gid, keep-gids. */
const stripInput = fc.tuple(gidList, gidSet, gid, gidSet);

/** Counts of each gid in a list. */
function occurrences(gids: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const g of gids) counts.set(g, (counts.get(g) ?? 0) + 1);
  return counts;
}

/** The stripGids properties, as one predicate so that a deliberately broken stripper can be held to it too. */
function stripLaws(strip: typeof stripGids): (input: [number[], Set<number>, number, Set<number>]) => void {
  return ([before, unwanted, primary, keep]) => {
    const result: StripResult = strip(before, unwanted, primary, keep);
    const after = result.additionalGids;
    assert.ok(isSubsequence(after, before), 'never adds a gid, never reorders');
    const countsBefore = occurrences(before);
    const countsAfter = occurrences(after);
    for (const [g, count] of countsBefore) {
      // A gid that stays keeps every occurrence: the primary gid, keep-gids, whatever the image did not grant.
      if (g === primary || keep.has(g) || !unwanted.has(g)) assert.equal(countsAfter.get(g), count, `gid ${g} kept whole`);
    }
    const removed = new Set(result.removed);
    assert.equal(removed.size, result.removed.length, 'removed lists each gid once');
    for (const g of countsBefore.keys()) assert.ok(countsAfter.has(g) !== removed.has(g), `gid ${g} either stays or is removed`);
    assert.deepEqual(result.removed, [...new Set(before)].filter((g) => removed.has(g)), 'removed in the order the gids stood');
    assert.ok(result.removed.every((g) => unwanted.has(g)), 'only unwanted gids are removed');
    assert.deepEqual(
      result.kept,
      [...new Set(before)].filter((g) => unwanted.has(g) && (g === primary || keep.has(g))),
      'kept: the unwanted gids that stay, once each, in order',
    );
  };
}

t.test('stripGids: never adds, never reorders, keeps the primary gid and keep-gids', async (t) => {
  assertProperty(fc.property(stripInput, stripLaws(stripGids)), RUNS);
  t.pass('stripGids laws hold');

  // The laws catch a stripper that forgets the primary gid, and one that
  // removes only the first occurrence of an unwanted gid.
  const forgetsPrimary: typeof stripGids = (before, unwanted, _primary, keep) => stripGids(before, unwanted, -1, keep);
  const firstOnly: typeof stripGids = (before, unwanted, primary, keep) => {
    const result = stripGids(before, unwanted, primary, keep);
    const gone = new Set<number>();
    const additionalGids = before.filter((g) => {
      if (!result.removed.includes(g) || gone.has(g)) return true;
      gone.add(g);
      return false;
    });
    return { ...result, additionalGids };
  };
  t.ok(fc.check(fc.property(stripInput, stripLaws(forgetsPrimary)), RUNS).failed, 'a stripper that drops the primary gid fails them');
  t.ok(fc.check(fc.property(stripInput, stripLaws(firstOnly)), RUNS).failed, 'a stripper that removes only the first occurrence fails them');
});

type Settings = Parameters<typeof decideCreate>[1];

/** Annotations a pod or CRI runtime could set, the shim's own keys included with any value. */
const annotations: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      KEEP_GIDS_ANNOTATION,
      REMOVED_GIDS_ANNOTATION,
      'io.kubernetes.cri.container-type',
      'io.kubernetes.cri-o.ContainerType',
    ),
    text({ maxLength: 12 }),
  ),
  fc.oneof(fc.constantFrom('sandbox', 'container', ''), gidList.map(formatGidList), text({ maxLength: 12 })),
  { maxKeys: 5 },
);

/** A config with arbitrary user and annotations; `policy` sets or leaves out the policy annotation. */
function bundleConfig(policy: fc.Arbitrary<string | undefined>): fc.Arbitrary<BundleConfig> {
  return fc
    .record({ uid: gid, gid, additionalGids: fc.option(gidList, { nil: undefined }), annotations, policy })
    .map(({ uid, gid, additionalGids, annotations, policy }) => {
      const user: BundleConfig['process']['user'] = { uid, gid };
      if (additionalGids !== undefined) user.additionalGids = additionalGids;
      const withPolicy = { ...annotations };
      if (policy !== undefined) withPolicy[POLICY_ANNOTATION] = policy;
      return { process: { user, args: ['sh'] }, root: { path: 'rootfs' }, annotations: withPolicy };
    });
}

function nodeSettings(defaultPolicy: fc.Arbitrary<Policy>, allowPolicyOverride: fc.Arbitrary<boolean>): fc.Arbitrary<Settings> {
  return fc.record({ defaultPolicy, allowPolicyOverride, honorKeepGids: fc.boolean() });
}

/** Every way a node and a pod arrive at Merge: the annotation, the node default, the node enforcing it over any annotation. */
const mergeCase: fc.Arbitrary<[BundleConfig, Settings]> = fc.oneof(
  fc.tuple(bundleConfig(fc.constant('Merge')), nodeSettings(fc.constantFrom('Strict', 'Merge'), fc.constant(true))),
  fc.tuple(bundleConfig(fc.constant(undefined)), nodeSettings(fc.constant('Merge'), fc.boolean())),
  fc.tuple(bundleConfig(fc.option(text({ maxLength: 8 }), { nil: undefined })), nodeSettings(fc.constant('Merge'), fc.constant(false))),
);

t.test('decideCreate under Merge: additionalGids exactly as they were, image never read', async (t) => {
  assertProperty(
    fc.property(mergeCase, gidSet, ([config, settings], imageGids) => {
      const before = structuredClone(config.process.user.additionalGids);
      let imageRead = false;
      const decision = decideCreate(config, settings, () => {
        imageRead = true;
        return imageGids;
      });
      assert.equal(decision.policy, 'Merge');
      assert.equal(imageRead, false, 'the image is not read');
      assert.deepEqual(decision.additionalGids.after, before ?? [], 'additionalGids unchanged');
      assert.deepEqual(decision.removed, []);
      assert.equal(decision.record, undefined, 'no removal record: exec must strip nothing');
      assert.equal(decision.changed, config.annotations?.[REMOVED_GIDS_ANNOTATION] !== undefined, 'rewritten only to drop a pod-set record');
      assert.deepEqual(config.process.user.additionalGids, before, 'the config is not mutated');
    }),
    RUNS,
  );
  t.pass('Merge is the identity on additionalGids');
});

/** Strict configs that do not fail: a valid policy annotation or none, keep-gids a valid list or absent. */
const strictCase: fc.Arbitrary<[BundleConfig, Settings]> = fc
  .tuple(
    bundleConfig(fc.constantFrom('Strict', undefined)),
    fc.option(gidList.map(formatGidList), { nil: undefined }),
    nodeSettings(fc.constant('Strict'), fc.boolean()),
  )
  .map(([config, keepGids, settings]): [BundleConfig, Settings] => {
    const annotations = { ...config.annotations };
    if (keepGids === undefined) delete annotations[KEEP_GIDS_ANNOTATION];
    else annotations[KEEP_GIDS_ANNOTATION] = keepGids;
    return [{ ...config, annotations }, settings];
  });

t.test('decideCreate under Strict: only image gids go, the primary gid stays, the record covers the removal', async (t) => {
  assertProperty(
    fc.property(strictCase, gidSet, ([config, settings], imageGids) => {
      const { uid, gid: primary, additionalGids: before = [] } = config.process.user;
      const asked: number[] = [];
      const decision = decideCreate(config, settings, (u) => {
        asked.push(u);
        return imageGids;
      });
      assert.equal(decision.policy, 'Strict');
      assert.deepEqual(asked, [uid], 'the image is asked about the process uid, once');
      const after = decision.additionalGids.after;
      assert.ok(isSubsequence(after, before), 'after is before with gids left out, order kept');
      assert.ok(before.every((g) => after.includes(g) || imageGids.has(g)), 'only image gids go');
      assert.equal(after.filter((g) => g === primary).length, before.filter((g) => g === primary).length, 'the primary gid stays');
      assert.ok(decision.removed.every((g) => !after.includes(g)), 'a removed gid is gone entirely');
      // exec reads the record back with recordedRemoval: it must accept it and cover this removal.
      assert.notEqual(decision.record, undefined);
      const recorded = recordedRemoval({ [REMOVED_GIDS_ANNOTATION]: decision.record! });
      assert.ok(decision.removed.every((g) => recorded?.includes(g)), 'the record lists every removed gid');
    }),
    RUNS,
  );
  t.pass('Strict only subtracts image gids and records them');
});
