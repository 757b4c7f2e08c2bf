/**
 * End to end under containerd 1.6 (Debian 12), 1.7 (trixie) and 2.1 (sid):
 * each node configured from its own `containerd config default` and wired
 * by install.sh, pods started through real CRI gRPC calls as the kubelet
 * makes them, the groups read from inside the containers. The seed case of
 * FACTS.md under both policies, the node default, exec, an invalid
 * annotation, and the plain runc handler next to it, on every version.
 *
 * Audit lines are checked only for who (pod, container, container type),
 * the policy, where it came from and the resulting additionalGids; the
 * groups themselves are judged by `id` in the container.
 */
import { execa } from 'execa';
import t from 'tap';
import { ContainerdNode, HANDLER, prerequisites, type PodSpec } from '../helpers/containerd';
import { CriError } from '../helpers/cri';
import { MERGED_GROUPS, POLICY, SHIM, STRICT_GROUPS, programPath } from '../helpers/oci';
import { parseToml, at } from '../helpers/install';
import type { ContainerdLine } from '../helpers/runtimes';

const LINES: readonly ContainerdLine[] = ['1.6', '1.7', '2.1'];

/** Where install.sh must have put the handler: the CRI runtime plugin of the config version. */
const RUNTIMES_TABLE: Record<2 | 3, string[]> = {
  2: ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'],
  3: ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
};

/** Prints its identity to the CRI log, then stays up for exec. */
const ID_THEN_SLEEP = ['sh', '-c', 'id; exec sleep 3600'];

/** The seed pod: runAsUser 1000, supplementalGroups [60000], on the seed image. */
function seedPod(name: string, runtimeHandler: string, annotations: Record<string, string> = {}): PodSpec {
  return { name, runtimeHandler, annotations, runAsUser: 1000, supplementalGroups: [60000], command: ID_THEN_SLEEP };
}

/** The audit fields this suite relies on (the rest of the line's format is not its business). */
function auditSummary(entry: Record<string, unknown> | undefined): unknown[] {
  return [entry?.['pod'], entry?.['container'], entry?.['containerType'], entry?.['policy'], entry?.['policySource'], entry?.['additionalGids']];
}

const INVALID_MESSAGE = `OCI runtime create failed: strict-groups: invalid pod annotation ${POLICY}="strict": want "Strict", "Merge" or "Audit"`;
/**
 * The whole message of the failed CRI call, as the kubelet shows it: the
 * shim's --log line wrapped by containerd; 1.6 and 1.7 end it with
 * ": unknown" (the error's gRPC code), 2.1 does not.
 */
const INVALID_DETAILS: Record<ContainerdLine, string> = {
  '1.6': `failed to create containerd task: failed to create shim task: ${INVALID_MESSAGE}: unknown`,
  '1.7': `failed to create containerd task: failed to create shim task: ${INVALID_MESSAGE}: unknown`,
  '2.1': `failed to create containerd task: failed to create shim task: ${INVALID_MESSAGE}`,
};

for (const line of LINES) {
  const ready = prerequisites(line);
  t.test(`containerd ${line} CRI`, { skip: ready.skip }, async (t) => {
    const node = await ContainerdNode.start({ build: ready.build! });
    t.teardown(() => node.stop());
    const version = await node.cri.version();
    t.comment(`${version.runtime_name} ${version.runtime_version} (${node.build.source}), CRI ${version.runtime_api_version}`);

    t.test('install.sh put the handler into the CRI runtime section of this config version', async (t) => {
      for (const note of node.installReport.split('\n').filter((text) => /^\s+note\s/.test(text))) t.comment(`install.sh: ${note.replace(/^\s*note\s+/, '')}`);
      const config = parseToml(node.configText());
      t.equal(at(config, 'version'), BigInt(node.build.configVersion), `config version ${node.build.configVersion}`);
      const runtimes = RUNTIMES_TABLE[node.build.configVersion];
      t.same(at(config, ...runtimes, HANDLER, 'pod_annotations'), ['strict-groups.io/*'], `${runtimes.join('.')}.${HANDLER}.pod_annotations`);
      t.equal(at(config, ...runtimes, HANDLER, 'options', 'BinaryName'), '/usr/local/bin/strict-groups-runtime', 'BinaryName');
    });

    t.test('Strict annotation: the image gid is gone', async (t) => {
      const pod = await node.runPod(seedPod('strict', HANDLER, { [POLICY]: 'Strict' }));
      t.equal(await node.firstOutputLine(pod), STRICT_GROUPS, 'id in the container');
      t.same(
        node.auditEntries('strict').map(auditSummary),
        [
          ['strict', undefined, 'sandbox', 'Strict', 'annotation', [0]],
          ['strict', 'main', 'container', 'Strict', 'annotation', [1000, 60000]],
        ],
        'one audit line for the sandbox, one for the container',
      );
      const container = node.auditEntries('strict').find((entry) => entry['containerType'] === 'container');
      t.same(
        [container?.['rule'], container?.['declaredGids'], container?.['removed']],
        ['declared', [60000], [50000]],
        "containerd's CRI said what the pod declared; the image gid went as undeclared",
      );
      t.match(container?.['ruleReason'], /^containerd's CRI ContainerStatus at \//, "asked on containerd's own socket");
      await node.removePod(pod);
    });

    t.test('Merge annotation: the image gid stays', async (t) => {
      const pod = await node.runPod(seedPod('merge', HANDLER, { [POLICY]: 'Merge' }));
      t.equal(await node.firstOutputLine(pod), MERGED_GROUPS, 'id in the container');
      const container = node.auditEntries('merge').find((entry) => entry['containerType'] === 'container');
      t.same(auditSummary(container), ['merge', 'main', 'container', 'Merge', 'annotation', [1000, 50000, 60000]], 'audit line');
      await node.removePod(pod);
    });

    t.test('no annotation: the node default, Strict', async (t) => {
      const pod = await node.runPod(seedPod('default', HANDLER));
      t.equal(await node.firstOutputLine(pod), STRICT_GROUPS, 'id in the container');
      const container = node.auditEntries('default').find((entry) => entry['containerType'] === 'container');
      t.same(auditSummary(container), ['default', 'main', 'container', 'Strict', 'node-default', [1000, 60000]], 'audit line');
      await node.removePod(pod);
    });

    t.test('ExecSync into a Strict container: the exec process loses the gid too', async (t) => {
      const pod = await node.runPod(seedPod('exec', HANDLER, { [POLICY]: 'Strict' }));
      t.equal(await node.firstOutputLine(pod), STRICT_GROUPS, 'the container');
      t.equal((await node.exec(pod, ['id'])).trim(), STRICT_GROUPS, 'the exec process');
      await node.removePod(pod);
    });

    t.test('invalid annotation: the sandbox runs, the container fails naming the annotation', async (t) => {
      const sandbox = await node.runSandbox(seedPod('invalid', HANDLER, { [POLICY]: 'strict' }));
      // The runtime's create runs at StartContainer on 1.6 and at
      // CreateContainer or StartContainer elsewhere: whichever call fails,
      // its message is what the kubelet reports in the pod's events, the
      // shim's --log line as containerd decoded it.
      const outcome = await node.createContainer(sandbox).then(
        (id) => node.cri.startContainer(id).then(() => undefined),
      ).catch((error: unknown) => error);
      if (!(outcome instanceof CriError)) {
        t.fail(`the container started, or failed otherwise: ${String(outcome)}`);
      } else {
        t.comment(`${outcome.method} failed: ${outcome.details}`);
        t.equal(outcome.details, INVALID_DETAILS[line], 'the message');
      }
      t.same(
        node.auditEntries('invalid').map((entry) => [entry['containerType'], entry['policy'], entry['policySource']]),
        [['sandbox', 'Strict', 'invalid-annotation-on-sandbox']],
        'the sandbox ran under the node default; no container was created',
      );
      await node.removePod(sandbox);
    });

    t.test('runc handler: unaffected, with or without the annotation', async (t) => {
      const plain = await node.runPod(seedPod('runc', 'runc'));
      t.equal(await node.firstOutputLine(plain), MERGED_GROUPS, 'no annotation');
      const annotated = await node.runPod(seedPod('runc-strict', 'runc', { [POLICY]: 'Strict' }));
      t.equal(await node.firstOutputLine(annotated), MERGED_GROUPS, 'annotation Strict means nothing to runc');
      t.same([...node.auditEntries('runc'), ...node.auditEntries('runc-strict')], [], 'the shim never ran');
      await node.removePod(plain);
      await node.removePod(annotated);
    });

    t.test('Audit: the container and its exec keep their groups; what Strict would remove is on record, as Strict removes it', async (t) => {
      const strict = await node.runPod(seedPod('compare-strict', HANDLER, { [POLICY]: 'Strict' }));
      const audit = await node.runPod(seedPod('audit', HANDLER, { [POLICY]: 'Audit' }));
      t.equal(await node.firstOutputLine(audit), MERGED_GROUPS, 'the container');
      t.equal((await node.exec(audit, ['id'])).trim(), MERGED_GROUPS, 'the exec process');
      const line = (pod: string) => node.auditEntries(pod).find((entry) => entry['containerType'] === 'container');
      const [auditLine, strictLine] = [line('audit'), line('compare-strict')];
      t.same([auditLine?.['policy'], auditLine?.['rule'], auditLine?.['removed']], ['Audit', 'declared', []], 'Audit removed nothing, decided by the CRI\'s answer');
      t.same(auditLine?.['wouldRemove'], strictLine?.['removed'], 'and would remove what Strict removed from the same pod');
      t.same(auditLine?.['wouldRemove'], [50000]);
      await node.removePod(strict);
      await node.removePod(audit);
    });

    t.test('strict-groups report: Strict, Merge, Audit and plain runc pods, as they are', async (t) => {
      const pods = [
        await node.runPod(seedPod('report-strict', HANDLER, { [POLICY]: 'Strict' })),
        await node.runPod(seedPod('report-merge', HANDLER, { [POLICY]: 'Merge' })),
        await node.runPod(seedPod('report-audit', HANDLER, { [POLICY]: 'Audit' })),
        await node.runPod(seedPod('report-runc', 'runc')),
      ];
      const result = await execa(SHIM, ['strict-groups', 'report', '--root', node.runcRoot, '--runtime', programPath('runc'), '--format', 'json'], { reject: false });
      t.equal(result.exitCode, 0, String(result.stderr));
      const containers = (JSON.parse(String(result.stdout)) as { roots: { containers: Record<string, unknown>[] }[] }).roots[0]!.containers;
      const of = (pod: string) => containers.filter((c) => c['pod'] === pod).map((c) => [c['containerType'], c['managed'], c['policy'], c['rule'], c['removed'], c['wouldRemove'], c['additionalGids']]);
      t.same(of('report-strict'), [['container', true, 'Strict', 'declared', [50000], undefined, [1000, 60000]], ['sandbox', true, 'Strict', 'image', [], undefined, [0]]]);
      t.same(of('report-merge'), [['container', true, 'Merge', 'none', undefined, undefined, [1000, 50000, 60000]], ['sandbox', true, 'Merge', 'none', undefined, undefined, [0]]]);
      t.same(of('report-audit'), [['container', true, 'Audit', 'declared', undefined, [50000], [1000, 50000, 60000]], ['sandbox', true, 'Audit', 'image', undefined, [], [0]]]);
      t.same(of('report-runc'), [['container', false, undefined, undefined, undefined, undefined, [1000, 50000, 60000]], ['sandbox', false, undefined, undefined, undefined, undefined, [0]]]);
      for (const pod of pods) await node.removePod(pod);
    });
  });
}
