/**
 * strict-groups report's pure parts: reading a container from its records,
 * the totals, and the three output forms.
 */
import t from 'tap';
import { classify, totals, type ContainerReport } from '../../src/report/classify';
import { formatJson, formatPrometheus, formatTable, type Report } from '../../src/report/format';

const POD = {
  'io.kubernetes.cri.container-type': 'container',
  'io.kubernetes.cri.container-name': 'app',
  'io.kubernetes.cri.sandbox-name': 'web-0',
  'io.kubernetes.cri.sandbox-namespace': 'shop',
};
const USER = { uid: 1000, gid: 1000, additionalGids: [1000, 60000] };
const listed = { id: 'a'.repeat(64), bundle: '/b', status: 'running' };
const record = (value: object): string => JSON.stringify(value);

t.test('classify', async (t) => {
  t.same(
    classify(listed, {
      annotations: { ...POD, 'strict-groups.io/decision': record({ policy: 'Strict', policySource: 'annotation', rule: 'declared', ruleReason: 'containerd', removed: [50000] }) },
      user: USER,
    }),
    {
      id: listed.id, status: 'running', managed: true, cri: 'containerd',
      namespace: 'shop', pod: 'web-0', container: 'app', containerType: 'container',
      uid: 1000, gid: 1000, additionalGids: [1000, 60000],
      policy: 'Strict', policySource: 'annotation', rule: 'declared', ruleReason: 'containerd', removed: [50000],
    },
    'a Strict container with its record',
  );
  t.match(
    classify(listed, { annotations: { ...POD, 'strict-groups.io/decision': record({ policy: 'Audit', policySource: 'node-default', rule: 'image', ruleReason: 'x', wouldRemove: [4], wouldRefuse: 'fifo' }) }, user: USER }),
    { managed: true, policy: 'Audit', wouldRemove: [4], wouldRefuse: 'fifo' },
    'Audit',
  );
  t.match(classify(listed, { annotations: POD, user: USER }), { managed: false, cri: 'containerd', pod: 'web-0', additionalGids: [1000, 60000] }, 'no record: not through strict-groups');
  t.match(classify(listed, { annotations: { 'strict-groups.io/removed-gids': '50000' }, user: USER }), { managed: true, policy: 'Strict', rule: 'unknown', removed: [50000] }, 'an older shim\'s removal record');
  t.match(classify(listed, { annotations: { 'strict-groups.io/decision': '{' }, user: USER }), { managed: true, problem: 'unreadable decision record' });
  t.match(classify(listed, { annotations: { 'strict-groups.io/decision': record({ policy: 'Lenient' }) }, user: USER }), { problem: 'unreadable decision record' });
  t.match(classify(listed, { annotations: { 'strict-groups.io/decision': record({ policy: 'Strict', removed: ['x'] }) }, user: USER }), { policy: 'Strict', removed: undefined }, 'a malformed list is left out');
  t.match(classify(listed, { problem: 'ENOENT' }), { managed: false, problem: 'ENOENT' }, 'an unreadable bundle');
  t.match(classify(listed, { annotations: { 'io.kubernetes.cri-o.ContainerType': 'container', 'io.kubernetes.pod.name': 'p' }, user: undefined }), { cri: 'cri-o', pod: 'p', uid: undefined });
});

const containers: ContainerReport[] = [
  { id: '1', status: 'running', managed: true, cri: 'containerd', containerType: 'container', namespace: 'a', pod: 'p1', container: 'c', policy: 'Strict', policySource: 'annotation', rule: 'declared', removed: [50000], additionalGids: [1000, 60000] },
  { id: '2', status: 'running', managed: true, cri: 'containerd', containerType: 'container', namespace: 'a', pod: 'p2', container: 'c', policy: 'Strict', policySource: 'node-default', rule: 'image', removed: [], additionalGids: [1000] },
  { id: '3', status: 'running', managed: true, cri: 'containerd', containerType: 'sandbox', namespace: 'a', pod: 'p2', policy: 'Strict', policySource: 'node-default', rule: 'image', removed: [], additionalGids: [0] },
  { id: '4', status: 'running', managed: true, cri: 'containerd', containerType: 'container', namespace: 'b', pod: 'p3', container: 'c', policy: 'Audit', policySource: 'node-enforced', rule: 'declared', wouldRemove: [4, 10], additionalGids: [0, 4, 10] },
  { id: '5', status: 'running', managed: true, cri: 'cri-o', containerType: 'container', namespace: 'b', pod: 'p4', container: 'c', policy: 'Audit', rule: 'image', wouldRemove: [], wouldRefuse: 'fifo', additionalGids: [] },
  { id: '6', status: 'stopped', managed: false, cri: 'containerd', containerType: 'container', namespace: 'c', pod: 'p5', container: 'c', additionalGids: [1000, 50000, 60000] },
  { id: '7', status: 'running', managed: true, cri: 'containerd', containerType: 'container', namespace: 'c', pod: 'p6', container: 'c', policy: 'Merge', rule: 'none', additionalGids: [1000, 50000] },
];

t.test('totals', async (t) => {
  const counts = totals(containers);
  const flat = [...counts.byPolicyAndRule].flatMap(([policy, byRule]) => [...byRule].map(([rule, n]) => [`${policy} ${rule}`, n]));
  t.same(flat.sort(), [['Audit declared', 1], ['Audit image', 1], ['Merge none', 1], ['Strict declared', 1], ['Strict image', 2], ['unmanaged none', 1]]);
  t.same(counts.removing, { Strict: 1, Audit: 1 });
  t.equal(counts.fallbacks, 1, 'the containerd pod container decided by the image rule; not its sandbox, not CRI-O\'s');
  t.equal(counts.wouldRefuse, 1);
});

const report: Report = {
  generatedAt: new Date('2026-12-01T12:00:00Z'),
  roots: [
    { root: '/run/containerd/runc/k8s.io', runtime: '/usr/sbin/runc', containers },
    { root: '/run/runc', runtime: '/usr/sbin/runc', containers: [], error: 'runc --root /run/runc list: permission denied' },
  ],
};

t.test('prometheus: the exact text', async (t) => {
  t.equal(
    formatPrometheus(report),
    [
      '# HELP strict_groups_containers Containers under the runtime roots, by the policy strict-groups applied and the rule that decided (policy "unmanaged": not created through strict-groups).',
      '# TYPE strict_groups_containers gauge',
      'strict_groups_containers{policy="Audit",rule="declared"} 1',
      'strict_groups_containers{policy="Audit",rule="image"} 1',
      'strict_groups_containers{policy="Merge",rule="none"} 1',
      'strict_groups_containers{policy="Strict",rule="declared"} 1',
      'strict_groups_containers{policy="Strict",rule="image"} 2',
      'strict_groups_containers{policy="unmanaged",rule="none"} 1',
      '# HELP strict_groups_containers_removing_gids Containers whose gids Strict removed (policy "Strict") or would remove (policy "Audit").',
      '# TYPE strict_groups_containers_removing_gids gauge',
      'strict_groups_containers_removing_gids{policy="Audit"} 1',
      'strict_groups_containers_removing_gids{policy="Strict"} 1',
      "# HELP strict_groups_image_rule_fallbacks containerd pod containers whose groups the image rule decided because containerd's CRI could not say what the pod declared.",
      '# TYPE strict_groups_image_rule_fallbacks gauge',
      'strict_groups_image_rule_fallbacks 1',
      '# HELP strict_groups_audit_would_refuse Audit containers that Strict would refuse to start (their image cannot be read safely).',
      '# TYPE strict_groups_audit_would_refuse gauge',
      'strict_groups_audit_would_refuse 1',
      '# HELP strict_groups_report_root_up Whether the runtime root could be listed (1) or not (0).',
      '# TYPE strict_groups_report_root_up gauge',
      'strict_groups_report_root_up{root="/run/containerd/runc/k8s.io"} 1',
      'strict_groups_report_root_up{root="/run/runc"} 0',
      '# HELP strict_groups_report_timestamp_seconds When the report was made, in seconds since the epoch.',
      '# TYPE strict_groups_report_timestamp_seconds gauge',
      'strict_groups_report_timestamp_seconds 1796126400',
      '',
    ].join('\n'),
  );
  t.match(formatPrometheus({ ...report, roots: [{ root: '/a"b\\c\nd', runtime: 'r', containers: [] }] }), 'root="/a\\"b\\\\c\\nd"', 'label values escaped');
});

t.test('table: a line per container, unmanaged ones said so, root errors after', async (t) => {
  const lines = formatTable(report).trimEnd().split('\n');
  t.match(lines[0], /^NAMESPACE +POD +CONTAINER +TYPE +POLICY +SOURCE +RULE +REMOVED +WOULD REMOVE +GIDS +ID$/);
  t.equal(lines.length, 1 + containers.length + 1);
  t.match(lines[1], /^a +p1 +c +container +Strict +annotation +declared +50000 +- +1000,60000 +1$/);
  t.match(lines[5], /Audit \(Strict would refuse\)/);
  t.match(lines[6], /^c +p5 +c +container +not through strict-groups +- +- +- +- +1000,50000,60000 +6$/);
  t.equal(lines[8], '# /run/runc: runc --root /run/runc list: permission denied');
});

t.test('json: everything, as data', async (t) => {
  const parsed = JSON.parse(formatJson(report));
  t.equal(parsed.generatedAt, '2026-12-01T12:00:00.000Z');
  t.same(parsed.roots[0].containers, containers);
  t.equal(parsed.roots[1].error, 'runc --root /run/runc list: permission denied');
});
