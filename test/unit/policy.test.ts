import t from 'tap';
import { KEEP_GIDS_ANNOTATION, POLICY_ANNOTATION, REMOVED_GIDS_ANNOTATION } from '../../src/annotations';
import { choosePolicy, formatGidList, keepGids, mergeVerdicts, parseGidList, recordedRemoval, strictByDeclared, strictByImage, type PolicySettings } from '../../src/policy';

const STRICT_OPEN: PolicySettings = { defaultPolicy: 'Strict', allowPolicyOverride: true };
const MERGE_OPEN: PolicySettings = { defaultPolicy: 'Merge', allowPolicyOverride: true };
const STRICT_LOCKED: PolicySettings = { defaultPolicy: 'Strict', allowPolicyOverride: false };
const MERGE_LOCKED: PolicySettings = { defaultPolicy: 'Merge', allowPolicyOverride: false };

const policy = (value: string): Record<string, string> => ({ [POLICY_ANNOTATION]: value });

t.test('choosePolicy', async (t) => {
  t.test('no annotation -> the node default', async (t) => {
    t.same(choosePolicy({}, STRICT_OPEN), { policy: 'Strict', source: 'node-default' });
    t.same(choosePolicy({}, MERGE_OPEN), { policy: 'Merge', source: 'node-default' });
    // Without an annotation nothing is being overridden, even when locked.
    t.same(choosePolicy({}, STRICT_LOCKED), { policy: 'Strict', source: 'node-default' });
    t.same(choosePolicy({}, MERGE_LOCKED), { policy: 'Merge', source: 'node-default' });
    // Unrelated annotations do not count.
    t.same(choosePolicy({ 'strict-groups.io/other': 'Merge', [KEEP_GIDS_ANNOTATION]: '1' }, STRICT_OPEN), { policy: 'Strict', source: 'node-default' });
  });

  t.test('the annotation wins when the node allows it', async (t) => {
    t.same(choosePolicy(policy('Strict'), MERGE_OPEN), { policy: 'Strict', source: 'annotation' });
    t.same(choosePolicy(policy('Merge'), STRICT_OPEN), { policy: 'Merge', source: 'annotation' });
    t.same(choosePolicy(policy('Strict'), STRICT_OPEN), { policy: 'Strict', source: 'annotation' });
  });

  t.test('invalid values are errors naming the annotation', async (t) => {
    // Exact spelling only: a typo must not silently fall back to some policy.
    for (const value of ['strict', 'merge', ' Strict', 'Strict ', 'STRICT', '', 'Strict,Merge', 'true']) {
      t.throws(() => choosePolicy(policy(value), STRICT_OPEN), {
        name: 'ShimError',
        message: `invalid pod annotation ${POLICY_ANNOTATION}=${JSON.stringify(value)}: want "Strict", "Merge" or "Audit"`,
      }, JSON.stringify(value));
    }
    t.throws(() => choosePolicy(policy('strict'), MERGE_OPEN), { name: 'ShimError', message: /strict-groups\.io\/supplemental-groups-policy/ });
  });

  t.test('on a sandbox an invalid value gives the node default; valid values still count', async (t) => {
    const sandbox = { sandbox: true };
    t.same(choosePolicy(policy('strict'), STRICT_OPEN, sandbox), { policy: 'Strict', source: 'invalid-annotation-on-sandbox' });
    t.same(choosePolicy(policy(''), MERGE_OPEN, sandbox), { policy: 'Merge', source: 'invalid-annotation-on-sandbox' });
    t.same(choosePolicy(policy('Merge'), STRICT_OPEN, sandbox), { policy: 'Merge', source: 'annotation' });
    t.same(choosePolicy(policy('strict'), MERGE_LOCKED, sandbox), { policy: 'Merge', source: 'node-enforced' });
    t.throws(() => choosePolicy(policy('strict'), STRICT_OPEN, { sandbox: false }), { name: 'ShimError' });
  });

  t.test('a node that forbids overrides enforces its default, even over invalid values', async (t) => {
    t.same(choosePolicy(policy('Merge'), STRICT_LOCKED), { policy: 'Strict', source: 'node-enforced' });
    t.same(choosePolicy(policy('Strict'), MERGE_LOCKED), { policy: 'Merge', source: 'node-enforced' });
    t.same(choosePolicy(policy('Strict'), STRICT_LOCKED), { policy: 'Strict', source: 'node-enforced' });
    t.same(choosePolicy(policy('strict'), STRICT_LOCKED), { policy: 'Strict', source: 'node-enforced' });
    t.same(choosePolicy(policy(''), MERGE_LOCKED), { policy: 'Merge', source: 'node-enforced' });
  });
});

t.test('parseGidList', async (t) => {
  t.same(parseGidList(''), [], 'the empty string is the empty list');
  t.same(parseGidList('   '), []);
  t.same(parseGidList('0'), [0]);
  t.same(parseGidList('50000'), [50000]);
  t.same(parseGidList('1,2,3'), [1, 2, 3]);
  t.same(parseGidList('3,1,2'), [3, 1, 2], 'order is kept');
  t.same(parseGidList('5,5'), [5, 5], 'duplicates are kept');
  t.same(parseGidList(' 1 , 2 '), [1, 2], 'items may be padded');
  t.same(parseGidList('007'), [7]);
  t.same(parseGidList('4294967295'), [4294967295], 'the largest uint32');

  // Anything else is not a list the shim could have written.
  for (const bad of ['4294967296', '9999999999', '12345678901', '-1', '+1', '1,', ',1', '1,,2', 'a', '1a', '0x10', '1e3', '1.0', '1;2', '1 2', '\uff11']) {
    t.equal(parseGidList(bad), undefined, JSON.stringify(bad));
  }
});

t.test('formatGidList', async (t) => {
  t.equal(formatGidList([]), '');
  t.equal(formatGidList([50000]), '50000');
  t.equal(formatGidList([3, 1, 2]), '3,1,2', 'order is kept');
  t.equal(formatGidList(new Set([60000, 50000])), '60000,50000');
  t.equal(formatGidList([0, 4294967295]), '0,4294967295');
  // Round trip.
  t.same(parseGidList(formatGidList([0, 1000, 4294967295])), [0, 1000, 4294967295]);
  t.same(parseGidList(formatGidList([])), []);
});

t.test('keepGids', async (t) => {
  const keep = (value: string): Record<string, string> => ({ [KEEP_GIDS_ANNOTATION]: value });
  t.same([...keepGids(keep('50000,50001'), true)], [50000, 50001]);
  t.same([...keepGids(keep('5,5'), true)], [5]);
  t.same([...keepGids(keep(''), true)], []);
  t.same([...keepGids({}, true)], []);

  // Ignored unless the node honours it: a pod must not keep image groups on its own say.
  t.same([...keepGids(keep('50000'), false)], []);
  t.same([...keepGids(keep('not a list'), false)], [], 'not even validated when ignored');

  t.throws(() => keepGids(keep('x'), true), {
    name: 'ShimError',
    message: `invalid pod annotation ${KEEP_GIDS_ANNOTATION}="x": want comma-separated decimal gids`,
  });
  t.throws(() => keepGids(keep('1,-2'), true), { name: 'ShimError', message: /strict-groups\.io\/keep-gids="1,-2"/ });
  t.throws(() => keepGids(keep('4294967296'), true), { name: 'ShimError', message: /keep-gids/ });
});

t.test('recordedRemoval', async (t) => {
  const record = (value: string): Record<string, string> => ({ [REMOVED_GIDS_ANNOTATION]: value });
  // Absent: the create chose Merge. Empty: Strict, nothing removed.
  t.equal(recordedRemoval({}), undefined);
  t.same(recordedRemoval(record('')), []);
  t.same(recordedRemoval(record('50000')), [50000]);
  t.same(recordedRemoval(record('0,50000,4294967295')), [0, 50000, 4294967295]);
  t.throws(() => recordedRemoval(record('abc')), {
    name: 'ShimError',
    message: `invalid annotation ${REMOVED_GIDS_ANNOTATION}="abc" in the container's state`,
  });
  t.throws(() => recordedRemoval(record('1,,2')), { name: 'ShimError', message: /strict-groups\.io\/removed-gids="1,,2"/ });
  // Only the shim writes the record, and only as formatGidList does.
  for (const loose of ['007', ' 1', '1, 2', '1,', '4294967296']) {
    t.throws(() => recordedRemoval(record(loose)), { name: 'ShimError' }, JSON.stringify(loose));
  }
});

t.test('strictByImage', async (t) => {
  const none = new Set<number>();

  t.test('the FACTS seed: 50000 goes, the primary gid and 60000 stay', async (t) => {
    t.same(strictByImage([1000, 50000, 60000], 1000, new Set([50000]), none), {
      additionalGids: [1000, 60000],
      removed: [50000],
      verdicts: [
        { gid: 1000, kept: 'primary' },
        { gid: 50000, removed: 'from-image' },
        { gid: 60000, kept: 'not-from-image' },
      ],
    });
  });

  t.test('keeps order and removes only image gids', async (t) => {
    const outcome = strictByImage([60000, 7, 50000, 3, 50001, 1], 1000, new Set([50000, 50001]), none);
    t.same(outcome.additionalGids, [60000, 7, 3, 1]);
    t.same(outcome.removed, [50000, 50001]);
  });

  t.test('never adds: image gids not in the list are not reported', async (t) => {
    t.same(strictByImage([1000, 60000], 1000, new Set([50000, 70000]), none).removed, []);
    t.same(strictByImage([], 1000, new Set([50000]), none), { additionalGids: [], removed: [], verdicts: [] });
  });

  t.test('the primary gid stays even when the image grants it', async (t) => {
    const outcome = strictByImage([1000, 50000], 1000, new Set([1000, 50000]), none);
    t.same(outcome.additionalGids, [1000]);
    t.same(outcome.verdicts[0], { gid: 1000, kept: 'primary' });
    // gid 0 as primary (no runAsGroup, no passwd entry) is kept too.
    t.same(strictByImage([0, 50000], 0, new Set([0, 50000]), none).additionalGids, [0]);
  });

  t.test('keep-gids stay, said so', async (t) => {
    const outcome = strictByImage([1000, 50000, 50001, 60000], 1000, new Set([1000, 50000, 50001]), new Set([50001, 99]));
    t.same(outcome.additionalGids, [1000, 50001, 60000]);
    t.same(outcome.removed, [50000]);
    t.same(outcome.verdicts[2], { gid: 50001, kept: 'keep-gids' });
  });

  t.test('duplicates in the input', async (t) => {
    // Every copy of an image gid goes, reported once.
    t.same(strictByImage([50000, 60000, 50000, 50000], 1000, new Set([50000]), none), {
      additionalGids: [60000],
      removed: [50000],
      verdicts: [{ gid: 50000, removed: 'from-image' }, { gid: 60000, kept: 'not-from-image' }],
    });
    // Kept duplicates stay as they were (never reorders, never dedups), judged once.
    const kept = strictByImage([1000, 50000, 1000], 1000, new Set([1000, 50000]), none);
    t.same(kept.additionalGids, [1000, 1000]);
    t.equal(kept.verdicts.length, 2);
  });

  t.test('does not modify its input', async (t) => {
    const input = [1000, 50000, 60000];
    strictByImage(input, 1000, new Set([50000]), none);
    t.same(input, [1000, 50000, 60000]);
  });
});

t.test('strictByDeclared', async (t) => {
  const none = new Set<number>();

  t.test('the seed pod declaring the image gid too: native Strict keeps it', async (t) => {
    // supplementalGroups [50000, 60000] on the seed image: containerd 2.x gives 1000 50000 60000.
    t.same(strictByDeclared([1000, 50000, 60000], 1000, new Set([50000, 60000]), none), {
      additionalGids: [1000, 50000, 60000],
      removed: [],
      verdicts: [
        { gid: 1000, kept: 'primary' },
        { gid: 50000, kept: 'declared' },
        { gid: 60000, kept: 'declared' },
      ],
    });
  });

  t.test('whatever is neither primary nor declared goes, whatever the image says', async (t) => {
    t.same(strictByDeclared([0, 4, 10, 1000, 60000], 1000, new Set([60000]), none), {
      additionalGids: [1000, 60000],
      removed: [0, 4, 10],
      verdicts: [
        { gid: 0, removed: 'not-declared' },
        { gid: 4, removed: 'not-declared' },
        { gid: 10, removed: 'not-declared' },
        { gid: 1000, kept: 'primary' },
        { gid: 60000, kept: 'declared' },
      ],
    });
  });

  t.test('nothing declared: only the primary gid stays', async (t) => {
    t.same(strictByDeclared([0, 10], 0, none, none).additionalGids, [0]);
  });

  t.test('an honoured keep-gid stays, said so', async (t) => {
    const outcome = strictByDeclared([1000, 50000, 60000], 1000, new Set([60000]), new Set([50000]));
    t.same(outcome.additionalGids, [1000, 50000, 60000]);
    t.same(outcome.verdicts[1], { gid: 50000, kept: 'keep-gids' });
  });

  t.test('the primary gid wins over declared in the verdict; order and duplicates kept', async (t) => {
    const outcome = strictByDeclared([60000, 1000, 60000, 5], 1000, new Set([1000, 60000]), none);
    t.same(outcome.additionalGids, [60000, 1000, 60000]);
    t.same(outcome.verdicts, [{ gid: 60000, kept: 'declared' }, { gid: 1000, kept: 'primary' }, { gid: 5, removed: 'not-declared' }]);
  });
});

t.test('mergeVerdicts keeps everything', async (t) => {
  t.same(mergeVerdicts([1000, 50000, 1000]), {
    additionalGids: [1000, 50000, 1000],
    removed: [],
    verdicts: [{ gid: 1000, kept: 'merge' }, { gid: 50000, kept: 'merge' }],
  });
});
