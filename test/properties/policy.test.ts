/**
 * Properties of the policy (src/policy.ts strictByImage and strictByDeclared,
 * src/create.ts decideCreate) over arbitrary gid lists and configs: Strict
 * only ever takes gids away, never the primary gid, never reorders; with the
 * CRI runtime's word it gives what native Strict gives; Merge changes nothing.
 * test/unit/policy.test.ts and create-decision.test.ts hold the worked cases.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { DECISION_ANNOTATION, KEEP_GIDS_ANNOTATION, POLICY_ANNOTATION, REMOVED_GIDS_ANNOTATION } from '../../src/annotations';
import type { BundleConfig } from '../../src/bundle';
import { decideCreate } from '../../src/create';
import type { DeclaredGids } from '../../src/declared-gids';
import { formatGidList, recordedRemoval, strictByDeclared, strictByImage, type Policy, type StrictOutcome } from '../../src/policy';
import { assertProperty, gid, gidList, gidSet, isSubsequence, text } from '../helpers/properties';

const RUNS = { numRuns: 500 };

/** A Strict rule's inputs: additionalGids, the gids it judges (image or declared), the primary gid, keep-gids. */
const ruleInput = fc.tuple(gidList, gidSet, gid, gidSet);
type RuleInput = [number[], Set<number>, number, Set<number>];
type Rule = (before: readonly number[], primary: number, judged: ReadonlySet<number>, keep: ReadonlySet<number>) => StrictOutcome;

/** Counts of each gid in a list. */
function occurrences(gids: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const g of gids) counts.set(g, (counts.get(g) ?? 0) + 1);
  return counts;
}

/**
 * The laws both Strict rules obey, as one predicate so that a deliberately
 * broken rule can be held to them too. `stays(g)` is what the rule keeps
 * besides the primary gid and keep-gids: for the image rule, a gid the image
 * does not grant; for the declared rule, a declared gid.
 */
function ruleLaws(rule: Rule, stays: (g: number, judged: ReadonlySet<number>) => boolean): (input: RuleInput) => void {
  return ([before, judged, primary, keep]) => {
    const outcome = rule(before, primary, judged, keep);
    const after = outcome.additionalGids;
    assert.ok(isSubsequence(after, before), 'never adds a gid, never reorders');
    const countsBefore = occurrences(before);
    const countsAfter = occurrences(after);
    for (const [g, count] of countsBefore) {
      const kept = g === primary || keep.has(g) || stays(g, judged);
      // A gid that stays keeps every occurrence; one that goes, goes entirely.
      assert.equal(countsAfter.get(g) ?? 0, kept ? count : 0, `gid ${g} ${kept ? 'kept whole' : 'gone'}`);
    }
    const removed = new Set(outcome.removed);
    assert.equal(removed.size, outcome.removed.length, 'removed lists each gid once');
    assert.deepEqual(outcome.removed, [...new Set(before)].filter((g) => removed.has(g)), 'removed in the order the gids stood');
    assert.deepEqual(outcome.verdicts.map((verdict) => verdict.gid), [...new Set(before)], 'one verdict per distinct gid, in order');
    for (const verdict of outcome.verdicts) {
      assert.equal('removed' in verdict, removed.has(verdict.gid), `gid ${verdict.gid}: the verdict says what happened`);
      if (verdict.gid === primary) assert.deepEqual(verdict, { gid: primary, kept: 'primary' }, 'the primary gid is said to stay as such');
    }
  };
}

const imageLaws = ruleLaws(strictByImage, (g, imageGids) => !imageGids.has(g));
const declaredLaws = ruleLaws(strictByDeclared, (g, declared) => declared.has(g));

t.test('Strict rules: never add, never reorder, keep the primary gid and keep-gids, judge every gid once', async (t) => {
  assertProperty(fc.property(ruleInput, imageLaws), RUNS);
  assertProperty(fc.property(ruleInput, declaredLaws), RUNS);
  t.pass('strictByImage and strictByDeclared laws hold');

  // The laws catch a rule that forgets the primary gid, one that removes only
  // the first occurrence of a gid, and the image rule standing in for the declared one.
  const forgetsPrimary: Rule = (before, _primary, judged, keep) => strictByImage(before, -1, judged, keep);
  const firstOnly: Rule = (before, primary, judged, keep) => {
    const outcome = strictByImage(before, primary, judged, keep);
    const gone = new Set<number>();
    const additionalGids = before.filter((g) => {
      if (!outcome.removed.includes(g) || gone.has(g)) return true;
      gone.add(g);
      return false;
    });
    return { ...outcome, additionalGids };
  };
  t.ok(fc.check(fc.property(ruleInput, ruleLaws(forgetsPrimary, (g, s) => !s.has(g))), RUNS).failed, 'a rule that drops the primary gid fails them');
  t.ok(fc.check(fc.property(ruleInput, ruleLaws(firstOnly, (g, s) => !s.has(g))), RUNS).failed, 'a rule that removes only the first occurrence fails them');
  t.ok(fc.check(fc.property(ruleInput, ruleLaws(strictByImage, (g, s) => s.has(g))), RUNS).failed, 'the image rule fails the declared rule\'s laws');
});

type Settings = Parameters<typeof decideCreate>[1];

const NOT_KNOWN: DeclaredGids = { known: false, why: 'not asked' };
/** Whatever the CRI runtime may have said. */
const declaredArbitrary: fc.Arbitrary<DeclaredGids> = fc.oneof(
  fc.constant(NOT_KNOWN),
  gidList.map((gids): DeclaredGids => ({ known: true, gids, source: 'a CRI' })),
);

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
    fc.property(mergeCase, gidSet, declaredArbitrary, ([config, settings], imageGids, declared) => {
      const before = structuredClone(config.process.user.additionalGids);
      let imageRead = false;
      const decision = decideCreate(config, settings, declared, () => {
        imageRead = true;
        return imageGids;
      });
      assert.equal(decision.policy, 'Merge');
      assert.equal(imageRead, false, 'the image is not read');
      assert.deepEqual(decision.additionalGids.after, before ?? [], 'additionalGids unchanged');
      assert.deepEqual(decision.removed, []);
      assert.equal(decision.record, undefined, 'no removal record: exec must strip nothing');
      assert.deepEqual(JSON.parse(decision.decisionRecord), { policy: 'Merge', policySource: decision.policySource, rule: 'none', ruleReason: 'Merge keeps every gid' });
      assert.equal(
        decision.changed,
        config.annotations?.[REMOVED_GIDS_ANNOTATION] !== undefined || config.annotations?.[DECISION_ANNOTATION] !== decision.decisionRecord,
        'rewritten only to drop a pod-set record or to record itself',
      );
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
      const decision = decideCreate(config, settings, NOT_KNOWN, (u) => {
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

/** Native Strict (containerd 2.x): the primary gid and every declared gid, sorted and de-duplicated. */
function nativeStrict(primary: number, declared: readonly number[]): number[] {
  return [...new Set([primary, ...declared])].sort((a, b) => a - b);
}

t.test('decideCreate under Strict with the CRI runtime\'s word: what native Strict gives, from what containerd 1.x merged', async (t) => {
  // containerd 1.6.18+/1.7 merge the primary gid, the image's gids and the
  // declared gids, de-duplicated and sorted: whatever the image adds, the
  // shim's result must be native Strict's.
  const merged = fc.tuple(gid, gidList, gidList).map(([primary, imageGids, declared]) => ({
    primary,
    declared,
    before: [...new Set([primary, ...imageGids, ...declared])].sort((a, b) => a - b),
  }));
  assertProperty(
    fc.property(merged, bundleConfig(fc.constantFrom('Strict', undefined)), ({ primary, declared, before }, template) => {
      const annotations = { ...template.annotations };
      delete annotations[KEEP_GIDS_ANNOTATION];
      const config: BundleConfig = { ...template, annotations, process: { ...template.process, user: { uid: 1000, gid: primary, additionalGids: before } } };
      let imageRead = false;
      const decision = decideCreate(config, { defaultPolicy: 'Strict', allowPolicyOverride: true, honorKeepGids: false }, { known: true, gids: declared, source: 'a CRI' }, () => {
        imageRead = true;
        return new Set();
      });
      assert.equal(decision.rule, 'declared');
      assert.equal(imageRead, false, 'the image is not read');
      assert.deepEqual(decision.additionalGids.after, nativeStrict(primary, declared), 'native Strict');
    }),
    RUNS,
  );
  t.pass('the declared rule equals native Strict');
});

t.test('decideCreate under Audit: the gids of Merge, the removal of Strict on record', async (t) => {
  assertProperty(
    fc.property(strictCase, gidSet, declaredArbitrary, ([config, settings], imageGids, declared) => {
      const before = structuredClone(config.process.user.additionalGids ?? []);
      const strict = decideCreate(config, settings, declared, () => imageGids);
      const audit = decideCreate(config, { ...settings, defaultPolicy: 'Audit', allowPolicyOverride: false }, declared, () => imageGids);
      assert.equal(audit.policy, 'Audit');
      assert.deepEqual(audit.additionalGids.after, before, 'nothing removed');
      assert.deepEqual(audit.removed, []);
      assert.equal(audit.record, undefined, 'no removal record: exec strips nothing');
      assert.deepEqual(audit.wouldRemove, strict.removed, 'exactly what Strict removes');
      assert.equal(audit.rule, strict.rule, 'by the same rule');
      assert.deepEqual(JSON.parse(audit.decisionRecord).wouldRemove, strict.removed, 'on record in config.json');
    }),
    RUNS,
  );
  t.pass('Audit records Strict and applies Merge');
});
